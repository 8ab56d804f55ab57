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


@pytest.mark.parametrize('edges, match', [
    ([[0], [25]], r"names nodes outside the batch's 7 \(ids 0 to 25\)"),
    ([[-1], [2]], "names nodes outside"),
    ([[0], [5]], 'joins nodes of different graphs'),
])
def test_adjacency_loss_refuses_target_edges_outside_their_graph(edges,
                                                                 match):
    """An edge to a node past N was folded onto another pair (0, 25 with
    N=20 became pair 1, 5), and negative or cross-graph edges were dropped
    without a word."""
    from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner
    torch.manual_seed(0)
    pred = GraphRefiner(2, 8, 2)(torch.randn(7, 2),
                                 torch.tensor([0] * 4 + [1] * 3), 2)
    with pytest.raises(ValueError, match=match):
        AdjacencyBCELoss()(pred, torch.tensor(edges))
    assert torch.isfinite(AdjacencyBCELoss()(pred, torch.tensor([[0, 4],
                                                                 [3, 6]])))
