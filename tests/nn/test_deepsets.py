import pytest
import torch
from torch.nn import LayerNorm

from torch_geometric_hyper.nn import DeepSet, DeepSetLayer
from torch_geometric_hyper.nn import deepsets
from torch_geometric_hyper.nn.deepsets import (
    _NormDeepSetLayer,
    norm_deepset_layer,
)
from torch_geometric_hyper.testing import saved_tensor_bytes

#: one block of rows for the whole input, one row a block, two rows a block
#: (the widths here are 8)
BLOCKS = pytest.mark.parametrize('block_floats', [1 << 18, 8, 16])


def _sets(dtype=torch.float64):
    # three sets of 4, 0 and 3 rows (set 1 empty), not sorted
    index = torch.tensor([0, 2, 0, 2, 0, 2, 0])
    parts = [torch.randn(7, 3, dtype=dtype), torch.randn(7, 5, dtype=dtype)]
    return parts, index


def _close_all(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def _modules(dtype=torch.float64):
    norm = LayerNorm(8).to(dtype)
    layer = DeepSetLayer(8, 4).to(dtype)
    with torch.no_grad():  # not the identity/zero initialisation
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return norm, layer


def test_deepset_layer_is_the_formula_and_equivariant():
    torch.manual_seed(0)
    layer = DeepSetLayer(3, 2).double()
    h = torch.randn(5, 3, dtype=torch.float64)
    index = torch.tensor([0, 0, 1, 1, 1])
    out = layer(h, index, 2)
    mean = torch.stack([h[:2].mean(0), h[2:].mean(0)])[index]
    w1, w2 = layer.lin.weight, layer.lin_centered.weight
    expected = h @ w1.t() + layer.lin.bias + (h - mean) @ w2.t()
    torch.testing.assert_close(out, expected)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(layer(h[perm], index[perm], 2), out[perm])


@BLOCKS
def test_norm_deepset_layer_matches_the_composition(block_floats,
                                                    monkeypatch):
    monkeypatch.setattr(deepsets, 'BLOCK_FLOATS', block_floats)
    torch.manual_seed(0)
    parts, index = _sets()
    norm, layer = _modules()
    params = list(norm.parameters()) + list(layer.parameters())
    for p in parts:
        p.requires_grad_()
    grad = torch.randn(7, 4, dtype=torch.float64)

    def run(fused):
        out = (norm_deepset_layer(parts, norm, layer, index, 3) if fused
               else layer(norm(torch.cat(parts, -1)), index, 3))
        return out, torch.autograd.grad(out, parts + params, grad)

    out, grads = run(True)
    ref_out, ref_grads = run(False)
    torch.testing.assert_close(out, ref_out)
    _close_all(grads, ref_grads)


@BLOCKS
def test_norm_deepset_layer_gradcheck(block_floats, monkeypatch):
    monkeypatch.setattr(deepsets, 'BLOCK_FLOATS', block_floats)
    torch.manual_seed(1)
    parts, index = _sets()
    norm, layer = _modules()
    for p in parts:
        p.requires_grad_()

    inputs = (*parts, norm.weight, norm.bias, layer.lin.weight,
              layer.lin_centered.weight, layer.lin.bias)

    def fn(a, b, nw, nb, w, c, bias):
        return _NormDeepSetLayer.apply(index, 3, norm.eps, nw, nb, w, c,
                                       bias, (None, None), a, b)

    def rebuilt(a, b, nw, nb, w, c, bias):  # b rebuilt in backward
        return _NormDeepSetLayer.apply(
            index, 3, norm.eps, nw, nb, w, c, bias,
            (None, (torch.clone, (b.detach(), ))), a, b)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradcheck(rebuilt, inputs)


def test_norm_deepset_layer_stores_less():
    torch.manual_seed(0)
    L = 64
    parts = [torch.randn(L, 32, requires_grad=True),
             torch.randn(L, 96, requires_grad=True)]
    index = torch.arange(L) // 16
    norm, layer = LayerNorm(128), DeepSetLayer(128, 16)

    def stored(fused):
        # bytes kept for backward beyond the inputs and parameters, which
        # exist anyway
        return saved_tensor_bytes(
            lambda: (norm_deepset_layer(parts, norm, layer, index, 4)
                     if fused else layer(norm(torch.cat(parts, -1)), index,
                                         4)),
            exclude=[*parts, *norm.parameters(), *layer.parameters()])

    # the concatenation and its normalisation (2 L F floats) against two
    # floats per row, the sets' means and the index
    assert stored(False) >= 2 * L * 128 * 4
    assert stored(True) <= (2 * L + 4 * 128) * 4 + L * 8


@BLOCKS
def test_norm_deepset_layer_without_gradients_and_errors(block_floats,
                                                         monkeypatch):
    monkeypatch.setattr(deepsets, 'BLOCK_FLOATS', block_floats)
    torch.manual_seed(0)
    parts, index = _sets(torch.float32)
    norm, layer = _modules(torch.float32)
    with torch.no_grad():
        out = norm_deepset_layer(parts, norm, layer, index, 3)
        ref = layer(norm(torch.cat(parts, -1)), index, 3)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match='widths sum to 7'):
        norm_deepset_layer([parts[0], parts[1][:, :4]], norm, layer, index,
                           3)
    with pytest.raises(ValueError, match='last dimension only'):
        norm_deepset_layer(parts, LayerNorm([7, 8]), layer, index, 3)


