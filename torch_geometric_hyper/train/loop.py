r"""The training loop every example uses: one flag vocabulary, exact
resume, data-parallel training over ``torchrun`` processes, device and
precision switches.

An example supplies the data, the model, the loss and a task metric; this
module does the rest::

    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    add_arguments(parser, models=['refiner'], quick={'train_samples': 1000})
    args = parse_args(parser, argv, quick={'train_samples': 1000})
    run = setup(args)                      # threads, seeds, device, ranks
    ...                                    # datasets, model, loss
    model = run.prepare(model)
    result = fit(run, args, model, make_trainer(args, recurrent=True),
                 loss_fn, train_set, val_set, evaluate)

**Flags** (:func:`add_arguments`; every example shows them with their
defaults in ``--help``): ``--T/--B/--S`` (refinement steps, steps
back-propagated per update, updates per batch), ``--method``,
``--batch-size`` (global: split over the processes), ``--lr``,
``--grad-clip``, ``--epochs``, ``--max-steps``, ``--patience``,
``--val-every`` (batches; 0: once per epoch), ``--save-every`` (batches),
``--max-minutes`` / ``--max-cpu-minutes`` / ``--max-total-minutes``,
``--activation-checkpointing``, ``--out``, ``--resume``, ``--seed``,
``--threads``, ``--device``, ``--dtype``, ``--bf16``, ``--compile``,
``--no-progress`` and ``--quick`` (a smaller data set and a wall-clock
budget for the whole run, model and training settings unchanged).

**Exact resume.** ``OUT/last.pt`` holds the model, the optimizer, every
random state (torch CPU and CUDA, NumPy, Python's ``random`` and the
trainer's skip sampler), the epoch's sample order and the index of the next
batch, and is written atomically (temporary file, then
:func:`os.replace`) at every validation, every ``--save-every`` batches and
on SIGINT/SIGTERM (after the current batch). Slot noise is drawn from a
generator seeded by the step, so ``--resume`` continues exactly where the
uninterrupted run would be.

**Data parallel.** Under ``torchrun --nproc_per_node W`` each global batch
is split over the ranks by
:func:`~torch_geometric_hyper.train.shard_batch`; every rank draws the
same skip schedule and slot noise, the local loss is scaled by its share
of the global batch (:func:`shard_loss`: sets, or pairs for a pair loss)
so the averaged gradient is the single-process gradient, and the gradients
are averaged before clipping and the update
(:class:`~torch_geometric_hyper.train.DistributedContext`). Every rank makes the same number of steps (a rank
without a set in the last batch trains on a copy with weight 0), a
non-finite loss on any rank is seen by all, validation draws each set's
slot noise from its index (:func:`eval_slots`), metrics are reduced over
the ranks (pooled ones as :class:`Ratio`), and only rank 0 writes files
and prints.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import os.path as osp
import random
import signal
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch

from torch_geometric_hyper.train.distributed import (
    DistributedContext,
    env_world_size,
    shard_batch,
)
from torch_geometric_hyper.train.one_shot import OneShot
from torch_geometric_hyper.train.skips import (
    BPTT,
    BackpropWithSkips,
    NonFiniteLossError,
    TruncatedBPTT,
)

#: Wall-clock budget of a whole ``--quick`` run (data, training, reports).
QUICK_MINUTES = 4.7
#: Validate every this many batches under ``--quick``.
QUICK_VAL_EVERY = 50
METHODS = ('skips', 'bptt', 'tbptt')
DTYPES = {'float32': torch.float32, 'float64': torch.float64}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """Shows every flag's default and keeps the description's layout."""


# ---------------------------------------------------------------------------
# flags
def add_arguments(parser: argparse.ArgumentParser, *, models: Sequence[str],
                  quick: Optional[dict] = None, out: str = 'runs/run',
                  root: Optional[str] = None,
                  samples: Optional[Sequence[int]] = (20_000, 2_000, 2_000)
                  ) -> argparse.ArgumentParser:
    r"""Adds the shared flags to ``parser``.

    Task-specific defaults are set afterwards with
    :meth:`argparse.ArgumentParser.set_defaults`; ``--help`` shows them.

    Args:
        parser (argparse.ArgumentParser): the example's parser.
        models (sequence of str): choices of ``--model`` (the first is the
            default).
        quick (dict, optional): the example's ``--quick`` preset, shown in
            the help of ``--quick``.
        out (str, optional): default ``--out``.
        root (str, optional): default ``--root`` (``None``: the example
            adds its own).
        samples (sequence of int, optional): default train/val/test sample
            counts (``None``: the example has fixed splits; the flags then
            cap them, 0 meaning all).
    """
    g = parser.add_argument_group('data')
    if root is not None:
        g.add_argument('--root', default=root, help='dataset directory')
    s = samples or (0, 0, 0)
    for name, n in zip(('train', 'val', 'test'), s):
        g.add_argument(f'--{name}-samples', type=int, default=n,
                       help=f'{name} sets' + ('' if samples else
                                              ' (0: all)'))
    g.add_argument('--seed', type=int, default=0,
                   help='seed of the data, the model, the sample order, '
                   'the skip schedule and the slot noise')
    g = parser.add_argument_group('model')
    g.add_argument('--model', default=models[0], choices=list(models),
                   help='model to train')
    g.add_argument('--hidden', type=int, default=128,
                   help='latent size d')
    g.add_argument('--activation-checkpointing',
                   action=argparse.BooleanOptionalAction, default=None,
                   help='recompute (on) or store (off) the activations of '
                   'each refinement step in backward; default: store them '
                   'unless one step\'s would exceed 256 MiB')
    g = parser.add_argument_group('training')
    g.add_argument('--method', default='skips', choices=METHODS,
                   help='recurrent models: backprop with skips, full BPTT '
                   'or truncated BPTT')
    g.add_argument('--T', type=int, default=16,
                   help='refinement steps (iterations)')
    g.add_argument('--B', type=int, default=4,
                   help='steps back-propagated per update')
    g.add_argument('--S', type=int, default=2,
                   help='updates per mini-batch')
    g.add_argument('--batch-size', type=int, default=64,
                   help='global mini-batch (split over the processes)')
    g.add_argument('--eval-batch-size', type=int, default=256,
                   help='mini-batch of validation and test (per process)')
    g.add_argument('--lr', type=float, default=3e-4,
                   help='Adam learning rate')
    g.add_argument('--grad-clip', type=float, default=None,
                   help='clip the global gradient norm to this')
    g.add_argument('--skip-nonfinite', action='store_true',
                   help='skip batches whose loss is NaN or infinite '
                   '(counted) instead of stopping the run')
    g.add_argument('--epochs', type=int, default=1000,
                   help='training epochs')
    g.add_argument('--max-steps', type=int, default=0,
                   help='stop after this many mini-batches (0: no limit)')
    g.add_argument('--patience', type=int, default=20,
                   help='stop after this many validations without a gain '
                   'in validation F1 (0: never)')
    g.add_argument('--val-every', type=int, default=0,
                   help='validate every N mini-batches (0: once per epoch)')
    g.add_argument('--max-minutes', type=float, default=None,
                   help='stop training after this wall-clock time')
    g.add_argument('--max-cpu-minutes', type=float, default=None,
                   help='stop training after this much process CPU time '
                   '(a budget other jobs on the machine do not eat)')
    g.add_argument('--max-total-minutes', type=float, default=None,
                   help='end the whole run (data, training and the final '
                   'reports) within this wall-clock time')
    g = parser.add_argument_group('run')
    g.add_argument('--out', default=out,
                   help='run directory (last.pt, best.pt, log.jsonl)')
    g.add_argument('--resume', action='store_true',
                   help='continue exactly from OUT/last.pt')
    g.add_argument('--save-every', type=int, default=0,
                   help='also write OUT/last.pt every N mini-batches (0: '
                   'at validations only)')
    g.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads per process (default: torch\'s)')
    g.add_argument('--device', default='auto',
                   help="'auto' (CUDA if available, else CPU), 'cpu', "
                   "'cuda' or 'cuda:N'; under torchrun with CUDA each rank "
                   "takes cuda:LOCAL_RANK")
    g.add_argument('--dtype', default='float32', choices=list(DTYPES),
                   help='parameter and feature dtype')
    g.add_argument('--bf16', action='store_true',
                   help='bfloat16 autocast in training and evaluation')
    g.add_argument('--compile', action='store_true',
                   help='torch.compile the refinement steps (or the model)')
    g.add_argument('--no-progress', action='store_true',
                   help='no progress bar')
    text = ('preset that ends the whole run within '
            f'{QUICK_MINUTES} minutes on 2 CPU cores: smaller data, '
            f'--max-total-minutes {QUICK_MINUTES}, --val-every '
            f'{QUICK_VAL_EVERY}, OUT gets the suffix _quick; model and '
            'training settings unchanged; flags given explicitly win')
    if quick:
        text += '; this example: ' + ', '.join(
            f'--{k.replace("_", "-")} {v}' for k, v in quick.items())
    g.add_argument('--quick', action='store_true', help=text)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None,
               quick: Optional[dict] = None) -> argparse.Namespace:
    r"""Parses ``argv``, applies the ``--quick`` preset to the flags left at
    their defaults and checks the values (:func:`check_args`).

    Args:
        parser (argparse.ArgumentParser): built with :func:`add_arguments`.
        argv (list of str, optional): default ``sys.argv[1:]``.
        quick (dict, optional): the example's preset on top of the shared
            one (``max_total_minutes``, ``val_every``).
    """
    args = parser.parse_args(argv)
    if args.quick:
        preset = dict(max_total_minutes=QUICK_MINUTES,
                      val_every=QUICK_VAL_EVERY, **(quick or {}))
        for key, value in preset.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
        if args.out and args.out == parser.get_default('out'):
            args.out = args.out + '_quick'
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Raises a :class:`ValueError` naming the first bad flag."""
    def positive(name, value, allow_zero=False, allow_none=False):
        if value is None and allow_none:
            return
        ok = value is not None and (value >= 0 if allow_zero else value > 0)
        if not ok:
            need = 'non-negative' if allow_zero else 'positive'
            raise ValueError(f"--{name.replace('_', '-')} must be {need}, "
                             f"got {value}")
    for name in ('T', 'B', 'S', 'batch_size', 'eval_batch_size', 'lr',
                 'epochs', 'hidden'):
        positive(name, getattr(args, name))
    for name in ('max_steps', 'patience', 'val_every', 'save_every',
                 'train_samples', 'val_samples', 'test_samples'):
        positive(name, getattr(args, name), allow_zero=True)
    for name in ('grad_clip', 'max_minutes', 'max_cpu_minutes',
                 'max_total_minutes', 'threads'):
        positive(name, getattr(args, name), allow_none=True)
    if args.method == 'skips' and args.B * args.S > args.T:
        raise ValueError(f'backprop with skips needs --B * --S <= --T, got '
                         f'--T {args.T} --B {args.B} --S {args.S}')
    if args.method == 'tbptt' and args.B > args.T:
        raise ValueError(f'truncated BPTT needs --B <= --T, got --T '
                         f'{args.T} --B {args.B}')
    if args.bf16 and args.dtype != 'float32':
        raise ValueError('--bf16 autocasts float32 models; it does not '
                         f'combine with --dtype {args.dtype}')
    resolve_device(args.device)


