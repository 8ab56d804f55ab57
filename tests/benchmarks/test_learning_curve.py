from tests.benchmarks.helpers import check_outputs, run_script


def test_learning_curve_quick_outputs(tmp_path):
    out = run_script('learning_curve', ['--models', 'refiner',
                                        'set_transformer', '--seeds', 1, 2,
                                        '--batches', 4, '--eval-every', 2,
                                        '--target', 0.0], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'learning_curve_quick',
                         ['model', 'seed', 'batches', 'wall_s', 'cpu_s',
                          'f1', 'f1_reference', 'f1_dedup', 'duplicates'],
                         2 * 2 * 2,
                         ['wall_s', 'cpu_s', 'f1', 'f1_reference'])
    assert sorted({r['model'] for r in rows}) == ['refiner',
                                                  'set_transformer']
    assert sorted({r['batches'] for r in rows}) == [2, 4]
    for r in rows:
        assert 0.0 <= r['f1'] <= 1.0 and r['cpu_s'] > 0
        # dropping copies removes false positives only
        assert r['f1'] <= r['f1_dedup'] <= 1.0 and r['duplicates'] >= 0
    import json
    meta = json.load(open(tmp_path / 'out' / 'learning_curve_quick.json'))
    summary = meta['meta']['summary']
    # target 0: every run reaches it at its first evaluation
    assert [s['reached'] for s in summary] == ['2/2', '2/2']
    assert all(s['median_batches_to_target'] == 2 for s in summary)
    assert 'Time to reference F1' in out


def test_summary_median_counts_unreached_runs_as_late():
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')

    def run(seed, f1s):
        return [{'model': 'refiner', 'seed': seed, 'batches': 10 * (i + 1),
                 'wall_s': 5.0 * (i + 1), 'cpu_s': 9.0 * (i + 1), 'f1': f,
                 'f1_reference': f, 'f1_dedup': f, 'duplicates': 0.0}
                for i, f in enumerate(f1s)]

    rows = run(1, [0.1, 0.5, 0.6]) + run(2, [0.44, 0.5, 0.5]) + \
        run(3, [0.1, 0.2, 0.3])
    (s, ) = mod.summarise(rows, 0.43)
    assert s['reached'] == '2/3'
    # reached at 10 and 20 batches, one never: median 20
    assert s['median_batches_to_target'] == 20
    assert s['median_wall_s_to_target'] == 10.0
    assert s['final_f1_reference_median'] == 0.5
    assert (s['final_f1_reference_min'], s['final_f1_reference_max']) == \
        (0.3, 0.6)
    rows = run(1, [0.1]) + run(2, [0.2]) + run(3, [0.5])
    assert mod.summarise(rows, 0.43)[0]['median_batches_to_target'] == \
        float('inf')
