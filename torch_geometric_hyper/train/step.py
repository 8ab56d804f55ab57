r"""One training step: the trainer of a config, and the per-batch step
that :func:`~torch_geometric_hyper.train.fit` makes (slot noise, the loss
scaled to this process's share, autocast)."""
from __future__ import annotations

import contextlib
from typing import Dict, List, Optional, Sequence

import torch

from torch_geometric_hyper.nn.base import RecurrentModel
from torch_geometric_hyper.train.config import TrainConfig
from torch_geometric_hyper.train.context import Run
from torch_geometric_hyper.train.distributed import DistributedContext
from torch_geometric_hyper.train.one_shot import OneShot
from torch_geometric_hyper.train.scaling import shard_loss
from torch_geometric_hyper.train.skips import (
    BPTT,
    BackpropWithSkips,
    TruncatedBPTT,
)
from torch_geometric_hyper.train.slots import train_slots


def make_trainer(config: TrainConfig, recurrent: bool):
    r"""The per-batch training step of ``config.method`` for recurrent
    models (``T``, ``B``, ``S``), or :class:`OneShot` for the others.
    Gradient clipping is done by :class:`GlobalStep` (on the gradient
    averaged over the processes), so the trainers get none.
    ``config.skip_nonfinite`` makes them skip (and count) batches whose
    loss is NaN or infinite."""
    skip = config.skip_nonfinite
    if not recurrent:
        return OneShot(skip_nonfinite=skip)
    if config.method == 'skips':
        trainer = BackpropWithSkips(config.T, config.B, config.S,
                                    seed=config.seed, skip_nonfinite=skip)
    elif config.method == 'bptt':
        trainer = BPTT(config.T)
    else:
        trainer = TruncatedBPTT(config.T, config.B)
    trainer.skip_nonfinite = skip
    return trainer


def is_recurrent(model: torch.nn.Module) -> bool:
    """Whether ``model`` is trained step by step (a refiner)."""
    return isinstance(getattr(model, '_orig_mod', model), RecurrentModel)


def set_sizes(dataset) -> List[int]:
    """Nodes of every set of ``dataset`` (fast for in-memory datasets)."""
    slices = getattr(dataset, 'slices', None)
    if slices is not None and 'x' in slices:
        ptr = slices['x']
        sizes = (ptr[1:] - ptr[:-1]).tolist()
        return [sizes[i] for i in dataset.indices()]
    return [dataset[i].num_nodes for i in range(len(dataset))]


def training_step(model: torch.nn.Module, trainer, optimizer, loss_fn,
                  batch, *, step: int, seed: int = 0,
                  global_sets: Optional[int] = None,
                  local_pos: Optional[Sequence[int]] = None,
                  local_weight: Optional[int] = None,
                  context: Optional[Run] = None,
                  dist: Optional[DistributedContext] = None
                  ) -> Dict[str, float]:
    r"""Trains on one mini-batch: the step :func:`fit` makes per batch.

    Draws the batch's initial slots (:func:`train_slots`, seeded by
    ``(seed, step)``), scales the loss by this process's share of the
    global batch (:func:`shard_loss`) and runs ``trainer`` under the
    context's autocast.

    Args:
        model (torch.nn.Module): the model (on the batch's device).
        trainer: a per-batch trainer (:func:`make_trainer`).
        optimizer: the optimizer, or a :class:`GlobalStep` around it.
        loss_fn (callable): ``loss_fn(prediction, batch) -> scalar``.
        batch (Batch): this process's sets, on the device.
        step (int): the index of this batch in the run (seeds the noise).
        seed (int, optional): the run's seed.
        global_sets (int, optional): sets in the global batch (default:
            ``batch.num_graphs``).
        local_pos (sequence of int, optional): positions of this process's
            sets in the global batch (default: all of them, in order).
        local_weight (int, optional): sets this process contributes (0
            for a copy that keeps the ranks in step; default: all).
        context (Run, optional): the process (ranks, autocast).
        dist (DistributedContext, optional): the ranks, when there is no
            ``context`` (e.g. under Lightning, which handles precision).

    Returns:
        dict: the trainer's statistics (``loss``, ...).
    """
    G = batch.num_graphs if global_sets is None else global_sets
    pos = list(range(batch.num_graphs)) if local_pos is None else local_pos
    weight = len(pos) if local_weight is None else local_weight
    dist = context.dist if context is not None else dist
    loss = loss_fn if dist is None else shard_loss(loss_fn, dist, weight, G)
    slots = train_slots(model, G, pos, seed, step, batch.x)
    kwargs = {}
    if slots is not None:
        kwargs = {'slots': slots} if isinstance(trainer, OneShot) else \
            {'init_kwargs': {'slots': slots}}
    autocast = context.autocast() if context is not None else \
        contextlib.nullcontext()
    with autocast:
        return trainer(model, optimizer, loss, batch, **kwargs)