def resolve_device(name: str, local_rank: int = 0,
                   local_world_size: Optional[int] = None) -> torch.device:
    """``--device`` as a :class:`torch.device`.

    ``'auto'`` is CUDA when there is a GPU for every process of this node
    (``local_world_size``, default ``LOCAL_WORLD_SIZE`` set by ``torchrun``,
    else 1), otherwise the CPU for all of them. A plain ``'cuda'`` under
    several processes is the local rank's GPU, and a rank without one is a
    :class:`ValueError` that says how many GPUs there are.
    """
    if local_world_size is None:
        local_world_size = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    if name == 'auto':
        name = 'cuda' if (torch.cuda.is_available() and
                          torch.cuda.device_count() >= local_world_size) \
            else 'cpu'
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device: unknown device '{name}' ({err})")
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available")
        if device.index is None:
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise ValueError(
                    f"--device {name}: local rank {local_rank} needs GPU "
                    f"{local_rank}, but this node has {count}; launch at "
                    f"most {count} process(es) per node "
                    f"(torchrun --nproc_per_node {count}) or use --device "
                    f"cpu")
            device = torch.device('cuda', local_rank)
    return device


def checkpoint_mode(args: argparse.Namespace):
    r"""The refiners' ``checkpoint`` argument from
    ``--activation-checkpointing``: ``True`` (on), ``False`` (off) or
    ``'auto'`` (not given)."""
    value = getattr(args, 'activation_checkpointing', None)
    return 'auto' if value is None else bool(value)


