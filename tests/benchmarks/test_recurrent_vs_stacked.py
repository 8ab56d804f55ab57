from tests.benchmarks.helpers import check_outputs, run_script


def test_recurrent_vs_stacked_quick_outputs(tmp_path):
    run_script('recurrent_vs_stacked', [
        '--train-n', 6, '--test-n', 6, 8, '--hidden', 8, '--T', 4,
        '--steps', 2, '--batch-size', 8, '--train-samples', 16,
        '--test-samples', 4], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'recurrent_vs_stacked_quick',
                         ['model', 'sweep', 'n', 'm', 't', 'f1'],
                         # per model: 6 iteration counts + 2 sizes x 2 t
                         2 * (6 + 4), ['f1'])
    assert {r['model'] for r in rows} == {'recurrent', 'stacked'}
    its = [r['t'] for r in rows if r['model'] == 'recurrent'
           and r['sweep'] == 'iterations']
    assert its == [1, 2, 4, 8, 12, 16]
    # more slots on the larger sets (2 n - 4 facets)
    big = [r for r in rows if r['sweep'] == 'set_size' and r['n'] == 8]
    assert all(r['m'] >= 12 for r in big)
    assert all(0.0 <= r['f1'] <= 1.0 for r in rows)
