r"""Permutation-equivariant DeepSets layers over the sets of a batch."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import LayerNorm, Linear, Module, ReLU
from torch_geometric.utils import scatter

from torch_geometric_hyper.nn.kernels.chunks import ACCELERATOR_CHUNK_ELEMENTS
from torch_geometric_hyper.nn.kernels.incidence import count_values


class DeepSetLayer(Module):
    r"""The permutation-equivariant linear layer of DeepSets (Zaheer et al.,
    *Deep Sets*, NeurIPS 2017), applied to every set of a batch at once.

    .. math::
        \mathbf{h}'_i = \mathbf{W}_1 \mathbf{h}_i + \mathbf{b}_1 +
        \mathbf{W}_2 \Big(\mathbf{h}_i - \frac{1}{|S(i)|}
        \sum_{k \in S(i)} \mathbf{h}_k\Big)

    where :math:`S(i)` is the set element :math:`i` belongs to. The mean is a
    scatter over ``index``, so sets of different sizes share a batch without
    padding and never see each other.

    Args:
        in_channels (int): size of each input element.
        out_channels (int): size of each output element.

    Shapes:
        - **input:** elements :math:`(L, F_{in})`, set index :math:`(L)`
        - **output:** :math:`(L, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = Linear(in_channels, out_channels)
        self.lin_centered = Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        self.lin.reset_parameters()
        self.lin_centered.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, num_sets: int) -> Tensor:
        """
        Args:
            h (torch.Tensor): element features.
            index (torch.Tensor): set id of each element.
            num_sets (int): number of sets (``dim_size`` of the mean).
        """
        return _deepset_linear(h, self.lin.weight, self.lin_centered.weight,
                               self.lin.bias, index, num_sets)[0]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')


def _deepset_linear(h: Tensor, weight: Tensor, centered_weight: Tensor,
                    bias: Optional[Tensor], index: Tensor, num_sets: int):
    # DeepSetLayer's map and the sets' means of h. W1 h + W2 (h - mean) =
    # (W1 + W2) h - W2 mean: one product on the elements and no centred
    # copy of h to keep for the backward pass. The set term is subtracted in
    # place (the product's backward does not need its output).
    mean = scatter(h, index, dim=0, dim_size=num_sets, reduce='mean')
    out = F.linear(h, weight + centered_weight, bias)
    return out.sub_(F.linear(mean, centered_weight).index_select(0, index)), \
        mean


#: floats per block of rows of :func:`norm_deepset_layer` on the CPU: its
#: :math:`(L, F)` temporaries (the concatenation, its normalisation) exist
#: one block at a time, so the heap sees small, equal-sized buffers. On
#: other devices the blocks are
#: :data:`~torch_geometric_hyper.nn.kernels.ACCELERATOR_CHUNK_ELEMENTS`
#: floats (a caching allocator needs no help; launches cost).
BLOCK_FLOATS = 1 << 18


def _row_blocks(rows: int, width: int, device: torch.device):
    floats = (BLOCK_FLOATS if device.type == 'cpu' else
              ACCELERATOR_CHUNK_ELEMENTS)
    step = max(1, floats // max(width, 1))
    return [slice(s, min(s + step, rows)) for s in range(0, rows, step)]


def _norm_deepset_forward(parts, index, num_sets, eps, norm_weight,
                          norm_bias, weight, centered_weight, bias):
    # layer(LayerNorm(cat(parts))) block by block of rows, with the rows'
    # mean and 1 / std and the sets' means of the normalised rows
    L, width = parts[0].size(0), sum(p.size(-1) for p in parts)
    joint = weight + centered_weight
    out = parts[0].new_empty(L, joint.size(0))
    set_sum = parts[0].new_zeros(num_sets, width)
    means, rstds = [], []  # in LayerNorm's own dtype (float32 for half on
    # some devices)
    for rows in _row_blocks(L, width, out.device):
        y, m, r = torch.native_layer_norm(
            torch.cat([p[rows] for p in parts], dim=-1), (width, ),
            norm_weight, norm_bias, eps)
        means.append(m)
        rstds.append(r)
        if bias is None:
            torch.mm(y, joint.t(), out=out[rows])
        else:
            torch.addmm(bias, y, joint.t(), out=out[rows])
        set_sum.index_add_(0, index[rows], y)
    count = count_values(index, num_sets).clamp_(min=1)
    set_mean = set_sum.div_(count.unsqueeze(-1).to(set_sum.dtype))
    out.sub_(F.linear(set_mean, centered_weight).index_select(0, index))
    if not means:  # no rows
        means = rstds = [out.new_empty(0, 1)]
    return out, torch.cat(means), torch.cat(rstds), set_mean


class _NormDeepSetLayer(torch.autograd.Function):
    # layer(LayerNorm(cat(parts))) keeping only the parts, the rows' mean
    # and 1/std and the sets' means of the normalised rows for backward: the
    # concatenation and its normalisation are recomputed there, a block of
    # rows at a time
    @staticmethod
    def forward(ctx, index, num_sets, eps, norm_weight, norm_bias, weight,
                centered_weight, bias, recompute, *parts):
        out, mean, rstd, set_mean = _norm_deepset_forward(
            parts, index, num_sets, eps, norm_weight, norm_bias, weight,
            centered_weight, bias)
        # a part with a recipe (fn, tensors) is rebuilt in backward as
        # fn(*tensors), not kept; autograd keeps (and frees) the tensors
        kept, inputs, ctx.recipes = [], [], []
        for p, r in zip(parts, recompute):
            if r is None:
                kept.append(p)
                ctx.recipes.append(None)
            else:
                ctx.recipes.append((r[0], len(r[1])))
                inputs.extend(r[1])
        ctx.num_kept = len(kept)
        ctx.save_for_backward(index, norm_weight, norm_bias, weight,
                              centered_weight, mean, rstd, set_mean, *kept,
                              *inputs)
        ctx.num_sets = num_sets
        ctx.widths = [p.size(-1) for p in parts]
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        # With x_hat the normalised rows, y = w x_hat + b the LayerNorm's
        # output and g = dL/dout:
        #   dL/dy = g (W + C) - (C^T mean_set(g))[set(i)]
        #   dL/dx = rstd (w dL/dy - mean_f(w dL/dy)
        #                 - x_hat mean_f(w dL/dy x_hat))
        # dL/dx is the one (L, F) buffer; x_hat is recomputed per block.
        (index, norm_weight, norm_bias, weight, centered_weight, mean, rstd,
         set_mean, *rest) = ctx.saved_tensors
        kept, inputs = iter(rest[:ctx.num_kept]), rest[ctx.num_kept:]
        parts, at = [], 0
        with torch.no_grad():
            for recipe in ctx.recipes:
                if recipe is None:
                    parts.append(next(kept))
                else:
                    fn, count = recipe
                    parts.append(fn(*inputs[at:at + count]))
                    at += count
        grad = grad.contiguous()
        L, width = grad.size(0), sum(ctx.widths)
        set_sum = scatter(grad, index, dim=0, dim_size=ctx.num_sets,
                          reduce='sum')
        count = count_values(index, ctx.num_sets).clamp_(min=1)
        set_term = (set_sum / count.unsqueeze(-1).to(set_sum.dtype)
                    ) @ centered_weight
        joint = weight + centered_weight
        need = ctx.needs_input_grad
        need_parts = any(need[9:])
        g_x = grad.new_empty(L, width) if need_parts else None
        g_weight = grad.new_zeros(joint.size(0), width)
        g_nw = (grad.new_zeros(width) if norm_weight is not None
                and need[3] else None)
        g_nb = (grad.new_zeros(width) if norm_bias is not None
                and need[4] else None)
        for rows in _row_blocks(L, width, grad.device):
            x_hat = torch.cat([p[rows] for p in parts], dim=-1)
            x_hat.sub_(mean[rows]).mul_(rstd[rows])
            g_weight.addmm_(grad[rows].t(), x_hat)
            g = torch.mm(grad[rows], joint,
                         out=g_x[rows] if need_parts else None)
            g.sub_(set_term.index_select(0, index[rows]))  # dL/dy
            if g_nb is not None:
                g_nb += g.sum(0)
            if g_nw is None and not need_parts:
                continue
            prod = g * x_hat
            if g_nw is not None:
                g_nw += prod.sum(0)
            if not need_parts:
                continue
            if norm_weight is not None:
                g.mul_(norm_weight)
                prod.mul_(norm_weight)
            dot = prod.mean(-1, keepdim=True)
            g.sub_(g.mean(-1, keepdim=True)).sub_(x_hat.mul_(dot))
            g.mul_(rstd[rows])
        # d/dW of y W^T: g^T y = (g^T x_hat) w + (sum_i g_i) b^T
        grad_sum = grad.sum(0)
        if norm_weight is not None:
            g_weight.mul_(norm_weight)
        if norm_bias is not None:
            g_weight.addr_(grad_sum, norm_bias)
        g_centered = g_weight - set_sum.t() @ set_mean
        g_parts = (g_x.split(ctx.widths, dim=-1) if need_parts else
                   (None, ) * len(parts))
        g_bias = grad_sum if ctx.has_bias else None
        return (None, None, None, g_nw, g_nb, g_weight, g_centered, g_bias,
                None, *g_parts)


def norm_deepset_layer(parts: Sequence[Tensor], norm: LayerNorm,
                       layer: DeepSetLayer, index: Tensor,
                       num_sets: int,
                       recompute: Optional[Sequence[Optional[Callable[
                           [], Tensor]]]] = None) -> Tensor:
    r"""``layer(norm(torch.cat(parts, -1)), index, num_sets)`` for a
    :class:`~torch.nn.LayerNorm` ``norm`` and a :class:`DeepSetLayer`
    ``layer``, storing less for the backward pass.

    .. math::
        \mathbf{h}_i = \mathrm{LN}\big([\mathbf{p}^{(1)}_i, \ldots,
        \mathbf{p}^{(k)}_i]\big), \qquad
        \mathbf{h}'_i = (\mathbf{W}_1 + \mathbf{W}_2)\,\mathbf{h}_i
        + \mathbf{b}_1 - \mathbf{W}_2\,\frac{1}{|S(i)|}
        \sum_{k \in S(i)} \mathbf{h}_k

    Plain autograd keeps both the concatenation and its normalisation
    (two :math:`(L, F)` tensors) for the backward pass. When gradients are
    recorded this function keeps only the parts (which the caller usually
    holds anyway), two floats per row and the :math:`(|S|, F)` set means,
    and recomputes the normalisation in backward: about
    :math:`2 L F` fewer floats stored, for an elementwise pass more. The
    values are those of the composition; without gradients, under
    autocast or while compiling, the composition itself runs.

    Args:
        parts (sequence of torch.Tensor): :math:`(L, F_j)` tensors whose
            concatenation (last dimension) has ``norm``'s size.
        norm (torch.nn.LayerNorm): normalisation over the last dimension.
        layer (DeepSetLayer): the layer applied to the normalised rows.
        index (torch.Tensor): :math:`(L)` set of each row.
        num_sets (int): number of sets.
        recompute (sequence, optional): per part, ``None`` or a recipe
            ``(fn, tensors)`` with ``fn(*tensors)`` giving the part's values
            again: such a part is not kept for backward but rebuilt there
            (without gradients), and autograd keeps ``tensors`` instead.
            For parts cheap to recompute from tensors held anyway, e.g. an
            aggregation over the incidence (pass those tensors detached).
            Gradients still flow to the part.

    Shapes:
        - **input:** parts :math:`(L, F_j)`, index :math:`(L)`
        - **output:** :math:`(L, F_{out})`
    """
    parts = list(parts)
    if len(norm.normalized_shape) != 1:
        raise ValueError(f"'norm' must normalise the last dimension only, "
                         f"got normalized_shape="
                         f"{tuple(norm.normalized_shape)}")
    width = sum(p.size(-1) for p in parts)
    if width != norm.normalized_shape[0] or width != layer.in_channels:
        raise ValueError(f"the parts' widths sum to {width}, but 'norm' "
                         f"takes {norm.normalized_shape[0]} and 'layer' "
                         f"{layer.in_channels} channels")
    lean = (not torch.compiler.is_compiling()
            and not torch.is_autocast_enabled(parts[0].device.type)
            and len({p.dtype for p in parts}) == 1)
    if not lean:
        h = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return layer(norm(h), index, num_sets)
    args = (index, num_sets, norm.eps, norm.weight, norm.bias,
            layer.lin.weight, layer.lin_centered.weight, layer.lin.bias)
    if torch.is_grad_enabled():
        recompute = (None, ) * len(parts) if recompute is None \
            else tuple(recompute)
        if len(recompute) != len(parts):
            raise ValueError(f"'recompute' needs one entry per part "
                             f"({len(parts)}), got {len(recompute)}")
        return _NormDeepSetLayer.apply(*args, recompute, *parts)
    # without gradients: the same in-place forward, nothing kept
    return _norm_deepset_forward(parts, *args)[0]


class DeepSet(Module):
    r"""Two :class:`DeepSetLayer` s with a ReLU and a LayerNorm between them:
    ``layer(in → hidden) → ReLU → LayerNorm → layer(hidden → out)``.

    Args:
        in_channels (int): input size.
        hidden_channels (int): hidden size.
        out_channels (int, optional): output size (default ``hidden``).
    """

    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or hidden_channels
        self.layer1 = DeepSetLayer(in_channels, hidden_channels)
        self.act = ReLU(inplace=True)  # on the first layer's own output
        self.norm = LayerNorm(hidden_channels)
        self.layer2 = DeepSetLayer(hidden_channels, out_channels)

    def reset_parameters(self):
        self.layer1.reset_parameters()
        self.norm.reset_parameters()
        self.layer2.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, num_sets: int,
                norm: Optional[LayerNorm] = None,
                recompute: Optional[Sequence] = None) -> Tensor:
        """
        Args:
            h (torch.Tensor or sequence of torch.Tensor): element features,
                or, with ``norm``, parts to concatenate.
            index (torch.Tensor): set id of each element.
            num_sets (int): number of sets.
            norm (torch.nn.LayerNorm, optional): a normalisation of the
                input, ``self(norm(torch.cat(h, -1)))``, run by
                :func:`norm_deepset_layer` (less stored for backward).
            recompute (sequence, optional): with ``norm``, per part
                ``None`` or a function that rebuilds it in backward (see
                :func:`norm_deepset_layer`).
        """
        if norm is None:
            h = self.layer1(h, index, num_sets)
        else:
            h = norm_deepset_layer(h, norm, self.layer1, index, num_sets,
                                   recompute)
        return norm_deepset_layer([self.act(h)], self.norm, self.layer2,
                                  index, num_sets)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.layer1.in_channels}, '
                f'{self.layer1.out_channels}, {self.layer2.out_channels})')
