"""SetToHypergraphModule, SetLoader and the Lightning command line."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.conftest import write_fake_jets

L = pytest.importorskip('lightning')

from torch_geometric_hyper.datasets import ConvexHull  # noqa: E402
from torch_geometric_hyper.lightning import (  # noqa: E402
    SetLoader,
    SetToHypergraphModule,
)
from torch_geometric_hyper.nn import (  # noqa: E402
    HypergraphRefiner,
    MatchedIncidenceLoss,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tests', 'lightning', 'run_trainer.py')


def env():
    out = dict(os.environ, OMP_NUM_THREADS='1')
    out['PYTHONPATH'] = ROOT + os.pathsep + out.get('PYTHONPATH', '')
    return out


def run_script(out, *args):
    os.makedirs(out, exist_ok=True)
    res = subprocess.run([sys.executable, SCRIPT, str(out), *args],
                         env=env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return torch.load(osp.join(out, 'result.pt'), weights_only=True)


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope='module')
def one_process(tmp_path_factory):
    base = tmp_path_factory.mktemp('lightning')
    return base, run_script(base / 'one', '1', '--root', str(base / 'data'))


def test_two_ddp_processes_equal_one_with_the_global_batch(one_process):
    """Trainer(strategy='ddp', devices=2, accelerator='cpu') on gloo, float64,
    5 batches of global size 8 (sets of 6-12 points split by size, the last
    batch of the epoch 6 sets): the parameters of one process."""
    base, one = one_process
    two = run_script(base / 'two', '2', '--root', str(base / 'data'))
    assert max_diff(one['params'], two['params']) <= 1e-12
    assert two['losses'] == pytest.approx(one['losses'], rel=1e-12, abs=0)
    assert len(one['losses']) == 5
    for key, value in one['metrics'].items():
        assert two['metrics'][key] == pytest.approx(value, rel=1e-9), key


def test_resume_from_a_mid_epoch_checkpoint_equals_the_uninterrupted_run(
        one_process):
    """A checkpoint after 2 of the epoch's 4 batches, resumed to the same 10
    optimizer steps: the same parameters, bit for bit, and the same losses
    for the batches after the checkpoint."""
    base, one = one_process
    out = base / 'resumed'
    run_script(out, '1', '--root', str(base / 'data'), '--max-steps', '4',
               '--ckpt-every', '4')
    ckpt = osp.join(out, 'ckpt', 'epoch=0-step=4.ckpt')
    assert osp.exists(ckpt)
    resumed = run_script(out, '1', '--root', str(base / 'data'), '--resume',
                         ckpt)
    assert max_diff(one['params'], resumed['params']) == 0.0
    assert resumed['losses'] == one['losses'][2:]


def test_the_training_step_is_fits(one_process, tmp_path):
    """The module's per-batch step is fit's: the same model, data and
    options give the same losses and parameters, bit for bit."""
    from torch_geometric_hyper.train import TrainConfig, fit
    base, one = one_process
    torch.set_num_threads(1)
    kw = dict(num_points=(6, 12), log=False)
    train = ConvexHull(str(base / 'data'), 'train', num_samples=30, **kw)
    val = ConvexHull(str(base / 'data'), 'val', num_samples=6, **kw)
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, max(train.max_hyperedges,
                                        val.max_hyperedges), 4).double()
    res = fit(model, MatchedIncidenceLoss(), train, config=TrainConfig(
        out=str(tmp_path / 'fit'), T=4, B=1, S=2, lr=3e-3, grad_clip=0.5,
        batch_size=8, max_steps=5, dtype='float64', progress=False))
    with open(res.log_path) as f:
        losses = [json.loads(line)['loss'] for line in f]
    assert losses == one['losses']
    assert max_diff(model.state_dict(), one['params']) == 0.0


def _tiny(tmp_path, **kw):
    train = ConvexHull(str(tmp_path), 'train', num_samples=16, num_points=8,
                       log=False)
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, train.max_hyperedges, 2)
    return train, SetToHypergraphModule(model, MatchedIncidenceLoss(), T=2,
                                        B=1, S=1, **kw)


def _trainer(**kw):
    return L.Trainer(accelerator='cpu', devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False,
                     use_distributed_sampler=False, **kw)


@pytest.mark.parametrize('metrics, keys', [
    ('hyperedges', {'val/f1', 'val/f1_reference', 'val/f1_dedup',
                    'val/duplicates', 'val/loss'}),
    ('loss', {'val/loss'}),
])
def test_validation_logs_the_task_metrics(metrics, keys, tmp_path):
    train, module = _tiny(tmp_path, metrics=metrics, edge_size=3)
    trainer = _trainer(max_steps=2, num_sanity_val_steps=0)
    trainer.fit(module, SetLoader(train, 8),
                SetLoader(train[:8], 8, shuffle=False))
    logged = set(trainer.callback_metrics)
    assert keys | {'train/loss'} <= logged
    assert module.batches_trained == 2


def test_bad_arguments_name_the_fix(tmp_path):
    model = HypergraphRefiner(3, 8, 4, 2)
    with pytest.raises(ValueError, match="'schedule' must be one of"):
        SetToHypergraphModule(model, MatchedIncidenceLoss(), schedule='adam')
    with pytest.raises(ValueError, match="'metrics' must be one of"):
        SetToHypergraphModule(model, MatchedIncidenceLoss(), metrics='acc')
    with pytest.raises(ValueError, match="'lr' must be a positive number"):
        SetToHypergraphModule(model, MatchedIncidenceLoss(), lr=-1.0)
    with pytest.raises(ValueError, match=r'B \* S <= T'):
        SetToHypergraphModule(model, MatchedIncidenceLoss(), T=4, B=4, S=2)


def test_importing_without_lightning_names_the_extra():
    code = ('import sys; sys.modules["lightning"] = None\n'
            'import torch_geometric_hyper\n'
            'try:\n'
            '    import torch_geometric_hyper.lightning\n'
            'except ImportError as e:\n'
            '    print(e)\n')
    res = subprocess.run([sys.executable, '-c', code], env=env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "pip install 'torch_geometric_hyper[lightning]'" in res.stdout


# -- the command line ---------------------------------------------------
def cli(*args, cwd=None):
    return subprocess.run([sys.executable, '-m',
                           'torch_geometric_hyper.lightning', *args],
                          env=env(), capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_cli_prints_its_config():
    res = cli('fit', '--config', osp.join(ROOT, 'examples', 'configs',
                                          'convex_hull.yaml'),
              '--print_config')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'torch_geometric_hyper.nn.HypergraphRefiner' in res.stdout
    assert 'use_distributed_sampler: false' in res.stdout


@pytest.mark.parametrize('task', ['convex_hull', 'delaunay', 'jets'])
def test_cli_trains_each_config_in_quick_settings(task, tmp_path):
    data = str(tmp_path / 'data')
    sizes = []
    if task == 'jets':
        write_fake_jets(osp.join(data, 'raw'), split_dirs=False)
        model = ['--model.model.init_args.hidden_channels', '8',
                 '--model.model.init_args.num_iterations', '4']
    else:
        sizes = ['--data.train.init_args.num_samples', '16',
                 '--data.val.init_args.num_samples', '4',
                 '--data.train.init_args.num_points', '8',
                 '--data.val.init_args.num_points', '8']
        model = ['--model.model.init_args.hidden_channels', '8',
                 '--model.model.init_args.num_iterations', '4']
        if task == 'convex_hull':
            model += ['--model.model.init_args.max_edges', '12']
    res = cli('fit', '--config', osp.join(ROOT, 'examples', 'configs',
                                          f'{task}.yaml'),
              '--trainer.max_steps', '2', '--trainer.val_check_interval',
              '1', '--trainer.logger', 'false',
              '--trainer.enable_progress_bar', 'false',
              '--trainer.default_root_dir', str(tmp_path / 'run'),
              '--data.train.init_args.root', data,
              '--data.val.init_args.root', data, '--data.batch_size', '8',
              '--data.eval_batch_size', '8', '--model.T', '4', '--model.B',
              '1', '--model.S', '1', *sizes, *model, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    ckpts = os.listdir(tmp_path / 'run' / 'checkpoints')
    assert 'last.ckpt' in ckpts
