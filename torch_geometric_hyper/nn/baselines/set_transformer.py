r"""Set Transformer (Lee et al., ICML 2019) adapted to set-to-hypergraph
prediction."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm, Linear, Module, ModuleList

from torch_geometric_hyper.nn.baselines.heads import SlotBaseline, dense_sets
from torch_geometric_hyper.nn.checks import positive_int
from torch_geometric_hyper.nn.prediction import HypergraphPrediction


class MAB(Module):
    r"""Multihead attention block of `"Set Transformer"
    <https://arxiv.org/abs/1810.00825>`_ (Lee et al., ICML 2019).

    .. math::
        H &= \mathrm{LN}\big(X + \mathrm{Multihead}(X, Y, Y)\big)

        \mathrm{MAB}(X, Y) &= \mathrm{LN}\big(H + \mathrm{rFF}(H)\big)

    with a row-wise feed-forward :math:`\mathrm{rFF}` (Linear, ReLU, Linear).
    Padded elements of :math:`Y` are excluded with a key mask, so a padded
    batch gives exactly the per-set result.

    Args:
        channels (int): feature size :math:`d` (divisible by ``num_heads``).
        num_heads (int, optional): attention heads. (default: :obj:`4`)
        ff_channels (int, optional): hidden size of the rFF (default
            :math:`d`).

    Shapes:
        - **input:** queries :math:`(B, L_q, d)`, keys :math:`(B, L_k, d)`,
          key mask :math:`(B, L_k)` (``True`` = real element) or ``None``
        - **output:** :math:`(B, L_q, d)`
    """

    def __init__(self, channels: int, num_heads: int = 4,
                 ff_channels: Optional[int] = None):
        super().__init__()
        channels = positive_int('channels', channels)
        num_heads = positive_int('num_heads', num_heads)
        if channels % num_heads:
            raise ValueError(f"'channels' ({channels}) must be divisible by "
                             f"'num_heads' ({num_heads})")
        ff = positive_int('ff_channels', ff_channels or channels)
        self.channels, self.num_heads, self.ff_channels = channels, \
            num_heads, ff
        self.lin_q = Linear(channels, channels)
        self.lin_k = Linear(channels, channels)
        self.lin_v = Linear(channels, channels)
        self.lin_o = Linear(channels, channels)
        self.norm1 = LayerNorm(channels)
        self.ff1 = Linear(channels, ff)
        self.ff2 = Linear(ff, channels)
        self.norm2 = LayerNorm(channels)
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.children():
            module.reset_parameters()

    def forward(self, x: Tensor, y: Tensor,
                key_mask: Optional[Tensor] = None) -> Tensor:
        B, Lq, d = x.shape
        Lk, H = y.size(1), self.num_heads
        q = self.lin_q(x).view(B, Lq, H, d // H).transpose(1, 2)
        k = self.lin_k(y).view(B, Lk, H, d // H).transpose(1, 2)
        v = self.lin_v(y).view(B, Lk, H, d // H).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = self.norm1(x + self.lin_o(o.transpose(1, 2).reshape(B, Lq, d)))
        return self.norm2(h + self.ff2(F.relu(self.ff1(h))))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_heads={self.num_heads})')


class SAB(MAB):
    r"""Set attention block :math:`\mathrm{SAB}(X) = \mathrm{MAB}(X, X)`
    (Lee et al., 2019): self-attention within each set. Arguments as
    :class:`MAB`.

    Shapes:
        - **input:** :math:`(B, L, d)`, mask :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, d)`
    """

    def forward(self, x: Tensor, key_mask: Optional[Tensor] = None
                ) -> Tensor:
        return super().forward(x, x, key_mask)


class PMA(Module):
    r"""Pooling by multihead attention (Lee et al., 2019):
    :math:`\mathrm{PMA}(S, Z) = \mathrm{MAB}(S, \mathrm{rFF}(Z))` with
    :math:`m` seed vectors :math:`S`. The seeds are an input here (drawn per
    set like the refiner's slots) rather than learned vectors, so the
    output is equivariant to permutations of the seeds.

    Args:
        channels (int): :math:`d`.
        num_heads (int, optional): attention heads. (default: :obj:`4`)
        ff_channels (int, optional): hidden size of the MAB's rFF.

    Shapes:
        - **input:** seeds :math:`(B, m, d)`, set :math:`(B, L, d)`, mask
          :math:`(B, L)` or ``None``
        - **output:** :math:`(B, m, d)`
    """

    def __init__(self, channels: int, num_heads: int = 4,
                 ff_channels: Optional[int] = None):
        super().__init__()
        self.lin = Linear(channels, channels)
        self.mab = MAB(channels, num_heads, ff_channels)
        self.reset_parameters()

    def reset_parameters(self):
        self.lin.reset_parameters()
        self.mab.reset_parameters()

    def forward(self, seeds: Tensor, z: Tensor,
                key_mask: Optional[Tensor] = None) -> Tensor:
        return self.mab(seeds, F.relu(self.lin(z)), key_mask)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.mab.channels}, '
                f'num_heads={self.mab.num_heads})')


class SetTransformer(SlotBaseline):
    r"""The Set Transformer of `"Set Transformer: A Framework for
    Attention-based Permutation-Invariant Neural Networks"
    <https://arxiv.org/abs/1810.00825>`_ (Lee et al., ICML 2019), adapted to
    set-to-hypergraph prediction as a one-shot baseline for
    :class:`~torch_geometric_hyper.nn.HypergraphRefiner`.

    .. math::
        V &= \mathrm{SAB}^{L_e}(X W_x + b_x)

        E &= \mathrm{SAB}^{L_d}\big(\mathrm{PMA}(S, V)\big),\qquad
        S_j = \mu + \exp(\log\sigma) \odot \epsilon_j

        I_{ji} &= \sigma\big(w_2^\top\mathrm{ReLU}(W_n v_i + W_e e_j + b)
        + b_2\big), \qquad g_j = \sigma(w_g^\top e_j + b_g)

    The encoder (:class:`SAB` over the nodes), the pooling
    (:class:`PMA` with :math:`m` seeds drawn like the refiner's slots) and
    the decoder (:class:`SAB` over the slots) are the Set Transformer's; the
    incidence and existence heads are the refiner's
    (:class:`HyperedgeHead`), so the output is a
    :class:`~torch_geometric_hyper.nn.HypergraphPrediction` on all
    ``(node, slot)`` pairs of each graph that
    :class:`~torch_geometric_hyper.nn.MatchedIncidenceLoss` trains directly.

    Sets of different sizes share a batch: attention runs on a padded
    :math:`(B, n_{max}, d)` tensor with a key mask, so each graph's result
    equals the result for that graph alone. The model is equivariant to node
    permutations and to permutations of the initial slots.

    Args:
        in_channels (int): node feature size :math:`F`.
        hidden_channels (int): latent size :math:`d`.
        max_edges (int): slots per graph :math:`m`.
        num_heads (int, optional): attention heads. (default: :obj:`4`)
        num_encoder_layers (int, optional): SABs over the nodes
            :math:`L_e`. (default: :obj:`1`)
        num_decoder_layers (int, optional): SABs over the slots
            :math:`L_d`. (default: :obj:`1`)
        ff_channels (int, optional): hidden size of each block's rFF
            (default :math:`d`).
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
        >>> from torch_geometric_hyper.nn import SetTransformer
        >>> model = SetTransformer(3, 32, max_edges=8)
        >>> x, batch = torch.randn(10, 3), torch.tensor([0] * 6 + [1] * 4)
        >>> pred = model(x, batch, num_graphs=2)
        >>> pred.incidence.shape, pred.existence.shape
        (torch.Size([80]), torch.Size([16]))
    """

    def __init__(self, in_channels: int, hidden_channels: int, max_edges: int,
                 num_heads: int = 4, num_encoder_layers: int = 1,
                 num_decoder_layers: int = 1,
                 ff_channels: Optional[int] = None,
                 chunk_elements: Optional[int] = None):
        super().__init__(in_channels, hidden_channels, max_edges)
        d = self.hidden_channels
        positive_int('num_encoder_layers', num_encoder_layers)
        if int(num_decoder_layers) < 0:
            raise ValueError(f"'num_decoder_layers' must be >= 0, got "
                             f"{num_decoder_layers!r}")
        self.encoder = ModuleList([SAB(d, num_heads, ff_channels)
                                   for _ in range(int(num_encoder_layers))])
        self.pma = PMA(d, num_heads, ff_channels)
        self.decoder = ModuleList([SAB(d, num_heads, ff_channels)
                                   for _ in range(int(num_decoder_layers))])
        self._finish_init(chunk_elements)

    def reset_parameters(self):
        self.lin_in.reset_parameters()
        self.slot_prior.reset_parameters()
        for module in [*self.encoder, self.pma, *self.decoder, self.head]:
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
            slots (torch.Tensor, optional): :math:`(B m, d)` PMA seeds, to
                reproduce a run (default: drawn).
            generator (torch.Generator, optional): generator of the seeds.
            num_iterations (int, optional): not used (the model is one-shot);
                accepted so refiner-style callers work, must be ``None``.
        """
        if num_iterations is not None:
            raise ValueError("SetTransformer is one-shot: 'num_iterations' "
                             "must be None")
        x, batch, B, seeds = self._prologue(x, batch, num_graphs, slots,
                                            generator)
        m, d = self.max_edges, self.hidden_channels
        h, mask = dense_sets(self.lin_in(x), batch, B)
        for sab in self.encoder:
            h = sab(h, mask)
        edge = self.pma(seeds.view(B, m, d), h, mask)
        for sab in self.decoder:
            edge = sab(edge)
        return self._predict(h[mask], edge.reshape(B * m, d), batch, B)

    def _repr_extra(self) -> str:
        return f', encoder={len(self.encoder)}, decoder={len(self.decoder)}'


