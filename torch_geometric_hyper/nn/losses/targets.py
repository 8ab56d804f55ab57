"""Checks of a matched loss's target: the incidence's shape and ids, and
the per-graph hyperedge counts against the nodes' graphs."""
from typing import Optional

import torch
from torch import Tensor

from torch_geometric_hyper.nn.checks import sync_checks_allowed


def _check_target(index: Tensor, num_nodes: int, total: int,
                  batch: Optional[Tensor] = None,
                  counts: Optional[Tensor] = None):
    if index.dim() != 2 or index.size(0) != 2:
        raise ValueError(f"target 'hyperedge_index' must have shape [2, "
                         f"nnz], got {list(index.shape)}")
    if index.is_floating_point():
        raise ValueError("target 'hyperedge_index' must hold integers")
    if index.numel() == 0 or not sync_checks_allowed(index):
        return  # value checks need a host sync: CPU only by default
    if int(index[0].min()) < 0 or int(index[0].max()) >= num_nodes:
        raise ValueError(f"target 'hyperedge_index' refers to nodes outside "
                         f"[0, {num_nodes})")
    if int(index[1].min()) < 0 or int(index[1].max()) >= total:
        raise ValueError(f"target 'hyperedge_index' refers to hyperedges "
                         f"outside [0, {total}) (the sum of "
                         f"num_hyperedges)")
    if batch is not None and counts is not None:
        _check_counts_agree(index, batch, counts)


def _check_counts_agree(index: Tensor, batch: Tensor, counts: Tensor):
    """Each graph's hyperedges, as ``counts`` number them, hold nodes of
    that graph only (a hyperedge without nodes is allowed)."""
    ends = torch.cumsum(counts.to(index.device), 0)
    edge_graph = torch.searchsorted(ends, index[1], right=True)
    node_graph = batch.to(index.device)[index[0]]
    wrong = (edge_graph != node_graph).nonzero().view(-1)
    if wrong.numel() > 0:
        k = int(wrong[0])
        raise ValueError(
            f"'num_hyperedges' disagrees with the target: by the counts "
            f"{counts.tolist()[:8]}{'...' if counts.numel() > 8 else ''}, "
            f"hyperedge {int(index[1, k])} belongs to graph "
            f"{int(edge_graph[k])}, but its node {int(index[0, k])} is in "
            f"graph {int(node_graph[k])} ({wrong.numel()} such "
            f"incidence(s)); give each graph's number of hyperedges, in "
            f"order")

