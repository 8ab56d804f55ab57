"""Train the recurrent GraphRefiner on Delaunay edges (set-to-graph).

Paper settings by default (Zhang, Burghouts, Snoek, LoG 2022): d=256,
T=32, B=4, S=4, batch 64, Adam lr 3e-4, 100 epochs, 50,000 training sets of
n=50 points (or n in [20, 80]) uniform in the unit square; BCE on the
symmetric adjacency, edges at A > 0.5.

    python examples/delaunay.py                      # paper settings
    python examples/delaunay.py --num-points 20-80 --knn 32
    python examples/delaunay.py --quick              # < 5 min on 2 CPU cores
    python examples/delaunay.py --resume             # continue last.pt
    python examples/delaunay.py --model set2graph    # the Set2Graph baseline
    torchrun --nproc_per_node 2 examples/delaunay.py --quick

``--model set2graph`` trains Set2Graph (Serviansky et al. 2020; all pairs,
or the kNN pairs with ``--knn``) with the same BCE and a plain training
step; its encoder and pair-MLP widths are ``--hidden``. The training loop,
its flags and its checkpoints are ``torch_geometric_hyper.train.loop``'s.
"""
import argparse
import json
import os
import time

import torch

from torch_geometric_hyper.datasets import Delaunay
from torch_geometric_hyper.metrics import adjacency_metrics
from torch_geometric_hyper.nn import (
    AdjacencyBCELoss,
    GraphRefiner,
    Set2Graph,
    pair_labels,
)
from torch_geometric_hyper.train import loop

QUICK = dict(train_samples=2000, val_samples=200, test_samples=200)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=loop.HelpFormatter)
    loop.add_arguments(p, models=['refiner', 'set2graph'], quick=QUICK,
                       out='runs/delaunay', root='data/delaunay',
                       samples=(50_000, 5_000, 5_000))
    p.set_defaults(hidden=256, T=32, B=4, S=4, epochs=100, patience=0)
    g = p.add_argument_group('delaunay')
    g.add_argument('--num-points', default='50',
                   help="n, or a range 'lo-hi' (paper: 50 or 20-80)")
    g.add_argument('--knn', type=int, default=None,
                   help='kNN candidate pairs instead of all pairs')
    return p


def parse_args(argv=None):
    args = loop.parse_args(build_parser(), argv, QUICK)
    lo, _, hi = args.num_points.partition('-')
    args.points = int(lo) if not hi else (int(lo), int(hi))
    return args


def evaluate(model, batches):
    """Per-graph metrics averaged over graphs; candidate F1 and coverage
    (fraction of target edges among the candidates) pooled over pairs."""
    per_graph, cand, loss, pairs_seen = {}, [0, 0, 0, 0], 0.0, 0
    loss_fn = AdjacencyBCELoss()
    for data in batches:
        pred = model(data.x, data.batch, data.num_graphs)
        pairs = loss_fn.reduction_weight(pred, data)  # a mean over pairs
        loss += float(loss_fn(pred, data)) * pairs
        pairs_seen += pairs
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
    out = {k: float(torch.cat(v).double().mean())
           for k, v in per_graph.items()}
    tp, fp, fn, uncovered = cand
    # pooled over pairs: exact with any number of processes (loop.Ratio)
    out['candidate_f1'] = loop.Ratio(2 * tp, 2 * tp + fp + fn)
    out['coverage'] = loop.Ratio(tp + fn, tp + fn + uncovered)
    out['loss'] = loop.Ratio(loss, pairs_seen)  # BCE per candidate pair
    return out


@torch.no_grad()
def draw_graph(model, data, path):
    """One test set: predicted edges against the Delaunay edges."""
    from torch_geometric_hyper.visualize import plot_graph
    model.eval()
    data = data.to(next(model.parameters()).device)
    pred = model(data.x, None, 1)
    return plot_graph(data.x.cpu(), pred.edge_index().t().tolist(),
                      data.edge_index.t().tolist(), path,
                      title='test set 0: right (black), wrong (red), missed '
                      '(dashed)')


def main(argv=None):
    args = parse_args(argv)
    run = loop.setup(args)
    with run.main_first():  # one process builds the cache
        log = run.is_main and not args.no_progress
        ds = {split: Delaunay(args.root, split, num_points=args.points,
                              num_samples=n, seed=args.seed, log=log)
              for split, n in (('train', args.train_samples),
                               ('val', args.val_samples),
                               ('test', args.test_samples))}
    run.print(f'data ready in {time.perf_counter() - run.start:.1f}s: '
              + ', '.join(f'{s} {len(d)}' for s, d in ds.items()))

    run.seed_everything()
    if args.model == 'set2graph':
        model = Set2Graph(2, args.hidden, k=2, tuple_channels=args.hidden,
                          neighbours=args.knn)
        n_max = args.points[1] if isinstance(args.points, tuple) \
            else args.points
        try:  # refuse before training, not at the first batch
            model.memory_bytes(n_max, args.batch_size)
        except ValueError as err:
            raise SystemExit(f'set2graph cannot run this configuration: '
                             f'{err}')
    else:
        model = GraphRefiner(2, args.hidden, args.T, knn=args.knn,
                             checkpoint=loop.checkpoint_mode(args))
    model = run.prepare(model)
    trainer = loop.make_trainer(args, args.model == 'refiner')
    num_params = sum(p.numel() for p in model.parameters())
    run.print(model, trainer, f'{num_params:,} parameters')

    state = loop.fit(run, args, model, trainer, AdjacencyBCELoss(),
                     ds['train'], ds['val'], evaluate,
                     test_size=len(ds['test']))
    loop.load_best(run, model)
    test = run.evaluate(evaluate, model, ds['test'])
    total = time.perf_counter() - run.start
    best = state['best_val']
    run.print(f"best val F1 {best['f1']:.4f} at step {state['best_step']}")
    run.print('test ' + ' '.join(f'{k}={v:.4f}' for k, v in test.items()))
    run.print(f"{state['step']} batches, training "
              f"{state['train_seconds']:.0f}s, total {total:.0f}s")
    if run.is_main:
        with open(os.path.join(args.out, 'test_metrics.json'), 'w') as f:
            json.dump({'test': test, 'best_val': best,
                       'steps': state['step'],
                       'train_seconds': state['train_seconds'],
                       'total_seconds': total, 'args': vars(args)}, f,
                      indent=1)
    loop.write_pictures(run, state, lambda path: draw_graph(
        model, ds['test'][0], path), f'{args.model}, n={args.num_points}')
    run.close()
    test['parameters'] = num_params
    return test


if __name__ == '__main__':
    main()
