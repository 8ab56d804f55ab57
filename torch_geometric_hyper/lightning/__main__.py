r"""``python -m torch_geometric_hyper.lightning fit --config CONFIG.yaml``:
Lightning's command line over :class:`SetToHypergraphModule` and
:class:`SetDataModule` (``--help``, ``--print_config``; every option of the
YAML can be overridden on the command line, e.g. ``--trainer.max_steps
100``). Configurations of the three tasks are in ``examples/configs/``."""
from lightning.pytorch.cli import LightningCLI

from torch_geometric_hyper.lightning.data import SetDataModule
from torch_geometric_hyper.lightning.module import SetToHypergraphModule


def main(args=None):
    """Runs the command line (``args``: a list of arguments instead of
    ``sys.argv``)."""
    return LightningCLI(
        SetToHypergraphModule, SetDataModule,
        # SetLoader splits each global batch over the processes itself
        trainer_defaults={'use_distributed_sampler': False},
        save_config_kwargs={'overwrite': True}, args=args)


if __name__ == '__main__':
    main()
