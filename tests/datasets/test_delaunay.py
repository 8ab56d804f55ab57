import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay as ScipyDelaunay
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, is_undirected

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.datasets import (
    ConvexHull,
    Delaunay,
    delaunay_edge_index,
)


def test_delaunay_edge_index_by_hand():
    # Two triangles sharing the edge {1, 2}: 5 undirected edges.
    tri = np.array([[0, 1, 2], [2, 1, 3]])
    ei = delaunay_edge_index(tri, 4)
    expected = {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}
    got = {tuple(e) for e in ei.t().tolist()}
    assert got == expected | {(j, i) for i, j in expected}
    assert ei.size(1) == 10
    assert torch.equal(coalesce(ei), ei)


def test_edges_target(tmp_path):
    ds = Delaunay(tmp_path, 'train', num_points=12, num_samples=5, log=False)
    assert len(ds) == 5
    data = ds[0]
    assert type(data) is Data
    assert data.x.shape == (12, 2)
    assert float(data.x.min()) >= 0 and float(data.x.max()) <= 1
    assert is_undirected(data.edge_index)
    assert torch.equal(coalesce(data.edge_index), data.edge_index)
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    # Same edges as scipy on the same points (float32 round trip is exact
    # enough for a generic point set).
    tri = ScipyDelaunay(data.x.double().numpy()).simplices
    assert torch.equal(delaunay_edge_index(tri, 12), data.edge_index)
    # Euler: 3n - 3 - h edges with h hull points.
    from scipy.spatial import ConvexHull as H
    h = len(H(data.x.double().numpy()).vertices)
    assert data.edge_index.size(1) // 2 == 3 * 12 - 3 - h


def test_triangles_target(tmp_path):
    ds = Delaunay(tmp_path, 'val', num_points=(6, 9), target='triangles',
                  num_samples=6, log=False)
    data = ds[0]
    assert isinstance(data, HypergraphData)
    assert 6 <= data.num_nodes <= 9
    sizes = torch.bincount(data.hyperedge_index[1])
    assert bool((sizes == 3).all())
    assert sizes.numel() == data.num_hyperedges
    assert ds.max_hyperedges >= data.num_hyperedges


def test_determinism_and_cache(tmp_path):
    a = Delaunay(tmp_path / 'a', 'train', num_points=(5, 15), num_samples=8,
                 seed=3, log=False)
    b = Delaunay(tmp_path / 'b', 'train', num_points=(5, 15), num_samples=8,
                 seed=3, log=False)
    c = Delaunay(tmp_path / 'a', 'train', num_points=(5, 15), num_samples=8,
                 seed=3, log=False)  # from the cache
    other_seed = Delaunay(tmp_path / 'a', 'train', num_points=(5, 15),
                          num_samples=8, seed=4, log=False)
    test = Delaunay(tmp_path / 'a', 'test', num_points=(5, 15),
                    num_samples=8, seed=3, log=False)
    for i in range(8):
        assert torch.equal(a[i].x, b[i].x) and torch.equal(a[i].x, c[i].x)
        assert torch.equal(a[i].edge_index, b[i].edge_index)
    assert not torch.equal(a[0].x, other_seed[0].x) or \
        a[0].x.shape != other_seed[0].x.shape
    assert a[0].x.shape != test[0].x.shape or \
        not torch.equal(a[0].x, test[0].x)
    sizes = {a[i].num_nodes for i in range(8)}
    assert len(sizes) > 1 and min(sizes) >= 5 and max(sizes) <= 15


def test_defaults_and_repr(tmp_path):
    assert Delaunay.default_num_samples == {'train': 50_000, 'val': 5_000,
                                            'test': 5_000}
    ds = Delaunay(tmp_path, num_points=(20, 80), num_samples=2, log=False)
    assert 'delaunay_edges_n20-80' in repr(ds)
    with pytest.raises(TypeError, match='without hyperedges'):
        ds.max_hyperedges
    # The generalised base class still loads hypergraphs.
    hull = ConvexHull(tmp_path, num_points=8, num_samples=2, log=False)
    assert isinstance(hull[0], HypergraphData)


