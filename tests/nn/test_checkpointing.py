import pytest

from torch_geometric_hyper.nn.checkpointing import (
    check_checkpoint_mode,
    step_activation_bytes,
    use_checkpointing,
)


def test_auto_checkpointing_decision():
    # 64 hulls of 30 points, 56 slots: about 7 MB per step, stored
    small = step_activation_bytes(64 * 56 * 30, 64 * (30 + 56), 128)
    assert 1e6 < small < 2e7
    assert use_checkpointing('auto', 64 * 56 * 30, 64 * 86, 128) is False
    # one hull of 10,000 points with 20,000 slots over all pairs: recompute
    assert use_checkpointing('auto', 10_000 * 20_000, 30_000, 128) is True
    assert use_checkpointing(True, 1, 1, 1) is True
    assert use_checkpointing(False, 10**12, 10**9, 512) is False


def test_checkpoint_mode_is_checked():
    for mode in (True, False, 'auto'):
        assert check_checkpoint_mode(mode) == mode
    with pytest.raises(ValueError, match="'checkpoint' must be True, False "
                                         "or 'auto'"):
        check_checkpoint_mode('yes')
