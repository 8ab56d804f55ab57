"""fit: exact resume, data parallel, devices, through the examples and the
Python API.

The resume and data-parallel tests run ``examples/convex_hull.py`` in
subprocesses with a tiny refiner (a few seconds each).
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import DEVICES, load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLE = osp.join(ROOT, 'examples', 'convex_hull.py')


def load(name):
    return load_script(f'examples/{name}.py')


def env():
    out = dict(os.environ, OMP_NUM_THREADS='1')
    out['PYTHONPATH'] = ROOT + os.pathsep + out.get('PYTHONPATH', '')
    return out


# -- exact resume -------------------------------------------------------
TINY = ['--num-points', '8', '--train-samples', '240', '--val-samples', '8',
        '--test-samples', '8', '--hidden', '8', '--T', '4', '--B', '1',
        '--S', '2', '--batch-size', '8', '--epochs', '2', '--val-every', '7',
        '--save-every', '3', '--patience', '0', '--threads', '1',
        '--no-progress']


def command(out, root, *extra):
    return [sys.executable, EXAMPLE, '--root', str(root), '--out', str(out),
            *TINY, *extra]


def losses(out):
    with open(osp.join(out, 'log.jsonl')) as f:
        return [json.loads(line)['loss'] for line in f]


def weights(out, name='last.pt'):
    return torch.load(osp.join(out, name), weights_only=True)['model']


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp('resume')
    out = base / 'reference'
    res = subprocess.run(command(out, base / 'data'), env=env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(losses(out)) == 60  # 2 epochs of 30 batches
    return base, out


def wait_for_step(proc, log, step, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if osp.exists(log):
            with open(log) as f:
                lines = f.read().splitlines()
            if len(lines) >= step:
                return
        if proc.poll() is not None:
            pytest.fail(f'the run ended before step {step}: '
                        f'{proc.stderr.read()}')
        time.sleep(0.005)
    pytest.fail(f'no step {step} within {timeout} s')


def assert_same_run(out, ref):
    assert losses(out) == losses(ref)  # identical floats, every batch
    a, b = weights(out), weights(ref)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('sig', ['SIGINT', 'SIGKILL'])
def test_resume_equals_uninterrupted_run(reference, sig):
    base, ref = reference
    out = base / sig
    proc = subprocess.Popen(command(out, base / 'data'), env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for_step(proc, osp.join(out, 'log.jsonl'), 5 if sig == 'SIGINT'
                  else 20)
    proc.send_signal(getattr(signal, sig))
    stdout, _ = proc.communicate(timeout=120)
    ckpt = torch.load(osp.join(out, 'last.pt'), weights_only=True)
    step = ckpt['state']['step']
    if sig == 'SIGINT':
        assert proc.returncode == 130 and 'interrupted at step' in stdout
    else:
        assert proc.returncode == -signal.SIGKILL
    assert 0 < step < 60 and ckpt['state']['batch'] > 0  # mid-epoch
    res = subprocess.run(command(out, base / 'data', '--resume'), env=env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f'step {step}' in res.stdout and 'resumed from' in res.stdout
    assert_same_run(out, ref)
    assert not [f for f in os.listdir(out) if '.tmp' in f]


# -- data parallel ------------------------------------------------------
PARALLEL = {
    'convex_hull': ['--num-points', '6-12', '--hidden', '8', '--S', '2',
                    '--grad-clip', '0.5'],
    'delaunay': ['--num-points', '6-12', '--hidden', '8', '--S', '2'],
}


def torchrun(script, *args, nproc=2, **extra_env):
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run',
                           '--standalone', '--nproc_per_node', str(nproc),
                           script, *args], env=dict(env(), **extra_env),
                          capture_output=True, text=True, timeout=300)


def history(out):
    return torch.load(osp.join(out, 'last.pt'),
                      weights_only=True)['state']['history']


@pytest.mark.parametrize('name', list(PARALLEL))
def test_two_processes_equal_one_process_with_the_global_batch(name,
                                                               tmp_path):
    """torchrun with 2 CPU processes (gloo), global batch 8 (4 + 4) ends
    with the parameters of 1 process with batch 8: float64, mixed set
    sizes, and a last batch of 1 set (one rank trains on a weight-0 copy).
    Both runs validate after every batch, and every validation metric of
    the 2-process run (each rank evaluates half of the sets, with each
    set's own slot noise; pooled ratios summed over the ranks) is the
    1-process run's."""
    script = osp.join(ROOT, 'examples', f'{name}.py')
    args = ['--root', str(tmp_path / 'data'), *PARALLEL[name],
            '--train-samples', '33', '--val-samples', '9',
            '--test-samples', '4', '--T', '4', '--B', '1',
            '--batch-size', '8', '--epochs', '1', '--val-every', '1',
            '--patience', '0', '--lr', '3e-3',
            '--dtype', 'float64', '--threads', '1', '--no-progress']
    one = subprocess.run([sys.executable, script, *args, '--out',
                          str(tmp_path / 'one')], env=env(),
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = torchrun(script, *args, '--out', str(tmp_path / 'two'))
    assert two.returncode == 0, two.stderr[-3000:]
    # rank 0 prints, alone
    assert two.stdout.count('best val F1') == 1, two.stdout
    a, b = weights(tmp_path / 'one'), weights(tmp_path / 'two')
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < 1e-12, diff
    la, lb = losses(tmp_path / 'one'), losses(tmp_path / 'two')
    assert len(la) == len(lb) == 5
    assert la == pytest.approx(lb, rel=1e-12, abs=0)
    ha, hb = history(tmp_path / 'one'), history(tmp_path / 'two')
    assert len(ha) == len(hb) == 5
    for va, vb in zip(ha, hb):
        assert va.keys() == vb.keys() and 'f1' in va
        for k in va:
            if k in ('train_seconds', 'cpu_seconds'):  # clocks differ
                continue
            assert va[k] == pytest.approx(vb[k], rel=1e-9, abs=1e-12), k
    # every validation records the training time spent so far
    for key in ('train_seconds', 'cpu_seconds'):
        spent = [h[key] for h in ha]
        assert spent[0] > 0 and spent == sorted(spent), key
    assert ha[-1]['loss'] > 0
    # the metrics move during training: the comparison is not of constants
    assert len({round(h['loss'], 9) for h in ha}) == 5


def test_a_nonfinite_loss_on_one_process_is_skipped_by_all(tmp_path):
    """--skip-nonfinite under torchrun: rank 1's loss goes NaN at its third
    update; both ranks skip that batch (no rank waits for the other's
    gradients) and the run ends with one skipped batch."""
    script = osp.join(ROOT, 'tests', 'train', 'fail_on_rank1.py')
    args = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
            '--num-points', '6-12', '--hidden', '8', '--train-samples', '32',
            '--val-samples', '4', '--test-samples', '4', '--T', '4',
            '--B', '1', '--S', '2', '--batch-size', '8', '--epochs', '1',
            '--threads', '1', '--no-progress', '--skip-nonfinite']
    res = torchrun(script, *args, FAIL='nan')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'skipped 1 batches with a non-finite loss' in res.stdout
    assert len(losses(tmp_path / 'run')) == 4
    res = torchrun(script, *[a for a in args if a != '--skip-nonfinite'],
                   '--out', str(tmp_path / 'stop'), FAIL='nan')
    assert res.returncode != 0
    assert 'the training loss is nan' in res.stdout + res.stderr


def _scaled_sum(loss_fn, model, kwargs, parts, sizes):
    """``sum_r W * w_r / w * loss(shard r)`` (``w_r``: the loss's weight of
    shard r, sets or pairs, ``loop.loss_weight``): what the averaged
    gradient of ``W`` processes back-propagates."""
    from torch_geometric_hyper.train import loss_weight
    values, w = [], []
    for part in parts:
        batch = part_batch(part, sizes)
        pred = model(batch.x, batch.batch, batch.num_graphs,
                     **kwargs(model, batch))
        values.append(loss_fn(pred, batch))
        w.append(loss_weight(loss_fn, pred, batch))
    return sum(v * len(parts) * wr / sum(w) for v, wr in zip(values, w))


def part_batch(part, sets):
    from torch_geometric.data import Batch
    batch = Batch.from_data_list([sets[i] for i in part])
    batch.set_index = torch.tensor(part)
    return batch


def _loss_cases(root):
    from torch_geometric_hyper.data import HypergraphData
    from torch_geometric_hyper.datasets import ConvexHull, Delaunay
    from torch_geometric_hyper.nn import (AdjacencyBCELoss, GraphRefiner,
                                         HypergraphRefiner,
                                         MatchedIncidenceLoss,
                                         PartitionLoss, SameVertexBCELoss,
                                         Set2Graph, SetTransformer)
    from torch_geometric_hyper.train import eval_slots
    kw = dict(num_points=(5, 12), num_samples=5, log=False)
    hulls = list(ConvexHull(str(root / 'hull'), **kw))
    graphs = list(Delaunay(str(root / 'delaunay'), **kw))
    gen = torch.Generator().manual_seed(0)
    partitions = []
    for n in (5, 9, 7, 12, 6):  # random vertex assignments
        edge = torch.randint(0, 3, (n,), generator=gen)
        partitions.append(HypergraphData(
            x=torch.randn(n, 10, generator=gen),
            hyperedge_index=torch.stack([torch.arange(n), edge])))
    m_hull = max(int(d.num_hyperedges) for d in hulls)
    slots = lambda model, batch: eval_slots(model, batch, 3)  # noqa: E731
    none = lambda model, batch: {}  # noqa: E731
    return [
        ('matched', HypergraphRefiner(3, 8, m_hull, 3),
         MatchedIncidenceLoss(), hulls, slots),
        ('matched-set-transformer', SetTransformer(3, 8, m_hull),
         MatchedIncidenceLoss(), hulls, slots),
        ('adjacency', GraphRefiner(2, 8, 3), AdjacencyBCELoss(), graphs,
         none),
        ('partition', HypergraphRefiner(10, 8, 3, 3), PartitionLoss(),
         partitions, slots),
        ('same-vertex', Set2Graph(10, 8), SameVertexBCELoss(),
         partitions, none),
    ]


def test_every_loss_splits_over_processes_as_the_loop_scales_it(tmp_path):
    """The loop scales rank r's loss by ``W * b_r / b``: that makes the
    averaged gradient the single-process gradient only if every loss is a
    mean over the sets of its batch. Checked for each loss with uneven
    shards (2 + 3 sets, and 1 + 1 + 3)."""
    for name, model, loss_fn, sets, kwargs in _loss_cases(tmp_path):
        model = model.double()
        sets = [d.apply(lambda t: t.double() if t.is_floating_point()
                        else t) for d in sets]
        whole = _scaled_sum(loss_fn, model, kwargs, [[0, 1, 2, 3, 4]], sets)
        grad = torch.autograd.grad(whole, list(model.parameters()),
                                   allow_unused=True)
        for split in ([[0, 1], [2, 3, 4]], [[3], [0], [1, 2, 4]]):
            parts = _scaled_sum(loss_fn, model, kwargs, split, sets) \
                / len(split)
            assert float(parts.detach()) == pytest.approx(
                float(whole.detach()), rel=1e-10), name
            g = torch.autograd.grad(parts, list(model.parameters()),
                                    allow_unused=True)
            for x, y in zip(grad, g):
                if x is None:
                    assert y is None
                else:
                    assert torch.allclose(x, y, rtol=1e-8, atol=1e-12), name


# -- devices and precision ----------------------------------------------
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('bf16', [False, True], ids=['fp32', 'bf16'])
def test_training_on_each_device(device, bf16, tmp_path):
    mod = load('convex_hull')
    args = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
            '--num-points', '8', '--train-samples', '32', '--val-samples',
            '8', '--test-samples', '8', '--hidden', '16', '--T', '4',
            '--B', '1', '--S', '2', '--batch-size', '16', '--epochs', '1',
            '--no-progress', '--device', device] + (['--bf16'] if bf16
                                                      else [])
    out = mod.main(args)
    assert 0.0 <= out['test']['f1'] <= 1.0 and out['steps'] == 2
    with open(tmp_path / 'run' / 'log.jsonl') as f:
        losses = [json.loads(line)['loss'] for line in f]
    assert len(losses) == 2 and all(0.0 < v < 10.0 for v in losses)
    ckpt = torch.load(tmp_path / 'run' / 'last.pt', weights_only=True)
    assert all(t.dtype == torch.float32 for t in ckpt['model'].values()
               if t.is_floating_point())  # autocast leaves weights fp32


