r"""Weighted aggregations along the candidate pairs: the incidence products
:math:`\tilde I V` and :math:`\tilde I^\top E` (:func:`incidence_matmul`)
as sparse CSR products (SpMM) with a sampled dense-dense product (SDDMM) for
the gradient of the weights, or as batched dense products over per-graph
blocks when every graph has the same size; and the per-slot gate of the
pairs (:func:`gate_pairs`).
"""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_hyper.nn.kernels.chunks import (
    chunk_ranges,
    default_chunk_elements,
    gather_rows,
    work_buffer,
)
from torch_geometric_hyper.nn.kernels.incidence import CandidateIncidence

__all__ = ['incidence_matmul', 'gate_pairs']

warnings.filterwarnings('ignore',
                        message='Sparse CSR tensor support is in beta')


def _csr(ptr: Tensor, col: Tensor, values: Tensor, rows: int, cols: int):
    return torch.sparse_csr_tensor(ptr, col, values, (rows, cols),
                                   check_invariants=False)


def _spmm(inc: CandidateIncidence, values: Tensor, x: Tensor,
          to_slots: bool) -> Tensor:
    if to_slots:  # out[slot] = sum_pairs w * x[node]
        perm = inc.slot_perm
        mat = _csr(inc.slot_ptr, inc.node[perm], values[perm],
                   inc.num_slots, inc.num_nodes)
    else:  # out[node] = sum_pairs w * x[slot]
        mat = _csr(inc.node_ptr, inc.slot, values, inc.num_nodes,
                   inc.num_slots)
    if x.numel() == 0 or values.numel() == 0:
        rows = inc.num_slots if to_slots else inc.num_nodes
        return x.new_zeros(rows, x.size(1))
    with torch.autocast(x.device.type, enabled=False):  # keep x's dtype
        return mat @ x


def _sddmm(row: Tensor, col: Tensor, a: Tensor, b: Tensor,
           chunk_elements: Optional[int]) -> Tensor:
    """``out[k] = <a[row[k]], b[col[k]]>`` in chunks."""
    if chunk_elements is None:
        chunk_elements = default_chunk_elements(a.device)
    out = a.new_empty(row.numel())
    work, work_b = (work_buffer(t, row.numel(), a.size(1), chunk_elements)
                    for t in (a, b))
    for s, e in chunk_ranges(row.numel(), a.size(1), chunk_elements):
        h = gather_rows(a, row[s:e], work)
        h *= gather_rows(b, col[s:e], work_b)
        torch.sum(h, dim=1, out=out[s:e])
    return out


class _IncidenceMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, x, inc_tensors, meta, to_slots, chunk_elements):
        inc = CandidateIncidence(*inc_tensors[:1], *meta, *inc_tensors[1:])
        out = _spmm(inc, values, x, to_slots)
        ctx.save_for_backward(values, x, *inc_tensors)
        ctx.meta, ctx.to_slots = meta, to_slots
        ctx.chunk_elements = chunk_elements
        return out

    @staticmethod
    def backward(ctx, grad):
        values, x, *inc_tensors = ctx.saved_tensors
        inc = CandidateIncidence(inc_tensors[0], *ctx.meta, *inc_tensors[1:])
        grad = grad.contiguous()
        gv = gx = None
        if ctx.needs_input_grad[0]:
            if ctx.to_slots:  # out[slot] += w * x[node]
                gv = _sddmm(inc.slot, inc.node, grad, x, ctx.chunk_elements)
            else:
                gv = _sddmm(inc.node, inc.slot, grad, x, ctx.chunk_elements)
        if ctx.needs_input_grad[1]:
            gx = _spmm(inc, values, grad, not ctx.to_slots)
        return gv, gx, None, None, None, None


