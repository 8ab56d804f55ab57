r"""The candidate incidence, a bipartite set of ``(node, slot)`` pairs with
both CSR layouts (:class:`CandidateIncidence`), and the index helpers that
build it without waiting for an accelerator (:func:`count_values`,
:func:`stable_argsort`, :func:`csr_ptr`)."""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from torch_geometric_hyper.debug import on_host

__all__ = [
    'CandidateIncidence',
    'count_values',
    'stable_argsort',
    'csr_ptr',
]


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
    #: Lets :func:`~torch_geometric_hyper.nn.kernels.pair_mlp` use a dense
    #: kernel.
    slots_per_node: int = 0
    #: :math:`K` when every slot holds exactly :math:`K` pairs, else 0.
    #: Lets :func:`~torch_geometric_hyper.nn.kernels.pair_mlp` use a dense
    #: kernel over the slot-major ``[M, K]`` layout.
    nodes_per_slot: int = 0
    #: :math:`n` when :meth:`complete` saw graphs of exactly :math:`n`
    #: nodes each, graph after graph, else 0. Lets
    #: :func:`~torch_geometric_hyper.nn.kernels.pair_mlp` broadcast the slot
    #: terms of a graph over its nodes (no gather).
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

        :func:`~torch_geometric_hyper.nn.kernels.incidence_matmul` then
        scatters the values into the blocks and runs batched matmuls. With
        at least an eighth of all pairs kept (e.g. :math:`K = 16` of
        :math:`n \le 128` nodes) that still
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
        node_ptr = csr_ptr(index[0], num_nodes)
        slot_perm = stable_argsort(index[1], num_slots)
        slot_ptr = csr_ptr(index[1], num_slots)
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
        slot_ptr = csr_ptr(slot, num_graphs * m)
        return cls(index, n, num_graphs * m, node_ptr, slot_perm, slot_ptr,
                   m, 0, _uniform_size(batch, num_graphs))



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


def csr_ptr(index: Tensor, size: int) -> Tensor:
    r"""The CSR row pointer :math:`(\text{size} + 1)` of the values
    ``index`` (sorted or not), all in :math:`[0, \text{size})`:
    ``ptr[v]`` is how many values are below :math:`v`. No host
    synchronisation (:func:`count_values`)."""
    count = count_values(index, size)
    ptr = index.new_zeros(size + 1)
    torch.cumsum(count, 0, out=ptr[1:])
    return ptr

