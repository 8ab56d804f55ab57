"""Jets: the refiner against Set2Graph for the same CPU budget.

Trains the HypergraphRefiner (matched BCE + soft F1, ``PartitionLoss``) and
the package's Set2Graph (k=2, BCE of its pair scores against the "same
vertex" adjacency) on ParticlePartitioning, each for ``--cpu-minutes`` of
process CPU time per seed, through the package's own ``fit`` (mini-batches
of 128 jets, Adam 3e-4, no early stopping). Both are validated about every
``--val-every-cpu-minutes`` (converted to a number of batches from the CPU
time of a few calibration batches of each model, or ``--val-every``
batches), keep the checkpoint of the best validation ARI over all jets
(``--select f1``: F1, the package's default selection),
and are scored on the test split per flavour (F1, RI, ARI of
``torch_geometric_hyper.train.partition_metrics``) beside the two trivial
partitions ("one vertex": all tracks together; "each alone").

Writes ``<out>/jets.csv`` / ``.json`` (rows: model, seed, flavour, n, f1,
ri, ari, cpu_minutes, and f1_last / ri_last / ari_last of the final
weights; the baselines with seed None and 0 CPU-minutes; the
validation history of each run under ``meta.curves``) and ``jets.png``
(validation ARI against training CPU-minutes, one panel per flavour, the
one-vertex floor of the validation split dashed).

    python benchmarks/jets.py --root /tmp/jets --raw-dir /work/shared/data/jets \\
        --cpu-minutes 60 --seeds 0 1 --threads 2 --out benchmarks/results
    python benchmarks/jets.py --root /tmp/jets --quick   # 1 CPU-minute, 1 seed

``--throughput N`` trains nothing to a budget: it times each model's
per-batch training step (``train.training_step``, what ``fit`` runs) on
one warm-up and ``N`` timed mini-batches of ``--batch-size`` and writes
samples/s and peak RSS per model (rows: model, batch_size,
seconds_per_batch, samples_per_s, peak_rss_mib), to compare with the
reference harness's ``bench_jets.py`` at the same settings (batch 2048,
T=16, B=4, S=2, 2 threads):

    python benchmarks/jets.py --root /tmp/jets --throughput 4 \\
        --batch-size 2048 --models refiner --threads 2 --name jets_throughput
"""
from __future__ import annotations

import math
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

MODELS = ['refiner', 'set2graph']
FLAVOURS = ['bottom', 'charm', 'light', 'all']
BASELINES = ['one vertex', 'each alone']
CALIBRATION_BATCHES = 10


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'jets')
    p.add_argument('--root', default=osp.join('data', 'jets'),
                   help='dataset root (raw/ and processed/ below it)')
    p.add_argument('--raw-dir', default=None,
                   help='where the three ROOT files are (flat or in train/, '
                        'validation/, test/); symlinked into ROOT/raw')
    p.add_argument('--models', nargs='+', default=MODELS, choices=MODELS)
    p.add_argument('--seeds', nargs='+', type=int, default=None,
                   help='default: 0 1 (0 with --quick)')
    p.add_argument('--cpu-minutes', type=float, default=None,
                   help='training budget in process CPU minutes per model '
                        'and seed (all threads counted); default 60 (1 '
                        'with --quick)')
    p.add_argument('--val-every-cpu-minutes', type=float, default=None,
                   help='validate about this often (default: a tenth of '
                        'the budget)')
    p.add_argument('--val-every', type=int, default=None,
                   help='validate every N batches instead (no calibration)')
    p.add_argument('--select', choices=['ari', 'f1'], default='ari',
                   help='validation metric over all jets that picks the '
                        'checkpoint scored on the test split')
    p.add_argument('--jobs', type=int, default=1,
                   help='train this many (model, seed) runs at once, each '
                        'in its own process with --threads threads (the '
                        'CPU budget is per process, so this only saves '
                        'wall time)')
    p.add_argument('--throughput', type=int, default=None, metavar='N',
                   help='only time N training batches per model (after '
                        'one warm-up): samples/s and peak RSS')
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--eval-batch-size', type=int, default=1024)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--hidden', type=int, default=128, help='refiner width')
    p.add_argument('--max-edges', type=int, default=10,
                   help='refiner slots')
    p.add_argument('--T', type=int, default=16,
                   help='refiner iterations (training and evaluation)')
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--s2g-hidden', type=int, default=256)
    p.add_argument('--s2g-layers', type=int, default=3)
    p.add_argument('--s2g-tuple-channels', type=int, default=192)
    p.add_argument('--s2g-mlp-layers', type=int, default=1)
    args = p.parse_args(argv)
    return C.apply_defaults(args, seeds=[0] if args.quick else [0, 1],
                            cpu_minutes=1.0 if args.quick else 60.0)


