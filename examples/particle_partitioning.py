"""Secondary-vertex finding in particle jets with the hypergraph refiner.

Trains a HypergraphRefiner on ParticlePartitioning (each jet's tracks
partitioned by vertex) with backprop with skips and the matched BCE + soft F1
loss, selects the checkpoint with the best validation F1 and prints the
per-flavour F1 / RI / ARI on the test split, next to two trivial baselines
(all tracks in one vertex; every track alone).

Paper settings (the defaults): m=10 slots, d=128, T=16, B=4, S=2, batch
2048, Adam 3e-4, 400 epochs.

``--model set2graph`` trains the Set2Graph baseline (Serviansky et al. 2020)
with k=2 instead: it scores every track pair of a jet, is trained with the
BCE of those scores against the "same vertex" pair adjacency (built from
each jet's partition) in a plain one-shot step, and is decoded by
thresholding the pairs at 0.5 and taking the connected components of each
jet as its vertices. Its widths are the --s2g-* flags (defaults: about the
size of Set2Graph's jets model, ~460k parameters); --quick does not change
them. T, B, S, --max-edges and the soft-F1 flags only concern the refiner.

    # raw files in DIR/raw/{training_data,valid_data,test_data}.root
    python examples/particle_partitioning.py --root DIR
    # files in split subfolders (train/, validation/, test/), e.g. the
    # shared 20k-jet sample: they are symlinked into DIR/raw
    python examples/particle_partitioning.py --root DIR \\
        --raw-dir /work/shared/data/jets --quick
    python examples/particle_partitioning.py --root DIR --resume
    python examples/particle_partitioning.py --root DIR --model set2graph
    torchrun --nproc_per_node 2 examples/particle_partitioning.py --root DIR

The training loop, its flags (``--T/--B/--S``, ``--val-every`` in
batches, ...) and its checkpoints are ``torch_geometric_hyper.train.loop``'s;
checkpoints go to ``--out`` (default ``ROOT/checkpoints``, or
``ROOT/checkpoints_set2graph``).
"""
import argparse
import os
import os.path as osp

import torch

from torch_geometric_hyper.train import loop

QUICK = {}

RAW_LAYOUT = {  # file: places it may be found under --raw-dir
    'training_data.root': ['training_data.root', 'train/training_data.root'],
    'valid_data.root': ['valid_data.root', 'validation/valid_data.root',
                        'val/valid_data.root'],
    'test_data.root': ['test_data.root', 'test/test_data.root'],
}


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=loop.HelpFormatter)
    p.add_argument('--root', required=True,
                   help='dataset root (raw/ and processed/ below it)')
    loop.add_arguments(p, models=['refiner', 'set2graph'], quick=QUICK,
                       out=None, samples=None)
    p.set_defaults(batch_size=2048, eval_batch_size=2048, epochs=400,
                   patience=0)
    g = p.add_argument_group('jets')
    g.add_argument('--raw-dir', default=None,
                   help='where the three ROOT files are (flat or in '
                   'train/, validation/, test/); symlinked into ROOT/raw')
    g.add_argument('--max-edges', type=int, default=10, help='m (slots)')
    g.add_argument('--f1-weight', type=float, default=1.0,
                   help='weight of the soft F1 term (0: matched BCE only)')
    g.add_argument('--gate-f1', action='store_true',
                   help='soft F1 on the existence-gated incidence')
    g.add_argument('--pair-rule', default='product',
                   choices=['product', 'noisy_or'],
                   help='pair probability of the soft F1')
    g.add_argument('--s2g-hidden', type=int, default=256,
                   help='Set2Graph encoder width')
    g.add_argument('--s2g-layers', type=int, default=3,
                   help='Set2Graph encoder DeepSets layers')
    g.add_argument('--s2g-tuple-channels', type=int, default=192,
                   help='Set2Graph pair-MLP width')
    g.add_argument('--s2g-mlp-layers', type=int, default=1,
                   help='Set2Graph pair-MLP hidden layers after the '
                   'broadcast')
    return p


def parse_args(argv=None):
    args = loop.parse_args(build_parser(), argv, QUICK)
    if args.out is None:
        args.out = osp.join(args.root, 'checkpoints' if args.model ==
                            'refiner' else f'checkpoints_{args.model}')
        if args.quick:
            args.out += '_quick'
    return args


