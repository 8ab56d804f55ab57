r"""The learned distribution of the initial hyperedge slots."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch.nn import Module, Parameter

from torch_geometric_hyper.utils.validation import check_int

__all__ = ['SlotPrior']


class HoldsSlots:
    r"""Mixin of the models with hyperedge slots: ``max_edges`` is their
    :class:`SlotPrior`'s ``num_slots`` (setting it, e.g. to run a trained
    model with more slots on larger sets, sets both)."""

    @property
    def max_edges(self) -> int:
        """Slots per graph :math:`m`."""
        return self.slot_prior.num_slots

    @max_edges.setter
    def max_edges(self, value) -> None:
        self.slot_prior.num_slots = check_int('max_edges', value)


class SlotPrior(Module):
    r"""The learned Gaussian that draws the initial slot latents of the
    refiner of `"Pruning Edges and Gradients to Learn Hypergraphs from Larger
    Sets" <https://arxiv.org/abs/2106.13919>`_ and of the slot baselines:

    .. math::
        \mathbf{e}^{(0)}_j = \boldsymbol{\mu} + \exp(\log\boldsymbol{\sigma})
        \odot \boldsymbol{\epsilon}_j, \qquad
        \boldsymbol{\epsilon}_j \sim \mathcal{N}(\mathbf{0}, \mathbf{I}),

    for the :math:`m` slots :math:`j` of every graph, with learned
    :math:`\boldsymbol{\mu}, \log\boldsymbol{\sigma} \in \mathbb{R}^d`. The
    slots are i.i.d., so a model that is equivariant to slot permutations
    stays so.

    Drawing is split in two so that the noise can come from anywhere (a
    generator per set, the host, another process) and the slots stay
    differentiable in :math:`\boldsymbol{\mu}` and
    :math:`\log\boldsymbol{\sigma}`: :meth:`noise` draws
    :math:`\boldsymbol{\epsilon}`, :meth:`forward` maps it to slots, and
    :meth:`sample` does both.

    Every model with slots holds one as ``model.slot_prior``
    (:class:`~torch_geometric_hyper.nn.HypergraphRefiner`,
    :class:`~torch_geometric_hyper.nn.StackedHypergraphRefiner`,
    :class:`~torch_geometric_hyper.nn.SetTransformer`,
    :class:`~torch_geometric_hyper.nn.SlotAttention`) and accepts the slots
    it gives as ``slots=``; models without slots
    (:class:`~torch_geometric_hyper.nn.GraphRefiner`,
    :class:`~torch_geometric_hyper.nn.Set2Graph`) have no ``slot_prior``
    attribute (``getattr(model, 'slot_prior', None)`` is ``None``).

    Args:
        channels (int): latent size :math:`d`.
        num_slots (int): slots per graph :math:`m`.
        device (torch.device, optional): where to create the parameters,
            as in :class:`torch.nn.Linear` (``'meta'`` builds the prior
            without drawing its values, e.g. for a model that draws them
            later in :meth:`reset_parameters`).
        dtype (torch.dtype, optional): the parameters' dtype.

    Shapes:
        - **noise:** :math:`(B, m, d)`
        - **input:** noise :math:`(*, d)`
        - **output:** slots :math:`(L, d)`, the input's rows flattened
          graph-major, slot-minor (:math:`L = B m` for the noise of
          :math:`B` graphs)

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.nn import SlotPrior
        >>> prior = SlotPrior(16, num_slots=4)
        >>> prior.sample(2, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([8, 16])
    """

    def __init__(self, channels: int, num_slots: int, device=None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.channels = int(channels)
        self.num_slots = int(num_slots)
        factory = {'device': device, 'dtype': dtype}
        self.mu = Parameter(torch.empty(self.channels, **factory))
        self.log_sigma = Parameter(torch.empty(self.channels, **factory))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Draws :math:`\boldsymbol{\mu}` and then
        :math:`\log\boldsymbol{\sigma}` from :math:`U(-b, b)` with the
        Xavier bound :math:`b = \sqrt{6 / (1 + d)}`."""
        bound = math.sqrt(6.0 / (1 + self.channels))
        torch.nn.init.uniform_(self.mu, -bound, bound)
        torch.nn.init.uniform_(self.log_sigma, -bound, bound)

    def noise(self, num_graphs: int,
              generator: Optional[torch.Generator] = None,
              dtype: Optional[torch.dtype] = None,
              device=None) -> Tensor:
        r"""Standard normal noise :math:`\boldsymbol{\epsilon}` for the slots
        of ``num_graphs`` graphs.

        The noise is drawn on the generator's own device and then moved, so
        a CPU generator (e.g. ``torch.Generator().manual_seed(0)`` for a
        fixed evaluation) also drives a model on the GPU, with the same
        draws on every device.

        Args:
            num_graphs (int): :math:`B`.
            generator (torch.Generator, optional): where to draw from
                (default: torch's global generator of ``device``).
            dtype (torch.dtype, optional): the noise's dtype (default:
                :math:`\boldsymbol{\mu}`'s).
            device (torch.device or str, optional): where the noise goes
                (default: :math:`\boldsymbol{\mu}`'s device).

        Returns:
            torch.Tensor: :math:`(B, m, d)`.
        """
        dtype = self.mu.dtype if dtype is None else dtype
        device = self.mu.device if device is None else torch.device(device)
        shape = (int(num_graphs), self.num_slots, self.channels)
        if generator is None or generator.device == device:
            return torch.randn(shape, generator=generator, device=device,
                               dtype=dtype)
        return torch.randn(shape, generator=generator,
                           device=generator.device, dtype=dtype).to(device)

    def forward(self, noise: Tensor) -> Tensor:
        r"""The slots :math:`\boldsymbol{\mu} + \exp(\log\boldsymbol{\sigma})
        \odot \boldsymbol{\epsilon}` of the noise ``noise``, moved to
        :math:`\boldsymbol{\mu}`'s device first; the dtype is the promotion
        of the parameters' and the noise's (noise already cast to the
        parameters' dtype gives exactly their dtype).

        Args:
            noise (torch.Tensor): :math:`(*, d)` standard normal noise, e.g.
                from :meth:`noise`.

        Returns:
            torch.Tensor: :math:`(L, d)`, the rows of ``noise`` flattened.
        """
        noise = noise.to(self.mu.device).reshape(-1, self.channels)
        return self.mu + torch.exp(self.log_sigma) * noise

    def sample(self, num_graphs: int,
               generator: Optional[torch.Generator] = None) -> Tensor:
        r"""Slots for ``num_graphs`` graphs, ``self(self.noise(num_graphs,
        generator))``: :math:`(B m, d)` on the parameters' device and in
        their dtype."""
        return self(self.noise(num_graphs, generator))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_slots={self.num_slots})')


def _load_old_slot_keys(module: Module, state_dict: dict, prefix: str,
                        *args) -> None:
    # a load_state_dict pre-hook of the models with slots: state dicts
    # written before SlotPrior hold its parameters as ``slot_mu`` and
    # ``slot_log_sigma``; they load into ``slot_prior.mu`` / ``.log_sigma``
    for old, new in (('slot_mu', 'slot_prior.mu'),
                     ('slot_log_sigma', 'slot_prior.log_sigma')):
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)


def undrawn_slot_prior(channels: int, num_slots: int,
                       like: Tensor) -> SlotPrior:
    r"""A :class:`SlotPrior` with uninitialised parameters on ``like``'s
    device, in the default dtype: built without any random draw, for a
    model whose ``reset_parameters`` draws the prior in its own order (the
    order its seeded initialisation has always had)."""
    return SlotPrior(channels, num_slots, device='meta').to_empty(
        device=like.device)


def register_old_slot_keys(module: Module) -> None:
    r"""Lets ``module.load_state_dict`` read state dicts that hold its
    ``slot_prior``'s parameters under the names they had before
    :class:`SlotPrior`, ``slot_mu`` and ``slot_log_sigma``."""
    module.register_load_state_dict_pre_hook(_load_old_slot_keys)
