"""Kernel launches per training batch: what a GPU would have to launch.

On a GPU a small batch is paced by the host, which issues every operation
one by one (Python, dispatch, kernel launch), not by the arithmetic. This
script counts, on the CPU (no GPU needed), the operations of one refiner
training batch with backprop with skips, from the PyTorch profiler, in
two ways:

* ``kernel_ops``: every ATen operation that would launch a kernel (all but
  views, reshapes, empty tensors and dtype no-ops), composite operations
  (``linear``) counted besides the ones they call (``addmm``);
* ``launches``: the operations that do the work, each once: the
  innermost ATen operations (composites counted through what they call),
  a ``_foreach_`` operation (one multi-tensor kernel on a GPU) and a fused
  kernel of ``torch.compile`` each one launch.

Rows, per set size n, by the pair kernels' chunk size: the CPU's default
(``default_chunk_elements()``, by thread count), the accelerator's
(``default_chunk_elements('cuda')``) and no chunking at all, each eager on
the CPU's path; and ``gpu_default: true``, the path a GPU run of
:func:`~torch_geometric_hyper.train.fit` takes by default: the
accelerator's code paths (``debug.set_host_as_accelerator``) and chunks,
the model and the loss compiled as :func:`~torch_geometric_hyper.train.fit`
compiles them on CUDA (``compile_model``: a step, and the :math:`B` steps
with gradient as one graph; ``compile_loss``: the matched loss's costs;
Inductor's CPU kernels stand in for its GPU kernels, one launch each),
Adam with ``foreach`` (its CUDA default), and the target counts on the
host as ``Run.to_device`` keeps them.

The count is deterministic for a given model, batch and path; the host
time per batch on a GPU grows with it.

    python benchmarks/launch_count.py --quick      # n=10, batch 8, minutes
    python benchmarks/launch_count.py              # n=30, 50; batch 64
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'launch_count'
#: ATen operations that launch no kernel on a GPU (metadata, aliases,
#: allocation without initialisation, conversions that are no-ops)
NO_KERNEL = frozenset(f'aten::{op}' for op in (
    'as_strided', 'view', 'slice', 'unsqueeze', 'squeeze', 'reshape',
    '_reshape_alias', '_unsafe_view', 'transpose', 't', 'permute',
    'expand', 'select', 'detach', 'alias', 'resolve_conj', 'resolve_neg',
    'empty', 'empty_strided', 'empty_like', 'lift_fresh', 'result_type',
    'contiguous', 'to', 'view_as', 'unbind', 'split', 'chunk', 'narrow',
    'flatten', 'movedim', 'numpy_T', 'is_nonzero', 'item',
    '_local_scalar_dense'))
CHUNKS = ('cpu', 'accelerator', 'none', 'gpu_default')
#: operations that do no work on the device (metadata of sparse tensors,
#: resizes of an output about to be written)
NO_WORK = NO_KERNEL | frozenset(f'aten::{op}' for op in (
    'resize_', '_indices', '_values', 'indices', 'values', 'sparse_dim',
    'dense_dim', 'promote_types', '_nnz', '_coalesced_', 'is_coalesced',
    'new_empty', 'new_empty_strided', 'set_', 'record_stream',
    'crow_indices', 'col_indices', 'expand_as'))


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help='points per hull n (default 30 50, quick 10)')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--T', type=int, default=None)
    p.add_argument('--B', type=int, default=None)
    p.add_argument('--S', type=int, default=None)
    p.add_argument('--checkpointing', choices=['on', 'off'], default='off')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    args = p.parse_args(argv)
    q = args.quick
    C.apply_defaults(args, sizes=[10] if q else [30, 50],
                     batch_size=8 if q else 64, hidden=16 if q else 128,
                     T=4 if q else 16, B=2 if q else 4, S=2)
    if min(args.sizes) < 4 or args.batch_size < 1:
        p.error('--sizes must be at least 4 (a 3-D hull) and --batch-size '
                'positive')
    return args


def chunk_elements(name):
    from torch_geometric_hyper.nn.kernels import default_chunk_elements
    return {'cpu': default_chunk_elements(),
            'accelerator': default_chunk_elements('cuda'),
            'gpu_default': default_chunk_elements('cuda'),
            'none': 2 ** 62}[name]


def _one_launch(name: str) -> bool:
    # a fused kernel of torch.compile, or a multi-tensor (foreach) kernel
    return 'cpp_fused' in name or name.startswith(('aten::_foreach_',
                                                   'aten::_fused_'))


def launches(events) -> int:
    """Kernel launches among the profiler's ``events``: innermost ATen
    operations that do work, a fused or multi-tensor kernel as one."""
    def visit(e):
        if _one_launch(e.name):
            return 1
        inner = sum(visit(c) for c in e.cpu_children)
        if inner == 0 and e.name.startswith('aten::') and \
                e.name not in NO_WORK:
            return 1
        return inner
    return sum(visit(e) for e in events if e.cpu_parent is None)


def count(args, n, chunks):
    """ATen operations of one training batch (after a warm-up batch)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    from torch_geometric_hyper.train import BackpropWithSkips
    ds = ConvexHull(args.root, 'train', num_points=n,
                    num_samples=2 * args.batch_size, log=False)
    batches = list(DataLoader(ds, batch_size=args.batch_size))
    from torch_geometric_hyper import debug
    gpu = chunks == 'gpu_default'
    torch.manual_seed(args.seed)
    model = HypergraphRefiner(3, args.hidden, ds.max_hyperedges, args.T,
                              checkpoint=args.checkpointing == 'on',
                              chunk_elements=chunk_elements(chunks))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4,
                           foreach=True if gpu else None)
    trainer = BackpropWithSkips(args.T, args.B, args.S, seed=args.seed)
    loss = MatchedIncidenceLoss()
    if gpu:
        import torch._inductor.config as inductor

        from torch_geometric_hyper.train import compile_loss, compile_model
        inductor.cpp.enable_kernel_profile = True  # fused kernels profiled
        compile_model(model)  # as fit does on CUDA
        compile_loss(loss)
        for batch in batches:  # as Run.to_device keeps them
            batch.num_hyperedges_host = batch.num_hyperedges.tolist()
    debug.set_host_as_accelerator(gpu)
    try:
        trainer(model, opt, loss, batches[0])  # warm-up (and compilation)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer(model, opt, loss, batches[1])
    finally:
        debug.set_host_as_accelerator(False)
    ops = [e for e in prof.key_averages()
           if e.key.startswith('aten::') or _one_launch(e.key)]
    floats = chunk_elements(chunks)
    return {'n': n, 'max_edges': ds.max_hyperedges, 'chunks': chunks,
            'gpu_default': gpu, 'launches': launches(prof.events()),
            'chunk_elements': 'unchunked' if chunks == 'none' else
            f'{floats:,}',
            'aten_ops': sum(e.count for e in ops),
            'kernel_ops': sum(e.count for e in ops
                              if e.key not in NO_KERNEL),
            'batch_size': args.batch_size, 'hidden': args.hidden,
            'T': args.T, 'B': args.B, 'S': args.S,
            'checkpointing': args.checkpointing, 'threads': args.threads}


