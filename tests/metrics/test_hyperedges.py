import pytest
import torch

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.metrics import (
    candidate_coverage,
    evaluate_hyperedges,
    hyperedge_f1,
    hyperedge_sets,
)
from torch_geometric_hyper.metrics.hyperedges import CONVENTIONS
from torch_geometric_hyper.nn import HypergraphPrediction
from torch_geometric.data import Batch

A, B, C, X, Y = (0, 1, 2), (1, 2, 3), (0, 2, 3), (0, 1, 3), (1, 3, 4)


def counts(res):
    return tuple(int(res[k].item()) for k in ('tp', 'fp', 'fn'))


def test_issue_example_three_conventions():
    # predicted A, A, X, X against targets A, B
    pred, target = [[A, A, X, X]], [[A, B]]
    strict = hyperedge_f1(pred, target, 'strict')
    ref = hyperedge_f1(pred, target, 'reference')
    unique = hyperedge_f1(pred, target, 'unique')
    assert counts(strict) == (1, 3, 1)
    assert counts(ref) == (1, 2, 1)
    assert counts(unique) == (1, 1, 1)
    assert strict['f1'].item() == pytest.approx(1 / 3)
    assert ref['f1'].item() == pytest.approx(0.4)
    assert unique['f1'].item() == pytest.approx(0.5)


def test_duplicates_of_right_and_wrong_hyperedges():
    # copies of a right hyperedge are free in the reference count ...
    ref = hyperedge_f1([[A, A, A, B]], [[A, B]], 'reference')
    assert counts(ref) == (2, 0, 0) and ref['f1'].item() == 1.0
    strict = hyperedge_f1([[A, A, A, B]], [[A, B]], 'strict')
    assert counts(strict) == (2, 2, 0)
    assert strict['f1'].item() == pytest.approx(2 / 3)
    # ... copies of a wrong one count once each
    ref = hyperedge_f1([[A, X, X, X]], [[A, B]], 'reference')
    assert counts(ref) == (1, 3, 1)
    assert ref['f1'].item() == pytest.approx(1 / 3)
    assert ref['precision'].item() == pytest.approx(1 / 4)
    assert ref['recall'].item() == pytest.approx(1 / 2)
    unique = hyperedge_f1([[A, X, X, X]], [[A, B]], 'unique')
    assert counts(unique) == (1, 1, 1)


def test_empty_sets_follow_each_convention():
    # no prediction at all: every convention gives 0 for a non-empty target
    for conv in CONVENTIONS:
        res = hyperedge_f1([[]], [[A, B]], conv)
        assert counts(res) == (0, 0, 2)
        assert res['f1'].item() == 0.0 and res['recall'].item() == 0.0
    # nothing to find, nothing predicted: the reference's epsilon gives 0
    ref = hyperedge_f1([[]], [[]], 'reference')
    assert (ref['f1'].item(), ref['precision'].item(),
            ref['recall'].item()) == (0.0, 0.0, 0.0)
    strict = hyperedge_f1([[]], [[]], 'strict')
    assert strict['f1'].item() == 1.0
    # predictions but no target
    ref = hyperedge_f1([[A]], [[]], 'reference')
    assert counts(ref) == (0, 1, 0) and ref['f1'].item() == 0.0
    assert ref['recall'].item() == 0.0


def test_per_graph_then_mean_and_errors():
    res = hyperedge_f1([[A], [X, X]], [[A], [B]], 'reference')
    assert res['f1'].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match='graphs'):
        hyperedge_f1([[]], [])
    with pytest.raises(ValueError, match="'convention' must be one of"):
        hyperedge_f1([[]], [[]], 'set')


def test_hyperedge_sets_local_ids():
    index = torch.tensor([[4, 3, 0, 1], [1, 1, 0, 0]])
    sets = hyperedge_sets(index, torch.tensor([0, 1]), torch.tensor([0, 3, 5]),
                          2)
    assert sets == [[(0, 1)], [(0, 1)]]


def dense_prediction(inc, exist):
    """A HypergraphPrediction over all pairs from [m, n] probabilities."""
    m, n = inc.shape
    slot, node = torch.meshgrid(torch.arange(m), torch.arange(n),
                                indexing='ij')
    return HypergraphPrediction(torch.logit(inc).flatten(),
                                torch.logit(exist), torch.stack(
                                    [node.flatten(), slot.flatten()]),
                                torch.zeros(n, dtype=torch.long), 1, m)


