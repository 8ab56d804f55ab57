r"""The incidence MLP over candidate pairs, chunked, with a backward pass
that recomputes what it needs.

:func:`pair_mlp` scores every candidate pair with
:math:`z_k = w_2^\top \mathrm{ReLU}(a_{i_k} + c_{j_k} + u_k w_u) + b_2`
without ever holding the :math:`[\text{nnz}, d]` hidden layer: forward and
backward run over chunks of pairs (:mod:`.chunks`), so a step keeps only
:math:`O(\text{nnz} + (N + M)\,d)` floats for autograd. Four autograd
functions implement it: the generic gather kernel (:class:`_PairMLP`), dense
kernels for the complete layout (:class:`_CompletePairMLP`, no per-pair
gathers) and for :math:`K` pairs per slot (:class:`_SlotPairMLP`), and
:func:`linear_pair_mlp`'s wrapper (:class:`_LinearPairMLP`) that recomputes
the two input projections in backward instead of keeping them.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import Linear

from torch_geometric_hyper.nn.kernels.chunks import (
    chunk_ranges,
    default_chunk_elements,
    gather_rows,
    work_buffer,
)
from torch_geometric_hyper.nn.kernels.incidence import CandidateIncidence

__all__ = ['pair_mlp', 'linear_pair_mlp']


def _weight_buffers(w_u: Tensor, w_out: Tensor):
    # gradient accumulators of w_u and w_out, and the gradient's scale of u
    return torch.zeros_like(w_u), torch.zeros_like(w_out), w_u * w_out


def _apply_out_scale(w_out: Tensor, *grads: Tensor) -> None:
    # every accumulated G-sum is finally scaled by the constant w_out
    for g in grads:
        g *= w_out


def _hidden_grads(h: Tensor, g: Tensor, u: Tensor, w_uo: Tensor,
                  gwo: Tensor, gwu: Tensor, gu: Tensor) -> Tensor:
    # For a chunk's hidden layer h (after the ReLU, any leading shape, last
    # dim d) and its logits' gradient g: accumulates the gradients of
    # w_out and w_u (before the w_out scale), writes u's into gu, and
    # turns h into G = 1[h > 0] * g, returned flat [pairs, d] for the
    # caller's a and c gradients.
    flat = h.view(-1, h.size(-1))
    gwo.addmv_(flat.t(), g.reshape(-1))
    h.sign_().mul_(g.unsqueeze(-1))  # h >= 0 after the ReLU: G
    torch.mv(flat, w_uo, out=gu.view(-1))
    gwu.addmv_(flat.t(), u.reshape(-1))
    return flat


class _PairMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, c, u, w_u, w_out, b_out, row, col, chunk_elements):
        nnz, d = row.numel(), a.size(1)
        out = a.new_empty(nnz)
        work, work_c = (work_buffer(t, nnz, d, chunk_elements) for t in (a, c))
        for s, e in chunk_ranges(nnz, d, chunk_elements):
            h = gather_rows(a, row[s:e], work)
            h += gather_rows(c, col[s:e], work_c)
            h.addcmul_(u[s:e, None], w_u)
            h.relu_()
            torch.mv(h, w_out, out=out[s:e])
        out += b_out
        ctx.save_for_backward(a, c, u, w_u, w_out, row, col)
        ctx.chunk_elements = chunk_elements
        return out

    @staticmethod
    def backward(ctx, grad):
        a, c, u, w_u, w_out, row, col = ctx.saved_tensors
        nnz, d = row.numel(), a.size(1)
        grad = grad.contiguous()
        # With G = 1[pre > 0] * grad (per pair, per hidden unit), every
        # gradient is G times a constant column scale w_out: accumulate G
        # and apply the scale once at the end.
        ga = torch.zeros_like(a)
        gc = torch.zeros_like(c)
        gu = torch.empty_like(u)
        gwu, gwo, w_uo = _weight_buffers(w_u, w_out)
        work, work_c = (work_buffer(t, nnz, d, ctx.chunk_elements)
                        for t in (a, c))
        for s, e in chunk_ranges(nnz, d, ctx.chunk_elements):
            r, q, us, g = row[s:e], col[s:e], u[s:e], grad[s:e]
            h = gather_rows(a, r, work)
            h += gather_rows(c, q, work_c)
            h.addcmul_(us[:, None], w_u)
            h.relu_()
            h = _hidden_grads(h, g, us, w_uo, gwo, gwu, gu[s:e])
            ga.index_add_(0, r, h)
            gc.index_add_(0, q, h)
        _apply_out_scale(w_out, ga, gc, gwu)
        return ga, gc, gu, gwu, gwo, grad.sum().reshape(1), None, None, None


def _complete_hidden(a, cv, u2, w_u, graph, s: int, e: int,
                     work: Tensor) -> Tensor:
    # ReLU(c[g_i] + a_i + u_ij w_u) for the nodes s..e-1: [e - s, m, d],
    # written into the buffer work
    m, d = cv.shape[1:]
    h = work[:(e - s) * m * d].view(e - s, m, d)
    torch.index_select(cv, 0, graph[s:e], out=h)
    h += a[s:e, None, :]
    h.addcmul_(u2[s:e, :, None], w_u)
    return h.relu_()


def _uniform_chunks(N: int, n: int, width: int,
                    chunk_elements: int):
    # chunks of whole graphs of n nodes (node range s..e, graphs g0..g1),
    # or, when one graph exceeds twice the working set, pieces of one graph
    rows = max(1, chunk_elements // max(1, width))
    if 2 * rows >= n:
        step = max(1, rows // n) * n
        for s in range(0, N, step):
            e = min(N, s + step)
            yield s, e, s // n, e // n
    else:
        s = 0
        while s < N:
            e = min(N, s + rows, (s // n + 1) * n)  # never past its graph
            yield s, e, s // n, s // n + 1
            s = e


def _uniform_hidden(a, cv, u2, w_u, n: int, s: int, e: int, g0: int,
                    g1: int, work: Tensor) -> Tensor:
    # _complete_hidden when graph g holds the nodes g n .. g n + n - 1:
    # the slot terms broadcast over each graph's nodes, with no gather
    m, d = cv.shape[1:]
    h = work[:(e - s) * m * d].view(e - s, m, d)
    if e - s == (g1 - g0) * n:  # whole graphs
        torch.add(a[s:e].view(g1 - g0, n, 1, d), cv[g0:g1, None],
                  out=h.view(g1 - g0, n, m, d))
    else:  # a piece of graph g0
        torch.add(a[s:e, None, :], cv[g0], out=h)
    h.addcmul_(u2[s:e, :, None], w_u)
    return h.relu_()


class _CompletePairMLP(torch.autograd.Function):
    # pair_mlp on the complete layout: node i's pairs are the m slots of
    # its graph g_i, in order, so the hidden layer of a chunk of nodes is
    # c[g_i] + a_i broadcast as [nodes, m, d]: no per-pair gathers, and
    # the gradient of a is a sum over m, of c one index_add per graph row.
    # With n > 0 nodes in every graph (graph g: nodes g n .. g n + n - 1)
    # not even c is gathered, and c's gradient is a sum over n.
    @staticmethod
    def forward(ctx, a, c, u, w_u, w_out, b_out, graph, m, n,
                chunk_elements):
        N, d = a.shape
        cv = c.view(-1, m, d)
        u2 = u.view(N, m)
        out = a.new_empty(N, m)
        for s, e, h in _complete_pieces(a, cv, u2, w_u, graph, n,
                                        chunk_elements):
            torch.matmul(h, w_out, out=out[s:e])
        out += b_out
        ctx.save_for_backward(a, c, u, w_u, w_out, graph)
        ctx.m, ctx.n, ctx.chunk_elements = m, n, chunk_elements
        return out.view(-1)

    @staticmethod
    def backward(ctx, grad):
        a, c, u, w_u, w_out, graph = ctx.saved_tensors
        m, n = ctx.m, ctx.n
        N, d = a.shape
        cv = c.view(-1, m, d)
        g2 = grad.contiguous().view(N, m)
        u2 = u.view(N, m)
        ga = torch.empty_like(a)
        gc = torch.zeros_like(cv)
        gu = a.new_empty(N, m)
        gwu, gwo, w_uo = _weight_buffers(w_u, w_out)
        for s, e, h in _complete_pieces(a, cv, u2, w_u, graph, n,
                                        ctx.chunk_elements):
            _hidden_grads(h, g2[s:e], u2[s:e], w_uo, gwo, gwu, gu[s:e])
            torch.sum(h, 1, out=ga[s:e])
            if n == 0:
                gc.index_add_(0, graph[s:e], h)
            elif e - s >= n:  # whole graphs g0..g1
                g0, g1 = s // n, e // n
                torch.sum(h.view(-1, n, m, d), 1, out=gc[g0:g1])
            else:
                gc[s // n] += h.sum(0)
        _apply_out_scale(w_out, ga, gc, gwu)
        return (ga, gc.view(-1, d), gu.view(-1), gwu, gwo,
                grad.sum().reshape(1), None, None, None, None)


def _complete_pieces(a, cv, u2, w_u, graph, n: int,
                     chunk_elements: Optional[int]):
    # (s, e, hidden layer of nodes s..e-1) chunk by chunk, every chunk in
    # one buffer (the caller is done with a chunk when it asks for the
    # next): one allocation per call instead of one per chunk, which keeps
    # the allocator's heap from fragmenting (peak RSS)
    N = a.size(0)
    width = cv.size(1) * a.size(1)
    pieces = (_uniform_chunks(N, n, width, chunk_elements) if n > 0 else
              ((s, e, 0, 0)
               for s, e in chunk_ranges(N, width, chunk_elements)))
    work = None
    for s, e, g0, g1 in pieces:
        if work is None or work.numel() < (e - s) * width:
            work = a.new_empty((e - s) * width)  # the first is the largest
        if n > 0:
            yield s, e, _uniform_hidden(a, cv, u2, w_u, n, s, e, g0, g1,
                                        work)
        else:
            yield s, e, _complete_hidden(a, cv, u2, w_u, graph, s, e, work)


def _slot_hidden(a, c, u2, w_u, nodes, s: int, e: int,
                 work: Tensor) -> Tensor:
    # ReLU(a[i] + c_j + u_ji w_u) for the slots s..e-1 and their K
    # candidates i: [e - s, K, d], written into the buffer work
    K = nodes.size(1)
    h = gather_rows(a, nodes[s:e].reshape(-1), work).view(e - s, K, -1)
    h += c[s:e, None, :]
    h.addcmul_(u2[s:e, :, None], w_u)
    return h.relu_()


class _SlotPairMLP(torch.autograd.Function):
    # pair_mlp when every slot holds K pairs: over the slot-major [M, K]
    # layout the slot term broadcasts (no gather of c) and its gradient is
    # a sum over K (no index_add); pairs are permuted in and out once.
    @staticmethod
    def forward(ctx, a, c, u, w_u, w_out, b_out, perm, nodes,
                chunk_elements):
        M, K = nodes.shape
        u2 = u.index_select(0, perm).view(M, K)
        out2 = a.new_empty(M, K)
        work = work_buffer(a, M, K * a.size(1), chunk_elements)
        for s, e in chunk_ranges(M, K * a.size(1), chunk_elements):
            h = _slot_hidden(a, c, u2, w_u, nodes, s, e, work)
            torch.matmul(h, w_out, out=out2[s:e])
        out = a.new_empty(perm.numel())
        out[perm] = out2.view(-1) + b_out
        ctx.save_for_backward(a, c, u2, w_u, w_out, perm, nodes)
        ctx.chunk_elements = chunk_elements
        return out

    @staticmethod
    def backward(ctx, grad):
        a, c, u2, w_u, w_out, perm, nodes = ctx.saved_tensors
        M, K = nodes.shape
        d = a.size(1)
        g2 = grad.contiguous()[perm].view(M, K)
        ga = torch.zeros_like(a)
        gc = torch.empty_like(c)
        gu2 = a.new_empty(M, K)
        gwu, gwo, w_uo = _weight_buffers(w_u, w_out)
        work = work_buffer(a, M, K * d, ctx.chunk_elements)
        for s, e in chunk_ranges(M, K * d, ctx.chunk_elements):
            gs = g2[s:e]
            h = _slot_hidden(a, c, u2, w_u, nodes, s, e, work)
            flat = _hidden_grads(h, gs, u2[s:e], w_uo, gwo, gwu, gu2[s:e])
            torch.sum(h, 1, out=gc[s:e])
            ga.index_add_(0, nodes[s:e].reshape(-1), flat)
        _apply_out_scale(w_out, ga, gc, gwu)
        gu = torch.empty_like(grad)
        gu[perm] = gu2.view(-1)
        return (ga, gc, gu, gwu, gwo, grad.sum().reshape(1), None, None,
                None)


def pair_mlp(a: Tensor, c: Tensor, u: Tensor, w_u: Tensor, w_out: Tensor,
             b_out: Tensor, index,
             chunk_elements: Optional[int] = None) -> Tensor:
    r"""Scores every candidate pair with a one-hidden-layer MLP.

    .. math::
        z_k = w_{\text{out}}^\top \,\mathrm{ReLU}\big(a_{i_k} + c_{j_k}
        + u_k\, w_u\big) + b_{\text{out}}

    for each pair :math:`k = (i_k, j_k)`. Equivalent to
    ``relu(a[i] + c[j] + u[:, None] * w_u) @ w_out + b_out`` but never holds
    more than ``chunk_elements`` floats of the ``[nnz, d]`` hidden layer:
    the backward pass recomputes it chunk by chunk.

    Args:
        a (torch.Tensor): ``[N, d]`` node terms (bias included).
        c (torch.Tensor): ``[M, d]`` slot terms.
        u (torch.Tensor): ``[nnz]`` per-pair scalar input.
        w_u (torch.Tensor): ``[d]`` weight of the scalar input.
        w_out (torch.Tensor): ``[d]`` output weight.
        b_out (torch.Tensor): ``[1]`` output bias.
        index (torch.Tensor or CandidateIncidence): ``[2, nnz]`` pairs
            (node, slot), or the candidate incidence: the complete layout
            of :meth:`CandidateIncidence.complete`, or one with ``K``
            pairs in every slot, then runs a dense kernel (the same
            values, with fewer per-pair gathers; for graphs of one size,
            :attr:`CandidateIncidence.nodes_per_graph`, none at all).
        chunk_elements (int, optional): working-set size in floats;
            ``None`` (default): :func:`default_chunk_elements`.

    Returns:
        torch.Tensor: ``[nnz]`` logits.
    """
    if torch.compiler.is_compiling():
        # Let the compiler fuse the expression (and decide what to recompute).
        index = index.index if isinstance(index,
                                          CandidateIncidence) else index
        h = torch.relu(a[index[0]] + c[index[1]] + u[:, None] * w_u)
        return h @ w_out + b_out
    # One dtype for the hand-written kernels (mixed under autocast).
    c, u, w_u, w_out, b_out = (t.to(a.dtype) for t in (c, u, w_u, w_out,
                                                        b_out))
    if chunk_elements is None:
        chunk_elements = default_chunk_elements(a.device)
    kernel, meta = _pair_kernel(index, a.size(0), c.size(0))
    return kernel.apply(a, c, u, w_u, w_out, b_out.reshape(1), *meta,
                        chunk_elements)


def _pair_kernel(index, num_nodes: int, num_slots: int):
    # (kernel, its index arguments before chunk_elements) for the pairs
    m = k = 0
    if isinstance(index, CandidateIncidence):
        inc = index
        m, k = inc.slots_per_node, inc.nodes_per_slot
        index = inc.index
    if m > 0 and num_nodes > 0:
        # node i's first pair is slot g_i m of its graph g_i (not needed
        # when every graph has n nodes: graph g holds nodes g n ..)
        graph = None if inc.nodes_per_graph else index[1].view(
            num_nodes, m)[:, 0].div(m, rounding_mode='floor')
        return _CompletePairMLP, (graph, m, inc.nodes_per_graph)
    if k > 0 and num_slots > 0 and index.size(1) == num_slots * k:
        nodes = inc.node.index_select(0, inc.slot_perm).view(-1, k)
        return _SlotPairMLP, (inc.slot_perm, nodes)
    return _PairMLP, (index[0], index[1])


class _KernelContext:
    # what the pair kernels use of an autograd context, to run them inside
    # another Function
    def __init__(self, saved=()):
        self.saved_tensors = tuple(saved)

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class _LinearPairMLP(torch.autograd.Function):
    # pair_mlp(x W_a^T + b_a, y W_c^T, ...) that keeps x and y (which the
    # caller holds anyway) instead of the two projections: they are
    # recomputed in backward (two small matmuls). Every pair kernel saves
    # (a, c, ...) first.
    @staticmethod
    def forward(ctx, kernel, meta, x, y, w_a, b_a, w_c, u, w_u, w_out,
                b_out):
        inner = _KernelContext()
        out = kernel.forward(inner, F.linear(x, w_a, b_a), F.linear(y, w_c),
                             u, w_u, w_out, b_out, *meta)
        ctx.kernel = kernel
        ctx.attributes = {key: value for key, value in vars(inner).items()
                          if key != 'saved_tensors'}
        ctx.save_for_backward(x, y, w_a, b_a, w_c,
                              *inner.saved_tensors[2:])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, y, w_a, b_a, w_c, *rest = ctx.saved_tensors
        inner = _KernelContext((F.linear(x, w_a, b_a), F.linear(y, w_c),
                                *rest))
        vars(inner).update(ctx.attributes)
        ga, gc, gu, gwu, gwo, gbo = ctx.kernel.backward(inner, grad)[:6]
        return (None, None, ga @ w_a, gc @ w_c, ga.t() @ x,
                None if b_a is None else ga.sum(0), gc.t() @ y, gu, gwu,
                gwo, gbo)


def linear_pair_mlp(x: Tensor, y: Tensor, lin_a: Linear, lin_c: Linear,
                    u: Tensor, w_u: Tensor, w_out: Tensor, b_out: Tensor,
                    index, chunk_elements: Optional[int] = None) -> Tensor:
    r""":func:`pair_mlp` of two linear projections,
    ``pair_mlp(lin_a(x), lin_c(y), u, w_u, w_out, b_out, index)``:

    .. math::
        z_k = w_{\text{out}}^\top \,\mathrm{ReLU}\big(W_a x_{i_k} + b_a
        + W_c y_{j_k} + u_k\, w_u\big) + b_{\text{out}}

    With gradients recorded, the projections :math:`(N, d)` and
    :math:`(M, d)` are not kept for the backward pass but recomputed there
    from ``x`` and ``y``, which a caller such as
    :class:`~torch_geometric_hyper.nn.RefinementStep` holds anyway: the same
    values and gradients for :math:`(N + M)\,d` fewer floats stored. Without
    gradients, under autocast, while compiling or with mixed dtypes it runs
    the composition.

    Args:
        x (torch.Tensor): ``[N, F_a]`` node inputs of ``lin_a``.
        y (torch.Tensor): ``[M, F_c]`` slot inputs of ``lin_c``.
        lin_a (torch.nn.Linear): node projection (bias optional).
        lin_c (torch.nn.Linear): slot projection (bias optional).
        u, w_u, w_out, b_out, index, chunk_elements: as in
            :func:`pair_mlp`.

    Returns:
        torch.Tensor: ``[nnz]`` logits.
    """
    tensors = [x, y, lin_a.weight, lin_c.weight, u, w_u, w_out, b_out]
    tensors += [b for b in (lin_a.bias, lin_c.bias) if b is not None]
    fused = (torch.is_grad_enabled() and not torch.compiler.is_compiling()
             and not torch.is_autocast_enabled(x.device.type)
             and len({t.dtype for t in tensors}) == 1)
    if not fused:
        return pair_mlp(lin_a(x), lin_c(y), u, w_u, w_out, b_out, index,
                        chunk_elements)
    if chunk_elements is None:
        chunk_elements = default_chunk_elements(x.device)
    kernel, meta = _pair_kernel(index, x.size(0), y.size(0))
    b_a, b_c = lin_a.bias, lin_c.bias
    if b_c is not None:  # one bias: fold the slot one into the node one
        b_a = b_c if b_a is None else b_a + b_c
    return _LinearPairMLP.apply(kernel, (*meta, chunk_elements), x, y,
                                lin_a.weight, b_a, lin_c.weight, u, w_u,
                                w_out, b_out.reshape(1))

