r"""Input checks of the set models and losses: :func:`check_set_input`
(features, ``batch``, ``num_graphs``), :func:`positive_int` and
:func:`check_reduction` for constructor arguments.

Checks of shapes, dtypes and sizes always run. Checks that read values run
where :func:`sync_checks_allowed` says so: on CPU tensors always, on an
accelerator only after
:func:`~torch_geometric_hyper.debug.set_input_validation` (they would make
the host wait for the device), never while compiling.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from torch_geometric_hyper import debug
from torch_geometric_hyper.utils.validation import check_int

__all__ = [
    'check_set_input',
    'positive_int',
    'check_reduction',
    'sync_checks_allowed',
]


def positive_int(name: str, value) -> int:
    """``value`` as a positive :class:`int`, or a :class:`ValueError`
    naming ``name`` (:func:`~torch_geometric_hyper.utils.check_int`: bools,
    strings and fractional values are refused)."""
    return check_int(name, value)


def sync_checks_allowed(t: Tensor) -> bool:
    r"""Whether a check may read the values of ``t`` on the host: on the
    CPU (unless :func:`~torch_geometric_hyper.debug.set_host_as_accelerator`
    is on), or anywhere after
    :func:`~torch_geometric_hyper.debug.set_input_validation`; never while
    :func:`torch.compile` traces."""
    return (debug.on_host(t) or debug.is_validation_enabled()) and \
        not torch.compiler.is_compiling()


def check_set_input(x, batch, num_graphs, in_channels: int, *,
                    check_sorted: bool = True, check_finite: bool = False,
                    dtype: Optional[torch.dtype] = None):
    r"""Validates ``(x, batch, num_graphs)`` of a set model; returns them
    with defaults filled in (one graph when ``batch`` is ``None``).

    Always checked: ``x`` is a 2-D floating tensor with ``in_channels``
    columns and at least one row, ``batch`` a 1-D integer tensor with one
    entry per node, ``num_graphs`` a non-negative integer. Checked on CPU
    tensors (and on GPU after :func:`set_input_validation`): every graph id
    lies in ``[0, num_graphs)``, ``batch`` is sorted (``check_sorted``),
    the features are finite (``check_finite``).

    Args:
        check_sorted (bool, optional): refuse an unsorted ``batch``.
        check_finite (bool, optional): refuse NaN or infinite features.
        dtype (torch.dtype, optional): the model's floating dtype; floating
            ``x`` of another dtype is converted to it.
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"'x' must be a 2-D tensor [num_nodes, "
                         f"in_channels], got {getattr(x, 'shape', type(x))}")
    if x.size(1) != in_channels:
        raise ValueError(f"'x' has {x.size(1)} features per node but the "
                         f"model was built with in_channels={in_channels}")
    if x.size(0) == 0:
        raise ValueError("the input set is empty (x has 0 rows): a set needs "
                         "at least one node")
    if not x.is_floating_point():
        raise ValueError(f"'x' must be a floating-point tensor, got "
                         f"{x.dtype}; convert it with x.float()")
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    if check_finite and sync_checks_allowed(x) and \
            not bool(torch.isfinite(x).all()):
        raise ValueError("'x' contains NaN or infinite values; clean or "
                         "impute the node features first")
    if num_graphs is not None:
        if isinstance(num_graphs, Tensor):
            num_graphs = int(num_graphs)
        if isinstance(num_graphs, bool) or int(num_graphs) != num_graphs \
                or num_graphs < 1:
            raise ValueError(f"'num_graphs' must be a positive integer, got "
                             f"{num_graphs!r}")
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        num_graphs = 1 if num_graphs is None else num_graphs
    else:
        if not isinstance(batch, Tensor) or \
                tuple(batch.shape) != (x.size(0), ):
            raise ValueError(f"'batch' must have shape [num_nodes] = "
                             f"[{x.size(0)}], got "
                             f"{list(getattr(batch, 'shape', []))}")
        if batch.is_floating_point() or batch.dtype == torch.bool:
            raise ValueError(f"'batch' must hold integer graph ids, got "
                             f"{batch.dtype}")
        batch = batch.long()
        if sync_checks_allowed(batch):
            if check_sorted and batch.numel() > 1 and \
                    bool((batch[1:] < batch[:-1]).any()):
                raise ValueError("'batch' must be sorted (nodes of a graph "
                                 "contiguous), as PyG batches are")
            lo, hi = int(batch.min()), int(batch.max())
            if lo < 0:
                raise ValueError(f"'batch' holds the negative graph id {lo}")
            if num_graphs is not None and hi >= num_graphs:
                raise ValueError(f"'batch' holds graph id {hi} but "
                                 f"num_graphs={num_graphs}; pass num_graphs "
                                 f">= {hi + 1} (batch.num_graphs for a PyG "
                                 f"batch) or leave it None")
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1
    return x, batch, int(num_graphs)


def check_reduction(reduction: str) -> str:
    """Refuses a loss ``reduction`` other than ``'mean'``, ``'sum'`` and
    ``'none'``."""
    if reduction not in ('mean', 'sum', 'none'):
        raise ValueError(f"'reduction' must be 'mean', 'sum' or 'none', "
                         f"got '{reduction}'")
    return reduction
