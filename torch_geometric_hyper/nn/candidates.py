r"""Sparse candidate incidences chosen by the model: :math:`K` candidate
nodes per hyperedge slot, refreshed as refinement proceeds, so a step costs
:math:`O((N + M) K d)` instead of :math:`O(N M d)`.

* **Start.** Slot :math:`j` of graph :math:`g` gets an anchor in input
  space, :math:`a_j = \mu_g + s_g \odot \varepsilon_j`, where
  :math:`\mu_g, s_g` are the mean and standard deviation of the graph's node
  features and :math:`\varepsilon_j` the slot's own initial noise
  (recovered from its initial latent :math:`E^{(0)}_j = \mu + \sigma \odot
  \varepsilon_j`, first :math:`F` channels). Its candidates are the
  :math:`K` nodes nearest to :math:`a_j`.
* **Refresh** (before every step after the first): each slot keeps its
  :math:`c = \lceil K / 4 \rceil` most likely members (highest incidence
  logits), adds their nearest neighbours in input space, then its other
  candidates by decreasing logit, up to :math:`K` distinct nodes. Pairs that
  stay carry their incidence value; new pairs start at 0.

Nearest neighbours come from one k-d tree per graph
(:class:`scipy.spatial.cKDTree`, :math:`O(n \log n)`); nothing scores all
:math:`n \times m` pairs. Every choice depends on the features, the slot
latents and the logits only, never on node order, so the model stays
permutation equivariant; it needs one host synchronisation per refresh
(the tree queries run on the CPU).

Where every graph of the batch has the same number of nodes and a slot's
:math:`K` candidates are at least an eighth of them (e.g. :math:`K = 16`
of :math:`n \le 128`), the incidence products run over dense per-graph
blocks
(:meth:`~torch_geometric_hyper.nn.kernels.CandidateIncidence.with_blocks`):
the same values, faster on the CPU, and still :math:`O(\text{nnz}\, d)`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from torch_geometric_hyper.debug import on_host
from torch_geometric_hyper.nn.kernels.incidence import (
    CandidateIncidence,
    stable_argsort,
)
from torch_geometric_hyper.nn.prediction import graph_ptr


class SparseCandidates:
    r"""The per-batch data of the candidate search: :math:`K`, the graphs'
    node ranges and each node's nearest neighbours.

    Args:
        x (torch.Tensor): :math:`(N, F)` node features (the search space).
        batch (torch.Tensor): :math:`(N)` sorted graph of each node.
        num_graphs (int): :math:`B`.
        max_edges (int): :math:`m` slots per graph.
        k (int): :math:`K` candidates per slot (capped at each graph's size).
        num_neighbours (int, optional): neighbours kept per node for the
            refresh. (default: :obj:`8`)
    """

    def __init__(self, x: Tensor, batch: Tensor, num_graphs: int,
                 max_edges: int, k: int, num_neighbours: int = 8):
        self.k, self.m, self.B = int(k), int(max_edges), int(num_graphs)
        self.device = x.device
        self.points = x.detach().cpu().double().numpy()
        self.ptr = graph_ptr(batch, num_graphs).cpu().numpy()
        self.sizes = np.diff(self.ptr)
        self.keep = max(1, math.ceil(self.k / 4))
        self.trees = []
        from scipy.spatial import cKDTree
        nbrs = np.full((x.size(0), num_neighbours), -1, dtype=np.int64)
        for g in range(self.B):
            lo, n = self.ptr[g], self.sizes[g]
            tree = cKDTree(self.points[lo:lo + n]) if n > 0 else None
            self.trees.append(tree)
            kk = min(num_neighbours, n - 1)
            if kk >= 1:
                _, idx = tree.query(self.points[lo:lo + n], kk + 1)
                nbrs[lo:lo + n, :kk] = idx[:, 1:] + lo
        self.neighbours = torch.from_numpy(nbrs).to(self.device)
        #: ``[B m]`` first node id of each slot's graph, and the largest
        #: graph size (the refresh deduplicates with an ``[B m, n]`` table
        #: when that is smaller than sorting every slot's wish list).
        self.slot_lo = torch.from_numpy(np.repeat(
            self.ptr[:-1], self.m)).to(self.device)
        self.max_size = int(self.sizes.max()) if self.B else 0
        #: ``K`` when every slot holds ``K`` candidates (no graph smaller
        #: than ``K``), else 0.
        self.full = self.k if self.B and self.m and \
            int(self.sizes.min()) >= self.k else 0
        #: ``[B m]`` candidates each slot keeps: ``min(K, n_g)``.
        self.slot_limit = torch.from_numpy(np.repeat(
            np.minimum(self.k, self.sizes), self.m)).to(self.device)
        #: ``n`` when every graph has ``n`` nodes, else 0: the candidates
        #: may then take dense per-graph kernels
        #: (:meth:`CandidateIncidence.with_blocks`).
        self.uniform = int(self.sizes[0]) if self.B and \
            int(self.sizes.min()) == int(self.sizes.max()) else 0


    def initial(self, x: Tensor, slot_noise: Tensor) -> CandidateIncidence:
        r"""The :math:`K` nodes nearest to each slot's anchor.

        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            slot_noise (torch.Tensor): :math:`(B m, \ge F)` standard-normal
                noise of the slots.
        """
        F = self.points.shape[1]
        eps = slot_noise.detach().cpu().double().numpy()
        if eps.shape[1] < F:
            eps = np.tile(eps, (1, math.ceil(F / eps.shape[1])))
        eps = eps[:, :F]
        nodes, slots = [], []
        for g in range(self.B):
            lo, n = self.ptr[g], self.sizes[g]
            if n == 0:
                continue
            pts = self.points[lo:lo + n]
            anchor = pts.mean(0) + pts.std(0) * eps[g * self.m:
                                                    (g + 1) * self.m]
            kk = min(self.k, n)
            _, idx = self.trees[g].query(anchor, kk)
            idx = np.asarray(idx).reshape(self.m, kk)
            nodes.append((idx + lo).reshape(-1))
            slots.append(np.repeat(np.arange(self.m) + g * self.m, kk))
        return self._build(nodes, slots)

    def _build(self, nodes, slots) -> CandidateIncidence:
        if nodes:
            node = np.concatenate(nodes).astype(np.int64)
            slot = np.concatenate(slots).astype(np.int64)
            order = np.lexsort((slot, node))  # node-major, on the host
            index = np.stack([node[order], slot[order]])
        else:
            index = np.zeros((2, 0), dtype=np.int64)
        index = torch.from_numpy(index).to(self.device)
        return self._blocks(CandidateIncidence._from_node_major(
            index, int(self.ptr[-1]), self.B * self.m, self.full))

    def _blocks(self, inc: CandidateIncidence) -> CandidateIncidence:
        return inc.with_blocks(self.B, self.uniform, self.m) \
            if self.uniform else inc

    @torch.no_grad()
    def refresh(self, candidates: CandidateIncidence, logit: Tensor,
                return_source: bool = False):
        r"""New candidates from the last step's incidence logits (see the
        module docstring).

        With ``return_source``, also returns ``source`` :math:`(\text{nnz}')`:
        for each new pair, the position of the same pair among
        ``candidates`` (-1 for a new pair), so the incidence carries over
        with :func:`take_source` and no search
        (:func:`carry_incidence` gives the same values)."""
        M, K = candidates.num_slots, self.k
        node, slot = candidates.index
        # [M, K] layout (a slot holds at most K pairs), padded with -1/-inf
        perm = candidates.slot_perm
        W = max(K, 1)
        if candidates.nnz == M * W:  # every slot holds K: no padding
            nodes = node.index_select(0, perm).view(M, W)
            pairs = perm.view(M, W)
            logits = logit.detach().index_select(0, perm).view(M, W)
        else:
            s_sorted, n_sorted = slot[perm], node[perm]
            start = candidates.slot_ptr[:-1]
            pos = torch.arange(s_sorted.numel(), device=node.device) - \
                start[s_sorted]
            flat = s_sorted * W + pos
            nodes = node.new_full((M * W, ), -1).index_put_((flat, ),
                                                            n_sorted)
            pairs = node.new_full((M * W, ), -1).index_put_((flat, ), perm)
            logits = logit.new_full((M * W, ), float('-inf')).index_put_(
                (flat, ), logit.detach()[perm])
            nodes, pairs, logits = (t.view(M, W)
                                    for t in (nodes, pairs, logits))
        order = _row_argsort(logits, descending=True)
        ranked = nodes.gather(1, order)  # by decreasing logit, pads last
        ranked_pair = pairs.gather(1, order)
        c = min(self.keep, ranked.size(1))
        top = ranked[:, :c]
        near = self.neighbours.index_select(  # [M, c, k_nn]
            0, top.clamp_min(0).view(-1)).view(*top.shape, -1)
        near = torch.where((top >= 0)[..., None], near,
                           torch.full_like(near, -1)).flatten(1)
        wish = torch.cat([top, near, ranked], dim=1)  # priority order
        wish_pair = torch.cat([ranked_pair[:, :c], torch.full_like(near, -1),
                               ranked_pair], dim=1)
        if self.max_size + 1 <= 2 * wish.size(1):
            # each slot's nodes are a range of at most n ids: a table
            keep, source = _first_unique_in_range(
                wish, wish_pair, self.slot_lo, self.max_size)
        else:
            keep, source = _first_unique_with_source(wish, wish_pair)
        keep &= wish >= 0
        rank = torch.cumsum(keep.long(), dim=1)
        keep &= rank <= self.slot_limit[:, None]
        sel, regular = _kept_positions(keep, rank, M, self.full,
                                       candidates.nodes_per_slot == self.full)
        # (index_select: several times faster than t[idx] on the CPU)
        new_node = wish.view(-1).index_select(0, sel)
        source = source.view(-1).index_select(0, sel)
        new_slot = sel.div(wish.size(1), rounding_mode='floor')
        # node-major: a stable sort by node of the slot-major pairs is the
        # order of (node, slot), as CandidateIncidence.build makes it
        order = stable_argsort(new_node, candidates.num_nodes)
        new_node = new_node.index_select(0, order)
        new_slot = new_slot.index_select(0, order)
        new = self._blocks(CandidateIncidence._from_node_major(
            torch.stack([new_node, new_slot]), candidates.num_nodes, M,
            self.full if regular else 0))
        return (new, source.index_select(0, order)) if return_source \
            else new


def _kept_positions(keep: Tensor, rank: Tensor, rows: int, k: int,
                    regular: bool):
    r"""Flat positions (row-major) of the ``True`` entries of ``keep``
    :math:`(R, L)`, and whether every row keeps exactly ``k``.

    When the slots held ``k`` candidates each (``regular``) every row keeps
    exactly ``k`` (its own ``k`` nodes are among its wishes), so off the
    host the positions are scattered by their rank in the row, of known
    number, instead of a :func:`torch.nonzero` that waits for the
    device."""
    L = keep.size(1)
    if k > 0 and regular and not on_host(keep):
        col = torch.where(keep, rank - 1, k)  # others to a spare column
        pos = keep.new_zeros((rows, k + 1), dtype=torch.long).scatter_(
            1, col, torch.arange(L, device=keep.device).expand(rows, L))
        start = torch.arange(rows, device=keep.device)[:, None] * L
        return (start + pos[:, :k]).reshape(-1), True
    sel = keep.view(-1).nonzero().view(-1)  # row-major: slot-major
    # on the host (or after the sync above) the count says it
    return sel, k > 0 and sel.numel() == rows * k


def _first_unique_with_source(values: Tensor, source: Tensor):
    r"""``[R, L]`` mask of the first occurrence of each value in its row,
    and for each entry the largest ``source`` among the row's entries with
    its value (so a value that appears with and without a source, -1,
    takes the source)."""
    R, L = values.shape
    if values.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool), source
    # by value, then by position in the row (a stable sort)
    where = _row_argsort(values)
    sorted_vals = values.gather(1, where)
    first = torch.ones_like(sorted_vals, dtype=torch.bool)
    first[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    group = torch.cumsum(first.view(-1), 0) - 1
    best = source.new_full((int(R * L), ), -1).scatter_reduce(
        0, group, source.gather(1, where).view(-1), 'amax')
    mask = torch.zeros_like(first)
    mask.scatter_(1, where, first)
    out = torch.empty_like(source)
    out.scatter_(1, where, best[group].view(R, L))
    return mask, out


def _first_unique_in_range(values: Tensor, source: Tensor, lo: Tensor,
                           size: int):
    r""":func:`_first_unique_with_source` for rows whose values lie in
    :math:`[lo_r, lo_r + \text{size})` or are -1, through an
    ``[R, size + 1]`` table instead of a sort of every row."""
    R, L = values.shape
    if values.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool), source
    local = torch.where(values >= 0, values - lo[:, None],
                        values.new_full((), size))
    col = torch.arange(L, device=values.device).expand(R, L)
    first = values.new_full((R, size + 1), L).scatter_reduce_(
        1, local, col, 'amin')
    mask = first.gather(1, local) == col
    best = source.new_full((R, size + 1), -1).scatter_reduce_(
        1, local, source, 'amax')
    return mask, best.gather(1, local)


_NUMPY_SORT = (torch.float32, torch.float64, torch.int32, torch.int64)


def _row_argsort(x: Tensor, descending: bool = False) -> Tensor:
    r"""Stable argsort of every row of ``x`` :math:`(R, L)`. On the CPU
    through NumPy, which sorts many short rows several times faster than
    :func:`torch.argsort` (e.g. 1.3 against 9.6 ms for 3,584 rows of 52
    on one thread); the order is the same."""
    if on_host(x) and x.numel() > 0 and x.dtype in _NUMPY_SORT:
        x = x.detach()
        a = x.numpy()
        return torch.from_numpy(np.argsort(-a if descending else a, axis=1,
                                           kind='stable'))
    return torch.argsort(x, dim=1, descending=descending, stable=True)


def take_source(values: Tensor, source: Tensor) -> Tensor:
    r"""``values[source]``, 0 where ``source`` is -1; differentiable in
    ``values``."""
    if values.numel() == 0:
        return values.new_zeros(source.shape)
    taken = values.index_select(0, source.clamp_min(0))
    return torch.where(source >= 0, taken, taken.new_zeros(()))


def carry_incidence(old: CandidateIncidence, values: Tensor,
                    new: CandidateIncidence) -> Tensor:
    r"""The values of ``old``'s pairs moved onto ``new``'s pairs (0 for new
    pairs), differentiably in ``values``."""
    M = max(old.num_slots, 1)
    old_key = old.node * M + old.slot
    new_key = new.node * M + new.slot
    sorted_key, order = torch.sort(old_key)
    pos = torch.searchsorted(sorted_key, new_key).clamp_max(
        max(sorted_key.numel() - 1, 0))
    if sorted_key.numel() == 0:
        return values.new_zeros(new.nnz)
    hit = sorted_key[pos] == new_key
    out = values.new_zeros(new.nnz)
    return out.index_put((hit.nonzero().view(-1), ),
                         values[order[pos[hit]]])
