from tests.benchmarks.helpers import check_outputs, run_script


def test_iterations_vs_set_size_quick_outputs(tmp_path):
    run_script('iterations_vs_set_size', [
        '--sizes', 6, 8, '--hidden', 8, '--T', 4, '--B', 2, '--steps', 2,
        '--batch-size', 8, '--train-samples', 16, '--test-samples', 4],
        tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'iterations_vs_set_size_quick',
                         ['n', 'm', 'base_f1', 't_match_base', 't_relative',
                          'f1_at_T', 'best_f1'], 2,
                         ['base_f1', 'f1_at_T', 'best_f1', 't_relative'])
    assert [r['n'] for r in rows] == [6, 8]
    for r in rows:
        assert len(r['f1_curve']) == 16  # t = 1 ... 4 T
        assert 1 <= r['t_relative'] <= 16
        assert r['t_match_base'] is None or 1 <= r['t_match_base'] <= 16
    assert rows[0]['t_match_base'] is not None  # the base case matches itself
