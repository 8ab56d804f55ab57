"""The same computation on the CPU and on a GPU: every public model, its
loss and one step of backprop with skips give the same values and
gradients on both (float64), a CPU generator drives a model on any
device, and a training batch on the GPU waits for the host once per
update. The GPU cases skip where no CUDA device is present."""
import pytest
import torch
from torch_geometric.data import Batch

from tests.conftest import make_batch
from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.nn import (AdjacencyBCELoss, GraphRefiner,
                                     HypergraphRefiner, MatchedIncidenceLoss,
                                     SetTransformer, SlotAttention, SlotPrior)
from torch_geometric_hyper.nn.kernels import mlp
from torch_geometric_hyper.nn.kernels.chunks import ACCELERATOR_CHUNK_ELEMENTS
from torch_geometric_hyper.testing import (HostSyncCounter,
                                           assert_node_permutation_equivariant)
from torch_geometric_hyper.train import BackpropWithSkips

#: the device compared with the CPU
GPU = 'cuda'
cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason='no CUDA device')


def test_slot_noise_draws_on_the_generators_device():
    prior = SlotPrior(3, num_slots=2)
    a = prior.noise(2, torch.Generator().manual_seed(5), dtype=torch.double)
    b = torch.randn(4, 3, generator=torch.Generator().manual_seed(5),
                    dtype=torch.double)
    assert torch.equal(a.view(4, 3), b)
    # another device than the generator's: the same draws, moved
    meta = prior.noise(2, torch.Generator().manual_seed(5),
                       dtype=torch.double, device='meta')
    assert meta.device.type == 'meta' and meta.shape == (2, 2, 3)
    assert meta.dtype == torch.double
    assert prior.noise(1).shape == (1, 2, 3)


def _hull_batch(tmp_path, sizes=(6, 12), num=5):
    ds = ConvexHull(str(tmp_path), num_points=sizes, num_samples=num,
                    log=False)
    return Batch.from_data_list(list(ds)), ds.max_hyperedges


def _grads(model):
    return {k: p.grad.detach().cpu() for k, p in model.named_parameters()
            if p.grad is not None}


def _on_both(make, run):
    """``run(model, device)`` with one model copied to the CPU and to the
    GPU; returns both results, moved to the CPU."""
    torch.manual_seed(0)
    model = make().double()
    out = []
    for device in ('cpu', GPU):
        copy = make().double().to(device)
        copy.load_state_dict(model.state_dict())
        res = run(copy, torch.device(device))
        out.append(res)
    return out


def _assert_close(a, b, what, atol=1e-9):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            _assert_close(a[k], b[k], f'{what}[{k}]', atol)
        return
    if isinstance(a, (tuple, list)):
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f'{what}[{i}]', atol)
        return
    if torch.is_tensor(a) and not a.is_floating_point():
        assert torch.equal(a.cpu(), b.cpu()), what
        return
    a = torch.as_tensor(a).detach().cpu()
    b = torch.as_tensor(b).detach().cpu()
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= atol, f'{what}: CPU and GPU differ by {err:.3g}'


def _hypergraph_run(data, **call):
    def run(model, device):
        batch = data.to(device)
        gen = torch.Generator().manual_seed(3)  # a CPU generator
        pred = model(batch.x.double(), batch.batch, batch.num_graphs,
                     generator=gen, **call)
        loss = MatchedIncidenceLoss()(pred, batch)
        loss.backward()
        return (pred.incidence_index, pred.incidence_logit,
                pred.existence_logit, loss.detach(), _grads(model))
    return run


@cuda
@pytest.mark.parametrize('candidates', [None, 4], ids=['all_pairs', 'k4'])
def test_refiner_is_the_same_on_cpu_and_gpu(tmp_path, candidates):
    data, m = _hull_batch(tmp_path)
    kw = {} if candidates is None else {'num_candidates': candidates}
    cpu, gpu = _on_both(lambda: HypergraphRefiner(3, 16, m, 4, **kw),
                        _hypergraph_run(data))
    _assert_close(cpu, gpu, 'refiner')


