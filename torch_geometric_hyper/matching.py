r"""Linear-assignment solvers behind one function.

The matched loss solves one rectangular assignment problem per graph. The
solvers run on the CPU on detached costs; the gradient flows through the
gathered costs, not through the solver.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment as _scipy_lsa

__all__ = ['available_backends', 'linear_assignment']


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
    _, x, _ = lap.lapjv(cost, extend_cost=rows != cols)
    return np.asarray(x[:rows], dtype=np.int64)


def linear_assignment(costs: Sequence[np.ndarray],
                      backend: str = 'scipy') -> List[np.ndarray]:
    r"""Solves :math:`\min_\pi \sum_t C_{t,\pi(t)}` for each cost matrix.

    Each matrix is ``[rows, cols]`` with ``rows <= cols``; every row is
    assigned a distinct column (Jonker–Volgenant / Hungarian).

    Args:
        costs (list of numpy.ndarray): cost matrices, one per problem.
        backend (str, optional): ``'scipy'`` (default,
            :func:`scipy.optimize.linear_sum_assignment`) or ``'lapx'``
            (optional package ``lapx``).

    Returns:
        list of numpy.ndarray: for each problem the column of each row.
    """
    if backend not in ('scipy', 'lapx'):
        raise ValueError(f"unknown assignment backend '{backend}'; choose "
                         f"one of {available_backends()}")
    if backend == 'lapx' and not _lapx_available():
        raise ValueError("backend 'lapx' needs the optional package lapx: "
                         "pip install lapx")
    out = []
    for cost in costs:
        if cost.ndim != 2 or cost.shape[0] > cost.shape[1]:
            raise ValueError(f"each cost matrix must be [rows, cols] with "
                             f"rows <= cols, got {cost.shape}")
        if cost.shape[0] == 0:
            out.append(np.zeros(0, dtype=np.int64))
        elif backend == 'lapx':
            out.append(_solve_lapx(np.ascontiguousarray(cost, np.float64)))
        else:
            out.append(_scipy_lsa(cost)[1].astype(np.int64))
    return out
