r"""Set-to-hypergraph prediction for PyTorch Geometric."""
from torch_geometric_hyper import (data, datasets, debug, matching, metrics,
                                   nn, testing, train)

__version__ = '0.1.0'

__all__ = ['data', 'datasets', 'nn', 'train', 'metrics', 'matching', 'testing',
           'debug', '__version__']
