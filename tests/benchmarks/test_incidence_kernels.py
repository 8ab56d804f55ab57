import subprocess
import sys

from tests.benchmarks.helpers import ROOT, check_outputs, run_script


def test_incidence_kernels_quick_outputs(tmp_path):
    # n=160 with K=16: fill 10 > 8, so the default keeps the sparse layout
    out = run_script('incidence_kernels', ['--sizes', 30, 160], tmp_path,
                     root=False)
    assert 'sparse/blocks' in out
    rows = check_outputs(tmp_path / 'out' / 'incidence_kernels_quick',
                         ['n', 'm', 'batch_size', 'K', 'nnz', 'fill',
                          'default_blocks', 'sparse_ms', 'blocks_ms',
                          'ratio', 'max_diff'], 2,
                         ['fill', 'sparse_ms', 'blocks_ms', 'ratio',
                          'max_diff'])
    assert [r['n'] for r in rows] == [30, 160]
    for r in rows:
        B, n, K = 4, r['n'], 16  # the quick preset
        m = 2 * n - 4
        nnz = B * m * K  # K distinct candidate nodes per slot
        assert (r['m'], r['batch_size'], r['K'], r['nnz']) == (m, B, K, nnz)
        assert abs(r['fill'] - B * n * m / nnz) < 1e-12
        assert r['default_blocks'] == (B * n * m <= 8 * nnz)
        assert r['sparse_ms'] > 0 and r['blocks_ms'] > 0
        assert abs(r['ratio'] - r['sparse_ms'] / r['blocks_ms']) < 1e-9
        assert 0 <= r['max_diff'] < 1e-9  # float64 check
        # one round of 2 calls per kernel: one median per round
        assert len(r['sparse_round_ms']) == len(r['blocks_round_ms']) == 1
    assert [r['default_blocks'] for r in rows] == [True, False]


def test_incidence_kernels_rejects_k_above_n(tmp_path):
    res = subprocess.run([sys.executable, f'{ROOT}/benchmarks/'
                          'incidence_kernels.py', '--sizes', '10', '--K',
                          '16'], capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert res.returncode == 2 and 'K <= n' in res.stderr