@cuda
@pytest.mark.parametrize('make', [
    lambda m: SetTransformer(3, 16, m),
    lambda m: SlotAttention(3, 16, m, num_iterations=3),
], ids=['set_transformer', 'slot_attention'])
def test_baselines_are_the_same_on_cpu_and_gpu(tmp_path, make):
    data, m = _hull_batch(tmp_path)
    cpu, gpu = _on_both(lambda: make(m), _hypergraph_run(data))
    _assert_close(cpu, gpu, 'baseline')


@cuda
@pytest.mark.parametrize('knn', [None, 4], ids=['complete', 'knn4'])
def test_graph_refiner_is_the_same_on_cpu_and_gpu(knn):
    x, batch = make_batch([7, 12, 5], in_channels=2)
    edge_index = torch.tensor([[0, 1, 2, 7, 8, 19], [1, 2, 0, 8, 9, 20]])

    def run(model, device):
        pred = model(x.double().to(device), batch.to(device), 3)
        loss = AdjacencyBCELoss()(pred, edge_index.to(device))
        loss.backward()
        return pred.pair_index, pred.logit, loss.detach(), _grads(model)
    cpu, gpu = _on_both(lambda: GraphRefiner(2, 16, num_iterations=3,
                                             knn=knn), run)
    _assert_close(cpu, gpu, 'graph refiner')


@cuda
@pytest.mark.parametrize('candidates', [None, 4], ids=['all_pairs', 'k4'])
def test_a_training_batch_is_the_same_on_cpu_and_gpu(tmp_path, candidates):
    # backprop with skips, three optimizer updates, the same skip schedule
    # and initial slots: the same parameters afterwards
    data, m = _hull_batch(tmp_path)
    kw = {} if candidates is None else {'num_candidates': candidates}

    def run(model, device):
        batch = data.to(device)
        batch.x = batch.x.double()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        prior = model.slot_prior
        noise = prior.noise(batch.num_graphs, gen, dtype=torch.double,
                            device='cpu')
        slots = (prior.mu.detach().cpu() + torch.exp(
            prior.log_sigma.detach().cpu()) * noise.view(-1, 16)).to(device)
        trainer = BackpropWithSkips(6, 2, 3, seed=0)
        losses = trainer(model, opt, MatchedIncidenceLoss(), batch,
                         init_kwargs={'slots': slots})
        return losses, {k: v.detach().cpu()
                        for k, v in model.state_dict().items()}
    cpu, gpu = _on_both(lambda: HypergraphRefiner(3, 16, m, 6, **kw), run)
    _assert_close(cpu, gpu, 'after three updates', atol=1e-7)


@cuda
def test_equivariance_helpers_on_gpu():
    x, batch = make_batch([5, 8, 3])
    model = HypergraphRefiner(3, 16, 6, 3, num_candidates=4).double().to(GPU)
    assert_node_permutation_equivariant(model, x.double().to(GPU),
                                        batch.to(GPU), 3, atol=1e-10)


@cuda
@pytest.mark.parametrize('T, B, S', [(16, 4, 2), (6, 2, 3)])
def test_a_gpu_batch_syncs_once_per_update(tmp_path, T, B, S):
    # on the GPU itself: the counter sees the transfer of the B
    # assignments' costs once per update and the target counts once
    data, m = _hull_batch(tmp_path)
    data = data.to(GPU)
    model = HypergraphRefiner(3, 8, m, T).to(GPU)
    trainer = BackpropWithSkips(T, B, S, seed=0)
    optimizer = torch.optim.Adam(model.parameters())
    with HostSyncCounter(record_stack=True) as syncs:
        trainer(model, optimizer, MatchedIncidenceLoss(), data)
    assert syncs.by_kind == {'cpu': 1 + S}, syncs.where


@cuda
def test_gpu_kernels_take_accelerator_chunks(monkeypatch):
    seen = []
    real = mlp.chunk_ranges
    monkeypatch.setattr(mlp, 'chunk_ranges',
                        lambda n, w, c: seen.append(c) or real(n, w, c))
    a, c = torch.randn(5, 4, device=GPU), torch.randn(3, 4, device=GPU)
    index = torch.tensor([[0, 1, 4, 2], [0, 2, 1, 1]], device=GPU)
    mlp.pair_mlp(a, c, torch.randn(4, device=GPU),
                 torch.randn(4, device=GPU), torch.randn(4, device=GPU),
                 torch.zeros(1, device=GPU), index)
    assert seen == [ACCELERATOR_CHUNK_ELEMENTS]
