import os
import os.path as osp

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull as QHull

from torch_geometric_hyper.datasets import ConvexHull


def test_spherical_3d_facets(tmp_path):
    ds = ConvexHull(tmp_path, num_points=12, num_samples=5, log=False)
    assert len(ds) == 5
    for data in ds:
        assert data.x.shape == (12, 3)
        assert torch.allclose(data.x.norm(dim=1), torch.ones(12), atol=1e-5)
        assert data.num_hyperedges == 2 * 12 - 4
        inc = data.to_dense_incidence()
        assert (inc.sum(1) == 3).all()
        expect = {tuple(sorted(f)) for f in
                  QHull(data.x.double().numpy()).simplices.tolist()}
        got = {tuple(sorted(torch.nonzero(r).view(-1).tolist()))
               for r in inc}
        assert got == expect


def test_deterministic_and_splits_differ(tmp_path):
    a = ConvexHull(tmp_path / 'a', num_points=8, num_samples=3, seed=7,
                   log=False)
    b = ConvexHull(tmp_path / 'b', num_points=8, num_samples=3, seed=7,
                   log=False)
    v = ConvexHull(tmp_path / 'a', 'val', num_points=8, num_samples=3,
                   seed=7, log=False)
    c = ConvexHull(tmp_path / 'c', num_points=8, num_samples=3, seed=8,
                   log=False)
    assert torch.equal(a[1].x, b[1].x)
    assert not torch.equal(a[0].x, v[0].x)
    assert not torch.equal(a[0].x, c[0].x)


def test_cached(tmp_path, monkeypatch):
    ConvexHull(tmp_path, num_points=8, num_samples=3, log=False)

    def boom(self, rng):
        raise AssertionError('regenerated despite the cache')

    monkeypatch.setattr(ConvexHull, 'generate', boom)
    ds = ConvexHull(tmp_path, num_points=8, num_samples=3, log=False)
    assert len(ds) == 3
    with pytest.raises(AssertionError, match='regenerated'):
        ConvexHull(tmp_path, num_points=8, num_samples=3, log=False,
                   force_reload=True)


def test_transform_and_pre_transform(tmp_path):
    def pre(data):
        data.tag = torch.tensor([1])
        return data

    def tf(data):
        data.x = data.x * 0
        return data

    ds = ConvexHull(tmp_path, num_points=8, num_samples=2, log=False,
                    pre_transform=pre, transform=tf)
    assert ds[0].tag.item() == 1
    assert ds[0].x.abs().sum() == 0


def test_range_of_sizes_and_gaussian(tmp_path):
    ds = ConvexHull(tmp_path, num_points=(6, 20), distribution='gaussian',
                    num_samples=20, log=False)
    sizes = {d.num_nodes for d in ds}
    assert len(sizes) > 1 and min(sizes) >= 6 and max(sizes) <= 20
    assert ds.max_hyperedges == max(d.num_hyperedges for d in ds)


def test_high_dimensional_hull(tmp_path):
    ds = ConvexHull(tmp_path, num_points=13, dim=10, num_samples=2,
                    log=False)
    inc = ds[0].to_dense_incidence()
    assert ds[0].x.shape == (13, 10)
    assert (inc.sum(1) == 10).all()


def test_degenerate_draws_are_redrawn(tmp_path, monkeypatch):
    from scipy.spatial import QhullError

    import torch_geometric_hyper.datasets.convex_hull as mod
    calls = {'n': 0}

    def flaky(points):
        calls['n'] += 1
        if calls['n'] == 1:
            raise QhullError('QH6154 initial simplex is flat')
        return QHull(points)

    monkeypatch.setattr(mod, '_QhullHull', flaky)
    ds = ConvexHull(tmp_path, num_points=8, num_samples=1, log=False)
    assert calls['n'] == 2 and ds[0].num_hyperedges == 12


@pytest.mark.parametrize('kwargs,match', [
    (dict(split='dev'), 'split'),
    (dict(distribution='cube'), 'distribution'),
    (dict(dim=1), 'dim'),
    (dict(num_points=3), 'num_points'),
    (dict(num_samples=0), 'num_samples'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvexHull(tmp_path, log=False, **kwargs)


def test_corrupt_cache_is_regenerated(tmp_path):
    ds = ConvexHull(str(tmp_path), 'val', num_points=8, num_samples=20,
                    log=False)
    expect = ds[7].x.clone()
    path = ds.processed_paths[0]
    for damage in (b'', b'garbage', open(path, 'rb').read()[:100]):
        with open(path, 'wb') as f:
            f.write(damage)
        with pytest.warns(UserWarning, match=rf'{path}.*could not be loaded'):
            again = ConvexHull(str(tmp_path), 'val', num_points=8,
                               num_samples=20, log=False)
        assert len(again) == 20 and torch.equal(again[7].x, expect)
    # no temporary file is left behind
    assert [f for f in os.listdir(osp.dirname(path)) if '.tmp' in f] == []


def _build(root, queue):
    try:
        ds = ConvexHull(root, 'train', num_points=10, num_samples=300,
                        log=False)
        queue.put((len(ds), float(ds[299].x.sum())))
    except Exception as err:  # pragma: no cover - reported to the parent
        queue.put(repr(err))


def test_two_processes_build_the_same_cache(tmp_path):
    import multiprocessing as mp
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build, args=(str(tmp_path), queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results[0] == results[1] and results[0][0] == 300
    ds = ConvexHull(str(tmp_path), 'train', num_points=10, num_samples=300,
                    log=False)
    assert float(ds[299].x.sum()) == results[0][1]


@pytest.mark.parametrize('kwargs,match', [
    (dict(dim=2.5), r"'dim' must be an integer >= 2, got 2.5"),  # was 2-D
    (dict(dim=True), "'dim' .* got True"),
    (dict(dim='3'), "'dim' .* got '3'"),
    (dict(num_samples=2.9), "'num_samples' .* got 2.9"),  # was 2 samples
    (dict(num_points=(5.5, 7.9)), "'num_points' .* got \\(5.5, 7.9\\)"),
    (dict(num_points=(8, 6)), r"'num_points' .* swap them: \(6, 8\)"),
    (dict(seed=0.5), "'seed' .* got 0.5"),  # was seed 0
])
def test_fractional_and_bool_arguments_refused(tmp_path, kwargs, match):
    kwargs = {'num_points': 6, 'num_samples': 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        ConvexHull(tmp_path, log=False, **kwargs)


def test_integral_floats_give_the_same_cache_and_data(tmp_path):
    a = ConvexHull(tmp_path / 'a', num_points=6, dim=3, num_samples=2,
                   seed=1, log=False)
    b = ConvexHull(tmp_path / 'b', num_points=6.0, dim=3.0,
                   num_samples=np.float32(2), seed=1.0, log=False)
    assert b.processed_file_names == a.processed_file_names
    assert (b.dim, b.num_points, b.num_samples, b.seed) == (3, (6, 6), 2, 1)
    for i in range(2):
        assert torch.equal(a[i].x, b[i].x)
        assert torch.equal(a[i].hyperedge_index, b[i].hyperedge_index)
