r"""Base class of generated set-to-hypergraph datasets."""
from __future__ import annotations

import os
from typing import Callable, Iterable, List, Optional, Tuple, Type

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.data.checks import check_count
from torch_geometric_hyper.datasets.cache import (
    HealingCache,
    UncachedSamples,
    temporary_path,
)
from torch_geometric_hyper.utils.validation import check_int

SPLITS = ('train', 'val', 'test')


def check_choice(name: str, value, choices: Iterable):
    """Refuses a ``value`` of argument ``name`` outside ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"'{name}' must be one of {choices}, got "
                         f"{value!r}")
    return value


def check_num_points(num_points, minimum: int,
                     reason: str) -> Tuple[int, int]:
    r"""``(lo, hi)`` of a set-size argument (an int or a pair), or a
    :class:`ValueError` unless ``minimum <= lo <= hi``; ``reason`` says
    why ``minimum`` (shown as ``>= minimum (reason)``). Integral floats
    (``30.0``) count as ints; fractional values, booleans and strings are
    refused, not truncated."""
    need = (f"an integer >= {minimum} ({reason}) or a pair (lo, hi) of "
            f"them with lo <= hi")
    pair = isinstance(num_points, (tuple, list)) or (
        isinstance(num_points, (np.ndarray, torch.Tensor))
        and num_points.ndim == 1)
    if pair and len(num_points) != 2:
        raise ValueError(f"'num_points' must be {need}, got "
                         f"{num_points!r}; pass one size or two")
    values = list(num_points) if pair else [num_points]
    try:
        values = [check_int('num_points', v, None) for v in values]
    except ValueError:
        raise ValueError(f"'num_points' must be {need}, got "
                         f"{num_points!r}; pass whole numbers (ints, or "
                         f"integral floats such as 30.0)") from None
    if min(values) < minimum:
        raise ValueError(f"'num_points' must be {need}, got "
                         f"{num_points!r}; pass sizes of at least "
                         f"{minimum}")
    lo, hi = values[0], values[-1]
    if lo > hi:
        raise ValueError(f"'num_points' must be {need}, got "
                         f"{num_points!r}; swap them: ({hi}, {lo})")
    return lo, hi


def size_tag(num_points: Tuple[int, int]) -> str:
    """``'lo'`` or ``'lo-hi'``, for :attr:`SetToHypergraph.config`."""
    lo, hi = num_points
    return f'{lo}' if lo == hi else f'{lo}-{hi}'


def draw_non_degenerate(draw: Callable, tries: int = 100):
    """``draw()``, drawn again (up to ``tries`` times) while Qhull refuses
    the point set as degenerate."""
    from scipy.spatial import QhullError
    for _ in range(tries):
        try:
            return draw()
        except QhullError:  # pragma: no cover - degenerate draw
            continue
    raise RuntimeError('could not draw a non-degenerate point set')


class SetToHypergraph(UncachedSamples, HealingCache, InMemoryDataset):
    r"""An :class:`~torch_geometric.data.InMemoryDataset` of generated
    set-to-hypergraph samples.

    Subclasses implement :meth:`generate` (one sample from a NumPy random
    generator) and :attr:`config` (everything that changes the samples). The
    samples of a split are a pure function of ``(config, split, seed)``:
    split ``s`` draws from ``numpy.random.default_rng([seed, s])``, so the
    three splits never share a sample. They are generated once, with a
    progress bar, and cached under ``root/processed`` in a file named after
    the configuration (written to a temporary file, then renamed, so an
    interrupted run leaves no truncated cache). Two processes building the
    same cache take turns (a lock file); a cache that cannot be loaded is
    reported with its path and generated again
    (:class:`~torch_geometric_hyper.datasets.cache.HealingCache`).

    Args:
        root (str): cache directory.
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``.
        num_samples (int, optional): samples in this split (default: the
            subclass's per-split default).
        seed (int, optional): base seed. (default: :obj:`0`)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): regenerate even if cached.
        log (bool, optional): print progress. (default: :obj:`True`)
    """

    default_num_samples = {'train': 20_000, 'val': 2_000, 'test': 2_000}

    def __init__(self, root: str, split: str = 'train',
                 num_samples: Optional[int] = None, seed: int = 0,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True):
        if split not in SPLITS:
            raise ValueError(f"'split' must be one of {SPLITS}, got "
                             f"'{split}'")
        if num_samples is None:
            num_samples = self.default_num_samples[split]
        self.split = split
        self.num_samples = check_count('num_samples', num_samples, 1)
        self.seed = check_count('seed', seed, 0)
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        self.load_processed(lambda: self.load(self.processed_paths[0],
                                              data_cls=self.data_cls))

    #: The :class:`~torch_geometric.data.Data` subclass of the samples
    #: (a plain graph dataset sets :class:`~torch_geometric.data.Data`).
    data_cls: Type[Data] = HypergraphData

    # -- to implement ---------------------------------------------------
    @property
    def config(self) -> str:
        """A file-name-safe string of every parameter of the samples."""
        raise NotImplementedError

    def generate(self, rng: np.random.Generator) -> HypergraphData:
        """Draws one sample."""
        raise NotImplementedError

    # -- InMemoryDataset ------------------------------------------------
    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_file_names(self) -> List[str]:
        return [f'{self.split}_{self.config}_n{self.num_samples}'
                f'_seed{self.seed}.pt']

    def download(self):
        pass

    def process(self):
        from torch_geometric_hyper.utils import progress
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split)])
        data_list = []
        for _ in progress(range(self.num_samples), enabled=self.log,
                          desc=f'Generating {self.__class__.__name__} '
                          f'{self.split}'):
            data = self.generate(rng)
            if self.pre_filter is not None and not self.pre_filter(data):
                continue
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        path = self.processed_paths[0]
        tmp = temporary_path(path)
        self.save(data_list, tmp)
        os.replace(tmp, path)

    @property
    def max_hyperedges(self) -> int:
        """The largest number of hyperedges of a sample in this split."""
        if 'num_hyperedges' not in self._data:
            raise TypeError(f"{self.__class__.__name__} samples are "
                                 f"{self.data_cls.__name__} objects without "
                                 f"hyperedges")
        return int(torch.as_tensor(self._data.num_hyperedges).max())

    @property
    def max_nodes(self) -> int:
        """The largest set in this split."""
        ptr = self.slices['x']
        return int((ptr[1:] - ptr[:-1]).max())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'split={self.split}, {self.config})')
