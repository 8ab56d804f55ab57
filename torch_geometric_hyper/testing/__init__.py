from torch_geometric_hyper.testing.equivariance import (
    assert_node_permutation_equivariant,
    assert_slot_permutation_equivariant,
    random_node_permutation,
)

__all__ = [
    'assert_node_permutation_equivariant',
    'assert_slot_permutation_equivariant',
    'random_node_permutation',
]
