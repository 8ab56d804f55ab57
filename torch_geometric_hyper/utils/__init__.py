from torch_geometric_hyper.utils.checkpoint import load_checkpoint, save_atomic
from torch_geometric_hyper.utils.progress import Progress, progress
from torch_geometric_hyper.utils.validation import (
    check_finite,
    check_float,
    check_index,
    check_int,
)

__all__ = ['Progress', 'progress', 'load_checkpoint', 'save_atomic',
           'check_int', 'check_float', 'check_finite', 'check_index']
