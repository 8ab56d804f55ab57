"""Which k-nearest-neighbour candidate set covers the Delaunay edges?

For points uniform in the unit square, prints, per set size n and k, the
fraction of Delaunay edges {i, j} with j among the k nearest neighbours of
i or i among those of j (the symmetrised kNN candidate set of
``GraphRefiner(knn=k)``), pooled over the samples, the worst sample, and
the candidate pairs per node.

    python benchmarks/delaunay_knn_coverage.py
    python benchmarks/delaunay_knn_coverage.py --sizes 50 1000 --samples 200
"""
import argparse

import numpy as np
from scipy.spatial import Delaunay, cKDTree


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


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[50, 1000])
    p.add_argument('--ks', type=int, nargs='+',
                   default=[4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 96,
                            128, 192, 256, 384])
    p.add_argument('--samples', type=int, default=200)
    p.add_argument('--target', type=float, default=0.999)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'n':>6} {'k':>4} {'coverage':>9} {'worst':>7} "
          f"{'pairs/node':>11}")
    for n in args.sizes:
        cov, worst, pairs = coverage(n, args.ks, args.samples, rng)
        best = None
        for k, c, w, pp in zip(args.ks, cov, worst, pairs):
            print(f"{n:>6} {k:>4} {c:>9.5f} {w:>7.4f} {pp:>11.2f}")
            if best is None and c >= args.target:
                best = k
        print(f"n={n}: smallest k with pooled coverage >= {args.target}: "
              f"{best} (all pairs: {(n - 1) / 2:.1f} per node)")


if __name__ == '__main__':
    main()
