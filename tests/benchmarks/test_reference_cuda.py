"""benchmarks/reference_cuda.py runs the reference harness's bench.py with
the reference model and batches moved to another device (checked here with
a stand-in harness on the 'meta' device, which needs no GPU)."""
import os.path as osp
import subprocess
import sys

from tests.benchmarks.helpers import ROOT

FAKE = {
    'convex_hull_dataset.py': '''
import torch
class Loader:
    collate_fn = staticmethod(lambda items: (torch.stack(items), 3))
def get_ch_dl(*args, **kwargs):
    return Loader()
''',
    'hypergraph_refiner.py': '''
import torch
class IterativeRefiner(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d)
''',
    'bench.py': '''
import sys
import torch
from convex_hull_dataset import get_ch_dl
from hypergraph_refiner import IterativeRefiner
net = IterativeRefiner(4)
dl = get_ch_dl('train', 2)
x, other = dl.collate_fn([torch.zeros(4), torch.ones(4)])
print('argv', sys.argv[1:], 'model on', net.lin.weight.device.type,
      'batch on', x.device.type, 'other', other)
''',
}


def _run(args):
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'reference_cuda.py'),
         *args], capture_output=True, text=True, timeout=120)


def test_reference_harness_runs_on_another_device(tmp_path):
    for name, text in FAKE.items():
        (tmp_path / name).write_text(text)
    res = _run([str(tmp_path), '30', '2', '7', '--device', 'meta'])
    assert res.returncode == 0, res.stderr
    assert "argv ['30', '2', '7'] model on meta batch on meta other 3" \
        in res.stdout


def test_reference_harness_missing_names_the_fix(tmp_path):
    res = _run([str(tmp_path), '30'])
    assert res.returncode != 0
    assert 'no bench.py in' in res.stderr and 'setup.sh' in res.stderr
