"""The throughput figures of benchmarks/README.md and the docs are those of the
benchmark's result file (a consistency check, not a timing)."""
import os.path as osp

from tests.conftest import load_script as _load

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script():
    return _load('benchmarks/readme_figures.py')


def test_readme_throughput_block_matches_results_file():
    mod = load_script()
    results = mod.load()
    with open(mod.README) as f:
        block = mod.current_block(f.read())
    assert block == mod.readme_block(results), (
        'README throughput figures differ from benchmarks/results/'
        'train_throughput.json; run python benchmarks/readme_figures.py')
    # every row names its mode and threads
    modes = {r['checkpointing'] for r in results['rows']}
    assert modes == {'on', 'off'}
    assert all(r['threads'] >= 1 for r in results['rows'])


def test_docs_table_matches_results_file():
    mod = load_script()
    with open(mod.DOCS_CSV) as f:
        assert f.read() == mod.docs_csv(mod.load())


def test_quick_run_figures_come_from_the_log():
    # the README's quick-run sentence quotes the log it names first,
    # benchmarks/results/convex_hull_quick*.log
    import re
    with open(osp.join(ROOT, 'README.md')) as f:
        readme = f.read()
    name = re.search(r'benchmarks/results/(convex_hull_quick\w*\.log)',
                     readme).group(1)
    with open(osp.join(ROOT, 'benchmarks', 'results', name)) as f:
        log = f.read()
    best = re.search(r'best val F1 ([\d.]+) \(reference metric ([\d.]+)\) '
                     r'after (\d+) batches', log)
    test = re.search(r'test F1 ([\d.]+) \(reference metric ([\d.]+)', log)
    strict, ref, batches = best.groups()
    flat = ' '.join(readme.split())
    assert f'{batches} batches, validation F1 {float(strict):.3f} strict / ' \
        f'{float(ref):.3f} reference metric, test ' \
        f'{float(test.group(1)):.3f} / {float(test.group(2)):.3f}' in flat
