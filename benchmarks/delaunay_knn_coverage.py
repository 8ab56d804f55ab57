"""Which k-nearest-neighbour candidate set covers the Delaunay edges?

For points uniform in the unit square, prints, per set size n and k, the
fraction of Delaunay edges {i, j} with j among the k nearest neighbours of
i or i among those of j (the symmetrised kNN candidate set of
``GraphRefiner(knn=k)``), pooled over the samples, the worst sample, and
the candidate pairs per node.

Writes CSV, JSON and a PNG (coverage vs k per n) under ``--out``.

    python benchmarks/delaunay_knn_coverage.py
    python benchmarks/delaunay_knn_coverage.py --sizes 50 1000 --samples 200
    python benchmarks/delaunay_knn_coverage.py --quick     # n=50, 50 samples
"""
import os.path as osp
import sys

import numpy as np
from scipy.spatial import Delaunay, cKDTree

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402


def coverage(n, ks, samples, rng):
    hit = np.zeros(len(ks))
    worst = np.ones(len(ks))
    pairs = np.zeros(len(ks))
    total = 0
    kmax = min(max(ks), n - 1)
    for _ in range(samples):
        pts = rng.random((n, 2))
        tri = Delaunay(pts).simplices
        a = tri[:, [0, 1, 2]].reshape(-1)
        b = tri[:, [1, 2, 0]].reshape(-1)
        edges = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
        total += edges.size
        _, nbr = cKDTree(pts).query(pts, kmax + 1)  # column 0 is the point
        for c, k in enumerate(ks):
            k = min(k, n - 1)
            src = np.repeat(np.arange(n), k)
            dst = nbr[:, 1:k + 1].reshape(-1)
            cand = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst))
            h = np.isin(edges, cand).sum()
            hit[c] += h
            worst[c] = min(worst[c], h / edges.size)
            pairs[c] += cand.size / n
    return hit / total, worst, pairs / samples


def main(argv=None):
    p = C.base_parser(__doc__, 'delaunay_knn_coverage')
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help='default 50 1000 (quick: 50)')
    p.add_argument('--ks', type=int, nargs='+',
                   default=[4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 96,
                            128, 192, 256, 384])
    p.add_argument('--samples', type=int, default=None,
                   help='point sets per n (default 200, quick 50)')
    p.add_argument('--target', type=float, default=0.999)
    args = C.apply_defaults(p.parse_args(argv),
                            sizes=[50, 1000], samples=200)
    if args.quick:
        args.sizes, args.samples = args.sizes[:1], min(args.samples, 50)
    rng = np.random.default_rng(args.seed)
    rows, smallest = [], {}
    for n in args.sizes:
        cov, worst, pairs = coverage(n, args.ks, args.samples, rng)
        for k, c, w, pp in zip(args.ks, cov, worst, pairs):
            rows.append({'n': n, 'k': k, 'coverage': float(c),
                         'worst': float(w), 'pairs_per_node': float(pp),
                         'samples': args.samples})
            if n not in smallest and c >= args.target:
                smallest[n] = k
    cols = [('n', 'n', 'd'), ('k', 'k', 'd'), ('coverage', 'coverage', '.5f'),
            ('worst', 'worst', '.4f'), ('pairs_per_node', 'pairs/node', '.2f')]

    def plot(rows):
        fig, (ax, ) = C.new_figure(1)
        for n, (xs, ys) in C.series(rows, 'n', 'k', 'coverage').items():
            ax.plot(xs, ys, '-o', ms=3, label=f'n={n} (pooled)')
        for n, (xs, ys) in C.series(rows, 'n', 'k', 'worst').items():
            ax.plot(xs, ys, ':', label=f'n={n} (worst set)')
        ax.axhline(args.target, color='0.6', ls='--', label='target')
        ax.set_xscale('log', base=2)
        ax.set_xlabel('k nearest neighbours')
        ax.set_ylabel('fraction of Delaunay edges covered')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return fig

    out = C.finish(args, rows, cols, plot,
                   f'kNN coverage of Delaunay edges ({args.samples} '
                   f'uniform point sets per n)',
                   {'smallest_k_reaching_target': smallest})
    for n in args.sizes:
        print(f"n={n}: smallest k with pooled coverage >= {args.target}: "
              f"{smallest.get(n)} (all pairs: {(n - 1) / 2:.1f} per node)")
    return out


if __name__ == '__main__':
    main()
