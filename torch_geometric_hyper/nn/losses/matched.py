r"""Hungarian-matched incidence loss (:class:`MatchedIncidenceLoss`)."""
from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.nn import Module

from torch_geometric_hyper import matching as _matching
from torch_geometric_hyper.matching import (
    linear_assignment,
    resolve_backend,
    sparse_linear_assignments,
)
from torch_geometric_hyper.nn.losses.assignment import (
    check_assignment,
    columns_on_device,
    columns_on_host,
)
from torch_geometric_hyper.nn.losses.assignment import (
    to_device as _to_device,
)
from torch_geometric_hyper.nn.checks import check_reduction
from torch_geometric_hyper.nn.kernels.incidence import count_values
from torch_geometric_hyper.nn.losses.costs import (  # noqa: F401
    _at_least_float32,
    _ClampedLogSigmoids,
    _clamped_log_sigmoids,
    dense_cost_terms,
    matched_loss,
)
from torch_geometric_hyper.nn.losses.membership import (
    members,
    membership_join,
)
from torch_geometric_hyper.nn.losses.targets import _check_target
from torch_geometric_hyper.nn.prediction import HypergraphPrediction
from torch_geometric_hyper.utils.validation import check_int

__all__ = ['MatchedIncidenceLoss']


def _in_full_precision(method):
    # The matched loss runs outside autocast, on logits of at least float32
    # (see _at_least_float32): its costs decide the assignment, and CUDA
    # has no bfloat16 sparse product.
    @functools.wraps(method)
    def wrapper(self, pred, *args, **kwargs):
        if not isinstance(pred, HypergraphPrediction):  # over_steps
            pred = list(pred)
        first = pred if isinstance(pred, HypergraphPrediction) else (
            pred[0] if pred else None)
        if first is None:
            return method(self, pred, *args, **kwargs)
        try:
            no_autocast = torch.autocast(first.incidence_logit.device.type,
                                         enabled=False)
        except RuntimeError:  # a device without autocast (e.g. 'meta')
            no_autocast = contextlib.nullcontext()
        with no_autocast:
            return method(self, pred, *args, **kwargs)
    return wrapper


