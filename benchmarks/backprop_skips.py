"""Backprop with skips vs standard and truncated BPTT: memory, time, F1.

Part ``memory``: peak memory and time per mini-batch as the number of
iterations T grows (T = 4, 8, 16, 32, 64) at a fixed number of
back-propagated iterations B, for

* ``bptt``        standard BPTT, one update through all T steps;
* ``tbptt``       truncated BPTT, T - B steps without gradient, then B;
* ``skips``       backprop with random skips (S updates of B steps each,
                  skips drawn per mini-batch);
* ``skips-fixed`` backprop with the same even skips every mini-batch.

S is capped at T // B (T = 4, B = 4: one update). Each (method, T,
checkpointing) runs in a fresh subprocess; peak memory is the peak RSS
minus the RSS right after the imports (both are written). Activation
checkpointing (on; the refiner's default 'auto' is off at these sizes) recomputes each step in the backward
pass and stores only its inputs; ``--checkpointing off on`` measures both.

Part ``training``: the paper's Figure 3 setting scaled down to a CPU: a
memory budget of 4 back-propagated iterations, F1 on validation hulls
after equal training wall-clock time for BPTT with T = 4, truncated BPTT
T = 16 / B = 4, and skips (random, fixed) T = 16 / B = 4 / S = 2.

    python benchmarks/backprop_skips.py --quick       # ~5 min on 2 cores
    python benchmarks/backprop_skips.py               # n=30, d=128, batch 64
    python benchmarks/backprop_skips.py --parts memory --checkpointing off on
"""
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'backprop_skips'
METHOD_LABEL = {'bptt': 'BPTT', 'tbptt': 'truncated BPTT',
                'skips': 'skips (random)', 'skips-fixed': 'skips (fixed)'}


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--parts', nargs='+', default=['memory', 'training'],
                   choices=['memory', 'training'])
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    g = p.add_argument_group('memory part')
    g.add_argument('--T-values', type=int, nargs='+', default=None,
                   help='default 4 8 16 32 64')
    g.add_argument('--methods', nargs='+', default=None,
                   choices=['bptt', 'tbptt', 'skips', 'skips-fixed'])
    g.add_argument('--checkpointing', nargs='+', default=None,
                   choices=['off', 'on'],
                   help='activation checkpointing (default: off on; '
                        'quick: off)')
    g.add_argument('--n', type=int, default=None, help='points per hull')
    g.add_argument('--hidden', type=int, default=None)
    g.add_argument('--batch-size', type=int, default=None)
    g.add_argument('--B', type=int, default=4)
    g.add_argument('--S', type=int, default=2)
    g.add_argument('--batches', type=int, default=None,
                   help='timed mini-batches after one warm-up')
    g = p.add_argument_group('training part')
    g.add_argument('--train-n', type=int, default=None)
    g.add_argument('--train-hidden', type=int, default=None)
    g.add_argument('--train-batch-size', type=int, default=None)
    g.add_argument('--train-samples', type=int, default=None)
    g.add_argument('--val-samples', type=int, default=None)
    g.add_argument('--train-seconds', type=float, default=None,
                   help='training wall-clock time per method')
    g.add_argument('--eval-every', type=float, default=None,
                   help='validate every this many training seconds')
    g.add_argument('--lr', type=float, default=None)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = dict(
        T_values=[4, 8, 16, 32, 64],
        methods=['bptt', 'tbptt', 'skips', 'skips-fixed'],
        checkpointing=['off'] if quick else ['off', 'on'],
        n=20 if quick else 30, hidden=64 if quick else 128,
        batch_size=32 if quick else 64, batches=2 if quick else 3,
        train_n=10 if quick else 30, train_hidden=32 if quick else 128,
        train_batch_size=32 if quick else 64,
        train_samples=4096 if quick else 20_000,
        val_samples=256 if quick else 2_000,
        train_seconds=30.0 if quick else 3600.0,
        eval_every=10.0 if quick else 300.0,
        lr=1e-3 if quick else 3e-4)
    return C.apply_defaults(args, **defaults)


