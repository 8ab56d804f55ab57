import os
import os.path as osp

import numpy as np
import pytest
import torch

uproot = pytest.importorskip('uproot')
ak = pytest.importorskip('awkward')

from torch_geometric.loader import DataLoader  # noqa: E402

from torch_geometric_hyper.datasets import ParticlePartitioning  # noqa: E402
from torch_geometric_hyper.datasets.particle_partitioning import (  # noqa
    FEATURE_MEAN, FEATURE_STD)

torch.set_num_threads(1)

# Four jets: 3 tracks (bottom, vertices 7,7,2), 1 track (skipped),
# 2 tracks (charm, one vertex), 4 tracks (light, labels 0,3,3,1).
VTX = [[7, 7, 2], [0], [5, 5], [0, 3, 3, 1]]
FLAV = [5.0, 0.0, 4.0, 0.0]


def _jets():
    rng = np.random.default_rng(0)
    trk = {}
    for name in ('trk_d0', 'trk_z0', 'trk_phi', 'trk_ctgtheta', 'trk_pt',
                 'trk_charge', 'trk_eta'):
        trk[name] = [rng.normal(size=len(v)).astype(np.float32).tolist()
                     for v in VTX]
    jet = {name: rng.normal(size=len(VTX)).astype(np.float32)
           for name in ('jet_pt', 'jet_eta', 'jet_phi', 'jet_M')}
    return trk, jet


def _write(path, trk, jet):
    branches = {k: ak.Array(v) for k, v in trk.items()}
    branches['trk_vtx_index'] = ak.values_astype(ak.Array(VTX), np.int32)
    branches.update(jet)
    branches['jet_flav'] = np.asarray(FLAV, dtype=np.float32)
    with uproot.recreate(path) as f:
        f['tree'] = branches


@pytest.fixture
def root(tmp_path):
    trk, jet = _jets()
    os.makedirs(tmp_path / 'raw')
    for name in ('training_data.root', 'valid_data.root', 'test_data.root'):
        _write(str(tmp_path / 'raw' / name), trk, jet)
    return str(tmp_path), trk, jet


def test_features_partition_skip(root):
    path, trk, jet = root
    ds = ParticlePartitioning(path, 'train', log=False)
    assert len(ds) == 3 and ds.num_skipped == 1
    mean = torch.tensor(FEATURE_MEAN)
    std = torch.tensor(FEATURE_STD)
    for data, j in zip(ds, [0, 2, 3]):
        n = len(VTX[j])
        raw = torch.tensor([trk[k][j] for k in (
            'trk_d0', 'trk_z0', 'trk_phi', 'trk_ctgtheta', 'trk_pt',
            'trk_charge')]).t()
        jets = torch.tensor([float(jet[k][j]) for k in (
            'jet_pt', 'jet_eta', 'jet_phi', 'jet_M')]).repeat(n, 1)
        expect = (torch.cat([raw, jets], 1) - mean) / std
        assert data.x.shape == (n, 10)
        assert torch.allclose(data.x, expect, atol=1e-5)
        assert int(data.flavour) == int(FLAV[j])
        assert float(data.jet_M) == pytest.approx(float(jet['jet_M'][j]))
    # vertex labels relabelled to 0..k-1 (increasing label order)
    assert ds[0].hyperedge_index.tolist() == [[0, 1, 2], [1, 1, 0]]
    assert ds[0].num_hyperedges == 2
    assert ds[1].hyperedge_index.tolist() == [[0, 1], [0, 0]]
    assert ds[2].hyperedge_index.tolist() == [[0, 1, 2, 3], [0, 2, 2, 1]]
    assert ds[2].num_hyperedges == 3
    assert ds.max_hyperedges == 3 and ds.max_nodes == 4
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_hyperedges.tolist() == [2, 1, 3]
    assert batch.flavour.tolist() == [5, 4, 0]
    assert batch.hyperedge_index[1].max() == 5


def test_flavour_filter_uses_cache(root):
    path, _, _ = root
    ParticlePartitioning(path, 'val', log=False)
    mtime = os.path.getmtime(osp.join(path, 'processed', 'val.pt'))
    light = ParticlePartitioning(path, 'val', flavour='light', log=False)
    assert len(light) == 1 and int(light[0].flavour) == 0
    assert light[0].num_nodes == 4
    bottom = ParticlePartitioning(path, 'val', flavour='bottom', log=False)
    assert [int(d.flavour) for d in bottom] == [5]
    assert os.path.getmtime(osp.join(path, 'processed', 'val.pt')) == mtime
    with pytest.raises(ValueError, match='flavour'):
        ParticlePartitioning(path, 'val', flavour='top', log=False)
    with pytest.raises(ValueError, match='split'):
        ParticlePartitioning(path, 'valid', log=False)


def test_missing_files_clear_error(tmp_path, monkeypatch):
    # no network: make the download fail at once
    monkeypatch.setattr(ParticlePartitioning, 'url',
                        'file:///nonexistent/dir/{}')
    with pytest.raises(RuntimeError) as info:
        ParticlePartitioning(str(tmp_path), 'test', log=False)
    msg = str(info.value)
    assert osp.join(str(tmp_path), 'raw', 'test_data.root') in msg
    assert 'training_data.root' in msg and 'valid_data.root' in msg
    assert 'by hand' in msg


def test_missing_uproot_message(monkeypatch):
    import builtins

    from torch_geometric_hyper.datasets import particle_partitioning as pp
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == 'uproot':
            raise ImportError('no uproot')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', fake_import)
    with pytest.raises(ImportError, match=r'torch_geometric_hyper\[jets\]'):
        pp._import_uproot()


SHARED = osp.join(osp.dirname(__file__), '..', '..', '..', 'shared', 'data',
                  'jets')


@pytest.mark.skipif(not osp.exists(osp.join(SHARED, 'validation',
                                            'valid_data.root')),
                    reason='shared jets sample not available')
def test_shared_sample(tmp_path):
    os.makedirs(tmp_path / 'raw')
    os.symlink(osp.abspath(osp.join(SHARED, 'validation', 'valid_data.root')),
               tmp_path / 'raw' / 'valid_data.root')
    ds = ParticlePartitioning(str(tmp_path), 'val', log=False)
    assert len(ds) == 2860 and ds.num_skipped == 0
    assert 2 <= ds.max_nodes <= 15 and ds.max_hyperedges <= 10
    assert sorted(torch.unique(ds._data.flavour).tolist()) == [0, 4, 5]
    # every track in exactly one vertex
    d = ds[0]
    assert d.hyperedge_index[0].tolist() == list(range(d.num_nodes))
    # the fixed standardisation roughly (not exactly) centres the sample
    assert ds._data.x.mean(0).abs().max() < 2.0
