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
    # two models: the paired table compares set_transformer with refiner
    pairs = meta['meta']['paired']
    assert [(p['model'], p['batches'], p['seeds']) for p in pairs] == \
        [('set_transformer', '2', 2), ('set_transformer', '4', 2)]
    assert 'Paired by seed: model minus refiner' in out


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


def _run(model, seed, f1s, step=10):
    return [{'model': model, 'seed': seed, 'batches': step * (i + 1),
             'wall_s': 1.0 * (i + 1), 'cpu_s': 2.0 * (i + 1), 'f1': f - 0.1,
             'f1_reference': f, 'f1_dedup': f, 'duplicates': 0.0}
            for i, f in enumerate(f1s)]


def test_paired_differences_by_seed():
    import math
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')
    rows = (_run('refiner', 1, [0.1, 0.3, 0.4]) +
            _run('refiner_k16', 1, [0.2, 0.3, 0.5]) +
            _run('refiner', 2, [0.1, 0.2, 0.4]) +
            _run('refiner_k16', 2, [0.1, 0.4, 0.4]) +
            _run('refiner', 3, [0.2, 0.2, 0.3]) +
            _run('refiner_k16', 3, [0.2, 0.2, 0.6]) +
            # a seed the baseline did not run is left out
            _run('refiner_k16', 4, [0.9, 0.9, 0.9]))
    pairs = mod.paired(rows, 'refiner', ['refiner', 'refiner_k16'],
                       paired_from=20)
    assert [p['batches'] for p in pairs] == ['10', '20', '30', 'mean 20-30']
    assert all(p['seeds'] == 3 and p['baseline'] == 'refiner'
               for p in pairs)
    at30 = pairs[2]  # differences 0.1, 0.0, 0.3
    assert math.isclose(at30['mean_diff_reference'], 0.4 / 3)
    sd = math.sqrt(((0.1 - 0.4 / 3) ** 2 + (0.4 / 3) ** 2 +
                    (0.3 - 0.4 / 3) ** 2) / 2)
    assert math.isclose(at30['sd_diff_reference'], sd)
    assert math.isclose(at30['se_diff_reference'], sd / math.sqrt(3))
    # t quantile with 2 degrees of freedom: 4.303
    assert math.isclose(at30['ci95_high_reference'] -
                        at30['mean_diff_reference'],
                        4.3027 * sd / math.sqrt(3), rel_tol=1e-4)
    assert math.isclose(at30['median_diff_reference'], 0.1)
    assert at30['wins'] == 2
    # strict F1 is 0.1 below the reference one in every run: same diffs
    assert math.isclose(at30['mean_diff_strict'], 0.4 / 3)
    # per seed, the mean over 20 and 30 batches: 0.05, 0.1, 0.15
    late = pairs[3]
    assert late['at_batches'] == 30
    assert math.isclose(late['mean_diff_reference'], 0.1)
    # one model: nothing to pair
    assert mod.paired(rows, 'refiner', ['refiner']) == []


def _results_file(path, mod, rows, argv=('--num-points', '30')):
    import json
    args = mod.parse_args(list(argv))
    with open(path, 'w') as f:
        json.dump({'meta': {'settings': mod.settings(args)}, 'rows': rows},
                  f)
    return str(path)


def test_collect_merges_runs_of_several_files(tmp_path):
    import json
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')
    a = _results_file(tmp_path / 'a.json', mod,
                      _run('refiner', 1, [0.1, 0.3]) +
                      _run('refiner_k16', 1, [0.1, 0.4]))
    b = _results_file(tmp_path / 'b.json', mod,
                      _run('refiner', 2, [0.2, 0.3]) +
                      _run('refiner_k16', 2, [0.2, 0.2]) +
                      _run('set_transformer', 2, [0.5, 0.5]))
    out = mod.main(['--models', 'refiner', 'refiner_k16', '--collect', a, b,
                    '--out', str(tmp_path / 'out'), '--name', 'both'])
    # set_transformer was not asked for
    assert {(r['model'], r['seed']) for r in out['rows']} == {
        ('refiner', 1), ('refiner_k16', 1), ('refiner', 2),
        ('refiner_k16', 2)}
    assert [(p['batches'], p['seeds']) for p in out['paired']] == \
        [('10', 2), ('20', 2)]
    assert abs(out['paired'][1]['mean_diff_reference'] - 0.0) < 1e-12
    meta = json.load(open(tmp_path / 'out' / 'both.json'))['meta']
    assert meta['collected'] == [a, b]
    assert meta['settings']['num_points'] == 30


