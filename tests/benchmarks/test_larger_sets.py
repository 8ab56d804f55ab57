from tests.benchmarks.helpers import check_outputs, run_script


def test_larger_sets_delaunay_quick(tmp_path):
    out = run_script('larger_sets', ['--sizes', 30, 60, '--train-seconds',
                                     1, '--train-samples', 2,
                                     '--val-samples', 2], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'larger_sets_quick',
                         ['n', 's_per_step', 'pairs_per_node', 'accuracy',
                          'accuracy_reference', 'f1', 'candidate_coverage',
                          'peak_minus_imports_mib'], 2,
                         ['s_per_step', 'accuracy', 'candidate_coverage'])
    assert [r['n'] for r in rows] == [30, 60]
    for r in rows:
        assert 0.5 < r['candidate_coverage'] <= 1.0
        assert r['accuracy_reference'] >= r['accuracy']  # diagonal TNs
    assert 'log-log slope against n' in out


def test_larger_sets_hull_quick(tmp_path):
    run_script('larger_sets', ['--task', 'hull', '--sizes', 10, 20,
                               '--train-seconds', 1, '--train-samples', 2,
                               '--val-samples', 2], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'larger_sets_quick',
                         ['n', 's_per_step', 'f1', 'f1_reference'], 2,
                         ['s_per_step', 'f1'])
    # all pairs: every node is a candidate of each of the 2n - 4 slots
    assert [r['pairs_per_node'] for r in rows] == [16, 36]
    assert all('candidate_coverage' not in r for r in rows)
    for r in rows:  # the step time split: assignment (solved) and the rest
        assert 0 < r['assign_s_per_step'] < r['s_per_step']
        assert abs(r['assign_s_per_step'] + r['other_s_per_step']
                   - r['s_per_step']) < 1e-9


def test_slope():
    from tests.conftest import load_script
    mod = load_script('benchmarks/larger_sets.py')
    rows = [{'n': n, 't': 3.0 * n ** 2} for n in (10, 100, 1000)]
    assert abs(mod.slope(rows, 't') - 2.0) < 1e-9
    rows = [{'n': n, 't': 5.0 * n} for n in (100, 1000)]
    assert abs(mod.slope(rows, 't') - 1.0) < 1e-9


def test_larger_sets_triangles_quick(tmp_path):
    run_script('larger_sets', ['--task', 'triangles', '--sizes', 20,
                               '--candidates', 6, '--train-seconds', 1,
                               '--train-samples', 2, '--val-samples', 2],
               tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'larger_sets_quick',
                         ['n', 's_per_step', 'f1', 'f1_reference',
                          'candidates'], 1, ['s_per_step', 'f1'])
    m_times_k = rows[0]['pairs_per_node'] * 20
    assert m_times_k % 6 == 0  # K = 6 candidates for every slot
    # the share of target triangles some slot's candidates hold
    assert 0.0 <= rows[0]['candidate_coverage'] <= 1.0


def test_plot_only_overlays_result_files(tmp_path):
    import json

    import pytest

    from tests.conftest import load_script
    mod = load_script('benchmarks/larger_sets.py')
    paths = []
    for k, argv, factor in (('16', ['--candidates', '16', '--train-seconds',
                                    '1200'], 1.0),
                            ('all', ['--train-seconds', '90'], 3.0)):
        rows = [{'task': 'hull', 'n': n, 'candidates': k, 'f1': 0.5 / n,
                 's_per_step': factor * n, 'peak_minus_imports_mib': n}
                for n in (100, 1000)]
        path = tmp_path / f'{k}.json'
        path.write_text(json.dumps({'rows': rows, 'meta': {'argv': argv}}))
        paths.append(str(path))
    labels = [mod.series_label(json.loads(open(p).read())) for p in paths]
    assert labels == ['K=16, 1200 s', 'all pairs, 90 s']
    out = mod.main(['--plot-only', *paths, '--out', str(tmp_path / 'o'),
                    '--name', 'both'])
    assert out == str(tmp_path / 'o' / 'both.png')
    assert (tmp_path / 'o' / 'both.png').stat().st_size > 1000
    with pytest.raises(SystemExit, match='1 labels for 2 result files'):
        mod.main(['--plot-only', *paths, '--labels', 'a'])
    with pytest.raises(SystemExit, match='no such result file'):
        mod.main(['--plot-only', str(tmp_path / 'missing.json')])


def test_rounds_alternate_the_sizes_and_keep_each_fastest_run():
    import argparse

    from tests.conftest import load_script
    C = load_script('benchmarks/larger_sets.py').C
    times = iter([3.0, 5.0, 1.0, 4.0, 2.0, 6.0])
    order = []

    def parse(argv):
        return argparse.Namespace(in_process=True, worker=None, rounds=3,
                                  sizes=[10, 20])

    def run_one(args, n):
        order.append(n)
        return {'n': n, 's_per_step': next(times), 'run': len(order)}
    _, _, rows = C.run_each('larger_sets.py', parse, run_one, 'n', 'sizes',
                            [], fastest='s_per_step')
    assert order == [10, 20, 10, 20, 10, 20]
    assert rows == [
        {'n': 10, 's_per_step': 1.0, 'run': 3,
         's_per_step_runs': [3.0, 1.0, 2.0]},
        {'n': 20, 's_per_step': 4.0, 'run': 4,
         's_per_step_runs': [5.0, 4.0, 6.0]}]
    # one round: each size's only run, as before
    times = iter([3.0, 5.0])
    parse1 = lambda argv: argparse.Namespace(  # noqa: E731
        in_process=True, worker=None, rounds=1, sizes=[10, 20])
    _, _, rows = C.run_each('larger_sets.py', parse1, run_one, 'n', 'sizes',
                            [], fastest='s_per_step')
    assert [r['s_per_step'] for r in rows] == [3.0, 5.0]
    assert 's_per_step_runs' not in rows[0]
