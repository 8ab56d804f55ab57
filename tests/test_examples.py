import importlib.util
import os.path as osp

import pytest

from tests.conftest import load_script, write_fake_jets

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(name):
    return load_script(f'examples/{name}.py')


def test_convex_hull_example_runs_and_resumes(tmp_path, capsys):
    mod = load('convex_hull')
    args = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
            '--num-points', '8', '--train-samples', '64', '--val-samples',
            '16', '--test-samples', '16', '--hidden', '16', '--T', '4',
            '--B', '1', '--S', '2', '--batch-size', '32', '--epochs', '1',
            '--no-progress']
    out = mod.main(args)
    assert 0.0 <= out['test']['f1'] <= 1.0
    assert osp.exists(tmp_path / 'run' / 'best.pt')
    assert osp.exists(tmp_path / 'run' / 'last.pt')
    text = capsys.readouterr().out
    assert 'val F1' in text and 'test F1' in text
    out = mod.main(args[:-2] + ['2', '--no-progress', '--resume'])
    assert 'resumed from' in capsys.readouterr().out


def test_quick_preset_arguments():
    mod = load('convex_hull')
    args = mod.parse_args(['--quick'])
    assert (args.hidden, args.T, args.B, args.S, args.batch_size, args.lr) \
        == (128, 16, 4, 2, 64, 3e-4)
    assert args.max_total_minutes <= 5.0 and args.val_samples == 256
    assert not args.activation_checkpointing  # stored activations
    assert args.out.endswith('_quick') and args.val_every == 50
    # an explicit flag wins over the preset
    assert mod.parse_args(['--quick', '--val-every', '7']).val_every == 7


@pytest.mark.parametrize('model', ['set2graph', 'set_transformer',
                                   'slot_attention', 'stacked'])
def test_convex_hull_example_every_model(model, tmp_path, capsys):
    mod = load('convex_hull')
    out = mod.main(['--model', model, '--root', str(tmp_path / 'data'),
                    '--out', str(tmp_path / 'run'), '--num-points', '8',
                    '--train-samples', '64', '--val-samples', '16',
                    '--test-samples', '16', '--hidden', '16', '--T', '2',
                    '--B', '1', '--S', '2', '--batch-size', '32',
                    '--epochs', '1', '--max-minutes', '0.5',
                    '--no-progress'])
    assert 0.0 <= out['test']['f1'] <= 1.0
    assert out['model'] == model and out['parameters'] > 0
    text = capsys.readouterr().out
    assert f"with {out['parameters']:,} parameters" in text
    assert 'test F1' in text


def test_convex_hull_example_candidates(tmp_path, capsys):
    # --candidates K: the refiner keeps K candidate nodes per slot
    mod = load('convex_hull')
    common = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'r'),
              '--num-points', '12', '--train-samples', '16',
              '--val-samples', '8', '--test-samples', '8', '--hidden', '8',
              '--T', '2', '--B', '1', '--S', '1', '--batch-size', '8',
              '--epochs', '1', '--no-progress']
    out = mod.main(common + ['--candidates', '4'])
    assert 0.0 <= out['test']['f1'] <= 1.0
    assert 'num_candidates=4' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="'num_candidates' must be a "
                                         "positive integer"):
        mod.main(common + ['--candidates', '0'])
    with pytest.raises(SystemExit, match='--candidates applies to the '
                                         'refiners'):
        mod.main(common + ['--candidates', '4', '--model',
                           'set_transformer'])


def test_convex_hull_example_set2graph_refuses_the_10d_hull(tmp_path):
    mod = load('convex_hull')
    with pytest.raises(SystemExit, match=r'cannot run .*13\^10 tuples'):
        mod.main(['--model', 'set2graph', '--s2g-neighbours', '0',
                  '--root', str(tmp_path / 'data'),
                  '--out', str(tmp_path / 'run'), '--dim', '10',
                  '--num-points', '13', '--train-samples', '8',
                  '--val-samples', '4', '--test-samples', '4',
                  '--hidden', '16', '--no-progress'])


@pytest.mark.parametrize('model', ['refiner', 'set2graph'])
def test_delaunay_example_models(model, tmp_path, capsys):
    mod = load('delaunay')
    out = mod.main(['--model', model, '--root', str(tmp_path / 'data'),
                    '--out', str(tmp_path / 'run'), '--num-points', '10',
                    '--train-samples', '32', '--val-samples', '8',
                    '--test-samples', '8', '--hidden', '16',
                    '--T', '2', '--B', '1', '--S', '2', '--batch-size',
                    '16', '--epochs', '1'])
    assert 0.0 <= out['f1'] <= 1.0 and out['parameters'] > 0
    assert f"{out['parameters']:,} parameters" in capsys.readouterr().out


