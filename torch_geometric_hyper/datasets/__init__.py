from torch_geometric_hyper.datasets.set_to_hypergraph import SetToHypergraph
from torch_geometric_hyper.datasets.convex_hull import ConvexHull
from torch_geometric_hyper.datasets.delaunay import (
    Delaunay,
    delaunay_edge_index,
)

__all__ = ['SetToHypergraph', 'ConvexHull', 'Delaunay',
           'delaunay_edge_index']
