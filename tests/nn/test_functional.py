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
