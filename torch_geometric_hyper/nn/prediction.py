r"""Containers for the refiner's state and predictions."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_hyper.data.unique import unique_hyperedges
from torch_geometric_hyper.nn.kernels.incidence import (
    CandidateIncidence,
    count_values,
    csr_ptr,
)


def graph_ptr(batch: Tensor, num_graphs: int) -> Tensor:
    r"""``[B + 1]`` offsets of each graph's nodes (``batch`` sorted)."""
    return csr_ptr(batch, num_graphs)


def dense_node_layout(batch: Tensor, num_graphs: int
                      ) -> Tuple[Tensor, int, Tensor, Tensor]:
    r"""Where each node of a sorted batch goes in a padded per-graph
    layout: ``(ptr [B + 1], n_max, position [N] within its graph,
    node_mask [B, n_max])``."""
    ptr = graph_ptr(batch, num_graphs)
    n_max = int((ptr[1:] - ptr[:-1]).max()) if num_graphs > 0 else 0
    pos = torch.arange(batch.numel(), device=ptr.device) - ptr[batch]
    mask = torch.zeros(num_graphs, n_max, dtype=torch.bool,
                       device=ptr.device)
    mask[batch, pos] = True
    return ptr, n_max, pos, mask


class _NodeBatch:
    """What a prediction over the nodes of a batch knows about them (a
    mixin for the dataclasses below, which hold ``batch`` and
    ``num_graphs``)."""

    @property
    def num_nodes(self) -> int:
        return self.batch.numel()

    def _node_layout(self) -> Tuple[Tensor, int, Tensor, Tensor]:
        return dense_node_layout(self.batch, self.num_graphs)


