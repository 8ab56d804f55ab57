import warnings

import pytest
import torch

from tests.conftest import DEVICES, make_batch
from tests.nn.helpers import check_graph_alone_equals_graph_in_mixed_batch
from torch_geometric_hyper.nn import HypergraphRefiner, MatchedIncidenceLoss
from torch_geometric_hyper.nn.candidates import carry_incidence, take_source
from torch_geometric_hyper.nn.kernels import CandidateIncidence
from torch_geometric_hyper.testing import assert_node_permutation_equivariant
from torch_geometric_hyper.train import BackpropWithSkips


def model(k, m=5, d=16, T=3, seed=0):
    torch.manual_seed(seed)
    return HypergraphRefiner(3, d, m, num_iterations=T,
                             num_candidates=k).double()


def test_k_at_least_n_equals_all_pairs():
    x, batch = make_batch([4, 6])
    x = x.double()
    slots = torch.randn(10, 16, dtype=torch.double)
    with pytest.warns(UserWarning, match='every pair is a candidate'):
        sparse = model(6)(x, batch, 2, slots=slots)
    dense = model(None)(x, batch, 2, slots=slots)
    assert torch.equal(sparse.incidence_index, dense.incidence_index)
    assert torch.allclose(sparse.incidence_logit, dense.incidence_logit)
    assert torch.allclose(sparse.existence_logit, dense.existence_logit)


def test_candidates_per_slot_and_refresh():
    x, batch = make_batch([12, 20, 3])
    ref = model(4, m=6, T=4)
    state = ref.init_state(x.double(), batch, 3)
    for _ in range(4):
        state = ref.step(state)
        node, slot = state.candidates.index
        count = torch.bincount(slot, minlength=18)
        # min(K, n_g) distinct nodes per slot, all of the slot's graph
        assert count.tolist() == [4] * 12 + [3] * 6
        assert torch.equal(batch[node], slot // 6)
        key = node * 18 + slot
        assert torch.unique(key).numel() == key.numel()
    # the refresh keeps each slot's most likely node
    logit = state.incidence_logit
    best = {}
    for k, (i, j) in enumerate(state.candidates.index.t().tolist()):
        if j not in best or logit[k] > logit[best[j]]:
            best[j] = k
    new = state.search.refresh(state.candidates, logit)
    kept = set(map(tuple, new.index.t().tolist()))
    for j, k in best.items():
        assert (int(state.candidates.node[k]), j) in kept


def test_node_permutation_equivariance():
    x, batch = make_batch([9, 14, 11])
    assert_node_permutation_equivariant(model(4, T=4), x.double(), batch, 3,
                                        atol=1e-10)


def test_graph_alone_equals_graph_in_mixed_batch():
    with warnings.catch_warnings():  # the 2-node graph is below K
        warnings.simplefilter('ignore')
        check_graph_alone_equals_graph_in_mixed_batch(model(3))


def test_gradients_and_backprop_with_skips():
    x, batch = make_batch([15, 25])
    from torch_geometric_hyper.data import HypergraphData
    data = HypergraphData(x=x.double(), hyperedge_index=torch.tensor(
        [[0, 1, 2, 15, 16, 17], [0, 0, 0, 1, 1, 1]]))
    data.batch, data.num_graphs = batch, 2
    data.num_hyperedges = torch.tensor([1, 1])
    ref = model(5, m=4, T=6)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    trainer = BackpropWithSkips(6, 2, 2, seed=0)
    before = [p.detach().clone() for p in ref.parameters()]
    for _ in range(3):
        stats = trainer(ref, opt, MatchedIncidenceLoss(), data)
        assert torch.isfinite(torch.tensor(stats['loss']))
    # every parameter learns except the slot distribution, which the
    # detached state of backprop with skips cuts off (as with all pairs)
    for (name, p), b in zip(ref.named_parameters(), before):
        assert torch.equal(p, b) == name.startswith('slot_'), name


def test_cost_is_linear_in_set_size():
    # one set of 3,000 nodes with m = 2n - 4 slots: K pairs per slot only
    n, k = 3000, 8
    x = torch.randn(n, 3)
    ref = HypergraphRefiner(3, 8, 2 * n - 4, num_iterations=2,
                            num_candidates=k)
    with torch.no_grad():
        pred = ref(x)
    assert pred.incidence_index.size(1) == (2 * n - 4) * k  # not n * m


def test_bad_k_and_carry():
    with pytest.raises(ValueError, match="'num_candidates' must be a "
                                         "positive integer"):
        HypergraphRefiner(3, 8, 4, num_candidates=0)
    old = CandidateIncidence.build(torch.tensor([[0, 1, 2], [0, 0, 1]]), 3,
                                   2)
    new = CandidateIncidence.build(torch.tensor([[1, 2, 0], [0, 0, 1]]), 3,
                                   2)
    values = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    out = carry_incidence(old, values, new)
    # new pairs node-major: (0,1) new, (1,0) kept 0.2, (2,0) new
    assert out.tolist() == pytest.approx([0.0, 0.2, 0.0])
    out.sum().backward()
    assert values.grad.tolist() == [0.0, 1.0, 0.0]


def test_sparse_decoding_equals_dense_decoding():
    # decoding K candidates per slot by sorting the pairs gives the top
    # members the dense top-k gives on the same (zero-padded) logits
    x, batch = make_batch([10, 13])
    torch.manual_seed(1)
    pred = model(4, m=6, T=2)(x.double(), batch, 2)
    index, edge_batch = pred.to_hyperedge_index(edge_size=3,
                                                existence_threshold=0.0)
    from torch_geometric_hyper.nn import HypergraphPrediction
    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    # the same logits on all pairs, non-candidates far below
    full = CandidateIncidence.complete(batch, 2, 6)
    logit = torch.full((full.nnz, ), -1e4, dtype=torch.double)
    key = full.index[0] * 12 + full.index[1]
    pos = torch.searchsorted(key, pred.incidence_index[0] * 12 +
                             pred.incidence_index[1])
    logit[pos] = pred.incidence_logit
    dense = HypergraphPrediction(logit, pred.existence_logit, full.index,
                                 batch, 2, 6)
    index2, edge_batch2 = dense.to_hyperedge_index(edge_size=3,
                                                   existence_threshold=0.0)
    assert torch.equal(index, index2) and torch.equal(edge_batch,
                                                      edge_batch2)


@pytest.mark.parametrize('device', DEVICES)
def test_refresh_source_carries_what_carry_incidence_carries(device):
    x, batch = make_batch([12, 20, 3, 9])
    ref = model(4, m=6, T=5).to(device)
    state = ref.init_state(x.double().to(device), batch.to(device), 4)
    for _ in range(4):
        state = ref.step(state)
        logit = state.incidence_logit
        plain = state.search.refresh(state.candidates, logit)
        new, source = state.search.refresh(state.candidates, logit,
                                           return_source=True)
        assert torch.equal(new.index, plain.index)
        assert torch.equal(new.slot_perm, plain.slot_perm)
        values = torch.rand(state.candidates.nnz, dtype=torch.double,
                            device=device, requires_grad=True)
        carried = take_source(values, source)
        expected = carry_incidence(state.candidates, values, new)
        assert torch.equal(carried, expected)
        # each source names the same (node, slot) pair, or none
        hit = source >= 0
        assert torch.equal(state.candidates.index[:, source[hit]],
                           new.index[:, hit])
        assert 0 < int(hit.sum()) < new.nnz  # some kept, some new
        g1, = torch.autograd.grad(carried.square().sum(), values)
        g2, = torch.autograd.grad(expected.square().sum(), values)
        assert torch.equal(g1, g2)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64,
                                   torch.bfloat16, torch.int64])
