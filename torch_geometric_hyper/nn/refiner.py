r"""The recurrent hypergraph refiner (Zhang, Burghouts, Snoek, LoG 2022)."""
from __future__ import annotations

import warnings
from dataclasses import replace
from functools import partial
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import LayerNorm, Linear, ModuleList
from torch.utils.checkpoint import checkpoint as _checkpoint

from torch_geometric_hyper.nn.base import PairScorer, RecurrentModel
from torch_geometric_hyper.nn.candidates import (
    SparseCandidates,
    take_source,
)
from torch_geometric_hyper.nn.checkpointing import (
    check_checkpoint_mode,
    use_checkpointing,
)
from torch_geometric_hyper.nn.checks import check_set_input
from torch_geometric_hyper.nn.deepsets import DeepSet
from torch_geometric_hyper.nn.kernels.incidence import CandidateIncidence
from torch_geometric_hyper.nn.kernels.sparse import (
    gate_pairs,
    incidence_matmul,
)
from torch_geometric_hyper.nn.prediction import (  # noqa: F401
    HypergraphPrediction,
    RefinerState,
)
from torch_geometric_hyper.nn.residual import residual_add
from torch_geometric_hyper.nn.slot_prior import (
    HoldsSlots,
    register_old_slot_keys,
    undrawn_slot_prior,
)
from torch_geometric_hyper.utils.validation import check_int

__all__ = ['RefinementStep', 'HypergraphRefiner', 'StackedHypergraphRefiner']


