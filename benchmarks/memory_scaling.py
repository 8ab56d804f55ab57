"""Peak memory of one training step: pruned incidence vs k-tuple tensors.

For the convex-hull task (points on the 3-D unit sphere, facets = triples)
this measures, as the set size n grows, the peak memory of one forward and
backward pass (with the loss) of

* ``refiner``: HypergraphRefiner with m = 2n - 4 slots (the facet count of
  n points on a sphere) and one refinement step with gradient, memory
  O(m n) = O(n^2) floats for the incidence;
* ``refiner_sparse``: the same refiner with ``num_candidates=K``
  (``--candidates``): each slot keeps K candidate nodes chosen by the model
  (nearest to an anchor drawn from its noise, refreshed from its top
  members' neighbours), so the slot-node activations are O(m K d) = O(n)
  at a fixed m/n ratio. The matched loss builds its cost from the
  candidate pairs; only its m x m cost (one float per entry, not d) stays
  quadratic;
* ``set2graph_local``: Set2Graph on triples (i, j, l) with j, l among the
  K = 10 nearest neighbours of i (the local version its paper used), O(n K^2);
* ``set2graph_full``: Set2Graph on all triples, O(n^3);

plus the 10-D hull with 13 points (facets are 10-tuples), where Set2Graph's
tuple tensor needs hundreds of terabytes.

Measurement: every configuration runs in a fresh subprocess with one
thread (``--in-process``: all in this one, for smoke tests); the figure
is the growth of the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) from just before the model
is built (after imports, data generation and a warm-up step on one facet)
to after the backward pass. No tracemalloc (it does not see PyTorch's
allocations) and no psutil.
Configurations whose Set2Graph tuple activations exceed ``--max-gb`` are
not run: the table shows the size computed by
``torch_geometric_hyper.nn.tuple_tensor_bytes`` and marks it ``computed``.

    python benchmarks/memory_scaling.py                 # n = 10 ... 1000
    python benchmarks/memory_scaling.py --quick --out /tmp/mem

Writes ``memory_scaling.csv``, ``memory_scaling.json`` and
``memory_scaling.png`` to ``--out``.
"""
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAME = 'memory_scaling'
MODELS = ['refiner', 'refiner_sparse', 'set2graph_local', 'set2graph_full']
SIZES = [10, 20, 50, 100, 200, 500, 1000]
QUICK_SIZES = [10, 30, 100]
#: the CSV columns, in order
FIELDS = ['model', 'dim', 'n', 'batch_size', 'hidden', 'status',
          'peak_bytes', 'computed_bytes', 'limit_bytes', 'seconds', 'error']


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    # one set of files, memory_scaling.{csv,json,png}, quick or not
    p.set_defaults(out=osp.join('runs', 'memory_scaling'), name=NAME)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help=f'set sizes n (default {SIZES}; --quick '
                   f'{QUICK_SIZES})')
    p.add_argument('--models', nargs='+', default=MODELS, choices=MODELS)
    p.add_argument('--hidden', type=int, default=128, help='d')
    p.add_argument('--tuple-channels', type=int, default=256,
                   help="Set2Graph's tuple MLP width")
    p.add_argument('--neighbours', type=int, default=10,
                   help='K of the local Set2Graph')
    p.add_argument('--candidates', type=int, default=16,
                   help='refiner_sparse: candidate nodes per slot (K)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--max-gb', type=float, default=2.0,
                   help='do not run Set2Graph configurations whose tuple '
                   'activations exceed this (report the computed size)')
    p.add_argument('--no-10d', action='store_true',
                   help='skip the 10-D, 13-point hull')
    p.add_argument('--timeout', type=float, default=300,
                   help='seconds per configuration')
    args = p.parse_args(argv)
    return C.apply_defaults(args, sizes=QUICK_SIZES if args.quick
                            else SIZES)


# --------------------------------------------------------------------------
# One measurement (in the worker process)
# --------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    return int(round(C.peak_rss_mib() * 2**20))


