import torch

from torch_geometric_hyper import debug
from torch_geometric_hyper.nn import set_input_validation
from torch_geometric_hyper.nn.checks import sync_checks_allowed


def test_validation_switch_and_context_manager():
    assert set_input_validation is debug.set_input_validation
    assert not debug.is_validation_enabled()
    try:
        set_input_validation(True)
        assert debug.is_validation_enabled()
        with debug.validation(False):
            assert not debug.is_validation_enabled()
        assert debug.is_validation_enabled()
    finally:
        set_input_validation(False)
    with debug.validation():
        assert debug.is_validation_enabled()
    assert not debug.is_validation_enabled()


def test_host_as_accelerator_turns_off_the_host_paths():
    x = torch.zeros(2)
    assert debug.on_host(x) and sync_checks_allowed(x)
    try:
        debug.set_host_as_accelerator(True)
        assert debug.is_host_as_accelerator()
        assert not debug.on_host(x) and not sync_checks_allowed(x)
        with debug.validation():  # the checks run again, on request
            assert sync_checks_allowed(x)
    finally:
        debug.set_host_as_accelerator(False)
    assert debug.on_host(torch.zeros(2, device='meta')) is False
