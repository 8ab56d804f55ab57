import math
import time

import pytest
import torch

from tests.conftest import make_batch
from torch_geometric_hyper.metrics import evaluate_hyperedges
from torch_geometric_hyper.nn import (
    AdjacencyBCELoss,
    AdjacencyPrediction,
    Set2Graph,
    TupleBCELoss,
    TuplePrediction,
    check_tuple_memory,
    complete_pairs,
    tuple_labels,
    tuple_occurrences,
    tuple_tensor_bytes,
)
from torch_geometric_hyper.testing.equivariance import (
    random_node_permutation,
)


def as_dict(pred, relabel=None):
    """{sorted member tuple: logit}, node ids mapped through ``relabel``."""
    index = pred.pair_index if isinstance(pred, AdjacencyPrediction) \
        else pred.tuple_index
    if relabel is not None:
        index = relabel[index]
    index = torch.sort(index, dim=0).values
    return {tuple(c.tolist()): float(v)
            for c, v in zip(index.t(), pred.logit.detach())}


def assert_same(a, b, atol=1e-10):
    assert a.keys() == b.keys()
    for key in a:
        assert abs(a[key] - b[key]) <= atol, key


CONFIGS = [dict(k=2), dict(k=2, variant='s2g'), dict(k=3),
           dict(k=3, neighbours=3), dict(k=2, attention=True),
           dict(k=4, neighbours=4, mlp_layers=2)]


def small(**kw):
    return Set2Graph(3, 16, tuple_channels=24, **kw).double()


def test_shapes_k2_are_all_pairs():
    x, batch = make_batch([4, 6])
    pred = small(k=2)(x.double(), batch, 2)
    assert isinstance(pred, AdjacencyPrediction)
    assert torch.equal(pred.pair_index, complete_pairs(batch, 2))
    assert pred.logit.shape == (6 + 15, )
    assert pred.edge_index().size(0) == 2


def test_shapes_k3_full_and_local():
    x, batch = make_batch([5, 7])
    full = small(k=3)(x.double(), batch, 2)
    assert isinstance(full, TuplePrediction)
    assert full.tuple_index.shape == (3, math.comb(5, 3) + math.comb(7, 3))
    assert (full.tuple_index[:-1] < full.tuple_index[1:]).all()
    local = small(k=3, neighbours=2)(x.double(), batch, 2)
    assert set(as_dict(local)) < set(as_dict(full))
    # every node is the centre of C(2, 2) = 1 triple; duplicates merged
    assert local.tuple_index.size(1) <= 12


@pytest.mark.parametrize('kw', CONFIGS, ids=str)
def test_node_permutation_equivariance(kw):
    model = small(**kw)
    x, batch = make_batch([5, 7, 4])
    x = x.double()
    perm = random_node_permutation(batch, torch.Generator().manual_seed(1))
    ref = model(x, batch, 3)
    out = model(x[perm], batch[perm], 3)
    # node p of the permuted input is node perm[p] of the original
    assert_same(as_dict(out, relabel=perm), as_dict(ref))


@pytest.mark.parametrize('kw', CONFIGS, ids=str)
def test_graph_alone_equals_graph_in_mixed_batch(kw):
    model = small(**kw)
    sizes = [4, 9, 5]
    x, batch = make_batch(sizes)
    x = x.double()
    full = as_dict(model(x, batch, 3))
    lo, merged = 0, {}
    for n in sizes:
        alone = model(x[lo:lo + n], None, 1)
        merged.update(as_dict(alone, relabel=torch.arange(lo, lo + n)))
        lo += n
    assert_same(full, merged)


def test_memory_refusal_does_not_allocate():
    model = Set2Graph(10, 128, k=10)
    x = torch.randn(13, 10)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"k-tuple tensor needs .* TB "
                       r"\(13\^10 tuples") as err:
        model(x)
    assert 'HypergraphRefiner' in str(err.value)  # names a fix
    assert time.perf_counter() - start < 5
    with pytest.raises(ValueError, match='551 GB'):  # one float per tuple
        check_tuple_memory(13, k=10, channels=1)


