r"""Hyperedge-level precision, recall and F1 (exact node-set matches).

Three ways to count a set's true positives, false positives and false
negatives are provided (``convention``); all score a predicted hyperedge as
correct only when its node set equals a target's exactly, and all average
the per-set F1 over sets:

* ``'strict'`` (the package's headline figure): every predicted hyperedge
  is a claim. The first prediction of a target hyperedge is a true
  positive; every further copy of it, and every prediction matching no
  target, is a false positive.
* ``'reference'``: exactly the count of the paper authors' reference code
  (``_error_count_indicator`` in its ``metrics.py``). ``tp`` is the number
  of target hyperedges matched by at least one predicted hyperedge, ``fp``
  the number of predicted hyperedges (slots) matching no target, each copy
  counted, and ``fn`` the number of targets nothing matched. Copies of a
  *right* hyperedge therefore cost nothing, copies of a *wrong* one count
  once each.
* ``'unique'``: predictions collapse to a set first, so any hyperedge
  predicted :math:`k` times counts once, right or wrong. (Older releases
  called this the "reference convention"; it overstates the reference's
  own figure whenever a wrong hyperedge is predicted twice.)

.. math::
    F_1 = \frac{tp}{tp + \frac12(fp + fn)},\quad
    P = \frac{tp}{tp + fp},\quad R = \frac{tp}{tp + fn}.

Empty sets: the reference code adds :math:`\epsilon = 10^{-8}` to every
denominator, so a set with no target and no prediction scores
:math:`F_1 = P = R = 0`, precision is 0 without predictions and recall 0
without targets; ``'reference'`` reproduces those values (it leaves the
:math:`\epsilon` out elsewhere, a difference below :math:`10^{-8}`). The
other two conventions score a set with nothing to find and nothing
predicted as :math:`F_1 = 1`.

Example (predicted ``A, A, X, X`` against targets ``A, B``): strict
:math:`tp = 1, fp = 3, fn = 1`, :math:`F_1 = 0.333`; reference
:math:`tp = 1, fp = 2, fn = 1`, :math:`F_1 = 0.400`; unique
:math:`tp = 1, fp = 1, fn = 1`, :math:`F_1 = 0.500`.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from torch_geometric_hyper.nn.losses.membership import membership_join

#: The counting conventions of :func:`hyperedge_f1`.
CONVENTIONS = ('strict', 'reference', 'unique')


def hyperedge_sets(hyperedge_index: Tensor, edge_graph: Tensor,
                   node_offset: Tensor, num_graphs: int
                   ) -> List[List[tuple]]:
    r"""Groups an incidence into per-graph lists of sorted node tuples.

    Args:
        hyperedge_index (torch.Tensor): :math:`(2, \text{nnz})` global node
            ids and hyperedge ids.
        edge_graph (torch.Tensor): graph of each hyperedge id.
        node_offset (torch.Tensor): :math:`(B + 1)` node offsets
            (``ptr``); tuples hold node ids local to their graph.
        num_graphs (int): :math:`B`.
    """
    node, edge = hyperedge_index.cpu().tolist()
    edge_graph = edge_graph.cpu().tolist()
    offset = node_offset.cpu().tolist()
    members: Dict[int, List[int]] = {}
    for i, e in zip(node, edge):
        members.setdefault(e, []).append(i)
    out: List[List[tuple]] = [[] for _ in range(num_graphs)]
    for e, nodes in members.items():
        g = edge_graph[e]
        out[g].append(tuple(sorted(i - offset[g] for i in nodes)))
    return out


def _counts(pred: Sequence[tuple], target: Sequence[tuple],
            convention: str) -> Tuple[int, int, int]:
    if convention == 'reference':
        pset, tset = set(pred), set(target)
        tp = sum(1 for e in target if e in pset)  # each target row once
        fp = sum(1 for e in pred if e not in tset)  # each slot
        return tp, fp, len(target) - tp
    tset = set(target)
    if convention == 'strict':
        found = {e for e in pred if e in tset}
        tp, fp = len(found), len(pred) - len(found)
    else:  # unique
        pset = set(pred)
        tp = len(pset & tset)
        fp = len(pset) - tp
    return tp, fp, len(tset) - tp


def _scores(tp: int, fp: int, fn: int, convention: str
            ) -> Tuple[float, float, float]:
    empty = 0.0 if convention == 'reference' else 1.0
    denom = tp + 0.5 * (fp + fn)
    f1 = tp / denom if denom > 0 else empty
    if convention == 'reference':
        prec = tp / (tp + fp) if tp + fp > 0 else 0.0
        rec = tp / (tp + fn) if tp + fn > 0 else 0.0
    else:
        prec = tp / (tp + fp) if tp + fp > 0 else float(fn == 0)
        rec = tp / (tp + fn) if tp + fn > 0 else 1.0
    return prec, rec, f1


def hyperedge_f1(pred: List[List[tuple]], target: List[List[tuple]],
                 convention: str = 'strict') -> Dict[str, Tensor]:
    r"""Per-graph precision, recall and F1 of exact hyperedge matches.

    See the module docstring for the three counting conventions and their
    values on empty sets.

    Args:
        pred (list): per graph, the predicted node tuples (one per existing
            slot, copies included).
        target (list): per graph, the target node tuples.
        convention (str, optional): ``'strict'``, ``'reference'`` (the
            reference code's count) or ``'unique'``.
            (default: ``'strict'``)

    Returns:
        dict of :math:`(B)` float64 tensors ``precision``, ``recall``,
        ``f1``, ``tp``, ``fp``, ``fn``.

    Example:
        >>> A, B, X = (0, 1, 2), (1, 2, 3), (0, 2, 3)
        >>> hyperedge_f1([[A, A, X, X]], [[A, B]], 'reference')['f1']
        tensor([0.4000], dtype=torch.float64)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"'convention' must be one of {CONVENTIONS}, got "
                         f"{convention!r}")
    if len(pred) != len(target):
        raise ValueError(f"got predictions for {len(pred)} graphs but "
                         f"targets for {len(target)}")
    rows = []
    for p, t in zip(pred, target):
        tp, fp, fn = _counts(p, t, convention)
        rows.append((*_scores(tp, fp, fn, convention), tp, fp, fn))
    cols = torch.tensor(rows, dtype=torch.float64).reshape(-1, 6).t()
    return dict(zip(('precision', 'recall', 'f1', 'tp', 'fp', 'fn'), cols))


