"""Runs ``examples/convex_hull.py`` with the training loss of rank 1 made
NaN at its third update, through ``over_steps`` (which the trainer calls
once per update): a test of ``--skip-nonfinite`` under torchrun."""
import importlib.util
import os
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    'convex_hull', osp.join(ROOT, 'examples', 'convex_hull.py'))
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
real = mod.MatchedIncidenceLoss.over_steps
calls = [0]


def poisoned(self, predictions, data):
    # the trainer hands every update's predictions to over_steps
    loss, value = real(self, predictions, data)
    calls[0] += 1
    if os.environ.get('RANK') == '1' and calls[0] == 3:
        return loss * float('nan'), float('nan')
    return loss, value


mod.MatchedIncidenceLoss.over_steps = poisoned
if __name__ == '__main__':
    mod.main(sys.argv[1:])
