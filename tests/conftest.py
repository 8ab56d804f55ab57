import pytest
import torch

#: Parametrise a test with ``@pytest.mark.parametrize('device', DEVICES)``:
#: the CPU always, CUDA where a GPU is present (skipped otherwise).
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device'))]


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(12345)
    yield


def make_batch(sizes, in_channels=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), in_channels, generator=gen)
    batch = torch.cat([torch.full((n, ), g) for g, n in enumerate(sizes)])
    return x, batch


def load_script(path):
    """Imports a script of the repository (e.g. ``'examples/convex_hull.py'``)
    as a module, for tests of its functions."""
    import importlib.util
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(root, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_jets_file(path, num_jets, seed):
    """One ROOT file of ``num_jets`` random jets in the dataset's schema
    (tracks of 2-6, vertices 0-2, the three flavours)."""
    import numpy as np
    ak = pytest.importorskip('awkward')
    uproot = pytest.importorskip('uproot')
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, size=num_jets)
    branches = {name: ak.Array([rng.normal(size=n).astype(np.float32)
                                for n in sizes])
                for name in ('trk_d0', 'trk_z0', 'trk_phi', 'trk_ctgtheta',
                             'trk_pt', 'trk_charge')}
    branches['trk_vtx_index'] = ak.values_astype(ak.Array(
        [rng.integers(0, 3, size=n) for n in sizes]), np.int32)
    for name in ('jet_pt', 'jet_eta', 'jet_phi', 'jet_M'):
        branches[name] = rng.normal(size=num_jets).astype(np.float32)
    branches['jet_flav'] = rng.choice([0.0, 4.0, 5.0], size=num_jets
                                      ).astype(np.float32)
    with uproot.recreate(path) as f:
        f['tree'] = branches


def write_fake_jets(folder, num_jets=24, split_dirs=True):
    """The three raw files of ParticlePartitioning in ``folder``: in
    ``train/``, ``validation/``, ``test/`` as the shared sample is laid out
    (``split_dirs``), or flat as the dataset's ``raw`` folder holds them.
    Returns ``folder``."""
    import os
    import os.path as osp
    for sub, name, seed in (('train', 'training_data.root', 0),
                            ('validation', 'valid_data.root', 1),
                            ('test', 'test_data.root', 2)):
        where = osp.join(str(folder), sub) if split_dirs else str(folder)
        os.makedirs(where, exist_ok=True)
        write_jets_file(osp.join(where, name), num_jets, seed)
    return folder
