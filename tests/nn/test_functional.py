import pytest
import torch

from tests.conftest import DEVICES
from torch_geometric_hyper.nn.functional import (
    DEFAULT_CHUNK_ELEMENTS,
    CandidateIncidence,
    default_chunk_elements,
    incidence_matmul,
    pair_mlp,
)


def _setup(dtype=torch.double):
    batch = torch.tensor([0, 0, 0, 1, 1])
    inc = CandidateIncidence.complete(batch, 2, 3)
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=dtype).requires_grad_()

    return inc, r


def test_complete_candidates_stay_inside_graphs():
    batch = torch.tensor([0, 0, 1])
    inc = CandidateIncidence.complete(batch, 2, 2)
    assert inc.index.tolist() == [[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 2, 3]]
    assert inc.node_ptr.tolist() == [0, 2, 4, 6]
    assert inc.slot_ptr.tolist() == [0, 2, 4, 5, 6]


def test_build_sorts_and_matches_complete():
    batch = torch.tensor([0, 0, 1])
    ref = CandidateIncidence.complete(batch, 2, 2)
    perm = torch.randperm(ref.nnz)
    built = CandidateIncidence.build(ref.index[:, perm], 3, 4)
    assert torch.equal(built.index, ref.index)
    assert torch.equal(built.slot_ptr, ref.slot_ptr)


def test_pair_mlp_matches_dense_expression_and_gradcheck():
    inc, r = _setup()
    a, c, u = r(5, 4), r(6, 4), torch.rand(inc.nnz, dtype=torch.double)
    u.requires_grad_()
    wu, wo, bo = r(4), r(4), r(1)
    ref = torch.relu(a[inc.node] + c[inc.slot] + u[:, None] * wu) @ wo + bo
    out = pair_mlp(a, c, u, wu, wo, bo, inc.index, chunk_elements=8)
    assert torch.allclose(out, ref)
    assert torch.autograd.gradcheck(
        lambda *t: pair_mlp(*t, inc.index, chunk_elements=8),
        (a, c, u, wu, wo, bo))


def test_default_chunk_elements_follows_the_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_chunk_elements() == DEFAULT_CHUNK_ELEMENTS == 1 << 17
        torch.set_num_threads(2)
        assert default_chunk_elements() == 1 << 19
    finally:
        torch.set_num_threads(threads)


def test_refiner_default_chunks_give_the_explicit_chunks_result():
    # chunk_elements=None resolves per call; the logits equal those of an
    # explicit size, and a module built with None keeps None
    from torch_geometric_hyper.nn import HypergraphRefiner
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.double)
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    model = HypergraphRefiner(3, 8, 4, 2).double()
    steps = [s for s in model.modules() if hasattr(s, 'chunk_elements')]
    assert steps and all(s.chunk_elements is None for s in steps)
    threads = torch.get_num_threads()
    try:
        outs = []
        for n, chunk in ((1, None), (2, None), (1, 8), (1, 1 << 19)):
            torch.set_num_threads(n)
            for step in steps:
                step.chunk_elements = chunk
            gen = torch.Generator().manual_seed(1)
            outs.append(model(x, batch, generator=gen).incidence_logit)
    finally:
        torch.set_num_threads(threads)
    for out in outs[1:]:
        assert torch.allclose(out, outs[0], atol=1e-12)


def _check_dense_kernel(kernel, inc, N, M, gen, device, chunk_elements):
    # pair_mlp given the CandidateIncidence runs ``kernel``, given its bare
    # index the per-pair kernel: the same logits and gradients; gradcheck
    inputs = [torch.randn(*s, generator=gen, dtype=torch.double).to(device)
              for s in ((N, 5), (M, 5), (inc.nnz, ), (5, ), (5, ), (1, ))]
    for t in inputs:
        t.requires_grad_()
    results = []
    for index in (inc.index, inc):
        calls = []
        real = kernel.apply
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kernel, 'apply',
                       lambda *x: calls.append(1) or real(*x))
            out = pair_mlp(*inputs, index, chunk_elements=chunk_elements)
        assert len(calls) == (index is inc)
        grads = torch.autograd.grad((out * out.detach().cos()).sum(), inputs)
        results.append((out, grads))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
    for g0, g1 in zip(results[0][1], results[1][1]):
        assert torch.allclose(g0, g1, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda *t: pair_mlp(*t, inc, chunk_elements=8), inputs)


