"""Train small, predict large: the benchmark script, its windows, the
graph refiner's scale-free pair geometry and the predict CLI's slot
count."""
import json

import numpy as np
import pytest
import torch

from tests.benchmarks.helpers import run_script
from tests.conftest import load_script

NAME = 'size_generalization_quick'


def _rows(tmp_path):
    with open(tmp_path / 'out' / f'{NAME}.json') as f:
        return json.load(f)


def test_quick_hull_then_delaunay_merged(tmp_path):
    run_script('size_generalization', ['--task', 'hull'], tmp_path)
    first = _rows(tmp_path)
    hull = first['rows']
    assert hull and {r['task'] for r in hull} == {'hull'}
    for r in hull:
        assert {'train_n', 'test_n', 'f1', 'f1_reference', 'f1_unique',
                'cpu_minutes', 'T_test', 'candidate_coverage',
                's_per_set', 'peak_mib'} <= set(r)
        assert 0.0 <= r['f1'] <= r['f1_reference'] <= 1.0
        assert 0.0 <= r['candidate_coverage'] <= 1.0
        assert r['cpu_minutes'] > 0 and r['steps'] >= 1
    main = [r for r in hull if not r.get('ablation')]
    assert {(r['test_n'], r['T_test']) for r in main} == {
        (20, 4), (20, 8), (40, 4), (40, 8)}
    # slots scale with n unless the ablation keeps the training count
    assert all(r['m'] == 2 * r['test_n'] - 4 for r in main)
    ablation = [r for r in hull if r.get('ablation')]
    assert [r['m'] for r in ablation] == [2 * 20 - 4]
    assert set(first['meta']['commands']) == {'hull'}

    run_script('size_generalization', ['--task', 'delaunay', '--merge',
                                       '--figure', tmp_path / 'f.png'],
               tmp_path)
    data = _rows(tmp_path)
    assert set(data['meta']['commands']) == {'hull', 'delaunay'}
    assert [r for r in data['rows'] if r['task'] == 'hull'] == hull
    dl = [r for r in data['rows'] if r['task'] == 'delaunay']
    assert {(r['test_n'], r['mode']) for r in dl} == {
        (60, 'direct'), (300, 'direct'), (300, 'windows')}
    for r in dl:
        for key in ('precision', 'recall', 'f1', 'accuracy',
                    'candidate_coverage'):
            assert 0.0 <= r[key] <= 1.0
        assert r['train_n'] == 60 and r['cpu_minutes'] > 0
    with open(tmp_path / 'f.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert not (tmp_path / 'out' / f'{NAME}.csv').exists()


def test_windows_cores_tile_the_set():
    mod = load_script('benchmarks/size_generalization.py')
    pts = np.random.default_rng(0).random((5000, 2)) * [2.0, 1.0]
    wins = mod.windows(pts, 400, 0.15)
    assert len(wins) > 10
    owners = np.zeros(len(pts), int)
    for idx, c_lo, c_hi, b_lo, side in wins:
        core = np.all((pts >= c_lo) & (pts < c_hi), 1)
        owners += core
        # the core lies in the box, whose points the window holds
        assert set(np.nonzero(core)[0]) <= set(idx.tolist())
        assert np.all(b_lo - 1e-9 <= c_lo)
        assert np.all(c_hi <= b_lo + side + 1e-9)
    assert (owners == 1).all()
    sizes = [len(w[0]) for w in wins]
    assert 250 < np.median(sizes) < 550  # about 400 points per window
    # a set smaller than a window is one window
    assert len(mod.windows(pts[:300], 400, 0.15)) == 1


def test_windowed_prediction_finds_edges_across_cores():
    from torch_geometric_hyper.nn import GraphRefiner
    mod = load_script('benchmarks/size_generalization.py')
    torch.manual_seed(0)
    model = GraphRefiner(2, 8, 2, knn=6).eval()
    with torch.no_grad():  # a model that predicts every candidate
        model.steps[0].lin_pair_out.bias.fill_(50.0)
        model.steps[0].lin_pair_out.weight.zero_()
        x = torch.rand(2000, 2)
        edges, cands = mod.predict_windows(model, x, 2, 300, 0.2)
    assert edges.shape == cands.shape and (edges[0] < edges[1]).all()
    # the pairs are unique and stay within the set
    assert len({tuple(e) for e in edges.T}) == edges.shape[1]
    assert edges.max() < 2000


def test_pair_geometry_is_scale_free():
    from torch_geometric_hyper.nn import GraphRefiner, load_model, \
        save_model
    from torch_geometric_hyper.nn.graph_refiner import local_scale
    torch.manual_seed(0)
    model = GraphRefiner(2, 16, 3, knn=6, pair_geometry=8).eval()
    x = torch.rand(80, 2)
    with torch.no_grad():
        a = model._pair_bias(model.init_state(x))
        b = model._pair_bias(model.init_state(x * 7.0))
    assert torch.allclose(a, b, atol=1e-5)
    # on a square grid of spacing h, the 4 nearest neighbours are at h
    grid = torch.stack(torch.meshgrid(torch.arange(10.), torch.arange(10.),
                                      indexing='ij'), -1).view(-1, 2) * 0.5
    inner = ((grid > 0) & (grid < 4.5)).all(1)
    assert torch.allclose(local_scale(grid, 4)[inner], torch.tensor(0.5))
    # without pair_geometry the model has no geometric term
    assert GraphRefiner(2, 16, 3, knn=6)._pair_bias(
        model.init_state(x)) is None


def test_pair_geometry_saves_and_loads(tmp_path):
    from torch_geometric_hyper.nn import GraphRefiner, load_model, \
        save_model
    torch.manual_seed(0)
    model = GraphRefiner(2, 16, 3, knn=6, pair_geometry=8).eval()
    save_model(model, str(tmp_path / 'm.pt'))
    loaded, _ = load_model(str(tmp_path / 'm.pt'))
    x = torch.rand(40, 2)
    with torch.no_grad():
        assert torch.equal(model(x).logit, loaded(x).logit)
    with pytest.raises(ValueError, match='pair_geometry'):
        GraphRefiner(2, 16, 3, pair_geometry=0)


def test_slot_count_rules():
    from torch_geometric_hyper.predict import slot_count
    assert slot_count('2n-4', 1000) == 1996
    assert slot_count('2*n', 10) == 20
    assert slot_count('n+3', 10) == 13
    assert slot_count('196', 10000) == 196
    assert slot_count(7, 10000) == 7
    for bad in ('2m-4', 'n-20', '', 0):
        with pytest.raises(ValueError):
            slot_count(bad, 10)


def test_predict_with_more_slots_than_trained(tmp_path):
    from torch_geometric_hyper.datasets import write_sets_npz
    from torch_geometric_hyper.nn import HypergraphRefiner, save_model
    from torch_geometric_hyper.predict import main
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, 6, 2, num_candidates=4)
    save_model(model, str(tmp_path / 'm.pt'), edge_size=3)
    pts = np.random.default_rng(0).normal(size=(60, 3))
    write_sets_npz(str(tmp_path / 'in.npz'), [(pts, None)])
    out = tmp_path / 'out.npz'
    main(['--checkpoint', str(tmp_path / 'm.pt'), '--input',
          str(tmp_path / 'in.npz'), '--output', str(out), '--max-edges',
          '2n-4', '--candidates', '5', '--iterations', '3',
          '--existence-threshold', '0', '--keep-duplicates'])
    from torch_geometric_hyper.datasets import read_sets_npz
    (_, edges), = read_sets_npz(str(out))
    # every one of the 2n - 4 = 116 slots decodes to a hyperedge
    assert len(edges) == 116 and all(len(e) == 3 for e in edges)
    with pytest.raises(SystemExit):
        main(['--checkpoint', str(tmp_path / 'm.pt'), '--input',
              str(tmp_path / 'in.npz'), '--output', str(out),
              '--max-edges', 'lots'])


def test_finetune_only_adds_rows_to_a_saved_run(tmp_path):
    model = tmp_path / 'm.pt'
    run_script('size_generalization', ['--task', 'hull', '--test-T', 4,
                                       '--save-model', model], tmp_path)
    before = _rows(tmp_path)['rows']
    run_script('size_generalization', [
        '--task', 'hull', '--test-T', 4, '--load-model', model,
        '--finetune-only', '--finetune-minutes', 0.01, '--merge'],
        tmp_path)
    data = _rows(tmp_path)
    tuned = [r for r in data['rows'] if r.get('finetuned')]
    assert data['rows'][:len(before)] == before
    assert [(r['test_n'], r['T_test']) for r in tuned] == [(40, 4)]
    # the budget of the saved training, and the fine-tune's own
    assert tuned[0]['cpu_minutes'] == before[0]['cpu_minutes']
    assert tuned[0]['finetune_cpu_minutes'] > 0
    assert set(data['meta']['commands']) == {'hull', 'hull_finetune'}
