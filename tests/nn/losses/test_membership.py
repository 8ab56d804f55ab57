import torch

from torch_geometric_hyper.nn.kernels import CandidateIncidence
from torch_geometric_hyper.nn.losses.membership import (
    members,
    members_dense,
    members_sparse,
    membership_join,
    sparse_members_cheaper,
)


def _pruned(seed=0):
    # two graphs of 4 and 3 nodes, m = 3 slots each, about half the pairs
    # kept; targets {0, 1}, {2, 3} and {4, 5, 6}
    gen = torch.Generator().manual_seed(seed)
    batch = torch.tensor([0] * 4 + [1] * 3)
    full = CandidateIncidence.complete(batch, 2, 3)
    keep = torch.rand(full.nnz, generator=gen) < 0.5
    node, slot = full.index[:, keep]
    delta = torch.randn(node.numel(), generator=gen, dtype=torch.double)
    t_node = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    t_edge = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    return delta, node, slot % 3, 7, t_node, t_edge, 3, 3


def _by_hand(delta, node, local, N, t_node, t_edge, total, m):
    table = torch.full((N, m), -100.0, dtype=delta.dtype)
    table[node, local] = delta
    out = torch.zeros(total, m, dtype=delta.dtype)
    for i, q in zip(t_node.tolist(), t_edge.tolist()):
        out[q] += table[i]
    return out


def test_members_both_ways_equal_the_sum_by_hand():
    for seed in range(3):
        args = _pruned(seed)
        expected = _by_hand(*args)
        torch.testing.assert_close(members_sparse(*args), expected)
        torch.testing.assert_close(members_dense(*args), expected)
        torch.testing.assert_close(members(*args), expected)
        shared = {}
        members_dense(*args, shared=shared)  # kept for the next call
        assert 'flat' in shared
        torch.testing.assert_close(members_dense(*args, shared=shared),
                                   expected)


def test_membership_join_lists_every_candidate_of_a_member():
    delta, node, local, N, t_node, t_edge, total, m = _pruned(1)
    q, s, shifted = membership_join(delta, node, local, N, t_node, t_edge)
    got = sorted(zip(q.tolist(), s.tolist(), shifted.tolist()))
    want = sorted((qq, sl, d + 100.0) for i, qq in zip(t_node.tolist(),
                                                      t_edge.tolist())
                  for nd, sl, d in zip(node.tolist(), local.tolist(),
                                       delta.tolist()) if nd == i)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a[:2] == b[:2] and abs(a[2] - b[2]) < 1e-12


def test_the_automatic_choice_takes_the_join_when_it_touches_fewer():
    assert sparse_members_cheaper(nnz=16_000, num_nodes=1000, m=2000,
                                  nnz_t=6000)
    assert not sparse_members_cheaper(nnz=2_000_000, num_nodes=1000,
                                      m=2000, nnz_t=6000)
    assert not sparse_members_cheaper(nnz=0, num_nodes=0, m=1, nnz_t=0)
