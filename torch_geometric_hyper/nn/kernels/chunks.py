r"""How much the chunked kernels materialise at once: the working-set
size (:func:`default_chunk_elements`) and the chunking helpers the kernels
share (:func:`chunk_ranges`, :func:`work_buffer`, :func:`gather_rows`)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    'DEFAULT_CHUNK_ELEMENTS',
    'ACCELERATOR_CHUNK_ELEMENTS',
    'default_chunk_elements',
    'chunk_ranges',
    'work_buffer',
    'gather_rows',
]

#: Number of floats a chunked kernel materialises at once with one torch
#: thread (512 KiB in fp32); :func:`default_chunk_elements` scales it.
DEFAULT_CHUNK_ELEMENTS = 1 << 17


#: Working-set size (floats) of the chunked kernels on an accelerator.
ACCELERATOR_CHUNK_ELEMENTS = 1 << 26


def default_chunk_elements(device=None) -> int:
    r"""The working-set size (floats) of the chunked kernels when a module
    or function is given ``chunk_elements=None`` (the default).

    On the CPU, :data:`DEFAULT_CHUNK_ELEMENTS` (:math:`2^{17}`) with one
    torch thread, :math:`2^{19}` with more: larger chunks give each
    operation enough work for two threads, while one thread is faster
    with chunks that stay in its cache (compare with
    ``benchmarks/train_throughput.py --chunk-elements``).

    On any other ``device`` (a GPU),
    :data:`ACCELERATOR_CHUNK_ELEMENTS` (:math:`2^{26}`, 256 MiB of
    float32): chunks sized for a CPU cache would split one kernel into
    thousands of small launches (a hull batch of 64 sets of 30 points has
    13.8 million pair features, 105 chunks of :math:`2^{17}`), and the
    launches, not the arithmetic, would set the pace.

    Args:
        device (torch.device or str, optional): where the kernels run
            (default: the CPU).
    """
    if device is not None and torch.device(device).type != 'cpu':
        return ACCELERATOR_CHUNK_ELEMENTS
    return DEFAULT_CHUNK_ELEMENTS if torch.get_num_threads() == 1 \
        else 4 * DEFAULT_CHUNK_ELEMENTS


def chunk_ranges(nnz: int, width: int, chunk_elements: int):
    r"""The ranges ``(start, end)`` of rows that split ``nnz`` rows of
    ``width`` floats into chunks of at most ``chunk_elements`` floats (at
    least one row each). ``chunk_elements`` is resolved by the kernel's
    entry point, which knows the device
    (:func:`default_chunk_elements`)."""
    step = max(1, chunk_elements // max(1, width))
    for start in range(0, nnz, step):
        yield start, min(nnz, start + step)


def work_buffer(like: Tensor, total: int, width: int,
                chunk_elements: int) -> Tensor:
    r"""One flat buffer, of ``like``'s dtype and device, for the largest
    chunk of :func:`chunk_ranges` ``(total, width, chunk_elements)``: the
    kernels write every chunk into it (one allocation per call, not one per
    chunk, which keeps the allocator's heap from fragmenting)."""
    step = max(1, chunk_elements // max(1, width))
    return like.new_empty(min(total, step) * width)


def gather_rows(src: Tensor, index: Tensor, work: Tensor) -> Tensor:
    r"""``src[index]`` (shape ``[len(index), *src.shape[1:]]``), written
    into the front of the flat buffer ``work`` (:func:`work_buffer`)."""
    width = math.prod(src.shape[1:])
    out = work[:index.numel() * width].view(index.numel(), *src.shape[1:])
    return torch.index_select(src, 0, index, out=out)

