import csv
import json

from tests.conftest import load_script


def load():
    return load_script('benchmarks/memory_scaling.py')


def test_quick_run_writes_table_csv_json_png(tmp_path, capsys):
    mod = load()
    rows = mod.main(['--quick', '--sizes', '6', '--hidden', '8',
                     '--tuple-channels', '8', '--max-gb', '0.00001',
                     '--out', str(tmp_path)])
    text = capsys.readouterr().out
    assert 'peak memory' in text and 'computed' in text
    # 1 size x 4 models + the 10-D case (refiner, set2graph_full)
    assert len(rows) == 6
    assert {r['model'] for r in rows} == {'refiner', 'refiner_sparse',
                                          'set2graph_local', 'set2graph_full'}
    with open(tmp_path / 'memory_scaling.csv') as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6
    for row in table:
        assert row['status'] in ('measured', 'computed'), row
        if row['status'] == 'measured':
            assert int(row['peak_bytes']) >= 0
        else:  # too big for the limit: size computed, not run
            assert int(row['computed_bytes']) > int(row['limit_bytes'])
    ten_d = [r for r in table if r['dim'] == '10' and r['model'] ==
             'set2graph_full']
    assert ten_d[0]['status'] == 'computed'
    assert int(ten_d[0]['computed_bytes']) > 500e9  # the wall
    with open(tmp_path / 'memory_scaling.json') as f:
        data = json.load(f)
    assert len(data['rows']) == 6 and 'ru_maxrss' in data['meta']['measure']
    with open(tmp_path / 'memory_scaling.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
