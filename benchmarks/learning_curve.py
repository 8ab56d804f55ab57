"""Learning curves: validation F1 against batches, wall and CPU seconds.

Trains any convex-hull model (``--models``) with several seeds
(``--seeds``), each run in a fresh process, and evaluates every
``--eval-every`` batches on the same validation sets: F1 in the strict
convention and as the reference code counts it (``f1_reference``), the
strict F1 after dropping repeated hyperedges when decoding (``f1_dedup``)
and the repeated hyperedges per set (``duplicates``); for a model with
candidate nodes per slot (``refiner_k<K>``) also ``coverage``, the share
of target hyperedges whose nodes are all candidates of one slot (what it
can predict at all, ``candidate_coverage``). The
evaluation time is excluded from the clocks. Reports per model and
evaluation point the median and the spread (min, max) over seeds, and per
model the median time to reach ``--target`` reference F1 (wall seconds,
training CPU seconds and batches; runs that never reach it count as not
reached). Writes CSV (one row per run and evaluation), JSON and a PNG
(median with min-max band against batches and wall seconds).

With two models or more, a paired table compares each model with the
first of ``--models`` (``--baseline``) seed by seed: at each evaluation
point, the mean, standard deviation and standard error of the difference
in F1 over the seeds both ran, with a 95 % t interval. ``--paired-from
B`` adds a row that first averages each run's F1 over its evaluations at
B batches or more (less noise than one evaluation). ``--collect FILE ...``
trains nothing: it summarises the runs stored in earlier JSON outputs of
this script, which must share their settings.

    python benchmarks/learning_curve.py --models refiner set_transformer \\
        --seeds 1 2 3 --batches 300 --eval-every 25 --threads 2
    python benchmarks/learning_curve.py --quick     # tiny, about a minute
    python benchmarks/learning_curve.py --models refiner refiner_k16 \\
        --collect benchmarks/results/a.json benchmarks/results/b.json \\
        --paired-from 300 --name paired_ab

Models: ``refiner`` (backprop with skips, activation checkpointing as the
model's default), ``refiner_nockpt`` (the same with checkpointing off),
``refiner_k16`` (16 candidate nodes per slot, ``num_candidates=16``; any
``refiner_k<K>`` sets another K),
``stacked``, ``set_transformer``, ``slot_attention`` (one-shot, matched
loss).
"""
import argparse
import os
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

MODELS = ('refiner', 'refiner_nockpt', 'refiner_k16', 'stacked',
          'set_transformer', 'slot_attention')


def candidates_of(name: str):
    """K of a ``refiner_k<K>`` model name (K >= 1), else ``None``."""
    k = name[len('refiner_k'):] if name.startswith('refiner_k') else ''
    return int(k) if k.isdigit() and int(k) >= 1 else None


def model_name(text: str) -> str:
    """Checks a ``--models`` entry: one of :data:`MODELS`, or
    ``refiner_k<K>`` (K candidate nodes per slot, K >= 1)."""
    if text in MODELS or candidates_of(text) is not None:
        return text
    raise argparse.ArgumentTypeError(
        f"unknown model '{text}': use one of {', '.join(MODELS)}, or "
        f"refiner_k<K> for K candidate nodes per slot (e.g. refiner_k24)")


