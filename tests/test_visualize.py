import numpy as np
import pytest

pytest.importorskip('matplotlib')

from torch_geometric_hyper.visualize import (  # noqa: E402
    plot_graph,
    plot_hull,
    plot_learning_curve,
    plot_partition,
)

PNG = b'\x89PNG'


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(4) == PNG


def test_learning_curve(tmp_path):
    hist = [{'step': 50 * i, 'f1': 0.1 * i, 'f1_reference': 0.12 * i,
             'loss': 1.0 / i} for i in range(1, 5)]
    assert is_png(plot_learning_curve(hist, str(tmp_path / 'a' / 'c.png')))
    with pytest.raises(ValueError, match='empty'):
        plot_learning_curve([], str(tmp_path / 'x.png'))


def test_hull_graph_partition(tmp_path):
    from scipy.spatial import ConvexHull
    pts = np.random.default_rng(0).normal(size=(12, 3))
    facets = ConvexHull(pts).simplices.tolist()
    pred = facets[:-3] + [facets[0], [0, 1, 2]]
    assert is_png(plot_hull(pts, pred, facets, str(tmp_path / 'h.png')))
    pts2 = pts[:, :2]
    assert is_png(plot_graph(pts2, [(0, 1), (1, 2), (3, 4)],
                             [(1, 0), (2, 3)], str(tmp_path / 'g.png')))
    assert is_png(plot_partition(pts, [0, 0, 1] * 4, [0, 1, 1] * 4,
                                 str(tmp_path / 'p.png')))
    with pytest.raises(ValueError, match=r"'pred' names nodes outside"):
        plot_hull(pts, [(0, 1, 99)], facets, str(tmp_path / 'x.png'))
    with pytest.raises(ValueError, match=r"'points' must be \[n, >= 3\]"):
        plot_hull(pts2, [], [], str(tmp_path / 'x.png'))
    with pytest.raises(ValueError, match='one label per element'):
        plot_partition(pts, [0], [0], str(tmp_path / 'x.png'))
