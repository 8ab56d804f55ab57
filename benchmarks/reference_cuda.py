"""The reference code's convex-hull throughput harness on a GPU.

``../shared/research/bench.py`` times the paper authors' training step (the
reference code, exported and patched by ``../shared/research/setup.sh``) on
the CPU. This driver runs that same script unchanged on another device:
before the script starts it makes the reference model move itself to the
device once built (the model draws its slots and incidence on the device of
its inputs) and every collated batch move there too. The assignments stay
on the host, as the reference solves them (SciPy, after a transfer of the
costs). It then prints the script's own line (samples/s) and the device's
peak memory.

    python benchmarks/reference_cuda.py HARNESS_DIR 30 [WARMUP TIMED]

``HARNESS_DIR`` is the folder ``setup.sh`` made (with ``bench.py`` in it);
``--device`` (default ``cuda``) also takes ``cpu``, for a dry run.
``benchmarks/gpu_checks.sh`` runs it beside the package's
``train_throughput.py`` on the same GPU when the harness is present.
"""
import argparse
import os
import os.path as osp
import runpy
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('harness', help="the folder setup.sh made")
    p.add_argument('n', type=int, help='points per hull')
    p.add_argument('counts', type=int, nargs='*', default=[1, 5],
                   help='warm-up and timed batches (default 1 5)')
    p.add_argument('--device', default='cuda')
    args = p.parse_args(argv)
    script = osp.join(osp.abspath(args.harness), 'bench.py')
    if not osp.exists(script):
        p.error(f'no bench.py in {args.harness}: run '
                f'../shared/research/setup.sh GIT_DIR {args.harness} first')
    import torch
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        p.error('no CUDA device here; --device cpu for a dry run')
    os.chdir(osp.dirname(script))
    sys.path.insert(0, osp.dirname(script))
    import convex_hull_dataset
    import hypergraph_refiner

    class OnDevice(hypergraph_refiner.IterativeRefiner):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.to(device)

    get_loader = convex_hull_dataset.get_ch_dl

    def loader_on_device(*a, **k):
        dl = get_loader(*a, **k)
        collate = dl.collate_fn
        dl.collate_fn = lambda items: tuple(
            t.to(device) if torch.is_tensor(t) else t
            for t in collate(items))
        return dl

    hypergraph_refiner.IterativeRefiner = OnDevice
    convex_hull_dataset.get_ch_dl = loader_on_device
    sys.argv = [script, str(args.n)] + [str(c) for c in args.counts]
    runpy.run_path(script, run_name='__main__')
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
        print(f'reference on {torch.cuda.get_device_name(device)}: peak '
              f'{peak:.0f} MiB of GPU memory')


if __name__ == '__main__':
    main()
