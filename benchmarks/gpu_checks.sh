#!/usr/bin/env bash
# The GPU checks in one pass, sized for a short lease of one GPU (about 9
# minutes): the CUDA tests, host synchronisations counted by CUDA, training
# throughput of the package on CUDA (compiled steps, its default there, and
# eager) against the CPU of the same machine and against the reference code
# on the same GPU and CPU, then the whole test suite with the time left.
# With GPU_CHECKS_ALL=1 also the learning curves and the larger sets of the
# earlier checks.
#
#     bash benchmarks/gpu_checks.sh OUT_DIR
#
# The reference code runs when its harness is in RPH_HARNESS (default
# data/rph-harness, ignored by git): make it here with
#     ../shared/research/setup.sh GIT_DIR data/rph-harness
# and carry only its sources to the GPU machine (its venvs are not needed:
# the reference needs torch, numpy and scipy, which the package's
# environment has), e.g. rm -rf data/rph-harness/*venv first.
#
# Every step has its own time limit; the results (logs, CSV/JSON/PNG) go to
# OUT_DIR/gpu_checks/ and are packed into OUT_DIR/gpu_checks.tgz after each
# step, so a run cut short still returns what it finished.
set -u
OUT=${1:?usage: gpu_checks.sh OUT_DIR}
R=/tmp/gpu_checks
D=/tmp/gpu_data
mkdir -p "$R" "$D" "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# a dry run elsewhere: GPU_CHECKS_DEVICE=cpu GPU_CHECKS_MAX_STEP=20
DEV=${GPU_CHECKS_DEVICE:-cuda}
MAX_STEP=${GPU_CHECKS_MAX_STEP:-100000}
START=$(date +%s)

pack() { tar czf "$OUT/gpu_checks.tgz" -C /tmp gpu_checks; }
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$(( $2 < MAX_STEP ? $2 : MAX_STEP ))
    shift 2
    echo "== $name (limit ${limit}s, at $(( $(date +%s) - START ))s)"
    local t0=$(date +%s)
    timeout -s INT -k 10 "$limit" "$@" > "$R/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$R/steps.txt"
    tail -n 25 "$R/$name.log"
    pack
}

