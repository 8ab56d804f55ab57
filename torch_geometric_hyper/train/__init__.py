r"""Training: the per-batch trainers (backprop with skips, BPTT, one-shot),
:func:`fit` with its :class:`TrainConfig`, evaluators of the three tasks,
and the data-parallel helpers.

The command line of the examples is :mod:`torch_geometric_hyper.train.cli`
(imported on demand: it is the only place with ``argparse``).
"""
from torch_geometric_hyper.train.skips import (
    BPTT,
    BackpropWithSkips,
    NonFiniteLossError,
    TruncatedBPTT,
    bptt_schedule,
    fixed_skips,
    mean_over_steps,
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
from torch_geometric_hyper.train.config import TrainConfig
from torch_geometric_hyper.train.context import (Ratio, Run, compile_loss,
                                                 compile_model,
                                                 resolve_device)
from torch_geometric_hyper.train.scaling import (
    GlobalStep,
    MultiStepLoss,
    WeightedLoss,
    loss_weight,
    shard_loss,
)
from torch_geometric_hyper.train.slots import eval_slots, train_slots
from torch_geometric_hyper.train.step import (
    make_trainer,
    training_step,
)
from torch_geometric_hyper.train.fit import (
    FitResult,
    fit,
    load_best,
    loss_evaluator,
)
from torch_geometric_hyper.train.evaluators import (
    adjacency_evaluator,
    hyperedge_evaluator,
    partition_evaluator,
    partition_metrics,
)

__all__ = [
    'TrainConfig',
    'fit',
    'FitResult',
    'training_step',
    'make_trainer',
    'hyperedge_evaluator',
    'adjacency_evaluator',
    'partition_evaluator',
    'partition_metrics',
    'loss_evaluator',
    'load_best',
    'BackpropWithSkips',
    'BPTT',
    'TruncatedBPTT',
    'OneShot',
    'NonFiniteLossError',
    'train_on_batch',
    'sample_skips',
    'fixed_skips',
    'mean_over_steps',
    'skips_schedule',
    'bptt_schedule',
    'truncated_bptt_schedule',
    'Run',
    'compile_model',
    'compile_loss',
    'resolve_device',
    'Ratio',
    'eval_slots',
    'train_slots',
    'GlobalStep',
    'WeightedLoss',
    'MultiStepLoss',
    'loss_weight',
    'shard_loss',
    'DistributedContext',
    'shard_batch',
]
