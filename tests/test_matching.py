import itertools
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from torch_geometric_hyper.matching import available_backends, linear_assignment

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.parametrize('backend', available_backends())
def test_rectangular_optimum(backend):
    rng = np.random.default_rng(0)
    cost = rng.random((3, 5))
    cols = linear_assignment([cost, np.zeros((0, 4))], backend)
    best = min(sum(cost[r, c] for r, c in enumerate(p))
               for p in itertools.permutations(range(5), 3))
    assert cost[np.arange(3), cols[0]].sum() == pytest.approx(best)
    assert len(set(cols[0])) == 3 and cols[1].size == 0


def test_errors():
    with pytest.raises(ValueError, match='rows <= cols'):
        linear_assignment([np.zeros((3, 2))])
    with pytest.raises(ValueError, match='unknown'):
        linear_assignment([], backend='auction')


def test_threaded_solves_match_serial_in_order():
    rng = np.random.default_rng(3)
    costs = [rng.random((int(rng.integers(0, 9)), 9)) for _ in range(37)]
    serial = linear_assignment(costs, num_threads=1)
    threaded = linear_assignment(costs, num_threads=3)
    assert len(threaded) == len(costs)
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match='rows <= cols'):
        linear_assignment(costs + [rng.random((5, 2))], num_threads=3)


def test_auto_backend_by_shape_and_device(monkeypatch):
    from torch_geometric_hyper import matching
    from torch_geometric_hyper.matching import resolve_backend
    for installed in (True, False):
        monkeypatch.setattr(matching, '_lapx_available', lambda: installed)
        host = 'lapx_batch' if installed else 'scipy'
        for rows, cols in ((56, 56), (56, 64), (2000, 2000), (None, 56)):
            assert resolve_backend('auto', cols, rows=rows) == host
        assert resolve_backend('scipy', 56, rows=56) == 'scipy'
        assert resolve_backend('lapx', 64, rows=56) == 'lapx'
        for gpu_solver in (True, False):
            monkeypatch.setattr(matching, '_torch_la_available',
                                lambda: gpu_solver)
            assert resolve_backend('auto', 56, device='cpu') == host
            assert resolve_backend('auto', 56, device='cuda:0') == (
                'torch' if gpu_solver else host)
    monkeypatch.undo()
    # 'auto' finds the optimum like the others, on small and large problems
    rng = np.random.default_rng(0)
    for rows, cols in ((5, 8), (70, 80), (60, 60)):
        cost = rng.random((rows, cols))
        auto, = linear_assignment([cost], 'auto')
        ref, = linear_assignment([cost], 'scipy')
        assert np.isclose(cost[np.arange(rows), auto].sum(),
                          cost[np.arange(rows), ref].sum())
        assert len(set(auto.tolist())) == rows


@pytest.mark.parametrize('constant', [0.0, -3.5, 1e3])
def test_constant_rows_leave_the_optimum_of_the_others(constant):
    # the claim the batched solvers rest on, checked with scipy: rows whose
    # cost is the same for every column, added up to rows <= cols, change
    # neither the optimal total of the real rows nor their optimality
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(7)
    for rows, cols, extra in ((3, 5, 2), (4, 9, 5), (6, 6, 0), (1, 7, 3),
                              (10, 12, 1)):
        cost = rng.normal(size=(rows, cols)).round(1)  # ties too
        r, c = linear_sum_assignment(cost)
        best = cost[r, c].sum()
        padded = np.vstack([cost, np.full((extra, cols), constant)])
        pr, pc = linear_sum_assignment(padded)
        assert padded[pr, pc].sum() == pytest.approx(best + extra * constant)
        real = pc[pr < rows]
        assert cost[np.arange(rows), real].sum() == pytest.approx(best)
        assert len(set(real.tolist())) == rows