def test_tuple_tensor_bytes_and_limit():
    assert tuple_tensor_bytes(30, 2, 8) == 30 ** 2 * 8 * 4
    assert tuple_tensor_bytes(30, 3, 1, batch_size=2, neighbours=10) \
        == 2 * 30 * 10 ** 2 * 4
    assert tuple_tensor_bytes(5, 3, 1, neighbours=10) == 5 * 4 ** 2 * 4
    assert check_tuple_memory(10, 2, 1, max_bytes=400) == 400
    with pytest.raises(ValueError, match='limit is 399 B'):
        check_tuple_memory(10, 2, 1, max_bytes=399)
    model = small(k=3, max_bytes=1000)
    x, batch = make_batch([6])
    with pytest.raises(ValueError, match='max_bytes'):
        model(x.double())
    assert model.memory_bytes(1) > 0


def test_labels_loss_and_decoding():
    # two graphs, 5 + 4 nodes; targets: {0,1,2} in graph 0, {5,6,8} in 1
    x, batch = make_batch([5, 4])
    target = torch.tensor([[2, 0, 1, 8, 5, 6], [0, 0, 0, 1, 1, 1]])
    pred = small(k=3)(x.double(), batch, 2)
    label = tuple_labels(pred.tuple_index, target)
    members = pred.tuple_index[:, label.bool()].t().tolist()
    assert members == [[0, 1, 2], [5, 6, 8]]
    loss = TupleBCELoss()(pred, target)
    loss.backward()
    # a perfect score decodes to exactly the target facets
    perfect = TuplePrediction(label * 20 - 10, pred.tuple_index, batch, 2)

    class Data:
        hyperedge_index = target
        num_hyperedges = torch.tensor([1, 1])
        ptr = torch.tensor([0, 5, 9])
        num_nodes = 9
    res = evaluate_hyperedges(perfect, Data, edge_size=3)
    assert res['f1'].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match='3-tuples'):
        perfect.to_hyperedge_index(edge_size=4)
    with pytest.raises(ValueError, match='one size'):
        tuple_labels(pred.tuple_index, torch.tensor([[0, 1], [0, 0]]))


def test_k2_trains_with_adjacency_bce():
    model = Set2Graph(2, 16, k=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, batch = make_batch([6, 5], in_channels=2)

    class Data:
        edge_index = torch.tensor([[0, 1, 6, 7], [1, 0, 7, 6]])
    losses = []
    for _ in range(20):
        loss = AdjacencyBCELoss()(model(x, batch, 2), Data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_occurrences_and_small_graphs():
    x, batch = make_batch([2, 4])
    occ = tuple_occurrences(x, batch, 2, 3)
    assert occ.shape == (4 * 3 * 2, 3)  # graph of 2 nodes has no triples
    occ = tuple_occurrences(x, batch, 2, 3, neighbours=2)
    assert occ.shape == (4 * 2, 3)
    pred = small(k=3)(x.double(), batch, 2)
    assert pred.logit.shape == (4, )


def test_errors_and_reset_parameters():
    with pytest.raises(ValueError, match='at least 2'):
        Set2Graph(3, k=1)
    with pytest.raises(ValueError, match='variant'):
        Set2Graph(3, variant='s2g++')
    with pytest.raises(ValueError, match='neighbours'):
        Set2Graph(3, k=4, neighbours=2)
    model = small(k=2)
    x, _ = make_batch([4])
    with pytest.raises(ValueError, match='one-shot'):
        model(x.double(), num_iterations=4)
    with pytest.raises(ValueError, match='empty'):
        model(x.double()[:0])
    before = model.lin_out.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.lin_out.weight)
    assert repr(small(k=3, neighbours=10)) == \
        "Set2Graph(3, 16, k=3, variant='s2g+', neighbours=10)"
