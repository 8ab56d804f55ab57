import torch

from torch_geometric_hyper.nn.residual import residual_add


def test_residual_add_in_place_only_when_it_is_the_same_sum():
    x = torch.randn(4, 3)
    h = torch.randn(4, 3)
    expected = x + h
    out = residual_add(h, x)
    assert out is h  # in place on the layer's own output
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # a half-precision h (autocast) and a float32 stream: the promoting sum,
    # h untouched
    hb = torch.randn(4, 3).bfloat16()
    before = hb.clone()
    out = residual_add(hb, x)
    assert out.dtype == torch.float32 and out is not hb
    torch.testing.assert_close(out, x + before, rtol=0, atol=0)
    assert torch.equal(hb, before)
    # broadcasting: never in place
    row = torch.randn(3)
    out = residual_add(row, x)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out, x + row, rtol=0, atol=0)


def test_refiner_step_keeps_the_float32_slot_stream_under_autocast():
    # the slots start in float32 and the slot DeepSet's output is bfloat16
    # under CPU autocast: the residual sum stays float32, as x + h is
    from torch_geometric_hyper.nn import HypergraphRefiner
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 16, 4, 2)
    x = torch.randn(10, 3)
    batch = torch.tensor([0] * 6 + [1] * 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        init = model.init_state(x, batch, 2)
        state = model.step(init)
    assert init.edge.dtype == torch.float32
    assert state.edge.dtype == torch.float32
    assert state.node.dtype == init.node.dtype
