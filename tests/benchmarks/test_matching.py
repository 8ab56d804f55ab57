from tests.benchmarks.helpers import check_outputs, run_script


def test_matching_quick_outputs(tmp_path):
    out = run_script('matching', ['--slots', 10, 56, '--batch-sizes', 4, 64,
                                  '--repeats', 1, '--max-pairs', 20000],
                     tmp_path, root=False)
    assert 'skipped' in out  # m=56 x 64 graphs x 30 nodes > 20,000 pairs
    from torch_geometric_hyper.matching import available_backends
    backends = available_backends()  # every installed solver is measured
    rows = check_outputs(tmp_path / 'out' / 'matching_quick',
                         ['backend', 'm', 'n', 'batch_size', 'cost_ms',
                          'assign_ms', 'forward_ms', 'backward_ms',
                          'total_ms', 'peak_minus_imports_mib'],
                         3 * len(backends),
                         ['cost_ms', 'assign_ms', 'backward_ms', 'loss'])
    assert {(r['m'], r['batch_size']) for r in rows} == {(10, 4), (10, 64),
                                                         (56, 4)}
    assert {r['backend'] for r in rows} == set(backends)
