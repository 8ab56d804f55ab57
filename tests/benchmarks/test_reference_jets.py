import json

import pytest

from tests.conftest import load_script


@pytest.fixture(scope='module')
def ref():
    return load_script('benchmarks/reference_jets.py')


def test_scores_of_label_lists(ref):
    # jet 1 (bottom): all three tracks put together, truth {0, 1} {2}: one
    # true pair of three predicted -> P 1/3, R 1, F1 1/2, RI 1/3, ARI 0;
    # jet 2 (light): exact -> F1 = RI = ARI = 1
    res = ref.scores([[0, 0, 0], [3, 3, 1, 1]], [[0, 0, 1], [0, 0, 2, 2]],
                     [5, 0])
    assert res['bottom']['f1'] == pytest.approx(0.5)
    assert res['bottom']['ri'] == pytest.approx(1 / 3)
    assert res['bottom']['ari'] == pytest.approx(0.0)
    assert res['light'] == pytest.approx({'f1': 1.0, 'ri': 1.0, 'ari': 1.0,
                                          'precision': 1.0, 'recall': 1.0,
                                          'n': 1})
    assert 'charm' not in res and res['all']['n'] == 2
    assert res['all']['f1'] == pytest.approx(0.75)
    with pytest.raises(ValueError, match='another number of tracks'):
        ref.scores([[0, 0]], [[0, 0, 1]], [5])
    with pytest.raises(ValueError, match='2 predictions for 1 jets'):
        ref.scores([[0], [0]], [[0]], [5])


def test_score_writes_rows_like_the_jets_benchmark(ref, tmp_path):
    dump = {'seed': 3, 'threads': 1, 'cpu_minutes': 60.2,
            'best_cpu_minutes': 41.0, 'batches': 400, 'epochs': 50,
            'wall_minutes': 70.0, 'argv': ['train', 'h'],
            'curve': [{'epoch': 1, 'cpu_minutes': 1.0, 'val_loss': 0.5}],
            'pred': [[0, 0, 1], [0, 0, 0], [1, 0]],
            'pred_last': [[0, 0, 0], [0, 0, 0], [0, 0]],
            'target': [[0, 0, 1], [0, 0, 0], [0, 0]], 'flavour': [5, 4, 0]}
    path = tmp_path / 'dump.json'
    path.write_text(json.dumps(dump))
    out = ref.main(['score', str(path), '--out', str(tmp_path / 'out')])
    rows = {r['flavour']: r for r in out['rows']}
    assert list(rows) == ['bottom', 'charm', 'light', 'all']
    assert all(r['model'] == 'reference' and r['seed'] == 3 and
               r['cpu_minutes'] == 60.2 for r in rows.values())
    assert rows['bottom']['ari'] == pytest.approx(1.0)
    assert rows['light']['f1'] == 0.0 and rows['light']['f1_last'] == 1.0
    assert rows['all']['n'] == 3
    saved = json.loads((tmp_path / 'out' / 'reference_jets.json')
                       .read_text())
    assert saved['meta']['curves'][0]['seed'] == 3


def test_train_names_what_is_missing(ref, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match='no partitioning_data.py in .*'
                                         'setup.sh'):
        ref.main(['train', str(tmp_path), '--dump', str(tmp_path / 'd')])
    (tmp_path / 'partitioning_data.py').write_text('')
    monkeypatch.delenv('RPH_JETS_DIR', raising=False)
    with pytest.raises(SystemExit, match='set RPH_JETS_DIR'):
        ref.main(['train', str(tmp_path), '--dump', str(tmp_path / 'd')])
