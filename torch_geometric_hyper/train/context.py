r"""The process a run trains in: device, dtype, ranks, seeds, evaluation
over the ranks."""
from __future__ import annotations

import contextlib
import os
import random
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
from torch_geometric.data import Batch

from torch_geometric_hyper.nn.base import RecurrentModel
from torch_geometric_hyper.train.config import TrainConfig
from torch_geometric_hyper.train.distributed import DistributedContext


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    r""":func:`torch.compile` for training, in place (the parameters and
    ``state_dict`` keys stay as they are).

    A recurrent refiner gets its ``step`` (a step without gradient) and its
    ``run`` (the :math:`B` steps with gradient of an update, which the
    trainers run in one call) compiled, with dynamic shapes: the
    :math:`B` steps become one graph, forward and backward, so the
    gradients of the shared weights are summed inside it rather than by
    one addition per weight and step. Any other model is compiled whole.

    Args:
        model (torch.nn.Module): the model.

    Returns:
        torch.nn.Module: ``model``.
    """
    if isinstance(model, RecurrentModel):
        model.step = torch.compile(model.step, dynamic=True)
        model.run = torch.compile(model.run, dynamic=True)
    else:
        model.compile(dynamic=True)
    return model


def compile_loss(loss_fn) -> None:
    """Compiles a loss module that defines its own ``compile`` (e.g.
    :meth:`MatchedIncidenceLoss.compile
    <torch_geometric_hyper.nn.MatchedIncidenceLoss.compile>`: its device
    half), once; any other loss stays eager.

    Args:
        loss_fn (callable): the loss.
    """
    own = getattr(type(loss_fn), 'compile', None)
    if isinstance(loss_fn, torch.nn.Module) and \
            own is not torch.nn.Module.compile and \
            getattr(loss_fn, '_compiled', None) is None:
        loss_fn.compile()


def resolve_device(name: str, local_rank: int = 0,
                   local_world_size: Optional[int] = None) -> torch.device:
    """``config.device`` (``--device``) as a :class:`torch.device`.

    ``'auto'`` is CUDA when there is a GPU for every process of this node
    (``local_world_size``, default ``LOCAL_WORLD_SIZE`` set by ``torchrun``,
    else 1), otherwise the CPU for all of them. A plain ``'cuda'`` under
    several processes is the local rank's GPU, and a rank without one is a
    :class:`ValueError` that says how many GPUs there are.
    """
    if local_world_size is None:
        local_world_size = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    if name == 'auto':
        name = 'cuda' if (torch.cuda.is_available() and
                          torch.cuda.device_count() >= local_world_size) \
            else 'cpu'
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device: unknown device '{name}' ({err})")
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available")
        if device.index is None:
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise ValueError(
                    f"--device {name}: local rank {local_rank} needs GPU "
                    f"{local_rank}, but this node has {count}; launch at "
                    f"most {count} process(es) per node "
                    f"(torchrun --nproc_per_node {count}) or use --device "
                    f"cpu")
            device = torch.device('cuda', local_rank)
    return device