class RefinementStep(PairScorer):
    r"""One refinement step of :class:`HypergraphRefiner` (the layer of the
    layer/model pair).

    Given node latents :math:`V`, slot latents :math:`E`, the previous
    incidence :math:`I` and the projected inputs :math:`\hat X`, in this
    order:

    .. math::
        I_{ji} &\leftarrow \sigma\big(w_2^\top\,\mathrm{ReLU}(W_n v_i
            + W_e e_j + w_I I_{ji} + b) + b_2\big)

        g_j &= \sigma(w_g^\top e_j + b_g) \quad\text{(on the previous } E)

        \tilde I_{ji} &= I_{ji}\, g_j

        E &\leftarrow \mathrm{LN}\big(E + \mathrm{DeepSet}_e(\mathrm{LN}
            [E,\ \tilde I V])\big)

        V &\leftarrow \mathrm{LN}\big(V + \mathrm{DeepSet}_n(\mathrm{LN}
            [\hat X,\ V,\ \tilde I^\top E])\big)

    All products with :math:`\tilde I` run over the candidate pairs only
    (sparse), and the DeepSet means run per graph, so graphs of different
    sizes share a batch without padding.

    Args:
        hidden_channels (int): latent size :math:`d`.
        chunk_elements (int, optional): working-set size (floats) of the
            per-pair kernels; ``None`` (default):
            :func:`~torch_geometric_hyper.nn.kernels.default_chunk_elements`.
    """

    def __init__(self, hidden_channels: int,
                 chunk_elements: Optional[int] = None):
        super().__init__(hidden_channels, chunk_elements)
        d = hidden_channels
        self._add_incidence_mlp(previous=True)
        self.edge_norm_in = LayerNorm(2 * d)
        self.edge_deepset = DeepSet(2 * d, d)
        self.edge_norm = LayerNorm(d)
        self.node_norm_in = LayerNorm(3 * d)
        self.node_deepset = DeepSet(3 * d, d)
        self.node_norm = LayerNorm(d)
        self.reset_parameters()

    def _uniform_parameters(self):
        return (self.inc_weight, )

    def forward(self, x_hat: Tensor, node: Tensor, edge: Tensor,
                incidence: Tensor, candidates: CandidateIncidence,
                batch: Tensor, slot_batch: Tensor, num_graphs: int,
                checkpoint: bool = False
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""
        Args:
            x_hat (torch.Tensor): :math:`(N, d)` projected inputs.
            node (torch.Tensor): :math:`(N, d)` node latents.
            edge (torch.Tensor): :math:`(M, d)` slot latents.
            incidence (torch.Tensor): :math:`(\text{nnz})` previous incidence
                probabilities.
            candidates (CandidateIncidence): candidate pairs.
            batch (torch.Tensor): :math:`(N)` graph of each node.
            slot_batch (torch.Tensor): :math:`(M)` graph of each slot.
            num_graphs (int): number of graphs.
            checkpoint (bool, optional): recompute the activations in the
                backward pass, in two segments (gate and slot update; node
                update), instead of storing them. The incidence MLP runs
                outside them: it keeps only the step's inputs
                (:func:`~torch_geometric_hyper.nn.kernels.linear_pair_mlp`
                recomputes its projections and hidden layer in backward
                anyway).

        Returns:
            ``(node, edge, incidence_logit, existence_logit)`` with shapes
            :math:`(N, d)`, :math:`(M, d)`, :math:`(\text{nnz})`,
            :math:`(M)`.
        """
        if checkpoint:
            # the incidence MLP keeps only node and edge (saved here anyway)
            # and recomputes its projections and hidden layer in backward: it
            # runs outside the recomputed segments (no third pass over the
            # pairs)
            inc_logit = self._incidence_logit(node, edge, incidence,
                                              self.inc_weight, candidates)
            # (the segments recompute the messages anyway)
            edge, gated, exist_logit = _checkpoint(
                partial(self.slot_update, recompute_messages=False), node,
                edge, inc_logit, candidates, slot_batch, num_graphs,
                use_reentrant=False)
            node = _checkpoint(
                partial(self.node_update, recompute_messages=False), x_hat,
                node, edge, gated, candidates, batch, num_graphs,
                use_reentrant=False)
        else:
            edge, gated, inc_logit, exist_logit = self.edge_update(
                node, edge, incidence, candidates, slot_batch, num_graphs)
            node = self.node_update(x_hat, node, edge, gated, candidates,
                                    batch, num_graphs)
        return node, edge, inc_logit, exist_logit

    def slot_update(self, node: Tensor, edge: Tensor, inc_logit: Tensor,
                    candidates: CandidateIncidence, slot_batch: Tensor,
                    num_graphs: int, *, recompute_messages: bool = True
                    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Gate and slot update from the incidence logits: returns
        ``(edge, gated incidence, existence_logit)``. With
        ``recompute_messages`` the slot DeepSet rebuilds the aggregated
        messages in backward instead of keeping them (an incidence product,
        cheap next to its layers; see
        :func:`~torch_geometric_hyper.nn.norm_deepset_layer`)."""
        exist_logit = self.lin_exist(edge).view(-1)
        gated = gate_pairs(candidates, torch.sigmoid(inc_logit),
                           torch.sigmoid(exist_logit))
        msg = incidence_matmul(candidates, gated, node, True,
                               self.chunk_elements)
        h = self.edge_deepset([edge, msg], slot_batch, num_graphs,
                              norm=self.edge_norm_in,
                              recompute=(None, self._messages(
                                  candidates, gated, node, True,
                                  recompute_messages)))
        edge = self.edge_norm(residual_add(h, edge))
        return edge, gated, exist_logit

    def _messages(self, candidates: CandidateIncidence, gated: Tensor,
                  x: Tensor, to_slots: bool, recompute: bool):
        # the recipe of the aggregated messages (see norm_deepset_layer)
        if not recompute:
            return None
        chunk = self.chunk_elements
        return (lambda g, v: incidence_matmul(candidates, g, v, to_slots,
                                              chunk),
                (gated.detach(), x.detach()))

    def edge_update(self, node: Tensor, edge: Tensor, incidence: Tensor,
                    candidates: CandidateIncidence, slot_batch: Tensor,
                    num_graphs: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Incidence, gate and slot update: returns ``(edge, gated
        incidence, incidence_logit, existence_logit)``."""
        inc_logit = self._incidence_logit(node, edge, incidence,
                                          self.inc_weight, candidates)
        edge, gated, exist_logit = self.slot_update(
            node, edge, inc_logit, candidates, slot_batch, num_graphs)
        return edge, gated, inc_logit, exist_logit

    def node_update(self, x_hat: Tensor, node: Tensor, edge: Tensor,
                    gated: Tensor, candidates: CandidateIncidence,
                    batch: Tensor, num_graphs: int, *,
                    recompute_messages: bool = True) -> Tensor:
        """Node update from the new slot latents (``recompute_messages``:
        see :meth:`slot_update`)."""
        msg = incidence_matmul(candidates, gated, edge, False,
                               self.chunk_elements)
        h = self.node_deepset([x_hat, node, msg], batch, num_graphs,
                              norm=self.node_norm_in,
                              recompute=(None, None, self._messages(
                                  candidates, gated, edge, False,
                                  recompute_messages)))
        return self.node_norm(residual_add(h, node))


class HypergraphRefiner(HoldsSlots, RecurrentModel):
    r"""Recurrent set-to-hypergraph refiner from `"Pruning Edges and
    Gradients to Learn Hypergraphs from Larger Sets"
    <https://arxiv.org/abs/2106.13919>`_ (Zhang, Burghouts, Snoek, LoG 2022).

    Given a set of :math:`n` nodes with features :math:`X`, it predicts a
    *pruned* incidence matrix :math:`I \in [0,1]^{m \times n}` over :math:`m`
    hyperedge slots together with an existence gate :math:`g \in [0,1]^m`,
    by refining node latents :math:`V` and slot latents :math:`E` for
    :math:`T` steps with one shared :class:`RefinementStep`:

    .. math::
        \hat X = V^{(0)} = X W_x + b_x, \qquad
        E^{(0)}_j = \mu + \exp(\log\sigma) \odot \epsilon_j,\ \
        \epsilon_j \sim \mathcal N(0, I), \qquad I^{(0)} = 0

        (V^{(t+1)}, E^{(t+1)}, I^{(t+1)}, g^{(t+1)}) =
        \mathrm{step}(\hat X, V^{(t)}, E^{(t)}, I^{(t)})

    The initial slots :math:`E^{(0)}` come from the learned ``slot_prior``
    (:class:`~torch_geometric_hyper.nn.SlotPrior`, parameters :math:`\mu`
    and :math:`\log\sigma`), or are given as ``slots``.

    Memory per step is :math:`O(\text{nnz}\cdot d)` for the candidate pairs
    (by default all :math:`n m` pairs of each graph), never
    :math:`O(2^n)` or :math:`O(n^k)`, and the per-pair kernels keep only
    :math:`O(\text{nnz})` floats alive for autograd.

    The model is equivariant to permutations of the nodes and, for the same
    initial slots permuted alike, of the slots.

    Args:
        in_channels (int): node feature size :math:`F`.
        hidden_channels (int): latent size :math:`d` (paper: 128).
        max_edges (int): slots per graph :math:`m`, an upper bound on the
            number of hyperedges.
        num_iterations (int, optional): default number of steps :math:`T`
            for :meth:`forward`. (default: :obj:`16`)
        stacked (bool, optional): use :math:`T` separate step modules
            instead of one shared (the ablation of the paper).
            (default: :obj:`False`)
        chunk_elements (int, optional): working-set size (floats) of the
            per-pair kernels; ``None`` (default):
            :func:`~torch_geometric_hyper.nn.kernels.default_chunk_elements`.
        num_candidates (int, optional): keep only :math:`K` candidate nodes
            per slot, chosen and refreshed by the model
            (:mod:`~torch_geometric_hyper.nn.candidates`): a step then costs
            :math:`O((N + M) K d)` in time and memory instead of
            :math:`O(N M d)`. :obj:`None` (default) scores every pair. A
            :math:`K` at least the size of a set makes every pair of it a
            candidate (the all-pairs model).
        checkpoint (bool or str, optional): recompute each step's
            activations in the backward pass (activation checkpointing)
            instead of storing them: a step then keeps only its inputs and
            its incidence logits, for 10-30% more training time.
            ``'auto'`` stores them unless one step's would exceed
            :data:`~torch_geometric_hyper.nn.checkpointing.CHECKPOINT_BUDGET`
            (256 MiB;
            :func:`~torch_geometric_hyper.nn.checkpointing.use_checkpointing`),
            decided per step from the batch's size. Has no effect without
            gradients. (default: :obj:`'auto'`)

    Shapes:
        - **input:** node features :math:`(N, F)`, batch vector :math:`(N)`
        - **output:** :class:`HypergraphPrediction` with incidence logits
          :math:`(\text{nnz})` and existence logits :math:`(B m)`

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.nn import HypergraphRefiner
        >>> model = HypergraphRefiner(3, 32, max_edges=8, num_iterations=4)
        >>> x = torch.randn(10, 3)
        >>> batch = torch.tensor([0] * 6 + [1] * 4)
        >>> pred = model(x, batch, num_graphs=2)
        >>> pred.incidence.shape, pred.existence.shape
        (torch.Size([80]), torch.Size([16]))
    """

    def __init__(self, in_channels: int, hidden_channels: int, max_edges: int,
                 num_iterations: int = 16, stacked: bool = False,
                 chunk_elements: Optional[int] = None,
                 checkpoint: Union[bool, str] = 'auto',
                 num_candidates: Optional[int] = None):
        super().__init__()
        check_checkpoint_mode(checkpoint)
        if num_candidates is not None and (
                isinstance(num_candidates, bool) or
                int(num_candidates) != num_candidates or num_candidates < 1):
            raise ValueError(f"'num_candidates' must be a positive integer "
                             f"(candidate nodes per slot) or None (all "
                             f"pairs), got {num_candidates!r}")
        self.num_candidates = None if num_candidates is None \
            else int(num_candidates)
        in_channels = check_int('in_channels', in_channels)
        hidden_channels = check_int('hidden_channels', hidden_channels)
        max_edges = check_int('max_edges', max_edges)
        num_iterations = check_int('num_iterations', num_iterations)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_iterations = num_iterations
        self.stacked = stacked
        self.checkpoint = checkpoint
        lin_in = Linear(in_channels, hidden_channels)
        # The prior is registered before lin_in, so its parameters come
        # first (the order clip_grad_norm_ sums the gradients' norms in),
        # and built without random draws: reset_parameters draws it after
        # lin_in, so a seed gives the same initial model as before SlotPrior.
        self.slot_prior = undrawn_slot_prior(hidden_channels, max_edges,
                                             lin_in.weight)
        self.lin_in = lin_in
        register_old_slot_keys(self)
        num_steps = num_iterations if stacked else 1
        self.steps = ModuleList([
            RefinementStep(hidden_channels, chunk_elements)
            for _ in range(num_steps)
        ])
        self.reset_parameters()

    def reset_parameters(self):
        self.lin_in.reset_parameters()
        self.slot_prior.reset_parameters()
        for step in self.steps:
            step.reset_parameters()

    # ------------------------------------------------------------------
    def init_state(self, x: Tensor, batch: Optional[Tensor] = None,
                   num_graphs: Optional[int] = None, *,
                   slots: Optional[Tensor] = None,
                   generator: Optional[torch.Generator] = None,
                   candidate_index: Optional[Tensor] = None) -> RefinerState:
        r"""Builds the initial state :math:`(V^{(0)}, E^{(0)}, I^{(0)})`.

        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            batch (torch.Tensor, optional): :math:`(N)` graph of each node,
                sorted (default: one graph).
            num_graphs (int, optional): number of graphs; pass it to avoid a
                device sync (default: ``batch.max() + 1``).
            slots (torch.Tensor, optional): :math:`(B m, d)` initial slot
                latents, to reproduce a run exactly (default: drawn).
            generator (torch.Generator, optional): generator for the slot
                noise :math:`\epsilon`.
            candidate_index (torch.Tensor, optional): :math:`(2,
                \text{nnz})` candidate ``(node, slot)`` pairs, slot ids global
                (:math:`g m + j`); default all pairs of each graph.
        """
        x, batch, num_graphs = self._check_input(x, batch, num_graphs)
        m, d = self.max_edges, self.hidden_channels
        num_slots = num_graphs * m
        if slots is None:
            edge = self.slot_prior(self.slot_prior.noise(
                num_graphs, generator, dtype=x.dtype, device=x.device))
        else:
            if slots.shape != (num_slots, d):
                raise ValueError(f"'slots' must have shape [num_graphs * "
                                 f"max_edges, hidden_channels] = "
                                 f"[{num_slots}, {d}], got "
                                 f"{list(slots.shape)}")
            edge = slots
        search = None
        if candidate_index is not None:
            candidates = CandidateIncidence.build(
                candidate_index.to(x.device), x.size(0), num_slots)
        elif self.num_candidates is not None:
            search = SparseCandidates(x, batch, num_graphs, m,
                                      self.num_candidates)
            if bool((search.sizes <= self.num_candidates).all()):
                warnings.warn(f"num_candidates={self.num_candidates} is at "
                              f"least the size of every set here (largest "
                              f"{int(search.sizes.max())}): every pair is a "
                              f"candidate, as in the all-pairs model")
                search = None
                candidates = CandidateIncidence.complete(batch, num_graphs,
                                                         m)
            else:
                # the slots' standard-normal noise (given or drawn)
                prior = self.slot_prior
                noise = (edge.detach() - prior.mu.detach()) / \
                    torch.exp(prior.log_sigma.detach())
                candidates = search.initial(x, noise)
        else:
            candidates = CandidateIncidence.complete(batch, num_graphs, m)
        node = self.lin_in(x)
        incidence = x.new_zeros(candidates.nnz)
        return RefinerState(x, node, edge, incidence, None, None, candidates,
                            batch, num_graphs, m, search=search)

    def step(self, state: RefinerState) -> RefinerState:
        """Runs one refinement step and returns the new state."""
        module = self.steps[min(state.iteration, len(self.steps) - 1)
                            if self.stacked else 0]
        if state.search is not None and state.incidence_logit is not None:
            candidates, source = state.search.refresh(
                state.candidates, state.incidence_logit, return_source=True)
            state = replace(state, candidates=candidates,
                            incidence=take_source(state.incidence, source))
        x_hat = self.lin_in(state.x)
        args = (x_hat, state.node, state.edge, state.incidence,
                state.candidates, state.batch, state.slot_batch,
                state.num_graphs)
        ckpt = torch.is_grad_enabled() and use_checkpointing(
            self.checkpoint, state.candidates.nnz,
            state.node.size(0) + state.edge.size(0), self.hidden_channels,
            state.node.element_size())
        node, edge, inc_logit, exist_logit = module(*args, checkpoint=ckpt)
        return RefinerState(state.x, node, edge, torch.sigmoid(inc_logit),
                            inc_logit, exist_logit, state.candidates,
                            state.batch, state.num_graphs, state.max_edges,
                            state.iteration + 1, state.search)

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None, *,
                num_iterations: Optional[int] = None,
                state: Optional[RefinerState] = None,
                slots: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None,
                candidate_index: Optional[Tensor] = None,
                return_state: bool = False):
        r"""Runs :math:`T` refinement steps and returns the last prediction.

        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            batch (torch.Tensor, optional): :math:`(N)` graph of each node.
            num_graphs (int, optional): number of graphs.
            num_iterations (int, optional): steps to run (default
                ``self.num_iterations``).
            state (RefinerState, optional): continue from this state instead
                of a fresh one (``x``/``batch`` are then ignored).
            slots, generator, candidate_index: see :meth:`init_state`.
            return_state (bool, optional): also return the final state.

        Returns:
            :class:`HypergraphPrediction` (and :class:`RefinerState`).
        """
        if state is None:
            state = self.init_state(x, batch, num_graphs, slots=slots,
                                    generator=generator,
                                    candidate_index=candidate_index)
        T = self.num_iterations if num_iterations is None else num_iterations
        if T < 1 and state.incidence_logit is None:
            raise ValueError("'num_iterations' must be at least 1")
        return self._run_and_predict(state, T, return_state)

    # ------------------------------------------------------------------
    def _check_input(self, x: Tensor, batch: Optional[Tensor],
                     num_graphs: Optional[int]):
        return check_set_input(x, batch, num_graphs, self.in_channels,
                               check_sorted=False, check_finite=True,
                               dtype=self.lin_in.weight.dtype)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels}, max_edges={self.max_edges}, '
                f'num_iterations={self.num_iterations}'
                f'{", stacked=True" if self.stacked else ""}'
                f'{self._candidates_repr()})')

    def _candidates_repr(self) -> str:
        k = self.num_candidates
        return '' if k is None else f', num_candidates={k}'


class StackedHypergraphRefiner(HypergraphRefiner):
    r"""The non-weight-tied ablation of :class:`HypergraphRefiner`: step
    :math:`t` has its own :class:`RefinementStep` parameters. Steps past
    ``num_iterations`` reuse the last module.

    Args:
        in_channels, hidden_channels, max_edges, num_iterations: see
            :class:`HypergraphRefiner`.
    """

    def __init__(self, in_channels: int, hidden_channels: int, max_edges: int,
                 num_iterations: int = 16,
                 chunk_elements: Optional[int] = None,
                 checkpoint: Union[bool, str] = 'auto',
                 num_candidates: Optional[int] = None):
        super().__init__(in_channels, hidden_channels, max_edges,
                         num_iterations, stacked=True,
                         chunk_elements=chunk_elements, checkpoint=checkpoint,
                         num_candidates=num_candidates)
