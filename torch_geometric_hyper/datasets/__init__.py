from torch_geometric_hyper.datasets.set_to_hypergraph import SetToHypergraph
from torch_geometric_hyper.datasets.convex_hull import ConvexHull
from torch_geometric_hyper.datasets.delaunay import (
    Delaunay,
    delaunay_edge_index,
)
from torch_geometric_hyper.datasets.own_sets import (
    HypergraphSets,
    read_sets_csv,
    read_sets_npz,
    write_sets_npz,
)
from torch_geometric_hyper.datasets.particle_partitioning import (
    FLAVOURS,
    ParticlePartitioning,
    link_raw_files,
)

__all__ = ['SetToHypergraph', 'ConvexHull', 'Delaunay',
           'delaunay_edge_index', 'ParticlePartitioning', 'link_raw_files', 'HypergraphSets',
           'read_sets_npz', 'write_sets_npz', 'read_sets_csv']
