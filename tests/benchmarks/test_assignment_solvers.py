import subprocess
import sys

import pytest

from tests.benchmarks.helpers import ROOT, check_outputs, run_script


def test_assignment_solvers_quick_outputs(tmp_path):
    run_script('assignment_solvers', ['--train-batches', 1], tmp_path)
    from torch_geometric_hyper.matching import available_backends
    backends = available_backends()
    rows = check_outputs(tmp_path / 'out' / 'assignment_solvers_quick',
                         ['n', 'rows', 'm', 'train_batches', 'problems',
                          'backend', 'ms_per_problem', 'max_gap', 'auto'],
                         2 * len(backends), ['ms_per_problem', 'max_gap'])
    assert {(r['rows'], r['m']) for r in rows} == {(16, 16), (16, 20)}
    assert all(r['train_batches'] == 1 for r in rows)
    # one training batch of 4 sets, B=1 step x S=2 updates: 8 problems
    assert all(r['problems'] == 8 for r in rows)
    # every backend reaches the same optimum on the captured costs
    assert all(r['max_gap'] < 1e-9 for r in rows)
    picked = {(r['rows'], r['m']): r['backend'] for r in rows if r['auto']}
    square = 'lapx' if 'lapx' in backends else 'scipy'
    assert picked == {(16, 16): square, (16, 20): 'scipy'}


@pytest.mark.parametrize('shape,message', [('30', 'n:m pairs'),
                                           ('30:50', 'm >= 56')])
def test_assignment_solvers_rejects_bad_shapes(tmp_path, shape, message):
    res = subprocess.run([sys.executable, f'{ROOT}/benchmarks/'
                          'assignment_solvers.py', '--shapes', shape],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 2 and message in res.stderr