def make_trainer(args: argparse.Namespace, recurrent: bool):
    r"""The training step of ``--method`` for recurrent models (``--T/--B/
    --S``), or :class:`~torch_geometric_hyper.train.OneShot`. Gradient
    clipping is done by the loop (on the gradient averaged over the
    processes), so the trainers get none. ``--skip-nonfinite`` makes them
    skip (and count) batches whose loss is NaN or infinite."""
    skip = bool(getattr(args, 'skip_nonfinite', False))
    if not recurrent:
        return OneShot(skip_nonfinite=skip)
    if args.method == 'skips':
        trainer = BackpropWithSkips(args.T, args.B, args.S, seed=args.seed,
                                    skip_nonfinite=skip)
    elif args.method == 'bptt':
        trainer = BPTT(args.T)
    else:
        trainer = TruncatedBPTT(args.T, args.B)
    trainer.skip_nonfinite = skip
    return trainer


# ---------------------------------------------------------------------------
# the run
class Run:
    r"""One training process: device, dtype, ranks, output directory.

    Built by :func:`setup`. ``print`` prints on rank 0 only.
    """

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.start = time.perf_counter()
        if args.threads:
            torch.set_num_threads(args.threads)
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        self.device = resolve_device(args.device, local_rank)
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        self.dtype = DTYPES[args.dtype]
        self.dist = DistributedContext(self.device)
        self.seed_everything()
        if self.is_main and args.out:
            os.makedirs(args.out, exist_ok=True)

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints."""
        return self.dist.is_main

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    def print(self, *args, **kwargs) -> None:
        """:func:`print` on rank 0 (flushed)."""
        if self.is_main:
            print(*args, flush=True, **kwargs)

    def seed_everything(self) -> None:
        """Seeds torch, NumPy and Python's ``random`` with ``--seed`` (the
        same on every rank)."""
        seed = self.args.seed
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (e.g. builds a dataset cache), the
        others after it."""
        if not self.is_main:
            self.dist.barrier()
        yield
        if self.is_main:
            self.dist.barrier()

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Moves ``model`` to the device and dtype, gives every rank rank
        0's weights and compiles it with ``--compile``."""
        model = model.to(device=self.device, dtype=self.dtype)
        self.dist.broadcast_parameters(model)
        if self.args.compile:
            steps = getattr(model, 'steps', None)
            targets = list(steps) if steps is not None else [model]
            for module in targets:  # in place: state_dict keys unchanged
                module.compile(dynamic=True)
        return model

    def to_device(self, batch):
        """``batch`` on the device, floating tensors in ``--dtype``. A
        batch with ``num_hyperedges`` keeps a host copy of them as a list,
        ``num_hyperedges_host``, so the matched loss need not read them back
        from the device."""
        counts = getattr(batch, 'num_hyperedges', None)
        if isinstance(counts, torch.Tensor) and counts.device.type == 'cpu':
            batch.num_hyperedges_host = counts.reshape(-1).tolist()
        batch = batch.to(self.device)
        if self.dtype != torch.float32:
            batch = batch.apply(lambda t: t.to(self.dtype)
                                if t.is_floating_point() else t)
        return batch

    def autocast(self):
        """bfloat16 autocast with ``--bf16``, else a no-op context."""
        if not self.args.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def batches(self, dataset, batch_size: int, shard: bool = False):
        """Mini-batches of ``dataset`` in order, on the device; with
        ``shard`` only this rank's share (every ``world_size``-th set).
        Each batch carries ``set_index`` (``[num_graphs]``, the sets'
        positions in ``dataset``) so evaluation can draw each set's slot
        noise from the set alone (:func:`eval_slots`)."""
        index = list(range(len(dataset)))
        if shard:
            index = index[self.dist.rank::self.world_size]
        for i in range(0, len(index), batch_size):
            chunk = index[i:i + batch_size]
            batch = Batch.from_data_list([dataset[j] for j in chunk])
            batch.set_index = torch.tensor(chunk, dtype=torch.long)
            yield self.to_device(batch)

    def evaluate(self, evaluate: Callable, model, dataset) -> Dict[str, float]:
        r"""Runs ``evaluate(model, batches)`` on this rank's share of
        ``dataset`` and averages the metrics over the ranks, weighted by
        the number of sets (exact for per-set means)."""
        n = len(range(self.dist.rank, len(dataset), self.world_size))
        was_training = model.training
        model.eval()
        with _preserved_rng(self.device), torch.no_grad(), self.autocast():
            res = evaluate(model, self.batches(
                dataset, self.args.eval_batch_size, shard=True))
        model.train(was_training)
        keys = sorted(res)
        values = []
        for k in keys:  # a Ratio pools its counts, the rest are set means
            v = res[k]
            values += [v.numerator, v.denominator] if isinstance(v, Ratio) \
                else [float(v) * n]
        sums = self.dist.all_reduce_sum(values + [n])
        out, i = {}, 0
        for k in keys:
            if isinstance(res[k], Ratio):
                out[k] = float(Ratio(sums[i], sums[i + 1]))
                i += 2
            else:
                out[k] = sums[i] / sums[-1]
                i += 1
        return out

    def close(self) -> None:
        """Leaves the process group."""
        self.dist.close()


