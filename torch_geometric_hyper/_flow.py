r"""The min-cost-flow assignment solver, and the worker process that runs it.

This module imports only NumPy and OR-Tools (never torch or the rest of the
package), so :func:`torch_geometric_hyper.matching.sparse_linear_assignments`
can start it as a lean worker process (loaded by path, see
:func:`serve`), which reads problems from its standard input and writes
the solutions to its standard output, both pickled, until its input
closes. OR-Tools holds the GIL while it
solves, so threads cannot run two solves at once; processes can.
"""
from __future__ import annotations

import pickle
import sys
from typing import Optional

import numpy as np


def solve_flow(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
               col_cost: np.ndarray, num_rows: int,
               cost_bits: int = 40) -> Optional[np.ndarray]:
    r"""The assignment :math:`\min \sum_r a_{\pi(r)} + s_{r\pi(r)}` with
    :math:`s \le 0` on the entries ``(rows, cols)`` and 0 elsewhere, as a
    min-cost flow (see
    :func:`torch_geometric_hyper.matching.sparse_linear_assignment`).

    Returns the column of each row, or ``None`` when OR-Tools refuses the
    cost range three times.
    """
    from ortools.graph.python import min_cost_flow
    R, C, E = num_rows, col_cost.shape[0], rows.shape[0]
    # nodes: rows 0..R-1, the hub R, columns R+1..R+C, the sink R+C+1
    hub, sink, V = R, R + C + 1, R + C + 2
    col_node = R + 1 + np.arange(C)
    start = np.concatenate([rows, np.arange(R), np.full(C, hub), col_node])
    end = np.concatenate([R + 1 + cols, np.full(R, hub), col_node,
                          np.full(C, sink)])
    cost = np.concatenate([col_cost[cols] + values, np.zeros(R), col_cost,
                           np.zeros(C)])
    # integer costs: the solver scales them by about V internally
    scale = 2.0 ** cost_bits / (max(float(np.abs(cost).max()), 1e-300)
                                * (V + 1))
    for _ in range(3):
        flow = min_cost_flow.SimpleMinCostFlow()
        arcs = flow.add_arcs_with_capacity_and_unit_cost(
            start.astype(np.int32), end.astype(np.int32),
            np.ones(start.shape[0], np.int64),
            np.rint(cost * scale).astype(np.int64))
        supply = np.zeros(V, np.int64)
        supply[:R], supply[sink] = 1, -R
        flow.set_nodes_supplies(np.arange(V, dtype=np.int32), supply)
        status = flow.solve()
        if status == flow.OPTIMAL:
            break
        scale /= 2.0 ** 10  # a cost range the solver refused
    else:
        return None
    used = flow.flows(arcs) > 0
    out = np.empty(R, dtype=np.int64)
    out[rows[used[:E]]] = cols[used[:E]]
    # rows through the hub take the hub's columns in any pairing: a row
    # pays a_c there, or less where it holds an entry (s <= 0), so the
    # pairing costs at most the flow's optimum, itself at most the
    # assignment's optimum
    out[np.flatnonzero(used[E:E + R])] = np.flatnonzero(
        used[E + R:E + R + C])
    return out


def serve(stdin=None, stdout=None) -> None:
    """The worker loop: a pickled ``(rows, cols, values, col_cost,
    num_rows, cost_bits)`` in, a pickled ``('ok', columns or None)`` or
    ``('error', message)`` out, until the input ends."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    while True:
        try:
            problem = pickle.load(stdin)
        except EOFError:
            return
        try:
            reply = ('ok', solve_flow(*problem))
        except Exception as e:  # sent back, raised by the caller
            reply = ('error', f'{type(e).__name__}: {e}')
        pickle.dump(reply, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


if __name__ == '__main__':
    serve()
