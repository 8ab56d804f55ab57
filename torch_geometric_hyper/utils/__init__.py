from torch_geometric_hyper.utils.checkpoint import load_checkpoint, save_atomic
from torch_geometric_hyper.utils.progress import Progress, progress

__all__ = ['Progress', 'progress', 'load_checkpoint', 'save_atomic']
