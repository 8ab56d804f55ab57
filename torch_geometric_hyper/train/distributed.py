r"""Data-parallel helpers on :mod:`torch.distributed` (launched by
``torchrun``; gloo on CPU, NCCL on CUDA).

Why gradient all-reduce instead of wrapping the model in
:class:`~torch.nn.parallel.DistributedDataParallel`: the recurrent trainers
(:class:`~torch_geometric_hyper.train.BackpropWithSkips`) never call the
model's ``forward``; they call ``init_state`` and ``step`` and make
:math:`S` optimizer updates per mini-batch, each through :math:`B` reuses
of the same weights, and some parameters (the slot distribution) receive no
gradient in a given update. DDP's reducer only prepares its gradient hooks
inside ``forward`` and needs ``find_unused_parameters`` for the rest, which
does not combine with several forwards per backward. Averaging the
gradients with one :func:`torch.distributed.all_reduce` per update (one
flat buffer, after ``backward`` and before clipping) is what DDP computes,
works for every trainer, and keeps clipping on the global gradient.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist


def env_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` (1 when not launched by it)."""
    return int(os.environ.get('WORLD_SIZE', '1'))


class DistributedContext:
    r"""Rank, world size and collectives of one training process.

    With ``WORLD_SIZE`` > 1 in the environment (``torchrun``) it joins the
    process group (``backend``: gloo for CPU devices, NCCL for CUDA);
    otherwise every collective is a no-op, so a single process needs no
    launcher.

    Args:
        device (torch.device): this process's device.
        backend (str, optional): process-group backend (default: ``'nccl'``
            for CUDA devices, else ``'gloo'``).
    """

    def __init__(self, device: torch.device, backend: Optional[str] = None):
        joined = dist.is_available() and dist.is_initialized()
        # a group made by another launcher (e.g. Lightning) says its size
        self.world_size = dist.get_world_size() if joined \
            else env_world_size()
        self.rank = dist.get_rank() if joined \
            else int(os.environ.get('RANK', '0'))
        self.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        self.device = device
        self.owns_group = False
        if self.world_size > 1 and not dist.is_initialized():
            backend = backend or ('nccl' if device.type == 'cuda'
                                  else 'gloo')
            dist.init_process_group(backend)
            self.owns_group = True

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and logs)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    def check_same_options(self, options: dict, what: str = 'options'
                           ) -> None:
        r"""Refuses to go on when the processes were started with different
        ``options`` (a dict of plain values, e.g. the training options):
        every rank raises the same :class:`ValueError`, naming each value
        that differs from rank 0's."""
        if not self.enabled:
            return
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, dict(options))
        first, diffs = gathered[0], []
        for rank, other in enumerate(gathered[1:], 1):
            for key in sorted(set(first) | set(other)):
                if first.get(key) != other.get(key):
                    diffs.append(f'rank {rank} has {key}={other.get(key)!r} '
                                 f'(rank 0: {first.get(key)!r})')
        if diffs:
            raise ValueError(f'the processes were started with different '
                             f'{what}: {"; ".join(diffs)}; start every '
                             f'process with the same ones')

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        """Sums a few floats over the ranks (float64, one collective)."""
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copies rank 0's parameters and buffers to every rank."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)

    def average_gradients(self, module: torch.nn.Module) -> None:
        r"""Averages the gradients over the ranks in place (one all-reduce
        of a flat buffer). Parameters without a gradient are left so; the
        same parameters must have one on every rank (they do: every rank
        runs the same schedule)."""
        if not self.enabled:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n

    def barrier(self) -> None:
        """Waits for every rank."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Leaves the process group if this context joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == 'cuda' \
            else torch.device('cpu')


def shard_batch(indices: Sequence[int], sizes: Sequence[int],
                world_size: int) -> List[List[int]]:
    r"""Splits one global mini-batch over the ranks, balancing the work.

    Sets are sorted by size (largest first) and dealt out in a snake order
    (0, 1, ..., W-1, W-1, ..., 0, ...), so every rank gets the same number
    of sets (±1) and similar node totals. A rank left without a set (a
    global batch smaller than the world) gets an empty list.

    Args:
        indices (sequence of int): dataset indices of the global batch.
        sizes (sequence of int): their set sizes (nodes).
        world_size (int): number of ranks.

    Example:
        >>> shard_batch([0, 1, 2, 3, 4], [5, 9, 1, 7, 3], 2)
        [[1, 4, 2], [3, 0]]
    """
    order = sorted(range(len(indices)), key=lambda i: (-sizes[i], i))
    shards: List[List[int]] = [[] for _ in range(world_size)]
    for k, i in enumerate(order):
        lap, pos = divmod(k, world_size)
        rank = pos if lap % 2 == 0 else world_size - 1 - pos
        shards[rank].append(int(indices[i]))
    return shards
