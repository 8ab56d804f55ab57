r"""Every option of a training run as one typed dataclass."""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Optional, Union

import torch

#: Training schedules of recurrent models (:attr:`TrainConfig.method`).
METHODS = ('skips', 'bptt', 'tbptt')
#: Parameter and feature dtypes (:attr:`TrainConfig.dtype`).
DTYPES = {'float32': torch.float32, 'float64': torch.float64}
#: Wall-clock budget of a whole ``--quick`` command-line run.
QUICK_MINUTES = 4.7
#: Validate every this many batches under ``--quick``.
QUICK_VAL_EVERY = 50


def _help(text: str, group: str = 'training', flag: Optional[str] = None,
          **extra):
    meta = {'help': text, 'group': group}
    if flag is not None:
        meta['flag'] = flag
    meta.update(extra)
    return meta


@dataclass
class TrainConfig:
    r"""The options of :func:`~torch_geometric_hyper.train.fit`.

    Every field is one command-line flag of the examples (``T`` is
    ``--T``, ``batch_size`` is ``--batch-size``, ``progress=False`` is
    ``--no-progress``), with the same default; the values are checked when
    the config is made, and a bad one raises a :class:`ValueError` that
    names the field.

    Example:
        >>> from torch_geometric_hyper.train import TrainConfig
        >>> config = TrainConfig(out='runs/hull', max_steps=100, lr=1e-3)
        >>> config.T, config.B, config.S, config.batch_size
        (16, 4, 2, 64)
        >>> TrainConfig(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: TrainConfig.batch_size (--batch-size) must be a positive integer, got 0
    """
    # -- the schedule of recurrent models
    method: str = field(default='skips', metadata=_help(
        'recurrent models: backprop with skips, full BPTT or truncated '
        'BPTT', choices=METHODS))
    T: int = field(default=16, metadata=_help(
        'refinement steps (iterations)'))
    B: int = field(default=4, metadata=_help(
        'steps back-propagated per update'))
    S: int = field(default=2, metadata=_help('updates per mini-batch'))
    # -- optimisation
    batch_size: int = field(default=64, metadata=_help(
        'global mini-batch (split over the processes)'))
    eval_batch_size: int = field(default=256, metadata=_help(
        'mini-batch of validation and test (per process)'))
    lr: float = field(default=3e-4, metadata=_help('Adam learning rate'))
    grad_clip: Optional[float] = field(default=None, metadata=_help(
        'clip the global gradient norm to this'))
    skip_nonfinite: bool = field(default=False, metadata=_help(
        'skip batches whose loss is NaN or infinite (counted) instead of '
        'stopping the run'))
    # -- when to stop and validate
    epochs: int = field(default=1000, metadata=_help('training epochs'))
    max_steps: int = field(default=0, metadata=_help(
        'stop after this many mini-batches (0: no limit)'))
    patience: int = field(default=20, metadata=_help(
        'stop after this many validations without a gain in validation F1 '
        '(0: never)'))
    val_every: int = field(default=0, metadata=_help(
        'validate every N mini-batches (0: once per epoch)'))
    max_minutes: Optional[float] = field(default=None, metadata=_help(
        'stop training after this wall-clock time'))
    max_cpu_minutes: Optional[float] = field(default=None, metadata=_help(
        'stop training after this much process CPU time (a budget other '
        'jobs on the machine do not eat)'))
    max_total_minutes: Optional[float] = field(default=None, metadata=_help(
        'end the whole run (data, training and the final reports) within '
        'this wall-clock time'))
    # -- the model's memory policy
    activation_checkpointing: Optional[bool] = field(
        default=None, metadata=_help(
            'recompute (on) or store (off) the activations of each '
            'refinement step in backward; default: store them unless one '
            "step's would exceed 256 MiB", group='model'))
    # -- the run
    out: str = field(default='runs/run', metadata=_help(
        'run directory (last.pt, best.pt, log.jsonl)', group='run'))
    resume: bool = field(default=False, metadata=_help(
        'continue exactly from OUT/last.pt', group='run'))
    save_every: int = field(default=0, metadata=_help(
        'also write OUT/last.pt every N mini-batches (0: at validations '
        'only)', group='run'))
    seed: int = field(default=0, metadata=_help(
        'seed of the data, the model, the sample order, the skip schedule '
        'and the slot noise', group='data'))
    threads: Optional[int] = field(default=None, metadata=_help(
        "torch CPU threads per process (default: torch's)", group='run'))
    device: str = field(default='auto', metadata=_help(
        "'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'; "
        'under torchrun with CUDA each rank takes cuda:LOCAL_RANK',
        group='run'))
    dtype: str = field(default='float32', metadata=_help(
        'parameter and feature dtype', group='run', choices=tuple(DTYPES)))
    bf16: bool = field(default=False, metadata=_help(
        'bfloat16 autocast in training and evaluation', group='run'))
    compile: Optional[bool] = field(default=None, metadata=_help(
        'torch.compile the refinement steps (or the model); default: on '
        'CUDA only, where the host would otherwise set the pace',
        group='run'))
    progress: bool = field(default=True, metadata=_help(
        'progress bar', group='run', flag='--no-progress'))

    def __post_init__(self):
        check_config(self)

    def replace(self, **changes) -> 'TrainConfig':
        """A copy with ``changes`` (checked)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as plain Python values (what checkpoints store)."""
        return dataclasses.asdict(self)

    @property
    def torch_dtype(self) -> torch.dtype:
        """:attr:`dtype` as a :class:`torch.dtype`."""
        return DTYPES[self.dtype]

    @property
    def checkpoint_mode(self) -> Union[bool, str]:
        r"""The refiners' ``checkpoint`` argument:
        :attr:`activation_checkpointing`, or ``'auto'`` when it is
        ``None``."""
        value = self.activation_checkpointing
        return 'auto' if value is None else bool(value)


