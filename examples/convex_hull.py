"""Train the hypergraph refiner (or a baseline) to predict convex-hull facets.

Paper settings by default (d=128, T=16, B=4, S=2, batch 64, Adam 3e-4,
early stopping after 20 validations without F1 gain). ``--quick`` keeps the
model and training settings and stops after a fixed wall-clock budget so
the whole run (data generation included) ends within 5 minutes on 2 CPU
cores.

    python examples/convex_hull.py --quick
    python examples/convex_hull.py --num-points 50 --epochs 100
    python examples/convex_hull.py --resume          # continue the last run
    python examples/convex_hull.py --model set2graph --max-minutes 20

Models: ``refiner`` and ``stacked`` (trained with backprop with skips) and
the one-shot baselines ``set2graph`` (local version: triples whose other
members are among the 10 nearest neighbours of the first, BCE on the
triples, as its paper), ``set_transformer`` and ``slot_attention`` (matched
loss, the refiner's slots and heads), trained with a plain step. All use
``--hidden`` as their latent size; the baselines' inner widths are set so
their parameter counts are close to the refiner's (printed at start).
"""
from __future__ import annotations

import argparse
import math
import os
import time

import torch
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.metrics import evaluate_hyperedges
from torch_geometric_hyper.nn import (
    HypergraphRefiner,
    MatchedIncidenceLoss,
    Set2Graph,
    SetTransformer,
    SlotAttention,
    StackedHypergraphRefiner,
    TupleBCELoss,
)
from torch_geometric_hyper.train import (
    BPTT,
    BackpropWithSkips,
    NonFiniteLossError,
    OneShot,
    TruncatedBPTT,
)

MODELS = ['refiner', 'stacked', 'set2graph', 'set_transformer',
          'slot_attention']
RECURRENT = ('refiner', 'stacked')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group('data')
    g.add_argument('--root', default='data/convex_hull')
    g.add_argument('--num-points', default='30',
                   help="set size n, or a range like '20-100'")
    g.add_argument('--distribution', default='spherical',
                   choices=['spherical', 'gaussian'])
    g.add_argument('--dim', type=int, default=3)
    g.add_argument('--train-samples', type=int, default=20_000)
    g.add_argument('--val-samples', type=int, default=2_000)
    g.add_argument('--test-samples', type=int, default=2_000)
    g.add_argument('--seed', type=int, default=0)
    g = p.add_argument_group('model')
    g.add_argument('--model', default='refiner', choices=MODELS)
    g.add_argument('--s2g-neighbours', type=int, default=10,
                   help='set2graph: K of the local version (0: all tuples)')
    g.add_argument('--hidden', type=int, default=128)
    g.add_argument('--max-edges', type=int, default=None,
                   help='slots per set (default: most facets in the data)')
    g.add_argument('--skip-nonfinite', action='store_true',
                   help='skip batches whose loss is NaN or infinite '
                   '(counted) instead of stopping')
    g.add_argument('--no-checkpointing', action='store_true',
                   help='always store step activations (default: stored '
                   'unless one step\'s exceed 256 MiB, then recomputed)')
    g = p.add_argument_group('training')
    g.add_argument('--method', default='skips',
                   choices=['skips', 'bptt', 'tbptt'])
    g.add_argument('--T', type=int, default=16, help='iterations')
    g.add_argument('--B', type=int, default=4,
                   help='back-propagated iterations per update')
    g.add_argument('--S', type=int, default=2, help='updates per batch')
    g.add_argument('--batch-size', type=int, default=64)
    g.add_argument('--lr', type=float, default=3e-4)
    g.add_argument('--grad-clip', type=float, default=None)
    g.add_argument('--epochs', type=int, default=1000)
    g.add_argument('--patience', type=int, default=20,
                   help='stop after this many validations without gain')
    g.add_argument('--val-every', type=int, default=0,
                   help='validate every N batches (0: once per epoch)')
    g.add_argument('--val-subset', type=int, default=0,
                   help='validate on the first N validation sets (0: all)')
    g.add_argument('--max-minutes', type=float, default=None,
                   help='stop training after this wall-clock time')
    g.add_argument('--max-cpu-minutes', type=float, default=None,
                   help='stop training after this much process CPU time '
                   '(a budget that other jobs on the machine do not eat; '
                   'with --threads 1 it equals wall time on an idle core)')
    g.add_argument('--max-total-minutes', type=float, default=None,
                   help='end the whole run (data, training, validation and '
                   'the final test report) within this wall-clock time: '
                   'training stops early enough to leave room for the '
                   'final evaluations, timed from the validations so far')
    g = p.add_argument_group('run')
    g.add_argument('--out', default='runs/convex_hull')
    g.add_argument('--resume', action='store_true')
    g.add_argument('--threads', type=int, default=None)
    g.add_argument('--device', default='cuda'
                   if torch.cuda.is_available() else 'cpu')
    g.add_argument('--no-progress', action='store_true')
    g.add_argument('--quick', action='store_true',
                   help='CPU preset: the paper\'s model and training '
                   'settings, 12,800 training sets, 256 val/test, the whole '
                   'run within 4.7 minutes; activations are stored, not '
                   'recomputed (faster, more memory)')
    args = p.parse_args(argv)
    if args.quick:
        args.train_samples = min(args.train_samples, 12_800)
        args.val_samples = min(args.val_samples, 256)
        args.test_samples = min(args.test_samples, 256)
        args.val_every = args.val_every or 50
        args.max_total_minutes = args.max_total_minutes or 4.7
        args.no_checkpointing = True
        args.out = args.out + '_quick'
    return args


