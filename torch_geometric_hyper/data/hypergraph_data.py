r"""A :class:`torch_geometric.data.Data` subclass for hypergraphs."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.data.hypergraph_data import HyperGraphData

from torch_geometric_hyper.data.checks import check_count


class HypergraphData(Data):
    r"""A hypergraph over a set of nodes, stored as an incidence list.

    ``hyperedge_index`` has shape :math:`(2, \text{nnz})`: row 0 holds node
    ids, row 1 hyperedge ids, the convention of
    :class:`torch_geometric.nn.HypergraphConv`. The number of hyperedges is
    stored explicitly in ``num_hyperedges``, so hyperedges without members
    (and trailing ones) survive. When batched with
    :class:`torch_geometric.loader.DataLoader`, node ids are offset by the
    number of nodes and hyperedge ids by the number of hyperedges of the
    preceding graphs, and ``num_hyperedges`` becomes a :math:`(B)` tensor.

    Args:
        x (torch.Tensor, optional): :math:`(N, F)` node features.
        hyperedge_index (torch.Tensor, optional): :math:`(2, \text{nnz})`
            incidence.
        num_hyperedges (int, optional): number of hyperedges (default:
            ``hyperedge_index[1].max() + 1``).
        **kwargs: further attributes, as for :class:`~torch_geometric.data.Data`.

    Raises:
        ValueError: on a malformed incidence (see :meth:`validate`), or a
            ``num_hyperedges`` or ``num_nodes`` that is not a non-negative
            integer (an integral float such as ``3.0`` is taken as ``3``;
            ``2.7``, booleans and strings are refused, not truncated).

    Example:
        >>> import torch
        >>> from torch_geometric_hyper.data import HypergraphData
        >>> data = HypergraphData(x=torch.randn(4, 2),
        ...     hyperedge_index=torch.tensor([[0, 1, 2, 2, 3], [0, 0, 0, 1, 1]]))
        >>> data.num_hyperedges
        2
        >>> data.to_dense_incidence()
        tensor([[1., 1., 1., 0.],
                [0., 0., 1., 1.]])
    """

    def __init__(self, x: Optional[Tensor] = None,
                 hyperedge_index: Optional[Tensor] = None,
                 num_hyperedges: Optional[int] = None, **kwargs):
        if kwargs.get('num_nodes', None) is not None and \
                not isinstance(kwargs['num_nodes'], Tensor):
            kwargs['num_nodes'] = check_count('num_nodes',
                                              kwargs['num_nodes'], 0)
        super().__init__(x=x, **kwargs)
        if isinstance(num_hyperedges, Tensor) and num_hyperedges.numel() != 1:
            # Collated storage (InMemoryDataset / Batch): per-graph counts.
            self.hyperedge_index = hyperedge_index
            self.num_hyperedges = num_hyperedges
            return
        if isinstance(num_hyperedges, Tensor):  # one count
            num_hyperedges = check_count('num_hyperedges', num_hyperedges, 0)
        if hyperedge_index is not None:
            if not isinstance(hyperedge_index, Tensor):
                hyperedge_index = torch.as_tensor(hyperedge_index)
            if num_hyperedges is None:
                num_hyperedges = (int(hyperedge_index[1].max()) + 1
                                  if hyperedge_index.dim() == 2 and
                                  hyperedge_index.numel() > 0 else 0)
            self.hyperedge_index = hyperedge_index
            self.num_hyperedges = num_hyperedges  # checked by the setter
            self.validate()
        elif num_hyperedges is not None:
            self.num_hyperedges = num_hyperedges  # checked by the setter
            self.hyperedge_index = torch.zeros(2, 0, dtype=torch.long)

    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key == 'hyperedge_index':
            return torch.tensor([[self.num_nodes], [self.num_hyperedges]])
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key == 'hyperedge_index':
            return -1
        return super().__cat_dim__(key, value, *args, **kwargs)

    def validate(self, raise_on_error: bool = True) -> bool:
        r"""Checks the incidence, raising a :class:`ValueError` that names
        the problem (or returning :obj:`False` when ``raise_on_error`` is
        off).

        Checks: ``hyperedge_index`` is an integer tensor of shape
        :math:`(2, \text{nnz})`; node ids lie in :math:`[0, N)`; hyperedge
        ids in :math:`[0, \text{num\_hyperedges})`; no (node, hyperedge) pair
        repeats; ``x`` is 2-D with one row per node.
        """
        try:
            self._validate()
        except ValueError:
            if raise_on_error:
                raise
            return False
        return super().validate(raise_on_error)

    def _validate(self):
        index = self.hyperedge_index
        if index is None:
            return
        if not isinstance(index, Tensor) or index.dim() != 2 \
                or index.size(0) != 2:
            raise ValueError(f"'hyperedge_index' must have shape [2, nnz] "
                             f"(row 0 node, row 1 hyperedge), got "
                             f"{list(getattr(index, 'shape', []))}")
        if index.is_floating_point() or index.dtype == torch.bool:
            raise ValueError(f"'hyperedge_index' must hold integers, got "
                             f"{index.dtype}; convert it with .long()")
        x = self.x
        if x is not None and x.dim() != 2:
            raise ValueError(f"'x' must be 2-D [num_nodes, num_features], "
                             f"got {list(x.shape)}")
        num_edges = self.num_hyperedges
        if num_edges < 0:
            raise ValueError(f"'num_hyperedges' must be >= 0, got "
                             f"{num_edges}")
        if index.numel() == 0:
            return
        num_nodes = self.num_nodes
        lo, hi = int(index[0].min()), int(index[0].max())
        if lo < 0 or (num_nodes is not None and hi >= num_nodes):
            raise ValueError(f"'hyperedge_index' row 0 holds node ids in "
                             f"[{lo}, {hi}] but there are {num_nodes} nodes")
        lo, hi = int(index[1].min()), int(index[1].max())
        if lo < 0 or hi >= num_edges:
            raise ValueError(f"'hyperedge_index' row 1 holds hyperedge ids in "
                             f"[{lo}, {hi}] but num_hyperedges={num_edges}")
        key = index[1].long() * (hi + 1 + int(index[0].max())) \
            + index[0].long()
        if torch.unique(key).numel() != key.numel():
            raise ValueError("'hyperedge_index' lists the same (node, "
                             "hyperedge) pair twice")

    @property
    def num_hyperedges(self) -> int:
        """Number of hyperedges (a :math:`(B)` tensor once batched)."""
        value = self._store.get('num_hyperedges', None)
        if value is None:
            index = self._store.get('hyperedge_index', None)
            return 0 if index is None or index.numel() == 0 \
                else int(index[1].max()) + 1
        if isinstance(value, Tensor) and value.numel() == 1 \
                and not isinstance(self, Batch):
            return int(value)  # one sample sliced out of a collated dataset
        return value

    @num_hyperedges.setter
    def num_hyperedges(self, value):
        if value is not None and not isinstance(value, Tensor):
            # (a tensor: the per-graph counts of collated storage)
            value = check_count('num_hyperedges', value, 0)
        self._store['num_hyperedges'] = value

    def _is_batched(self) -> bool:
        value = self._store.get('num_hyperedges', None)
        return isinstance(self, Batch) or (isinstance(value, Tensor)
                                           and value.numel() != 1)

    def to_dense_incidence(self, dtype: torch.dtype = torch.float) -> Tensor:
        r"""The :math:`(\text{num\_hyperedges}, N)` 0/1 incidence matrix of
        one hypergraph.

        Raises:
            ValueError: on a batch; use :meth:`to_dense_batch_incidence`
                (padded, with masks) or ``batch.get_example(i)
                .to_dense_incidence()`` for graph ``i``.
        """
        if self._is_batched():
            raise ValueError(
                "to_dense_incidence() builds the matrix of one hypergraph, "
                "but this is a batch; call to_dense_batch_incidence() for a "
                "padded [B, max_hyperedges, max_nodes] tensor with masks, or "
                "batch.get_example(i).to_dense_incidence() for graph i")
        inc = torch.zeros(int(self.num_hyperedges), self.num_nodes,
                          dtype=dtype, device=self.hyperedge_index.device)
        inc[self.hyperedge_index[1], self.hyperedge_index[0]] = 1
        return inc

    def to_dense_batch_incidence(self, dtype: torch.dtype = torch.float
                                 ) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The incidence matrices of a batch, padded to the largest graph.

        Works on one hypergraph too (:math:`B = 1`).

        Args:
            dtype (torch.dtype, optional): dtype of the incidence.

        Returns:
            ``(incidence, edge_mask, node_mask)``: the 0/1 incidence with
            padding zeros, and which hyperedge rows and node columns are
            real.

        Shapes:
            - **incidence:** :math:`(B, E_{\max}, N_{\max})`
            - **edge_mask:** :math:`(B, E_{\max})`, bool
            - **node_mask:** :math:`(B, N_{\max})`, bool
        """
        index = self.hyperedge_index
        device = index.device
        if self._is_batched():
            edges = torch.as_tensor(self.num_hyperedges,
                                    device=device).view(-1).long()
            B = edges.numel()
            batch = getattr(self, 'batch', None)
            if batch is None:
                raise ValueError("to_dense_batch_incidence() needs the "
                                 "'batch' vector of a collated batch; "
                                 "build it with Batch.from_data_list() or "
                                 "a DataLoader")
            nodes = torch.bincount(batch.to(device), minlength=B)
        else:
            B = 1
            edges = torch.tensor([int(self.num_hyperedges)], device=device)
            nodes = torch.tensor([int(self.num_nodes)], device=device)
            batch = torch.zeros(int(self.num_nodes), dtype=torch.long,
                                device=device)
        node_ptr = torch.cumsum(nodes, 0) - nodes
        edge_ptr = torch.cumsum(edges, 0) - edges
        e_max = int(edges.max()) if B > 0 else 0
        n_max = int(nodes.max()) if B > 0 else 0
        inc = torch.zeros(B, e_max, n_max, dtype=dtype, device=device)
        node, edge = index.long()
        g = batch.to(device)[node]
        inc[g, edge - edge_ptr[g], node - node_ptr[g]] = 1
        edge_mask = torch.arange(e_max, device=device) < edges.view(-1, 1)
        node_mask = torch.arange(n_max, device=device) < nodes.view(-1, 1)
        return inc, edge_mask, node_mask

    def to_pyg(self) -> 'HyperGraphData':
        r"""This hypergraph as PyG's own
        :class:`~torch_geometric.data.hypergraph_data.HyperGraphData`:
        ``hyperedge_index`` becomes ``edge_index`` and ``hyperedge_attr``
        becomes ``edge_attr``; every other attribute is copied.

        PyG's class infers the number of hyperedges from the largest id, so
        trailing empty hyperedges would vanish and an empty incidence cannot
        be counted. The returned object therefore is a
        :class:`PyGHypergraphData`, a :class:`HyperGraphData` that also
        stores ``num_hyperedges`` and reports it as ``num_edges`` (so PyG's
        batching offsets hyperedge ids past trailing empty hyperedges).
        Pass ``num_edges=data.num_edges`` to
        :class:`~torch_geometric.nn.HypergraphConv` to keep them there too.

        Raises:
            ValueError: on a batch; convert its graphs one by one
                (``batch.to_data_list()``).
        """
        if self._is_batched():
            raise ValueError("to_pyg() converts one hypergraph, but this is "
                             "a batch; convert batch.to_data_list() one by "
                             "one and batch them again with PyG's "
                             "DataLoader")
        kwargs = {k: v for k, v in self.items()
                  if k not in ('hyperedge_index', 'num_hyperedges',
                               'hyperedge_attr', 'num_nodes')}
        if 'hyperedge_attr' in self:
            kwargs['edge_attr'] = self.hyperedge_attr
        out = PyGHypergraphData(edge_index=self.hyperedge_index,
                                num_hyperedges=int(self.num_hyperedges),
                                **kwargs)
        out.num_nodes = self.num_nodes
        return out

    @classmethod
    def from_pyg(cls, data: Data,
                 num_hyperedges: Optional[int] = None) -> 'HypergraphData':
        r"""Builds a :class:`HypergraphData` from PyG's
        :class:`~torch_geometric.data.hypergraph_data.HyperGraphData` (or
        any :class:`~torch_geometric.data.Data` whose ``edge_index`` holds
        an incidence, row 0 node, row 1 hyperedge), the inverse of
        :meth:`to_pyg`.

        Args:
            data (torch_geometric.data.Data): one hypergraph.
            num_hyperedges (int, optional): the number of hyperedges,
                counting trailing empty ones (default: ``data``'s
                ``num_hyperedges`` attribute when set, else the largest
                hyperedge id + 1).
        """
        if not isinstance(data, Data):
            raise TypeError(f"from_pyg() expects a torch_geometric Data / "
                            f"HyperGraphData, got {type(data).__name__}")
        if isinstance(data, Batch):
            raise ValueError("from_pyg() converts one hypergraph, but got a "
                             "batch; convert data.to_data_list() one by one")
        index = data.edge_index
        if index is None:
            index = torch.zeros(2, 0, dtype=torch.long)
        if num_hyperedges is None:
            stored = data._store.get('num_hyperedges', None)
            num_hyperedges = (check_count('num_hyperedges', stored, 0)
                              if stored is not None else
                              int(index[1].max()) + 1 if index.numel() else 0)
        kwargs = {k: v for k, v in data._store.items()
                  if k not in ('edge_index', 'num_hyperedges', 'edge_attr',
                               'num_nodes')}
        if data._store.get('edge_attr', None) is not None:
            kwargs['hyperedge_attr'] = data.edge_attr
        if 'x' not in kwargs or kwargs['x'] is None:
            n = data._store.get('num_nodes', None)
            kwargs['num_nodes'] = (check_count('num_nodes', n, 0)
                                   if n is not None else
                                   int(index[0].max()) + 1
                                   if index.numel() else 0)
        return cls(hyperedge_index=index, num_hyperedges=num_hyperedges,
                   **kwargs)

    @classmethod
    def from_dense_incidence(cls, incidence: Tensor, x: Optional[Tensor] = None,
                             **kwargs) -> 'HypergraphData':
        r"""Builds a hypergraph from a :math:`(E, N)` incidence matrix (any
        nonzero entry is a member). Empty rows stay hyperedges."""
        if incidence.dim() != 2:
            raise ValueError(f"'incidence' must be 2-D [num_hyperedges, "
                             f"num_nodes], got {list(incidence.shape)}")
        edge, node = incidence.nonzero(as_tuple=True)
        if x is not None and x.size(0) != incidence.size(1):
            raise ValueError(f"'x' has {x.size(0)} rows but the incidence has "
                             f"{incidence.size(1)} nodes")
        if x is None:
            kwargs.setdefault('num_nodes', incidence.size(1))
        return cls(x=x, hyperedge_index=torch.stack([node, edge]),
                   num_hyperedges=incidence.size(0), **kwargs)


