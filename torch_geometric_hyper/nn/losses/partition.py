r"""Soft pairwise F1 for partitions, and the jets training loss
(matched incidence BCE minus soft F1)."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch.nn import Module

from torch_geometric_hyper.nn.losses.matched import MatchedIncidenceLoss
from torch_geometric_hyper.nn.prediction import HypergraphPrediction, graph_ptr

__all__ = ['soft_pair_f1', 'SoftF1Loss', 'PartitionLoss']


def _target_adjacency(hyperedge_index: Tensor, num_hyperedges: Tensor,
                      batch: Tensor, num_graphs: int, n_max: int) -> Tensor:
    # [B, n_max, n_max] 0/1: the two nodes share a target hyperedge.
    ptr = graph_ptr(batch, num_graphs)
    node, edge = hyperedge_index[0].long(), hyperedge_index[1].long()
    graph = batch[node]
    eptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=batch.device)
    torch.cumsum(num_hyperedges.long(), 0, out=eptr[1:])
    k_max = max(int(num_hyperedges.max()) if num_hyperedges.numel() else 0,
                1)
    inc = torch.zeros(num_graphs, k_max, n_max, device=batch.device)
    inc[graph, edge - eptr[graph], node - ptr[graph]] = 1.0
    return (torch.einsum('bkn,bkl->bnl', inc, inc) > 0).float()


def soft_pair_f1(pred: HypergraphPrediction, hyperedge_index,
                 num_hyperedges: Optional[Union[Tensor, int]] = None,
                 gate: bool = False, pair_rule: str = 'product',
                 eps: float = 1e-8) -> Tensor:
    r"""Per-graph soft F1 of the pair adjacency induced by the incidence.

    The predicted adjacency of nodes :math:`i \ne k` of one graph is

    * ``'product'``: :math:`A_{ik} = \min(1, \sum_j I_{ji} I_{jk})`, the
      induced adjacency :math:`I^\top I` (clamped so the soft counts stay in
      :math:`[0, 1]`; for a partition-like incidence the clamp is inactive);
    * ``'noisy_or'``: :math:`A_{ik} = 1 - \prod_j (1 - I_{ji} I_{jk})`, the
      probability that some slot holds both if slots were independent.

    With the target adjacency :math:`Y` (1 when the nodes share a target
    hyperedge) over the strict upper triangle (each unordered pair once),
    the soft counts are :math:`tp = \sum A Y`, :math:`fp = \sum A (1 - Y)`,
    :math:`fn = \sum (1 - A) Y`, and
    :math:`\mathrm{softF1} = tp / (tp + \frac12 (fp + fn) + \epsilon)`.

    Args:
        pred (HypergraphPrediction): the prediction.
        hyperedge_index (torch.Tensor or HypergraphData): target incidence
            (batched ids), or a batch holding it and ``num_hyperedges``.
        num_hyperedges (torch.Tensor or int, optional): target hyperedges
            per graph.
        gate (bool, optional): use the gated incidence :math:`I_{ji} g_j`
            instead of :math:`I_{ji}`. (default: :obj:`False`: the partition
            is decoded from :math:`I` alone, see :class:`PartitionLoss`)
        pair_rule (str, optional): ``'product'`` or ``'noisy_or'``.
        eps (float, optional): keeps graphs without any soft positive
            finite.

    Returns:
        ``[B]`` soft F1 per graph (differentiable).
    """
    if pair_rule not in ('product', 'noisy_or'):
        raise ValueError(f"'pair_rule' must be 'product' or 'noisy_or', got "
                         f"'{pair_rule}'")
    if not isinstance(hyperedge_index, Tensor):
        data = hyperedge_index
        hyperedge_index = data.hyperedge_index
        if num_hyperedges is None:
            num_hyperedges = data.num_hyperedges
    B = pred.num_graphs
    if num_hyperedges is None:
        if B != 1:
            raise ValueError("pass 'num_hyperedges' (one count per graph) "
                             "when the prediction holds several graphs")
        num_hyperedges = int(hyperedge_index[1].max()) + 1 \
            if hyperedge_index.numel() else 0
    num_hyperedges = torch.as_tensor(num_hyperedges,
                                     device=pred.batch.device).view(-1)
    if num_hyperedges.numel() != B:
        raise ValueError(f"'num_hyperedges' must hold one count per graph "
                         f"({B}), got {num_hyperedges.numel()}")

    inc, mask, exist = pred.to_dense(fill_value=0.0)  # [B, m, n], [B, n]
    if gate:
        inc = inc * exist.unsqueeze(-1)
    n_max = inc.size(-1)
    if pair_rule == 'product':
        adj = torch.einsum('bjn,bjl->bnl', inc, inc).clamp(max=1.0)
    else:
        both = inc.unsqueeze(-1) * inc.unsqueeze(-2)  # [B, m, n, n]
        adj = 1.0 - torch.exp(torch.log1p(-both.clamp(max=1 - 1e-6)).sum(1))
    target = _target_adjacency(hyperedge_index, num_hyperedges, pred.batch,
                               B, n_max).to(adj.dtype)
    upper = torch.ones(n_max, n_max, dtype=torch.bool,
                       device=adj.device).triu(1)
    pair = (mask.unsqueeze(-1) & mask.unsqueeze(-2) & upper).to(adj.dtype)
    tp = (adj * target * pair).sum((1, 2))
    fp = (adj * (1 - target) * pair).sum((1, 2))
    fn = ((1 - adj) * target * pair).sum((1, 2))
    return tp / (tp + 0.5 * (fp + fn) + eps)


class SoftF1Loss(Module):
    r""":math:`1 - \mathrm{softF1}` averaged over graphs, see
    :func:`soft_pair_f1` for the arguments."""

    def __init__(self, gate: bool = False, pair_rule: str = 'product',
                 eps: float = 1e-8):
        super().__init__()
        if pair_rule not in ('product', 'noisy_or'):
            raise ValueError(f"'pair_rule' must be 'product' or "
                             f"'noisy_or', got '{pair_rule}'")
        self.gate, self.pair_rule, self.eps = gate, pair_rule, eps

    def forward(self, pred: HypergraphPrediction, hyperedge_index,
                num_hyperedges=None) -> Tensor:
        f1 = soft_pair_f1(pred, hyperedge_index, num_hyperedges, self.gate,
                          self.pair_rule, self.eps)
        return 1.0 - f1.mean()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(gate={self.gate}, "
                f"pair_rule='{self.pair_rule}')")


class PartitionLoss(Module):
    r"""Training loss for partitions (jets): the matched incidence BCE of
    :class:`MatchedIncidenceLoss` plus a soft pairwise F1 term,

    .. math::
        \mathcal L = \mathcal L_\text{matched} +
        \lambda\,(1 - \overline{\mathrm{softF1}}),

    which for :math:`\lambda = 1` is the official "matched BCE − soft F1"
    shifted by the constant 1 (same gradients, non-negative values).

    Gating: by default the soft F1 uses the *ungated* incidence
    :math:`I`, because a partition is decoded from :math:`I` alone (each
    node to its arg-max slot, :func:`~torch_geometric_hyper.metrics.
    decode_partition`); the soft F1 then scores the same quantity that is
    decoded, and cannot be raised by closing gates instead of fixing the
    incidence. The gates are still trained by the matched loss's existence
    column. ``gate=True`` uses :math:`I_{ji} g_j` instead.

    Args:
        f1_weight (float, optional): :math:`\lambda`. (default: :obj:`1.0`;
            0 gives the plain matched loss)
        gate (bool, optional): see above. (default: :obj:`False`)
        pair_rule (str, optional): ``'product'`` (:math:`I^\top I`) or
            ``'noisy_or'``, see :func:`soft_pair_f1`.
        backend (str, optional): assignment solver of the matched loss.
    """

    def __init__(self, f1_weight: float = 1.0, gate: bool = False,
                 pair_rule: str = 'product', backend: str = 'scipy'):
        super().__init__()
        self.f1_weight = float(f1_weight)
        self.matched = MatchedIncidenceLoss(backend=backend)
        self.soft_f1 = SoftF1Loss(gate, pair_rule)
        self.last = {}

    def forward(self, pred: HypergraphPrediction, hyperedge_index,
                num_hyperedges=None) -> Tensor:
        matched = self.matched(pred, hyperedge_index, num_hyperedges)
        if self.f1_weight == 0:
            self.last = {'matched': matched.detach()}
            return matched
        f1_term = self.soft_f1(pred, hyperedge_index, num_hyperedges)
        # detached tensors, not floats: no host sync per call
        self.last = {'matched': matched.detach(),
                     'soft_f1': 1.0 - f1_term.detach()}
        return matched + self.f1_weight * f1_term

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(f1_weight={self.f1_weight}, "
                f"gate={self.soft_f1.gate}, "
                f"pair_rule='{self.soft_f1.pair_rule}')")
