from torch_geometric_hyper.utils.progress import Progress, progress

__all__ = ['Progress', 'progress']
