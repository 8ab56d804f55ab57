from torch_geometric_hyper.testing.equivariance import (
    assert_node_permutation_equivariant,
    assert_slot_permutation_equivariant,
    random_node_permutation,
)
from torch_geometric_hyper.testing.host_sync import HostSyncCounter
from torch_geometric_hyper.testing.saved import saved_tensor_bytes

__all__ = [
    'HostSyncCounter',
    'assert_node_permutation_equivariant',
    'assert_slot_permutation_equivariant',
    'random_node_permutation',
    'saved_tensor_bytes',
]