def model_order(name: str):
    """Sort key: the order of :data:`MODELS`, refiner_k<K> by K after
    refiner_k16's place."""
    if name in MODELS:
        return (MODELS.index(name), 0)
    return (MODELS.index('refiner_k16'), candidates_of(name))


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'learning_curve')
    p.add_argument('--models', nargs='+', default=['refiner'],
                   type=model_name, metavar='MODEL',
                   help=f"{', '.join(MODELS)}, or refiner_k<K>")
    p.add_argument('--seeds', nargs='+', type=int, default=[1, 2, 3])
    p.add_argument('--num-points', type=int, default=30)
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--T', type=int, default=16)
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--assignment', default='per_step',
                   choices=('per_step', 'per_update'),
                   help="the matched loss's matching of an update's B "
                        "steps: each on its own costs, or one assignment "
                        "on their summed costs (MatchedIncidenceLoss "
                        "assignment=)")
    p.add_argument('--batches', type=int, default=None,
                   help='training batches per run')
    p.add_argument('--eval-every', type=int, default=None,
                   help='batches between evaluations')
    p.add_argument('--train-seconds', type=float, default=None,
                   help='also stop a run once its training wall time '
                   'reaches this (evaluated there); --batches stays the cap')
    p.add_argument('--device', default='cpu',
                   help="where to train ('cuda' for a GPU; the batch time "
                   'then waits for the device)')
    p.add_argument('--train-samples', type=int, default=None)
    p.add_argument('--val-samples', type=int, default=None)
    p.add_argument('--target', type=float, default=0.43,
                   help='reference F1 whose time to reach is reported')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    p.add_argument('--baseline', default=None, type=model_name,
                   help='model the others are compared with in the paired '
                        'table (default: the first of --models)')
    p.add_argument('--paired-from', type=int, default=None, metavar='B',
                   help='paired table: also compare the runs\' mean F1 '
                        'over their evaluations at B batches or more')
    p.add_argument('--collect', nargs='+', default=None, metavar='JSON',
                   help='train nothing; summarise the runs of these JSON '
                        'outputs of this script (same settings)')
    args = p.parse_args(argv)
    quick = args.quick
    C.apply_defaults(args, hidden=16 if quick else 128,
                     batch_size=16 if quick else 64,
                     batches=12 if quick else 300,
                     eval_every=4 if quick else 25,
                     train_samples=256 if quick else 20_000,
                     val_samples=32 if quick else 256)
    if quick:
        args.num_points = min(args.num_points, 10)
        args.T, args.B, args.S = min(args.T, 4), min(args.B, 2), \
            min(args.S, 2)
    for name in ('batches', 'eval_every', 'batch_size', 'hidden'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be positive')
    if args.baseline is None:
        args.baseline = args.models[0]
    elif args.baseline not in args.models:
        p.error(f"--baseline {args.baseline} is not one of --models "
                f"{' '.join(args.models)}")
    return args


# settings that change what a run learns: runs collected together must
# share them
SETTINGS = ('num_points', 'hidden', 'T', 'B', 'S', 'batch_size', 'lr',
            'train_samples', 'val_samples', 'quick', 'assignment')
#: the value of a setting that outputs older than it ran with
SETTING_DEFAULTS = {'assignment': 'per_step'}


def settings(args) -> dict:
    return {k: getattr(args, k) for k in SETTINGS}


def collect(args, files):
    """Rows of earlier runs (JSON outputs of this script) of ``--models``,
    checked to share this invocation's settings; a model and seed may come
    from one file only."""
    import json
    rows, origin = [], {}
    want = settings(args)
    for path in files:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"--collect: no file '{path}'; pass the .json outputs of "
                f"benchmarks/learning_curve.py")
        with open(path) as f:
            data = json.load(f)
        meta = data.get('meta', {})
        got = meta.get('settings')
        if got is None:  # older outputs: re-read their command line
            got = settings(parse_args(list(meta.get('argv', []))))
        got = {**SETTING_DEFAULTS, **got}
        diff = {k: (got.get(k), v) for k, v in want.items()
                if got.get(k) != v}
        if diff:
            raise ValueError(
                f"--collect: '{path}' ran with other settings than these: "
                + ', '.join(f'{k} {a} (here {b})'
                            for k, (a, b) in diff.items())
                + '; pass the same options as its runs used')
        for r in data['rows']:
            if r['model'] not in args.models:
                continue
            key = (r['model'], r['seed'])
            if origin.setdefault(key, path) != path:
                raise ValueError(
                    f"--collect: {r['model']} seed {r['seed']} is in both "
                    f"'{origin[key]}' and '{path}'; leave one out")
            rows.append(dict(r))
    if not rows:
        raise ValueError(f"--collect: no runs of {' '.join(args.models)} "
                         f"in {' '.join(files)}")
    return rows


def _t95(dof: int) -> float:
    from scipy.stats import t
    return float(t.ppf(0.975, dof))