# -- the Python API -----------------------------------------------------
def _api_setup(tmp_path, **changes):
    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import HypergraphRefiner, \
        MatchedIncidenceLoss
    from torch_geometric_hyper.train import TrainConfig
    kw = dict(num_points=8, log=False)
    train = ConvexHull(str(tmp_path / 'data'), 'train', num_samples=48, **kw)
    val = ConvexHull(str(tmp_path / 'data'), 'val', num_samples=8, **kw)
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, 12, 4)
    config = dict(out=str(tmp_path / 'run'), T=4, B=1, S=2, batch_size=8,
                  val_every=2, threads=1, progress=False, max_steps=6)
    config.update(changes)
    return model, MatchedIncidenceLoss(), train, val, TrainConfig(**config)


def test_fit_from_python_trains_keeps_checkpoints_and_resumes(tmp_path):
    from torch_geometric_hyper.train import FitResult, fit, \
        hyperedge_evaluator
    model, loss_fn, train, val, config = _api_setup(tmp_path)
    res = fit(model, loss_fn, train, val, config=config,
              evaluate=hyperedge_evaluator(edge_size=3))
    assert isinstance(res, FitResult)
    assert res.steps == 6 and res.stopped == 'max_steps'
    assert len(res.history) == 3 and 0.0 <= res.best_metric <= 1.0
    assert res.best_metric == max(h['f1'] for h in res.history)
    for path in (res.best_path, res.last_path, res.log_path):
        assert osp.exists(path)
    ref_losses, ref_weights = losses(config.out), weights(config.out)
    # the same run stopped after 3 batches, then resumed: the same losses
    # and weights, bit for bit
    out = tmp_path / 'resumed'
    model, loss_fn, _, _, first = _api_setup(tmp_path, out=str(out),
                                             max_steps=3)
    fit(model, loss_fn, train, val, config=first,
        evaluate=hyperedge_evaluator(edge_size=3))
    model, loss_fn, _, _, _ = _api_setup(tmp_path)
    torch.manual_seed(123)  # resume must not depend on the global RNG
    res = fit(model, loss_fn, train, val,
              config=first.replace(max_steps=6, resume=True),
              evaluate=hyperedge_evaluator(edge_size=3))
    assert res.steps == 6 and losses(out) == ref_losses
    w = weights(out)
    assert all(torch.equal(w[k], ref_weights[k]) for k in w)


