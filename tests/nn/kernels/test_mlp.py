import pytest
import torch
from torch.nn import Linear

from tests.conftest import DEVICES
from tests.nn.kernels.helpers import complete_setup
from torch_geometric_hyper.nn.candidates import SparseCandidates
from torch_geometric_hyper.nn.kernels import (
    CandidateIncidence,
    linear_pair_mlp,
    pair_mlp,
)
from torch_geometric_hyper.nn.kernels import mlp as P


def test_pair_mlp_matches_dense_expression_and_gradcheck():
    inc, r = complete_setup()
    a, c, u = r(5, 4), r(6, 4), torch.rand(inc.nnz, dtype=torch.double)
    u.requires_grad_()
    wu, wo, bo = r(4), r(4), r(1)
    ref = torch.relu(a[inc.node] + c[inc.slot] + u[:, None] * wu) @ wo + bo
    out = pair_mlp(a, c, u, wu, wo, bo, inc.index, chunk_elements=8)
    assert torch.allclose(out, ref)
    assert torch.autograd.gradcheck(
        lambda *t: pair_mlp(*t, inc.index, chunk_elements=8),
        (a, c, u, wu, wo, bo))


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
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2], device=device)
    inc = CandidateIncidence.complete(batch, 3, 4)
    assert inc.slots_per_node == 4
    assert CandidateIncidence.build(inc.index, 9, 12).slots_per_node == 0
    gen = torch.Generator().manual_seed(1)
    _check_dense_kernel(P._CompletePairMLP, inc, 9, 12, gen, device,
                        chunk_elements=2 * 4 * 5)


@pytest.mark.parametrize('chunk_elements', [3 * 4 * 5, 2 * 3 * 4 * 5,
                                            4 * 5, 2 * 4 * 5, 5 * 4 * 5])
def test_pair_mlp_kernel_for_graphs_of_one_size(chunk_elements):
    # graphs of n = 3 nodes each broadcast the slot terms instead of
    # gathering them: the same logits and gradients as the per-pair
    # kernel, with chunks of one graph, of two, of one node (a piece of a
    # graph), of two nodes (half a graph: a whole one) and of five nodes
    inc = CandidateIncidence.complete(torch.tensor([0] * 3 + [1] * 3 +
                                                   [2] * 3), 3, 4)
    assert inc.slots_per_node == 4 and inc.nodes_per_graph == 3
    seen = []
    real = P._uniform_hidden
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(P, '_uniform_hidden',
                   lambda *x: seen.append(x[-5:-1]) or real(*x))
        gen = torch.Generator().manual_seed(2)
        _check_dense_kernel(P._CompletePairMLP, inc, 9, 12, gen, 'cpu',
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
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(17, 3, generator=gen, dtype=torch.double)
    batch = torch.tensor([0] * 5 + [1] * 4 + [2] * 8)
    search = SparseCandidates(x, batch, 3, 4, 3)
    inc = search.initial(x, torch.randn(12, 3, generator=gen))
    assert inc.nodes_per_slot == 3 and inc.nnz == 12 * 3
    assert CandidateIncidence.build(inc.index, 17, 12).nodes_per_slot == 0
    inc = inc._replace(**{k: getattr(inc, k).to(device) for k in
                          ('index', 'node_ptr', 'slot_perm', 'slot_ptr')})
    _check_dense_kernel(P._SlotPairMLP, inc, 17, 12, gen, device,
                        chunk_elements=2 * 3 * 5)
    # a graph smaller than K: slots of different sizes, no slot kernel
    small = SparseCandidates(x, batch, 3, 4, 6)
    assert small.full == 0
    assert small.initial(x, torch.randn(12, 3)).nodes_per_slot == 0


def _linear_pair_cases():
    # (name, candidate incidence, N, M): the four pair kernels
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
