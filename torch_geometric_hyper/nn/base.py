r"""Pieces the refiner, its set-to-graph adaptation and the one-shot
baselines share: the input checks of a set model and the base of the
modules that score candidate pairs with the refiner's pair MLP."""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import Tensor
from torch.nn import Linear, Module, Parameter

from torch_geometric_hyper.nn.config import Configurable
from torch_geometric_hyper.nn.functional import linear_pair_mlp, pair_mlp


def positive_int(name: str, value) -> int:
    """``int(value)``, or a :class:`ValueError` naming ``name`` unless it is
    a positive integer."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"'{name}' must be a positive integer, got "
                         f"{value!r}")
    return int(value)


_VALIDATION = {'device_checks': False}


def set_input_validation(enabled: bool) -> None:
    r"""Also runs, on accelerator tensors, the input checks that need a
    host synchronisation (graph ids within ``num_graphs``, a sorted
    ``batch``, finite features). On CPU tensors they always run (they cost
    nothing there); on a GPU they are off by default so that a forward pass
    does not wait for the device. The checks on shapes, dtypes and sizes
    are always on."""
    _VALIDATION['device_checks'] = bool(enabled)


def _sync_checks_allowed(t: Tensor) -> bool:
    on_cpu = t.device.type == 'cpu' and not _VALIDATION.get('as_accelerator')
    return (on_cpu or _VALIDATION['device_checks']) and \
        not torch.compiler.is_compiling()


def check_set_input(x, batch, num_graphs, in_channels: int, *,
                    check_sorted: bool = True, check_finite: bool = False,
                    dtype: Optional[torch.dtype] = None):
    r"""Validates ``(x, batch, num_graphs)`` of a set model; returns them
    with defaults filled in (one graph when ``batch`` is ``None``).

    Always checked: ``x`` is a 2-D floating tensor with ``in_channels``
    columns and at least one row, ``batch`` a 1-D integer tensor with one
    entry per node, ``num_graphs`` a non-negative integer. Checked on CPU
    tensors (and on GPU after :func:`set_input_validation`): every graph id
    lies in ``[0, num_graphs)``, ``batch`` is sorted (``check_sorted``),
    the features are finite (``check_finite``).

    Args:
        check_sorted (bool, optional): refuse an unsorted ``batch``.
        check_finite (bool, optional): refuse NaN or infinite features.
        dtype (torch.dtype, optional): the model's floating dtype; floating
            ``x`` of another dtype is converted to it.
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"'x' must be a 2-D tensor [num_nodes, "
                         f"in_channels], got {getattr(x, 'shape', type(x))}")
    if x.size(1) != in_channels:
        raise ValueError(f"'x' has {x.size(1)} features per node but the "
                         f"model was built with in_channels={in_channels}")
    if x.size(0) == 0:
        raise ValueError("the input set is empty (x has 0 rows): a set needs "
                         "at least one node")
    if not x.is_floating_point():
        raise ValueError(f"'x' must be a floating-point tensor, got "
                         f"{x.dtype}; convert it with x.float()")
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    if check_finite and _sync_checks_allowed(x) and \
            not bool(torch.isfinite(x).all()):
        raise ValueError("'x' contains NaN or infinite values; clean or "
                         "impute the node features first")
    if num_graphs is not None:
        if isinstance(num_graphs, Tensor):
            num_graphs = int(num_graphs)
        if isinstance(num_graphs, bool) or int(num_graphs) != num_graphs \
                or num_graphs < 1:
            raise ValueError(f"'num_graphs' must be a positive integer, got "
                             f"{num_graphs!r}")
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        num_graphs = 1 if num_graphs is None else num_graphs
    else:
        if not isinstance(batch, Tensor) or \
                tuple(batch.shape) != (x.size(0), ):
            raise ValueError(f"'batch' must have shape [num_nodes] = "
                             f"[{x.size(0)}], got "
                             f"{list(getattr(batch, 'shape', []))}")
        if batch.is_floating_point() or batch.dtype == torch.bool:
            raise ValueError(f"'batch' must hold integer graph ids, got "
                             f"{batch.dtype}")
        batch = batch.long()
        if _sync_checks_allowed(batch):
            if check_sorted and batch.numel() > 1 and \
                    bool((batch[1:] < batch[:-1]).any()):
                raise ValueError("'batch' must be sorted (nodes of a graph "
                                 "contiguous), as PyG batches are")
            lo, hi = int(batch.min()), int(batch.max())
            if lo < 0:
                raise ValueError(f"'batch' holds the negative graph id {lo}")
            if num_graphs is not None and hi >= num_graphs:
                raise ValueError(f"'batch' holds graph id {hi} but "
                                 f"num_graphs={num_graphs}; pass num_graphs "
                                 f">= {hi + 1} (batch.num_graphs for a PyG "
                                 f"batch) or leave it None")
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1
    return x, batch, int(num_graphs)


