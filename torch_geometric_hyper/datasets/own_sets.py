r"""Your own sets as a dataset: from Python lists, ``.npz`` or CSV files.

File formats (the same as :func:`write_sets_npz` writes and the predict
command reads and writes):

``.npz`` (one file, all sets, in the layout of a PyG batch):

* ``x``: ``float [N, F]``, the nodes of every set, set after set;
* ``num_nodes``: ``int [S]``, the nodes of each set (summing to ``N``);
* ``hyperedge_index`` (optional): ``int [2, nnz]``, row 0 a node (a row of
  ``x``), row 1 a hyperedge id, numbered ``0..E-1`` set after set;
* ``num_hyperedges`` (with ``hyperedge_index``): ``int [S]``, the
  hyperedges of each set (summing to ``E``; empty ones count).

CSV (two files with a header row):

* nodes: a column ``set`` (any integer or string id), then one column per
  feature; a set's nodes are its rows in file order, numbered from 0;
* hyperedges (optional): columns ``set``, ``hyperedge``, ``node``, one row
  per member: ``node`` is the node's number within its set (an integer;
  ``3.0`` is read as 3, ``1.7`` refused), ``hyperedge`` any id unique
  within the set.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
import threading
import warnings
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import InMemoryDataset

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.data.checks import WHOLE, check_int_array
from torch_geometric_hyper.datasets.cache import UncachedSamples
from torch_geometric_hyper.utils.validation import check_float, check_int

SPLITS = ('train', 'val', 'test')

NPZ_SCHEMA = ("x float [N, F]; num_nodes int [S]; optional hyperedge_index "
              "int [2, nnz] (row 0 row of x, row 1 hyperedge id 0..E-1 set "
              "after set) with num_hyperedges int [S]")


def _is_list(value) -> bool:
    return hasattr(value, '__iter__') and \
        not isinstance(value, (str, bytes, dict))


def _node_id(value, where: str, e: int) -> int:
    try:
        return check_int('node id', value, None)
    except ValueError:
        raise ValueError(f"{where}: hyperedge {e} must hold integer node "
                         f"ids, got {value!r}; {WHOLE}") from None


def _id_array(path: str, key: str, array) -> np.ndarray:
    try:
        return check_int_array(key, array, f'expected {NPZ_SCHEMA}')
    except ValueError as err:
        raise ValueError(f'{path}: {err}') from None


def _csv_id(text: str, where: str, column: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:  # '3.0', as a CSV written from a float column holds ids
        return check_int(column, float(text), None)
    except ValueError:
        raise ValueError(f"{where}: '{column}' must be an integer (the "
                         f"node's number within its set), got {text!r}; "
                         f"{WHOLE}") from None


def _to_data(x, hyperedges, where: str) -> HypergraphData:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.dim() == 1:
        x = x.view(-1, 1)
    if x.dim() != 2:
        raise ValueError(f"{where}: 'x' must be [num_nodes, num_features], "
                         f"got shape {list(x.shape)}")
    if x.size(0) == 0:
        raise ValueError(f"{where}: the set is empty (no nodes)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: 'x' holds NaN or infinite values")
    n = x.size(0)
    if hyperedges is None:
        return HypergraphData(x=x, num_hyperedges=0)
    if not _is_list(hyperedges):
        raise ValueError(f"{where}: the hyperedges must be a list of "
                         f"node-id lists (or None), got {hyperedges!r}")
    node, edge = [], []
    for e, members in enumerate(hyperedges):
        if not _is_list(members):
            raise ValueError(f"{where}: hyperedge {e} must be a list of "
                             f"node ids, got {members!r}; give each "
                             f"hyperedge as a list such as [0, 2]")
        members = [i if type(i) is int else _node_id(i, where, e)
                   for i in members]
        bad = [i for i in members if not 0 <= i < n]
        if bad:
            raise ValueError(f"{where}: hyperedge {e} names nodes {bad} "
                             f"outside the set's {n} nodes")
        if len(set(members)) != len(members):
            raise ValueError(f"{where}: hyperedge {e} lists a node twice")
        node += members
        edge += [e] * len(members)
    index = torch.tensor([node, edge], dtype=torch.long).view(2, -1)
    return HypergraphData(x=x, hyperedge_index=index,
                          num_hyperedges=len(hyperedges))


def read_sets_npz(path: str) -> List[Tuple[np.ndarray, Optional[list]]]:
    r"""Reads sets from a ``.npz`` file (module docstring), as a list of
    ``(x, hyperedges)``, ``hyperedges`` a list of node lists or
    :obj:`None` when the file has no ``hyperedge_index``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no file at {path}")
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except Exception as err:
        raise ValueError(f"{path} is not a readable .npz file "
                         f"({type(err).__name__}: {err}); expected "
                         f"{NPZ_SCHEMA}") from None
    for key in ('x', 'num_nodes'):
        if key not in arrays:
            raise ValueError(f"{path} has no array '{key}' (it has "
                             f"{sorted(arrays)}); expected {NPZ_SCHEMA}")
    x = arrays['x']
    sizes = _id_array(path, 'num_nodes', arrays['num_nodes']).ravel()
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2 or (sizes < 0).any() or int(sizes.sum()) != len(x):
        raise ValueError(f"{path}: 'num_nodes' sums to {int(sizes.sum())} "
                         f"but 'x' has shape {list(x.shape)}; expected "
                         f"{NPZ_SCHEMA}")
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    hyper = None
    if 'hyperedge_index' in arrays:
        if 'num_hyperedges' not in arrays:
            raise ValueError(f"{path} has 'hyperedge_index' but no "
                             f"'num_hyperedges'; expected {NPZ_SCHEMA}")
        index = _id_array(path, 'hyperedge_index', arrays['hyperedge_index'])
        counts = _id_array(path, 'num_hyperedges',
                           arrays['num_hyperedges']).ravel()
        if index.ndim != 2 or index.shape[0] != 2:
            raise ValueError(f"{path}: 'hyperedge_index' must be [2, nnz], "
                             f"got {list(index.shape)}")
        if len(counts) != len(sizes):
            raise ValueError(f"{path}: 'num_hyperedges' has {len(counts)} "
                             f"entries but 'num_nodes' {len(sizes)}")
        if (counts < 0).any():
            raise ValueError(f"{path}: 'num_hyperedges' must be >= 0, got "
                             f"{int(counts.min())}; expected {NPZ_SCHEMA}")
        eptr = np.concatenate([[0], np.cumsum(counts)])
        if index.size and (index[0].min() < 0 or index[0].max() >= len(x)
                           or index[1].min() < 0
                           or index[1].max() >= eptr[-1]):
            raise ValueError(f"{path}: 'hyperedge_index' holds ids outside "
                             f"[0, {len(x)}) x [0, {int(eptr[-1])})")
        set_of_edge = np.searchsorted(eptr, index[1], side='right') - 1
        set_of_node = np.searchsorted(ptr, index[0], side='right') - 1
        wrong = np.nonzero(set_of_edge != set_of_node)[0]
        if wrong.size:
            k = int(wrong[0])
            raise ValueError(f"{path}: hyperedge {int(index[1, k])} (of set "
                             f"{int(set_of_edge[k])}) holds node "
                             f"{int(index[0, k])} of set "
                             f"{int(set_of_node[k])}")
        hyper = [[[] for _ in range(int(c))] for c in counts]
        for i, e, s in zip(index[0], index[1], set_of_edge):
            hyper[s][e - eptr[s]].append(int(i - ptr[s]))
    return [(x[ptr[s]:ptr[s + 1]], None if hyper is None else hyper[s])
            for s in range(len(sizes))]


