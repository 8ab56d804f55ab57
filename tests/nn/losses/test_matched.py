import importlib.util
import itertools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from torch_geometric_hyper.nn import HypergraphPrediction, MatchedIncidenceLoss
from torch_geometric_hyper.nn.kernels import CandidateIncidence
from torch_geometric_hyper.testing import saved_tensor_bytes


def prediction(sizes, m, seed=0, requires_grad=True):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n, ), g) for g, n in enumerate(sizes)])
    inc = CandidateIncidence.complete(batch, len(sizes), m)
    z = torch.randn(inc.nnz, generator=gen, dtype=torch.double) * 2
    ze = torch.randn(len(sizes) * m, generator=gen, dtype=torch.double)
    return HypergraphPrediction(z.requires_grad_(requires_grad),
                                ze.requires_grad_(requires_grad), inc.index,
                                batch, len(sizes), m)


def brute_force(pred, targets):
    """targets: per graph a list of node-index lists (local ids)."""
    dense, _, ex = pred.to_dense()
    total = 0.0
    for g, edges in enumerate(targets):
        n = int((pred.batch == g).sum())
        m = pred.max_edges
        T = torch.zeros(m, n + 1, dtype=torch.double)
        for t, nodes in enumerate(edges):
            T[t, nodes] = 1
            T[t, n] = 1
        P = torch.cat([dense[g, :, :n], ex[g][:, None]], 1)
        best = min(sum(F.binary_cross_entropy(P[p], T[q]).item()
                       for p, q in zip(perm, range(m)))
                   for perm in itertools.permutations(range(m)))
        total += best / m
    return total / len(targets)


def batched_target(targets, sizes):
    node, edge, offset, eoff = [], [], 0, 0
    for edges, n in zip(targets, sizes):
        for t, nodes in enumerate(edges):
            node += [offset + i for i in nodes]
            edge += [eoff + t] * len(nodes)
        offset += n
        eoff += len(edges)
    return (torch.tensor([node, edge]),
            torch.tensor([len(e) for e in targets]))


TARGETS = [[[0, 1, 2], [2, 3]], [[0, 4], [1], [2, 3, 4]]]
SIZES = [4, 5]


def test_matches_brute_force_hungarian():
    pred = prediction(SIZES, 4)
    index, counts = batched_target(TARGETS, SIZES)
    loss = MatchedIncidenceLoss()(pred, index, counts)
    assert loss.item() == pytest.approx(brute_force(pred, TARGETS), rel=1e-9)


def test_invariant_to_target_order():
    pred = prediction(SIZES, 4)
    loss_fn = MatchedIncidenceLoss()
    a = loss_fn(pred, *batched_target(TARGETS, SIZES))
    shuffled = [TARGETS[0][::-1], [TARGETS[1][2], TARGETS[1][0],
                                   TARGETS[1][1]]]
    b = loss_fn(pred, *batched_target(shuffled, SIZES))
    assert torch.allclose(a, b)


def test_equivariant_to_node_order():
    pred = prediction([5], 3)
    target = [[[0, 1], [2, 3, 4]]]
    loss_fn = MatchedIncidenceLoss()
    a = loss_fn(pred, *batched_target(target, [5]))
    perm = torch.tensor([3, 0, 4, 1, 2])  # new node k = old node perm[k]
    inv = torch.argsort(perm)
    z = pred.incidence_logit.view(5, 3)[perm].reshape(-1)
    permuted = HypergraphPrediction(z, pred.existence_logit,
                                    pred.incidence_index, pred.batch, 1, 3)
    new_target = [[[int(inv[i]) for i in e] for e in target[0]]]
    b = loss_fn(permuted, *batched_target(new_target, [5]))
    assert torch.allclose(a, b)


