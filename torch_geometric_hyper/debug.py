r"""Switches of the input checks, modelled on :mod:`torch_geometric.debug`.

The set models check their inputs before they run
(:func:`~torch_geometric_hyper.nn.checks.check_set_input`). Checks on
shapes, dtypes and sizes cost nothing and always run. Checks on values
(graph ids within ``num_graphs``, a sorted ``batch``, finite features,
target ids in range) read tensors on the host: on CPU tensors that is free
and they always run, on an accelerator it waits for the device, so there
they run only while validation is enabled:

.. code-block:: python

    import torch_geometric_hyper

    torch_geometric_hyper.debug.set_input_validation(True)  # from now on
    with torch_geometric_hyper.debug.validation():           # in a block
        pred = model(x, batch)

A second switch, :func:`set_host_as_accelerator`, makes the package treat
CPU tensors as if they lived on an accelerator (no host-only fast paths, no
host reads for checks); :class:`~torch_geometric_hyper.testing.HostSyncCounter`
sets it to count the synchronisations an accelerator would make.

This module imports nothing from the package, so every module may read the
switches.
"""
from typing import Any

__all__ = [
    'is_validation_enabled',
    'set_input_validation',
    'validation',
    'is_host_as_accelerator',
    'set_host_as_accelerator',
    'on_host',
]

__validation_flag__ = {'enabled': False}
__host_as_accelerator_flag__ = {'enabled': False}


def is_validation_enabled() -> bool:
    r"""Whether the input checks that need a host synchronisation also run
    on accelerator tensors (:func:`set_input_validation`)."""
    return __validation_flag__['enabled']


def set_input_validation(enabled: bool) -> None:
    r"""Also runs, on accelerator tensors, the input checks that need a
    host synchronisation (graph ids within ``num_graphs``, a sorted
    ``batch``, finite features). On CPU tensors they always run (they cost
    nothing there); on a GPU they are off by default so that a forward pass
    does not wait for the device. The checks on shapes, dtypes and sizes
    are always on.

    Args:
        enabled (bool): run the checks on accelerator tensors too.
    """
    __validation_flag__['enabled'] = bool(enabled)


class validation:
    r"""Context manager that turns the accelerator input checks on (or, with
    ``enabled=False``, off) inside its block and restores the previous
    setting on leaving it (see :func:`set_input_validation`).

    .. code-block:: python

        with torch_geometric_hyper.debug.validation():
            pred = model(x.cuda(), batch.cuda())

    Args:
        enabled (bool, optional): the setting inside the block.
            (default: :obj:`True`)
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)
        self.prev = None

    def __enter__(self) -> None:
        self.prev = is_validation_enabled()
        set_input_validation(self.enabled)

    def __exit__(self, *args: Any) -> None:
        set_input_validation(self.prev)


def is_host_as_accelerator() -> bool:
    r"""Whether CPU tensors are treated as accelerator tensors
    (:func:`set_host_as_accelerator`)."""
    return __host_as_accelerator_flag__['enabled']


def set_host_as_accelerator(enabled: bool) -> None:
    r"""Treats CPU tensors as if they lived on an accelerator: the kernels
    skip their host-only fast paths (NumPy sorts, reads of sizes) and the
    input checks that read values run only with
    :func:`set_input_validation`. For tests that count an accelerator's
    host synchronisations on the CPU
    (:class:`~torch_geometric_hyper.testing.HostSyncCounter`).

    Args:
        enabled (bool): treat CPU tensors as accelerator tensors.
    """
    __host_as_accelerator_flag__['enabled'] = bool(enabled)


def on_host(t) -> bool:
    r"""Whether the tensor ``t`` lives on the CPU, so host-only fast paths
    (NumPy) may read it; ``False`` while :func:`set_host_as_accelerator`
    is on, so the count of a
    :class:`~torch_geometric_hyper.testing.HostSyncCounter` follows the
    accelerator's path."""
    return t.device.type == 'cpu' and not is_host_as_accelerator()
