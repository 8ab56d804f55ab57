r"""Linear-assignment solvers behind one function.

The matched loss solves one rectangular assignment problem per graph. The
solvers run on the CPU on detached costs; the gradient flows through the
gathered costs, not through the solver.
"""
from __future__ import annotations

import atexit
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from torch_geometric_hyper import _flow
from torch_geometric_hyper._assignment_batch import solve_batched, torch_solve
from torch_geometric_hyper._flow import solve_flow

__all__ = ['available_backends', 'linear_assignment', 'resolve_backend',
           'batched_linear_assignment', 'sparse_linear_assignment',
           'sparse_linear_assignments', 'close_workers']

BACKENDS = ('auto', 'scipy', 'lapx', 'lapx_batch', 'torch')


def _scipy_lsa(cost: np.ndarray):
    # SciPy's solver, imported on first use: importing scipy.optimize holds
    # about 30 MiB and takes 0.1 s, which training with lapx never needs
    from scipy.optimize import linear_sum_assignment
    return linear_sum_assignment(cost)


def _lapx_available() -> bool:
    try:
        import lap  # noqa: F401  (the lapx distribution installs 'lap')
    except ImportError:
        return False
    return True


def _ortools_available() -> bool:
    try:
        from ortools.graph.python import min_cost_flow  # noqa: F401
    except ImportError:
        return False
    return True


def _torch_la_available() -> bool:
    try:
        import torch_linear_assignment  # noqa: F401
    except ImportError:
        return False
    return True


def available_backends() -> List[str]:
    """Names of the solver backends importable here (``'scipy'`` always;
    ``'lapx'`` and ``'lapx_batch'`` with the optional package lapx,
    ``'torch'`` with the optional package torch-linear-assignment)."""
    return ['scipy'] + (['lapx', 'lapx_batch'] if _lapx_available()
                        else []) + (['torch'] if _torch_la_available()
                                    else [])


def _solve_lapx(cost: np.ndarray) -> np.ndarray:
    import lap
    rows, cols = cost.shape
    if hasattr(lap, 'lapjvh'):  # much faster than lapjv on tied costs
        r, c = lap.lapjvh(cost, extend_cost=rows != cols, return_cost=False)
        out = np.empty(rows, dtype=np.int64)
        out[np.asarray(r)] = c
        return out
    _, x, _ = lap.lapjv(cost, extend_cost=rows != cols)
    return np.asarray(x[:rows], dtype=np.int64)


_POOLS: Dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix='tgh-assignment')
        return _POOLS[workers]


def resolve_backend(backend: str, columns: int,
                    rows: Optional[int] = None, device=None) -> str:
    r"""The solver ``backend`` names for a ``rows x columns`` problem
    (``rows`` defaults to ``columns``) whose costs are on ``device``.

    ``'auto'`` is ``'torch'`` (the optional package
    torch-linear-assignment, solving on the GPU) for costs on a CUDA
    device when that package is installed; else ``'lapx_batch'`` (lapx's
    ``lapjvh_batch``: the problems of one column count padded to squares
    with constant rows and solved in one call) when lapx is installed;
    else scipy. On the matched loss's own costs (untrained refiner,
    ``benchmarks/assignment_solvers.py``,
    ``benchmarks/results/assignment_solvers_untrained.json``, 1 thread)
    the batch solver is as fast as ``lapjvh`` problem by problem on
    square problems (56 x 56: 0.55 ms, scipy 1.06 ms; 96 x 96: 1.5 ms,
    scipy 4.0 ms), faster on small ones (16 x 16: 0.010 against 0.028
    ms), and, padding rectangles to squares, 1.5-2.2x faster than the
    per-problem ``lapjvh`` on rectangular ones (56 x 64: 0.93 against
    1.38 ms, scipy 0.96 ms; 196 x 250: 10.6 against 23.5 ms, scipy 12.8
    ms).
    """
    if backend == 'auto':
        if device is not None and torch.device(device).type == 'cuda' \
                and _torch_la_available():
            return 'torch'
        return 'lapx_batch' if _lapx_available() else 'scipy'
    return backend


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown assignment backend '{backend}'; choose "
                         f"'auto' or one of {available_backends()}")
    if backend in ('lapx', 'lapx_batch') and not _lapx_available():
        raise ValueError(f"backend '{backend}' needs the optional package "
                         f"lapx: pip install lapx")
    if backend == 'torch' and not _torch_la_available():
        raise ValueError("backend 'torch' needs the optional package "
                         "torch-linear-assignment (built for this torch "
                         "and CUDA): pip install torch-linear-assignment")


