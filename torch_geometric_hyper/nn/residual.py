r"""The residual sum of the refiners' DeepSet blocks."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ['residual_add']


def residual_add(h: Tensor, x: Tensor) -> Tensor:
    r"""``x + h`` for a fresh tensor ``h`` that nothing else holds (a
    layer's own output): in place on ``h`` when that gives the same result
    (same shape, and ``h``'s dtype already the sum's; under autocast a
    half-precision ``h`` and a float32 ``x`` take the promoting sum)."""
    if h.shape == x.shape and h.dtype == torch.promote_types(h.dtype,
                                                             x.dtype):
        return h.add_(x)
    return x + h
