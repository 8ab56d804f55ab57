"""Train the hypergraph refiner (or a baseline) to predict convex-hull facets.

Paper settings by default (d=128, T=16, B=4, S=2, batch 64, Adam 3e-4,
early stopping after 20 validations without F1 gain). ``--quick`` keeps the
model and training settings, uses fewer sets and ends the whole run (data
generation included) within 4.7 minutes on 2 CPU cores.

    python examples/convex_hull.py --quick
    python examples/convex_hull.py --num-points 1000 --candidates 16 \
        --hidden 64 --T 8 --B 2 --batch-size 4 --max-minutes 30
    python examples/convex_hull.py --model set2graph --resume
    torchrun --nproc_per_node 2 examples/convex_hull.py --quick

Models: ``refiner``, ``stacked`` (backprop with skips) and the one-shot
baselines ``set2graph`` (local: triples among 10 nearest neighbours),
``set_transformer`` and ``slot_attention``, of the refiner's size.
"""
import time

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.nn import (
    HypergraphRefiner,
    MatchedIncidenceLoss,
    Set2Graph,
    SetTransformer,
    SlotAttention,
    StackedHypergraphRefiner,
    TupleBCELoss,
)
from torch_geometric_hyper.train import cli, hyperedge_evaluator
from torch_geometric_hyper.visualize import draw_hull_prediction

#: the second F1's label (benchmarks/compare_models.py parses it)
REFERENCE_LABEL = 'reference metric'


def add_arguments(p):
    g = p.add_argument_group('convex hull')
    g.add_argument('--num-points', default='30', help="set size n, or a "
                   "range like '20-100'")
    g.add_argument('--distribution', default='spherical',
                   choices=['spherical', 'gaussian'], help='point cloud')
    g.add_argument('--dim', type=int, default=3, help='dimension')
    g.add_argument('--s2g-neighbours', type=int, default=10,
                   help='set2graph: K of the local version (0: all tuples)')
    g.add_argument('--max-edges', type=int, default=None,
                   help='slots per set (default: most facets in the data)')
    g.add_argument('--candidates', type=int, default=None,
                   help='refiner: K candidate nodes per slot, chosen and '
                        'refreshed by the model (num_candidates; a step '
                        'is linear in n); default: all pairs')
    g.add_argument('--assignment-workers', type=int, default=None,
                   help="worker processes solving the matched loss's sparse "
                        'assignments side by side (large sets with '
                        '--candidates and ortools); default: none')


def load_data(args, run):
    args.points = cli.set_size(args.num_points)
    kw = dict(num_points=args.points, distribution=args.distribution,
              dim=args.dim, seed=args.seed,
              log=run.is_main and args.progress)
    data = [ConvexHull(args.root, split, num_samples=n, **kw) for split, n in
            (('train', args.train_samples), ('val', args.val_samples),
             ('test', args.test_samples))]
    args.max_edges = args.max_edges or max(d.max_hyperedges for d in data)
    run.print(f'data: {len(data[0])} train / {len(data[1])} val / '
              f'{len(data[2])} test sets, n={args.num_points}, max_edges='
              f'{args.max_edges} ({time.perf_counter() - run.start:.1f} s)')
    return data


def build(args, run, data):
    """The model named by ``--model`` and its loss."""
    d, dim, m = args.hidden, args.dim, args.max_edges
    if args.candidates is not None and args.model not in TASK.recurrent:
        raise SystemExit(f'--candidates applies to the refiners '
                         f'({", ".join(TASK.recurrent)}), not to --model '
                         f'{args.model}')
    if args.model in TASK.recurrent:
        Model = StackedHypergraphRefiner if args.model == 'stacked' \
            else HypergraphRefiner
        try:
            model = Model(dim, d, m, args.T, num_candidates=args.candidates,
                          checkpoint=args.config.checkpoint_mode)
            return model, MatchedIncidenceLoss(
                num_workers=args.assignment_workers)
        except ValueError as err:  # e.g. --candidates 0
            flag = '--candidates' if 'candidates' in str(err) else \
                '--assignment-workers'
            raise SystemExit(f'{flag}: {err}')
    if args.model == 'set2graph':  # facets of a d-dim hull are d-tuples
        model = Set2Graph(dim, d, k=dim, tuple_channels=2 * d,
                          neighbours=args.s2g_neighbours or None)
        cli.check_pair_memory(model, args.points, max(args.batch_size,
                                                      256), run)
        return model, TupleBCELoss()
    model = SetTransformer(dim, d, m, num_heads=4, ff_channels=max(
        1, d // 4)) if args.model == 'set_transformer' else \
        SlotAttention(dim, d, m)  # rFF width d/4: about the refiner's size
    return model, MatchedIncidenceLoss()


def f1s(res):
    return (f"F1 {res['f1']:.4f} ({REFERENCE_LABEL} {res['f1_reference']:.4f}"
            f", deduplicated {res['f1_dedup']:.4f}, duplicates/set "
            f"{res['duplicates']:.2f})")


def format_val(step, res, improved):
    return (f"step {step:6d}  val {f1s(res)}  val loss {res['loss']:.4f}"
            f"{'  *best*' if improved else ''}")


def report(args, run, model, result, data, evaluate):
    test, val = run.evaluate(evaluate, model, data[2]), result.best_val
    run.print(f"best val F1 {val['f1']:.4f} ({REFERENCE_LABEL} "
              f"{val['f1_reference']:.4f}) after {result.steps} batches (best"
              f" at batch {result.best_step}), {result.train_seconds / 60:.1f}"
              f" min of training ({result.cpu_seconds / 60:.1f} CPU min)")
    run.print(f"test {f1s(test)} on {len(data[2])} sets")
    return {'val': val, 'test': test, 'model': args.model,
            'seconds': time.perf_counter() - run.start,
            'parameters': args.num_parameters, 'steps': result.steps}


def draw(args, model, data, path):
    if args.dim != 3:
        raise ImportError('hull pictures are drawn for 3-D hulls only')
    return draw_hull_prediction(model, data[2][0], path, args.dim)


TASK = cli.Task(
    name='convex hull', description=__doc__, add_arguments=add_arguments,
    models=['refiner', 'stacked', 'set2graph', 'set_transformer',
            'slot_attention'], recurrent=('refiner', 'stacked'),
    out='runs/convex_hull', root='data/convex_hull',
    quick=dict(train_samples=12_800, val_samples=256, test_samples=256),
    load_data=load_data, build=build, evaluator=lambda args, loss_fn: hyperedge_evaluator(
        args.dim, loss_fn, num_iterations=args.T),
    format_val=format_val, report=report, draw=draw,
    extra=lambda args, data: {'max_edges': args.max_edges,
                              'metadata': {'edge_size': args.dim}})


parse_args, build_parser, main = cli.entry_points(TASK)


if __name__ == '__main__':
    main()
