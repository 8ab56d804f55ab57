r"""Processed-dataset caches that heal: atomic writes, a lock while
building, and a rebuild when a cached file cannot be read."""
from __future__ import annotations

import contextlib
import copy
import os
import os.path as osp
import uuid
import warnings
from typing import Callable, Iterator

try:  # POSIX advisory locks; elsewhere atomic writes alone keep caches valid
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def temporary_path(path: str) -> str:
    r"""A unique sibling of ``path`` to write before renaming onto it (so
    two processes writing the same file never share a temporary file)."""
    return f'{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp'


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    r"""Holds an exclusive lock on ``path`` (created if needed) while the
    block runs; other processes asking for it wait."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'a') as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class UncachedSamples:
    r"""Mixin for :class:`~torch_geometric.data.InMemoryDataset` subclasses:
    ``dataset[i]`` cuts sample ``i`` out of the collated storage each time
    (views, no copy), without keeping it.

    :meth:`InMemoryDataset.get <torch_geometric.data.InMemoryDataset.get>`
    keeps a :class:`~torch_geometric.data.Data` object (with its tensor
    views) for every sample it has returned. Over one epoch of 20,000
    convex hulls of 30 points that grows the resident memory by 52 MiB,
    about as much as the collated tensors themselves hold (59 MiB); with
    this mixin it grows by 7 MiB. Cutting each sample again costs time
    where PyG would have reused its copy: 2.6 s against 1.45 s for a later
    epoch of those 20,000 sets, about 4 ms per batch of 64, under 1 % of a
    training batch at :math:`n = 30` (``benchmarks/dataset_memory.py``).
    The samples are the same either way: views of the storage, so changing
    a returned tensor in place changes the dataset, as in PyG.
    """

    def get(self, idx: int):
        from torch_geometric.data.separate import separate
        if self.len() == 1:
            return copy.copy(self._data)
        return separate(cls=self._data.__class__, batch=self._data, idx=idx,
                        slice_dict=self.slices, decrement=False)


class HealingCache:
    r"""Mixin for :class:`~torch_geometric.data.InMemoryDataset` subclasses
    whose processed files can be rebuilt (from raw files, or regenerated
    deterministically from a seed).

    * Processing runs under a lock file in ``processed_dir``, so two
      processes building the same dataset do it one after the other (the
      second finds the files in place and loads them).
    * :meth:`load_processed` loads the cache; when a processed file cannot
      be read (truncated, corrupt, from an interrupted run or a full disk),
      it warns with the file's path, deletes the processed files and builds
      them again.

    Subclasses write their processed files with :func:`temporary_path` and
    :func:`os.replace`, so a reader never sees a half-written file.
    """

    def _lock_path(self) -> str:
        return osp.join(self.processed_dir,
                        f'.{self.processed_file_names[0]}.lock')

    def _process(self):
        with file_lock(self._lock_path()):
            super()._process()

    def load_processed(self, load: Callable[[], None]) -> None:
        r"""Runs ``load()``; if it fails, rebuilds the processed files once
        and runs it again."""
        try:
            load()
            return
        except Exception as err:  # any unreadable cache: rebuild it
            paths = ', '.join(self.processed_paths)
            warnings.warn(f"{self.__class__.__name__}: the processed cache "
                          f"({paths}) could not be loaded "
                          f"({type(err).__name__}: {err}); rebuilding it",
                          stacklevel=3)
        with file_lock(self._lock_path()):
            for path in self.processed_paths:
                if osp.exists(path):
                    os.remove(path)
        self._process()
        load()
