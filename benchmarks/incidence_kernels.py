"""Incidence products on K-candidate incidences: sparse CSR vs dense blocks.

Times :func:`torch_geometric_hyper.nn.kernels.incidence_matmul` on the
candidate layout of the sparse refiner: B graphs of n nodes and m = 2n - 4
slots each, every slot with K distinct random candidate nodes of its own
graph (nnz = B m K pairs). One call is both products and their backward,

    o1 = incidence_matmul(c, v, xn, True)    # nodes -> slots  [B m, d]
    o2 = incidence_matmul(c, v, xs, False)   # slots -> nodes  [B n, d]
    (o1.sum() + o2.square().sum()).backward()

with ``c`` the plain :class:`CandidateIncidence` (sparse CSR products, SDDMM
backward) and its :meth:`~CandidateIncidence.with_blocks` copy (values
scattered into B dense [n, m] blocks, batched matmuls), forced for every n
(``max_fill=inf``). ``fill`` = B n m / nnz (= n / K) is the ratio of block
entries to pairs; ``default_blocks`` says whether ``with_blocks`` at the
library's default ``max_fill`` would take the blocks. Each size runs in a
fresh process: one warm-up call per kernel, then ``--rounds`` rounds of
``--repeats`` timed calls of each kernel in turn (the order flipped every
round); the times are the medians over all timed calls. ``max_diff`` is the
largest absolute difference between the two kernels' outputs and gradients
of the values, computed once per size in float64.

    python benchmarks/incidence_kernels.py --quick     # n=30, 64; B=4
    python benchmarks/incidence_kernels.py --threads 2 # n=30..200; B=64
"""
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'incidence_kernels'
KERNELS = ('sparse', 'blocks')


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help='nodes per graph n (m = 2n - 4 slots); default '
                        '30 50 64 100 128 200 (quick: 30 64)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='graphs B (default 64, quick 4)')
    p.add_argument('--K', type=int, default=16,
                   help='candidate nodes per slot')
    p.add_argument('--hidden', type=int, default=128,
                   help='feature width d')
    p.add_argument('--repeats', type=int, default=None,
                   help='timed calls per kernel and round (default 10, '
                        'quick 2)')
    p.add_argument('--rounds', type=int, default=None,
                   help='rounds of both kernels in turn (default 3, '
                        'quick 1)')
    args = p.parse_args(argv)
    q = args.quick
    C.apply_defaults(args, sizes=[30, 64] if q else
                     [30, 50, 64, 100, 128, 200],
                     batch_size=4 if q else 64, repeats=2 if q else 10,
                     rounds=1 if q else 3)
    if min(args.sizes) < 3 or args.K < 1 or args.K > min(args.sizes):
        p.error(f'--K {args.K} needs 1 <= K <= n for every size, and '
                f'n >= 3 (sizes {args.sizes})')
    if args.batch_size < 1 or args.repeats < 1 or args.rounds < 1:
        p.error('--batch-size, --repeats and --rounds must be positive')
    return args


def candidates(B, n, m, K, gen):
    """The K-candidate incidence: K distinct random nodes of its own graph
    for each of the B m slots."""
    import torch

    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    local = torch.rand(B * m, n, generator=gen).argsort(1)[:, :K]
    graph = torch.arange(B).repeat_interleave(m)
    node = local + (graph * n)[:, None]
    slot = torch.arange(B * m).repeat_interleave(K)
    return CandidateIncidence.build(torch.stack([node.reshape(-1), slot]),
                                    B * n, B * m)


def call(inc, v, xn, xs):
    """Both incidence products and their backward; returns the outputs."""
    from torch_geometric_hyper.nn.kernels import incidence_matmul
    o1 = incidence_matmul(inc, v, xn, True)
    o2 = incidence_matmul(inc, v, xs, False)
    (o1.sum() + o2.square().sum()).backward()
    return o1, o2


def max_diff(incs, v, xn, xs):
    """Largest |difference| of the two kernels' outputs and value gradients
    (float64 copies of the inputs)."""
    got = []
    for inc in incs:
        leaves = [t.detach().double().requires_grad_() for t in (v, xn, xs)]
        o1, o2 = call(inc, *leaves)
        got.append((o1.detach(), o2.detach(), leaves[0].grad))
    return max(float((a - b).abs().max()) for a, b in zip(*got))


