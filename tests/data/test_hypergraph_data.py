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


def test_batching_offsets_nodes_and_hyperedges():
    d1 = HypergraphData(x=torch.randn(4, 2),
                        hyperedge_index=torch.tensor([[0, 1, 3], [0, 0, 1]]),
                        num_hyperedges=3)  # hyperedge 2 is empty
    d2 = HypergraphData(x=torch.randn(2, 2),
                        hyperedge_index=torch.tensor([[0, 1], [0, 0]]),
                        num_hyperedges=1)
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
    d1 = HypergraphData(x=torch.randn(4, 2),
                        hyperedge_index=torch.tensor([[0, 1, 3], [0, 0, 1]]),
                        num_hyperedges=3)  # hyperedge 2 is empty
    d2 = HypergraphData(x=torch.randn(2, 2),
                        hyperedge_index=torch.tensor([[0, 1], [0, 0]]),
                        num_hyperedges=1)
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
