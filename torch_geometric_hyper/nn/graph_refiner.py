r"""The set-to-graph adaptation of the recurrent refiner (Delaunay edges)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm, Linear, ModuleList, Parameter
from torch.utils.checkpoint import checkpoint

from torch_geometric_hyper.nn.base import PairScorer, RecurrentModel
from torch_geometric_hyper.nn.checkpointing import (
    check_checkpoint_mode,
    use_checkpointing,
)
from torch_geometric_hyper.nn.checks import check_set_input
from torch_geometric_hyper.nn.deepsets import DeepSet
from torch_geometric_hyper.nn.kernels.incidence import CandidateIncidence
from torch_geometric_hyper.nn.kernels.sparse import incidence_matmul
from torch_geometric_hyper.nn.pairs import (
    canonical_pairs,
    closing_pairs,
    complete_pairs,
    knn_pairs,
)
from torch_geometric_hyper.nn.prediction import _NodeBatch
from torch_geometric_hyper.nn.residual import residual_add

__all__ = [
    'AdjacencyPrediction',
    'GraphRefinerState',
    'GraphRefinementStep',
    'GraphRefiner',
]


# --------------------------------------------------------------------------
# Prediction and state
# --------------------------------------------------------------------------
@dataclass
class AdjacencyPrediction(_NodeBatch):
    r"""A predicted symmetric adjacency per graph, on candidate pairs.

    Attributes:
        logit (torch.Tensor): :math:`(P)` logits of :math:`A_{ij}`.
        pair_index (torch.Tensor): :math:`(2, P)` unordered candidate pairs
            (global node ids, row 0 < row 1, sorted). Non-candidate pairs
            have :math:`A_{ij} = 0`.
        batch (torch.Tensor): :math:`(N)` graph of each node.
        num_graphs (int): :math:`B`.
    """

    logit: Tensor
    pair_index: Tensor
    batch: Tensor
    num_graphs: int

    @property
    def adjacency(self) -> Tensor:
        """:math:`(P)` edge probabilities :math:`A_{ij}`."""
        return torch.sigmoid(self.logit)

    def edge_index(self, threshold: float = 0.5) -> Tensor:
        r"""The decoded undirected graph: pairs with :math:`A_{ij} >`
        ``threshold``, both directions, coalesced (PyG convention)."""
        i, j = self.pair_index[:, self.adjacency > threshold]
        n = self.num_nodes
        key = torch.sort(torch.cat([i * n + j, j * n + i])).values
        return torch.stack([key // max(n, 1), key % max(n, 1)])

    def to_dense(self, fill_value: float = 0.0) -> Tuple[Tensor, Tensor]:
        r"""Pads the probabilities to :math:`(B, n_{max}, n_{max})`.

        The diagonal, non-candidate and padded entries hold ``fill_value``.

        Returns:
            ``(adjacency [B, n_max, n_max], node_mask [B, n_max])``.
        """
        B = self.num_graphs
        _, n_max, pos, mask = self._node_layout()
        dense = self.logit.new_full((B, n_max, n_max), fill_value)
        i, j = self.pair_index
        g = self.batch[i]
        pi, pj = pos[i], pos[j]
        prob = self.adjacency
        dense[g, pi, pj] = prob
        dense[g, pj, pi] = prob
        return dense, mask


@dataclass
class GraphRefinerState:
    r"""Everything a :class:`GraphRefiner` step reads and writes.

    Attributes:
        x (torch.Tensor): :math:`(N, F)` raw node features.
        node (torch.Tensor): :math:`(N, d)` node latents :math:`V`.
        adjacency (torch.Tensor): :math:`(P)` last probabilities
            :math:`A_{ij}` (zeros before the first step).
        logit (torch.Tensor, optional): last logits.
        pairs (CandidateIncidence): the candidate pairs, nodes acting as
            their own slots (:math:`m = n`).
        batch (torch.Tensor): :math:`(N)` graph of each node.
        num_graphs (int): :math:`B`.
        iteration (int): steps taken so far.
        base_index (torch.Tensor, optional): :math:`(2, P_0)` the initial
            candidates, always kept when a refiner with ``refresh`` adds
            pairs (``None`` without refresh).
        scale (torch.Tensor, optional): :math:`(N)` each node's local
            length scale, the mean distance to its nearest neighbours (a
            refiner with ``pair_geometry``; else ``None``).
    """

    x: Tensor
    node: Tensor
    adjacency: Tensor
    logit: Optional[Tensor]
    pairs: CandidateIncidence
    batch: Tensor
    num_graphs: int
    iteration: int = 0
    base_index: Optional[Tensor] = None
    scale: Optional[Tensor] = None

    @property
    def pair_index(self) -> Tensor:
        return self.pairs.index

    def detach(self) -> 'GraphRefinerState':
        """Cuts the state out of the autograd graph (backprop with skips)."""
        return replace(self, node=self.node.detach(),
                       adjacency=self.adjacency.detach(),
                       logit=None if self.logit is None else
                       self.logit.detach())

    def prediction(self) -> AdjacencyPrediction:
        """The prediction of the last step."""
        if self.logit is None:
            raise RuntimeError("no refinement step has run yet: call "
                               "step() at least once before predicting")
        return AdjacencyPrediction(self.logit, self.pairs.index, self.batch,
                                   self.num_graphs)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
class GraphRefinementStep(PairScorer):
    r"""One refinement step of :class:`GraphRefiner`.

    .. math::
        A_{ij} &\leftarrow \sigma\big(w_2^\top \mathrm{ReLU}(W v_i + W v_j
            + w_A A_{ij} + b) + b_2\big)

        V &\leftarrow \mathrm{LN}\big(V + \mathrm{DeepSet}_n(\mathrm{LN}
            [\hat X,\ V,\ A V])\big)

    on the candidate pairs only. Each unordered pair is scored once, so
    :math:`A` is exactly symmetric; :math:`A V` sums over both directions.

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
        self.lin_pair = Linear(d, d)
        self.pair_weight = Parameter(torch.empty(d))
        self.lin_pair_out = Linear(d, 1)
        self.node_norm_in = LayerNorm(3 * d)
        self.node_deepset = DeepSet(3 * d, d)
        self.node_norm = LayerNorm(d)
        self.reset_parameters()

    def _uniform_parameters(self):
        return (self.pair_weight, )

    def forward(self, x_hat: Tensor, node: Tensor, adjacency: Tensor,
                pairs: CandidateIncidence, batch: Tensor,
                num_graphs: int, pair_bias: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor]:
        r"""
        Args:
            x_hat (torch.Tensor): :math:`(N, d)` projected inputs.
            node (torch.Tensor): :math:`(N, d)` node latents.
            adjacency (torch.Tensor): :math:`(P)` previous probabilities.
            pairs (CandidateIncidence): unordered candidate pairs.
            batch (torch.Tensor): :math:`(N)` graph of each node.
            num_graphs (int): :math:`B`.
            pair_bias (torch.Tensor, optional): :math:`(P)` added to the
                logits before the messages (the geometric prior of
                ``GraphRefiner(pair_geometry=...)``).

        Returns:
            ``(node, logit)`` of shapes :math:`(N, d)` and :math:`(P)`.
        """
        wv = F.linear(node, self.lin_pair.weight)
        logit = self._pair_logit(wv + self.lin_pair.bias, wv, adjacency,
                                 self.pair_weight, self.lin_pair_out,
                                 pairs.index)
        if pair_bias is not None:
            logit = logit + pair_bias
        adj = torch.sigmoid(logit)
        # A V with A symmetric: each stored pair (i, j) sends both ways.
        msg = incidence_matmul(pairs, adj, node, True, self.chunk_elements)
        msg = msg + incidence_matmul(pairs, adj, node, False,
                                     self.chunk_elements)
        h = self.node_deepset([x_hat, node, msg], batch, num_graphs,
                              norm=self.node_norm_in)
        node = self.node_norm(residual_add(h, node))
        return node, logit


