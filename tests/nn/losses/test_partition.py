import pytest
import torch

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.nn import (HypergraphPrediction,
                                      HypergraphRefiner,
                                      MatchedIncidenceLoss, PartitionLoss,
                                      SoftF1Loss, soft_pair_f1)

torch.set_num_threads(1)


def one_graph(inc, exist_logit=None):
    # inc: [m, n] probabilities of one graph, all candidate pairs
    m, n = inc.shape
    slot, node = torch.meshgrid(torch.arange(m), torch.arange(n),
                                indexing='ij')
    logit = torch.logit(inc.reshape(-1))
    if exist_logit is None:
        exist_logit = torch.zeros(m)
    return HypergraphPrediction(logit, exist_logit,
                                torch.stack([node.reshape(-1),
                                             slot.reshape(-1)]),
                                torch.zeros(n, dtype=torch.long), 1, m)


def test_soft_f1_hand_value():
    # 3 nodes, target vertices {0,1},{2}; positive pairs: (0,1)
    inc = torch.tensor([[0.9, 0.8, 0.5], [0.1, 0.2, 0.5]])
    pred = one_graph(inc)
    A01 = 0.9 * 0.8 + 0.1 * 0.2
    A02 = 0.9 * 0.5 + 0.1 * 0.5
    A12 = 0.8 * 0.5 + 0.2 * 0.5
    tp, fp, fn = A01, A02 + A12, 1 - A01
    target = torch.tensor([[0, 1, 2], [0, 0, 1]])
    f1 = soft_pair_f1(pred, target, 2)
    assert float(f1) == pytest.approx(tp / (tp + 0.5 * (fp + fn)), rel=1e-5)
    # gated: slot gates g = sigmoid(0)=0.5 scale every product by 1/4
    f1g = soft_pair_f1(pred, target, 2, gate=True)
    q = 0.25
    assert float(f1g) == pytest.approx(
        q * tp / (q * tp + 0.5 * (q * fp + 1 - q * tp)), rel=1e-5)
    # noisy-or
    no = soft_pair_f1(pred, target, 2, pair_rule='noisy_or')
    A = lambda a, b: 1 - (1 - a[0] * b[0]) * (1 - a[1] * b[1])  # noqa
    c = inc.t().tolist()
    tp, fp = A(c[0], c[1]), A(c[0], c[2]) + A(c[1], c[2])
    assert float(no) == pytest.approx(tp / (tp + 0.5 * (fp + 1 - tp)),
                                      rel=1e-4)


def test_perfect_partition_and_loss_composition():
    inc = torch.tensor([[1 - 1e-6, 1 - 1e-6, 1e-6], [1e-6, 1e-6, 1 - 1e-6]])
    target = HypergraphData(x=torch.zeros(3, 1),
                            hyperedge_index=torch.tensor([[0, 1, 2],
                                                          [0, 0, 1]]))
    pred = one_graph(inc, torch.tensor([10.0, 10.0]))
    assert float(soft_pair_f1(pred, target)) == pytest.approx(1.0, abs=1e-4)
    assert float(SoftF1Loss()(pred, target)) == pytest.approx(0.0,
                                                              abs=1e-4)
    inc2 = torch.tensor([[0.6, 0.3, 0.2], [0.4, 0.7, 0.9]])
    pred2 = one_graph(inc2)
    loss = PartitionLoss(f1_weight=0.5)(pred2, target)
    expect = MatchedIncidenceLoss()(pred2, target) + 0.5 * (
        1 - soft_pair_f1(pred2, target))
    assert float(loss) == pytest.approx(float(expect), rel=1e-6)
    assert float(PartitionLoss(0.0)(pred2, target)) == pytest.approx(
        float(MatchedIncidenceLoss()(pred2, target)))


def test_batched_equals_per_graph_and_gradients():
    torch.manual_seed(0)
    graphs = [HypergraphData(x=torch.randn(n, 4),
                             hyperedge_index=torch.stack([
                                 torch.arange(n), lab]))
              for n, lab in ((3, torch.tensor([0, 0, 1])),
                             (5, torch.tensor([1, 0, 1, 2, 0])),
                             (2, torch.tensor([0, 0])))]
    from torch_geometric.data import Batch
    batch = Batch.from_data_list(graphs)
    model = HypergraphRefiner(4, 16, max_edges=4, num_iterations=2,
                              checkpoint=False)
    slots = torch.randn(3 * 4, 16)
    pred = model(batch.x, batch.batch, 3, slots=slots)
    f1 = soft_pair_f1(pred, batch)
    for g, data in enumerate(graphs):
        single = model(data.x, None, 1, slots=slots[4 * g:4 * g + 4])
        assert float(soft_pair_f1(single, data).detach()) == pytest.approx(
            float(f1[g].detach()), rel=1e-4, abs=1e-6)
    loss = PartitionLoss()(pred, batch)
    loss.backward()
    # (the slot prior gets none: the slots were given)
    grads = [p.grad for n, p in model.named_parameters()
             if not n.startswith('slot_prior.')]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # the soft-F1 term alone reaches the incidence parameters
    model.zero_grad()
    pred = model(batch.x, batch.batch, 3, slots=slots)
    SoftF1Loss()(pred, batch).backward()
    assert float(model.steps[0].lin_inc_out.weight.grad.abs().sum()) > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='pair_rule'):
        SoftF1Loss(pair_rule='max')
    pred = one_graph(torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match='num_hyperedges'):
        soft_pair_f1(pred, torch.tensor([[0, 1, 2], [0, 0, 1]]), [1, 1])
