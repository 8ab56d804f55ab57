"""Train every convex-hull model for the same CPU budget and compare.

Runs ``examples/convex_hull.py`` once per model (refiner, stacked,
set2graph, set_transformer, slot_attention) and set size, each in its own
single-threaded subprocess with the same budget of process CPU time (so
jobs sharing the machine do not change each other's budget), and prints
validation F1 (strict, and as the reference code counts it), test F1 and the
parameter count side by side. Writes ``compare_models.csv`` / ``.json``
and a bar chart ``compare_models.png`` under ``--out``, and the curves of
validation F1 against training CPU minutes (from each run's validation
history) in the JSON and in ``compare_models_curves.png``.

    python benchmarks/compare_models.py --cpu-minutes 20 --jobs 2
    python benchmarks/compare_models.py --quick        # minutes, tiny

Each run's full log is kept as ``<out>/<model>_n<points>.log``
(``<model>_n<points>_s<seed>.log`` for ``--seed`` other than 0). With runs
of several seeds collected together, the table also gives each model's
median and range over the seeds.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = ['refiner', 'stacked', 'set2graph', 'set_transformer',
          'slot_attention']
PATTERNS = {
    'val_f1': r'best val F1 ([\d.]+)',
    'val_f1_reference': r'best val F1 [\d.]+ \(reference metric '
                        r'([\d.]+)\)',
    'batches': r'after (\d+) batches',
    'cpu_minutes': r'\(([\d.]+) CPU min\)',
    'test_f1': r'test F1 ([\d.]+)',
    'test_f1_reference': r'test F1 [\d.]+ \(reference metric ([\d.]+)',
    'parameters': r'with ([\d,]+) parameters',
}


def parse_log(text: str) -> dict:
    """The final figures of a run log. A resumed run's log holds the first
    part's lines too (and "resumed from ..., best val F1 ..."), so each
    figure is its pattern's last match."""
    out = {}
    for key, pattern in PATTERNS.items():
        matches = re.findall(pattern, text)
        if not matches:
            raise ValueError(f'no {key!r} in the run log; did the run fail?')
        value = matches[-1].replace(',', '')
        out[key] = float(value) if '.' in value else int(value)
    return out


def run_name(model, points, seed=0):
    """The name of one run's log and folder (seed 0 keeps the name that
    runs had before seeds were recorded)."""
    return f'{model}_n{points}' + (f'_s{seed}' if seed else '')


