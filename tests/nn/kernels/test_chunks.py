import torch

from torch_geometric_hyper.nn import HypergraphRefiner
from torch_geometric_hyper.nn.kernels import mlp
from torch_geometric_hyper.nn.kernels.chunks import (
    ACCELERATOR_CHUNK_ELEMENTS,
    DEFAULT_CHUNK_ELEMENTS,
    default_chunk_elements,
)
from torch_geometric_hyper.nn.kernels.mlp import pair_mlp


def test_default_chunk_elements_follows_the_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_chunk_elements() == DEFAULT_CHUNK_ELEMENTS == 1 << 17
        torch.set_num_threads(2)
        assert default_chunk_elements() == 1 << 19
    finally:
        torch.set_num_threads(threads)


def test_refiner_default_chunks_give_the_explicit_chunks_result():
    # chunk_elements=None resolves per call; the logits equal those of an
    # explicit size, and a module built with None keeps None
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.double)
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    model = HypergraphRefiner(3, 8, 4, 2).double()
    steps = [s for s in model.modules() if hasattr(s, 'chunk_elements')]
    assert steps and all(s.chunk_elements is None for s in steps)
    threads = torch.get_num_threads()
    try:
        outs = []
        for n, chunk in ((1, None), (2, None), (1, 8), (1, 1 << 19)):
            torch.set_num_threads(n)
            for step in steps:
                step.chunk_elements = chunk
            gen = torch.Generator().manual_seed(1)
            outs.append(model(x, batch, generator=gen).incidence_logit)
    finally:
        torch.set_num_threads(threads)
    for out in outs[1:]:
        assert torch.allclose(out, outs[0], atol=1e-12)


def test_default_chunks_follow_the_device(monkeypatch):
    # a CPU working set on the CPU; on an accelerator chunks large enough
    # that a batch is a few kernels, not thousands of small launches
    assert default_chunk_elements() == default_chunk_elements('cpu')
    assert default_chunk_elements('cuda') == \
        default_chunk_elements(torch.device('cuda', 1)) == \
        ACCELERATOR_CHUNK_ELEMENTS == 2 ** 26
    seen = []
    real = mlp.chunk_ranges
    monkeypatch.setattr(mlp, 'chunk_ranges',
                        lambda n, w, c: seen.append(c) or real(n, w, c))
    gen = torch.Generator().manual_seed(0)
    a, c = torch.randn(5, 4, generator=gen), torch.randn(3, 4, generator=gen)
    index = torch.tensor([[0, 1, 4, 2], [0, 2, 1, 1]])
    pair_mlp(a, c, torch.randn(4, generator=gen), torch.randn(4),
             torch.randn(4), torch.zeros(1), index)
    assert seen == [default_chunk_elements()]