class Ratio(float):
    r"""A metric pooled over the sets (``numerator / denominator``, e.g.
    true positives over all positives) rather than a mean of per-set
    values. It is a :class:`float`; :meth:`Run.evaluate` sums the numerator
    and the denominator over the processes before dividing, so a pooled
    metric is exact with any number of processes.

    Example:
        >>> r = Ratio(3, 4)
        >>> float(r), r.numerator, r.denominator
        (0.75, 3.0, 4.0)
    """

    def __new__(cls, numerator: float, denominator: float):
        value = float(numerator) / float(denominator) if denominator \
            else 0.0
        self = super().__new__(cls, value)
        self.numerator, self.denominator = float(numerator), \
            float(denominator)
        return self


def eval_slots(model, batch, seed: int = 0,
               generator: Optional[torch.Generator] = None) -> dict:
    r"""Initial slots for evaluating ``batch``, each set's noise drawn from
    a generator seeded by ``(seed, set_index)``: a set gets the same slots
    whatever batch, process or order it is evaluated in, so validation
    metrics do not depend on the number of processes.

    Returns ``{'slots': ...}`` for models with slot noise (``slot_mu``,
    ``slot_log_sigma``, ``max_edges``) when ``batch`` carries
    ``set_index`` (:meth:`Run.batches`); otherwise ``{'generator': g}``
    with ``g`` = ``generator`` or a new one seeded by ``seed`` (the noise
    then depends on the batch composition), or ``{}`` for models without
    slots.
    """
    mu = getattr(model, 'slot_mu', None)
    m = getattr(model, 'max_edges', None)
    if mu is None or m is None:
        return {}
    index = getattr(batch, 'set_index', None)
    if index is None:
        return {'generator': generator if generator is not None else
                torch.Generator(device=batch.x.device).manual_seed(seed)}
    d = mu.numel()
    noise = torch.empty(len(index), m, d, dtype=torch.float64)
    for row, i in enumerate(index.tolist()):
        state = np.random.SeedSequence([seed, 7, i]).generate_state(2)
        gen = torch.Generator().manual_seed(
            int(state[0]) << 32 | int(state[1]))
        noise[row] = torch.randn(m, d, generator=gen, dtype=torch.float64)
    noise = noise.reshape(-1, d).to(device=mu.device, dtype=batch.x.dtype)
    return {'slots': mu + torch.exp(model.slot_log_sigma) * noise}


