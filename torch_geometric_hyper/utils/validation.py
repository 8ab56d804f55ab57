r"""The argument checks every public entry point shares.

Each check returns the value in its canonical type or raises a
:class:`ValueError` that names the argument, what it must be and what it
got, so a bad argument is refused where it enters the package instead of
being truncated (``2.7`` becoming ``2``) or failing later. Counts and sizes
accept Python and NumPy integers and integral floats (``3.0``); booleans,
strings and fractional values are refused.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import torch
from torch import Tensor


def _is_integral(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, Tensor):
        return value.numel() == 1 and not value.is_floating_point() and \
            value.dtype != torch.bool
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and \
        float(value).is_integer()


def check_int(name: str, value, minimum: Optional[int] = 1,
              allow_none: bool = False) -> Optional[int]:
    r"""``value`` as an :class:`int` of at least ``minimum`` (``None``: no
    bound).

    Example:
        >>> check_int('num_points', 30.0)
        30
        >>> check_int('num_points', 2.7)
        Traceback (most recent call last):
        ...
        ValueError: 'num_points' must be a positive integer, got 2.7
    """
    if value is None and allow_none:
        return None
    need = {None: 'an integer', 0: 'a non-negative integer',
            1: 'a positive integer'}.get(minimum,
                                         f'an integer >= {minimum}')
    if allow_none:
        need += ' or None'
    if not _is_integral(value) or (minimum is not None and
                                   int(value) < minimum):
        raise ValueError(f"'{name}' must be {need}, got {value!r}")
    return int(value)


def check_float(name: str, value, positive: bool = True,
                allow_zero: bool = False,
                allow_none: bool = False) -> Optional[float]:
    r"""``value`` as a finite :class:`float`, positive (or non-negative with
    ``allow_zero``) when ``positive``.

    Example:
        >>> check_float('max_grad_norm', -1.0)
        Traceback (most recent call last):
        ...
        ValueError: 'max_grad_norm' must be a positive number, got -1.0
    """
    if value is None and allow_none:
        return None
    need = 'a non-negative number' if allow_zero else \
        'a positive number' if positive else 'a finite number'
    if allow_none:
        need += ' or None'
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)
    if ok and positive:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(f"'{name}' must be {need}, got {value!r}")
    return float(value)


def check_finite(name: str, tensor: Tensor) -> Tensor:
    """``tensor``, or a :class:`ValueError` naming ``name`` when it holds a
    NaN or an infinity (reads the values: call it where a host
    synchronisation is allowed)."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"'{name}' holds {bad} NaN or infinite value(s); "
                         f"clean or drop them first")
    return tensor


def check_index(name: str, index: Tensor, size: int) -> Tensor:
    """An integer tensor with values in ``[0, size)``, or a
    :class:`ValueError` naming ``name``."""
    if index.is_floating_point() or index.dtype == torch.bool:
        raise ValueError(f"'{name}' must hold integer ids, got dtype "
                         f"{index.dtype}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
        raise ValueError(f"'{name}' holds ids outside [0, {size}): min "
                         f"{int(index.min())}, max {int(index.max())}")
    return index
