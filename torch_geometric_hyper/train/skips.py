r"""Backprop with skips, standard BPTT and truncated BPTT for recurrent
refiners.

A *schedule* is a list of ``(skip, backprop)`` pairs, one per optimizer
update on the same mini-batch: run ``skip`` steps without gradient, then
``backprop`` steps with gradient, supervise every one of those
``backprop`` predictions, update, detach the state and carry it on.

* Backprop with skips (Zhang et al., LoG 2022): ``S`` updates with
  ``backprop = B`` and random skips summing to :math:`T - B S`; peak memory
  :math:`O(B)`, constant in :math:`T`.
* Standard BPTT: ``[(0, T)]``; memory :math:`O(T)`.
* Truncated BPTT: ``[(T - B, B)]``; one update through the last ``B`` steps.

The refiner must offer ``init_state(x, batch, num_graphs)``, ``step(state)``
and states with ``detach()`` and ``prediction()``, as
:class:`~torch_geometric_hyper.nn.HypergraphRefiner` does.
"""
from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from torch_geometric_hyper.utils.validation import check_float, check_int

Schedule = List[Tuple[int, int]]


@lru_cache(maxsize=None)
def _partitions(total: int, parts: int, largest: int) -> Tuple[Tuple, ...]:
    """Partitions of ``total`` into at most ``parts`` parts, each <= largest,
    as non-increasing tuples of exactly ``parts`` entries (zeros padded), in
    the order :func:`_unrank` counts them (for tests at small sizes: their
    number grows exponentially)."""
    if parts == 0:
        return ((), ) if total == 0 else ()
    if total == 0:
        return ((0, ) * parts, )
    out = []
    for first in range(min(total, largest), 0, -1):
        for rest in _partitions(total - first, parts - 1, first):
            out.append((first, ) + rest)
    return tuple(out)


@lru_cache(maxsize=None)
def _count(total: int, parts: int, largest: int) -> int:
    """How many partitions :func:`_partitions` lists, without listing
    them."""
    if total == 0:
        return 1
    if parts == 0:
        return 0
    return sum(_count(total - first, parts - 1, first)
               for first in range(min(total, largest), 0, -1))


def _unrank(index: int, total: int, parts: int, largest: int) -> List[int]:
    """The ``index``-th partition of :func:`_partitions`, built part by
    part from the counts: ``_unrank(i, ...) == list(_partitions(...)[i])``
    at any size, in time polynomial in ``total`` and ``parts``."""
    out = []
    while total > 0:
        for first in range(min(total, largest), 0, -1):
            c = _count(total - first, parts - 1, first)
            if index < c:
                break
            index -= c
        out.append(first)
        total, parts, largest = total - first, parts - 1, first
    return out + [0] * (parts)


def sample_skips(num_iterations: int, backprop_iterations: int,
                 num_updates: int,
                 rng: Optional[random.Random] = None) -> List[int]:
    r"""Draws the skip counts of one mini-batch.

    ``num_updates`` non-negative integers summing to :math:`T - B S`, drawn
    uniformly over the integer partitions of that number into at most
    :math:`S` parts, then randomly permuted.

    Args:
        num_iterations (int): :math:`T`.
        backprop_iterations (int): :math:`B`.
        num_updates (int): :math:`S`.
        rng (random.Random, optional): source of randomness.
    """
    total = num_iterations - backprop_iterations * num_updates
    if total < 0 or backprop_iterations < 1 or num_updates < 1:
        raise ValueError(f"backprop with skips needs B >= 1, S >= 1 and "
                         f"B * S <= T; got T={num_iterations}, "
                         f"B={backprop_iterations}, S={num_updates}")
    rng = rng or random
    # one uniform index over the partitions, unranked without listing them
    # (the same draw as rng.choice over the list: both take one
    # randbelow(count))
    index = rng.randrange(_count(total, num_updates, total))
    parts = _unrank(index, total, num_updates, total)
    rng.shuffle(parts)
    return parts


def skips_schedule(num_iterations: int = 16, backprop_iterations: int = 4,
                   num_updates: int = 2, skips: Optional[Sequence[int]] = None,
                   rng: Optional[random.Random] = None) -> Schedule:
    """Schedule of backprop with skips (random skips unless given)."""
    if skips is None:
        skips = sample_skips(num_iterations, backprop_iterations, num_updates,
                             rng)
    return [(int(s), backprop_iterations) for s in skips]


