import pytest
import torch

from tests.nn.helpers import toy_delaunay_batch
from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner, knn_pairs
from torch_geometric_hyper.train import BackpropWithSkips, train_on_batch

torch.set_num_threads(1)


def make_model(T=3, d=16, **kwargs):
    torch.manual_seed(0)
    model = GraphRefiner(2, d, num_iterations=T, **kwargs).double()
    # Untrained weights give near-constant scores; spread them out so the
    # comparisons below are not trivially true.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval()


def dense_prob(model, x, batch=None, **kwargs):
    pred = model(x, batch, **kwargs)
    return pred.to_dense()[0][0], pred


def test_symmetric_adjacency():
    model = make_model()
    x = torch.rand(9, 2, dtype=torch.double)
    dense, pred = dense_prob(model, x)
    assert torch.equal(dense, dense.transpose(-1, -2))
    assert bool((dense.diagonal(dim1=-2, dim2=-1) == 0).all())
    assert pred.logit.shape == (9 * 8 // 2, )
    ei = pred.edge_index(0.5)
    assert torch.equal(torch.sort(ei[0] * 9 + ei[1]).values, ei[0] * 9 + ei[1])
    key = set(map(tuple, ei.t().tolist()))
    assert all((j, i) in key for i, j in key)


def test_permutation_equivariance():
    model = make_model()
    x = torch.rand(10, 2, dtype=torch.double)
    perm = torch.randperm(10)
    a, _ = dense_prob(model, x)
    b, _ = dense_prob(model, x[perm])
    assert torch.allclose(b, a[perm][:, perm], atol=1e-9)
    assert a.std() > 1e-3  # the check above is not about a constant matrix


def test_batch_equals_single_graphs():
    model = make_model()
    xs = [torch.rand(n, 2, dtype=torch.double) for n in (4, 9, 6)]
    batch = torch.cat([torch.full((n, ), i) for i, n in
                       enumerate(x.size(0) for x in xs)])
    dense, mask = model(torch.cat(xs), batch).to_dense()
    for g, x in enumerate(xs):
        n = x.size(0)
        single = model(x).to_dense()[0][0]
        assert torch.allclose(dense[g, :n, :n], single, atol=1e-10)
        assert bool(mask[g, :n].all()) and not bool(mask[g, n:].any())
        assert bool((dense[g, n:] == 0).all())


def test_candidate_restriction():
    """What restricting the candidates guarantees: the FIRST step's scores
    on the kept pairs equal those of the full candidate set (they depend on
    V0 and A0 = 0 only); dropped pairs then count as 0 in the messages, so
    later steps differ. Giving the full set in any order/direction equals
    the default for every step."""
    model = make_model(T=3)
    x = torch.rand(15, 2, dtype=torch.double)
    full = model.init_state(x)
    knn = knn_pairs(x, 3)
    sub = model.init_state(x, pair_index=knn)
    assert sub.pairs.nnz < full.pairs.nnz
    f1, s1 = model.step(full), model.step(sub)
    fd, sd = f1.prediction().to_dense()[0][0], s1.prediction().to_dense()[0][0]
    i, j = knn
    assert torch.allclose(sd[i, j], fd[i, j], atol=1e-12)
    assert bool((sd.sum() < fd.sum()))  # non-candidates are 0
    f2, s2 = model.step(f1), model.step(s1)
    fd2 = f2.prediction().to_dense()[0][0]
    sd2 = s2.prediction().to_dense()[0][0]
    assert not torch.allclose(sd2[i, j], fd2[i, j], atol=1e-6)

    # All ordered pairs, shuffled, with self-loops: same as the default.
    ordered = torch.stack(torch.meshgrid(torch.arange(15), torch.arange(15),
                                         indexing='ij')).view(2, -1)
    ordered = ordered[:, torch.randperm(ordered.size(1))]
    a = model(x, pair_index=ordered).to_dense()[0]
    b = model(x).to_dense()[0]
    assert torch.allclose(a, b, atol=1e-12)


def test_knn_option_matches_pair_index():
    model = make_model()
    x = torch.rand(12, 2, dtype=torch.double)
    knn_model = make_model(knn=4)
    a = knn_model(x).to_dense()[0]
    b = model(x, pair_index=knn_pairs(x, 4)).to_dense()[0]
    assert torch.allclose(a, b)
    assert 'knn=4' in repr(knn_model)


def test_trains_with_backprop_with_skips():
    data = toy_delaunay_batch()
    torch.manual_seed(0)
    model = GraphRefiner(2, 16, num_iterations=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = AdjacencyBCELoss()
    trainer = BackpropWithSkips(8, 2, 2, seed=0)
    first = trainer(model, opt, loss_fn, data)['loss']
    for _ in range(40):
        last = trainer(model, opt, loss_fn, data)['loss']
    assert last < 0.75 * first
    # kNN candidates through init_kwargs.
    stats = train_on_batch(model, opt, loss_fn, data, [(1, 2)],
                           init_kwargs={'pair_index': knn_pairs(
                               data.x, 2, data.batch)})
    assert stats['grad_steps'] == 2


def test_state_api_and_repr():
    model = GraphRefiner(2)
    assert model.hidden_channels == 256 and model.num_iterations == 32
    assert repr(model) == 'GraphRefiner(2, 256, num_iterations=32)'
    small = GraphRefiner(2, 8, num_iterations=2)
    state = small.init_state(torch.rand(4, 2))
    with pytest.raises(RuntimeError, match='step'):
        state.prediction()
    state, preds = small.run(state, 2, return_all=True)
    assert len(preds) == 2 and state.iteration == 2
    assert not state.detach().node.requires_grad
    before = [p.clone() for p in small.parameters()]
    small.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before,
                                                     small.parameters()))