@pytest.mark.parametrize('device', DEVICES)
def test_pair_mlp_complete_kernel_equals_the_pair_kernel(device):
    # the complete layout (CandidateIncidence.complete) runs a dense
    # kernel: the same logits and gradients as the per-pair kernel, for
    # graphs of different sizes and chunks that split graphs
    from torch_geometric_hyper.nn import functional as F
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2], device=device)
    inc = CandidateIncidence.complete(batch, 3, 4)
    assert inc.slots_per_node == 4
    assert CandidateIncidence.build(inc.index, 9, 12).slots_per_node == 0
    gen = torch.Generator().manual_seed(1)
    _check_dense_kernel(F._CompletePairMLP, inc, 9, 12, gen, device,
                        chunk_elements=2 * 4 * 5)


def test_complete_layout_knows_graphs_of_one_size():
    # nodes_per_graph is n for B graphs of n nodes each, stored graph
    # after graph, and 0 for sizes that differ or an unsorted batch
    def size(batch, num_graphs):
        return CandidateIncidence.complete(torch.tensor(batch), num_graphs,
                                           2).nodes_per_graph
    assert size([0, 0, 0, 1, 1, 1], 2) == 3
    assert size([0, 0], 1) == 2
    assert size([0, 0, 0, 1, 1, 2], 3) == 0
    assert size([0, 1, 0, 1], 2) == 0
    assert size([0, 0, 1, 1], 3) == 0  # an empty third graph
    assert CandidateIncidence.build(
        CandidateIncidence.complete(torch.tensor([0, 1]), 2, 2).index, 2,
        4).nodes_per_graph == 0


@pytest.mark.parametrize('chunk_elements', [3 * 4 * 5, 2 * 3 * 4 * 5,
                                            4 * 5, 2 * 4 * 5, 5 * 4 * 5])
