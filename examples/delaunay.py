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
step; its encoder and pair-MLP widths are ``--hidden``.
"""
import json
import os

from torch_geometric_hyper.datasets import Delaunay
from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner, Set2Graph
from torch_geometric_hyper.train import adjacency_evaluator, cli
from torch_geometric_hyper.visualize import draw_graph_prediction


def add_arguments(p):
    g = p.add_argument_group('delaunay')
    g.add_argument('--num-points', default='50',
                   help="n, or a range 'lo-hi' (paper: 50 or 20-80)")
    g.add_argument('--knn', type=int, default=None,
                   help='kNN candidate pairs instead of all pairs')


def load_data(args, run):
    args.points = cli.set_size(args.num_points)
    log = run.is_main and args.progress
    data = [Delaunay(args.root, split, num_points=args.points, num_samples=n,
                     seed=args.seed, log=log)
            for split, n in (('train', args.train_samples),
                             ('val', args.val_samples),
                             ('test', args.test_samples))]
    run.print(f'data: {len(data[0])} train / {len(data[1])} val / '
              f'{len(data[2])} test sets, n={args.num_points}')
    return data


def build(args, run, data):
    if args.model == 'set2graph':
        model = Set2Graph(2, args.hidden, k=2, tuple_channels=args.hidden,
                          neighbours=args.knn)
        cli.check_pair_memory(model, args.points, args.batch_size, run)
    else:
        model = GraphRefiner(2, args.hidden, args.T, knn=args.knn,
                             checkpoint=args.config.checkpoint_mode)
    return model, AdjacencyBCELoss()


def report(args, run, model, result, data, evaluate):
    test = run.evaluate(evaluate, model, data[2])
    run.print(f"best val F1 {result.best_val['f1']:.4f} at step "
              f"{result.best_step}")
    run.print('test ' + ' '.join(f'{k}={v:.4f}' for k, v in test.items()))
    run.print(f"{result.steps} batches, training "
              f"{result.train_seconds:.0f}s")
    if run.is_main:
        with open(os.path.join(args.out, 'test_metrics.json'), 'w') as f:
            json.dump({'test': test, 'best_val': result.best_val,
                       'steps': result.steps,
                       'train_seconds': result.train_seconds,
                       'args': cli.plain_args(args)}, f, indent=1)
    return dict(test, parameters=args.num_parameters)


TASK = cli.Task(
    name='Delaunay', description=__doc__, add_arguments=add_arguments,
    models=['refiner', 'set2graph'], out='runs/delaunay',
    root='data/delaunay', samples=(50_000, 5_000, 5_000),
    defaults=dict(hidden=256, T=32, B=4, S=4, epochs=100, patience=0),
    quick=dict(train_samples=2000, val_samples=200, test_samples=200),
    load_data=load_data, build=build, report=report,
    evaluator=lambda args, loss_fn: adjacency_evaluator(),
    draw=lambda args, model, data, path: draw_graph_prediction(
        model, data[2][0], path))

parse_args, build_parser, main = cli.entry_points(TASK)

if __name__ == '__main__':
    main()