def link_raw(raw_dir, root):
    """Symlinks the three ROOT files from ``raw_dir`` into ``root/raw``."""
    os.makedirs(osp.join(root, 'raw'), exist_ok=True)
    for name, places in RAW_LAYOUT.items():
        dst = osp.join(root, 'raw', name)
        if osp.exists(dst):
            continue
        for rel in places:
            src = osp.join(raw_dir, rel)
            if osp.exists(src):
                os.symlink(osp.abspath(src), dst)
                break
        else:
            raise FileNotFoundError(
                f"'{name}' not found under '{raw_dir}' (looked for "
                f"{places})")


class SameVertexBCELoss(torch.nn.Module):
    """Set2Graph's jets loss: BCE of the pair scores against the "same
    vertex" pair adjacency of each jet's partition."""

    def __init__(self):
        super().__init__()
        from torch_geometric_hyper.nn import AdjacencyBCELoss
        self.bce = AdjacencyBCELoss()

    def forward(self, pred, data):
        from torch_geometric_hyper.metrics import partition_edge_index
        return self.bce(pred, partition_edge_index(data.hyperedge_index,
                                                   data.num_nodes))

    def reduction_weight(self, pred, data):
        """A mean over candidate pairs (for data-parallel weighting)."""
        return self.bce.reduction_weight(pred, data)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'


def build_model(args):
    """``(model, loss_fn)`` of ``args.model``."""
    from torch_geometric_hyper.nn import (HypergraphRefiner, PartitionLoss,
                                          Set2Graph)
    if args.model == 'set2graph':
        model = Set2Graph(10, args.s2g_hidden, k=2,
                          num_layers=args.s2g_layers,
                          tuple_channels=args.s2g_tuple_channels,
                          mlp_layers=args.s2g_mlp_layers)
        return model, SameVertexBCELoss()
    model = HypergraphRefiner(10, args.hidden, args.max_edges, args.T,
                              checkpoint=loop.checkpoint_mode(args))
    loss_fn = PartitionLoss(args.f1_weight, gate=args.gate_f1,
                            pair_rule=args.pair_rule)
    return model, loss_fn


def partition_metrics(model, batches, T, seed=0):
    """Per-flavour partition metrics; ``T`` is ignored by one-shot models
    (Set2Graph), whose pair adjacency is decoded by connected components."""
    from torch_geometric_hyper.metrics import (PartitionMetrics,
                                               decode_partition,
                                               target_partition)
    from torch_geometric_hyper.nn import HypergraphRefiner
    metrics, gen = PartitionMetrics(), None
    for batch in batches:
        kwargs = {}
        if isinstance(model, HypergraphRefiner):
            if gen is None:
                gen = torch.Generator(device=batch.x.device).manual_seed(seed)
            kwargs = dict(num_iterations=T,
                          **loop.eval_slots(model, batch, seed, gen))
        pred = model(batch.x, batch.batch, batch.num_graphs, **kwargs)
        metrics.update(decode_partition(pred),
                       target_partition(batch.hyperedge_index,
                                        batch.num_nodes),
                       batch.batch, batch.flavour, batch.num_graphs)
    return metrics.compute()


@torch.no_grad()
def draw_jet(model, dataset, T, path):
    """The first test jet with at least 5 tracks: tracks at their
    (standardised) impact parameters, coloured by true and predicted
    vertex."""
    from torch_geometric_hyper.metrics import (decode_partition,
                                               target_partition)
    from torch_geometric_hyper.nn import HypergraphRefiner
    from torch_geometric_hyper.visualize import plot_partition
    data = next((d for d in dataset if d.num_nodes >= 5), dataset[0])
    data = data.to(next(model.parameters()).device)
    model.eval()
    kwargs = dict(num_iterations=T, generator=torch.Generator(
        device=data.x.device).manual_seed(0)) \
        if isinstance(model, HypergraphRefiner) else {}
    batch = torch.zeros(data.num_nodes, dtype=torch.long,
                        device=data.x.device)
    pred = model(data.x, batch, 1, **kwargs)
    return plot_partition(data.x[:, :2].cpu(), decode_partition(pred).cpu(),
                          target_partition(data.hyperedge_index,
                                           data.num_nodes).cpu(), path,
                          title='one test jet: tracks by vertex')


