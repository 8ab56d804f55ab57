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

``--interleave`` measures the configurations of each size in one process
instead, taking turns batch by batch (the first to go rotates each
round), so a drift in the machine's speed hits all alike: s/batch is the
median over the timed batches, ``ratio_to_first`` the median over rounds
of the first configuration's time over this one's (above 1: faster), and
the peak RSS is the shared process's (not per configuration).

    python benchmarks/train_throughput.py                 # n=30, 50, 20-100
    python benchmarks/train_throughput.py --sizes 30 --batches 1 --threads 1
    python benchmarks/train_throughput.py --quick         # n=30, 2 batches
    python benchmarks/train_throughput.py --sizes 30 --checkpointing off \
        --candidates all 16 --interleave --batches 40
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
    p.add_argument('--interleave', action='store_true',
                   help='run the configurations of each size in one '
                        'process, taking turns batch by batch (median '
                        's/batch, paired ratio to the first; shared peak '
                        'RSS)')
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
    if 'group' in cfg:
        return run_interleaved(args, cfg['group'])
    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    kernels = cfg.get('kernels', '-')
    points, m = CONFIGS[cfg['size']]
    watch = _watch_blocks()
    watch['sparse'] = kernels == 'sparse'
    row = C.training_throughput_row(
        args, _key(cfg, m),
        lambda num: ConvexHull(args.root, 'train', num_points=points,
                               num_samples=num, log=False),
        lambda: _model(args, cfg, m), MatchedIncidenceLoss())
    row['kernels'] = kernels
    row['blocks_used'] = any(watch['used'])
    return row


def _key(cfg, m):
    return {'size': cfg['size'], 'checkpointing': cfg['checkpointing'],
            'max_edges': m, 'candidates': cfg.get('candidates', 'all'),
            'chunk_elements': cfg.get('chunk_elements', 'auto')}


def _model(args, cfg, m):
    from torch_geometric_hyper.nn import HypergraphRefiner
    k = cfg.get('candidates', 'all')
    chunk = cfg.get('chunk_elements', 'auto')
    return HypergraphRefiner(
        3, args.hidden, m, args.T, checkpoint=cfg['checkpointing'] == 'on',
        num_candidates=None if k == 'all' else int(k),
        chunk_elements=None if chunk == 'auto' else int(chunk))


def run_interleaved(args, group):
    """The configurations of one size in this process, taking turns batch
    by batch; one row each (see the module docstring)."""
    import statistics

    import torch
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    from torch_geometric_hyper.train import BackpropWithSkips
    probe = C.MemoryProbe()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    points, m = CONFIGS[group[0]['size']]
    ds = ConvexHull(args.root, 'train', num_points=points,
                    num_samples=args.batch_size * (args.batches + 1),
                    log=False)
    batches = [b.to(device) for b in
               DataLoader(ds, batch_size=args.batch_size)][:args.batches + 1]
    watch = _watch_blocks()
    loss_fn = MatchedIncidenceLoss()
    steps = []
    for cfg in group:
        torch.manual_seed(0)
        model = _model(args, cfg, m).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        trainer = BackpropWithSkips(args.T, args.B, args.S, seed=0)
        steps.append(lambda b, t=trainer, mo=model, o=opt: t(mo, o, loss_fn,
                                                             b))
    used = [False] * len(group)
    times = [[] for _ in group]

    def run(i, batch):
        watch['sparse'] = group[i].get('kernels') == 'sparse'
        del watch['used'][:]
        seconds = C.time_step(steps[i], batch, device.type == 'cuda')
        used[i] = used[i] or any(watch['used'])
        return seconds

    for i in range(len(group)):  # warm-up
        run(i, batches[0])
    for j, batch in enumerate(batches[1:]):
        for r in range(len(group)):
            i = (j + r) % len(group)
            times[i].append(run(i, batch))
    memory = probe.report()
    rows = []
    for i, cfg in enumerate(group):
        median = statistics.median(times[i])
        rows.append({
            **_key(cfg, m), 'batch_size': args.batch_size,
            'hidden': args.hidden, 'T': args.T, 'B': args.B, 'S': args.S,
            'device': str(device), 'threads': args.threads,
            'seconds_per_batch': median,
            'seconds_per_batch_mean': statistics.fmean(times[i]),
            'samples_per_s': args.batch_size / median,
            'ratio_to_first': statistics.median(
                a / b for a, b in zip(times[0], times[i])),
            'interleaved': True, **memory, **C.cuda_info(device),
            'kernels': cfg.get('kernels', '-'), 'blocks_used': used[i]})
    return {'rows': rows}


def _watch_blocks():
    # records whether the candidates took dense blocks (in 'used'); with
    # 'sparse' set, keeps them sparse. Patches this process only.
    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    real = CandidateIncidence.__dict__.get('_unwatched_with_blocks',
                                           CandidateIncidence.with_blocks)
    CandidateIncidence._unwatched_with_blocks = real
    watch = {'sparse': False, 'used': []}

    def watched(self, *args, **kwargs):
        out = self if watch['sparse'] else real(self, *args, **kwargs)
        watch['used'].append(out.block_index is not None)
        return out
    CandidateIncidence.with_blocks = watched
    return watch


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
    if args.interleave:  # one process per size, taking turns
        configs = [{'size': size, 'group': [c for c in configs
                                            if c['size'] == size]}
                   for size in args.sizes]
    return C.throughput_main(
        __file__, argv, args, run_one,
        C.throughput_columns(('checkpointing', 'ckpt', ''),
                             ('max_edges', 'm', 'd'),
                             ('candidates', 'K', ''),
                             ('kernels', 'products', ''),
                             ('chunk_elements', 'chunk', ''),
                             *([('ratio_to_first', 'vs first', '.2f')]
                               if args.interleave else [])),
        f'Refiner training throughput, convex hull (d={args.hidden}, '
        f'T={args.T}, B={args.B}, S={args.S})'
        + (', interleaved batch by batch (median s/batch, shared peak RSS)'
           if args.interleave else ''), configs=configs,
        bar_label=lambda r: f"{r['size']} ckpt {r['checkpointing']}" + (
            '' if r.get('candidates', 'all') == 'all'
            else f" K={r['candidates']} {r.get('kernels', '')}") + (
            '' if r.get('chunk_elements', 'auto') == 'auto'
            else f" chunk {r['chunk_elements']}"))


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
