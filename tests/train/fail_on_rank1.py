"""Runs ``examples/convex_hull.py`` under torchrun with rank 1 misbehaving
at its third update, as the environment variable ``FAIL`` says: ``nan``
(its loss is NaN, through ``over_steps``, which the trainer calls once per
update), ``raise`` (an exception), ``exit`` (the process dies at once), or
``options`` (rank 1 starts with another ``--lr`` than rank 0). Tests of
``--skip-nonfinite`` and of the way a failing rank stops the others."""
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tests.conftest import load_script  # noqa: E402

mod = load_script('examples/convex_hull.py')
real = mod.MatchedIncidenceLoss.over_steps
calls = [0]


def failing(self, predictions, data):
    loss, value = real(self, predictions, data)
    calls[0] += 1
    fail = os.environ.get('FAIL')
    if os.environ.get('RANK') != '1' or calls[0] != 3:
        return loss, value
    if fail == 'nan':
        return loss * float('nan'), float('nan')
    if fail == 'raise':
        raise RuntimeError('rank 1 fails on purpose')
    if fail == 'exit':
        os._exit(7)
    return loss, value


mod.MatchedIncidenceLoss.over_steps = failing
if __name__ == '__main__':
    argv = sys.argv[1:]
    if os.environ.get('FAIL') == 'options' and os.environ['RANK'] == '1':
        argv += ['--lr', '0.01']
    mod.main(argv)
