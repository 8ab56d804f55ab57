r"""Set2Graph (Serviansky et al., NeurIPS 2020): score every k-tuple."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Module, ModuleList
from torch_geometric.utils import scatter

from torch_geometric_hyper.data.unique import unique_hyperedges
from torch_geometric_hyper.nn.baselines.heads import dense_sets
from torch_geometric_hyper.nn.checks import check_set_input, positive_int
from torch_geometric_hyper.nn.config import Configurable
from torch_geometric_hyper.nn.deepsets import DeepSetLayer
from torch_geometric_hyper.nn.graph_refiner import AdjacencyPrediction
from torch_geometric_hyper.nn.kernels.incidence import count_values
from torch_geometric_hyper.nn.losses.adjacency import LabelBCELoss
from torch_geometric_hyper.nn.prediction import _NodeBatch


# --------------------------------------------------------------------------
# The memory wall
# --------------------------------------------------------------------------
def physical_memory_bytes() -> int:
    r"""Physical memory of this machine in bytes (``os.sysconf``; 8 GiB
    where the platform does not say)."""
    try:
        return int(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def tuple_tensor_bytes(num_nodes: int, k: int, channels: int,
                       batch_size: int = 1,
                       neighbours: Optional[int] = None,
                       bytes_per_element: int = 4) -> int:
    r"""Bytes of Set2Graph's k-tuple tensor for sets of ``num_nodes`` nodes.

    Set2Graph broadcasts the node features to every k-tuple, a
    :math:`(B, n, \dots, n, c)` tensor with :math:`n^k` tuples per set, or
    :math:`n K^{k-1}` tuples in the local version where the other
    :math:`k - 1` members are among the :math:`K` nearest neighbours of the
    first:

    .. math::
        \text{bytes} = B \cdot n^k \cdot c \cdot \text{bytes per element}
        \quad\text{or}\quad B \cdot n \cdot K^{k-1} \cdot c \cdot
        \text{bytes per element}.

    Computed in Python integers: nothing is allocated, so it answers for
    sizes no machine holds (e.g. :math:`k = 10`, :math:`n = 13`).

    Args:
        num_nodes (int): set size :math:`n` (the largest set of a padded
            batch).
        k (int): tuple order.
        channels (int): :math:`c`, floats stored per tuple.
        batch_size (int, optional): :math:`B`. (default: :obj:`1`)
        neighbours (int, optional): :math:`K` of the local version
            (capped at :math:`n - 1`); ``None`` for all tuples.
        bytes_per_element (int, optional): 4 for float32.
    """
    n, k = positive_int('num_nodes', num_nodes), positive_int('k', k)
    if neighbours is None:
        tuples = n ** k
    else:
        kk = min(positive_int('neighbours', neighbours), n - 1)
        tuples = n * kk ** (k - 1)
    return (tuples * positive_int('channels', channels)
            * positive_int('batch_size', batch_size) * int(bytes_per_element))


def default_max_bytes() -> int:
    r"""Default limit of :func:`check_tuple_memory`: half the physical
    memory."""
    return physical_memory_bytes() // 2


def _human(num_bytes: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'):
        if num_bytes < 1000 or unit == 'EB':
            return f'{num_bytes:.3g} {unit}'
        num_bytes /= 1000


def check_tuple_memory(num_nodes: int, k: int, channels: int,
                       batch_size: int = 1,
                       neighbours: Optional[int] = None,
                       max_bytes: Optional[int] = None,
                       bytes_per_element: int = 4) -> int:
    r"""Refuses a Set2Graph configuration whose k-tuple tensor would not fit.

    Computes :func:`tuple_tensor_bytes` (without allocating anything) and
    raises a :class:`ValueError` naming the size and the fixes when it
    exceeds ``max_bytes``.

    Args:
        num_nodes, k, channels, batch_size, neighbours, bytes_per_element:
            see :func:`tuple_tensor_bytes`.
        max_bytes (int, optional): the limit (default
            :func:`default_max_bytes`, half the physical memory).

    Returns:
        int: the number of bytes, when it fits.

    Example:
        >>> from torch_geometric_hyper.nn import check_tuple_memory
        >>> check_tuple_memory(13, k=10, channels=1)  # 10-D convex hull
        Traceback (most recent call last):
        ...
        ValueError: Set2Graph's k-tuple tensor needs 551 GB ...
    """
    need = tuple_tensor_bytes(num_nodes, k, channels, batch_size, neighbours,
                              bytes_per_element)
    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    if need > limit:
        n = int(num_nodes)
        what = (f'{n}^{k}' if neighbours is None else
                f'{n} x {min(int(neighbours), n - 1)}^{k - 1}')
        raise ValueError(
            f"Set2Graph's k-tuple tensor needs {_human(need)} ({what} tuples "
            f"x {channels} channels x batch {batch_size} x "
            f"{bytes_per_element} bytes) but the limit is {_human(limit)} "
            f"(max_bytes). Fix: use fewer nodes per set or a smaller batch, "
            f"the local version (neighbours=K), a smaller k, or a model "
            f"whose memory is O(m n) such as HypergraphRefiner.")
    return need


# --------------------------------------------------------------------------
# Candidate tuples
# --------------------------------------------------------------------------
_PERMS = {}


def _permutations(n: int, r: int, device) -> Tensor:
    """``[n!/(n-r)!, r]`` ordered r-tuples of distinct elements of range(n)."""
    key = (n, r)
    if key not in _PERMS:
        rows = list(itertools.permutations(range(n), r))
        _PERMS[key] = torch.tensor(rows, dtype=torch.long).view(-1, r)
    return _PERMS[key].to(device)


def tuple_occurrences(x: Tensor, batch: Tensor, num_graphs: int, k: int,
                      neighbours: Optional[int] = None) -> Tensor:
    r"""The ordered k-tuples of distinct nodes Set2Graph scores.

    Without ``neighbours``, every ordered k-tuple of distinct nodes of each
    graph (:math:`n!/(n-k)!` per graph). With ``neighbours`` :math:`K`, the
    local version: tuples :math:`(i, j_1, \dots, j_{k-1})` whose other
    members are distinct nodes among the :math:`K` nearest neighbours of
    :math:`i` in its graph (Euclidean distance of the rows of ``x``).

    Returns:
        torch.Tensor: :math:`(Q, k)` global node ids.
    """
    counts = count_values(batch, num_graphs)
    if neighbours is None:
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).tolist()
        parts = [_permutations(ptr[g + 1] - ptr[g], k, x.device) + ptr[g]
                 for g in range(num_graphs) if ptr[g + 1] - ptr[g] >= k]
        if not parts:
            return batch.new_zeros(0, k)
        return torch.cat(parts)
    dense, mask = dense_sets(x.detach(), batch, num_graphs)
    n_max = dense.size(1)
    K = min(int(neighbours), n_max - 1)
    if K < k - 1:
        return batch.new_zeros(0, k)
    dist = torch.cdist(dense, dense)
    invalid = ~(mask[:, :, None] & mask[:, None, :])
    invalid |= torch.eye(n_max, dtype=torch.bool, device=x.device)
    dist = dist.masked_fill(invalid, float('inf'))
    d_nbr, nbr = dist.topk(K, dim=-1, largest=False)  # [B, n_max, K]
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    nbr = nbr + ptr.view(-1, 1, 1)
    nbr, ok = nbr[mask], torch.isfinite(d_nbr[mask])  # [N, K]
    perm = _permutations(K, k - 1, x.device)  # [p, k-1]
    centre = torch.arange(x.size(0), device=x.device)
    centre = centre.view(-1, 1, 1).expand(-1, perm.size(0), 1)
    occ = torch.cat([centre, nbr[:, perm]], dim=-1)  # [N, p, k]
    keep = ok[:, perm].all(dim=-1)
    return occ[keep]


def _unique_rows(rows: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor]:
    """``torch.unique(rows, dim=0, return_inverse=True)`` for rows of node
    ids below ``num_nodes``, through one integer key per row when it fits in
    int64 (much faster than the row-wise unique)."""
    k = rows.size(1)
    base = max(int(num_nodes), 1)
    if base ** k >= 2 ** 62 or rows.size(0) == 0:
        return torch.unique(rows, dim=0, return_inverse=True)
    key = rows[:, 0]
    for r in range(1, k):
        key = key * base + rows[:, r]
    uniq, inverse = torch.unique(key, return_inverse=True)
    out = uniq.new_empty(uniq.numel(), k)
    for r in range(k - 1, -1, -1):
        out[:, r] = uniq % base
        uniq = uniq // base
    return out, inverse


# --------------------------------------------------------------------------
# Predictions and loss
# --------------------------------------------------------------------------
@dataclass
class TuplePrediction(_NodeBatch):
    r"""Scores of candidate k-tuples (hyperedges of a fixed size k), the
    output of :class:`Set2Graph` for :math:`k \ge 3`.

    Duck-types the decoding of
    :class:`~torch_geometric_hyper.nn.HypergraphPrediction`, so
    :func:`~torch_geometric_hyper.metrics.evaluate_hyperedges` scores it.

    Attributes:
        logit (torch.Tensor): :math:`(P)` logits of "this tuple is a
            hyperedge".
        tuple_index (torch.Tensor): :math:`(k, P)` members of each
            candidate (global node ids, increasing down each column; the
            columns sorted lexicographically).
        batch (torch.Tensor): :math:`(N)` graph of each node.
        num_graphs (int): :math:`B`.
    """

    logit: Tensor
    tuple_index: Tensor
    batch: Tensor
    num_graphs: int

    @property
    def probability(self) -> Tensor:
        """:math:`(P)` probabilities."""
        return torch.sigmoid(self.logit)

    @property
    def k(self) -> int:
        return self.tuple_index.size(0)

    def to_hyperedge_index(self, threshold: float = 0.5,
                           edge_size: Optional[int] = None,
                           existence_threshold: float = 0.5,
                           unique: bool = False
                           ) -> Tuple[Tensor, Tensor]:
        r"""Decodes the tuples with probability above
        ``existence_threshold`` (the signature of
        :meth:`HypergraphPrediction.to_hyperedge_index
        <torch_geometric_hyper.nn.HypergraphPrediction.to_hyperedge_index>`;
        ``threshold`` is unused since the members of a tuple are fixed;
        ``unique`` keeps the first of tuples with the same node set).

        Returns:
            ``(hyperedge_index [2, k E'], hyperedge_batch [E'])``.
        """
        if edge_size is not None and int(edge_size) != self.k:
            raise ValueError(f"this prediction holds {self.k}-tuples; "
                             f"edge_size={edge_size} cannot be decoded from "
                             f"it")
        keep = self.probability > existence_threshold
        members = self.tuple_index[:, keep]  # [k, E']
        E = members.size(1)
        edge = torch.arange(E, device=members.device).repeat_interleave(
            self.k)
        index = torch.stack([members.t().reshape(-1), edge])
        edge_batch = self.batch[members[0]]
        if unique:
            index, keep = unique_hyperedges(index, E, edge_batch)
            edge_batch = edge_batch[keep]
        return index, edge_batch


def _target_tuples(hyperedge_index: Tensor, k: int) -> Tensor:
    if hyperedge_index.dim() != 2 or hyperedge_index.size(0) != 2:
        raise ValueError(f"'hyperedge_index' must have shape [2, nnz], got "
                         f"{list(hyperedge_index.shape)}")
    node, edge = hyperedge_index.long()
    if node.numel() == 0:
        return node.new_zeros(0, k)
    _, edge, counts = torch.unique(edge, return_inverse=True,
                                   return_counts=True)
    if bool((counts != k).any()):
        raise ValueError(f"the target has hyperedges of sizes "
                         f"{sorted(set(counts.tolist()))} but the prediction "
                         f"scores {k}-tuples: Set2Graph needs hyperedges of "
                         f"one size k")
    order = torch.argsort(edge * (int(node.max()) + 1) + node)
    return node[order].view(-1, k)


def tuple_labels(tuple_index: Tensor, hyperedge_index: Tensor) -> Tensor:
    r"""``1.0`` for the candidate tuples that are target hyperedges, ``0.0``
    for the others.

    Args:
        tuple_index (torch.Tensor): :math:`(k, P)` candidates, members
            increasing down each column.
        hyperedge_index (torch.Tensor): :math:`(2, \text{nnz})` target
            incidence (row 0 node, row 1 hyperedge), every hyperedge of
            size :math:`k`.
    """
    k, P = tuple_index.shape
    target = _target_tuples(hyperedge_index.to(tuple_index.device), k)
    rows = torch.cat([tuple_index.t(), target])
    if rows.size(0) == 0:
        return tuple_index.new_zeros(P, dtype=torch.float)
    num_nodes = int(rows.max()) + 1
    _, inverse = _unique_rows(rows, num_nodes)
    return torch.isin(inverse[:P], inverse[P:]).float()


class TupleBCELoss(LabelBCELoss):
    r"""Set2Graph's loss for hyperedges of a fixed size :math:`k`: binary
    cross-entropy of every candidate tuple's score against "is a target
    hyperedge".

    .. math::
        \mathcal L = -\frac1P \sum_t y_t \log p_t + (1 - y_t)\log(1 - p_t)

    Target hyperedges that are not candidates (outside the local version's
    neighbourhoods) cannot be predicted and do not enter the loss.

    Args:
        pos_weight (float, optional): weight of the positive tuples.
        reduction (str, optional): ``'mean'``, ``'sum'`` or ``'none'``.

    Shapes:
        - **input:** a :class:`TuplePrediction`, a batch with
          ``hyperedge_index``
        - **output:** scalar, or :math:`(P)` with ``reduction='none'``
    """

    def forward(self, prediction: TuplePrediction, data) -> Tensor:
        index = getattr(data, 'hyperedge_index', data)
        if not isinstance(index, Tensor):
            raise ValueError("the target has no 'hyperedge_index'")
        return self._bce(prediction.logit,
                         tuple_labels(prediction.tuple_index, index))


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
class _AttentionDeepSetLayer(DeepSetLayer):
    r"""``L1(h) + L2(h - att(h))``: the set mean replaced by a per-node
    attention average over the node's set."""

    def __init__(self, in_channels: int, out_channels: int,
                 attention_channels: int):
        super().__init__(in_channels, out_channels)
        self.lin_q = Linear(in_channels, attention_channels, bias=False)
        self.lin_k = Linear(in_channels, attention_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        if hasattr(self, 'lin_k'):
            self.lin_q.reset_parameters()
            self.lin_k.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, num_sets: int) -> Tensor:
        dense, mask = dense_sets(h, index, num_sets)
        q, k = self.lin_q(dense), self.lin_k(dense)
        score = q @ k.transpose(1, 2) * q.size(-1) ** -0.5
        score = score.masked_fill(~mask[:, None, :], float('-inf'))
        pooled = (torch.softmax(score, dim=-1) @ dense)[mask]
        return self.lin(h) + self.lin_centered(h - pooled)


