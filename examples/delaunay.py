"""Train the recurrent GraphRefiner on Delaunay edges (set-to-graph).

Paper settings (Zhang, Burghouts, Snoek, LoG 2022): d=256, T=32, B=4, S=4,
batch 64, Adam lr 3e-4, 100 epochs, 50,000 training sets of n=50 points
(or n in [20, 80]) uniform in the unit square; BCE on the symmetric
adjacency, edges at A > 0.5.

    python examples/delaunay.py                      # paper settings
    python examples/delaunay.py --num-points 20-80 --knn 32
    python examples/delaunay.py --quick              # < 5 min on 2 CPU cores
    python examples/delaunay.py --resume             # continue last.pt
    python examples/delaunay.py --model set2graph    # the Set2Graph baseline

``--model set2graph`` trains Set2Graph (Serviansky et al. 2020; all pairs,
or the kNN pairs with ``--knn``) with the same BCE and a plain training
step; its encoder and pair-MLP widths are ``--hidden``.

Checkpoints (``last.pt`` every validation, ``best.pt`` on a new best
validation F1) are written atomically to ``--out``.
"""
import argparse
import json
import os
import time

import torch
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.datasets import Delaunay
from torch_geometric_hyper.metrics import adjacency_metrics
from torch_geometric_hyper.nn import (
    AdjacencyBCELoss,
    GraphRefiner,
    Set2Graph,
    pair_labels,
)
from torch_geometric_hyper.train import BackpropWithSkips, OneShot

QUICK = dict(train_samples=2000, val_samples=200, test_samples=200,
             hidden=64, iterations=8, backprop=2, updates=2, batch_size=32,
             epochs=100, lr=1e-3, eval_every=60, time_limit=170)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--root', default='data/delaunay')
    p.add_argument('--out', default='runs/delaunay')
    p.add_argument('--num-points', default='50',
                   help="n, or a range 'lo-hi' (paper: 50 or 20-80)")
    p.add_argument('--train-samples', type=int, default=50_000)
    p.add_argument('--val-samples', type=int, default=5_000)
    p.add_argument('--test-samples', type=int, default=5_000)
    p.add_argument('--model', default='refiner',
                   choices=['refiner', 'set2graph'])
    p.add_argument('--hidden', type=int, default=256, help='d')
    p.add_argument('--iterations', type=int, default=32, help='T')
    p.add_argument('--backprop', type=int, default=4, help='B')
    p.add_argument('--updates', type=int, default=4, help='S')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--max-grad-norm', type=float, default=None)
    p.add_argument('--knn', type=int, default=None,
                   help='kNN candidate pairs instead of all pairs')
    p.add_argument('--eval-every', type=int, default=0,
                   help='validate every this many batches (0: each epoch)')
    p.add_argument('--time-limit', type=float, default=None,
                   help='stop training after this many seconds')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--resume', action='store_true',
                   help='continue from --out/last.pt')
    p.add_argument('--quick', action='store_true',
                   help='small preset that finishes within 5 minutes on 2 '
                   'CPU cores: ' + json.dumps(QUICK))
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
        if args.root == p.get_default('root'):
            args.root = 'data/delaunay_quick'
        if args.out == p.get_default('out'):
            args.out = 'runs/delaunay_quick'
    lo, _, hi = args.num_points.partition('-')
    args.points = int(lo) if not hi else (int(lo), int(hi))
    return args