class PyGHypergraphData(HyperGraphData):
    r"""PyG's :class:`~torch_geometric.data.hypergraph_data.HyperGraphData`
    with an explicit hyperedge count, as :meth:`HypergraphData.to_pyg`
    returns it.

    ``num_edges`` is the stored ``num_hyperedges`` (a :math:`(B)` tensor's
    sum once batched) instead of the largest hyperedge id + 1, so trailing
    empty hyperedges count and an empty incidence (no member at all) is a
    valid hypergraph with 0 hyperedges. ``num_nodes`` is the stored count
    when set (PyG's class replaces it by the largest node id + 1 whenever
    it happens to equal the number of hyperedges, losing trailing isolated
    nodes). Everything else is PyG's class.
    """

    @property
    def num_nodes(self) -> Optional[int]:
        """Number of nodes: the stored count, else ``x``'s rows, else the
        largest node id + 1."""
        value = self._store.get('num_nodes', None)
        if value is not None:
            return int(torch.as_tensor(value).sum())
        x = self._store.get('x', None)
        if isinstance(x, Tensor):
            return x.size(0)
        index = self._store.get('edge_index', None)
        if index is None or index.numel() == 0:
            return None
        return int(index[0].max()) + 1

    @num_nodes.setter
    def num_nodes(self, value: Optional[int]) -> None:
        self._store.num_nodes = value

    @property
    def num_edges(self) -> int:
        """Number of hyperedges: the stored ``num_hyperedges`` (summed over
        a batch), else the largest hyperedge id + 1, else 0."""
        value = self._store.get('num_hyperedges', None)
        if value is not None:
            return int(torch.as_tensor(value).sum())
        index = self._store.get('edge_index', None)
        if index is None or index.numel() == 0:
            return 0
        return int(index[1].max()) + 1


torch.serialization.add_safe_globals([HypergraphData, PyGHypergraphData])