def test_row_argsort_is_torchs_stable_argsort(dtype):
    from torch_geometric_hyper.nn.candidates import _row_argsort
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(40, 9, generator=gen) * 2).round().to(dtype)  # ties
    x[3, 2] = float('-inf') if dtype.is_floating_point else -10
    for descending in (False, True):
        assert torch.equal(_row_argsort(x, descending),
                           torch.argsort(x, dim=1, descending=descending,
                                         stable=True))


def test_first_unique_in_range_equals_the_sorting_version():
    # the table deduplication the refresh uses on small sets gives the
    # mask and sources of the sort-based one, padding (-1) included
    from torch_geometric_hyper.nn.candidates import (
        _first_unique_in_range,
        _first_unique_with_source,
    )
    gen = torch.Generator().manual_seed(2)
    R, L, n = 50, 23, 9
    lo = torch.randint(0, 100, (R, ), generator=gen)
    values = lo[:, None] + torch.randint(0, n, (R, L), generator=gen)
    values[torch.rand(R, L, generator=gen) < 0.2] = -1
    source = torch.randint(-1, 500, (R, L), generator=gen)
    mask, best = _first_unique_in_range(values, source, lo, n)
    mask_ref, best_ref = _first_unique_with_source(values, source)
    assert torch.equal(mask, mask_ref) and torch.equal(best, best_ref)
    empty = values[:0]
    assert _first_unique_in_range(empty, source[:0], lo[:0], n)[0].numel() \
        == 0


