import pytest
import torch

from tests.conftest import make_batch
from tests.nn.helpers import (
    check_graph_alone_equals_graph_in_mixed_batch,
    check_node_permutation_equivariance,
    check_shapes_and_repr,
    check_slot_permutation_equivariance,
)
from torch_geometric_hyper.nn import (
    MAB,
    PMA,
    SAB,
    MatchedIncidenceLoss,
    SetTransformer,
)


def small(**kw):
    return SetTransformer(3, 16, max_edges=5, num_heads=2, **kw).double()


def test_shapes_and_repr():
    check_shapes_and_repr(small(), 'SetTransformer(3, 16, max_edges=5, '
                          'encoder=1, decoder=1)')


def test_node_permutation_equivariance():
    check_node_permutation_equivariance(small())


def test_slot_permutation_equivariance():
    check_slot_permutation_equivariance(small(num_decoder_layers=2))


def test_graph_alone_equals_graph_in_mixed_batch():
    check_graph_alone_equals_graph_in_mixed_batch(
        small(num_encoder_layers=2))


def test_trains_with_matched_loss_and_every_parameter_gets_a_gradient():
    model = SetTransformer(3, 16, max_edges=4, num_heads=2)
    x, batch = make_batch([4, 5])
    pred = model(x, batch, 2, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[0, 1, 2, 4, 5, 6], [0, 0, 0, 1, 1, 1]])
    loss = MatchedIncidenceLoss()(pred, target, torch.tensor([1, 1]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_generator_reproducible_and_reset_parameters():
    model = small()
    x, _ = make_batch([5])
    x = x.double()
    a = model(x, generator=torch.Generator().manual_seed(1))
    b = model(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.incidence_logit, b.incidence_logit)
    before = model.lin_in.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.lin_in.weight)


def test_mab_key_mask_equals_unpadded():
    torch.manual_seed(0)
    mab = MAB(8, num_heads=2).double()
    q = torch.randn(1, 3, 8, dtype=torch.double)
    y = torch.randn(1, 4, 8, dtype=torch.double)
    padded = torch.cat([y, torch.randn(1, 2, 8, dtype=torch.double)], 1)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    assert torch.allclose(mab(q, y), mab(q, padded, mask), atol=1e-12)
    assert SAB(8, 2).double()(y).shape == (1, 4, 8)
    assert PMA(8, 2).double()(q, y).shape == (1, 3, 8)


def test_errors():
    model = small()
    x, batch = make_batch([4])
    with pytest.raises(ValueError, match='one-shot'):
        model(x.double(), num_iterations=3)
    with pytest.raises(ValueError, match='empty'):
        model(x.double()[:0])
    with pytest.raises(ValueError, match="'slots' must have shape"):
        model(x.double(), slots=torch.zeros(3, 16, dtype=torch.double))
    with pytest.raises(ValueError, match='no nodes'):
        model(x.double(), batch, num_graphs=2)
    with pytest.raises(ValueError, match='divisible'):
        MAB(10, num_heads=4)
    with pytest.raises(ValueError, match='max_edges'):
        SetTransformer(3, 16, max_edges=0)
