"""Larger sets: training cost, memory and quality against the set size n.

Trains, for a fixed budget of training seconds per configuration (each in a
fresh process), and reports per n: seconds per training step, peak memory
(peak RSS minus the RSS after the imports), the quality on validation sets
and the candidate pairs per node; then the log-log slope of time and memory
against n (1 = linear, 2 = quadratic). For the hypergraph tasks the step time is
split into the matched loss's assignment (solved on the host) and the
rest, each with its slope. Writes CSV/JSON and a PNG (quality, time per
step and memory against n, log-log).

Tasks:

* ``delaunay``: :class:`~torch_geometric_hyper.nn.GraphRefiner` on points
  uniform in the unit square, candidates the symmetrised k nearest
  neighbours (``--knn``, a k-d tree, O(n log n)); accuracy (ours and the
  reference code's convention), precision, recall and F1 on the true
  Delaunay edges, and the candidate coverage (share of true edges among
  the candidates, the recall ceiling); ``--refresh R`` adds up to R pairs
  per node that close a predicted triangle at every step
  (``GraphRefiner(refresh=R)``).
* ``hull``: :class:`~torch_geometric_hyper.nn.HypergraphRefiner` on 3-D
  spherical hulls with m = 2n - 4 slots (the facet count), over all n*m
  pairs, or over K candidate nodes per slot (``--candidates K``) when the
  installed refiner offers it; F1 strict and reference metric, and with
  candidates their coverage (share of target hyperedges whose nodes are
  all candidates of one slot, the recall ceiling).
* ``triangles``: the same refiner on the Delaunay triangles of points
  uniform in the unit square, as hyperedges (m = the most triangles in the
  data).

    python benchmarks/larger_sets.py --task delaunay --sizes 1000 10000
    python benchmarks/larger_sets.py --task hull --sizes 100 200 500 1000
    python benchmarks/larger_sets.py --task triangles --sizes 1000 \\
        --candidates 16
    python benchmarks/larger_sets.py --quick        # tiny, about a minute

``--rounds R`` runs the sizes R times in turn (100, 200, ..., then 100,
200, ... again) and keeps each size's fastest run: on a shared machine the
noise only adds time, and a drift in the load hits every size alike.

``--plot-only A.json B.json ...`` trains nothing: it draws the result files
of earlier runs (e.g. K=16 candidates and all pairs) into one log-log PNG,
``<out>/<name>.png``, each series labelled by its candidates and budget.
"""
import inspect
import math
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'larger_sets')
    p.add_argument('--task', choices=['delaunay', 'hull', 'triangles'],
                   default='delaunay')
    p.add_argument('--sizes', nargs='+', type=int, default=None)
    p.add_argument('--train-seconds', type=float, default=None,
                   help='training budget per configuration (evaluation '
                   'excluded)')
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--T', type=int, default=None)
    p.add_argument('--B', type=int, default=None)
    p.add_argument('--S', type=int, default=None)
    p.add_argument('--knn', type=int, default=16)
    p.add_argument('--refresh', type=int, default=None,
                   help='delaunay: GraphRefiner(refresh=R), up to R pairs '
                   'per node closing predicted triangles added at every step')
    p.add_argument('--candidates', type=int, default=None,
                   help='hull: K candidate nodes per slot (needs a refiner '
                   'with num_candidates); default all pairs')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--assignment-workers', type=int, default=None,
                   help="worker processes solving a batch's sparse "
                   'assignments side by side (default: none)')
    p.add_argument('--train-samples', type=int, default=None)
    p.add_argument('--val-samples', type=int, default=None)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--rounds', type=int, default=1,
                   help='run the sizes this many times in turn and keep '
                        'each size\'s fastest run (its row; every run\'s '
                        's/step in s_per_step_runs)')
    p.add_argument('--min-steps', type=int, default=3,
                   help='train at least this many steps whatever the '
                   'budget (the first, with start-up costs, is not timed)')
    p.add_argument('--root', default=osp.join('data', 'bench_larger'))
    p.add_argument('--device', default='cpu',
                   help="where to train ('cuda' for a GPU); the step time "
                   'then waits for the device, and the rows add the peak '
                   'GPU memory (gpu_peak_mib)')
    p.add_argument('--plot-only', nargs='+', default=None, metavar='JSON',
                   help='draw these result files into one PNG and exit')
    p.add_argument('--labels', nargs='+', default=None,
                   help='with --plot-only: one legend label per file '
                        '(default: candidates and training seconds)')
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f'--rounds must be at least 1, got {args.rounds}')
    q = args.quick
    hull = args.task in ('hull', 'triangles')
    C.apply_defaults(
        args, sizes=([20, 40] if q else [100, 200, 500, 1000]) if hull
        else ([50, 200] if q else [1000, 10000]),
        train_seconds=5.0 if q else 300.0, hidden=16 if q else 64,
        T=4 if q else 8, B=1 if q else 2, S=2, batch_size=2 if q else 4,
        train_samples=8 if q else 64, val_samples=4 if q else 8)
    return args


