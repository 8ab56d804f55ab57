from torch_geometric_hyper.metrics.hyperedges import (
    candidate_coverage,
    evaluate_hyperedges,
    hyperedge_f1,
    hyperedge_sets,
)
from torch_geometric_hyper.metrics.adjacency import (
    adjacency_confusion,
    adjacency_metrics,
    adjacency_scores,
    candidate_edge_f1,
    dense_adjacency_metrics,
    evaluate_adjacency,
)
from torch_geometric_hyper.metrics.partitions import (
    FLAVOUR_NAMES,
    PartitionMetrics,
    partition_baselines,
    adjusted_rand_index,
    decode_partition,
    pair_counts,
    partition_edge_index,
    partition_from_adjacency,
    partition_scores,
    target_partition,
)

__all__ = ['hyperedge_f1', 'hyperedge_sets', 'evaluate_hyperedges',
           'candidate_coverage',
           'adjacency_confusion', 'adjacency_scores', 'adjacency_metrics',
           'dense_adjacency_metrics', 'candidate_edge_f1',
           'evaluate_adjacency', 'decode_partition', 'target_partition',
           'partition_edge_index', 'partition_from_adjacency',
           'pair_counts', 'partition_scores', 'adjusted_rand_index',
           'PartitionMetrics', 'partition_baselines']