def load_data(args, quiet=False):
    from torch_geometric_hyper.datasets import ParticlePartitioning, \
        link_raw_files
    if args.raw_dir is not None:
        link_raw_files(args.raw_dir, args.root)
    data = [ParticlePartitioning(args.root, s, log=False)
            for s in ('train', 'val', 'test')]
    if quiet:
        return data
    print('jets: ' + ', '.join(f'{s} {len(d)}' for s, d in
                               zip(('train', 'val', 'test'), data)) +
          f'; most vertices in train: {data[0].max_hyperedges}', flush=True)
    return data


def build(args, model_name):
    from torch_geometric_hyper.nn import HypergraphRefiner, PartitionLoss, \
        SameVertexBCELoss, Set2Graph
    if model_name == 'set2graph':
        return (Set2Graph(10, args.s2g_hidden, k=2,
                          num_layers=args.s2g_layers,
                          tuple_channels=args.s2g_tuple_channels,
                          mlp_layers=args.s2g_mlp_layers),
                SameVertexBCELoss())
    return (HypergraphRefiner(10, args.hidden, args.max_edges, args.T,
                              checkpoint='auto'), PartitionLoss())


def num_iterations(args, model_name):
    return args.T if model_name == 'refiner' else None


def evaluator(T, select='f1'):
    """What ``partition_evaluator(T)`` returns (F1, RI, ARI over all jets)
    plus each flavour's ARI for the curves, and the metric over all jets
    that picks the checkpoint (``select``) as ``'score'``."""
    from torch_geometric_hyper.train import partition_metrics

    def evaluate(model, batches):
        res = partition_metrics(model, batches, T)
        out = {k: res['all'][k] for k in ('f1', 'ri', 'ari')}
        out.update({f'ari_{f}': res[f]['ari'] for f in FLAVOURS[:3]
                    if f in res})
        out['score'] = out[select]
        return out
    return evaluate


def config(args, seed, out, **kw):
    from torch_geometric_hyper.train import TrainConfig
    return TrainConfig(T=args.T, B=args.B, S=args.S,
                       batch_size=args.batch_size,
                       eval_batch_size=args.eval_batch_size, lr=args.lr,
                       patience=0, progress=False, out=out,
                       threads=args.threads, seed=seed, device='cpu', **kw)


def calibrate(args, model_name, train, tmp):
    """Training CPU seconds per batch of ``model_name`` (a fresh model
    trained for a few batches, thrown away)."""
    import torch
    from torch_geometric_hyper.train import fit
    torch.manual_seed(12345)
    model, loss_fn = build(args, model_name)
    res = fit(model, loss_fn, train, None,
              config(args, 12345, osp.join(tmp, f'calibrate_{model_name}'),
                     max_steps=CALIBRATION_BATCHES))
    return res.cpu_seconds / max(res.steps, 1)


def train_one(args, model_name, seed, data, val_every, tmp):
    import torch
    from torch_geometric_hyper.train import Run, fit, partition_metrics
    from torch_geometric_hyper.utils import load_checkpoint
    train, val, test = data
    torch.manual_seed(seed)
    model, loss_fn = build(args, model_name)
    cfg = config(args, seed, osp.join(tmp, f'{model_name}_s{seed}'),
                 max_cpu_minutes=args.cpu_minutes, val_every=val_every,
                 epochs=10 ** 6)
    t0 = time.perf_counter()
    result = fit(model, loss_fn, train, val, config=cfg,
                 evaluate=evaluator(num_iterations(args, model_name),
                                    args.select))
    wall = time.perf_counter() - t0
    run = Run(cfg)
    res = {}
    # the best validation checkpoint (the table), and the final weights
    # (F1 can favour the one-vertex answer that ARI does not)
    for which, path in (('best', result.best_path),
                        ('last', result.last_path)):
        model.load_state_dict(load_checkpoint(path)['model'])
        model.eval()
        with torch.no_grad():
            res[which] = partition_metrics(model, run.batches(
                test, args.eval_batch_size),
                num_iterations(args, model_name))
    last, res = res['last'], res['best']
    best_cpu = next((h['cpu_seconds'] for h in result.history
                     if h['step'] == result.best_step), math.nan)
    params = sum(p.numel() for p in model.parameters())
    print(f'{model_name} seed {seed} ({params:,} parameters): '
          f'{result.steps} batches, {result.cpu_seconds / 60:.2f} CPU-min, '
          f'{wall / 60:.2f} wall-min (with validations); best val '
          f'{args.select} {result.best_metric:.4f} at batch {result.best_step}', flush=True)
    rows = [{'model': model_name, 'seed': seed, 'flavour': f,
             'n': res[f]['n'], 'f1': res[f]['f1'], 'ri': res[f]['ri'],
             'ari': res[f]['ari'],
             'cpu_minutes': result.cpu_seconds / 60,
             'best_cpu_minutes': best_cpu / 60,
             'batches': result.steps, 'best_batch': result.best_step,
             'val_every': val_every, 'wall_minutes': wall / 60,
             'parameters': params,
             **{f'{k}_last': last[f][k] for k in ('f1', 'ri', 'ari')}}
            for f in FLAVOURS if f in res]
    curve = [{'model': model_name, 'seed': seed, 'step': h['step'],
              'cpu_minutes': h['cpu_seconds'] / 60,
              **{k: h[k] for k in h if k == 'f1' or k == 'ri'
                 or k.startswith('ari') or k == 'score'}}
             for h in result.history]
    return rows, curve


