import random
from collections import Counter

import pytest
import torch

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.nn import HypergraphRefiner, MatchedIncidenceLoss
from torch_geometric_hyper.train import (
    BPTT,
    BackpropWithSkips,
    OneShot,
    TruncatedBPTT,
    sample_skips,
    train_on_batch,
)
from torch_geometric_hyper.train.skips import _partitions


def test_sample_skips_sum_and_support():
    rng = random.Random(0)
    seen = Counter()
    for _ in range(2000):
        s = sample_skips(16, 4, 2, rng)
        assert len(s) == 2 and sum(s) == 8 and min(s) >= 0
        seen[tuple(sorted(s))] += 1
    # partitions of 8 into at most 2 parts, each drawn ~1/5 of the time
    assert set(seen) == {(0, 8), (1, 7), (2, 6), (3, 5), (4, 4)}
    assert min(seen.values()) > 300


def test_partitions_enumeration():
    assert _partitions(4, 3, 4) == ((4, 0, 0), (3, 1, 0), (2, 2, 0),
                                    (2, 1, 1))


@pytest.mark.parametrize('T,B,S', [(4, 3, 2), (4, 0, 1), (4, 1, 0)])
def test_sample_skips_rejects_bad_settings(T, B, S):
    with pytest.raises(ValueError, match='B >= 1'):
        sample_skips(T, B, S)


def _data():
    x = torch.randn(7, 3)
    index = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1, 1]])
    data = HypergraphData(x=x, hyperedge_index=index, num_hyperedges=2)
    data.batch = torch.zeros(7, dtype=torch.long)
    data.num_graphs = 1
    return data


class Recorder(HypergraphRefiner):
    """Records, per step, whether it ran with gradient and how many refiner
    steps the input state's autograd graph already contains."""

    def __init__(self):
        super().__init__(3, 16, 3, num_iterations=6, checkpoint=False)
        self.log = []

    def step(self, state):
        self.log.append((torch.is_grad_enabled(),
                         _graph_depth(state.edge)))
        return super().step(state)


def _graph_depth(t):
    """Number of refinement steps on the autograd path back from ``t``: each
    step scores its pairs once, so count the pair-MLP backward nodes."""
    if t.grad_fn is None:
        return 0
    count, seen, stack = 0, set(), [t.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if 'PairMLP' in type(fn).__name__:
            count += 1
        stack.extend(f for f, _ in fn.next_functions)
    return count


def test_backprop_with_skips_keeps_only_B_steps_in_the_graph():
    model = Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = [(1, 2), (0, 2)]  # T = 5
    stats = train_on_batch(model, opt, MatchedIncidenceLoss(), _data(),
                           sched)
    grad_flags = [g for g, _ in model.log]
    assert grad_flags == [False, True, True, True, True]
    depths = [d for _, d in model.log]
    # a step with gradient sees at most B - 1 earlier steps in its graph
    assert depths == [0, 0, 1, 0, 1]
    assert stats['grad_steps'] == 2


def test_bptt_holds_all_steps():
    model = Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    BPTT(4)(model, opt, MatchedIncidenceLoss(), _data())
    assert [d for _, d in model.log] == [0, 1, 2, 3]


def test_truncated_bptt_schedule():
    model = Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    TruncatedBPTT(5, 2)(model, opt, MatchedIncidenceLoss(), _data())
    assert [g for g, _ in model.log] == [False] * 3 + [True] * 2


def test_training_with_skips_decreases_loss_and_clips():
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 32, 3, num_iterations=6)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    trainer = BackpropWithSkips(6, 2, 2, max_grad_norm=1.0, seed=0)
    data = _data()
    first = trainer(model, opt, MatchedIncidenceLoss(), data)['loss']
    for _ in range(40):
        last = trainer(model, opt, MatchedIncidenceLoss(), data)['loss']
    assert last < 0.8 * first
    assert repr(trainer) == 'BackpropWithSkips(T=6, B=2, S=2)'


@pytest.mark.parametrize('T,B,S,expected', [(16, 4, 2, [4, 4]),
                                             (17, 4, 2, [5, 4]),
                                             (8, 4, 2, [0, 0]),
                                             (64, 4, 3, [18, 17, 17])])
def test_fixed_skips_even_split(T, B, S, expected):
    from torch_geometric_hyper.train import fixed_skips, skips_schedule
    skips = fixed_skips(T, B, S)
    assert skips == expected and sum(skips) == T - B * S
    schedule = skips_schedule(T, B, S, skips=skips)
    assert sum(s + b for s, b in schedule) == T


def test_fixed_skips_rejects_bad_settings():
    from torch_geometric_hyper.train import fixed_skips
    with pytest.raises(ValueError, match='B >= 1'):
        fixed_skips(4, 4, 2)


def _nan_after(calls):
    """A loss that becomes NaN from its ``calls``-th call on."""
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    inner, count = MatchedIncidenceLoss(), [0]

    def loss_fn(pred, data):
        count[0] += 1
        out = inner(pred, data)
        return out * float('nan') if count[0] >= calls else out
    return loss_fn


