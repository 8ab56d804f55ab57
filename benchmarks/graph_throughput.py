"""Training throughput and peak memory of the GraphRefiner on Delaunay.

Runs backprop with skips at the paper's Delaunay settings (d=256, T=32,
B=4, S=4, batch 64) and prints samples/s and peak memory (process RSS;
CUDA peak too on a GPU). Each configuration runs in a fresh subprocess so
the peak RSS of one does not hide another's.

    python benchmarks/graph_throughput.py                  # n=50, 20-80
    python benchmarks/graph_throughput.py --sizes 50 --batches 2 --knn 16
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {'50': 50, '20-80': (20, 80)}


def run_one(args):
    import torch

    from torch_geometric.loader import DataLoader
    from torch_geometric_hyper.datasets import Delaunay
    from torch_geometric_hyper.nn import AdjacencyBCELoss, GraphRefiner
    from torch_geometric_hyper.train import BackpropWithSkips

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    ds = Delaunay(args.root, 'train', num_points=CONFIGS[args.size],
                  num_samples=args.batch_size * (args.batches + 1),
                  log=False)
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False)
    model = GraphRefiner(2, args.hidden, args.T, knn=args.knn).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_fn = AdjacencyBCELoss()
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
    out = {'size': args.size, 'knn': args.knn, 'batch_size': args.batch_size,
           'hidden': args.hidden, 'T': args.T, 'B': args.B, 'S': args.S,
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
    p.add_argument('--batches', type=int, default=2,
                   help='timed batches (after one warm-up batch)')
    p.add_argument('--hidden', type=int, default=256)
    p.add_argument('--T', type=int, default=32)
    p.add_argument('--B', type=int, default=4)
    p.add_argument('--S', type=int, default=4)
    p.add_argument('--knn', type=int, default=None,
                   help='kNN candidate pairs instead of all pairs')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    p.add_argument('--root', default='data/bench_delaunay')
    p.add_argument('--json', default=None, help='also write results here')
    p.add_argument('--size', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.size is not None:
        return run_one(args)
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, '--size', size] + sys.argv[1:]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(res.returncode)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"{'n':>6} {'knn':>4} {'batch':>6} {'d':>4} {'T/B/S':>8} "
          f"{'device':>7} {'thr':>4} {'s/batch':>8} {'samples/s':>10} "
          f"{'peak RSS MiB':>13} {'CUDA MiB':>9}")
    for r in rows:
        tbs = f"{r['T']}/{r['B']}/{r['S']}"
        print(f"{r['size']:>6} {str(r['knn'] or 'all'):>4} "
              f"{r['batch_size']:>6} {r['hidden']:>4} {tbs:>8} "
              f"{r['device']:>7} {r['threads']:>4} "
              f"{r['seconds_per_batch']:>8.3f} {r['samples_per_s']:>10.1f} "
              f"{r['peak_rss_mib']:>13.0f} "
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
