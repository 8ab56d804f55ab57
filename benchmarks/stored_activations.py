"""Bytes one refiner step keeps for its backward pass, and what it costs.

Counts, with ``torch.autograd.graph.saved_tensors_hooks``, the distinct
storages that one training step of ``HypergraphRefiner`` (activation
checkpointing off, the default at the paper's sizes) saves for backward,
parameters excluded, two ways. ``fused`` is the library's path: the
DeepSet inputs run through ``norm_deepset_layer`` (the LayerNorm of a
concatenation and the DeepSet layer after it keep only the parts and two
floats per row, and rebuild the aggregated messages in backward) and the
incidence MLP through ``linear_pair_mlp`` (its two projections are
recomputed in backward). ``plain`` patches in the
compositions ``layer(norm(torch.cat(parts)))`` and
``pair_mlp(lin_a(x), lin_c(y), ...)``. Backprop with
skips holds B such steps at once. The counts are deterministic; a least-
squares fit of ``alpha (N + M) d + beta nnz`` floats over the sizes is
printed with them (``nn.checkpointing.step_activation_bytes`` estimates the same
kind of quantity for ``checkpoint='auto'``).

The matched loss over the B predictions of one update is counted the same
way (``loss_*`` columns; the predictions' logits and pair index excluded):
``fused`` is the library's loss (one clamped-log-sigmoid function keeping
only the logits, the pairs' index work shared by the predictions),
``plain`` patches in ``F.logsigmoid(z).clamp_min(-100)`` for both signs
and no sharing. The targets are m random triples per set, the shape of a
hull's facets.

``--time R`` also trains both ways in one process for R rounds, taking
turns batch by batch (the first to go alternates), and reports the median
s/batch and the median of the paired ratios plain / fused (above 1: the
fused path is faster), at the first size.

    python benchmarks/stored_activations.py --quick
    python benchmarks/stored_activations.py            # n = 30, 50, 100
    python benchmarks/stored_activations.py --sizes 30 --time 15 --threads 2
"""
import os.path as osp
import statistics
import sys
import time
from contextlib import contextmanager

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

NAME = 'stored_activations'
#: set size n: batch size (paper's 64 up to n = 50, fewer sets above)
BATCH = {10: 8, 30: 64, 50: 64, 100: 16, 200: 4}
MODES = ('fused', 'plain')


def parse_args(argv=None):
    p = C.base_parser(__doc__, NAME)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   choices=sorted(BATCH),
                   help='points per hull n (default 30 50 100; quick 10)')
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--time', type=int, default=0, metavar='ROUNDS',
                   help='also time training both ways, interleaved, for '
                        'ROUNDS batches each, at the first size')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    args = p.parse_args(argv)
    C.apply_defaults(args, sizes=[10] if args.quick else [30, 50, 100],
                     hidden=16 if args.quick else 128)
    if args.time < 0:
        p.error('--time must be a non-negative number of rounds')
    return args


@contextmanager
def library_path(mode):
    """Runs the refiner's DeepSet inputs and incidence projections through
    the library's functions (``'fused'``) or the plain compositions
    (``'plain'``)."""
    import torch

    import torch_geometric_hyper.nn.base as base
    import torch_geometric_hyper.nn.deepsets as ds
    real = ds.norm_deepset_layer, base.linear_pair_mlp

    def plain(parts, norm, layer, index, num_sets, recompute=None):
        h = torch.cat(list(parts), dim=-1) if len(parts) > 1 else parts[0]
        return layer(norm(h), index, num_sets)

    def plain_pairs(x, y, lin_a, lin_c, *args, **kwargs):
        return base.pair_mlp(lin_a(x), lin_c(y), *args, **kwargs)

    if mode == 'plain':
        ds.norm_deepset_layer, base.linear_pair_mlp = plain, plain_pairs
    try:
        yield
    finally:
        ds.norm_deepset_layer, base.linear_pair_mlp = real