def test_nonfinite_loss_stops_without_touching_parameters():
    import pytest
    from torch_geometric_hyper.nn import HypergraphRefiner
    from torch_geometric_hyper.train import (BackpropWithSkips,
                                             NonFiniteLossError, OneShot)
    torch.manual_seed(0)
    data = _data()
    model = HypergraphRefiner(data.x.size(1), 8, 6, num_iterations=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = BackpropWithSkips(4, 1, 2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLossError, match='update 1 of this mini-'):
        trainer(model, opt, _nan_after(1), data)
    assert all(torch.equal(a, b) for a, b in zip(before,
                                                 model.parameters()))
    # skipping: the first update is taken, the NaN second one is not
    trainer = BackpropWithSkips(4, 1, 2, seed=0, skip_nonfinite=True)
    out = trainer(model, opt, _nan_after(2), data)
    assert out['skipped'] == 1.0 and trainer.num_skipped == 1
    assert torch.isfinite(torch.tensor(out['loss']))
    after_first = [p.detach().clone() for p in model.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(before, after_first))
    out = trainer(model, opt, _nan_after(1), data)
    assert trainer.num_skipped == 2
    assert all(torch.equal(a, b) for a, b in zip(after_first,
                                                 model.parameters()))
    # the one-shot step too
    from torch_geometric_hyper.nn import SetTransformer
    st = SetTransformer(data.x.size(1), 8, 6)
    opt = torch.optim.Adam(st.parameters())
    with pytest.raises(NonFiniteLossError):
        OneShot()(st, opt, _nan_after(1), data)
    one = OneShot(skip_nonfinite=True)
    assert one(st, opt, _nan_after(1), data)['skipped'] == 1.0
    assert one.num_skipped == 1


def test_one_transfer_per_update_trains_as_one_call_per_step():
    """The trainer's over_steps path (one host transfer per update) takes
    the same optimizer steps as calling the loss at every step."""
    from torch_geometric.data import Batch

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.testing import HostSyncCounter
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        data = Batch.from_data_list(list(ConvexHull(
            root, num_points=(6, 10), num_samples=5, log=False)))
    inner = MatchedIncidenceLoss()
    per_call = lambda pred, batch: inner(pred, batch)  # noqa: E731
    out, params = {}, {}
    for name, loss_fn in (('over_steps', MatchedIncidenceLoss()),
                          ('per_call', per_call)):
        torch.manual_seed(0)
        model = HypergraphRefiner(3, 8, int(data.num_hyperedges.max()), 6,
                                  checkpoint=False).double()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        trainer = BackpropWithSkips(6, 2, 2, seed=3)
        with HostSyncCounter() as syncs:
            stats = [trainer(model, opt, loss_fn,
                             data.clone().apply(_to_double))
                     for _ in range(3)]
        out[name] = ([s['loss'] for s in stats], syncs.count)
        params[name] = [p.detach() for p in model.parameters()]
    assert out['over_steps'][0] == pytest.approx(out['per_call'][0],
                                                 rel=1e-12)
    for a, b in zip(params['over_steps'], params['per_call']):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    # 3 batches: the counts once each and one transfer per update, against
    # one per step and a value read per update
    assert out['over_steps'][1] == 3 * (1 + 2)
    assert out['per_call'][1] == 3 * (1 + 2 * 2 + 2)


def _to_double(t):
    return t.double() if t.is_floating_point() else t


def test_skips_are_sampled_without_listing_the_partitions():
    """The sampler draws one uniform index over the partitions and unranks
    it: the same draws as choosing from the full list (checked against the
    list at small T), and no MemoryError at T=128 or 256, where the list
    would hold tens of millions of partitions."""
    import random
    from torch_geometric_hyper.train.skips import _count, _partitions
    for T, B, S in [(16, 4, 2), (17, 2, 5), (12, 1, 4), (20, 1, 6)]:
        total = T - B * S
        listed = _partitions(total, S, total)
        assert len(listed) == _count(total, S, total)
        a, b = random.Random(5), random.Random(5)
        for _ in range(100):
            want = list(a.choice(listed))
            a.shuffle(want)
            assert sample_skips(T, B, S, b) == want
    assert _count(96, 16, 96) > 10**7
    for T, B, S in [(128, 2, 16), (256, 1, 32)]:
        skips = BackpropWithSkips(T, B, S, seed=0).schedule()
        assert len(skips) == S and all(b == B for _, b in skips)
        assert sum(s for s, _ in skips) == T - B * S


@pytest.mark.parametrize('make', [
    lambda **kw: BackpropWithSkips(16, 4, 2, **kw),
    lambda **kw: BPTT(16, **kw),
    lambda **kw: TruncatedBPTT(16, 4, **kw),
    lambda **kw: OneShot(**kw)])
@pytest.mark.parametrize('value', [-1.0, 0.0, float('nan'), 'big'])
def test_trainers_refuse_a_bad_max_grad_norm(make, value):
    with pytest.raises(ValueError, match="'max_grad_norm' must be a "
                                         "positive number or None"):
        make(max_grad_norm=value)


@pytest.mark.parametrize('args, name', [
    ((16.5, 4, 2), 'num_iterations'), ((16, 2.7, 2), 'backprop_iterations'),
    ((16, 4, True), 'num_updates'), (('16', 4, 2), 'num_iterations')])
def test_backprop_with_skips_refuses_non_integral_counts(args, name):
    with pytest.raises(ValueError, match=f"'{name}' must be a positive "
                                         f"integer"):
        BackpropWithSkips(*args)
    assert BackpropWithSkips(16.0, 4, 2).num_iterations == 16
