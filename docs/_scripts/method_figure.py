"""Draws ``docs/_static/method.png``: pruned incidence with existence gates
(left) and the backprop-with-skips schedule (right).

    python docs/_scripts/method_figure.py
"""
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

OUT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '_static',
               'method.png')


def incidence_panel(ax):
    rng = np.random.default_rng(7)
    n, m = 7, 5
    # A set of nodes (no edges).
    pts = rng.uniform(0, 1, (n, 2)) * [1.4, 2.6] + [0.0, 0.2]
    ax.scatter(pts[:, 0], pts[:, 1], s=90, c='#4c72b0', zorder=3)
    for i, (px, py) in enumerate(pts):
        ax.text(px, py + 0.17, f'{i}', ha='center', fontsize=8)
    ax.text(0.7, -0.25, 'input set $X$ ($n$ nodes)', ha='center', fontsize=9)

    # Recurrent step arrow.
    ax.add_patch(FancyArrowPatch((1.75, 1.5), (2.75, 1.5), mutation_scale=15,
                                 arrowstyle='-|>', color='k'))
    ax.text(2.25, 1.75, 'refine\n$T$ steps', ha='center', fontsize=8)

    # Pruned incidence matrix m x n plus existence gate column.
    inc = rng.uniform(0, 0.25, (m, n))
    members = [(0, 1, 4), (1, 2, 5), (0, 3, 6)]
    for j, edge in enumerate(members):
        inc[j, list(edge)] = rng.uniform(0.8, 1.0, 3)
    gate = np.array([0.95, 0.9, 0.97, 0.08, 0.05])
    x0, y0, c = 3.0, 0.3, 0.36
    for j in range(m):
        for i in range(n):
            ax.add_patch(Rectangle((x0 + i * c, y0 + (m - 1 - j) * c), c, c,
                                   facecolor=plt.cm.Blues(inc[j, i]),
                                   edgecolor='w'))
        ax.add_patch(Rectangle((x0 + (n + 0.4) * c, y0 + (m - 1 - j) * c),
                               c, c, facecolor=plt.cm.Oranges(gate[j]),
                               edgecolor='w'))
    ax.text(x0 + n * c / 2, y0 + m * c + 0.12,
            'incidence $I \\in [0,1]^{m\\times n}$', ha='center', fontsize=9)
    ax.text(x0 + (n + 0.9) * c, y0 + m * c + 0.12, '$g$', ha='center',
            fontsize=9)
    ax.text(x0 + n * c / 2, y0 - 0.3,
            '$m$ slots (cap on #hyperedges), not $2^n$ rows', ha='center',
            fontsize=8)
    ax.annotate('gated off:\nnot a hyperedge', (x0 + (n + 0.9) * c, y0 + 0.5),
                (x0 + (n + 2.6) * c, y0 + 0.2), fontsize=7,
                arrowprops=dict(arrowstyle='->', lw=0.8))
    ax.set_xlim(-0.2, 6.6)
    ax.set_ylim(-0.55, 2.6)
    ax.set_aspect('equal')
    ax.axis('off')
    ax.set_title('Pruned incidence with existence gates', fontsize=10)


def schedule_panel(ax):
    T, B = 16, 4
    skips = [3, 5]  # S = 2 updates, skips sum to T - B S = 8
    t = 0
    y = 0
    for k, s in enumerate(skips):
        for _ in range(s):
            ax.add_patch(Rectangle((t, y), 0.9, 0.9, facecolor='0.85',
                                   edgecolor='0.6'))
            t += 1
        for _ in range(B):
            ax.add_patch(Rectangle((t, y), 0.9, 0.9, facecolor='#dd8452',
                                   edgecolor='k'))
            t += 1
        ax.annotate('', (t - B - 0.05, y - 0.25), (t - 0.05, y - 0.25),
                    arrowprops=dict(arrowstyle='->', color='#c44e52'))
        ax.text(t - B / 2 - 0.5, y - 0.45, f'loss, backward, update {k + 1}',
                ha='center', va='top', fontsize=7, color='#c44e52')
    ax.add_patch(Rectangle((0, 2.0), 0.9, 0.9, facecolor='0.85',
                           edgecolor='0.6'))
    ax.text(1.2, 2.3, 'skipped step (no_grad)', fontsize=8, va='center')
    ax.add_patch(Rectangle((8.5, 2.0), 0.9, 0.9, facecolor='#dd8452',
                           edgecolor='k'))
    ax.text(9.7, 2.3, 'step with gradient', fontsize=8, va='center')
    ax.text(T / 2, 1.25, f'one mini-batch: T={T}, B={B}, S=2, skips 3 + 5',
            ha='center', fontsize=8)
    ax.set_xlim(-0.5, T + 0.5)
    ax.set_ylim(-1.3, 3.2)
    ax.set_aspect('equal')
    ax.axis('off')
    ax.set_title('Backprop with skips: memory O(B), not O(T)', fontsize=10)


def main():
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.0),
                             gridspec_kw={'width_ratios': [1.15, 1]})
    incidence_panel(axes[0])
    schedule_panel(axes[1])
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == '__main__':
    main()
