r"""One-shot baselines for set-to-(hyper)graph prediction: Set2Graph, the
Set Transformer and Slot Attention, adapted to the refiner's outputs."""
from torch_geometric_hyper.nn.baselines.heads import HyperedgeHead
from torch_geometric_hyper.nn.baselines.set2graph import (
    Set2Graph,
    TupleBCELoss,
    TuplePrediction,
    check_tuple_memory,
    tuple_labels,
    tuple_occurrences,
    tuple_tensor_bytes,
)
from torch_geometric_hyper.nn.baselines.set_transformer import (
    MAB,
    PMA,
    SAB,
    SetTransformer,
)
from torch_geometric_hyper.nn.baselines.slot_attention import SlotAttention

__all__ = [
    'Set2Graph',
    'SetTransformer',
    'SlotAttention',
    'MAB',
    'SAB',
    'PMA',
    'HyperedgeHead',
    'TuplePrediction',
    'TupleBCELoss',
    'tuple_labels',
    'tuple_occurrences',
    'tuple_tensor_bytes',
    'check_tuple_memory',
]
