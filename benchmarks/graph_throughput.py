"""Training throughput and peak memory of the GraphRefiner on Delaunay.

Runs backprop with skips at the paper's Delaunay settings (d=256, T=32,
B=4, S=4, batch 64) and prints samples/s and peak memory (process RSS, also
relative to the RSS right after the imports; CUDA peak too on a GPU). Each
configuration runs in a fresh subprocess so the peak RSS of one does not
hide another's. Writes CSV, JSON and a PNG under ``--out``.

    python benchmarks/graph_throughput.py                  # n=50, 20-80
    python benchmarks/graph_throughput.py --sizes 50 --batches 2 --knn 16
    python benchmarks/graph_throughput.py --quick          # n=50, kNN 16
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

CONFIGS = {'50': 50, '20-80': (20, 80)}


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'graph_throughput')
    C.add_throughput_options(p, CONFIGS, batches=2, hidden=256, T=32, B=4,
                             S=4, root=osp.join('data', 'bench_delaunay'))
    p.add_argument('--knn', type=int, default=None,
                   help='kNN candidate pairs instead of all pairs')
    args = p.parse_args(argv)
    if args.quick and args.sizes == list(CONFIGS):
        args.sizes, args.batches = ['50'], min(args.batches, 1)
        args.knn = args.knn or 16
    return args


def run_one(args, size):
    from torch_geometric_hyper.datasets import Delaunay
    from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner
    return C.training_throughput_row(
        args, {'size': size, 'knn': args.knn or 'all'},
        lambda num: Delaunay(args.root, 'train', num_points=CONFIGS[size],
                             num_samples=num, log=False),
        lambda: GraphRefiner(2, args.hidden, args.T, knn=args.knn),
        AdjacencyBCELoss())


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    return C.throughput_main(
        __file__, argv, args, run_one,
        C.throughput_columns(('knn', 'knn', '')),
        f'GraphRefiner training throughput, Delaunay (d={args.hidden}, '
        f'T={args.T}, B={args.B}, S={args.S})')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
