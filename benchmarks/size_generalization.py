"""Train small, predict large: refiners trained on small sets, evaluated on
sets up to 100 times larger.

Tasks (``--task``):

* ``hull``: :class:`~torch_geometric_hyper.nn.HypergraphRefiner` with K
  candidate nodes per slot (``--candidates``), trained on spherical 3-D
  hulls of ``--train-sizes`` points (each mini-batch one size, m = 2n - 4
  slots), then run at every ``--test-sizes`` n with m = 2n - 4 slots (the
  slots are i.i.d. draws of the slot prior, so their count is free at test
  time) for each ``--test-T`` iterations T'. F1 strict, reference metric
  and deduplicated, candidate coverage.
* ``delaunay``: :class:`~torch_geometric_hyper.nn.GraphRefiner` over the
  symmetrised kNN pairs (``--knn``), trained on points uniform in the unit
  square, then run on larger sets (i) directly and (ii) in *windows*: the
  set is cut into square cores, each grown by a margin into a box that
  holds about ``--window`` points at the set's density, and the box is
  mapped onto the unit square, so the model sees the density it was
  trained at; an edge is kept from the window whose core holds its
  midpoint. Precision, recall, F1, accuracy over the whole set, candidate
  coverage.

Each row also holds the seconds per set and the peak RSS of the
evaluation over the RSS before it (the peak is reset per evaluation,
Linux), the training budget in CPU-minutes (process time, ``cpu_minutes``)
and the training steps. Ablations are rows of the same run: the slot
count kept at the training m (``slots='train'``), another K at test time
(``--ablate-candidates``), T', direct vs windows, the window size
(``--ablate-windows``). ``--finetune-minutes`` trains a copy a little
longer at the largest test size and evaluates it there
(``finetune_cpu_minutes`` in its rows).

    python benchmarks/size_generalization.py --task hull \\
        --out benchmarks/results
    python benchmarks/size_generalization.py --task delaunay --merge \\
        --out benchmarks/results
    python benchmarks/size_generalization.py --quick     # about a minute

``--merge`` keeps the rows of the other task already in the result file
(the meta records each task's command under ``commands``). Writes
``<out>/<name>.json`` and, with ``--figure``, a PNG of F1 against the test
size. ``--save-model`` keeps the trained model (``save_model``; the
predict CLI reads it).
"""
import json
import math
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'size_generalization')
    p.add_argument('--task', choices=['hull', 'delaunay'], default='hull')
    p.add_argument('--train-sizes', nargs='+', type=int, default=None)
    p.add_argument('--test-sizes', nargs='+', type=int, default=None)
    p.add_argument('--test-T', nargs='+', type=int, default=None,
                   help="iterations T' at test time")
    p.add_argument('--cpu-minutes', type=float, default=None,
                   help='training budget, CPU-minutes of this process')
    p.add_argument('--finetune-minutes', type=float, default=0.0)
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--T', type=int, default=None)
    p.add_argument('--B', type=int, default=None)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--train-samples', type=int, default=None)
    p.add_argument('--test-samples', type=int, default=None,
                   help='sets per test size (fewer above 10,000 points)')
    p.add_argument('--candidates', type=int, default=None,
                   help='hull: K candidate nodes per slot')
    p.add_argument('--ablate-candidates', nargs='*', type=int, default=None,
                   help='hull: other K at test time (largest size)')
    p.add_argument('--knn', type=int, default=16, help='delaunay: k')
    p.add_argument('--pair-geometry', type=int, default=None,
                   help='delaunay: GraphRefiner(pair_geometry=H), a learned '
                   'prior on scale-free pair geometry')
    p.add_argument('--window', type=int, default=None,
                   help='delaunay: points per window (default: the '
                   'largest training size)')
    p.add_argument('--margin', type=float, default=0.15,
                   help='delaunay: window margin, share of the box side')
    p.add_argument('--ablate-geometry', type=float, default=0.0,
                   metavar='MINUTES',
                   help='delaunay with --pair-geometry: also train a model '
                   'without it for this many CPU-minutes and evaluate it '
                   '(T\' = T, sizes up to 10,000)')
    p.add_argument('--ablate-windows', nargs='*', type=int, default=None,
                   help='delaunay: other window sizes (second test size)')
    p.add_argument('--direct-max', type=int, default=100000,
                   help='delaunay: largest n evaluated directly')
    p.add_argument('--root', default=osp.join('data', 'bench_sg'))
    p.add_argument('--merge', action='store_true')
    p.add_argument('--finetune-only', action='store_true',
                   help='with --load-model, --finetune-minutes and --merge: '
                   'only the fine-tune rows, added to the task\'s rows '
                   'already in the result file')
    p.add_argument('--figure', default=None, help='PNG path')
    p.add_argument('--save-model', default=None)
    p.add_argument('--load-model', default=None,
                   help='evaluate this saved model (its metadata holds the '
                   'training budget) instead of training')
    args = p.parse_args(argv)
    q, hull = args.quick, args.task == 'hull'
    C.apply_defaults(
        args, hidden=16 if q else 64, T=4 if q else 8, B=1 if q else 2,
        batch_size=2 if q else 4, cpu_minutes=0.05 if q else 20.0,
        train_sizes=([12, 20] if q else [100]) if hull
        else ([60] if q else [1000]),
        test_sizes=([20, 40] if q else [100, 200, 500, 1000]) if hull
        else ([60, 300] if q else [1000, 10000, 100000]),
        test_T=[4, 8] if q else [8, 16, 32],
        train_samples=8 if q else (512 if hull else 256),
        test_samples=2 if q else 8, candidates=6 if q else 16,
        ablate_candidates=[] if q else ([32] if hull else []),
        ablate_windows=[] if q else ([] if hull else [500]))
    args.window = args.window or max(args.train_sizes)
    return args


