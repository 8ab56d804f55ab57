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

__all__ = ['available_backends', 'linear_assignment', 'resolve_backend',
           'sparse_linear_assignment']


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


#: Sparse matching links every row to this many of the cheapest columns
#: by column cost, besides its own entries (see
#: :func:`sparse_linear_assignment`).
SPARSE_CHEAPEST = 64


def sparse_linear_assignment(rows: np.ndarray, cols: np.ndarray,
                             values: np.ndarray, col_cost: np.ndarray,
                             num_rows: int,
                             cheapest: Optional[int] = None) -> np.ndarray:
    r"""Solves an assignment whose cost is a column term plus a sparse
    correction, without forming the :math:`R \times C` matrix:

    .. math::
        C_{rc} = a_c + s_{rc}, \qquad s_{rc} = 0 \text{ off the entries}.

    This is the matched loss's cost when slots see only a few candidate
    nodes: a target and a slot that share no candidate member differ only
    by the slot's existence term :math:`a_c`. Every row is linked to its
    entries and to the ``cheapest`` columns by :math:`a` (a row that uses no
    entry is best served by a cheap column), and the sparse problem is
    solved by :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`
    (LAPJVsp) in :math:`O(R\,(\text{entries per row} + \text{cheapest}))`
    memory. If the linked problem has no complete assignment, or whenever
    ``cheapest >= C``, the dense problem is solved instead. With
    ``cheapest >= R`` the result is optimal (a row served by no entry is
    best served by one of the :math:`R` cheapest columns); below that it
    is a heuristic. Measured on the matched loss's costs (hull sets of
    ``n`` points, :math:`m = 2n - 4` slots, K=16 candidates, untrained
    refiner, 2 sets, 2 threads, 2026-11-29), dense / sparse seconds and
    the largest relative loss gap: n=100 0.007 / 0.055 (3e-4), n=200
    0.029 / 0.244 (0.18), n=500 0.37 / 0.86 (2e-7), n=1,000 2.5 / 6.5
    (4e-7); with ``cheapest=512``, n=200 0.033 / 0.071 (2e-7), n=500
    0.19 / 1.74 (4e-4). So it bounds memory at :math:`O(R\,K)` where the
    dense :math:`R \times C` cost does not fit; it does not save time.

    Args:
        rows, cols (numpy.ndarray): entry coordinates, unique pairs.
        values (numpy.ndarray): :math:`s` at the entries.
        col_cost (numpy.ndarray): :math:`(C)` column costs :math:`a`.
        num_rows (int): :math:`R \le C`.
        cheapest (int, optional): columns by :math:`a` linked to every row
            (default :data:`SPARSE_CHEAPEST`).

    Returns:
        numpy.ndarray: the column of each row.

    Example:
        >>> import numpy as np
        >>> sparse_linear_assignment(np.array([0, 1]), np.array([2, 2]),
        ...                          np.array([-5.0, -1.0]),
        ...                          np.array([0.0, 1.0, 0.5]), 2, 1)
        array([2, 0])
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching
    num_cols = col_cost.shape[0]
    if num_rows > num_cols:
        raise ValueError(f'more rows ({num_rows}) than columns '
                         f'({num_cols})')
    if num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(int(SPARSE_CHEAPEST if cheapest is None else cheapest),
            num_cols)
    if k >= num_cols:
        dense = np.tile(col_cost, (num_rows, 1))
        dense[rows, cols] += values
        return _scipy_lsa(dense)[1].astype(np.int64)
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
        dense = np.tile(col_cost, (num_rows, 1))
        dense[rows, cols] += values
        return _scipy_lsa(dense)[1].astype(np.int64)
    out = np.empty(num_rows, dtype=np.int64)
    out[row_ind] = col_ind
    return out
