r"""Secondary-vertex finding in particle jets as set-to-hypergraph prediction
(the "particle partitioning" task of Shlomi et al. 2020 and Set2Graph)."""
from __future__ import annotations

import json
import os
import os.path as osp
import urllib.request
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch_geometric.data import InMemoryDataset

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.data.checks import check_count
from torch_geometric_hyper.datasets.cache import (
    HealingCache,
    UncachedSamples,
    temporary_path,
)

#: Per-track branches, in the order of the first six node features.
TRACK_FEATURES = ('trk_d0', 'trk_z0', 'trk_phi', 'trk_ctgtheta', 'trk_pt',
                  'trk_charge')
#: Per-jet branches, repeated on every track as the last four features.
JET_FEATURES = ('jet_pt', 'jet_eta', 'jet_phi', 'jet_M')
#: Fixed standardisation (mean, std) of the 10 node features, in order.
FEATURE_MEAN = (0.000608, 0.00385, -0.00267, 0.00476, 5.237, -0.000157,
                75.95, 0.00226, -0.00236, 9.438)
FEATURE_STD = (14.13, 10.69, 1.817, 1.890, 7.484, 1.0, 49.13, 1.215, 1.816,
               6.765)
#: ``jet_flav`` code of each flavour.
FLAVOURS: Dict[str, int] = {'bottom': 5, 'charm': 4, 'light': 0}

#: Every branch read, in the TTree ``tree``.
BRANCHES = TRACK_FEATURES + ('trk_vtx_index', ) + JET_FEATURES + \
    ('jet_flav', )
#: The expected layout, named in error messages.
SCHEMA = ("a ROOT file with a TTree 'tree', one entry per jet, jagged "
          "per-track branches " + ', '.join(TRACK_FEATURES) +
          ", trk_vtx_index and per-jet branches " +
          ', '.join(JET_FEATURES) + ", jet_flav (Zenodo record 4044628)")


#: Where each raw file may be found in a folder (:func:`link_raw_files`):
#: flat, or in split subfolders as the published sample is laid out.
RAW_LAYOUT = {
    'training_data.root': ['training_data.root', 'train/training_data.root'],
    'valid_data.root': ['valid_data.root', 'validation/valid_data.root',
                        'val/valid_data.root'],
    'test_data.root': ['test_data.root', 'test/test_data.root'],
}


def link_raw_files(raw_dir: str, root: str) -> None:
    r"""Symlinks the three ROOT files found under ``raw_dir`` (flat, or in
    ``train/``, ``validation/``, ``test/``; see :data:`RAW_LAYOUT`) into
    ``root/raw``, where :class:`ParticlePartitioning` reads them. Files
    already in ``root/raw`` are kept.

    Raises:
        FileNotFoundError: a file is in neither place; names the places
            looked at.
    """
    os.makedirs(osp.join(root, 'raw'), exist_ok=True)
    for name, places in RAW_LAYOUT.items():
        dst = osp.join(root, 'raw', name)
        if osp.exists(dst):
            continue
        found = [osp.join(raw_dir, p) for p in places
                 if osp.exists(osp.join(raw_dir, p))]
        if not found:
            raise FileNotFoundError(f"'{name}' not found under '{raw_dir}' "
                                    f"(looked for {places})")
        os.symlink(osp.abspath(found[0]), dst)


def check_root_file(path: str) -> None:
    r"""Fails fast, naming ``path``, on a file that cannot be a whole ROOT
    file: missing, empty, without the ``root`` magic bytes, or shorter than
    the length its header records (a truncated download)."""
    import struct
    if not osp.exists(path):
        raise FileNotFoundError(f"{path} is missing; expected {SCHEMA}")
    size = osp.getsize(path)
    if size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected {SCHEMA}")
    with open(path, 'rb') as f:
        head = f.read(20)
    if head[:4] != b'root':
        raise ValueError(f"{path} is not a ROOT file (it starts with "
                         f"{head[:4]!r}, not b'root'); expected {SCHEMA}")
    if len(head) < 16:
        raise ValueError(f"{path} is truncated: {size} bytes, shorter than "
                         f"a ROOT header")
    version = struct.unpack('>i', head[4:8])[0]
    if version >= 1000000:  # large-file header: 8-byte fEND
        end = struct.unpack('>q', head[12:20])[0] if len(head) >= 20 else -1
    else:
        end = struct.unpack('>i', head[12:16])[0]
    if end > size:
        raise ValueError(f"{path} is truncated: its header records {end} "
                         f"bytes but the file has {size}; download it "
                         f"again")


