import torch

from torch_geometric_hyper.nn.functional import (
    CandidateIncidence,
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
