"""Scaffolding shared by the scripts under ``benchmarks/``.

* a runner that measures each configuration in a fresh subprocess, so the
  peak resident set size (RSS) of one configuration does not hide
  another's (:func:`run_isolated`, :func:`emit`);
* peak memory as ``ru_maxrss`` (:func:`peak_rss_mib`), reported together
  with the RSS right after the imports (:class:`MemoryProbe`);
* output: a printed table (:func:`print_table`), CSV + JSON files with the
  machine they came from (:func:`write_results`) and a matplotlib PNG drawn
  with the Agg backend (:func:`new_figure`, :func:`save_figure`);
* the common command-line options (:func:`base_parser`).

Only the standard library and matplotlib are imported here (torch is left
to the scripts), so a worker's "RSS after imports" is its own.
"""
from __future__ import annotations

import argparse
import csv
import json
import importlib.util
import math
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

WORKER_FLAG = '--worker'


# --------------------------------------------------------------------------
# command line
def base_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """Parser with the options every benchmark shares: ``--quick``,
    ``--out``, ``--name``, ``--threads``, ``--seed`` (plus the hidden
    worker flag of :func:`run_isolated`)."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='small preset that ends within a few minutes on '
                        '2 CPU cores')
    p.add_argument('--out', default=osp.join('runs', 'benchmarks'),
                   help='folder of the CSV, JSON and PNG outputs')
    p.add_argument('--name', default=None,
                   help=f'file stem of the outputs (default: {name}, '
                        f'{name}_quick with --quick)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--in-process', action='store_true',
                   help='run every configuration in this process instead '
                        'of a fresh one (smoke tests; the peak memory is '
                        'then not per configuration)')
    p.add_argument(WORKER_FLAG, default=None, help=argparse.SUPPRESS)
    p.set_defaults(_bench_name=name)
    return p


def add_hull_training_options(p: argparse.ArgumentParser,
                              steps_help: str):
    """The options of the scripts that train refiners on convex hulls
    (``--root``, ``--hidden``, ``--T``, ``--B``, ``--S``,
    ``--batch-size``, ``--lr``, ``--steps``, ``--train-samples``,
    ``--test-samples``); the ``None`` defaults are presets that depend on
    ``--quick`` (:func:`apply_defaults`)."""
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--T', type=int, default=16, help='training iterations')
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--lr', type=float, default=None)
    p.add_argument('--steps', type=int, default=None, help=steps_help)
    p.add_argument('--train-samples', type=int, default=None)
    p.add_argument('--test-samples', type=int, default=None)


def apply_defaults(args, **defaults):
    """Sets each option still ``None`` to its default (the presets that
    depend on ``--quick``)."""
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def output_stem(args, part: str = '') -> str:
    """``<out>/<name><part>`` of this run (``_quick`` appended to the
    default name in quick mode)."""
    name = args.name or (args._bench_name + ('_quick' if args.quick else ''))
    return osp.join(args.out, name + part)


# --------------------------------------------------------------------------
# fresh subprocess per configuration
def run_isolated(script: str, argv: Sequence[str], config: Dict,
                 timeout: Optional[float] = None,
                 env: Optional[Dict[str, str]] = None) -> Dict:
    """Runs ``script`` with ``argv`` plus ``--worker <config as JSON>`` in a
    fresh Python process (with ``env`` added to the environment) and
    returns the JSON object it printed last (see :func:`emit`). Raises
    ``RuntimeError`` with the worker's stderr if it fails, and
    ``subprocess.TimeoutExpired`` past ``timeout`` seconds."""
    cmd = [sys.executable, osp.abspath(script), *argv, WORKER_FLAG,
           json.dumps(config)]
    env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=timeout)
    lines = [ln for ln in res.stdout.strip().splitlines()
             if ln.startswith('{')]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f'worker {config} failed (exit '
                           f'{res.returncode}):\n{res.stderr[-4000:]}')
    return json.loads(lines[-1])


def run_config(script: str, argv: Sequence[str], args, config: Dict,
               worker, timeout: Optional[float] = None,
               env: Optional[Dict[str, str]] = None) -> Dict:
    """Measures one configuration: ``worker(args, config) -> dict`` in a
    fresh process (:func:`run_isolated`, with ``timeout`` and ``env``), or
    in this one with ``--in-process``."""
    if getattr(args, 'in_process', False):
        return json.loads(json.dumps(worker(args, config)))
    return run_isolated(script, argv, config, timeout, env)


def worker_config(args) -> Optional[Dict]:
    """The configuration passed to this process by :func:`run_isolated`, or
    ``None`` in the parent process."""
    value = getattr(args, 'worker', None)
    return None if value is None else json.loads(value)


def start(parse_args, run_worker, argv=None):
    """The common start of a script with one fresh process per
    configuration: parses ``argv`` (default ``sys.argv[1:]``); in a worker
    process runs ``run_worker(args, config)``, prints its result
    (:func:`emit`) and returns ``None``; in the parent returns ``(argv,
    args)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = worker_config(args)
    if cfg is not None:
        emit(run_worker(args, cfg))
        return None
    return argv, args


