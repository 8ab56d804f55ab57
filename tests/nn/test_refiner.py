import pytest
import torch
from torch_geometric.nn import HypergraphConv

from tests.conftest import make_batch
from tests.nn.helpers import (
    check_graph_alone_equals_graph_in_mixed_batch,
    check_node_permutation_equivariance,
    check_shapes_and_repr,
    check_slot_permutation_equivariance,
)
from torch_geometric_hyper.nn import (
    HypergraphRefiner,
    MatchedIncidenceLoss,
    StackedHypergraphRefiner,
)
from torch_geometric_hyper.testing import assert_node_permutation_equivariant


def small(**kw):
    kw.setdefault('num_iterations', 3)
    return HypergraphRefiner(3, 16, max_edges=5, **kw).double()


def test_shapes_and_repr():
    pred = check_shapes_and_repr(small(), 'HypergraphRefiner(3, 16, '
                                 'max_edges=5, num_iterations=3)')
    inc, _, _ = pred.to_dense()
    assert inc[0, :, 4:].abs().sum() == 0  # padding


def test_node_permutation_equivariance():
    check_node_permutation_equivariance(small())


def test_slot_permutation_equivariance():
    check_slot_permutation_equivariance(small())


def test_equivariance_helper_catches_a_broken_model():
    model = small()
    x, batch = make_batch([6])
    orig = model.lin_in.forward

    def positional(inp):  # leaks the node order into the features
        return orig(inp) + torch.arange(inp.size(0), dtype=inp.dtype)[:, None]

    model.lin_in.forward = positional
    with pytest.raises(AssertionError, match='not equivariant'):
        assert_node_permutation_equivariant(model, x.double(), batch, 1)


def test_graph_alone_equals_graph_in_mixed_batch():
    check_graph_alone_equals_graph_in_mixed_batch(small())


def test_continue_from_state_and_no_grad_then_grad():
    model = small(num_iterations=5)
    x, batch = make_batch([4, 6])
    x = x.double()
    gen = torch.Generator().manual_seed(3)
    full = model(x, batch, 2, generator=gen)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        _, state = model(x, batch, 2, num_iterations=2, generator=gen,
                         return_state=True)
    state = state.detach()
    rest = model(None, state=state, num_iterations=3)
    assert torch.allclose(rest.incidence_logit, full.incidence_logit)
    rest.incidence_logit.sum().backward()
    assert model.steps[0].lin_inc_node.weight.grad is not None


def test_generator_reproducible_and_checkpoint_equivalent():
    model = small(checkpoint=True)
    x, batch = make_batch([5])
    x = x.double()
    a = model(x, generator=torch.Generator().manual_seed(1))
    b = model(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.incidence_logit, b.incidence_logit)
    a.incidence_logit.sum().backward()
    g1 = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.checkpoint = False
    c = model(x, generator=torch.Generator().manual_seed(1))
    c.incidence_logit.sum().backward()
    for p, g in zip(model.parameters(), g1):
        assert torch.allclose(p.grad, g)


def test_candidate_subset_runs_and_prunes():
    model = small()
    x, batch = make_batch([4])
    x = x.double()
    full = model(x, generator=torch.Generator().manual_seed(0))
    keep = full.incidence_index[:, ::2]
    sub = model(x, generator=torch.Generator().manual_seed(0),
                candidate_index=keep)
    assert sub.incidence_logit.numel() == keep.size(1)
    inc, _, _ = sub.to_dense()
    dense_full = torch.zeros(5, 4, dtype=torch.bool)
    dense_full[keep[1], keep[0]] = True
    assert (inc[0][~dense_full] == 0).all()


def test_sets_of_one_size_give_the_generic_kernels_result():
    # three sets of 4 nodes take the dense per-graph kernels (broadcast
    # pair MLP, batched matmuls, broadcast gate); the same pairs given as
    # a candidate_index take the generic sparse ones: the same logits and
    # parameter gradients
    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    from torch_geometric_hyper.nn.kernels import sparse as F
    model = small()
    x, batch = make_batch([4, 4, 4])
    x = x.double()
    calls = []
    real = F._block_matmul
    outs, grads = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, '_block_matmul', lambda *a: calls.append(1) or real(*a))
        for fast in (True, False):
            index = None if fast else CandidateIncidence.complete(
                batch, 3, 5).index
            n = len(calls)
            pred = model(x, batch, 3, candidate_index=index,
                         generator=torch.Generator().manual_seed(0))
            assert (len(calls) > n) == fast
            loss = (pred.incidence_logit.sin().sum()
                    + pred.existence_logit.cos().sum())
            grads.append(torch.autograd.grad(loss, model.parameters()))
            outs.append(pred.incidence_logit)
    assert torch.allclose(outs[0], outs[1], atol=1e-10)
    for g0, g1 in zip(*grads):
        assert torch.allclose(g0, g1, atol=1e-10)