@pytest.mark.parametrize('model', ['refiner', 'set2graph'])
def test_particle_partitioning_example_models(model, tmp_path, capsys):
    mod = load('particle_partitioning')
    raw = write_fake_jets(tmp_path / 'raw_files')
    out = mod.main(['--model', model, '--root', str(tmp_path / 'data'),
                    '--raw-dir', str(raw), '--hidden', '16',
                    '--s2g-hidden', '16', '--s2g-tuple-channels', '16',
                    '--T', '2', '--B', '1', '--S', '2', '--batch-size',
                    '16', '--epochs', '2', '--no-progress'])
    assert set(out) >= {'all'} and out['all']['n'] == 24
    for row in out.values():
        assert all(0.0 <= row[k] <= 1.0 for k in ('f1', 'ri'))
        assert -1.0 <= row['ari'] <= 1.0
    text = capsys.readouterr().out
    assert f'{model}, best validation checkpoint (test)' in text
    assert f'{model} (' in text and ' parameters): training time' in text
    name = 'checkpoints' if model == 'refiner' else 'checkpoints_set2graph'
    assert (tmp_path / 'data' / name / 'best.pt').exists()
    if importlib.util.find_spec('matplotlib') is not None:
        for pic in ('learning_curve.png', 'prediction.png'):
            assert (tmp_path / 'data' / name / pic).exists()


def test_convex_hull_example_stops_on_nan_and_keeps_checkpoint(
        tmp_path, monkeypatch, capsys):
    mod = load('convex_hull')
    args = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
            '--num-points', '8', '--train-samples', '64', '--val-samples',
            '16', '--test-samples', '16', '--hidden', '16', '--T', '2',
            '--B', '1', '--S', '2', '--batch-size', '32', '--epochs', '1',
            '--val-every', '1', '--no-progress']
    real = mod.MatchedIncidenceLoss.over_steps
    calls = [0]

    def poisoned(self, predictions, data):
        # the trainer hands each update's predictions to over_steps (the
        # validation calls the loss itself)
        loss, value = real(self, predictions, data)
        calls[0] += 1
        # the third training update (the second batch) goes NaN
        if calls[0] == 3:
            return loss * float('nan'), float('nan')
        return loss, value

    import torch
    monkeypatch.setattr(mod.MatchedIncidenceLoss, 'over_steps', poisoned)
    with pytest.raises(SystemExit, match=r'stopped at step 2 \(epoch 0, '
                                         r'batch 2 of 2\): the training '
                                         r'loss is nan'):
        mod.main(args)
    ckpt = torch.load(tmp_path / 'run' / 'last.pt', weights_only=True)
    assert ckpt['state']['step'] == 1  # the last good one
    # with --skip-nonfinite the run goes on and reports the count
    calls[0] = 0
    out = mod.main(args + ['--skip-nonfinite'])
    assert 'skipped 1 batches with a non-finite loss' in \
        capsys.readouterr().out
    assert out['test']['f1'] >= 0.0


def test_examples_write_their_pictures(tmp_path):
    pytest.importorskip('matplotlib')
    common = ['--train-samples', '32', '--val-samples', '8',
              '--test-samples', '8', '--hidden', '8', '--T', '2', '--B', '1',
              '--S', '2', '--batch-size', '16', '--epochs', '1',
              '--val-every', '1', '--no-progress']
    for name, extra in (('convex_hull', ['--num-points', '8']),
                        ('delaunay', ['--num-points', '12'])):
        out = tmp_path / name
        load(name).main(['--root', str(tmp_path / f'{name}_data'), '--out',
                         str(out)] + extra + common)
        for pic in ('learning_curve.png', 'prediction.png'):
            with open(out / pic, 'rb') as f:
                assert f.read(4) == b'\x89PNG', (name, pic)


def test_no_progress_silences_dataset_generation(tmp_path, capfd):
    load('convex_hull').main([
        '--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
        '--num-points', '8', '--train-samples', '16', '--val-samples', '8',
        '--test-samples', '8', '--hidden', '8', '--T', '2', '--B', '1',
        '--S', '2', '--batch-size', '16', '--epochs', '1', '--no-progress'])
    err = capfd.readouterr().err
    assert 'Generating' not in err and '\r' not in err


def test_progress_in_a_log_has_no_carriage_returns(tmp_path, capfd):
    # output captured (not a terminal): a few plain lines, no '\r' bars
    load('convex_hull').main([
        '--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
        '--num-points', '8', '--train-samples', '64', '--val-samples', '8',
        '--test-samples', '8', '--hidden', '8', '--T', '2', '--B', '1',
        '--S', '2', '--batch-size', '8', '--epochs', '1'])
    out, err = capfd.readouterr()
    assert '\r' not in err and '\r' not in out
    assert 'epoch 0: 8/8 (100%' in err  # the epoch's closing line
    assert len(err.splitlines()) < 20
