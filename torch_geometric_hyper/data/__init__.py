from torch_geometric_hyper.data.hypergraph_data import (
    HypergraphData,
    PyGHypergraphData,
)
from torch_geometric_hyper.data.unique import unique_hyperedges

__all__ = ['HypergraphData', 'PyGHypergraphData', 'unique_hyperedges']