_INSTALL_HINT = ("reading the jets data needs uproot and awkward: "
                 "pip install torch_geometric_hyper[jets]")


def _import_uproot():
    try:
        import awkward  # noqa: F401
        import uproot
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return uproot


class ParticlePartitioning(UncachedSamples, HealingCache, InMemoryDataset):
    r"""Jets of charged tracks whose hyperedges are the decay vertices.

    The secondary-vertex finding data of Shlomi et al. (2020), used by
    Set2Graph (Serviansky et al., NeurIPS 2020) and by Zhang et al.
    (LoG 2022): each ROOT entry (TTree ``tree``) is one jet with 2–15
    tracks, and the target partitions its tracks by the vertex they come
    from (branch ``trk_vtx_index``, relabelled to :math:`0..k-1` in
    increasing label order).

    Each jet becomes a :class:`~torch_geometric_hyper.data.HypergraphData`
    with

    * ``x`` :math:`(n, 10)`: ``trk_d0, trk_z0, trk_phi, trk_ctgtheta,
      trk_pt, trk_charge`` then ``jet_pt, jet_eta, jet_phi, jet_M`` repeated
      on every track, standardised with the fixed means
      :data:`FEATURE_MEAN` and standard deviations :data:`FEATURE_STD`
      (those of the full data; a subsample is not centred exactly);
    * ``hyperedge_index`` :math:`(2, n)`: track :math:`i` in vertex
      :math:`k_i` (every track in exactly one hyperedge), and
      ``num_hyperedges`` (the number of vertices);
    * ``flavour`` (5 bottom, 4 charm, 0 light) and the raw ``jet_pt``,
      ``jet_eta``, ``jet_phi``, ``jet_M``, each of shape :math:`(1)` (so a
      batch holds one value per jet).

    Jets with fewer than two tracks have no pair to predict and are skipped;
    their number is stored in :attr:`num_skipped` (and printed while
    processing).

    The raw files are ``root/raw/training_data.root`` (``'train'``),
    ``root/raw/valid_data.root`` (``'val'``) and
    ``root/raw/test_data.root`` (``'test'``), as published in Zenodo record
    4044628. A missing file is downloaded from there; when that fails (no
    network), a :class:`FileNotFoundError` says which files are missing,
    where they go and where to download them. A damaged file (empty,
    truncated, not ROOT, a branch missing) fails at once with a
    :class:`ValueError` naming it and the expected layout
    (:data:`SCHEMA`). A processed cache that cannot be loaded is rebuilt
    from the raw file. Processing
    needs ``uproot`` and ``awkward`` (``pip install
    torch_geometric_hyper[jets]``); loading a processed cache does not.

    Args:
        root (str): root directory (``raw/`` and ``processed/`` below it).
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``.
        flavour (str, optional): keep only ``'bottom'``, ``'charm'`` or
            ``'light'`` jets (default: all). The filter runs on the cached
            split, so switching flavours does not reprocess.
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): reprocess even if cached.
        log (bool, optional): print progress. (default: :obj:`True`)

    Example:
        >>> ds = ParticlePartitioning('data/jets', 'val')  # doctest: +SKIP
        >>> ds[0]  # doctest: +SKIP
        HypergraphData(x=[5, 10], hyperedge_index=[2, 5], num_hyperedges=2,
                       flavour=[1], jet_pt=[1], jet_eta=[1], jet_phi=[1],
                       jet_M=[1])
    """

    url = 'https://zenodo.org/record/4044628/files/{}?download=1'
    split_files = {'train': 'training_data.root', 'val': 'valid_data.root',
                   'test': 'test_data.root'}
    download_timeout = 30.0

    def __init__(self, root: str, split: str = 'train',
                 flavour: Optional[str] = None,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True):
        if split not in self.split_files:
            raise ValueError(f"'split' must be one of "
                             f"{tuple(self.split_files)}, got '{split}'")
        if flavour is not None and flavour not in FLAVOURS:
            raise ValueError(f"'flavour' must be None or one of "
                             f"{tuple(FLAVOURS)}, got '{flavour}'")
        self.split = split
        self.flavour = flavour
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        self.load_processed(self._load)
        if flavour is not None:
            code = FLAVOURS[flavour]
            keep = (self._data.flavour.view(-1) == code).nonzero().view(-1)
            self._indices = keep.tolist()

    def _load(self):
        self.load(self.processed_paths[0], data_cls=HypergraphData)
        with open(self.processed_paths[1]) as f:
            self.stats = json.load(f)

    # -- InMemoryDataset ------------------------------------------------
    @property
    def raw_file_names(self) -> List[str]:
        return [self.split_files[self.split]]

    @property
    def processed_file_names(self) -> List[str]:
        return [f'{self.split}.pt', f'{self.split}_stats.json']

    def download(self):
        missing = [name for name in self.raw_file_names
                   if not osp.exists(osp.join(self.raw_dir, name))]
        failed = []
        for name in missing:
            path = osp.join(self.raw_dir, name)
            try:
                self._fetch(self.url.format(name), path)
            except Exception as e:  # no network, HTTP error, ...
                failed.append((name, e))
        if failed:
            lines = '\n'.join(
                f"  {osp.join(self.raw_dir, n)}\n    download: "
                f"{self.url.format(n)}\n    (tried automatically: "
                f"{type(e).__name__}: {e})" for n, e in failed)
            all_files = ', '.join(self.split_files.values())
            raise FileNotFoundError(
                f"the jets data file for split '{self.split}' is missing. "
                f"Put it here by hand, downloaded from Zenodo record "
                f"4044628 (the docs page 'Particle jets' says how):\n"
                f"{lines}\n(the three splits: {all_files}, all in "
                f"{self.raw_dir})")

    def _fetch(self, url: str, path: str):
        if self.log:
            print(f'Downloading {url}')
        tmp = temporary_path(path)
        with urllib.request.urlopen(url, timeout=self.download_timeout) as r, \
                open(tmp, 'wb') as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
        os.replace(tmp, path)

    def process(self):
        data_list, stats = self.read_jets(self.raw_paths[0], log=self.log,
                                          desc=f'Processing jets '
                                          f'({self.split})')
        if self.pre_filter is not None:
            data_list = [d for d in data_list if self.pre_filter(d)]
        if self.pre_transform is not None:
            data_list = [self.pre_transform(d) for d in data_list]
        stats['num_jets'] = len(data_list)
        if self.log and stats['num_skipped'] > 0:
            print(f"Skipped {stats['num_skipped']} of {stats['num_read']} "
                  f"jets with fewer than 2 tracks")
        path, stats_path = self.processed_paths
        tmp, stats_tmp = temporary_path(path), temporary_path(stats_path)
        self.save(data_list, tmp)
        with open(stats_tmp, 'w') as f:
            json.dump(stats, f)
        os.replace(tmp, path)
        os.replace(stats_tmp, stats_path)

    @staticmethod
    def read_jets(path: str, log: bool = False, desc: str = 'jets',
                  step_size: int = 100_000):
        r"""Reads one ROOT file into a list of
        :class:`~torch_geometric_hyper.data.HypergraphData` (one per jet with
        at least two tracks) and ``{'num_read', 'num_skipped'}``;
        ``step_size`` jets are read at a time (a positive integer)."""
        step_size = check_count('step_size', step_size, 1)
        uproot = _import_uproot()
        import awkward as ak
        from torch_geometric_hyper.utils import Progress

        branches = list(BRANCHES)
        mean = np.asarray(FEATURE_MEAN, dtype=np.float32)
        std = np.asarray(FEATURE_STD, dtype=np.float32)
        check_root_file(path)
        try:
            file = uproot.open(path)
        except Exception as err:
            raise ValueError(f"{path}: uproot cannot open it "
                             f"({type(err).__name__}: {err}); expected "
                             f"{SCHEMA}") from None
        with file:
            if 'tree' not in file:
                raise ValueError(f"{path} has no TTree 'tree' (keys: "
                                 f"{file.keys()}); expected {SCHEMA}")
            tree = file['tree']
            absent = [b for b in branches if b not in tree.keys()]
            if absent:
                raise ValueError(f"{path}: the TTree 'tree' lacks the "
                                 f"branches {absent}; expected {SCHEMA}")
            data_list, num_read, skipped = [], 0, 0
            bar = Progress(tree.num_entries, desc, enabled=log)
            try:
                chunks = list(tree.iterate(branches, step_size=step_size,
                                           library='ak'))
            except Exception as err:  # a damaged basket
                raise ValueError(f"{path}: reading the branches failed "
                                 f"({type(err).__name__}: {err}); the file "
                                 f"is damaged or truncated") from None
            for chunk in chunks:
                counts = ak.to_numpy(ak.num(chunk['trk_vtx_index']))
                offsets = np.concatenate([[0], np.cumsum(counts)])
                trk = np.stack([
                    ak.to_numpy(ak.flatten(chunk[b])).astype(np.float32)
                    for b in TRACK_FEATURES], axis=1)
                vtx = ak.to_numpy(ak.flatten(chunk['trk_vtx_index']))
                jet = np.stack([ak.to_numpy(chunk[b]).astype(np.float32)
                                for b in JET_FEATURES], axis=1)
                flav = ak.to_numpy(chunk['jet_flav']).astype(np.int64)
                for j in range(len(counts)):
                    n = int(counts[j])
                    bar.update(1)
                    if n < 2:
                        skipped += 1
                        continue
                    lo, hi = offsets[j], offsets[j + 1]
                    feats = np.concatenate(
                        [trk[lo:hi], np.repeat(jet[j:j + 1], n, 0)], axis=1)
                    x = torch.from_numpy((feats - mean) / std)
                    _, label = np.unique(vtx[lo:hi], return_inverse=True)
                    label = torch.from_numpy(label.reshape(-1)).long()
                    index = torch.stack([torch.arange(n), label])
                    data = HypergraphData(x=x, hyperedge_index=index,
                                          num_hyperedges=int(label.max()) + 1)
                    data.flavour = torch.tensor([int(flav[j])])
                    for k, name in enumerate(JET_FEATURES):
                        data[name] = torch.tensor([float(jet[j, k])])
                    data_list.append(data)
                num_read += len(counts)
            bar.close()
        return data_list, {'num_read': num_read, 'num_skipped': skipped}

    # -- info -----------------------------------------------------------
    @property
    def num_skipped(self) -> int:
        """Jets of the raw file skipped for having fewer than 2 tracks."""
        return int(self.stats['num_skipped'])

    @property
    def max_hyperedges(self) -> int:
        """The most vertices in a jet of this split (and flavour)."""
        counts = torch.as_tensor(self._data.num_hyperedges).view(-1)
        return int(counts[list(self.indices())].max())

    @property
    def max_nodes(self) -> int:
        """The most tracks in a jet of this split (and flavour)."""
        ptr = self.slices['x']
        return int((ptr[1:] - ptr[:-1])[list(self.indices())].max())

    def __repr__(self) -> str:
        flav = '' if self.flavour is None else f', flavour={self.flavour}'
        return (f'{self.__class__.__name__}({len(self)}, '
                f'split={self.split}{flav})')
