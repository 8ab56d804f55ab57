"""The training process: devices."""
import pytest
import torch

from tests.conftest import DEVICES
from torch_geometric_hyper.train import resolve_device


@pytest.mark.parametrize('device', DEVICES)
def test_resolve_device(device):
    assert resolve_device(device).type == device
    assert resolve_device('auto').type == (
        'cuda' if torch.cuda.is_available() else 'cpu')


def test_auto_device_needs_a_gpu_per_process(monkeypatch):
    # two processes on a node with one GPU: 'auto' keeps every rank on the
    # CPU (one GPU cannot serve two ranks), a plain 'cuda' names the fix
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    assert resolve_device('auto', 0, local_world_size=1) == \
        torch.device('cuda', 0)
    assert resolve_device('auto', 1, local_world_size=2).type == 'cpu'
    assert resolve_device('cuda', 0, local_world_size=2) == \
        torch.device('cuda', 0)
    with pytest.raises(ValueError, match=r'local rank 1 needs GPU 1, but '
                       r'this node has 1; .*--nproc_per_node 1'):
        resolve_device('cuda', 1, local_world_size=2)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert resolve_device('auto').type == 'cpu'


def test_steps_are_compiled_by_default_on_cuda_only(tmp_path, monkeypatch):
    from torch_geometric_hyper.train import Run, TrainConfig
    run = Run(TrainConfig(device='cpu', out=str(tmp_path)))
    assert run.config.compile is None and not run.compiles
    assert Run(TrainConfig(device='cpu', compile=True,
                           out=str(tmp_path))).compiles
    run.device = torch.device('cuda', 0)  # what resolve_device gives there
    assert run.compiles
    run.config = run.config.replace(compile=False)
    assert not run.compiles


def test_compiled_training_equals_eager(tmp_path):
    """compile_model (what fit does on CUDA by default) compiles a
    refiner's step and its B-step run in place and trains as eager does:
    the same losses and weights after two updates, the same state_dict
    keys, the same prediction afterwards."""
    import torch._dynamo as dynamo
    from torch_geometric.data import Batch

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    from torch_geometric_hyper.train import BackpropWithSkips, compile_model
    data = Batch.from_data_list(list(ConvexHull(
        str(tmp_path), num_points=8, num_samples=4, log=False)))
    out = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), 4,
                                  checkpoint=False)
        keys = list(model.state_dict())
        if compiled:
            dynamo.reset()
            assert compile_model(model) is model
            assert list(model.state_dict()) == keys
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = BackpropWithSkips(4, 2, 2, seed=0)
        losses = [trainer(model, optimizer, MatchedIncidenceLoss(),
                          data)['loss'] for _ in range(2)]
        with torch.no_grad():  # evaluation runs the T steps one by one
            logit = model(data.x, data.batch, data.num_graphs,
                          slots=torch.zeros(data.num_graphs * model.max_edges,
                                            8)).incidence_logit
        out[compiled] = losses, [p.detach().clone()
                                 for p in model.parameters()] + [logit]
    dynamo.reset()
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-4)
    for a, b in zip(out[True][1], out[False][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_compile_loss_compiles_losses_that_know_how_once():
    from torch_geometric_hyper.nn import AdjacencyBCELoss, MatchedIncidenceLoss
    from torch_geometric_hyper.train import compile_loss
    loss = MatchedIncidenceLoss()
    compile_loss(loss)
    first = loss._compiled
    assert first is not None
    compile_loss(loss)
    assert loss._compiled is first
    plain = AdjacencyBCELoss()
    compile_loss(plain)  # no compile of its own: stays eager
    assert plain._compiled_call_impl is None
    compile_loss(lambda pred, data: 0.0)  # not a module


def test_a_cpu_run_flushes_subnormal_floats(tmp_path):
    from torch_geometric_hyper.train import Run, TrainConfig
    try:
        torch.set_flush_denormal(False)  # (an earlier Run may have set it)
        tiny = torch.tensor([1e-39])  # subnormal in float32
        assert (tiny * 1.0).item() != 0.0
        Run(TrainConfig(device='cpu', out=str(tmp_path)))
        assert (tiny * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)