def _refiner_kwargs(args):
    from torch_geometric_hyper.nn import HypergraphRefiner
    if args.candidates is None:
        return {}
    params = inspect.signature(HypergraphRefiner.__init__).parameters
    if 'num_candidates' not in params:
        raise SystemExit('--candidates needs a HypergraphRefiner with '
                         'num_candidates (sparse candidates per slot)')
    return {'num_candidates': args.candidates}


def run_one(args, n):
    import torch
    probe = C.MemoryProbe()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    make, model, loss_fn, evaluate = (
        _delaunay_task if args.task == 'delaunay' else _hypergraph_task)(
            args, n)
    model = model.to(device)
    assign = _time_assignments()
    t0 = time.perf_counter()
    train_ds = make('train', args.train_samples)
    val_ds = make('val', args.val_samples)
    data_seconds = time.perf_counter() - t0
    times, assign_times = train(args, model, loss_fn, train_ds, device,
                                assign)
    scores, pairs, graphs = validate(model, evaluate, val_ds,
                                     args.batch_size, device)
    row = {'task': args.task, 'n': n, 'steps': len(times),
           # the first step includes one-off start-up costs
           's_per_step': _mean_after_first(times),
           # the matched loss's assignment solver (host), and the rest
           'assign_s_per_step': _mean_after_first(assign_times),
           'other_s_per_step': (_mean_after_first(times)
                                - _mean_after_first(assign_times)),
           'pairs_per_node': pairs / (graphs * n),
           'batch_size': args.batch_size, 'hidden': args.hidden,
           'data_seconds': data_seconds, 'device': str(device),
           **{k: v / graphs for k, v in scores.items()}, **probe.report()}
    row.update(C.cuda_info(device))
    if args.task != 'delaunay':
        from torch_geometric_hyper.matching import _ortools_available
        row['candidates'] = args.candidates or 'all'
        # the matched loss's sparse solver when it goes sparse
        row['sparse_solver'] = 'flow' if _ortools_available() else 'lapjvsp'
        row['threads'] = args.threads
        row['assignment_workers'] = args.assignment_workers or 0
        # the assignment workers' own peak memory (Linux), beside this
        # process's
        row['worker_peak_rss_mib'] = _worker_peak_rss_mib()
    else:
        row['refresh'] = args.refresh or 0
    return row


