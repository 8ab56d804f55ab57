from torch_geometric_hyper.metrics.hyperedges import (
    evaluate_hyperedges,
    hyperedge_f1,
    hyperedge_sets,
)

__all__ = ['hyperedge_f1', 'hyperedge_sets', 'evaluate_hyperedges']
