import pytest
import torch
from torch_geometric.data import Data

from tests.nn.helpers import toy_delaunay_batch
from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner
from torch_geometric_hyper.nn.pairs import pair_labels


def test_loss_and_pair_labels():
    pairs = torch.tensor([[0, 0, 1], [1, 2, 2]])
    assert pair_labels(pairs, torch.tensor([[2], [1]]),
                       3).tolist() == [0, 0, 1]
    data = toy_delaunay_batch()
    model = GraphRefiner(2, 8, num_iterations=2)
    pred = model(data.x, data.batch)
    label = pair_labels(pred.pair_index, data.edge_index, data.num_nodes)
    assert int(label.sum()) == data.edge_index.size(1) // 2
    loss = AdjacencyBCELoss()(pred, data)
    ref = torch.nn.functional.binary_cross_entropy(pred.adjacency, label)
    assert torch.allclose(loss, ref, atol=1e-6)
    with pytest.raises(ValueError, match="'reduction'"):
        AdjacencyBCELoss(reduction='avg')
    with pytest.raises(ValueError, match='edge_index'):
        AdjacencyBCELoss()(pred, Data(x=data.x))
