r"""Training from Python: :func:`fit` and the per-batch step it calls.

.. code-block:: python

    from torch_geometric_hyper.train import TrainConfig, fit
    config = TrainConfig(out='runs/hull', max_steps=500)
    result = fit(model, loss_fn, train_ds, val_ds, config=config,
                 evaluate=hyperedge_evaluator(edge_size=3))
    result.best_metric, result.steps, result.best_path

**Exact resume.** ``OUT/last.pt`` holds the model, the optimizer, every
random state (torch CPU and CUDA, NumPy, Python's ``random`` and the
trainer's skip sampler), the epoch's sample order and the index of the next
batch, and is written atomically at every validation, every
``save_every`` batches and on SIGINT/SIGTERM (after the current batch).
Slot noise is drawn from a generator seeded by the step, so
``resume=True`` continues exactly where the uninterrupted run would be.
Checkpoints hold only tensors and plain values and are read with
``weights_only=True``.

**Data parallel.** Under ``torchrun --nproc_per_node W`` each global batch
is split over the ranks by :func:`~torch_geometric_hyper.train.shard_batch`;
every rank draws the same skip schedule and slot noise, the local loss is
scaled by its share of the global batch (:func:`shard_loss`) so the
averaged gradient is the single-process gradient, and the gradients are
averaged before clipping and the update (:class:`GlobalStep`). Every rank
makes the same number of steps (a rank without a set in the last batch
trains on a copy with weight 0), a non-finite loss on any rank is seen by
all, validation draws each set's slot noise from its index
(:func:`eval_slots`), metrics are reduced over the ranks (pooled ones as
:class:`Ratio`), and only rank 0 writes files and prints.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import torch
from torch_geometric.data import Batch

from torch_geometric_hyper.train.config import TrainConfig
from torch_geometric_hyper.train.context import Run, compile_loss
from torch_geometric_hyper.train.distributed import shard_batch
from torch_geometric_hyper.train.scaling import GlobalStep
from torch_geometric_hyper.train.skips import NonFiniteLossError
from torch_geometric_hyper.train.slots import eval_slots
from torch_geometric_hyper.train.step import (
    is_recurrent,
    make_trainer,
    set_sizes,
    training_step,
)
from torch_geometric_hyper.train.state import rng_states, set_rng_states
from torch_geometric_hyper.utils.checkpoint import load_checkpoint, \
    save_atomic
from torch_geometric_hyper.utils.progress import Progress

#: Options a resumed run must share with the run it continues.
RESUME_MUST_MATCH = ('method', 'T', 'B', 'S', 'batch_size', 'lr',
                     'grad_clip', 'seed', 'dtype')


@dataclass
class FitResult:
    r"""What :func:`fit` returns (the same on every process).

    Attributes:
        best_metric (float): the best validation score (``'f1'`` of the
            evaluation, or minus its ``'loss'`` when it has no F1).
        best_step (int): the batch of the best validation.
        best_val (dict): the metrics of the best validation.
        steps (int): mini-batches trained in all (resumed runs included).
        epochs (int): whole epochs trained.
        stopped (str): why training stopped (``'max_steps'``, ``'time'``,
            ``'patience'``, ``None``: the epochs ran out).
        train_seconds (float): wall time spent training.
        cpu_seconds (float): process CPU time spent training.
        history (list of dict): every validation's metrics with its
            ``step``, ``train_seconds`` and ``cpu_seconds``.
        best_path, last_path, log_path (str): ``OUT/best.pt``,
            ``OUT/last.pt`` and ``OUT/log.jsonl`` (one line per batch).
        num_skipped (int): batches skipped for a non-finite loss.
    """
    best_metric: float
    best_step: Optional[int]
    best_val: Optional[dict]
    steps: int
    epochs: int
    stopped: Optional[str]
    train_seconds: float
    cpu_seconds: float
    history: List[dict] = field(default_factory=list)
    best_path: str = ''
    last_path: str = ''
    log_path: str = ''
    num_skipped: int = 0

    def __getitem__(self, key):  # the loop state's keys, as before
        return self.state()[key]

    def state(self) -> dict:
        """The result under the loop state's key names."""
        return {'step': self.steps, 'epoch': self.epochs,
                'best_f1': self.best_metric, 'best_step': self.best_step,
                'best_val': self.best_val, 'stopped': self.stopped,
                'train_seconds': self.train_seconds,
                'cpu_seconds': self.cpu_seconds, 'history': self.history}


