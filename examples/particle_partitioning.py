"""Secondary-vertex finding in particle jets with the hypergraph refiner.

Trains a HypergraphRefiner on ParticlePartitioning (tracks partitioned by
vertex) with the matched BCE + soft F1 loss and prints the test split's
per-flavour F1 / RI / ARI of the best validation checkpoint, beside two
trivial baselines (all tracks in one vertex; every track alone).

Paper settings (the defaults): m=10 slots, d=128, T=16, B=4, S=2, batch
2048, Adam 3e-4, 400 epochs. ``--model set2graph`` trains the Set2Graph
baseline (k=2): BCE of its pair scores against the "same vertex" adjacency,
decoded by the connected components of the pairs above 0.5; its widths are
the --s2g-* flags (about its paper's jets model, ~460k parameters).

    # raw files in DIR/raw/{training_data,valid_data,test_data}.root
    python examples/particle_partitioning.py --root DIR
    # or in split subfolders (the shared 20k-jet sample), linked into DIR/raw
    python examples/particle_partitioning.py --root DIR \\
        --raw-dir /work/shared/data/jets --quick
    python examples/particle_partitioning.py --root DIR --model set2graph
    torchrun --nproc_per_node 2 examples/particle_partitioning.py --root DIR
"""
import os.path as osp

import torch

from torch_geometric_hyper.datasets import ParticlePartitioning, \
    link_raw_files
from torch_geometric_hyper.metrics import PartitionMetrics, \
    partition_baselines
from torch_geometric_hyper.nn import HypergraphRefiner, PartitionLoss, \
    SameVertexBCELoss, Set2Graph
from torch_geometric_hyper.train import cli, partition_evaluator, \
    partition_metrics
from torch_geometric_hyper.visualize import draw_partition_prediction


def add_arguments(p):
    p.add_argument('--root', required=True,
                   help='dataset root (raw/ and processed/ below it)')
    g = p.add_argument_group('jets')
    for flag, kw, text in (
            ('--raw-dir', {}, 'where the three ROOT files are (flat or in '
             'train/, validation/, test/); symlinked into ROOT/raw'),
            ('--max-edges', dict(type=int, default=10), 'm (slots)'),
            ('--f1-weight', dict(type=float, default=1.0),
             'weight of the soft F1 term (0: matched BCE only)'),
            ('--gate-f1', dict(action='store_true'),
             'soft F1 on the existence-gated incidence'),
            ('--pair-rule', dict(default='product', choices=[
                'product', 'noisy_or']), 'pair probability of the soft F1'),
            ('--s2g-hidden', dict(type=int, default=256),
             'Set2Graph encoder width'),
            ('--s2g-layers', dict(type=int, default=3),
             'Set2Graph encoder DeepSets layers'),
            ('--s2g-tuple-channels', dict(type=int, default=192),
             'Set2Graph pair-MLP width'),
            ('--s2g-mlp-layers', dict(type=int, default=1),
             'Set2Graph pair-MLP hidden layers after the broadcast')):
        g.add_argument(flag, help=text, **kw)


def finish_args(args):  # --out: ROOT/checkpoints[_set2graph][_quick]
    if args.out is None:
        args.out = osp.join(args.root, 'checkpoints' if args.model ==
                            'refiner' else f'checkpoints_{args.model}')
        if args.quick:
            args.out += '_quick'


def load_data(args, run):
    log = run.is_main and args.progress
    if args.raw_dir is not None and run.is_main:
        link_raw_files(args.raw_dir, args.root)
    data = [ParticlePartitioning(args.root, s, log=log)
            for s in ('train', 'val', 'test')]
    run.print('jets: ' + ', '.join(
        f'{s} {len(d)} (skipped {d.num_skipped})'
        for s, d in zip(('train', 'val', 'test'), data))
        + f'; most vertices in train: {data[0].max_hyperedges}')
    if args.model == 'refiner' and data[0].max_hyperedges > args.max_edges:
        run.print(f'warning: some training jets have more than --max-edges='
                  f'{args.max_edges} vertices; they would fail the matched '
                  f'loss')
    if run.is_main:
        for name, res in partition_baselines(data[2]).items():
            print(PartitionMetrics.format_table(
                res, title=f'baseline "{name}" (test)'))
    # --train/val/test-samples: the first N jets of a split (0: all)
    return [d[:n] if n else d for d, n in zip(data, (
        args.train_samples, args.val_samples, args.test_samples))]


def build(args, run, data):
    if args.model == 'set2graph':
        return Set2Graph(10, args.s2g_hidden, k=2, num_layers=args.s2g_layers,
                         tuple_channels=args.s2g_tuple_channels,
                         mlp_layers=args.s2g_mlp_layers), SameVertexBCELoss()
    return (HypergraphRefiner(10, args.hidden, args.max_edges, args.T,
                              checkpoint=args.config.checkpoint_mode),
            PartitionLoss(args.f1_weight, gate=args.gate_f1,
                          pair_rule=args.pair_rule))


def report(args, run, model, result, data, evaluate):
    run.print(f"{args.model} ({args.num_parameters:,} parameters): training "
              f"time {result.train_seconds:.1f}s; best val F1 "
              f"{result.best_metric:.4f} at step {result.best_step}")
    if not run.is_main:
        return None
    model.eval()  # the per-flavour table on the whole test split
    with torch.no_grad(), run.autocast():
        res = partition_metrics(model, run.batches(
            data[2], args.eval_batch_size), args.T)
    print(PartitionMetrics.format_table(
        res, title=f'{args.model}, best validation checkpoint (test)'))
    return res


def draw(args, model, data, path):
    jet = next((d for d in data[2] if d.num_nodes >= 5), data[2][0])
    kwargs = dict(num_iterations=args.T) \
        if isinstance(model, HypergraphRefiner) else {}
    return draw_partition_prediction(model, jet, path, **kwargs)


TASK = cli.Task(
    name='jets', description=__doc__, add_arguments=add_arguments,
    models=['refiner', 'set2graph'], out=None, samples=None,
    quick=dict(batch_size=128),  # 2048: too few updates in 4.7 min
    defaults=dict(batch_size=2048, eval_batch_size=2048, epochs=400,
                  patience=0),
    finish_args=finish_args, load_data=load_data, build=build, report=report,
    evaluator=lambda args, loss_fn: partition_evaluator(args.T),
    format_val=lambda step, res, improved: (
        f"step {step:6d}  val F1 {res['f1']:.4f} RI {res['ri']:.4f} ARI "
        f"{res['ari']:.4f}{'  (best)' if improved else ''}"), draw=draw)

parse_args, build_parser, main = cli.entry_points(TASK)

if __name__ == '__main__':
    main()