def setup(args: argparse.Namespace) -> Run:
    """Threads, device, process group and seeds for ``args``."""
    return Run(args)


@contextlib.contextmanager
def _preserved_rng(device: torch.device):
    py, npy = random.getstate(), np.random.get_state()
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)


# ---------------------------------------------------------------------------
# checkpoints
def save_atomic(obj, path: str) -> None:
    """:func:`torch.save` to a temporary file, then :func:`os.replace`, so
    ``path`` always holds a whole checkpoint."""
    tmp = f'{path}.tmp{os.getpid()}'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_states(trainer=None) -> dict:
    """Every random state the training draws from."""
    out = {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(),
           'python': random.getstate(),
           'skips': (trainer.rng.getstate() if hasattr(trainer, 'rng')
                     else None)}
    if torch.cuda.is_available():
        out['cuda'] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict, trainer=None) -> None:
    """Restores :func:`rng_states`."""
    # a checkpoint loaded with map_location=<GPU> brings its RNG states to
    # the GPU too; the generators take them from the host
    torch.set_rng_state(states['torch'].cpu())
    np.random.set_state(states['numpy'])
    random.setstate(states['python'])
    if states.get('skips') is not None and hasattr(trainer, 'rng'):
        trainer.rng.setstate(states['skips'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in states['cuda']])


class _GlobalStep:
    """Optimizer wrapper: averages the gradients over the ranks and clips
    the global norm before each update (what the trainers call)."""

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


def set_sizes(dataset) -> List[int]:
    """Nodes of every set of ``dataset`` (fast for in-memory datasets)."""
    slices = getattr(dataset, 'slices', None)
    if slices is not None and 'x' in slices:
        ptr = slices['x']
        sizes = (ptr[1:] - ptr[:-1]).tolist()
        return [sizes[i] for i in dataset.indices()]
    return [dataset[i].num_nodes for i in range(len(dataset))]