def paired(rows, baseline: str, models, paired_from=None):
    """Seed-by-seed differences ``model - baseline`` in reference and strict
    F1 at each evaluation point both runs of a seed have, and (with
    ``paired_from``) of each run's mean F1 over its evaluations at
    ``paired_from`` batches or more."""
    runs = {}
    for r in rows:
        runs.setdefault((r['model'], r['seed']), {})[r['batches']] = r
    out = []

    def stats(model, label, diffs_ref, diffs_strict, n_batches):
        n = len(diffs_ref)
        mean = statistics.fmean(diffs_ref)
        sd = statistics.stdev(diffs_ref) if n > 1 else float('nan')
        se = sd / n ** 0.5 if n > 1 else float('nan')
        half = _t95(n - 1) * se if n > 1 else float('nan')
        out.append({'model': model, 'baseline': baseline, 'batches': label,
                    'at_batches': n_batches, 'seeds': n,
                    'mean_diff_reference': mean, 'sd_diff_reference': sd,
                    'se_diff_reference': se,
                    'ci95_low_reference': mean - half,
                    'ci95_high_reference': mean + half,
                    'median_diff_reference': statistics.median(diffs_ref),
                    'mean_diff_strict': statistics.fmean(diffs_strict),
                    'wins': sum(d > 0 for d in diffs_ref)})

    for model in models:
        if model == baseline:
            continue
        seeds = sorted(s for (m, s) in runs if m == model
                       and (baseline, s) in runs)
        if not seeds:
            continue
        points = sorted(set.intersection(*[
            set(runs[(model, s)]) & set(runs[(baseline, s)])
            for s in seeds]))
        for b in points:
            a = [runs[(model, s)][b] for s in seeds]
            z = [runs[(baseline, s)][b] for s in seeds]
            stats(model, str(b), [x['f1_reference'] - y['f1_reference']
                                  for x, y in zip(a, z)],
                  [x['f1'] - y['f1'] for x, y in zip(a, z)], b)
        late = [b for b in points
                if paired_from is not None and b >= paired_from]
        if late:
            def avg(run, key):
                return statistics.fmean(run[b][key] for b in late)
            stats(model, f'mean {late[0]}-{late[-1]}',
                  [avg(runs[(model, s)], 'f1_reference') -
                   avg(runs[(baseline, s)], 'f1_reference') for s in seeds],
                  [avg(runs[(model, s)], 'f1') - avg(runs[(baseline, s)],
                                                     'f1') for s in seeds],
                  late[-1])
    return out


def build(args, model_name: str, max_edges: int):
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          SetTransformer, SlotAttention,
                                          StackedHypergraphRefiner)
    from torch_geometric_hyper.train import BackpropWithSkips, OneShot
    d, T = args.hidden, args.T
    k = candidates_of(model_name)
    if model_name in ('refiner', 'refiner_nockpt', 'stacked') or k:
        Model = StackedHypergraphRefiner if model_name == 'stacked' \
            else HypergraphRefiner
        kw = {'checkpoint': False} if model_name == 'refiner_nockpt' else {}
        if k:
            kw = {'num_candidates': k}
        model = Model(3, d, max_edges, T, **kw)
        trainer = BackpropWithSkips(T, args.B, args.S, seed=args.seed)
        return model, trainer, {'num_iterations': T}
    Model = SetTransformer if model_name == 'set_transformer' \
        else SlotAttention
    return Model(3, d, max_edges), OneShot(), {}


def run_one(args, cfg):
    """One model and seed: :func:`fit` for ``--batches`` batches (or
    ``--train-seconds`` of training), validating every ``eval_every``
    batches and at the end; returns ``{'points': [...]}``, one per
    validation with its batches and training wall and CPU seconds
    (evaluation excluded)."""
    import tempfile

    import torch

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    from torch_geometric_hyper.train import TrainConfig, fit
    seed = cfg['seed']
    args.seed = seed
    torch.manual_seed(seed)
    n = args.num_points
    train_ds = ConvexHull(args.root, 'train', num_points=n,
                          num_samples=args.train_samples, log=False)
    val_ds = ConvexHull(args.root, 'val', num_points=n,
                        num_samples=args.val_samples, log=False)
    m = max(train_ds.max_hyperedges, val_ds.max_hyperedges)
    model, trainer, eval_kw = build(args, cfg['model'], m)
    evaluate = evaluator(eval_kw, candidates_of(cfg['model']) is not None)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            batch_size=args.batch_size, eval_batch_size=256, lr=args.lr,
            max_steps=args.batches, val_every=args.eval_every,
            max_minutes=(None if args.train_seconds is None
                         else args.train_seconds / 60),
            epochs=10**9, patience=0, seed=seed, threads=args.threads,
            device=args.device, out=out, progress=False)
        loss_fn = MatchedIncidenceLoss(assignment=args.assignment)
        res = fit(model, loss_fn, train_ds, val_ds,
                  config=config, evaluate=evaluate, trainer=trainer,
                  format_val=lambda step, r, _: (
                      f"  {cfg['model']} seed {seed}, batch {step}: F1 "
                      f"{r['f1']:.3f} (reference {r['f1_reference']:.3f})"))
    return {'points': [{'batches': h['step'], 'wall_s': h['train_seconds'],
                        'cpu_s': h['cpu_seconds'],
                        **{k: h[k] for k in POINT_KEYS if k in h}}
                       for h in res.history]}


