r"""Property-based tests of the public API: for random set sizes (0-200
nodes), feature counts, dtypes, batch layouts and incidences, every public
model, loss, metric and HypergraphData either returns finite results of the
documented shape or raises a documented exception (ValueError, TypeError).
Never an error from inside torch or scipy, never a hang."""
import pytest
import torch

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from torch_geometric_hyper.data import HypergraphData  # noqa: E402
from torch_geometric_hyper.metrics import (  # noqa: E402
    evaluate_hyperedges,
    partition_scores,
)
from torch_geometric_hyper.nn import (  # noqa: E402
    GraphRefiner,
    HypergraphRefiner,
    MatchedIncidenceLoss,
    Set2Graph,
    SetTransformer,
    SlotAttention,
)

DOCUMENTED = (ValueError, TypeError)
FUZZ = settings(max_examples=25, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
torch.set_num_threads(1)


@st.composite
def set_batches(draw, max_nodes=200):
    """(x, batch, num_graphs): random sizes (some graphs empty, i.e. gaps
    in the graph ids), features, dtypes, and sometimes a wrong num_graphs
    or an unsorted batch."""
    sizes = draw(st.lists(st.integers(0, 40), min_size=1, max_size=6))
    total = sum(sizes)
    if total > max_nodes:
        sizes = [max_nodes // len(sizes)] * len(sizes)
        total = sum(sizes)
    features = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64,
                                  torch.float16, torch.int64]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = (torch.randn(total, features, generator=gen) * 3).to(dtype)
    batch = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
    layout = draw(st.sampled_from(['sorted', 'sorted', 'unsorted',
                                   'num_graphs_small', 'num_graphs_large',
                                   'no_batch']))
    num_graphs = len(sizes)
    if layout == 'unsorted' and total > 1:
        batch = batch.flip(0)
    elif layout == 'num_graphs_small':
        num_graphs = max(0, len(sizes) - 1 - draw(st.integers(0, 2)))
    elif layout == 'num_graphs_large':
        num_graphs += draw(st.integers(1, 3))
    elif layout == 'no_batch':
        batch, num_graphs = None, None
    return x, batch, num_graphs


def models(features):
    return [
        HypergraphRefiner(features, 8, max_edges=5, num_iterations=2),
        GraphRefiner(features, 8, num_iterations=2, knn=4),
        SetTransformer(features, 8, max_edges=5),
        SlotAttention(features, 8, max_edges=5, num_iterations=2),
    ]


def check_finite(*tensors):
    for t in tensors:
        assert bool(torch.isfinite(t).all())


@FUZZ
@given(set_batches())
def test_models_finite_or_documented_error(args):
    x, batch, num_graphs = args
    torch.manual_seed(0)
    for model in models(x.size(1)):
        try:
            pred = model(x, batch, num_graphs)
        except DOCUMENTED as err:
            event(f'{type(model).__name__}: {type(err).__name__}')
            continue
        event(f'{type(model).__name__}: ok')
        B = 1 if num_graphs is None else num_graphs
        if hasattr(pred, 'existence_logit'):
            assert pred.existence_logit.shape == (B * model.max_edges, )
            check_finite(pred.incidence_logit, pred.existence_logit)
        else:
            check_finite(pred.adjacency)
        assert pred.num_graphs == B


@FUZZ
@given(set_batches(max_nodes=60))
def test_set2graph_finite_or_documented_error(args):
    x, batch, num_graphs = args
    torch.manual_seed(0)
    model = Set2Graph(x.size(1), 8, k=2, tuple_channels=8)
    try:
        pred = model(x, batch, num_graphs)
    except DOCUMENTED as err:
        event(f'Set2Graph: {type(err).__name__}')
        return
    event('Set2Graph: ok')
    check_finite(pred.logit)


@st.composite
def incidences(draw):
    """A random (possibly invalid) incidence over n nodes."""
    n = draw(st.integers(0, 12))
    nnz = draw(st.integers(0, 20))
    lo = draw(st.sampled_from([0, 0, 0, -1]))
    node = draw(st.lists(st.integers(lo, max(n, 1)), min_size=nnz,
                         max_size=nnz))
    edge = draw(st.lists(st.integers(lo, 6), min_size=nnz, max_size=nnz))
    num_edges = draw(st.one_of(st.none(), st.integers(-1, 8)))
    dtype = draw(st.sampled_from([torch.long, torch.int32, torch.float32]))
    return n, torch.tensor([node, edge], dtype=dtype).view(2, -1), num_edges


@FUZZ
@given(incidences())
def test_hypergraph_data_valid_or_documented_error(args):
    n, index, num_edges = args
    try:
        data = HypergraphData(x=torch.randn(n, 2), hyperedge_index=index,
                              num_hyperedges=num_edges)
    except DOCUMENTED as err:
        event(f'HypergraphData: {type(err).__name__}')
        return
    event('HypergraphData: ok')
    inc = data.to_dense_incidence()
    assert inc.shape == (data.num_hyperedges, n)
    assert int(inc.sum()) == index.size(1)
    back = HypergraphData.from_pyg(data.to_pyg())
    assert torch.equal(back.to_dense_incidence(), inc)


@FUZZ
@given(set_batches(max_nodes=60), incidences(), st.integers(1, 6))
def test_loss_and_metrics_finite_or_documented_error(args, target, m):
    x, batch, num_graphs = args
    n_t, index, num_edges = target
    torch.manual_seed(0)
    x = x.float()
    model = HypergraphRefiner(x.size(1), 8, max_edges=m, num_iterations=1)
    try:
        pred = model(x, batch, num_graphs)
    except DOCUMENTED:
        return
    try:
        data = HypergraphData(x=torch.randn(x.size(0), 2),
                              hyperedge_index=index,
                              num_hyperedges=num_edges)
    except DOCUMENTED:
        return
    try:
        loss = MatchedIncidenceLoss()(pred, data.hyperedge_index,
                                      data.num_hyperedges
                                      if pred.num_graphs == 1 else None)
        check_finite(loss)
        assert loss.dim() == 0
        event('loss: ok')
    except DOCUMENTED as err:
        event(f'loss: {type(err).__name__}')
    if pred.num_graphs == 1:
        try:
            res = evaluate_hyperedges(pred, data, edge_size=2)
        except DOCUMENTED:
            return
        for key in ('f1', 'f1_reference', 'precision', 'recall'):
            assert res[key].shape == (1, )
            assert 0.0 <= float(res[key]) <= 1.0


@FUZZ
@given(st.lists(st.integers(0, 4), min_size=0, max_size=30),
       st.integers(0, 2**16))
def test_partition_scores_in_range(labels, seed):
    gen = torch.Generator().manual_seed(seed)
    true = torch.tensor(labels, dtype=torch.long)
    pred = torch.randint(0, 3, true.shape, generator=gen)
    batch = torch.sort(torch.randint(0, 3, true.shape, generator=gen)).values
    try:
        out = partition_scores(pred, true, batch, 3)
    except DOCUMENTED:
        return
    for v in out.values():
        assert v.shape == (3, )
        check_finite(v)
        assert bool(((v >= -1) & (v <= 1)).all())
