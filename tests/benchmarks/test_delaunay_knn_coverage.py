from tests.benchmarks.helpers import check_outputs, run_script


def test_delaunay_knn_coverage_quick_outputs(tmp_path):
    out = run_script('delaunay_knn_coverage', [
        '--sizes', 20, '--ks', 2, 4, 32, '--samples', 3], tmp_path,
        root=False)
    assert 'smallest k with pooled coverage' in out
    rows = check_outputs(tmp_path / 'out' / 'delaunay_knn_coverage_quick',
                         ['n', 'k', 'coverage', 'worst', 'pairs_per_node'],
                         3, ['coverage', 'worst', 'pairs_per_node'])
    cov = [r['coverage'] for r in rows]
    assert cov == sorted(cov) and cov[-1] == 1.0  # k >= n - 1: all pairs
