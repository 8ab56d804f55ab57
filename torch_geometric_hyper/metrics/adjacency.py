r"""Adjacency metrics for set-to-graph prediction (Delaunay edges).

Per graph, the predicted and target graphs are symmetric :math:`n \times n`
0/1 matrices (the prediction thresholded at 0.5, diagonal zero). Counting
over their entries:

.. math::
    \text{acc} = \frac{tp + tn}{tp + tn + fp + fn},\quad
    P = \frac{tp}{tp + fp},\quad R = \frac{tp}{tp + fn},\quad
    F_1 = \frac{2\,tp}{2\,tp + fp + fn},

then averaged over graphs. Two conventions (``convention``):

* ``'pairs'`` (the default): the :math:`n(n-1)` off-diagonal entries; a
  ratio whose denominator is 0 is 1 when there was nothing to find and
  nothing predicted (e.g. precision with no predicted edge and no missed
  edge), else 0.
* ``'reference'``: as the paper authors' reference code
  (``delaunay_adj_metrics``) counts: all :math:`n^2` entries, the zero
  diagonal entering the true negatives, and every ratio with a zero
  denominator is 0 (the reference adds :math:`10^{-8}` to denominators).

Precision, recall and F1 agree between the two except on graphs where a
denominator is 0; the accuracy differs: with :math:`a` the off-diagonal
accuracy, the reference's is :math:`(a\,n(n-1) + n) / n^2`, higher by
:math:`(1 - a)/n`.

Everything is computed from edge lists in :math:`O(E)` (no dense matrix);
:func:`dense_adjacency_metrics` is the dense single-graph reference.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from torch_geometric_hyper.nn.pairs import pair_labels
from torch_geometric_hyper.nn.prediction import graph_ptr


def _unordered_keys(edge_index: Tensor, num_nodes: int, name: str) -> Tensor:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 \
            or edge_index.size(0) != 2:
        raise ValueError(f"'{name}' must have shape [2, num_edges], got "
                         f"{list(getattr(edge_index, 'shape', []))}")
    e = edge_index.long()
    if e.numel() > 0 and (int(e.min()) < 0 or int(e.max()) >= num_nodes):
        raise ValueError(f"'{name}' holds node ids outside [0, {num_nodes})")
    a, b = torch.minimum(e[0], e[1]), torch.maximum(e[0], e[1])
    keep = a != b
    return torch.unique(a[keep] * num_nodes + b[keep])


#: The counting conventions of :func:`adjacency_metrics`.
CONVENTIONS = ('pairs', 'reference')


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"'convention' must be one of {CONVENTIONS}, got "
                         f"{convention!r}")


def _ratio(num: Tensor, den: Tensor, empty_ok: Tensor) -> Tensor:
    out = num.double() / den.clamp(min=1).double()
    return torch.where(den > 0, out, empty_ok.double())


def adjacency_confusion(pred_edge_index: Tensor, target_edge_index: Tensor,
                        batch: Tensor, num_graphs: Optional[int] = None,
                        include_diagonal: bool = False) -> Dict[str, Tensor]:
    r"""Per-graph confusion counts over the :math:`n \times n` entries.

    Both edge lists are read as undirected (either or both directions,
    duplicates and self-loops ignored), so each edge counts as two entries.

    Args:
        pred_edge_index (torch.Tensor): :math:`(2, E_p)` predicted edges.
        target_edge_index (torch.Tensor): :math:`(2, E_t)` target edges.
        batch (torch.Tensor): :math:`(N)` graph of each node, sorted.
        num_graphs (int, optional): :math:`B`.
        include_diagonal (bool, optional): count the :math:`n` diagonal
            entries as true negatives. (default: :obj:`False`)

    Returns:
        dict: ``tp``, ``fp``, ``fn``, ``tn`` as :math:`(B)` long tensors.
    """
    batch = batch.long()
    n_all = batch.numel()
    num_graphs = int(batch.max()) + 1 if num_graphs is None else num_graphs
    pred = _unordered_keys(pred_edge_index.to(batch.device), n_all,
                           'pred_edge_index')
    target = _unordered_keys(target_edge_index.to(batch.device), n_all,
                             'target_edge_index')
    for name, key in (('pred_edge_index', pred),
                      ('target_edge_index', target)):
        if bool((batch[key // max(n_all, 1)] != batch[key % max(n_all, 1)])
                .any()):
            raise ValueError(f"'{name}' has an edge joining two graphs")
    hit = torch.isin(pred, target)

    def count(keys):
        return torch.bincount(batch[keys // max(n_all, 1)],
                              minlength=num_graphs)

    tp = 2 * count(pred[hit])
    fp = 2 * count(pred[~hit])
    fn = 2 * count(target) - tp
    ptr = graph_ptr(batch, num_graphs)
    n = ptr[1:] - ptr[:-1]
    total = n * n if include_diagonal else n * (n - 1)
    return {'tp': tp, 'fp': fp, 'fn': fn, 'tn': total - tp - fp - fn}


def adjacency_scores(tp: Tensor, fp: Tensor, fn: Tensor,
                     tn: Tensor, convention: str = 'pairs'
                     ) -> Dict[str, Tensor]:
    r"""Per-graph accuracy, precision, recall and F1 from confusion counts
    (see the module docstring for each convention's zero-denominator
    rule)."""
    _check_convention(convention)
    tp, fp, fn, tn = (torch.as_tensor(v) for v in (tp, fp, fn, tn))
    total = tp + fp + fn + tn
    if convention == 'reference':
        zero = torch.zeros_like(tp, dtype=torch.bool)
        return {
            'accuracy': _ratio(tp + tn, total, zero),
            'precision': _ratio(tp, tp + fp, zero),
            'recall': _ratio(tp, tp + fn, zero),
            'f1': _ratio(2 * tp, 2 * tp + fp + fn, zero),
        }
    return {
        'accuracy': _ratio(tp + tn, total, torch.ones_like(tp)),
        'precision': _ratio(tp, tp + fp, fn == 0),
        'recall': _ratio(tp, tp + fn, fp == 0),
        'f1': _ratio(2 * tp, 2 * tp + fp + fn, torch.ones_like(tp)),
    }


def adjacency_metrics(pred_edge_index: Tensor, target_edge_index: Tensor,
                      batch: Tensor, num_graphs: Optional[int] = None,
                      include_diagonal: bool = False,
                      reduce: bool = True,
                      convention: str = 'pairs') -> Dict[str, object]:
    r"""Accuracy, precision, recall and F1 per graph over the
    :math:`n \times n` entries, averaged over graphs (``reduce``) or as
    :math:`(B)` tensors. Arguments as in :func:`adjacency_confusion`;
    ``convention='reference'`` counts as the reference code does (all
    :math:`n^2` entries, zero denominators give 0; it implies
    ``include_diagonal``)."""
    _check_convention(convention)
    counts = adjacency_confusion(pred_edge_index, target_edge_index, batch,
                                 num_graphs,
                                 include_diagonal or convention == 'reference')
    scores = adjacency_scores(**counts, convention=convention)
    if not reduce:
        return scores
    return {k: float(v.mean()) if v.numel() else float('nan')
            for k, v in scores.items()}


def dense_adjacency_metrics(pred: Tensor, target: Tensor,
                            threshold: float = 0.5,
                            include_diagonal: bool = False
                            ) -> Dict[str, float]:
    r"""The same metrics for one graph from dense :math:`n \times n`
    matrices (a reference; :math:`O(n^2)`).

    Args:
        pred (torch.Tensor): :math:`(n, n)` probabilities (an entry is an
            edge if :math:`>` ``threshold``) or a boolean matrix.
        target (torch.Tensor): :math:`(n, n)` 0/1 (or boolean) matrix.
        threshold (float, optional): decision threshold. (default: 0.5)
        include_diagonal (bool, optional): see :func:`adjacency_confusion`.
    """
    if pred.dim() != 2 or pred.size(0) != pred.size(1) \
            or pred.shape != target.shape:
        raise ValueError(f"'pred' and 'target' must be square matrices of "
                         f"the same shape, got {list(pred.shape)} and "
                         f"{list(target.shape)}")
    p = pred if pred.dtype == torch.bool else pred > threshold
    t = target.bool()
    eye = torch.eye(p.size(0), dtype=torch.bool, device=p.device)
    p, t = p & ~eye, t & ~eye
    mask = torch.ones_like(eye) if include_diagonal else ~eye
    tp = (p & t & mask).sum()
    fp = (p & ~t & mask).sum()
    fn = (~p & t & mask).sum()
    tn = (~p & ~t & mask).sum()
    return {k: float(v) for k, v in adjacency_scores(tp, fp, fn, tn).items()}


def candidate_edge_f1(prediction, target_edge_index: Tensor,
                      threshold: float = 0.5) -> Dict[str, float]:
    r"""Edge-level precision, recall and F1 on the candidate set, pooled
    over the batch (micro average over unordered candidate pairs), plus the
    coverage: the fraction of target edges that are candidates at all (an
    upper bound on the recall over *all* edges).

    Args:
        prediction (AdjacencyPrediction): the model's output.
        target_edge_index (torch.Tensor): :math:`(2, E)` target edges.
        threshold (float, optional): decision threshold.
    """
    n = prediction.num_nodes
    label = pair_labels(prediction.pair_index, target_edge_index, n).bool()
    pos = prediction.adjacency > threshold
    tp = (pos & label).sum()
    fp = (pos & ~label).sum()
    fn = (~pos & label).sum()
    num_target = _unordered_keys(target_edge_index.to(label.device), n,
                                 'target_edge_index').numel()
    s = adjacency_scores(tp, fp, fn, torch.zeros_like(tp))
    return {'precision': float(s['precision']), 'recall': float(s['recall']),
            'f1': float(s['f1']),
            'coverage': float(label.sum()) / num_target if num_target
            else 1.0}


def evaluate_adjacency(prediction, data, threshold: float = 0.5,
                       include_diagonal: bool = False) -> Dict[str, float]:
    r"""All adjacency metrics of a batch: the per-graph averages of
    :func:`adjacency_metrics` (``accuracy``, ``precision``, ``recall``,
    ``f1``), the same in the reference code's convention
    (``accuracy_reference``, ``precision_reference``, ``recall_reference``,
    ``f1_reference``) and the candidate-set ones of
    :func:`candidate_edge_f1` (``candidate_precision``,
    ``candidate_recall``, ``candidate_f1``, ``candidate_coverage``).

    Args:
        prediction (AdjacencyPrediction): the model's output.
        data: the batch, with ``edge_index`` and ``batch``.
        threshold (float, optional): decision threshold.
        include_diagonal (bool, optional): see :func:`adjacency_confusion`.
    """
    edge_index = prediction.edge_index(threshold)
    out = adjacency_metrics(edge_index, data.edge_index, prediction.batch,
                            prediction.num_graphs, include_diagonal)
    ref = adjacency_metrics(edge_index, data.edge_index, prediction.batch,
                            prediction.num_graphs, convention='reference')
    out.update({f'{k}_reference': v for k, v in ref.items()})
    cand = candidate_edge_f1(prediction, data.edge_index, threshold)
    out.update({f'candidate_{k}': v for k, v in cand.items()})
    return out
