r"""Training with `PyTorch Lightning <https://lightning.ai>`_ (optional:
``pip install 'torch_geometric_hyper[lightning]'``).

:class:`SetToHypergraphModule` is a :class:`lightning.LightningModule` that
trains any of the package's models with the package's schedules (backprop
with skips by default), slot noise, losses and validation metrics, with the
per-batch step of :func:`~torch_geometric_hyper.train.fit`;
:class:`SetLoader` draws the batches as ``fit`` does and resumes mid-epoch
exactly. ``python -m torch_geometric_hyper.lightning fit --config
examples/configs/convex_hull.yaml`` runs a YAML-configured
:class:`~lightning.pytorch.cli.LightningCLI`.
"""
try:
    import lightning  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without it
    raise ImportError(
        "torch_geometric_hyper.lightning needs the optional package "
        "'lightning': pip install 'torch_geometric_hyper[lightning]' (or "
        "pip install lightning)") from err

from torch_geometric_hyper.lightning.data import (  # noqa: E402
    SetDataModule,
    SetLoader,
)
from torch_geometric_hyper.lightning.module import (  # noqa: E402
    SetToHypergraphModule,
)

__all__ = ['SetToHypergraphModule', 'SetLoader', 'SetDataModule']