def test_pruning_proposition_constant_shift_same_gradients():
    """Adding non-existing hyperedges (all-zero target rows) together with
    slots that predict them changes the summed loss by a constant only."""
    m, k, n = 3, 4, 5
    pred = prediction([n], m)
    target = batched_target([[[0, 1], [2, 3, 4]]], [n])
    loss_fn = MatchedIncidenceLoss(reduction='sum')
    base = loss_fn(pred, *target)
    g_base = torch.autograd.grad(base, [pred.incidence_logit,
                                        pred.existence_logit])
    # k extra slots: constant predictions (never matched to real edges)
    z = pred.incidence_logit.view(n, m)
    extra_z = torch.full((n, k), -60.0, dtype=torch.double)
    z_big = torch.cat([z, extra_z], 1).reshape(-1)
    ze_big = torch.cat([pred.existence_logit,
                        torch.full((k, ), -1.5, dtype=torch.double)])
    inc = CandidateIncidence.complete(pred.batch, 1, m + k)
    big = HypergraphPrediction(z_big, ze_big, inc.index, pred.batch, 1,
                               m + k)
    full = loss_fn(big, *target)
    const = k * -F.logsigmoid(torch.tensor(1.5, dtype=torch.double)) / (n + 1)
    assert full.item() == pytest.approx(base.item() + const.item(), rel=1e-9)
    g_full = torch.autograd.grad(full, [pred.incidence_logit,
                                        pred.existence_logit])
    for a, b in zip(g_base, g_full):
        assert torch.allclose(a, b)


def test_return_assignment_and_reductions():
    pred = prediction(SIZES, 4)
    index, counts = batched_target(TARGETS, SIZES)
    loss, assign = MatchedIncidenceLoss()(pred, index, counts,
                                          return_assignment=True)
    assert assign.shape == (5, )
    assert (assign[:2] < 4).all() and (assign[2:] >= 4).all()
    assert assign[:2].unique().numel() == 2
    per = MatchedIncidenceLoss('none')(pred, index, counts)
    total = MatchedIncidenceLoss('sum')(pred, index, counts)
    assert per.shape == (2, )
    assert torch.allclose(per.mean(), loss)
    assert torch.allclose(per.sum() * 4, total)


def test_pruned_pairs_count_as_zero_probability():
    pred = prediction([3], 2)
    keep = pred.incidence_index[0] != 2  # drop node 2's candidates
    pruned = HypergraphPrediction(pred.incidence_logit[keep],
                                  pred.existence_logit,
                                  pred.incidence_index[:, keep], pred.batch,
                                  1, 2)
    dense = pred.incidence_logit.detach().clone().view(3, 2)
    dense[2] = -1e4  # probability 0
    explicit = HypergraphPrediction(dense.reshape(-1), pred.existence_logit,
                                    pred.incidence_index, pred.batch, 1, 2)
    target = (torch.tensor([[0, 2], [0, 0]]), 1)
    loss_fn = MatchedIncidenceLoss()
    assert torch.allclose(loss_fn(pruned, *target), loss_fn(explicit,
                                                            *target))


def test_empty_targets_and_data_argument():
    from torch_geometric_hyper.data import HypergraphData
    pred = prediction([3], 2)
    data = HypergraphData(x=torch.randn(3, 1),
                          hyperedge_index=torch.zeros(2, 0, dtype=torch.long),
                          num_hyperedges=0)
    loss = MatchedIncidenceLoss()(pred, data)
    ex = pred.existence.detach()
    inc = pred.incidence.detach().view(3, 2)
    expect = -(torch.log1p(-inc).sum(0) + torch.log1p(-ex)).sum() / 4 / 2
    assert loss.item() == pytest.approx(expect.item(), rel=1e-9)