def test_fit_without_validation_or_evaluator(tmp_path):
    from torch_geometric_hyper.train import fit
    model, loss_fn, train, val, config = _api_setup(tmp_path, max_steps=2)
    res = fit(model, loss_fn, train, config=config)  # no validation set
    assert res.steps == 2 and res.best_step == 2 and res.history == []
    assert osp.exists(res.best_path)
    res = fit(model, loss_fn, train, val, config=config)  # the val loss
    assert set(res.best_val) == {'loss'}
    assert res.best_metric == -res.best_val['loss']


def test_an_evaluations_score_picks_the_checkpoint_over_its_f1(tmp_path):
    from torch_geometric_hyper.train import fit
    from torch_geometric_hyper.utils import load_checkpoint
    model, loss_fn, train, val, config = _api_setup(tmp_path, max_steps=6)
    # F1 falls and the score rises over the three validations: the score
    # decides, and the best checkpoint is the last validation's weights
    calls = []

    def evaluate(model, batches):
        calls.append(len(calls))
        return {'f1': 1.0 - 0.1 * len(calls), 'score': 0.1 * len(calls)}
    res = fit(model, loss_fn, train, val, config=config, evaluate=evaluate)
    assert len(res.history) == 3
    assert res.best_step == 6 and res.best_metric == pytest.approx(0.3)
    best = load_checkpoint(res.best_path)['model']
    last = load_checkpoint(res.last_path)['model']
    assert all(torch.equal(best[k], last[k]) for k in best)
    with pytest.raises(ValueError, match="must return 'score' or 'f1'"):
        fit(model, loss_fn, train, val, config=config.replace(
            out=str(tmp_path / 'bad')), evaluate=lambda m, b: {'x': 1.0})