def loss_evaluator(loss_fn: Callable, seed: int = 0) -> Callable:
    r"""The evaluation :func:`fit` uses without one: the mean of
    ``loss_fn`` over the sets (``{'loss': ...}``; the best checkpoint is
    then the one with the lowest loss)."""
    def evaluate(model, batches):
        total, sets = 0.0, 0
        for batch in batches:
            pred = model(batch.x, batch.batch, batch.num_graphs,
                         **eval_slots(model, batch, seed))
            total += float(loss_fn(pred, batch)) * batch.num_graphs
            sets += batch.num_graphs
        return {'loss': total / max(sets, 1)}
    return evaluate


def score(metrics: dict) -> float:
    """The model-selection score of a validation (higher is better): its
    ``'score'`` where the evaluation gives one, else its ``'f1'``, else
    minus its ``'loss'``."""
    if 'score' in metrics:
        return float(metrics['score'])
    if 'f1' in metrics:
        return float(metrics['f1'])
    if 'loss' in metrics:
        return -float(metrics['loss'])
    raise ValueError(f"an evaluation must return 'score' or 'f1' (higher "
                     f"is better) or "
                     f"'loss' (lower is better) for model selection, got "
                     f"keys {sorted(metrics)}")


def fit(model: torch.nn.Module, loss_fn: Callable, train_dataset,
        val_dataset=None, config: Optional[TrainConfig] = None,
        evaluate: Optional[Callable] = None, *, trainer=None,
        context: Optional[Run] = None, format_val: Optional[Callable] = None,
        extra: Optional[dict] = None, test_size: int = 0) -> FitResult:
    r"""Trains ``model`` on ``train_dataset`` with the options of
    ``config``; keeps ``OUT/best.pt`` (best validation), ``OUT/last.pt``
    (the exact resume point) and ``OUT/log.jsonl`` (the loss of every
    batch) under ``config.out``.

    Recurrent models (the refiners) are trained with ``config.method``
    (backprop with skips by default, :math:`T, B, S` from the config), the
    others with a plain step (:func:`make_trainer`). Models with hyperedge
    slots get slot noise that depends only on the seed, the batch index and
    the set's place in the global batch, so resuming and data parallel
    (``torchrun``) give the same training as one uninterrupted process.

    Args:
        model (torch.nn.Module): any model of the package (or one that
            takes ``(x, batch, num_graphs)``); moved to the config's device
            and dtype.
        loss_fn (callable): ``loss_fn(prediction, batch) -> scalar``, a
            mean over the sets of the batch (or over the terms its
            ``reduction_weight`` counts).
        train_dataset: a dataset of
            :class:`~torch_geometric_hyper.data.HypergraphData`.
        val_dataset (optional): validated every ``config.val_every``
            batches (default: once per epoch); without it the final weights
            are the best.
        config (TrainConfig, optional): the options (default:
            ``TrainConfig()``).
        evaluate (callable, optional): ``evaluate(model, batches) -> dict``
            of metrics (per-set means, or :class:`Ratio` for pooled ones)
            with ``'f1'`` (or ``'loss'``) for model selection, e.g.
            :func:`hyperedge_evaluator`; default: the mean validation loss
            (:func:`loss_evaluator`).
        trainer (optional): the per-batch trainer (default:
            :func:`make_trainer`).
        context (Run, optional): the process, when the caller made it
            before building its data (default: made from ``config``).
        format_val (callable, optional): ``format_val(step, metrics,
            improved) -> str``, the validation log line.
        extra (dict, optional): plain values stored in the checkpoints.
        test_size (int, optional): sets of a test report that follows
            (time reserved for it under ``config.max_total_minutes``).

    Returns:
        FitResult: the best metric and step, the steps trained, the paths.
    """
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"'config' must be a TrainConfig, got "
                        f"{type(config).__name__}")
    if len(train_dataset) == 0:
        raise ValueError('the training dataset is empty')
    run = context if context is not None else Run(config)
    run.dist.check_same_options(config.to_dict(), 'training options')
    model = run.prepare(model)
    if run.compiles:
        compile_loss(loss_fn)
    if trainer is None:
        trainer = make_trainer(config, is_recurrent(model))
    if evaluate is None:
        evaluate = loss_evaluator(loss_fn, config.seed)
    loop = _FitLoop(run, config, model, trainer, loss_fn, train_dataset,
                    val_dataset, evaluate, format_val, extra, test_size)
    return loop.execute()


