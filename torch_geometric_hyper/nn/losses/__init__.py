r"""Training losses: the Hungarian-matched incidence loss of the refiner
(:class:`MatchedIncidenceLoss`), its partition variant with a soft pairwise
F1 (:class:`PartitionLoss`), and the binary cross-entropy of a predicted
adjacency (:class:`AdjacencyBCELoss`; :class:`SameVertexBCELoss` against a
partition's same-part pairs). The sums over the members of target
hyperedges that the matched loss and the coverage metric share are in
:mod:`torch_geometric_hyper.nn.losses.membership`."""
from torch_geometric_hyper.nn.losses.adjacency import (
    AdjacencyBCELoss,
    SameVertexBCELoss,
)
from torch_geometric_hyper.nn.losses.matched import MatchedIncidenceLoss
from torch_geometric_hyper.nn.losses.partition import (
    PartitionLoss,
    SoftF1Loss,
    soft_pair_f1,
)

__all__ = [
    'MatchedIncidenceLoss',
    'AdjacencyBCELoss',
    'SameVertexBCELoss',
    'PartitionLoss',
    'SoftF1Loss',
    'soft_pair_f1',
]