class MatchedIncidenceLoss(Module):
    r"""Permutation-invariant incidence loss of `"Pruning Edges and Gradients
    to Learn Hypergraphs from Larger Sets"
    <https://arxiv.org/abs/2106.13919>`_.

    Each graph's :math:`t \le m` target hyperedges are padded to :math:`m`
    all-zero rows, and every row gets an existence column (1 for real
    hyperedges, 0 for padding). Predicted slot :math:`p` is the row
    :math:`[I_{p,1..n},\ g_p]`. The cost of pairing slot :math:`p` with
    target row :math:`q` is the mean binary cross-entropy over the
    :math:`n + 1` columns,

    .. math::
        C_{pq} = -\frac{1}{n+1}\Big(\sum_{i=1}^n T_{qi}\log I_{pi}
        + (1 - T_{qi})\log(1 - I_{pi}) + e_q \log g_p
        + (1 - e_q)\log(1 - g_p)\Big),

    and the loss is the mean matched cost
    :math:`\frac1m \min_\pi \sum_p C_{p,\pi(p)}` (Hungarian matching per
    graph), averaged over the graphs. Logarithms are clamped at
    :math:`-100` as :func:`torch.nn.functional.binary_cross_entropy` does;
    candidate pairs missing from the pruned incidence count as
    :math:`I = 0`.

    The cost never materialises the :math:`O(m^2 n)` broadcast: with
    :math:`\ell^+ = \log I`, :math:`\ell^- = \log(1 - I)`,

    .. math::
        \sum_i T_{qi}\ell^+_{pi} + (1-T_{qi})\ell^-_{pi}
        = \sum_i \ell^-_{pi} + \sum_{i \in q} (\ell^+_{pi} - \ell^-_{pi}),

    a row sum plus a gather over the target's members, :math:`O(m\,t)`
    memory per graph. All padding rows cost the same, so the assignment is
    solved as a rectangular :math:`t \times m` problem.

    Args:
        reduction (str, optional): ``'mean'`` (default, mean over graphs of
            the per-graph mean matched cost), ``'sum'`` (sum of all matched
            costs) or ``'none'`` (per-graph mean matched cost, shape
            :math:`(B)`).
        backend (str, optional): assignment solver, see
            :func:`torch_geometric_hyper.matching.linear_assignment`
            (default ``'auto'``: on a CUDA device with the optional package
            torch-linear-assignment, solved there; else lapx's batch
            solver when lapx is installed, else scipy; see
            :func:`~torch_geometric_hyper.matching.resolve_backend`).
        matching (str, optional): ``'dense'`` (the :math:`t \times m`
            cost), ``'sparse'`` (only the (target, slot) pairs that share a
            candidate member, solved by
            :func:`torch_geometric_hyper.matching.sparse_linear_assignment`:
            :math:`O(t\,K)` instead of :math:`O(t\,m)` for a pruned
            incidence with :math:`K` candidates per slot) or ``'auto'``
            (default: sparse where those pairs are fewer than an eighth
            of :math:`t\,m` and either the optional package ortools is
            installed and :math:`m \ge` ``FLOW_MIN_SLOTS``, or the dense
            cost would hold at least ``SPARSE_MIN_ENTRIES`` entries and
            :math:`m \ge` ``SPARSE_MIN_SLOTS``). The loss value and
            gradient are the same for the same assignment. With ortools
            the sparse problem is solved exactly as a min-cost flow, 12-60x
            faster than the dense solvers at :math:`m` = 1,000-4,000;
            without it the sparse solver saves memory, not time, and is
            not always exact (see :func:`~torch_geometric_hyper.matching.
            sparse_linear_assignment`).
        num_workers (int, optional): worker processes that solve the
            graphs' sparse assignments side by side with the min-cost flow
            (default ``None``: in this process; see
            :func:`torch_geometric_hyper.matching.sparse_linear_assignments`).
            Worth it from a few hundred slots per graph, on the cores torch
            leaves idle while the host solves.
        assignment (str, optional): how :meth:`over_steps` matches the
            predictions :math:`s = 1, \dots, B` of an update (its
            back-propagated steps), with :math:`C^{(s)}` the cost of
            prediction :math:`s`: ``'per_step'`` (default, each on its
            own, :math:`\pi_s = \arg\min_\pi \sum_p C^{(s)}_{p\pi(p)}`) or
            ``'per_update'`` (one assignment per graph for all of them, on
            the summed costs, as HGPflow's consistent matching:
            :math:`\pi = \arg\min_\pi \sum_s \sum_p C^{(s)}_{p\pi(p)}`,
            the assignment that minimises the mean loss over the steps,
            :math:`\frac1B \sum_s \frac1m \sum_p C^{(s)}_{p\pi(p)}`).
            The two agree for one prediction, and a single call
            (:meth:`forward`) always matches on its own costs. Dense
            matching only (``matching='auto'`` then stays dense).

    The per-graph target counts are needed on the host (to split the
    assignment problems): a target object that carries them as a list,
    ``num_hyperedges_host`` (the training loop sets it before moving a
    batch to the device), saves the synchronisation that reads them.

    Shapes:
        - **input:** a :class:`HypergraphPrediction`, target
          ``hyperedge_index`` :math:`(2, \text{nnz}_T)` with batched node and
          hyperedge ids, ``num_hyperedges`` :math:`(B)`
        - **output:** scalar (or :math:`(B)` with ``reduction='none'``)
    """

    #: ``matching='auto'`` goes sparse only from this many slots per graph
    SPARSE_MIN_SLOTS = 150
    #: and from this many (target, slot) costs in the batch (the dense
    #: cost's float64 host copy alone is 8 bytes each): without ortools the
    #: sparse solver is slower than the dense one on hull costs, so it is a
    #: way to fit, not to speed up.
    SPARSE_MIN_ENTRIES = 64 * 2 ** 20
    #: With the optional package ortools, the sparse matching is solved as
    #: a min-cost flow, and ``matching='auto'`` goes sparse from this many
    #: slots per graph: about where the flow overtakes the dense solvers on
    #: a hull loss's forward and backward (pruned candidates, K=16), and
    #: pulls further ahead as m grows.
    FLOW_MIN_SLOTS = 300

    def __init__(self, reduction: str = 'mean', backend: str = 'auto',
                 matching: str = 'auto', num_workers: Optional[int] = None,
                 assignment: str = 'per_step'):
        super().__init__()
        check_reduction(reduction)
        self.assignment = check_assignment(assignment)
        if assignment == 'per_update' and matching == 'sparse':
            raise ValueError("assignment='per_update' needs dense costs: "
                             "use matching='dense' or 'auto'")
        if matching not in ('auto', 'dense', 'sparse'):
            raise ValueError(f"'matching' must be 'auto', 'dense' or "
                             f"'sparse', got '{matching}'")
        if num_workers is not None:
            try:
                num_workers = check_int('num_workers', num_workers, 0)
            except ValueError:
                raise ValueError(f"'num_workers' must be an integer of at "
                                 f"least 0 (or None: solve in this "
                                 f"process), got {num_workers!r}") from None
        self.reduction = reduction
        self.backend = backend
        self.matching = matching
        self.num_workers = None if num_workers is None else int(num_workers)
        self._compiled = None

    def compile(self, *args, **kwargs) -> None:
        r"""Compiles the loss's device half with :func:`torch.compile`
        (``dynamic=True`` unless given): the costs before the assignment
        (:func:`~torch_geometric_hyper.nn.losses.costs.dense_cost_terms`)
        and the loss after it
        (:func:`~torch_geometric_hyper.nn.losses.costs.matched_loss`), each
        one graph, forward and backward. The assignment stays where the
        backend solves it, and the sparse matching stays eager. Same values
        as eager up to rounding. :func:`~torch_geometric_hyper.train.fit`
        calls it where it compiles the model (on CUDA by default)."""
        kwargs.setdefault('dynamic', True)
        self._compiled = (torch.compile(dense_cost_terms, *args, **kwargs),
                          torch.compile(matched_loss, *args, **kwargs))

    @_in_full_precision
    def forward(self, pred: HypergraphPrediction, hyperedge_index,
                num_hyperedges: Optional[Union[Tensor, int]] = None,
                return_assignment: bool = False):
        r"""
        Args:
            pred (HypergraphPrediction): the prediction.
            hyperedge_index (torch.Tensor or HypergraphData): target
                incidence (or a (batched) :class:`HypergraphData` holding it
                and ``num_hyperedges``), row 0 node
                (global id), row 1 hyperedge (ids of graph :math:`g` follow
                those of graph :math:`g-1`, as PyG batching makes them).
            num_hyperedges (torch.Tensor or int, optional): target
                hyperedges per graph (default: all in one graph).
            return_assignment (bool, optional): also return the slot (global
                id) matched to each target hyperedge.
        """
        ctx = self._prepare(pred, hyperedge_index, num_hyperedges)
        if ctx['sparse']:
            matched, cols = self._sparse_matched(*ctx['args'])
        else:
            reduced = ctx['reduced']
            if resolve_backend(self.backend, ctx['m'],
                               device=reduced.device) == 'torch':
                cols = columns_on_device([reduced], ctx['counts'].numpy(),
                                         ctx['t_graph'], 'torch', False)[0]
            else:
                cols = _to_device(self._assign(reduced.detach(),
                                               ctx['counts']), reduced.device)
            matched = reduced[torch.arange(reduced.size(0),
                                           device=reduced.device), cols]
        loss = self._finish(ctx, matched)
        if return_assignment:
            return loss, ctx['t_graph'] * ctx['m'] + cols
        return loss

    @_in_full_precision
    def over_steps(self, predictions, data):
        r"""The mean of the loss over several predictions of one batch (the
        :math:`B` back-propagated steps of an update in backprop with
        skips), with every assignment solved from **one** host transfer,
        and the loss value read from that same transfer.

        The costs of all the predictions, and their padding terms, travel to
        the host together; the host solves the :math:`B \times` graphs
        problems (on several threads) and sums the matched costs in float64,
        so the trainer can check the value before the optimizer step
        without a second synchronisation. Falls back to one call per
        prediction (and a read of the value) where the sparse matching is
        used.

        Args:
            predictions (list of HypergraphPrediction): predictions for the
                same target.
            data (HypergraphData): the (batched) target, with
                ``hyperedge_index`` and ``num_hyperedges``.

        Returns:
            (torch.Tensor, float): the mean loss (differentiable) and its
            value on the host (NaN or infinite exactly when the loss is).
        """
        predictions = list(predictions)
        if not predictions:
            raise ValueError('over_steps needs at least one prediction')
        if self.reduction == 'none':
            raise ValueError("over_steps gives a scalar loss: use "
                             "reduction='mean' or 'sum', not 'none'")
        shared = {}
        ctxs = [self._prepare(p, data, None, shared) for p in predictions]
        if ctxs[0]['sparse']:  # one transfer per prediction (same target)
            loss = sum(self._finish(c, self._sparse_matched(*c['args'])[0])
                       for c in ctxs) / len(ctxs)
            return loss, float(loss.detach())
        B, m = ctxs[0]['B'], ctxs[0]['m']
        counts = ctxs[0]['counts'].numpy()
        total = int(counts.sum())
        device = ctxs[0]['reduced'].device
        per_update = self.assignment == 'per_update'
        if resolve_backend(self.backend, m, device=device) == 'torch':
            # solved where the costs are: the value read is the one sync
            cols_d = columns_on_device([c['reduced'] for c in ctxs], counts,
                                       ctxs[0]['t_graph'], 'torch',
                                       per_update)
            loss = sum(self._finish(c, c['reduced'][
                torch.arange(total, device=device), cols_d[k % len(cols_d)]])
                for k, c in enumerate(ctxs)) / len(ctxs)
            return loss, float(loss.detach())
        # the costs in their own dtype (the solvers and the float64 sums
        # below convert exactly), in one transfer: the one synchronisation
        tensors = [t.detach().reshape(-1) for c in ctxs
                   for t in (c['reduced'], c['cost_pad'])]
        host = np.split(torch.cat(tensors).cpu().numpy(),
                        np.cumsum([t.numel() for t in tensors])[:-1])
        if not all(np.isfinite(h).all() for h in host):
            # only a NaN logit gives a non-finite cost, and it reaches the
            # padding cost of its slot, which every loss sums: the loss is
            # NaN whatever the assignment, so none is solved
            loss = sum(c['cost_pad'].sum() for c in ctxs) * float('nan')
            return loss, float('nan')
        t_graph = np.repeat(np.arange(B), counts)
        costs = [h.reshape(total, m) for h in host[0::2]]
        pads = [h.reshape(B, m).astype(np.float64) for h in host[1::2]]
        # (the solver is looked up here, so a benchmark can wrap it)
        step_cols = columns_on_host(costs, counts, self.backend, per_update,
                                    linear_assignment)
        cols_d = _to_device(np.ascontiguousarray(step_cols), device)
        if per_update:  # the one assignment for every step
            step_cols = np.broadcast_to(step_cols, (len(ctxs), total))
            cols_d = cols_d.expand(len(ctxs), total)
        losses, values = [], []
        rows_h = np.arange(total)
        for ctx, cost, pad, col, col_d in zip(ctxs, costs, pads, step_cols,
                                              cols_d):
            if self._compiled is not None:
                losses.append(self._compiled[1](
                    ctx['cost_pad'], ctx['reduced'], col_d, ctx['t_graph'],
                    B, m, self.reduction))
            else:
                matched = ctx['reduced'][torch.arange(total, device=device),
                                         col_d]
                losses.append(self._finish(ctx, matched))
            per_graph = pad.sum(1) + np.bincount(
                t_graph, cost[rows_h, col], minlength=B)
            values.append(float(per_graph.sum()) if self.reduction == 'sum'
                          else float(per_graph.mean()) / m)
        return sum(losses) / len(losses), sum(values) / len(values)

    def _prepare(self, pred: HypergraphPrediction, hyperedge_index,
                 num_hyperedges, shared: Optional[dict] = None) -> dict:
        # everything up to the assignment, on the device: the padding cost
        # of every slot and the reduced (target, slot) cost, dense, or the
        # arguments of the sparse matching
        host = None
        if not isinstance(hyperedge_index, Tensor):
            data = hyperedge_index
            hyperedge_index = data.hyperedge_index
            if num_hyperedges is None:
                num_hyperedges = data.num_hyperedges
                host = getattr(data, 'num_hyperedges_host', None)
        B, m, N = pred.num_graphs, pred.max_edges, pred.num_nodes
        device = pred.incidence_logit.device
        num_hyperedges, counts = self._counts(num_hyperedges,
                                              hyperedge_index, B, device,
                                              host)
        total = int(counts.sum())
        too_many = (counts > m).nonzero().view(-1)
        if too_many.numel() > 0:
            g = int(too_many[0])
            raise ValueError(f"graph {g} has {int(counts[g])} target "
                             f"hyperedges but the model has only max_edges="
                             f"{m} slots; build the model with max_edges >= "
                             f"{int(counts.max())}")
        _check_target(hyperedge_index, N, total, pred.batch, counts)
        if self._compiled is not None and not self._goes_sparse(
                pred, hyperedge_index, total):
            return self._compiled_prepare(pred, hyperedge_index,
                                          num_hyperedges, counts, total)

        z = _at_least_float32(pred.incidence_logit)
        log_p, log_q = _clamped_log_sigmoids(z)
        ze = _at_least_float32(pred.existence_logit)
        log_pe, log_qe = _clamped_log_sigmoids(ze)

        node, slot = pred.incidence_index
        # the predictions of one over_steps call that share their pairs
        # share the index work too (and the tensors autograd keeps of it)
        if shared is None or shared.get('index') is not pred.incidence_index \
                or shared.get('m') != m:
            shared = _reset({} if shared is None else shared,
                            pred.incidence_index, m)
        if 'local' not in shared:
            shared['local'] = slot % m
        # (scatter_add_ keeps only the index for backward, index_add_ the
        # source too)
        base = log_q.new_zeros(B * m).scatter_add_(0, slot, log_q)

        denom = count_values(pred.batch, B).to(z.dtype) + 1
        slot_graph = torch.arange(B, device=device).repeat_interleave(m)
        cost_pad = -(base + log_qe) / denom[slot_graph]  # [B m]

        t_node, t_edge = hyperedge_index[0].long(), hyperedge_index[1].long()
        t_graph = torch.arange(B, device=device).repeat_interleave(
            num_hyperedges, output_size=total)
        # members[q, s] = sum over target q's nodes i of the log-odds
        # log p_si - log q_si, where a pruned pair (not a candidate) has
        # p = 0: log 0 - log 1 = -100 after clamping.
        gate = (log_pe - log_qe).view(B, m)
        ctx = {'B': B, 'm': m, 'counts': counts, 't_graph': t_graph,
               'cost_pad': cost_pad}
        args = (log_p - log_q, node, shared['local'], N, t_node, t_edge,
                total, m, gate, denom, t_graph, counts)
        ctx['sparse'] = self._goes_sparse(pred, hyperedge_index, total)
        if ctx['sparse']:
            ctx['args'] = args
        else:
            ctx['reduced'] = self._dense_reduced(*args, shared=shared)
        return ctx

    def _goes_sparse(self, pred, hyperedge_index: Tensor, total: int) -> bool:
        # the sparse matching: asked for, or (auto) large pruned sets
        m, N = pred.max_edges, pred.num_nodes
        join = hyperedge_index.size(1) * pred.incidence_logit.numel() / \
            max(N, 1)
        return self.matching == 'sparse' or (
            self.matching == 'auto' and self.assignment == 'per_step'
            and join * 8 < total * m and (
                (m >= self.SPARSE_MIN_SLOTS
                 and total * m >= self.SPARSE_MIN_ENTRIES)
                or (m >= self.FLOW_MIN_SLOTS
                    and _matching._ortools_available())))

    def _compiled_prepare(self, pred, hyperedge_index, num_hyperedges,
                          counts, total) -> dict:
        # _prepare's dense costs through the compiled dense_cost_terms
        B, m, device = pred.num_graphs, pred.max_edges, pred.batch.device
        z = _at_least_float32(pred.incidence_logit)
        denom = count_values(pred.batch, B).to(z.dtype) + 1
        t_graph = torch.arange(B, device=device).repeat_interleave(
            num_hyperedges, output_size=total)
        cost_pad, reduced = self._compiled[0](
            z, _at_least_float32(pred.existence_logit),
            *pred.incidence_index, denom, hyperedge_index[0].long(),
            hyperedge_index[1].long(), t_graph, B, m, pred.num_nodes, total)
        return {'B': B, 'm': m, 'counts': counts, 't_graph': t_graph,
                'cost_pad': cost_pad, 'reduced': reduced, 'sparse': False}

    def _finish(self, ctx: dict, matched: Tensor) -> Tensor:
        B, m = ctx['B'], ctx['m']
        per_graph = ctx['cost_pad'].view(B, m).sum(1).index_add(
            0, ctx['t_graph'], matched)
        if self.reduction == 'sum':
            return per_graph.sum()
        if self.reduction == 'mean':
            return per_graph.mean() / m
        return per_graph / m

    def _dense_reduced(self, delta, node, local, N, t_node, t_edge, total,
                       m, gate, denom, t_graph, counts, shared=None):
        target_sums = members(delta, node, local, N, t_node, t_edge, total,
                              m, shared)
        # cost_real - cost_pad per (target, slot): the row sums of
        # log(1 - I) cancel, leaving the members and the gate's log-odds.
        return (target_sums + gate[t_graph]) / -denom[t_graph, None]

    def _sparse_matched(self, delta, node, local, N, t_node, t_edge, total,
                        m, gate, denom, t_graph, counts):
        # reduced[q, s] = (100 |q| - gate_s - S_qs) / denom, where S_qs sums
        # delta + 100 over q's members that are candidates of slot s: a
        # slot term plus entries on the (target, slot) pairs sharing a
        # candidate member, which are all the matching needs.
        device = delta.device
        q, s, shifted = membership_join(delta, node, local, N, t_node,
                                        t_edge)
        key, inverse = torch.unique(q * m + s, return_inverse=True)
        S = delta.new_zeros(key.numel()).index_add(0, inverse, shifted)
        eq = key // m
        size = count_values(t_edge, total).to(delta.dtype)
        d_t = denom[t_graph]
        slot_term = -gate / denom[:, None]                      # [B, m]
        entry = -S / d_t[eq]
        # one transfer: keys (exact in float64 below 2**53), entries, slots
        E = key.numel()
        host = torch.cat([key.double(), entry.detach().double(),
                          slot_term.detach().double().view(-1)]).cpu()
        host = host.numpy()
        key_h = host[:E].astype(np.int64)
        eq_h, es_h = key_h // m, key_h % m
        entry_h = host[E:2 * E]
        slot_h = host[2 * E:].reshape(-1, m)
        counts_h = counts.numpy()
        starts = np.concatenate([[0], np.cumsum(counts_h)])
        lo = np.searchsorted(eq_h, starts[:-1])
        hi = np.searchsorted(eq_h, starts[1:])
        cols = sparse_linear_assignments(
            [(eq_h[a:b] - start, es_h[a:b], entry_h[a:b], slot_h[g],
              int(counts_h[g]))
             for g, (a, b, start) in enumerate(zip(lo, hi, starts))],
            num_workers=self.num_workers)
        cols = _to_device(np.concatenate(cols) if cols else
                          np.zeros(0, np.int64), device)
        rows = torch.arange(total, device=device)
        want = rows * m + cols
        matched = 100.0 * size / d_t + slot_term[t_graph, cols]
        if key.numel():  # plus the entry of the matched pair, if it has one
            pos = torch.searchsorted(key, want).clamp_max(key.numel() - 1)
            matched = matched + torch.where(key[pos] == want, entry[pos],
                                            entry.new_zeros(()))
        return matched, cols

    def _counts(self, num_hyperedges, hyperedge_index: Tensor, B: int,
                device, host=None):
        r"""Per-graph target counts on the device and on the host. The host
        copy is one synchronisation, kept for the next calls with the same
        target (a recurrent trainer evaluates the loss at several steps of
        one batch), so a batch pays it once; none when the target carries
        its counts on the host (``host``, from ``num_hyperedges_host``)."""
        if host is not None:
            counts = torch.as_tensor(host, dtype=torch.long).reshape(-1)
            if counts.numel() != B:
                raise ValueError(f"'num_hyperedges_host' must hold one count "
                                 f"per graph ({B}), got {counts.numel()}")
            return _per_graph_counts(num_hyperedges, hyperedge_index, B,
                                     device), counts
        key = num_hyperedges if isinstance(num_hyperedges, Tensor) else None
        cached = getattr(self, '_count_cache', None)
        if key is not None and cached is not None and cached[0]() is key \
                and cached[1] == key._version and cached[2].device == device:
            return cached[2], cached[3]
        on_device = _per_graph_counts(num_hyperedges, hyperedge_index, B,
                                      device)
        counts = on_device.cpu()
        if key is not None:
            self._count_cache = (weakref.ref(key), key._version, on_device,
                                 counts)
        return on_device, counts

    def _assign(self, reduced: Tensor, counts: Tensor) -> np.ndarray:
        cost = reduced.to('cpu', torch.float64).numpy()
        splits = np.cumsum(counts.numpy())[:-1]
        cols = linear_assignment(np.split(cost, splits), self.backend)
        if len(cols) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(cols)

    def __repr__(self) -> str:
        workers = '' if self.num_workers is None else \
            f', num_workers={self.num_workers}'
        once = '' if self.assignment == 'per_step' else \
            f", assignment='{self.assignment}'"
        return (f"{self.__class__.__name__}(reduction='{self.reduction}', "
                f"backend='{self.backend}', matching='{self.matching}'"
                f"{workers}{once})")


def _reset(shared: dict, index: Tensor, m: int) -> dict:
    shared.clear()
    shared['index'], shared['m'] = index, m
    return shared


def _per_graph_counts(num_hyperedges, hyperedge_index: Tensor, B: int,
                      device) -> Tensor:
    if num_hyperedges is None:
        if B != 1:
            raise ValueError("pass 'num_hyperedges' (one count per graph) "
                             "when the prediction holds several graphs")
        count = int(hyperedge_index[1].max()) + 1 \
            if hyperedge_index.numel() > 0 else 0
        return torch.tensor([count], device=device)
    if isinstance(num_hyperedges, int):
        num_hyperedges = torch.tensor([num_hyperedges])
    num_hyperedges = num_hyperedges.reshape(-1).to(device, torch.long)
    if num_hyperedges.numel() != B:
        raise ValueError(f"'num_hyperedges' must hold one count per graph "
                         f"({B}), got {num_hyperedges.numel()}")
    return num_hyperedges