def test_pair_mlp_kernel_for_graphs_of_one_size(chunk_elements):
    # graphs of n = 3 nodes each broadcast the slot terms instead of
    # gathering them: the same logits and gradients as the per-pair
    # kernel, with chunks of one graph, of two, of one node (a piece of a
    # graph), of two nodes (half a graph: a whole one) and of five nodes
    from torch_geometric_hyper.nn import functional as F
    inc = CandidateIncidence.complete(torch.tensor([0] * 3 + [1] * 3 +
                                                   [2] * 3), 3, 4)
    assert inc.slots_per_node == 4 and inc.nodes_per_graph == 3
    seen = []
    real = F._uniform_hidden
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, '_uniform_hidden',
                   lambda *x: seen.append(x[-5:-1]) or real(*x))
        gen = torch.Generator().manual_seed(2)
        _check_dense_kernel(F._CompletePairMLP, inc, 9, 12, gen, 'cpu',
                            chunk_elements=chunk_elements)
    # the chunks asked for (whole graphs from half a graph up), and
    # one-node pieces from gradcheck's size 8
    rows = chunk_elements // 20
    size = max(1, rows // 3) * 3 if 2 * rows >= 3 else rows
    lengths = {e - s for s, e, _, _ in seen if e < 9}
    assert lengths == {size, 1}
    assert all(g1 - g0 == max(1, (e - s) // 3) and s // 3 == g0
               for s, e, g0, g1 in seen)


@pytest.mark.parametrize('device', DEVICES)
def test_pair_mlp_slot_kernel_equals_the_pair_kernel(device):
    # every slot holding K = 3 pairs runs the slot-major dense kernel: the
    # same logits and gradients as the per-pair kernel (chunks that split
    # the slots), and a layout that is not regular keeps the pair kernel
    from torch_geometric_hyper.nn import functional as F
    from torch_geometric_hyper.nn.candidates import SparseCandidates
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(17, 3, generator=gen, dtype=torch.double)
    batch = torch.tensor([0] * 5 + [1] * 4 + [2] * 8)
    search = SparseCandidates(x, batch, 3, 4, 3)
    inc = search.initial(x, torch.randn(12, 3, generator=gen))
    assert inc.nodes_per_slot == 3 and inc.nnz == 12 * 3
    assert CandidateIncidence.build(inc.index, 17, 12).nodes_per_slot == 0
    inc = inc._replace(**{k: getattr(inc, k).to(device) for k in
                          ('index', 'node_ptr', 'slot_perm', 'slot_ptr')})
    _check_dense_kernel(F._SlotPairMLP, inc, 17, 12, gen, device,
                        chunk_elements=2 * 3 * 5)
    # a graph smaller than K: slots of different sizes, no slot kernel
    small = SparseCandidates(x, batch, 3, 4, 6)
    assert small.full == 0
    assert small.initial(x, torch.randn(12, 3)).nodes_per_slot == 0


def test_graphs_of_one_size_take_batched_dense_products():
    # the complete layout of 3 graphs of 4 nodes: incidence_matmul runs
    # batched dense matmuls and gate_pairs broadcasts, with the values and
    # gradients of the sparse kernels and the gathered gate
    from torch_geometric_hyper.nn import functional as F
    B, n, m, d = 3, 4, 5, 6
    inc = CandidateIncidence.complete(torch.arange(B).repeat_interleave(n),
                                      B, m)
    assert inc.nodes_per_graph == n
    plain = inc._replace(nodes_per_graph=0)
    gen = torch.Generator().manual_seed(4)

    def r(*s):
        return torch.randn(*s, generator=gen,
                           dtype=torch.double).requires_grad_()

    v, xn, xs, e = r(inc.nnz), r(B * n, d), r(B * m, d), r(B * m)
    _assert_block_products(inc, plain, v, xn, xs, gen)
    gated = F.gate_pairs(inc, v, e)
    assert torch.allclose(gated, v * e[inc.slot], atol=1e-15)
    assert torch.allclose(F.gate_pairs(plain, v, e), gated)
    assert torch.autograd.gradcheck(
        lambda v, e: F.gate_pairs(inc, v, e), (v, e))


def _assert_block_products(fast, plain, v, xn, xs, gen):
    # incidence_matmul on ``fast`` runs batched dense matmuls and gives the
    # sparse kernels' (``plain``) products and gradients, both directions
    from torch_geometric_hyper.nn import functional as F
    calls = []
    real = F._block_matmul
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, '_block_matmul', lambda *a: calls.append(1) or real(*a))
        for x, to_slots in ((xn, True), (xs, False)):
            out = incidence_matmul(fast, v, x, to_slots)
            ref = incidence_matmul(plain, v, x, to_slots)
            assert torch.allclose(out, ref, atol=1e-12)
            w = torch.randn(out.shape, generator=gen, dtype=torch.double)
            grads = torch.autograd.grad((out * w).sum(), (v, x))
            refs = torch.autograd.grad((ref * w).sum(), (v, x))
            for g, h in zip(grads, refs):
                assert torch.allclose(g, h, atol=1e-12)
            assert torch.autograd.gradcheck(
                lambda v, x: incidence_matmul(fast, v, x, to_slots), (v, x))
    assert len(calls) > 2


def test_incidence_matmul_both_directions_and_gradcheck():
    inc, r = _setup()
    v = torch.rand(inc.nnz, dtype=torch.double, requires_grad=True)
    xn, xs = r(5, 4), r(6, 4)
    dense = torch.zeros(6, 5, dtype=torch.double)
    dense[inc.slot, inc.node] = v.detach()
    assert torch.allclose(incidence_matmul(inc, v, xn, True), dense @ xn)
    assert torch.allclose(incidence_matmul(inc, v, xs, False),
                          dense.t() @ xs)
    for x, to_slots in ((xn, True), (xs, False)):
        assert torch.autograd.gradcheck(
            lambda v, x: incidence_matmul(inc, v, x, to_slots, 8), (v, x))


def test_candidate_blocks_give_the_sparse_products():
    # K of n candidates per slot in graphs of one size: with_blocks marks
    # them for batched dense products (values scattered into the [n, m]
    # blocks), which give the sparse kernels' products and gradients
    B, n, m, K, d = 3, 6, 4, 3, 5
    gen = torch.Generator().manual_seed(7)
    nodes = torch.rand(B * m, n, generator=gen).argsort(1)[:, :K]
    nodes = nodes + (torch.arange(B * m) // m * n)[:, None]
    slots = torch.arange(B * m).repeat_interleave(K)
    inc = CandidateIncidence.build(torch.stack([nodes.reshape(-1), slots]),
                                   B * n, B * m)
    blk = inc.with_blocks(B, n, m)  # fill n / K = 2
    assert blk.block_shape == (B, n, m)
    # each pair's entry in the blocks, by (graph, local node, local slot)
    g = inc.node // n
    expect = (g * n + inc.node % n) * m + inc.slot % m
    assert torch.equal(blk.block_index, expect)

    def r(*s):
        return torch.randn(*s, generator=gen,
                           dtype=torch.double).requires_grad_()

    v, xn, xs = r(inc.nnz), r(B * n, d), r(B * m, d)
    _assert_block_products(blk, inc, v, xn, xs, gen)


def test_with_blocks_only_where_blocks_fit():
    B, n, m = 2, 6, 4
    # one candidate per slot: blocks of 2 * 6 * 4 = 48 entries, 8 pairs
    slots = torch.arange(B * m)
    nodes = slots // m * n
    inc = CandidateIncidence.build(torch.stack([nodes, slots]), B * n, B * m)
    assert inc.block_index is None and inc.block_shape is None
    assert inc.with_blocks(B, n, m).block_shape == (B, n, m)  # fill 6 <= 8
    assert inc.with_blocks(B, n, m, max_fill=4) is inc  # fill 6 > 4
    # sizes that do not tile the batch, and no pairs, keep the sparse layout
    assert inc.with_blocks(B, n - 1, m) is inc
    assert inc.with_blocks(B, n, m + 1) is inc
    assert inc.with_blocks(0, n, m) is inc
    empty = CandidateIncidence.build(torch.zeros(2, 0, dtype=torch.long),
                                     B * n, B * m)
    assert empty.with_blocks(B, n, m) is empty


def test_count_values_is_bincount_without_a_sync():
    from torch_geometric_hyper.nn.functional import count_values
    from torch_geometric_hyper.testing import HostSyncCounter
    index = torch.tensor([3, 0, 3, 1, 3])
    expected = torch.tensor([1, 1, 0, 3, 0, 0])
    assert torch.equal(count_values(index, 6), expected)  # host: bincount
    with HostSyncCounter() as syncs:  # the accelerator's path
        out = count_values(index, 6)
    assert syncs.count == 0 and torch.equal(out, expected)
    with HostSyncCounter() as syncs:
        torch.bincount(index, minlength=6)
    assert syncs.by_kind == {'bincount': 1}
    assert count_values(index[:0], 2).tolist() == [0, 0]


def test_default_chunks_follow_the_device(monkeypatch):
    # a CPU working set on the CPU; on an accelerator chunks large enough
    # that a batch is a few kernels, not thousands of small launches
    from torch_geometric_hyper.nn import functional as F
    assert F.default_chunk_elements() == F.default_chunk_elements('cpu')
    assert F.default_chunk_elements('cuda') == \
        F.default_chunk_elements(torch.device('cuda', 1)) == \
        F.ACCELERATOR_CHUNK_ELEMENTS == 2 ** 26
    seen = []
    real = F._chunks
    monkeypatch.setattr(F, '_chunks',
                        lambda n, w, c: seen.append(c) or real(n, w, c))
    gen = torch.Generator().manual_seed(0)
    a, c = torch.randn(5, 4, generator=gen), torch.randn(3, 4, generator=gen)
    index = torch.tensor([[0, 1, 4, 2], [0, 2, 1, 1]])
    pair_mlp(a, c, torch.randn(4, generator=gen), torch.randn(4),
             torch.randn(4), torch.zeros(1), index)
    assert seen == [F.default_chunk_elements()]


def _linear_pair_cases():
    # (name, candidate incidence, N, M): the four pair kernels
    from torch_geometric_hyper.nn.candidates import SparseCandidates
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(17, 3, generator=gen, dtype=torch.double)
    batch = torch.tensor([0] * 5 + [1] * 4 + [2] * 8)
    slots = SparseCandidates(x, batch, 3, 4, 3).initial(
        x, torch.randn(12, 3, generator=gen))
    assert slots.nodes_per_slot == 3
    mixed = CandidateIncidence.complete(batch, 3, 4)
    uniform = CandidateIncidence.complete(
        torch.arange(3).repeat_interleave(4), 3, 4)
    return [('complete, one size', uniform, 12, 12),
            ('complete, mixed sizes', mixed, 17, 12),
            ('slot-major K', slots, 17, 12),
            ('per pair', mixed.index, 17, 12)]


@pytest.mark.parametrize('case', range(4))
@pytest.mark.parametrize('slot_bias', [False, True])
def test_linear_pair_mlp_is_pair_mlp_of_the_projections(case, slot_bias):
    # the same logits and gradients as pair_mlp(lin_a(x), lin_c(y), ...)
    # with every kernel, the projections not kept for backward; gradcheck
    from torch.nn import Linear

    from torch_geometric_hyper.nn import linear_pair_mlp
    name, inc, N, M = _linear_pair_cases()[case]
    nnz = inc.nnz if isinstance(inc, CandidateIncidence) else inc.size(1)
    gen = torch.Generator().manual_seed(case)
    lin_a = Linear(4, 5).double()
    lin_c = Linear(6, 5, bias=slot_bias).double()
    x, y, u, w_u, w_out, b_out = (
        torch.randn(*s, generator=gen, dtype=torch.double).requires_grad_()
        for s in ((N, 4), (M, 6), (nnz, ), (5, ), (5, ), (1, )))
    params = [*lin_a.parameters(), *lin_c.parameters()]
    inputs = [x, y, u, w_u, w_out, b_out] + params
    held = {t.untyped_storage().data_ptr() for t in inputs}
    stored = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in held:
            stored[t.untyped_storage().data_ptr()] = tuple(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = linear_pair_mlp(x, y, lin_a, lin_c, u, w_u, w_out, b_out, inc,
                              chunk_elements=2 * 5)
    assert (N, 5) not in stored.values() and (M, 5) not in stored.values()
    ref = pair_mlp(lin_a(x), lin_c(y), u, w_u, w_out, b_out, inc,
                   chunk_elements=2 * 5)
    torch.testing.assert_close(out, ref)
    weight = ref.detach().cos()
    got = torch.autograd.grad((out * weight).sum(), inputs)
    want = torch.autograd.grad((ref * weight).sum(), inputs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    with torch.no_grad():  # the composition, the same values
        torch.testing.assert_close(linear_pair_mlp(
            x, y, lin_a, lin_c, u, w_u, w_out, b_out, inc), ref)
    if case == 2:
        assert torch.autograd.gradcheck(
            lambda x, y, u: linear_pair_mlp(x, y, lin_a, lin_c, u, w_u,
                                            w_out, b_out, inc,
                                            chunk_elements=8),
            (x, y, u))