def command(model, points, args):
    name = run_name(model, points, args.seed)
    cmd = [sys.executable, osp.join(ROOT, 'examples', 'convex_hull.py'),
           '--model', model, '--num-points', str(points), '--threads', '1',
           '--seed', str(args.seed),
           '--root', args.root, '--out', osp.join(args.out, 'runs', name),
           '--max-cpu-minutes', str(args.cpu_minutes),
           '--train-samples', str(args.train_samples),
           '--val-samples', str(args.val_samples),
           '--test-samples', str(args.val_samples),
           '--val-every', str(args.val_every), '--no-progress',
           '--hidden', str(args.hidden)]
    if model in ('refiner', 'stacked'):
        cmd += ['--T', str(args.T), '--B',
                str(args.B), '--S', str(args.S)]
    return cmd + args.extra


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--models', nargs='+', default=MODELS, choices=MODELS)
    p.add_argument('--points', nargs='+', type=int, default=[30, 50])
    p.add_argument('--cpu-minutes', type=float, default=20.0)
    p.add_argument('--jobs', type=int, default=2,
                   help='runs at once (one thread each)')
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--T', type=int, default=16)
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--train-samples', type=int, default=20_000)
    p.add_argument('--val-samples', type=int, default=512)
    p.add_argument('--val-every', type=int, default=100)
    p.add_argument('--seed', type=int, default=0,
                   help='seed of every run (model initialisation, batch '
                   'order, skip schedule; the data stay the same)')
    p.add_argument('--root', default='data/convex_hull')
    p.add_argument('--out', default='runs/compare_models')
    p.add_argument('--quick', action='store_true',
                   help='tiny settings that finish in a few minutes')
    p.add_argument('--collect', nargs='*', default=None, metavar='DIR',
                   help='train nothing: build the table from the run logs '
                   'already in --out (and in these folders)')
    p.add_argument('--extra', nargs=argparse.REMAINDER, default=[],
                   help='further arguments passed to every run')
    args = p.parse_args(argv)
    if args.quick:  # tiny preset; options given explicitly still win
        quick = dict(points=[8], cpu_minutes=0.1, hidden=16, T=4, B=1, S=2,
                     train_samples=256, val_samples=32, val_every=4)
        for key, value in quick.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    os.makedirs(args.out, exist_ok=True)
    if args.collect is not None:
        rows = []
        for folder in [args.out] + list(args.collect):
            for n in args.points:
                for model in args.models:
                    pattern = re.compile(
                        re.escape(run_name(model, n)) + r'(?:_s(\d+))?\.log')
                    for name in sorted(os.listdir(folder)):
                        match = pattern.fullmatch(name)
                        if match is None:
                            continue
                        text = open(osp.join(folder, name)).read()
                        rows.append({'model': model, 'num_points': n,
                                     'seed': int(match.group(1) or 0),
                                     **parse_log(text)})
        if not rows:
            raise SystemExit(f'no run logs for {args.models} x {args.points}'
                             f' in {[args.out] + list(args.collect)}')
        return report(rows, args)

    # Generate each set size's data once, before runs race for it.
    for points in args.points:
        subprocess.run([sys.executable, '-c', (
            'import sys; sys.path.insert(0, %r)\n'
            'from torch_geometric_hyper.datasets import ConvexHull\n'
            'for split, num in (("train", %d), ("val", %d), ("test", %d)):\n'
            '    ConvexHull(%r, split, num_points=%d, num_samples=num)'
        ) % (ROOT, args.train_samples, args.val_samples, args.val_samples,
             args.root, points)], check=True)

    todo = [(m, n) for n in args.points for m in args.models]
    running, rows = [], []
    while todo or running:
        while todo and len(running) < args.jobs:
            model, points = todo.pop(0)
            log = osp.join(args.out,
                           run_name(model, points, args.seed) + '.log')
            f = open(log, 'w')
            proc = subprocess.Popen(command(model, points, args), stdout=f,
                                    stderr=subprocess.STDOUT, cwd=ROOT)
            running.append((proc, f, log, model, points))
            print(f'started {model} n={points} -> {log}', flush=True)
        time.sleep(1.0)
        for item in list(running):
            proc, f, log, model, points = item
            if proc.poll() is None:
                continue
            running.remove(item)
            f.close()
            text = open(log).read()
            if proc.returncode != 0:
                print(text[-3000:], file=sys.stderr)
                raise SystemExit(f'{model} n={points} failed; see {log}')
            rows.append({'model': model, 'num_points': points,
                         'seed': args.seed, **parse_log(text)})
            print(f'finished {model} n={points}: {rows[-1]}', flush=True)
    return report(rows, args)


def report(rows, args):
    """Prints the table and writes the CSV, JSON and PNG."""
    rows.sort(key=lambda r: (r['num_points'], MODELS.index(r['model']),
                             r.get('seed', 0)))
    head = (f"{'model':>16} {'n':>4} {'seed':>4} {'params':>10} "
            f"{'batches':>8} {'CPU min':>8} {'val F1':>7} {'val ref':>8} "
            f"{'test F1':>8} {'test ref':>9}")
    print(head)
    for r in rows:
        print(f"{r['model']:>16} {r['num_points']:>4} {r.get('seed', 0):>4} "
              f"{r['parameters']:>10,} "
              f"{r['batches']:>8} {r['cpu_minutes']:>8.1f} "
              f"{r['val_f1']:>7.3f} {r['val_f1_reference']:>8.3f} "
              f"{r['test_f1']:>8.3f} {r['test_f1_reference']:>9.3f}")
    summary = summarise(rows)
    if any(s['seeds'] > 1 for s in summary):
        print('median [min, max] over seeds:')
        for s in summary:
            print(f"{s['model']:>16} {s['num_points']:>4} {s['seeds']:>2} "
                  'seeds ' + '  '.join(
                      f"{key} {s[key]:.3f} [{s[key + '_min']:.3f}, "
                      f"{s[key + '_max']:.3f}]" for key in SUMMARY_KEYS))
    curves = read_curves(rows, [args.out] + list(args.collect or []))
    with open(osp.join(args.out, 'compare_models.json'), 'w') as f:
        json.dump({'cpu_minutes': args.cpu_minutes, 'rows': rows,
                   'summary': summary, 'curves': curves}, f, indent=1)
    with open(osp.join(args.out, 'compare_models.csv'), 'w',
              newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, osp.join(args.out, 'compare_models.png'), args.cpu_minutes)
    if curves:
        plot_curves(curves, osp.join(args.out, 'compare_models_curves.png'),
                    args.cpu_minutes)
    return rows


