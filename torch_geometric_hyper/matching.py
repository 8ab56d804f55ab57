r"""Linear-assignment solvers behind one function.

The matched loss solves one rectangular assignment problem per graph. The
solvers run on the CPU on detached costs; the gradient flows through the
gathered costs, not through the solver.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment as _scipy_lsa

__all__ = ['available_backends', 'linear_assignment', 'resolve_backend']


def _lapx_available() -> bool:
    try:
        import lap  # noqa: F401  (the lapx distribution installs 'lap')
    except ImportError:
        return False
    return True


def available_backends() -> List[str]:
    """Names of the solver backends importable here (``'scipy'`` always)."""
    return ['scipy'] + (['lapx'] if _lapx_available() else [])


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


#: With ``backend='auto'``, problems with at least this many columns go to
#: lapx (its ``lapjvh`` solver) when it is installed. Measured per set on
#: the matched loss's own costs (spherical hull targets, untrained refiner,
#: K=16 candidates per slot, 1 thread, 2026-11-28), scipy / lapjvh / lapjv:
#: m=56 0.18 / 0.30 / 0.24 ms, m=100 0.76 / 1.08 / 1.43 ms, m=200 3.0 /
#: 2.0 / 8.8 ms, m=500 23 / 21 / 145 ms, m=2,000 0.81 / 0.75 / 11.8 s;
#: on costs without ties (uniform random, m=2,000) 0.43 / 0.18 s. An
#: untrained model's costs are full of ties, where ``lapjv`` is slow.
LAPX_MIN_COLUMNS = 150


def resolve_backend(backend: str, columns: int) -> str:
    r"""The solver ``backend`` names for a problem with ``columns``
    columns: ``'auto'`` is lapx from :data:`LAPX_MIN_COLUMNS` columns when
    installed, else scipy."""
    if backend == 'auto':
        return 'lapx' if columns >= LAPX_MIN_COLUMNS and \
            _lapx_available() else 'scipy'
    return backend


def _solve(cost: np.ndarray, backend: str) -> np.ndarray:
    if cost.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    backend = resolve_backend(backend, cost.shape[1])
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
        backend (str, optional): ``'auto'`` (default: lapx for problems
            of at least :data:`LAPX_MIN_COLUMNS` columns when it is
            installed, scipy otherwise), ``'scipy'``
            (:func:`scipy.optimize.linear_sum_assignment`) or ``'lapx'``
            (optional package ``lapx``).
        num_threads (int, optional): solve the problems on this many
            threads (the solvers release the GIL, and while they run the
            cores torch uses are idle); default
            :func:`torch.get_num_threads`.

    Returns:
        list of numpy.ndarray: for each problem the column of each row.
    """
    if backend not in ('auto', 'scipy', 'lapx'):
        raise ValueError(f"unknown assignment backend '{backend}'; choose "
                         f"'auto' or one of {available_backends()}")
    if backend == 'lapx' and not _lapx_available():
        raise ValueError("backend 'lapx' needs the optional package lapx: "
                         "pip install lapx")
    costs = list(costs)
    for cost in costs:
        if cost.ndim != 2 or cost.shape[0] > cost.shape[1]:
            raise ValueError(f"each cost matrix must be [rows, cols] with "
                             f"rows <= cols, got {cost.shape}")
    workers = torch.get_num_threads() if num_threads is None \
        else int(num_threads)
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
