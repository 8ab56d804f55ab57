r"""Slot noise for training and evaluation, drawn so that it does not
depend on how the sets are split over processes or batches.

A model with hyperedge slots exposes them as ``model.slot_prior`` (a
:class:`~torch_geometric_hyper.nn.SlotPrior`) and accepts the initial slots
as ``slots=`` (``forward``) or ``init_kwargs={'slots': ...}`` (the recurrent
trainers); models without slots have no ``slot_prior`` (or ``None``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch


def slot_prior(model: torch.nn.Module):
    """The model's :class:`~torch_geometric_hyper.nn.SlotPrior`, or
    ``None`` for a model without slots (under :func:`torch.compile` the
    compiled module's)."""
    inner = getattr(model, '_orig_mod', model)
    return getattr(inner, 'slot_prior', None)


def train_slots(model: torch.nn.Module, global_sets: int,
                local_pos: Sequence[int], seed: int, step: int,
                like: torch.Tensor) -> Optional[torch.Tensor]:
    r"""Initial slots of this process's sets of a training batch.

    The noise of the whole global batch (``global_sets`` sets) is drawn in
    float64 on the host from a generator seeded by ``(seed, step)``, and
    the rows ``local_pos`` are kept: every process and every run draws the
    same noise for the same set, whatever the split. ``None`` for a model
    without slots.

    Shapes:
        - **output:** :math:`(|\text{local}| \cdot m, d)` in ``like``'s
          device and dtype.
    """
    prior = slot_prior(model)
    if prior is None:
        return None
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    noise = prior.noise(global_sets, generator=gen, dtype=torch.float64,
                        device='cpu')
    noise = noise[torch.as_tensor(local_pos)].reshape(-1, prior.channels)
    noise = noise.to(device=like.device, dtype=like.dtype)
    return prior(noise)


def eval_slots(model, batch, seed: int = 0,
               generator: Optional[torch.Generator] = None) -> dict:
    r"""Initial slots for evaluating ``batch``, each set's noise drawn from
    a generator seeded by ``(seed, set_index)``: a set gets the same slots
    whatever batch, process or order it is evaluated in, so validation
    metrics do not depend on the number of processes.

    Returns ``{'slots': ...}`` for models with a slot prior when ``batch``
    carries ``set_index`` (:meth:`Run.batches`); otherwise
    ``{'generator': g}`` with ``g`` = ``generator`` or a new one seeded by
    ``seed`` (the noise then depends on the batch composition), or ``{}``
    for models without slots.
    """
    prior = slot_prior(model)
    if prior is None:
        return {}
    index = getattr(batch, 'set_index', None)
    if index is None:
        return {'generator': generator if generator is not None else
                torch.Generator(device=batch.x.device).manual_seed(seed)}
    noise = torch.empty(len(index), prior.num_slots, prior.channels,
                        dtype=torch.float64)
    for row, i in enumerate(index.tolist()):
        state = np.random.SeedSequence([seed, 7, i]).generate_state(2)
        gen = torch.Generator().manual_seed(
            int(state[0]) << 32 | int(state[1]))
        noise[row] = prior.noise(1, generator=gen, dtype=torch.float64,
                                 device='cpu')[0]
    noise = noise.reshape(-1, prior.channels).to(
        device=prior.mu.device, dtype=batch.x.dtype)
    return {'slots': prior(noise)}