SUMMARY_KEYS = ('val_f1', 'val_f1_reference', 'test_f1',
                'test_f1_reference')


def summarise(rows):
    """Median, minimum and maximum over the seeds of each model and set
    size."""
    import statistics
    groups = {}
    for r in rows:
        groups.setdefault((r['model'], r['num_points']), []).append(r)
    out = []
    for (model, n), group in groups.items():
        s = {'model': model, 'num_points': n, 'seeds': len(group)}
        for key in SUMMARY_KEYS:
            values = [r[key] for r in group]
            s[key] = statistics.median(values)
            s[key + '_min'], s[key + '_max'] = min(values), max(values)
        out.append(s)
    return out


def read_curves(rows, folders):
    """Validation F1 against training CPU minutes of every run, from the
    ``history`` in its ``last.pt`` under the first of ``folders`` that has
    it (runs whose folder is gone are left out)."""
    import torch
    curves = []
    for r in rows:
        name = run_name(r['model'], r['num_points'], r.get('seed', 0))
        paths = [osp.join(out, 'runs', name, 'last.pt') for out in folders]
        paths = [p for p in paths if osp.exists(p)]
        if not paths:
            continue
        path = paths[0]
        history = torch.load(path, map_location='cpu',
                             weights_only=False)['state'].get('history', [])
        points = [{'step': h['step'], 'cpu_minutes': h['cpu_seconds'] / 60,
                   'f1': h['f1'], 'f1_reference': h['f1_reference']}
                  for h in history if 'cpu_seconds' in h]
        if points:
            curves.append({'model': r['model'], 'num_points': r['num_points'],
                           'seed': r.get('seed', 0), 'points': points})
    return curves


def plot_curves(curves, path, minutes):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    sizes = sorted({c['num_points'] for c in curves})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.5),
                             squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, n in zip(axes[0], sizes):
        for c in curves:
            if c['num_points'] != n:
                continue
            xs = [p['cpu_minutes'] for p in c['points']]
            colour = colours[MODELS.index(c['model']) % len(colours)]
            name = f"{c['model']} seed {c.get('seed', 0)}"
            ax.plot(xs, [p['f1_reference'] for p in c['points']],
                    color=colour, alpha=0.9 - 0.3 * (c.get('seed', 0) > 0),
                    label=f'{name} (reference metric)')
            ax.plot(xs, [p['f1'] for p in c['points']], linestyle='--',
                    color=colour, alpha=0.9 - 0.3 * (c.get('seed', 0) > 0),
                    label=f'{name} (strict)')
        ax.set_xlabel('training CPU minutes')
        ax.set_ylabel('validation F1')
        ax.set_title(f'convex hull n={n}, {minutes:g} CPU minutes per model',
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows, path, minutes):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    sizes = sorted({r['num_points'] for r in rows})
    models = [m for m in MODELS if any(r['model'] == m for r in rows)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        xs, ys = [], []
        for i, n in enumerate(sizes):
            values = [r['val_f1'] for r in rows
                      if r['model'] == model and r['num_points'] == n]
            if values:  # the median over seeds
                xs.append(i + k * width)
                ys.append(sorted(values)[(len(values) - 1) // 2])
        ax.bar(xs, ys, width, label=model)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sizes))])
    ax.set_xticklabels([f'n={n}' for n in sizes])
    ax.set_ylabel('validation F1 (strict, median over seeds)')
    ax.set_title(f'convex hull, {minutes:g} CPU minutes per model')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
