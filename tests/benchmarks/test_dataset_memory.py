from tests.benchmarks.helpers import check_outputs, run_script


def test_dataset_memory_quick_outputs(tmp_path):
    out = run_script('dataset_memory', ['--epochs', 2], tmp_path)
    assert 'growth after 2 epochs' in out
    rows = check_outputs(tmp_path / 'out' / 'dataset_memory_quick',
                         ['getter', 'growth_mib', 'rss_loaded_mib'], 2,
                         numeric=['growth_mib', 'first_epoch_s',
                                  'last_epoch_s'])
    assert [r['getter'] for r in rows] == ['package', 'pyg']
    for r in rows:
        assert r['num_points'] == 10 and r['samples'] == 500
        assert len(r['epoch_rss_mib']) == 2
        assert r['rss_loaded_mib'] >= r['rss_imports_mib'] > 0
