r"""Argument checks of :mod:`~torch_geometric_hyper.data` and
:mod:`~torch_geometric_hyper.datasets`: the shared checks of
:mod:`torch_geometric_hyper.utils.validation`, with the way out added to
their messages, and their counterpart for arrays of ids read from files."""
from __future__ import annotations

from typing import Optional

import numpy as np

from torch_geometric_hyper.utils.validation import check_int

#: The way out of a refused count, size or id.
WHOLE = 'pass a whole number (an int, or an integral float such as 3.0)'


def check_count(name: str, value, minimum: Optional[int] = 1,
                why: str = '') -> int:
    r""":func:`~torch_geometric_hyper.utils.validation.check_int`
    (``value`` as an :class:`int` of at least ``minimum``; integral floats
    accepted, booleans, strings and fractional values refused), with the
    way out (and ``why``, when given) added to its :class:`ValueError`."""
    try:
        return check_int(name, value, minimum)
    except ValueError as err:
        try:
            check_int(name, value, None)
            way_out = f'pass a value >= {minimum}'  # whole, but too small
        except ValueError:
            way_out = WHOLE
        if why:
            way_out += f'; {why}'
        raise ValueError(f'{err}; {way_out}') from None


def check_int_array(name: str, array, hint: str = '') -> np.ndarray:
    r"""``array`` as an ``int64`` array, or a :class:`ValueError` naming
    ``name`` and the first value that is not an integer.

    Integer arrays pass; float arrays pass when every value is integral
    (``3.0``, as a CSV or NumPy round trip may store ids); fractional,
    infinite or NaN values, booleans, strings and objects are refused (a
    cast would truncate ``1.7`` to ``1``)."""
    a = np.asarray(array)
    if a.dtype.kind in 'iu':
        return a.astype(np.int64, copy=False)
    way_out = hint or 'store integer ids (e.g. array.astype(np.int64) ' \
        'after checking they are whole numbers)'
    if a.dtype.kind == 'f':
        with np.errstate(invalid='ignore'):
            bad = ~np.isfinite(a) | (a != np.floor(a))
        if not bad.any():
            return a.astype(np.int64)
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        at = f' at {pos[0] if len(pos) == 1 else list(pos)}' if pos else ''
        raise ValueError(f"'{name}' must hold integers, got {a.dtype} "
                         f"value {a[pos].item()!r}{at}; {way_out}")
    raise ValueError(f"'{name}' must hold integers, got dtype {a.dtype}; "
                     f"{way_out}")
