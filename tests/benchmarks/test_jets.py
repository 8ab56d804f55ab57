import json

import pytest

from tests.benchmarks.helpers import check_outputs, run_script
from tests.conftest import write_fake_jets


def test_jets_quick_outputs(tmp_path):
    pytest.importorskip('uproot')
    pytest.importorskip('matplotlib')
    raw = write_fake_jets(tmp_path / 'raw_files')
    # tiny models, a budget of 0.6 CPU-seconds each: the calibration and a
    # few validations of each model, two seeds
    out = run_script('jets', ['--raw-dir', raw, '--seeds', 0, 1,
                              '--cpu-minutes', 0.01,
                              '--val-every-cpu-minutes', 0.002,
                              '--batch-size', 8, '--hidden', 8, '--T', 2,
                              '--B', 1, '--S', 1, '--s2g-hidden', 8,
                              '--s2g-layers', 1, '--s2g-tuple-channels', 8,
                              '--jobs', 2],
                     tmp_path, timeout=300)
    stem = tmp_path / 'out' / 'jets_quick'
    # 2 models x 2 seeds + 2 baselines, 4 flavours each (the fake jets
    # have all three flavours in 24)
    rows = check_outputs(stem, ['model', 'seed', 'flavour', 'f1', 'ri',
                                'ari', 'cpu_minutes'], 6 * 4,
                         ['f1', 'ri', 'ari', 'cpu_minutes'])
    assert sorted({(r['model'], r['seed']) for r in rows},
                  key=str) == sorted(
        [('refiner', 0), ('refiner', 1), ('set2graph', 0),
         ('set2graph', 1), ('one vertex', None), ('each alone', None)],
        key=str)
    for r in rows:
        assert r['flavour'] in ('bottom', 'charm', 'light', 'all')
        assert 0.0 <= r['f1'] <= 1.0 and 0.0 <= r['ri'] <= 1.0
        assert -1.0 <= r['ari'] <= 1.0
        if r['seed'] is None:
            assert r['cpu_minutes'] == 0.0
        else:
            # the budget is checked after each batch: at least reached
            assert r['cpu_minutes'] >= 0.01
    assert [r['n'] for r in rows if r['flavour'] == 'all'] == [24] * 6
    for r in rows:
        if r['seed'] is not None:
            assert -1.0 <= r['ari_last'] <= 1.0 and 0.0 <= r['f1_last'] <= 1.0
    # the "one vertex" floor has F1 above 0, "each alone" none
    by = {(r['model'], r['flavour']): r for r in rows}
    assert by[('each alone', 'all')]['f1'] == 0.0
    meta = json.load(open(str(stem) + '.json'))['meta']
    assert set(meta['calibration']) == {'refiner', 'set2graph'}
    curves = meta['curves']
    for model in ('refiner', 'set2graph'):
        for seed in (0, 1):
            pts = [c for c in curves
                   if c['model'] == model and c['seed'] == seed]
            assert len(pts) >= 2
            cpu = [c['cpu_minutes'] for c in pts]
            assert cpu == sorted(cpu) and cpu[-1] >= 0.01
            assert {'f1', 'ri', 'ari', 'ari_bottom', 'ari_charm',
                    'ari_light', 'score'} <= set(pts[0])
            # the checkpoint of the best validation ARI (--select ari, the
            # default) is the one scored; the first of equals wins
            assert all(c['score'] == c['ari'] for c in pts)
            best = max(pts, key=lambda c: c['ari'])
            row = next(r for r in rows
                       if r['model'] == model and r['seed'] == seed)
            assert row['best_batch'] == best['step']
    assert [s['flavour'] for s in meta['summary']] == \
        ['bottom', 'charm', 'light', 'all']
    assert 'refiner_minus_set2graph' in meta['summary'][0]
    assert 'Mean test ARI over the seeds' in out


def test_jets_throughput_outputs(tmp_path):
    pytest.importorskip('uproot')
    raw = write_fake_jets(tmp_path / 'raw_files')
    out = run_script('jets', ['--raw-dir', raw, '--throughput', 2,
                              '--batch-size', 4, '--hidden', 8, '--T', 2,
                              '--B', 1, '--S', 1, '--s2g-hidden', 8,
                              '--s2g-layers', 1, '--s2g-tuple-channels', 8,
                              '--name', 'tp'],
                     tmp_path, timeout=300)
    assert 'samples/s' in out
    rows = check_outputs(tmp_path / 'out' / 'tp', [
        'model', 'batch_size', 'batches', 'seconds_per_batch',
        'samples_per_s', 'peak_rss_mib'], 2,
        ['seconds_per_batch', 'samples_per_s', 'peak_rss_mib'])
    assert [r['model'] for r in rows] == ['refiner', 'set2graph']
    for r in rows:
        assert r['batches'] == 2 and r['batch_size'] == 4
        # 2 timed batches of 4 jets
        assert r['samples_per_s'] == pytest.approx(
            8 / (2 * r['seconds_per_batch']))
