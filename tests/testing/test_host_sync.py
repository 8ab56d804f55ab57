"""HostSyncCounter, and the host synchronisations of one training batch
(the GPU-readiness audit of issue 13: pinned on CPU)."""
import pytest
import torch
from torch_geometric.data import Batch

from torch_geometric_hyper.datasets import ConvexHull, Delaunay
from torch_geometric_hyper.nn import (AdjacencyBCELoss, GraphRefiner,
                                     HypergraphRefiner, MatchedIncidenceLoss)
from torch_geometric_hyper.testing import HostSyncCounter
from torch_geometric_hyper.train import BackpropWithSkips


def test_counts_reads_transfers_and_value_dependent_shapes():
    x = torch.randn(6)
    with HostSyncCounter() as syncs:
        y = x * 2 + 1                      # none
        float(y.sum())                     # __float__
        x[x > 0]                           # mask index
        torch.nonzero(x)                   # nonzero
        x.to('cpu')                        # cpu (a string: the host)
        host = x.cpu()                     # cpu
        int((host > 0).sum())              # host tensors: not counted
        torch.zeros(3, device='cpu').tolist()  # made on the host
        x.repeat_interleave(torch.tensor([1, 2, 0, 1, 1, 1]),
                            output_size=6)  # sized: not counted
    assert syncs.by_kind == {'__float__': 1, 'mask index': 1, 'nonzero': 1,
                             'cpu': 2}
    assert syncs.count == 5
    with HostSyncCounter(record_stack=True) as syncs:
        bool(x.sum() > 0)
    assert syncs.where[0][0] == '__bool__'
    assert syncs.where[0][1].endswith(f'test_host_sync.py:{_line() - 2}')


def _line():
    import inspect
    return inspect.currentframe().f_back.f_lineno


def _batch(dataset):
    return Batch.from_data_list(list(dataset))


@pytest.mark.parametrize('T, B, S', [(16, 4, 2), (6, 2, 3)])
def test_a_refiner_batch_syncs_once_per_update(tmp_path, T,
                                                              B, S):
    """One mini-batch of backprop with skips on GPU waits for the device
    once for the target counts (cached over the batch's loss calls) and
    once per update: the B assignments of the update travel to the host
    in one transfer, which also gives the loss value checked before the
    optimizer step."""
    data = _batch(ConvexHull(str(tmp_path), num_points=(6, 12),
                             num_samples=6, log=False))
    model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), T)
    trainer = BackpropWithSkips(T, B, S, seed=0)
    with HostSyncCounter(record_stack=True) as syncs:
        optimizer = torch.optim.Adam(model.parameters())
        trainer(model, optimizer, MatchedIncidenceLoss(), data)
    assert syncs.by_kind == {'cpu': 1 + S}, syncs.where
    # with the counts on the host too (the training loop's to_device keeps
    # them as num_hyperedges_host): one per update
    data.num_hyperedges_host = data.num_hyperedges.tolist()
    with HostSyncCounter(record_stack=True) as syncs:
        # a new optimizer: its step counters are host tensors the counter
        # sees being made
        optimizer = torch.optim.Adam(model.parameters())
        trainer(model, optimizer, MatchedIncidenceLoss(), data)
    assert syncs.by_kind == {'cpu': S}, syncs.where
    data.num_hyperedges_host = data.num_hyperedges.tolist()[1:]
    with pytest.raises(ValueError, match='one count per graph'):
        trainer(model, optimizer, MatchedIncidenceLoss(), data)


@pytest.mark.parametrize('sizes', [(6, 12), (4, 8)], ids=['full', 'small'])
def test_a_candidate_refiner_batch_syncs_for_its_kd_tree_and_updates(
        tmp_path, sizes):
    # K = 5 candidates per slot: the k-d tree of the initial candidates
    # reads the points, the graph offsets and the slot noise on the host,
    # then the loss reads its counts once and each of the S = 2 updates
    # once; the refreshes of the 16 steps wait for nothing when every set
    # holds K nodes or more, and once each (nonzero) otherwise
    data = _batch(ConvexHull(str(tmp_path), num_points=sizes,
                             num_samples=6, log=False))
    model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), 16,
                              num_candidates=5)
    small = int(data.batch.bincount().min()) < 5
    assert small == (sizes[0] < 5)
    trainer = BackpropWithSkips(16, 4, 2, seed=0)
    with HostSyncCounter(record_stack=True) as syncs:
        optimizer = torch.optim.Adam(model.parameters())
        trainer(model, optimizer, MatchedIncidenceLoss(), data)
    expected = {'cpu': 3 + 1 + 2}
    if small:
        expected['nonzero'] = 15  # every step's refresh but the last one's
    assert syncs.by_kind == expected, syncs.where


def test_a_graph_refiner_batch_syncs_for_its_pairs_and_updates(tmp_path):
    data = _batch(Delaunay(str(tmp_path), num_points=(6, 12),
                           num_samples=6, log=False))
    model = GraphRefiner(2, 8, 8)
    with HostSyncCounter(record_stack=True) as syncs:
        optimizer = torch.optim.Adam(model.parameters())
        BackpropWithSkips(8, 2, 2, seed=0)(model, optimizer,
                                            AdjacencyBCELoss(), data)
    # the all-pairs candidates (their count depends on the set sizes),
    # then the loss value of each of the 2 updates
    assert syncs.count == 2 + 2, syncs.where
    assert syncs.by_kind['__float__'] == 2


def test_cpu_input_checks_run_again_after_counting():
    from torch_geometric_hyper.nn.checks import sync_checks_allowed
    x = torch.zeros(2)
    with HostSyncCounter():
        assert not sync_checks_allowed(x)
    assert sync_checks_allowed(x)


@pytest.mark.parametrize('T, B, S', [(16, 4, 2), (8, 1, 3)])
def test_the_training_step_of_fit_syncs_once_per_update(tmp_path, T, B, S):
    """What ``fit`` runs per batch (``Run.to_device``, then
    ``training_step``) with plain SGD, whose step keeps no counters: the
    device waits once per update, for the transfer of the costs of the
    update's B steps and every set, and for nothing else (the slot noise,
    the target counts, the skip schedule and the assignments' way back are
    host work or host-to-device copies)."""
    from torch_geometric_hyper.train import (Run, TrainConfig, make_trainer,
                                             training_step)
    data = _batch(ConvexHull(str(tmp_path), num_points=(6, 12),
                             num_samples=6, log=False))
    config = TrainConfig(T=T, B=B, S=S, device='cpu', compile=False,
                         out=str(tmp_path / 'run'))
    run = Run(config)
    model = run.prepare(HypergraphRefiner(3, 8, int(data.num_hyperedges.max()),
                                          T))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = make_trainer(config, recurrent=True)
    loss = MatchedIncidenceLoss()
    for step in range(2):
        # (to_device reads the counts from the batch while it is still on
        # the host: no synchronisation, though the counter cannot know)
        batch = run.to_device(data.clone())
        with HostSyncCounter(record_stack=True) as syncs:
            stats = training_step(model, trainer, optimizer, loss, batch,
                                  step=step, context=run)
        assert syncs.by_kind == {'cpu': S}, syncs.where
        assert stats['loss'] > 0
