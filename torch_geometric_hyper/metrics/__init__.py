from torch_geometric_hyper.metrics.hyperedges import (
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

__all__ = ['hyperedge_f1', 'hyperedge_sets', 'evaluate_hyperedges',
           'adjacency_confusion', 'adjacency_scores', 'adjacency_metrics',
           'dense_adjacency_metrics', 'candidate_edge_f1',
           'evaluate_adjacency']
