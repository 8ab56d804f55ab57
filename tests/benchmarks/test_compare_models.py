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