@pytest.mark.parametrize('args, kwargs, match', [
    ((0, ), {}, "'in_channels'"),
    ((2, 0), {}, "'hidden_channels'"),
    ((2, 8, 0), {}, "'num_iterations'"),
    ((2, 8), {'knn': 0}, "'knn'"),
    ((2, 8), {'knn': 3, 'refresh': 0}, "'refresh'"),
    ((2, 8), {'refresh': 1.5}, "'refresh'"),
])
def test_bad_construction(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GraphRefiner(*args, **kwargs)


def test_bad_input():
    model = GraphRefiner(2, 8, num_iterations=1)
    with pytest.raises(ValueError, match='features per node'):
        model(torch.rand(4, 3))
    with pytest.raises(ValueError, match='empty'):
        model(torch.rand(0, 2))
    with pytest.raises(ValueError, match='floating-point'):
        model(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch'"):
        model(torch.rand(4, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='sorted'):
        model(torch.rand(4, 2), torch.tensor([1, 1, 0, 0]))


def test_refresh_keeps_the_base_pairs_and_their_adjacency():
    model = GraphRefiner(2, 8, num_iterations=2, knn=1, refresh=2)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.2, 0.0], [9.0, 0.0]])
    state = model.init_state(x)
    assert state.pair_index.t().tolist() == [[0, 1], [1, 2], [2, 3]]
    # pretend the first step predicted 0-1 and 1-2
    state.iteration = 1
    state.adjacency = torch.tensor([0.9, 0.8, 0.1])
    new = model._refreshed(state)
    assert new.pair_index.t().tolist() == [[0, 1], [0, 2], [1, 2], [2, 3]]
    assert new.adjacency.tolist() == pytest.approx([0.9, 0.0, 0.8, 0.1])
    assert torch.equal(new.base_index, state.base_index)


def test_refresh_is_equivariant_batched_and_adds_pairs():
    model = make_model(T=4, knn=2, refresh=3)
    x = torch.rand(14, 2, dtype=torch.double)
    a, pred = dense_prob(model, x)
    base = knn_pairs(x, 2).size(1)
    assert pred.pair_index.size(1) > base  # the refresh acted
    perm = torch.randperm(14)
    b, _ = dense_prob(model, x[perm])
    assert torch.allclose(b, a[perm][:, perm], atol=1e-9)
    xs = [torch.rand(n, 2, dtype=torch.double) for n in (5, 11, 8)]
    batch = torch.cat([torch.full((t.size(0), ), i)
                       for i, t in enumerate(xs)])
    dense, _ = model(torch.cat(xs), batch).to_dense()
    for g, t in enumerate(xs):
        n = t.size(0)
        assert torch.allclose(dense[g, :n, :n], model(t).to_dense()[0][0],
                              atol=1e-10)


def test_refresh_trains_with_backprop_with_skips():
    data = toy_delaunay_batch()
    torch.manual_seed(0)
    model = GraphRefiner(2, 16, num_iterations=8, knn=2, refresh=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = BackpropWithSkips(8, 2, 2, seed=0)
    first = trainer(model, opt, AdjacencyBCELoss(), data)['loss']
    for _ in range(40):  # over more candidates than the kNN alone: slower
        last = trainer(model, opt, AdjacencyBCELoss(), data)['loss']
    assert last < 0.8 * first
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all())
               for p in model.parameters())
    assert repr(model) == ('GraphRefiner(2, 16, num_iterations=8, knn=2, '
                           'refresh=4)')


def test_pair_geometry_is_scale_free_equivariant_and_checked():
    from torch_geometric_hyper.nn.graph_refiner import local_scale
    # local_scale: mean distance to the k nearest neighbours, per graph
    grid = torch.tensor([[0., 0.], [1., 0.], [0., 1.], [1., 1.],
                         [10., 10.], [12., 10.]], dtype=torch.double)
    batch = torch.tensor([0, 0, 0, 0, 1, 1])
    scale = local_scale(grid, 2, batch, 2)
    assert torch.allclose(scale, torch.tensor([1., 1., 1., 1., 2., 2.],
                                              dtype=torch.double))
    model = make_model(knn=4, pair_geometry=8)
    x = torch.rand(12, 2, dtype=torch.double)
    # the geometric term reads distances relative to the local spacing:
    # the same for the set scaled by 7 and shifted
    bias = model._pair_bias(model.init_state(x))
    moved = model._pair_bias(model.init_state(7 * x + 3))
    assert bias.std() > 1e-3
    assert torch.allclose(bias, moved, atol=1e-10)
    assert model.geometry is not None and 'pair_geometry=8' in repr(model)
    perm = torch.randperm(12)
    a, _ = dense_prob(model, x)
    b, _ = dense_prob(model, x[perm])
    assert torch.allclose(b, a[perm][:, perm], atol=1e-9)
    plain, _ = dense_prob(make_model(knn=4), x)
    assert not torch.allclose(a, plain)  # the term changes the prediction
    for bad in (0, 1.5, '8'):
        with pytest.raises(ValueError, match="'pair_geometry'"):
            GraphRefiner(2, 8, pair_geometry=bad)
