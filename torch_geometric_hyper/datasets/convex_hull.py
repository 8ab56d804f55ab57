r"""Convex hulls of random point clouds as set-to-hypergraph targets."""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.data.checks import check_count
from torch_geometric_hyper.datasets.set_to_hypergraph import (
    SetToHypergraph,
    check_choice,
    check_num_points,
    draw_non_degenerate,
    size_tag,
)


def _QhullHull(points: np.ndarray):
    # SciPy's Qhull, imported when data is generated: a processed dataset
    # loads without scipy.spatial (about 30 MiB and 0.17 s to import)
    from scipy.spatial import ConvexHull as QhullHull
    return QhullHull(points)


class ConvexHull(SetToHypergraph):
    r"""Predict the facets of the convex hull of a point set.

    The task of Zhang et al. (LoG 2022) and Set2Graph (Serviansky et al.,
    NeurIPS 2020): points are drawn from :math:`\mathcal N(0, I_d)`
    (``'gaussian'``) or drawn so and projected onto the unit sphere
    (``'spherical'``); the target hyperedges are the facets
    (:math:`d`-node simplices) of their convex hull, from
    :class:`scipy.spatial.ConvexHull`. Node features are the coordinates.
    Degenerate draws (Qhull fails, e.g. flat point sets) are redrawn.

    In 3-D with :math:`n` spherical points the hull has exactly
    :math:`2n - 4` facets (56 for :math:`n = 30`).

    Args:
        root (str): cache directory.
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``.
        num_points (int or tuple, optional): set size :math:`n`, or an
            inclusive range ``(lo, hi)`` drawn uniformly per sample.
            (default: :obj:`30`)
        distribution (str, optional): ``'spherical'`` or ``'gaussian'``.
        dim (int, optional): dimension :math:`d \ge 2`. (default: :obj:`3`)
        num_samples (int, optional): default 20,000 / 2,000 / 2,000.
        seed (int, optional): base seed.
        **kwargs: see :class:`SetToHypergraph`.

    Example:
        >>> from torch_geometric_hyper.datasets import ConvexHull
        >>> ds = ConvexHull('/tmp/tgh_doc', num_points=10, num_samples=4,
        ...                 log=False)
        >>> data = ds[0]
        >>> data.x.shape, data.hyperedge_index.shape, data.num_hyperedges
        (torch.Size([10, 3]), torch.Size([2, 48]), 16)
    """

    def __init__(self, root: str, split: str = 'train',
                 num_points: Union[int, Tuple[int, int]] = 30,
                 distribution: str = 'spherical', dim: int = 3,
                 num_samples: Optional[int] = None, seed: int = 0,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True):
        check_choice('distribution', distribution, ('spherical', 'gaussian'))
        dim = check_count('dim', dim, 2, 'a hull needs d >= 2')
        self.num_points = check_num_points(
            num_points, dim + 1, f'dim + 1: a hull in {dim}-D needs '
            f'{dim + 1} points')
        self.distribution = distribution
        self.dim = dim
        super().__init__(root, split, num_samples, seed, transform,
                         pre_transform, pre_filter, force_reload, log)

    @property
    def config(self) -> str:
        return (f'hull_{self.distribution}_d{self.dim}_n'
                f'{size_tag(self.num_points)}')

    def generate(self, rng: np.random.Generator) -> HypergraphData:
        lo, hi = self.num_points
        n = int(rng.integers(lo, hi + 1))

        def draw():
            points = rng.standard_normal((n, self.dim))
            if self.distribution == 'spherical':
                points /= np.linalg.norm(points, axis=1, keepdims=True)
            return points, _QhullHull(points).simplices

        points, facets = draw_non_degenerate(draw)
        num_facets, size = facets.shape
        index = np.stack([facets.reshape(-1),
                          np.repeat(np.arange(num_facets), size)])
        return HypergraphData(x=torch.from_numpy(points).float(),
                              hyperedge_index=torch.from_numpy(index).long(),
                              num_hyperedges=num_facets)
