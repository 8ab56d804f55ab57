import numpy as np
import pytest
import torch

from torch_geometric_hyper.datasets import (
    HypergraphSets,
    read_sets_npz,
    write_sets_npz,
)
from torch_geometric_hyper.metrics import hyperedge_sets
from torch_geometric_hyper.nn import HypergraphRefiner, load_model, save_model
from torch_geometric_hyper.predict import main, predict


def sets(num=5, seed=0):
    gen = np.random.default_rng(seed)
    return [(gen.normal(size=(int(gen.integers(5, 9)), 3)), None)
            for _ in range(num)]


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 16, max_edges=6, num_iterations=3)
    # a large existence bias so that slots exist and duplicates appear
    torch.nn.init.constant_(model.steps[0].lin_exist.bias, 3.0)
    path = str(tmp_path / 'model.pt')
    save_model(model, path, edge_size=3)
    return path, model


def test_save_load_round_trip(model_file):
    path, model = model_file
    loaded, meta = load_model(path)
    assert meta == {'edge_size': 3} and not loaded.training
    assert loaded.config() == model.config()
    x = torch.randn(7, 3)
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    model.eval()
    a = model(x, generator=gen())
    b = loaded(x, generator=gen())
    assert torch.equal(a.incidence_logit, b.incidence_logit)


def test_predict_command_npz_and_csv(model_file, tmp_path, capsys):
    path, model = model_file
    inp, out = str(tmp_path / 'in.npz'), str(tmp_path / 'out.npz')
    write_sets_npz(inp, sets())
    main(['--checkpoint', path, '--input', inp, '--output', out,
          '--keep-duplicates'])
    assert '5 sets' in capsys.readouterr().err
    got = read_sets_npz(out)
    assert [len(x) for x, _ in got] == [len(x) for x, _ in sets()]
    # the same as decoding the model's prediction directly
    loaded, _ = load_model(path)
    ds = HypergraphSets(sets())
    expect, _ = predict(loaded, ds, edge_size=3, unique=False)
    assert [h for _, h in got] == expect
    assert all(len(e) == 3 for _, h in got for e in h)  # edge_size kept
    arrays = np.load(out)
    assert arrays['existence'].shape == (arrays['num_hyperedges'].sum(), )
    assert (arrays['existence'] > 0.5).all()
    # duplicates dropped by default (and there were some)
    assert sum(len(h) - len(set(map(tuple, h))) for _, h in got) > 0
    main(['--checkpoint', path, '--input', inp, '--output', out])
    uniq = read_sets_npz(out)
    for (_, h), (_, u) in zip(got, uniq):
        assert sorted(map(tuple, u)) == sorted(set(map(tuple, h)))
    # CSV out
    csv_out = tmp_path / 'out.csv'
    main(['--checkpoint', path, '--input', inp, '--output', str(csv_out)])
    lines = csv_out.read_text().splitlines()
    assert lines[0] == 'set,hyperedge,node'
    assert len(lines) - 1 == sum(len(e) for _, h in uniq for e in h)


def test_predict_command_errors(model_file, tmp_path):
    path, _ = model_file
    inp = str(tmp_path / 'in.npz')
    write_sets_npz(inp, sets())
    out = str(tmp_path / 'out.npz')
    with pytest.raises(SystemExit, match='no checkpoint at'):
        main(['--checkpoint', str(tmp_path / 'x.pt'), '--input', inp,
              '--output', out])
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'garbage')
    with pytest.raises(SystemExit, match='junk.pt is not a readable torch'):
        main(['--checkpoint', str(junk), '--input', inp, '--output', out])
    plain = str(tmp_path / 'weights.pt')
    torch.save({'model': {}}, plain)
    with pytest.raises(SystemExit, match='no model configuration'):
        main(['--checkpoint', plain, '--input', inp, '--output', out])
    with pytest.raises(SystemExit, match='no file at'):
        main(['--checkpoint', path, '--input', str(tmp_path / 'none.npz'),
              '--output', out])
    wrong = str(tmp_path / 'wrong.npz')
    write_sets_npz(wrong, [(np.zeros((4, 2)), None)])
    with pytest.raises(SystemExit, match='takes 3 features .* have 2'):
        main(['--checkpoint', path, '--input', wrong, '--output', out])
    with pytest.raises(SystemExit, match='must be a .npz or .csv'):
        main(['--checkpoint', path, '--input', inp, '--output',
              str(tmp_path / 'out.txt')])


def test_example_checkpoint_predicts(tmp_path):
    # a checkpoint of the convex-hull example loads with one call
    from tests.conftest import load_script
    mod = load_script('examples/convex_hull.py')
    mod.main(['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
              '--num-points', '8', '--train-samples', '32', '--val-samples',
              '8', '--test-samples', '8', '--hidden', '8', '--T', '2', '--B',
              '1', '--S', '2', '--batch-size', '32', '--epochs', '1',
              '--no-progress'])
    model, meta = load_model(str(tmp_path / 'run' / 'best.pt'))
    assert isinstance(model, HypergraphRefiner) and meta['edge_size'] == 3
    inp, out = str(tmp_path / 'pts.npz'), str(tmp_path / 'edges.npz')
    write_sets_npz(inp, sets(3))
    main(['--checkpoint', str(tmp_path / 'run' / 'best.pt'), '--input', inp,
          '--output', out])
    assert all(len(e) == 3 for _, h in read_sets_npz(out) for e in h)