def test_stacked_variant_uses_one_module_per_step():
    model = StackedHypergraphRefiner(3, 8, 4, num_iterations=3).double()
    assert len(model.steps) == 3
    x, _ = make_batch([5])
    pred = model(x.double())
    pred.incidence_logit.sum().backward()
    assert all(s.lin_inc_node.weight.grad is not None for s in model.steps)


def test_reset_parameters_changes_weights():
    model = small()
    before = [p.clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in
               zip(before, model.parameters()))


def test_decoded_hyperedges_feed_hypergraph_conv():
    model = small()
    x, batch = make_batch([6, 5])
    pred = model(x.double(), batch, 2)
    index, edge_batch = pred.to_hyperedge_index(edge_size=3,
                                                existence_threshold=0.0)
    assert index.size(1) == 3 * edge_batch.numel()
    assert edge_batch.tolist() == [0] * 5 + [1] * 5
    # members of each hyperedge lie in its graph
    assert torch.equal(batch[index[0]], edge_batch[index[1]])
    conv = HypergraphConv(3, 4)
    out = conv(x, index)
    assert out.shape == (11, 4)


def test_threshold_decoding():
    model = small()
    x, batch = make_batch([4])
    pred = model(x.double())
    index, edge_batch = pred.to_hyperedge_index(threshold=0.0,
                                                existence_threshold=0.0)
    assert index.size(1) == 20 and edge_batch.numel() == 5
    index, _ = pred.to_hyperedge_index(threshold=1.0)
    assert index.size(1) == 0


@pytest.mark.parametrize('x,batch,match', [
    (torch.randn(4), None, '2-D'),
    (torch.randn(4, 2), None, 'in_channels=3'),
    (torch.randn(0, 3), None, 'empty'),
    (torch.tensor([[0., float('nan'), 1.]]), None, 'NaN'),
    (torch.randn(4, 3), torch.zeros(3, dtype=torch.long), 'batch'),
    (torch.ones(2, 3, dtype=torch.long), None, 'floating'),
])
def test_input_errors(x, batch, match):
    with pytest.raises(ValueError, match=match):
        small().float()(x, batch)


def test_bad_slots_and_hyperparameters():
    with pytest.raises(ValueError, match='slots'):
        small()(torch.randn(3, 3, dtype=torch.double),
                slots=torch.randn(4, 16, dtype=torch.double))
    with pytest.raises(ValueError, match='max_edges'):
        HypergraphRefiner(3, 8, 0)


def test_training_reduces_loss_on_one_set():
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 32, 4, num_iterations=3)
    x = torch.randn(6, 3)
    target = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 1, 1]])
    loss_fn = MatchedIncidenceLoss()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        pred = model(x, generator=gen.manual_seed(0))
        loss = loss_fn(pred, target, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_input_dtype_follows_model_and_num_graphs_checked():
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, max_edges=4, num_iterations=2)
    x = torch.randn(5, 3)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ref = model(x, generator=gen())
    out = model(x.double(), generator=gen())  # float64 follows the model
    assert out.incidence_logit.dtype == torch.float32
    assert torch.allclose(out.incidence_logit, ref.incidence_logit,
                          atol=1e-6)
    with pytest.raises(ValueError, match=r"floating-point .* x.float\(\)"):
        model(x.long())
    batch = torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match='graph id 2 but num_graphs=2'):
        model(x, batch, 2)
    with pytest.raises(ValueError, match="'num_graphs' must be a positive"):
        model(x, batch, 0)
    with pytest.raises(ValueError, match='negative graph id'):
        model(x, torch.tensor([-1, 0, 0, 1, 1]), 2)
    with pytest.raises(ValueError, match="'batch' must hold integer"):
        model(x, batch.float(), 3)