def run_each(script: str, parse_args, run_one, key: str, values: str,
             argv=None, fastest: Optional[str] = None):
    """:func:`start`, then in the parent one fresh process per value of
    ``args.<values>``, each running ``run_one(args, value)`` with the value
    under ``key`` in its configuration. Returns ``None`` in a worker, else
    ``(argv, args, rows)``.

    With ``args.rounds`` > 1 the values are run that many times, in turn
    (all values, then all again), and each value keeps the row of its run
    with the smallest ``fastest`` (the machine's noise only adds time),
    with every run's ``fastest`` in ``<fastest>_runs``."""
    def worker(args, cfg):
        return run_one(args, cfg[key])
    started = start(parse_args, worker, argv)
    if started is None:
        return None
    argv, args = started
    values = list(getattr(args, values))
    rounds = int(getattr(args, 'rounds', 1) or 1)
    runs = [[] for _ in values]
    for _ in range(rounds):
        for v, done in zip(values, runs):
            done.append(run_config(script, argv, args, {key: v}, worker))
    if rounds == 1 or fastest is None:
        return argv, args, [done[0] for done in runs]
    return argv, args, [
        {**min(done, key=lambda r: r[fastest]),
         f'{fastest}_runs': [r[fastest] for r in done]} for done in runs]


def emit(result: Dict):
    """Prints a worker's result as one JSON line (the parent reads the
    last one)."""
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# memory
def peak_rss_mib() -> float:
    """Peak RSS of this process so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == 'darwin' else 1024)


class MemoryProbe:
    """Peak RSS relative to the RSS right after the imports.

    Create it after the imports and before any work; :meth:`report`
    returns ``rss_after_imports_mib``, ``peak_rss_mib`` and
    ``peak_minus_imports_mib``.
    """

    def __init__(self):
        self.baseline = peak_rss_mib()

    def report(self) -> Dict[str, float]:
        peak = peak_rss_mib()
        return {'rss_after_imports_mib': self.baseline,
                'peak_rss_mib': peak,
                'peak_minus_imports_mib': peak - self.baseline}


class Stopwatch:
    """Accumulates wall-clock seconds over ``with`` blocks."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t0


# --------------------------------------------------------------------------
# output
def machine_info(threads: Optional[int] = None) -> Dict:
    """Where the figures came from (CPU, cores, load, library versions)."""
    info = {'platform': platform.platform(), 'python':
            platform.python_version(), 'cpu_count': os.cpu_count(),
            'cpu': _cpu_name(), 'threads': threads,
            'time': time.strftime('%Y-%m-%d %H:%M:%S')}
    try:
        info['load_average_1min'] = os.getloadavg()[0]
    except OSError:
        pass
    for mod in ('torch', 'torch_geometric', 'scipy'):
        module = sys.modules.get(mod)
        if module is not None:
            info[mod] = getattr(module, '__version__', '?')
    # optional packages that change the figures: pandas (torch_geometric
    # imports it when installed: about 30 MiB of RSS), lapx (the square
    # assignments' solver), ortools (the flow solver)
    info['installed'] = {mod: importlib.util.find_spec(mod) is not None
                         for mod in ('pandas', 'lap', 'ortools')}
    commit = _git_commit()
    if commit:
        info['commit'] = commit
    return info


