r"""Removing repeated hyperedges from an incidence list."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_hyper.data.checks import check_count


def unique_hyperedges(hyperedge_index: Tensor,
                      num_hyperedges: Optional[int] = None,
                      hyperedge_batch: Optional[Tensor] = None
                      ) -> Tuple[Tensor, Tensor]:
    r"""Drops every hyperedge whose node set repeats an earlier one.

    Two hyperedges are copies when they hold exactly the same nodes (and,
    with ``hyperedge_batch``, belong to the same graph; with global node ids
    of a batch they cannot coincide across graphs anyway, except when both
    are empty). The first copy (lowest id) is kept and the kept hyperedges
    are renumbered :math:`0..E'-1` in their original order, so the result
    feeds :class:`torch_geometric.nn.HypergraphConv` without counting a
    repeated hyperedge twice.

    Args:
        hyperedge_index (torch.Tensor): row 0 node, row 1 hyperedge.
        num_hyperedges (int, optional): :math:`E`, counting empty ones
            (default: largest hyperedge id + 1).
        hyperedge_batch (torch.Tensor, optional): graph of each hyperedge;
            empty hyperedges of different graphs then stay apart.

    Returns:
        ``(hyperedge_index, keep)``: the incidence of the kept hyperedges,
        sorted by hyperedge then node, and which of the :math:`E` input
        hyperedges were kept.

    Raises:
        ValueError: on a ``hyperedge_index`` not of shape
            :math:`(2, \text{nnz})`, float or boolean ids, or a
            ``num_hyperedges`` that is not a non-negative integer
            (``2.0`` is taken as 2; ``2.5``, booleans and strings are
            refused, not truncated).

    Shapes:
        - **input:** :math:`(2, \text{nnz})`, :math:`(E)` for
          ``hyperedge_batch``
        - **output:** :math:`(2, \text{nnz}')`, :math:`(E)` bool

    Example:
        >>> index = torch.tensor([[0, 1, 1, 0, 2], [0, 0, 1, 1, 2]])
        >>> unique_hyperedges(index)
        (tensor([[0, 1, 2],
                [0, 0, 1]]), tensor([ True, False,  True]))
    """
    if hyperedge_index.dim() != 2 or hyperedge_index.size(0) != 2:
        raise ValueError(f"'hyperedge_index' must have shape [2, nnz], got "
                         f"{list(hyperedge_index.shape)}")
    for name, t in (('hyperedge_index', hyperedge_index),
                    ('hyperedge_batch', hyperedge_batch)):
        if t is not None and (t.is_floating_point() or t.is_complex()
                              or t.dtype == torch.bool):
            raise ValueError(f"'{name}' must hold integer ids, got dtype "
                             f"{t.dtype}; convert it with .long() after "
                             f"checking the ids are whole numbers")
    node, edge = hyperedge_index.long()
    device = node.device
    if num_hyperedges is None:
        num_hyperedges = int(edge.max()) + 1 if edge.numel() else 0
    E = check_count('num_hyperedges', num_hyperedges, 0)
    if E == 0:
        return hyperedge_index.new_zeros(2, 0), torch.zeros(
            0, dtype=torch.bool, device=device)
    n = int(node.max()) + 1 if node.numel() else 1
    order = torch.argsort(edge * n + node)
    node, edge = node[order], edge[order]
    size = torch.bincount(edge, minlength=E)
    start = torch.cumsum(size, 0) - size
    pos = torch.arange(node.numel(), device=device) - start[edge]
    width = int(size.max()) if node.numel() else 0
    key = torch.full((E, width + 1), -1, dtype=torch.long, device=device)
    key[edge, pos + 1] = node
    if hyperedge_batch is not None:
        key[:, 0] = hyperedge_batch.long()
    _, group = torch.unique(key, dim=0, return_inverse=True)
    first = torch.full((int(group.max()) + 1, ), E, dtype=torch.long,
                       device=device)
    first.scatter_reduce_(0, group, torch.arange(E, device=device), 'amin')
    keep = torch.zeros(E, dtype=torch.bool, device=device)
    keep[first] = True
    new_id = torch.cumsum(keep.long(), 0) - 1
    member = keep[edge]
    out = torch.stack([node[member], new_id[edge[member]]])
    return out.to(hyperedge_index.dtype), keep