def evaluate_hyperedges(pred, data, edge_size: Optional[int] = None,
                        threshold: float = 0.5,
                        existence_threshold: float = 0.5
                        ) -> Dict[str, Union[Tensor, float]]:
    r"""Decodes a :class:`~torch_geometric_hyper.nn.HypergraphPrediction`
    and scores it against a batched :class:`HypergraphData` target.

    Args:
        pred (HypergraphPrediction): the model's output.
        data (HypergraphData): the targets (a batch or one graph).
        edge_size (int, optional): nodes per hyperedge (the top incidences
            of each slot); without it, incidences above ``threshold``.
        threshold (float, optional): incidence threshold.
        existence_threshold (float, optional): a slot exists above it.

    Returns:
        dict of :math:`(B)` tensors: the strict convention as ``f1``,
        ``precision``, ``recall``, ``tp``, ``fp``, ``fn``; the reference
        code's count as ``f1_reference``, ``precision_reference``,
        ``recall_reference``; the collapsed count as ``f1_unique``; and
        ``duplicates`` (predicted hyperedges repeating another of the same
        graph).
    """
    B = pred.num_graphs
    ptr = getattr(data, 'ptr', None)
    if ptr is None:
        ptr = torch.tensor([0, data.num_nodes])
    index, edge_graph = pred.to_hyperedge_index(threshold, edge_size,
                                                existence_threshold)
    pred_sets = hyperedge_sets(index, edge_graph, ptr, B)
    counts = torch.as_tensor(data.num_hyperedges).reshape(-1).cpu()
    target_graph = torch.arange(B).repeat_interleave(counts)
    target_sets = hyperedge_sets(data.hyperedge_index, target_graph, ptr, B)
    strict = hyperedge_f1(pred_sets, target_sets, 'strict')
    ref = hyperedge_f1(pred_sets, target_sets, 'reference')
    unique = hyperedge_f1(pred_sets, target_sets, 'unique')
    dup = torch.tensor([len(p) - len(set(p)) for p in pred_sets],
                       dtype=torch.float64)
    return {**strict, 'f1_reference': ref['f1'],
            'precision_reference': ref['precision'],
            'recall_reference': ref['recall'],
            'f1_unique': unique['f1'], 'duplicates': dup}


def candidate_coverage(pred, data) -> Tensor:
    r"""The share of each graph's target hyperedges that some slot *can*
    predict: all of the hyperedge's nodes are candidates of one slot.

    A model with :math:`K` candidate nodes per slot
    (``HypergraphRefiner(num_candidates=K)``) can only predict the
    hyperedges its slots' candidates contain, so this bounds its recall
    (an all-pairs prediction covers everything: 1). Computed by joining
    each target membership :math:`(q, i)` with the candidate pairs
    :math:`(i, s)` of node :math:`i` and counting, per
    :math:`(q, s)`, whether :math:`s` holds all :math:`|q|` nodes:
    :math:`O(\text{nnz}_T \cdot \text{pairs per node})`, no
    :math:`n \times m` table.

    Args:
        pred (HypergraphPrediction): the model's output (its
            ``incidence_index`` holds the candidate pairs).
        data (HypergraphData): the targets (a batch or one graph), with
            ``hyperedge_index`` and ``num_hyperedges``.

    Returns:
        :math:`(B)` float64 tensor: per graph, the covered share of its
        target hyperedges (1 for a graph without targets).
    """
    B, m, N = pred.num_graphs, pred.max_edges, pred.num_nodes
    node, slot = pred.incidence_index
    t_node, t_edge = data.hyperedge_index.long().to(node.device)
    counts = torch.as_tensor(data.num_hyperedges).reshape(-1).long().to(
        node.device)
    if counts.numel() != B:
        raise ValueError(f"the target holds {counts.numel()} graphs, the "
                         f"prediction {B}")
    total = int(counts.sum())
    covered = torch.zeros(total, dtype=torch.bool, device=node.device)
    if total and node.numel():
        q, s_local, _ = membership_join(
            torch.zeros(node.numel(), device=node.device), node, slot % m,
            N, t_node, t_edge)
        key, hits = torch.unique(q * m + s_local, return_counts=True)
        size = torch.bincount(t_edge, minlength=total)
        full = key[hits == size[key // m]] // m
        covered[full] = True
    graph = torch.arange(B, device=node.device).repeat_interleave(
        counts, output_size=total)
    share = torch.zeros(B, dtype=torch.float64, device=node.device)
    share.index_add_(0, graph, covered.double())
    return torch.where(counts > 0, share / counts.clamp_min(1),
                       torch.ones_like(share)).cpu()