@pytest.mark.parametrize('threads', [1, 2])
def test_batched_solve_reaches_the_scipy_optimum(threads, monkeypatch):
    from torch_geometric_hyper import _assignment_batch
    if 'lapx_batch' not in available_backends():
        pytest.skip('needs the optional package lapx')
    rng = np.random.default_rng(11)
    costs = []
    for _ in range(30):  # mixed column counts, rows, ties and empties
        cols = int(rng.choice([6, 9, 16]))
        rows = int(rng.integers(0, cols + 1))
        cost = rng.random((rows, cols))
        costs.append(cost.round(1) if rng.random() < 0.3 else cost)
    costs.append(np.zeros((0, 0)))
    ref = linear_assignment(costs, 'scipy')
    # tiny chunks too: problems of one column count in several calls
    for chunk in (2 ** 22, 300):
        monkeypatch.setattr(_assignment_batch, 'BATCH_CHUNK_ENTRIES', chunk)
        for backend in ('lapx_batch', 'auto'):
            out = linear_assignment(costs, backend, num_threads=threads)
            assert len(out) == len(costs)
            for cost, a, b in zip(costs, out, ref):
                rows = np.arange(cost.shape[0])
                assert a.shape == b.shape and a.dtype == np.int64
                assert len(set(a.tolist())) == cost.shape[0]
                assert cost[rows, a].sum() == pytest.approx(
                    cost[rows, b].sum(), abs=1e-12)


def test_batched_linear_assignment_of_a_tensor():
    import torch

    from torch_geometric_hyper.matching import batched_linear_assignment
    gen = torch.Generator().manual_seed(2)
    cost = torch.rand(5, 4, 6, generator=gen)
    for backend in available_backends():
        cols = batched_linear_assignment(cost, backend)
        assert cols.shape == (5, 4) and cols.dtype == torch.long
        ref = linear_assignment(list(cost.double().numpy()), 'scipy')
        for k in range(5):
            assert cost[k, torch.arange(4), cols[k]].sum().item() == \
                pytest.approx(cost[k].double().numpy()[np.arange(4),
                                                       ref[k]].sum())
    assert batched_linear_assignment(cost[:0]).shape == (0, 4)
    with pytest.raises(ValueError, match='rows <= cols'):
        batched_linear_assignment(torch.rand(2, 5, 3))


def test_gpu_backend_needs_its_package(monkeypatch):
    import torch

    from torch_geometric_hyper import matching
    from torch_geometric_hyper.matching import batched_linear_assignment
    monkeypatch.setattr(matching, '_torch_la_available', lambda: False)
    assert 'torch' not in available_backends()
    with pytest.raises(ValueError, match='torch-linear-assignment'):
        linear_assignment([np.zeros((2, 2))], 'torch')
    with pytest.raises(ValueError, match='torch-linear-assignment'):
        batched_linear_assignment(torch.zeros(1, 2, 2), 'torch')


def stub_gpu_solver(monkeypatch):
    """Installs a stand-in for the optional package torch-linear-assignment
    that keeps its documented contract (``[B, W, T]`` costs where they are
    -> ``[B, W]`` column per row, -1 unassigned) with SciPy on the CPU, so
    the code around the GPU solver runs without CUDA."""
    import types

    import torch
    from scipy.optimize import linear_sum_assignment
    module = types.ModuleType('torch_linear_assignment')

    def batch_linear_assignment(cost):
        b, w, _ = cost.shape
        out = torch.full((b, w), -1, dtype=torch.long)
        for k in range(b):
            rows, cols = linear_sum_assignment(cost[k].cpu().numpy())
            out[k, torch.from_numpy(rows)] = torch.from_numpy(cols)
        return out.to(cost.device)
    module.batch_linear_assignment = batch_linear_assignment
    monkeypatch.setitem(sys.modules, 'torch_linear_assignment', module)


def test_gpu_backend_code_path_with_a_stand_in_solver(monkeypatch):
    import torch

    from torch_geometric_hyper.matching import batched_linear_assignment
    stub_gpu_solver(monkeypatch)
    assert 'torch' in available_backends()
    rng = np.random.default_rng(8)
    costs = [rng.random((int(rng.integers(0, 7)), int(rng.choice([6, 9]))))
             for _ in range(12)]
    for cost, a, b in zip(costs, linear_assignment(costs, 'torch'),
                          linear_assignment(costs, 'scipy')):
        rows = np.arange(cost.shape[0])
        assert a.shape == b.shape and len(set(a.tolist())) == len(rows)
        assert cost[rows, a].sum() == pytest.approx(cost[rows, b].sum())
    cost = torch.rand(4, 3, 5, dtype=torch.float64)
    cols = batched_linear_assignment(cost, 'torch')
    ref = batched_linear_assignment(cost, 'scipy')
    got = cost.gather(2, cols[..., None]).sum((1, 2))
    assert torch.allclose(got, cost.gather(2, ref[..., None]).sum((1, 2)))
    assert batched_linear_assignment(cost[:, :0], 'torch').shape == (4, 0)