def measure(args, cfg):
    """Peak-RSS growth and seconds of one training step of ``cfg``."""
    sys.path.insert(0, ROOT)
    import numpy as np
    import torch
    from scipy.spatial import ConvexHull

    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss, Set2Graph,
                                          TupleBCELoss)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, dim, B = cfg['n'], cfg['dim'], cfg['batch_size']
    xs, index, counts = [], [], []
    for g in range(B):
        pts = rng.standard_normal((n, dim))
        pts /= np.linalg.norm(pts, axis=1, keepdims=True)
        facets = ConvexHull(pts).simplices
        e0 = sum(counts)
        for e, facet in enumerate(facets):
            for node in facet:
                index.append((g * n + int(node), e0 + e))
        counts.append(len(facets))
        xs.append(torch.tensor(pts, dtype=torch.float))
    x = torch.cat(xs)
    batch = torch.arange(B).repeat_interleave(n)
    target = torch.tensor(index, dtype=torch.long).t()
    num_hyperedges = torch.tensor(counts)

    def step(x, batch, B, target, num_hyperedges):
        if cfg['model'].startswith('refiner'):
            m = int(num_hyperedges.max())
            sparse = cfg['model'] == 'refiner_sparse'
            model = HypergraphRefiner(
                dim, cfg['hidden'], m, num_iterations=1,
                num_candidates=cfg['candidates'] if sparse else None)
            pred = model(x, batch, B)
            loss = MatchedIncidenceLoss()(pred, target, num_hyperedges)
        else:
            local = cfg['model'] == 'set2graph_local'
            model = Set2Graph(dim, cfg['hidden'], k=dim,
                              tuple_channels=cfg['tuple_channels'],
                              neighbours=cfg['neighbours'] if local else None)
            pred = model(x, batch, B)
            loss = TupleBCELoss()(pred, target)
        loss.backward()

    # Warm-up on the first facet's nodes alone (dim points, one facet), so
    # that one-off allocations of the first call are not counted.
    first = target[0, target[1] == 0]
    step(x[first], torch.zeros(dim, dtype=torch.long), 1,
         torch.stack([torch.arange(dim), torch.zeros(dim, dtype=torch.long)]),
         torch.tensor([1]))
    base = _peak_rss_bytes()
    start = time.perf_counter()
    step(x, batch, B, target, num_hyperedges)
    seconds = time.perf_counter() - start
    return {'peak_bytes': _peak_rss_bytes() - base, 'seconds': seconds}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
def configs(args):
    out = [dict(model=model, n=n, dim=3) for n in args.sizes
           for model in args.models]
    if not args.no_10d:
        for model in args.models:
            if model not in ('set2graph_local', 'refiner_sparse'):
                # 13 points: local = all
                out.append(dict(model=model, n=13, dim=10))
    for cfg in out:
        cfg.update(hidden=args.hidden, tuple_channels=args.tuple_channels,
                   neighbours=args.neighbours, batch_size=args.batch_size,
                   candidates=args.candidates)
    return out


def tuple_bytes(cfg):
    """Set2Graph's tuple activations for ``cfg`` (None for the refiner)."""
    if cfg['model'].startswith('refiner'):
        return None
    sys.path.insert(0, ROOT)
    from torch_geometric_hyper.nn import tuple_tensor_bytes
    # The floats per tuple of Set2Graph(tuple_channels=c, mlp_layers=1).
    channels = 2 * cfg['tuple_channels'] + 1
    local = cfg['model'] == 'set2graph_local'
    return tuple_tensor_bytes(cfg['n'], cfg['dim'], channels,
                              cfg['batch_size'],
                              cfg['neighbours'] if local else None)


def run_one(args, argv, cfg):
    """Measures ``cfg`` in a fresh process: ``status`` ``'measured'`` (with
    ``peak_bytes`` and ``seconds``), ``'timeout'`` or ``'failed'`` (with
    the last line of the error)."""
    try:
        res = C.run_config(__file__, argv, args, cfg, measure, args.timeout,
                           env={'OMP_NUM_THREADS': '1',
                                'MKL_NUM_THREADS': '1'})
    except subprocess.TimeoutExpired:
        return {'status': 'timeout'}
    except RuntimeError as err:
        last = (str(err).strip().splitlines() or ['?'])[-1]
        return {'status': 'failed', 'error': last[:300]}
    return dict(res, status='measured')


