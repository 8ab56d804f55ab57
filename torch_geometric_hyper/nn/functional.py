r"""Memory-lean kernels for message passing over candidate incidence pairs.

A candidate incidence is a bipartite set of ``nnz`` pairs ``(node i, slot j)``
stored as ``index [2, nnz]`` (row 0 node, row 1 slot, PyG's
``hyperedge_index`` convention). Every per-pair quantity the refiner needs is
an :math:`O(\text{nnz}\cdot d)` computation; materialising it costs as much
memory as the whole model. The two autograd functions below compute those
quantities in chunks and recompute what their backward pass needs, so a
refinement step keeps only :math:`O(\text{nnz} + (N + M)\,d)` floats alive
for autograd:

* :func:`pair_mlp` — the incidence MLP
  :math:`z_{ji} = w_2^\top \mathrm{ReLU}(a_i + c_j + u_{ji} w_u) + b_2`.
* :func:`incidence_matmul` — the weighted aggregations
  :math:`\tilde I V` and :math:`\tilde I^\top E` as sparse CSR products
  with a sampled dense-dense product (SDDMM) for the gradient of the
  weights; batched dense products when every graph has the same size.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import Linear

warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')

#: Number of floats a chunked kernel materialises at once with one torch
#: thread (512 KiB in fp32); :func:`default_chunk_elements` scales it.
DEFAULT_CHUNK_ELEMENTS = 1 << 17


#: Working-set size (floats) of the chunked kernels on an accelerator.
ACCELERATOR_CHUNK_ELEMENTS = 1 << 26


def default_chunk_elements(device=None) -> int:
    r"""The working-set size (floats) of the chunked kernels when a module
    or function is given ``chunk_elements=None`` (the default).

    On the CPU, :data:`DEFAULT_CHUNK_ELEMENTS` (:math:`2^{17}`) with one
    torch thread, :math:`2^{19}` with more: larger chunks give each
    operation enough work for two threads. Seconds per refiner training
    batch (convex hull, d=128, T=16, B=4, S=2, batch 64, CPU, checkpointing
    off), with :math:`2^{17}` / :math:`2^{19}`: 2 threads, n=30: 0.93 /
    0.81; n=50: 2.19 / 1.95; 1 thread, n=30: 1.08 / 1.23 and 1.19 / 1.27
    (``benchmarks/train_throughput.py --chunk-elements``, results
    ``train_throughput_chunks_t{1,2}*``; measured before the dense
    kernels for graphs of one size, which made these batches faster).

    On any other ``device`` (a GPU),
    :data:`ACCELERATOR_CHUNK_ELEMENTS` (:math:`2^{26}`, 256 MiB of
    float32): chunks sized for a CPU cache would split one kernel into
    thousands of small launches (a hull batch of 64 sets of 30 points has
    13.8 million pair features, 105 chunks of :math:`2^{17}`), and the
    launches, not the arithmetic, would set the pace.

    Args:
        device (torch.device or str, optional): where the kernels run
            (default: the CPU).
    """
    if device is not None and torch.device(device).type != 'cpu':
        return ACCELERATOR_CHUNK_ELEMENTS
    return DEFAULT_CHUNK_ELEMENTS if torch.get_num_threads() == 1 \
        else 4 * DEFAULT_CHUNK_ELEMENTS


class CandidateIncidence(NamedTuple):
    r"""The candidate ``(node, slot)`` pairs of a batch, with both CSR layouts.

    Build it with :meth:`CandidateIncidence.build`; it is static for a whole
    refinement run, so the sort needed for the slot-major layout happens once.

    Attributes:
        index (torch.Tensor): ``[2, nnz]`` pairs, row 0 node, row 1 slot,
            sorted by node.
        num_nodes (int): :math:`N`, the number of nodes in the batch.
        num_slots (int): :math:`M`, the number of slots in the batch.
        node_ptr (torch.Tensor): ``[N + 1]`` CSR row pointer of the node-major
            layout.
        slot_perm (torch.Tensor): ``[nnz]`` permutation that sorts the pairs
            by slot.
        slot_ptr (torch.Tensor): ``[M + 1]`` CSR row pointer of the slot-major
            layout.
        slots_per_node (int): :math:`m` for the complete layout of
            :meth:`complete`, else 0.
        nodes_per_slot (int): :math:`K` when every slot holds exactly
            :math:`K` pairs (a candidate search with :math:`K` no larger
            than any graph), else 0.
        nodes_per_graph (int): :math:`n` for the complete layout of
            :meth:`complete` when every graph has exactly :math:`n` nodes,
            stored contiguously (known on the CPU only), else 0.
        block_index (torch.Tensor, optional): ``[nnz]`` position of each
            pair in the :math:`B` dense node-major ``[n, m]`` blocks of
            graphs of :math:`n` nodes and :math:`m` slots each, set by
            :meth:`with_blocks` where those blocks are cheaper than the
            sparse layout; else ``None``.
        block_shape (tuple, optional): ``(B, n, m)`` of those blocks.
    """

    index: Tensor
    num_nodes: int
    num_slots: int
    node_ptr: Tensor
    slot_perm: Tensor
    slot_ptr: Tensor
    #: :math:`m` when the pairs are all pairs of every node with its
    #: graph's :math:`m` slots, node-major (from :meth:`complete`), else 0.
    #: Lets :func:`pair_mlp` use a dense kernel.
    slots_per_node: int = 0
    #: :math:`K` when every slot holds exactly :math:`K` pairs, else 0.
    #: Lets :func:`pair_mlp` use a dense kernel over the slot-major
    #: ``[M, K]`` layout.
    nodes_per_slot: int = 0
    #: :math:`n` when :meth:`complete` saw graphs of exactly :math:`n`
    #: nodes each, graph after graph, else 0. Lets :func:`pair_mlp`
    #: broadcast the slot terms of a graph over its nodes (no gather).
    nodes_per_graph: int = 0
    #: Where :meth:`with_blocks` set it: each pair's position in the dense
    #: ``[B, n, m]`` blocks, so both incidence products run as batched
    #: dense matmuls over the blocks.
    block_index: Optional[Tensor] = None
    block_shape: Optional[Tuple[int, int, int]] = None

    @property
    def node(self) -> Tensor:
        return self.index[0]

    @property
    def slot(self) -> Tensor:
        return self.index[1]

    @property
    def nnz(self) -> int:
        return self.index.size(1)

    @property
    def blocks(self) -> Optional[Tuple[int, int, int]]:
        r"""``(B, n, m)`` for the complete layout of :math:`B` graphs of
        :math:`n` nodes each (:attr:`nodes_per_graph`), whose pairs are
        then :math:`B` dense node-major ``[n, m]`` blocks; else ``None``."""
        n, m = self.nodes_per_graph, self.slots_per_node
        if n > 0 and m > 0:
            return self.num_nodes // n, n, m
        return None

    def with_blocks(self, num_graphs: int, nodes_per_graph: int,
                    slots_per_graph: int,
                    max_fill: float = 8.0) -> 'CandidateIncidence':
        r"""The same pairs, marked to take dense per-graph kernels when
        every graph has :math:`n` nodes (graph :math:`g`: nodes :math:`g n`
        to :math:`g n + n - 1`, slots :math:`g m` to :math:`g m + m - 1`)
        and the :math:`B` dense ``[n, m]`` blocks hold at most
        ``max_fill`` times as many entries as there are pairs; otherwise
        returns ``self`` unchanged. The caller vouches for the layout
        (checking it would cost a synchronisation on an accelerator).

        :func:`incidence_matmul` then scatters the values into the blocks
        and runs batched matmuls. With at least an eighth of all pairs
        kept (e.g. :math:`K = 16` of :math:`n \le 128` nodes) that still
        costs :math:`O(\text{nnz} \cdot d)`, and on the CPU it is several
        times faster than the sparse products with their gathering
        backward (``benchmarks/incidence_kernels.py``).

        Args:
            num_graphs (int): :math:`B`.
            nodes_per_graph (int): :math:`n`.
            slots_per_graph (int): :math:`m`.
            max_fill (float, optional): largest ratio of block entries to
                pairs. (default: :obj:`8.0`)
        """
        B, n, m = int(num_graphs), int(nodes_per_graph), int(slots_per_graph)
        if (B < 1 or n < 1 or m < 1 or self.num_nodes != B * n or
                self.num_slots != B * m or self.nnz == 0 or
                B * n * m > max_fill * self.nnz):
            return self
        # node i of graph g = i // n, slot j = g m + l: entry (g, i - g n, l)
        # of the blocks, flat (i - g n) m + l + g n m = i m + l
        pos = self.node * m + torch.remainder(self.slot, m)
        return self._replace(block_index=pos, block_shape=(B, n, m))

    @classmethod
    def build(cls, index: Tensor, num_nodes: int,
              num_slots: int) -> 'CandidateIncidence':
        r"""Sorts ``index`` by node and precomputes both CSR layouts.

        Args:
            index (torch.Tensor): ``[2, nnz]`` integer pairs (node, slot).
            num_nodes (int): number of nodes :math:`N`.
            num_slots (int): number of slots :math:`M`.
        """
        if index.dim() != 2 or index.size(0) != 2:
            raise ValueError(f"candidate index must have shape [2, nnz], got "
                             f"{list(index.shape)}")
        index = index.long()
        # Sort node-major (stable in the slot order given by the caller).
        key = index[0] * num_slots + index[1]
        if index.numel() > 0 and not bool((key[1:] >= key[:-1]).all()):
            index = index[:, torch.argsort(key)]
        return cls._from_node_major(index, num_nodes, num_slots)

    @classmethod
    def _from_node_major(cls, index: Tensor, num_nodes: int,
                         num_slots: int, nodes_per_slot: int = 0
                         ) -> 'CandidateIncidence':
        # ``index`` already sorted by (node, slot); ``nodes_per_slot`` as
        # the caller knows it (checking it would cost a synchronisation)
        node_ptr = _ptr(index[0], num_nodes)
        slot_perm = stable_argsort(index[1], num_slots)
        slot_ptr = _ptr(index[1], num_slots)
        return cls(index, num_nodes, num_slots, node_ptr, slot_perm,
                   slot_ptr, 0, nodes_per_slot)

    @classmethod
    def complete(cls, batch: Tensor, num_graphs: int,
                 slots_per_graph: int) -> 'CandidateIncidence':
        r"""All pairs of every node with the :math:`m` slots of its graph.

        Slot :math:`j` of graph :math:`g` has global id :math:`g m + j`. The
        result is node-major by construction (no sort, no host sync).

        Args:
            batch (torch.Tensor): ``[N]`` graph id of each node.
            num_graphs (int): number of graphs :math:`B`.
            slots_per_graph (int): :math:`m`.
        """
        n = batch.numel()
        m = slots_per_graph
        device = batch.device
        node = torch.arange(n, device=device).repeat_interleave(m)
        local = torch.arange(m, device=device).repeat(n)
        slot = batch.long().repeat_interleave(m) * m + local
        index = torch.stack([node, slot])
        node_ptr = torch.arange(0, n * m + 1, m, device=device)
        slot_perm = torch.argsort(slot, stable=True)
        slot_ptr = _ptr(slot, num_graphs * m)
        return cls(index, n, num_graphs * m, node_ptr, slot_perm, slot_ptr,
                   m, 0, _uniform_size(batch, num_graphs))


def on_host(t: Tensor) -> bool:
    r"""Whether ``t`` lives on the CPU, so host-only fast paths (NumPy)
    may read it; ``False`` while a
    :class:`~torch_geometric_hyper.testing.HostSyncCounter` counts as if
    on an accelerator, so the count follows the accelerator's path."""
    from torch_geometric_hyper.nn.base import _VALIDATION
    return t.device.type == 'cpu' and not _VALIDATION.get('as_accelerator')


