import json

import pytest

from tests.benchmarks.helpers import run_script

pytest.importorskip('lightning')


def test_lightning_overhead_quick_outputs(tmp_path):
    out = run_script('lightning_overhead', [
        '--num-points', 8, '--batch-size', 8, '--batches', 2, '--rounds',
        2, '--hidden', 8], tmp_path, timeout=300)
    assert 'lightning / fit samples/s' in out
    with open(tmp_path / 'out' / 'lightning_overhead_quick.json') as f:
        res = json.load(f)
    rows = res['rows']
    # alternating: fit, lightning, then lightning, fit
    assert [r['contender'] for r in rows] == ['fit', 'lightning',
                                              'lightning', 'fit']
    assert all(r['batches'] == 2 and r['samples_per_s'] > 0 and
               r['peak_rss_mib'] > 0 for r in rows)
    s = res['meta']['summary']
    assert s['ratio_samples_per_s'] == pytest.approx(
        s['median_samples_per_s']['lightning'] /
        s['median_samples_per_s']['fit'])