def test_collect_refuses_mismatched_or_repeated_runs(tmp_path):
    import pytest
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')
    a = _results_file(tmp_path / 'a.json', mod, _run('refiner', 1, [0.1]))
    other = _results_file(tmp_path / 'n50.json', mod,
                          _run('refiner', 2, [0.1]),
                          argv=('--num-points', '50'))
    again = _results_file(tmp_path / 'again.json', mod,
                          _run('refiner', 1, [0.2]))
    args = mod.parse_args(['--models', 'refiner'])
    with pytest.raises(ValueError, match='num_points 50 \\(here 30\\)'):
        mod.collect(args, [a, other])
    with pytest.raises(ValueError, match='refiner seed 1 is in both'):
        mod.collect(args, [a, again])
    with pytest.raises(FileNotFoundError, match='missing.json'):
        mod.collect(args, [str(tmp_path / 'missing.json')])
    with pytest.raises(ValueError, match='no runs of refiner_k16'):
        mod.collect(mod.parse_args(['--models', 'refiner_k16']), [a])
    # older outputs without 'settings' are read from their command line
    import json
    with open(tmp_path / 'old.json', 'w') as f:
        json.dump({'meta': {'argv': ['--num-points', '50', '--threads', '1']},
                   'rows': _run('refiner', 3, [0.3])}, f)
    with pytest.raises(ValueError, match='num_points 50'):
        mod.collect(args, [str(tmp_path / 'old.json')])
    assert len(mod.collect(mod.parse_args(['--num-points', '50']),
                           [str(tmp_path / 'old.json')])) == 1


def test_models_with_any_number_of_candidates(capsys):
    import pytest
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')
    args = mod.parse_args(['--models', 'refiner', 'refiner_k24',
                           'refiner_k16', '--quick'])
    assert args.models == ['refiner', 'refiner_k24', 'refiner_k16']
    model, _, _ = mod.build(args, 'refiner_k24', 12)
    assert model.num_candidates == 24
    model, _, _ = mod.build(args, 'refiner', 12)
    assert model.num_candidates is None
    assert sorted(['refiner_k24', 'set_transformer', 'refiner_k16',
                   'refiner'], key=mod.model_order) == \
        ['refiner', 'refiner_k16', 'refiner_k24', 'set_transformer']
    for bad in ('refiner_k0', 'refiner_kx', 'transformer'):
        with pytest.raises(SystemExit):
            mod.parse_args(['--models', bad])
        assert f"unknown model '{bad}'" in capsys.readouterr().err


def test_candidate_models_report_coverage(tmp_path):
    # quick sets have 10 nodes: K=4 candidates per slot cover only part
    out = run_script('learning_curve', ['--models', 'refiner', 'refiner_k4',
                                        '--seeds', 1, '--batches', 2,
                                        '--eval-every', 2], tmp_path)
    assert 'coverage' in out
    rows = check_outputs(tmp_path / 'out' / 'learning_curve_quick',
                         ['model', 'f1_reference', 'coverage'], 2,
                         ['f1_reference'])
    by_model = {r['model']: r for r in rows}
    assert 'coverage' not in by_model['refiner']
    assert 0.0 <= by_model['refiner_k4']['coverage'] < 1.0


def test_assignment_option_is_a_setting(tmp_path):
    import json

    import pytest
    from tests.conftest import load_script
    mod = load_script('benchmarks/learning_curve.py')
    once = mod.parse_args(['--assignment', 'per_update'])
    assert mod.settings(once)['assignment'] == 'per_update'
    assert mod.parse_args([]).assignment == 'per_step'
    a = _results_file(tmp_path / 'a.json', mod, _run('refiner', 1, [0.1]),
                      argv=('--assignment', 'per_update'))
    with pytest.raises(ValueError, match='assignment per_update'):
        mod.collect(mod.parse_args(['--models', 'refiner']), [a])
    assert len(mod.collect(once, [a])) == 1
    # outputs from before the option matched step by step
    with open(tmp_path / 'old.json', 'w') as f:
        settings = mod.settings(mod.parse_args([]))
        del settings['assignment']
        json.dump({'meta': {'settings': settings},
                   'rows': _run('refiner', 2, [0.2])}, f)
    assert len(mod.collect(mod.parse_args([]),
                           [str(tmp_path / 'old.json')])) == 1
    with pytest.raises(SystemExit):
        mod.parse_args(['--assignment', 'once'])
