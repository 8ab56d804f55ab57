from torch_geometric_hyper.datasets.set_to_hypergraph import SetToHypergraph
from torch_geometric_hyper.datasets.convex_hull import ConvexHull

__all__ = ['SetToHypergraph', 'ConvexHull']
