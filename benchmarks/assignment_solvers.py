"""Assignment time per problem on the matched loss's own cost matrices.

Random costs flatter some solvers: the costs of a young refiner are full
of near ties, and the targets of a set may be fewer than its slots
(rectangular problems). This script trains a
:class:`~torch_geometric_hyper.nn.HypergraphRefiner` on convex hulls for
``--train-batches`` batches (0: untrained), then captures every cost
matrix that :class:`~torch_geometric_hyper.nn.MatchedIncidenceLoss` hands
to :func:`~torch_geometric_hyper.matching.linear_assignment` during one
more batch (S updates, each one call with B steps x the batch's sets),
and times each available backend on them, call by call as the loss makes
them, on each of ``--solver-threads`` (best of ``--repeats`` passes,
alternating between the solvers; the model trains on ``--threads``):
scipy and lapx one problem after another (on a thread pool),
``lapx_batch`` in one ``lapjvh_batch`` call per column count. ``auto``
is the default backend's choice. The optimal costs of all backends are
compared (``max_gap``).

    python benchmarks/assignment_solvers.py                 # n:m shapes
    python benchmarks/assignment_solvers.py --shapes 30:56 --train-batches 150
    python benchmarks/assignment_solvers.py --quick
    python benchmarks/assignment_solvers.py --batch-size 64 \
        --solver-threads 1 2 --repeats 7        # both thread counts
"""
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'assignment_solvers'


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--shapes', nargs='+', default=None,
                   help='n:m, points per hull and slots per set (a hull of '
                        'n points has 2n - 4 facets); default 30:56 30:64 '
                        '30:84 100:196 100:250')
    p.add_argument('--train-batches', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--solver-threads', type=int, nargs='+', default=[1],
                   help='threads of the solvers (each timed)')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    args = p.parse_args(argv)
    quick = args.quick
    C.apply_defaults(args, shapes=['10:16', '10:20'] if quick else
                     ['30:56', '30:64', '30:84', '100:196', '100:250'],
                     batch_size=4 if quick else 32,
                     hidden=16 if quick else 128)
    shapes = []
    for s in args.shapes:
        try:
            n, m = (int(v) for v in s.split(':'))
        except ValueError:
            p.error(f"--shapes takes n:m pairs such as 30:56, got '{s}'")
        if n < 4 or m < 2 * n - 4:
            p.error(f"--shapes {s}: a hull of {n} points has {2 * n - 4} "
                    f"facets, so it needs n >= 4 and m >= {2 * n - 4}")
        shapes.append((n, m))
    args.shapes = shapes
    return args


def capture(args, n, m):
    """The cost matrices of one training batch after ``--train-batches``,
    one list per call of the solver."""
    import torch
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    from torch_geometric_hyper.nn.losses import matched as loss_module
    from torch_geometric_hyper.train import BackpropWithSkips
    torch.manual_seed(args.seed)
    T, B, S = (4, 1, 2) if args.quick else (16, 4, 2)
    ds = ConvexHull(args.root, 'train', num_points=n, log=False,
                    num_samples=args.batch_size * (args.train_batches + 1))
    model = HypergraphRefiner(3, args.hidden, m, T)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer, loss_fn = BackpropWithSkips(T, B, S, seed=args.seed), \
        MatchedIncidenceLoss()
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True)
    batches = iter(loader)
    for _ in range(args.train_batches):
        trainer(model, opt, loss_fn, next(batches))
    costs = []
    solve = loss_module.linear_assignment

    def keep(problems, *a, **k):
        problems = list(problems)
        costs.append(problems)
        return solve(problems, *a, **k)

    loss_module.linear_assignment = keep
    try:
        trainer(model, opt, loss_fn, next(batches))
    finally:
        loss_module.linear_assignment = solve
    return costs


