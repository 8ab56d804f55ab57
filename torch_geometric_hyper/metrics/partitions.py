r"""Partition decoding and pairwise partition metrics (jets).

A partition of each graph's nodes is given as a ``[N]`` label vector plus
the ``[N]`` graph of each node; labels only need to be equal within a
cluster (they may repeat across graphs). All metrics are over the
unordered node pairs of each graph, with *positive* meaning "same
cluster", computed per graph from the contingency table (no pair list is
materialised) and returned as ``[B]`` tensors.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import torch
from torch import Tensor

# the pair target of a partition; built in nn, where SameVertexBCELoss
# uses it
from torch_geometric_hyper.nn.pairs import partition_edge_index  # noqa: F401

__all__ = ['decode_partition', 'target_partition', 'partition_edge_index',
           'partition_from_adjacency', 'pair_counts', 'partition_scores',
           'adjusted_rand_index', 'PartitionMetrics', 'FLAVOUR_NAMES']

#: ``flavour`` code -> name, in the order results are reported.
FLAVOUR_NAMES = {5: 'bottom', 4: 'charm', 0: 'light'}


def decode_partition(pred, threshold: float = 0.5) -> Tensor:
    r"""Decodes a predicted partition into ``[N]`` cluster labels.

    * :class:`~torch_geometric_hyper.nn.HypergraphPrediction`: each node
      goes to its most likely slot (arg-max of :math:`I_{ji}` over the slots
      of its graph; existence is ignored, ties go to the lowest slot);
      returns local slot ids :math:`0..m-1`.
    * :class:`~torch_geometric_hyper.nn.AdjacencyPrediction` (pair scores,
      e.g. Set2Graph with :math:`k = 2`): the connected components of the
      pairs with :math:`A_{ij} >` ``threshold``
      (:func:`partition_from_adjacency`).
    """
    if hasattr(pred, 'pair_index'):
        return partition_from_adjacency(pred.edge_index(threshold),
                                        pred.num_nodes)
    dense, mask, _ = pred.to_dense(fill_value=-1.0)  # [B, m, n_max]
    best = dense.argmax(dim=1)  # [B, n_max]
    return best[mask]


def target_partition(hyperedge_index: Tensor, num_nodes: int) -> Tensor:
    r"""``[N]`` cluster label of each node from a partition's incidence (row
    0 node, row 1 hyperedge). A node in no hyperedge gets a cluster of its
    own; a node in several keeps the largest hyperedge id."""
    label = torch.full((num_nodes, ), -1, dtype=torch.long,
                       device=hyperedge_index.device)
    label.scatter_reduce_(0, hyperedge_index[0].long(),
                          hyperedge_index[1].long(), reduce='amax')
    lonely = label < 0
    if bool(lonely.any()):
        base = int(hyperedge_index[1].max()) + 1 \
            if hyperedge_index.numel() > 0 else 0
        label[lonely] = base + torch.arange(int(lonely.sum()),
                                            device=label.device)
    return label


def partition_from_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""``[N]`` cluster labels from a graph: the connected components of
    ``edge_index`` (any direction; nodes without edges are clusters of
    their own). Labels are global (unique across the graphs of a batch,
    since no edge joins two graphs), numbered in order of each component's
    first node; computed with
    :func:`scipy.sparse.csgraph.connected_components`.

    With the pairs a model scores above 0.5 this turns a pair adjacency
    (e.g. Set2Graph's on jets) into a partition for
    :class:`PartitionMetrics`.

    Example:
        >>> import torch
        >>> partition_from_adjacency(torch.tensor([[0, 3], [1, 4]]), 6)
        tensor([0, 0, 1, 2, 2, 3])
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    n = int(num_nodes)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'edge_index' must have shape [2, num_edges], got "
                         f"{list(edge_index.shape)}")
    e = edge_index.detach().long().cpu().numpy()
    if e.size and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"'edge_index' refers to nodes outside [0, {n})")
    graph = coo_matrix((np.ones(e.shape[1], dtype=np.int8), (e[0], e[1])),
                       shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return torch.from_numpy(label.astype(np.int64)).to(edge_index.device)


def _relabel(label: Tensor, batch: Tensor) -> Tensor:
    # Dense labels 0..L-1 per (graph, label) pair, globally unique.
    key = batch * (int(label.max()) + 1) + label
    return torch.unique(key, return_inverse=True)[1]


def pair_counts(pred: Tensor, target: Tensor, batch: Tensor,
                num_graphs: Optional[int] = None) -> Dict[str, Tensor]:
    r"""Pair confusion counts per graph: ``tp`` (same cluster in both),
    ``fp`` (same in ``pred`` only), ``fn`` (same in ``target`` only), ``tn``
    and ``pairs`` :math:`\binom{n}{2}`, as ``[B]`` int64 tensors."""
    if not pred.shape == target.shape == batch.shape:
        raise ValueError(f"'pred', 'target' and 'batch' must have the same "
                         f"shape, got {list(pred.shape)}, "
                         f"{list(target.shape)}, {list(batch.shape)}")
    B = int(batch.max()) + 1 if num_graphs is None else num_graphs
    if pred.numel() == 0:
        z = torch.zeros(B, dtype=torch.long, device=batch.device)
        return {'tp': z, 'fp': z, 'fn': z, 'tn': z, 'pairs': z}
    batch = batch.long()
    p = _relabel(pred.long(), batch)
    t = _relabel(target.long(), batch)
    P, T = int(p.max()) + 1, int(t.max()) + 1

    def pairs_per_graph(key: Tensor, size: int, graph_of: Tensor) -> Tensor:
        c = torch.bincount(key, minlength=size)
        c2 = c * (c - 1) // 2
        return torch.zeros(B, dtype=torch.long, device=batch.device
                           ).index_add_(0, graph_of, c2)

    graph_of_p = torch.zeros(P, dtype=torch.long, device=batch.device)
    graph_of_p[p] = batch
    graph_of_t = torch.zeros(T, dtype=torch.long, device=batch.device)
    graph_of_t[t] = batch
    joint = p * T + t
    graph_of_joint = torch.zeros(P * T, dtype=torch.long, device=batch.device)
    graph_of_joint[joint] = batch
    same_both = pairs_per_graph(joint, P * T, graph_of_joint)
    same_pred = pairs_per_graph(p, P, graph_of_p)
    same_true = pairs_per_graph(t, T, graph_of_t)
    n = torch.bincount(batch, minlength=B)
    pairs = n * (n - 1) // 2
    tp = same_both
    fp = same_pred - tp
    fn = same_true - tp
    tn = pairs - tp - fp - fn
    return {'tp': tp, 'fp': fp, 'fn': fn, 'tn': tn, 'pairs': pairs}


def adjusted_rand_index(tp: Tensor, fp: Tensor, fn: Tensor,
                        tn: Tensor) -> Tensor:
    r"""Adjusted Rand index from pair counts, as
    :func:`sklearn.metrics.adjusted_rand_score` defines it:

    .. math::
        \mathrm{ARI} = \frac{2\,(tp\,tn - fn\,fp)}
        {(tp + fn)(fn + tn) + (tp + fp)(fp + tn)},

    and 1 when :math:`fp = fn = 0` (full agreement, including graphs with
    fewer than two nodes). Outside that case the denominator is positive.
    """
    tp, fp, fn, tn = (c.double() for c in (tp, fp, fn, tn))
    num = 2.0 * (tp * tn - fn * fp)
    den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    agree = (fp == 0) & (fn == 0)
    return torch.where(agree, torch.ones_like(num),
                       num / torch.where(agree, torch.ones_like(den), den))


def partition_scores(pred: Tensor, target: Tensor, batch: Tensor,
                     num_graphs: Optional[int] = None) -> Dict[str, Tensor]:
    r"""Per-graph pairwise precision, recall, F1, Rand index and adjusted
    Rand index of a predicted partition.

    Over the unordered node pairs of a graph, positive = same cluster:
    :math:`P = tp / (tp + fp)`, :math:`R = tp / (tp + fn)` (0 when the
    denominator is 0), :math:`F_1 = 2PR / (P + R)` and :math:`F_1 = 0` when
    :math:`P` or :math:`R` is 0 (so a graph whose target has no positive
    pair scores :math:`F_1 = 0`); RI = fraction of pairs on which both
    partitions agree (1 for a graph with one node); ARI see
    :func:`adjusted_rand_index`.

    Args:
        pred (torch.Tensor): ``[N]`` predicted cluster of each node.
        target (torch.Tensor): ``[N]`` true cluster of each node.
        batch (torch.Tensor): ``[N]`` graph of each node.
        num_graphs (int, optional): :math:`B`.

    Returns:
        dict of ``[B]`` float64 tensors ``precision``, ``recall``, ``f1``,
        ``ri``, ``ari``.
    """
    c = pair_counts(pred, target, batch, num_graphs)
    tp, fp, fn, tn, pairs = (c[k].double()
                             for k in ('tp', 'fp', 'fn', 'tn', 'pairs'))

    def ratio(a, b):
        safe = torch.where(b > 0, b, torch.ones_like(b))
        return torch.where(b > 0, a / safe, torch.zeros_like(a))

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    f1 = ratio(2 * precision * recall, precision + recall)
    ri = torch.where(pairs > 0, (tp + tn) / pairs.clamp_min(1),  # integer
                     torch.ones_like(tp))
    ari = adjusted_rand_index(c['tp'], c['fp'], c['fn'], c['tn'])
    return {'precision': precision, 'recall': recall, 'f1': f1, 'ri': ri,
            'ari': ari}


class PartitionMetrics:
    r"""Accumulates per-graph partition scores and averages them per
    flavour (and over all graphs).

    Example:
        >>> metrics = PartitionMetrics()
        >>> for batch in loader:  # doctest: +SKIP
        ...     pred = model(batch.x, batch.batch, batch.num_graphs)
        ...     metrics.update(decode_partition(pred),
        ...                    target_partition(batch.hyperedge_index,
        ...                                     batch.num_nodes),
        ...                    batch.batch, batch.flavour)
        >>> metrics.compute()  # doctest: +SKIP
        {'bottom': {'f1': ..., 'ri': ..., 'ari': ..., ...}, ..., 'all': ...}
    """

    keys = ('f1', 'ri', 'ari', 'precision', 'recall')

    def __init__(self, names: Optional[Dict[int, str]] = None):
        self.names = dict(FLAVOUR_NAMES if names is None else names)
        self.reset()

    def reset(self):
        self._scores: List[Dict[str, Tensor]] = []
        self._flavour: List[Tensor] = []

    def update(self, pred: Tensor, target: Tensor, batch: Tensor,
               flavour: Optional[Tensor] = None,
               num_graphs: Optional[int] = None):
        scores = partition_scores(pred, target, batch, num_graphs)
        B = scores['f1'].numel()
        if flavour is None:
            flavour = torch.full((B, ), -1, dtype=torch.long)
        self._scores.append({k: v.cpu() for k, v in scores.items()})
        self._flavour.append(flavour.view(-1).long().cpu())

    def compute(self) -> Dict[str, Dict[str, float]]:
        """Mean of each score per flavour name (present ones) and ``'all'``,
        plus the number of graphs ``'n'``."""
        if not self._scores:
            return {}
        flav = torch.cat(self._flavour)
        scores = {k: torch.cat([s[k] for s in self._scores])
                  for k in self.keys}
        out = {}
        groups = [(name, flav == code) for code, name in self.names.items()]
        groups.append(('all', torch.ones_like(flav, dtype=torch.bool)))
        for name, mask in groups:
            if int(mask.sum()) == 0:
                continue
            out[name] = {k: float(v[mask].mean()) for k, v in scores.items()}
            out[name]['n'] = int(mask.sum())
        return out

    @staticmethod
    def format_table(results: Dict[str, Dict[str, float]],
                     keys: Iterable[str] = ('f1', 'ri', 'ari'),
                     title: str = '') -> str:
        """A plain-text table, one row per flavour."""
        keys = list(keys)
        lines = [title] if title else []
        lines.append(f"{'flavour':<8} {'n':>6} " +
                     ' '.join(f'{k.upper():>7}' for k in keys))
        for name, row in results.items():
            lines.append(f"{name:<8} {row['n']:>6} " +
                         ' '.join(f'{row[k]:>7.4f}' for k in keys))
        return '\n'.join(lines)



def partition_baselines(dataset) -> Dict[str, Dict[str, Dict[str, float]]]:
    r"""The two trivial partitions of every set of an in-memory dataset
    with ``flavour`` (e.g. jets): ``'one vertex'`` (all nodes together) and
    ``'each alone'`` (every node its own part), scored as
    :meth:`PartitionMetrics.compute` does."""
    data = dataset._data
    n = data.num_nodes
    ptr = dataset.slices['x']
    batch = torch.repeat_interleave(torch.arange(ptr.numel() - 1),
                                    ptr[1:] - ptr[:-1])
    # labels only need to be unique within a set: the local part ids do
    eptr = dataset.slices['hyperedge_index']
    edge_batch = torch.repeat_interleave(torch.arange(eptr.numel() - 1),
                                         eptr[1:] - eptr[:-1])
    node, edge = data.hyperedge_index
    target = torch.zeros(n, dtype=torch.long)
    target[ptr[edge_batch] + node] = edge
    out = {}
    for name, pred in (('one vertex', torch.zeros(n, dtype=torch.long)),
                       ('each alone', torch.arange(n))):
        m = PartitionMetrics()
        m.update(pred, target, batch, data.flavour.view(-1))
        out[name] = m.compute()
    return out
