import pytest
import torch
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.data import HypergraphData


def test_num_hyperedges_explicit_keeps_trailing_empty_edges():
    data = HypergraphData(x=torch.randn(3, 2),
                          hyperedge_index=torch.tensor([[0, 1], [0, 0]]),
                          num_hyperedges=3)
    assert data.num_hyperedges == 3
    inc = data.to_dense_incidence()
    assert inc.shape == (3, 3)
    assert inc[1:].sum() == 0


def test_num_hyperedges_inferred():
    data = HypergraphData(x=torch.randn(4, 2),
                          hyperedge_index=torch.tensor([[0, 3], [0, 1]]))
    assert data.num_hyperedges == 2


def two_graphs():
    """4 nodes with an empty middle hyperedge, and 2 nodes."""
    d1 = HypergraphData(x=torch.randn(4, 2),
                        hyperedge_index=torch.tensor([[0, 1, 3], [0, 0, 1]]),
                        num_hyperedges=3)  # hyperedge 2 is empty
    d2 = HypergraphData(x=torch.randn(2, 2),
                        hyperedge_index=torch.tensor([[0, 1], [0, 0]]),
                        num_hyperedges=1)
    return d1, d2


def test_batching_offsets_nodes_and_hyperedges():
    d1, d2 = two_graphs()
    batch = next(iter(DataLoader([d1, d2], batch_size=2)))
    assert batch.hyperedge_index.tolist() == [[0, 1, 3, 4, 5],
                                              [0, 0, 1, 3, 3]]
    assert batch.num_hyperedges.tolist() == [3, 1]
    assert batch.batch.tolist() == [0, 0, 0, 0, 1, 1]
    back = batch.get_example(1)
    assert back.hyperedge_index.tolist() == [[0, 1], [0, 0]]
    assert back.num_hyperedges == 1


def test_dense_roundtrip():
    inc = torch.tensor([[1., 0, 1], [0, 0, 0], [1, 1, 1]])
    data = HypergraphData.from_dense_incidence(inc, x=torch.randn(3, 1))
    assert data.num_hyperedges == 3
    assert torch.equal(data.to_dense_incidence(), inc)


@pytest.mark.parametrize('index,match', [
    (torch.tensor([0, 1, 2]), r'shape \[2, nnz\]'),
    (torch.tensor([[0., 1.], [0., 0.]]), 'integers'),
    (torch.tensor([[0, 5], [0, 0]]), 'node ids'),
    (torch.tensor([[0, 1], [0, -1]]), 'hyperedge ids'),
    (torch.tensor([[0, 0], [1, 1]]), 'same'),
])
def test_validation_errors(index, match):
    with pytest.raises(ValueError, match=match):
        HypergraphData(x=torch.randn(3, 2), hyperedge_index=index)


def test_hyperedge_id_beyond_num_hyperedges():
    with pytest.raises(ValueError, match='num_hyperedges=1'):
        HypergraphData(x=torch.randn(3, 2),
                       hyperedge_index=torch.tensor([[0, 1], [0, 1]]),
                       num_hyperedges=1)


def test_from_dense_rejects_mismatched_x():
    with pytest.raises(ValueError, match='rows'):
        HypergraphData.from_dense_incidence(torch.ones(2, 3),
                                            x=torch.randn(4, 1))


def test_dense_batch_incidence_padded_with_masks():
    d1, d2 = two_graphs()
    d3 = HypergraphData(x=torch.randn(3, 2), num_hyperedges=0)
    batch = next(iter(DataLoader([d1, d2, d3], batch_size=3)))
    with pytest.raises(ValueError, match=r'to_dense_batch_incidence\(\)'):
        batch.to_dense_incidence()
    inc, edge_mask, node_mask = batch.to_dense_batch_incidence()
    assert inc.shape == (3, 3, 4)
    assert edge_mask.tolist() == [[True] * 3, [True, False, False],
                                  [False] * 3]
    assert node_mask.tolist() == [[True] * 4, [True, True, False, False],
                                  [True, True, True, False]]
    assert torch.equal(inc[0], d1.to_dense_incidence())
    assert torch.equal(inc[1, :1, :2], d2.to_dense_incidence())
    assert inc[1].sum() == 2 and inc[2].sum() == 0
    for i in range(3):  # the per-graph method named by the error
        assert torch.equal(batch.get_example(i).to_dense_incidence(),
                           inc[i][edge_mask[i]][:, node_mask[i]])
    one, em, nm = d1.to_dense_batch_incidence()
    assert torch.equal(one[0], d1.to_dense_incidence())
    assert em.all() and nm.all()


