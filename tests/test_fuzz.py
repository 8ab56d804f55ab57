r"""Property-based tests of the public API: for random set sizes (0-200
nodes), feature counts, dtypes, batch layouts and incidences, every public
model, loss, metric and HypergraphData either returns finite results of the
documented shape or raises a documented exception (ValueError, TypeError).
Never an error from inside torch or scipy, never a hang.

Every size, count, seed and id argument of the datasets, of
HypergraphData and of delaunay_edge_index, spelled as an int, an integral
float (Python or NumPy), a bool, a string or a fractional float: the
integral floats behave as the int (the same cache file, the same data),
the others raise a ValueError naming the argument."""
import numpy as np
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


# -- argument spellings ------------------------------------------------------
SPELL = settings(max_examples=4, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow,
                                        HealthCheck.function_scoped_fixture])
INTEGRAL = ('int', 'float', 'numpy')


@st.composite
def spellings(draw, n):
    """``[(kind, value)]``: ``n`` as an int and as integral floats (Python,
    NumPy), and spellings to refuse: a bool, a string, a fraction."""
    return [('int', n), ('float', float(n)),
            ('numpy', draw(st.sampled_from([np.float64, np.float32]))(n)),
            ('bool', draw(st.booleans())),
            ('str', draw(st.sampled_from([str(n), f'{n}.0']))),
            ('fraction', n + draw(st.floats(0.05, 0.95)))]


def refused(name, build):
    with pytest.raises(ValueError, match=f"'{name}"):
        build()


@st.composite
def dataset_arguments(draw, cls):
    """The int arguments of a tiny ``cls`` (a range of set sizes when
    ``pair``)."""
    args = dict(num_samples=draw(st.integers(1, 2)),
                seed=draw(st.integers(0, 2)))
    low = 3
    if cls.__name__ == 'ConvexHull':
        args['dim'] = draw(st.integers(2, 3))
        low = args['dim'] + 1
    lo = draw(st.integers(low, low + 2))
    args['num_points'] = (lo, lo + draw(st.integers(0, 2)))
    return args


def _datasets():
    from torch_geometric_hyper.datasets import ConvexHull, Delaunay
    return [(cls, key) for cls in (ConvexHull, Delaunay)
            for key in ('num_points', 'num_points[0]', 'num_points[1]',
                        'num_samples', 'seed') + (
                            ('dim', ) if cls is ConvexHull else ())]


@pytest.mark.parametrize('cls, key', _datasets())
def test_dataset_counts_spelled(tmp_path, cls, key):
    def build(root, kwargs):
        return cls(str(tmp_path / root), 'val', log=False, **kwargs)

    @SPELL
    @given(dataset_arguments(cls), st.data())
    def check(args, data):
        lo, hi = args['num_points']
        if key == 'num_points':  # one size
            args['num_points'] = lo
        expect = build('int', args)
        n = lo if key == 'num_points' else args['num_points'][
            int(key[-2])] if '[' in key else args[key]
        for kind, value in data.draw(spellings(n)):
            if '[' in key:
                bent = list(args['num_points'])
                bent[int(key[-2])] = value
                value = tuple(bent)
            spelled_args = {**args, key.split('[')[0]: value}
            if kind not in INTEGRAL:
                refused(key.split('[')[0],
                        lambda: build('x', spelled_args))
                continue
            got = build('spelled', spelled_args)
            assert got.processed_file_names == expect.processed_file_names
            assert len(got) == len(expect)
            for a, b in zip(expect, got):
                assert torch.equal(a.x, b.x)
                for attr in ('edge_index', 'hyperedge_index'):
                    if attr in a:
                        assert torch.equal(a[attr], b[attr])

    check()


