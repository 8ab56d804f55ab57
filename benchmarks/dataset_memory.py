"""Resident memory of a convex-hull dataset over training epochs: the
package's datasets (each sample cut out of the collated storage when it is
read, ``UncachedSamples``) against PyG's ``InMemoryDataset.get`` (which
keeps a copy of every sample it has handed out).

For each way of reading samples, in a fresh process: the RSS after the
imports, after loading the dataset, and after each epoch of a shuffled
``DataLoader`` (batch 64 by default), with the seconds per epoch. Writes
CSV, JSON and a PNG under ``--out``.

    python benchmarks/dataset_memory.py              # n=30, 20,000 sets
    python benchmarks/dataset_memory.py --quick      # n=10, 500 sets
"""
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

GETTERS = ('package', 'pyg')


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'dataset_memory')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    p.add_argument('--num-points', type=int, default=None,
                   help='points per set (default 30, quick 10)')
    p.add_argument('--samples', type=int, default=None,
                   help='training sets (default 20000, quick 500)')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--getters', nargs='+', default=list(GETTERS),
                   choices=GETTERS,
                   help="'package' (the dataset's own get) and 'pyg' "
                        "(InMemoryDataset.get, which keeps each sample)")
    args = p.parse_args(argv)
    C.apply_defaults(args, num_points=10 if args.quick else 30,
                     samples=500 if args.quick else 20_000)
    if args.epochs < 1 or args.samples < 1 or args.batch_size < 1:
        p.error('--epochs, --samples and --batch-size must be positive')
    return args


def rss_mib() -> float:
    """Current resident memory of this process, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')  # pragma: no cover - not Linux


def run_one(args, getter: str):
    import torch
    from torch_geometric.data import InMemoryDataset
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    own_get = ConvexHull.get
    if getter == 'pyg':  # PyG's caching get, restored at the end
        ConvexHull.get = InMemoryDataset.get
    try:
        return _measure(args, getter, ConvexHull, DataLoader)
    finally:
        ConvexHull.get = own_get


def _measure(args, getter, ConvexHull, DataLoader):
    row = {'getter': getter, 'num_points': args.num_points,
           'samples': args.samples, 'batch_size': args.batch_size,
           'rss_imports_mib': rss_mib()}
    ds = ConvexHull(args.root, 'train', num_points=args.num_points,
                    num_samples=args.samples, log=False)
    row['rss_loaded_mib'] = rss_mib()
    epochs = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        for _ in DataLoader(ds, batch_size=args.batch_size, shuffle=True):
            pass
        epochs.append({'seconds': time.perf_counter() - t0,
                       'rss_mib': rss_mib()})
    row['epoch_seconds'] = [e['seconds'] for e in epochs]
    row['epoch_rss_mib'] = [e['rss_mib'] for e in epochs]
    row['growth_mib'] = epochs[-1]['rss_mib'] - row['rss_loaded_mib']
    row['first_epoch_s'] = epochs[0]['seconds']
    row['last_epoch_s'] = epochs[-1]['seconds']
    row['peak_rss_mib'] = C.peak_rss_mib()
    return row


def main(argv=None):
    started = C.start(parse_args, lambda a, cfg: run_one(a, cfg['getter']),
                      argv)
    if started is None:
        return None
    argv, args = started
    # build the cache once, outside the measured processes
    from torch_geometric_hyper.datasets import ConvexHull
    ConvexHull(args.root, 'train', num_points=args.num_points,
               num_samples=args.samples, log=not args.quick)
    rows = [C.run_config(__file__, argv, args, {'getter': g},
                         lambda a, cfg: run_one(a, cfg['getter']))
            for g in args.getters]
    cols = [('getter', 'get', ''), ('num_points', 'n', 'd'),
            ('samples', 'sets', 'd'),
            ('rss_imports_mib', 'RSS imports', '.0f'),
            ('rss_loaded_mib', 'RSS loaded', '.0f'),
            ('growth_mib', f'growth after {args.epochs} epochs MiB', '.1f'),
            ('first_epoch_s', 'epoch 1 s', '.2f'),
            ('last_epoch_s', f'epoch {args.epochs} s', '.2f')]

    def plot(rows):
        fig, (ax1, ax2) = C.new_figure(2)
        for r in rows:
            xs = list(range(args.epochs + 1))
            ys = [r['rss_loaded_mib']] + r['epoch_rss_mib']
            ax1.plot(xs, ys, marker='o', label=r['getter'])
        ax1.set_xlabel('epochs read')
        ax1.set_ylabel('RSS (MiB)')
        ax2.bar([r['getter'] for r in rows],
                [r['last_epoch_s'] for r in rows])
        ax2.set_ylabel(f'seconds for epoch {args.epochs}')
        C.style_axes(ax1)
        return fig

    return C.finish(args, rows, cols, plot,
                    f'Dataset memory over epochs, convex hull '
                    f'n={args.num_points}, {args.samples} sets, batch '
                    f'{args.batch_size}')


if __name__ == '__main__':
    main()
