import pytest
import torch

from torch_geometric_hyper.metrics import hyperedge_f1, hyperedge_sets


def test_strict_vs_reference_convention():
    target = [[(0, 1, 2), (1, 2, 3)]]
    pred = [[(0, 1, 2), (0, 1, 2), (0, 2, 3)]]
    strict = hyperedge_f1(pred, target, count_duplicates=True)
    ref = hyperedge_f1(pred, target, count_duplicates=False)
    assert strict['tp'].item() == 1 and strict['fp'].item() == 2
    assert strict['f1'].item() == pytest.approx(1 / (1 + 0.5 * 3))
    assert ref['fp'].item() == 1
    assert ref['f1'].item() == pytest.approx(1 / (1 + 0.5 * 2))


def test_perfect_and_empty():
    res = hyperedge_f1([[(0, 1)], []], [[(0, 1)], []])
    assert res['f1'].tolist() == [1.0, 1.0]
    res = hyperedge_f1([[]], [[(0, 1)]])
    assert res['f1'].tolist() == [0.0]
    with pytest.raises(ValueError, match='graphs'):
        hyperedge_f1([[]], [])


def test_hyperedge_sets_local_ids():
    index = torch.tensor([[4, 3, 0, 1], [1, 1, 0, 0]])
    sets = hyperedge_sets(index, torch.tensor([0, 1]), torch.tensor([0, 3, 5]),
                          2)
    assert sets == [[(0, 1)], [(0, 1)]]
