import pytest
import torch

from torch_geometric_hyper.data import unique_hyperedges
from torch_geometric_hyper.nn import HypergraphPrediction


def test_unique_keeps_first_copy_and_renumbers():
    # hyperedges: 0 {0,1}, 1 {1,0} (copy of 0), 2 {2}, 3 {0,1,2}, 4 {2}
    index = torch.tensor([[0, 1, 1, 0, 2, 2, 0, 1, 2],
                          [0, 0, 1, 1, 2, 3, 3, 3, 4]])
    out, keep = unique_hyperedges(index)
    assert keep.tolist() == [True, False, True, True, False]
    assert out.tolist() == [[0, 1, 2, 0, 1, 2], [0, 0, 1, 2, 2, 2]]


def test_unique_empty_and_batches():
    out, keep = unique_hyperedges(torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (2, 0) and keep.numel() == 0
    # two empty hyperedges in two graphs stay apart with hyperedge_batch
    index = torch.tensor([[0, 0], [0, 2]])
    _, keep = unique_hyperedges(index, 4, torch.tensor([0, 0, 0, 1]))
    assert keep.tolist() == [True, True, False, True]
    _, keep = unique_hyperedges(index, 4)
    assert keep.tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match=r'\[2, nnz\]'):
        unique_hyperedges(torch.zeros(3, 2, dtype=torch.long))


def test_prediction_unique_drops_repeated_slots_per_graph():
    # 2 graphs of 4 nodes, m = 3; slots 0 and 1 of each graph predict the
    # same facet {0, 1, 2}; slot 2 predicts {1, 2, 3}
    n, m = 4, 3
    inc = torch.full((2, m, n), -4.0)
    inc[:, 0, :3] = 4.0
    inc[:, 1, :3] = 3.0
    inc[:, 2, 1:] = 4.0
    slot, node = torch.meshgrid(torch.arange(2 * m), torch.arange(n),
                                indexing='ij')
    node = node + (slot // m) * n
    pred = HypergraphPrediction(inc.flatten(), torch.full((2 * m, ), 4.0),
                                torch.stack([node.flatten(), slot.flatten()]),
                                torch.arange(2).repeat_interleave(n), 2, m)
    index, batch = pred.to_hyperedge_index(edge_size=3)
    assert batch.tolist() == [0, 0, 0, 1, 1, 1]
    index, batch = pred.to_hyperedge_index(edge_size=3, unique=True)
    assert batch.tolist() == [0, 0, 1, 1]
    edges = {}
    for i, e in index.t().tolist():
        edges.setdefault(e, []).append(i)
    assert list(edges.values()) == [[0, 1, 2], [1, 2, 3], [4, 5, 6],
                                    [5, 6, 7]]
    # threshold decoding too
    _, batch = pred.to_hyperedge_index(threshold=0.5, unique=True)
    assert batch.tolist() == [0, 0, 1, 1]


def test_num_hyperedges_and_id_dtypes_checked():
    index = torch.tensor([[0, 1], [0, 1]])
    # before: 2.5 was truncated to 2 and float ids to integers
    with pytest.raises(ValueError, match="'num_hyperedges' .* got 2.5"):
        unique_hyperedges(index, 2.5)
    with pytest.raises(ValueError, match="'num_hyperedges' .* got True"):
        unique_hyperedges(index, True)
    with pytest.raises(ValueError, match="'hyperedge_index' must hold "
                       "integer ids, got dtype torch.float32"):
        unique_hyperedges(torch.tensor([[0., 1.5], [0., 1.]]))
    with pytest.raises(ValueError, match="'hyperedge_batch' must hold "
                       "integer ids"):
        unique_hyperedges(index, 2, torch.tensor([0., 0.]))
    out, keep = unique_hyperedges(index, 2.0)
    assert torch.equal(out, index) and keep.tolist() == [True, True]
