import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.datasets import (
    HypergraphSets,
    read_sets_csv,
    read_sets_npz,
    write_sets_npz,
)

SETS = [
    ([[0., 0.], [1., 0.], [0., 1.], [1., 1.]], [[0, 1, 2], [1, 2, 3]]),
    ([[0., 0.], [2., 0.]], [[0, 1]]),
    ([[5., 5.], [6., 5.], [5., 6.]], [[0, 1, 2], [], [2]]),  # empty middle
]


def test_from_lists_batches_and_max_hyperedges():
    ds = HypergraphSets(SETS)
    assert len(ds) == 3 and ds.max_hyperedges == 3 and ds.max_nodes == 4
    assert ds[2].num_hyperedges == 3
    assert torch.equal(ds[2].to_dense_incidence(),
                       torch.tensor([[1., 1., 1.], [0., 0., 0.],
                                     [0., 0., 1.]]))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.hyperedge_index[:, -1].tolist() == [8, 5]  # offsets
    assert batch.num_hyperedges.tolist() == [2, 1, 3]


def test_splits_are_disjoint_and_cover():
    sets = [(np.random.rand(3, 2), [[0, 1]] * (i % 4 + 1)) for i in range(50)]
    parts = {s: HypergraphSets(sets, split=s, seed=3)
             for s in ('train', 'val', 'test')}
    idx = [i for p in parts.values() for i in p.indices_in_source]
    assert sorted(idx) == list(range(50))
    assert [len(p) for p in parts.values()] == [40, 5, 5]
    # max_hyperedges over all sets, whatever the split
    assert {p.max_hyperedges for p in parts.values()} == {4}
    again = HypergraphSets(sets, split='val', seed=3)
    assert again.indices_in_source == parts['val'].indices_in_source


def test_npz_round_trip(tmp_path):
    path = str(tmp_path / 'sets.npz')
    write_sets_npz(path, SETS)
    back = read_sets_npz(path)
    assert [h for _, h in back] == [h for _, h in SETS]
    for (x, _), (y, _) in zip(back, SETS):
        assert np.allclose(x, y)
    ds = HypergraphSets.from_npz(path)
    assert len(ds) == 3 and ds.max_hyperedges == 3
    # sets without hyperedges (input of the predict command)
    write_sets_npz(path, [(x, None) for x, _ in SETS])
    assert all(h is None for _, h in read_sets_npz(path))
    assert HypergraphSets.from_npz(path).max_hyperedges == 0


def test_csv(tmp_path):
    nodes, edges = tmp_path / 'nodes.csv', tmp_path / 'edges.csv'
    nodes.write_text('set,a,b\nA,0,0\nA,1,0\nA,0,1\nB,2,2\nB,3,3\n')
    edges.write_text('set,hyperedge,node\nA,f,0\nA,f,2\nB,g,1\nA,h,1\n')
    sets = read_sets_csv(str(nodes), str(edges))
    assert [h for _, h in sets] == [[[0, 2], [1]], [[1]]]
    assert np.allclose(sets[1][0], [[2, 2], [3, 3]])
    ds = HypergraphSets.from_csv(str(nodes), str(edges))
    assert len(ds) == 2 and ds.num_features == 2


def test_bad_input_names_the_file_and_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='no file at .*nope.npz'):
        read_sets_npz(str(tmp_path / 'nope.npz'))
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not a zip file')
    with pytest.raises(ValueError, match='bad.npz is not a readable .npz'):
        read_sets_npz(str(bad))
    path = str(tmp_path / 'nox.npz')
    np.savez(path, num_nodes=np.array([2]))
    with pytest.raises(ValueError, match=r"nox.npz has no array 'x'"):
        read_sets_npz(path)
    np.savez(path, x=np.zeros((3, 2)), num_nodes=np.array([2]))
    with pytest.raises(ValueError, match="'num_nodes' sums to 2"):
        read_sets_npz(path)
    # a hyperedge joining two sets
    np.savez(path, x=np.zeros((4, 2)), num_nodes=np.array([2, 2]),
             hyperedge_index=np.array([[0, 3], [0, 0]]),
             num_hyperedges=np.array([1, 0]))
    with pytest.raises(ValueError, match='holds node 3 of set 1'):
        read_sets_npz(path)
    with pytest.raises(ValueError, match=r'set 0: .*outside'):
        HypergraphSets([([[0.], [1.]], [[0, 5]])])
    with pytest.raises(ValueError, match='NaN'):
        HypergraphSets([([[float('nan')]], None)])
    with pytest.raises(ValueError, match='empty'):
        HypergraphSets([(np.zeros((0, 2)), None)])
    with pytest.raises(ValueError, match='different feature counts'):
        HypergraphSets([(np.zeros((2, 2)), None), (np.zeros((2, 3)), None)])
    with pytest.raises(ValueError, match="split 'test' is empty"):
        HypergraphSets(SETS[:1], split='test')
    nodes = tmp_path / 'n.csv'
    nodes.write_text('id,a\n1,2\n')
    with pytest.raises(ValueError, match="n.csv: the header must be 'set'"):
        read_sets_csv(str(nodes))
    nodes.write_text('set,a\n1,x\n')
    with pytest.raises(ValueError, match='n.csv, line 2: a feature is not'):
        read_sets_csv(str(nodes))