def atomic_save(obj, path):
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model, loader, device):
    """Per-graph metrics averaged over graphs; candidate F1 and coverage
    (fraction of target edges among the candidates) pooled over pairs."""
    model.eval()
    per_graph, cand, loss, graphs = {}, [0, 0, 0, 0], 0.0, 0
    loss_fn = AdjacencyBCELoss()
    for data in loader:
        data = data.to(device)
        pred = model(data.x, data.batch, data.num_graphs)
        loss += float(loss_fn(pred, data)) * data.num_graphs
        graphs += data.num_graphs
        for conv, suffix in (('pairs', ''), ('reference', '_reference')):
            m = adjacency_metrics(pred.edge_index(), data.edge_index,
                                  data.batch, data.num_graphs, reduce=False,
                                  convention=conv)
            for k, v in m.items():
                per_graph.setdefault(k + suffix, []).append(v)
        lab = pair_labels(pred.pair_index, data.edge_index,
                          pred.num_nodes).bool()
        pos = pred.adjacency > 0.5
        cand[0] += int((pos & lab).sum())
        cand[1] += int((pos & ~lab).sum())
        cand[2] += int((~pos & lab).sum())
        cand[3] += data.edge_index.size(1) // 2 - int(lab.sum())
    out = {k: float(torch.cat(v).mean()) for k, v in per_graph.items()}
    tp, fp, fn, uncovered = cand
    out['candidate_f1'] = 2 * tp / max(1, 2 * tp + fp + fn)
    out['coverage'] = (tp + fn) / max(1, tp + fn + uncovered)
    out['loss'] = loss / max(1, graphs)
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.perf_counter()

    ds = {split: Delaunay(args.root, split, num_points=args.points,
                          num_samples=n, seed=args.seed)
          for split, n in (('train', args.train_samples),
                           ('val', args.val_samples),
                           ('test', args.test_samples))}
    print(f'data ready in {time.perf_counter() - t_start:.1f}s: '
          + ', '.join(f'{s} {len(d)}' for s, d in ds.items()))
    gen = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(ds['train'], args.batch_size, shuffle=True,
                              generator=gen)
    val_loader = DataLoader(ds['val'], args.batch_size)
    test_loader = DataLoader(ds['test'], args.batch_size)

    if args.model == 'set2graph':
        model = Set2Graph(2, args.hidden, k=2, tuple_channels=args.hidden,
                          neighbours=args.knn).to(device)
        n_max = args.points[1] if isinstance(args.points, tuple) \
            else args.points
        try:  # refuse before training, not at the first batch
            model.memory_bytes(n_max, args.batch_size)
        except ValueError as err:
            raise SystemExit(f'set2graph cannot run this configuration: '
                             f'{err}')
        trainer = OneShot(args.max_grad_norm)
    else:
        model = GraphRefiner(2, args.hidden, args.iterations,
                             knn=args.knn).to(device)
        trainer = BackpropWithSkips(args.iterations, args.backprop,
                                    args.updates, args.max_grad_norm,
                                    seed=args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = AdjacencyBCELoss()
    print(model, trainer, f'{sum(p.numel() for p in model.parameters()):,} '
          f'parameters')

    epoch, step, best = 0, 0, {'f1': -1.0}
    last_path = os.path.join(args.out, 'last.pt')
    best_path = os.path.join(args.out, 'best.pt')
    if args.resume and os.path.exists(last_path):
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt['model'])
        opt.load_state_dict(ckpt['optimizer'])
        epoch, step, best = ckpt['epoch'], ckpt['step'], ckpt['best']
        if ckpt.get('skip_rng') is not None:
            trainer.rng.setstate(ckpt['skip_rng'])
        gen.set_state(ckpt['loader_rng'])
        print(f'resumed from {last_path}: epoch {epoch}, step {step}, '
              f'best val F1 {best["f1"]:.4f}')

    from tqdm.auto import tqdm

    def validate(epoch_done):
        nonlocal best
        metrics = evaluate(model, val_loader, device)
        is_best = metrics['f1'] > best['f1']
        if is_best:
            best = dict(metrics, step=step)
        state = {'model': model.state_dict(), 'optimizer': opt.state_dict(),
                 'model_config': model.config(),
                 'epoch': epoch_done, 'step': step, 'best': best,
                 'skip_rng': (trainer.rng.getstate()
                              if hasattr(trainer, 'rng') else None),
                 'loader_rng': gen.get_state(), 'args': vars(args)}
        if is_best:
            atomic_save(state, best_path)
        atomic_save(state, last_path)
        tqdm.write(f'[step {step}] val ' + ' '.join(
            f'{k}={v:.4f}' for k, v in metrics.items())
            + (' *best*' if is_best else ''))
        model.train()

    t_train = time.perf_counter()
    stop = False
    while epoch < args.epochs and not stop:
        bar = tqdm(train_loader, desc=f'epoch {epoch + 1}/{args.epochs}',
                   leave=False)
        for data in bar:
            stats = trainer(model, opt, loss_fn, data.to(device))
            step += 1
            bar.set_postfix(loss=f"{stats['loss']:.4f}")
            if args.eval_every and step % args.eval_every == 0:
                validate(epoch)
            if args.time_limit is not None and \
                    time.perf_counter() - t_train > args.time_limit:
                stop = True
                break
        if not stop:
            epoch += 1
            if not args.eval_every:
                validate(epoch)
    if args.eval_every == 0 or step % args.eval_every:
        validate(epoch)
    train_time = time.perf_counter() - t_train

    ckpt = torch.load(best_path, map_location=device, weights_only=False)
    model.load_state_dict(ckpt['model'])
    test = evaluate(model, test_loader, device)
    total = time.perf_counter() - t_start
    print(f'best val F1 {best["f1"]:.4f} at step {best.get("step")}')
    print('test ' + ' '.join(f'{k}={v:.4f}' for k, v in test.items()))
    print(f'{step} batches, training {train_time:.0f}s, total {total:.0f}s')
    with open(os.path.join(args.out, 'test_metrics.json'), 'w') as f:
        json.dump({'test': test, 'best_val': best, 'steps': step,
                   'train_seconds': train_time, 'total_seconds': total,
                   'args': vars(args)}, f, indent=1)
    test['parameters'] = sum(p.numel() for p in model.parameters())
    return test


if __name__ == '__main__':
    main()