def test_resume_refuses_changed_training_options(tmp_path):
    from torch_geometric_hyper.train import fit
    model, loss_fn, train, val, config = _api_setup(tmp_path, max_steps=2)
    fit(model, loss_fn, train, val, config=config)
    with pytest.raises(ValueError, match=r"other options \(lr 0.0003 -> "
                                         r"0.001\)"):
        fit(model, loss_fn, train, val,
            config=config.replace(resume=True, lr=1e-3, max_steps=3))
    with pytest.raises(ValueError, match=r'training sets 48 -> 40'):
        fit(model, loss_fn, train[:40], val,
            config=config.replace(resume=True, max_steps=3))
    with pytest.raises(FileNotFoundError, match='no checkpoint at'):
        fit(model, loss_fn, train, val,
            config=config.replace(resume=True, out=str(tmp_path / 'none')))


@pytest.mark.parametrize('field, value, match', [
    ('batch_size', 0, r'batch_size \(--batch-size\) must be a positive '
                      r'integer, got 0'),
    ('T', 2.5, r'T \(--T\) must be a positive integer, got 2.5'),
    ('grad_clip', -1.0, r'grad_clip \(--grad-clip\) must be a positive '
                        r'number or None'),
    ('method', 'adam', r"method \(--method\) must be one of"),
    ('max_steps', -1, r'max_steps \(--max-steps\) must be a non-negative'),
    ('progress', True, None),
    ('compile', None, None),
    ('compile', 1, r'compile \(--compile\) must be True, False or None'),
])
def test_train_config_validates_every_field(field, value, match):
    from torch_geometric_hyper.train import TrainConfig
    if match is None:
        assert getattr(TrainConfig(**{field: value}), field) == value
        return
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