def test_more_targets_than_slots():
    # two slots, both exact, but three target facets: tp 2, fn 1
    n = 5
    inc = torch.full((2, n), 0.1)
    inc[0, list(A)] = 0.9
    inc[1, list(B)] = 0.9
    pred = dense_prediction(inc, torch.tensor([0.9, 0.9]))
    target = HypergraphData(
        x=torch.zeros(n, 1), hyperedge_index=torch.tensor(
            [[*A, *B, *Y], [0, 0, 0, 1, 1, 1, 2, 2, 2]]))
    res = evaluate_hyperedges(pred, target, edge_size=3)
    assert counts(res) == (2, 0, 1)
    assert res['f1_reference'].item() == pytest.approx(2 / 2.5)
    assert res['f1'].item() == pytest.approx(2 / 2.5)


def reference_counts(pred_inc, pred_exist, gt_inc, gt_exist, d):
    """The reference code's count, re-derived on padded dense tensors:
    [B, m, n] incidences, [B, m] existences, d nodes per hyperedge."""
    pm, gm = pred_exist > 0.5, gt_exist > 0.5
    p = pred_inc.topk(d, dim=2).indices.sort(dim=2).values
    g = gt_inc.topk(d, dim=2).indices.sort(dim=2).values
    eq = (p.unsqueeze(2) == g.unsqueeze(1)).all(3)
    eq = eq & pm.unsqueeze(2) & gm.unsqueeze(1)  # [B, m_pred, m_gt]
    tp = eq.any(1).sum(1)
    fp = (pm & ~eq.any(2)).sum(1)
    fn = (gm & ~eq.any(1)).sum(1)
    return tp, fp, fn, tp / (tp + 0.5 * (fp + fn) + 1e-8)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reference_count_equals_dense_reference(seed):
    # Random predictions that repeat right and wrong facets, scored by
    # evaluate_hyperedges and by the reference's dense count.
    gen = torch.Generator().manual_seed(seed)
    n, m, num_graphs = 7, 8, 6
    preds, datas, dense_p, dense_e, dense_g, exist_g = [], [], [], [], [], []
    pool = [tuple(sorted(torch.randperm(n, generator=gen)[:3].tolist()))
            for _ in range(5)]
    for _ in range(num_graphs):
        k = int(torch.randint(0, 5, (1, ), generator=gen))
        facets = sorted(set(pool[:k]))
        inc = torch.rand(m, n, generator=gen) * 0.3
        for j in range(m):
            e = pool[int(torch.randint(0, len(pool), (1, ), generator=gen))]
            inc[j, list(e)] = 0.6 + 0.3 * torch.rand(3, generator=gen)
        exist = torch.rand(m, generator=gen)
        # slots 0 and 1 repeat a facet that is never a target (k < 5)
        for j in (0, 1):
            inc[j] = torch.rand(n, generator=gen) * 0.3
            inc[j, list(pool[4])] = 0.8
        exist[:2] = 0.9
        preds.append(dense_prediction(inc, exist))
        gt = torch.zeros(m, n)
        for j, e in enumerate(facets):
            gt[j, list(e)] = 1.0
        ge = torch.zeros(m)
        ge[:len(facets)] = 1.0
        index = [[i for e in facets for i in e],
                 [j for j, e in enumerate(facets) for _ in e]]
        datas.append(HypergraphData(x=torch.zeros(n, 1),
                                    hyperedge_index=torch.tensor(
                                        index, dtype=torch.long).view(2, -1),
                                    num_hyperedges=len(facets)))
        dense_p.append(inc)
        dense_e.append(exist)
        dense_g.append(gt)
        exist_g.append(ge)
    batch = Batch.from_data_list(datas)
    pred = HypergraphPrediction(
        torch.cat([p.incidence_logit for p in preds]),
        torch.cat([p.existence_logit for p in preds]),
        torch.cat([p.incidence_index + torch.tensor([[g * n], [g * m]])
                   for g, p in enumerate(preds)], dim=1),
        batch.batch, num_graphs, m)
    res = evaluate_hyperedges(pred, batch, edge_size=3)
    tp, fp, fn, f1 = reference_counts(torch.stack(dense_p),
                                      torch.stack(dense_e),
                                      torch.stack(dense_g),
                                      torch.stack(exist_g), 3)
    ref = hyperedge_f1(
        hyperedge_sets(*pred.to_hyperedge_index(edge_size=3), batch.ptr,
                       num_graphs),
        hyperedge_sets(batch.hyperedge_index,
                       torch.arange(num_graphs).repeat_interleave(
                           batch.num_hyperedges), batch.ptr, num_graphs),
        'reference')
    assert ref['tp'].tolist() == tp.tolist()
    assert ref['fp'].tolist() == fp.tolist()
    assert ref['fn'].tolist() == fn.tolist()
    assert torch.allclose(res['f1_reference'], f1.double(), atol=1e-7)
    # the sample holds duplicated wrong facets, where the conventions part
    assert bool((res['f1_unique'] != res['f1_reference']).any())
    has_target = batch.num_hyperedges > 0
    assert bool((res['f1'] <= res['f1_reference'] + 1e-12)[has_target].all())
    # the collapsed count is the strict F1 of the prediction decoded
    # without copies (to_hyperedge_index(unique=True))
    targets = hyperedge_sets(batch.hyperedge_index,
                             torch.arange(num_graphs).repeat_interleave(
                                 batch.num_hyperedges), batch.ptr, num_graphs)
    dedup = hyperedge_sets(*pred.to_hyperedge_index(edge_size=3,
                                                    unique=True),
                           batch.ptr, num_graphs)
    assert all(len(p) == len(set(p)) for p in dedup)
    assert torch.equal(hyperedge_f1(dedup, targets, 'strict')['f1'],
                       res['f1_unique'])
    assert bool((res['duplicates'] > 0).any())


