r"""Delaunay triangulations of random planar point sets."""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_hyper.data import HypergraphData
from torch_geometric_hyper.data.checks import check_count, check_int_array
from torch_geometric_hyper.datasets.set_to_hypergraph import (
    SetToHypergraph,
    check_choice,
    check_num_points,
    draw_non_degenerate,
    size_tag,
)
from torch_geometric_hyper.utils.validation import check_index

TARGETS = ('edges', 'triangles')


def _QhullDelaunay(points: np.ndarray):
    # imported when data is generated (see convex_hull._QhullHull)
    from scipy.spatial import Delaunay
    return Delaunay(points)


def delaunay_edge_index(triangles: np.ndarray, num_nodes: int) -> Tensor:
    r"""The undirected edges of a triangulation as a coalesced
    ``edge_index`` holding both directions.

    Args:
        triangles (numpy.ndarray): :math:`(t, 3)` node ids of each triangle
            (integers, or integral floats; a flat array of :math:`3t` ids
            is read three by three), three different ids in
            :math:`[0, n)` per triangle.
        num_nodes (int): number of nodes :math:`n \ge 1`.

    Returns:
        torch.Tensor: :math:`(2, 2|E|)`, sorted by (row, col), no
        duplicates, no self-loops.

    Raises:
        ValueError: on a ``num_nodes`` that is not a positive integer, or
            ``triangles`` of another shape, with fractional ids, ids
            outside :math:`[0, n)` or a repeated id (a triangle with a
            repeated corner would give a self-loop).
    """
    num_nodes = check_count('num_nodes', num_nodes, 1,
                            'the number of points triangulated')
    tri = check_int_array('triangles', triangles)
    if tri.ndim not in (1, 2) or tri.shape[-1] % 3 or \
            (tri.ndim == 2 and tri.shape[1] != 3):
        raise ValueError(f"'triangles' must have shape (t, 3) (the three "
                         f"node ids of each triangle), got "
                         f"{list(tri.shape)}; pass the simplices of "
                         f"scipy.spatial.Delaunay")
    tri = tri.reshape(-1, 3)
    try:
        check_index('triangles', torch.from_numpy(tri), num_nodes)
    except ValueError as err:
        raise ValueError(f"{err}: every id must name one of the "
                         f"num_nodes={num_nodes} points; pass the points' "
                         f"count as num_nodes") from None
    loop = (tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2]) | \
        (tri[:, 0] == tri[:, 2])
    if loop.any():
        t = int(np.nonzero(loop)[0][0])
        raise ValueError(f"'triangles' must hold three different node ids "
                         f"per triangle, got triangle {t} = "
                         f"{tri[t].tolist()} (a self-loop); drop the "
                         f"degenerate triangles")
    src = tri[:, [0, 1, 2, 1, 2, 0]].reshape(-1)
    dst = tri[:, [1, 2, 0, 0, 1, 2]].reshape(-1)
    key = np.unique(src * num_nodes + dst)  # sorted, deduplicated
    index = np.stack([key // num_nodes, key % num_nodes])
    return torch.from_numpy(index).long()


class Delaunay(SetToHypergraph):
    r"""Predict the Delaunay triangulation of points in the unit square.

    The set-to-graph task of Set2Graph (Serviansky et al., NeurIPS 2020) and
    Zhang et al. (LoG 2022): :math:`n` points are drawn uniformly from
    :math:`[0, 1]^2` and the target is their Delaunay triangulation, from
    :class:`scipy.spatial.Delaunay`. Node features are the coordinates.

    * ``target='edges'``: a plain :class:`~torch_geometric.data.Data` with
      ``x`` :math:`(n, 2)` and the undirected Delaunay edges as
      ``edge_index`` (both directions, coalesced, no self-loops). A
      triangulation of :math:`n` points with :math:`h` on the hull has
      :math:`3n - 3 - h` edges.
    * ``target='triangles'``: a :class:`HypergraphData` whose hyperedges are
      the :math:`2n - 2 - h` triangles (3 nodes each).

    Degenerate draws (Qhull fails) are redrawn. Samples are deterministic in
    ``(num_points, target, split, num_samples, seed)`` and cached.

    Args:
        root (str): cache directory.
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``.
        num_points (int or tuple, optional): set size :math:`n`, or an
            inclusive range ``(lo, hi)`` drawn uniformly per sample
            (paper: :obj:`50` or :obj:`(20, 80)`). (default: :obj:`50`)
        target (str, optional): ``'edges'`` or ``'triangles'``.
            (default: :obj:`'edges'`)
        num_samples (int, optional): default 50,000 / 5,000 / 5,000.
        seed (int, optional): base seed. (default: :obj:`0`)
        **kwargs: see :class:`SetToHypergraph`.

    Example:
        >>> from torch_geometric_hyper.datasets import Delaunay
        >>> ds = Delaunay('/tmp/tgh_doc', num_points=10, num_samples=4,
        ...               log=False)
        >>> ds[0].x.shape
        torch.Size([10, 2])
    """

    default_num_samples = {'train': 50_000, 'val': 5_000, 'test': 5_000}

    def __init__(self, root: str, split: str = 'train',
                 num_points: Union[int, Tuple[int, int]] = 50,
                 target: str = 'edges', num_samples: Optional[int] = None,
                 seed: int = 0, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True):
        check_choice('target', target, TARGETS)
        self.num_points = check_num_points(num_points, 3, 'a triangulation '
                                           'needs 3 points')
        self.target = target
        self.data_cls = Data if target == 'edges' else HypergraphData
        super().__init__(root, split, num_samples, seed, transform,
                         pre_transform, pre_filter, force_reload, log)

    @property
    def config(self) -> str:
        return f'delaunay_{self.target}_n{size_tag(self.num_points)}'

    def generate(self, rng: np.random.Generator) -> Union[Data,
                                                          HypergraphData]:
        lo, hi = self.num_points
        n = int(rng.integers(lo, hi + 1))

        def draw():
            points = rng.random((n, 2))
            return points, _QhullDelaunay(points).simplices

        points, triangles = draw_non_degenerate(draw)
        x = torch.from_numpy(points).float()
        if self.target == 'edges':
            return Data(x=x, edge_index=delaunay_edge_index(triangles, n))
        triangles = np.sort(triangles, axis=1)
        triangles = triangles[np.lexsort(triangles.T[::-1])]
        t = triangles.shape[0]
        index = np.stack([triangles.reshape(-1), np.repeat(np.arange(t), 3)])
        return HypergraphData(x=x, hyperedge_index=torch.from_numpy(index)
                              .long(), num_hyperedges=t)
