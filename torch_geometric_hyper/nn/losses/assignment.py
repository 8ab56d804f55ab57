r"""The assignments of :meth:`MatchedIncidenceLoss.over_steps
<torch_geometric_hyper.nn.MatchedIncidenceLoss.over_steps>`: one per
(step, graph), or one per graph for all the steps of an update, solved on
the host from one transfer or where the costs are (a GPU solver)."""
from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np
import torch
from torch import Tensor

from torch_geometric_hyper.matching import batched_linear_assignment

__all__ = ['ASSIGNMENTS', 'check_assignment', 'columns_on_device',
           'columns_on_host', 'to_device']

#: ``'per_step'``: every prediction is matched on its own costs;
#: ``'per_update'``: the costs of the predictions of one update summed,
#: one assignment per graph for all of them.
ASSIGNMENTS = ('per_step', 'per_update')


def check_assignment(assignment: str) -> str:
    """Checks the ``assignment`` option of the matched loss.

    Args:
        assignment (str): one of :data:`ASSIGNMENTS`.

    Returns:
        str: ``assignment``.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"'assignment' must be 'per_step' or 'per_update', "
                         f"got {assignment!r}")
    return assignment


def columns_on_host(costs: Sequence[np.ndarray], counts: np.ndarray,
                    backend: str, per_update: bool,
                    solve: Callable) -> np.ndarray:
    r"""The matched slot of every (step, target) from host costs, in one
    call of ``solve``.

    Args:
        costs (list of numpy.ndarray): per step the reduced
            :math:`(\sum_g t_g, m)` cost of the batch's targets.
        counts (numpy.ndarray): :math:`t_g`, targets per graph.
        backend (str): the solver backend ``solve`` takes.
        per_update (bool): solve one assignment per graph on the costs
            summed over the steps (in float64) and use it for every step.
        solve (callable): :func:`~torch_geometric_hyper.matching.
            linear_assignment` (or a stand-in with its arguments).

    Returns:
        numpy.ndarray: :math:`(S, \sum_g t_g)` local slot ids, or
        :math:`(1, \sum_g t_g)` with ``per_update``.
    """
    total = int(counts.sum())
    splits = np.cumsum(counts)[:-1]
    if per_update:
        summed = np.sum([c.astype(np.float64) for c in costs], axis=0)
        costs = [summed]
    cols = solve([part for cost in costs for part in np.split(cost, splits)],
                 backend)
    out = np.concatenate(cols).reshape(len(costs), total) \
        if total else np.zeros((len(costs), 0), np.int64)
    return out


def columns_on_device(reduced: List[Tensor], counts: np.ndarray,
                      t_graph: Tensor, backend: str,
                      per_update: bool) -> Tensor:
    r"""The matched slot of every (step, target), solved where the costs
    are, by :func:`~torch_geometric_hyper.matching.batched_linear_assignment`
    (no host transfer with a GPU solver).

    The targets of each graph are padded to the most targets of a graph,
    :math:`t_{\max}`, with zero rows (a row of equal costs leaves the
    optimum of the others unchanged), so the :math:`S \times G` problems
    (:math:`G` with ``per_update``) are one :math:`(t_{\max}, m)` batch.
    Non-finite costs (a NaN logit, whose loss is NaN whatever the
    assignment) are replaced by finite ones for the solver.

    Args:
        reduced (list of torch.Tensor): per step the reduced
            :math:`(\sum_g t_g, m)` cost.
        counts (numpy.ndarray): :math:`t_g`, targets per graph (host).
        t_graph (torch.Tensor): the graph of each target.
        backend (str): as in :func:`~torch_geometric_hyper.matching.
            batched_linear_assignment`.
        per_update (bool): one assignment per graph on the summed costs.

    Returns:
        torch.Tensor: :math:`(S, \sum_g t_g)` local slot ids, or
        :math:`(1, \sum_g t_g)` with ``per_update``.
    """
    cost = torch.stack([r.detach() for r in reduced])
    if per_update:
        cost = cost.double().sum(0, keepdim=True)
    S, total, m = cost.shape
    G = counts.shape[0]
    if total == 0:
        return torch.zeros(S, 0, dtype=torch.long, device=cost.device)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    local = to_device(np.arange(total) - np.repeat(starts, counts),
                      cost.device)
    padded = cost.new_zeros(S, G, int(counts.max()), m)
    padded[:, t_graph, local] = torch.nan_to_num(cost)
    cols = batched_linear_assignment(padded.view(S * G, -1, m), backend)
    return cols.view(S, G, -1)[:, t_graph, local]


def to_device(array: np.ndarray, device) -> Tensor:
    """Host -> device without waiting for the device.

    A plain copy from pageable memory synchronises the stream, a pinned
    non-blocking one does not (the caching allocator keeps the pinned
    block until the copy is done).

    Args:
        array (numpy.ndarray): the host array.
        device (torch.device or str): where to.

    Returns:
        torch.Tensor: the array on ``device``.
    """
    out = torch.from_numpy(array)
    if torch.device(device).type == 'cuda':
        return out.pin_memory().to(device, non_blocking=True)
    return out.to(device)