def _candidate_prediction(pairs, batch, num_graphs, m):
    index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    return HypergraphPrediction(torch.zeros(index.size(1)),
                                torch.zeros(num_graphs * m), index,
                                torch.tensor(batch), num_graphs, m)


def test_candidate_coverage_by_hand():
    # graph 0: nodes 0-4, slots 0-1; graph 1: nodes 5-8, slots 2-3
    pairs = [(0, 0), (1, 0), (2, 0),   # slot 0 holds {0, 1, 2}
             (2, 1), (3, 1),           # slot 1 holds {2, 3}
             (5, 2), (6, 2), (7, 3), (8, 3)]
    pred = _candidate_prediction(pairs, [0] * 5 + [1] * 4, 2, 2)
    target = Batch.from_data_list([
        HypergraphData(x=torch.zeros(5, 1), hyperedge_index=torch.tensor(
            [[0, 1, 2, 2, 3, 4], [0, 0, 0, 1, 1, 1]])),   # {0,1,2} yes
        HypergraphData(x=torch.zeros(4, 1), hyperedge_index=torch.tensor(
            [[0, 1, 2, 3, 0, 2], [0, 0, 1, 1, 2, 2]]))])  # {5,6} {7,8} no
    cov = candidate_coverage(pred, target)
    assert cov.dtype == torch.float64
    assert cov.tolist() == pytest.approx([0.5, 2 / 3])
    # every pair a candidate: everything covered; no targets: 1
    full = [(i, s) for i in range(5) for s in (0, 1)] + \
        [(i, s) for i in range(5, 9) for s in (2, 3)]
    assert candidate_coverage(_candidate_prediction(
        full, [0] * 5 + [1] * 4, 2, 2), target).tolist() == [1.0, 1.0]
    empty = Batch.from_data_list([
        HypergraphData(x=torch.zeros(5, 1),
                       hyperedge_index=torch.zeros(2, 0, dtype=torch.long)),
        target[1]])
    assert candidate_coverage(pred, empty).tolist() == pytest.approx(
        [1.0, 2 / 3])
    with pytest.raises(ValueError, match='graphs'):
        candidate_coverage(pred, target[0])


@pytest.mark.parametrize('seed', [0, 1])
def test_candidate_coverage_against_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    sizes, m, K = [7, 9, 6], 5, 3
    data, pairs, batch, lo = [], [], [], 0
    for b, n in enumerate(sizes):
        edges = [torch.randperm(n, generator=g)[:3] for _ in range(4)]
        data.append(HypergraphData(x=torch.zeros(n, 1), hyperedge_index=(
            torch.stack([torch.cat(edges),
                         torch.arange(4).repeat_interleave(3)]))))
        for s in range(m):
            for i in torch.randperm(n, generator=g)[:K].tolist():
                pairs.append((lo + i, b * m + s))
        batch += [b] * n
        lo += n
    target = Batch.from_data_list(data)
    pred = _candidate_prediction(pairs, batch, len(sizes), m)
    slots = {}
    for i, s in pairs:
        slots.setdefault(s, set()).add(i)
    expect, lo = [], 0
    for b, d in enumerate(data):
        hits = 0
        for q in range(4):
            members = {lo + int(i) for i in
                       d.hyperedge_index[0][d.hyperedge_index[1] == q]}
            hits += any(members <= slots.get(b * m + s, set())
                        for s in range(m))
        expect.append(hits / 4)
        lo += d.num_nodes
    assert candidate_coverage(pred, target).tolist() == pytest.approx(expect)