def test_checkpoint_modes_give_equal_gradients():
    # (the 'auto' decision: tests/nn/test_checkpointing.py)
    with pytest.raises(ValueError, match="'checkpoint' must be True, False "
                                         "or 'auto'"):
        HypergraphRefiner(3, 8, 4, checkpoint='yes')
    # the three modes compute the same values and gradients
    x, batch = torch.randn(9, 3), torch.tensor([0] * 4 + [1] * 5)
    grads = []
    for mode in ('auto', True, False):
        torch.manual_seed(0)
        model = HypergraphRefiner(3, 8, 4, num_iterations=2, checkpoint=mode)
        pred = model(x, batch, 2, generator=torch.Generator().manual_seed(1))
        pred.incidence_logit.sum().backward()
        grads.append(model.lin_in.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert torch.allclose(grads[0], grads[2], atol=1e-6)


def test_recomputed_messages_give_the_same_gradients_and_keep_less(
        monkeypatch):
    # the slot and node DeepSets rebuild the aggregated messages in backward
    # instead of keeping them: the same gradients (bit for bit on the CPU),
    # (M + N) d floats fewer kept per step
    from torch_geometric_hyper.nn.refiner import RefinementStep
    from torch_geometric_hyper.testing import saved_tensor_bytes
    torch.manual_seed(0)
    d, m = 16, 6
    model = HypergraphRefiner(3, d, m, 2, checkpoint=False)
    x = torch.randn(11, 3)
    batch = torch.tensor([0] * 6 + [1] * 5)
    state = model.init_state(x, batch, 2, generator=torch.Generator(
    ).manual_seed(1)).detach()

    def run():
        s = model.step(state)
        loss = s.node.square().sum() + s.edge.square().sum() + \
            s.incidence_logit.sum()
        return torch.autograd.grad(loss, list(model.parameters()),
                                   allow_unused=True)  # the slots' prior

    def kept():
        return saved_tensor_bytes(lambda: model.step(state),
                                  exclude=model.parameters())

    lean, lean_bytes = run(), kept()
    monkeypatch.setattr(RefinementStep, '_messages',
                        lambda self, *args: None)
    plain, plain_bytes = run(), kept()
    assert sum(g is not None for g in lean) > 10
    for a, b in zip(lean, plain):
        assert (a is None and b is None) or torch.equal(a, b)
    assert plain_bytes - lean_bytes == (2 * m + 11) * d * 4


@pytest.mark.parametrize('num_candidates', [None, 5])
@pytest.mark.parametrize('checkpoint', [False, True])
@pytest.mark.parametrize('grad', [True, False])
def test_torch_compile_takes_a_refinement_step_whole(tmp_path,
                                                     num_candidates,
                                                     checkpoint, grad):
    """The step module (what ``TrainConfig.compile`` compiles, by default
    on CUDA) is one graph without breaks for sets of one size, on the
    accelerator's path too; with all pairs so is the model's whole step
    (the candidates' k-d tree and refreshes run outside the module), and
    its ``run`` of several steps."""
    import torch._dynamo as dynamo
    from torch_geometric.data import Batch

    from torch_geometric_hyper import debug
    from torch_geometric_hyper.datasets import ConvexHull
    data = Batch.from_data_list(list(ConvexHull(
        str(tmp_path), num_points=12, num_samples=3, log=False)))
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), 4,
                              checkpoint=checkpoint,
                              num_candidates=num_candidates)
    state = model.step(model.init_state(data.x, data.batch, data.num_graphs))
    args = (model.lin_in(state.x), state.node, state.edge, state.incidence,
            state.candidates, state.batch, state.slot_batch,
            state.num_graphs)
    for accelerator in (False, True):
        debug.set_host_as_accelerator(accelerator)
        try:
            dynamo.reset()
            with torch.set_grad_enabled(grad):
                out = dynamo.explain(model.steps[0])(
                    *args, checkpoint=checkpoint and grad)
                assert (out.graph_count, out.graph_break_count) == (1, 0), \
                    out.break_reasons
                if num_candidates is None:
                    out = dynamo.explain(model.step)(state)
                    assert out.graph_break_count == 0, out.break_reasons
                    # the B steps with gradient of an update, one call
                    out = dynamo.explain(model.run)(state, 2, True)
                    assert out.graph_break_count == 0, out.break_reasons
        finally:
            debug.set_host_as_accelerator(False)
            dynamo.reset()