def _slot_kwargs(model, trainer, global_index: Sequence[int],
                 local_pos: Sequence[int], seed: int, step: int, like):
    """Initial slots of the local sets, drawn for the whole global batch
    from a generator seeded by ``(seed, step)``: the same on every rank, in
    every run, with any split."""
    mu = getattr(model, 'slot_mu', None)
    if mu is None or getattr(model, 'max_edges', None) is None:
        return {}
    m, d = model.max_edges, mu.numel()
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    noise = torch.randn(len(global_index), m, d, generator=gen,
                        dtype=torch.float64)
    noise = noise[torch.as_tensor(local_pos)].reshape(-1, d)
    noise = noise.to(device=like.device, dtype=like.dtype)
    slots = mu + torch.exp(model.slot_log_sigma) * noise
    if isinstance(trainer, OneShot):
        return {'slots': slots}
    return {'init_kwargs': {'slots': slots}}


def loss_weight(loss_fn: Callable, prediction, data) -> Optional[float]:
    r"""How many terms ``loss_fn`` averages over for this batch:
    ``loss_fn.reduction_weight(prediction, data)`` where the loss defines
    it (e.g. candidate pairs for
    :class:`~torch_geometric_hyper.nn.AdjacencyBCELoss`; ``None`` for a
    sum), else the number of sets (a mean over the sets)."""
    weigh = getattr(loss_fn, 'reduction_weight', None)
    if weigh is None:
        return float(data.num_graphs)
    w = weigh(prediction, data)
    return None if w is None else float(w)


class _ScaledLoss:
    """``loss_fn`` times a constant, keeping its ``over_steps`` (one host
    synchronisation for the several steps of an update)."""

    def __init__(self, loss_fn: Callable, scale: float):
        self.loss_fn, self.scale = loss_fn, scale
        if getattr(loss_fn, 'over_steps', None) is not None:
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
    has_weight = getattr(loss_fn, 'reduction_weight', None) is not None
    if not has_weight:
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


