r"""The examples' command line: flags that map one to one onto
:class:`TrainConfig` fields, and one ``main`` for every task.

An example declares its task (its data, model, loss, evaluation, report and
picture) as a :class:`Task` and calls :func:`main`::

    TASK = Task(name='convex hull', description=__doc__, models=['refiner'],
                load_data=..., build=..., evaluator=..., report=...)
    if __name__ == '__main__':
        main(TASK)

Every :class:`TrainConfig` field is one flag (``T`` is ``--T``,
``batch_size`` is ``--batch-size``, ``progress`` is ``--no-progress``);
the task adds ``--root``, ``--train/val/test-samples``, ``--model``,
``--hidden``, ``--quick`` and flags of its own.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from torch_geometric_hyper.train.config import (
    QUICK_MINUTES,
    QUICK_VAL_EVERY,
    TrainConfig,
    flag_name,
)
from torch_geometric_hyper.train.context import Run, resolve_device
from torch_geometric_hyper.train.fit import fit, load_best
from torch_geometric_hyper.train.step import make_trainer

_GROUPS = ('data', 'model', 'training', 'run')
_TYPES = {'int': int, 'float': float, 'str': str, 'Optional[int]': int,
          'Optional[float]': float}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """Shows every flag's default and keeps the description's layout."""


@dataclass
class Task:
    r"""A task of the command line: what :func:`main` needs besides the
    training options.

    Args:
        name (str): shown in the pictures' titles.
        description (str): the ``--help`` text (the example's docstring).
        models (list of str): choices of ``--model`` (the first is the
            default).
        load_data (callable): ``load_data(args, run) -> (train, val,
            test)`` (run on rank 0 first, so one process builds a cache).
        build (callable): ``build(args, run, data) -> (model, loss_fn)``
            (after seeding).
        evaluator (callable): ``evaluator(args, loss_fn) -> evaluate`` (see
            :func:`~torch_geometric_hyper.train.fit`).
        report (callable): ``report(args, run, model, result, data,
            evaluate) -> value`` after the best checkpoint is loaded; what
            :func:`main` returns.
        recurrent (list of str, optional): models trained with the
            recurrent schedule (default: ``['refiner']``).
        add_arguments (callable, optional): ``add_arguments(parser)``, the
            task's own flags.
        finish_args (callable, optional): ``finish_args(args)`` after
            parsing (derived values, defaults that depend on other flags).
        defaults (dict, optional): the task's defaults of shared flags.
        quick (dict, optional): the task's ``--quick`` preset.
        out (str, optional): default ``--out`` (``None``: set by
            ``finish_args``).
        root (str, optional): default ``--root`` (``None``: the task adds
            its own).
        samples (tuple of int, optional): default train/val/test sizes
            (``None``: the task has fixed splits; the flags cap them, 0
            meaning all).
        format_val (callable, optional): ``format_val(step, metrics,
            improved) -> str``.
        extra (callable, optional): ``extra(args, data) -> dict`` of plain
            values stored in the checkpoints.
        draw (callable, optional): ``draw(args, model, data, path) ->
            path``, the prediction picture.
    """
    name: str
    description: str
    models: Sequence[str]
    load_data: Callable
    build: Callable
    evaluator: Callable
    report: Callable
    recurrent: Sequence[str] = ('refiner',)
    add_arguments: Optional[Callable] = None
    finish_args: Optional[Callable] = None
    defaults: Dict = field(default_factory=dict)
    quick: Dict = field(default_factory=dict)
    out: Optional[str] = 'runs/run'
    root: Optional[str] = None
    samples: Optional[Sequence[int]] = (20_000, 2_000, 2_000)
    format_val: Optional[Callable] = None
    extra: Optional[Callable] = None
    draw: Optional[Callable] = None


def add_config_arguments(groups: Dict[str, argparse._ArgumentGroup]) -> None:
    """One flag per :class:`TrainConfig` field, in its group, with the
    field's help and default."""
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        g = groups[meta['group']]
        flag = flag_name(f.name)
        if f.type == 'bool' and f.default is True:  # --no-<name>
            g.add_argument(flag, dest=f.name, action='store_false',
                           help='no ' + meta['help'])
        elif f.type == 'bool':
            g.add_argument(flag, dest=f.name, action='store_true',
                           help=meta['help'])
        elif f.type == 'Optional[bool]':
            g.add_argument(flag, dest=f.name, default=f.default,
                           action=argparse.BooleanOptionalAction,
                           help=meta['help'])
        else:
            kwargs = {'choices': list(meta['choices'])} \
                if 'choices' in meta else {}
            g.add_argument(flag, dest=f.name, type=_TYPES[f.type],
                           default=f.default, help=meta['help'], **kwargs)


def build_parser(task: Task) -> argparse.ArgumentParser:
    """The task's parser: the data and model flags, every
    :class:`TrainConfig` field, the task's own flags and ``--quick``."""
    p = argparse.ArgumentParser(description=task.description,
                                formatter_class=HelpFormatter)
    groups = {name: p.add_argument_group(name) for name in _GROUPS}
    g = groups['data']
    if task.root is not None:
        g.add_argument('--root', default=task.root, help='dataset directory')
    s = task.samples or (0, 0, 0)
    for name, n in zip(('train', 'val', 'test'), s):
        g.add_argument(f'--{name}-samples', type=int, default=n,
                       help=f'{name} sets' + ('' if task.samples else
                                              ' (0: all)'))
    g = groups['model']
    g.add_argument('--model', default=task.models[0],
                   choices=list(task.models), help='model to train')
    g.add_argument('--hidden', type=int, default=128, help='latent size d')
    add_config_arguments(groups)
    p.set_defaults(out=task.out)
    text = ('preset that ends the whole run within '
            f'{QUICK_MINUTES} minutes on 2 CPU cores: smaller data, '
            f'--max-total-minutes {QUICK_MINUTES}, --val-every '
            f'{QUICK_VAL_EVERY}, OUT gets the suffix _quick; model and '
            'training settings unchanged unless the example says so below; '
            'flags given explicitly win')
    if task.quick:
        text += '; this example: ' + ', '.join(
            f'--{k.replace("_", "-")} {v}' for k, v in task.quick.items())
    groups['run'].add_argument('--quick', action='store_true', help=text)
    if task.add_arguments is not None:
        task.add_arguments(p)
    p.set_defaults(**task.defaults)
    return p


def parse_args(task: Task, argv=None) -> argparse.Namespace:
    r"""Parses ``argv`` for ``task``, applies the ``--quick`` preset to the
    flags left at their defaults and builds ``args.config``, the
    :class:`TrainConfig` of the training flags (a bad value raises the
    config's :class:`ValueError`)."""
    parser = build_parser(task)
    args = parser.parse_args(argv)
    if args.quick:
        preset = dict(max_total_minutes=QUICK_MINUTES,
                      val_every=QUICK_VAL_EVERY, **task.quick)
        for key, value in preset.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
        if args.out and args.out == parser.get_default('out'):
            args.out = args.out + '_quick'
    if args.hidden <= 0:
        raise ValueError(f'--hidden must be a positive integer, got '
                         f'{args.hidden}')
    for name in ('train_samples', 'val_samples', 'test_samples'):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be "
                             f"non-negative, got {getattr(args, name)}")
    if task.finish_args is not None:
        task.finish_args(args)
    args.config = config_from_args(args)
    resolve_device(args.config.device)
    return args


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of the parsed training flags."""
    return TrainConfig(**{f.name: getattr(args, f.name)
                          for f in dataclasses.fields(TrainConfig)})


def plain_args(args: argparse.Namespace) -> dict:
    """The parsed flags as plain values (what checkpoints store)."""
    return {k: v for k, v in vars(args).items()
            if v is None or isinstance(v, (bool, int, float, str))}


def main(task: Task, argv=None):
    r"""Runs ``task`` from the command line: parses the flags, builds the
    data (rank 0 first) and the model, trains with :func:`fit`, loads the
    best checkpoint, reports and draws the two pictures."""
    args = parse_args(task, argv)
    config = args.config
    run = Run(config)
    run.dist.check_same_options(plain_args(args), 'command-line flags')
    with run.main_first():  # one process builds the cache
        data = task.load_data(args, run)
    run.seed_everything()
    model, loss_fn = task.build(args, run, data)
    model = run.prepare(model)
    trainer = make_trainer(config, args.model in task.recurrent)
    args.num_parameters = sum(p.numel() for p in model.parameters())
    run.print(f'model: {model} with {args.num_parameters:,} parameters; '
              f'training: {trainer}; loss: {loss_fn}; {run.world_size} '
              f'process(es) on {run.device}')
    evaluate = task.evaluator(args, loss_fn)
    extra = {'args': plain_args(args)}
    if task.extra is not None:
        extra.update(task.extra(args, data))
    result = fit(model, loss_fn, data[0], data[1], config, evaluate,
                 trainer=trainer, context=run, format_val=task.format_val,
                 extra=extra, test_size=len(data[2]))
    load_best(run, model)
    out = task.report(args, run, model, result, data, evaluate)
    run.print(f'total wall time {(time.perf_counter() - run.start) / 60:.2f}'
              f' min')
    if task.draw is not None:
        write_pictures(run, result, lambda path: task.draw(
            args, model, data, path), f'{args.model}, {task.name}')
    run.close()
    return out


def write_pictures(run: Run, result, draw_prediction: Callable,
                   title: str = '') -> List[str]:
    r"""The two pictures of a run, next to its checkpoints (rank 0 only):
    ``OUT/learning_curve.png`` (validation F1 and loss against batches,
    from the result's history) and ``OUT/prediction.png``
    (``draw_prediction(path)``, one predicted set against its truth).
    Skipped, with a note, when matplotlib is missing."""
    if not run.is_main:
        return []
    try:
        from torch_geometric_hyper.visualize import plot_learning_curve
        paths = [plot_learning_curve(
            [{k: v for k, v in h.items() if k == 'step' or k == 'loss'
              or k.startswith('f1')} for h in result.history],
            osp.join(run.config.out, 'learning_curve.png'), title)]
        paths.append(draw_prediction(osp.join(run.config.out,
                                              'prediction.png')))
    except ImportError as err:
        run.print(f'pictures skipped: {err}')
        return []
    run.print('pictures: ' + ', '.join(paths))
    return paths


def set_size(text: str):
    """``--num-points``: ``'30'`` is 30, ``'20-80'`` is ``(20, 80)``."""
    lo, _, hi = text.partition('-')
    try:
        return int(lo) if not hi else (int(lo), int(hi))
    except ValueError:
        raise ValueError(f"--num-points must be a number or a range such "
                         f"as '20-80', got {text!r}") from None


def check_pair_memory(model, num_points, batch_size: int, run: Run) -> None:
    """Refuses (before training, not at the first batch) a tuple model
    (:class:`~torch_geometric_hyper.nn.Set2Graph`) whose activations for
    ``batch_size`` sets of ``num_points`` (or the largest of a range) would
    not fit; prints their size."""
    n_max = max(num_points) if isinstance(num_points, tuple) else num_points
    try:
        need = model.memory_bytes(n_max, batch_size)
    except ValueError as err:
        raise SystemExit(f'set2graph cannot run this configuration: {err}')
    run.print(f'set2graph tuple activations: {need / 1e6:.1f} MB per batch '
              f'of {batch_size} sets')


def entry_points(task: Task):
    """``(parse_args(argv=None), build_parser(), main(argv=None))`` of
    ``task``, what an example script exposes."""
    return (functools.partial(parse_args, task),
            functools.partial(build_parser, task),
            functools.partial(main, task))