# --------------------------------------------------------------------------
# data and memory
def dataset(args, split, n, num):
    """Hull facets or Delaunay edges of ``num`` sets of ``n`` points."""
    from torch_geometric_hyper.datasets import ConvexHull, Delaunay
    if args.task == 'hull':
        return ConvexHull(args.root, split, num_points=n, num_samples=num,
                          seed=args.seed, log=False)
    return Delaunay(args.root, split, num_points=n, num_samples=num,
                    seed=args.seed, log=False)


def test_count(args, n):
    """Test sets at size ``n``: fewer for the largest sets."""
    return max(1, min(args.test_samples, int(40000 // n) or 1))


def _rss_mib(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float('nan')


class PeakMemory:
    """Peak RSS over the RSS at the start of a ``with`` block (Linux: the
    peak is reset at the start through ``/proc/self/clear_refs``)."""

    def __enter__(self):
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            pass
        self.start = _rss_mib('VmRSS')
        return self

    def __exit__(self, *exc):
        self.peak_mib = _rss_mib('VmHWM') - self.start


# --------------------------------------------------------------------------
# training
def make_model(args):
    from torch_geometric_hyper.nn import GraphRefiner, HypergraphRefiner
    if args.task == 'hull':
        n = max(args.train_sizes)
        return HypergraphRefiner(3, args.hidden, 2 * n - 4, args.T,
                                 num_candidates=args.candidates)
    return GraphRefiner(2, args.hidden, args.T, knn=args.knn,
                        pair_geometry=args.pair_geometry)


def loss_function(args):
    from torch_geometric_hyper.nn import (AdjacencyBCELoss,
                                          MatchedIncidenceLoss)
    return MatchedIncidenceLoss() if args.task == 'hull' \
        else AdjacencyBCELoss()


def train(args, model, sizes, cpu_minutes, step0=0):
    """Backprop with skips until ``cpu_minutes`` of process CPU time: the
    mini-batches cycle through ``sizes`` (one size each; hulls with
    m = 2n - 4 slots). Returns ``{'cpu_minutes', 'steps', 'loss'}``."""
    import torch
    from torch_geometric.data import Batch

    from torch_geometric_hyper.train import BackpropWithSkips, training_step
    data = {n: dataset(args, 'train', n, args.train_samples) for n in sizes}
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    trainer = BackpropWithSkips(args.T, args.B, args.S, seed=args.seed)
    loss_fn = loss_function(args)
    gen = torch.Generator().manual_seed(args.seed)
    orders = {n: [] for n in sizes}
    model.train()
    t0, steps, loss = time.process_time(), 0, float('nan')
    while time.process_time() - t0 < cpu_minutes * 60 or steps == 0:
        n = sizes[steps % len(sizes)]
        if len(orders[n]) < args.batch_size:
            orders[n] += torch.randperm(len(data[n]), generator=gen).tolist()
        idx, orders[n] = orders[n][:args.batch_size], \
            orders[n][args.batch_size:]
        batch = Batch.from_data_list([data[n][i] for i in idx])
        if args.task == 'hull':
            model.max_edges = 2 * n - 4
        loss = training_step(model, trainer, opt, loss_fn, batch,
                             step=step0 + steps, seed=args.seed)['loss']
        steps += 1
        if steps % 100 == 0:
            print(f'  step {steps}, n={n}, loss {loss:.4f}, '
                  f'{(time.process_time() - t0) / 60:.1f} CPU-min',
                  flush=True)
    model.eval()
    return {'cpu_minutes': (time.process_time() - t0) / 60, 'steps': steps,
            'loss': float(loss)}


# --------------------------------------------------------------------------
# hull evaluation
def eval_hull(args, model, ds, T, m, K):
    """Mean metrics of ``model`` on ``ds`` with ``m`` slots, ``K``
    candidates per slot and ``T`` iterations."""
    import torch
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.metrics import (candidate_coverage,
                                               evaluate_hyperedges)
    old = model.max_edges, model.num_candidates
    model.max_edges, model.num_candidates = m, K
    sums, sets, seconds = {}, 0, 0.0
    gen = torch.Generator().manual_seed(args.seed)
    try:
        with PeakMemory() as mem, torch.no_grad():
            for batch in DataLoader(ds, batch_size=args.batch_size):
                t0 = time.perf_counter()
                pred = model(batch.x, batch.batch, batch.num_graphs,
                             num_iterations=T, generator=gen)
                seconds += time.perf_counter() - t0
                out = evaluate_hyperedges(pred, batch, edge_size=3)
                out['candidate_coverage'] = candidate_coverage(pred, batch)
                for k in ('f1', 'f1_reference', 'f1_unique', 'precision',
                          'recall', 'duplicates', 'candidate_coverage'):
                    sums[k] = sums.get(k, 0.0) + float(out[k].sum())
                sets += batch.num_graphs
    finally:
        model.max_edges, model.num_candidates = old
    return {**{k: v / sets for k, v in sums.items()}, 'sets': sets,
            's_per_set': seconds / sets, 'peak_mib': mem.peak_mib}


def hull_rows(args, model, base):
    """Every (test size, T') with m = 2n - 4, and the ablations at the
    largest size: the training m, other K."""
    rows = []
    n_train = max(args.train_sizes)
    for n in args.test_sizes:
        ds = dataset(args, 'test', n, test_count(args, n))
        for T in args.test_T:
            row = eval_hull(args, model, ds, T, 2 * n - 4, args.candidates)
            rows.append({**base, 'test_n': n, 'T_test': T, 'slots': '2n-4',
                         'm': 2 * n - 4, 'K': args.candidates, **row})
            _log(rows[-1])
    n, T = max(args.test_sizes), max(args.test_T)
    ds = dataset(args, 'test', n, test_count(args, n))
    variants = [('train', 2 * n_train - 4, args.candidates)] + [
        ('2n-4', 2 * n - 4, k) for k in args.ablate_candidates]
    for slots, m, K in variants:
        row = eval_hull(args, model, ds, T, m, K)
        rows.append({**base, 'test_n': n, 'T_test': T, 'slots': slots,
                     'm': m, 'K': K, 'ablation': True, **row})
        _log(rows[-1])
    return rows


# --------------------------------------------------------------------------
# Delaunay evaluation
def windows(points, per_window, margin):
    """Square windows over ``points`` [n, 2]: a list of ``(index, core_lo,
    core_hi, box_lo, side)``, the cores tiling the bounding box, each box
    (core plus margin, kept inside the bounding box where it fits) holding
    about ``per_window`` points at the set's mean density."""
    import numpy as np
    lo, hi = points.min(0), points.max(0)
    extent = hi - lo
    side = math.sqrt(per_window * float(np.prod(extent)) / len(points))
    core = side * (1 - 2 * margin)
    if len(points) <= per_window or core <= 0:
        return [(np.arange(len(points)), lo, hi + 1e-12, lo,
                 float(extent.max()))]
    counts = np.maximum(1, np.ceil(extent / core).astype(int))
    out = []
    for a in range(counts[0]):
        for b in range(counts[1]):
            c_lo = lo + core * np.array([a, b])
            c_hi = np.minimum(c_lo + core, hi + 1e-12)
            c_hi[[a, b] == counts - 1] = (hi + 1e-12)[[a, b] == counts - 1]
            b_lo = np.minimum(np.maximum(c_lo - margin * side, lo),
                              np.maximum(hi - side, lo))
            inside = np.all((points >= b_lo) & (points <= b_lo + side), 1)
            out.append((np.nonzero(inside)[0], c_lo, c_hi, b_lo, side))
    return out


def predict_windows(model, x, T, per_window, margin, batch_size=16):
    """Predicted edges ``[2, E]`` (global ids, i < j) and candidate pairs of
    one set ``x`` [n, 2] by windows (see the module docstring)."""
    import numpy as np
    import torch
    pts = x.double().numpy()
    wins = windows(pts, per_window, margin)
    edges, cands = [], []
    for s in range(0, len(wins), batch_size):
        part = wins[s:s + batch_size]
        xs = [torch.from_numpy((pts[idx] - b_lo) / side).float()
              for idx, _, _, b_lo, side in part]
        batch = torch.cat([torch.full((len(v), ), g, dtype=torch.long)
                           for g, v in enumerate(xs)])
        offsets = np.cumsum([0] + [len(v) for v in xs])
        glob = np.concatenate([idx for idx, *_ in part])
        pred = model(torch.cat(xs), batch, len(xs), num_iterations=T)
        pair = pred.pair_index.numpy()
        keep = pred.adjacency.numpy() > 0.5
        g = np.searchsorted(offsets, pair[0], side='right') - 1
        mid = (pts[glob[pair[0]]] + pts[glob[pair[1]]]) / 2
        c_lo = np.stack([part[k][1] for k in g]) if len(g) else mid
        c_hi = np.stack([part[k][2] for k in g]) if len(g) else mid
        core = np.all((mid >= c_lo) & (mid < c_hi), 1)
        ij = np.sort(glob[pair], axis=0)
        cands.append(ij[:, core])
        edges.append(ij[:, core & keep])
    return (np.unique(np.concatenate(edges, 1), axis=1),
            np.unique(np.concatenate(cands, 1), axis=1))


def eval_delaunay(args, model, ds, T, per_window=None):
    """Mean metrics over ``ds``, direct (``per_window=None``) or by
    windows of ``per_window`` points."""
    import numpy as np
    import torch

    from torch_geometric_hyper.metrics import adjacency_metrics
    sums, seconds = {}, 0.0
    with PeakMemory() as mem, torch.no_grad():
        for data in ds:
            t0 = time.perf_counter()
            if per_window is None:
                pred = model(data.x, num_iterations=T)
                e = pred.edge_index().numpy()
                e = e[:, e[0] < e[1]]
                cand = pred.pair_index.numpy()
            else:
                e, cand = predict_windows(model, data.x, T, per_window,
                                          args.margin)
            seconds += time.perf_counter() - t0
            both = torch.from_numpy(np.concatenate([e, e[::-1]], 1).copy())
            zeros = torch.zeros(data.num_nodes, dtype=torch.long)
            res = adjacency_metrics(both, data.edge_index, zeros, 1)
            true = data.edge_index[:, data.edge_index[0] < data.edge_index[1]]
            n = data.num_nodes
            res['candidate_coverage'] = float(np.isin(
                true[0].numpy() * n + true[1].numpy(),
                cand[0] * n + cand[1]).mean())
            for k, v in res.items():
                sums[k] = sums.get(k, 0.0) + float(v)
    sets = len(ds)
    return {**{k: v / sets for k, v in sums.items()}, 'sets': sets,
            's_per_set': seconds / sets, 'peak_mib': mem.peak_mib}


def delaunay_rows(args, model, base):
    """Every (test size, T') directly (up to ``--direct-max``) and by
    windows; the window-size ablation at the second test size."""
    rows = []
    sizes = sorted(args.test_sizes)
    for n in sizes:
        ds = dataset(args, 'test', n, test_count(args, n))
        modes = ([None] if n <= args.direct_max else []) + (
            [args.window] if n > args.window else [])
        for per_window in modes:
            Ts = args.test_T if n < 50000 else [max(args.test_T)]
            for T in Ts:
                row = eval_delaunay(args, model, ds, T, per_window)
                rows.append({**base, 'test_n': n, 'T_test': T,
                             'mode': 'windows' if per_window else 'direct',
                             'window': per_window, **row})
                _log(rows[-1])
    n = sizes[min(1, len(sizes) - 1)]
    ds = dataset(args, 'test', n, test_count(args, n))
    for w in args.ablate_windows:
        row = eval_delaunay(args, model, ds, max(args.test_T), w)
        rows.append({**base, 'test_n': n, 'T_test': max(args.test_T),
                     'mode': 'windows', 'window': w, 'ablation': True,
                     **row})
        _log(rows[-1])
    return rows


def geometry_ablation_rows(args, base):
    """The same training without the pair geometry, for
    ``--ablate-geometry`` CPU-minutes, evaluated at T' = T up to 10,000
    points, directly and by windows."""
    import torch
    torch.manual_seed(args.seed)
    args.pair_geometry, keep = None, args.pair_geometry
    model = make_model(args)
    args.pair_geometry = keep
    print(f'training delaunay without pair geometry for '
          f'{args.ablate_geometry} CPU-min', flush=True)
    info = train(args, model, args.train_sizes, args.ablate_geometry)
    base = {**base, 'cpu_minutes': info['cpu_minutes'],
            'steps': info['steps'], 'pair_geometry': None, 'ablation': True}
    rows = []
    for n in [n for n in sorted(args.test_sizes) if n <= 10000]:
        ds = dataset(args, 'test', n, test_count(args, n))
        for per_window in [None] + ([args.window] if n > args.window
                                    else []):
            row = eval_delaunay(args, model, ds, args.T, per_window)
            rows.append({**base, 'test_n': n, 'T_test': args.T,
                         'mode': 'windows' if per_window else 'direct',
                         'window': per_window, **row})
            _log(rows[-1])
    return rows


# --------------------------------------------------------------------------
# output
def _log(row):
    keys = ('task', 'train_n', 'test_n', 'T_test', 'slots', 'K', 'mode',
            'window', 'f1', 'f1_reference', 'candidate_coverage',
            's_per_set', 'peak_mib')
    print('  ' + ', '.join(f'{k}={row[k]:.4g}' if isinstance(row[k], float)
                           else f'{k}={row[k]}' for k in keys if k in row),
          flush=True)


def plot(rows, path, meta):
    """F1 against the test size, one line per (task, T', mode), the
    training sizes shaded; fine-tuned and ablated models as markers."""
    fig, axes = C.new_figure(2)
    for ax, task in zip(axes, ('hull', 'delaunay')):
        mine = [r for r in rows if r['task'] == task]
        main = [r for r in mine if not r.get('ablation')
                and not r.get('finetuned')]
        key = 'f1_reference' if task == 'hull' else 'f1'
        groups = {}
        for r in main:
            groups.setdefault((r['T_test'], r.get('mode', '')), []).append(r)
        for (T, mode), rs in sorted(groups.items()):
            rs.sort(key=lambda r: r['test_n'])
            ax.plot([r['test_n'] for r in rs], [r[key] for r in rs],
                    marker='o', color=f'C{int(math.log2(max(T, 1))) % 10}',
                    linestyle='--' if mode == 'direct' else '-',
                    label=f"T'={T}" + (f', {mode}' if mode else ''))
        extra = [r for r in mine if r.get('finetuned') or (
            r.get('ablation') and task == 'delaunay'
            and r.get('pair_geometry') is None)]
        seen = set()
        for r in extra:
            label = (f"fine-tuned {r['finetune_cpu_minutes']:.0f} CPU-min, "
                     f"T'={r['T_test']}" if r.get('finetuned') else
                     f"no pair geometry ({r['cpu_minutes']:.0f} CPU-min), "
                     f"{r['mode']}")
            ax.plot([r['test_n']], [r[key]], linestyle='none',
                    marker='*' if r.get('finetuned') else
                    'x' if r['mode'] == 'direct' else '+', markersize=9,
                    color='k' if r.get('finetuned') else '0.4',
                    label=None if label in seen else label)
            seen.add(label)
        if main:
            lo, hi = min(main[0]['train_sizes']), max(main[0]['train_sizes'])
            ax.axvspan(lo * 0.97, hi * 1.03, color='0.9',
                       label='training sizes')
            ax.set_title(f"{task}: trained at n <= {hi}, "
                         f"{main[0]['cpu_minutes']:.0f} CPU-min", fontsize=9)
        ax.set_xscale('log')
        ax.set_xlabel('test set size n')
        ax.set_ylabel('F1 (reference metric)' if task == 'hull' else 'F1')
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc='upper right' if task == 'hull'
                  else 'lower right')
    return C.save_figure(fig, osp.splitext(path)[0], meta)


def write(args, rows, info):
    """Writes ``<out>/<name>.json`` (merging the other task's rows with
    ``--merge``) and the figure; returns the path."""
    path = C.output_stem(args) + '.json'
    meta = C.machine_info(args.threads)
    meta.update({'title': 'Train small, predict large',
                 'note': 'measured under load (shared CPU); CPU-minutes are '
                         'process time', 'quick': bool(args.quick)})
    key = args.task + ('_finetune' if args.finetune_only else '')
    commands = {key: sys.argv[1:]}
    training = {key: info}
    if args.merge and osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        rows = [r for r in old['rows'] if r['task'] != args.task or (
            args.finetune_only and not r.get('finetuned'))] + rows
        commands = {**old['meta'].get('commands', {}), **commands}
        training = {**old['meta'].get('training', {}), **training}
    meta.update({'commands': commands, 'training': training})
    C.write_results(C.output_stem(args), rows, meta)
    os.remove(C.output_stem(args) + '.csv')
    if args.figure:
        print('wrote ' + plot(rows, args.figure, meta))
    print('wrote ' + path)
    return path


def main(argv=None):
    args = parse_args(argv)
    import torch

    from torch_geometric_hyper.nn import load_model, save_model
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.load_model:
        model, info = load_model(args.load_model)
        info = dict(info)
    else:
        model = make_model(args)
        print(f'training {args.task} at n={args.train_sizes} for '
              f'{args.cpu_minutes} CPU-min', flush=True)
        info = train(args, model, args.train_sizes, args.cpu_minutes)
        info['train_sizes'] = list(args.train_sizes)
        if args.save_model:
            os.makedirs(osp.dirname(args.save_model) or '.', exist_ok=True)
            save_model(model, args.save_model,
                       **({'edge_size': 3} if args.task == 'hull' else {}),
                       **info)
    base = {'task': args.task, 'train_n': max(info['train_sizes']),
            'train_sizes': info['train_sizes'],
            'cpu_minutes': info['cpu_minutes'], 'steps': info['steps'],
            'hidden': model.hidden_channels, 'T_train': model.num_iterations}
    if args.task == 'delaunay':
        base['pair_geometry'] = model.pair_geometry
    if args.finetune_only:
        if not (args.load_model and args.merge and args.finetune_minutes):
            raise SystemExit('--finetune-only needs --load-model, --merge '
                             'and --finetune-minutes')
        return write(args, finetune_rows(args, model, base, info),
                     {**info, 'finetune_minutes': args.finetune_minutes})
    rows = (hull_rows if args.task == 'hull' else delaunay_rows)(
        args, model, base)
    if args.task == 'delaunay' and args.ablate_geometry > 0 and \
            model.pair_geometry is not None:
        rows += geometry_ablation_rows(args, base)
    if args.finetune_minutes > 0:
        rows += finetune_rows(args, model, base, info)
    return write(args, rows, info)


def finetune_rows(args, model, base, info):
    """A short fine-tune at the largest test size, then its evaluation
    there (every T')."""
    n = max(args.test_sizes)
    print(f'fine-tuning at n={n} for {args.finetune_minutes} CPU-min',
          flush=True)
    tuned = train(args, model, [n], args.finetune_minutes,
                  step0=info['steps'])
    base = {**base, 'finetuned': True,
            'finetune_cpu_minutes': tuned['cpu_minutes'],
            'finetune_steps': tuned['steps']}
    ds = dataset(args, 'test', n, test_count(args, n))
    rows = []
    for T in args.test_T:
        if args.task == 'hull':
            row = eval_hull(args, model, ds, T, 2 * n - 4, args.candidates)
            row.update(slots='2n-4', m=2 * n - 4, K=args.candidates)
        else:
            row = eval_delaunay(args, model, ds, T, None)
            row.update(mode='direct', window=None)
        rows.append({**base, 'test_n': n, 'T_test': T, **row})
        _log(rows[-1])
    return rows


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
