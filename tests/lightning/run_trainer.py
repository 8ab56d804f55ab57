"""Trains the refiner with SetToHypergraphModule on tiny hulls and saves
the final parameters and the per-batch losses (run by test_module.py, in a
subprocess, because Lightning's 'ddp' strategy relaunches this script for
its other processes).

    python run_trainer.py OUT DEVICES [--ckpt-every N] [--resume PATH]
        [--max-steps N]
"""
import argparse
import os.path as osp

import lightning as L
import torch

from torch_geometric_hyper.datasets import ConvexHull
from torch_geometric_hyper.lightning import SetLoader, SetToHypergraphModule
from torch_geometric_hyper.nn import HypergraphRefiner, MatchedIncidenceLoss


class Record(L.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, idx):
        self.losses.append(float(outputs['loss']))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('devices', type=int)
    p.add_argument('--max-steps', type=int, default=10)
    p.add_argument('--ckpt-every', type=int, default=0)
    p.add_argument('--resume', default=None)
    p.add_argument('--root', default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    root = args.root or osp.join(args.out, 'data')
    train = ConvexHull(root, 'train', num_samples=30, num_points=(6, 12),
                       log=False)
    val = ConvexHull(root, 'val', num_samples=6, num_points=(6, 12),
                     log=False)
    m = max(train.max_hyperedges, val.max_hyperedges)
    torch.manual_seed(0)
    model = HypergraphRefiner(3, 8, m, 4).double()
    module = SetToHypergraphModule(model, MatchedIncidenceLoss(), T=4, B=1,
                                   S=2, lr=3e-3, grad_clip=0.5,
                                   metrics='hyperedges', edge_size=3)
    record = Record()
    callbacks = [record]
    if args.ckpt_every:
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(
            dirpath=osp.join(args.out, 'ckpt'), every_n_train_steps=
            args.ckpt_every, save_top_k=-1, save_on_train_epoch_end=False))
    trainer = L.Trainer(
        max_steps=args.max_steps, accelerator='cpu', devices=args.devices,
        strategy='ddp' if args.devices > 1 else 'auto',
        precision='64-true', logger=False, callbacks=callbacks,
        enable_checkpointing=bool(args.ckpt_every),
        enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, val_check_interval=2,
        num_sanity_val_steps=0)
    trainer.fit(module, SetLoader(train, 8, seed=0),
                SetLoader(val, 3, shuffle=False), ckpt_path=args.resume)
    if trainer.global_rank == 0:
        torch.save({'params': {k: v.detach().cpu() for k, v in
                               module.model.state_dict().items()},
                    'losses': record.losses,
                    'metrics': {k: float(v) for k, v in
                                trainer.callback_metrics.items()}},
                   osp.join(args.out, 'result.pt'))


if __name__ == '__main__':
    main()
