import itertools
import os

import pytest
import torch

from torch_geometric_hyper.metrics import (PartitionMetrics,
                                           adjusted_rand_index,
                                           decode_partition, pair_counts,
                                           partition_scores, target_partition)
from torch_geometric_hyper.nn import HypergraphPrediction

torch.set_num_threads(1)


def brute(pred, true):
    tp = fp = fn = tn = 0
    for i, k in itertools.combinations(range(len(pred)), 2):
        a, b = pred[i] == pred[k], true[i] == true[k]
        tp += a and b
        fp += a and not b
        fn += b and not a
        tn += not a and not b
    return tp, fp, fn, tn


def scores(pred, true):
    pred, true = torch.tensor(pred), torch.tensor(true)
    return {k: float(v) for k, v in partition_scores(
        pred, true, torch.zeros_like(pred)).items()}


def test_hand_case():
    # true {0,1,2},{3}; pred {0,1},{2,3}
    s = scores([0, 0, 1, 1], [0, 0, 0, 1])
    # pairs: 01 tp, 02 fn, 12 fn, 23 fp, 03 tn, 13 tn
    assert s['precision'] == pytest.approx(0.5)
    assert s['recall'] == pytest.approx(1 / 3)
    assert s['f1'] == pytest.approx(0.4)
    assert s['ri'] == pytest.approx(3 / 6)
    # 2(tp tn - fn fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)), tp=1 fp=1 fn=2
    # tn=2: 2(2 - 2) / (...) = 0
    assert s['ari'] == pytest.approx(0.0)


def test_perfect_and_special_cases():
    s = scores([3, 3, 9], [0, 0, 1])
    assert s == pytest.approx({'precision': 1, 'recall': 1, 'f1': 1,
                               'ri': 1, 'ari': 1})
    # both all-singletons: no positive pair -> P = R = F1 = 0, RI = ARI = 1
    s = scores([0, 1, 2], [5, 6, 7])
    assert s['f1'] == 0 and s['ri'] == 1 and s['ari'] == 1
    # one cluster predicted, truth singletons: ARI = 0 (sklearn)
    s = scores([0, 0, 0], [0, 1, 2])
    assert s['ari'] == pytest.approx(0.0) and s['precision'] == 0
    assert s['ri'] == 0 and s['f1'] == 0
    # single node: ARI 1 (sklearn's full agreement), RI 1
    s = scores([0], [4])
    assert s['ari'] == 1 and s['ri'] == 1
    # a known sklearn value: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 4/7
    assert scores([0, 0, 1, 2], [0, 0, 1, 1])['ari'] == pytest.approx(
        0.5714285714285715)
    # negative ARI: adjusted_rand_score([0,0,1,1],[0,1,0,1]) = -0.5
    assert scores([0, 1, 0, 1], [0, 0, 1, 1])['ari'] == pytest.approx(-0.5)


def test_batched_matches_per_graph():
    gen = torch.Generator().manual_seed(0)
    sizes = [2, 5, 7, 3, 15]
    batch = torch.cat([torch.full((n, ), g) for g, n in enumerate(sizes)])
    pred = torch.randint(0, 3, (batch.numel(), ), generator=gen)
    true = torch.randint(0, 4, (batch.numel(), ), generator=gen)
    c = pair_counts(pred, true, batch)
    out = partition_scores(pred, true, batch)
    for g in range(len(sizes)):
        m = batch == g
        tp, fp, fn, tn = brute(pred[m].tolist(), true[m].tolist())
        assert [int(c[k][g]) for k in ('tp', 'fp', 'fn', 'tn')] == \
            [tp, fp, fn, tn]
        assert float(out['ri'][g]) == pytest.approx((tp + tn) /
                                                    (tp + fp + fn + tn))


def test_against_sklearn():
    metrics = pytest.importorskip('sklearn.metrics')
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        n = int(torch.randint(1, 16, (1, ), generator=gen))
        pred = torch.randint(0, 4, (n, ), generator=gen)
        true = torch.randint(0, 3, (n, ), generator=gen)
        ours = partition_scores(pred, true, torch.zeros(n, dtype=torch.long))
        assert float(ours['ari'][0]) == pytest.approx(
            metrics.adjusted_rand_score(true.numpy(), pred.numpy()))
        assert float(ours['ri'][0]) == pytest.approx(
            metrics.rand_score(true.numpy(), pred.numpy()))


def test_ari_function_special_case():
    z = torch.tensor([0])
    assert float(adjusted_rand_index(torch.tensor([3]), z, z,
                                     torch.tensor([0]))[0]) == 1.0


def test_decode_and_target_partition():
    # 2 graphs (2 and 3 nodes), m = 2, all candidate pairs
    batch = torch.tensor([0, 0, 1, 1, 1])
    node = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    slot = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3, 2, 3])
    logit = torch.tensor([2., -1, -3, 1, 0, 5, 4, 1, -2, -1])
    pred = HypergraphPrediction(logit, torch.zeros(4),
                                torch.stack([node, slot]), batch, 2, 2)
    assert decode_partition(pred).tolist() == [0, 1, 1, 0, 1]
    index = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 2, 2, 3]])
    assert target_partition(index, 5).tolist() == [0, 1, 2, 2, 3]
    assert target_partition(index[:, :4], 6).tolist()[:4] == [0, 1, 2, 2]
    lonely = target_partition(index[:, :4], 6)[4:]
    assert lonely[0] != lonely[1] and int(lonely.min()) > 2