def fixed_skips(num_iterations: int = 16, backprop_iterations: int = 4,
                num_updates: int = 2) -> List[int]:
    r"""The deterministic ("fixed") skip counts: :math:`T - B S` split as
    evenly as possible over the :math:`S` updates, larger counts first.

    For :math:`T = 16, B = 4, S = 2` this is ``[4, 4]``: every mini-batch
    back-propagates through steps 5-8 and 13-16 only. An ablation of the
    random skips of :func:`sample_skips`, which supervise every depth over
    training.

    Example:
        >>> fixed_skips(17, 4, 2)
        [5, 4]
    """
    total = num_iterations - backprop_iterations * num_updates
    if total < 0 or backprop_iterations < 1 or num_updates < 1:
        raise ValueError(f"backprop with skips needs B >= 1, S >= 1 and "
                         f"B * S <= T; got T={num_iterations}, "
                         f"B={backprop_iterations}, S={num_updates}")
    base, rest = divmod(total, num_updates)
    return [base + (i < rest) for i in range(num_updates)]


def bptt_schedule(num_iterations: int) -> Schedule:
    """Standard BPTT: one update through all ``T`` steps."""
    return [(0, num_iterations)]


def truncated_bptt_schedule(num_iterations: int,
                            backprop_iterations: int) -> Schedule:
    """Truncated BPTT: ``T - B`` steps without gradient, one update through
    the last ``B``."""
    if not 1 <= backprop_iterations <= num_iterations:
        raise ValueError(f"truncated BPTT needs 1 <= B <= T, got "
                         f"B={backprop_iterations}, T={num_iterations}")
    return [(num_iterations - backprop_iterations, backprop_iterations)]


class NonFiniteLossError(FloatingPointError):
    r"""A training loss was NaN or infinite. The optimizer step of that
    update was not taken, so the parameters are those of the last good
    update (and any checkpoint written before stays valid)."""


def check_finite_loss(value: float, update: int, skip: bool) -> bool:
    r"""``True`` if ``value`` is finite; else ``False`` when ``skip``, or a
    :class:`NonFiniteLossError` naming the update."""
    if math.isfinite(value):
        return True
    if skip:
        return False
    raise NonFiniteLossError(
        f"the training loss is {value} at update {update + 1} of this "
        f"mini-batch; no optimizer step was taken, the parameters are "
        f"unchanged. Lower the learning rate, clip gradients, check the "
        f"inputs for extreme values, or skip such batches "
        f"(skip_nonfinite=True)")


def _agreed(optimizer, value: float) -> float:
    r"""``value`` as every process sees it: under data parallelism (an
    optimizer wrapper with ``agree``, e.g. the training loop's) a loss that
    is not finite on one process makes every process skip or stop, so no
    process waits for the others' gradients."""
    agree = getattr(type(optimizer), 'agree', None)
    return agree(optimizer, value) if agree is not None else value


def mean_over_steps(loss_fn: Callable, predictions, data
                    ) -> Tuple[torch.Tensor, float]:
    r"""The mean of ``loss_fn`` over the ``predictions`` of one batch, and
    its value on the host.

    A loss with an ``over_steps(predictions, data)`` method (e.g.
    :meth:`~torch_geometric_hyper.nn.MatchedIncidenceLoss.over_steps`)
    computes both from one host synchronisation; any other loss is called
    once per prediction and its mean read back (one more).
    """
    over = getattr(loss_fn, 'over_steps', None)
    if over is not None:
        return over(predictions, data)
    loss = sum(loss_fn(p, data) for p in predictions) / len(predictions)
    return loss, float(loss.detach())


def train_on_batch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   loss_fn: Callable, data, schedule: Schedule,
                   max_grad_norm: Optional[float] = None,
                   init_kwargs: Optional[dict] = None,
                   skip_nonfinite: bool = False) -> Dict[str, float]:
    r"""Trains ``model`` on one mini-batch following ``schedule``.

    Args:
        model: a refiner (see the module docstring).
        optimizer: its optimizer.
        loss_fn (callable): ``loss_fn(prediction, data) -> scalar``.
        data: a batch with ``x``, ``batch`` and ``num_graphs``.
        schedule: list of ``(skip, backprop)`` pairs.
        max_grad_norm (float, optional): clip the gradient norm to this.
        init_kwargs (dict, optional): extra arguments of ``init_state``.
        skip_nonfinite (bool, optional): on a NaN or infinite loss, skip the
            rest of this mini-batch (no optimizer step) instead of raising
            :class:`NonFiniteLossError`. (default: :obj:`False`)

    Returns:
        dict: ``loss`` (mean over the updates taken; NaN if none),
        ``grad_steps`` (largest number of steps held in one autograd graph)
        and ``skipped`` (1.0 if the batch was cut short by a non-finite
        loss, else 0.0).
    """
    model.train()
    state = model.init_state(data.x, data.batch, data.num_graphs,
                             **(init_kwargs or {}))
    losses = []
    for skip, backprop in schedule:
        if backprop < 1:
            raise ValueError("every update needs at least one step with "
                             "gradient")
        with torch.no_grad():
            for _ in range(skip):
                state = model.step(state)
        state = state.detach()
        # the B steps with gradient in one call: compiled (Run.prepare on
        # CUDA), they are one graph, forward and backward
        state, predictions = model.run(state, backprop, return_all=True)
        # the update's one host synchronisation: its assignments and value
        loss, value = mean_over_steps(loss_fn, predictions, data)
        if not check_finite_loss(_agreed(optimizer, value), len(losses),
                                 skip_nonfinite):
            optimizer.zero_grad(set_to_none=True)
            return {'loss': (sum(losses) / len(losses) if losses
                             else float('nan')),
                    'grad_steps': max(b for _, b in schedule),
                    'skipped': 1.0}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        losses.append(value)
        state = state.detach()
    return {'loss': sum(losses) / len(losses),
            'grad_steps': max(b for _, b in schedule), 'skipped': 0.0}


