"""Where the time of one training batch goes (torch.profiler).

Profiles one batch of backprop with skips on convex hull (after a warm-up
batch) and splits its wall time into: the pair MLP (forward and backward
of the fused incidence MLP), the incidence products (slot and node
aggregations, forward and backward), the DeepSets, the loss's cost matrix,
the assignment solver, the optimizer, the rest of the autograd work
(layer norms, linear layers, gathers) and Python/dispatcher overhead (wall
time outside any profiled operator). The shares are ratios within one
run, so they hold on a loaded machine too.

    python benchmarks/profile_step.py                # n=30 and 50, 2 threads
    python benchmarks/profile_step.py --checkpointing on
    python benchmarks/profile_step.py --quick        # n=10, tiny, seconds
"""
import contextlib
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

SIZES = {'10': (10, 16), '30': (30, 56), '50': (50, 96)}
CATEGORIES = ('pair MLP', 'incidence products', 'DeepSets', 'loss cost',
              'assignment', 'optimizer', 'other autograd ops',
              'Python / dispatch')


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'profile_step')
    p.add_argument('--sizes', nargs='+', default=['30', '50'],
                   choices=list(SIZES))
    p.add_argument('--checkpointing', choices=['on', 'off'], default='off')
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    p.set_defaults(threads=2)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.hidden, args.batch_size = ['10'], 16, 8
    return args


LABELS = (  # (prefix of an enclosing event, category), innermost wins
    ('_PairMLP', 'pair MLP'), ('_CompletePairMLP', 'pair MLP'),
    ('_SlotPairMLP', 'pair MLP'),
    ('_IncidenceMatmul', 'incidence products'),
    # the batched dense products of graphs of one size (forward and
    # backward; nothing else in a training batch calls bmm)
    ('aten::bmm', 'incidence products'),
    ('BmmBackward', 'incidence products'),
    ('tgh::deepset', 'DeepSets'), ('tgh::assignment', 'assignment'),
    ('tgh::loss', 'loss cost'), ('Optimizer.step', 'optimizer'))


def _category(evt) -> str:
    node = evt
    while node is not None:
        for prefix, name in LABELS:
            if node.name.startswith(prefix):
                return name
        node = node.cpu_parent
    return 'other autograd ops'


def attribute(prof):
    """Self time (ms) of every operator, summed per category of its
    innermost labelled ancestor, and the sum over all operators."""
    parts = {name: 0.0 for name in CATEGORIES}
    total = 0.0
    for evt in prof.events():
        ms = evt.self_cpu_time_total / 1e3
        total += ms
        parts[_category(evt)] += ms
    return parts, total


def run_one(args, size):
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss, deepsets)
    from torch_geometric_hyper.nn.losses import matched as loss_module
    from torch_geometric_hyper.train import BackpropWithSkips
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, m = SIZES[size]
    ds = ConvexHull(args.root, 'train', num_points=n,
                    num_samples=2 * args.batch_size, log=False)
    batches = list(DataLoader(ds, batch_size=args.batch_size))
    model = HypergraphRefiner(3, args.hidden, m, 16,
                              checkpoint=args.checkpointing == 'on')
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer = BackpropWithSkips(16, 4, 2, seed=0)
    loss_fn = MatchedIncidenceLoss()

    # label the pieces without touching the library: wrap their entry
    # points in record_function ranges for this process only
    def labelled(fn, label):
        def wrapper(*a, **k):
            with record_function(label):
                return fn(*a, **k)
        return wrapper

    loss_module.linear_assignment = labelled(loss_module.linear_assignment,
                                             'tgh::assignment')
    deepsets.DeepSet.forward = labelled(deepsets.DeepSet.forward,
                                        'tgh::deepset')
    loss_call = loss_fn.forward
    loss_fn.forward = labelled(loss_call, 'tgh::loss')
    trainer(model, opt, loss_fn, batches[0])  # warm-up
    with profile(activities=[ProfilerActivity.CPU]):  # profiler start-up
        trainer(model, opt, loss_fn, batches[1])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        trainer(model, opt, loss_fn, batches[0])
        wall = (time.perf_counter() - t0) * 1e3
    parts, ops = attribute(prof)
    parts['Python / dispatch'] = max(0.0, wall - ops)
    row = {'size': size, 'max_edges': m, 'checkpointing': args.checkpointing,
           'threads': args.threads, 'batch_ms': wall}
    for name, ms in parts.items():
        row[name] = ms
        row[name + ' %'] = 100.0 * ms / wall
    return row


def main(argv=None):
    done = C.run_each(__file__, parse_args, run_one, 'size', 'sizes', argv)
    if done is None:
        return None
    argv, args, rows = done

    def plot(rows):
        fig, ax = C.new_figure(1)
        ax = ax[0] if isinstance(ax, (list, tuple)) or hasattr(
            ax, '__len__') else ax
        left = [0.0] * len(rows)
        labels = [f"n={r['size']}" for r in rows]
        for i, name in enumerate(CATEGORIES):
            vals = [r[name + ' %'] for r in rows]
            ax.barh(labels, vals, left=left, color=f'C{i}', label=name)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel('% of the batch wall time')
        ax.legend(fontsize=7, loc='lower right')
        return fig

    columns = [('size', 'n', ''), ('checkpointing', 'ckpt', ''),
               ('threads', 'thr', 'd'), ('batch_ms', 'batch ms', '.0f')] + \
        [(name + ' %', name + ' %', '.1f') for name in CATEGORIES]
    return C.finish(args, rows, columns, plot,
                    f'Time of one training batch (d={args.hidden}, T=16, '
                    f'B=4, S=2, batch {args.batch_size})')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
