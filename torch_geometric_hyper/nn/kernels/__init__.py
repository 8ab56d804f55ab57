r"""Memory-lean kernels for message passing over candidate incidence pairs.

A candidate incidence is a bipartite set of ``nnz`` pairs ``(node i, slot j)``
stored as ``index [2, nnz]`` (row 0 node, row 1 slot, PyG's
``hyperedge_index`` convention), held with both CSR layouts by
:class:`CandidateIncidence`. Every per-pair quantity the refiner needs is an
:math:`O(\text{nnz}\cdot d)` computation; materialising it costs as much
memory as the whole model. The kernels compute those quantities in chunks
(:func:`default_chunk_elements`) and recompute what their backward pass
needs, so a refinement step keeps only :math:`O(\text{nnz} + (N + M)\,d)`
floats alive for autograd:

* :func:`pair_mlp` and :func:`linear_pair_mlp` — the incidence MLP
  :math:`z_{ji} = w_2^\top \mathrm{ReLU}(a_i + c_j + u_{ji} w_u) + b_2`
  (:mod:`~torch_geometric_hyper.nn.kernels.mlp`);
* :func:`incidence_matmul` — the weighted aggregations
  :math:`\tilde I V` and :math:`\tilde I^\top E` as sparse CSR products
  with a sampled dense-dense product (SDDMM) for the gradient of the
  weights, batched dense products when every graph has the same size
  (:mod:`~torch_geometric_hyper.nn.kernels.sparse`);
* :func:`count_values` — ``bincount`` without a host synchronisation
  (:mod:`~torch_geometric_hyper.nn.kernels.incidence`).

The models call these kernels; a user composes the models and layers of
:mod:`torch_geometric_hyper.nn`. The working-set constants
``DEFAULT_CHUNK_ELEMENTS`` and ``ACCELERATOR_CHUNK_ELEMENTS`` are importable
from here too (:func:`default_chunk_elements` picks between them).
"""
from torch_geometric_hyper.nn.kernels.chunks import (
    ACCELERATOR_CHUNK_ELEMENTS,
    DEFAULT_CHUNK_ELEMENTS,
    default_chunk_elements,
)
from torch_geometric_hyper.nn.kernels.incidence import (
    CandidateIncidence,
    count_values,
    stable_argsort,
)
from torch_geometric_hyper.nn.kernels.mlp import (
    linear_pair_mlp,
    pair_mlp,
)
from torch_geometric_hyper.nn.kernels.sparse import (
    gate_pairs,
    incidence_matmul,
)

__all__ = [
    'CandidateIncidence',
    'pair_mlp',
    'linear_pair_mlp',
    'incidence_matmul',
    'gate_pairs',
    'count_values',
    'stable_argsort',
    'default_chunk_elements',
]
