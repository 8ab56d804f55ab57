from torch_geometric_hyper.nn.deepsets import DeepSet, DeepSetLayer
from torch_geometric_hyper.nn.functional import (
    CandidateIncidence,
    incidence_matmul,
    pair_mlp,
)
from torch_geometric_hyper.nn.prediction import (
    HypergraphPrediction,
    RefinerState,
)
from torch_geometric_hyper.nn.refiner import (
    HypergraphRefiner,
    RefinementStep,
    StackedHypergraphRefiner,
)
from torch_geometric_hyper.nn.loss import MatchedIncidenceLoss
from torch_geometric_hyper.nn.partition_loss import (
    PartitionLoss,
    SoftF1Loss,
    soft_pair_f1,
)

__all__ = [
    'HypergraphRefiner',
    'StackedHypergraphRefiner',
    'RefinementStep',
    'HypergraphPrediction',
    'RefinerState',
    'MatchedIncidenceLoss',
    'PartitionLoss',
    'SoftF1Loss',
    'soft_pair_f1',
    'DeepSet',
    'DeepSetLayer',
    'CandidateIncidence',
    'pair_mlp',
    'incidence_matmul',
]