@SPELL
@given(st.integers(0, 6), st.integers(0, 4), st.data())
@pytest.mark.parametrize('key', ['num_hyperedges', 'num_nodes'])
def test_hypergraph_data_counts_spelled(key, n, extra, data):
    from torch_geometric_hyper.data import unique_hyperedges
    m = min(n, 3)
    index = torch.stack([torch.arange(m), torch.arange(m)])
    args = dict(hyperedge_index=index, num_hyperedges=m + extra)
    if key == 'num_hyperedges':
        args['x'] = torch.randn(n, 2)
    else:
        args['num_nodes'] = n
    expect = HypergraphData(**args)
    for kind, value in data.draw(spellings(args[key])):
        if kind not in INTEGRAL:
            refused(key, lambda: HypergraphData(**{**args, key: value}))
            if key == 'num_hyperedges':
                refused(key, lambda: unique_hyperedges(index, value))
            continue
        got = HypergraphData(**{**args, key: value})
        assert type(got.num_hyperedges) is int
        assert type(got.num_nodes) is int
        assert (got.num_hyperedges, got.num_nodes) == \
            (expect.num_hyperedges, expect.num_nodes)
        assert torch.equal(got.to_dense_incidence(),
                           expect.to_dense_incidence())
        if key == 'num_hyperedges':
            assert all(torch.equal(a, b) for a, b in zip(
                unique_hyperedges(index, value),
                unique_hyperedges(index, m + extra)))


@st.composite
def triangulations(draw):
    """``(triangles, n, flaw)``: random triangles over ``n`` nodes,
    sometimes with a repeated corner or an id outside ``[0, n)``."""
    n = draw(st.integers(3, 8))
    t = draw(st.integers(1, 4))
    tri = [draw(st.permutations(range(n)))[:3] for _ in range(t)]
    flaw = draw(st.sampled_from(['none', 'repeat', 'range']))
    if flaw == 'repeat':
        tri[0][2] = tri[0][0]
    elif flaw == 'range':
        tri[-1][1] = draw(st.sampled_from([-1, n, n + 3]))
    return np.asarray(tri, dtype=np.int64), n, flaw


@FUZZ
@given(triangulations(), st.data())
def test_delaunay_edge_index_spelled(case, data):
    from torch_geometric_hyper.datasets import delaunay_edge_index
    tri, n, flaw = case
    event(f'delaunay_edge_index: {flaw}')
    if flaw != 'none':
        return refused('triangles', lambda: delaunay_edge_index(tri, n))
    expect = delaunay_edge_index(tri, n)
    assert not bool((expect[0] == expect[1]).any())
    assert int(expect.min()) >= 0 and int(expect.max()) < n
    for kind, value in data.draw(spellings(n)):
        if kind not in INTEGRAL:
            refused('num_nodes', lambda: delaunay_edge_index(tri, value))
        else:
            assert torch.equal(delaunay_edge_index(tri, value), expect)
    # the ids as an array of integral floats, or with one fractional id
    assert torch.equal(delaunay_edge_index(tri.astype(np.float64), n),
                       expect)
    bent = tri.astype(np.float64)
    bent[data.draw(st.integers(0, len(tri) - 1)), data.draw(
        st.integers(0, 2))] += data.draw(st.floats(0.05, 0.95))
    refused('triangles', lambda: delaunay_edge_index(bent, n))


@SPELL
@given(st.integers(0, 3), st.integers(0, 2), st.data())
@pytest.mark.parametrize('key', ['seed', 'member', 'step_size'])
def test_own_sets_counts_spelled(key, seed, member, data):
    from torch_geometric_hyper.datasets import (
        HypergraphSets,
        ParticlePartitioning,
    )
    if key == 'step_size':  # checked before the file is looked at
        for kind, value in data.draw(spellings(member + 1)):
            call = lambda: ParticlePartitioning.read_jets(  # noqa: E731
                '/no/such/file.root', step_size=value)
            if kind not in INTEGRAL:
                refused('step_size', call)
            else:
                with pytest.raises((ImportError, FileNotFoundError)):
                    call()  # uproot missing, or the file
        return
    rng = np.random.default_rng(0)
    sets = [(rng.random((3, 2)), [[member], [1, 2]]) for _ in range(10)]
    expect = HypergraphSets(sets, split='val', seed=seed)
    n = seed if key == 'seed' else member
    for kind, value in data.draw(spellings(n)):
        if key == 'seed':
            spelled_sets, spelled_seed = sets, value
        else:
            spelled_sets = [(x, [[value], [1, 2]]) for x, _ in sets]
            spelled_seed = seed
        build = lambda: HypergraphSets(  # noqa: E731
            spelled_sets, split='val', seed=spelled_seed)
        if kind not in INTEGRAL:
            with pytest.raises(ValueError, match="'seed'" if key == 'seed'
                               else 'hyperedge 0 must hold integer node'):
                build()
            continue
        got = build()
        assert got.indices_in_source == expect.indices_in_source
        assert torch.equal(got._data.hyperedge_index,
                           expect._data.hyperedge_index)