class Set2Graph(Configurable, Module):
    r"""Set2Graph of `"Set2Graph: Learning Graphs From Sets"
    <https://arxiv.org/abs/2002.08772>`_ (Serviansky et al., NeurIPS 2020):
    a set-to-set encoder, a broadcast of the node features to k-tuples and
    an MLP scoring every tuple.

    1. **Encoder** :math:`\phi`: ``num_layers`` DeepSets layers
       :math:`h' = L_1(h) + L_2(h - \bar h)` with ReLUs between
       (:class:`~torch_geometric_hyper.nn.DeepSetLayer`); with
       ``attention=True`` the set mean :math:`\bar h` is replaced by an
       attention average :math:`\sum_j \mathrm{softmax}_j(q_i^\top k_j /
       \sqrt a)\, h_j` over the node's set.
    2. **Broadcast** :math:`\beta` to the tuple :math:`(i_1, \dots, i_k)`:
       ``'s2g'`` concatenates the members' features,
       :math:`[h_{i_1}, \dots, h_{i_k}]`; ``'s2g+'`` also adds the set mean
       :math:`\bar h` — on tuples of distinct nodes these are the
       non-vanishing ones of the equivariant :math:`1 \to k` linear maps
       (for :math:`k = 2` the five maps of the paper, whose two diagonal
       maps vanish off the diagonal).
    3. **Scoring** :math:`\psi`: an MLP (``mlp_layers`` hidden layers of
       ``tuple_channels``) maps each tuple to a logit.

    The tuple tensor costs :math:`O(n^k)` memory per set, which is the
    point of the comparison with the refiner's :math:`O(mn)`. Before
    building anything the model checks the size with
    :func:`check_tuple_memory` and raises a :class:`ValueError` instead of
    exhausting the machine (e.g. :math:`k = 10`, :math:`n = 13`).

    Tuples with repeated members are never hyperedges and are skipped; an
    unordered candidate's logit is the mean over its orderings that were
    scored (for :math:`k = 2` the symmetrisation
    :math:`(A + A^\top)/2` of the paper).

    * :math:`k = 2` (graphs, e.g. Delaunay edges; jets, decoded by
      connected components): all pairs of each graph, returned as an
      :class:`~torch_geometric_hyper.nn.AdjacencyPrediction` that
      :class:`~torch_geometric_hyper.nn.AdjacencyBCELoss` trains.
    * :math:`k \ge 3` (e.g. facets of a 3-D convex hull): all tuples, or
      with ``neighbours=K`` the local version Set2Graph used for convex
      hulls, tuples :math:`(i, j, l)` with :math:`j, l` among the
      :math:`K = 10` nearest neighbours of :math:`i`. Returned as a
      :class:`TuplePrediction` trained with :class:`TupleBCELoss` (the
      paper's loss) and decoded as the tuples with probability above 0.5.

    Equivariant to node permutations; deterministic (no random slots).

    Args:
        in_channels (int): node feature size :math:`F`.
        hidden_channels (int, optional): encoder width :math:`d`.
            (default: :obj:`128`)
        k (int, optional): tuple order. (default: :obj:`2`)
        num_layers (int, optional): encoder DeepSets layers.
            (default: :obj:`3`)
        tuple_channels (int, optional): width :math:`c` of the tuple MLP.
            (default: :obj:`256`)
        mlp_layers (int, optional): hidden layers of the tuple MLP after
            the broadcast layer. (default: :obj:`1`)
        variant (str, optional): ``'s2g+'`` (default) or ``'s2g'``.
        neighbours (int, optional): :math:`K` of the local version
            (:math:`k \ge 3`); ``None`` scores all tuples.
        attention (bool, optional): attention in the encoder.
            (default: :obj:`False`)
        attention_channels (int, optional): query/key size :math:`a`
            (default :math:`d / 4`).
        max_bytes (int, optional): limit of the memory check (default half
            the physical memory).

    Shapes:
        - **input:** node features :math:`(N, F)`, batch vector :math:`(N)`
        - **output:** :class:`~torch_geometric_hyper.nn.AdjacencyPrediction`
          (:math:`k = 2`) or :class:`TuplePrediction` with :math:`(P)`
          logits

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.nn import Set2Graph
        >>> x, batch = torch.randn(10, 3), torch.tensor([0] * 6 + [1] * 4)
        >>> Set2Graph(3, 32, k=2)(x, batch).logit.shape  # 15 + 6 pairs
        torch.Size([21])
        >>> Set2Graph(3, 32, k=3)(x, batch).logit.shape  # 20 + 4 triples
        torch.Size([24])
        >>> Set2Graph(10, 32, k=10)(torch.randn(13, 10))
        Traceback (most recent call last):
        ...
        ValueError: Set2Graph's k-tuple tensor needs ...
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128,
                 k: int = 2, num_layers: int = 3, tuple_channels: int = 256,
                 mlp_layers: int = 1, variant: str = 's2g+',
                 neighbours: Optional[int] = None, attention: bool = False,
                 attention_channels: Optional[int] = None,
                 max_bytes: Optional[int] = None):
        super().__init__()
        self.in_channels = positive_int('in_channels', in_channels)
        self.hidden_channels = d = positive_int('hidden_channels',
                                                hidden_channels)
        self.k = positive_int('k', k)
        if self.k < 2:
            raise ValueError(f"'k' must be at least 2 (pairs), got {k}")
        self.num_layers = positive_int('num_layers', num_layers)
        self.tuple_channels = c = positive_int('tuple_channels',
                                               tuple_channels)
        if int(mlp_layers) < 0:
            raise ValueError(f"'mlp_layers' must be >= 0, got {mlp_layers}")
        if variant not in ('s2g', 's2g+'):
            raise ValueError(f"'variant' must be 's2g' or 's2g+', got "
                             f"{variant!r}")
        self.variant = variant
        if neighbours is not None:
            neighbours = positive_int('neighbours', neighbours)
            if neighbours < self.k - 1:
                raise ValueError(f"'neighbours' ({neighbours}) must be at "
                                 f"least k - 1 = {self.k - 1}")
        self.neighbours = neighbours
        self.attention = bool(attention)
        a = attention_channels or max(1, d // 4)
        self.max_bytes = max_bytes
        layers, width = [], self.in_channels
        for _ in range(self.num_layers):
            layers.append(_AttentionDeepSetLayer(width, d, a) if attention
                          else DeepSetLayer(width, d))
            width = d
        self.encoder = ModuleList(layers)
        self.lin_members = ModuleList([Linear(d, c, bias=(r == 0))
                                       for r in range(self.k)])
        self.lin_mean = Linear(d, c, bias=False) if variant == 's2g+' \
            else None
        self.mlp = ModuleList([Linear(c, c) for _ in range(int(mlp_layers))])
        self.lin_out = Linear(c, 1)
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if module is not self and hasattr(module, 'reset_parameters'):
                module.reset_parameters()

    @property
    def tuple_width(self) -> int:
        """Floats stored per tuple in one forward pass (all tuple layers)."""
        return self.tuple_channels * (1 + len(self.mlp)) + 1

    def memory_bytes(self, num_nodes: int, batch_size: int = 1) -> int:
        r"""Bytes of the tuple activations for ``batch_size`` sets of
        ``num_nodes`` nodes (see :func:`tuple_tensor_bytes`); raises the
        :class:`ValueError` of :func:`check_tuple_memory` past
        ``max_bytes``."""
        return check_tuple_memory(num_nodes, self.k, self.tuple_width,
                                  batch_size, self.neighbours,
                                  self.max_bytes)

    def encode(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        h = x
        for i, layer in enumerate(self.encoder):
            if i > 0:
                h = F.relu(h)
            h = layer(h, batch, num_graphs)
        return h

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None, **kwargs):
        r"""
        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            batch (torch.Tensor, optional): :math:`(N)` sorted graph of each
                node (default: one graph).
            num_graphs (int, optional): number of graphs :math:`B`.
            **kwargs: refiner-style options (``num_iterations``,
                ``generator``, ``slots``) must be ``None``; the model is
                one-shot and deterministic.

        Raises:
            ValueError: when the tuple tensor would exceed ``max_bytes``.
        """
        for key, value in kwargs.items():
            if key not in ('num_iterations', 'generator', 'slots'):
                raise TypeError(f"unexpected argument {key!r}")
            if value is not None and key != 'generator':
                raise ValueError(f"Set2Graph is one-shot and has no slots: "
                                 f"{key!r} must be None")
        x, batch, B = check_set_input(x, batch, num_graphs, self.in_channels,
                                      dtype=next(self.parameters()).dtype)
        counts = count_values(batch, B)
        self.memory_bytes(int(counts.max()), B)
        occ = tuple_occurrences(x, batch, B, self.k, self.neighbours)
        h = self.encode(x, batch, B)
        z = self.lin_members[0](h)[occ[:, 0]]
        for r in range(1, self.k):
            z = z + self.lin_members[r](h)[occ[:, r]]
        if self.lin_mean is not None:
            mean = scatter(h, batch, dim=0, dim_size=B, reduce='mean')
            z = z + self.lin_mean(mean)[batch[occ[:, 0]]]
        for lin in self.mlp:
            z = lin(F.relu(z))
        z = self.lin_out(F.relu(z)).view(-1)
        key = torch.sort(occ, dim=1).values
        if key.size(0) == 0:
            tuples = key.t()
            logit = z
        else:
            uniq, inverse = _unique_rows(key, x.size(0))
            logit = scatter(z, inverse, dim=0, dim_size=uniq.size(0),
                            reduce='mean')
            tuples = uniq.t()
        if self.k == 2:
            return AdjacencyPrediction(logit, tuples, batch, B)
        return TuplePrediction(logit, tuples, batch, B)

    def __repr__(self) -> str:
        local = f', neighbours={self.neighbours}' if self.neighbours else ''
        att = ', attention=True' if self.attention else ''
        return (f"{self.__class__.__name__}({self.in_channels}, "
                f"{self.hidden_channels}, k={self.k}, variant="
                f"'{self.variant}'{local}{att})")

