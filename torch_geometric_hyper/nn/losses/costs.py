r"""The device half of :class:`~torch_geometric_hyper.nn.MatchedIncidenceLoss`
(dense matching) as one function that :func:`torch.compile` takes whole.

Eagerly the loss computes its costs in a few dozen small operations per
prediction (log-sigmoids, scatters, a sparse product); on a GPU each is a
kernel launch. :func:`dense_cost_terms` computes the same quantities from
tensors of known sizes only (no sparse tensors, no value-dependent
shapes), so a compiled loss (:meth:`MatchedIncidenceLoss.compile
<torch_geometric_hyper.nn.MatchedIncidenceLoss.compile>`) runs it, and its
backward, as a handful of fused kernels.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ['dense_cost_terms', 'matched_loss']


def _at_least_float32(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class _ClampedLogSigmoids(torch.autograd.Function):
    # (log sigmoid(z), log sigmoid(-z)), each clamped below at -100 as
    # binary cross-entropy is; keeps only z (which the prediction holds
    # anyway) for backward, where autograd's composition would keep four
    # more tensors of z's size
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return (F.logsigmoid(z).clamp_min_(-100.0),
                F.logsigmoid(-z).clamp_min_(-100.0))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_p, g_q):
        z, = ctx.saved_tensors
        # d/dz log sigmoid(z) = sigmoid(-z); no gradient where clamped
        g = torch.sigmoid(-z).mul_(g_p).masked_fill_(
            F.logsigmoid(z) < -100.0, 0)
        return g.sub_(torch.sigmoid(z).mul_(g_q).masked_fill_(
            F.logsigmoid(-z) < -100.0, 0))


def _clamped_log_sigmoids(z: Tensor):
    if torch.is_grad_enabled() and z.requires_grad:
        return _ClampedLogSigmoids.apply(z)
    return (F.logsigmoid(z).clamp_min(-100.0),
            F.logsigmoid(-z).clamp_min(-100.0))


def dense_cost_terms(incidence_logit: Tensor, existence_logit: Tensor,
                     node: Tensor, slot: Tensor, denom: Tensor,
                     t_node: Tensor, t_edge: Tensor, t_graph: Tensor,
                     num_graphs: int, max_edges: int, num_nodes: int,
                     total: int) -> Tuple[Tensor, Tensor]:
    r"""The padding cost of every slot and the reduced cost of every
    (target, slot) pair of a batch.

    With :math:`\ell^+ = \max(\log\sigma(z), -100)` and
    :math:`\ell^- = \max(\log\sigma(-z), -100)` of the incidence logits
    :math:`z_{is}` (a pair that is not a candidate has :math:`I = 0`) and
    of the existence logits :math:`z_s`, and :math:`D_g = n_g + 1`:

    .. math::
        c^{\text{pad}}_s = -\frac{1}{D_g}\Big(\ell^-_s
            + \sum_i \ell^-_{is}\Big), \qquad
        r_{qs} = -\frac{1}{D_g}\Big(\ell^+_s - \ell^-_s
            + \sum_{i \in q} (\ell^+_{is} - \ell^-_{is})\Big),

    where a pruned pair contributes :math:`-100` to the last sum. The
    matched cost of target :math:`q` in slot :math:`s` is
    :math:`c^{\text{pad}}_s + r_{qs}`.

    Args:
        incidence_logit (torch.Tensor): :math:`(\text{nnz})` logits of the
            candidate pairs.
        existence_logit (torch.Tensor): :math:`(B m)` slot logits.
        node (torch.Tensor): :math:`(\text{nnz})` node of each pair.
        slot (torch.Tensor): :math:`(\text{nnz})` global slot of each pair
            (:math:`g m + j`).
        denom (torch.Tensor): :math:`(B)` nodes per graph plus one.
        t_node (torch.Tensor): :math:`(\text{nnz}_T)` node of each target
            membership.
        t_edge (torch.Tensor): :math:`(\text{nnz}_T)` target hyperedge of
            each membership.
        t_graph (torch.Tensor): :math:`(T)` graph of each target.
        num_graphs (int): :math:`B`.
        max_edges (int): :math:`m`.
        num_nodes (int): :math:`N`.
        total (int): :math:`T`.

    Returns:
        ``(cost_pad, reduced)`` of shapes :math:`(B m)` and :math:`(T, m)`.
    """
    B, m = num_graphs, max_edges
    log_p = F.logsigmoid(incidence_logit).clamp_min(-100.0)
    log_q = F.logsigmoid(-incidence_logit).clamp_min(-100.0)
    log_pe = F.logsigmoid(existence_logit).clamp_min(-100.0)
    log_qe = F.logsigmoid(-existence_logit).clamp_min(-100.0)
    slot_denom = denom.repeat_interleave(m, output_size=B * m)
    base = log_q.new_zeros(B * m).index_add(0, slot, log_q)
    cost_pad = -(base + log_qe) / slot_denom
    # the (node, local slot) table of log-odds, -100 where pruned
    local = slot % m
    table = incidence_logit.new_full((num_nodes * m, ), -100.0).index_put(
        (node * m + local, ), log_p - log_q).view(num_nodes, m)
    members = table.new_zeros(total, m).index_add(0, t_edge, table[t_node])
    gate = (log_pe - log_qe).view(B, m)
    reduced = (members + gate[t_graph]) / -denom[t_graph, None]
    return cost_pad, reduced


def matched_loss(cost_pad: Tensor, reduced: Tensor, cols: Tensor,
                 t_graph: Tensor, num_graphs: int, max_edges: int,
                 reduction: str = 'mean') -> Tensor:
    r"""The loss of an assignment: per graph, the padding costs of all its
    slots plus the reduced cost of each target in its assigned slot,

    .. math::
        L_g = \sum_s c^{\text{pad}}_s + \sum_{q \in g} r_{q\pi(q)},

    divided by :math:`m` and averaged over the graphs (``'mean'``), summed
    (``'sum'``) or per graph over :math:`m` (``'none'``).

    Args:
        cost_pad (torch.Tensor): :math:`(B m)` padding costs.
        reduced (torch.Tensor): :math:`(T, m)` reduced costs.
        cols (torch.Tensor): :math:`(T)` slot (in its graph) of each
            target.
        t_graph (torch.Tensor): :math:`(T)` graph of each target.
        num_graphs (int): :math:`B`.
        max_edges (int): :math:`m`.
        reduction (str, optional): ``'mean'``, ``'sum'`` or ``'none'``.
    """
    rows = torch.arange(reduced.size(0), device=reduced.device)
    per_graph = cost_pad.view(num_graphs, max_edges).sum(1).index_add(
        0, t_graph, reduced[rows, cols])
    if reduction == 'sum':
        return per_graph.sum()
    if reduction == 'mean':
        return per_graph.mean() / max_edges
    return per_graph / max_edges
