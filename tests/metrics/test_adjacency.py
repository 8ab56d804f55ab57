import pytest
import torch
from torch_geometric.data import Data

from torch_geometric_hyper.metrics import (
    adjacency_confusion,
    adjacency_metrics,
    candidate_edge_f1,
    dense_adjacency_metrics,
    evaluate_adjacency,
)
from torch_geometric_hyper.nn import AdjacencyPrediction


def und(pairs):
    """Undirected edge_index (both directions) from a list of pairs."""
    e = torch.tensor(pairs, dtype=torch.long).t()
    return torch.cat([e, e.flip(0)], 1)


def test_hand_made_single_graph():
    # n = 4: 12 off-diagonal entries. Target {0-1, 1-2, 2-3}; prediction
    # {0-1, 1-2, 0-3}: tp = 4, fp = 2, fn = 2, tn = 4 entries.
    target = und([(0, 1), (1, 2), (2, 3)])
    pred = und([(0, 1), (1, 2), (0, 3)])
    batch = torch.zeros(4, dtype=torch.long)
    c = adjacency_confusion(pred, target, batch)
    assert [int(c[k]) for k in ('tp', 'fp', 'fn', 'tn')] == [4, 2, 2, 4]
    m = adjacency_metrics(pred, target, batch)
    assert m['accuracy'] == pytest.approx(8 / 12)
    assert m['precision'] == pytest.approx(2 / 3)
    assert m['recall'] == pytest.approx(2 / 3)
    assert m['f1'] == pytest.approx(2 / 3)
    # With the diagonal: 4 more true negatives out of 16.
    m = adjacency_metrics(pred, target, batch, include_diagonal=True)
    assert m['accuracy'] == pytest.approx(12 / 16)
    assert m['f1'] == pytest.approx(2 / 3)
    # One direction only, duplicates and self-loops change nothing.
    messy = torch.tensor([[0, 1, 3, 0, 2], [1, 2, 0, 1, 2]])
    assert adjacency_metrics(messy, target, batch) == \
        adjacency_metrics(pred, target, batch)


def test_dense_reference_matches():
    dense_t = torch.zeros(4, 4)
    for i, j in [(0, 1), (1, 2), (2, 3)]:
        dense_t[i, j] = dense_t[j, i] = 1
    dense_p = torch.full((4, 4), 0.2)
    for i, j in [(0, 1), (1, 2), (0, 3)]:
        dense_p[i, j] = dense_p[j, i] = 0.9
    dense_p.fill_diagonal_(0.99)  # the diagonal is ignored
    m = dense_adjacency_metrics(dense_p, dense_t)
    assert m == pytest.approx({'accuracy': 8 / 12, 'precision': 2 / 3,
                               'recall': 2 / 3, 'f1': 2 / 3})
    # Exactly 0.5 is not an edge.
    assert dense_adjacency_metrics(torch.full((3, 3), 0.5),
                                   torch.zeros(3, 3))['accuracy'] == 1.0
    with pytest.raises(ValueError, match='square'):
        dense_adjacency_metrics(torch.zeros(3, 4), torch.zeros(3, 4))


def test_random_sparse_equals_dense():
    gen = torch.Generator().manual_seed(0)
    sizes = [5, 8, 3]
    ptr = [0, 5, 13, 16]
    batch = torch.cat([torch.full((n, ), g) for g, n in enumerate(sizes)])
    preds, targets, dense = [], [], []
    for g, n in enumerate(sizes):
        p = torch.rand(n, n, generator=gen) > 0.6
        t = torch.rand(n, n, generator=gen) > 0.6
        p, t = p | p.t(), t | t.t()
        dense.append(dense_adjacency_metrics(p, t))
        preds.append(p.nonzero().t() + ptr[g])
        targets.append(t.nonzero().t() + ptr[g])
    per_graph = adjacency_metrics(torch.cat(preds, 1), torch.cat(targets, 1),
                                  batch, reduce=False)
    for g in range(3):
        for k, v in dense[g].items():
            assert float(per_graph[k][g]) == pytest.approx(v)
    avg = adjacency_metrics(torch.cat(preds, 1), torch.cat(targets, 1), batch)
    assert avg['f1'] == pytest.approx(sum(d['f1'] for d in dense) / 3)


def test_empty_conventions():
    batch = torch.zeros(3, dtype=torch.long)
    none = torch.zeros(2, 0, dtype=torch.long)
    m = adjacency_metrics(none, none, batch)
    assert m == {'accuracy': 1.0, 'precision': 1.0, 'recall': 1.0, 'f1': 1.0}
    m = adjacency_metrics(none, und([(0, 1)]), batch)
    assert m['precision'] == 0.0 and m['recall'] == 0.0 and m['f1'] == 0.0
    assert m['accuracy'] == pytest.approx(4 / 6)