def run_one(args, n):
    import torch

    from torch_geometric_hyper.nn.kernels import CandidateIncidence
    torch.set_num_threads(args.threads)
    B, K, d = args.batch_size, args.K, args.hidden
    m = 2 * n - 4
    gen = torch.Generator().manual_seed(args.seed * 1000 + n)
    sparse = candidates(B, n, m, K, gen)
    blocks = sparse.with_blocks(B, n, m, max_fill=float('inf'))
    assert blocks.block_index is not None and sparse.block_index is None
    default_blocks = sparse.with_blocks(B, n, m).block_index is not None
    incs = {'sparse': sparse, 'blocks': blocks}
    v = torch.randn(sparse.nnz, generator=gen).requires_grad_()
    xn = torch.randn(B * n, d, generator=gen).requires_grad_()
    xs = torch.randn(B * m, d, generator=gen).requires_grad_()
    diff = max_diff([incs[k] for k in KERNELS], v, xn, xs)

    def timed(kernel):
        for t in (v, xn, xs):
            t.grad = None
        t0 = time.perf_counter()
        call(incs[kernel], v, xn, xs)
        return time.perf_counter() - t0

    for kernel in KERNELS:  # warm-up
        timed(kernel)
    times = {k: [] for k in KERNELS}
    round_ms = {k: [] for k in KERNELS}
    for r in range(args.rounds):
        for kernel in (KERNELS if r % 2 == 0 else KERNELS[::-1]):
            sec = [timed(kernel) for _ in range(args.repeats)]
            times[kernel] += sec
            round_ms[kernel].append(1e3 * statistics.median(sec))
    ms = {k: 1e3 * statistics.median(times[k]) for k in KERNELS}
    return {'n': n, 'm': m, 'batch_size': B, 'K': K, 'hidden': d,
            'nnz': sparse.nnz, 'fill': B * n * m / sparse.nnz,
            'default_blocks': default_blocks,
            'sparse_ms': ms['sparse'], 'blocks_ms': ms['blocks'],
            'ratio': ms['sparse'] / ms['blocks'], 'max_diff': diff,
            'sparse_round_ms': round_ms['sparse'],
            'blocks_round_ms': round_ms['blocks'],
            'threads': args.threads,
            'default_max_fill': _default_max_fill(CandidateIncidence)}


def _default_max_fill(cls):
    import inspect
    return inspect.signature(cls.with_blocks).parameters['max_fill'].default


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = C.worker_config(args)
    if cfg is not None:
        return C.emit(run_one(args, cfg['n']))
    rows = []
    for n in args.sizes:
        r = C.run_config(__file__, argv, args, {'n': n},
                         lambda a, c: run_one(a, c['n']))
        print(f"  n={n:3d}: sparse {r['sparse_ms']:.2f} ms, blocks "
              f"{r['blocks_ms']:.2f} ms", flush=True)
        rows.append(r)
    max_fill = rows[0]['default_max_fill'] if rows else None
    cols = [('n', 'n', 'd'), ('m', 'm', 'd'), ('nnz', 'pairs', ','),
            ('fill', 'fill', '.2f'),
            ('default_blocks', f'blocks at max_fill={max_fill:g}', ''),
            ('sparse_ms', 'sparse ms', '.2f'),
            ('blocks_ms', 'blocks ms', '.2f'),
            ('ratio', 'sparse/blocks', '.2f'),
            ('max_diff', 'max diff (f64)', '.1e')]
    title = (f'incidence_matmul both directions + backward: sparse CSR vs '
             f'dense blocks (B={args.batch_size} graphs, m = 2n - 4, '
             f'K={args.K}, d={args.hidden}, {args.threads} thread(s), '
             f'median of {args.rounds} x {args.repeats} calls)')

    def plot(rows):
        fig, axes = C.new_figure(2)
        ns = [r['n'] for r in rows]
        for kernel, style in zip(KERNELS, ('-o', '-s')):
            axes[0].plot(ns, [r[f'{kernel}_ms'] for r in rows], style, ms=3,
                         label=kernel)
        axes[0].set_ylabel('ms per call (fwd both ways + bwd)')
        axes[1].plot(ns, [r['ratio'] for r in rows], '-o', ms=3,
                     color='C2', label='sparse / blocks')
        axes[1].axhline(1.0, color='0.5', lw=0.8)
        # fill = n / K: the default takes the blocks up to n = max_fill K
        limit = max_fill * args.K
        axes[1].set_ylabel('time ratio sparse / blocks')
        from matplotlib.ticker import NullFormatter
        for ax in axes:
            ax.axvline(limit, color='C3', ls='--', lw=0.8,
                       label=f'fill = {max_fill:g} (default limit)')
            ax.set_xscale('log')
            ax.set_yscale('log')
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel('nodes per graph n')
            ax.set_title(f'B={args.batch_size}, K={args.K}, d={args.hidden}'
                         f' (measured under load)', fontsize=9)
        C.style_axes(*axes)
        return fig

    return C.finish(args, rows, cols, plot, title,
                    {'default_max_fill': max_fill})


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