class GraphRefiner(RecurrentModel):
    r"""Recurrent set-to-graph refiner: the set-to-graph adaptation of the
    hypergraph refiner of `"Pruning Edges and Gradients to Learn Hypergraphs
    from Larger Sets" <https://arxiv.org/abs/2106.13919>`_ (Zhang,
    Burghouts, Snoek, LoG 2022), used for Delaunay edges.

    The hyperedge slots are replaced by the nodes themselves (:math:`m = n`)
    and the incidence by a symmetric adjacency :math:`A` over candidate
    pairs. With one shared :class:`GraphRefinementStep`:

    .. math::
        \hat X = V^{(0)} = X W_x + b_x, \qquad A^{(0)} = 0

        A^{(t+1)}_{ij} = \sigma\big(w_2^\top \mathrm{ReLU}(W v^{(t)}_i
            + W v^{(t)}_j + w_A A^{(t)}_{ij} + b) + b_2\big)

        V^{(t+1)} = \mathrm{LN}\big(V^{(t)} + \mathrm{DeepSet}_n(
            \mathrm{LN}[\hat X,\ V^{(t)},\ A^{(t+1)} V^{(t)}])\big)

    The pair score sums the two node terms inside the MLP, so it is
    symmetric; there is no existence gate; edges are decoded at
    :math:`A_{ij} > 0.5`. Aggregations are plain weighted sums, the DeepSet
    mean runs over the nodes of each graph.

    **Candidate pairs.** :math:`A` lives on a set of unordered candidate
    pairs (default: all :math:`n(n-1)/2` pairs of each graph, cost
    :math:`O(n^2 d)` per step). Pass ``pair_index`` (any ``[2, P]`` pairs,
    e.g. from :func:`knn_pairs`; directions, duplicates and self-loops are
    normalised away) or set ``knn`` to score only :math:`O(n k)` pairs.
    Non-candidate pairs count as :math:`A_{ij} = 0`, both in the prediction
    and in the messages :math:`A V`. Hence restricting the candidates leaves
    the *first* step's scores on the kept pairs unchanged (they depend only
    on :math:`V^{(0)}` and :math:`A^{(0)} = 0`), while later steps change
    because the node messages lose the dropped pairs' terms.

    The model is equivariant to node permutations and has no random
    initialisation (it is a deterministic function of the input).

    Args:
        in_channels (int): node feature size :math:`F`.
        hidden_channels (int, optional): latent size :math:`d` (paper:
            :obj:`256`).
        num_iterations (int, optional): default steps :math:`T` for
            :meth:`forward` (paper: :obj:`32`).
        knn (int, optional): if set, the default candidates are the
            symmetrised :math:`k`-nearest-neighbour pairs of the input
            features (see :func:`knn_pairs`) instead of all pairs.
        stacked (bool, optional): :math:`T` separate step modules instead
            of one shared. (default: :obj:`False`)
        chunk_elements (int, optional): working-set size (floats) of the
            per-pair kernels; ``None`` (default):
            :func:`~torch_geometric_hyper.nn.kernels.default_chunk_elements`.
        checkpoint (bool or str, optional): recompute each step's
            activations in the backward pass; ``'auto'`` only when one
            step's would exceed 256 MiB (see
            :class:`~torch_geometric_hyper.nn.HypergraphRefiner`).
            (default: :obj:`'auto'`)
        refresh (int, optional): refresh the candidates as refinement
            proceeds: before every step after the first, the candidates are
            the initial ones plus, per node, up to ``refresh`` pairs that
            close a triangle of the current prediction
            (:func:`closing_pairs`). A pair that stays a candidate keeps
            its :math:`A`; a new one starts at :math:`A = 0`. So a true
            edge missing from the :math:`k` nearest neighbours can still be
            predicted. (default: :obj:`None`, fixed candidates)
        pair_geometry (int, optional): add to every pair's logit, at every
            step and before the messages, a learned function (an MLP with
            this many hidden units) of the pair's scale-free geometry:
            :math:`s_{ij} = \lVert x_i - x_j \rVert / \sqrt{r_i r_j}` and
            :math:`|\log(r_i / r_j)|`, where :math:`r_i` is the mean
            distance of node :math:`i` to its ``knn`` (default 16)
            nearest neighbours. Both are unchanged by scaling the set, so
            they mean the same at any point density. (default:
            :obj:`None`, no geometric term)

    Shapes:
        - **input:** node features :math:`(N, F)`, batch vector :math:`(N)`
        - **output:** :class:`AdjacencyPrediction` with logits :math:`(P)`

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.nn import GraphRefiner
        >>> model = GraphRefiner(2, 32, num_iterations=4)
        >>> x = torch.rand(10, 2)
        >>> batch = torch.tensor([0] * 6 + [1] * 4)
        >>> pred = model(x, batch, num_graphs=2)
        >>> pred.logit.shape  # 6*5/2 + 4*3/2 pairs
        torch.Size([21])
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256,
                 num_iterations: int = 32, knn: Optional[int] = None,
                 stacked: bool = False,
                 chunk_elements: Optional[int] = None,
                 checkpoint: Union[bool, str] = 'auto',
                 refresh: Optional[int] = None,
                 pair_geometry: Optional[int] = None):
        super().__init__()
        check_checkpoint_mode(checkpoint)
        for name, value in (('in_channels', in_channels),
                            ('hidden_channels', hidden_channels),
                            ('num_iterations', num_iterations)):
            if not isinstance(value, (int, np.integer)) or int(value) < 1:
                raise ValueError(f"'{name}' must be a positive integer, "
                                 f"got {value!r}")
        if knn is not None and int(knn) < 1:
            raise ValueError(f"'knn' must be a positive integer or None, "
                             f"got {knn!r}")
        if refresh is not None and (
                not isinstance(refresh, (int, np.integer))
                or int(refresh) < 1):
            raise ValueError(f"'refresh' must be a positive integer (pairs "
                             f"added per node) or None, got {refresh!r}")
        self.refresh = None if refresh is None else int(refresh)
        if pair_geometry is not None and (
                not isinstance(pair_geometry, (int, np.integer))
                or int(pair_geometry) < 1):
            raise ValueError(f"'pair_geometry' must be a positive integer "
                             f"(hidden units) or None, got {pair_geometry!r}")
        self.pair_geometry = None if pair_geometry is None \
            else int(pair_geometry)
        self.in_channels = int(in_channels)
        self.hidden_channels = int(hidden_channels)
        self.num_iterations = int(num_iterations)
        self.knn = None if knn is None else int(knn)
        self.stacked = stacked
        self.checkpoint = checkpoint
        self.lin_in = Linear(self.in_channels, self.hidden_channels)
        num_steps = self.num_iterations if stacked else 1
        self.steps = ModuleList([
            GraphRefinementStep(self.hidden_channels, chunk_elements)
            for _ in range(num_steps)
        ])
        self.geometry = None if self.pair_geometry is None else \
            torch.nn.Sequential(Linear(2, self.pair_geometry),
                                torch.nn.ReLU(),
                                Linear(self.pair_geometry, 1))
        self.reset_parameters()

    def reset_parameters(self):
        self.lin_in.reset_parameters()
        for step in self.steps:
            step.reset_parameters()
        if self.geometry is not None:
            for layer in (self.geometry[0], self.geometry[2]):
                layer.reset_parameters()

    def init_state(self, x: Tensor, batch: Optional[Tensor] = None,
                   num_graphs: Optional[int] = None, *,
                   pair_index: Optional[Tensor] = None) -> GraphRefinerState:
        r"""Builds the initial state :math:`(V^{(0)}, A^{(0)} = 0)`.

        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            batch (torch.Tensor, optional): :math:`(N)` graph of each node,
                sorted (default: one graph).
            num_graphs (int, optional): number of graphs.
            pair_index (torch.Tensor, optional): :math:`(2, P)` candidate
                pairs (global node ids, any direction); default all pairs
                of each graph, or the kNN pairs if ``knn`` is set.
        """
        x, batch, num_graphs = self._check_input(x, batch, num_graphs)
        n = x.size(0)
        if pair_index is not None:
            index = canonical_pairs(pair_index, batch)
        elif self.knn is not None:
            index = knn_pairs(x, self.knn, batch, num_graphs)
        else:
            index = complete_pairs(batch, num_graphs)
        index = index.to(x.device)
        pairs = CandidateIncidence.build(index, n, n)
        scale = None if self.geometry is None else \
            local_scale(x, self.knn or 16, batch, num_graphs)
        return GraphRefinerState(x, self.lin_in(x), x.new_zeros(pairs.nnz),
                                 None, pairs, batch, num_graphs,
                                 base_index=index if self.refresh else None,
                                 scale=scale)

    def _pair_bias(self, state: GraphRefinerState) -> Optional[Tensor]:
        # the geometric prior of the candidate pairs (pair_geometry)
        if self.geometry is None or state.scale is None:
            return None
        i, j = state.pairs.index
        r_i, r_j = state.scale[i], state.scale[j]
        dist = (state.x[i] - state.x[j]).norm(dim=1)
        feat = torch.stack([dist / torch.sqrt(r_i * r_j),
                            torch.log(r_i / r_j).abs()], dim=1)
        return self.geometry(feat).view(-1)

    def _refreshed(self, state: GraphRefinerState) -> GraphRefinerState:
        # the initial candidates plus the pairs closing predicted triangles,
        # with the adjacency of the pairs that stay
        n = state.node.size(0)
        with torch.no_grad():
            extra = closing_pairs(state.pairs.index, state.adjacency, n,
                                  self.refresh)
            key = torch.unique(torch.cat([
                state.base_index[0] * n + state.base_index[1],
                extra[0] * n + extra[1]]))
            old = state.pairs.index[0] * n + state.pairs.index[1]
            found = torch.isin(key, old)
            pos = torch.searchsorted(old, key)[found]
        index = torch.stack([key // n, key % n])
        pairs = CandidateIncidence.build(index, n, n)
        adjacency = state.adjacency.new_zeros(key.numel()).index_put(
            (found.nonzero().view(-1), ), state.adjacency[pos])
        return replace(state, pairs=pairs, adjacency=adjacency, logit=None)

    def step(self, state: GraphRefinerState) -> GraphRefinerState:
        """Runs one refinement step and returns the new state."""
        if self.refresh is not None and state.iteration > 0 and \
                state.base_index is not None:
            state = self._refreshed(state)
        module = self.steps[min(state.iteration, len(self.steps) - 1)]
        args = (self.lin_in(state.x), state.node, state.adjacency,
                state.pairs, state.batch, state.num_graphs,
                self._pair_bias(state))
        if torch.is_grad_enabled() and use_checkpointing(
                self.checkpoint, state.pairs.nnz, state.node.size(0),
                self.hidden_channels, state.node.element_size()):
            node, logit = checkpoint(module, *args, use_reentrant=False)
        else:
            node, logit = module(*args)
        return GraphRefinerState(state.x, node, torch.sigmoid(logit), logit,
                                 state.pairs, state.batch, state.num_graphs,
                                 state.iteration + 1, state.base_index,
                                 state.scale)

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None, *,
                num_iterations: Optional[int] = None,
                pair_index: Optional[Tensor] = None,
                state: Optional[GraphRefinerState] = None,
                return_state: bool = False):
        r"""Runs :math:`T` steps and returns the last
        :class:`AdjacencyPrediction` (and the final state with
        ``return_state``). See :meth:`init_state` for the arguments."""
        if state is None:
            state = self.init_state(x, batch, num_graphs,
                                    pair_index=pair_index)
        T = self.num_iterations if num_iterations is None else num_iterations
        if int(T) < 1:
            raise ValueError(f"'num_iterations' must be positive, got {T}")
        return self._run_and_predict(state, int(T), return_state)

    def _check_input(self, x, batch, num_graphs):
        return check_set_input(x, batch, num_graphs, self.in_channels,
                               dtype=self.lin_in.weight.dtype)

    def __repr__(self) -> str:
        knn = f', knn={self.knn}' if self.knn is not None else ''
        if self.refresh is not None:
            knn += f', refresh={self.refresh}'
        if self.pair_geometry is not None:
            knn += f', pair_geometry={self.pair_geometry}'
        stacked = ', stacked=True' if self.stacked else ''
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels}, num_iterations='
                f'{self.num_iterations}{knn}{stacked})')


def local_scale(x: Tensor, k: int, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
    r"""Each node's mean distance to its :math:`k` nearest neighbours in
    its graph (a k-d tree per graph, :math:`O(n k \log n)`): the local
    length scale of :class:`GraphRefiner`'s ``pair_geometry``.

    Args:
        x (torch.Tensor): :math:`(N, D)` positions.
        k (int): neighbours (capped at :math:`n_g - 1`).
        batch (torch.Tensor, optional): :math:`(N)` sorted graph of each
            node.
        num_graphs (int, optional): :math:`B`.

    Returns:
        torch.Tensor: :math:`(N)` positive scales in ``x``'s dtype (1 for
        a node alone in its graph; never below a tiny positive floor).
    """
    from scipy.spatial import cKDTree

    from torch_geometric_hyper.nn.prediction import graph_ptr
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
    num_graphs = int(batch.max()) + 1 if num_graphs is None else num_graphs
    ptr = graph_ptr(batch.long(), num_graphs).tolist()
    pts = x.detach().cpu().double().numpy()
    out = np.ones(x.size(0))
    for g in range(num_graphs):
        lo, hi = ptr[g], ptr[g + 1]
        kk = min(int(k), hi - lo - 1)
        if kk < 1:
            continue
        dist, _ = cKDTree(pts[lo:hi]).query(pts[lo:hi], kk + 1)
        out[lo:hi] = dist[:, 1:].mean(1)
    out = np.maximum(out, 1e-12)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
