r"""When a refinement step recomputes its activations in backward
(activation checkpointing): :func:`use_checkpointing` decides per step from
its size, against :data:`CHECKPOINT_BUDGET` in ``'auto'`` mode."""
from __future__ import annotations

__all__ = [
    'CHECKPOINT_BUDGET',
    'step_activation_bytes',
    'use_checkpointing',
    'check_checkpoint_mode',
]

#: Default budget of :func:`use_checkpointing` in ``'auto'`` mode: the
#: activations one refinement step may store (bytes).
CHECKPOINT_BUDGET = 256 * 2**20


def step_activation_bytes(num_pairs: int, num_rows: int, hidden: int,
                          element_size: int = 4) -> int:
    r"""Estimated activations one refinement step stores for backward when
    it is not checkpointed: about :math:`2.5\,(N + M)\,d + 4\,\text{nnz}`
    elements for :math:`N + M` node and slot rows and :math:`\text{nnz}`
    candidate pairs (the pair MLP never stores its :math:`[\text{nnz}, d]`
    hidden layer). The constants were fitted to the measured peak-memory
    difference between the two modes (``benchmarks/train_throughput.py``,
    n = 30 and n in [20, 100]) and round up. Since the DeepSet inputs run
    through :func:`~torch_geometric_hyper.nn.norm_deepset_layer` the
    difference is smaller (batch 64, the B = 4 steps held: 24-34 MiB at
    n = 30 and 42-44 MiB at n = 50, i.e. 6-8.5 and 10.5-11 MiB per step,
    against this estimate's 8.4 and 16.1), so ``'auto'`` errs towards
    checkpointing; ``benchmarks/stored_activations.py`` counts the bytes a
    step saves."""
    return int((2.5 * num_rows * hidden + 4 * num_pairs) * element_size)


def use_checkpointing(mode, num_pairs: int, num_rows: int, hidden: int,
                      element_size: int = 4,
                      budget: int = CHECKPOINT_BUDGET) -> bool:
    r"""Whether a training step recomputes its activations in backward.

    ``mode`` ``True`` or ``False`` decides; ``'auto'`` checkpoints only when
    the step's stored activations (:func:`step_activation_bytes`) would
    exceed ``budget`` bytes: storing them is faster (no recomputation), so
    it is chosen whenever it fits.
    """
    if mode == 'auto':
        return step_activation_bytes(num_pairs, num_rows, hidden,
                                     element_size) > budget
    return bool(mode)


def check_checkpoint_mode(mode):
    """Refuses anything but ``True``, ``False`` and ``'auto'``."""
    if mode not in (True, False, 'auto'):
        raise ValueError(f"'checkpoint' must be True, False or 'auto', got "
                         f"{mode!r}")
    return mode
