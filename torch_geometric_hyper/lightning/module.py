r"""A LightningModule that trains the package's models with the package's
schedules, slot noise, matched losses and metrics."""
from __future__ import annotations

import random
from typing import Callable, Optional

import lightning as L
import torch

from torch_geometric_hyper.lightning.data import SetLoader, global_batch_info
from torch_geometric_hyper.train.config import METHODS, TrainConfig
from torch_geometric_hyper.train.distributed import DistributedContext
from torch_geometric_hyper.train.evaluators import (
    adjacency_evaluator,
    hyperedge_evaluator,
    partition_evaluator,
)
from torch_geometric_hyper.train.fit import loss_evaluator
from torch_geometric_hyper.train.scaling import GlobalStep
from torch_geometric_hyper.train.step import (
    is_recurrent,
    make_trainer,
    training_step,
)
from torch_geometric_hyper.utils.validation import check_float, check_int

#: ``metrics`` choices: what the validation logs.
METRICS = ('hyperedges', 'adjacency', 'partitions', 'loss')
SCHEDULES = METHODS + ('one_shot',)


class SetToHypergraphModule(L.LightningModule):
    r"""Trains a set-to-hypergraph model with Lightning, with the same
    per-batch step as :func:`~torch_geometric_hyper.train.fit`.

    Manual optimisation: each training batch runs the schedule's updates
    (backprop with skips by default: :math:`S` updates, each through
    :math:`B` of :math:`T` refinement steps) with the slot noise seeded by
    the seed and the batch's index, the loss scaled to this process's share
    of the global batch, and the gradients averaged over the processes
    before clipping and each update (the refiners are stepped through
    ``init_state``/``step``, never ``forward``, so Lightning's DDP wrapper
    is not used for the gradients). Validation logs ``val/<metric>`` of
    :attr:`metrics` (the three hyperedge F1 counts, the adjacency metrics
    or the partition metrics) with ``val/f1`` for checkpoint selection.
    Checkpoints hold what an exact resume needs (the skip sampler's state
    and the number of batches trained); with :class:`SetLoader` a run
    resumed from a checkpoint taken mid-epoch equals the uninterrupted one.

    Args:
        model (torch.nn.Module): a model of the package (a refiner, or a
            one-shot baseline).
        loss_fn (torch.nn.Module): its loss, e.g.
            :class:`~torch_geometric_hyper.nn.MatchedIncidenceLoss`.
        schedule (str, optional): ``'skips'``, ``'bptt'``, ``'tbptt'`` or
            ``'one_shot'`` (default: backprop with skips for recurrent
            models, one-shot for the others).
        lr (float, optional): Adam learning rate. (default: :obj:`3e-4`)
        T (int, optional): refinement steps. (default: :obj:`16`)
        B (int, optional): steps back-propagated per update. (default:
            :obj:`4`)
        S (int, optional): updates per batch. (default: :obj:`2`)
        grad_clip (float, optional): clip the global gradient norm.
        seed (int, optional): seed of the skips and the slot noise.
        metrics (str, optional): ``'hyperedges'``, ``'adjacency'``,
            ``'partitions'`` or ``'loss'``. (default: :obj:`'loss'`)
        edge_size (int, optional): nodes per hyperedge for the hyperedge
            metrics (default: threshold decoding).
        evaluate (callable, optional): an evaluation of your own,
            ``evaluate(model, batches) -> dict`` (overrides ``metrics``).
    """

    def __init__(self, model: torch.nn.Module, loss_fn: torch.nn.Module,
                 schedule: Optional[str] = None, lr: float = 3e-4,
                 T: int = 16, B: int = 4, S: int = 2,
                 grad_clip: Optional[float] = None, seed: int = 0,
                 metrics: str = 'loss', edge_size: Optional[int] = None,
                 evaluate: Optional[Callable] = None):
        super().__init__()
        if schedule is not None and schedule not in SCHEDULES:
            raise ValueError(f"'schedule' must be one of {SCHEDULES} or "
                             f"None, got {schedule!r}")
        if metrics not in METRICS:
            raise ValueError(f"'metrics' must be one of {METRICS}, got "
                             f"{metrics!r}")
        self.automatic_optimization = False
        self.model, self.loss_fn = model, loss_fn
        self.lr = check_float('lr', lr)
        self.grad_clip = check_float('grad_clip', grad_clip,
                                     allow_none=True)
        self.seed = check_int('seed', seed, minimum=0)
        recurrent = is_recurrent(model) and schedule != 'one_shot'
        if schedule == 'one_shot' or not recurrent:
            self.schedule = make_trainer(TrainConfig(), recurrent=False)
        else:
            config = TrainConfig(method=schedule or 'skips', T=T, B=B, S=S,
                                 seed=self.seed)
            self.schedule = make_trainer(config, recurrent=True)
        self.T = T
        self.metrics, self.edge_size = metrics, edge_size
        self.evaluate = evaluate or self._evaluator()
        #: Training batches so far (seeds each batch's slot noise).
        self.batches_trained = 0
        self._dist = None

    def _evaluator(self) -> Callable:
        T = self.T if is_recurrent(self.model) else None
        if self.metrics == 'hyperedges':
            return hyperedge_evaluator(self.edge_size, self.loss_fn,
                                       num_iterations=T, seed=self.seed)
        if self.metrics == 'adjacency':
            return adjacency_evaluator()
        if self.metrics == 'partitions':
            return partition_evaluator(T, seed=self.seed)
        return loss_evaluator(self.loss_fn, self.seed)

    def forward(self, x, batch=None, num_graphs=None, **kwargs):
        """The model's prediction (see its ``forward``)."""
        return self.model(x, batch, num_graphs, **kwargs)

    def configure_optimizers(self):
        """Adam over the model's parameters at :attr:`lr`."""
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def setup(self, stage: str) -> None:
        """Reads the process group Lightning made (or none); on a CPU
        flushes subnormal floats to zero, as
        :class:`~torch_geometric_hyper.train.Run` does."""
        # the group is Lightning's (or none): the context reads its size
        self._dist = DistributedContext(self.device)
        if self.device.type == 'cpu':
            torch.set_flush_denormal(True)

    # -- training ----------------------------------------------------------
    def _as_model_dtype(self, batch):
        """Floating tensors of ``batch`` in the parameters' dtype (as
        :meth:`~torch_geometric_hyper.train.Run.to_device` does)."""
        dtype = next(self.model.parameters()).dtype
        if batch.x.dtype == dtype:
            return batch
        return batch.apply(lambda t: t.to(dtype) if t.is_floating_point()
                           else t)

    def training_step(self, batch, batch_idx: int):
        """The schedule's updates on one batch
        (:func:`~torch_geometric_hyper.train.training_step`); logs
        ``train/loss``."""
        batch = self._as_model_dtype(batch)
        G, pos, weight, _, _ = global_batch_info(batch)
        optimizer = GlobalStep(self.optimizers(), self.model, self._dist,
                               self.grad_clip)
        stats = training_step(
            self.model, self.schedule, optimizer, self.loss_fn, batch,
            step=self.batches_trained, seed=self.seed, global_sets=G,
            local_pos=pos, local_weight=weight, dist=self._dist)
        self.batches_trained += 1
        loss = self._dist.all_reduce_sum([stats['loss']])[0] / \
            self._dist.world_size
        self.log('train/loss', loss, prog_bar=True, batch_size=G)
        for loader in self._train_loaders():
            loader.mark_trained(batch)
        return torch.tensor(loss)

    def _train_loaders(self):
        loop = getattr(self.trainer, 'fit_loop', None)
        combined = getattr(loop, '_combined_loader', None)
        flat = combined.flattened if combined is not None else []
        return [dl for dl in flat if isinstance(dl, SetLoader)]

    # -- validation --------------------------------------------------------
    def validation_step(self, batch, batch_idx: int):
        """Logs ``val/<metric>`` of one batch."""
        batch = self._as_model_dtype(batch)
        res = self.evaluate(self.model, [batch])
        for key, value in res.items():
            self.log(f'val/{key}', float(value), batch_size=batch.num_graphs,
                     sync_dist=True, prog_bar=key == 'f1')

    # -- checkpoints -------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Stores the skip sampler's state and the batches trained."""
        rng = getattr(self.schedule, 'rng', None)
        checkpoint['tgh'] = {
            'batches_trained': self.batches_trained,
            'skips': rng.getstate() if isinstance(rng, random.Random)
            else None}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restores :meth:`on_save_checkpoint`'s state."""
        state = checkpoint.get('tgh') or {}
        self.batches_trained = int(state.get('batches_trained', 0))
        rng = getattr(self.schedule, 'rng', None)
        if state.get('skips') is not None and rng is not None:
            s = state['skips']
            rng.setstate((s[0], tuple(s[1]), s[2]))
