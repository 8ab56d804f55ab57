from torch_geometric_hyper.train.skips import (
    BPTT,
    BackpropWithSkips,
    NonFiniteLossError,
    TruncatedBPTT,
    bptt_schedule,
    fixed_skips,
    sample_skips,
    skips_schedule,
    train_on_batch,
    truncated_bptt_schedule,
)
from torch_geometric_hyper.train.one_shot import OneShot

__all__ = [
    'BackpropWithSkips',
    'BPTT',
    'TruncatedBPTT',
    'OneShot',
    'NonFiniteLossError',
    'train_on_batch',
    'sample_skips',
    'fixed_skips',
    'skips_schedule',
    'bptt_schedule',
    'truncated_bptt_schedule',
]
