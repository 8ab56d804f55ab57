import csv
import json
import os
import os.path as osp
import subprocess
import sys

from tests.benchmarks.helpers import ROOT


def test_compare_models_quick_outputs(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND='Agg')
    out = tmp_path / 'out'
    res = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'compare_models.py'),
         '--quick', '--models', 'refiner', 'set_transformer', '--root',
         str(tmp_path / 'data'), '--out', str(out), '--cpu-minutes', '0.02',
         '--train-samples', '64', '--val-samples', '16'],
        capture_output=True, text=True, env=env, timeout=300,
        cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    with open(out / 'compare_models.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['model'] for r in rows] == ['refiner', 'set_transformer']
    for r in rows:
        assert 0.0 <= float(r['val_f1']) <= float(r['val_f1_reference']) \
            <= 1.0
        assert int(r['parameters']) > 0 and int(r['batches']) > 0
    data = json.loads((out / 'compare_models.json').read_text())
    assert data['cpu_minutes'] == 0.02 and len(data['rows']) == 2
    assert (out / 'compare_models.png').read_bytes()[:8] == \
        b'\x89PNG\r\n\x1a\n'
    assert (out / 'refiner_n8.log').exists()
    # F1 against training CPU minutes, from each run's validation history
    assert [c['model'] for c in data['curves']] == ['refiner',
                                                    'set_transformer']
    for c in data['curves']:
        minutes = [p['cpu_minutes'] for p in c['points']]
        assert minutes[0] > 0 and minutes == sorted(minutes)
        assert all(0 <= p['f1'] <= p['f1_reference'] <= 1
                   for p in c['points'])
    assert (out / 'compare_models_curves.png').read_bytes()[:4] == \
        b'\x89PNG'

    # A second seed of the refiner in its own folder, then the table over
    # both folders: seeds told apart, median and range per model.
    out2 = tmp_path / 'seed1'
    common = ['--quick', '--root', str(tmp_path / 'data'), '--cpu-minutes',
              '0.02', '--train-samples', '64', '--val-samples', '16']
    script = osp.join(ROOT, 'benchmarks', 'compare_models.py')
    res = subprocess.run(
        [sys.executable, script, *common, '--models', 'refiner', '--seed',
         '1', '--out', str(out2)],
        capture_output=True, text=True, env=env, timeout=300,
        cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out2 / 'refiner_n8_s1.log').exists()
    assert not (out2 / 'refiner_n8.log').exists()
    res = subprocess.run(
        [sys.executable, script, *common, '--models', 'refiner',
         'set_transformer', '--out', str(out), '--collect', str(out2)],
        capture_output=True, text=True, env=env, timeout=300,
        cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((out / 'compare_models.json').read_text())
    assert [(r['model'], r['seed']) for r in data['rows']] == [
        ('refiner', 0), ('refiner', 1), ('set_transformer', 0)]
    summary = {s['model']: s for s in data['summary']}
    assert summary['refiner']['seeds'] == 2
    assert summary['set_transformer']['seeds'] == 1
    values = [r['val_f1'] for r in data['rows'] if r['model'] == 'refiner']
    assert summary['refiner']['val_f1_min'] == min(values)
    assert summary['refiner']['val_f1_max'] == max(values)
    assert summary['refiner']['val_f1'] == sum(values) / 2
    assert 'median [min, max] over seeds' in res.stdout
    assert sorted((c['model'], c['seed']) for c in data['curves']) == [
        ('refiner', 0), ('refiner', 1), ('set_transformer', 0)]


def test_parse_log_takes_the_final_figures_of_a_resumed_run():
    from tests.conftest import load_script
    mod = load_script('benchmarks/compare_models.py')
    text = '\n'.join([
        'model: SlotAttention(3, 128) with 281,986 parameters; training',
        'step    100  val F1 0.1478  (reference metric 0.1635)  *best*',
        'interrupted at step 3892: state saved to last.pt (use --resume)',
        'resumed from last.pt at epoch 12, batch 136 of 313, step 3892, '
        'best val F1 0.4144',
        'best val F1 0.4527 (reference metric 0.5025) after 11771 batches '
        '(best at batch 11500), 233.8 min of training (60.0 CPU min)',
        'test F1 0.4488 (reference metric 0.4978, deduplicated 0.5199, '
        'duplicates/set 15.40) on 512 sets'])
    assert mod.parse_log(text) == {
        'val_f1': 0.4527, 'val_f1_reference': 0.5025, 'batches': 11771,
        'cpu_minutes': 60.0, 'test_f1': 0.4488, 'test_f1_reference': 0.4978,
        'parameters': 281986}
