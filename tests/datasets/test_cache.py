import numpy as np
import pytest
import torch
from torch_geometric.data import InMemoryDataset
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.datasets import ConvexHull, HypergraphSets
from torch_geometric_hyper.datasets.cache import UncachedSamples


def _kept(ds) -> int:
    # samples PyG's InMemoryDataset.get would have kept a copy of
    cached = getattr(ds, '_data_list', None)
    return 0 if cached is None else sum(d is not None for d in cached)


def _own_sets():
    rng = np.random.default_rng(0)
    return HypergraphSets([(rng.normal(size=(n, 2)), [[0, 1], [1, 2, 3]])
                           for n in (4, 6, 5, 7)])


@pytest.mark.parametrize('make', ['hull', 'own'])
def test_samples_are_cut_again_not_kept(tmp_path, make):
    ds = ConvexHull(tmp_path, num_points=8, num_samples=6, log=False) \
        if make == 'hull' else _own_sets()
    assert isinstance(ds, UncachedSamples)
    for _ in range(2):
        got = [ds[i] for i in range(len(ds))]
        for _ in DataLoader(ds, batch_size=3, shuffle=True):
            pass
    assert _kept(ds) == 0
    # the same samples as PyG's own (caching) get
    for i, data in enumerate(got):
        ref = InMemoryDataset.get(ds, i)
        assert data.keys() == ref.keys()
        for key in ref.keys():
            assert torch.equal(torch.as_tensor(data[key]),
                               torch.as_tensor(ref[key])), key
    # subsets and shuffles go through get too
    sub = ds[[3, 1]]
    assert torch.equal(sub[0].x, got[3].x) and torch.equal(sub[1].x,
                                                          got[1].x)
    assert torch.equal(sub[1].hyperedge_index, got[1].hyperedge_index)


def test_single_sample_is_a_copy(tmp_path):
    ds = ConvexHull(tmp_path, num_points=6, num_samples=1, log=False)
    a, b = ds[0], ds[0]
    assert a is not b and torch.equal(a.x, b.x)
    a.x = a.x + 1  # rebinding a field leaves the dataset alone
    assert torch.equal(ds[0].x, b.x)
