r"""Slot Attention (Locatello et al., NeurIPS 2020) adapted to
set-to-hypergraph prediction."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GRUCell, LayerNorm, Linear

from torch_geometric_hyper.nn.baselines.heads import SlotBaseline, dense_sets
from torch_geometric_hyper.nn.checks import positive_int
from torch_geometric_hyper.nn.deepsets import DeepSet
from torch_geometric_hyper.nn.prediction import HypergraphPrediction


class SlotAttention(SlotBaseline):
    r"""Slot Attention model of `"Object-Centric Learning with Slot
    Attention" <https://arxiv.org/abs/2006.15055>`_ (Locatello et al.,
    NeurIPS 2020), adapted to set-to-hypergraph prediction as a baseline for
    :class:`~torch_geometric_hyper.nn.HypergraphRefiner`.

    A DeepSets encoder :math:`V = \mathrm{DeepSet}(X W_x + b_x)` feeds
    :math:`m` slots initialised like the refiner's
    (:math:`e_j = \mu + \exp(\log\sigma)\odot\epsilon_j`), refined for
    ``num_iterations`` rounds of

    .. math::
        A_{ij} &= \operatorname{softmax}_j\Big(\tfrac{1}{\sqrt d}\,
            k(\mathrm{LN}\,v_i)^\top q(\mathrm{LN}\,e_j)\Big)
            \quad\text{(softmax over the slots)}

        u_j &= \sum_i \frac{A_{ij}}{\sum_{i'} A_{i'j} + \varepsilon}\,
            v(\mathrm{LN}\,v_i) \quad\text{(weighted mean)}

        e_j &\leftarrow \mathrm{GRU}(u_j, e_j), \qquad
        e_j \leftarrow e_j + \mathrm{MLP}(\mathrm{LN}\,e_j)

    followed by the refiner's incidence and existence heads
    (:class:`HyperedgeHead`) on the encoder's node latents and the final
    slots. The output is a
    :class:`~torch_geometric_hyper.nn.HypergraphPrediction` on all
    ``(node, slot)`` pairs of each graph.

    Attention runs on padded :math:`(B, n_{max}, m)` scores with the padded
    nodes masked out, so a graph in a mixed-size batch gets exactly its
    result alone. Equivariant to node permutations and to permutations of
    the initial slots.

    Args:
        in_channels (int): node feature size :math:`F`.
        hidden_channels (int): latent size :math:`d`.
        max_edges (int): slots per graph :math:`m`.
        num_iterations (int, optional): slot-attention rounds.
            (default: :obj:`3`)
        mlp_channels (int, optional): hidden size of the residual MLP
            (default :math:`d`).
        epsilon (float, optional): :math:`\varepsilon` of the weighted mean.
            (default: :obj:`1e-8`)
        chunk_elements (int, optional): working-set size of the incidence
            kernel; ``None`` (default):
            :func:`~torch_geometric_hyper.nn.kernels.default_chunk_elements`.

    Shapes:
        - **input:** node features :math:`(N, F)`, batch vector :math:`(N)`
        - **output:** :class:`~torch_geometric_hyper.nn.HypergraphPrediction`
          with incidence logits :math:`(N m)` and existence logits
          :math:`(B m)`

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.nn import SlotAttention
        >>> model = SlotAttention(3, 32, max_edges=8)
        >>> x, batch = torch.randn(10, 3), torch.tensor([0] * 6 + [1] * 4)
        >>> pred = model(x, batch, num_graphs=2)
        >>> pred.incidence.shape, pred.existence.shape
        (torch.Size([80]), torch.Size([16]))
    """

    def __init__(self, in_channels: int, hidden_channels: int, max_edges: int,
                 num_iterations: int = 3, mlp_channels: Optional[int] = None,
                 epsilon: float = 1e-8,
                 chunk_elements: Optional[int] = None):
        super().__init__(in_channels, hidden_channels, max_edges)
        d = self.hidden_channels
        self.num_iterations = positive_int('num_iterations', num_iterations)
        mlp = positive_int('mlp_channels', mlp_channels or d)
        self.epsilon = float(epsilon)
        self.encoder = DeepSet(d, d)
        self.norm_input = LayerNorm(d)
        self.norm_slot = LayerNorm(d)
        self.lin_q = Linear(d, d, bias=False)
        self.lin_k = Linear(d, d, bias=False)
        self.lin_v = Linear(d, d, bias=False)
        self.gru = GRUCell(d, d)
        self.norm_mlp = LayerNorm(d)
        self.mlp1 = Linear(d, mlp)
        self.mlp2 = Linear(mlp, d)
        self._finish_init(chunk_elements)

    def reset_parameters(self):
        for module in self.children():  # the slot prior first
            module.reset_parameters()

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None, *,
                slots: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None,
                num_iterations: Optional[int] = None
                ) -> HypergraphPrediction:
        r"""
        Args:
            x (torch.Tensor): :math:`(N, F)` node features.
            batch (torch.Tensor, optional): :math:`(N)` sorted graph of each
                node (default: one graph).
            num_graphs (int, optional): number of graphs :math:`B`.
            slots (torch.Tensor, optional): :math:`(B m, d)` initial slots
                (default: drawn).
            generator (torch.Generator, optional): generator of the slots.
            num_iterations (int, optional): slot-attention rounds (default
                ``self.num_iterations``).
        """
        x, batch, B, edge = self._prologue(x, batch, num_graphs, slots,
                                           generator)
        T = self.num_iterations if num_iterations is None else \
            positive_int('num_iterations', num_iterations)
        m, d = self.max_edges, self.hidden_channels
        node = self.encoder(self.lin_in(x), batch, B)
        dense, mask = dense_sets(node, batch, B)
        h = self.norm_input(dense)
        k, v = self.lin_k(h), self.lin_v(h)  # [B, n, d]
        scale = d ** -0.5
        for _ in range(T):
            prev = edge
            q = self.lin_q(self.norm_slot(edge)).view(B, m, d)
            attn = torch.softmax(scale * k @ q.transpose(1, 2), dim=-1)
            attn = attn * mask.unsqueeze(-1).to(attn.dtype)  # [B, n, m]
            attn = attn / (attn.sum(dim=1, keepdim=True) + self.epsilon)
            update = (attn.transpose(1, 2) @ v).reshape(B * m, d)
            edge = self.gru(update, prev)
            edge = edge + self.mlp2(F.relu(self.mlp1(self.norm_mlp(edge))))
        return self._predict(node, edge, batch, B)

    def _repr_extra(self) -> str:
        return f', num_iterations={self.num_iterations}'