def _git_commit() -> Optional[str]:
    """The checkout's commit (``+`` when files differ from it), if any."""
    here = osp.dirname(osp.abspath(__file__))
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=here, capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain',
                                '--untracked-files=no'], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ('+' if dirty.stdout.strip() else '')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


#: (key, header, format spec or a callable value -> str)
Column = Tuple[str, str, object]


def print_table(rows: Sequence[Dict], columns: Sequence[Column],
                title: Optional[str] = None):
    """Prints ``rows`` as an aligned text table; missing values print as
    ``-``."""
    cells = [[_fmt(r.get(k), spec) for k, _, spec in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells])
              for i, (_, h, _) in enumerate(columns)]
    if title:
        print(title)
    print('  '.join(h.rjust(w) for (_, h, _), w in zip(columns, widths)))
    for c in cells:
        print('  '.join(v.rjust(w) for v, w in zip(c, widths)))


def _fmt(value, spec) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    if callable(spec):
        return spec(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def write_results(stem: str, rows: Sequence[Dict], meta: Dict) -> List[str]:
    """Writes ``<stem>.csv`` (one line per row, the union of the keys as
    columns) and ``<stem>.json`` (``{"meta": ..., "rows": ...}``); returns
    the paths."""
    os.makedirs(osp.dirname(stem) or '.', exist_ok=True)
    keys: List[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(stem + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_value(r.get(k)) for k in keys})
    with open(stem + '.json', 'w') as f:
        json.dump({'meta': meta, 'rows': list(rows)}, f, indent=1)
    return [stem + '.csv', stem + '.json']


def _csv_value(value):
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return '' if value is None else value


def style_axes(*axes):
    """A light grid and a small legend on each of ``axes``."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def new_figure(ncols: int = 1, nrows: int = 1, size: Tuple[float, float] =
               (5.0, 3.8)):
    """A matplotlib figure (Agg backend) with ``nrows x ncols`` axes,
    returned as a flat list."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(size[0] * ncols, size[1] * nrows))
    return fig, list(axes.reshape(-1))


def save_figure(fig, stem: str, meta: Dict) -> str:
    """Saves ``<stem>.png`` with a footnote naming the machine; returns the
    path."""
    import matplotlib.pyplot as plt
    note = (f"{meta.get('cpu', '?')}, {meta.get('cpu_count', '?')} cores, "
            f"{meta.get('threads', '?')} thread(s); "
            f"{meta.get('note', 'measured under load')}")
    fig.text(0.01, 0.005, note, fontsize=7, color='0.35', va='bottom')
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    os.makedirs(osp.dirname(stem) or '.', exist_ok=True)
    fig.savefig(stem + '.png', dpi=110)
    plt.close(fig)
    return stem + '.png'


def finish(args, rows: Sequence[Dict], columns: Sequence[Column], plot,
           title: str, extra_meta: Optional[Dict] = None,
           part: str = '') -> Dict:
    """Prints the table, writes ``<stem>.csv``/``.json`` and draws
    ``<stem>.png`` with ``plot(rows) -> figure`` (``None``: no figure);
    ``part`` is appended to the file stem. Returns ``{'rows', 'meta',
    'files'}``."""
    meta = machine_info(getattr(args, 'threads', None))
    meta.update({'title': title, 'quick': bool(getattr(args, 'quick', False)),
                 'note': 'measured under load (shared CPU); compare ratios '
                         'within one run only',
                 'argv': sys.argv[1:]})
    # allocator settings change speed and peak memory: record any given
    allocator = {k: v for k, v in os.environ.items()
                 if k.startswith(('MALLOC_', 'LD_PRELOAD'))}
    if allocator:
        meta['allocator_env'] = allocator
    meta.update(extra_meta or {})
    print_table(rows, columns, title)
    stem = output_stem(args, part)
    files = write_results(stem, rows, meta)
    fig = plot(rows)
    if fig is not None:
        files.append(save_figure(fig, stem, meta))
    print('wrote ' + ', '.join(files))
    return {'rows': list(rows), 'meta': meta, 'files': files}


def series(rows: Iterable[Dict], key: str, x: str, y: str
           ) -> Dict[str, Tuple[List, List]]:
    """Groups rows by ``key`` into ``{label: (xs, ys)}`` sorted by ``x``,
    for line plots."""
    out: Dict[str, Tuple[List, List]] = {}
    for r in sorted(rows, key=lambda r: r[x]):
        if r.get(y) is None:
            continue
        xs, ys = out.setdefault(str(r[key]), ([], []))
        xs.append(r[x])
        ys.append(r[y])
    return out


# --------------------------------------------------------------------------
# training throughput (train_throughput.py, graph_throughput.py)
def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def add_throughput_options(p: argparse.ArgumentParser, sizes: Sequence[str],
                           batches: int, hidden: int, T: int, B: int, S: int,
                           root: str):
    """The options shared by the training-throughput scripts."""
    p.add_argument('--sizes', nargs='+', default=list(sizes),
                   choices=list(sizes))
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--batches', type=int, default=batches,
                   help='timed batches (after one warm-up batch)')
    p.add_argument('--hidden', type=int, default=hidden)
    p.add_argument('--T', type=int, default=T)
    p.add_argument('--B', type=int, default=B)
    p.add_argument('--S', type=int, default=S)
    p.add_argument('--device', default='cuda' if cuda_available() else 'cpu')
    p.add_argument('--root', default=root)
    p.add_argument('--json', default=None,
                   help='also write the rows to this JSON file')
    p.add_argument('--compile', choices=['auto', 'on', 'off'],
                   default='auto',
                   help="torch.compile the refinement steps; 'auto' "
                        "(default): on CUDA only, as fit does")
    p.set_defaults(threads=2)


