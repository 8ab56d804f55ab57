import json
import os
import os.path as osp

from tests.benchmarks.helpers import ROOT, check_outputs, run_script


def test_train_throughput_quick_outputs(tmp_path):
    run_script('train_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                    '--S', 2, '--batch-size', 4,
                                    '--batches', 1, '--device', 'cpu'],
               tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'train_throughput_quick',
                         ['size', 'checkpointing', 'max_edges',
                          'seconds_per_batch', 'samples_per_s',
                          'peak_rss_mib', 'rss_after_imports_mib',
                          'threads'], 2,
                         ['seconds_per_batch', 'samples_per_s'])
    assert [r['size'] for r in rows] == ['30', '30']
    assert [r['checkpointing'] for r in rows] == ['on', 'off']
    assert rows[0]['max_edges'] == 56
    assert [r['candidates'] for r in rows] == ['all', 'all']


def test_train_throughput_candidates(tmp_path):
    # K=16 candidates per slot beside all pairs, one mode
    run_script('train_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                    '--S', 2, '--batch-size', 4,
                                    '--batches', 1, '--device', 'cpu',
                                    '--checkpointing', 'off',
                                    '--candidates', 'all', 16], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'train_throughput_quick',
                         ['size', 'candidates', 'samples_per_s'], 2,
                         ['samples_per_s'])
    assert [r['candidates'] for r in rows] == ['all', '16']


def test_train_throughput_candidate_kernels(tmp_path):
    # the K-candidate refiner with the library's dense blocks (sets of one
    # size) and with the sparse products forced
    run_script('train_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                    '--S', 2, '--batch-size', 4,
                                    '--batches', 1, '--device', 'cpu',
                                    '--checkpointing', 'off',
                                    '--candidates', 'all', 16,
                                    '--candidate-kernels', 'blocks',
                                    'sparse'], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'train_throughput_quick',
                         ['size', 'candidates', 'kernels', 'blocks_used',
                          'samples_per_s'], 3, ['samples_per_s'])
    assert [(r['candidates'], r['kernels'], r['blocks_used'])
            for r in rows] == [('all', '-', False), ('16', 'blocks', True),
                               ('16', 'sparse', False)]


def test_train_throughput_interleaved(tmp_path):
    # the configurations of a size in one process, taking turns: one row
    # each, the paired ratio to the first, and the blocks switched per turn
    out = run_script('train_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                          '--S', 2, '--batch-size', 4,
                                          '--batches', 3, '--device', 'cpu',
                                          '--checkpointing', 'off',
                                          '--candidates', 'all', 16,
                                          '--candidate-kernels', 'blocks',
                                          'sparse', '--interleave'],
                     tmp_path)
    assert 'interleaved batch by batch' in out
    rows = check_outputs(tmp_path / 'out' / 'train_throughput_quick',
                         ['size', 'candidates', 'kernels', 'blocks_used',
                          'ratio_to_first', 'samples_per_s'], 3,
                         ['samples_per_s', 'ratio_to_first'])
    assert [(r['candidates'], r['kernels'], r['blocks_used'])
            for r in rows] == [('all', '-', False), ('16', 'blocks', True),
                               ('16', 'sparse', False)]
    assert all(r['interleaved'] for r in rows)
    assert rows[0]['ratio_to_first'] == 1.0
    # one shared process: one peak
    assert len({r['peak_rss_mib'] for r in rows}) == 1


def test_train_throughput_chunk_sizes(tmp_path):
    # the per-pair kernels' working set, library default beside a size
    run_script('train_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                    '--S', 2, '--batch-size', 4,
                                    '--batches', 1, '--device', 'cpu',
                                    '--checkpointing', 'off',
                                    '--chunk-elements', 'auto', 4096],
               tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'train_throughput_quick',
                         ['size', 'chunk_elements', 'samples_per_s'], 2,
                         ['samples_per_s'])
    assert [str(r['chunk_elements']) for r in rows] == ['auto', '4096']


def test_graph_throughput_quick_outputs(tmp_path):
    run_script('graph_throughput', ['--hidden', 8, '--T', 4, '--B', 2,
                                    '--S', 2, '--batch-size', 4,
                                    '--device', 'cpu'], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'graph_throughput_quick',
                         ['size', 'knn', 'seconds_per_batch',
                          'samples_per_s', 'peak_minus_imports_mib'], 1,
                         ['seconds_per_batch', 'samples_per_s'])
    assert rows[0]['knn'] == 16


def test_profile_step_quick_outputs(tmp_path):
    run_script('profile_step', [], tmp_path)
    rows = check_outputs(tmp_path / 'out' / 'profile_step_quick',
                         ['size', 'batch_ms', 'pair MLP %',
                          'assignment %', 'Python / dispatch %'], 1,
                         ['batch_ms', 'pair MLP %'])
    shares = [v for k, v in rows[0].items() if k.endswith(' %')]
    assert len(shares) == 8 and all(v >= 0 for v in shares)
    # the categories cover the batch's wall time (more when operators on
    # other threads overlap it)
    assert sum(shares) >= 99.0
    assert rows[0]['pair MLP %'] > 0 and rows[0]['DeepSets %'] > 0
    # hulls of one size aggregate with batched matmuls: counted too
    assert rows[0]['incidence products %'] > 0


def test_results_record_allocator_settings(tmp_path, monkeypatch):
    # MALLOC_* settings change speed and peak RSS, so a result file says so
    import argparse
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_bench_common', osp.join(ROOT, 'benchmarks', '_common.py'))
    C = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(C)
    args = argparse.Namespace(out=str(tmp_path), name='run', quick=False,
                              threads=1)
    rows = [{'size': 30, 'seconds': 1.0}]
    cols = [('size', 'n', 'd'), ('seconds', 's', '.1f')]
    for k in [k for k in os.environ if k.startswith('MALLOC_')]:
        monkeypatch.delenv(k)
    monkeypatch.delenv('LD_PRELOAD', raising=False)
    assert 'allocator_env' not in C.finish(args, rows, cols, lambda r: None,
                                           't')['meta']
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', '131072')
    meta = C.finish(args, rows, cols, lambda r: None, 't')['meta']
    assert meta['allocator_env'] == {'MALLOC_MMAP_THRESHOLD_': '131072'}
    with open(tmp_path / 'run.json') as f:
        assert json.load(f)['meta']['allocator_env'] == meta[
            'allocator_env']
