import pytest
import torch

from tests.conftest import make_batch
from torch_geometric_hyper.nn import MatchedIncidenceLoss, SlotAttention
from torch_geometric_hyper.train import OneShot


class Batch:
    def __init__(self):
        self.x, self.batch = make_batch([4, 5])
        self.num_graphs = 2
        self.hyperedge_index = torch.tensor([[0, 1, 2, 4, 5, 6],
                                             [0, 0, 0, 1, 1, 1]])
        self.num_hyperedges = torch.tensor([1, 1])


def test_one_shot_step_updates_and_reduces_loss():
    model = SlotAttention(3, 16, max_edges=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = OneShot(max_grad_norm=1.0, forward_kwargs=dict(
        slots=torch.randn(6, 16)))
    data = Batch()
    before = model.lin_in.weight.clone()
    losses = [trainer(model, opt, MatchedIncidenceLoss(), data)['loss']
              for _ in range(15)]
    assert not torch.equal(before, model.lin_in.weight)
    assert losses[-1] < losses[0]
    assert repr(trainer) == 'OneShot(max_grad_norm=1.0)'


def test_one_shot_rejects_bad_clip():
    with pytest.raises(ValueError, match='max_grad_norm'):
        OneShot(max_grad_norm=0)
