import pytest
import torch

from torch_geometric_hyper.nn.kernels import (
    CandidateIncidence,
    count_values,
    stable_argsort,
)
from torch_geometric_hyper.testing import HostSyncCounter


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


@pytest.mark.parametrize('bound', [50, 2 ** 16, 2 ** 16 + 1, 10 ** 9])
def test_stable_argsort_is_torchs_stable_argsort(bound):
    gen = torch.Generator().manual_seed(1)
    keys = torch.randint(0, bound, (3000, ), generator=gen)
    keys[::7] = keys[0]  # ties keep their order
    assert torch.equal(stable_argsort(keys, bound),
                       torch.argsort(keys, stable=True))
    assert stable_argsort(keys[:0], bound).numel() == 0