def _train_worker(args, model_name, seed, val_every, tmp):
    """One (model, seed) run in a fresh process (``--jobs``)."""
    import torch
    torch.set_num_threads(args.threads)
    return train_one(args, model_name, seed, load_data(args, quiet=True),
                     val_every, tmp)


def train_all(args, data, tmp, val_cpu_min):
    """Every (model, seed) run, ``--jobs`` at a time, seed-major so that
    the first runs to end compare the models on one seed."""
    calibration, plan = {}, []
    for model_name in args.models:
        if args.val_every:
            val_every = args.val_every
        else:
            per_batch = calibrate(args, model_name, data[0], tmp)
            val_every = max(1, round(val_cpu_min * 60 / per_batch))
            calibration[model_name] = {'cpu_seconds_per_batch': per_batch,
                                       'val_every': val_every}
            print(f'{model_name}: {per_batch:.3f} CPU-s per batch of '
                  f'{args.batch_size}; validating every {val_every} '
                  f'batches (~{val_cpu_min:.2f} CPU-min)', flush=True)
        plan += [(seed, model_name, val_every) for seed in args.seeds]
    plan.sort(key=lambda p: (args.seeds.index(p[0]),
                             args.models.index(p[1])))
    rows, curves = [], []
    if args.jobs <= 1:
        for seed, model_name, val_every in plan:
            r, c = train_one(args, model_name, seed, data, val_every, tmp)
            rows += r
            curves += c
        return rows, curves, calibration
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(args.jobs,
                             mp_context=mp.get_context('spawn')) as pool:
        futures = [pool.submit(_train_worker, args, m, s, v, tmp)
                   for s, m, v in plan]
        for f in futures:
            r, c = f.result()
            rows += r
            curves += c
    return rows, curves, calibration


def baseline_rows(dataset):
    from torch_geometric_hyper.metrics import partition_baselines
    return [{'model': name, 'seed': None, 'flavour': f, 'n': res[f]['n'],
             'f1': res[f]['f1'], 'ri': res[f]['ri'], 'ari': res[f]['ari'],
             'cpu_minutes': 0.0}
            for name, res in partition_baselines(dataset).items()
            for f in FLAVOURS if f in res]


def summary(rows):
    """Mean test ARI over the seeds per model and flavour, and the
    refiner's lead over Set2Graph."""
    out = []
    for f in FLAVOURS:
        mean = {}
        for m in MODELS:
            vals = [r['ari'] for r in rows
                    if r['model'] == m and r['flavour'] == f]
            if vals:
                mean[m] = sum(vals) / len(vals)
        entry = {'flavour': f, 'seeds': len([r for r in rows if r['model']
                                             == 'refiner' and
                                             r['flavour'] == f])}
        entry.update({f'ari_{m}': v for m, v in mean.items()})
        if len(mean) == 2:
            entry['refiner_minus_set2graph'] = mean['refiner'] - \
                mean['set2graph']
        out.append(entry)
    return out


def plot(rows, curves, val_floor):
    if not curves:
        return None
    fig, axes = C.new_figure(ncols=len(FLAVOURS), size=(3.8, 3.4))
    colours = {'refiner': 'C0', 'set2graph': 'C1'}
    styles = ['-', '--', ':', '-.']
    for ax, f in zip(axes, FLAVOURS):
        key = 'ari' if f == 'all' else f'ari_{f}'
        runs = sorted({(c['model'], c['seed']) for c in curves})
        for model, seed in runs:
            pts = [c for c in curves if c['model'] == model and
                   c['seed'] == seed and key in c]
            if not pts:
                continue
            ax.plot([c['cpu_minutes'] for c in pts], [c[key] for c in pts],
                    styles[seed % len(styles)], marker='o', markersize=3,
                    color=colours.get(model, 'C2'),
                    label=f'{model} s{seed}')
        if f in val_floor:
            ax.axhline(val_floor[f], color='0.5', ls='--', lw=1,
                       label='one vertex')
        ax.set_title(f)
        ax.set_xlabel('training CPU-minutes')
        ax.set_ylabel('validation ARI')
    C.style_axes(*axes)
    return fig


