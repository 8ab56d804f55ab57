"""Training throughput and peak memory of the refiner through Lightning
against ``fit``, on the same model and batches.

Each run trains the paper's refiner (d=128, T=16, B=4, S=2, batch 64) on
convex hulls of 30 points for ``--batches`` batches, in a fresh process, once
with :func:`torch_geometric_hyper.train.fit` and once with a Lightning
``Trainer`` over :class:`~torch_geometric_hyper.lightning.SetToHypergraphModule`
and :class:`~torch_geometric_hyper.lightning.SetLoader` (no validation, no
logger, no checkpoints: the training loops alone). The two take turns
(``--rounds`` times, the first to go alternating), so a drift in the
machine's speed hits both alike. Reported per run: samples/s over the
training loop (the first ``--warmup`` batches excluded) and the process's
peak RSS; per contender the median; and the ratio of Lightning's median
samples/s to ``fit``'s.

    python benchmarks/lightning_overhead.py --quick
    python benchmarks/lightning_overhead.py --batches 12 --rounds 2 \
        --threads 2 --out benchmarks/results
"""
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common as C  # noqa: E402

CONTENDERS = ('fit', 'lightning')


def parse_args(argv=None):
    p = C.base_parser(__doc__, 'lightning_overhead')
    p.add_argument('--root', default=osp.join('data', 'bench_hull'))
    p.add_argument('--batches', type=int, default=None,
                   help='timed training batches per run (default 12, 3 '
                        'with --quick)')
    p.add_argument('--warmup', type=int, default=1,
                   help='first batches left out of the timing')
    p.add_argument('--rounds', type=int, default=2,
                   help='runs per contender, alternating')
    p.add_argument('--hidden', type=int, default=None)
    p.add_argument('--num-points', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=64)
    args = p.parse_args(argv)
    return C.apply_defaults(args, batches=3 if args.quick else 12,
                            hidden=32 if args.quick else 128)


def _setup(args):
    import torch
    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import HypergraphRefiner, \
        MatchedIncidenceLoss
    torch.set_num_threads(args.threads)
    n = args.batch_size * (args.batches + args.warmup)
    data = ConvexHull(args.root, 'train', num_points=args.num_points,
                      num_samples=n, seed=args.seed, log=False)
    torch.manual_seed(args.seed)
    model = HypergraphRefiner(3, args.hidden, data.max_hyperedges, 16)
    return data, model, MatchedIncidenceLoss()


def _fit(args, data, model, loss_fn, tmp):
    from torch_geometric_hyper.train import TrainConfig, fit
    config = TrainConfig(out=tmp, batch_size=args.batch_size,
                         max_steps=args.warmup + args.batches,
                         seed=args.seed, threads=args.threads,
                         progress=False)
    times = []

    class Timed:  # fit's own trainer, timed batch by batch
        def __init__(self, inner):
            self.inner, self.rng = inner, inner.rng

        def __call__(self, *a, **kw):
            t0 = time.perf_counter()
            out = self.inner(*a, **kw)
            times.append(time.perf_counter() - t0)
            return out
    from torch_geometric_hyper.train import make_trainer
    fit(model, loss_fn, data, config=config,
        trainer=Timed(make_trainer(config, recurrent=True)))
    return times


def _lightning(args, data, model, loss_fn, tmp):
    import lightning as L
    from torch_geometric_hyper.lightning import SetLoader, \
        SetToHypergraphModule
    times = []

    class Timed(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, idx):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, module, out, batch, idx):
            times.append(time.perf_counter() - self.t0)
    module = SetToHypergraphModule(model, loss_fn, seed=args.seed)
    trainer = L.Trainer(
        accelerator='cpu', devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False,
        max_steps=2 * (args.warmup + args.batches), limit_val_batches=0,
        callbacks=[Timed()], default_root_dir=tmp)
    trainer.fit(module, SetLoader(data, args.batch_size, seed=args.seed))
    return times


def run_one(args, contender):
    import tempfile
    probe = C.MemoryProbe()
    data, model, loss_fn = _setup(args)
    with tempfile.TemporaryDirectory() as tmp:
        runner = _fit if contender == 'fit' else _lightning
        times = runner(args, data, model, loss_fn, tmp)
    timed = times[args.warmup:]
    return {'contender': contender, 'batches': len(timed),
            'samples_per_s': args.batch_size * len(timed) / sum(timed),
            's_per_batch': statistics.median(timed),
            'peak_rss_mib': C.peak_rss_mib(),
            'rss_at_start_mib': probe.baseline}


def main(argv=None):
    started = C.start(parse_args, lambda a, cfg: run_one(a, cfg['c']), argv)
    if started is None:
        return None
    argv, args = started
    rows = []
    for r in range(args.rounds):
        order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
        for c in order:
            rows.append(dict(C.run_config(
                __file__, argv, args, {'c': c},
                lambda a, cfg: run_one(a, cfg['c'])), round=r))
    med = {c: statistics.median(x['samples_per_s'] for x in rows
                                if x['contender'] == c) for c in CONTENDERS}
    peak = {c: statistics.median(x['peak_rss_mib'] for x in rows
                                 if x['contender'] == c) for c in CONTENDERS}
    summary = {'ratio_samples_per_s': med['lightning'] / med['fit'],
               'median_samples_per_s': med, 'median_peak_rss_mib': peak}
    print(f"lightning / fit samples/s: {summary['ratio_samples_per_s']:.3f} "
          f"(medians {med['lightning']:.1f} / {med['fit']:.1f}); peak RSS "
          f"{peak['lightning']:.0f} / {peak['fit']:.0f} MiB")
    columns = [('round', 'round', 'd'), ('contender', 'contender', 's'),
               ('samples_per_s', 'samples/s', '.2f'),
               ('s_per_batch', 's/batch', '.3f'),
               ('peak_rss_mib', 'peak RSS MiB', '.0f')]
    return C.finish(args, rows, columns, lambda rows: None,
                    'Lightning against fit, hull n=30',
                    extra_meta={'summary': summary})


if __name__ == '__main__':
    main()