def _block_matmul(shape: Tuple[int, int, int], values: Tensor, x: Tensor,
                  to_slots: bool) -> Tensor:
    # B graphs of n nodes and m slots each, ``shape`` = (B, n, m): W is
    # block diagonal with B dense [m, n] blocks, and ``values`` (the
    # complete layout, or candidate values scattered into it) are their
    # transposes [B, n, m], so both products are batched dense matmuls;
    # autograd's gradient of the values is then a batched matmul too (the
    # SDDMM restricted to the blocks).
    B, n, m = shape
    w = values.view(B, n, m)
    with torch.autocast(x.device.type, enabled=False):  # keep x's dtype
        if to_slots:
            out = torch.bmm(w.transpose(1, 2), x.view(B, n, x.size(1)))
        else:
            out = torch.bmm(w, x.view(B, m, x.size(1)))
    return out.view(-1, x.size(1))


def incidence_matmul(inc: CandidateIncidence, values: Tensor, x: Tensor,
                     to_slots: bool,
                     chunk_elements: Optional[int] = None) -> Tensor:
    r"""Weighted aggregation along the candidate pairs.

    With :math:`W \in \mathbb{R}^{M \times N}` the sparse matrix holding
    ``values`` at the candidate pairs,

    .. math::
        \text{to\_slots:}\ \ \mathbf{out} = W X \in \mathbb{R}^{M\times d},
        \qquad
        \text{to nodes:}\ \ \mathbf{out} = W^\top X \in
        \mathbb{R}^{N\times d}.

    Each sum stays inside one graph because the candidate pairs never cross
    graphs. Differentiable in ``values`` and ``x``. For the complete layout
    of graphs of one size (:attr:`CandidateIncidence.nodes_per_graph`) both
    products, and the gradients, are batched dense matrix products over
    the graphs' :math:`m \times n` blocks; the same holds for candidate
    pairs marked by :meth:`CandidateIncidence.with_blocks`, whose values
    are first scattered into the blocks.

    Args:
        inc (CandidateIncidence): the candidate pairs.
        values (torch.Tensor): ``[nnz]`` weights, in ``inc.index`` order.
        x (torch.Tensor): ``[N, d]`` node features (``to_slots=True``) or
            ``[M, d]`` slot features (``to_slots=False``).
        to_slots (bool): direction of the aggregation.
        chunk_elements (int, optional): working-set size of the backward
            SDDMM; ``None`` (default): :func:`default_chunk_elements`.
    """
    if torch.compiler.is_compiling():
        src, dst = (inc.node, inc.slot) if to_slots else (inc.slot, inc.node)
        size = inc.num_slots if to_slots else inc.num_nodes
        msg = x[src] * values[:, None]
        return x.new_zeros(size, x.size(1)).index_add_(0, dst, msg)
    # One dtype (mixed under autocast); the sparse kernels need float32 or
    # float64, so half-precision inputs are aggregated in float32.
    if x.dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    values = values.to(x.dtype)
    shape = inc.blocks
    if shape is not None:
        return _block_matmul(shape, values, x, to_slots)
    if inc.block_index is not None:
        # scattered into the dense blocks (gathered back in backward)
        B, n, m = inc.block_shape
        dense = values.new_zeros(B * n * m).scatter(0, inc.block_index,
                                                    values)
        return _block_matmul(inc.block_shape, dense, x, to_slots)
    tensors = (inc.index, inc.node_ptr, inc.slot_perm, inc.slot_ptr)
    meta = (inc.num_nodes, inc.num_slots)
    return _IncidenceMatmul.apply(values, x, tensors, meta, to_slots,
                                  chunk_elements)


def gate_pairs(inc: CandidateIncidence, pair: Tensor, slot: Tensor
               ) -> Tensor:
    r"""Scales every candidate pair's value by a value of its slot:
    ``pair * slot[inc.slot]``, broadcast without a gather for the complete
    layout of graphs of one size.

    Args:
        inc (CandidateIncidence): the candidate pairs.
        pair (torch.Tensor): ``[nnz]`` values, in ``inc.index`` order.
        slot (torch.Tensor): ``[M]`` values, one per slot.
    """
    if inc.blocks is not None and not torch.compiler.is_compiling():
        B, n, m = inc.blocks
        return (pair.view(B, n, m) * slot.view(B, 1, m)).view(-1)
    return pair * slot.index_select(0, inc.slot)
