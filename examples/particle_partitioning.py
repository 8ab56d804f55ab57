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
"""
import argparse
import os
import os.path as osp
import random
import sys
import time

import torch

QUICK = dict(hidden=64, iterations=8, backprop=2, updates=2, batch_size=256,
             epochs=8, time_limit=170.0)

RAW_LAYOUT = {  # file: places it may be found under --raw-dir
    'training_data.root': ['training_data.root', 'train/training_data.root'],
    'valid_data.root': ['valid_data.root', 'validation/valid_data.root',
                        'val/valid_data.root'],
    'test_data.root': ['test_data.root', 'test/test_data.root'],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--root', required=True,
                   help='dataset root (raw/ and processed/ below it)')
    p.add_argument('--raw-dir', default=None,
                   help='where the three ROOT files are (flat or in '
                   'train/, validation/, test/); symlinked into ROOT/raw')
    p.add_argument('--quick', action='store_true',
                   help=f'small preset that trains in a few minutes on '
                   f'2 CPU cores: {QUICK} (explicit flags override it)')
    p.add_argument('--model', default='refiner',
                   choices=['refiner', 'set2graph'])
    p.add_argument('--hidden', type=int, default=128, help='d')
    p.add_argument('--max-edges', type=int, default=10, help='m (slots)')
    p.add_argument('--iterations', '-T', type=int, default=16, help='T')
    p.add_argument('--backprop', '-B', type=int, default=4,
                   help='B: steps back-propagated per update')
    p.add_argument('--updates', '-S', type=int, default=2,
                   help='S: updates per mini-batch')
    p.add_argument('--batch-size', type=int, default=2048)
    p.add_argument('--eval-batch-size', type=int, default=2048)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--epochs', type=int, default=400)
    p.add_argument('--time-limit', type=float, default=0.0,
                   help='stop training after this many seconds (0: none)')
    p.add_argument('--eval-every', type=int, default=1,
                   help='validate every this many epochs')
    p.add_argument('--f1-weight', type=float, default=1.0,
                   help='weight of the soft F1 term (0: matched BCE only)')
    p.add_argument('--gate-f1', action='store_true',
                   help='soft F1 on the existence-gated incidence')
    p.add_argument('--pair-rule', default='product',
                   choices=['product', 'noisy_or'])
    p.add_argument('--s2g-hidden', type=int, default=256,
                   help='Set2Graph encoder width')
    p.add_argument('--s2g-layers', type=int, default=3,
                   help='Set2Graph encoder DeepSets layers')
    p.add_argument('--s2g-tuple-channels', type=int, default=192,
                   help='Set2Graph pair-MLP width')
    p.add_argument('--s2g-mlp-layers', type=int, default=1,
                   help='Set2Graph pair-MLP hidden layers after the '
                   'broadcast')
    p.add_argument('--max-grad-norm', type=float, default=None)
    p.add_argument('--activation-checkpointing', action='store_true',
                   help='always recompute step activations in backward '
                   '(less memory, slower; default: only when one step\'s '
                   'would exceed 256 MiB)')
    p.add_argument('--checkpoint-dir', default=None,
                   help='default: ROOT/checkpoints (refiner), '
                   'ROOT/checkpoints_set2graph')
    p.add_argument('--resume', action='store_true',
                   help='continue from CHECKPOINT_DIR/last.pt')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads')
    p.add_argument('--device', default='cpu')
    p.add_argument('--no-progress', action='store_true')
    argv = sys.argv[1:] if argv is None else argv
    if '--quick' in argv:
        p.set_defaults(**QUICK)
    return p.parse_args(argv)


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


def atomic_save(obj, path):
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


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

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'


def build_model(args):
    """``(model, trainer, loss_fn)`` of ``args.model``."""
    from torch_geometric_hyper.nn import (HypergraphRefiner, PartitionLoss,
                                          Set2Graph)
    from torch_geometric_hyper.train import BackpropWithSkips, OneShot
    if args.model == 'set2graph':
        model = Set2Graph(10, args.s2g_hidden, k=2,
                          num_layers=args.s2g_layers,
                          tuple_channels=args.s2g_tuple_channels,
                          mlp_layers=args.s2g_mlp_layers)
        return model, OneShot(args.max_grad_norm), SameVertexBCELoss()
    model = HypergraphRefiner(10, args.hidden, args.max_edges,
                              args.iterations,
                              checkpoint=True if args.activation_checkpointing
                              else 'auto')
    loss_fn = PartitionLoss(args.f1_weight, gate=args.gate_f1,
                            pair_rule=args.pair_rule)
    trainer = BackpropWithSkips(args.iterations, args.backprop, args.updates,
                                max_grad_norm=args.max_grad_norm,
                                seed=args.seed)
    return model, trainer, loss_fn


@torch.no_grad()
def evaluate(model, loader, device, T, seed=0):
    """Per-flavour partition metrics; ``T`` is ignored by one-shot models
    (Set2Graph), whose pair adjacency is decoded by connected components."""
    from torch_geometric_hyper.metrics import (PartitionMetrics,
                                               decode_partition,
                                               target_partition)
    from torch_geometric_hyper.nn import HypergraphRefiner
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    kwargs = dict(num_iterations=T, generator=gen) \
        if isinstance(model, HypergraphRefiner) else {}
    metrics = PartitionMetrics()
    for batch in loader:
        batch = batch.to(device)
        pred = model(batch.x, batch.batch, batch.num_graphs, **kwargs)
        metrics.update(decode_partition(pred),
                       target_partition(batch.hyperedge_index,
                                        batch.num_nodes),
                       batch.batch, batch.flavour, batch.num_graphs)
    return metrics.compute()


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
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    from torch_geometric.loader import DataLoader
    from tqdm.auto import tqdm

    from torch_geometric_hyper.datasets import ParticlePartitioning
    from torch_geometric_hyper.metrics import PartitionMetrics

    if args.raw_dir is not None:
        link_raw(args.raw_dir, args.root)
    device = torch.device(args.device)
    log = not args.no_progress
    train_ds = ParticlePartitioning(args.root, 'train', log=log)
    val_ds = ParticlePartitioning(args.root, 'val', log=log)
    test_ds = ParticlePartitioning(args.root, 'test', log=log)
    print(f'jets: train {len(train_ds)} (skipped {train_ds.num_skipped}), '
          f'val {len(val_ds)} (skipped {val_ds.num_skipped}), test '
          f'{len(test_ds)} (skipped {test_ds.num_skipped}); most vertices '
          f'in train: {train_ds.max_hyperedges}')
    if args.model == 'refiner' and train_ds.max_hyperedges > args.max_edges:
        print(f'warning: some training jets have more than --max-edges='
              f'{args.max_edges} vertices; they would fail the matched loss')

    for name, res in baselines(test_ds).items():
        print(PartitionMetrics.format_table(
            res, title=f'baseline "{name}" (test)'))

    train_loader = DataLoader(train_ds, batch_size=args.batch_size,
                              shuffle=True, drop_last=False)
    val_loader = DataLoader(val_ds, batch_size=args.eval_batch_size)
    test_loader = DataLoader(test_ds, batch_size=args.eval_batch_size)

    model, trainer, loss_fn = build_model(args)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    num_parameters = sum(p.numel() for p in model.parameters())
    print(f'{model}\nparameters: {num_parameters:,}; {trainer}; {loss_fn}')

    ckpt_dir = args.checkpoint_dir or osp.join(
        args.root, 'checkpoints' if args.model == 'refiner'
        else f'checkpoints_{args.model}')
    os.makedirs(ckpt_dir, exist_ok=True)
    last_path = osp.join(ckpt_dir, 'last.pt')
    best_path = osp.join(ckpt_dir, 'best.pt')
    start_epoch, best_f1, elapsed = 0, -1.0, 0.0
    if args.resume:
        if not osp.exists(last_path):
            raise FileNotFoundError(f"--resume: no checkpoint at "
                                    f"'{last_path}'")
        state = torch.load(last_path, map_location=device,
                           weights_only=False)
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        if state.get('skip_rng') is not None:
            trainer.rng.setstate(state['skip_rng'])
        torch.set_rng_state(state['torch_rng'])
        start_epoch, best_f1 = state['epoch'], state['best_val_f1']
        elapsed = state.get('elapsed', 0.0)
        print(f'resumed from {last_path}: epoch {start_epoch}, best val F1 '
              f'{best_f1:.4f}')

    def checkpoint(epoch, path):
        atomic_save({'model': model.state_dict(),
                     'model_config': model.config(),
                     'optimizer': optimizer.state_dict(),
                     'skip_rng': (trainer.rng.getstate()
                                  if hasattr(trainer, 'rng') else None),
                     'torch_rng': torch.get_rng_state(),
                     'epoch': epoch, 'best_val_f1': best_f1,
                     'elapsed': elapsed, 'args': vars(args)}, path)

    t_start = time.perf_counter() - elapsed
    out_of_time = False
    epoch = start_epoch
    for epoch in range(start_epoch + 1, args.epochs + 1):
        model.train()
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f'epoch {epoch}', leave=False,
                   disable=not log)
        for batch in bar:
            batch = batch.to(device)
            stats = trainer(model, optimizer, loss_fn, batch)
            total += stats['loss'] * batch.num_graphs
            count += batch.num_graphs
            last = getattr(loss_fn, 'last', {})
            bar.set_postfix(loss=f"{stats['loss']:.4f}",
                            soft_f1=f"{last.get('soft_f1', 0):.3f}")
            if args.time_limit and \
                    time.perf_counter() - t_start > args.time_limit:
                out_of_time = True
                break
        elapsed = time.perf_counter() - t_start
        msg = (f'epoch {epoch:4d}  loss {total / max(count, 1):.4f}  '
               f'{elapsed:7.1f}s')
        if epoch % args.eval_every == 0 or out_of_time or \
                epoch == args.epochs:
            res = evaluate(model, val_loader, device, args.iterations)
            f1 = res['all']['f1']
            msg += (f"  val F1 {f1:.4f} RI {res['all']['ri']:.4f} "
                    f"ARI {res['all']['ari']:.4f}")
            if f1 > best_f1:
                best_f1 = f1
                checkpoint(epoch, best_path)
                msg += '  (best)'
        checkpoint(epoch, last_path)
        print(msg, flush=True)
        if out_of_time:
            print(f'time limit of {args.time_limit:.0f}s reached')
            break

    if not osp.exists(best_path):
        raise RuntimeError('no best checkpoint written: train at least one '
                           'epoch')
    state = torch.load(best_path, map_location=device, weights_only=False)
    model.load_state_dict(state['model'])
    print(f"{args.model} ({num_parameters:,} parameters): training time "
          f"{elapsed:.1f}s; best val F1 "
          f"{state['best_val_f1']:.4f} at epoch {state['epoch']}")
    res = evaluate(model, test_loader, device, args.iterations)
    print(PartitionMetrics.format_table(
        res, title=f'{args.model}, best validation checkpoint (test)'))
    return res


if __name__ == '__main__':
    main()
