r"""Every random state a run draws from, as tensors and plain values (so a
checkpoint holding them loads with ``weights_only=True``)."""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_states(trainer=None) -> dict:
    """Every random state the training draws from: torch (CPU and CUDA),
    NumPy, Python's ``random`` and the trainer's skip sampler
    (``trainer.rng``, a :class:`random.Random`)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {'torch': torch.get_rng_state(),
           'numpy': (kind, torch.from_numpy(keys.astype(np.int64)),
                     int(pos), int(has_gauss), float(cached)),
           'python': random.getstate(),
           'skips': (trainer.rng.getstate() if hasattr(trainer, 'rng')
                     else None)}
    if torch.cuda.is_available():
        out['cuda'] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict, trainer=None) -> None:
    """Restores :func:`rng_states`."""
    # a checkpoint loaded with map_location=<GPU> brings its RNG states to
    # the GPU too; the generators take them from the host
    torch.set_rng_state(states['torch'].cpu())
    kind, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos,
                         has_gauss, cached))
    random.setstate(_as_tuples(states['python']))
    if states.get('skips') is not None and hasattr(trainer, 'rng'):
        trainer.rng.setstate(_as_tuples(states['skips']))
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in states['cuda']])


def _as_tuples(state):
    """Python's ``random`` state with its lists (from a checkpoint) back as
    tuples."""
    if isinstance(state, list):
        state = tuple(state)
    return tuple(tuple(s) if isinstance(s, list) else s for s in state)