{ nvidia-smi -L; $PY -c 'import torch, torch_geometric, scipy, sys;
print(sys.version.split()[0], torch.__version__, torch.version.cuda,
      torch_geometric.__version__, scipy.__version__,
      torch.cuda.get_device_name(0))'; nproc; } > "$R/env.txt" 2>&1
cat "$R/env.txt"

# 1. the CUDA cases of the tests (CPU-GPU parity, device-parametrised)
step tests_cuda 150 $PY -m pytest -q -p no:cacheprovider -rs \
    tests/test_devices.py tests/nn/test_candidates.py tests/nn/kernels \
    tests/train/test_fit.py tests/test_matching.py tests/nn/losses \
    tests/testing/test_host_sync.py \
    -k 'cuda or devices or host_sync or gpu or torch_backend'

# 2. host synchronisations of one training batch, counted by CUDA itself
step syncs 60 $PY - <<'EOF'
import collections, os, warnings
import torch
from torch_geometric.data import Batch
from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.nn import HypergraphRefiner, MatchedIncidenceLoss
from torch_geometric_hyper.train import BackpropWithSkips
DEV = os.environ.get('GPU_CHECKS_DEVICE', 'cuda')
ds = ConvexHull('/tmp/gpu_data/syncs', num_points=30, num_samples=64,
                log=False)
data = Batch.from_data_list(list(ds)).to(DEV)
for k in (None, 16):
    model = HypergraphRefiner(3, 128, ds.max_hyperedges, 16,
                              num_candidates=k).to(DEV)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer = BackpropWithSkips(16, 4, 2, seed=0)
    trainer(model, opt, MatchedIncidenceLoss(), data)  # warm-up
    where = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        trainer(model, opt, MatchedIncidenceLoss(), data)
        torch.cuda.set_sync_debug_mode(0)
    for w in caught:
        if 'synchroniz' in str(w.message):
            where[f'{w.filename}:{w.lineno}'] += 1
    print(f'K={k or "all"}: {sum(where.values())} synchronising calls in one '
          f'batch (T=16, B=4, S=2)')
    for place, count in where.most_common():
        print(f'  {count:3d}  {place}')
EOF

# 3. training throughput at the paper's settings (n=30, batch 64, d=128,
#    T=16, B=4, S=2): the package on CUDA with its default (compiled steps)
#    and eager, the same machine's CPU on 2 threads, and the reference code
#    on the same GPU and CPU. Targets: CUDA >= 10x the 2-thread CPU, >= 3x
#    the reference on the same GPU.
step throughput_cuda 200 $PY benchmarks/train_throughput.py --device $DEV \
    --sizes 30 50 --batches 10 --checkpointing off \
    --root $D/bench_hull --out $R --name train_throughput_cuda --in-process
step throughput_cuda_eager 120 $PY benchmarks/train_throughput.py \
    --device $DEV --compile off --sizes 30 --batches 10 --checkpointing off \
    --root $D/bench_hull --out $R --name train_throughput_cuda_eager \
    --in-process
step throughput_cpu_same_machine 60 $PY benchmarks/train_throughput.py \
    --device cpu --threads 2 --sizes 30 --batches 3 --checkpointing off \
    --root $D/bench_hull --out $R --name train_throughput_cpu_t2_gpuhost \
    --in-process
RPH=${RPH_HARNESS:-data/rph-harness}
if [ -f "$RPH/bench.py" ]; then
    step reference_cuda 150 $PY benchmarks/reference_cuda.py "$RPH" 30 2 10 \
        --device $DEV
    step reference_cpu_same_machine 120 $PY benchmarks/reference_cuda.py \
        "$RPH" 30 1 2 --device cpu
else
    echo "no reference harness in $RPH: reference steps skipped" \
        | tee -a "$R/steps.txt"
fi

if [ "${GPU_CHECKS_ALL:-0}" = 1 ]; then
step throughput_cuda_batch512 60 $PY benchmarks/train_throughput.py \
    --device $DEV --sizes 30 --batch-size 512 --batches 4 \
    --checkpointing off on --root $D/bench_hull512 --out $R \
    --name train_throughput_cuda_batch512 --in-process

# 4. learning curves on CUDA (issue 12 item 7)
step learning_refiner 170 $PY benchmarks/learning_curve.py --device $DEV \
    --models refiner --seeds 1 --batches 100000 --eval-every 100 \
    --train-seconds 120 --root $D/lc_hull --out $R \
    --name learning_curve_cuda_refiner --in-process
step learning_set_transformer 70 $PY benchmarks/learning_curve.py \
    --device $DEV --models set_transformer --seeds 1 --batches 100000 \
    --eval-every 200 --train-seconds 40 --root $D/lc_hull --out $R \
    --name learning_curve_cuda_set_transformer --in-process

# 5. larger sets on CUDA (issue 11 item 7)
step delaunay_100k 80 $PY benchmarks/larger_sets.py --device $DEV \
    --task delaunay --sizes 100000 --knn 16 --train-seconds 30 \
    --train-samples 8 --val-samples 2 --batch-size 2 --root $D/larger \
    --out $R --name larger_sets_delaunay_100k_cuda --in-process
step hull_10k 90 $PY benchmarks/larger_sets.py --device $DEV --task hull \
    --sizes 10000 --candidates 16 --train-seconds 1 --min-steps 3 \
    --train-samples 4 \
    --val-samples 1 --batch-size 1 --hidden 128 --T 16 --B 4 --S 2 \
    --root $D/larger --out $R --name larger_sets_hull_10k_cuda --in-process
fi

# 6. the whole suite, the CUDA cases included, with what time is left
LEFT=$(( ${GPU_CHECKS_SECONDS:-540} - ($(date +%s) - START) ))
if [ "$LEFT" -gt 40 ]; then
    step suite $LEFT env OMP_NUM_THREADS=1 $PY -m pytest -q \
        -p no:cacheprovider -n 14 --timeout 300
fi
echo "total $(( $(date +%s) - START ))s"
pack