def count_values(index: Tensor, size: int) -> Tensor:
    r"""How often each value :math:`v \in [0, \text{size})` occurs in
    ``index``: :math:`c_v = |\{k : \text{index}_k = v\}|`, as
    ``torch.bincount(index, minlength=size)``, without waiting for an
    accelerator.

    :func:`torch.bincount` reads the largest value to size its output, a
    host synchronisation on a GPU; off the host the ones are scattered into
    ``size`` counters instead (on the CPU it stays ``bincount``).

    Args:
        index (torch.Tensor): integer values, all in
            :math:`[0, \text{size})` (not checked: a larger value is an
            index error off the host).
        size (int): number of counters.

    Shapes:
        - **index:** :math:`(L)`
        - **output:** :math:`(\text{size})`, ``int64``
    """
    if on_host(index):
        return torch.bincount(index, minlength=size)
    return torch.zeros(size, dtype=torch.long, device=index.device).index_add_(
        0, index, torch.ones_like(index, dtype=torch.long))


def stable_argsort(keys: Tensor, bound: int) -> Tensor:
    r"""Stable argsort of the integers ``keys`` :math:`(L)`, all in
    :math:`[0, \text{bound})`. On the CPU, keys below :math:`2^{16}` go
    through NumPy's radix sort, linear in :math:`L` (about 6x faster than
    :func:`torch.argsort` on 57,344 keys); otherwise
    ``torch.argsort(stable=True)``. The order is the same."""
    if on_host(keys) and bound <= 2 ** 16 and keys.numel() > 0:
        short = keys.detach().numpy().astype(np.uint16)
        return torch.from_numpy(np.argsort(short, kind='stable'))
    return torch.argsort(keys, stable=True)