def test_partition_metrics_per_flavour():
    m = PartitionMetrics()
    batch = torch.tensor([0, 0, 1, 1, 2, 2])
    true = torch.tensor([0, 0, 0, 1, 0, 0])
    m.update(torch.zeros(6, dtype=torch.long), true, batch,
             torch.tensor([5, 0, 5]))
    res = m.compute()
    assert res['bottom']['n'] == 2 and res['bottom']['f1'] == 1.0
    assert res['light']['f1'] == 0.0 and res['light']['ri'] == 0.0
    assert res['all']['f1'] == pytest.approx(2 / 3)
    assert 'charm' not in res
    table = PartitionMetrics.format_table(res)
    assert 'bottom' in table and 'ARI' in table


def test_partition_edge_index_is_the_same_cluster_graph():
    from torch_geometric_hyper.metrics import partition_edge_index
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 4, (12, ), generator=g)
    label[5] = 9  # a singleton cluster: no pair
    node = torch.randperm(12, generator=g)
    index = torch.stack([node, label[node]])
    edge_index = partition_edge_index(index, 12)
    expected = sorted((i, j) for i in range(12) for j in range(12)
                      if i != j and label[i] == label[j])
    assert sorted(map(tuple, edge_index.t().tolist())) == expected
    assert partition_edge_index(torch.zeros(2, 0, dtype=torch.long)
                                ).shape == (2, 0)


def test_partition_from_adjacency_connected_components():
    from torch_geometric_hyper.metrics import (partition_edge_index,
                                               partition_from_adjacency)
    # a chain 0-1-2 and a pair 4-3 (reversed direction), 5 alone
    label = partition_from_adjacency(torch.tensor([[0, 2, 4], [1, 1, 3]]), 6)
    assert label.tolist() == [0, 0, 0, 1, 1, 2]
    # round trip on a batch: the components of a partition's pair graph
    true = torch.tensor([0, 0, 1, 0, 2, 2, 3, 0, 0])  # labels repeat
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2])
    key = torch.unique(batch * 10 + true, return_inverse=True)[1]
    edge_index = partition_edge_index(torch.stack([torch.arange(9), key]))
    pred = partition_from_adjacency(edge_index, 9)
    res = partition_scores(pred, true, batch)
    assert torch.allclose(res['ari'], torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match='outside'):
        partition_from_adjacency(torch.tensor([[0], [7]]), 6)


def test_decode_partition_of_an_adjacency_prediction():
    from torch_geometric_hyper.nn import AdjacencyPrediction
    pair_index = torch.tensor([[0, 0, 1, 3], [1, 2, 2, 4]])
    logit = torch.tensor([3.0, -3.0, 0.1, 2.0])  # 0-1, 1-2, 3-4 kept
    pred = AdjacencyPrediction(logit, pair_index,
                               torch.tensor([0] * 3 + [1] * 2), 2)
    assert decode_partition(pred).tolist() == [0, 0, 0, 1, 1]
    assert decode_partition(pred, threshold=0.6).tolist() == [0, 0, 1, 2, 2]


SHARED_JETS = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                           'shared', 'data', 'jets', 'validation',
                           'valid_data.root')


def reference_scores(true, pred):
    """P, R, F1 as the reference's jets evaluation defines them (pair loops;
    P or R is 0 on an empty denominator, F1 is 0 when P or R is)."""
    tp, fp, fn, _ = brute(pred, true)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p and r else 0.0)


@pytest.mark.skipif(
    not os.path.exists(SHARED_JETS),
    reason=f'real jets sample not found at {os.path.abspath(SHARED_JETS)} '
    '(the project shared folder); the full data is Zenodo record 4044628')
def test_real_jets_against_sklearn(tmp_path):
    metrics = pytest.importorskip('sklearn.metrics')
    pytest.importorskip('uproot')
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ParticlePartitioning
    os.makedirs(tmp_path / 'raw')
    os.symlink(os.path.abspath(SHARED_JETS),
               tmp_path / 'raw' / 'valid_data.root')
    ds = ParticlePartitioning(str(tmp_path), 'val', log=False)
    data = next(iter(DataLoader(ds[:600], batch_size=600)))
    true = target_partition(data.hyperedge_index, data.num_nodes)
    # Two imperfect predictions: tracks grouped by the sign of their
    # (standardised) transverse impact parameter d0, and the truth with
    # every fourth track moved to a cluster of its own.
    by_d0 = (data.x[:, 0] > 0).long()
    moved = true.clone()
    every4 = torch.arange(data.num_nodes) % 4 == 0
    moved[every4] = true.max() + 1 + torch.arange(int(every4.sum()))
    for pred in (by_d0, moved):
        ours = partition_scores(pred, true, data.batch, data.num_graphs)
        for g in range(data.num_graphs):
            m = data.batch == g
            t, p = true[m].numpy(), pred[m].numpy()
            assert float(ours['ri'][g]) == pytest.approx(
                metrics.rand_score(t, p))
            assert float(ours['ari'][g]) == pytest.approx(
                metrics.adjusted_rand_score(t, p))
            ref = reference_scores(t.tolist(), p.tolist())
            assert [float(ours[k][g]) for k in
                    ('precision', 'recall', 'f1')] == pytest.approx(ref)
        # the predictions are imperfect, so the check is not vacuous
        assert 0.0 < float(ours['ari'].mean()) < 1.0