def stored_bytes(model, state) -> int:
    """Bytes of the distinct non-parameter storages one step saves."""
    from torch_geometric_hyper.testing import saved_tensor_bytes
    return saved_tensor_bytes(lambda: model.step(state),
                              exclude=model.parameters())


@contextmanager
def loss_path(mode):
    """The matched loss as the library runs it (``'fused'``) or with the
    composition's log-sigmoids and no shared index work (``'plain'``)."""
    import torch.nn.functional as F

    import torch_geometric_hyper.nn.losses.matched as L
    real = L._clamped_log_sigmoids, L.MatchedIncidenceLoss._prepare

    def plain(z):
        return (F.logsigmoid(z).clamp_min(-100.0),
                F.logsigmoid(-z).clamp_min(-100.0))

    def unshared(self, pred, index, counts, shared=None):
        return real[1](self, pred, index, counts, None)

    if mode == 'plain':
        L._clamped_log_sigmoids, L.MatchedIncidenceLoss._prepare = \
            plain, unshared
    try:
        yield
    finally:
        L._clamped_log_sigmoids, L.MatchedIncidenceLoss._prepare = real


def loss_stored_bytes(model, state, data, steps: int = 4) -> int:
    """Bytes of the distinct storages the matched loss saves over the
    predictions of ``steps`` steps, beyond the parameters, the logits and
    the pair index (which exist anyway)."""
    from torch_geometric_hyper.nn import MatchedIncidenceLoss
    from torch_geometric_hyper.testing import saved_tensor_bytes
    preds = []
    for _ in range(steps):
        state = model.step(state)
        preds.append(state.prediction())
    return saved_tensor_bytes(
        lambda: MatchedIncidenceLoss().over_steps(preds, data),
        exclude=[*model.parameters(), *(t for p in preds for t in (
            p.incidence_logit, p.existence_logit, p.incidence_index))])


