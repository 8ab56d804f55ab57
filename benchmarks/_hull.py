"""Convex-hull training and evaluation shared by the training benchmarks
(``backprop_skips.py``, ``recurrent_vs_stacked.py``,
``iterations_vs_set_size.py``).

Training methods (``--method``): ``bptt`` (all T steps), ``tbptt``
(truncated: T - B without gradient, then B), ``skips`` (backprop with
random skips, T, B, S), ``skips-fixed`` (the same with the even split of
:func:`~torch_geometric_hyper.train.fixed_skips` every mini-batch).
"""
from __future__ import annotations

import json
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.metrics import evaluate_hyperedges
from torch_geometric_hyper.nn import (
    HypergraphRefiner,
    MatchedIncidenceLoss,
    StackedHypergraphRefiner,
)
from torch_geometric_hyper.train import (
    BPTT,
    BackpropWithSkips,
    TrainConfig,
    TruncatedBPTT,
    fit,
    fixed_skips,
    skips_schedule,
    training_step,
)

METHODS = ('bptt', 'tbptt', 'skips', 'skips-fixed')


def hull(root: str, split: str, n, num_samples: int, seed: int = 0
         ) -> ConvexHull:
    """Spherical 3-D convex hulls of ``n`` points (int or ``(lo, hi)``)."""
    return ConvexHull(root, split, num_points=n, num_samples=num_samples,
                      seed=seed, log=False)


def make_model(kind: str, hidden: int, max_edges: int, T: int,
               checkpoint: bool = True) -> HypergraphRefiner:
    """``kind``: ``'recurrent'`` or ``'stacked'``."""
    Model = StackedHypergraphRefiner if kind == 'stacked' \
        else HypergraphRefiner
    return Model(3, hidden, max_edges, T, checkpoint=checkpoint)


