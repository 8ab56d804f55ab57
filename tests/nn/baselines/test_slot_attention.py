import pytest
import torch

from tests.conftest import make_batch
from tests.nn.helpers import (
    check_graph_alone_equals_graph_in_mixed_batch,
    check_node_permutation_equivariance,
    check_shapes_and_repr,
    check_slot_permutation_equivariance,
)
from torch_geometric_hyper.nn import MatchedIncidenceLoss, SlotAttention


def small(**kw):
    return SlotAttention(3, 16, max_edges=5, **kw).double()


def test_shapes_and_repr():
    check_shapes_and_repr(small(), 'SlotAttention(3, 16, max_edges=5, '
                          'num_iterations=3)')


def test_node_permutation_equivariance():
    check_node_permutation_equivariance(small())


def test_slot_permutation_equivariance():
    check_slot_permutation_equivariance(small())


def test_graph_alone_equals_graph_in_mixed_batch():
    check_graph_alone_equals_graph_in_mixed_batch(small())


def test_iterations_matter_and_gradients_flow():
    model = SlotAttention(3, 16, max_edges=4)
    x, batch = make_batch([4, 5])
    slots = torch.randn(8, 16)
    one = model(x, batch, 2, slots=slots, num_iterations=1)
    three = model(x, batch, 2, slots=slots)
    assert not torch.allclose(one.existence_logit, three.existence_logit)
    target = torch.tensor([[0, 1, 2, 4, 5, 6], [0, 0, 0, 1, 1, 1]])
    drawn = model(x, batch, 2)  # slots drawn: mu and log sigma get gradients
    MatchedIncidenceLoss()(drawn, target, torch.tensor([1, 1])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_reset_parameters_and_errors():
    model = small()
    before = model.gru.weight_ih.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.gru.weight_ih)
    x, _ = make_batch([4])
    with pytest.raises(ValueError, match='in_channels'):
        model(torch.randn(4, 2, dtype=torch.double))
    with pytest.raises(ValueError, match='num_iterations'):
        model(x.double(), num_iterations=0)
    with pytest.raises(ValueError, match='floating-point'):
        model(torch.ones(4, 3, dtype=torch.long))