@pytest.mark.parametrize('kwargs, match', [
    (dict(target='faces'), "'target'"),
    (dict(num_points=2), "'num_points'"),
    (dict(num_points=(30, 20)), "'num_points'"),
    (dict(num_points='many'), "'num_points'"),
    (dict(split='dev'), "'split'"),
    (dict(num_samples=0), "'num_samples'"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Delaunay(tmp_path, log=False, **kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_points=(3.5, 9)), r"'num_points' .* got \(3.5, 9\)"),
    (dict(num_points='35'), "'num_points' .* got '35'"),  # was (3, 5)
    (dict(num_points=(True, 9)), "'num_points'"),
    (dict(num_points=(5, 6, 7)), "'num_points'"),
    (dict(num_samples=2.9), "'num_samples' .* got 2.9; pass a whole"),
    (dict(num_samples=True), "'num_samples' .* got True"),
    (dict(num_samples='3'), "'num_samples' .* got '3'"),
    (dict(seed=1.5), "'seed' .* got 1.5"),
    (dict(seed=True), "'seed' .* got True"),
    (dict(seed=-1), "'seed' .* got -1; pass a value >= 0"),
])
def test_fractional_bool_and_string_counts_refused(tmp_path, kwargs, match):
    kwargs = {'num_points': 5, 'num_samples': 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        Delaunay(tmp_path, log=False, **kwargs)


def test_integral_floats_are_the_ints(tmp_path):
    a = Delaunay(tmp_path / 'a', num_points=(5, 9), num_samples=3, seed=2,
                 log=False)
    b = Delaunay(tmp_path / 'b', num_points=(5.0, np.float64(9)),
                 num_samples=3.0, seed=2.0, log=False)
    assert b.processed_file_names == a.processed_file_names
    assert b.num_points == (5, 9) and type(b.num_points[0]) is int
    for i in range(3):
        assert torch.equal(a[i].x, b[i].x)
        assert torch.equal(a[i].edge_index, b[i].edge_index)


@pytest.mark.parametrize('tri, n, match', [
    ([[0, 1, 1]], 3, r'three different node ids .* triangle 0 = \[0, 1, 1\]'),
    ([[0, 1, 2], [2, 2, 2]], 3, 'triangle 1 '),
    ([[0, 1, 5]], 3, r"'triangles' holds ids outside \[0, 3\).*num_nodes"),
    ([[0, -1, 2]], 3, r"'triangles' holds ids outside \[0, 3\): min -1"),
    ([[0, 1, 2.5]], 3, "'triangles' must hold integers, got float64 value "
     "2.5"),
    ([[0, 1]], 3, r"'triangles' must have shape \(t, 3\)"),
    ([['0', '1', '2']], 3, "'triangles' must hold integers"),
    (np.zeros((0, 3), dtype=np.int64), 0, "'num_nodes' .* got 0"),
    ([[0, 1, 2]], 0, "'num_nodes' .* got 0"),
    ([[0, 1, 2]], 3.5, "'num_nodes' .* got 3.5"),
    ([[0, 1, 2]], True, "'num_nodes' .* got True"),
    ([[0, 1, 2]], '3', "'num_nodes' .* got '3'"),
])
def test_delaunay_edge_index_refuses_bad_input(tri, n, match):
    # before: self-loops (0, 0), edges to nodes 5 or -1, ids 2.5 -> 2 and
    # num_nodes 3.5 -> keys of 3.5 were returned silently
    with pytest.raises(ValueError, match=match):
        delaunay_edge_index(np.asarray(tri), n)


def test_delaunay_edge_index_integral_floats_and_flat_input():
    tri = np.array([[0, 1, 2], [2, 1, 3]])
    expect = delaunay_edge_index(tri, 4)
    assert torch.equal(delaunay_edge_index(tri.astype(float), 4.0), expect)
    assert torch.equal(delaunay_edge_index(tri.reshape(-1), 4), expect)
    assert delaunay_edge_index(np.zeros((0, 3), dtype=np.int64),
                               1).shape == (2, 0)
