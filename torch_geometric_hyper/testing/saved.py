r"""How many bytes autograd keeps for the backward pass of some code."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor


def saved_tensor_bytes(fn: Callable[[], object],
                       exclude: Iterable[Tensor] = ()) -> int:
    r"""Runs ``fn()`` and returns the bytes of the distinct storages that
    autograd saves for backward while it runs, leaving out the storages of
    ``exclude`` (parameters, inputs and other tensors that exist anyway).

    Each storage counts once, however many saved tensors view it; a sparse
    tensor counts by its values. This is what a training step holds in
    memory between its forward and backward passes, beyond ``exclude``.
    ``fn`` may run backward too; its gradients are unchanged.

    Args:
        fn (callable): the code to run, without arguments.
        exclude (iterable of torch.Tensor, optional): tensors whose
            storages are not counted.

    Example:
        >>> import torch
        >>> x = torch.randn(100, requires_grad=True)
        >>> saved_tensor_bytes(lambda: x.exp().sum(), exclude=[x])
        400
    """
    held = {t.untyped_storage().data_ptr() for t in exclude}
    seen = {}

    def pack(t: Tensor) -> Tensor:
        values = t._values() if t.is_sparse else t
        ptr = values.untyped_storage().data_ptr()
        if ptr not in held:
            seen[ptr] = values.untyped_storage().nbytes()
        # detached: a saved output returned as itself would hold its own
        # grad_fn, a reference cycle through autograd that is never freed
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())
