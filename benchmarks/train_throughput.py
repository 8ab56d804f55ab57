"""Training throughput and peak memory of the refiner on convex hull.

Runs backprop with skips (T=16, B=4, S=2 by default) on batches of the
convex-hull task and prints samples/s and peak memory (process RSS; CUDA
peak too on a GPU). Each configuration runs in a fresh subprocess so the
peak RSS of one does not hide another's.

    python benchmarks/train_throughput.py                 # n=30, 50, 20-100
    python benchmarks/train_throughput.py --sizes 30 --batches 3 --quick
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {  # name: (num_points, max_edges)
    '30': (30, 56),
    '50': (50, 96),
    '20-100': ((20, 100), 196),
}


def run_one(args):
    import torch

    from torch_geometric.loader import DataLoader
    from torch_geometric_hyper.datasets import ConvexHull
    from torch_geometric_hyper.nn import (HypergraphRefiner,
                                          MatchedIncidenceLoss)
    from torch_geometric_hyper.train import BackpropWithSkips

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    points, m = CONFIGS[args.size]
    ds = ConvexHull(args.root, 'train', num_points=points,
                    num_samples=args.batch_size * (args.batches + 1),
                    log=False)
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False)
    model = HypergraphRefiner(3, args.hidden, m, args.T).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_fn = MatchedIncidenceLoss()
    trainer = BackpropWithSkips(args.T, args.B, args.S, seed=0)
    batches = [b.to(device) for b in loader][:args.batches + 1]
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i, batch in enumerate(batches):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer(model, opt, loss_fn, batch)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i > 0:  # first batch is warm-up
            times.append(time.perf_counter() - t0)
    per_batch = sum(times) / len(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    out = {'size': args.size, 'max_edges': m, 'batch_size': args.batch_size,
           'device': str(device), 'threads': args.threads,
           'seconds_per_batch': per_batch,
           'samples_per_s': args.batch_size / per_batch,
           'peak_rss_mib': rss}
    if device.type == 'cuda':
        out['cuda_peak_mib'] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--sizes', nargs='+', default=list(CONFIGS),
                   choices=list(CONFIGS))
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--batches', type=int, default=4,
                   help='timed batches (after one warm-up batch)')
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--T', type=int, default=16)
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    p.add_argument('--root', default='data/bench_hull')
    p.add_argument('--json', default=None, help='also write results here')
    p.add_argument('--size', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.size is not None:
        return run_one(args)
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, '--size', size] + [
            a for a in sys.argv[1:]]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(res.returncode)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    head = (f"{'n':>8} {'m':>5} {'batch':>6} {'device':>7} {'s/batch':>8} "
            f"{'samples/s':>10} {'peak RSS MiB':>13} {'CUDA MiB':>9}")
    print(head)
    for r in rows:
        print(f"{r['size']:>8} {r['max_edges']:>5} {r['batch_size']:>6} "
              f"{r['device']:>7} {r['seconds_per_batch']:>8.3f} "
              f"{r['samples_per_s']:>10.1f} {r['peak_rss_mib']:>13.0f} "
              f"{r.get('cuda_peak_mib', float('nan')):>9.0f}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


def _cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
