from torch_geometric_hyper.data.hypergraph_data import HypergraphData

__all__ = ['HypergraphData']