def test_deepset_with_norm_is_the_composition():
    torch.manual_seed(0)
    parts, index = _sets()
    norm = LayerNorm(8).double()
    model = DeepSet(8, 6, 4).double()
    for p in parts:
        p.requires_grad_()
    out = model(parts, index, 3, norm=norm)
    ref = model(norm(torch.cat(parts, -1)), index, 3)
    torch.testing.assert_close(out, ref)
    g = torch.autograd.grad(out.square().sum(), parts + list(
        model.parameters()))
    r = torch.autograd.grad(ref.square().sum(), parts + list(
        model.parameters()))
    _close_all(g, r)


@BLOCKS
def test_norm_deepset_layer_parameter_gradients_and_plain_norm(
        block_floats, monkeypatch):
    # gradients for the parameters alone (constant parts), and a LayerNorm
    # without weight and bias
    monkeypatch.setattr(deepsets, 'BLOCK_FLOATS', block_floats)
    torch.manual_seed(2)
    parts, index = _sets()
    norm, layer = _modules()
    params = list(norm.parameters()) + list(layer.parameters())
    got = torch.autograd.grad(
        norm_deepset_layer(parts, norm, layer, index, 3).square().sum(),
        params)
    ref = torch.autograd.grad(
        layer(norm(torch.cat(parts, -1)), index, 3).square().sum(), params)
    _close_all(got, ref)
    plain = LayerNorm(8, elementwise_affine=False).double()
    parts = [p.requires_grad_() for p in parts]
    got = torch.autograd.grad(
        norm_deepset_layer(parts, plain, layer, index, 3).sum(), parts)
    ref = torch.autograd.grad(
        layer(plain(torch.cat(parts, -1)), index, 3).sum(), parts)
    _close_all(got, ref)


def test_norm_deepset_layer_makes_full_size_temporaries_only_for_its_grad(
        monkeypatch):
    # The (L, F) concatenation and normalisation exist one block of rows at
    # a time in both passes; the only (L, F) tensor made is the gradient of
    # the parts (which autograd hands on). The plain composition makes
    # several in each pass.
    from torch.utils._python_dispatch import TorchDispatchMode

    monkeypatch.setattr(deepsets, 'BLOCK_FLOATS', 4 * 128)
    torch.manual_seed(0)
    L, F = 64, 128
    parts = [torch.randn(L, 32, requires_grad=True),
             torch.randn(L, 96, requires_grad=True)]
    index = torch.arange(L) // 16
    norm, layer = LayerNorm(F), DeepSetLayer(F, 16)

    class Shapes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.full = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            outs = out if isinstance(out, (tuple, list)) else [out]
            self.full += sum(isinstance(o, torch.Tensor)
                             and tuple(o.shape) == (L, F) for o in outs)
            return out

    def count(fused):
        forward, backward = Shapes(), Shapes()
        with forward:
            out = (norm_deepset_layer(parts, norm, layer, index, 4) if fused
                   else layer(norm(torch.cat(parts, -1)), index, 4))
        with backward:
            out.sum().backward()
        return forward.full, backward.full

    assert count(fused=True) == (0, 1)
    plain_forward, plain_backward = count(fused=False)
    assert plain_forward >= 2 and plain_backward >= 2


def test_norm_deepset_layer_blocks_are_whole_off_the_cpu():
    # CPU blocks of BLOCK_FLOATS floats; on an accelerator one block holds
    # ACCELERATOR_CHUNK_ELEMENTS floats (no thousands of small launches)
    from torch_geometric_hyper.nn.kernels.chunks import (
        ACCELERATOR_CHUNK_ELEMENTS)
    cpu = deepsets._row_blocks(3584, 256, torch.device('cpu'))
    assert len(cpu) == -(-3584 * 256 // deepsets.BLOCK_FLOATS)  # ceil
    assert cpu[0] == slice(0, deepsets.BLOCK_FLOATS // 256)
    assert cpu[-1].stop == 3584
    gpu = deepsets._row_blocks(3584, 256, torch.device('cuda'))
    assert gpu == [slice(0, 3584)]
    rows = ACCELERATOR_CHUNK_ELEMENTS // 256 + 1
    assert len(deepsets._row_blocks(rows, 256, torch.device('cuda'))) == 2


def test_norm_deepset_layer_rebuilds_recomputed_parts_in_backward():
    # a part with a recipe is not kept for backward but rebuilt there, once
    # per backward, without gradients; values and gradients are unchanged
    torch.manual_seed(3)
    parts, index = _sets()
    norm, layer = _modules()
    for p in parts:
        p.requires_grad_()
    grad = torch.randn(7, 4, dtype=torch.float64)
    calls = []

    def clone(t):
        calls.append(torch.is_grad_enabled())
        return t.clone()

    again = (clone, (parts[1].detach(), ))
    out = norm_deepset_layer(parts, norm, layer, index, 3, (None, again))
    ref = norm_deepset_layer(parts, norm, layer, index, 3)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert calls == []
    got = torch.autograd.grad(out, parts, grad)
    want = torch.autograd.grad(ref, parts, grad)
    assert calls == [False]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    kept = saved_tensor_bytes(
        lambda: norm_deepset_layer(parts, norm, layer, index, 3,
                                   (None, again)), exclude=[parts[0]])
    plain = saved_tensor_bytes(
        lambda: norm_deepset_layer(parts, norm, layer, index, 3),
        exclude=[parts[0]])
    # the recipe's tensor is a detached view of the part's storage, which
    # the caller holds anyway (excluded here): nothing else is kept
    kept_view = saved_tensor_bytes(
        lambda: norm_deepset_layer(parts, norm, layer, index, 3,
                                   (None, again)), exclude=parts)
    assert plain - kept == 0 and kept_view == plain - parts[1].numel() * 8
    with pytest.raises(ValueError, match='one entry per part'):
        norm_deepset_layer(parts, norm, layer, index, 3, (None, ))