def test_more_targets_than_slots_is_an_error():
    pred = prediction([4], 2)
    index = torch.tensor([[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match='max_edges=2 slots'):
        MatchedIncidenceLoss()(pred, index, torch.tensor([3]))


@pytest.mark.parametrize('index,counts,match', [
    (torch.tensor([[0, 9], [0, 0]]), [1], 'nodes outside'),
    (torch.tensor([[0, 1], [0, 3]]), [1], 'hyperedges outside'),
    (torch.tensor([[0, 1], [0, 0]]), [1, 1], 'one count per graph'),
    (torch.tensor([0, 1]), [1], r'\[2, nnz\]'),
])
def test_bad_targets(index, counts, match):
    pred = prediction([4], 2)
    with pytest.raises(ValueError, match=match):
        MatchedIncidenceLoss()(pred, index, torch.tensor(counts))


def test_bad_reduction():
    with pytest.raises(ValueError, match='reduction'):
        MatchedIncidenceLoss('max')


def pruned_prediction(gen, sizes, m, keep, scale):
    """A float64 prediction keeping a fraction ``keep`` of all node-slot
    pairs at random; returns it, its incidence logits (requiring grad) and
    the complete candidate set."""
    batch = torch.cat([torch.full((n, ), g) for g, n in enumerate(sizes)])
    full = CandidateIncidence.complete(batch, len(sizes), m)
    index = full.index[:, torch.rand(full.nnz, generator=gen) < keep]
    z = (torch.randn(index.size(1), generator=gen,
                     dtype=torch.double) * scale).requires_grad_()
    ze = torch.randn(len(sizes) * m, generator=gen, dtype=torch.double)
    return HypergraphPrediction(z, ze, index, batch, len(sizes), m), z, full


@pytest.mark.parametrize('keep', [0.3, 0.7])
def test_sparse_candidates_cost_equals_dense_table(keep):
    # Pruned candidates: the loss built by joining memberships with the
    # candidate pairs equals the one built from the dense [N, m] table.
    from torch_geometric_hyper.nn.losses import membership
    gen = torch.Generator().manual_seed(1)
    sizes, m = [6, 8, 5], 5
    pred, z, _ = pruned_prediction(gen, sizes, m, keep, scale=2)
    targets = [[[0, 1, 2], [3, 4, 5], [1, 5]], [[0, 7], [2, 3, 4]],
               [[0, 1, 2, 3, 4]]]
    t_index, counts = batched_target(targets, sizes)
    results = []
    for rule in (lambda *a: True, lambda *a: False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(membership, 'sparse_members_cheaper', rule)
            loss = MatchedIncidenceLoss()(pred, t_index, counts)
            grad, = torch.autograd.grad(loss, z)
        results.append((loss.detach(), grad))
    assert torch.allclose(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1])
    # (the automatic choice: tests/nn/losses/test_membership.py)


@pytest.mark.parametrize('flow', [True, False])
@pytest.mark.parametrize('keep', [0.02, 0.03])
def test_sparse_matching_equals_dense_matching(keep, flow, monkeypatch):
    # m = 200 slots per graph (more than matching.SPARSE_CHEAPEST, so the
    # sparse solver runs), a few candidates per slot: the sparse matching
    # finds an optimal assignment (by min-cost flow with ortools, LAPJVsp
    # without), so loss and gradient are the dense ones
    from torch_geometric_hyper import matching as M
    if flow:
        pytest.importorskip('ortools')
    else:
        monkeypatch.setattr(M, '_ortools_available', lambda: False)
    gen = torch.Generator().manual_seed(2)
    sizes, m = [30, 24], 200
    pred, z, full = pruned_prediction(gen, sizes, m, keep, scale=3)
    batch, ze = pred.batch, pred.existence_logit
    targets = []
    for n, t in zip(sizes, (40, 33)):
        targets.append([torch.randperm(n, generator=gen)[:3].tolist()
                        for _ in range(t)])
    t_index, counts = batched_target(targets, sizes)
    out = {}
    for matching in ('dense', 'sparse'):
        loss_fn = MatchedIncidenceLoss(reduction='none', matching=matching)
        loss = loss_fn(pred, t_index, counts)
        grad, = torch.autograd.grad(loss.sum(), z)
        out[matching] = (loss.detach(), grad)
    # the graphs' problems solved in 2 worker processes: the same result
    if flow:
        loss_fn = MatchedIncidenceLoss(reduction='none', matching='sparse',
                                       num_workers=2)
        loss = loss_fn(pred, t_index, counts)
        grad, = torch.autograd.grad(loss.sum(), z)
        out[2] = (loss.detach(), grad)
    for key in out:
        assert torch.allclose(out['dense'][0], out[key][0], atol=1e-12)
        assert torch.allclose(out['dense'][1], out[key][1], atol=1e-12)
    assert 'num_workers=2' in repr(MatchedIncidenceLoss(num_workers=2))
    with pytest.raises(ValueError, match="'num_workers' must be an integer of at least 0"):
        MatchedIncidenceLoss(num_workers=-1)
    # 'auto' goes sparse for a pruned incidence with enough slots only (and
    # a dense cost past SPARSE_MIN_ENTRIES: by default only huge sets)
    assert MatchedIncidenceLoss.SPARSE_MIN_ENTRIES >= 2 ** 20
    assert "matching='sparse'" in repr(MatchedIncidenceLoss(
        matching='sparse'))
    cases = [(10, 0, 1000, True, 'sparse'), (1000, 0, 1000, True, 'dense'),
             # the flow solver's rule: from FLOW_MIN_SLOTS with ortools
             (1000, 0, 10, True, 'sparse'), (1000, 0, 10, False, 'dense'),
             (10, 2 ** 40, 10, True, 'sparse'),
             (10, 2 ** 40, 1000, True, 'dense')]
    installed = importlib.util.find_spec('ortools') is not None
    for min_slots, min_entries, flow_slots, ortools, expected in cases:
        if ortools and not installed:
            continue
        monkeypatch.setattr(M, '_ortools_available', lambda o=ortools: o)
        auto = MatchedIncidenceLoss(matching='auto')
        auto.SPARSE_MIN_SLOTS, auto.SPARSE_MIN_ENTRIES = min_slots, \
            min_entries
        auto.FLOW_MIN_SLOTS = flow_slots
        used = []
        for name, method in (('dense', '_dense_reduced'),
                             ('sparse', '_sparse_matched')):
            real = getattr(auto, method)
            setattr(auto, method,
                    lambda *a, _r=real, _n=name, **k: used.append(_n)
                    or _r(*a, **k))
        auto(pred, t_index, counts)
        assert used == [expected]
    dense_pred = HypergraphPrediction(
        torch.randn(full.nnz, generator=gen, dtype=torch.double), ze,
        full.index, batch, len(sizes), m)
    auto = MatchedIncidenceLoss(matching='auto')
    auto.SPARSE_MIN_SLOTS, auto.SPARSE_MIN_ENTRIES = 10, 0
    auto._sparse_matched = None  # all pairs: never sparse
    auto(dense_pred, t_index, counts)


def test_bad_matching():
    with pytest.raises(ValueError, match="'matching' must be 'auto', "
                                         "'dense' or 'sparse'"):
        MatchedIncidenceLoss(matching='fast')


def _three_predictions():
    """A batched target and three predictions of it, with their leaves."""
    index, counts = batched_target(TARGETS, SIZES)
    data = SimpleNamespace(hyperedge_index=index, num_hyperedges=counts)
    preds = [prediction(SIZES, 4, seed=s) for s in range(3)]
    leaves = [t for p in preds for t in (p.incidence_logit,
                                         p.existence_logit)]
    return data, preds, leaves


@pytest.mark.parametrize('reduction, matching', [
    ('mean', 'dense'), ('sum', 'dense'), ('mean', 'sparse')])
def test_over_steps_is_the_mean_of_the_calls_from_one_transfer(reduction,
                                                               matching):
    from torch_geometric_hyper.testing import HostSyncCounter
    data, preds, leaves = _three_predictions()
    loss_fn = MatchedIncidenceLoss(reduction, matching=matching)
    expected = sum(loss_fn(p, data) for p in preds) / 3
    grads = torch.autograd.grad(expected, leaves)
    fresh = MatchedIncidenceLoss(reduction, matching=matching)
    with HostSyncCounter() as syncs:
        loss, value = fresh.over_steps(preds, data)
    if matching == 'dense':  # the target counts, then all 3 assignments
        assert syncs.by_kind == {'cpu': 2}
    assert torch.allclose(loss, expected, rtol=1e-12, atol=0)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(loss, leaves), grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)


def test_over_steps_nan_logit_and_bad_reduction():
    from types import SimpleNamespace
    index, counts = batched_target(TARGETS, SIZES)
    data = SimpleNamespace(hyperedge_index=index, num_hyperedges=counts)
    preds = [prediction(SIZES, 4, seed=s, requires_grad=False)
             for s in range(2)]
    preds[1].incidence_logit[3] = float('nan')
    loss, value = MatchedIncidenceLoss().over_steps(preds, data)
    assert value != value and torch.isnan(loss)
    with pytest.raises(ValueError, match="reduction='mean' or 'sum'"):
        MatchedIncidenceLoss('none').over_steps(preds, data)
    with pytest.raises(ValueError, match='at least one prediction'):
        MatchedIncidenceLoss().over_steps([], data)


@pytest.mark.parametrize('matching', ['dense', 'sparse'])
def test_half_precision_logits_give_the_float32_loss(matching):
    # bfloat16 logits (as under autocast) are scored in float32, outside
    # autocast: the loss and its gradients are those of the float32 copy
    # of the same logits (CUDA has no bfloat16 sparse product)
    pred = prediction(SIZES, 4, requires_grad=False)
    z16 = pred.incidence_logit.bfloat16().requires_grad_()
    ze16 = pred.existence_logit.bfloat16().requires_grad_()
    z32 = z16.detach().float().requires_grad_()
    ze32 = ze16.detach().float().requires_grad_()
    index, counts = batched_target(TARGETS, SIZES)
    loss_fn = MatchedIncidenceLoss(matching=matching)
    losses = []
    for z, ze in ((z16, ze16), (z32, ze32)):
        p = HypergraphPrediction(z, ze, pred.incidence_index, pred.batch, 2, 4)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = loss_fn(p, index, counts)
            over, value = loss_fn.over_steps([p, p], _data(index, counts))
        assert loss.dtype == torch.float32 and over.dtype == torch.float32
        assert abs(value - float(over.detach())) < 1e-6
        loss.backward()
        losses.append(float(loss.detach()))
    assert losses[0] == losses[1]
    assert torch.equal(z16.grad.float(), z32.grad.bfloat16().float())
    assert torch.equal(ze16.grad.float(), ze32.grad.bfloat16().float())


def _data(index, counts):
    from torch_geometric_hyper.data import HypergraphData
    data = HypergraphData(hyperedge_index=index, num_nodes=sum(SIZES))
    data.num_hyperedges = counts
    return data


def test_full_precision_wrapper_leaves_autocast_and_skips_other_devices():
    from torch_geometric_hyper.nn.losses.matched import _in_full_precision
    pred = prediction(SIZES, 4, requires_grad=False)
    seen = []
    method = _in_full_precision(
        lambda self, p: seen.append(torch.is_autocast_enabled('cpu')) or 1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.is_autocast_enabled('cpu')
        assert method(None, pred) == 1 and method(None, [pred]) == 1
    assert seen == [False, False]
    # a device without autocast ('meta'): run as is
    meta = HypergraphPrediction(pred.incidence_logit.to('meta'),
                                pred.existence_logit.to('meta'),
                                pred.incidence_index, pred.batch, 2, 4)
    assert method(None, meta) == 1 and method(None, []) == 1


def test_clamped_log_sigmoids_are_the_composition():
    from torch_geometric_hyper.nn.losses.matched import _ClampedLogSigmoids
    torch.manual_seed(0)
    z = torch.cat([torch.tensor([-150.0, -100.5, -99.0, 0.0, 99.0, 100.5,
                                 150.0], dtype=torch.double),
                   torch.randn(20, dtype=torch.double) * 10])
    g_p, g_q = torch.randn(2, z.numel(), dtype=torch.double)
    got_z, ref_z = z.clone().requires_grad_(), z.clone().requires_grad_()
    got = _ClampedLogSigmoids.apply(got_z)
    ref = (F.logsigmoid(ref_z).clamp_min(-100.0),
           F.logsigmoid(-ref_z).clamp_min(-100.0))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    (got[0] * g_p + got[1] * g_q).sum().backward()
    (ref[0] * g_p + ref[1] * g_q).sum().backward()
    torch.testing.assert_close(got_z.grad, ref_z.grad)
    # log sigmoid(-150) is clamped (no gradient), log sigmoid(0) is not
    g_log_p, = torch.autograd.grad(_ClampedLogSigmoids.apply(got_z)[0].sum(),
                                   got_z)
    assert g_log_p[0] == 0 and g_log_p[3] == 0.5
    inner = (torch.randn(6, dtype=torch.double) * 5).requires_grad_()
    assert torch.autograd.gradcheck(_ClampedLogSigmoids.apply, (inner, ))


def test_over_steps_shares_the_index_work_between_predictions():
    # predictions over the same pairs (as a refiner's steps are) keep one
    # copy of the pairs' table index and of the target matrix for backward,
    # and no copy of the log-probabilities: what the loss keeps beyond the
    # logits grows by far less than one float per pair and prediction.
    # Targets with as many memberships as nodes take the dense member
    # table, as all pairs of hulls do.
    sizes = [12, 12]
    ring = [[i, i + 1, (i + 2) % 12] for i in range(0, 12, 2)]
    targets = [ring, ring[:5]]
    index, counts = batched_target(targets, sizes)
    data = SimpleNamespace(hyperedge_index=index, num_hyperedges=counts)
    base = prediction(sizes, 20)
    nnz = base.incidence_logit.numel()

    def preds(k):
        gen = torch.Generator().manual_seed(k)
        return [HypergraphPrediction(
            torch.randn(nnz, generator=gen, dtype=torch.double
                        ).requires_grad_(),
            torch.randn(base.existence_logit.numel(), generator=gen,
                        dtype=torch.double).requires_grad_(),
            base.incidence_index, base.batch, base.num_graphs,
            base.max_edges) for _ in range(k)]

    def kept(predictions):
        return saved_tensor_bytes(
            lambda: MatchedIncidenceLoss().over_steps(predictions, data),
            exclude=[t for p in predictions for t in (
                p.incidence_logit, p.existence_logit, p.incidence_index)])

    # before: five float64 copies of the pairs' size and an int64 index per
    # prediction
    one, four = kept(preds(1)), kept(preds(4))
    assert four - one < 3 * nnz * 8 / 2, (one, four, nnz)


def test_counts_that_disagree_with_the_target_are_refused():
    """Per-graph counts that put a hyperedge in another graph than its
    nodes are refused (they were taken as given, matching targets across
    graphs)."""
    from torch_geometric_hyper.nn import HypergraphRefiner
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, 4, 2)
    batch = torch.tensor([0] * 4 + [1] * 3)
    pred = model(torch.randn(7, 3), batch, 2)
    index = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 2, 2, 2]])
    loss = MatchedIncidenceLoss()
    assert torch.isfinite(loss(pred, index, torch.tensor([2, 1])))
    for counts in ([1, 2], [3, 0]):
        with pytest.raises(ValueError, match="'num_hyperedges' disagrees "
                                             "with the target"):
            loss(pred, index, torch.tensor(counts))


