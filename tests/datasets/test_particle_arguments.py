import pytest

from torch_geometric_hyper.datasets import ParticlePartitioning


@pytest.mark.parametrize('step_size', [2.5, True, '100', 0])
def test_read_jets_step_size_checked_first(step_size):
    # refused before uproot is imported or the file is looked at (before:
    # a FileNotFoundError here, or 2.5 handed to uproot)
    with pytest.raises(ValueError, match="'step_size' .* got"):
        ParticlePartitioning.read_jets('/no/such/file.root',
                                       step_size=step_size)