@dataclass
class HypergraphPrediction(_NodeBatch):
    r"""A predicted hypergraph per graph of a batch, as a pruned incidence.

    The incidence lives on the candidate ``(node, slot)`` pairs only; slot
    :math:`j` of graph :math:`g` has global id :math:`g\,m + j`.

    Attributes:
        incidence_logit (torch.Tensor): ``[nnz]`` logits of :math:`I_{ji}`.
        existence_logit (torch.Tensor): ``[B * m]`` logits of the gates
            :math:`g_j`.
        incidence_index (torch.Tensor): ``[2, nnz]`` candidate pairs, row 0
            node, row 1 slot.
        batch (torch.Tensor): ``[N]`` graph of each node.
        num_graphs (int): :math:`B`.
        max_edges (int): :math:`m`, slots per graph.
    """

    incidence_logit: Tensor
    existence_logit: Tensor
    incidence_index: Tensor
    batch: Tensor
    num_graphs: int
    max_edges: int

    @property
    def incidence(self) -> Tensor:
        """``[nnz]`` incidence probabilities :math:`I_{ji}`."""
        return torch.sigmoid(self.incidence_logit)

    @property
    def existence(self) -> Tensor:
        """``[B * m]`` existence probabilities :math:`g_j`."""
        return torch.sigmoid(self.existence_logit)

    @property
    def slot_batch(self) -> Tensor:
        """``[B * m]`` graph of each slot."""
        return torch.arange(self.num_graphs, device=self.batch.device
                            ).repeat_interleave(self.max_edges)

    def to_dense(self, fill_value: float = 0.0
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        r"""Pads the incidence to a dense per-graph tensor.

        Args:
            fill_value (float, optional): value of padded and non-candidate
                entries.

        Returns:
            ``(incidence [B, m, N_max], node_mask [B, N_max],
            existence [B, m])`` with probabilities.
        """
        B, m = self.num_graphs, self.max_edges
        _, n_max, pos, mask = self._node_layout()
        node, slot = self.incidence_index
        dense = self.incidence_logit.new_full((B, m, max(n_max, 0)),
                                              fill_value)
        dense[slot // m, slot % m, pos[node]] = self.incidence
        return dense, mask, self.existence.view(B, m)

    def to_hyperedge_index(self, threshold: float = 0.5,
                           edge_size: Optional[int] = None,
                           existence_threshold: float = 0.5,
                           unique: bool = False
                           ) -> Tuple[Tensor, Tensor]:
        r"""Decodes a discrete hypergraph that
        :class:`torch_geometric.nn.HypergraphConv` accepts directly.

        A slot exists if :math:`g_j >` ``existence_threshold``. Its nodes are
        its ``edge_size`` most likely nodes when ``edge_size`` is given (e.g.
        3 for facets of a 3-D hull), else the nodes with
        :math:`I_{ji} >` ``threshold``. Hyperedges are renumbered
        consecutively, graph by graph.

        Several slots may decode to the same node set. With ``unique``, only
        the first of each is kept within a graph
        (:func:`~torch_geometric_hyper.data.unique_hyperedges`), so a
        :class:`~torch_geometric.nn.HypergraphConv` on the result does not
        weigh a repeated hyperedge twice; metrics that count duplicates
        (:func:`~torch_geometric_hyper.metrics.evaluate_hyperedges`) decode
        without it.

        Returns:
            ``(hyperedge_index [2, nnz'], hyperedge_batch [E'])``: global node
            ids in row 0, hyperedge ids ``0..E'-1`` in row 1, and the graph of
            each hyperedge.
        """
        m = self.max_edges
        exists = self.existence > existence_threshold
        node, slot = self.incidence_index
        if edge_size is None:
            keep = (self.incidence > threshold) & exists[slot]
            node, slot = node[keep], slot[keep]
        else:
            if edge_size < 1:
                raise ValueError(f"'edge_size' must be positive, got "
                                 f"{edge_size}")
            node, slot = self._top_members(int(edge_size), exists)
        uniq, new_id = torch.unique(slot, return_inverse=True)
        order = torch.argsort(new_id * max(1, self.num_nodes) + node)
        index = torch.stack([node, new_id])[:, order]
        edge_batch = uniq // m
        if unique:
            index, keep = unique_hyperedges(index, uniq.numel(), edge_batch)
            edge_batch = edge_batch[keep]
        return index, edge_batch


    def _top_members(self, k: int, exists: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The ``k`` most likely candidate nodes of every existing slot, as
        ``(node, slot)`` global ids: a dense top-k over :math:`(B, m,
        n_{\max})` when every pair is a candidate, else a sort of the
        :math:`\text{nnz}` pairs (no dense tensor)."""
        m = self.max_edges
        _, n_max, _, mask = self._node_layout()
        node, slot = self.incidence_index
        if node.numel() < self.num_graphs * m * n_max:
            logit = self.incidence_logit.detach()
            order = torch.argsort(logit, descending=True, stable=True)
            order = order[torch.argsort(slot[order], stable=True)]
            s_sorted = slot[order]
            count = count_values(s_sorted, self.num_graphs * m)
            start = torch.cumsum(count, 0) - count
            rank = torch.arange(order.numel(), device=order.device) - \
                start[s_sorted]
            keep = (rank < k) & exists[s_sorted]
            return node[order[keep]], s_sorted[keep]
        dense, mask, _ = self.to_dense(fill_value=-1.0)
        k = min(k, dense.size(-1))
        top = dense.topk(k, dim=-1).indices  # [B, m, k]
        ptr = graph_ptr(self.batch, self.num_graphs)
        valid = mask.gather(1, top.flatten(1)).view_as(top)
        glob_node = top + ptr[:-1].view(-1, 1, 1)
        glob_slot = torch.arange(self.num_graphs * m,
                                 device=top.device).view_as(top[..., 0])
        glob_slot = glob_slot.unsqueeze(-1).expand_as(top)
        keep = valid & exists.view(self.num_graphs, m, 1)
        return glob_node[keep], glob_slot[keep]


@dataclass
class RefinerState:
    r"""Everything a refinement step reads and writes.

    Attributes:
        x (torch.Tensor): ``[N, F]`` raw node features (the skip connection
            :math:`\hat X` is recomputed from them at every step, so it stays
            in the autograd graph after :meth:`detach`).
        node (torch.Tensor): ``[N, d]`` node latents :math:`V`.
        edge (torch.Tensor): ``[B m, d]`` slot latents :math:`E`.
        incidence (torch.Tensor): ``[nnz]`` last incidence probabilities
            (zeros before the first step).
        incidence_logit (torch.Tensor, optional): last incidence logits.
        existence_logit (torch.Tensor, optional): last existence logits.
        candidates (CandidateIncidence): the candidate pairs.
        batch (torch.Tensor): ``[N]`` graph of each node.
        num_graphs (int): :math:`B`.
        max_edges (int): :math:`m`.
        iteration (int): steps taken so far.
        search (SparseCandidates, optional): the candidate search of a
            refiner with ``num_candidates`` (refreshes ``candidates``
            before each step).
    """

    x: Tensor
    node: Tensor
    edge: Tensor
    incidence: Tensor
    incidence_logit: Optional[Tensor]
    existence_logit: Optional[Tensor]
    candidates: CandidateIncidence
    batch: Tensor
    num_graphs: int
    max_edges: int
    iteration: int = 0
    search: Optional[object] = None

    @property
    def slot_batch(self) -> Tensor:
        return torch.arange(self.num_graphs, device=self.batch.device
                            ).repeat_interleave(self.max_edges)

    def detach(self) -> 'RefinerState':
        """Cuts the state out of the autograd graph (backprop with skips)."""

        def d(t):
            return None if t is None else t.detach()

        return replace(self, node=d(self.node), edge=d(self.edge),
                       incidence=d(self.incidence),
                       incidence_logit=d(self.incidence_logit),
                       existence_logit=d(self.existence_logit))

    def prediction(self) -> HypergraphPrediction:
        """The prediction of the last step."""
        if self.incidence_logit is None:
            raise RuntimeError("no refinement step has run yet: call "
                               "step() at least once before predicting")
        return HypergraphPrediction(self.incidence_logit,
                                    self.existence_logit,
                                    self.candidates.index, self.batch,
                                    self.num_graphs, self.max_edges)