@pytest.mark.parametrize('value', [1.5, -1, True, '2'])
def test_num_workers_must_be_a_non_negative_integer(value):
    with pytest.raises(ValueError, match="'num_workers' must be an integer"):
        MatchedIncidenceLoss(num_workers=value)


def full_costs(pred, targets):
    """Per graph the differentiable m x m cost of (padded target row q,
    slot p): the mean BCE over the n node columns and the existence."""
    dense, _, ex = pred.to_dense()
    out = []
    for g, edges in enumerate(targets):
        n, m = int((pred.batch == g).sum()), pred.max_edges
        T = torch.zeros(m, n + 1, dtype=torch.double)
        for t, nodes in enumerate(edges):
            T[t, nodes] = 1
            T[t, n] = 1
        P = torch.cat([dense[g, :, :n], ex[g][:, None]], 1)
        out.append(F.binary_cross_entropy(
            P[None].expand(m, m, n + 1), T[:, None].expand(m, m, n + 1),
            reduction='none').mean(-1))  # [target q, slot p]
    return out


def test_assignment_option_is_checked():
    with pytest.raises(ValueError, match="'per_step' or 'per_update'"):
        MatchedIncidenceLoss(assignment='once')
    with pytest.raises(ValueError, match='needs dense costs'):
        MatchedIncidenceLoss(assignment='per_update', matching='sparse')
    assert "assignment='per_update'" in repr(
        MatchedIncidenceLoss(assignment='per_update'))
    assert 'assignment' not in repr(MatchedIncidenceLoss())