def changed_options(stored: dict, now: dict) -> List[str]:
    """The options of :data:`RESUME_MUST_MATCH` that differ between a
    checkpoint's config ``stored`` and ``now``, as ``'name old -> new'``
    (options other than these, e.g. ``epochs`` or ``max_steps``, may change
    when a run is resumed)."""
    return [f'{k} {stored[k]!r} -> {now[k]!r}' for k in RESUME_MUST_MATCH
            if k in stored and stored[k] != now[k]]


class _FitLoop:
    """The state and steps of one :func:`fit` call."""

    def __init__(self, run, config, model, trainer, loss_fn, train_set,
                 val_set, evaluate, format_val, extra, test_size):
        if val_set is not None and len(val_set) < run.world_size:
            raise ValueError(f'{len(val_set)} validation sets cannot be '
                             f'shared by {run.world_size} processes')
        self.run, self.config, self.model = run, config, model
        self.trainer, self.loss_fn, self.evaluate = trainer, loss_fn, evaluate
        self.train_set, self.val_set = train_set, val_set
        self.format_val, self.extra = format_val, dict(extra or {})
        self.test_size = test_size
        out = config.out
        self.last_path = osp.join(out, 'last.pt')
        self.best_path = osp.join(out, 'best.pt')
        self.log_path = osp.join(out, 'log.jsonl')
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.step_opt = GlobalStep(self.optimizer, model, run.dist,
                                   config.grad_clip)
        self.sizes = set_sizes(train_set)
        self.per_epoch = math.ceil(len(train_set) / config.batch_size)
        self.val_every = config.val_every or self.per_epoch
        self.state = {'epoch': 0, 'batch': 0, 'step': 0, 'best_f1': -math.inf,
                      'bad': 0, 'best_val': None, 'best_step': None,
                      'train_seconds': 0.0, 'cpu_seconds': 0.0,
                      'stopped': None, 'history': []}
        self.order = None
        self.val_seconds = 0.0
        self.interrupted = False
        inner = getattr(model, '_orig_mod', model)  # under torch.compile
        self.model_config = inner.config() if hasattr(inner, 'config') \
            else None

    # -- checkpoints -------------------------------------------------------
    def checkpoint(self, path: str) -> None:
        if self.run.is_main:
            # model_config: what nn.load_model and the predict command need
            save_atomic({'model': self.model.state_dict(),
                         'optimizer': self.optimizer.state_dict(),
                         'state': dict(self.state), 'order': self.order,
                         'rng': rng_states(self.trainer),
                         'config': self.config.to_dict(),
                         'world_size': self.run.world_size,
                         'num_train_sets': len(self.train_set),
                         'model_config': self.model_config, **self.extra},
                        path)

    def resume(self) -> None:
        run, state = self.run, self.state
        if not osp.exists(self.last_path):
            raise FileNotFoundError(
                f'resume=True (--resume): no checkpoint at {self.last_path}; '
                f'train without resume first, or point out (--out) at the '
                f'run to continue')
        ckpt = load_checkpoint(self.last_path, map_location=run.device)
        self.check_resumable(ckpt.get('config') or {},
                             ckpt.get('num_train_sets'))
        self.model.load_state_dict(ckpt['model'])
        self.optimizer.load_state_dict(ckpt['optimizer'])
        state.update(ckpt['state'])
        state['stopped'] = None
        self.order = ckpt['order']
        set_rng_states(ckpt['rng'], self.trainer)
        if run.is_main and osp.exists(self.log_path):  # drop later steps
            with open(self.log_path) as f:
                keep = [line for line in f
                        if json.loads(line)['step'] <= state['step']]
            with open(self.log_path + '.tmp', 'w') as f:
                f.writelines(keep)
            os.replace(self.log_path + '.tmp', self.log_path)
        run.print(f"resumed from {self.last_path} at epoch {state['epoch']}, "
                  f"batch {state['batch']} of {self.per_epoch}, step "
                  f"{state['step']}, best val "
                  f"{'F1' if 'f1' in (state['best_val'] or {}) else 'score'} "
                  f"{state['best_f1']:.4f}")

    def check_resumable(self, stored: dict,
                        num_train_sets: Optional[int] = None) -> None:
        """Refuses to continue a run whose training options or training
        set size changed."""
        changed = changed_options(stored, self.config.to_dict())
        if num_train_sets is not None and \
                num_train_sets != len(self.train_set):
            changed.append(f'training sets {num_train_sets} -> '
                           f'{len(self.train_set)}')
        if changed:
            raise ValueError(
                f'resume=True (--resume): {self.last_path} was trained with '
                f'other options ({", ".join(changed)}); resume with the '
                f'same ones, or start a new run in another out directory')

    # -- validation --------------------------------------------------------
    def validate(self) -> Optional[dict]:
        state, run = self.state, self.run
        if self.val_set is None:
            self.checkpoint(self.last_path)
            return None
        t0 = time.perf_counter()
        res = run.evaluate(self.evaluate, self.model, self.val_set)
        self.val_seconds = time.perf_counter() - t0
        state['history'].append(
            {'step': state['step'], 'train_seconds': state['train_seconds'],
             'cpu_seconds': state['cpu_seconds'],
             **{k: float(v) for k, v in res.items()
                if isinstance(v, (int, float))}})
        value = score(res)
        improved = value > state['best_f1']
        if improved:
            state.update(best_f1=value, bad=0, best_val=res,
                         best_step=state['step'])
            self.checkpoint(self.best_path)
        else:
            state['bad'] += 1
        self.checkpoint(self.last_path)
        if run.is_main:
            line = self.format_val(state['step'], res, improved) \
                if self.format_val else (
                    f"step {state['step']:6d}  val " + '  '.join(
                        f'{k} {v:.4f}' for k, v in res.items())
                    + ('  *best*' if improved else ''))
            self.bar.write(line)
        return res

    # -- one batch ---------------------------------------------------------
    def train_batch(self) -> float:
        run, state, config = self.run, self.state, self.config
        G = config.batch_size
        b = state['batch']
        index = self.order[b * G:(b + 1) * G].tolist()
        shards = shard_batch(index, [self.sizes[i] for i in index],
                             run.world_size)
        local = shards[run.dist.rank]
        weight = len(local)
        if not local:  # a copy with weight 0 keeps the ranks in step
            local = [index[0]]
        pos = {i: p for p, i in enumerate(index)}
        batch = run.to_device(Batch.from_data_list(
            [self.train_set[i] for i in local]))
        try:
            stats = training_step(
                self.model, self.trainer, self.step_opt, self.loss_fn, batch,
                step=state['step'], seed=config.seed, global_sets=len(index),
                local_pos=[pos[i] for i in local], local_weight=weight,
                context=run)
        except NonFiniteLossError as err:
            raise SystemExit(
                f"stopped at step {state['step'] + 1} (epoch "
                f"{state['epoch']}, batch {state['batch'] + 1} of "
                f"{self.per_epoch}): {err}. The last good checkpoint is "
                f"{self.last_path} (written atomically): --resume "
                f"continues from it; --skip-nonfinite skips such "
                f"batches") from None
        loss, stop = run.dist.all_reduce_sum([stats['loss'],
                                              float(self.interrupted)])
        self.interrupted = bool(stop)
        return loss / run.world_size

    def after_batch(self, loss: float, t0: float, c0: float) -> None:
        state, config = self.state, self.config
        state['batch'] += 1
        state['step'] += 1
        state['train_seconds'] += time.perf_counter() - t0
        state['cpu_seconds'] += time.process_time() - c0
        if self.log is not None:
            self.log.write(json.dumps({'step': state['step'],
                                       'epoch': state['epoch'],
                                       'loss': loss}) + '\n')
            self.log.flush()
        self.bar.update(1)
        self.bar.set_postfix(loss=f'{loss:.4f}')
        if state['batch'] == self.per_epoch:
            state['epoch'] += 1
            state['batch'] = 0
            self.order = None
        if state['step'] % self.val_every == 0:
            self.validate()
            self.validated_at = state['step']
            if config.patience and state['bad'] >= config.patience:
                state['stopped'] = 'patience'
        elif config.save_every and state['step'] % config.save_every == 0:
            self.checkpoint(self.last_path)
        self.check_budgets(t0)

    def check_budgets(self, t0: float) -> None:
        state, config = self.state, self.config
        val_sets = len(self.val_set) if self.val_set is not None else 1
        reserve = self.val_seconds * (1 + self.test_size / val_sets) \
            + (time.perf_counter() - t0) + 5.0
        minutes = (lambda m: m * 60 if m else math.inf)
        if self.interrupted:
            state['stopped'] = 'interrupted'
        elif config.max_steps and state['step'] >= config.max_steps:
            state['stopped'] = 'max_steps'
        elif state['train_seconds'] >= minutes(config.max_minutes) or \
                state['cpu_seconds'] >= minutes(config.max_cpu_minutes) or \
                time.perf_counter() - self.run.start + reserve >= \
                minutes(config.max_total_minutes):
            state['stopped'] = 'time'

    # -- the run -----------------------------------------------------------
    def epochs(self) -> None:
        state, config = self.state, self.config
        while state['epoch'] < config.epochs and state['stopped'] is None:
            if self.order is None:
                gen = torch.Generator().manual_seed(config.seed +
                                                    state['epoch'])
                self.order = torch.randperm(len(self.train_set),
                                            generator=gen)
            self.bar.reset(total=self.per_epoch)
            self.bar.update(state['batch'])
            self.bar.set_description(f"epoch {state['epoch']}")
            while state['batch'] < self.per_epoch:
                t0, c0 = time.perf_counter(), time.process_time()
                loss = self.train_batch()
                self.after_batch(loss, t0, c0)
                if state['stopped'] is not None or self.order is None:
                    break

    def finish(self) -> None:
        run, state = self.run, self.state
        self.bar.close()
        if state['stopped'] == 'interrupted':
            self.checkpoint(self.last_path)
            run.print(f"interrupted at step {state['step']}: state saved to "
                      f"{self.last_path} (use --resume)")
            raise SystemExit(130)
        if state['stopped'] == 'patience':
            run.print(f'early stopping: no validation gain in '
                      f'{self.config.patience} validations')
        if getattr(self.trainer, 'num_skipped', 0):
            run.print(f'skipped {self.trainer.num_skipped} batches with a '
                      f'non-finite loss')
        if self.validated_at != state['step'] or state['best_val'] is None:
            self.validate()
        if self.val_set is None:  # no selection: the final weights
            state['best_step'] = state['step']
            self.checkpoint(self.best_path)

    def execute(self) -> FitResult:
        run = self.run
        if self.config.resume:
            self.resume()
        elif run.is_main and osp.exists(self.log_path):
            os.remove(self.log_path)
        handlers = _catch_signals(self)
        self.log = open(self.log_path, 'a') if run.is_main else None
        self.validated_at = -1
        # a bar on a terminal, a line every 30 s in a log, nothing with
        # progress=False
        self.bar = Progress(self.per_epoch, enabled=self.config.progress
                            and run.is_main)
        try:
            self.epochs()
            self.finish()
        finally:
            if self.log is not None:
                self.log.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return self.result()

    def result(self) -> FitResult:
        s = self.state
        best = s['best_f1'] if s['best_val'] is not None else float('nan')
        return FitResult(
            best_metric=best, best_step=s['best_step'],
            best_val=s['best_val'], steps=s['step'], epochs=s['epoch'],
            stopped=s['stopped'], train_seconds=s['train_seconds'],
            cpu_seconds=s['cpu_seconds'], history=list(s['history']),
            best_path=self.best_path, last_path=self.last_path,
            log_path=self.log_path,
            num_skipped=int(getattr(self.trainer, 'num_skipped', 0)))


def _catch_signals(loop: _FitLoop) -> dict:
    """SIGINT/SIGTERM set ``loop.interrupted`` (the run saves and stops
    after the current batch); returns the previous handlers."""
    def on_signal(signum, frame):
        loop.interrupted = True

    handlers = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, on_signal)
    except ValueError:  # not the main thread
        handlers = {}
    return handlers


def load_best(run: Run, model: torch.nn.Module,
              path: Optional[str] = None) -> dict:
    """Loads ``OUT/best.pt`` (or ``path``) into ``model`` on every process;
    returns the checkpoint."""
    run.dist.barrier()
    ckpt = load_checkpoint(path or osp.join(run.config.out, 'best.pt'),
                           map_location=run.device)
    model.load_state_dict(ckpt['model'])
    return ckpt
