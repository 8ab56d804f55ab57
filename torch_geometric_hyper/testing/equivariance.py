r"""Equivariance checks for set-to-hypergraph models, for your own tests.

Each function draws a random permutation, runs the model on the permuted and
unpermuted inputs with the same initial slots, and raises an
:class:`AssertionError` that says how far apart the outputs were.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _dense(pred):
    inc, _, exist = pred.to_dense()
    return inc, exist


def random_node_permutation(batch: Tensor, generator=None) -> Tensor:
    r"""A permutation of the nodes that keeps every node inside its graph
    (``batch`` must be sorted)."""
    key = batch.double() + torch.rand(batch.numel(), generator=generator,
                                      dtype=torch.double)
    return torch.argsort(key)


def assert_node_permutation_equivariant(model, x: Tensor,
                                        batch: Optional[Tensor] = None,
                                        num_graphs: Optional[int] = None,
                                        num_iterations: Optional[int] = None,
                                        atol: float = 1e-5,
                                        seed: int = 0) -> None:
    r"""Asserts :math:`f(P X)_{j, P i} = f(X)_{j, i}`: permuting the nodes of
    each graph permutes the incidence columns alike and leaves the
    existence gates unchanged.

    Args:
        model: a :class:`~torch_geometric_hyper.nn.HypergraphRefiner`-like
            model: its initial slots are drawn from its ``slot_prior``
            (:class:`~torch_geometric_hyper.nn.SlotPrior`) and passed as
            ``slots=``.
        x (torch.Tensor): node features.
        batch (torch.Tensor, optional): sorted graph of each node.
        num_graphs (int, optional): number of graphs.
        num_iterations (int, optional): steps to run.
        atol (float, optional): tolerance.
        seed (int, optional): seed of the permutation and the slots.
    """
    gen, batch, num_graphs = _prepare(x, batch, num_graphs, seed)
    slots = _draw_slots(model, num_graphs, x, gen)
    perm = random_node_permutation(batch.cpu(), gen).to(x.device)
    with torch.no_grad():
        ref = model(x, batch, num_graphs, slots=slots,
                    num_iterations=num_iterations)
        out = model(x[perm], batch[perm], num_graphs, slots=slots,
                    num_iterations=num_iterations)
    inc_ref, ex_ref = _dense(ref)
    inc_out, ex_out = _dense(out)
    # column k of graph g in `out` is node perm[k] (local ids)
    ptr = torch.cat([batch.new_zeros(1), torch.bincount(
        batch, minlength=num_graphs).cumsum(0)])
    local = perm - ptr[batch[perm]]
    pos = torch.arange(x.size(0), device=x.device) - ptr[batch]
    expect = inc_ref.clone()
    expect[batch, :, pos] = inc_ref[batch, :, local]
    _close(inc_out, expect, atol, 'incidence under a node permutation')
    _close(ex_out, ex_ref, atol, 'existence under a node permutation')


def assert_slot_permutation_equivariant(model, x: Tensor,
                                        batch: Optional[Tensor] = None,
                                        num_graphs: Optional[int] = None,
                                        num_iterations: Optional[int] = None,
                                        atol: float = 1e-5,
                                        seed: int = 0) -> None:
    r"""Asserts that permuting the initial slots of each graph permutes the
    predicted hyperedges (incidence rows and existence gates) alike."""
    gen, batch, num_graphs = _prepare(x, batch, num_graphs, seed)
    m = model.max_edges
    slots = _draw_slots(model, num_graphs, x, gen)
    perm = torch.stack([torch.randperm(m, generator=gen) + g * m
                        for g in range(num_graphs)]).view(-1).to(x.device)
    with torch.no_grad():
        ref = model(x, batch, num_graphs, slots=slots,
                    num_iterations=num_iterations)
        out = model(x, batch, num_graphs, slots=slots[perm],
                    num_iterations=num_iterations)
    inc_ref, ex_ref = _dense(ref)
    inc_out, ex_out = _dense(out)
    local = (perm % m).view(num_graphs, m)
    expect_inc = torch.stack([inc_ref[g, local[g]] for g in
                              range(num_graphs)])
    expect_ex = torch.stack([ex_ref[g, local[g]] for g in range(num_graphs)])
    _close(inc_out, expect_inc, atol, 'incidence under a slot permutation')
    _close(ex_out, expect_ex, atol, 'existence under a slot permutation')


def _prepare(x, batch, num_graphs, seed):
    gen = torch.Generator().manual_seed(seed)
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
    return gen, batch, num_graphs or int(batch.max()) + 1


def _draw_slots(model, num_graphs, x, gen):
    # the model's slot prior with noise drawn on the CPU in the default
    # dtype (the same noise for every device and model dtype)
    prior = model.slot_prior
    noise = prior.noise(num_graphs, generator=gen,
                        dtype=torch.get_default_dtype(), device='cpu')
    with torch.no_grad():
        return prior(noise.to(x.device, x.dtype))


def _close(a: Tensor, b: Tensor, atol: float, what: str):
    err = (a - b).abs().max().item() if a.numel() else 0.0
    if not err <= atol:
        raise AssertionError(f'model is not equivariant: {what} differs by '
                             f'up to {err:.3g} (atol={atol:g})')
