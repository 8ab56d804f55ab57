"""Training throughput and peak memory of the refiner on convex hull.

Runs backprop with skips (T=16, B=4, S=2 by default) on batches of the
convex-hull task and prints samples/s and peak memory (process RSS, also
relative to the RSS right after the imports; CUDA peak too on a GPU). Each
configuration runs in a fresh subprocess so the peak RSS of one does not
hide another's. Writes CSV, JSON and a PNG under ``--out``.

Both modes of the refiner are measured by default, each configuration
reported with its mode and thread count: activation checkpointing ``on``
(recompute the pair activations in backward: less memory) and ``off``
(store them: faster). ``--checkpointing on`` or ``off`` measures one.
``--candidates all 16`` also measures the refiner with K=16 candidate
nodes per slot (``num_candidates``) beside the all-pairs one, and
``--chunk-elements 131072 524288`` the working-set sizes of the per-pair
kernels (default ``auto``: the library's choice by thread count).
``--candidate-kernels blocks sparse`` measures the K-candidate refiner
twice: with the library's choice of incidence products (``blocks``: dense
per-graph blocks where ``CandidateIncidence.with_blocks`` takes them, as
for these sets of one size) and with the sparse products forced
(``sparse``: ``with_blocks`` patched to keep the sparse layout, in that
configuration's own process); the row's ``blocks_used`` says which ran.

    python benchmarks/train_throughput.py                 # n=30, 50, 20-100
    python benchmarks/train_throughput.py --sizes 30 --batches 1 --threads 1
    python benchmarks/train_throughput.py --quick         # n=30, 2 batches
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

CONFIGS = {  # name: (num_points, max_edges)
    '30': (30, 56),
    '50': (50, 96),
    '20-100': ((20, 100), 196),
}


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'train_throughput')
    C.add_throughput_options(p, CONFIGS, batches=4, hidden=128, T=16, B=4,
                             S=2, root=osp.join('data', 'bench_hull'))
    p.add_argument('--checkpointing', nargs='+', default=['on', 'off'],
                   choices=['on', 'off'],
                   help='activation checkpointing modes to measure')
    p.add_argument('--candidates', nargs='+', default=['all'],
                   help="candidate nodes per slot: 'all' (all pairs) or K "
                        "(HypergraphRefiner(num_candidates=K))")
    p.add_argument('--candidate-kernels', nargs='+', default=['blocks'],
                   choices=['blocks', 'sparse'],
                   help="incidence products of the K-candidate refiner: "
                        "'blocks' (the library's choice) or 'sparse' "
                        "(dense blocks disabled)")
    p.add_argument('--chunk-elements', nargs='+', default=['auto'],
                   help="working-set size of the per-pair kernels: 'auto' "
                        "(the default of the library) or numbers of floats, "
                        "e.g. 131072 524288 (alternated within each size)")
    args = p.parse_args(argv)
    for c in args.chunk_elements:
        if c != 'auto' and not (c.isdigit() and int(c) >= 1):
            p.error(f"--chunk-elements: 'auto' or a positive integer, "
                    f"got '{c}'")
    for k in args.candidates:
        if k != 'all' and not (k.isdigit() and int(k) >= 1):
            p.error(f"--candidates: 'all' or a positive integer, got '{k}'")
    if args.quick and args.sizes == list(CONFIGS):
        args.sizes, args.batches = ['30'], min(args.batches, 2)
    return args


def run_one(args, cfg):
    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    size, mode = cfg['size'], cfg['checkpointing']
    k = cfg.get('candidates', 'all')
    chunk = cfg.get('chunk_elements', 'auto')
    kernels = cfg.get('kernels', '-')
    points, m = CONFIGS[size]
    used = _watch_blocks(kernels == 'sparse')
    row = C.training_throughput_row(
        args, {'size': size, 'checkpointing': mode, 'max_edges': m,
               'candidates': k, 'chunk_elements': chunk},
        lambda num: ConvexHull(args.root, 'train', num_points=points,
                               num_samples=num, log=False),
        lambda: HypergraphRefiner(
            3, args.hidden, m, args.T, checkpoint=mode == 'on',
            num_candidates=None if k == 'all' else int(k),
            chunk_elements=None if chunk == 'auto' else int(chunk)),
        MatchedIncidenceLoss())
    row['kernels'] = kernels
    row['blocks_used'] = any(used)
    return row


def _watch_blocks(force_sparse: bool):
    # records whether the candidates took dense blocks; with force_sparse
    # keeps them sparse (this configuration runs in its own process)
    from torch_geometric_hyper.nn.functional import CandidateIncidence
    real = CandidateIncidence.with_blocks
    used = []

    def watched(self, *args, **kwargs):
        out = self if force_sparse else real(self, *args, **kwargs)
        used.append(out.block_index is not None)
        return out
    CandidateIncidence.with_blocks = watched
    return used


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # alternate the modes within each size, so a drift in the machine's
    # load hits both alike
    configs = [{'size': size, 'checkpointing': mode, 'candidates': k,
                'kernels': kern, 'chunk_elements': c}
               for size in args.sizes for mode in args.checkpointing
               for k in args.candidates
               for kern in (['-'] if k == 'all' else args.candidate_kernels)
               for c in args.chunk_elements]
    return C.throughput_main(
        __file__, argv, args, run_one,
        C.throughput_columns(('checkpointing', 'ckpt', ''),
                             ('max_edges', 'm', 'd'),
                             ('candidates', 'K', ''),
                             ('kernels', 'products', ''),
                             ('chunk_elements', 'chunk', '')),
        f'Refiner training throughput, convex hull (d={args.hidden}, '
        f'T={args.T}, B={args.B}, S={args.S})', configs=configs,
        bar_label=lambda r: f"{r['size']} ckpt {r['checkpointing']}" + (
            '' if r.get('candidates', 'all') == 'all'
            else f" K={r['candidates']} {r.get('kernels', '')}") + (
            '' if r.get('chunk_elements', 'auto') == 'auto'
            else f" chunk {r['chunk_elements']}"))


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
