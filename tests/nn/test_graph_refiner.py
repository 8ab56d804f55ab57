import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_hyper.nn import (
    AdjacencyBCELoss,
    GraphRefiner,
    canonical_pairs,
    closing_pairs,
    complete_pairs,
    knn_pairs,
    pair_labels,
)
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


def test_complete_pairs_and_canonical():
    batch = torch.tensor([0, 0, 0, 1, 1])
    pairs = complete_pairs(batch, 2)
    assert pairs.t().tolist() == [[0, 1], [0, 2], [1, 2], [3, 4]]
    messy = torch.tensor([[1, 0, 2, 2, 4, 1], [0, 1, 2, 0, 3, 0]])
    assert canonical_pairs(messy, batch).t().tolist() == [[0, 1], [0, 2],
                                                          [3, 4]]
    with pytest.raises(ValueError, match='two different graphs'):
        canonical_pairs(torch.tensor([[0], [3]]), batch)
    with pytest.raises(ValueError, match='node ids'):
        canonical_pairs(torch.tensor([[0], [5]]), batch)
    with pytest.raises(ValueError, match=r'\[2, num_pairs\]'):
        canonical_pairs(torch.tensor([0, 1, 2]), batch)


def test_knn_pairs_by_hand():
    # Points on a line at 0, 1, 3, 7: nearest neighbours 0->1, 1->0, 3->1,
    # 7->3 give the pairs {0,1}, {1,2}, {2,3}.
    pos = torch.tensor([[0.], [1.], [3.], [7.]])
    assert knn_pairs(pos, 1).t().tolist() == [[0, 1], [1, 2], [2, 3]]
    # Two graphs: never crosses graphs; k is capped at n - 1.
    batch = torch.tensor([0, 0, 1, 1])
    assert knn_pairs(pos, 5, batch).t().tolist() == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="'k'"):
        knn_pairs(pos, 0)


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


def _toy_batch():
    from scipy.spatial import Delaunay as ScipyDelaunay

    from torch_geometric_hyper.datasets import delaunay_edge_index
    gen = torch.Generator().manual_seed(1)
    graphs = []
    for n in (5, 7):
        x = torch.rand(n, 2, generator=gen)
        tri = ScipyDelaunay(x.double().numpy()).simplices
        graphs.append(Data(x=x, edge_index=delaunay_edge_index(tri, n)))
    return Batch.from_data_list(graphs)


def test_loss_and_pair_labels():
    pairs = torch.tensor([[0, 0, 1], [1, 2, 2]])
    assert pair_labels(pairs, torch.tensor([[2], [1]]), 3).tolist() == [0, 0, 1]
    data = _toy_batch()
    model = GraphRefiner(2, 8, num_iterations=2)
    pred = model(data.x, data.batch)
    label = pair_labels(pred.pair_index, data.edge_index, data.num_nodes)
    assert int(label.sum()) == data.edge_index.size(1) // 2
    loss = AdjacencyBCELoss()(pred, data)
    ref = torch.nn.functional.binary_cross_entropy(pred.adjacency, label)
    assert torch.allclose(loss, ref, atol=1e-6)
    with pytest.raises(ValueError, match="'reduction'"):
        AdjacencyBCELoss(reduction='avg')
    with pytest.raises(ValueError, match='edge_index'):
        AdjacencyBCELoss()(pred, Data(x=data.x))


def test_trains_with_backprop_with_skips():
    data = _toy_batch()
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


def _closing_by_brute_force(index, adjacency, n, per_node):
    nbr = {}
    for (a, b), w in zip(index.t().tolist(), adjacency.tolist()):
        if w > 0.5:
            nbr.setdefault(a, {})[b] = w
            nbr.setdefault(b, {})[a] = w
    best = {}
    for ends in nbr.values():
        for u, wu in ends.items():
            for v, wv in ends.items():
                if u < v:
                    best[(u, v)] = max(best.get((u, v), 0.0), wu * wv)
    out = []
    for u in range(n):
        mine = sorted(((s, p) for p, s in best.items() if p[0] == u),
                      reverse=True)
        out += [list(p) for _, p in mine[:per_node]]
    return sorted(out)


def test_closing_pairs_by_hand_and_brute_force():
    # predicted 0-1, 1-2, 1-3 (0-4 below the threshold): the triangles at
    # node 1 close 0-2 (0.9 * 0.8), 0-3 (0.9 * 0.6) and 2-3 (0.8 * 0.6)
    index = torch.tensor([[0, 1, 1, 0], [1, 2, 3, 4]])
    adjacency = torch.tensor([0.9, 0.8, 0.6, 0.2])
    assert closing_pairs(index, adjacency, 5, 5).t().tolist() == \
        [[0, 2], [0, 3], [2, 3]]
    # one per node (the lower end): node 0 keeps its best, 0-2
    assert closing_pairs(index, adjacency, 5, 1).t().tolist() == \
        [[0, 2], [2, 3]]
    gen = torch.Generator().manual_seed(0)
    n = 30
    index = complete_pairs(torch.zeros(n, dtype=torch.long), 1)
    for per_node in (1, 3, 100):
        adjacency = torch.rand(index.size(1), generator=gen) ** 4
        got = closing_pairs(index, adjacency, n, per_node).t().tolist()
        assert got == _closing_by_brute_force(index, adjacency, n, per_node)
    assert closing_pairs(index, torch.zeros(index.size(1)), n, 3).numel() \
        == 0


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
    data = _toy_batch()
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


def test_sorted_unique_is_numpys_unique():
    import numpy as np

    from torch_geometric_hyper.nn.graph_refiner import _sorted_unique
    rng = np.random.default_rng(1)
    for key in (rng.integers(0, 50, 1000), rng.integers(0, 2**40, 5000),
                np.array([], dtype=np.int64), np.array([7])):
        assert np.array_equal(_sorted_unique(key), np.unique(key))