def test_per_update_assignment_of_one_step_is_the_per_step_loss():
    index, counts = batched_target(TARGETS, SIZES)
    data = SimpleNamespace(hyperedge_index=index, num_hyperedges=counts)
    pred = prediction(SIZES, 4, seed=5)
    leaves = (pred.incidence_logit, pred.existence_logit)
    step, v_step = MatchedIncidenceLoss().over_steps([pred], data)
    once, v_once = MatchedIncidenceLoss(
        assignment='per_update').over_steps([pred], data)
    assert torch.allclose(once, step, rtol=1e-12, atol=0)
    assert v_once == pytest.approx(v_step, rel=1e-12)
    for a, b in zip(torch.autograd.grad(once, leaves),
                    torch.autograd.grad(step, leaves)):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('backend', ['auto', 'scipy'])
def test_per_update_assignment_minimises_the_summed_cost(backend,
                                                         monkeypatch):
    from scipy.optimize import linear_sum_assignment

    from torch_geometric_hyper.nn.losses import matched
    data, preds, leaves = _three_predictions()
    solved = []
    real = matched.linear_assignment

    def spy(problems, *a, **k):
        problems = list(problems)
        solved.append([p.shape for p in problems])
        return real(problems, *a, **k)
    monkeypatch.setattr(matched, 'linear_assignment', spy)
    loss_fn = MatchedIncidenceLoss(assignment='per_update', backend=backend)
    loss, value = loss_fn.over_steps(preds, data)
    # one call, one problem per graph (not per step and graph)
    assert solved == [[(2, 4), (3, 4)]]
    # against scipy on the summed full (padded, m x m) costs
    costs = [full_costs(p, TARGETS) for p in preds]
    expected = 0.0
    for g in range(len(SIZES)):
        summed = sum(c[g] for c in costs)
        rows, cols = linear_sum_assignment(summed.detach().numpy())
        expected = expected + sum(c[g][rows, cols].sum() for c in costs) \
            / (len(preds) * 4)
    expected = expected / len(SIZES)
    assert value == pytest.approx(expected.item(), rel=1e-10)
    assert torch.allclose(loss, expected, rtol=1e-10, atol=0)
    # never below the per-step loss, whose steps each take their own best
    step, _ = MatchedIncidenceLoss().over_steps(preds, data)
    assert loss.item() >= step.item() - 1e-12
    # gradients reach every step's logits, as the matched costs give them
    grads = torch.autograd.grad(loss, leaves)
    for a, b in zip(grads, torch.autograd.grad(expected, leaves)):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)


