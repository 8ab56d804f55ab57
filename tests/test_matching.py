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


def test_sparse_assignment_reaches_the_dense_optimum(monkeypatch):
    import numpy as np

    from torch_geometric_hyper import matching
    rng = np.random.default_rng(0)
    for trial in range(20):
        R, C = rng.integers(5, 60), 130
        k = rng.integers(1, 6, R)  # entries per row
        rows = np.repeat(np.arange(R), k)
        cols = np.concatenate([rng.choice(C, n, replace=False) for n in k])
        values = -np.abs(rng.normal(1.0, 1.0, rows.size))
        a = rng.normal(0.0, 1.0, C)
        if trial % 2:  # ties, as in an untrained model
            a = np.round(a)
        dense = np.tile(a, (R, 1))
        dense[rows, cols] += values
        best = dense[np.arange(R), matching._scipy_lsa(dense)[1]].sum()
        with monkeypatch.context() as mp:  # solved sparse, no dense fallback
            mp.setattr(matching, '_scipy_lsa', None)
            got = matching.sparse_linear_assignment(rows, cols, values, a, R,
                                                    cheapest=int(R) + 2)
        assert len(set(got.tolist())) == R
        assert dense[np.arange(R), got].sum() == pytest.approx(best,
                                                               abs=1e-9)
    with pytest.raises(ValueError, match='more rows'):
        matching.sparse_linear_assignment(rows, cols, values, a[:3], 5)
