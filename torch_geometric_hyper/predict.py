r"""Predict hyperedges for your own sets with a trained model.

.. code-block:: bash

    python -m torch_geometric_hyper.predict --checkpoint runs/convex_hull/best.pt \
        --input sets.npz --output hyperedges.npz

The checkpoint is a file of :func:`~torch_geometric_hyper.nn.save_model` or
a ``best.pt`` / ``last.pt`` of the example scripts (both store the model's
configuration beside its weights). The input is a ``.npz`` file or a nodes
CSV (formats in :mod:`torch_geometric_hyper.datasets.own_sets`; hyperedges
in the input are ignored). The output, ``.npz`` or ``.csv`` by its
extension, holds the predicted hyperedges of every set in the same format
(plus, in ``.npz``, ``existence``: each hyperedge's existence probability).

A model trained on small sets runs on larger ones: ``--max-edges 2n-4``
gives each batch as many slots as a hull of its largest set has facets
(the slots are i.i.d. draws, so their count is free at prediction time),
``--iterations`` runs more refinement steps and ``--candidates`` changes
the candidate nodes per slot of a sparse refiner:

.. code-block:: bash

    python -m torch_geometric_hyper.predict --checkpoint hull_n100.pt \
        --input big_sets.npz --output hyperedges.npz --max-edges 2n-4 \
        --iterations 16 --batch-size 1
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from typing import List, Optional

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from torch_geometric_hyper.utils.checkpoint import load_checkpoint


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='python -m torch_geometric_hyper.predict',
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--checkpoint', required=True,
                   help='model file (save_model) or an example\'s best.pt')
    p.add_argument('--input', required=True,
                   help='sets: .npz, or a nodes .csv')
    p.add_argument('--output', required=True,
                   help='hyperedges file: .npz or .csv')
    p.add_argument('--edge-size', type=int, default=None,
                   help='nodes per hyperedge (top incidences of each slot); '
                   'default: the checkpoint\'s, else threshold decoding')
    p.add_argument('--threshold', type=float, default=0.5,
                   help='incidence threshold when no edge size is set')
    p.add_argument('--existence-threshold', type=float, default=0.5)
    p.add_argument('--keep-duplicates', action='store_true',
                   help='keep slots that decode to the same node set')
    p.add_argument('--iterations', type=int, default=None,
                   help='refinement steps (recurrent models; default: the '
                   'model\'s)')
    p.add_argument('--max-edges', default=None, metavar='M',
                   help='slots per set of a model with slots: a number, or '
                   'a linear rule of the largest set size n in the batch '
                   '(e.g. "2n-4", the facets of a 3-D hull); default: the '
                   'model\'s')
    p.add_argument('--candidates', type=int, default=None, metavar='K',
                   help='candidate nodes per slot of a sparse refiner '
                   '(default: the model\'s)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--device', default='cpu')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the slot initialisation')
    return p.parse_args(argv)


def _load_checkpoint(path: str, device):
    from torch_geometric_hyper.nn import load_model
    try:
        ckpt = load_checkpoint(path, map_location=device)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    try:
        model, meta = load_model(ckpt)
    except ValueError as err:
        raise SystemExit(f"error: {path}: {err}")
    if isinstance(ckpt, dict) and 'edge_size' not in meta:
        args = ckpt.get('args') or {}
        if 'dim' in args and 'num_points' in args:  # convex-hull example
            meta['edge_size'] = int(args['dim'])
    return model.to(device), meta


def _read_input(path: str):
    from torch_geometric_hyper.datasets import (
        HypergraphSets,
        read_sets_csv,
        read_sets_npz,
    )
    try:
        if path.endswith('.npz'):
            sets = read_sets_npz(path)
        elif path.endswith('.csv'):
            sets = read_sets_csv(path)
        else:
            raise ValueError(f"{path}: the input must be a .npz or .csv "
                             f"file")
        return HypergraphSets([(x, None) for x, _ in sets], source=path)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}")


_RULE = re.compile(
    r'^\s*(\d+(?:\.\d*)?)?\s*\*?\s*n\s*(?:([+-])\s*(\d+))?\s*$')


def slot_count(rule, n: int) -> int:
    r"""The slot count of ``rule`` for a largest set of ``n`` nodes:
    ``rule`` is an int, a number as a string (``'196'``), or a linear rule
    of ``n`` (``'2n-4'``, ``'2*n'``, ``'n+10'``); at least 1.

    Raises:
        ValueError: on anything else.
    """
    if isinstance(rule, int) and not isinstance(rule, bool):
        value = rule
    elif isinstance(rule, str) and rule.strip().isdigit():
        value = int(rule)
    else:
        match = _RULE.match(rule) if isinstance(rule, str) else None
        if match is None:
            raise ValueError(f"slot count must be a number or a rule like "
                             f"'2n-4', got {rule!r}")
        scale = float(match.group(1)) if match.group(1) else 1.0
        offset = int(match.group(3) or 0) * (-1 if match.group(2) == '-'
                                             else 1)
        value = int(round(scale * n)) + offset
    if value < 1:
        raise ValueError(f"slot count {rule!r} gives {value} slots for sets "
                         f"of {n} nodes; it must give at least 1")
    return value


@torch.no_grad()
def predict(model, dataset, edge_size: Optional[int] = None,
            threshold: float = 0.5, existence_threshold: float = 0.5,
            unique: bool = True, iterations: Optional[int] = None,
            batch_size: int = 64, device='cpu', seed: int = 0,
            max_edges=None, num_candidates: Optional[int] = None):
    r"""Predicted hyperedges of every set of ``dataset``.

    ``max_edges`` (a model with slots: an int or a rule such as ``'2n-4'``,
    see :func:`slot_count`, of the batch's largest set) and
    ``num_candidates`` (a sparse refiner) override the model's for this
    call; the model is left as it was.

    Returns:
        ``(sets, existence)``: per set, a list of node-index lists (local to
        the set), and per set the existence probability of each (zeros for
        models without an existence gate).
    """
    model.eval()
    in_channels = getattr(model, 'in_channels', None)
    if in_channels is not None and dataset.num_features != in_channels:
        raise ValueError(f"the model takes {in_channels} features per node, "
                         f"the input sets have {dataset.num_features}")
    if max_edges is not None:
        slot_count(max_edges, 10**6)  # refuses a malformed rule early
        if getattr(model, 'slot_prior', None) is None:
            raise ValueError("max_edges: the model has no slots")
    if num_candidates is not None and \
            getattr(model, 'num_candidates', None) is None:
        raise ValueError("num_candidates: the model has no sparse "
                         "candidates (HypergraphRefiner(num_candidates=K))")
    old = (getattr(model, 'max_edges', None),
           getattr(model, 'num_candidates', None))
    try:
        if num_candidates is not None:
            model.num_candidates = int(num_candidates)
        return _predict(model, dataset, edge_size, threshold,
                        existence_threshold, unique, iterations, batch_size,
                        device, seed, max_edges)
    finally:
        if max_edges is not None:
            model.max_edges = old[0]
        if num_candidates is not None:
            model.num_candidates = old[1]


def _predict(model, dataset, edge_size, threshold, existence_threshold,
             unique, iterations, batch_size, device, seed, max_edges):
    # predict() for a model already checked
    from torch_geometric_hyper.data import unique_hyperedges
    from torch_geometric_hyper.metrics import hyperedge_sets
    from torch_geometric_hyper.nn import HypergraphRefiner, Set2Graph
    from torch_geometric_hyper.nn.base import RecurrentModel
    gen = torch.Generator(device=device).manual_seed(seed)
    out_sets: List[list] = []
    out_exist: List[np.ndarray] = []
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = batch.to(device)
        if max_edges is not None:
            model.max_edges = slot_count(
                max_edges, int((batch.ptr[1:] - batch.ptr[:-1]).max()))
        kwargs = {}
        if isinstance(model, RecurrentModel) and iterations is not None:
            kwargs['num_iterations'] = iterations
        if isinstance(model, HypergraphRefiner) or \
                not isinstance(model, (Set2Graph, RecurrentModel)):
            kwargs['generator'] = gen
        pred = model(batch.x, batch.batch, batch.num_graphs, **kwargs)
        B = batch.num_graphs
        if hasattr(pred, 'pair_index'):  # a graph: edges as 2-node sets
            e = pred.edge_index(threshold)
            e = e[:, e[0] < e[1]]
            index = torch.stack([e.flatten(), torch.arange(
                e.size(1), device=e.device).repeat(2)])
            edge_graph = batch.batch[e[0]]
            g = edge_graph.cpu().numpy()
            exist = [np.zeros(int((g == b).sum()), np.float32)
                     for b in range(B)]
        else:
            index, edge_graph = pred.to_hyperedge_index(
                threshold, edge_size, existence_threshold)
            score = torch.zeros(edge_graph.numel(), device=index.device)
            if hasattr(pred, 'existence_logit'):
                # hyperedge ids follow the ascending ids of decoded slots
                slots = torch.unique(_decoded_slots(
                    pred, threshold, edge_size, existence_threshold))
                if slots.numel() == edge_graph.numel():
                    score = pred.existence[slots]
            if unique:
                index, keep = unique_hyperedges(index, edge_graph.numel(),
                                                edge_graph)
                edge_graph, score = edge_graph[keep], score[keep]
            g = edge_graph.cpu().numpy()
            p = score.float().cpu().numpy()
            exist = [p[g == b] for b in range(B)]
        sets = hyperedge_sets(index, edge_graph, batch.ptr, B)
        out_sets += [[list(e) for e in s] for s in sets]
        out_exist += exist
    return out_sets, out_exist


def _decoded_slots(pred, threshold, edge_size, existence_threshold):
    # the slots to_hyperedge_index keeps, in its order (ascending ids)
    exists = pred.existence > existence_threshold
    if edge_size is None:
        node, slot = pred.incidence_index
        keep = (pred.incidence > threshold) & exists[slot]
        return slot[keep]
    return torch.nonzero(exists).view(-1)


def write_output(path: str, sets: List[list], existence, num_nodes):
    from torch_geometric_hyper.datasets import write_sets_npz
    if path.endswith('.npz'):
        flat = np.concatenate(existence) if existence else np.zeros(0)
        # x carries no information here: one zero column per node
        write_sets_npz(path, [(np.zeros((n, 1)), s)
                              for n, s in zip(num_nodes, sets)],
                       existence=flat.astype(np.float32))
    elif path.endswith('.csv'):
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['set', 'hyperedge', 'node'])
            for s, hyper in enumerate(sets):
                for e, members in enumerate(hyper):
                    for i in members:
                        w.writerow([s, e, i])
        os.replace(tmp, path)
    else:
        raise SystemExit(f"error: {path}: the output must be a .npz or .csv "
                         f"file")


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    model, meta = _load_checkpoint(args.checkpoint, device)
    dataset = _read_input(args.input)
    edge_size = args.edge_size if args.edge_size is not None \
        else meta.get('edge_size')
    try:
        sets, exist = predict(model, dataset, edge_size, args.threshold,
                              args.existence_threshold,
                              not args.keep_duplicates, args.iterations,
                              args.batch_size, device, args.seed,
                              args.max_edges, args.candidates)
    except ValueError as err:
        raise SystemExit(f"error: {args.input}: {err}")
    num_nodes = [int(d.num_nodes) for d in dataset]
    write_output(args.output, sets, exist, num_nodes)
    total = sum(len(s) for s in sets)
    print(f"{len(sets)} sets, {total} hyperedges "
          f"({total / max(1, len(sets)):.1f} per set) -> {args.output}",
          file=sys.stderr)


if __name__ == '__main__':
    main()
