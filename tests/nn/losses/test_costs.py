"""The matched loss's device half as one compilable function."""
import pytest
import torch
from torch_geometric.data import Batch

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.nn import HypergraphRefiner, MatchedIncidenceLoss
from torch_geometric_hyper.nn.kernels import count_values
from torch_geometric_hyper.nn.losses.costs import (dense_cost_terms,
                                                   matched_loss)


@pytest.fixture(scope='module')
def hulls(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('hulls'))
    return Batch.from_data_list(list(ConvexHull(
        root, num_points=(6, 12), num_samples=5, log=False)))


def _prediction(data, num_candidates=None, seed=0):
    torch.manual_seed(seed)
    model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), 3,
                              num_candidates=num_candidates).double()
    return model, model(data.x.double(), data.batch, data.num_graphs)


@pytest.mark.parametrize('num_candidates', [None, 4])
def test_dense_cost_terms_are_the_losss_costs(hulls, num_candidates):
    _, pred = _prediction(hulls, num_candidates)
    ctx = MatchedIncidenceLoss()._prepare(pred, hulls, None)
    B, m, N = pred.num_graphs, pred.max_edges, pred.num_nodes
    counts = hulls.num_hyperedges
    t_graph = torch.arange(B).repeat_interleave(counts)
    cost_pad, reduced = dense_cost_terms(
        pred.incidence_logit, pred.existence_logit, *pred.incidence_index,
        count_values(pred.batch, B).double() + 1, *hulls.hyperedge_index,
        t_graph, B, m, N, int(counts.sum()))
    torch.testing.assert_close(cost_pad, ctx['cost_pad'], rtol=0,
                               atol=1e-12)
    torch.testing.assert_close(reduced, ctx['reduced'], rtol=0, atol=1e-12)
    # the loss of an assignment, per graph and reduced
    cols = torch.randint(0, m, (int(counts.sum()), ))
    loss = MatchedIncidenceLoss(reduction='none')
    for reduction in ('none', 'mean', 'sum'):
        loss.reduction = reduction
        want = loss._finish(ctx, ctx['reduced'][torch.arange(len(cols)),
                                                cols])
        got = matched_loss(cost_pad, reduced, cols, t_graph, B, m,
                           reduction)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_a_compiled_loss_equals_the_eager_one(hulls):
    """MatchedIncidenceLoss.compile (what fit calls on CUDA): the same
    values, assignments and gradients as eager, through forward and
    over_steps; the sparse matching stays eager."""
    import torch._dynamo as dynamo
    out = {}
    for compiled in (False, True):
        model, _ = _prediction(hulls)
        state = model.init_state(hulls.x.double(), hulls.batch,
                                 hulls.num_graphs)
        state, preds = model.run(state, 2, return_all=True)
        loss = MatchedIncidenceLoss()
        if compiled:
            dynamo.reset()
            assert loss.compile() is None
            calls = []
            loss._compiled = tuple(
                (lambda f, k: lambda *a: calls.append(k) or f(*a))(f, k)
                for k, f in enumerate(loss._compiled))
        value, assignment = loss(preds[-1], hulls, return_assignment=True)
        mean, host_value = loss.over_steps(preds, hulls)
        grads = torch.autograd.grad(mean + value, list(model.parameters()),
                                    allow_unused=True)
        out[compiled] = value, assignment, mean, host_value, grads
    dynamo.reset()
    # forward's costs, over_steps' two predictions' costs and losses
    assert sorted(calls) == [0, 0, 0, 1, 1]
    (v0, a0, m0, h0, g0), (v1, a1, m1, h1, g1) = out[False], out[True]
    torch.testing.assert_close(v1, v0, rtol=1e-10, atol=0)
    assert torch.equal(a1, a0)
    torch.testing.assert_close(m1, m0, rtol=1e-10, atol=0)
    assert h1 == pytest.approx(h0, rel=1e-12)
    for a, b in zip(g1, g0):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    sparse = MatchedIncidenceLoss(matching='sparse')
    sparse.compile()
    assert sparse._prepare(preds[-1], hulls, None)["sparse"]
