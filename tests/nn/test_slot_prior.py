import math

import pytest
import torch

from torch_geometric_hyper.nn import (GraphRefiner, HypergraphRefiner,
                                      Set2Graph, SetTransformer, SlotAttention,
                                      SlotPrior, StackedHypergraphRefiner,
                                      load_model, save_model)

SLOT_MODELS = [
    lambda: HypergraphRefiner(3, 8, 4, num_iterations=2),
    lambda: StackedHypergraphRefiner(3, 8, 4, num_iterations=2),
    lambda: SetTransformer(3, 8, 4),
    lambda: SlotAttention(3, 8, 4),
]


def test_shapes_init_and_repr():
    torch.manual_seed(0)
    prior = SlotPrior(16, num_slots=4)
    assert (prior.channels, prior.num_slots) == (16, 4)
    assert [n for n, _ in prior.named_parameters()] == ['mu', 'log_sigma']
    bound = math.sqrt(6.0 / 17)
    for p in (prior.mu, prior.log_sigma):
        assert p.shape == (16, ) and float(p.detach().abs().max()) <= bound
    # the draws of the refiner's former init: mu, then log_sigma
    torch.manual_seed(1)
    prior.reset_parameters()
    torch.manual_seed(1)
    mu = torch.empty(16).uniform_(-bound, bound)
    log_sigma = torch.empty(16).uniform_(-bound, bound)
    assert torch.equal(prior.mu.detach(), mu)
    assert torch.equal(prior.log_sigma.detach(), log_sigma)
    assert repr(prior) == 'SlotPrior(16, num_slots=4)'
    assert prior.noise(3).shape == (3, 4, 16)
    assert prior.sample(3).shape == (12, 16)


def test_forward_is_the_reparametrisation_bit_for_bit():
    prior = SlotPrior(5, num_slots=3).double()
    gen = torch.Generator().manual_seed(2)
    noise = prior.noise(2, gen)
    assert noise.dtype == torch.double
    slots = prior(noise)
    assert slots.shape == (6, 5)
    expected = prior.mu + torch.exp(prior.log_sigma) * noise.reshape(6, 5)
    assert torch.equal(slots, expected)
    # differentiable in mu and log_sigma
    slots.sum().backward()
    assert prior.mu.grad is not None and prior.log_sigma.grad is not None
    # the flat noise of a training loop (already cast) gives the same bits
    assert torch.equal(prior(noise.reshape(6, 5)), slots)
    # float64 host noise cast to the parameters' float32: their dtype
    prior32 = SlotPrior(5, num_slots=3)
    host = prior32.noise(2, torch.Generator().manual_seed(3),
                         dtype=torch.float64, device='cpu')
    out = prior32(host.to(torch.float32))
    assert out.dtype == torch.float32
    assert torch.equal(out, prior32.mu + torch.exp(prior32.log_sigma)
                       * host.to(torch.float32).view(6, 5))


def test_sample_equals_forward_of_noise_and_the_generator_decides():
    prior = SlotPrior(4, num_slots=2)
    a = prior.sample(3, torch.Generator().manual_seed(5))
    b = prior(prior.noise(3, torch.Generator().manual_seed(5)))
    assert torch.equal(a, b)
    # the noise is torch.randn of the generator, graph-major, slot-minor
    flat = torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(prior.noise(3, torch.Generator().manual_seed(5)),
                       flat.view(3, 2, 4))


def test_meta_device_builds_without_drawing():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    prior = SlotPrior(8, num_slots=2, device='meta')
    assert prior.mu.device.type == 'meta'
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize('make', SLOT_MODELS)
def test_models_with_slots_hold_a_prior_and_draw_from_it(make):
    model = make()
    assert isinstance(model.slot_prior, SlotPrior)
    assert model.slot_prior.num_slots == model.max_edges == 4
    assert model.slot_prior.channels == model.hidden_channels == 8
    # the parameters come first, as slot_mu / slot_log_sigma did
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ['slot_prior.mu', 'slot_prior.log_sigma']
    # max_edges is the prior's slot count: setting one sets both
    model.max_edges = 6
    assert model.slot_prior.num_slots == 6
    model.max_edges = 4
    # a generator's draw equals the prior's sample given as slots=
    x = torch.randn(7, 3)
    batch = torch.tensor([0] * 4 + [1] * 3)
    with torch.no_grad():
        drawn = model(x, batch, 2, generator=torch.Generator().manual_seed(1))
        given = model(x, batch, 2, slots=model.slot_prior.sample(
            2, torch.Generator().manual_seed(1)))
    assert torch.equal(drawn.incidence_logit, given.incidence_logit)


def test_models_without_slots_have_no_prior():
    for model in (GraphRefiner(2, 8, 2), Set2Graph(3, 8, k=2)):
        assert getattr(model, 'slot_prior', None) is None
        assert getattr(model, 'slot_mu', None) is None


@pytest.mark.parametrize('make', SLOT_MODELS)
def test_old_state_dicts_with_slot_mu_still_load(make, tmp_path):
    torch.manual_seed(0)
    model = make()
    old = {}
    for key, value in model.state_dict().items():
        key = key.replace('slot_prior.mu', 'slot_mu')
        old[key.replace('slot_prior.log_sigma', 'slot_log_sigma')] = value
    assert 'slot_mu' in old and 'slot_prior.mu' not in old
    torch.manual_seed(1)
    fresh = make()
    fresh.load_state_dict(old)  # strict
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    # and through a checkpoint written with the old names
    path = str(tmp_path / 'old.pt')
    save_model(model, path)
    ckpt = torch.load(path, weights_only=True)
    ckpt['model'] = old
    torch.save(ckpt, path)
    loaded, _ = load_model(path)
    assert torch.equal(loaded.slot_prior.mu, model.slot_prior.mu)
    # nested under a prefix, as inside a wrapper module
    wrapper = torch.nn.ModuleDict({'net': make()})
    wrapper.load_state_dict({f'net.{k}': v for k, v in old.items()})
    assert torch.equal(wrapper['net'].slot_prior.log_sigma,
                       model.slot_prior.log_sigma)