def fit(run: Run, args: argparse.Namespace, model: torch.nn.Module, trainer,
        loss_fn: Callable, train_set, val_set, evaluate: Callable, *,
        format_val: Optional[Callable] = None, extra: Optional[dict] = None,
        test_size: int = 0) -> dict:
    r"""Trains ``model`` and keeps ``OUT/best.pt`` (best validation F1) and
    ``OUT/last.pt`` (exact resume point).

    Args:
        run (Run): from :func:`setup`.
        args (argparse.Namespace): from :func:`parse_args`.
        model (torch.nn.Module): prepared by :meth:`Run.prepare`.
        trainer: a training step (:func:`make_trainer`).
        loss_fn (callable): ``loss_fn(prediction, batch) -> scalar``, a mean
            over the sets of the batch.
        train_set, val_set: datasets of sets.
        evaluate (callable): ``evaluate(model, batches) -> dict`` of per-set
            means over the batches, with an ``'f1'`` entry (model selection).
        format_val (callable, optional): ``format_val(step, metrics,
            improved) -> str``, the validation log line.
        extra (dict, optional): stored in the checkpoints.
        test_size (int, optional): sets in the final test report (time
            reserved for it under ``--max-total-minutes``).

    Returns:
        dict: the loop state (``step``, ``epoch``, ``best_f1``,
        ``best_val``, ``best_step``, ``train_seconds``, ``cpu_seconds``,
        ``stopped``, ``history``: the metrics of every validation with its
        ``step``, ``train_seconds`` and ``cpu_seconds``), the same on every
        rank.
    """
    from torch_geometric_hyper.utils import Progress
    if len(val_set) < run.world_size:
        raise ValueError(f'{len(val_set)} validation sets cannot be shared '
                         f'by {run.world_size} processes')
    W, rank = run.world_size, run.dist.rank
    out = args.out
    last_path, best_path = osp.join(out, 'last.pt'), osp.join(out, 'best.pt')
    log_path = osp.join(out, 'log.jsonl')
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step_opt = _GlobalStep(optimizer, model, run.dist, args.grad_clip)
    sizes = set_sizes(train_set)
    G = args.batch_size
    per_epoch = math.ceil(len(train_set) / G)
    val_every = args.val_every or per_epoch
    state = {'epoch': 0, 'batch': 0, 'step': 0, 'best_f1': -1.0, 'bad': 0,
             'best_val': None, 'best_step': None, 'train_seconds': 0.0,
             'cpu_seconds': 0.0, 'stopped': None, 'history': []}
    order = None
    if args.resume:
        if not osp.exists(last_path):
            raise SystemExit(f'--resume: no checkpoint at {last_path}')
        ckpt = torch.load(last_path, map_location=run.device,
                          weights_only=False)
        model.load_state_dict(ckpt['model'])
        optimizer.load_state_dict(ckpt['optimizer'])
        state.update(ckpt['state'])
        state['stopped'] = None
        order = ckpt['order']
        set_rng_states(ckpt['rng'], trainer)
        if run.is_main and osp.exists(log_path):  # drop steps after ckpt
            with open(log_path) as f:
                keep = [line for line in f
                        if json.loads(line)['step'] <= state['step']]
            with open(log_path + '.tmp', 'w') as f:
                f.writelines(keep)
            os.replace(log_path + '.tmp', log_path)
        run.print(f"resumed from {last_path} at epoch {state['epoch']}, "
                  f"batch {state['batch']} of {per_epoch}, step "
                  f"{state['step']}, best val F1 {state['best_f1']:.4f}")
    elif run.is_main and osp.exists(log_path):
        os.remove(log_path)

    inner = getattr(model, '_orig_mod', model)  # under torch.compile
    model_config = inner.config() if hasattr(inner, 'config') else None

    def checkpoint(path):
        if run.is_main:
            # model_config: what nn.load_model and the predict command need
            save_atomic({'model': model.state_dict(),
                         'optimizer': optimizer.state_dict(),
                         'state': dict(state), 'order': order,
                         'rng': rng_states(trainer), 'args': vars(args),
                         'world_size': W, 'model_config': model_config,
                         **(extra or {})}, path)

    val_seconds = [0.0]

    def validate():
        t0 = time.perf_counter()
        res = run.evaluate(evaluate, model, val_set)
        val_seconds[0] = time.perf_counter() - t0
        state.setdefault('history', []).append(
            {'step': state['step'],
             'train_seconds': state['train_seconds'],
             'cpu_seconds': state['cpu_seconds'],
             **{k: float(v) for k, v in res.items()
                if isinstance(v, (int, float))}})
        improved = res['f1'] > state['best_f1']
        if improved:
            state.update(best_f1=res['f1'], bad=0, best_val=res,
                         best_step=state['step'])
            checkpoint(best_path)
        else:
            state['bad'] += 1
        checkpoint(last_path)
        if run.is_main:
            line = format_val(state['step'], res, improved) if format_val \
                else (f"step {state['step']:6d}  val " + '  '.join(
                    f'{k} {v:.4f}' for k, v in res.items())
                    + ('  *best*' if improved else ''))
            bar.write(line)
        return res

    interrupted = [False]

    def on_signal(signum, frame):
        interrupted[0] = True

    handlers = {}
    if hasattr(signal, 'SIGINT'):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread
            handlers = {}
    budget = args.max_minutes * 60 if args.max_minutes else math.inf
    cpu_budget = args.max_cpu_minutes * 60 if args.max_cpu_minutes \
        else math.inf
    total_budget = args.max_total_minutes * 60 if args.max_total_minutes \
        else math.inf
    log = open(log_path, 'a') if run.is_main else None
    validated_at = -1
    # a bar on a terminal, a line every 30 s in a log, nothing with
    # --no-progress
    bar = Progress(per_epoch, enabled=not args.no_progress and run.is_main)
    try:
        while state['epoch'] < args.epochs and state['stopped'] is None:
            if order is None:
                gen = torch.Generator().manual_seed(args.seed + state['epoch'])
                order = torch.randperm(len(train_set), generator=gen)
            bar.reset(total=per_epoch)
            bar.update(state['batch'])
            bar.set_description(f"epoch {state['epoch']}")
            while state['batch'] < per_epoch:
                t0, c0 = time.perf_counter(), time.process_time()
                b = state['batch']
                index = order[b * G:(b + 1) * G].tolist()
                shards = shard_batch(index, [sizes[i] for i in index], W)
                local = shards[rank]
                weight = len(local)
                if not local:  # a copy with weight 0 keeps the ranks in step
                    local = [index[0]]
                pos = {i: p for p, i in enumerate(index)}
                batch = run.to_device(Batch.from_data_list(
                    [train_set[i] for i in local]))
                scaled = shard_loss(loss_fn, run.dist, weight,
                                    len(index))
                kwargs = _slot_kwargs(model, trainer, index,
                                      [pos[i] for i in local], args.seed,
                                      state['step'], batch.x)
                try:
                    with run.autocast():
                        stats = trainer(model, step_opt, scaled, batch,
                                        **kwargs)
                except NonFiniteLossError as err:
                    raise SystemExit(
                        f"stopped at step {state['step'] + 1} (epoch "
                        f"{state['epoch']}, batch {state['batch'] + 1} of "
                        f"{per_epoch}): {err}. The last good checkpoint is "
                        f"{last_path} (written atomically): --resume "
                        f"continues from it; --skip-nonfinite skips such "
                        f"batches") from None
                loss, stop = run.dist.all_reduce_sum(
                    [stats['loss'], float(interrupted[0])])
                loss /= W
                state['batch'] += 1
                state['step'] += 1
                state['train_seconds'] += time.perf_counter() - t0
                state['cpu_seconds'] += time.process_time() - c0
                if log is not None:
                    log.write(json.dumps({'step': state['step'],
                                          'epoch': state['epoch'],
                                          'loss': loss}) + '\n')
                    log.flush()
                bar.update(1)
                bar.set_postfix(loss=f'{loss:.4f}')
                if state['batch'] == per_epoch:
                    state['epoch'] += 1
                    state['batch'] = 0
                    order = None
                if state['step'] % val_every == 0:
                    validate()
                    validated_at = state['step']
                    if args.patience and state['bad'] >= args.patience:
                        state['stopped'] = 'patience'
                elif args.save_every and state['step'] % args.save_every \
                        == 0:
                    checkpoint(last_path)
                reserve = val_seconds[0] * (1 + test_size / len(val_set)) \
                    + (time.perf_counter() - t0) + 5.0
                if stop:
                    state['stopped'] = 'interrupted'
                elif args.max_steps and state['step'] >= args.max_steps:
                    state['stopped'] = 'max_steps'
                elif state['train_seconds'] >= budget or \
                        state['cpu_seconds'] >= cpu_budget or \
                        time.perf_counter() - run.start + reserve \
                        >= total_budget:
                    state['stopped'] = 'time'
                if state['stopped'] is not None or order is None:
                    break
        bar.close()
        if state['stopped'] == 'interrupted':
            checkpoint(last_path)
            run.print(f"interrupted at step {state['step']}: state saved to "
                      f"{last_path} (use --resume)")
            raise SystemExit(130)
        if state['stopped'] == 'patience':
            run.print(f'early stopping: no validation gain in '
                      f'{args.patience} validations')
        if getattr(trainer, 'num_skipped', 0):
            run.print(f'skipped {trainer.num_skipped} batches with a '
                      f'non-finite loss')
        if validated_at != state['step'] or state['best_val'] is None:
            validate()
    finally:
        if log is not None:
            log.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return state