def _fmt_bytes(b):
    if b is None:
        return '-'
    for unit in ('B', 'KB', 'MB', 'GB', 'TB', 'PB'):
        if abs(b) < 1000 or unit == 'PB':
            return f'{b:.3g} {unit}'
        b /= 1000


def plot(rows):
    fig, (ax, ) = C.new_figure(size=(6.4, 4.2))
    colors = dict(zip(MODELS, ['#4c72b0', '#55a868', '#dd8452', '#c44e52']))
    for model in MODELS:
        pts = sorted((r['n'], r) for r in rows
                     if r['model'] == model and r['dim'] == 3)
        meas = [(n, r['peak_bytes']) for n, r in pts
                if r['status'] == 'measured' and r['peak_bytes'] > 0]
        comp = [(n, r['computed_bytes']) for n, r in pts
                if r['status'] == 'computed']
        if meas:
            ax.plot(*zip(*meas), 'o-', color=colors[model],
                    label=f'{model} (measured)')
        if comp:
            ax.plot(*zip(*comp), 's--', mfc='none', color=colors[model],
                    label=f'{model} (computed, not run)')
    limit = [r['limit_bytes'] for r in rows][:1]
    if limit:
        ax.axhline(limit[0], color='0.5', lw=0.8, ls=':')
        ax.text(0.4, limit[0], 'limit (--max-gb): larger Set2Graph runs '
                'are computed', transform=ax.get_yaxis_transform(),
                va='bottom', fontsize=7, color='0.4')
    ten = [r for r in rows if r['dim'] == 10]
    if ten:
        lines = []
        for r in ten:
            b = r['peak_bytes'] if r['status'] == 'measured' else \
                r['computed_bytes']
            lines.append(f"{r['model']}: {_fmt_bytes(b)} ({r['status']})")
        ax.text(0.99, 0.02, '10-D hull, n = 13:\n' + '\n'.join(lines),
                transform=ax.transAxes, ha='right', va='bottom', fontsize=7,
                bbox=dict(facecolor='white', edgecolor='0.8'))
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('set size n (3-D convex hull)')
    ax.set_ylabel('peak memory of one training step (bytes)')
    ax.set_title('Pruned incidence vs k-tuple tensors', fontsize=10)
    ax.legend(fontsize=7, loc='upper left')
    return fig


def main(argv=None):
    started = C.start(parse_args, measure, argv)
    if started is None:
        return None
    argv, args = started
    limit = int(args.max_gb * 1e9)
    rows = []
    for cfg in configs(args):
        need = tuple_bytes(cfg)
        row = dict.fromkeys(FIELDS)
        row.update(model=cfg['model'], dim=cfg['dim'], n=cfg['n'],
                   batch_size=cfg['batch_size'], hidden=cfg['hidden'],
                   computed_bytes=need, limit_bytes=limit)
        if need is not None and need > limit:
            row['status'] = 'computed'
        else:
            row.update(run_one(args, argv, cfg))
        rows.append(row)
        print(f"{row['model']} dim={row['dim']} n={row['n']}: "
              f"{row['status']}", flush=True)

    cols = [('model', 'model', ''), ('dim', 'dim', 'd'), ('n', 'n', 'd'),
            ('status', 'status', ''),
            ('peak_bytes', 'peak memory', _fmt_bytes),
            ('computed_bytes', 'computed size', _fmt_bytes),
            ('seconds', 'seconds', '.2f')]
    meta = {'measure': 'growth of peak RSS (ru_maxrss) over one forward + '
            'loss + backward, fresh process, 1 thread; Set2Graph configs '
            'above the limit are computed, not run',
            'args': {k: v for k, v in vars(args).items() if k != 'worker'}}
    out = C.finish(args, rows, cols, plot, 'Pruned incidence vs k-tuple '
                   'tensors: peak memory of one training step', meta)
    return out['rows']


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
