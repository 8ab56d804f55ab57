r"""How a loss on one process's share of a batch is scaled, and how
its gradients are combined, so that data-parallel training equals training
on the whole batch.

Two small protocols of a loss are used here and by the trainers:

- ``loss_fn.reduction_weight(prediction, data)`` (:class:`WeightedLoss`):
  the number of terms the loss averages over (e.g. candidate pairs for
  :class:`~torch_geometric_hyper.nn.AdjacencyBCELoss`), or ``None`` for a
  sum; a loss without it is a mean over the sets.
- ``loss_fn.over_steps(predictions, data)`` (:class:`MultiStepLoss`): the
  mean loss over the refinement steps of one update and its value, with one
  host synchronisation (e.g.
  :meth:`~torch_geometric_hyper.nn.MatchedIncidenceLoss.over_steps`).
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol, runtime_checkable

import torch

from torch_geometric_hyper.train.distributed import DistributedContext


@runtime_checkable
class WeightedLoss(Protocol):
    """A loss that says how many terms it averages over."""

    def reduction_weight(self, prediction, data) -> Optional[float]:
        ...


@runtime_checkable
class MultiStepLoss(Protocol):
    """A loss that evaluates the predictions of several steps at once."""

    def over_steps(self, predictions, data):
        ...


def loss_weight(loss_fn: Callable, prediction, data) -> Optional[float]:
    r"""How many terms ``loss_fn`` averages over for this batch:
    ``loss_fn.reduction_weight(prediction, data)`` where the loss defines
    it (e.g. candidate pairs for
    :class:`~torch_geometric_hyper.nn.AdjacencyBCELoss`; ``None`` for a
    sum), else the number of sets (a mean over the sets)."""
    if not isinstance(loss_fn, WeightedLoss):
        return float(data.num_graphs)
    w = loss_fn.reduction_weight(prediction, data)
    return None if w is None else float(w)


class _ScaledLoss:
    """``loss_fn`` times a constant, keeping its ``over_steps`` (one host
    synchronisation for the several steps of an update)."""

    def __init__(self, loss_fn: Callable, scale: float):
        self.loss_fn, self.scale = loss_fn, scale
        if isinstance(loss_fn, MultiStepLoss):
            self.over_steps = self._over_steps

    def __call__(self, pred, data):
        return self.loss_fn(pred, data) * self.scale

    def _over_steps(self, predictions, data):
        loss, value = self.loss_fn.over_steps(predictions, data)
        return loss * self.scale, value * self.scale


def shard_loss(loss_fn: Callable, dist: DistributedContext, local_sets: int,
               global_sets: int) -> Callable:
    r"""``loss_fn`` on this process's shard, scaled so that the gradient
    averaged over the :math:`W` processes is the gradient of the loss of
    the whole global batch.

    A mean over terms (sets by default, see :func:`loss_weight`) splits as
    :math:`\mathcal L = \sum_r \frac{w_r}{w} \mathcal L_r`, so process
    :math:`r` back-propagates :math:`W \frac{w_r}{w} \mathcal L_r`. With
    set weights :math:`w_r / w` is known from the split; for other weights
    (pairs) one all-reduce of :math:`w_r` per loss call gives :math:`w`.
    A sum scales by :math:`W`. A process without a set in this batch
    (``local_sets == 0``, it trains on a copy) gets weight 0.
    """
    W = dist.world_size
    if W == 1:
        return loss_fn
    if not isinstance(loss_fn, WeightedLoss):
        return _ScaledLoss(loss_fn, W * local_sets / global_sets)

    def scaled(pred, data):
        loss = loss_fn(pred, data)
        w = loss_weight(loss_fn, pred, data)
        if w is None:  # a sum over the terms
            return loss * (W if local_sets else 0.0)
        w = w if local_sets else 0.0
        total = dist.all_reduce_sum([w])[0]
        return loss * (W * w / total)
    return scaled


class GlobalStep:
    r"""Optimizer wrapper that the trainers step: averages the gradients
    over the ranks and clips the global norm before each update.

    It also implements :meth:`agree`, which the trainers call (when the
    optimizer they are given has it) so that every process skips or stops
    at the same update when a loss is not finite on one of them.

    Args:
        optimizer (torch.optim.Optimizer): the optimizer.
        model (torch.nn.Module): the model whose gradients are averaged.
        dist (DistributedContext): the ranks.
        max_norm (float, optional): clip the global gradient norm to this.
    """

    def __init__(self, optimizer, model, dist: DistributedContext,
                 max_norm: Optional[float]):
        self.optimizer, self.model, self.dist = optimizer, model, dist
        self.max_norm = max_norm

    def zero_grad(self, set_to_none: bool = True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def agree(self, value: float) -> float:
        """The sum of a loss ``value`` over the processes: NaN or infinite
        when it is so on any of them, so all of them skip (or stop at) the
        same update (the trainers' finiteness check)."""
        if not self.dist.enabled:
            return value
        return self.dist.all_reduce_sum([value])[0]

    def step(self):
        self.dist.average_gradients(self.model)
        if self.max_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                           self.max_norm)
        self.optimizer.step()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)