# --------------------------------------------------------------------------
# workers (fresh process each)
def memory_worker(args, cfg):
    import torch
    from torch_geometric.loader import DataLoader

    import _hull as H
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    from torch_geometric_hyper.train import train_on_batch
    probe = C.MemoryProbe()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    T, method = cfg['T'], cfg['method']
    ds = H.hull(args.root, 'train', args.n,
                args.batch_size * (args.batches + 1), args.seed)
    model = H.make_model('recurrent', args.hidden, H.most_facets(ds), T,
                         checkpoint=cfg['checkpoint'] == 'on')
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_fn = MatchedIncidenceLoss()
    next_schedule = H.schedule_fn(method, T, args.B, args.S, args.seed)
    times, updates = [], 0
    for i, batch in enumerate(DataLoader(ds, batch_size=args.batch_size)):
        schedule = next_schedule()
        t0 = time.perf_counter()
        stats = train_on_batch(model, opt, loss_fn, batch, schedule)
        if i > 0:  # the first mini-batch is a warm-up
            times.append(time.perf_counter() - t0)
            updates += len(schedule)
    per_batch = sum(times) / len(times)
    return ({'method': method, 'T': T, 'checkpoint': cfg['checkpoint'],
            'B': args.B, 'S': H.updates_per_batch(T, args.B, args.S)
            if method.startswith('skips') else 1,
            'grad_steps': stats['grad_steps'], 'n': args.n,
            'batch_size': args.batch_size, 'hidden': args.hidden,
            'seconds_per_batch': per_batch,
            'seconds_per_update': sum(times) / updates,
            **probe.report()})


def training_worker(args, cfg):
    import torch

    import _hull as H
    probe = C.MemoryProbe()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    method, T = cfg['method'], cfg['T']
    train_ds = H.hull(args.root, 'train', args.train_n, args.train_samples,
                      args.seed)
    val_ds = H.hull(args.root, 'val', args.train_n, args.val_samples,
                    args.seed)
    model = H.make_model('recurrent', args.train_hidden,
                         H.most_facets(train_ds, val_ds), T)
    curve = []

    def on_eval(seconds, steps):
        f1 = H.f1_at_iterations(model, val_ds, [T], seed=args.seed)[T]
        curve.append([round(seconds, 2), steps, f1])

    res = H.train(model, train_ds, method, T, cfg['B'], cfg['S'],
                  args.train_batch_size, args.lr,
                  seconds=args.train_seconds, seed=args.seed,
                  on_eval=on_eval, eval_every=args.eval_every)
    return ({'method': method, 'T': T, 'B': cfg['B'], 'S': cfg['S'],
            'n': args.train_n, 'hidden': args.train_hidden,
            'train_seconds': res['train_seconds'], 'steps': res['steps'],
            'final_loss': res['loss'], 'val_f1': curve[-1][2],
            'curve': curve, **probe.report()})