def random_triples(n: int, m: int, batch_size: int, seed: int):
    """``m`` random 3-node hyperedges per set of ``n`` nodes, as a batched
    target (``hyperedge_index``, ``num_hyperedges``)."""
    from types import SimpleNamespace

    import torch
    gen = torch.Generator().manual_seed(seed)
    local = torch.rand(batch_size * m, n, generator=gen).argsort(1)[:, :3]
    node = local + (torch.arange(batch_size * m) // m * n)[:, None]
    edge = torch.arange(batch_size * m)[:, None].expand(-1, 3)
    return SimpleNamespace(
        hyperedge_index=torch.stack([node.reshape(-1), edge.reshape(-1)]),
        num_hyperedges=torch.full((batch_size, ), m))


def measure(args, n):
    import torch

    from torch_geometric_hyper.nn import HypergraphRefiner
    from torch_geometric_hyper.nn.checkpointing import step_activation_bytes
    batch_size, m, d = BATCH[n], 2 * n - 4, args.hidden
    torch.manual_seed(args.seed)
    x = torch.randn(n * batch_size, 3)
    batch = torch.arange(batch_size).repeat_interleave(n)
    model = HypergraphRefiner(3, d, m, 16, checkpoint=False)
    state = model.init_state(x, batch, batch_size)
    with torch.no_grad():  # a step's state, as after a skipped step
        state = model.step(state).detach()
    rows_nm, nnz = n * batch_size + m * batch_size, n * m * batch_size
    row = {'n': n, 'max_edges': m, 'batch_size': batch_size, 'hidden': d,
           'rows': rows_nm, 'pairs': nnz,
           'estimate_mib': step_activation_bytes(nnz, rows_nm, d) / 2**20}
    for mode in MODES:
        with library_path(mode):
            row[f'{mode}_mib'] = stored_bytes(model, state) / 2**20
    row['fused_vs_plain'] = row['fused_mib'] / row['plain_mib']
    data = random_triples(n, m, batch_size, args.seed)
    for mode in MODES:
        with loss_path(mode):
            row[f'loss_{mode}_mib'] = loss_stored_bytes(
                model, state, data) / 2**20
    return row


def timed(args, n):
    """Both ways in one process, batch by batch (see the docstring)."""
    import torch
    from torch_geometric.loader import DataLoader

    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    from torch_geometric_hyper.train import BackpropWithSkips
    bs = BATCH[n]
    ds = ConvexHull(args.root, 'train', num_points=n,
                    num_samples=bs * min(args.time + 1, 8), log=False)
    batches = list(DataLoader(ds, batch_size=bs))
    runs = {}
    for mode in MODES:
        torch.manual_seed(args.seed)
        model = HypergraphRefiner(3, args.hidden, ds.max_hyperedges, 16,
                                  checkpoint=False)
        runs[mode] = (model, torch.optim.Adam(model.parameters(), lr=3e-4),
                      BackpropWithSkips(16, 4, 2, seed=args.seed))
    loss = MatchedIncidenceLoss()
    times = {mode: [] for mode in MODES}
    ratios = []
    for r in range(args.time + 1):  # round 0: warm-up
        took = {}
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            model, opt, trainer = runs[mode]
            with library_path(mode):
                t0 = time.perf_counter()
                trainer(model, opt, loss, batches[r % len(batches)])
                took[mode] = time.perf_counter() - t0
        if r:
            for mode in MODES:
                times[mode].append(took[mode])
            ratios.append(took['plain'] / took['fused'])
    return {f'{mode}_s_per_batch': statistics.median(times[mode])
            for mode in MODES} | {
        'plain_over_fused': statistics.median(ratios),
        'timed_rounds': args.time, 'timed_n': n, 'timed_batch_size': bs}


def run_one(args, n):
    import torch
    torch.set_num_threads(args.threads)
    row = measure(args, n)
    row['threads'] = args.threads
    if args.time and n == args.sizes[0]:
        row.update(timed(args, n))
    return row


def fit(rows):
    """alpha, beta of alpha (N + M) d + beta nnz floats (least squares)."""
    import numpy as np
    if len(rows) < 2:
        return None
    a = np.array([[r['rows'] * r['hidden'], r['pairs']] for r in rows],
                 float) * 4 / 2**20
    coef = np.linalg.lstsq(a, np.array([r['fused_mib'] for r in rows]),
                           rcond=None)[0]
    return [float(c) for c in coef]


def main(argv=None):
    done = C.run_each(__file__, parse_args, run_one, 'n', 'sizes', argv)
    if done is None:
        return None
    _, args, rows = done
    cols = [('n', 'n', 'd'), ('max_edges', 'm', 'd'),
            ('batch_size', 'batch', 'd'), ('hidden', 'd', 'd'),
            ('pairs', 'pairs', ','), ('plain_mib', 'plain MiB', '.2f'),
            ('fused_mib', 'fused MiB', '.2f'),
            ('fused_vs_plain', 'fused/plain', '.3f'),
            ('estimate_mib', 'auto estimate MiB', '.2f'),
            ('loss_plain_mib', 'loss plain MiB', '.2f'),
            ('loss_fused_mib', 'loss fused MiB', '.2f')]
    if args.time:
        cols += [('fused_s_per_batch', 'fused s/batch', '.3f'),
                 ('plain_s_per_batch', 'plain s/batch', '.3f'),
                 ('plain_over_fused', 'plain/fused time', '.3f')]
    coef = fit(rows)
    title = (f'Stored for backward per refiner step (checkpointing off, '
             f'{args.threads} thread(s))')
    if coef:
        title += (f'; fused fit: {coef[0]:.2f} (N+M) d + {coef[1]:.2f} nnz '
                  f'floats')

    def plot(rows):
        fig, axes = C.new_figure(1)
        ax = axes[0]
        xs = [r['n'] for r in rows]
        for mode in MODES:
            ax.plot(xs, [r[f'{mode}_mib'] for r in rows], 'o-', label=mode)
        ax.set_xlabel('points per set n')
        ax.set_ylabel('MiB stored per step')
        C.style_axes(ax)
        return fig

    return C.finish(args, rows, cols, plot, title,
                    extra_meta={'fit_alpha_beta': coef})


if __name__ == '__main__':
    main()
