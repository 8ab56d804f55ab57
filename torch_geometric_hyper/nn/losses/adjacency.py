r"""Binary cross-entropy of a predicted adjacency on candidate pairs
(:class:`AdjacencyBCELoss`), and the base of the label losses
(:class:`LabelBCELoss`)."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module

from torch_geometric_hyper.nn.checks import check_reduction, sync_checks_allowed
from torch_geometric_hyper.nn.pairs import pair_labels, partition_edge_index

__all__ = ['LabelBCELoss', 'AdjacencyBCELoss']


class LabelBCELoss(Module):
    r"""Base of the losses that take the binary cross-entropy of candidate
    logits against 0/1 labels derived from the target
    (:class:`AdjacencyBCELoss` on pairs,
    :class:`~torch_geometric_hyper.nn.TupleBCELoss` on tuples); holds
    ``pos_weight`` and ``reduction``.

    Args:
        pos_weight (float, optional): weight of the positive candidates.
        reduction (str, optional): ``'mean'`` (default), ``'sum'`` or
            ``'none'``.
    """

    def __init__(self, pos_weight: Optional[float] = None,
                 reduction: str = 'mean'):
        super().__init__()
        check_reduction(reduction)
        self.pos_weight = pos_weight
        self.reduction = reduction

    def _bce(self, logit: Tensor, label: Tensor) -> Tensor:
        pos_weight = None if self.pos_weight is None else \
            label.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(
            logit, label.to(logit.dtype), pos_weight=pos_weight,
            reduction=self.reduction)

    def reduction_weight(self, prediction, data) -> Optional[int]:
        r"""How many terms the loss averages in this batch: the candidate
        count with ``reduction='mean'`` (a mean over pairs or tuples, not
        over sets), ``None`` for a sum. Data-parallel training weighs each
        process's loss by it, so the averaged gradient is the one of the
        whole batch (:func:`~torch_geometric_hyper.train.shard_loss`)."""
        if self.reduction != 'mean':
            return None
        return prediction.logit.numel()

    def __repr__(self) -> str:
        pw = '' if self.pos_weight is None else f'pos_weight={self.pos_weight}'
        return f'{self.__class__.__name__}({pw})'


class AdjacencyBCELoss(LabelBCELoss):
    r"""Binary cross-entropy of a predicted adjacency
    (:class:`~torch_geometric_hyper.nn.graph_refiner.AdjacencyPrediction`)
    against the target graph, over the candidate pairs.

    Candidate pair :math:`\{i, j\}` has label 1 if it is an edge of the
    target ``edge_index`` (either direction), else 0:

    .. math::
        \mathcal L = -\frac{1}{P}\sum_{\{i,j\}} y_{ij}\log A_{ij}
        + (1 - y_{ij})\log(1 - A_{ij}).

    With the default all-pairs candidates this equals the mean BCE over the
    :math:`n(n-1)` off-diagonal entries of the symmetric :math:`n \times n`
    matrices (each unordered pair counted once instead of twice). Target
    edges outside the candidate set cannot be predicted and do not enter
    the loss. Computed from logits (numerically stable).

    Args:
        pos_weight (float, optional): weight of the positive pairs.
        reduction (str, optional): ``'mean'`` (default), ``'sum'`` or
            ``'none'`` (per pair, :math:`(P)`).

    Shapes:
        - **input:** an ``AdjacencyPrediction``, a batch with ``edge_index``
          (or the ``edge_index`` itself)
        - **output:** scalar, or :math:`(P)` with ``reduction='none'``
    """

    def forward(self, prediction, data) -> Tensor:
        edge_index = data if isinstance(data, Tensor) else \
            getattr(data, 'edge_index', None)
        if edge_index is None:
            raise ValueError("the target batch has no 'edge_index'")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, num_edges], "
                             f"got {list(edge_index.shape)}")
        if sync_checks_allowed(edge_index):
            check_target_edges(edge_index, prediction.batch)
        return self._bce(prediction.logit, pair_labels(
            prediction.pair_index, edge_index, prediction.num_nodes))



class SameVertexBCELoss(AdjacencyBCELoss):
    r"""Set2Graph's loss for partitions (particle jets): the
    :class:`AdjacencyBCELoss` of a pair model's scores against the "same
    part" graph of the target partition
    (:func:`~torch_geometric_hyper.nn.pairs.partition_edge_index` of the
    batch's ``hyperedge_index``).

    Shapes:
        - **input:** an ``AdjacencyPrediction`` and a batch with
          ``hyperedge_index`` (a partition of its nodes)
        - **output:** scalar, or :math:`(P)` with ``reduction='none'``
    """

    def forward(self, prediction, data) -> Tensor:
        return super().forward(prediction, partition_edge_index(
            data.hyperedge_index, data.num_nodes))

def check_target_edges(edge_index: Tensor, batch: Tensor) -> None:
    r"""Refuses target edges that name a node outside the batch (a
    negative id, or one past its :math:`N` nodes) or join nodes of two
    different graphs: such an edge would otherwise be folded onto an
    unrelated pair or silently dropped."""
    N = batch.numel()
    if edge_index.is_floating_point():
        raise ValueError(f"the target 'edge_index' must hold integer node "
                         f"ids, got dtype {edge_index.dtype}")
    if edge_index.numel() == 0:
        return
    lo, hi = int(edge_index.min()), int(edge_index.max())
    if lo < 0 or hi >= N:
        raise ValueError(f"the target 'edge_index' names nodes outside the "
                         f"batch's {N} (ids {lo} to {hi}); give the ids of "
                         f"this batch's nodes (Batch offsets each set's)")
    e = edge_index.to(batch.device).long()
    cross = batch[e[0]] != batch[e[1]]
    if bool(cross.any()):
        k = int(cross.nonzero()[0, 0])
        raise ValueError(f"the target 'edge_index' joins nodes of different "
                         f"graphs ({int(e[0, k])} and {int(e[1, k])}, "
                         f"{int(cross.sum())} such edge(s)); each edge must "
                         f"stay inside one set")
