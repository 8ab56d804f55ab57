r"""Pictures of training runs and predictions (needs matplotlib:
``pip install matplotlib`` or the ``docs`` extra).

Every function writes one PNG and returns its path:
:func:`plot_learning_curve` (validation F1 and loss against batches),
:func:`plot_hull` (predicted and true facets of a 3-D point set),
:func:`plot_graph` (predicted and true edges of a 2-D point set) and
:func:`plot_partition` (the tracks of a jet coloured by true and predicted
vertex).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("pictures need matplotlib: pip install matplotlib "
                          "(or torch_geometric_hyper[docs])") from err
    return plt


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp.png'
    fig.savefig(tmp, dpi=110, bbox_inches='tight')
    os.replace(tmp, path)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def _points(points, dim: int, name: str = 'points') -> np.ndarray:
    p = np.asarray(points.detach().cpu() if hasattr(points, 'detach')
                   else points, dtype=float)
    if p.ndim != 2 or p.shape[1] < dim:
        raise ValueError(f"'{name}' must be [n, >= {dim}], got "
                         f"{list(p.shape)}")
    return p[:, :dim]


def _tuples(edges: Iterable, n: int, name: str) -> List[tuple]:
    out = [tuple(sorted(int(i) for i in e)) for e in edges]
    bad = [e for e in out if e and (e[0] < 0 or e[-1] >= n)]
    if bad:
        raise ValueError(f"'{name}' names nodes outside [0, {n}): {bad[0]}")
    return out


def plot_learning_curve(history: Sequence[Dict[str, float]], path: str,
                        title: str = '') -> str:
    r"""Validation F1 (every key starting with ``f1``) and loss (``loss``)
    against batches (``step``), one point per validation.

    Args:
        history (list of dict): e.g. ``[{'step': 50, 'f1': 0.1,
            'f1_reference': 0.12, 'loss': 0.2}, ...]``.
        path (str): the PNG to write.
        title (str, optional): figure title.
    """
    if not history:
        raise ValueError("'history' is empty: validate at least once")
    plt = _pyplot()
    steps = [h['step'] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4),
                                   constrained_layout=True)
    for key in sorted({k for h in history for k in h if k.startswith('f1')}):
        ax1.plot(steps, [h.get(key, np.nan) for h in history], marker='.',
                 label=key)
    ax1.set_xlabel('batches')
    ax1.set_ylabel('validation F1')
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    if any('loss' in h for h in history):
        ax2.plot(steps, [h.get('loss', np.nan) for h in history],
                 marker='.', color='C3')
    ax2.set_xlabel('batches')
    ax2.set_ylabel('validation loss')
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_hull(points, pred: Iterable, target: Iterable, path: str,
              title: str = '') -> str:
    r"""Predicted facets (green when exactly a true facet, red otherwise)
    beside the true facets of one 3-D point set.

    Args:
        points: :math:`(n, 3)` coordinates.
        pred, target: node-index triples.
        path (str): the PNG to write.
    """
    p = _points(points, 3)
    pred = _tuples(pred, len(p), 'pred')
    target = _tuples(target, len(p), 'target')
    plt = _pyplot()
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    truth = set(target)
    fig = plt.figure(figsize=(9, 4.2))
    for k, (facets, name) in enumerate(((pred, 'predicted'),
                                        (target, 'true'))):
        ax = fig.add_subplot(1, 2, k + 1, projection='3d')
        ax.scatter(*p.T, s=6, color='k')
        tris = [p[list(f)] for f in facets if len(f) == 3]
        colours = [('C2' if f in truth else 'C3') if name == 'predicted'
                   else 'C0' for f in facets if len(f) == 3]
        if tris:
            ax.add_collection3d(Poly3DCollection(
                tris, facecolors=colours, edgecolors='k', linewidths=0.3,
                alpha=0.35))
        right = sum(f in truth for f in set(facets))
        ax.set_title(f'{name}: {len(facets)} facets' +
                     (f', {right} right' if name == 'predicted' else ''),
                     fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_graph(points, pred: Iterable, target: Iterable, path: str,
               title: str = '') -> str:
    r"""Predicted edges of a 2-D point set against the true ones: true
    positives black, false positives red, missed edges dashed blue.

    Args:
        points: :math:`(n, 2)` coordinates.
        pred, target: node pairs (either direction, repeats ignored).
        path (str): the PNG to write.
    """
    p = _points(points, 2)
    pred = set(_tuples(pred, len(p), 'pred'))
    target = set(_tuples(target, len(p), 'target'))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for edges, style, label in ((pred & target, dict(color='k', lw=0.8),
                                 'right'),
                                (pred - target, dict(color='C3', lw=0.8),
                                 'wrong'),
                                (target - pred, dict(color='C0', lw=0.8,
                                                     ls='--'), 'missed')):
        for k, (i, j) in enumerate(sorted(e for e in edges if len(e) == 2)):
            ax.plot(*p[[i, j]].T, **style,
                    label=f'{label} ({len(edges)})' if k == 0 else None)
    ax.scatter(*p.T, s=8, color='k', zorder=3)
    ax.set_aspect('equal')
    ax.legend(fontsize=8, loc='upper right')
    ax.set_title(title or 'predicted vs true edges', fontsize=9)
    return _save(fig, path)


def plot_partition(coords, pred, target, path: str, title: str = '',
                   axis_labels: Sequence[str] = ('$d_0$', '$z_0$')) -> str:
    r"""The elements of one set (e.g. the tracks of a jet, at their
    impact parameters :math:`(d_0, z_0)`) coloured by true and by predicted
    cluster, side by side.

    Args:
        coords: :math:`(n, \ge 2)`; the first two columns are drawn.
        pred, target: :math:`(n)` cluster labels.
        path (str): the PNG to write.
    """
    p = _points(coords, 2, 'coords')
    pred = np.asarray(getattr(pred, 'cpu', lambda: pred)()).reshape(-1)
    target = np.asarray(getattr(target, 'cpu', lambda: target)()).reshape(-1)
    if len(pred) != len(p) or len(target) != len(p):
        raise ValueError(f"'pred' and 'target' need one label per element "
                         f"({len(p)}), got {len(pred)} and {len(target)}")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharex=True,
                             sharey=True)
    for ax, labels, name in ((axes[0], target, 'true'),
                             (axes[1], pred, 'predicted')):
        _, colour = np.unique(labels, return_inverse=True)
        ax.scatter(p[:, 0], p[:, 1], c=colour, cmap='tab10', s=40,
                   vmin=0, vmax=9, edgecolors='k', linewidths=0.4)
        ax.set_title(f'{name}: {len(set(labels.tolist()))} vertices',
                     fontsize=9)
        ax.set_xlabel(axis_labels[0])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(axis_labels[1])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# -- one prediction of a trained model against its truth --------------------
def _predict_one(model, data, **kwargs):
    import torch
    model.eval()
    data = data.to(next(model.parameters()).device)
    if getattr(model, 'slot_prior', None) is not None:
        kwargs['generator'] = torch.Generator(
            device=data.x.device).manual_seed(0)
    batch = torch.zeros(data.num_nodes, dtype=torch.long,
                        device=data.x.device)
    with torch.no_grad():
        return data, model(data.x, batch, 1, **kwargs)


def draw_hull_prediction(model, data, path: str, edge_size: int = 3) -> str:
    """A 3-D hull ``data``: the facets ``model`` predicts (green right, red
    wrong) against the true ones."""
    import torch
    from torch_geometric_hyper.metrics import hyperedge_sets
    data, pred = _predict_one(model, data)
    ptr = torch.tensor([0, data.num_nodes])
    index, edge_graph = pred.to_hyperedge_index(edge_size=edge_size)
    pred_sets = hyperedge_sets(index, edge_graph, ptr, 1)[0]
    true_sets = hyperedge_sets(
        data.hyperedge_index,
        torch.zeros(int(data.num_hyperedges), dtype=torch.long), ptr, 1)[0]
    return plot_hull(data.x.cpu(), pred_sets, true_sets, path,
                     title='test set 0: predicted (green right, red wrong) '
                     'vs true facets')


def draw_graph_prediction(model, data, path: str) -> str:
    """A 2-D set ``data``: the edges ``model`` predicts against the true
    ones (right black, wrong red, missed dashed)."""
    data, pred = _predict_one(model, data)
    return plot_graph(data.x.cpu(), pred.edge_index().t().tolist(),
                      data.edge_index.t().tolist(), path,
                      title='test set 0: right (black), wrong (red), missed '
                      '(dashed)')


def draw_partition_prediction(model, data, path: str, **kwargs) -> str:
    """A jet ``data``: its tracks at their first two features (the
    standardised impact parameters), coloured by true and predicted
    vertex; ``kwargs`` go to the model (e.g. ``num_iterations``)."""
    from torch_geometric_hyper.metrics import decode_partition, \
        target_partition
    data, pred = _predict_one(model, data, **kwargs)
    return plot_partition(data.x[:, :2].cpu(), decode_partition(pred).cpu(),
                          target_partition(data.hyperedge_index,
                                           data.num_nodes).cpu(), path,
                          title='one test jet: tracks by vertex')
