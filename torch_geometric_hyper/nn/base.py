r"""The base classes of the refiners and the pair-scoring layers:
:class:`RecurrentModel` (running steps from a state) and
:class:`PairScorer` (the refiner's pair MLP and its parameters)."""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import Tensor
from torch.nn import Linear, Module, Parameter

from torch_geometric_hyper.nn.config import Configurable
from torch_geometric_hyper.nn.kernels.mlp import linear_pair_mlp, pair_mlp

__all__ = ['RecurrentModel', 'PairScorer']


class RecurrentModel(Configurable, Module):
    r"""What the recurrent refiners share
    (:class:`~torch_geometric_hyper.nn.HypergraphRefiner`,
    :class:`~torch_geometric_hyper.nn.GraphRefiner`): running steps from a
    state. A subclass defines ``step(state) -> state`` and states with a
    ``prediction()``."""

    def run(self, state, num_steps: int, return_all: bool = False):
        """Runs ``num_steps`` steps from ``state``; with ``return_all`` also
        returns the prediction of every step."""
        preds = []
        for _ in range(num_steps):
            state = self.step(state)
            if return_all:
                preds.append(state.prediction())
        return (state, preds) if return_all else state

    def _run_and_predict(self, state, num_steps: int, return_state: bool):
        """The end of ``forward``: ``num_steps`` steps, then the last
        prediction (and the final state with ``return_state``)."""
        # step by step: a compiled ``run`` (train.compile_model) is for the
        # B steps of an update; T steps in one call would compile anew
        state = RecurrentModel.run(self, state, num_steps)
        pred = state.prediction()
        return (pred, state) if return_state else pred


class PairScorer(Module):
    r"""Base of the modules that score candidate pairs with the refiner's
    pair MLP :math:`z = w_2^\top \mathrm{ReLU}(a + b + w_p\, p + b_1) + b_2`
    (:func:`~torch_geometric_hyper.nn.kernels.pair_mlp`):
    :class:`~torch_geometric_hyper.nn.RefinementStep`,
    :class:`~torch_geometric_hyper.nn.GraphRefinementStep` and
    :class:`~torch_geometric_hyper.nn.HyperedgeHead`.

    It holds ``hidden_channels`` and ``chunk_elements``, registers the
    refiner's incidence and existence parameters
    (:meth:`_add_incidence_mlp`), resets every child module and draws the
    vectors named by :meth:`_uniform_parameters` from
    :math:`U(-1/\sqrt d, 1/\sqrt d)`.
    """

    def __init__(self, hidden_channels: int,
                 chunk_elements: Optional[int] = None):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.chunk_elements = chunk_elements

    def _add_incidence_mlp(self, previous: bool = True):
        r"""Registers :math:`W_n` (``lin_inc_node``, with the bias
        :math:`b_1`), :math:`W_e` (``lin_inc_edge``), :math:`w_I`
        (``inc_weight``, only with ``previous``), :math:`w_2, b_2`
        (``lin_inc_out``) and the existence gate (``lin_exist``)."""
        d = self.hidden_channels
        self.lin_inc_node = Linear(d, d)
        self.lin_inc_edge = Linear(d, d, bias=False)
        if previous:
            self.inc_weight = Parameter(torch.empty(d))
        self.lin_inc_out = Linear(d, 1)
        self.lin_exist = Linear(d, 1)

    def _uniform_parameters(self) -> Iterable[Parameter]:
        return ()

    def reset_parameters(self):
        for module in self.children():
            module.reset_parameters()
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for weight in self._uniform_parameters():
            torch.nn.init.uniform_(weight, -bound, bound)

    def _pair_logit(self, a: Tensor, b: Tensor, previous: Tensor,
                    previous_weight: Tensor, lin_out: Linear,
                    index) -> Tensor:
        """:func:`pair_mlp` with the output layer ``lin_out``."""
        return pair_mlp(a, b, previous, previous_weight,
                        lin_out.weight.view(-1), lin_out.bias, index,
                        self.chunk_elements)

    def _incidence_logit(self, node: Tensor, edge: Tensor, previous: Tensor,
                         previous_weight: Tensor, index) -> Tensor:
        """The incidence MLP on the ``(node, slot)`` pairs of ``index``
        (:func:`~torch_geometric_hyper.nn.kernels.linear_pair_mlp`: the
        projections of ``node`` and ``edge`` are recomputed in backward, not
        stored)."""
        return linear_pair_mlp(node, edge, self.lin_inc_node,
                               self.lin_inc_edge, previous, previous_weight,
                               self.lin_inc_out.weight.view(-1),
                               self.lin_inc_out.bias, index,
                               self.chunk_elements)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.hidden_channels})'