def training_throughput_row(args, key: Dict, make_dataset, make_model,
                            loss_fn) -> Dict:
    """One row of a training-throughput script: backprop with skips
    (``args.T``, ``args.B``, ``args.S``, Adam 3e-4) on ``args.batches + 1``
    batches of ``make_dataset(num_samples)`` (the first a warm-up), timed by
    :func:`time_training`, with the peak memory over the RSS after the
    imports. ``key`` (e.g. the size) leads the row."""
    import torch
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.train import BackpropWithSkips
    probe = MemoryProbe()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == 'cpu':
        torch.set_flush_denormal(True)  # as fit's Run does
    ds = make_dataset(args.batch_size * (args.batches + 1))
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False)
    model = make_model().to(device)
    compiled = getattr(args, 'compile', 'off') == 'on' or (
        getattr(args, 'compile', 'off') == 'auto' and device.type == 'cuda')
    if compiled:  # as fit does (the warm-up batch compiles)
        from torch_geometric_hyper.train import compile_loss, compile_model
        compile_model(model)
        compile_loss(loss_fn)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer = BackpropWithSkips(args.T, args.B, args.S, seed=0)
    batches = []
    for b in list(loader)[:args.batches + 1]:
        if 'num_hyperedges' in b:  # as Run.to_device keeps them
            b.num_hyperedges_host = b.num_hyperedges.tolist()
        batches.append(b.to(device))
    res = time_training(lambda b: trainer(model, opt, loss_fn, b), batches,
                        device)
    return {**key, 'batch_size': args.batch_size, 'hidden': args.hidden,
            'T': args.T, 'B': args.B, 'S': args.S, 'device': str(device),
            'threads': args.threads, 'compiled': compiled, **res,
            'samples_per_s': args.batch_size / res['seconds_per_batch'],
            **probe.report()}