def write_sets_npz(path: str, sets: Sequence, **extra: np.ndarray) -> None:
    r"""Writes ``(x, hyperedges)`` pairs (``hyperedges`` may be
    :obj:`None` for all of them) to a ``.npz`` file in the format
    :func:`read_sets_npz` reads, plus any ``extra`` arrays."""
    xs, sizes, node, edge, counts = [], [], [], [], []
    offset = eoff = 0
    has_edges = any(h is not None for _, h in sets)
    for x, hyper in sets:
        x = np.asarray(x, dtype=np.float32)
        xs.append(x.reshape(len(x), -1))
        sizes.append(len(x))
        hyper = hyper or []
        for e, members in enumerate(hyper):
            node += [offset + int(i) for i in members]
            edge += [eoff + e] * len(members)
        counts.append(len(hyper))
        offset += len(x)
        eoff += len(hyper)
    arrays = dict(x=np.concatenate(xs) if xs else np.zeros((0, 1)),
                  num_nodes=np.asarray(sizes, dtype=np.int64), **extra)
    if has_edges:
        arrays['hyperedge_index'] = np.asarray([node, edge],
                                               dtype=np.int64).reshape(2, -1)
        arrays['num_hyperedges'] = np.asarray(counts, dtype=np.int64)
    tmp = f'{path}.tmp{os.getpid()}.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_sets_csv(nodes_path: str, hyperedges_path: Optional[str] = None
                  ) -> List[Tuple[np.ndarray, Optional[list]]]:
    r"""Reads sets from CSV files (module docstring)."""
    if not os.path.exists(nodes_path):
        raise FileNotFoundError(f"no file at {nodes_path}")
    with open(nodes_path, newline='') as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0].strip() != 'set' \
            or len(rows[0]) < 2:
        raise ValueError(f"{nodes_path}: the header must be 'set' followed "
                         f"by one column per feature, got {rows[:1]}")
    order, feats = [], {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(rows[0]):
            raise ValueError(f"{nodes_path}, line {line}: {len(row)} "
                             f"columns, the header has {len(rows[0])}")
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            raise ValueError(f"{nodes_path}, line {line}: a feature is not "
                             f"a number: {row[1:]}") from None
        key = row[0].strip()
        if key not in feats:
            order.append(key)
            feats[key] = []
        feats[key].append(values)
    hyper = None
    if hyperedges_path is not None:
        if not os.path.exists(hyperedges_path):
            raise FileNotFoundError(f"no file at {hyperedges_path}")
        with open(hyperedges_path, newline='') as f:
            reader = csv.DictReader(f)
            need = {'set', 'hyperedge', 'node'}
            if reader.fieldnames is None or \
                    not need <= {c.strip() for c in reader.fieldnames}:
                raise ValueError(f"{hyperedges_path}: the header must hold "
                                 f"the columns set, hyperedge, node; got "
                                 f"{reader.fieldnames}")
            hyper = {k: {} for k in order}
            for line, row in enumerate(reader, start=2):
                if None in row or None in row.values():
                    raise ValueError(f"{hyperedges_path}, line {line}: "
                                     f"the row does not have the "
                                     f"{len(reader.fieldnames)} columns of "
                                     f"the header {reader.fieldnames}")
                row = {k.strip(): v.strip() for k, v in row.items()}
                if row['set'] not in hyper:
                    raise ValueError(f"{hyperedges_path}, line {line}: set "
                                     f"{row['set']!r} has no nodes in "
                                     f"{nodes_path}")
                node = _csv_id(row['node'], f'{hyperedges_path}, line '
                               f'{line}', 'node')
                hyper[row['set']].setdefault(row['hyperedge'], []).append(
                    node)
    return [(np.asarray(feats[k], dtype=np.float32),
             None if hyper is None else list(hyper[k].values()))
            for k in order]


def _split_indices(num_sets: int, split: str, seed: int,
                   fractions: Tuple[float, ...]) -> np.ndarray:
    """The sets of ``split``: those of a shuffle with ``seed``, cut by
    ``fractions``."""
    order = np.random.default_rng(seed).permutation(num_sets)
    share = np.asarray(fractions) / sum(fractions)
    cut = np.round(np.cumsum(share) * num_sets).astype(int)
    lo = 0 if split == 'train' else cut[SPLITS.index(split) - 1]
    return order[lo:cut[SPLITS.index(split)]]


#: The splits made in this process, by the content of the sets they split:
#: ``{fingerprint: {split: (seed, fractions)}}``, for the most recently
#: used :data:`_MAX_SOURCES` contents.
_SPLITS_MADE: 'OrderedDict[bytes, Dict[str, tuple]]' = OrderedDict()
_MAX_SOURCES = 256
_SPLITS_LOCK = threading.Lock()
#: While :meth:`HypergraphSets.splits` runs: ``keys``, the sets whose
#: earlier splits it has replaced.
_ALL_SPLITS = threading.local()


def _fingerprint(data: List[HypergraphData]) -> bytes:
    """A digest of the features and hyperedges of every set, in order."""
    h = hashlib.blake2b(digest_size=16)
    for d in data:
        index = d.hyperedge_index
        h.update(np.array([*d.x.shape, int(d.num_hyperedges),
                           index.size(1)], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(d.x.numpy()).tobytes())
        h.update(np.ascontiguousarray(index.numpy()).tobytes())
    return h.digest()


def _check_disjoint(key: bytes, num_sets: int, split: str, seed: int,
                    fractions: Tuple[float, ...], indices: np.ndarray,
                    source: str) -> None:
    r"""Records this split of the sets ``key``; warns when it shares sets
    with a split of another name made from them before (with another seed
    or other fractions: the same ones give disjoint splits)."""
    together = getattr(_ALL_SPLITS, 'keys', None)  # inside splits()
    with _SPLITS_LOCK:
        made = _SPLITS_MADE.setdefault(key, {})
        _SPLITS_MADE.move_to_end(key)
        if together is not None and key not in together:
            made.clear()  # splits() makes a new consistent triple
            together.add(key)
        earlier = [(other, *made[other]) for other in SPLITS
                   if other != split and other in made]
        made[split] = (seed, fractions)
        while len(_SPLITS_MADE) > _MAX_SOURCES:
            _SPLITS_MADE.popitem(last=False)
    mine = np.zeros(num_sets, dtype=bool)
    mine[indices] = True
    for other, o_seed, o_fractions in earlier:
        if (o_seed, o_fractions) == (seed, fractions):
            continue  # disjoint by construction
        shared = int(mine[_split_indices(num_sets, other, o_seed,
                                         o_fractions)].sum())
        if not shared:
            continue
        differ = []
        if o_seed != seed:
            differ.append(f'seed={seed} (that one {o_seed})')
        if not differ or not np.allclose(
                np.divide(o_fractions, sum(o_fractions)),
                np.divide(fractions, sum(fractions))):
            differ.append(f'fractions={fractions} (that one '
                          f'{o_fractions})')
        warnings.warn(
            f"{source}: split {split!r} shares {shared} of its "
            f"{len(indices)} sets with the split {other!r} made earlier "
            f"from the same sets: this one has {' and '.join(differ)}. "
            f"Splits overlap unless every split gets the same seed and "
            f"fractions: pass seed={o_seed}, fractions={o_fractions} here "
            f"(or make all three with HypergraphSets.splits(sets, "
            f"fractions=..., seed=...))", UserWarning,
            stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this module (the
    user's call of the constructor, :meth:`HypergraphSets.from_npz`,
    ...)."""
    level, frame = 2, sys._getframe(1)  # 2: the caller of this function
    while frame.f_back is not None and \
            frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    return level - 1


class HypergraphSets(UncachedSamples, InMemoryDataset):
    r"""A dataset of your own sets and their hyperedges, ready for the
    refiner: each sample is a
    :class:`~torch_geometric_hyper.data.HypergraphData`.

    Build it from a list of ``(x, hyperedges)`` pairs (``x`` array-like
    ``[n, F]``, ``hyperedges`` a list of node-index lists, or :obj:`None`
    for sets to predict on), or with :meth:`from_npz` / :meth:`from_csv`
    (formats in :mod:`torch_geometric_hyper.datasets.own_sets`).

    With ``split``, the sets are shuffled once with ``seed`` and cut by
    ``fractions`` into train / val / test; the same arguments give disjoint
    splits (:meth:`splits` makes all three at once). Splits of the same sets
    made with a different ``seed`` or different ``fractions`` overlap: when
    a split shares sets with a split of another name made earlier in this
    process from the same sets (same features and hyperedges, in the same
    order), a :class:`UserWarning` names both, the differing seed or
    fractions, and the fix. :attr:`max_hyperedges` is taken over *all* the
    sets given, so a model sized for the training split has slots for every
    split.

    Args:
        sets (list): ``(x, hyperedges)`` pairs.
        split (str, optional): ``'train'``, ``'val'``, ``'test'`` or
            :obj:`None` (every set, in order). (default: :obj:`None`)
        fractions (tuple, optional): train / val / test shares,
            non-negative, not all zero. (default: ``(0.8, 0.1, 0.1)``)
        seed (int, optional): seed of the shuffle, a non-negative integer:
            give every split the same one. (default: :obj:`0`)
        transform (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        source (str, optional): named in error messages.

    Example:
        >>> sets = [([[0., 0.], [1., 0.], [0., 1.]], [[0, 1, 2]]),
        ...         ([[0., 0.], [2., 0.]], [[0, 1]])]
        >>> ds = HypergraphSets(sets)
        >>> len(ds), ds.max_hyperedges, ds[0].num_hyperedges
        (2, 1, 1)
    """

    def __init__(self, sets: Sequence, split: Optional[str] = None,
                 fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0, transform: Optional[Callable] = None,
                 source: str = 'sets'):
        if split is not None and split not in SPLITS:
            raise ValueError(f"'split' must be one of {SPLITS} or None, got "
                             f"{split!r}")
        need = "three non-negative shares (train, val, test), not all 0"
        if _is_list(fractions):
            fractions = list(fractions)
        if not isinstance(fractions, list) or len(fractions) != 3:
            raise ValueError(f"'fractions' must be {need}, got "
                             f"{fractions!r}; e.g. (0.8, 0.1, 0.1)")
        try:
            fractions = tuple(check_float('fractions', f, allow_zero=True)
                              for f in fractions)
        except ValueError:
            raise ValueError(f"'fractions' must be {need}, got "
                             f"{fractions!r}; e.g. (0.8, 0.1, 0.1)") from None
        if sum(fractions) <= 0:
            raise ValueError(f"'fractions' must be {need}, got "
                             f"{fractions!r}; e.g. (0.8, 0.1, 0.1)")
        try:
            seed = check_int('seed', seed, 0)
        except ValueError as err:
            raise ValueError(f"{err}; pass the same whole number to every "
                             f"split (None would shuffle differently each "
                             f"time, and the splits would overlap)") from None
        sets = list(sets)
        if not sets:
            raise ValueError(f"{source}: no sets given")
        data = []
        for s, item in enumerate(sets):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError(f"{source}: set {s} must be a pair (x, "
                                 f"hyperedges), got {type(item).__name__}")
            data.append(_to_data(item[0], item[1], f'{source}, set {s}'))
        features = {d.x.size(1) for d in data}
        if len(features) != 1:
            raise ValueError(f"{source}: the sets have different feature "
                             f"counts {sorted(features)}")
        self.num_sets_total = len(data)
        self._max_hyperedges = max(int(d.num_hyperedges) for d in data)
        self.has_hyperedges = any(item[1] is not None for item in sets)
        self.split = split
        self.seed, self.fractions = seed, fractions
        if split is not None:
            picked = _split_indices(len(data), split, seed, fractions)
            if not len(picked):
                raise ValueError(f"{source}: split {split!r} is empty "
                                 f"({len(sets)} sets, fractions "
                                 f"{fractions}); give more sets or larger "
                                 f"fractions")
            _check_disjoint(_fingerprint(data), len(data), split, seed,
                            fractions, picked, source)
            self.indices_in_source = picked.tolist()
            data = [data[i] for i in self.indices_in_source]
        else:
            self.indices_in_source = list(range(len(data)))
        super().__init__(None, transform, log=False)
        self._data, self.slices = self.collate(data)

    @classmethod
    def splits(cls, sets: Sequence,
               fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
               **kwargs) -> Tuple['HypergraphSets', 'HypergraphSets',
                                  'HypergraphSets']:
        r"""The ``(train, val, test)`` splits of ``sets``, made with one
        ``seed`` and one ``fractions``: disjoint, and together every set.
        ``kwargs`` (``transform``, ``source``) go to each split.

        Example:
            >>> sets = [([[float(i)]], [[0]]) for i in range(10)]
            >>> train, val, test = HypergraphSets.splits(sets, seed=1)
            >>> len(train), len(val), len(test)
            (8, 1, 1)
        """
        sets = list(sets)
        _ALL_SPLITS.keys = set()
        try:
            return tuple(cls(sets, split=split, fractions=fractions,
                             seed=seed, **kwargs) for split in SPLITS)
        finally:
            del _ALL_SPLITS.keys

    @classmethod
    def from_npz(cls, path: str, **kwargs) -> 'HypergraphSets':
        """The sets of a ``.npz`` file (see the module docstring)."""
        return cls(read_sets_npz(path), source=path, **kwargs)

    @classmethod
    def from_csv(cls, nodes_path: str, hyperedges_path: Optional[str] = None,
                 **kwargs) -> 'HypergraphSets':
        """The sets of CSV files (see the module docstring)."""
        return cls(read_sets_csv(nodes_path, hyperedges_path),
                   source=nodes_path, **kwargs)

    @property
    def max_hyperedges(self) -> int:
        """The most hyperedges of one set, over all the sets given."""
        return self._max_hyperedges

    @property
    def max_nodes(self) -> int:
        """The largest set in this split."""
        ptr = self.slices['x']
        return int((ptr[1:] - ptr[:-1]).max())

    def __repr__(self) -> str:
        split = '' if self.split is None else f', split={self.split}'
        return f'{self.__class__.__name__}({len(self)}{split})'
