r"""Hyperedge-level precision, recall and F1 (exact node-set matches)."""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor


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


def hyperedge_f1(pred: List[List[tuple]], target: List[List[tuple]],
                 count_duplicates: bool = True) -> Dict[str, Tensor]:
    r"""Per-graph precision, recall and F1 of exact hyperedge matches.

    A target hyperedge is a true positive if some predicted hyperedge has
    exactly its node set. With ``count_duplicates`` (the strict convention),
    each further prediction of an already-found hyperedge is a false
    positive; without it (the convention of the reference code), duplicates
    collapse to one prediction.

    .. math::
        F_1 = \frac{tp}{tp + \frac12(fp + fn)}

    Args:
        pred (list): per graph, the predicted node tuples.
        target (list): per graph, the target node tuples.
        count_duplicates (bool, optional): strict convention.

    Returns:
        dict of :math:`(B)` tensors ``precision``, ``recall``, ``f1``,
        ``tp``, ``fp``, ``fn``.
    """
    if len(pred) != len(target):
        raise ValueError(f"got predictions for {len(pred)} graphs but "
                         f"targets for {len(target)}")
    rows = []
    for p, t in zip(pred, target):
        tset = set(t)
        if count_duplicates:
            pc = Counter(p)
            tp = sum(1 for e in pc if e in tset)
            fp = sum(pc.values()) - tp
        else:
            pset = set(p)
            tp = len(pset & tset)
            fp = len(pset) - tp
        fn = len(tset) - tp
        denom = tp + 0.5 * (fp + fn)
        f1 = tp / denom if denom > 0 else 1.0
        prec = tp / (tp + fp) if tp + fp > 0 else float(len(tset) == 0)
        rec = tp / (tp + fn) if tp + fn > 0 else 1.0
        rows.append((prec, rec, f1, tp, fp, fn))
    cols = torch.tensor(rows, dtype=torch.float64).reshape(-1, 6).t()
    return dict(zip(('precision', 'recall', 'f1', 'tp', 'fp', 'fn'), cols))


def evaluate_hyperedges(pred, data, edge_size: Optional[int] = None,
                        threshold: float = 0.5,
                        existence_threshold: float = 0.5
                        ) -> Dict[str, Union[Tensor, float]]:
    r"""Decodes a :class:`~torch_geometric_hyper.nn.HypergraphPrediction`
    and scores it against a batched :class:`HypergraphData` target.

    Returns per-graph tensors of the strict convention (``f1``,
    ``precision``, ``recall``, duplicates count as false positives) and
    ``f1_reference`` (duplicates ignored), plus ``duplicates`` (number of
    predicted hyperedges repeating another of the same graph).
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
    strict = hyperedge_f1(pred_sets, target_sets, True)
    ref = hyperedge_f1(pred_sets, target_sets, False)
    dup = torch.tensor([len(p) - len(set(p)) for p in pred_sets],
                       dtype=torch.float64)
    return {**strict, 'f1_reference': ref['f1'],
            'precision_reference': ref['precision'], 'duplicates': dup}
