import subprocess
import sys

import pytest

from tests.benchmarks.helpers import ROOT, check_outputs, run_script


def test_assignment_solvers_quick_outputs(tmp_path):
    run_script('assignment_solvers', ['--train-batches', 1,
                                      '--solver-threads', 1, 2], tmp_path)
    from torch_geometric_hyper.matching import available_backends
    backends = available_backends()
    rows = check_outputs(tmp_path / 'out' / 'assignment_solvers_quick',
                         ['n', 'rows', 'm', 'train_batches', 'problems',
                          'problems_per_call', 'backend', 'solver_threads',
                          'ms_per_problem', 'max_gap', 'auto'],
                         2 * 2 * len(backends), ['ms_per_problem', 'max_gap'])
    assert {(r['rows'], r['m']) for r in rows} == {(16, 16), (16, 20)}
    assert all(r['train_batches'] == 1 for r in rows)
    # one training batch of 4 sets, B=1 step x S=2 updates: 8 problems,
    # in one call per update
    assert all(r['problems'] == 8 and r['problems_per_call'] == 4
               for r in rows)
    assert {(r['backend'], r['solver_threads']) for r in rows} == {
        (b, t) for b in backends for t in (1, 2)}
    # every backend reaches the same optimum on the captured costs
    assert all(r['max_gap'] < 1e-9 for r in rows)
    picked = {(r['rows'], r['m'], r['backend']) for r in rows if r['auto']}
    best = 'lapx_batch' if 'lapx' in backends else 'scipy'
    assert picked == {(16, 16, best), (16, 20, best)}


@pytest.mark.parametrize('shape,message', [('30', 'n:m pairs'),
                                           ('30:50', 'm >= 56')])
def test_assignment_solvers_rejects_bad_shapes(tmp_path, shape, message):
    res = subprocess.run([sys.executable, f'{ROOT}/benchmarks/'
                          'assignment_solvers.py', '--shapes', shape],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 2 and message in res.stderr
