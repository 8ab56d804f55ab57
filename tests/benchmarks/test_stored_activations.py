from tests.benchmarks.helpers import check_outputs, run_script


def test_stored_activations_quick_outputs(tmp_path):
    out = run_script('stored_activations',
                     ['--sizes', 10, 30, '--time', 1], tmp_path)
    assert 'fused fit' in out
    rows = check_outputs(tmp_path / 'out' / 'stored_activations_quick',
                         ['n', 'pairs', 'plain_mib', 'fused_mib',
                          'fused_vs_plain', 'estimate_mib', 'loss_plain_mib',
                          'loss_fused_mib'], 2,
                         ['plain_mib', 'fused_mib', 'loss_plain_mib',
                          'loss_fused_mib'])
    for r in rows:
        n, m, d = r['n'], r['max_edges'], r['hidden']
        N, M = n * r['batch_size'], m * r['batch_size']
        # at least one of the two [rows, F] copies (concatenation, its
        # normalisation) of the slot and node DeepSet inputs is not kept
        saved = (r['plain_mib'] - r['fused_mib']) * 2**20
        assert saved >= 4 * (M * 2 * d + N * 3 * d)
        assert 0 < r['fused_vs_plain'] < 1
        # the loss over 4 predictions: plain keeps at least the four
        # log-sigmoid buffers and outputs of each prediction's pairs
        loss_saved = (r['loss_plain_mib'] - r['loss_fused_mib']) * 2**20
        assert loss_saved >= 4 * 4 * 4 * r['pairs']
    timed = [r for r in rows if 'plain_over_fused' in r]
    assert [r['n'] for r in timed] == [10]
    assert timed[0]['fused_s_per_batch'] > 0
    assert timed[0]['plain_s_per_batch'] > 0