class Run:
    r"""One training process: device, dtype, ranks, output directory, seeds.

    Made by :func:`~torch_geometric_hyper.train.fit` from its config, or
    beforehand by a script that needs the device, the ranks or
    :meth:`main_first` before it builds its data (then passed to ``fit`` as
    ``context``). It sets the number of threads, picks the device
    (:func:`resolve_device`), joins the process group under ``torchrun``,
    seeds torch, NumPy and Python's ``random`` with ``config.seed`` and
    makes ``config.out``. On a CPU it flushes subnormal floats to zero
    (:func:`torch.set_flush_denormal`): they can slow a batch tenfold and
    more, and flushing them leaves the pinned training losses bit for bit
    as they were. :meth:`print` prints on rank 0 only.

    Args:
        config (TrainConfig): the run's options.
    """

    def __init__(self, config: TrainConfig):
        self.config = config
        self.start = time.perf_counter()
        if config.threads:
            torch.set_num_threads(config.threads)
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        self.device = resolve_device(config.device, local_rank)
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        if self.device.type == 'cpu':
            # subnormal floats (e.g. products of sigmoids near 0) slow some
            # CPUs' arithmetic by orders of magnitude; flushed to zero they
            # cost nothing and change no result above 1e-38
            torch.set_flush_denormal(True)
        self.dtype = config.torch_dtype
        self.dist = DistributedContext(self.device)
        self._prepared = set()
        self.seed_everything()
        if self.is_main and config.out:
            os.makedirs(config.out, exist_ok=True)

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints."""
        return self.dist.is_main

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    def print(self, *args, **kwargs) -> None:
        """:func:`print` on rank 0 (flushed)."""
        if self.is_main:
            print(*args, flush=True, **kwargs)

    def seed_everything(self) -> None:
        """Seeds torch, NumPy and Python's ``random`` with ``--seed`` (the
        same on every rank)."""
        seed = self.config.seed
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (e.g. builds a dataset cache), the
        others after it."""
        if not self.is_main:
            self.dist.barrier()
        yield
        if self.is_main:
            self.dist.barrier()

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Moves ``model`` to the device and dtype, gives every rank rank
        0's weights and compiles it where :attr:`compiles`
        (:func:`compile_model`; once per model: preparing it again returns
        it unchanged)."""
        if id(model) in self._prepared:
            return model
        model = model.to(device=self.device, dtype=self.dtype)
        self.dist.broadcast_parameters(model)
        self._prepared.add(id(model))
        if self.compiles:
            compile_model(model)
        return model

    @property
    def compiles(self) -> bool:
        """Whether :meth:`prepare` compiles the model: ``config.compile``,
        or by default on CUDA only (there a step's hundreds of small kernels
        cost more host time than device time; on a CPU the compilation
        takes minutes and gains little)."""
        if self.config.compile is not None:
            return bool(self.config.compile)
        return self.device.type == 'cuda'

    def to_device(self, batch):
        """``batch`` on the device, floating tensors in ``--dtype``. A
        batch with ``num_hyperedges`` keeps a host copy of them as a list,
        ``num_hyperedges_host``, so the matched loss need not read them back
        from the device."""
        counts = getattr(batch, 'num_hyperedges', None)
        if isinstance(counts, torch.Tensor) and counts.device.type == 'cpu':
            batch.num_hyperedges_host = counts.reshape(-1).tolist()
        batch = batch.to(self.device)
        if self.dtype != torch.float32:
            batch = batch.apply(lambda t: t.to(self.dtype)
                                if t.is_floating_point() else t)
        return batch

    def autocast(self):
        """bfloat16 autocast with ``config.bf16``, else a no-op
        context."""
        if not self.config.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def batches(self, dataset, batch_size: int, shard: bool = False):
        """Mini-batches of ``dataset`` in order, on the device; with
        ``shard`` only this rank's share (every ``world_size``-th set).
        Each batch carries ``set_index`` (``[num_graphs]``, the sets'
        positions in ``dataset``) so evaluation can draw each set's slot
        noise from the set alone (:func:`eval_slots`)."""
        index = list(range(len(dataset)))
        if shard:
            index = index[self.dist.rank::self.world_size]
        for i in range(0, len(index), batch_size):
            chunk = index[i:i + batch_size]
            batch = Batch.from_data_list([dataset[j] for j in chunk])
            batch.set_index = torch.tensor(chunk, dtype=torch.long)
            yield self.to_device(batch)

    def evaluate(self, evaluate: Callable, model, dataset) -> Dict[str, float]:
        r"""Runs ``evaluate(model, batches)`` on this rank's share of
        ``dataset`` and averages the metrics over the ranks, weighted by
        the number of sets (exact for per-set means)."""
        n = len(range(self.dist.rank, len(dataset), self.world_size))
        was_training = model.training
        model.eval()
        with _preserved_rng(self.device), torch.no_grad(), self.autocast():
            res = evaluate(model, self.batches(
                dataset, self.config.eval_batch_size, shard=True))
        model.train(was_training)
        keys = sorted(res)
        values = []
        for k in keys:  # a Ratio pools its counts, the rest are set means
            v = res[k]
            values += [v.numerator, v.denominator] if isinstance(v, Ratio) \
                else [float(v) * n]
        sums = self.dist.all_reduce_sum(values + [n])
        out, i = {}, 0
        for k in keys:
            if isinstance(res[k], Ratio):
                out[k] = float(Ratio(sums[i], sums[i + 1]))
                i += 2
            else:
                out[k] = sums[i] / sums[-1]
                i += 1
        return out

    def close(self) -> None:
        """Leaves the process group."""
        self.dist.close()


class Ratio(float):
    r"""A metric pooled over the sets (``numerator / denominator``, e.g.
    true positives over all positives) rather than a mean of per-set
    values. It is a :class:`float`; :meth:`Run.evaluate` sums the numerator
    and the denominator over the processes before dividing, so a pooled
    metric is exact with any number of processes.

    Example:
        >>> r = Ratio(3, 4)
        >>> float(r), r.numerator, r.denominator
        (0.75, 3.0, 4.0)
    """

    def __new__(cls, numerator: float, denominator: float):
        value = float(numerator) / float(denominator) if denominator \
            else 0.0
        self = super().__new__(cls, value)
        self.numerator, self.denominator = float(numerator), \
            float(denominator)
        return self


@contextlib.contextmanager
def _preserved_rng(device: torch.device):
    py, npy = random.getstate(), np.random.get_state()
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)
