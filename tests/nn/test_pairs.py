import numpy as np
import pytest
import torch

from torch_geometric_hyper.nn.pairs import (
    _sorted_unique,
    canonical_pairs,
    closing_pairs,
    complete_pairs,
    knn_pairs,
)


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


def test_sorted_unique_is_numpys_unique():
    rng = np.random.default_rng(1)
    for key in (rng.integers(0, 50, 1000), rng.integers(0, 2**40, 5000),
                np.array([], dtype=np.int64), np.array([7])):
        assert np.array_equal(_sorted_unique(key), np.unique(key))