def throughput(args, train) -> dict:
    """Samples/s of each model's training step (see the module
    docstring)."""
    import resource

    import torch
    from torch_geometric_hyper.train import (Run, make_trainer,
                                             training_step)
    rows, tmp = [], tempfile.mkdtemp(prefix='jets_throughput_')
    for model_name in args.models:
        run = Run(config(args, 0, osp.join(tmp, model_name)))
        torch.manual_seed(0)
        model, loss_fn = build(args, model_name)
        model = run.prepare(model)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        trainer = make_trainer(run.config, model_name == 'refiner')
        batches = list(run.batches(train, args.batch_size))
        batches = batches[:args.throughput + 1]
        if len(batches) < 2:
            raise ValueError(f'--throughput needs at least 2 mini-batches '
                             f'of --batch-size {args.batch_size}; the '
                             f'training split has {len(train)} jets')
        times = []
        for step, batch in enumerate(batches):
            t0 = time.perf_counter()
            training_step(model, trainer, opt, loss_fn, batch, step=step,
                          context=run)
            times.append(time.perf_counter() - t0)
        sets = sum(b.num_graphs for b in batches[1:])
        rows.append({'model': model_name, 'batch_size': args.batch_size,
                     'batches': len(times) - 1,
                     'seconds_per_batch': sum(times[1:]) / len(times[1:]),
                     'samples_per_s': sets / sum(times[1:]),
                     'peak_rss_mib': resource.getrusage(
                         resource.RUSAGE_SELF).ru_maxrss / 1024,
                     'threads': args.threads})
    shutil.rmtree(tmp, ignore_errors=True)
    columns = [('model', 'model', ''), ('batch_size', 'batch', 'd'),
               ('batches', 'timed', 'd'),
               ('seconds_per_batch', 's/batch', '.3f'),
               ('samples_per_s', 'samples/s', '.1f'),
               ('peak_rss_mib', 'peak RSS MiB', '.0f')]
    def bars(rows):
        fig, axes = C.new_figure(1)
        axes[0].bar([r['model'] for r in rows],
                    [r['samples_per_s'] for r in rows])
        axes[0].set_ylabel(f'training samples/s, batch {args.batch_size}')
        C.style_axes(axes[0])
        return fig

    return C.finish(args, rows, columns, bars,
                    title=f'Jets training throughput (T={args.T}, '
                          f'B={args.B}, S={args.S}, {args.threads} '
                          f'thread(s), peak RSS of the process so far)')


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data = load_data(args)
    if args.throughput:
        return throughput(args, data[0])
    rows = baseline_rows(data[2])
    val_floor = {f: r['ari'] for f, r in (
        (r['flavour'], r) for r in baseline_rows(data[1])
        if r['model'] == 'one vertex')}
    val_cpu_min = args.val_every_cpu_minutes or args.cpu_minutes / 10
    tmp = tempfile.mkdtemp(prefix='jets_bench_')
    try:
        r, curves, calibration = train_all(args, data, tmp, val_cpu_min)
        rows += r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    order = {m: i for i, m in enumerate(MODELS + BASELINES)}
    rows.sort(key=lambda r: (order[r['model']], r['seed'] or 0,
                             FLAVOURS.index(r['flavour'])))
    summ = summary(rows)
    wall = (time.perf_counter() - t_start) / 60
    columns = [('model', 'model', ''), ('seed', 'seed', ''),
               ('flavour', 'flavour', ''), ('n', 'n', 'd'),
               ('f1', 'F1', '.4f'), ('ri', 'RI', '.4f'),
               ('ari', 'ARI', '.4f'), ('cpu_minutes', 'CPU-min', '.2f'),
               ('best_cpu_minutes', 'best at', '.2f'),
               ('batches', 'batches', ''),
               ('ari_last', 'ARI last', '.4f')]
    out = C.finish(
        args, rows, columns, lambda _: plot(rows, curves, val_floor),
        title=f'Jets, test split, best validation {args.select} checkpoint '
              f'({args.cpu_minutes:g} CPU-min per model and seed, '
              f'{args.threads} thread(s), batch {args.batch_size})',
        extra_meta={'settings': {k: v for k, v in vars(args).items()
                                 if not k.startswith('_') and
                                 k != 'worker'},
                    'calibration': calibration, 'curves': curves,
                    'summary': summ, 'val_one_vertex_ari': val_floor,
                    'wall_minutes': wall})
    C.print_table(summ, [('flavour', 'flavour', ''),
                         ('seeds', 'seeds', ''),
                         ('ari_refiner', 'refiner ARI', '.4f'),
                         ('ari_set2graph', 'set2graph ARI', '.4f'),
                         ('refiner_minus_set2graph', 'difference', '+.4f')],
                  'Mean test ARI over the seeds')
    print(f'total wall time {wall:.2f} min', flush=True)
    out['summary'] = summ
    return out


if __name__ == '__main__':
    main()