# --------------------------------------------------------------------------
def memory_part(args, argv):
    import _hull as H
    H.hull(args.root, 'train', args.n, args.batch_size * (args.batches + 1),
           args.seed)  # generate the data once, outside the measurements
    rows = []
    for ckpt in args.checkpointing:
        for method in args.methods:
            for T in args.T_values:
                if T < args.B:
                    continue
                cfg = {'part': 'memory', 'method': method, 'T': T,
                       'checkpoint': ckpt}
                r = C.run_config(__file__, argv, args, cfg, memory_worker)
                print(f"  {method:12s} T={T:3d} checkpointing {ckpt}: "
                      f"{r['peak_minus_imports_mib']:.0f} MiB, "
                      f"{r['seconds_per_batch']:.3f} s/batch", flush=True)
                rows.append(r)
    ratios = {}
    for r in rows:
        if r['T'] == max(args.T_values):
            base = [b for b in rows if b['T'] == 8 and b['method'] ==
                    r['method'] and b['checkpoint'] == r['checkpoint']]
            if base and base[0]['peak_minus_imports_mib'] > 0:
                key = f"{r['method']}/checkpointing-{r['checkpoint']}"
                ratios[key] = (r['peak_minus_imports_mib'] /
                               base[0]['peak_minus_imports_mib'])
    cols = [('method', 'method', ''), ('checkpoint', 'ckpt', ''),
            ('T', 'T', 'd'), ('B', 'B', 'd'), ('S', 'S', 'd'),
            ('grad_steps', 'grad steps', 'd'),
            ('seconds_per_batch', 's/batch', '.3f'),
            ('seconds_per_update', 's/update', '.3f'),
            ('rss_after_imports_mib', 'RSS imports MiB', '.0f'),
            ('peak_rss_mib', 'peak RSS MiB', '.0f'),
            ('peak_minus_imports_mib', 'peak-imports MiB', '.0f')]
    title = (f'Peak memory and time per mini-batch vs T (n={args.n}, '
             f'd={args.hidden}, batch {args.batch_size}, B={args.B}, '
             f'S<={args.S})')

    def plot(rows):
        fig, (ax_m, ax_t) = C.new_figure(2)
        for ckpt in args.checkpointing:
            sub = [r for r in rows if r['checkpoint'] == ckpt]
            style = '-o' if ckpt == 'off' else '--s'
            for m, (xs, ys) in C.series(sub, 'method', 'T',
                                        'peak_minus_imports_mib').items():
                ax_m.plot(xs, ys, style, label=f'{METHOD_LABEL[m]}, '
                          f'ckpt {ckpt}')
            for m, (xs, ys) in C.series(sub, 'method', 'T',
                                        'seconds_per_batch').items():
                ax_t.plot(xs, ys, style, label=f'{METHOD_LABEL[m]}, '
                          f'ckpt {ckpt}')
        for ax, label in ((ax_m, 'peak RSS - RSS after imports (MiB)'),
                          (ax_t, 'seconds per mini-batch')):
            ax.set_xscale('log', base=2)
            ax.set_xlabel('iterations T')
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        ax_m.legend(fontsize=7)
        ax_m.set_title('peak memory (measured under load)', fontsize=9)
        ax_t.set_title('time per mini-batch (measured under load)',
                       fontsize=9)
        return fig

    out = C.finish(args, rows, cols, plot, title,
                   {'peak_ratio_Tmax_over_T8': ratios})
    for key, value in ratios.items():
        print(f'peak memory T={max(args.T_values)} / T=8, {key}: '
              f'{value:.2f}')
    return out


def training_part(args, argv):
    import _hull as H
    H.hull(args.root, 'train', args.train_n, args.train_samples, args.seed)
    H.hull(args.root, 'val', args.train_n, args.val_samples, args.seed)
    configs = [('bptt', 4, 4, 1), ('tbptt', 16, 4, 1), ('skips', 16, 4, 2),
               ('skips-fixed', 16, 4, 2)]
    rows = []
    for method, T, B, S in configs:
        cfg = {'part': 'training', 'method': method, 'T': T, 'B': B, 'S': S}
        r = C.run_config(__file__, argv, args, cfg, training_worker)
        print(f"  {method:12s} T={T:2d} B={B} S={S}: val F1 "
              f"{r['val_f1']:.3f} after {r['steps']} steps, "
              f"{r['train_seconds']:.0f} s", flush=True)
        rows.append(r)
    cols = [('method', 'method', ''), ('T', 'T', 'd'), ('B', 'B', 'd'),
            ('S', 'S', 'd'), ('train_seconds', 'train s', '.0f'),
            ('steps', 'steps', 'd'), ('final_loss', 'loss', '.4f'),
            ('val_f1', 'val F1', '.4f'),
            ('peak_minus_imports_mib', 'peak-imports MiB', '.0f')]
    title = (f'F1 after {args.train_seconds:.0f} s of training, budget of 4 '
             f'back-propagated iterations (n={args.train_n}, '
             f'd={args.train_hidden}, batch {args.train_batch_size}, '
             f'lr {args.lr})')

    def plot(rows):
        fig, (ax, ) = C.new_figure(1)
        for r in rows:
            xs = [c[0] for c in r['curve']]
            ys = [c[2] for c in r['curve']]
            ax.plot(xs, ys, '-o', ms=3, label=f"{METHOD_LABEL[r['method']]}"
                    f" T={r['T']} B={r['B']} S={r['S']}")
        ax.set_xlabel('training wall-clock seconds')
        ax.set_ylabel(f'validation F1 (n={args.train_n})')
        ax.set_title('equal wall-clock budget (measured under load)',
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return fig

    return C.finish(args, rows, cols, plot, title, part='_training')


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = C.worker_config(args)
    if cfg is not None:
        return C.emit((memory_worker if cfg['part'] == 'memory'
                       else training_worker)(args, cfg))
    results = {}
    if 'memory' in args.parts:
        results['memory'] = memory_part(args, argv)
    if 'training' in args.parts:
        results['training'] = training_part(args, argv)
    return results


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
