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
from torch_geometric_hyper.train.distributed import (
    DistributedContext,
    shard_batch,
)
from torch_geometric_hyper.train.loop import (
    Run,
    add_arguments,
    fit,
    load_best,
    make_trainer,
    parse_args,
    save_atomic,
    setup,
)

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
    'add_arguments',
    'parse_args',
    'setup',
    'Run',
    'make_trainer',
    'fit',
    'load_best',
    'save_atomic',
    'DistributedContext',
    'shard_batch',
]