def load_best(run: Run, model: torch.nn.Module) -> dict:
    """Loads ``OUT/best.pt`` into ``model``; returns the checkpoint."""
    run.dist.barrier()
    ckpt = torch.load(osp.join(run.args.out, 'best.pt'),
                      map_location=run.device, weights_only=False)
    model.load_state_dict(ckpt['model'])
    return ckpt


def world_size() -> int:
    """Processes of this run (``WORLD_SIZE``, 1 without ``torchrun``)."""
    return env_world_size()


def write_pictures(run: Run, state: dict, draw_prediction: Callable,
                   title: str = '') -> List[str]:
    r"""The two pictures of a run, next to its checkpoints (rank 0 only):
    ``OUT/learning_curve.png`` (validation F1 and loss against batches,
    from ``state['history']``) and ``OUT/prediction.png``
    (``draw_prediction(path)``, one predicted set against its truth).
    Skipped, with a note, when matplotlib is missing."""
    if not run.is_main:
        return []
    try:
        from torch_geometric_hyper.visualize import plot_learning_curve
        paths = [plot_learning_curve(
            [{k: v for k, v in h.items() if k == 'step' or k == 'loss'
              or k.startswith('f1')} for h in state.get('history', [])],
            osp.join(run.args.out, 'learning_curve.png'), title)]
        paths.append(draw_prediction(osp.join(run.args.out,
                                              'prediction.png')))
    except ImportError as err:
        run.print(f'pictures skipped: {err}')
        return []
    run.print('pictures: ' + ', '.join(paths))
    return paths
