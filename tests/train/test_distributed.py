"""Data-parallel helpers."""
from torch_geometric_hyper.train import shard_batch


def test_shard_batch_balances_and_covers():
    sizes = [30, 8, 100, 51, 20, 77, 9]
    shards = shard_batch(list(range(7)), sizes, 2)
    assert sorted(shards[0] + shards[1]) == list(range(7))
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    load = [sum(sizes[i] for i in s) for s in shards]
    assert abs(load[0] - load[1]) <= max(sizes) // 2
    assert shard_batch([5], [3], 3) == [[5], [], []]
