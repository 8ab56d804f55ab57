r"""Models that remember how they were built, so a checkpoint can rebuild
them: :class:`Configurable`, :func:`save_model` and :func:`load_model`."""
from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Dict, Optional

from torch.nn import Module

from torch_geometric_hyper.utils.checkpoint import load_checkpoint, \
    save_atomic

PACKAGE = 'torch_geometric_hyper'


class Configurable:
    r"""Mixin recording the constructor arguments of a model.

    Every subclass's ``__init__`` is wrapped so that the outermost call
    stores its bound arguments (defaults filled in); :meth:`config` returns
    them with the class name, and :func:`load_model` rebuilds the model from
    them. Arguments must be plain values (numbers, strings, booleans,
    ``None``, tuples or lists of them).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get('__init__')
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if '_init_config' not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                values = dict(bound.arguments)
                values.pop(next(iter(signature.parameters)))  # self
                for name, p in signature.parameters.items():
                    if p.kind is p.VAR_KEYWORD and name in values:
                        values.update(values.pop(name))
                    elif p.kind is p.VAR_POSITIONAL and name in values:
                        if values.pop(name):
                            raise TypeError(
                                f"{cls.__name__} takes extra positional "
                                f"arguments, which a config cannot record")
                object.__setattr__(self, '_init_config', values)
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def config(self) -> Dict[str, Any]:
        """``{'class': 'module.Class', 'kwargs': {...}}``: what
        :func:`load_model` needs to rebuild this model."""
        cls = type(self)
        return {'class': f'{cls.__module__}.{cls.__qualname__}',
                'kwargs': dict(self.__dict__.get('_init_config', {}))}


def model_class(name: str) -> type:
    r"""The model class named ``'module.Class'`` (only this package's
    classes are loaded)."""
    module, _, qualname = name.rpartition('.')
    if not (module == PACKAGE or module.startswith(PACKAGE + '.')):
        raise ValueError(f"refusing to build {name!r}: checkpoints may only "
                         f"name classes of {PACKAGE}")
    cls = getattr(importlib.import_module(module), qualname, None)
    if not (isinstance(cls, type) and issubclass(cls, Configurable)):
        raise ValueError(f"{name!r} is not a model class of {PACKAGE}")
    return cls


def save_model(model: Module, path: str, **metadata: Any) -> None:
    r"""Saves a model's configuration with its weights (and ``metadata``,
    e.g. ``edge_size=3``), written to a temporary file and renamed, so an
    interrupted save never leaves a truncated file.

    Args:
        model (torch.nn.Module): a model of this package
            (:class:`Configurable`).
        path (str): the file to write.
        **metadata: plain values stored beside the model.

    Example:
        >>> from torch_geometric_hyper.nn import HypergraphRefiner
        >>> model = HypergraphRefiner(3, 16, max_edges=8)
        >>> save_model(model, 'model.pt', edge_size=3)  # doctest: +SKIP
        >>> model, meta = load_model('model.pt')  # doctest: +SKIP
    """
    if not isinstance(model, Configurable):
        raise TypeError(f"save_model() needs a model of {PACKAGE} (which "
                        f"records its configuration), got "
                        f"{type(model).__name__}; save its state_dict() "
                        f"yourself")
    state = {'model_config': model.config(),
             'model': model.state_dict(), 'metadata': metadata}
    save_atomic(state, path)


def load_model(path_or_checkpoint, map_location=None
               ) -> tuple:
    r"""Rebuilds a model from a file written by :func:`save_model` (or a
    training checkpoint that holds ``model_config`` and ``model``).

    Args:
        path_or_checkpoint (str or dict): a file, or an already loaded
            checkpoint dictionary.
        map_location: as in :func:`torch.load`.

    Returns:
        ``(model, metadata)``: the model in eval mode and the stored
        metadata (a dict, empty if none).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not such a checkpoint, or it holds objects
            other than tensors and plain values (refused unread).
    """
    if isinstance(path_or_checkpoint, dict):
        ckpt, where = path_or_checkpoint, 'the checkpoint'
    else:
        where = str(path_or_checkpoint)
        # weights_only: a file holding a pickled object is refused unread
        ckpt = load_checkpoint(where, map_location=map_location)
    if not isinstance(ckpt, dict) or 'model_config' not in ckpt \
            or 'model' not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt)
        raise ValueError(f"{where} holds no model configuration (keys "
                         f"{keys}); write it with "
                         f"torch_geometric_hyper.nn.save_model(), or train "
                         f"with an example script of this version")
    config = ckpt['model_config']
    model = model_class(config['class'])(**config['kwargs'])
    model.load_state_dict(ckpt['model'])
    model.eval()
    meta = dict(ckpt.get('metadata') or {})
    return model, meta