#: The metrics of an evaluation point.
POINT_KEYS = ('f1', 'f1_reference', 'f1_dedup', 'duplicates', 'coverage')


def evaluator(eval_kw, candidates: bool):
    """The validation of a run: the hyperedge F1 (strict, reference,
    deduplicated) and duplicates per set, and with ``candidates`` the
    share of target hyperedges some slot's candidates hold
    (``coverage``)."""
    import torch

    from torch_geometric_hyper.metrics import candidate_coverage
    from torch_geometric_hyper.train import eval_slots, hyperedge_evaluator
    scores = hyperedge_evaluator(edge_size=3, **eval_kw)
    if not candidates:
        return scores

    def evaluate(model, batches):
        batches = list(batches)
        out = scores(model, batches)
        # the same slots (drawn per set) as the scores' forward pass
        cov = [candidate_coverage(model(b.x, b.batch, b.num_graphs,
                                        **eval_slots(model, b), **eval_kw), b)
               for b in batches]
        out['coverage'] = float(torch.cat(cov).double().mean())
        return out
    return evaluate


def summarise(rows, target):
    """Per model: median/min/max F1 at each evaluation point, and the
    median over seeds of the first wall/CPU seconds and batches at which
    the reference F1 reached ``target``."""
    out = []
    models = sorted({r['model'] for r in rows}, key=model_order)
    for model in models:
        runs = {}
        for r in rows:
            if r['model'] == model:
                runs.setdefault(r['seed'], []).append(r)
        reach = []
        for seed, pts in runs.items():
            hit = [p for p in sorted(pts, key=lambda p: p['batches'])
                   if p['f1_reference'] >= target]
            reach.append(hit[0] if hit else None)
        got = [h for h in reach if h is not None]

        def med(key):
            # not-reached runs count as infinitely late
            vals = sorted([h[key] for h in got] +
                          [float('inf')] * (len(reach) - len(got)))
            return statistics.median(vals) if vals else float('nan')
        last = [max(p, key=lambda p: p['batches']) for p in runs.values()]
        f1s = [p['f1_reference'] for p in last]
        out.append({'model': model, 'seeds': len(runs),
                    'reached': f'{len(got)}/{len(reach)}',
                    'median_wall_s_to_target': med('wall_s'),
                    'median_cpu_s_to_target': med('cpu_s'),
                    'median_batches_to_target': med('batches'),
                    'final_f1_reference_median': statistics.median(f1s),
                    'final_f1_reference_min': min(f1s),
                    'final_f1_reference_max': max(f1s),
                    'final_f1_median': statistics.median(
                        [p['f1'] for p in last]),
                    'final_f1_dedup_median': statistics.median(
                        [p['f1_dedup'] for p in last]),
                    'final_duplicates_median': statistics.median(
                        [p['duplicates'] for p in last])})
    return out


