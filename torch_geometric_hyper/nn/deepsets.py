r"""Permutation-equivariant DeepSets layers over the sets of a batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm, Linear, Module, ReLU
from torch_geometric.utils import scatter


class DeepSetLayer(Module):
    r"""The permutation-equivariant linear layer of DeepSets (Zaheer et al.,
    *Deep Sets*, NeurIPS 2017), applied to every set of a batch at once.

    .. math::
        \mathbf{h}'_i = \mathbf{W}_1 \mathbf{h}_i + \mathbf{b}_1 +
        \mathbf{W}_2 \Big(\mathbf{h}_i - \frac{1}{|S(i)|}
        \sum_{k \in S(i)} \mathbf{h}_k\Big)

    where :math:`S(i)` is the set element :math:`i` belongs to. The mean is a
    scatter over ``index``, so sets of different sizes share a batch without
    padding and never see each other.

    Args:
        in_channels (int): size of each input element.
        out_channels (int): size of each output element.

    Shapes:
        - **input:** elements :math:`(L, F_{in})`, set index :math:`(L)`
        - **output:** :math:`(L, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = Linear(in_channels, out_channels)
        self.lin_centered = Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        self.lin.reset_parameters()
        self.lin_centered.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, num_sets: int) -> Tensor:
        """
        Args:
            h (torch.Tensor): element features.
            index (torch.Tensor): set id of each element.
            num_sets (int): number of sets (``dim_size`` of the mean).
        """
        mean = scatter(h, index, dim=0, dim_size=num_sets, reduce='mean')
        # W1 h + W2 (h - mean) = (W1 + W2) h - W2 mean: one product on the
        # elements and no centred copy of h to keep for the backward pass.
        weight = self.lin.weight + self.lin_centered.weight
        out = F.linear(h, weight, self.lin.bias)
        return out - self.lin_centered(mean).index_select(0, index)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')


class DeepSet(Module):
    r"""Two :class:`DeepSetLayer` s with a ReLU and a LayerNorm between them:
    ``layer(in → hidden) → ReLU → LayerNorm → layer(hidden → out)``.

    Args:
        in_channels (int): input size.
        hidden_channels (int): hidden size.
        out_channels (int, optional): output size (default ``hidden``).
    """

    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or hidden_channels
        self.layer1 = DeepSetLayer(in_channels, hidden_channels)
        self.act = ReLU()
        self.norm = LayerNorm(hidden_channels)
        self.layer2 = DeepSetLayer(hidden_channels, out_channels)

    def reset_parameters(self):
        self.layer1.reset_parameters()
        self.norm.reset_parameters()
        self.layer2.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, num_sets: int) -> Tensor:
        h = self.norm(self.act(self.layer1(h, index, num_sets)))
        return self.layer2(h, index, num_sets)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.layer1.in_channels}, '
                f'{self.layer1.out_channels}, {self.layer2.out_channels})')
