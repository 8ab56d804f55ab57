from tests.benchmarks.helpers import check_outputs, run_script


def test_launch_count_quick_outputs(tmp_path):
    # 64 sets of 10 points at d=64: 655,360 pair features, five CPU
    # chunks of 2**17 floats, one accelerator chunk
    out = run_script('launch_count', ['--batch-size', 64, '--hidden', 64],
                     tmp_path)
    assert 'kernel ops' in out
    rows = check_outputs(tmp_path / 'out' / 'launch_count_quick',
                         ['n', 'chunks', 'chunk_elements', 'aten_ops',
                          'kernel_ops', 'kernel_ops_vs_cpu_chunks'], 3,
                         ['aten_ops', 'kernel_ops'])
    by = {r['chunks']: r for r in rows}
    assert set(by) == {'cpu', 'accelerator', 'none'}
    assert by['cpu']['chunk_elements'] == f'{2 ** 17:,}'  # 1 thread
    assert by['accelerator']['chunk_elements'] == f'{2 ** 26:,}'
    assert 0 < by['accelerator']['kernel_ops'] < by['cpu']['kernel_ops']
    assert by['accelerator']['kernel_ops'] == by['none']['kernel_ops']
    assert all(r['kernel_ops'] < r['aten_ops'] for r in rows)
    assert by['cpu']['kernel_ops_vs_cpu_chunks'] == 1.0
