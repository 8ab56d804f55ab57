r"""Training step for one-shot (non-recurrent) models such as the baselines
:class:`~torch_geometric_hyper.nn.Set2Graph`,
:class:`~torch_geometric_hyper.nn.SetTransformer` and
:class:`~torch_geometric_hyper.nn.SlotAttention`."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from torch_geometric_hyper.train.skips import _agreed, check_finite_loss
from torch_geometric_hyper.utils.validation import check_float


class OneShot:
    r"""Plain training step: forward, loss, backward, optimizer step.

    The counterpart of
    :class:`~torch_geometric_hyper.train.BackpropWithSkips` for models without
    refinement steps, with the same call signature, so a training loop can
    hold either.

    Args:
        max_grad_norm (float, optional): clip the gradient norm to this.
        forward_kwargs (dict, optional): extra keyword arguments of every
            forward call.
        skip_nonfinite (bool, optional): skip a mini-batch whose loss is NaN
            or infinite (counted in :attr:`num_skipped`) instead of raising
            :class:`~torch_geometric_hyper.train.NonFiniteLossError`.

    Example:
        >>> trainer = OneShot()  # doctest: +SKIP
        >>> stats = trainer(model, optimizer, loss_fn, batch)  # doctest: +SKIP
    """

    def __init__(self, max_grad_norm: Optional[float] = None,
                 forward_kwargs: Optional[dict] = None,
                 skip_nonfinite: bool = False):
        self.max_grad_norm = check_float('max_grad_norm', max_grad_norm,
                                         allow_none=True)
        self.forward_kwargs = dict(forward_kwargs or {})
        self.skip_nonfinite = skip_nonfinite
        #: Mini-batches skipped for a non-finite loss.
        self.num_skipped = 0

    def __call__(self, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, loss_fn: Callable, data,
                 **kwargs) -> Dict[str, float]:
        r"""Trains on one mini-batch.

        Args:
            model: called as ``model(data.x, data.batch, data.num_graphs,
                **forward_kwargs, **kwargs)``.
            optimizer: its optimizer.
            loss_fn (callable): ``loss_fn(prediction, data) -> scalar``.
            data: a batch with ``x``, ``batch`` and ``num_graphs``.

        Returns:
            dict: ``loss`` and ``grad_steps`` (always 1).
        """
        model.train()
        pred = model(data.x, data.batch, data.num_graphs,
                     **self.forward_kwargs, **kwargs)
        loss = loss_fn(pred, data)
        value = float(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        if not check_finite_loss(_agreed(optimizer, value), 0,
                                 self.skip_nonfinite):
            self.num_skipped += 1
            return {'loss': float('nan'), 'grad_steps': 1, 'skipped': 1.0}
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(),
                                           self.max_grad_norm)
        optimizer.step()
        return {'loss': value, 'grad_steps': 1, 'skipped': 0.0}

    def __repr__(self) -> str:
        clip = '' if self.max_grad_norm is None else \
            f'max_grad_norm={self.max_grad_norm}'
        return f'{self.__class__.__name__}({clip})'
