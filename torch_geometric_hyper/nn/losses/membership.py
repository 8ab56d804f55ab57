r"""Sums of per-pair values over the members of target hyperedges.

A prediction scores candidate pairs :math:`(i, s)` of node :math:`i` and
slot :math:`s` (``node``, and ``local``: the slot's index
:math:`0 \le s < m` within its graph); a target is a list of memberships
:math:`(q, i)`: node :math:`i` belongs to target hyperedge :math:`q`
(``t_node``, ``t_edge``). For a value :math:`\delta_{is}` per candidate
pair, and :math:`-100` for a pair that is not a candidate (the clamped
log-odds of a pruned pair, :math:`\log 0 - \log 1`), the matched loss needs

.. math::
    \mathrm{members}_{qs} = \sum_{i \in q} \delta_{is}
    \qquad (q < T,\ s < m),

and the candidate-coverage metric
(:func:`~torch_geometric_hyper.metrics.candidate_coverage`) which
:math:`(q, s)` hold all of :math:`q`'s nodes as candidates. Both come from
the join of the memberships with the candidate pairs
(:func:`membership_join`); :func:`members` also has a dense way through an
:math:`[N, m]` table and picks the cheaper one
(:func:`sparse_members_cheaper`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_hyper.nn.kernels.incidence import count_values

__all__ = [
    'membership_join',
    'members',
    'members_dense',
    'members_sparse',
    'sparse_members_cheaper',
]


def membership_join(delta: Tensor, node: Tensor, local: Tensor,
                    num_nodes: int, t_node: Tensor,
                    t_edge: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Joins every target membership :math:`(q, i)` with the candidate
    pairs :math:`(i, s)` of its node: one row :math:`(q, s,
    \delta_{is} + 100)` per match, in
    :math:`O(\text{nnz}_T \cdot \text{pairs per node})` time and memory
    (no :math:`N \times m` table).

    Args:
        delta (torch.Tensor): :math:`(\text{nnz})` value of each candidate
            pair.
        node (torch.Tensor): :math:`(\text{nnz})` node of each pair.
        local (torch.Tensor): :math:`(\text{nnz})` slot of each pair within
            its graph, in :math:`[0, m)`.
        num_nodes (int): :math:`N`.
        t_node (torch.Tensor): :math:`(\text{nnz}_T)` node of each target
            membership.
        t_edge (torch.Tensor): :math:`(\text{nnz}_T)` target hyperedge of
            each membership.

    Returns:
        ``(q, s, shifted)``: the target hyperedge, the local slot and
        :math:`\delta_{is} + 100` of every match, each :math:`(J)`.
    """
    order = torch.argsort(node, stable=True)
    node_s, local_s, shifted = node[order], local[order], \
        delta[order] + 100.0
    count = count_values(node_s, num_nodes)
    start = torch.cumsum(count, 0) - count
    c = count[t_node]
    rep = torch.repeat_interleave(torch.arange(t_node.numel(),
                                               device=node.device), c)
    offset = torch.arange(rep.numel(), device=node.device) - \
        torch.repeat_interleave(torch.cumsum(c, 0) - c, c)
    k = start[t_node[rep]] + offset
    return t_edge[rep], local_s[k], shifted[k]


def members_sparse(delta: Tensor, node: Tensor, local: Tensor,
                   num_nodes: int, t_node: Tensor, t_edge: Tensor,
                   total: int, m: int) -> Tensor:
    r""":math:`\mathrm{members}` through :func:`membership_join`, without
    an :math:`[N, m]` table:

    .. math::
        \mathrm{members}_{qs} = \sum_{i \in q,\ (i, s)\ \text{candidate}}
        (\delta_{is} + 100) - 100\,|q|.

    Args:
        delta, node, local, num_nodes, t_node, t_edge: as in
            :func:`membership_join`.
        total (int): number of target hyperedges :math:`T`.
        m (int): slots per graph.

    Returns:
        torch.Tensor: :math:`(T, m)`.
    """
    q, s_local, shifted = membership_join(delta, node, local, num_nodes,
                                          t_node, t_edge)
    out = delta.new_zeros(total * m).index_add(
        0, q * m + s_local, shifted).view(total, m)
    size = count_values(t_edge, total).to(delta.dtype)
    return out - 100.0 * size[:, None]


def members_dense(delta: Tensor, node: Tensor, local: Tensor,
                  num_nodes: int, t_node: Tensor, t_edge: Tensor,
                  total: int, m: int,
                  shared: Optional[dict] = None) -> Tensor:
    r""":math:`\mathrm{members}` as the product of the sparse
    :math:`(T, N)` 0/1 target matrix with the :math:`(N, m)` table of
    :math:`\delta` (:math:`-100` where pruned).

    Args:
        delta, node, local, num_nodes, t_node, t_edge, total, m: as in
            :func:`members_sparse`.
        shared (dict, optional): keeps the table's index and the target
            matrix for the next call with the same pairs and target (the
            predictions of several steps of one batch).

    Returns:
        torch.Tensor: :math:`(T, m)`.
    """
    shared = {} if shared is None else shared
    if 'flat' not in shared:
        shared['flat'] = node * m + local
    key = ('target', delta.dtype)
    if key not in shared:
        shared[key] = torch.sparse_coo_tensor(
            torch.stack([t_edge, t_node]),
            torch.ones(t_node.numel(), dtype=delta.dtype,
                       device=delta.device),
            (total, num_nodes), check_invariants=False).coalesce()
    diff = delta.new_full((num_nodes * m, ), -100.0)
    diff = diff.index_put((shared['flat'], ), delta).view(num_nodes, m)
    return torch.sparse.mm(shared[key], diff)  # [T, m]


def sparse_members_cheaper(nnz: int, num_nodes: int, m: int,
                           nnz_t: int) -> bool:
    r"""Whether :func:`members_sparse` touches fewer entries than
    :func:`members_dense`: the join about
    :math:`\text{nnz}_T \cdot \text{nnz} / N`, the table :math:`N m`.

    Args:
        nnz (int): candidate pairs.
        num_nodes (int): :math:`N`.
        m (int): slots per graph.
        nnz_t (int): target memberships.
    """
    return num_nodes > 0 and nnz_t * (nnz / num_nodes) < num_nodes * m


def members(delta: Tensor, node: Tensor, local: Tensor, num_nodes: int,
            t_node: Tensor, t_edge: Tensor, total: int, m: int,
            shared: Optional[dict] = None) -> Tensor:
    r""":math:`\mathrm{members}_{qs} = \sum_{i \in q} \delta_{is}`
    (:math:`-100` for pruned pairs) by :func:`members_sparse` or
    :func:`members_dense`, whichever :func:`sparse_members_cheaper` says
    touches fewer entries.

    Args:
        delta, node, local, num_nodes, t_node, t_edge, total, m: as in
            :func:`members_sparse`.
        shared (dict, optional): see :func:`members_dense`.

    Returns:
        torch.Tensor: :math:`(T, m)`.
    """
    if sparse_members_cheaper(node.numel(), num_nodes, m, t_node.numel()):
        return members_sparse(delta, node, local, num_nodes, t_node, t_edge,
                              total, m)
    return members_dense(delta, node, local, num_nodes, t_node, t_edge,
                         total, m, shared)
