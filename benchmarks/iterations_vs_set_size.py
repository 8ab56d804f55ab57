"""How many refinement iterations do larger sets need?

For each set size n, trains a refiner on convex hulls of n points (same
settings and number of mini-batches for every n, backprop with skips at
``--T``), then evaluates test F1 after t = 1 ... ``--max-T`` iterations
(one pass; the recurrent refiner runs any number of steps at inference).
The *base case* is the smallest n at ``--base-T`` iterations. Per n it
reports

* ``t_match_base``: the fewest iterations whose F1 reaches the base case's
  F1 (minus ``--tolerance``); empty if no t up to ``--max-T`` does;
* ``t_relative``:   the fewest iterations reaching ``--fraction`` of that
  n's own best F1 over the evaluated t (always defined; shows how the
  iterations needed grow with n even when larger sets stay below the base
  F1 after the same training).

The paper reports sub-linear growth of the iterations needed with n; the
figure draws linear growth from the base case for comparison.

    python benchmarks/iterations_vs_set_size.py --quick   # n=6..14, ~4 min
    python benchmarks/iterations_vs_set_size.py           # n=10..50
"""
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'iterations_vs_set_size'


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    C.add_hull_training_options(p, 'training mini-batches per set size')
    p.add_argument('--sizes', type=int, nargs='+', default=None)
    p.add_argument('--base-T', type=int, default=None,
                   help='iterations of the base case (default: --T)')
    p.add_argument('--max-T', type=int, default=None,
                   help='most iterations evaluated (default: 4 T)')
    p.add_argument('--tolerance', type=float, default=0.01)
    p.add_argument('--fraction', type=float, default=0.98)
    args = p.parse_args(argv)
    q = args.quick
    defaults = dict(sizes=[6, 8, 10, 12, 14] if q else [10, 20, 30, 40, 50],
                    hidden=32 if q else 128, batch_size=32 if q else 64,
                    lr=1e-3 if q else 3e-4, steps=250 if q else 50_000,
                    train_samples=2048 if q else 20_000,
                    test_samples=128 if q else 2_000,
                    base_T=args.T, max_T=4 * args.T)
    return C.apply_defaults(args, **defaults)


def first_reaching(f1, threshold):
    """The smallest t whose F1 is at least ``threshold`` (or ``None``)."""
    for t in sorted(f1):
        if f1[t] >= threshold:
            return t
    return None


def main(argv=None):
    args = parse_args(argv)
    import torch

    import _hull as H
    torch.set_num_threads(args.threads)
    ts = list(range(1, args.max_T + 1))
    curves = {}
    info = {}
    for n in sorted(args.sizes):
        train_ds = H.hull(args.root, 'train', n, args.train_samples,
                          args.seed)
        test_ds = H.hull(args.root, 'test', n, args.test_samples, args.seed)
        m = H.most_facets(train_ds, test_ds)
        torch.manual_seed(args.seed)
        model = H.make_model('recurrent', args.hidden, m, args.T)
        t0 = time.perf_counter()
        res = H.train(model, train_ds, 'skips', args.T, args.B, args.S,
                      args.batch_size, args.lr, steps=args.steps,
                      seed=args.seed)
        curves[n] = H.f1_at_iterations(model, test_ds, ts, seed=args.seed)
        info[n] = {'m': m, 'train_seconds': res['train_seconds'],
                   'train_steps': res['steps']}
        print(f"n={n}: {res['steps']} steps in "
              f"{time.perf_counter() - t0:.0f} s, F1 at T={args.T}: "
              f"{curves[n][args.T]:.4f}, best "
              f"{max(curves[n].values()):.4f}", flush=True)
    base_n = min(curves)
    base_f1 = curves[base_n][args.base_T]
    rows = []
    for n, f1 in curves.items():
        best_t = max(f1, key=f1.get)
        rows.append({'n': n, **info[n], 'train_T': args.T,
                     'base_n': base_n, 'base_T': args.base_T,
                     'base_f1': base_f1,
                     't_match_base': first_reaching(
                         f1, base_f1 - args.tolerance),
                     't_relative': first_reaching(
                         f1, args.fraction * f1[best_t]),
                     'f1_at_T': f1[args.T], 'best_f1': f1[best_t],
                     'best_t': best_t,
                     'f1_curve': [round(f1[t], 5) for t in ts]})
    cols = [('n', 'n', 'd'), ('m', 'm', 'd'), ('train_steps', 'steps', 'd'),
            ('train_seconds', 'train s', '.0f'), ('f1_at_T', 'F1@T', '.4f'),
            ('best_f1', 'best F1', '.4f'), ('best_t', 'best t', 'd'),
            ('t_match_base', 't to base F1', 'd'),
            ('t_relative', f't to {args.fraction:.0%} of best', 'd')]
    title = (f'Iterations needed vs set size (base: n={base_n}, '
             f'T={args.base_T}, F1 {base_f1:.4f}; d={args.hidden}, trained '
             f'T={args.T} B={args.B} S={args.S}, {args.steps} steps each)')

    def plot(rows):
        fig, (ax_c, ax_t) = C.new_figure(2)
        for r in rows:
            ax_c.plot(ts, r['f1_curve'], label=f"n={r['n']}")
        ax_c.axhline(base_f1, color='0.5', ls=':', label='base F1')
        ax_c.set_xlabel('iterations t')
        ax_c.set_ylabel('test F1')
        ns = [r['n'] for r in rows]
        for key, style, label in (
                ('t_match_base', '-o', 'to base F1'),
                ('t_relative', '--s', f'to {args.fraction:.0%} of own best')):
            pts = [(r['n'], r[key]) for r in rows if r[key] is not None]
            if pts:
                ax_t.plot(*zip(*pts), style, label=label)
        ax_t.plot(ns, [args.base_T * n / base_n for n in ns], ':',
                  color='0.5', label='linear from base')
        ax_t.set_xlabel('set size n')
        ax_t.set_ylabel('iterations needed')
        C.style_axes(ax_c, ax_t)
        return fig

    return C.finish(args, rows, cols, plot, title)


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