def cuda_info(device) -> Dict:
    """For a CUDA device, ``gpu_name`` and ``cuda_peak_mib``, the most
    memory torch's allocator held on it since the process started or its
    peak statistics were last reset; empty for other devices."""
    import torch
    device = torch.device(device)
    if device.type != 'cuda':
        return {}
    return {'gpu_name': torch.cuda.get_device_name(device),
            'cuda_peak_mib': torch.cuda.max_memory_allocated(device) / 2**20}


def time_step(step, batch, cuda: bool) -> float:
    """Wall seconds of ``step(batch)``, the device synchronised on both
    sides when ``cuda``."""
    import torch
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    step(batch)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def time_training(step, batches, device) -> Dict[str, float]:
    """Runs ``step(batch)`` on each batch (the first one a warm-up) and
    returns ``seconds_per_batch`` (mean of the others) and, on CUDA,
    ``cuda_peak_mib`` and ``gpu_name`` (:func:`cuda_info`)."""
    import torch
    cuda = torch.device(device).type == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = [time_step(step, batch, cuda) for batch in batches][1:]
    return {'seconds_per_batch': sum(times) / len(times),
            **cuda_info(device)}


def throughput_main(script: str, argv: Sequence[str], args, run_one,
                    columns: Sequence[Column], title: str,
                    configs: Optional[Sequence[Dict]] = None,
                    bar_label: Callable[[Dict], str] = lambda r: str(
                        r['size'])) -> Dict:
    """Parent/worker logic of a throughput script: in a worker, runs
    ``run_one(args, size)`` (or ``run_one(args, config)`` when ``configs``
    is given) and emits its row (or ``{'rows': [...]}``, several rows);
    in the parent, runs one fresh worker per
    size of ``args.sizes`` (or per config) and finishes with a table, the
    CSV/JSON files and a bar chart of samples/s and peak memory (bars
    named by ``bar_label(row)``)."""
    whole_config = configs is not None

    def worker(args, cfg):
        return run_one(args, cfg if whole_config else cfg['size'])

    cfg = worker_config(args)
    if cfg is not None:
        return emit(worker(args, cfg))
    if configs is None:
        configs = [{'size': size} for size in args.sizes]
    rows = []
    for c in configs:  # a worker returns a row, or {'rows': [...]}
        out = run_config(script, argv, args, dict(c), worker)
        rows.extend(out['rows'] if 'rows' in out else [out])

    def plot(rows):
        fig, axes = new_figure(2)
        labels = [bar_label(r) for r in rows]
        for ax, key, label in (
                (axes[0], 'samples_per_s', 'samples / s'),
                (axes[1], 'peak_minus_imports_mib',
                 'peak RSS - RSS after imports (MiB)')):
            ax.bar(labels, [r[key] for r in rows], color='C0')
            ax.set_xlabel('set size n')
            ax.set_ylabel(label)
            ax.set_title('measured under load', fontsize=9)
            ax.grid(alpha=0.3, axis='y')
        return fig

    out = finish(args, rows, columns, plot, title)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return out


THROUGHPUT_COLUMNS: List[Column] = [
    ('size', 'n', ''), ('batch_size', 'batch', 'd'),
    ('device', 'device', ''), ('threads', 'thr', 'd'),
    ('seconds_per_batch', 's/batch', '.3f'),
    ('samples_per_s', 'samples/s', '.1f'),
    ('rss_after_imports_mib', 'RSS imports MiB', '.0f'),
    ('peak_rss_mib', 'peak RSS MiB', '.0f'),
    ('peak_minus_imports_mib', 'peak-imports MiB', '.0f'),
    ('cuda_peak_mib', 'CUDA MiB', '.0f')]


def throughput_columns(*extra: Column) -> List[Column]:
    """:data:`THROUGHPUT_COLUMNS` with a script's own columns after the
    size."""
    return THROUGHPUT_COLUMNS[:1] + list(extra) + THROUGHPUT_COLUMNS[1:]