class BackpropWithSkips:
    r"""Backprop with skips as a reusable training step.

    Per mini-batch: draw :math:`S` skip counts summing to :math:`T - BS`;
    for each, run that many steps without gradient, :math:`B` steps with
    gradient, average the loss of those :math:`B` predictions, back-propagate,
    update and carry the detached state on. Only :math:`B` steps are ever in
    the autograd graph, so peak memory does not grow with :math:`T`.

    Args:
        num_iterations (int): :math:`T` (paper: 16).
        backprop_iterations (int): :math:`B` (paper: 4).
        num_updates (int): :math:`S` (paper: 2).
        max_grad_norm (float, optional): gradient clipping.
        seed (int, optional): seed of the skip sampler.
        skip_nonfinite (bool, optional): skip a mini-batch whose loss is NaN
            or infinite (counted in :attr:`num_skipped`) instead of raising
            :class:`NonFiniteLossError`. (default: :obj:`False`)

    Example:
        >>> trainer = BackpropWithSkips(16, 4, 2)  # doctest: +SKIP
        >>> stats = trainer(model, optimizer, loss_fn, batch)  # doctest: +SKIP
    """

    def __init__(self, num_iterations: int = 16, backprop_iterations: int = 4,
                 num_updates: int = 2, max_grad_norm: Optional[float] = None,
                 seed: Optional[int] = None, skip_nonfinite: bool = False):
        num_iterations = check_int('num_iterations', num_iterations)
        backprop_iterations = check_int('backprop_iterations',
                                        backprop_iterations)
        num_updates = check_int('num_updates', num_updates)
        max_grad_norm = check_float('max_grad_norm', max_grad_norm,
                                    allow_none=True)
        sample_skips(num_iterations, backprop_iterations, num_updates)
        self.skip_nonfinite = skip_nonfinite
        #: Mini-batches skipped for a non-finite loss.
        self.num_skipped = 0
        self.num_iterations = num_iterations
        self.backprop_iterations = backprop_iterations
        self.num_updates = num_updates
        self.max_grad_norm = max_grad_norm
        self.rng = random.Random(seed)

    def schedule(self) -> Schedule:
        return skips_schedule(self.num_iterations, self.backprop_iterations,
                              self.num_updates, rng=self.rng)

    def __call__(self, model, optimizer, loss_fn, data, **kwargs):
        out = train_on_batch(model, optimizer, loss_fn, data,
                             self.schedule(), self.max_grad_norm,
                             skip_nonfinite=self.skip_nonfinite, **kwargs)
        self.num_skipped += int(out['skipped'])
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(T={self.num_iterations}, '
                f'B={self.backprop_iterations}, S={self.num_updates})')


class BPTT(BackpropWithSkips):
    r"""Standard back-propagation through all :math:`T` steps (one update,
    every step supervised). Memory grows linearly in :math:`T`."""

    def __init__(self, num_iterations: int = 16,
                 max_grad_norm: Optional[float] = None):
        super().__init__(num_iterations, num_iterations, 1, max_grad_norm)

    def schedule(self) -> Schedule:
        return bptt_schedule(self.num_iterations)


class TruncatedBPTT(BackpropWithSkips):
    r"""Truncated BPTT: :math:`T - B` steps without gradient, then one update
    through the last :math:`B` steps."""

    def __init__(self, num_iterations: int = 16, backprop_iterations: int = 4,
                 max_grad_norm: Optional[float] = None):
        super().__init__(num_iterations, backprop_iterations, 1,
                         max_grad_norm)

    def schedule(self) -> Schedule:
        return truncated_bptt_schedule(self.num_iterations,
                                       self.backprop_iterations)