def updates_per_batch(T: int, B: int, S: int) -> int:
    """``S``, capped so that ``B * S <= T`` (at T=4, B=4 only one update
    fits)."""
    return max(1, min(S, T // B))


class FixedSkips(BackpropWithSkips):
    """Backprop with skips on the even split of :func:`fixed_skips` every
    mini-batch (the ``skips-fixed`` ablation)."""

    def schedule(self):
        return skips_schedule(self.num_iterations, self.backprop_iterations,
                              self.num_updates,
                              skips=fixed_skips(self.num_iterations,
                                                self.backprop_iterations,
                                                self.num_updates))


def make_trainer(method: str, T: int, B: int, S: int, seed: int = 0):
    """The per-batch trainer of ``method`` (see the module docstring);
    ``S`` capped by :func:`updates_per_batch`."""
    S = updates_per_batch(T, B, S)
    if method == 'bptt':
        return BPTT(T)
    if method == 'tbptt':
        return TruncatedBPTT(T, B)
    if method == 'skips':
        return BackpropWithSkips(T, B, S, seed=seed)
    if method == 'skips-fixed':
        return FixedSkips(T, B, S)
    raise ValueError(f'unknown method {method!r}; one of {METHODS}')


def schedule_fn(method: str, T: int, B: int, S: int, seed: int = 0
                ) -> Callable[[], List]:
    """A function returning the ``(skip, backprop)`` schedule of the next
    mini-batch for ``method``: the schedules of :func:`make_trainer`."""
    return make_trainer(method, T, B, S, seed).schedule


def train(model, train_ds, method: str, T: int, B: int, S: int,
          batch_size: int, lr: float, seconds: Optional[float] = None,
          steps: Optional[int] = None, seed: int = 0,
          on_eval: Optional[Callable[[float, int], None]] = None,
          eval_every: Optional[float] = None) -> Dict[str, float]:
    """Trains ``model`` (on the CPU) for ``seconds`` of training time
    (evaluation excluded) or ``steps`` mini-batches, whichever comes
    first, with the trainer of ``method`` and the matched loss.

    ``on_eval(train_seconds, steps)`` runs every ``eval_every`` seconds of
    training time and at the end. Returns the training seconds, steps and
    last loss.
    """
    if seconds is None and steps is None:
        raise ValueError('give seconds or steps')
    trainer = make_trainer(method, T, B, S, seed)
    if on_eval is None:
        return _fit(model, train_ds, trainer, method, batch_size, lr,
                    seconds, steps, seed)
    return _train_timed(model, train_ds, trainer, batch_size, lr, seconds,
                        steps, seed, on_eval, eval_every)


def _fit(model, train_ds, trainer, method, batch_size, lr, seconds, steps,
         seed) -> Dict[str, float]:
    """:func:`train` without evaluation: one :func:`fit` call, no
    validation set (the final weights), files in a temporary directory."""
    T, B, S = trainer.num_iterations, trainer.backprop_iterations, \
        trainer.num_updates
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            method=method if method in ('bptt', 'tbptt') else 'skips',
            T=T, B=B, S=S, batch_size=batch_size, lr=lr, seed=seed,
            max_steps=steps or 0, epochs=10**9, patience=0,
            max_minutes=None if seconds is None else seconds / 60,
            out=out, device='cpu', progress=False)
        res = fit(model, MatchedIncidenceLoss(), train_ds, config=config,
                  trainer=trainer)
        with open(res.log_path) as f:
            lines = f.read().splitlines()
    loss = json.loads(lines[-1])['loss'] if lines else float('nan')
    return {'train_seconds': res.train_seconds, 'steps': res.steps,
            'loss': loss}


def _train_timed(model, train_ds, trainer, batch_size, lr, seconds, steps,
                 seed, on_eval, eval_every) -> Dict[str, float]:
    """:func:`train` with ``on_eval`` every ``eval_every`` training seconds.

    :func:`fit` validates every N batches; this schedule is in seconds of
    training time, evaluation excluded, so this thin loop keeps the clock
    and trains each batch with fit's own step (:func:`training_step`), in
    fit's sample order (a permutation seeded by ``seed + epoch``).
    """
    seconds = float('inf') if seconds is None else seconds
    steps = steps or 10**12
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = MatchedIncidenceLoss()
    spent, done, loss, next_eval = 0.0, 0, float('nan'), eval_every
    evaluated_at, epoch = -1, 0
    while spent < seconds and done < steps:
        gen = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(len(train_ds), generator=gen).tolist()
        for i in range(0, len(order), batch_size):
            batch = Batch.from_data_list(
                [train_ds[j] for j in order[i:i + batch_size]])
            t0 = time.perf_counter()
            loss = training_step(model, trainer, opt, loss_fn, batch,
                                 step=done, seed=seed)['loss']
            spent += time.perf_counter() - t0
            done += 1
            if next_eval is not None and spent >= next_eval:
                on_eval(spent, done)
                evaluated_at = done
                next_eval += eval_every
            if spent >= seconds or done >= steps:
                break
        epoch += 1
    if evaluated_at != done:
        on_eval(spent, done)
    return {'train_seconds': spent, 'steps': done, 'loss': loss}


@torch.no_grad()
def f1_at_iterations(model, ds, iterations: Sequence[int], seed: int = 0,
                     batch_size: int = 256,
                     max_edges: Optional[int] = None) -> Dict[int, float]:
    """Mean F1 (strict convention) on ``ds`` after each number of steps in
    ``iterations``, from one pass of ``max(iterations)`` steps.

    ``max_edges`` overrides the model's slot count (the slots are i.i.d.
    draws, so a model trained with ``m`` slots runs with more on larger
    sets).
    """
    wanted = sorted(set(int(t) for t in iterations))
    model.eval()
    old_m = model.max_edges
    # the model and its slot prior each hold m
    model.max_edges = max_edges or old_m
    gen = torch.Generator().manual_seed(seed)
    scores: Dict[int, List[torch.Tensor]] = {t: [] for t in wanted}
    try:
        for batch in DataLoader(ds, batch_size=batch_size):
            state = model.init_state(batch.x, batch.batch, batch.num_graphs,
                                     generator=gen)
            for t in range(1, wanted[-1] + 1):
                state = model.step(state)
                if t in scores:
                    res = evaluate_hyperedges(state.prediction(), batch,
                                              edge_size=3)
                    scores[t].append(res['f1'])
    finally:
        model.max_edges = old_m
        model.train()
    return {t: float(torch.cat(v).mean()) for t, v in scores.items()}


def most_facets(*datasets) -> int:
    """The largest number of facets in the given datasets (slot count)."""
    return max(int(ds.max_hyperedges) for ds in datasets)
