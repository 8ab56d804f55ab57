r"""A data loader of sets for Lightning that resumes mid-epoch exactly and
splits each global batch over the processes itself."""
from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch_geometric.data import Batch

from torch_geometric_hyper.train.distributed import shard_batch
from torch_geometric_hyper.train.step import set_sizes
from torch_geometric_hyper.utils.validation import check_int


def _ranks():
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class _GlobalBatches(Sampler):
    """Yields this process's share of each global batch as a list of
    ``(index, position, global_sets, weight, epoch, batch)`` tuples."""

    def __init__(self, dataset, batch_size: int, shuffle: bool, seed: int):
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.seed = shuffle, seed
        self.sizes = set_sizes(dataset)
        self.epoch = 0  # the epoch the next iteration runs
        self.start = 0  # its first batch (after a resume)
        self.done = (0, 0)  # (epoch, batches) trained so far in it

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self.dataset))
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.dataset), generator=gen)

    def __iter__(self) -> Iterator[List[tuple]]:
        W, rank = _ranks()
        # one iterator per epoch; Lightning may stop drawing from it after
        # the last batch without exhausting it, so the epoch moves on here
        epoch, G = self.epoch, self.batch_size
        self.epoch += 1
        order = self.order(epoch)
        start, self.start = self.start, 0
        for b in range(start, len(self)):
            index = order[b * G:(b + 1) * G].tolist()
            local = shard_batch(index, [self.sizes[i] for i in index],
                                W)[rank]
            weight = len(local)
            if not local:  # a copy with weight 0 keeps the ranks in step
                local = [index[0]]
            pos = {i: p for p, i in enumerate(index)}
            yield [(i, pos[i], len(index), weight, epoch, b) for i in local]


class SetLoader(DataLoader):
    r"""Mini-batches of sets for Lightning's
    :class:`~lightning.pytorch.Trainer`, as
    :class:`~torch_geometric_hyper.train.fit` draws them: each epoch's
    order from ``(seed, epoch)``, each global batch of ``batch_size`` sets
    split over the processes by set size
    (:func:`~torch_geometric_hyper.train.shard_batch`), and each batch
    carrying where its sets sit in the global batch, so that the slot noise
    and the loss weights do not depend on the number of processes.

    It is stateful: Lightning stores its position in its checkpoints and
    restores it, so a run resumed from a checkpoint taken mid-epoch
    continues with the next batch (the position counts the batches the
    module has trained, not the ones Lightning prefetched). Use it with
    ``Trainer(use_distributed_sampler=False)``: it shards the batches
    itself.

    Args:
        dataset: a dataset of
            :class:`~torch_geometric_hyper.data.HypergraphData`.
        batch_size (int): the global mini-batch (split over the processes).
        shuffle (bool, optional): a new order every epoch. (default:
            :obj:`True`)
        seed (int, optional): seed of the order. (default: :obj:`0`)
        **kwargs: other :class:`torch.utils.data.DataLoader` arguments
            (e.g. ``num_workers``).
    """

    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = True,
                 seed: int = 0, **kwargs):
        batch_size = check_int('batch_size', batch_size)
        if len(dataset) == 0:
            raise ValueError('SetLoader needs a non-empty dataset')
        sampler = _GlobalBatches(dataset, batch_size, shuffle, seed)
        super().__init__(_Tagged(dataset), batch_sampler=sampler,
                         collate_fn=_collate, **kwargs)
        self.sets, self.seed = dataset, seed

    def mark_trained(self, batch: Batch) -> None:
        """Records that ``batch`` was trained on (called by the module at
        the end of its training step)."""
        _, _, epoch, b = batch.loader_meta.tolist()
        self.batch_sampler.done = (epoch, b + 1)

    def state_dict(self) -> Dict[str, int]:
        """The epoch and the batches of it trained so far."""
        epoch, batches = self.batch_sampler.done
        if batches >= len(self.batch_sampler):
            epoch, batches = epoch + 1, 0
        return {'epoch': epoch, 'batch': batches}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Continues from :meth:`state_dict`'s position."""
        self.batch_sampler.epoch = int(state['epoch'])
        self.batch_sampler.start = int(state['batch'])
        self.batch_sampler.done = (int(state['epoch']), int(state['batch']))


class _Tagged(torch.utils.data.Dataset):
    """The set of a sampler tuple, with the tuple."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple):
        return self.dataset[item[0]], item


def _collate(items: List) -> Batch:
    batch = Batch.from_data_list([data for data, _ in items])
    batch.set_index = torch.tensor([t[0] for _, t in items])
    batch.global_pos = torch.tensor([t[1] for _, t in items])
    batch.loader_meta = torch.tensor(list(items[0][1][2:]))
    return batch


def global_batch_info(batch: Batch, default_sets: Optional[int] = None):
    r"""``(global_sets, local_pos, weight, step_in_epoch, epoch)`` of a
    batch from :class:`SetLoader`, or of a plain PyG batch (all its sets,
    in order) when it carries none."""
    meta = getattr(batch, 'loader_meta', None)
    if meta is None:
        n = batch.num_graphs
        return n, list(range(n)), n, None, None
    G, weight, epoch, b = meta.tolist()
    return G, batch.global_pos.tolist(), weight, b, epoch


class SetDataModule(L.LightningDataModule):
    r"""Training, validation and test sets as a
    :class:`~lightning.pytorch.LightningDataModule` of
    :class:`SetLoader` objects (what the YAML configurations of ``python -m
    torch_geometric_hyper.lightning`` build).

    Args:
        train: the training dataset.
        val (optional): the validation dataset.
        test (optional): the test dataset.
        batch_size (int, optional): the global training mini-batch.
            (default: :obj:`64`)
        eval_batch_size (int, optional): the validation and test
            mini-batch. (default: :obj:`256`)
        seed (int, optional): seed of the training order. (default:
            :obj:`0`)
    """

    def __init__(self, train: Dataset, val: Optional[Dataset] = None,
                 test: Optional[Dataset] = None, batch_size: int = 64,
                 eval_batch_size: int = 256, seed: int = 0):
        super().__init__()
        self.train, self.val, self.test = train, val, test
        self.batch_size = check_int('batch_size', batch_size)
        self.eval_batch_size = check_int('eval_batch_size', eval_batch_size)
        self.seed = check_int('seed', seed, minimum=0)

    def train_dataloader(self) -> SetLoader:
        """The training :class:`SetLoader` (shuffled by the seed)."""
        return SetLoader(self.train, self.batch_size, seed=self.seed)

    def val_dataloader(self):
        """The validation :class:`SetLoader` (in order), if any."""
        if self.val is None:
            return []
        return SetLoader(self.val, self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        """The test :class:`SetLoader` (in order), if any."""
        if self.test is None:
            return []
        return SetLoader(self.test, self.eval_batch_size, shuffle=False)
