"""Checks every slot model (the refiner and the one-shot baselines) must
pass; each test file builds its model and calls them."""
import torch
from torch_geometric.data import Batch, Data

from tests.conftest import make_batch
from torch_geometric_hyper.testing import (
    assert_node_permutation_equivariant,
    assert_slot_permutation_equivariant,
)


def check_shapes_and_repr(model, expected_repr, max_edges=5):
    """Logit shapes for graphs of 4 and 6 nodes; the dense layout; repr."""
    x, batch = make_batch([4, 6])
    pred = model(x.double(), batch, 2)
    assert pred.incidence_logit.shape == (10 * max_edges, )
    assert pred.existence_logit.shape == (2 * max_edges, )
    inc, mask, ex = pred.to_dense()
    assert inc.shape == (2, max_edges, 6) and mask.sum() == 10
    assert ex.shape == (2, max_edges)
    assert repr(model) == expected_repr
    return pred


def check_node_permutation_equivariance(model):
    x, batch = make_batch([5, 7, 3])
    assert_node_permutation_equivariant(model, x.double(), batch, 3,
                                        atol=1e-10)


def check_slot_permutation_equivariance(model):
    x, batch = make_batch([5, 7])
    assert_slot_permutation_equivariant(model, x.double(), batch, 2,
                                        atol=1e-10)


def check_graph_alone_equals_graph_in_mixed_batch(model, max_edges=5,
                                                  hidden_channels=16):
    """Each graph of a mixed-size batch gets exactly its result alone."""
    m = max_edges
    x, batch = make_batch([4, 9, 2])
    x = x.double()
    slots = torch.randn(3 * m, hidden_channels, dtype=torch.double)
    inc_full, _, ex_full = model(x, batch, 3, slots=slots).to_dense()
    for g, (lo, hi) in enumerate([(0, 4), (4, 13), (13, 15)]):
        alone = model(x[lo:hi], None, 1, slots=slots[g * m:(g + 1) * m])
        inc, _, ex = alone.to_dense()
        assert torch.allclose(inc[0], inc_full[g, :, :hi - lo], atol=1e-12)
        assert torch.allclose(ex[0], ex_full[g], atol=1e-12)


def toy_delaunay_batch():
    """Two Delaunay graphs of 5 and 7 random points, batched."""
    from scipy.spatial import Delaunay as ScipyDelaunay

    from torch_geometric_hyper.datasets import delaunay_edge_index
    gen = torch.Generator().manual_seed(1)
    graphs = []
    for n in (5, 7):
        x = torch.rand(n, 2, generator=gen)
        tri = ScipyDelaunay(x.double().numpy()).simplices
        graphs.append(Data(x=x, edge_index=delaunay_edge_index(tri, n)))
    return Batch.from_data_list(graphs)
