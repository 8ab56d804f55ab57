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
    with pytest.raises(FileNotFoundError) as info:
        ParticlePartitioning(str(tmp_path), 'test', log=False)
    msg = str(info.value)
    assert msg.startswith("the jets data file for split 'test' is missing")
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
                    reason=f'shared jets sample not found at '
                    f'{osp.abspath(SHARED)}; see the docs page "Particle '
                    f'jets", section "Getting the data" '
                    f'(docs/guides/jets.rst)')
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


def _quick_fail(fn, match, exc=ValueError):
    import time
    start = time.perf_counter()
    with pytest.raises(exc, match=match):
        fn()
    return time.perf_counter() - start


@pytest.mark.parametrize('content, match', [
    (b'', 'is empty'),
    (b'PK\x03\x04 not root', 'is not a ROOT file'),
])
def test_broken_raw_file_names_file_and_problem(tmp_path, content, match):
    os.makedirs(tmp_path / 'raw')
    (tmp_path / 'raw' / 'valid_data.root').write_bytes(content)
    _quick_fail(lambda: ParticlePartitioning(str(tmp_path), 'val',
                                             log=False),
                rf'valid_data.root {match}.*expected a ROOT file')


def test_truncated_raw_file(root, tmp_path):
    path, _, _ = root
    raw = osp.join(path, 'raw', 'valid_data.root')
    whole = open(raw, 'rb').read()
    with open(raw, 'wb') as f:
        f.write(whole[:len(whole) // 2])
    _quick_fail(lambda: ParticlePartitioning(path, 'val', log=False),
                rf'valid_data.root is truncated: its header records '
                rf'{len(whole)} bytes but the file has {len(whole) // 2}')


def test_missing_branch_names_branch_and_schema(tmp_path):
    trk, jet = _jets()
    del trk['trk_pt']
    os.makedirs(tmp_path / 'raw')
    _write(str(tmp_path / 'raw' / 'test_data.root'), trk, jet)
    _quick_fail(lambda: ParticlePartitioning(str(tmp_path), 'test',
                                             log=False),
                r"lacks the branches \['trk_pt'\]; expected a ROOT file "
                r"with a TTree 'tree'")


def test_missing_file_says_missing_and_where(tmp_path, monkeypatch):
    def offline(self, url, path):
        raise OSError('no network')

    monkeypatch.setattr(ParticlePartitioning, '_fetch', offline)
    with pytest.raises(FileNotFoundError) as info:
        ParticlePartitioning(str(tmp_path), 'val', log=False)
    text = str(info.value)
    assert text.startswith("the jets data file for split 'val' is missing")
    assert osp.join(str(tmp_path), 'raw', 'valid_data.root') in text
    assert 'https://zenodo.org/record/4044628/files/valid_data.root' in text
    assert 'could not download' not in text


def test_corrupt_cache_is_rebuilt_from_raw(root):
    path, _, _ = root
    ds = ParticlePartitioning(path, 'train', log=False)
    expect = [d.x.clone() for d in ds]
    processed = ds.processed_paths[0]
    whole = open(processed, 'rb').read()
    with open(processed, 'wb') as f:
        f.write(whole[:len(whole) // 3])
    with pytest.warns(UserWarning, match=r'could not be loaded.*rebuilding'):
        again = ParticlePartitioning(path, 'train', log=False)
    assert len(again) == 3 and again.num_skipped == 1
    assert all(torch.equal(a.x, b) for a, b in zip(again, expect))
    # the stats file too
    with open(ds.processed_paths[1], 'w') as f:
        f.write('{"num_read": 4')
    with pytest.warns(UserWarning, match='train_stats.json'):
        again = ParticlePartitioning(path, 'train', log=False)
    assert again.num_skipped == 1
