"""Runs a benchmark script in a subprocess and checks its outputs (never
its timings)."""
import csv
import json
import math
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_script(name, args, tmp_path, root=True, timeout=120):
    """Runs ``benchmarks/<name>.py --quick --in-process --out <tmp>
    [--root <tmp>] ...`` and returns its stdout. ``--in-process`` keeps
    the configurations in one process (one import of torch) to keep the
    test short."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    env['MPLBACKEND'] = 'Agg'
    cmd = [sys.executable, osp.join(ROOT, 'benchmarks', f'{name}.py'),
           '--quick', '--in-process', '--threads', '1',
           '--out', str(tmp_path / 'out'), *map(str, args)]
    if root:
        cmd += ['--root', str(tmp_path / 'data')]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=timeout, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def check_outputs(stem, columns, num_rows, numeric=()):
    """Checks ``<stem>.csv/.json/.png``: the columns, the number of rows,
    finite numeric values, the machine metadata and a PNG signature.
    Returns the JSON rows."""
    stem = str(stem)
    with open(stem + '.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == num_rows
    assert set(columns) <= set(rows[0])
    for r in rows:
        for key in numeric:
            assert math.isfinite(float(r[key])), (key, r[key])
    with open(stem + '.json') as f:
        data = json.load(f)
    assert len(data['rows']) == num_rows
    assert {'cpu_count', 'threads', 'note', 'title'} <= set(data['meta'])
    # which optional packages were installed (they change speed and memory)
    assert set(data['meta']['installed']) == {'pandas', 'lap', 'ortools'}
    with open(stem + '.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    return data['rows']