def _delaunay_task(args, n):
    """``(make(split, num), model, loss_fn, evaluate(model, batch))`` of
    the Delaunay edges of ``n`` points."""
    from torch_geometric_hyper.datasets import Delaunay
    from torch_geometric_hyper.metrics import evaluate_adjacency
    from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner
    make = lambda split, num: Delaunay(  # noqa: E731
        args.root, split, num_points=n, num_samples=num, log=False)
    model = GraphRefiner(2, args.hidden, args.T, knn=args.knn,
                         refresh=args.refresh)

    def evaluate(model, batch):
        pred = model(batch.x, batch.batch, batch.num_graphs)
        out = evaluate_adjacency(pred, batch)
        return {k: out[k] for k in (
            'accuracy', 'accuracy_reference', 'precision', 'recall', 'f1',
            'candidate_coverage')}, pred.pair_index.size(1)
    return make, model, AdjacencyBCELoss(), evaluate


def _hypergraph_task(args, n):
    """``(make(split, num), model, loss_fn, evaluate(model, batch))`` of
    the hull facets or the Delaunay triangles of ``n`` points."""
    import torch

    from torch_geometric_hyper.datasets import ConvexHull, Delaunay
    from torch_geometric_hyper.metrics import (candidate_coverage,
                                               evaluate_hyperedges)
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    if args.task == 'hull':
        make = lambda split, num: ConvexHull(  # noqa: E731
            args.root, split, num_points=n, num_samples=num, log=False)
        dim, m = 3, 2 * n - 4
    else:
        make = lambda split, num: Delaunay(  # noqa: E731
            args.root, split, num_points=n, num_samples=num,
            target='triangles', log=False)
        dim = 2
        m = max(make('train', args.train_samples).max_hyperedges,
                make('val', args.val_samples).max_hyperedges)
    model = HypergraphRefiner(dim, args.hidden, m, args.T,
                              **_refiner_kwargs(args))

    def evaluate(model, batch):
        pred = model(batch.x, batch.batch, batch.num_graphs,
                     generator=torch.Generator().manual_seed(0))
        out = evaluate_hyperedges(pred, batch, edge_size=3)
        res = {'f1': float(out['f1'].mean()),
               'f1_reference': float(out['f1_reference'].mean())}
        if args.candidates is not None:  # what the slots can reach
            res['candidate_coverage'] = float(
                candidate_coverage(pred, batch).mean())
        return res, pred.incidence_index.size(1)
    return make, model, MatchedIncidenceLoss(
        num_workers=args.assignment_workers), evaluate


def train(args, model, loss_fn, train_ds, device, assign):
    """Trains with backprop with skips for ``--train-seconds`` of step time
    and at least ``--min-steps`` steps; returns the seconds of each step
    and of the assignments solved in it.

    Not :func:`~torch_geometric_hyper.train.fit`: this benchmark times
    every step on its own (the device synchronised, the matched loss's
    assignment split out) and trains ``--min-steps`` steps whatever the
    budget, where fit stops at its budget and clocks whole batches. So
    this thin loop keeps the clock and trains each batch with fit's own
    step (:func:`~torch_geometric_hyper.train.training_step`), in fit's
    sample order (a permutation seeded by ``seed + epoch``).
    """
    import torch
    from torch_geometric.data import Batch

    from torch_geometric_hyper.train import BackpropWithSkips, training_step
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    trainer = BackpropWithSkips(args.T, args.B, args.S, seed=args.seed)
    cuda = device.type == 'cuda'
    spent, times, assign_times, epoch = 0.0, [], [], 0

    def step(batch):
        training_step(model, trainer, opt, loss_fn, batch.to(device),
                      step=len(times), seed=args.seed)
    while spent < args.train_seconds or len(times) < args.min_steps:
        gen = torch.Generator().manual_seed(args.seed + epoch)
        order = torch.randperm(len(train_ds), generator=gen).tolist()
        for i in range(0, len(order), args.batch_size):
            batch = Batch.from_data_list(
                [train_ds[j] for j in order[i:i + args.batch_size]])
            a0 = assign[0]
            times.append(C.time_step(step, batch, cuda))
            assign_times.append(assign[0] - a0)
            spent += times[-1]
            if spent >= args.train_seconds and len(times) >= args.min_steps:
                break
        epoch += 1
    return times, assign_times