def _solve(cost: np.ndarray, backend: str) -> np.ndarray:
    if cost.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if backend == 'lapx':
        return _solve_lapx(np.ascontiguousarray(cost, np.float64))
    return _scipy_lsa(cost)[1].astype(np.int64)


def _solve_all(costs: Sequence[np.ndarray], backend: str
               ) -> List[np.ndarray]:
    return [_solve(cost, backend) for cost in costs]


def linear_assignment(costs: Sequence[np.ndarray],
                      backend: str = 'auto',
                      num_threads: Optional[int] = None
                      ) -> List[np.ndarray]:
    r"""Solves :math:`\min_\pi \sum_t C_{t,\pi(t)}` for each cost matrix.

    Each matrix is ``[rows, cols]`` with ``rows <= cols``; every row is
    assigned a distinct column (Jonker–Volgenant / Hungarian).

    Args:
        costs (list of numpy.ndarray): cost matrices, one per problem.
        backend (str, optional): ``'auto'`` (default, see
            :func:`resolve_backend`), ``'scipy'``
            (:func:`scipy.optimize.linear_sum_assignment`, one problem
            after another), ``'lapx'`` (optional package lapx, its
            ``lapjvh`` one problem after another), ``'lapx_batch'`` (lapx's
            ``lapjvh_batch``: the problems of one column count padded to
            :math:`C \times C` with constant rows, which leaves the optimum
            of the real rows unchanged, and solved in one call) or
            ``'torch'`` (optional package torch-linear-assignment: the
            problems of one column count padded to the most rows and
            solved in one call, on the GPU when there is one).
        num_threads (int, optional): solve the problems on this many
            threads (the solvers release the GIL, and while they run the
            cores torch uses are idle); default
            :func:`torch.get_num_threads`.

    Returns:
        list of numpy.ndarray: for each problem the column of each row.
        All backends reach the same optimal total; on ties the columns
        may differ.

    .. note::
        The thread pool is made anew in a process forked after this one
        used it (e.g. a :class:`~torch.utils.data.DataLoader` worker), so
        solving there does not wait on threads the child does not have.
        PyTorch's own intra-op pool has no such guard: a child forked after
        torch ran parallel work on two or more threads may hang in torch
        operations; call ``torch.set_num_threads(1)`` first thing in the
        child, or start it with the ``'spawn'`` method.
    """
    _check_backend(backend)
    costs = list(costs)
    for cost in costs:
        if cost.ndim != 2 or cost.shape[0] > cost.shape[1]:
            raise ValueError(f"each cost matrix must be [rows, cols] with "
                             f"rows <= cols, got {cost.shape}")
    workers = torch.get_num_threads() if num_threads is None \
        else int(num_threads)
    backend = resolve_backend(backend, 0)
    if backend in ('lapx_batch', 'torch'):
        return solve_batched(costs, backend, max(1, workers))
    workers = max(1, min(workers, len(costs) // 4))
    if workers == 1:
        return _solve_all(costs, backend)
    # Contiguous groups of problems, one per worker, in order.
    bounds = np.linspace(0, len(costs), workers + 1).astype(int)
    groups = [costs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    out: List[np.ndarray] = []
    for part in _pool(workers).map(_solve_all, groups,
                                   [backend] * len(groups)):
        out.extend(part)
    return out


def batched_linear_assignment(cost: Tensor, backend: str = 'auto',
                              num_threads: Optional[int] = None) -> Tensor:
    r"""Solves a batch of equally shaped problems held in one tensor.

    With ``backend='torch'`` (or ``'auto'`` on a CUDA device with the
    optional package torch-linear-assignment installed) the problems are
    solved where the tensor is, without a host transfer; the other
    backends copy the costs to the host once and solve them there
    (:func:`linear_assignment`). Problems with fewer real rows can be
    padded with constant (e.g. zero) rows: the optimum of the real rows
    stays the same.

    Args:
        cost (torch.Tensor): :math:`(P, R, C)` costs, :math:`R \le C`,
            finite.
        backend (str, optional): as in :func:`linear_assignment`.
        num_threads (int, optional): host threads, as in
            :func:`linear_assignment`.

    Returns:
        torch.Tensor: :math:`(P, R)` the column of each row (``long``, on
        the device of ``cost``).
    """
    _check_backend(backend)
    if cost.dim() != 3 or cost.size(1) > cost.size(2):
        raise ValueError(f"'cost' must be [problems, rows, cols] with rows "
                         f"<= cols, got {list(cost.shape)}")
    backend = resolve_backend(backend, cost.size(2), cost.size(1),
                              cost.device)
    P, R, _ = cost.shape
    if backend == 'torch':
        if P == 0 or R == 0:
            return torch.zeros(P, R, dtype=torch.long, device=cost.device)
        return torch_solve(cost.detach())
    host = cost.detach().to('cpu', torch.float64).numpy()
    cols = linear_assignment(list(host), backend, num_threads)
    out = np.stack(cols) if cols else np.zeros((0, R), np.int64)
    return torch.from_numpy(out).to(cost.device)


#: Sparse matching links every row to this many of the cheapest columns
#: by column cost, besides its own entries, when it is solved by LAPJVsp
#: (see :func:`sparse_linear_assignment`).
SPARSE_CHEAPEST = 64

SPARSE_SOLVERS = ('auto', 'flow', 'lapjvsp')

#: The flow solver rounds costs to integers of about this many bits,
#: divided by the number of nodes of the flow graph.
FLOW_COST_BITS = 40


def sparse_linear_assignment(rows: np.ndarray, cols: np.ndarray,
                             values: np.ndarray, col_cost: np.ndarray,
                             num_rows: int,
                             cheapest: Optional[int] = None,
                             solver: str = 'auto') -> np.ndarray:
    r"""Solves an assignment whose cost is a column term plus a sparse
    correction, without forming the :math:`R \times C` matrix:

    .. math::
        C_{rc} = a_c + s_{rc}, \qquad s_{rc} = 0 \text{ off the entries}.

    This is the matched loss's cost when slots see only a few candidate
    nodes: a target and a slot that share no candidate member differ only
    by the slot's existence term :math:`a_c`, and sharing one only lowers
    the cost (:math:`s \le 0`).

    Two solvers:

    * ``'flow'`` (needs the optional package ``ortools`` and
      :math:`s \le 0`): a min-cost flow on :math:`E + R + 2C` arcs. Each
      row sends one unit to a sink through one column; it reaches a column
      either by its entry (cost :math:`a_c + s_{rc}`) or through one shared
      hub node (cost :math:`a_c`). With :math:`s \le 0` the hub never beats
      a row's own entry, so the flow's optimum is the assignment's. Solved
      exactly by OR-Tools' cost-scaling push-relabel on costs rounded to
      integers (relative resolution about :math:`2^{-40} (R + C)`).
    * ``'lapjvsp'``: every row is linked to its entries and to the
      ``cheapest`` columns by :math:`a` (a row that uses no entry is best
      served by a cheap column), solved by
      :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`. If
      the linked problem has no complete assignment, or whenever
      ``cheapest >= C``, the dense problem is solved instead. With
      ``cheapest >= R`` the result is optimal; below that it is a
      heuristic.

    ``'auto'`` (default) takes ``'flow'`` when ortools is installed and
    :math:`s \le 0`, else ``'lapjvsp'``: on the matched loss's costs of
    large sets the flow solver is the fastest and reaches the dense
    optimum, and ``'lapjvsp'`` bounds memory, not time (the measurements
    are in the "Larger sets" page of the docs).

    Args:
        rows, cols (numpy.ndarray): entry coordinates, unique pairs.
        values (numpy.ndarray): :math:`s` at the entries.
        col_cost (numpy.ndarray): :math:`(C)` column costs :math:`a`.
        num_rows (int): :math:`R \le C`.
        cheapest (int, optional): for ``'lapjvsp'``, the columns by
            :math:`a` linked to every row (default
            :data:`SPARSE_CHEAPEST`).
        solver (str, optional): ``'auto'``, ``'flow'`` or ``'lapjvsp'``.

    Returns:
        numpy.ndarray: the column of each row.

    Example:
        >>> import numpy as np
        >>> sparse_linear_assignment(np.array([0, 1]), np.array([2, 2]),
        ...                          np.array([-5.0, -1.0]),
        ...                          np.array([0.0, 1.0, 0.5]), 2, 1)
        array([2, 0])
    """
    if solver not in SPARSE_SOLVERS:
        raise ValueError(f"unknown sparse solver '{solver}'; choose one of "
                         f"{SPARSE_SOLVERS}")
    num_cols = col_cost.shape[0]
    if num_rows > num_cols:
        raise ValueError(f'more rows ({num_rows}) than columns '
                         f'({num_cols})')
    if num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    col_cost = np.asarray(col_cost, dtype=np.float64)
    nonpositive = values.size == 0 or bool(values.max() <= 0.0)
    if solver == 'flow':
        if not _ortools_available():
            raise ValueError("solver 'flow' needs the optional package "
                             "ortools: pip install ortools")
        if not nonpositive:
            raise ValueError(f"solver 'flow' needs values <= 0 (a shared "
                             f"member only lowers the cost), got a maximum "
                             f"of {values.max():g}; use solver='lapjvsp'")
    if solver == 'flow' or (solver == 'auto' and nonpositive
                            and _ortools_available()):
        out = _solve_flow(rows, cols, values, col_cost, num_rows)
        if out is not None:
            return out
    return _solve_lapjvsp(rows, cols, values, col_cost, num_rows, cheapest)


def sparse_linear_assignments(problems: Sequence[tuple],
                              solver: str = 'auto',
                              num_workers: Optional[int] = None
                              ) -> List[np.ndarray]:
    r"""Solves several sparse assignments
    (:func:`sparse_linear_assignment`), optionally side by side in worker
    processes.

    OR-Tools holds the GIL while it solves, so threads cannot overlap two
    flow solves; ``num_workers`` lean processes can (they import NumPy and
    OR-Tools only, about 0.3 s to start, once per process). The problems
    travel to them pickled, a few MB per set of 1,000 points, milliseconds
    against the 0.1-0.3 s of its solve. Problems that do not go to the flow
    solver (no ortools, positive entries, ``solver='lapjvsp'``) are solved
    in this process.

    Args:
        problems (list of tuple): for each problem the arguments
            ``(rows, cols, values, col_cost, num_rows)`` of
            :func:`sparse_linear_assignment`.
        solver (str, optional): as in :func:`sparse_linear_assignment`.
        num_workers (int, optional): worker processes for the flow solves
            (default ``None``: none, everything in this process). The
            workers are started on first use, kept for later calls, and
            end with this process (see :func:`close_workers`).

    Returns:
        list of numpy.ndarray: for each problem the column of each row, as
        :func:`sparse_linear_assignment` returns it.
    """
    problems = list(problems)
    for problem in problems:
        if len(problem) != 5:
            raise ValueError(f'each problem must be (rows, cols, values, '
                             f'col_cost, num_rows), got {len(problem)} '
                             f'items')
    workers = 0 if num_workers is None else int(num_workers)
    if workers < 0:
        raise ValueError(f"'num_workers' must be at least 0, got "
                         f"{num_workers}")
    serial = workers < 1
    if not serial:  # which problems the workers take
        flow = [_goes_to_flow(*problem, solver=solver)
                for problem in problems]
        todo = [k for k, arrays in enumerate(flow) if arrays is not None]
        serial = len(todo) < 2
    if serial:
        return [sparse_linear_assignment(*problem, solver=solver)
                for problem in problems]
    pool = _flow_workers(workers)
    solved = dict(zip(todo, _pool(min(workers, len(todo))).map(
        lambda k: pool.solve(flow[k] + (FLOW_COST_BITS, )), todo)))
    out = []
    for k, problem in enumerate(problems):
        if solved.get(k) is not None:
            out.append(solved[k])
        else:  # not for the flow solver, or refused by it
            out.append(_solve_lapjvsp(*flow[k], None) if k in solved else
                       sparse_linear_assignment(*problem, solver=solver))
    return out


def _goes_to_flow(rows, cols, values, col_cost, num_rows, solver='auto'):
    # the checked float/int arrays of a problem that sparse_linear_assignment
    # would give to the flow solver, else None (errors raised as it would)
    if solver not in SPARSE_SOLVERS:
        raise ValueError(f"unknown sparse solver '{solver}'; choose one of "
                         f"{SPARSE_SOLVERS}")
    if solver == 'lapjvsp' or not _ortools_available():
        return None
    if num_rows > col_cost.shape[0] or num_rows == 0:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.size and values.max() > 0.0:
        return None
    return (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
            values, np.asarray(col_cost, dtype=np.float64), int(num_rows))


# A worker runs _flow.py loaded by path, without this package and without
# the working directory on its path (nothing there can shadow NumPy's or
# OR-Tools' imports).
_WORKER_BOOT = ('import sys; sys.path.pop(0); import importlib.util as u; '
                's = u.spec_from_file_location("tgh_flow_worker", '
                'sys.argv[1]); m = u.module_from_spec(s); '
                's.loader.exec_module(m); m.serve()')


class _FlowWorkers:
    """Lean worker processes running :func:`_flow.serve`; each call of
    :meth:`solve` takes an idle one (threads may call it at once)."""

    def __init__(self, size: int):
        self.size = size
        self.idle: 'queue.Queue' = queue.Queue()
        self.procs = []
        for _ in range(size):
            proc = subprocess.Popen(
                [sys.executable, '-c', _WORKER_BOOT, _flow.__file__],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=dict(os.environ, OMP_NUM_THREADS='1'))
            self.procs.append(proc)
            self.idle.put(proc)

    def solve(self, problem: tuple) -> Optional[np.ndarray]:
        proc = self.idle.get()
        try:
            pickle.dump(problem, proc.stdin,
                        protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            status, value = pickle.load(proc.stdout)
        except (EOFError, BrokenPipeError, OSError) as e:
            raise RuntimeError(
                f'an assignment worker process ended unexpectedly (exit '
                f'code {proc.poll()}): {e}; solve in this process with '
                f'num_workers=None') from e
        finally:
            self.idle.put(proc)
        if status != 'ok':
            raise RuntimeError(f'the flow solver failed in a worker '
                               f'process: {value}')
        return value

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


_WORKERS: Dict[int, _FlowWorkers] = {}


def _flow_workers(size: int) -> _FlowWorkers:
    with _POOLS_LOCK:
        pool = _WORKERS.get(size)
        if pool is None or any(p.poll() is not None for p in pool.procs):
            if pool is not None:
                pool.close()
            pool = _WORKERS[size] = _FlowWorkers(size)
        return pool


def close_workers() -> None:
    r"""Ends the worker processes of :func:`sparse_linear_assignments`
    (they also end with this process)."""
    with _POOLS_LOCK:
        for pool in _WORKERS.values():
            pool.close()
        _WORKERS.clear()


atexit.register(close_workers)


def _forget_pools_in_child() -> None:
    """After :func:`os.fork` the child inherits the pools' bookkeeping but
    not their threads (a pool whose threads are gone waits forever) nor the
    right to the parent's worker processes: the child starts with none and
    makes its own on first use."""
    global _POOLS_LOCK
    _POOLS_LOCK = threading.Lock()
    _POOLS.clear()
    _WORKERS.clear()  # the parent's processes: not closed, only forgotten


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def _solve_flow(rows, cols, values, col_cost, num_rows
                ) -> Optional[np.ndarray]:
    return solve_flow(rows, cols, values, col_cost, num_rows, FLOW_COST_BITS)


def _solve_dense(rows, cols, values, col_cost, num_rows):
    # the R x C matrix a_c + s_rc, solved by SciPy
    dense = np.tile(col_cost, (num_rows, 1))
    dense[rows, cols] += values
    return _scipy_lsa(dense)[1].astype(np.int64)


def _solve_lapjvsp(rows, cols, values, col_cost, num_rows, cheapest):
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching
    num_cols = col_cost.shape[0]
    k = min(int(SPARSE_CHEAPEST if cheapest is None else cheapest),
            num_cols)
    if k >= num_cols:
        return _solve_dense(rows, cols, values, col_cost, num_rows)
    top = np.argpartition(col_cost, k - 1)[:k]
    r = np.concatenate([rows, np.repeat(np.arange(num_rows), k)])
    c = np.concatenate([cols, np.tile(top, num_rows)])
    v = np.concatenate([col_cost[cols] + values,
                        np.tile(col_cost[top], num_rows)])
    key = r.astype(np.int64) * num_cols + c
    order = np.lexsort((v, key))  # an entry wins over its plain link
    key, v = key[order], v[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, v = key[first], v[first]
    # each row takes one column: a shift keeps the argmin and makes every
    # weight positive (LAPJVsp reads zeros as missing links)
    v = v - v.min() + 1.0
    graph = csr_matrix((v, (key // num_cols, key % num_cols)),
                       shape=(num_rows, num_cols))
    try:
        row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    except ValueError:  # no complete assignment among the links
        return _solve_dense(rows, cols, values, col_cost, num_rows)
    out = np.empty(num_rows, dtype=np.int64)
    out[row_ind] = col_ind
    return out
