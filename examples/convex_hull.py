"""Train the hypergraph refiner (or a baseline) to predict convex-hull facets.

Paper settings by default (d=128, T=16, B=4, S=2, batch 64, Adam 3e-4,
early stopping after 20 validations without F1 gain). ``--quick`` keeps the
model and training settings, uses fewer sets and ends the whole run (data
generation included) within 4.7 minutes on 2 CPU cores.

    python examples/convex_hull.py --quick
    python examples/convex_hull.py --num-points 50 --epochs 100
    python examples/convex_hull.py --num-points 1000 --candidates 16 \
        --hidden 64 --T 8 --B 2 --batch-size 4 --max-minutes 30
    python examples/convex_hull.py --resume          # continue the last run
    python examples/convex_hull.py --model set2graph --max-minutes 20
    torchrun --nproc_per_node 2 examples/convex_hull.py --quick

Models: ``refiner`` and ``stacked`` (trained with backprop with skips) and
the one-shot baselines ``set2graph`` (local version: triples whose other
members are among the 10 nearest neighbours of the first, BCE on the
triples, as its paper), ``set_transformer`` and ``slot_attention`` (matched
loss, the refiner's slots and heads), trained with a plain step. All use
``--hidden`` as their latent size; the baselines' inner widths are set so
their parameter counts are close to the refiner's (printed at start).
The training loop and the shared flags are
``torch_geometric_hyper.train.loop``'s.
"""
from __future__ import annotations

import argparse
import time

import torch

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.metrics import evaluate_hyperedges, hyperedge_sets
from torch_geometric_hyper.nn import (
    HypergraphRefiner,
    MatchedIncidenceLoss,
    Set2Graph,
    SetTransformer,
    SlotAttention,
    StackedHypergraphRefiner,
    TupleBCELoss,
)
from torch_geometric_hyper.train import loop

MODELS = ['refiner', 'stacked', 'set2graph', 'set_transformer',
          'slot_attention']
RECURRENT = ('refiner', 'stacked')
#: Label of the second F1 in the summary lines (parsed by
#: benchmarks/compare_models.py): ``evaluate_hyperedges``' ``f1_reference``.
REFERENCE_LABEL = 'reference metric'
QUICK = dict(train_samples=12_800, val_samples=256, test_samples=256)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=loop.HelpFormatter)
    loop.add_arguments(p, models=MODELS, quick=QUICK,
                       out='runs/convex_hull', root='data/convex_hull')
    g = p.add_argument_group('convex hull')
    g.add_argument('--num-points', default='30',
                   help="set size n, or a range like '20-100'")
    g.add_argument('--distribution', default='spherical',
                   choices=['spherical', 'gaussian'], help='point cloud')
    g.add_argument('--dim', type=int, default=3, help='dimension')
    g.add_argument('--val-subset', type=int, default=0,
                   help='validate on the first N validation sets (0: all)')
    g.add_argument('--s2g-neighbours', type=int, default=10,
                   help='set2graph: K of the local version (0: all tuples)')
    g.add_argument('--max-edges', type=int, default=None,
                   help='slots per set (default: most facets in the data)')
    g.add_argument('--candidates', type=int, default=None,
                   help='refiner: K candidate nodes per slot, chosen and '
                        'refreshed by the model (num_candidates; a step '
                        'is linear in n); default: all pairs')
    g.add_argument('--assignment-workers', type=int, default=None,
                   help='worker processes solving the matched loss\'s '
                        'sparse assignments side by side (large sets with '
                        '--candidates and ortools); default: none')
    return p


def parse_args(argv=None):
    return loop.parse_args(build_parser(), argv, QUICK)


def num_points(text):
    if '-' in text:
        lo, hi = text.split('-')
        return (int(lo), int(hi))
    return int(text)