def validate(model, evaluate, val_ds, batch_size, device):
    """Sums of ``evaluate``'s metrics weighted by the sets, the candidate
    pairs and the sets, over ``val_ds``."""
    import torch
    from torch_geometric.loader import DataLoader
    model.eval()
    scores, pairs, graphs = {}, 0, 0
    with torch.no_grad():
        for batch in DataLoader(val_ds, batch_size=batch_size):
            res, p = evaluate(model, batch.to(device))
            for k, v in res.items():
                scores[k] = scores.get(k, 0.0) + v * batch.num_graphs
            pairs += p
            graphs += batch.num_graphs
    return scores, pairs, graphs


def _worker_peak_rss_mib():
    from torch_geometric_hyper import matching
    total = 0.0
    for pool in matching._WORKERS.values():
        for proc in pool.procs:
            try:
                with open(f'/proc/{proc.pid}/status') as f:
                    for line in f:
                        if line.startswith('VmHWM:'):
                            total += int(line.split()[1]) / 1024
            except OSError:  # not Linux, or gone
                pass
    return total


def _mean_after_first(values):
    # the first step includes one-off start-up costs
    return (sum(values[1:]) / (len(values) - 1) if len(values) > 1
            else values[0])


def _time_assignments():
    """Wraps the matched loss's assignment solvers with a clock: returns a
    one-element list holding the seconds spent in them so far (0 for
    tasks without assignment)."""
    from torch_geometric_hyper.nn.losses import matched as L
    spent = [0.0]

    def clocked(fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper
    for name in ('linear_assignment', 'sparse_linear_assignments'):
        setattr(L, name, clocked(getattr(L, name)))
    return spent


def slope(rows, key):
    """Least-squares slope of log(key) against log(n)."""
    pts = [(math.log(r['n']), math.log(r[key])) for r in rows
           if r.get(key, 0) > 0]
    if len(pts) < 2:
        return float('nan')
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    num = sum((x - mx) * (y - my) for x, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return num / den


def series_label(result) -> str:
    """'K=16, 1200 s' / 'all pairs, 90 s' for one result file's runs."""
    row, argv = result['rows'][0], result['meta'].get('argv', [])
    if row.get('task') == 'delaunay':
        label = f"kNN-{_flag(argv, '--knn', 16)}"
    else:
        k = row.get('candidates', 'all')
        label = 'all pairs' if k == 'all' else f'K={k}'
    seconds = _flag(argv, '--train-seconds', None)
    return label + (f', {float(seconds):.0f} s' if seconds else '')


def _flag(argv, flag, default):
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else default


def plot_only(args):
    """Overlays the result files of ``--plot-only``: F1, seconds per step
    and memory against n, log-log, one series per file."""
    import json
    results = []
    for path in args.plot_only:
        if not osp.isfile(path):
            raise SystemExit(f'--plot-only: no such result file: {path}')
        with open(path) as f:
            results.append(json.load(f))
    fig, axes = C.new_figure(3)
    panels = (('f1', 'validation F1 (strict)'),
              ('s_per_step', 'seconds per training step'),
              ('peak_minus_imports_mib', 'peak RSS - imports (MiB)'))
    labels = args.labels or [series_label(r) for r in results]
    if len(labels) != len(results):
        raise SystemExit(f'--labels: {len(labels)} labels for '
                         f'{len(results)} result files')
    for result, label in zip(results, labels):
        rows = sorted(result['rows'], key=lambda r: r['n'])
        for ax, (key, _) in zip(axes, panels):
            kept = [r for r in rows if r.get(key, 0) > 0]  # log axes
            ax.plot([r['n'] for r in kept], [r[key] for r in kept],
                    marker='o', label=f"{label} (slope {slope(rows, key):.2f})"
                    if key != 'f1' else label)
    for ax, (_, name) in zip(axes, panels):
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('set size n')
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, which='both')
        ax.legend(fontsize=7)
    meta = dict(results[0]['meta'])
    meta['note'] = 'from ' + ', '.join(osp.basename(p)
                                       for p in args.plot_only)
    stem = C.output_stem(args)
    path = C.save_figure(fig, stem, meta)
    print('wrote ' + path)
    return path


def main(argv=None):
    args = parse_args(argv)
    if args.plot_only:
        return plot_only(args)
    done = C.run_each(__file__, parse_args, run_one, 'n', 'sizes', argv,
                      fastest='s_per_step')
    if done is None:
        return None
    argv, args, rows = done
    quality = 'f1'
    slopes = {'time': slope(rows, 's_per_step'),
              'memory': slope(rows, 'peak_minus_imports_mib')}
    if args.task != 'delaunay':
        slopes['time_assignment'] = slope(rows, 'assign_s_per_step')
        slopes['time_without_assignment'] = slope(rows, 'other_s_per_step')

    def plot(rows):
        fig, axes = C.new_figure(3)
        ns = [r['n'] for r in rows]
        panels = ((quality, 'validation F1'),
                  ('s_per_step', 'seconds per training step'),
                  ('peak_minus_imports_mib', 'peak RSS - imports (MiB)'))
        for ax, (key, label) in zip(axes, panels):
            ax.plot(ns, [max(r[key], 1e-6) for r in rows], marker='o',
                    label='step')
            ax.set_xscale('log')
            ax.set_yscale('log')
            ax.set_xlabel('set size n')
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which='both')
        if 'assign_s_per_step' in rows[0]:
            for key, label in (('assign_s_per_step', 'assignment'),
                               ('other_s_per_step', 'rest')):
                axes[1].plot(ns, [max(r[key], 1e-6) for r in rows],
                             marker='.', linestyle='--', label=label)
            axes[1].legend(fontsize=8)
        axes[1].set_title(f"slope {slopes['time']:.2f}", fontsize=9)
        axes[2].set_title(f"slope {slopes['memory']:.2f}", fontsize=9)
        return fig

    extra = ([('refresh', 'refresh', 'd'), ('accuracy', 'acc', '.4f'),
              ('accuracy_reference', 'acc ref', '.4f'),
              ('precision', 'P', '.3f'), ('recall', 'R', '.3f'),
              ('f1', 'F1', '.3f'), ('candidate_coverage', 'coverage',
                                    '.4f')]
             if args.task == 'delaunay' else
             [('candidates', 'K', ''), ('f1', 'F1', '.3f'),
              ('f1_reference', 'F1 ref', '.3f')] + (
                 [('candidate_coverage', 'coverage', '.4f')]
                 if args.candidates is not None else []))
    columns = [('n', 'n', 'd'), ('steps', 'steps', 'd'),
               ('s_per_step', 's/step', '.3f')] + (
                  [] if args.task == 'delaunay' else
                  [('assign_s_per_step', 'assignment s/step', '.3f'),
                   ('other_s_per_step', 'rest s/step', '.3f')]) + [
               ('pairs_per_node', 'pairs/node', '.1f'),
               ('peak_minus_imports_mib', 'peak-imports MiB', '.0f')] + (
                  [('cuda_peak_mib', 'CUDA MiB', '.0f')]
                  if args.device.startswith('cuda') else []) + extra
    out = C.finish(args, rows, columns, plot,
                   f'Larger sets: {args.task}, d={args.hidden}, T={args.T}, '
                   f'B={args.B}, S={args.S}, batch {args.batch_size}, '
                   f'{args.train_seconds:.0f} s of training per n',
                   extra_meta={'slopes': slopes})
    print(f"log-log slope against n: time per step {slopes['time']:.2f}, "
          f"memory {slopes['memory']:.2f}")
    if 'time_assignment' in slopes:
        print(f"time per step, assignment {slopes['time_assignment']:.2f}, "
              f"without it {slopes['time_without_assignment']:.2f}")
    return out


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