def run_one(args, n):
    import torch
    torch.set_num_threads(args.threads)
    rows = [count(args, n, chunks) for chunks in CHUNKS]
    base = rows[0]['kernel_ops']
    for r in rows:
        r['kernel_ops_vs_cpu_chunks'] = r['kernel_ops'] / base
        r['launches_vs_cpu_chunks'] = r['launches'] / rows[0]['launches']
    return {'rows': rows}


def main(argv=None):
    done = C.run_each(__file__, parse_args, run_one, 'n', 'sizes', argv)
    if done is None:
        return None
    _, args, per_size = done
    rows = [r for out in per_size for r in out['rows']]
    cols = [('n', 'n', 'd'), ('max_edges', 'm', 'd'),
            ('chunks', 'chunks', ''), ('chunk_elements', 'floats', ''),
            ('aten_ops', 'ATen ops', ','),
            ('kernel_ops', 'kernel ops', ','),
            ('launches', 'launches', ','),
            ('launches_vs_cpu_chunks', 'vs CPU chunks', '.2f')]
    title = (f'Kernel launches per refiner training batch (d={args.hidden},'
             f' T={args.T}, B={args.B}, S={args.S}, batch '
             f'{args.batch_size}, checkpointing {args.checkpointing}, '
             f'{args.threads} thread(s))')

    def plot(rows):
        fig, axes = C.new_figure(1)
        ax = axes[0]
        sizes = sorted({r['n'] for r in rows})
        width = 0.8 / len(CHUNKS)
        for i, chunks in enumerate(CHUNKS):
            ys = [next(r['launches'] for r in rows
                       if r['n'] == n and r['chunks'] == chunks)
                  for n in sizes]
            ax.bar([j + i * width for j in range(len(sizes))], ys, width,
                   label='GPU default' if chunks == 'gpu_default'
                   else f'{chunks} chunks, eager')
        ax.set_xticks([j + width for j in range(len(sizes))])
        ax.set_xticklabels([f'n={n}' for n in sizes])
        ax.set_ylabel('kernel launches per batch')
        C.style_axes(ax)
        return fig

    return C.finish(args, rows, cols, plot, title)


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