def flag_name(name: str) -> str:
    """The command-line flag of a :class:`TrainConfig` field."""
    f = TrainConfig.__dataclass_fields__[name]
    return f.metadata.get('flag', '--' + name.replace('_', '-'))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_config(config: TrainConfig) -> None:
    """Raises a :class:`ValueError` naming the first bad field of
    ``config``."""
    def bad(name, need, value):
        raise ValueError(f'TrainConfig.{name} ({flag_name(name)}) must be '
                         f'{need}, got {value!r}')

    for name in ('T', 'B', 'S', 'batch_size', 'eval_batch_size', 'epochs'):
        v = getattr(config, name)
        if not _is_int(v) or v <= 0:
            bad(name, 'a positive integer', v)
    for name in ('max_steps', 'patience', 'val_every', 'save_every', 'seed'):
        v = getattr(config, name)
        if not _is_int(v) or v < 0:
            bad(name, 'a non-negative integer', v)
    if config.threads is not None and (not _is_int(config.threads)
                                       or config.threads <= 0):
        bad('threads', 'a positive integer or None', config.threads)
    if not isinstance(config.lr, numbers.Real) or not config.lr > 0:
        bad('lr', 'a positive number', config.lr)
    for name in ('grad_clip', 'max_minutes', 'max_cpu_minutes',
                 'max_total_minutes'):
        v = getattr(config, name)
        if v is not None and (not isinstance(v, numbers.Real) or
                              isinstance(v, bool) or not v > 0):
            bad(name, 'a positive number or None', v)
    if config.method not in METHODS:
        bad('method', f'one of {METHODS}', config.method)
    if config.dtype not in DTYPES:
        bad('dtype', f'one of {tuple(DTYPES)}', config.dtype)
    for name in ('activation_checkpointing', 'compile'):
        if not any(getattr(config, name) is v for v in (None, True, False)):
            bad(name, 'True, False or None', getattr(config, name))
    if not isinstance(config.out, str) or not config.out:
        bad('out', 'a directory path', config.out)
    if config.method == 'skips' and config.B * config.S > config.T:
        raise ValueError(f'backprop with skips needs B * S <= T (--B * --S '
                         f'<= --T), got T={config.T} B={config.B} '
                         f'S={config.S}')
    if config.method == 'tbptt' and config.B > config.T:
        raise ValueError(f'truncated BPTT needs B <= T (--B <= --T), got '
                         f'T={config.T} B={config.B}')
    if config.bf16 and config.dtype != 'float32':
        raise ValueError('TrainConfig.bf16 (--bf16) autocasts float32 '
                         f'models; it does not combine with dtype '
                         f'{config.dtype!r}')
    if not isinstance(config.device, str):
        bad('device', "a device name such as 'cpu' or 'cuda:0'",
            config.device)