def refresh_both_ways(sizes, patch, device='cpu', steps=3):
    """For ``steps`` refinement steps of a K=6 refiner on sets of
    ``sizes``: the refresh of the step's candidates by the rounded logits
    (ties too) done twice, the second time under ``patch(mp, search)``
    (a monkeypatch context); yields both results."""
    x, batch = make_batch(sizes)
    ref = model(6, m=7, T=4).to(device)
    state = ref.init_state(x.double().to(device), batch.to(device),
                           len(sizes))
    for _ in range(steps):
        state = ref.step(state)
        search, cand = state.search, state.candidates
        logit = state.incidence_logit.detach().round()
        out = [search.refresh(cand, logit, return_source=True)]
        with pytest.MonkeyPatch.context() as mp:
            patch(mp, search)
            out.append(search.refresh(cand, logit, return_source=True))
        for a, b in zip(out[0][0], out[1][0]):
            assert torch.equal(a, b) if torch.is_tensor(a) else a == b
        assert torch.equal(out[0][1], out[1][1])
        yield cand, out[1][0]


@pytest.mark.parametrize('device', DEVICES)
def test_refresh_is_the_same_through_table_and_sort(device):
    # small sets deduplicate through a table, large ones by sorting; force
    # each path on the same batch (mixed sizes, some below K: padded
    # slots) and compare
    # (the largest set, 20 nodes, is below the wish lists' length: the
    # table is the default; a huge max_size forces the sort)
    for _ in refresh_both_ways(
            [12, 20, 3, 9],
            lambda mp, search: mp.setattr(search, 'max_size', 10 ** 6),
            device):
        pass


def test_sets_of_one_size_take_blocks_with_the_sparse_result(monkeypatch):
    # K=3 of 6 nodes in three sets of one size: the candidates take the
    # dense per-graph products (CandidateIncidence.with_blocks) at the
    # start and after every refresh, with the logits and parameter
    # gradients of the sparse products
    from torch_geometric_hyper.nn.kernels import sparse as F
    x, batch = make_batch([6, 6, 6])
    x = x.double()
    calls = []
    real = F._block_matmul
    monkeypatch.setattr(F, '_block_matmul',
                        lambda *a: calls.append(1) or real(*a))
    outs, grads = [], []
    for blocks in (True, False):
        if not blocks:
            monkeypatch.setattr(CandidateIncidence, 'with_blocks',
                                lambda self, *a, **k: self)
        net = model(3, m=4, T=4)
        n = len(calls)
        pred = net(x, batch, 3, generator=torch.Generator().manual_seed(1))
        # two products per step, T = 4 steps, three refreshes
        assert len(calls) - n == (8 if blocks else 0)
        loss = (pred.incidence_logit.sin().sum()
                + pred.existence_logit.cos().sum())
        grads.append(torch.autograd.grad(loss, net.parameters()))
        outs.append(pred)
    assert torch.equal(outs[0].incidence_index, outs[1].incidence_index)
    assert torch.allclose(outs[0].incidence_logit, outs[1].incidence_logit,
                          atol=1e-10)
    for g0, g1 in zip(*grads):
        assert torch.allclose(g0, g1, atol=1e-10)


def test_sets_of_mixed_size_keep_the_sparse_products(monkeypatch):
    from torch_geometric_hyper.nn.kernels import sparse as F
    x, batch = make_batch([6, 7, 6])
    calls = []
    real = F._block_matmul
    monkeypatch.setattr(F, '_block_matmul',
                        lambda *a: calls.append(1) or real(*a))
    model(3, m=4, T=3).float()(x, batch, 3)
    assert calls == []


@pytest.mark.parametrize('sizes', [[12, 20, 9], [12, 20, 3, 9]],
                         ids=['full', 'one_set_below_k'])
def test_refresh_without_a_sync_is_the_same(sizes):
    # off the host, when every slot holds K candidates, the kept positions
    # come from their ranks (no nonzero): the same candidates, sources and
    # layout as the host's nonzero path, step after step
    from torch_geometric_hyper.nn import candidates as C
    full = min(sizes) >= 6
    for cand, new in refresh_both_ways(
            sizes, lambda mp, search: mp.setattr(C, 'on_host',
                                                  lambda t: False)):
        assert (cand.nodes_per_slot == 6) == full
        assert new.nodes_per_slot == (6 if full else 0)


def test_kept_positions_by_rank_equal_nonzero():
    from torch_geometric_hyper.nn import candidates as C
    gen = torch.Generator().manual_seed(4)
    R, L, k = 9, 13, 4
    keep = torch.zeros(R, L, dtype=torch.bool)
    for r in range(R):
        keep[r, torch.randperm(L, generator=gen)[:k]] = True
    rank = torch.cumsum(keep.long(), dim=1)
    host, regular = C._kept_positions(keep, rank, R, k, True)
    assert regular and torch.equal(host, keep.view(-1).nonzero().view(-1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(C, 'on_host', lambda t: False)
        by_rank, regular = C._kept_positions(keep, rank, R, k, True)
        assert regular and torch.equal(by_rank, host)
        # not known to be regular: nonzero, and the count tells
        keep[0, keep[0].nonzero()[0]] = False
        sel, regular = C._kept_positions(keep, rank, R, k, False)
        assert not regular and sel.numel() == R * k - 1
