import itertools

import numpy as np
import pytest

from torch_geometric_hyper.matching import available_backends, linear_assignment


@pytest.mark.parametrize('backend', available_backends())
def test_rectangular_optimum(backend):
    rng = np.random.default_rng(0)
    cost = rng.random((3, 5))
    cols = linear_assignment([cost, np.zeros((0, 4))], backend)
    best = min(sum(cost[r, c] for r, c in enumerate(p))
               for p in itertools.permutations(range(5), 3))
    assert cost[np.arange(3), cols[0]].sum() == pytest.approx(best)
    assert len(set(cols[0])) == 3 and cols[1].size == 0


def test_errors():
    with pytest.raises(ValueError, match='rows <= cols'):
        linear_assignment([np.zeros((3, 2))])
    with pytest.raises(ValueError, match='unknown'):
        linear_assignment([], backend='auction')


def test_threaded_solves_match_serial_in_order():
    rng = np.random.default_rng(3)
    costs = [rng.random((int(rng.integers(0, 9)), 9)) for _ in range(37)]
    serial = linear_assignment(costs, num_threads=1)
    threaded = linear_assignment(costs, num_threads=3)
    assert len(threaded) == len(costs)
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match='rows <= cols'):
        linear_assignment(costs + [rng.random((5, 2))], num_threads=3)


def test_auto_backend_by_size():
    from torch_geometric_hyper.matching import (LAPX_MIN_COLUMNS,
                                                resolve_backend)
    assert resolve_backend('auto', LAPX_MIN_COLUMNS - 1) == 'scipy'
    big = resolve_backend('auto', LAPX_MIN_COLUMNS)
    assert big == ('lapx' if 'lapx' in available_backends() else 'scipy')
    assert resolve_backend('scipy', 10_000) == 'scipy'
    # 'auto' finds the optimum like the others, on small and large problems
    rng = np.random.default_rng(0)
    for rows, cols in ((5, 8), (70, 80)):
        cost = rng.random((rows, cols))
        auto, = linear_assignment([cost], 'auto')
        ref, = linear_assignment([cost], 'scipy')
        assert np.isclose(cost[np.arange(rows), auto].sum(),
                          cost[np.arange(rows), ref].sum())
        assert len(set(auto.tolist())) == rows
