"""Small inputs the kernel tests share."""
import torch

from torch_geometric_hyper.nn.kernels import CandidateIncidence


def complete_setup(dtype=torch.double):
    """The complete layout of graphs of 3 and 2 nodes with 3 slots each,
    and a maker of random leaf tensors ``r(*shape)``."""
    batch = torch.tensor([0, 0, 0, 1, 1])
    inc = CandidateIncidence.complete(batch, 2, 3)
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=dtype).requires_grad_()

    return inc, r