class _Payload:
    """Pickles to a call that creates a file when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_checkpoints_with_code_are_refused_unread(tmp_path):
    """A checkpoint whose metadata holds a pickled payload does not run it:
    loading through fit's resume, nn.load_model and the predict command
    refuses the file with a clear error, and the payload's file is never
    created."""
    from torch_geometric_hyper import predict
    from torch_geometric_hyper.nn import load_model
    from torch_geometric_hyper.train import fit
    from torch_geometric_hyper.utils import load_checkpoint
    model, loss_fn, train, val, config = _api_setup(tmp_path, max_steps=1)
    fit(model, loss_fn, train, val, config=config)
    ckpt = torch.load(osp.join(config.out, 'last.pt'), weights_only=True)
    marker = tmp_path / 'pwned'
    ckpt['metadata'] = {'note': _Payload(marker)}
    torch.save(ckpt, osp.join(config.out, 'last.pt'))
    with pytest.raises(ValueError, match='refusing to load'):
        load_checkpoint(osp.join(config.out, 'last.pt'))
    with pytest.raises(ValueError, match='refusing to load'):
        load_model(osp.join(config.out, 'last.pt'))
    with pytest.raises(ValueError, match='refusing to load'):
        fit(model, loss_fn, train, val, config=config.replace(resume=True))
    with pytest.raises(SystemExit, match='refusing to load'):
        predict.main(['--checkpoint', osp.join(config.out, 'last.pt'),
                      '--input', str(tmp_path / 'x.npz'),
                      '--output', str(tmp_path / 'y.csv')])
    assert not marker.exists()
    # the same file unpickled without the guard would have run the payload
    torch.load(osp.join(config.out, 'last.pt'), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('fail, message', [
    ('raise', 'rank 1 fails on purpose'),
    ('exit', 'exitcode  : 7'),
    ('options', r"different command-line flags: rank 1 has lr=0.01 \(rank "
                r"0: 0.0003\)"),
])
def test_a_failing_rank_stops_the_others_in_bounded_time(fail, message,
                                                         tmp_path):
    """Under torchrun, rank 1 raising or dying at its third update, or
    started with other flags than rank 0, ends the whole run with an error
    that names it (no rank waits for the other for long)."""
    import re
    script = osp.join(ROOT, 'tests', 'train', 'fail_on_rank1.py')
    args = ['--root', str(tmp_path / 'data'), '--out', str(tmp_path / 'run'),
            '--num-points', '6-12', '--hidden', '8', '--train-samples', '64',
            '--val-samples', '4', '--test-samples', '4', '--T', '4',
            '--B', '1', '--S', '2', '--batch-size', '8', '--epochs', '1',
            '--threads', '1', '--no-progress']
    t0 = time.time()
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run',
                          '--standalone', '--nproc_per_node', '2', script,
                          *args], env=dict(env(), FAIL=fail),
                         capture_output=True, text=True, timeout=240)
    assert res.returncode != 0
    assert re.search(message, res.stdout + res.stderr), res.stderr[-3000:]
    assert time.time() - t0 < 120


def test_resume_names_every_changed_training_option():
    """Fuzzed: any set of changed schedule/optimisation options is refused
    with each changed field named; the others may change."""
    hypothesis = pytest.importorskip('hypothesis')
    from hypothesis import given, settings, strategies as st
    from torch_geometric_hyper.train import TrainConfig
    from torch_geometric_hyper.train.fit import RESUME_MUST_MATCH, \
        changed_options
    base = TrainConfig()
    other = {'method': 'bptt', 'T': 8, 'B': 2, 'S': 1, 'batch_size': 32,
             'lr': 1e-3, 'grad_clip': 1.0, 'seed': 5, 'dtype': 'float64'}
    assert set(other) == set(RESUME_MUST_MATCH)

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(st.sets(st.sampled_from(sorted(other))),
           st.sets(st.sampled_from(['epochs', 'max_steps', 'patience',
                                    'val_every', 'max_minutes'])))
    def check(changed, free):
        now = base.to_dict()
        now.update({k: other[k] for k in changed})
        now.update({k: 7 for k in free})
        names = [c.split(' ')[0] for c in changed_options(base.to_dict(),
                                                          now)]
        assert sorted(names) == sorted(changed)
    check()
