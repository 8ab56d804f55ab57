from tests.benchmarks.helpers import check_outputs, run_script


def test_launch_count_quick_outputs(tmp_path):
    # 64 sets of 10 points at d=64: 655,360 pair features, five CPU
    # chunks of 2**17 floats, one accelerator chunk
    out = run_script('launch_count', ['--batch-size', 64, '--hidden', 64],
                     tmp_path)
    assert 'kernel ops' in out
    rows = check_outputs(tmp_path / 'out' / 'launch_count_quick',
                         ['n', 'chunks', 'chunk_elements', 'aten_ops',
                          'kernel_ops', 'kernel_ops_vs_cpu_chunks',
                          'launches', 'gpu_default'], 4,
                         ['aten_ops', 'kernel_ops', 'launches'])
    by = {r['chunks']: r for r in rows}
    assert set(by) == {'cpu', 'accelerator', 'none', 'gpu_default'}
    assert [r['gpu_default'] for r in rows] == [False] * 3 + [True]
    assert by['cpu']['chunk_elements'] == f'{2 ** 17:,}'  # 1 thread
    assert by['accelerator']['chunk_elements'] == f'{2 ** 26:,}'
    assert 0 < by['accelerator']['kernel_ops'] < by['cpu']['kernel_ops']
    assert by['accelerator']['kernel_ops'] == by['none']['kernel_ops']
    assert all(r['kernel_ops'] < r['aten_ops'] for r in rows)
    assert by['cpu']['kernel_ops_vs_cpu_chunks'] == 1.0
    # a composite and what it calls count once as launches
    assert all(0 < r['launches'] < r['kernel_ops'] for r in rows)
    # compiled steps, foreach Adam: far fewer launches than eager
    assert by['gpu_default']['launches'] < \
        0.6 * by['accelerator']['launches']