def test_per_update_assignment_stays_dense_under_auto_matching():
    loss_fn = MatchedIncidenceLoss(assignment='per_update')
    loss_fn.FLOW_MIN_SLOTS = loss_fn.SPARSE_MIN_SLOTS = 1
    loss_fn.SPARSE_MIN_ENTRIES = 1
    index, counts = batched_target(TARGETS, SIZES)
    ctx = loss_fn._prepare(prediction(SIZES, 40), index, counts)
    assert not ctx['sparse']


@pytest.mark.parametrize('assignment', ['per_step', 'per_update'])
def test_device_solver_path_gives_the_host_loss(assignment, monkeypatch):
    # backend='torch' solves where the costs are (here the CPU, with a
    # stand-in for the optional GPU solver): same value and gradients
    from tests.test_matching import stub_gpu_solver
    stub_gpu_solver(monkeypatch)
    data, preds, leaves = _three_predictions()
    ref, ref_value = MatchedIncidenceLoss(
        assignment=assignment, backend='scipy').over_steps(preds, data)
    loss, value = MatchedIncidenceLoss(
        assignment=assignment, backend='torch').over_steps(preds, data)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert torch.allclose(loss, ref, rtol=1e-12, atol=0)
    for a, b in zip(torch.autograd.grad(loss, leaves),
                    torch.autograd.grad(ref, leaves)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    one, cols = MatchedIncidenceLoss(backend='torch')(
        preds[0], data.hyperedge_index, data.num_hyperedges,
        return_assignment=True)
    ref_one, ref_cols = MatchedIncidenceLoss(backend='scipy')(
        preds[0], data.hyperedge_index, data.num_hyperedges,
        return_assignment=True)
    assert one.item() == pytest.approx(ref_one.item(), rel=1e-12)
    assert cols.tolist() == ref_cols.tolist()  # no ties in random logits


CUDA_SOLVER = torch.cuda.is_available() and \
    importlib.util.find_spec('torch_linear_assignment') is not None


@pytest.mark.skipif(not CUDA_SOLVER, reason='needs CUDA and the optional '
                    'package torch-linear-assignment')
@pytest.mark.parametrize('assignment', ['per_step', 'per_update'])
def test_gpu_solver_gives_the_host_loss_with_one_sync(assignment):
    from torch_geometric_hyper.testing import HostSyncCounter
    index, counts = batched_target(TARGETS, SIZES)
    host = SimpleNamespace(hyperedge_index=index, num_hyperedges=counts)
    preds = [prediction(SIZES, 4, seed=s) for s in range(3)]
    ref, ref_value = MatchedIncidenceLoss(
        assignment=assignment, backend='scipy').over_steps(preds, host)
    cuda = [HypergraphPrediction(
        p.incidence_logit.detach().cuda().requires_grad_(),
        p.existence_logit.detach().cuda().requires_grad_(),
        p.incidence_index.cuda(), p.batch.cuda(), p.num_graphs,
        p.max_edges) for p in preds]
    data = SimpleNamespace(hyperedge_index=index.cuda(),
                           num_hyperedges=counts.cuda(),
                           num_hyperedges_host=counts.tolist())
    loss_fn = MatchedIncidenceLoss(assignment=assignment)
    with HostSyncCounter() as syncs:
        loss, value = loss_fn.over_steps(cuda, data)
    assert sum(syncs.by_kind.values()) == 1
    assert value == pytest.approx(ref_value, rel=1e-9)
    single = MatchedIncidenceLoss()(cuda[0], data)
    assert single.item() == pytest.approx(
        MatchedIncidenceLoss(backend='scipy')(preds[0], host).item(),
        rel=1e-9)
    loss.backward()
    assert all(p.incidence_logit.grad.abs().sum() > 0 for p in cuda)
