r"""Pieces the one-shot hypergraph baselines share with the refiner: the slot
prior, input checks, and the incidence and existence heads."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.nn import Linear, Module
from torch_geometric.utils import to_dense_batch

from torch_geometric_hyper.nn.base import PairScorer
from torch_geometric_hyper.nn.checks import check_set_input, positive_int
from torch_geometric_hyper.nn.config import Configurable
from torch_geometric_hyper.nn.kernels.incidence import (
    CandidateIncidence,
    count_values,
)
from torch_geometric_hyper.nn.prediction import HypergraphPrediction
from torch_geometric_hyper.nn.slot_prior import (
    HoldsSlots,
    SlotPrior,
    register_old_slot_keys,
    undrawn_slot_prior,
)


class HyperedgeHead(PairScorer):
    r"""The refiner's output heads, applied once to final latents.

    .. math::
        z_{ji} = w_2^\top \mathrm{ReLU}(W_n v_i + W_e e_j + b) + b_2,
        \qquad g_j = w_g^\top e_j + b_g

    (incidence and existence logits). It is the incidence MLP of
    :class:`~torch_geometric_hyper.nn.RefinementStep` without the
    previous-incidence input (a one-shot model has none), evaluated on the
    candidate ``(node, slot)`` pairs with the memory-lean
    :func:`~torch_geometric_hyper.nn.kernels.pair_mlp` kernel.

    Args:
        hidden_channels (int): latent size :math:`d`.
        chunk_elements (int, optional): working-set size (floats) of the
            per-pair kernel; ``None`` (default):
            :func:`~torch_geometric_hyper.nn.kernels.default_chunk_elements`.
    """

    def __init__(self, hidden_channels: int,
                 chunk_elements: Optional[int] = None):
        super().__init__(hidden_channels, chunk_elements)
        self._add_incidence_mlp(previous=False)
        self.register_buffer('_zero', torch.zeros(hidden_channels),
                             persistent=False)
        self.reset_parameters()

    def forward(self, node: Tensor, edge: Tensor,
                index: Tensor) -> Tuple[Tensor, Tensor]:
        r"""
        Args:
            node (torch.Tensor): :math:`(N, d)` node latents.
            edge (torch.Tensor): :math:`(M, d)` slot latents.
            index (torch.Tensor): :math:`(2, \text{nnz})` candidate pairs
                (node, slot).

        Returns:
            ``(incidence_logit, existence_logit)`` of shapes
            :math:`(\text{nnz})` and :math:`(M)`.
        """
        inc = self._incidence_logit(node, edge,
                                    node.new_zeros(index.size(1)),
                                    self._zero.to(node.dtype), index)
        return inc, self.lin_exist(edge).view(-1)


def draw_slots(prior: SlotPrior, num_graphs: int, like: Tensor,
               slots: Optional[Tensor] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
    r"""The initial slots :math:`(B m, d)` of ``num_graphs`` graphs: drawn
    from ``prior`` (noise in ``like``'s dtype, on its device), or ``slots``
    validated and cast to ``like``'s dtype."""
    num_slots, d = num_graphs * prior.num_slots, prior.channels
    if slots is not None:
        if tuple(slots.shape) != (num_slots, d):
            raise ValueError(f"'slots' must have shape [num_graphs * "
                             f"max_edges, hidden_channels] = "
                             f"[{num_slots}, {d}], got {list(slots.shape)}")
        return slots.to(like.dtype)
    return prior(prior.noise(num_graphs, generator, dtype=like.dtype,
                             device=like.device))


def dense_sets(h: Tensor, batch: Tensor, num_graphs: int):
    r"""Pads the sets of a batch to :math:`(B, n_{max}, d)` with a node mask;
    raises a :class:`ValueError` on an empty set."""
    counts = count_values(batch, num_graphs)
    if counts.numel() > num_graphs:
        raise ValueError(f"'batch' holds graph ids up to "
                         f"{counts.numel() - 1} but num_graphs={num_graphs}")
    if bool((counts == 0).any()):
        g = int((counts == 0).nonzero()[0])
        raise ValueError(f"graph {g} of the batch has no nodes: every set "
                         f"needs at least one node")
    return to_dense_batch(h, batch, batch_size=num_graphs,
                          max_num_nodes=int(counts.max()))


class SlotBaseline(HoldsSlots, Configurable, Module):
    r"""What the one-shot slot baselines (:class:`SetTransformer
    <torch_geometric_hyper.nn.SetTransformer>`, :class:`SlotAttention
    <torch_geometric_hyper.nn.SlotAttention>`) share: the checked sizes,
    the input projection ``lin_in``, the refiner's slot distribution
    (``slot_prior``, a :class:`~torch_geometric_hyper.nn.SlotPrior`), the
    forward prologue (input checks, slot draw) and the epilogue
    (:class:`HyperedgeHead` on all ``(node, slot)`` pairs of each graph, a
    :class:`~torch_geometric_hyper.nn.HypergraphPrediction`).

    A subclass builds its own modules after ``super().__init__`` and ends
    its ``__init__`` with :meth:`_finish_init` (which adds the head last and
    resets the parameters).
    """

    def __init__(self, in_channels: int, hidden_channels: int,
                 max_edges: int):
        super().__init__()
        self.in_channels = positive_int('in_channels', in_channels)
        self.hidden_channels = d = positive_int('hidden_channels',
                                                hidden_channels)
        max_edges = positive_int('max_edges', max_edges)
        lin_in = Linear(self.in_channels, d)
        # registered first and built without random draws, as in
        # HypergraphRefiner: the subclass's reset_parameters draws it
        self.slot_prior = undrawn_slot_prior(d, max_edges,
                                             lin_in.weight)
        self.lin_in = lin_in
        register_old_slot_keys(self)

    def _finish_init(self, chunk_elements: Optional[int]):
        self.head = HyperedgeHead(self.hidden_channels, chunk_elements)
        self.reset_parameters()

    def _prologue(self, x: Tensor, batch: Optional[Tensor],
                  num_graphs: Optional[int], slots: Optional[Tensor],
                  generator: Optional[torch.Generator]):
        """Checks the input and draws the slots: ``(x, batch, B, slots
        [B m, d])``."""
        x, batch, B = check_set_input(x, batch, num_graphs, self.in_channels,
                                      dtype=self.lin_in.weight.dtype)
        slots = draw_slots(self.slot_prior, B, x, slots, generator)
        return x, batch, B, slots

    def _predict(self, node: Tensor, edge: Tensor, batch: Tensor,
                 num_graphs: int) -> HypergraphPrediction:
        """The heads on all ``(node, slot)`` pairs of each graph."""
        m = self.max_edges
        candidates = CandidateIncidence.complete(batch, num_graphs, m)
        inc, exist = self.head(node, edge, candidates.index)
        return HypergraphPrediction(inc, exist, candidates.index, batch,
                                    num_graphs, m)

    def _repr_extra(self) -> str:
        return ''

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels}, max_edges={self.max_edges}'
                f'{self._repr_extra()})')