def plot(rows):
    fig, axes = C.new_figure(2)
    for i, model in enumerate(sorted({r['model'] for r in rows},
                                     key=model_order)):
        sub = [r for r in rows if r['model'] == model]
        for ax, x in ((axes[0], 'batches'), (axes[1], 'wall_s')):
            by_batch = {}
            for r in sub:
                by_batch.setdefault(r['batches'], []).append(r)
            xs, med, lo, hi = [], [], [], []
            for b in sorted(by_batch):
                group = by_batch[b]
                xs.append(statistics.median(g[x] for g in group))
                vals = [g['f1_reference'] for g in group]
                med.append(statistics.median(vals))
                lo.append(min(vals))
                hi.append(max(vals))
            ax.plot(xs, med, marker='.', color=f'C{i}', label=model)
            ax.fill_between(xs, lo, hi, color=f'C{i}', alpha=0.2)
    axes[0].set_xlabel('batches')
    axes[1].set_xlabel('training wall seconds')
    for ax in axes:
        ax.set_ylabel('validation F1 (reference metric)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def main(argv=None):
    started = C.start(parse_args, run_one, argv)
    if started is None:
        return None
    argv, args = started
    if args.collect:
        rows = collect(args, args.collect)
    else:
        rows = train_all(argv, args)
    summary = summarise(rows, args.target)
    pairs = paired(rows, args.baseline, args.models, args.paired_from)
    title = (f'Learning curves, convex hull n={args.num_points}, '
             f'd={args.hidden}, T={args.T}, B={args.B}, S={args.S}, batch '
             f'{args.batch_size}, {args.threads} thread(s)')
    if args.collect:
        title += f', collected from {len(args.collect)} file(s)'
    out = C.finish(args, rows, [
        ('model', 'model', ''), ('seed', 'seed', 'd'),
        ('batches', 'batches', 'd'), ('wall_s', 'wall s', '.1f'),
        ('cpu_s', 'CPU s', '.1f'), ('f1', 'F1', '.3f'),
        ('f1_reference', 'F1 ref', '.3f'), ('f1_dedup', 'F1 dedup', '.3f'),
        ('duplicates', 'dup/set', '.2f'),
        *([('coverage', 'coverage', '.3f')]
          if any('coverage' in r for r in rows) else [])], plot, title,
        extra_meta={'summary': summary, 'paired': pairs,
                    'target': args.target, 'settings': settings(args),
                    'collected': list(args.collect or [])})
    C.print_table(summary, [
        ('model', 'model', ''), ('reached', f'reached {args.target}', ''),
        ('median_wall_s_to_target', 'median wall s', '.1f'),
        ('median_cpu_s_to_target', 'median CPU s', '.1f'),
        ('median_batches_to_target', 'median batches', '.0f'),
        ('final_f1_reference_median', 'final F1 ref (median)', '.3f'),
        ('final_f1_reference_min', 'min', '.3f'),
        ('final_f1_reference_max', 'max', '.3f'),
        ('final_f1_median', 'final F1 (median)', '.3f'),
        ('final_f1_dedup_median', 'final F1 dedup (median)', '.3f'),
        ('final_duplicates_median', 'dup/set (median)', '.2f')],
        f'Time to reference F1 {args.target} (median over seeds)')
    if pairs:
        C.print_table(pairs, [
            ('model', 'model', ''), ('batches', 'batches', ''),
            ('seeds', 'seeds', 'd'),
            ('mean_diff_reference', 'mean diff F1 ref', '+.3f'),
            ('sd_diff_reference', 'SD', '.3f'),
            ('se_diff_reference', 'SE', '.3f'),
            ('ci95_low_reference', '95% low', '+.3f'),
            ('ci95_high_reference', '95% high', '+.3f'),
            ('median_diff_reference', 'median diff', '+.3f'),
            ('mean_diff_strict', 'mean diff F1', '+.3f'),
            ('wins', 'wins', 'd')],
            f'Paired by seed: model minus {args.baseline}')
    out['paired'] = pairs
    return out


def train_all(argv, args):
    """Trains every model and seed, each in a fresh process; returns the
    rows (one per run and evaluation)."""
    # data first, so that runs do not race to generate it
    from torch_geometric_hyper.datasets import ConvexHull
    for split, num in (('train', args.train_samples),
                       ('val', args.val_samples)):
        ConvexHull(args.root, split, num_points=args.num_points,
                   num_samples=num, log=False)
    rows = []
    # alternate the models within each seed (shared-machine noise)
    for seed in args.seeds:
        for model in args.models:
            res = C.run_config(__file__, argv, args,
                               {'model': model, 'seed': seed}, run_one)
            for p in res['points']:
                rows.append({'model': model, 'seed': seed, **p})
            print(f"{model} seed {seed}: F1 {res['points'][-1]['f1']:.3f} "
                  f"(reference {res['points'][-1]['f1_reference']:.3f}) "
                  f"after {res['points'][-1]['batches']} batches, "
                  f"{res['points'][-1]['wall_s']:.0f} s", flush=True)
    return rows


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