def test_pyg_round_trip_keeps_empty_and_trailing_hyperedges():
    from torch_geometric.data.hypergraph_data import HyperGraphData
    from torch_geometric_hyper.data import PyGHypergraphData
    # hyperedge 1 empty in the middle, 3 and 4 trailing; node 5 isolated
    data = HypergraphData(x=torch.randn(6, 2),
                          hyperedge_index=torch.tensor([[0, 1, 2, 3, 1],
                                                        [0, 0, 2, 2, 2]]),
                          num_hyperedges=5, y=torch.tensor([1.0]),
                          hyperedge_attr=torch.randn(5, 3))
    pyg = data.to_pyg()
    assert isinstance(pyg, HyperGraphData)
    assert isinstance(pyg, PyGHypergraphData)
    assert torch.equal(pyg.edge_index, data.hyperedge_index)
    assert pyg.num_edges == 5 and pyg.num_nodes == 6
    assert torch.equal(pyg.edge_attr, data.hyperedge_attr)
    back = HypergraphData.from_pyg(pyg)
    assert back.num_hyperedges == 5 and back.num_nodes == 6
    assert torch.equal(back.to_dense_incidence(), data.to_dense_incidence())
    assert torch.equal(back.x, data.x) and torch.equal(back.y, data.y)
    assert torch.equal(back.hyperedge_attr, data.hyperedge_attr)
    # from PyG's own class, without a stored count
    plain = HyperGraphData(x=torch.randn(4, 2),
                           edge_index=torch.tensor([[0, 1, 3], [0, 0, 1]]))
    ours = HypergraphData.from_pyg(plain)
    assert ours.num_hyperedges == 2 and ours.num_nodes == 4
    assert HypergraphData.from_pyg(plain, num_hyperedges=4).num_hyperedges \
        == 4
    # no member at all: PyG's class cannot count that, ours can
    empty = HypergraphData(x=torch.randn(3, 2), num_hyperedges=2).to_pyg()
    assert empty.num_edges == 2 and empty.num_nodes == 3
    assert HypergraphData.from_pyg(empty).num_hyperedges == 2
    with pytest.raises(TypeError, match='from_pyg'):
        HypergraphData.from_pyg(torch.zeros(2, 3))


def test_pyg_batches_and_hypergraph_conv():
    from torch_geometric.nn import HypergraphConv
    graphs = [
        HypergraphData(x=torch.randn(4, 3),
                       hyperedge_index=torch.tensor([[0, 1, 3], [0, 0, 1]]),
                       num_hyperedges=3),  # trailing empty hyperedge 2
        HypergraphData(x=torch.randn(3, 3), num_hyperedges=1),  # empty
        HypergraphData(x=torch.randn(5, 3),
                       hyperedge_index=torch.tensor([[0, 2, 4, 1],
                                                     [0, 0, 0, 1]])),
    ]
    ours = next(iter(DataLoader(graphs, batch_size=3)))
    pyg = next(iter(DataLoader([g.to_pyg() for g in graphs], batch_size=3)))
    # PyG's batching now offsets hyperedge ids exactly as ours does
    assert torch.equal(pyg.edge_index, ours.hyperedge_index)
    assert pyg.num_edges == int(ours.num_hyperedges.sum()) == 6
    torch.manual_seed(0)
    conv = HypergraphConv(3, 8)
    out_pyg = conv(pyg.x, pyg.edge_index, num_edges=pyg.num_edges)
    out_ours = conv(ours.x, ours.hyperedge_index,
                    num_edges=int(ours.num_hyperedges.sum()))
    assert torch.allclose(out_pyg, out_ours)
    # graph by graph gives the same node outputs as the batch
    ptr = ours.ptr.tolist()
    for g, data in enumerate(graphs):
        single = data.to_pyg()
        out = conv(single.x, single.edge_index, num_edges=single.num_edges)
        assert torch.allclose(out, out_pyg[ptr[g]:ptr[g + 1]], atol=1e-6)
    with pytest.raises(ValueError, match='to_data_list'):
        ours.to_pyg()


@pytest.mark.parametrize('value, match', [
    (2.7, 'got 2.7; pass a whole number'),  # was 2
    (True, 'got True'),  # was 1
    ('2', "got '2'"),
    (torch.tensor(2.7), 'got tensor'),  # was 2
    (-1, 'got -1; pass a value >= 0'),  # was kept without an incidence
])
@pytest.mark.parametrize('index', [None, torch.tensor([[0, 1], [0, 1]])])
def test_num_hyperedges_must_be_a_count(value, match, index):
    with pytest.raises(ValueError, match=f"'num_hyperedges' must be a "
                       f"non-negative integer, {match}"):
        HypergraphData(x=torch.randn(3, 2), hyperedge_index=index,
                       num_hyperedges=value)


def test_num_hyperedges_setter_and_from_pyg_check_the_count():
    data = HypergraphData(x=torch.randn(3, 2), num_hyperedges=2)
    with pytest.raises(ValueError, match="'num_hyperedges' .* got 1.5"):
        data.num_hyperedges = 1.5
    assert data.num_hyperedges == 2
    with pytest.raises(ValueError, match="'num_hyperedges' .* got 2.5"):
        HypergraphData.from_pyg(data.to_pyg(), num_hyperedges=2.5)


@pytest.mark.parametrize('value', [2.5, False, '3', -1])
def test_num_nodes_must_be_a_count(value):
    with pytest.raises(ValueError, match="'num_nodes' must be a "
                       "non-negative integer"):
        HypergraphData(num_nodes=value, num_hyperedges=0)


def test_integral_float_counts_are_the_ints():
    index = torch.tensor([[0, 1], [0, 1]])
    a = HypergraphData(x=torch.randn(3, 2), hyperedge_index=index,
                       num_hyperedges=3)
    b = HypergraphData(x=a.x, hyperedge_index=index, num_hyperedges=3.0)
    c = HypergraphData(x=a.x, hyperedge_index=index,
                       num_hyperedges=torch.tensor(3))
    for other in (b, c):
        assert type(other.num_hyperedges) is int
        assert torch.equal(other.to_dense_incidence(),
                           a.to_dense_incidence())
    assert HypergraphData(num_nodes=4.0, num_hyperedges=0).num_nodes == 4
    batch = next(iter(DataLoader([a, b], batch_size=2)))
    assert batch.num_hyperedges.tolist() == [3, 3]