def baselines(dataset):
    from torch_geometric_hyper.metrics import PartitionMetrics
    data = dataset._data
    n = data.num_nodes
    ptr = dataset.slices['x']
    batch = torch.repeat_interleave(torch.arange(ptr.numel() - 1),
                                    ptr[1:] - ptr[:-1])
    # labels only need to be unique within a jet: the local vertex ids do
    eptr = dataset.slices['hyperedge_index']
    edge_batch = torch.repeat_interleave(torch.arange(eptr.numel() - 1),
                                         eptr[1:] - eptr[:-1])
    node, edge = data.hyperedge_index
    target = torch.zeros(n, dtype=torch.long)
    target[ptr[edge_batch] + node] = edge
    out = {}
    for name, pred in (('one vertex', torch.zeros(n, dtype=torch.long)),
                       ('each alone', torch.arange(n))):
        m = PartitionMetrics()
        m.update(pred, target, batch, data.flavour.view(-1))
        out[name] = m.compute()
    return out


def main(argv=None):
    args = parse_args(argv)
    run = loop.setup(args)
    from torch_geometric_hyper.datasets import ParticlePartitioning
    from torch_geometric_hyper.metrics import PartitionMetrics

    log = run.is_main and not args.no_progress
    with run.main_first():  # one process links the files, builds the cache
        if args.raw_dir is not None and run.is_main:
            link_raw(args.raw_dir, args.root)
        train_ds = ParticlePartitioning(args.root, 'train', log=log)
        val_ds = ParticlePartitioning(args.root, 'val', log=log)
        test_ds = ParticlePartitioning(args.root, 'test', log=log)
    run.print(f'jets: train {len(train_ds)} (skipped '
              f'{train_ds.num_skipped}), val {len(val_ds)} (skipped '
              f'{val_ds.num_skipped}), test {len(test_ds)} (skipped '
              f'{test_ds.num_skipped}); most vertices in train: '
              f'{train_ds.max_hyperedges}')
    if args.model == 'refiner' and train_ds.max_hyperedges > args.max_edges:
        run.print(f'warning: some training jets have more than --max-edges='
                  f'{args.max_edges} vertices; they would fail the matched '
                  f'loss')
    if run.is_main:
        for name, res in baselines(test_ds).items():
            print(PartitionMetrics.format_table(
                res, title=f'baseline "{name}" (test)'))

    # --train/val/test-samples: the first N jets of a split (0: all)
    train_ds, val_ds, test_ds = (ds[:n] if n else ds for ds, n in (
        (train_ds, args.train_samples), (val_ds, args.val_samples),
        (test_ds, args.test_samples)))

    run.seed_everything()
    model, loss_fn = build_model(args)
    model = run.prepare(model)
    trainer = loop.make_trainer(args, args.model == 'refiner')
    num_parameters = sum(p.numel() for p in model.parameters())
    run.print(f'{model}\nparameters: {num_parameters:,}; {trainer}; '
              f'{loss_fn}')

    def evaluate(model, batches):
        res = partition_metrics(model, batches, args.T)['all']
        return {k: res[k] for k in ('f1', 'ri', 'ari')}

    def format_val(step, res, improved):
        return (f"step {step:6d}  val F1 {res['f1']:.4f} RI {res['ri']:.4f} "
                f"ARI {res['ari']:.4f}{'  (best)' if improved else ''}")

    state = loop.fit(run, args, model, trainer, loss_fn, train_ds, val_ds,
                     evaluate, format_val=format_val,
                     test_size=len(test_ds))
    loop.load_best(run, model)
    run.print(f"{args.model} ({num_parameters:,} parameters): training time "
              f"{state['train_seconds']:.1f}s; best val F1 "
              f"{state['best_f1']:.4f} at step {state['best_step']}")
    res = None
    if run.is_main:  # the per-flavour table on the whole test split
        model.eval()
        with torch.no_grad(), run.autocast():
            res = partition_metrics(model, run.batches(
                test_ds, args.eval_batch_size), args.T)
        print(PartitionMetrics.format_table(
            res, title=f'{args.model}, best validation checkpoint (test)'))
    loop.write_pictures(run, state, lambda path: draw_jet(
        model, test_ds, args.T, path), f'{args.model}, jets')
    run.close()
    return res


if __name__ == '__main__':
    main()
