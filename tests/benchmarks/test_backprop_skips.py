from tests.benchmarks.helpers import check_outputs, run_script


def test_backprop_skips_quick_outputs(tmp_path):
    out = run_script('backprop_skips', [
        '--T-values', 4, 8, '--methods', 'bptt', 'skips', 'skips-fixed',
        '--n', 8, '--hidden', 8, '--batch-size', 4, '--batches', 1,
        '--train-n', 6, '--train-hidden', 8, '--train-samples', 32,
        '--val-samples', 8, '--train-seconds', 0.5, '--eval-every', 0.25,
        '--train-batch-size', 8], tmp_path)
    assert 'wrote' in out
    rows = check_outputs(
        tmp_path / 'out' / 'backprop_skips_quick',
        ['method', 'T', 'checkpoint', 'seconds_per_batch',
         'seconds_per_update', 'rss_after_imports_mib', 'peak_rss_mib',
         'peak_minus_imports_mib'], 6,
        ['seconds_per_batch', 'peak_rss_mib', 'peak_minus_imports_mib'])
    assert {(r['method'], r['T']) for r in rows} == {
        (m, T) for m in ('bptt', 'skips', 'skips-fixed') for T in (4, 8)}
    # only B steps in one autograd graph with skips, all T with BPTT
    for r in rows:
        assert r['grad_steps'] == (r['T'] if r['method'] == 'bptt' else 4)
    rows = check_outputs(
        tmp_path / 'out' / 'backprop_skips_quick_training',
        ['method', 'T', 'B', 'S', 'train_seconds', 'steps', 'val_f1'], 4,
        ['train_seconds', 'val_f1'])
    assert [r['method'] for r in rows] == ['bptt', 'tbptt', 'skips',
                                           'skips-fixed']
    assert all(0.0 <= r['val_f1'] <= 1.0 and r['curve'] for r in rows)
