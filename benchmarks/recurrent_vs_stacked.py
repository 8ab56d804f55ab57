"""Recurrent (weight-tied) vs stacked refiner on convex hull.

Trains a :class:`HypergraphRefiner` (one shared step) and a
:class:`StackedHypergraphRefiner` (T separate steps) with the same
settings and number of mini-batches, then measures

* ``iterations``: test F1 at t = 1 ... 4T iterations on sets of the
  training size (the stacked model reuses its last step past T);
* ``set_size``:   generalisation to larger sets than trained on, at t = T
  and t = 2T iterations, with as many slots as the larger sets have facets
  (slots are i.i.d. draws, so a model trained with m slots runs with more).

    python benchmarks/recurrent_vs_stacked.py --quick   # n=10, d=32, ~3 min
    python benchmarks/recurrent_vs_stacked.py           # n=30 -> 30...100

Full mode follows the paper's settings (d=128, T=16, B=4, S=2, batch 64,
Adam 3e-4, train n=30) for ``--steps`` mini-batches (hours on a CPU).
"""
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'recurrent_vs_stacked'


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    C.add_hull_training_options(p, 'training mini-batches per model')
    p.add_argument('--train-n', type=int, default=None)
    p.add_argument('--test-n', type=int, nargs='+', default=None,
                   help='set sizes of the generalisation sweep')
    p.add_argument('--method', default='skips',
                   choices=['skips', 'skips-fixed', 'bptt', 'tbptt'],
                   help='training method of both models')
    p.add_argument('--models', nargs='+', default=['recurrent', 'stacked'],
                   choices=['recurrent', 'stacked'])
    args = p.parse_args(argv)
    q = args.quick
    defaults = dict(train_n=10 if q else 30,
                    test_n=[10, 15, 20, 30] if q else
                    [30, 40, 50, 60, 70, 80, 90, 100],
                    hidden=32 if q else 128, batch_size=32 if q else 64,
                    lr=1e-3 if q else 3e-4, steps=300 if q else 50_000,
                    train_samples=4096 if q else 20_000,
                    test_samples=128 if q else 2_000)
    return C.apply_defaults(args, **defaults)


def iteration_grid(T: int):
    """1, 2, 4, ... up to 4T, plus T and the points between T and 4T."""
    ts = {1, 2, T, 2 * T, 3 * T, 4 * T}
    t = 1
    while t < T:
        ts.add(t)
        t *= 2
    return sorted(ts)


def main(argv=None):
    args = parse_args(argv)
    import torch

    import _hull as H
    torch.set_num_threads(args.threads)
    train_ds = H.hull(args.root, 'train', args.train_n, args.train_samples,
                      args.seed)
    tests = {n: H.hull(args.root, 'test', n, args.test_samples, args.seed)
             for n in sorted(set(args.test_n) | {args.train_n})}
    m_train = H.most_facets(train_ds, tests[args.train_n])
    ts = iteration_grid(args.T)
    rows = []
    for kind in args.models:
        torch.manual_seed(args.seed)
        model = H.make_model(kind, args.hidden, m_train, args.T)
        params = sum(p.numel() for p in model.parameters())
        t0 = time.perf_counter()
        res = H.train(model, train_ds, args.method, args.T, args.B, args.S,
                      args.batch_size, args.lr, steps=args.steps,
                      seed=args.seed)
        print(f"{kind}: {params:,} parameters, {res['steps']} steps in "
              f"{time.perf_counter() - t0:.0f} s, loss {res['loss']:.4f}",
              flush=True)
        common = {'model': kind, 'params': params, 'train_n': args.train_n,
                  'train_T': args.T, 'train_steps': res['steps'],
                  'train_seconds': res['train_seconds']}
        f1 = H.f1_at_iterations(model, tests[args.train_n], ts,
                                seed=args.seed)
        for t in ts:
            rows.append({**common, 'sweep': 'iterations',
                         'n': args.train_n, 'm': m_train, 't': t,
                         'f1': f1[t]})
        for n in args.test_n:
            m = H.most_facets(tests[n])
            f1 = H.f1_at_iterations(model, tests[n], [args.T, 2 * args.T],
                                    seed=args.seed, max_edges=max(m, m_train))
            for t, v in f1.items():
                rows.append({**common, 'sweep': 'set_size', 'n': n,
                             'm': max(m, m_train), 't': t, 'f1': v})
    cols = [('model', 'model', ''), ('params', 'params', ','),
            ('sweep', 'sweep', ''), ('n', 'n', 'd'), ('m', 'm', 'd'),
            ('t', 't', 'd'), ('f1', 'test F1', '.4f')]
    title = (f'Recurrent vs stacked refiner (train n={args.train_n}, '
             f'd={args.hidden}, T={args.T}, {args.method} B={args.B} '
             f'S={args.S}, {args.steps} steps, lr {args.lr})')

    def plot(rows):
        fig, (ax_t, ax_n) = C.new_figure(2)
        its = [r for r in rows if r['sweep'] == 'iterations']
        for kind, (xs, ys) in C.series(its, 'model', 't', 'f1').items():
            ax_t.plot(xs, ys, '-o', ms=3, label=kind)
        ax_t.axvline(args.T, color='0.6', ls=':', label='trained T')
        ax_t.set_xlabel('iterations at test time')
        ax_t.set_ylabel(f'test F1 (n={args.train_n})')
        sizes = [r for r in rows if r['sweep'] == 'set_size']
        for t, style in ((args.T, '-o'), (2 * args.T, '--s')):
            sub = [r for r in sizes if r['t'] == t]
            for kind, (xs, ys) in C.series(sub, 'model', 'n', 'f1').items():
                ax_n.plot(xs, ys, style, ms=3, label=f'{kind}, t={t}')
        ax_n.set_xlabel(f'test set size n (trained on n={args.train_n})')
        ax_n.set_ylabel('test F1')
        C.style_axes(ax_t, ax_n)
        return fig

    return C.finish(args, rows, cols, plot, title)


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
