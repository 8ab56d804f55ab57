r"""Validation metrics of the three tasks, as the ``evaluate`` argument of
:func:`~torch_geometric_hyper.train.fit`.

Each evaluator is called as ``evaluate(model, batches)`` on one process's
share of a dataset and returns per-set means (or :class:`Ratio` for pooled
metrics) with an ``'f1'`` entry for model selection. Models with slots get
each set's slot noise from the set's index (:func:`eval_slots`), so the
metrics do not depend on the batch size or the number of processes.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from torch_geometric_hyper.metrics import (
    PartitionMetrics,
    adjacency_metrics,
    decode_partition,
    evaluate_hyperedges,
    target_partition,
)
from torch_geometric_hyper.nn import AdjacencyBCELoss, pair_labels
from torch_geometric_hyper.nn.base import RecurrentModel
from torch_geometric_hyper.train.context import Ratio
from torch_geometric_hyper.train.slots import eval_slots


def _forward(model, batch, num_iterations, seed, gen):
    kwargs = {}
    if isinstance(model, RecurrentModel) and num_iterations is not None:
        kwargs['num_iterations'] = num_iterations
    kwargs.update(eval_slots(model, batch, seed, gen))
    return model(batch.x, batch.batch, batch.num_graphs, **kwargs)


def hyperedge_evaluator(edge_size: Optional[int] = None,
                        loss_fn: Optional[Callable] = None,
                        num_iterations: Optional[int] = None,
                        seed: int = 0) -> Callable:
    r"""Hyperedge F1 of a set-to-hypergraph model (e.g. convex hulls).

    Returns ``evaluate(model, batches)`` whose result holds the per-set
    means of the strict F1 (``'f1'``), the reference code's count
    (``'f1_reference'``), the strict F1 of the deduplicated prediction
    (``'f1_dedup'``), the duplicates per set and, with ``loss_fn``, the
    loss (see :func:`~torch_geometric_hyper.metrics.evaluate_hyperedges`).

    Args:
        edge_size (int, optional): nodes per hyperedge (top incidences of
            each slot); default: threshold decoding.
        loss_fn (callable, optional): also report its mean.
        num_iterations (int, optional): refinement steps of recurrent
            models (default: the model's).
        seed (int, optional): seed of the slot noise.
    """
    def evaluate(model, batches):
        gen = None
        f1, f1_ref, f1_dedup, dup, losses = [], [], [], [], []
        for batch in batches:
            if gen is None:
                gen = torch.Generator(device=batch.x.device).manual_seed(seed)
            pred = _forward(model, batch, num_iterations, seed, gen)
            if loss_fn is not None:
                losses.append(float(loss_fn(pred, batch)) * batch.num_graphs)
            res = evaluate_hyperedges(pred, batch, edge_size=edge_size)
            f1.append(res['f1'])
            f1_ref.append(res['f1_reference'])
            f1_dedup.append(res['f1_unique'])
            dup.append(res['duplicates'])
        n = sum(t.numel() for t in f1)
        out = {'f1': float(torch.cat(f1).double().mean()),
               'f1_reference': float(torch.cat(f1_ref).double().mean()),
               # strict F1 of the prediction decoded without copies
               # (to_hyperedge_index(unique=True))
               'f1_dedup': float(torch.cat(f1_dedup).double().mean()),
               'duplicates': float(torch.cat(dup).double().mean())}
        if loss_fn is not None:
            out['loss'] = sum(losses) / n
        return out
    return evaluate


def adjacency_evaluator() -> Callable:
    r"""Edge metrics of a set-to-graph model (e.g. Delaunay edges).

    Per-graph precision, recall, F1 and accuracy averaged over the graphs,
    under the pair convention and the reference code's
    (``'..._reference'``, see
    :func:`~torch_geometric_hyper.metrics.adjacency_metrics`); the
    candidate F1 and coverage (the fraction of target edges among the
    candidates) and the BCE per candidate pair, pooled over pairs.
    """
    loss_fn = AdjacencyBCELoss()

    def evaluate(model, batches):
        per_graph, cand, loss, pairs_seen = {}, [0, 0, 0, 0], 0.0, 0
        for data in batches:
            pred = model(data.x, data.batch, data.num_graphs)
            pairs = loss_fn.reduction_weight(pred, data)  # a mean over pairs
            loss += float(loss_fn(pred, data)) * pairs
            pairs_seen += pairs
            for conv, suffix in (('pairs', ''), ('reference', '_reference')):
                m = adjacency_metrics(pred.edge_index(), data.edge_index,
                                      data.batch, data.num_graphs,
                                      reduce=False, convention=conv)
                for k, v in m.items():
                    per_graph.setdefault(k + suffix, []).append(v)
            lab = pair_labels(pred.pair_index, data.edge_index,
                              pred.num_nodes).bool()
            pos = pred.adjacency > 0.5
            cand[0] += int((pos & lab).sum())
            cand[1] += int((pos & ~lab).sum())
            cand[2] += int((~pos & lab).sum())
            cand[3] += data.edge_index.size(1) // 2 - int(lab.sum())
        out = {k: float(torch.cat(v).double().mean())
               for k, v in per_graph.items()}
        tp, fp, fn, uncovered = cand
        out['candidate_f1'] = Ratio(2 * tp, 2 * tp + fp + fn)
        out['coverage'] = Ratio(tp + fn, tp + fn + uncovered)
        out['loss'] = Ratio(loss, pairs_seen)  # BCE per candidate pair
        return out
    return evaluate


def partition_metrics(model, batches, num_iterations: Optional[int] = None,
                      seed: int = 0) -> dict:
    r"""Per-flavour partition metrics (F1, RI, ARI; see
    :class:`~torch_geometric_hyper.metrics.PartitionMetrics`) of a model
    over ``batches`` that carry ``flavour``; a pair model (Set2Graph) is
    decoded by the connected components of its pair adjacency."""
    metrics, gen = PartitionMetrics(), None
    for batch in batches:
        if gen is None:
            gen = torch.Generator(device=batch.x.device).manual_seed(seed)
        pred = _forward(model, batch, num_iterations, seed, gen)
        metrics.update(decode_partition(pred),
                       target_partition(batch.hyperedge_index,
                                        batch.num_nodes),
                       batch.batch, batch.flavour, batch.num_graphs)
    return metrics.compute()


def partition_evaluator(num_iterations: Optional[int] = None,
                        seed: int = 0) -> Callable:
    r"""F1, RI and ARI of a partition model (e.g. jets' vertices) over all
    flavours (:func:`partition_metrics`)."""
    def evaluate(model, batches):
        res = partition_metrics(model, batches, num_iterations, seed)['all']
        return {k: res[k] for k in ('f1', 'ri', 'ari')}
    return evaluate
