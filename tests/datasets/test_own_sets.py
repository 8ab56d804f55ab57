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


def random_sets(n=40):
    return [(np.random.rand(3, 2), [[0, 1]]) for _ in range(n)]


@pytest.mark.parametrize('members, match', [
    ([0, 1.7], 'got 1.7'),  # was node 1
    ([0, True], 'got True'),  # was node 1
    ([0, '1'], "got '1'"),
    ('01', "hyperedge 0 must be a list of node ids, got '01'"),  # was [0, 1]
    (2, 'hyperedge 0 must be a list of node ids, got 2'),
])
def test_member_ids_must_be_integers(members, match):
    with pytest.raises(ValueError, match=f'sets, set 0: .*{match}'):
        HypergraphSets([(np.zeros((3, 2)), [members])])


def test_integral_float_member_ids_are_the_ints():
    ints = HypergraphSets([(np.zeros((3, 2)), [[0, 2], [1]])])
    floats = HypergraphSets([(np.zeros((3, 2)), [[0.0, np.int64(2)],
                                                 np.array([1.0])])])
    assert torch.equal(floats[0].hyperedge_index, ints[0].hyperedge_index)


def test_npz_ids_must_be_integers(tmp_path):
    path = str(tmp_path / 'f.npz')
    base = dict(x=np.zeros((3, 2)), num_nodes=np.array([3]),
                hyperedge_index=np.array([[0, 2], [0, 0]]),
                num_hyperedges=np.array([1]))
    assert [h for _, h in read_sets_npz(write(path, base))] == [[[0, 2]]]
    # integral floats read as the ints
    floats = {key: np.asarray(value, dtype=np.float64)
              for key, value in base.items()}
    back = read_sets_npz(write(path, floats))
    assert [h for _, h in back] == [[[0, 2]]] and back[0][0].shape == (3, 2)
    for key, value, match in [
            ('hyperedge_index', [[0., 1.7], [0., 0.]], 'value 1.7'),  # was 1
            ('num_nodes', [3.5], 'value 3.5'),
            ('num_hyperedges', [1.5], 'value 1.5'),
            ('hyperedge_index', [[True, False], [False, False]], 'bool'),
            ('num_hyperedges', [-1], 'must be >= 0, got -1')]:
        write(path, {**base, key: np.array(value)})
        with pytest.raises(ValueError, match=f"f.npz: '{key}'.*{match}"):
            read_sets_npz(path)


def write(path, arrays):
    np.savez(path, **arrays)
    return path


def test_csv_node_ids(tmp_path):
    nodes, edges = tmp_path / 'nodes.csv', tmp_path / 'edges.csv'
    nodes.write_text('set,a\nA,0\nA,1\nA,2\n')
    edges.write_text('set,hyperedge,node\nA,f,2.0\nA,f,0\n')
    assert read_sets_csv(str(nodes), str(edges))[0][1] == [[2, 0]]
    for bad in ('1.7', 'True', 'one', 'nan'):
        edges.write_text(f'set,hyperedge,node\nA,f,{bad}\n')
        with pytest.raises(ValueError, match=f"edges.csv, line 2: 'node' "
                           f"must be an integer .*got '{bad}'"):
            read_sets_csv(str(nodes), str(edges))
    edges.write_text('set,hyperedge,node\nA,f\n')  # was an AttributeError
    with pytest.raises(ValueError, match='edges.csv, line 2: the row does '
                       'not have the 3 columns'):
        read_sets_csv(str(nodes), str(edges))


@pytest.mark.parametrize('kwargs, match', [
    (dict(seed=1.7), "'seed' .* got 1.7"),  # was a TypeError from NumPy
    (dict(seed=True), "'seed' .* got True"),  # was seed 1
    (dict(seed=None), "'seed' .* got None; .*overlap"),  # was a new shuffle
    (dict(seed='0'), "'seed' .* got '0'"),
    (dict(fractions=(0.8, 0.1, float('nan'))), "'fractions' .* nan"),
    (dict(fractions=(0.8, True, 0.1)), "'fractions' .* True"),
    (dict(fractions='abc'), "'fractions' .* 'abc'"),
    (dict(fractions=(0.5, 0.5)), "'fractions'"),
])
def test_seed_and_fractions_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HypergraphSets(random_sets(), split='train', **kwargs)


def test_integral_float_seed_is_the_int():
    sets = random_sets()
    a = HypergraphSets(sets, split='val', seed=3)
    b = HypergraphSets(sets, split='val', seed=3.0)
    assert a.indices_in_source == b.indices_in_source


@pytest.mark.parametrize('other, match', [
    (dict(seed=1), r'seed=1 \(that one 0\)'),
    (dict(fractions=(0.6, 0.2, 0.2)),
     r'fractions=\(0.6, 0.2, 0.2\) \(that one \(0.8, 0.1, 0.1\)\)'),
])
def test_overlapping_splits_warn(other, match):
    sets = random_sets(50)
    train = HypergraphSets(sets, split='train', seed=0)
    with pytest.warns(UserWarning, match=f"split 'val' shares .* with the "
                      f"split 'train' .*{match}.*pass seed=0, fractions="
                      r"\(0.8, 0.1, 0.1\) here .*HypergraphSets.splits"):
        val = HypergraphSets(sets, split='val', **other)
    assert set(train.indices_in_source) & set(val.indices_in_source)
    # the same sets read again (a new list, equal content) are recognised
    with pytest.warns(UserWarning, match="split 'val' shares"):
        HypergraphSets([(x.copy(), h) for x, h in sets], split='val',
                       **other)


def test_consistent_splits_do_not_warn():
    import warnings
    sets = random_sets(50)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        for split in ('train', 'val', 'test'):
            HypergraphSets(sets, split=split, seed=5,
                           fractions=(8, 1, 1))  # same shares as 0.8/.1/.1
        HypergraphSets(sets, split='train', seed=5)  # again: no clash
        HypergraphSets(random_sets(50), split='val', seed=7)  # other sets
    # a new seed for one split clashes with the earlier val and test ...
    with pytest.warns(UserWarning, match=r"'train' .* seed=6 \(that one 5\)"
                      r"\. Splits"):  # (8, 1, 1) is 0.8 / 0.1 / 0.1
        HypergraphSets(sets, split='train', seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        # ... while splits() replaces the earlier splits of these sets
        train, val, test = HypergraphSets.splits(sets, seed=9)
    idx = [i for p in (train, val, test) for i in p.indices_in_source]
    assert sorted(idx) == list(range(50))
    assert [len(p) for p in (train, val, test)] == [40, 5, 5]
    again = HypergraphSets(sets, split='val', seed=9)
    assert again.indices_in_source == val.indices_in_source
