"""The batched solves behind :func:`torch_geometric_hyper.matching.
linear_assignment` (backends ``'lapx_batch'`` and ``'torch'``): the
problems of one column count padded with constant rows and solved in one
call."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

#: The problems of one column count go to a batch solver in chunks of at
#: most this many float64 costs (32 MiB).
BATCH_CHUNK_ENTRIES = 2 ** 22

#: Problems with fewer columns are solved on one thread: on the matched
#: loss's 16 x 16 and 36 x 36 costs, two of lapx's threads took two to
#: three times as long as one (benchmarks/assignment_solvers.py).
MIN_THREADED_COLUMNS = 40

# the process that may hold lapx's native worker pools: a child forked
# after its parent used them inherits their bookkeeping but not their
# threads (they would wait forever), so it solves on one thread
_NATIVE_POOLS_PID: Optional[int] = None


def lapx_threads(workers: int) -> int:
    """The threads lapx's batch solver may use here: ``workers``, or 1 in
    a process forked after its parent used lapx's threads.

    Args:
        workers (int): threads asked for.

    Returns:
        int: threads to pass to lapx.
    """
    global _NATIVE_POOLS_PID
    if workers <= 1:
        return 1
    if _NATIVE_POOLS_PID is None:
        _NATIVE_POOLS_PID = os.getpid()
    return workers if _NATIVE_POOLS_PID == os.getpid() else 1


def padded_groups(costs: Sequence[np.ndarray], square: bool):
    r"""The non-empty problems by column count, in chunks: ``(indices,
    stack)`` with ``stack`` ``[P, R, C]`` float64, every problem's rows
    first and constant (zero) rows after them, ``R = C`` with ``square``,
    else the chunk's most rows. A row whose cost is the same for every
    column adds that constant to every assignment: the optimum of the real
    rows stays the same."""
    groups: Dict[int, List[int]] = {}
    for k, cost in enumerate(costs):
        if cost.shape[0]:
            groups.setdefault(cost.shape[1], []).append(k)
    for cols, ks in groups.items():
        step = max(1, BATCH_CHUNK_ENTRIES // (cols * cols))
        for start in range(0, len(ks), step):
            chunk = ks[start:start + step]
            rows = cols if square else max(costs[k].shape[0] for k in chunk)
            stack = np.zeros((len(chunk), rows, cols))
            for i, k in enumerate(chunk):
                stack[i, :costs[k].shape[0]] = costs[k]
            yield chunk, stack


def solve_batched(costs: Sequence[np.ndarray], backend: str,
                  workers: int) -> List[np.ndarray]:
    """Solves the problems with a batch solver.

    Args:
        costs (list of numpy.ndarray): ``[rows, cols]`` costs, rows <= cols.
        backend (str): ``'lapx_batch'`` (lapx's ``lapjvh_batch`` on
            squares) or ``'torch'`` (torch-linear-assignment, on the GPU
            when there is one).
        workers (int): lapx's threads.

    Returns:
        list of numpy.ndarray: for each problem the column of each row.
    """
    out = [np.zeros(0, dtype=np.int64)] * len(costs)
    for chunk, stack in padded_groups(costs, backend == 'lapx_batch'):
        if backend == 'lapx_batch':
            import lap
            threads = lapx_threads(
                workers if stack.shape[2] >= MIN_THREADED_COLUMNS else 1)
            _, cols = lap.lapjvh_batch(stack, return_cost=False,
                                       n_threads=threads)
        else:  # 'torch'
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
            cols = torch_solve(torch.from_numpy(stack).to(device)).cpu()
            cols = cols.numpy()
        for i, k in enumerate(chunk):
            out[k] = np.asarray(cols[i][:costs[k].shape[0]], dtype=np.int64)
    return out


def torch_solve(cost: Tensor) -> Tensor:
    """torch-linear-assignment's solve where ``cost`` is.

    Args:
        cost (torch.Tensor): ``[P, R, C]`` costs, ``R <= C``.

    Returns:
        torch.Tensor: ``[P, R]`` the column of each row.
    """
    from torch_linear_assignment import batch_linear_assignment
    return batch_linear_assignment(cost).long()