def _uniform_size(batch: Tensor, num_graphs: int) -> int:
    # n when batch is [0]*n + [1]*n + ... + [B-1]*n, else 0; read on the
    # host only (on an accelerator it would cost a synchronisation)
    n = batch.numel()
    if not on_host(batch) or num_graphs < 1 or n == 0 or n % num_graphs:
        return 0
    size = n // num_graphs
    expected = torch.arange(num_graphs).repeat_interleave(size)
    return size if torch.equal(batch.long(), expected) else 0


def _ptr(sorted_or_not: Tensor, size: int) -> Tensor:
    count = count_values(sorted_or_not, size)
    ptr = sorted_or_not.new_zeros(size + 1)
    torch.cumsum(count, 0, out=ptr[1:])
    return ptr


def _chunks(nnz: int, width: int, chunk_elements: int):
    # chunk_elements resolved by the entry point (pair_mlp, _sddmm), which
    # knows the device (default_chunk_elements(device))
    step = max(1, chunk_elements // max(1, width))
    for start in range(0, nnz, step):
        yield start, min(nnz, start + step)


def _work(like: Tensor, total: int, width: int,
          chunk_elements: int) -> Tensor:
    # one buffer for the largest chunk of _chunks(total, width, ...): the
    # kernels write every chunk into it (one allocation per call, not one
    # per chunk, which keeps the allocator's heap from fragmenting)
    step = max(1, chunk_elements // max(1, width))
    return like.new_empty(min(total, step) * width)


def _rows(src: Tensor, index: Tensor, work: Tensor) -> Tensor:
    # src[index] ([len(index), *src.shape[1:]]) written into work
    width = math.prod(src.shape[1:])
    out = work[:index.numel() * width].view(index.numel(), *src.shape[1:])
    return torch.index_select(src, 0, index, out=out)


# --------------------------------------------------------------------------
# Pair MLP
# --------------------------------------------------------------------------
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
        work, work_c = (_work(t, nnz, d, chunk_elements) for t in (a, c))
        for s, e in _chunks(nnz, d, chunk_elements):
            h = _rows(a, row[s:e], work)
            h += _rows(c, col[s:e], work_c)
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
        work, work_c = (_work(t, nnz, d, ctx.chunk_elements)
                        for t in (a, c))
        for s, e in _chunks(nnz, d, ctx.chunk_elements):
            r, q, us, g = row[s:e], col[s:e], u[s:e], grad[s:e]
            h = _rows(a, r, work)
            h += _rows(c, q, work_c)
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
              ((s, e, 0, 0) for s, e in _chunks(N, width, chunk_elements)))
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
    h = _rows(a, nodes[s:e].reshape(-1), work).view(e - s, K, -1)
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
        work = _work(a, M, K * a.size(1), chunk_elements)
        for s, e in _chunks(M, K * a.size(1), chunk_elements):
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
        work = _work(a, M, K * d, ctx.chunk_elements)
        for s, e in _chunks(M, K * d, ctx.chunk_elements):
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


# --------------------------------------------------------------------------
# Incidence-weighted aggregation (SpMM with SDDMM backward)
# --------------------------------------------------------------------------
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
    work, work_b = (_work(t, row.numel(), a.size(1), chunk_elements)
                    for t in (a, b))
    for s, e in _chunks(row.numel(), a.size(1), chunk_elements):
        h = _rows(a, row[s:e], work)
        h *= _rows(b, col[s:e], work_b)
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
