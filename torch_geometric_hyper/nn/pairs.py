r"""Candidate pairs of nodes for the set-to-graph models and their labels:
all pairs (:func:`complete_pairs`), nearest neighbours (:func:`knn_pairs`),
any list normalised (:func:`canonical_pairs`), pairs that close predicted
triangles (:func:`closing_pairs`), and the 0/1 targets on candidates
(:func:`pair_labels`).

Every builder returns unordered pairs :math:`(i, j)`, :math:`i < j`, of
global node ids of one graph each, as a :math:`(2, P)` tensor sorted by
:math:`(i, j)`."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from torch_geometric_hyper.nn.kernels.incidence import count_values
from torch_geometric_hyper.nn.prediction import graph_ptr

__all__ = [
    'partition_edge_index',
    'complete_pairs',
    'knn_pairs',
    'canonical_pairs',
    'closing_pairs',
    'pair_labels',
]


def complete_pairs(batch: Tensor, num_graphs: int) -> Tensor:
    r"""All unordered pairs :math:`i < j` of nodes of the same graph.

    Args:
        batch (torch.Tensor): :math:`(N)` graph of each node, sorted.
        num_graphs (int): :math:`B`.

    Returns:
        torch.Tensor: :math:`(2, \sum_g n_g (n_g - 1) / 2)` global node ids,
        row 0 < row 1, sorted by (row 0, row 1).
    """
    ptr = graph_ptr(batch, num_graphs).tolist()
    cache, parts = {}, []
    for g in range(num_graphs):
        n = ptr[g + 1] - ptr[g]
        if n not in cache:
            cache[n] = torch.triu_indices(n, n, 1, device=batch.device)
        parts.append(cache[n] + ptr[g])
    if not parts:
        return batch.new_zeros(2, 0)
    return torch.cat(parts, dim=1)


def knn_pairs(pos: Tensor, k: int, batch: Optional[Tensor] = None,
              num_graphs: Optional[int] = None) -> Tensor:
    r"""Candidate pairs from the :math:`k` nearest neighbours of every node
    (within its graph), symmetrised: :math:`\{i, j\}` is a candidate if
    :math:`j` is among the :math:`k` nearest of :math:`i` *or* vice versa.

    Built with a k-d tree (:class:`scipy.spatial.cKDTree`), so the cost is
    :math:`O(n k \log n)` per graph instead of :math:`O(n^2)`.

    Args:
        pos (torch.Tensor): :math:`(N, D)` positions (e.g. the coordinates).
        k (int): neighbours per node (capped at :math:`n_g - 1`).
        batch (torch.Tensor, optional): :math:`(N)` graph of each node,
            sorted.
        num_graphs (int, optional): :math:`B`.

    Returns:
        torch.Tensor: :math:`(2, P)` unordered pairs, row 0 < row 1, sorted.
    """
    from scipy.spatial import cKDTree
    if int(k) < 1:
        raise ValueError(f"'k' must be a positive integer, got {k}")
    if batch is None:
        batch = torch.zeros(pos.size(0), dtype=torch.long, device=pos.device)
    num_graphs = int(batch.max()) + 1 if num_graphs is None else num_graphs
    ptr = graph_ptr(batch.long(), num_graphs).tolist()
    points = pos.detach().cpu().double().numpy()
    keys = []
    for g in range(num_graphs):
        lo, n = ptr[g], ptr[g + 1] - ptr[g]
        kk = min(int(k), n - 1)
        if kk < 1:
            continue
        _, nbr = cKDTree(points[lo:lo + n]).query(points[lo:lo + n], kk + 1)
        src = np.repeat(np.arange(n), kk + 1)
        dst = nbr.reshape(-1)
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        keep = a != b
        keys.append((a[keep] + lo) * pos.size(0) + b[keep] + lo)
    if not keys:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device)
    key = _sorted_unique(np.concatenate(keys))
    index = np.stack([key // pos.size(0), key % pos.size(0)])
    return torch.from_numpy(index).long().to(pos.device)


def _sorted_unique(key: np.ndarray) -> np.ndarray:
    # np.unique's result by a sort and a mask: on millions of int64 keys
    # np.unique can be an order of magnitude slower than this
    key = np.sort(key)
    if key.size > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return key


def canonical_pairs(pair_index: Tensor, batch: Tensor) -> Tensor:
    r"""Turns any candidate pair list into sorted unordered pairs.

    Drops self-loops, orders every pair as :math:`(\min, \max)` and removes
    duplicates, so ``(i, j)`` and ``(j, i)`` name one candidate.

    Raises:
        ValueError: on a malformed index, node ids out of range, or a pair
            joining two different graphs.
    """
    if not isinstance(pair_index, Tensor) or pair_index.dim() != 2 \
            or pair_index.size(0) != 2:
        raise ValueError(f"'pair_index' must have shape [2, num_pairs], got "
                         f"{list(getattr(pair_index, 'shape', []))}")
    if pair_index.is_floating_point() or pair_index.dtype == torch.bool:
        raise ValueError(f"'pair_index' must hold integers, got "
                         f"{pair_index.dtype}")
    n = batch.numel()
    index = pair_index.long().to(batch.device)
    if index.numel() > 0:
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"'pair_index' holds node ids in [{lo}, {hi}] "
                             f"but there are {n} nodes")
        if bool((batch[index[0]] != batch[index[1]]).any()):
            raise ValueError("'pair_index' has a pair joining two different "
                             "graphs of the batch")
    a = torch.minimum(index[0], index[1])
    b = torch.maximum(index[0], index[1])
    keep = a != b
    key = torch.unique(a[keep] * n + b[keep])
    return torch.stack([key // max(n, 1), key % max(n, 1)])


def pair_labels(pair_index: Tensor, edge_index: Tensor,
                num_nodes: int) -> Tensor:
    r"""``1.0`` for the candidate pairs that are edges of ``edge_index``
    (either direction), ``0.0`` for the others.

    Args:
        pair_index (torch.Tensor): :math:`(2, P)` unordered candidate pairs.
        edge_index (torch.Tensor): :math:`(2, E)` target edges.
        num_nodes (int): :math:`N`.
    """
    key = pair_index[0] * num_nodes + pair_index[1]
    e = edge_index.to(pair_index.device).long()
    a, b = torch.minimum(e[0], e[1]), torch.maximum(e[0], e[1])
    target = a * num_nodes + b
    return torch.isin(key, target).float()


def _rank_in_groups(sizes: Tensor, total: Optional[int] = None) -> Tensor:
    # 0, 1, ..., sizes[0] - 1, 0, 1, ..., sizes[1] - 1, ...
    total = int(sizes.sum()) if total is None else total
    return torch.arange(total, device=sizes.device) - torch.repeat_interleave(
        torch.cumsum(sizes, 0) - sizes, sizes, output_size=total)


def closing_pairs(pair_index: Tensor, adjacency: Tensor, num_nodes: int,
                  per_node: int, threshold: float = 0.5) -> Tensor:
    r"""Pairs that would close a triangle of a predicted graph: :math:`\{a,
    c\}` for every node :math:`j` with predicted edges :math:`a - j` and
    :math:`j - c` (:math:`A > \text{threshold}`), ranked by
    :math:`A_{aj} A_{jc}` (the best over the middle nodes), keeping the
    ``per_node`` best of each node :math:`a` (the lower id of the pair).

    A Delaunay edge always lies in a triangle of the Delaunay graph, so its
    two ends share a neighbour: once that neighbour's edges are predicted,
    the missing edge is among these pairs even when neither end is among
    the other's nearest neighbours. The cost is
    :math:`O(\sum_j \deg(j)^2)` for the predicted degrees, never
    :math:`O(n^2)`.

    Args:
        pair_index (torch.Tensor): :math:`(2, P)` unordered pairs (row 0 <
            row 1).
        adjacency (torch.Tensor): :math:`(P)` probabilities on them.
        num_nodes (int): :math:`N`.
        per_node (int): most pairs kept per node.
        threshold (float, optional): a pair is a predicted edge above it.

    Returns:
        torch.Tensor: :math:`(2, P')` unordered pairs (row 0 < row 1),
        sorted, that may include pairs of ``pair_index``.
    """
    keep = adjacency > threshold
    a, b = pair_index[0][keep], pair_index[1][keep]
    w = adjacency[keep].detach()
    # every predicted edge in both directions, grouped by its middle node
    mid = torch.cat([a, b])
    end = torch.cat([b, a])
    ww = torch.cat([w, w])
    order = torch.argsort(mid, stable=True)
    mid, end, ww = mid[order], end[order], ww[order]
    deg = count_values(mid, num_nodes)
    start = torch.cumsum(deg, 0) - deg
    # each directed edge (mid, end) meets every edge (mid, other)
    reps = deg[mid]
    total = int(reps.sum())
    first = torch.repeat_interleave(torch.arange(mid.numel(),
                                                 device=mid.device), reps,
                                    output_size=total)
    second = start[mid[first]] + _rank_in_groups(reps, total)
    u, v = end[first], end[second]
    score = ww[first] * ww[second]
    ok = u < v
    u, v, score = u[ok], v[ok], score[ok]
    if u.numel() == 0:
        return pair_index.new_zeros(2, 0)
    # the best score of each pair, then the per_node best of each node u
    key, inverse = torch.unique(u * num_nodes + v, return_inverse=True)
    score = score.new_zeros(key.numel()).scatter_reduce(
        0, inverse, score, 'amax', include_self=False)
    node = key // num_nodes
    order = torch.argsort(-score, stable=True)
    order = order[torch.argsort(node[order], stable=True)]
    key = key[order]
    rank = _rank_in_groups(count_values(node, num_nodes),
                           key.numel())
    key = torch.sort(key[rank < int(per_node)]).values
    return torch.stack([key // num_nodes, key % num_nodes])


def partition_edge_index(hyperedge_index: Tensor,
                         num_nodes: Optional[int] = None) -> Tensor:
    r"""The "same cluster" graph of a partition: every ordered pair
    :math:`(i, j)`, :math:`i \ne j`, of nodes that share a hyperedge (the
    clique expansion of the incidence), coalesced, as a ``[2, E]``
    ``edge_index``. It is the pair target of a model that scores node pairs
    (e.g. :class:`~torch_geometric_hyper.nn.Set2Graph` with :math:`k = 2`
    trained with :class:`~torch_geometric_hyper.nn.AdjacencyBCELoss`).

    Args:
        hyperedge_index (torch.Tensor): ``[2, nnz]`` incidence, row 0 node,
            row 1 hyperedge (batched ids).
        num_nodes (int, optional): :math:`N` (default: largest node id + 1).

    Example:
        >>> import torch
        >>> partition_edge_index(torch.tensor([[0, 1, 2, 3], [0, 0, 1, 0]]))
        tensor([[0, 0, 1, 1, 3, 3],
                [1, 3, 0, 3, 0, 1]])
    """
    node, edge = hyperedge_index.long()
    if node.numel() == 0:
        return node.new_zeros(2, 0)
    n = int(node.max()) + 1 if num_nodes is None else int(num_nodes)
    order = torch.argsort(edge)
    node, edge = node[order], edge[order]
    _, counts = torch.unique_consecutive(edge, return_counts=True)
    start = torch.cumsum(counts, 0) - counts  # first entry of each edge
    group = torch.repeat_interleave(torch.arange(counts.numel(),
                                                 device=node.device), counts)
    # entry k pairs with every entry of its hyperedge (c_k of them)
    c = counts[group]
    arange = torch.arange(node.numel(), device=node.device)
    a = torch.repeat_interleave(arange, c)
    offset = torch.arange(a.numel(), device=node.device) \
        - torch.repeat_interleave(torch.cumsum(c, 0) - c, c)
    b = start[group[a]] + offset
    i, j = node[a], node[b]
    keep = i != j
    key = torch.unique(i[keep] * n + j[keep])
    return torch.stack([key // n, key % n])
