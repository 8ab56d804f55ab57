"""Time of the Hungarian-matched loss per batch, per solver backend.

For m slots per graph (10: jets; 56, 96, 196: convex hull n = 30, 50,
20-100) and batches of 64 and 2,048 graphs, times
:class:`MatchedIncidenceLoss` on a random prediction over all (node, slot)
pairs against m random 3-node target hyperedges per graph:

* ``forward``: cost matrices + assignment + gather of the matched costs;
* ``assign``:  the assignment alone (part of ``forward``, timed inside);
* ``cost``:    ``forward - assign`` (cost construction and gather);
* ``backward``: gradient of the loss w.r.t. the logits.

Every backend of :func:`torch_geometric_hyper.matching.available_backends`
is measured (scipy always; lapx when installed). Each configuration runs
in a fresh subprocess (so its peak RSS is its own); times are the median
of ``--repeats`` runs after one warm-up.

    python benchmarks/matching.py --quick      # skips m=196 x 2048
    python benchmarks/matching.py              # all 8 configurations
"""
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'matching'
NODES = {10: 15, 56: 30, 96: 50, 196: 100}  # slots -> nodes per graph


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--slots', type=int, nargs='+', default=[10, 56, 96, 196],
                   help=f'm; nodes per graph: {NODES} (else 2 m)')
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[64, 2048])
    p.add_argument('--backends', nargs='+', default=None,
                   help='default: every available backend')
    p.add_argument('--repeats', type=int, default=None)
    p.add_argument('--max-pairs', type=float, default=None,
                   help='skip configurations with more (node, slot) pairs '
                        'than this (quick: 1e7, else no limit)')
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.max_pairs is None:
        args.max_pairs = 1e7 if args.quick else float('inf')
    return args


def worker(args, cfg):
    import torch

    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    from torch_geometric_hyper.nn.prediction import HypergraphPrediction
    probe = C.MemoryProbe()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    B, m, n = cfg['batch_size'], cfg['m'], cfg['n']
    batch = torch.arange(B).repeat_interleave(n)
    cand = CandidateIncidence.complete(batch, B, m)
    # m target hyperedges of 3 distinct random nodes per graph
    local = torch.rand(B * m, n, generator=gen).argsort(1)[:, :3]
    node = (local + torch.arange(B).repeat_interleave(m)[:, None] * n)
    target = torch.stack([node.reshape(-1),
                          torch.arange(B * m).repeat_interleave(3)])
    counts = torch.full((B, ), m)
    inc = torch.randn(cand.nnz, generator=gen).requires_grad_()
    ex = torch.randn(B * m, generator=gen).requires_grad_()
    pred = HypergraphPrediction(inc, ex, cand.index, batch, B, m)
    loss_fn = MatchedIncidenceLoss(backend=cfg['backend'])
    solve = loss_fn._assign
    assign_time = []

    def timed_assign(*a):
        t0 = time.perf_counter()
        out = solve(*a)
        assign_time.append(time.perf_counter() - t0)
        return out

    loss_fn._assign = timed_assign
    fwd, bwd = [], []
    for _ in range(args.repeats + 1):  # the first run is a warm-up
        t0 = time.perf_counter()
        loss = loss_fn(pred, target, counts)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        inc.grad = ex.grad = None
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    med = statistics.median
    f, a, b = med(fwd[1:]), med(assign_time[1:]), med(bwd[1:])
    return ({'backend': cfg['backend'], 'm': m, 'n': n, 'batch_size': B,
            'pairs': cand.nnz, 'forward_ms': 1e3 * f, 'assign_ms': 1e3 * a,
            'cost_ms': 1e3 * (f - a), 'backward_ms': 1e3 * b,
            'total_ms': 1e3 * (f + b), 'loss': float(loss),
            **probe.report()})


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = C.worker_config(args)
    if cfg is not None:
        return C.emit(worker(args, cfg))
    from torch_geometric_hyper.matching import available_backends
    backends = args.backends or available_backends()
    rows, skipped = [], []
    for backend in backends:
        for m in args.slots:
            for B in args.batch_sizes:
                n = NODES.get(m, 2 * m)
                if B * n * m > args.max_pairs:
                    skipped.append(f'{backend} m={m} batch {B}')
                    continue
                r = C.run_config(__file__, argv, args, {
                    'backend': backend, 'm': m, 'n': n, 'batch_size': B},
                    worker)
                print(f"  {backend} m={m:3d} n={n:3d} batch {B:4d}: "
                      f"{r['total_ms']:.1f} ms", flush=True)
                rows.append(r)
    if skipped:
        print('skipped (more than --max-pairs pairs): ' + ', '.join(skipped))
    cols = [('backend', 'backend', ''), ('m', 'm', 'd'), ('n', 'n', 'd'),
            ('batch_size', 'batch', 'd'), ('pairs', 'pairs', ','),
            ('cost_ms', 'cost ms', '.1f'), ('assign_ms', 'assign ms', '.1f'),
            ('forward_ms', 'forward ms', '.1f'),
            ('backward_ms', 'backward ms', '.1f'),
            ('total_ms', 'fwd+bwd ms', '.1f'),
            ('peak_minus_imports_mib', 'peak-imports MiB', '.0f')]
    title = ('Matched loss per batch (cost + assignment + gather, forward '
             'and backward)')

    def plot(rows):
        fig, axes = C.new_figure(len(args.batch_sizes))
        for ax, B in zip(axes, args.batch_sizes):
            sub = [r for r in rows if r['batch_size'] == B]
            for backend in backends:
                for key, style, what in (('total_ms', '-o', 'fwd+bwd'),
                                         ('assign_ms', '--s', 'assign')):
                    pts = [(r['m'], r[key]) for r in sub
                           if r['backend'] == backend]
                    if pts:
                        ax.plot(*zip(*sorted(pts)), style, ms=3,
                                label=f'{backend} {what}')
            ax.set_xscale('log')
            ax.set_yscale('log')
            ax.set_xlabel('slots m')
            ax.set_ylabel('ms per batch')
            ax.set_title(f'batch {B} (measured under load)', fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        return fig

    return C.finish(args, rows, cols, plot, title, {'skipped': skipped})


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
