import pytest
import torch

from tests.conftest import make_batch
from torch_geometric_hyper.nn import MatchedIncidenceLoss, SlotAttention
from torch_geometric_hyper.testing import (
    assert_node_permutation_equivariant,
    assert_slot_permutation_equivariant,
)


def small(**kw):
    return SlotAttention(3, 16, max_edges=5, **kw).double()


def test_shapes_and_repr():
    model = small()
    x, batch = make_batch([4, 6])
    pred = model(x.double(), batch, 2)
    assert pred.incidence_logit.shape == (10 * 5, )
    assert pred.existence_logit.shape == (2 * 5, )
    assert repr(model) == ('SlotAttention(3, 16, max_edges=5, '
                           'num_iterations=3)')


def test_node_permutation_equivariance():
    x, batch = make_batch([5, 7, 3])
    assert_node_permutation_equivariant(small(), x.double(), batch, 3,
                                        atol=1e-10)


def test_slot_permutation_equivariance():
    x, batch = make_batch([5, 7])
    assert_slot_permutation_equivariant(small(), x.double(), batch, 2,
                                        atol=1e-10)


def test_graph_alone_equals_graph_in_mixed_batch():
    model = small()
    x, batch = make_batch([4, 9, 2])
    x = x.double()
    slots = torch.randn(15, 16, dtype=torch.double)
    inc_full, _, ex_full = model(x, batch, 3, slots=slots).to_dense()
    for g, (lo, hi) in enumerate([(0, 4), (4, 13), (13, 15)]):
        alone = model(x[lo:hi], None, 1, slots=slots[g * 5:(g + 1) * 5])
        inc, _, ex = alone.to_dense()
        assert torch.allclose(inc[0], inc_full[g, :, :hi - lo], atol=1e-12)
        assert torch.allclose(ex[0], ex_full[g], atol=1e-12)


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
