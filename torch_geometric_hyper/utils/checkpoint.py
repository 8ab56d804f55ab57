r"""Checkpoint files that never run code when they are read.

Every checkpoint this package writes holds only tensors and plain Python
values (dicts, lists, tuples, strings, numbers, ``None``), so it is read
with ``torch.load(weights_only=True)``: a file that holds anything else (a
pickled object, which could run arbitrary code on load) is refused with a
:class:`ValueError` instead of being unpickled.
"""
from __future__ import annotations

import os
import pickle
import re

import torch


def save_atomic(obj, path: str) -> None:
    """:func:`torch.save` to a temporary file, then :func:`os.replace`, so
    ``path`` always holds a whole checkpoint."""
    tmp = f'{path}.tmp{os.getpid()}'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, map_location=None):
    r"""Reads a checkpoint with ``torch.load(weights_only=True)``.

    Args:
        path (str): the file.
        map_location: as in :func:`torch.load`.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is not a torch checkpoint, or it holds objects
            other than tensors and plain values (it is refused unread: such
            an object could run code when unpickled).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'no checkpoint at {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(err))
        if found is None:  # not a pickle of objects: garbage or truncated
            raise ValueError(f'{path} is not a readable torch checkpoint '
                             f'({_last_line(err)})') from None
        raise ValueError(
            f'refusing to load {path}: it holds an object '
            f'({found.group(1)}) besides tensors and plain Python values, '
            f'which could run code when read. Checkpoints of this package '
            f'never do; if you wrote this file yourself and trust it, read '
            f'it with torch.load(weights_only=False)') from None
    except Exception as err:  # truncated or not a torch file
        raise ValueError(f'{path} is not a readable torch checkpoint '
                         f'({type(err).__name__}: {err})') from None


def _last_line(err: Exception) -> str:
    """The reason in a weights-only unpickler's message."""
    text = str(err)
    found = re.search(r'WeightsUnpickler error: \s*(.+?)\n', text)
    return found.group(1).strip() if found else text.splitlines()[0]