def build_model(args, max_edges):
    """The model named by ``--model`` and its loss."""
    d, dim = args.hidden, args.dim
    if args.candidates is not None and args.model not in RECURRENT:
        raise SystemExit(f'--candidates applies to the refiners '
                         f'({", ".join(RECURRENT)}), not to --model '
                         f'{args.model}')
    if args.model in RECURRENT:
        Model = StackedHypergraphRefiner if args.model == 'stacked' \
            else HypergraphRefiner
        try:
            model = Model(dim, d, max_edges, args.T,
                          checkpoint=loop.checkpoint_mode(args),
                          num_candidates=args.candidates)
        except ValueError as err:  # e.g. --candidates 0
            raise SystemExit(f'--candidates: {err}')
        try:
            loss = MatchedIncidenceLoss(num_workers=args.assignment_workers)
        except ValueError as err:
            raise SystemExit(f'--assignment-workers: {err}')
        return model, loss
    if args.model == 'set2graph':
        # Facets of a d-dimensional hull are d-tuples.
        return (Set2Graph(dim, d, k=dim, tuple_channels=2 * d,
                          neighbours=args.s2g_neighbours or None),
                TupleBCELoss())
    if args.model == 'set_transformer':
        # rFF width d/4 keeps the parameter count near the refiner's.
        return (SetTransformer(dim, d, max_edges, num_heads=4,
                               ff_channels=max(1, d // 4)),
                MatchedIncidenceLoss())
    return SlotAttention(dim, d, max_edges), MatchedIncidenceLoss()


def make_evaluate(T, dim, loss_fn, seed=0):
    """Per-set means of strict F1, the reference metric, duplicates and
    loss over the batches."""
    def evaluate(model, batches):
        gen = None
        f1, f1_ref, f1_dedup, dup, losses = [], [], [], [], []
        recurrent = isinstance(model, HypergraphRefiner)
        for batch in batches:
            if gen is None:
                gen = torch.Generator(device=batch.x.device).manual_seed(seed)
            kwargs = dict(num_iterations=T) if recurrent else {}
            # each set's slot noise from the set's index: the same metrics
            # with any number of processes
            kwargs.update(loop.eval_slots(model, batch, seed, gen))
            pred = model(batch.x, batch.batch, batch.num_graphs, **kwargs)
            losses.append(float(loss_fn(pred, batch)) * batch.num_graphs)
            res = evaluate_hyperedges(pred, batch, edge_size=dim)
            f1.append(res['f1'])
            f1_ref.append(res['f1_reference'])
            f1_dedup.append(res['f1_unique'])
            dup.append(res['duplicates'])
        n = sum(t.numel() for t in f1)
        return {'f1': float(torch.cat(f1).double().mean()),
                'f1_reference': float(torch.cat(f1_ref).double().mean()),
                # strict F1 of the prediction decoded without copies
                # (to_hyperedge_index(unique=True))
                'f1_dedup': float(torch.cat(f1_dedup).double().mean()),
                'duplicates': float(torch.cat(dup).double().mean()),
                'loss': sum(losses) / n}
    return evaluate


def format_val(step, res, improved):
    return (f"step {step:6d}  val F1 {res['f1']:.4f}  ({REFERENCE_LABEL} "
            f"{res['f1_reference']:.4f}, deduplicated {res['f1_dedup']:.4f}, "
            f"duplicates/set {res['duplicates']:.2f})  val loss "
            f"{res['loss']:.4f}"
            f"{'  *best*' if improved else ''}")


def main(argv=None):
    args = parse_args(argv)
    run = loop.setup(args)
    start = run.start
    n = num_points(args.num_points)
    kw = dict(num_points=n, distribution=args.distribution, dim=args.dim,
              seed=args.seed, log=run.is_main and not args.no_progress)
    with run.main_first():  # one process builds the cache
        train_ds = ConvexHull(args.root, 'train',
                              num_samples=args.train_samples, **kw)
        val_ds = ConvexHull(args.root, 'val', num_samples=args.val_samples,
                            **kw)
        test_ds = ConvexHull(args.root, 'test',
                             num_samples=args.test_samples, **kw)
    if args.val_subset:
        val_ds = val_ds[:args.val_subset]
    max_edges = args.max_edges or max(
        d.max_hyperedges for d in (train_ds, val_ds, test_ds))
    run.print(f'data: {len(train_ds)} train / {len(val_ds)} val / '
              f'{len(test_ds)} test sets, n={args.num_points}, '
              f'max_edges={max_edges} ({time.perf_counter() - start:.1f} s)')

    run.seed_everything()
    model, loss_fn = build_model(args, max_edges)
    model = run.prepare(model)
    trainer = loop.make_trainer(args, args.model in RECURRENT)
    num_params = sum(p.numel() for p in model.parameters())
    run.print(f'model: {model} with {num_params:,} parameters; '
              f'training: {trainer}; {run.world_size} process(es) on '
              f'{run.device}')
    if isinstance(model, Set2Graph):
        n_max = n[1] if isinstance(n, tuple) else n
        try:  # refuse before training, not at the first batch
            need = model.memory_bytes(n_max, max(args.batch_size, 256))
        except ValueError as err:
            raise SystemExit(f'set2graph cannot run this configuration: '
                             f'{err}')
        run.print(f'set2graph tuple activations: {need / 1e6:.1f} MB per '
                  f'batch of {max(args.batch_size, 256)} sets')

    evaluate = make_evaluate(args.T, args.dim, loss_fn)
    state = loop.fit(run, args, model, trainer, loss_fn, train_ds, val_ds,
                     evaluate, format_val=format_val,
                     extra={'max_edges': max_edges,
                            'metadata': {'edge_size': args.dim}},
                     test_size=len(test_ds))
    loop.load_best(run, model)
    test = run.evaluate(evaluate, model, test_ds)
    val = state['best_val']
    total = time.perf_counter() - start
    run.print(f"best val F1 {val['f1']:.4f} ({REFERENCE_LABEL} "
              f"{val['f1_reference']:.4f}) after {state['step']} batches "
              f"(best at batch {state['best_step']}), "
              f"{state['train_seconds'] / 60:.1f} min of training "
              f"({state['cpu_seconds'] / 60:.1f} CPU min)")
    run.print(f"test F1 {test['f1']:.4f} ({REFERENCE_LABEL} "
              f"{test['f1_reference']:.4f}, deduplicated "
              f"{test['f1_dedup']:.4f}, duplicates/set "
              f"{test['duplicates']:.2f}) on {len(test_ds)} sets")
    run.print(f'total wall time {total / 60:.2f} min')
    if args.dim == 3:
        loop.write_pictures(run, state, lambda path: draw_hull(
            model, test_ds[0], args, path),
            f'{args.model}, n={args.num_points}')
    run.close()
    return {'val': val, 'test': test, 'seconds': total,
            'parameters': num_params, 'model': args.model,
            'steps': state['step']}


@torch.no_grad()
def draw_hull(model, data, args, path):
    """One test hull: predicted facets against the true ones."""
    from torch_geometric_hyper.visualize import plot_hull
    model.eval()
    data = data.to(next(model.parameters()).device)
    kwargs = {} if isinstance(model, Set2Graph) else {
        'generator': torch.Generator(device=data.x.device).manual_seed(0)}
    pred = model(data.x, None, 1, **kwargs)
    ptr = torch.tensor([0, data.num_nodes])
    index, edge_graph = pred.to_hyperedge_index(edge_size=args.dim)
    pred_sets = hyperedge_sets(index, edge_graph, ptr, 1)[0]
    true_sets = hyperedge_sets(
        data.hyperedge_index,
        torch.zeros(int(data.num_hyperedges), dtype=torch.long), ptr, 1)[0]
    return plot_hull(data.x.cpu(), pred_sets, true_sets, path,
                     title='test set 0: predicted (green right, red wrong) '
                     'vs true facets')


if __name__ == '__main__':
    main()
