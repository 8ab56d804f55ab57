"""The hull example's first training losses, pinned before the training
path was restructured: the same seed must give bit-identical losses."""
import json

from tests.conftest import load_script

#: Losses of the first three batches (paper model d=128, T=16, B=4, S=2,
#: batch 64, n=30, seed 3, 1 thread), torch 2.13.0 on the CPU.
PINNED = [0.6138540027200123, 0.4044270078870146, 0.3468282949184608]


def test_hull_example_losses_are_bit_identical_to_the_pinned_ones(tmp_path):
    mod = load_script('examples/convex_hull.py')
    mod.main(['--root', str(tmp_path / 'data'), '--out',
              str(tmp_path / 'run'), '--train-samples', '192',
              '--val-samples', '8', '--test-samples', '8', '--max-steps',
              '3', '--threads', '1', '--no-progress', '--seed', '3'])
    with open(tmp_path / 'run' / 'log.jsonl') as f:
        losses = [json.loads(line)['loss'] for line in f]
    assert losses == PINNED
