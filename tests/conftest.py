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
