r"""Models, layers and losses for set-to-(hyper)graph prediction.

The memory-lean kernels behind the models are in
:mod:`torch_geometric_hyper.nn.kernels`."""
from torch_geometric_hyper.debug import set_input_validation
from torch_geometric_hyper.nn.config import (
    Configurable,
    load_model,
    save_model,
)
from torch_geometric_hyper.nn.deepsets import (
    DeepSet,
    DeepSetLayer,
    norm_deepset_layer,
)
from torch_geometric_hyper.nn import kernels
from torch_geometric_hyper.nn.kernels import (  # noqa: F401 (importable)
    CandidateIncidence,
    count_values,
    default_chunk_elements,
    incidence_matmul,
    linear_pair_mlp,
    pair_mlp,
)
from torch_geometric_hyper.nn.slot_prior import SlotPrior
from torch_geometric_hyper.nn.prediction import (
    HypergraphPrediction,
    RefinerState,
)
from torch_geometric_hyper.nn.refiner import (
    HypergraphRefiner,
    RefinementStep,
    StackedHypergraphRefiner,
)
from torch_geometric_hyper.nn.pairs import (
    canonical_pairs,
    closing_pairs,
    complete_pairs,
    knn_pairs,
    pair_labels,
)
from torch_geometric_hyper.nn.graph_refiner import (
    AdjacencyPrediction,
    GraphRefinementStep,
    GraphRefiner,
    GraphRefinerState,
)
from torch_geometric_hyper.nn import losses
from torch_geometric_hyper.nn.losses import (
    AdjacencyBCELoss,
    MatchedIncidenceLoss,
    PartitionLoss,
    SameVertexBCELoss,
    SoftF1Loss,
    soft_pair_f1,
)
from torch_geometric_hyper.nn import baselines
from torch_geometric_hyper.nn.baselines import *  # noqa: F401,F403

__all__ = [
    'HypergraphRefiner',
    'StackedHypergraphRefiner',
    'RefinementStep',
    'HypergraphPrediction',
    'RefinerState',
    'SlotPrior',
    'MatchedIncidenceLoss',
    'GraphRefiner',
    'GraphRefinementStep',
    'GraphRefinerState',
    'AdjacencyPrediction',
    'AdjacencyBCELoss',
    'SameVertexBCELoss',
    'complete_pairs',
    'knn_pairs',
    'closing_pairs',
    'canonical_pairs',
    'pair_labels',
    'PartitionLoss',
    'SoftF1Loss',
    'soft_pair_f1',
    'DeepSet',
    'DeepSetLayer',
    'norm_deepset_layer',
    'Configurable',
    'save_model',
    'load_model',
    'set_input_validation',
] + baselines.__all__