def time_backends(calls, configs, repeats):
    """Per (backend, threads) of ``configs``: seconds per problem (best
    pass over the calls) and the columns. The passes alternate between the
    configurations, so a change of load on a shared machine reaches them
    alike."""
    from torch_geometric_hyper.matching import linear_assignment
    best = {c: float('inf') for c in configs}
    cols = {}
    for _ in range(repeats):
        for backend, threads in configs:
            t0 = time.perf_counter()
            cols[backend, threads] = [
                c for call in calls
                for c in linear_assignment(call, backend,
                                           num_threads=threads)]
            best[backend, threads] = min(best[backend, threads],
                                         time.perf_counter() - t0)
    return {c: (best[c] / len(cols[c]), cols[c]) for c in configs}


def run_one(args, shape):
    import numpy as np
    import torch

    from torch_geometric_hyper.matching import (available_backends,
                                                resolve_backend)
    torch.set_num_threads(args.threads)
    n, m = shape
    calls = capture(args, n, m)
    costs = [c for call in calls for c in call]
    rows = []
    optimum = None
    configs = [(b, t) for b in available_backends()
               for t in args.solver_threads]
    for (backend, threads), (sec, cols) in time_backends(
            calls, configs, args.repeats).items():
        total = np.array([c[np.arange(len(x)), x].sum()
                          for c, x in zip(costs, cols)])
        optimum = total if optimum is None else np.minimum(optimum, total)
        rows.append({'n': n, 'rows': costs[0].shape[0], 'm': m,
                     'train_batches': args.train_batches,
                     'problems': len(costs),
                     'problems_per_call': len(calls[0]),
                     'backend': backend, 'solver_threads': threads,
                     'ms_per_problem': 1e3 * sec, '_total': total})
    auto = resolve_backend('auto', m, rows=costs[0].shape[0])
    for r in rows:
        r['max_gap'] = float(np.abs(r.pop('_total') - optimum).max())
        r['auto'] = r['backend'] == auto
    return rows


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    rows = []
    for shape in args.shapes:
        part = run_one(args, shape)
        for r in part:
            print(f"  n={r['n']} {r['rows']}x{r['m']} {r['backend']} "
                  f"t{r['solver_threads']}: {r['ms_per_problem']:.3f} ms",
                  flush=True)
        rows += part

    def plot(rows):
        fig, ax = C.new_figure(1)
        ax = ax[0] if hasattr(ax, '__len__') else ax
        labels = sorted({f"{r['rows']}x{r['m']}" for r in rows},
                        key=lambda s: tuple(int(v) for v in s.split('x')))
        backends = sorted({(r['backend'], r['solver_threads'])
                           for r in rows})
        width = 0.8 / len(backends)
        for i, (b, t) in enumerate(backends):
            by = {f"{r['rows']}x{r['m']}": r['ms_per_problem']
                  for r in rows
                  if (r['backend'], r['solver_threads']) == (b, t)}
            ax.bar([j + i * width for j in range(len(labels))],
                   [by.get(lab, 0.0) for lab in labels], width,
                   label=f'{b}, {t} thread(s)')
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))])
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_yscale('log')
        ax.set_xlabel('targets x slots per set')
        ax.set_ylabel('ms per problem')
        ax.legend(fontsize=7)
        return fig

    columns = [('n', 'n', 'd'), ('rows', 'targets', 'd'), ('m', 'slots', 'd'),
               ('train_batches', 'trained', 'd'),
               ('problems', 'problems', 'd'),
               ('problems_per_call', 'per call', 'd'),
               ('backend', 'backend', ''),
               ('solver_threads', 'solver threads', 'd'),
               ('ms_per_problem', 'ms/problem', '.3f'),
               ('max_gap', 'gap to best optimum', '.1e'),
               ('auto', 'auto picks', '')]
    return C.finish(args, rows, columns, plot,
                    f'Assignment per problem on the matched loss\'s costs '
                    f'(refiner d={args.hidden}, {args.train_batches} '
                    f'batches trained, batch {args.batch_size}, solver on '
                    f'{"/".join(map(str, args.solver_threads))} thread(s))')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