def num_points(text):
    if '-' in text:
        lo, hi = text.split('-')
        return (int(lo), int(hi))
    return int(text)


def build_model(args, max_edges, device):
    """The model named by ``--model``, its loss and its training step."""
    d, dim = args.hidden, args.dim
    if args.model in RECURRENT:
        Model = StackedHypergraphRefiner if args.model == 'stacked' \
            else HypergraphRefiner
        model = Model(dim, d, max_edges, args.T,
                      checkpoint=False if args.no_checkpointing else 'auto')
        if args.method == 'skips':
            trainer = BackpropWithSkips(args.T, args.B, args.S,
                                        args.grad_clip, seed=args.seed)
        elif args.method == 'bptt':
            trainer = BPTT(args.T, args.grad_clip)
        else:
            trainer = TruncatedBPTT(args.T, args.B, args.grad_clip)
        trainer.skip_nonfinite = args.skip_nonfinite
        return model.to(device), MatchedIncidenceLoss(), trainer
    trainer = OneShot(args.grad_clip, skip_nonfinite=args.skip_nonfinite)
    if args.model == 'set2graph':
        # Facets of a d-dimensional hull are d-tuples.
        model = Set2Graph(dim, d, k=dim, tuple_channels=2 * d,
                          neighbours=args.s2g_neighbours or None)
        return model.to(device), TupleBCELoss(), trainer
    if args.model == 'set_transformer':
        # rFF width d/4 keeps the parameter count near the refiner's.
        model = SetTransformer(dim, d, max_edges, num_heads=4,
                               ff_channels=max(1, d // 4))
    else:
        model = SlotAttention(dim, d, max_edges)
    return model.to(device), MatchedIncidenceLoss(), trainer


@torch.no_grad()
def evaluate(model, loader, T, device, dim, seed=0, loss_fn=None):
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    f1, f1_ref, dup, loss_sum, count = [], [], [], 0.0, 0
    loss_fn = loss_fn or MatchedIncidenceLoss()
    recurrent = isinstance(model, HypergraphRefiner)
    for batch in loader:
        batch = batch.to(device)
        kwargs = dict(num_iterations=T) if recurrent else {}
        if not isinstance(model, Set2Graph):
            kwargs['generator'] = gen
        pred = model(batch.x, batch.batch, batch.num_graphs, **kwargs)
        loss_sum += float(loss_fn(pred, batch)) * batch.num_graphs
        res = evaluate_hyperedges(pred, batch, edge_size=dim)
        f1.append(res['f1'])
        f1_ref.append(res['f1_reference'])
        dup.append(res['duplicates'])
        count += batch.num_graphs
    model.train()
    return {'f1': float(torch.cat(f1).mean()),
            'f1_reference': float(torch.cat(f1_ref).mean()),
            'duplicates': float(torch.cat(dup).mean()),
            'loss': loss_sum / count}


def save_atomic(obj, path):
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    n = num_points(args.num_points)
    kw = dict(num_points=n, distribution=args.distribution, dim=args.dim,
              seed=args.seed)
    train_ds = ConvexHull(args.root, 'train', num_samples=args.train_samples,
                          **kw)
    val_ds = ConvexHull(args.root, 'val', num_samples=args.val_samples, **kw)
    test_ds = ConvexHull(args.root, 'test', num_samples=args.test_samples,
                         **kw)
    if args.val_subset:
        val_ds = val_ds[:args.val_subset]
    max_edges = args.max_edges or max(d.max_hyperedges for d in
                                      (train_ds, val_ds, test_ds)
                                      if hasattr(d, 'max_hyperedges'))
    print(f'data: {len(train_ds)} train / {len(val_ds)} val / '
          f'{len(test_ds)} test sets, n={args.num_points}, '
          f'max_edges={max_edges} ({time.perf_counter() - start:.1f} s)')

    model, loss_fn, trainer = build_model(args, max_edges, device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    num_params = sum(p.numel() for p in model.parameters())
    print(f'model: {model} with {num_params:,} parameters; '
          f'training: {trainer}')
    if isinstance(model, Set2Graph):
        n_max = n[1] if isinstance(n, tuple) else n
        try:  # refuse before training, not at the first batch
            need = model.memory_bytes(n_max, max(args.batch_size, 256))
        except ValueError as err:
            raise SystemExit(f'set2graph cannot run this configuration: '
                             f'{err}')
        print(f'set2graph tuple activations: {need / 1e6:.1f} MB per '
              f'batch of {max(args.batch_size, 256)} sets')

    best_path = os.path.join(args.out, 'best.pt')
    last_path = os.path.join(args.out, 'last.pt')
    state = {'epoch': 0, 'step': 0, 'best_f1': -1.0, 'bad': 0,
             'train_seconds': 0.0, 'cpu_seconds': 0.0}
    if args.resume:
        if not os.path.exists(last_path):
            raise SystemExit(f'--resume: no checkpoint at {last_path}')
        ckpt = torch.load(last_path, map_location=device)
        model.load_state_dict(ckpt['model'])
        opt.load_state_dict(ckpt['optimizer'])
        state = ckpt['state']
        torch.set_rng_state(ckpt['rng'])
        print(f"resumed from {last_path} at epoch {state['epoch']}, "
              f"step {state['step']}, best val F1 {state['best_f1']:.4f}")

    val_loader = DataLoader(val_ds, batch_size=256)
    val_every = args.val_every or math.ceil(len(train_ds) / args.batch_size)
    budget = args.max_minutes * 60 if args.max_minutes else float('inf')
    cpu_budget = args.max_cpu_minutes * 60 if args.max_cpu_minutes \
        else float('inf')
    total_budget = args.max_total_minutes * 60 if args.max_total_minutes \
        else float('inf')
    # Seconds one validation pass takes (measured; reserves time for the
    # final validation and the test report under --max-total-minutes).
    val_seconds = [0.0]

    def checkpoint(path):
        save_atomic({'model': model.state_dict(),
                     'optimizer': opt.state_dict(), 'state': state,
                     'rng': torch.get_rng_state(), 'args': vars(args),
                     'max_edges': max_edges,
                     # what torch_geometric_hyper.nn.load_model and the
                     # predict command need to rebuild the model
                     'model_config': model.config(),
                     'metadata': {'edge_size': args.dim}}, path)

    def validate():
        t0 = time.perf_counter()
        res = evaluate(model, val_loader, args.T, device, args.dim,
                       loss_fn=loss_fn)
        val_seconds[0] = time.perf_counter() - t0
        improved = res['f1'] > state['best_f1']
        if improved:
            state['best_f1'], state['bad'] = res['f1'], 0
            state['best_val'] = res
            state['best_step'] = state['step']
            checkpoint(best_path)
        else:
            state['bad'] += 1
        checkpoint(last_path)
        tqdm.write(f"step {state['step']:6d}  val F1 {res['f1']:.4f}  "
                   f"(reference metric {res['f1_reference']:.4f}, "
                   f"duplicates/set {res['duplicates']:.2f})  "
                   f"val loss {res['loss']:.4f}"
                   f"{'  *best*' if improved else ''}")
        return res

    stop = False
    try:
        while state['epoch'] < args.epochs and not stop:
            loader = DataLoader(train_ds, batch_size=args.batch_size,
                                shuffle=True, generator=torch.Generator(
                                ).manual_seed(args.seed + state['epoch']))
            bar = tqdm(loader, desc=f"epoch {state['epoch']}",
                       disable=args.no_progress, leave=False)
            for batch in bar:
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    stats = trainer(model, opt, loss_fn, batch.to(device))
                except NonFiniteLossError as err:
                    raise SystemExit(
                        f"stopped at batch {state['step'] + 1} (epoch "
                        f"{state['epoch']}): {err}. The last good "
                        f"checkpoint is {last_path} (written atomically); "
                        f"continue from it with --resume, or pass "
                        f"--skip-nonfinite") from None
                state['train_seconds'] += time.perf_counter() - t0
                state['cpu_seconds'] = state.get('cpu_seconds', 0.0) + \
                    time.process_time() - c0
                state['step'] += 1
                bar.set_postfix(loss=f"{stats['loss']:.4f}")
                if state['step'] % val_every == 0:
                    validate()
                    if state['bad'] >= args.patience:
                        tqdm.write('early stopping: no validation gain in '
                                   f'{args.patience} validations')
                        stop = True
                # room left for the last validation and the test report
                # (and for one more batch), with a few seconds to spare
                reserve = val_seconds[0] * (
                    1 + len(test_ds) / max(1, len(val_ds))) \
                    + (time.perf_counter() - t0) + 5.0
                if state['train_seconds'] >= budget or \
                        state['cpu_seconds'] >= cpu_budget or \
                        time.perf_counter() - start + reserve >= total_budget:
                    stop = True
                if stop:
                    break
            else:
                state['epoch'] += 1
        if state['step'] % val_every != 0:
            validate()
    except KeyboardInterrupt:
        checkpoint(last_path)
        print(f'interrupted: state saved to {last_path} (use --resume)')
        raise SystemExit(130)

    ckpt = torch.load(best_path, map_location=device)
    model.load_state_dict(ckpt['model'])
    test = evaluate(model, DataLoader(test_ds, batch_size=256), args.T,
                    device, args.dim, loss_fn=loss_fn)
    val = state.get('best_val') or evaluate(model, val_loader, args.T,
                                            device, args.dim, loss_fn=loss_fn)
    total = time.perf_counter() - start
    print(f"best val F1 {val['f1']:.4f} (reference metric "
          f"{val['f1_reference']:.4f}) after {state['step']} batches "
          f"(best at batch {state.get('best_step')}), "
          f"{state['train_seconds'] / 60:.1f} min of training "
          f"({state['cpu_seconds'] / 60:.1f} CPU min)")
    print(f"test F1 {test['f1']:.4f} (reference metric "
          f"{test['f1_reference']:.4f}, duplicates/set "
          f"{test['duplicates']:.2f}) on {len(test_ds)} sets")
    if getattr(trainer, 'num_skipped', 0):
        print(f'skipped {trainer.num_skipped} batches with a non-finite '
              f'loss')
    print(f'total wall time {total / 60:.2f} min')
    return {'val': val, 'test': test, 'seconds': total,
            'parameters': num_params, 'model': args.model}


if __name__ == '__main__':
    main()