def _gpu_solver():
    import importlib.util

    import torch
    return torch.cuda.is_available() and \
        importlib.util.find_spec('torch_linear_assignment') is not None


@pytest.mark.skipif(not _gpu_solver(), reason='needs CUDA and the optional '
                    'package torch-linear-assignment')
def test_gpu_solver_reaches_the_scipy_optimum():
    import torch

    from torch_geometric_hyper.matching import batched_linear_assignment
    gen = torch.Generator().manual_seed(4)
    for P, R, C in ((64, 56, 56), (16, 40, 64), (3, 1, 5), (8, 96, 96)):
        cost = torch.rand(P, R, C, generator=gen, dtype=torch.float64)
        cost[: P // 2] = (cost[: P // 2] * 4).round()  # ties
        assert resolve_gpu(cost) == 'torch'
        cols = batched_linear_assignment(cost.cuda()).cpu()
        assert cols.shape == (P, R) and bool((cols >= 0).all())
        ref = linear_assignment(list(cost.numpy()), 'scipy')
        for k in range(P):
            assert len(set(cols[k].tolist())) == R
            assert cost[k, torch.arange(R), cols[k]].sum().item() == \
                pytest.approx(cost[k].numpy()[np.arange(R), ref[k]].sum(),
                              abs=1e-9)
    # numpy problems of mixed shapes through linear_assignment
    rng = np.random.default_rng(5)
    costs = [rng.random((int(rng.integers(0, 8)), 8)) for _ in range(9)]
    for cost, a, b in zip(costs, linear_assignment(costs, 'torch'),
                          linear_assignment(costs, 'scipy')):
        rows = np.arange(cost.shape[0])
        assert cost[rows, a].sum() == pytest.approx(cost[rows, b].sum())


def resolve_gpu(cost):
    from torch_geometric_hyper.matching import resolve_backend
    return resolve_backend('auto', cost.size(2), cost.size(1), 'cuda')


def test_sparse_assignment_reaches_the_dense_optimum(monkeypatch):
    import numpy as np

    from torch_geometric_hyper import matching
    rng = np.random.default_rng(0)
    for trial in range(20):
        R, C = rng.integers(5, 60), 130
        k = rng.integers(1, 6, R)  # entries per row
        rows = np.repeat(np.arange(R), k)
        cols = np.concatenate([rng.choice(C, n, replace=False) for n in k])
        values = -np.abs(rng.normal(1.0, 1.0, rows.size))
        a = rng.normal(0.0, 1.0, C)
        if trial % 2:  # ties, as in an untrained model
            a = np.round(a)
        dense = np.tile(a, (R, 1))
        dense[rows, cols] += values
        best = dense[np.arange(R), matching._scipy_lsa(dense)[1]].sum()
        with monkeypatch.context() as mp:  # solved sparse, no dense fallback
            mp.setattr(matching, '_scipy_lsa', None)
            got = matching.sparse_linear_assignment(rows, cols, values, a, R,
                                                    cheapest=int(R) + 2)
        assert len(set(got.tolist())) == R
        assert dense[np.arange(R), got].sum() == pytest.approx(best,
                                                               abs=1e-9)
    with pytest.raises(ValueError, match='more rows'):
        matching.sparse_linear_assignment(rows, cols, values, a[:3], 5)


def _sparse_problem(rng, R, C, ties):
    import numpy as np
    k = rng.integers(1, 8, R)  # entries per row
    rows = np.repeat(np.arange(R), k)
    cols = np.concatenate([rng.choice(C, n, replace=False) for n in k])
    values = -np.abs(rng.normal(1.0, 1.0, rows.size))
    a = rng.normal(0.0, 1.0, C)
    if ties:  # as in an untrained model: few distinct costs
        a, values = np.round(a), np.round(values)
    dense = np.tile(a, (R, 1))
    dense[rows, cols] += values
    return rows, cols, values, a, dense


@pytest.mark.parametrize('ties', [False, True])
def test_flow_solver_reaches_the_dense_optimum(monkeypatch, ties):
    import numpy as np
    pytest.importorskip('ortools')

    from torch_geometric_hyper import matching
    rng = np.random.default_rng(1)
    for trial in range(30):
        C = int(rng.integers(2, 200))
        R = C if trial % 3 == 0 else int(rng.integers(1, C + 1))
        rows, cols, values, a, dense = _sparse_problem(rng, R, C, ties)
        best = dense[np.arange(R), matching._scipy_lsa(dense)[1]].sum()
        with monkeypatch.context() as mp:  # no dense or LAPJVsp fallback
            mp.setattr(matching, '_scipy_lsa', None)
            mp.setattr(matching, '_solve_lapjvsp', None)
            got = matching.sparse_linear_assignment(rows, cols, values, a, R,
                                                    solver='flow')
        assert got.shape == (R, ) and got.min() >= 0 and got.max() < C
        assert len(set(got.tolist())) == R
        assert dense[np.arange(R), got].sum() == pytest.approx(
            best, abs=1e-9 * max(1.0, abs(best)))


def test_sparse_solver_choice(monkeypatch):
    import numpy as np

    from torch_geometric_hyper import matching
    rng = np.random.default_rng(2)
    rows, cols, values, a, dense = _sparse_problem(rng, 20, 30, False)
    used = []
    real_flow, real_sp = matching._solve_flow, matching._solve_lapjvsp
    monkeypatch.setattr(matching, '_solve_flow',
                        lambda *x: used.append('flow') or real_flow(*x))
    monkeypatch.setattr(matching, '_solve_lapjvsp',
                        lambda *x: used.append('lapjvsp') or real_sp(*x))
    has_ortools = matching._ortools_available()
    matching.sparse_linear_assignment(rows, cols, values, a, 20)
    assert used == ['flow' if has_ortools else 'lapjvsp']
    # a positive entry breaks the hub's argument: never the flow
    used.clear()
    pos = values.copy()
    pos[0] = 0.5
    matching.sparse_linear_assignment(rows, cols, pos, a, 20)
    assert used == ['lapjvsp']
    used.clear()
    matching.sparse_linear_assignment(rows, cols, values, a, 20,
                                      solver='lapjvsp')
    assert used == ['lapjvsp']
    with pytest.raises(ValueError, match="unknown sparse solver 'fast'"):
        matching.sparse_linear_assignment(rows, cols, values, a, 20,
                                          solver='fast')
    if has_ortools:
        with pytest.raises(ValueError, match="needs values <= 0"):
            matching.sparse_linear_assignment(rows, cols, pos, a, 20,
                                              solver='flow')
    monkeypatch.setattr(matching, '_ortools_available', lambda: False)
    used.clear()
    matching.sparse_linear_assignment(rows, cols, values, a, 20)
    assert used == ['lapjvsp']
    with pytest.raises(ValueError, match='pip install ortools'):
        matching.sparse_linear_assignment(rows, cols, values, a, 20,
                                          solver='flow')


def test_sparse_assignments_in_worker_processes(monkeypatch):
    # a batch of problems solved by 2 worker processes gives each problem's
    # own solution, in order; the flow solves happen in the workers, the
    # rest (a positive entry: LAPJVsp) here
    import numpy as np
    pytest.importorskip('ortools')

    from torch_geometric_hyper import matching
    rng = np.random.default_rng(3)
    problems = []
    for k in range(7):
        C = int(rng.integers(80, 160))
        R = int(rng.integers(1, C + 1))
        rows, cols, values, a, _ = _sparse_problem(rng, R, C, False)
        if k == 3 and values.size:
            values = values.copy()
            values[0] = 0.5  # not for the flow solver
        problems.append((rows, cols, values, a, R))
    alone = [matching.sparse_linear_assignment(*p) for p in problems]
    here = []
    real = matching.sparse_linear_assignment
    monkeypatch.setattr(matching, 'sparse_linear_assignment',
                        lambda *a, **k: here.append(1) or real(*a, **k))
    monkeypatch.setattr(matching, '_solve_flow', None)  # not in this process
    try:
        together = matching.sparse_linear_assignments(problems,
                                                      num_workers=2)
        assert len(together) == len(problems)
        for a, b in zip(alone, together):
            np.testing.assert_array_equal(a, b)
        assert len(here) == 1  # the problem with a positive entry
        workers = matching._WORKERS[2].procs
        assert len(workers) == 2 and all(p.poll() is None for p in workers)
        # a worker that died is replaced on the next call
        workers[0].kill()
        workers[0].wait()
        again = matching.sparse_linear_assignments(problems[:2],
                                                   num_workers=2)
        for a, b in zip(alone, again):
            np.testing.assert_array_equal(a, b)
    finally:
        matching.close_workers()
    assert matching._WORKERS == {}
    assert all(p.poll() is not None for p in workers)
    assert matching.sparse_linear_assignments([], num_workers=2) == []
    with pytest.raises(ValueError, match='num_workers'):
        matching.sparse_linear_assignments(problems, num_workers=-1)
    with pytest.raises(ValueError, match=r'\(rows, cols, values'):
        matching.sparse_linear_assignments([problems[0][:4]])
    with pytest.raises(ValueError, match='unknown sparse solver'):
        matching.sparse_linear_assignments(problems, solver='x',
                                           num_workers=2)


def test_flow_worker_loop_reports_errors():
    # the worker's own loop, in process: a solution, then an error message
    # for a malformed problem, then the end of the input
    import io
    import pickle

    import numpy as np
    pytest.importorskip('ortools')

    from torch_geometric_hyper import _flow
    rng = np.random.default_rng(4)
    rows, cols, values, a, _ = _sparse_problem(rng, 5, 8, False)
    stdin = io.BytesIO()
    pickle.dump((rows, cols, values, a, 5, 40), stdin)
    pickle.dump(('not', 'a', 'problem'), stdin)
    stdin.seek(0)
    stdout = io.BytesIO()
    _flow.serve(stdin, stdout)
    stdout.seek(0)
    status, got = pickle.load(stdout)
    assert status == 'ok' and sorted(set(got.tolist())) == sorted(got)
    status, message = pickle.load(stdout)
    assert status == 'error' and 'TypeError' in message


def test_the_package_imports_without_scipy_solvers_or_qhull():
    # scipy.optimize and scipy.spatial (about 30 MiB together) are imported
    # when first used: solving with SciPy, generating data, kNN candidates
    import subprocess
    import sys
    code = ('import sys\n'
            'import torch_geometric_hyper, torch_geometric_hyper.nn, '
            'torch_geometric_hyper.train, torch_geometric_hyper.datasets, '
            'torch_geometric_hyper.metrics, torch_geometric_hyper.matching, '
            'torch_geometric_hyper.predict\n'
            'print(sorted(m for m in sys.modules if m.startswith('
            '("scipy.optimize", "scipy.spatial"))))\n'
            'from torch_geometric_hyper.matching import linear_assignment\n'
            'import numpy as np\n'
            'print(linear_assignment([np.array([[2., 1.], [1., 3.]])], '
            'backend="scipy")[0].tolist())\n'
            'print("scipy.optimize" in sys.modules)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout.split('\n')
    assert out[:3] == ['[]', '[1, 0]', 'True']


FORK_SCRIPT = r'''
import os, sys, time
import numpy as np
from torch_geometric_hyper.matching import linear_assignment
rng = np.random.default_rng(0)
costs = [rng.random((SIZE, SIZE)) for _ in range(16)]
want = linear_assignment(costs, num_threads=1)
linear_assignment(costs, num_threads=2)  # the parent's pool of 2 threads
pid = os.fork()
if pid == 0:  # the child solves on threads of its own
    got = linear_assignment(costs, num_threads=2)
    os._exit(0 if all((a == b).all() for a, b in zip(got, want)) else 1)
deadline = time.time() + 60
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    time.sleep(0.05)
os.kill(pid, 9)
print('the forked child hung in linear_assignment')
sys.exit(3)
'''


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs os.fork')
@pytest.mark.parametrize('size', [6, 48])  # lapx threads from 40 columns
def test_threaded_assignments_work_in_a_forked_child(tmp_path, size):
    """A process forked after its parent solved assignments on threads
    (e.g. a DataLoader worker) does not wait forever on the parent's
    pools, whose threads it did not inherit: it makes its own, or (lapx's
    native pools) solves on one thread."""
    script = tmp_path / 'fork.py'
    script.write_text(FORK_SCRIPT.replace('SIZE', str(size)))
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, str(script)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
