import pytest
import torch

from tests.nn.kernels.helpers import complete_setup
from torch_geometric_hyper.nn.kernels import (
    CandidateIncidence,
    gate_pairs,
    incidence_matmul,
)
from torch_geometric_hyper.nn.kernels import sparse as S


def test_graphs_of_one_size_take_batched_dense_products():
    # the complete layout of 3 graphs of 4 nodes: incidence_matmul runs
    # batched dense matmuls and gate_pairs broadcasts, with the values and
    # gradients of the sparse kernels and the gathered gate
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
    gated = gate_pairs(inc, v, e)
    assert torch.allclose(gated, v * e[inc.slot], atol=1e-15)
    assert torch.allclose(gate_pairs(plain, v, e), gated)
    assert torch.autograd.gradcheck(
        lambda v, e: gate_pairs(inc, v, e), (v, e))


def _assert_block_products(fast, plain, v, xn, xs, gen):
    # incidence_matmul on ``fast`` runs batched dense matmuls and gives the
    # sparse kernels' (``plain``) products and gradients, both directions
    calls = []
    real = S._block_matmul
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, '_block_matmul', lambda *a: calls.append(1) or real(*a))
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
    inc, r = complete_setup()
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