#: Default budget of :func:`use_checkpointing` in ``'auto'`` mode: the
#: activations one refinement step may store (bytes).
CHECKPOINT_BUDGET = 256 * 2**20


def residual_add(h: Tensor, x: Tensor) -> Tensor:
    r"""``x + h`` for a fresh tensor ``h`` that nothing else holds (a
    layer's own output): in place on ``h`` when that gives the same result
    (same shape, and ``h``'s dtype already the sum's; under autocast a
    half-precision ``h`` and a float32 ``x`` take the promoting sum)."""
    if h.shape == x.shape and h.dtype == torch.promote_types(h.dtype,
                                                             x.dtype):
        return h.add_(x)
    return x + h


def step_activation_bytes(num_pairs: int, num_rows: int, hidden: int,
                          element_size: int = 4) -> int:
    r"""Estimated activations one refinement step stores for backward when
    it is not checkpointed: about :math:`2.5\,(N + M)\,d + 4\,\text{nnz}`
    elements for :math:`N + M` node and slot rows and :math:`\text{nnz}`
    candidate pairs (the pair MLP never stores its :math:`[\text{nnz}, d]`
    hidden layer). The constants were fitted to the measured peak-memory
    difference between the two modes (``benchmarks/train_throughput.py``,
    n = 30 and n in [20, 100]) and round up. Since the DeepSet inputs run
    through :func:`~torch_geometric_hyper.nn.norm_deepset_layer` the
    difference is smaller (batch 64, the B = 4 steps held: 24-34 MiB at
    n = 30 and 42-44 MiB at n = 50, i.e. 6-8.5 and 10.5-11 MiB per step,
    against this estimate's 8.4 and 16.1), so ``'auto'`` errs towards
    checkpointing; ``benchmarks/stored_activations.py`` counts the bytes a
    step saves."""
    return int((2.5 * num_rows * hidden + 4 * num_pairs) * element_size)


def use_checkpointing(mode, num_pairs: int, num_rows: int, hidden: int,
                      element_size: int = 4,
                      budget: int = CHECKPOINT_BUDGET) -> bool:
    r"""Whether a training step recomputes its activations in backward.

    ``mode`` ``True`` or ``False`` decides; ``'auto'`` checkpoints only when
    the step's stored activations (:func:`step_activation_bytes`) would
    exceed ``budget`` bytes: storing them is faster (no recomputation), so
    it is chosen whenever it fits.
    """
    if mode == 'auto':
        return step_activation_bytes(num_pairs, num_rows, hidden,
                                     element_size) > budget
    return bool(mode)


def check_checkpoint_mode(mode):
    """Refuses anything but ``True``, ``False`` and ``'auto'``."""
    if mode not in (True, False, 'auto'):
        raise ValueError(f"'checkpoint' must be True, False or 'auto', got "
                         f"{mode!r}")
    return mode


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
        state = self.run(state, num_steps)
        pred = state.prediction()
        return (pred, state) if return_state else pred


class PairScorer(Module):
    r"""Base of the modules that score candidate pairs with the refiner's
    pair MLP :math:`z = w_2^\top \mathrm{ReLU}(a + b + w_p\, p + b_1) + b_2`
    (:func:`~torch_geometric_hyper.nn.pair_mlp`):
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
        (:func:`~torch_geometric_hyper.nn.linear_pair_mlp`: the projections
        of ``node`` and ``edge`` are recomputed in backward, not stored)."""
        return linear_pair_mlp(node, edge, self.lin_inc_node,
                               self.lin_inc_edge, previous, previous_weight,
                               self.lin_inc_out.weight.view(-1),
                               self.lin_inc_out.bias, index,
                               self.chunk_elements)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.hidden_channels})'

