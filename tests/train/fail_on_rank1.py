"""Runs ``examples/convex_hull.py`` under torchrun with rank 1 failing at
its third update (``FAIL=raise``: an exception; ``FAIL=exit``: the process
dies at once), or with other options than rank 0's (``FAIL=options``): a
test that the other rank stops within a bounded time with a clear
message."""
import importlib.util
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    'convex_hull', osp.join(ROOT, 'examples', 'convex_hull.py'))
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
real = mod.MatchedIncidenceLoss.over_steps
calls = [0]


def failing(self, predictions, data):
    calls[0] += 1
    fail = os.environ.get('FAIL')
    if os.environ.get('RANK') == '1' and calls[0] == 3 and \
            fail in ('raise', 'exit'):
        if fail == 'raise':
            raise RuntimeError('rank 1 fails on purpose')
        os._exit(7)
    return real(self, predictions, data)


mod.MatchedIncidenceLoss.over_steps = failing
if __name__ == '__main__':
    argv = sys.argv[1:]
    if os.environ.get('FAIL') == 'options' and os.environ['RANK'] == '1':
        argv += ['--lr', '0.01']
    mod.main(argv)
