from torch_geometric_hyper.metrics.hyperedges import (
    evaluate_hyperedges,
    hyperedge_f1,
    hyperedge_sets,
)
from torch_geometric_hyper.metrics.partitions import (
    FLAVOUR_NAMES,
    PartitionMetrics,
    adjusted_rand_index,
    decode_partition,
    pair_counts,
    partition_scores,
    target_partition,
)

__all__ = ['hyperedge_f1', 'hyperedge_sets', 'evaluate_hyperedges',
           'decode_partition', 'target_partition', 'pair_counts',
           'partition_scores', 'adjusted_rand_index', 'PartitionMetrics',
           'FLAVOUR_NAMES']