def test_bad_input():
    batch = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match='joining two graphs'):
        adjacency_metrics(und([(1, 2)]), und([(0, 1)]), batch)
    with pytest.raises(ValueError, match='outside'):
        adjacency_metrics(und([(0, 7)]), und([(0, 1)]), batch)
    with pytest.raises(ValueError, match=r'\[2, num_edges\]'):
        adjacency_metrics(torch.tensor([0, 1]), und([(0, 1)]), batch)


def test_candidate_f1_and_evaluate():
    # One graph, n = 4, candidates {0-1, 0-2, 1-2} (not 2-3).
    pairs = torch.tensor([[0, 0, 1], [1, 2, 2]])
    logit = torch.tensor([3.0, 1.0, -2.0])  # predicts 0-1, 0-2
    pred = AdjacencyPrediction(logit, pairs, torch.zeros(4, dtype=torch.long),
                               1)
    target = und([(0, 1), (1, 2), (2, 3)])
    c = candidate_edge_f1(pred, target)
    # On candidates: tp = 1 (0-1), fp = 1 (0-2), fn = 1 (1-2).
    assert c['precision'] == pytest.approx(0.5)
    assert c['recall'] == pytest.approx(0.5)
    assert c['f1'] == pytest.approx(0.5)
    assert c['coverage'] == pytest.approx(2 / 3)
    out = evaluate_adjacency(pred, Data(edge_index=target, num_nodes=4))
    # Over all entries 2-3 is also missed: tp 2, fp 2, fn 4, tn 4.
    assert out['recall'] == pytest.approx(1 / 3)
    assert out['precision'] == pytest.approx(0.5)
    assert out['accuracy'] == pytest.approx(6 / 12)
    # reference convention: the 4 diagonal entries join the true negatives
    assert out['accuracy_reference'] == pytest.approx(10 / 16)
    assert out['recall_reference'] == pytest.approx(1 / 3)
    assert out['candidate_f1'] == pytest.approx(0.5)


def reference_delaunay_metrics(target, pred):
    """The reference code's count, re-derived: [B, n, n] 0/1 target and
    probabilities, full matrix, diagonal of the prediction zeroed, 1e-8
    added to the denominators."""
    eye = torch.eye(pred.size(-1), dtype=torch.bool).expand_as(pred)
    p = (pred > 0.5).double().masked_fill(eye, 0.0)
    t = target.double()
    tp = (t * p).sum((1, 2))
    tn = ((1 - t) * (1 - p)).sum((1, 2))
    fp = ((1 - t) * p).sum((1, 2))
    fn = (t * (1 - p)).sum((1, 2))
    eps = 1e-8
    return {'accuracy': (tp + tn) / (tp + tn + fp + fn),
            'precision': tp / (tp + fp + eps), 'recall': tp / (tp + fn + eps),
            'f1': 2 * tp / (2 * tp + fp + fn + eps)}


@pytest.mark.parametrize('seed', [0, 1])
def test_reference_convention_equals_dense_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    B, n = 5, 6
    prob = torch.rand(B, n, n, generator=gen)
    prob = (prob + prob.transpose(1, 2)) / 2
    target = (torch.rand(B, n, n, generator=gen) > 0.6).double()
    target = torch.triu(target, 1)
    target = target + target.transpose(1, 2)
    prob[0] = 0.0  # graph 0: nothing to find, nothing predicted
    target[0] = 0.0
    prob[1] = 0.0  # graph 1: nothing predicted
    batch = torch.arange(B).repeat_interleave(n)

    def edges(adj):
        g, i, j = adj.nonzero(as_tuple=True)
        return torch.stack([g * n + i, g * n + j])

    eye = torch.eye(n, dtype=torch.bool)
    pred_edges = edges((prob > 0.5) & ~eye)
    ours = adjacency_metrics(pred_edges, edges(target > 0), batch, B,
                             reduce=False, convention='reference')
    ref = reference_delaunay_metrics(target, prob)
    for key in ('accuracy', 'precision', 'recall', 'f1'):
        assert torch.allclose(ours[key], ref[key], atol=1e-7), key
    assert ours['f1'][0] == 0.0 and ours['precision'][1] == 0.0
    # the default convention differs only in the accuracy (and the empty
    # graph): acc_ref = (acc n(n-1) + n) / n^2
    pairs = adjacency_metrics(pred_edges, edges(target > 0), batch, B,
                              reduce=False)
    assert pairs['f1'][0] == 1.0
    assert torch.allclose(pairs['f1'][2:], ours['f1'][2:], atol=1e-7)
    assert torch.allclose(ours['accuracy'],
                          (pairs['accuracy'] * n * (n - 1) + n) / n ** 2)
    with pytest.raises(ValueError, match="'convention' must be one of"):
        adjacency_metrics(pred_edges, edges(target > 0), batch, B,
                          convention='full')
