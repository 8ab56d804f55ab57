r"""Counting the host synchronisations of a piece of code, on any device.

On a GPU, every operation whose *result on the host* depends on device
values makes the host wait for the device: reading a value (``.item()``,
``float(t)``, ``bool(t)``, ``.tolist()``), copying to the CPU
(``.cpu()``, ``.numpy()``, ``.to('cpu')``), and operations whose output
*shape* depends on values (``nonzero``, boolean-mask indexing,
``unique``, ``repeat_interleave`` without ``output_size``,
``masked_select``, one-argument ``where``, ``bincount``, which reads the
largest value to size its output). :class:`HostSyncCounter`
intercepts those calls through :class:`torch.overrides.TorchFunctionMode`,
so the count is the same on CPU, where no synchronisation is ever
visible: a CPU-only test can pin how many times a training step would
stop a GPU.

Tensors known to live on the host are not counted: results of a transfer,
tensors made by a factory without a ``device`` or with ``device='cpu'``
(e.g. the optimizer's step counters) and results computed from host tensors
alone. A factory given a ``device`` counts as a device tensor, so on CPU
the count errs on the high side.

Example:
    >>> import torch
    >>> from torch_geometric_hyper.testing import HostSyncCounter
    >>> x = torch.randn(5)
    >>> with HostSyncCounter() as syncs:
    ...     y = (x * 2).sum()
    ...     v = float(y)
    ...     i = x[x > 0]
    >>> syncs.count, sorted(syncs.by_kind)
    (2, ['__float__', 'mask index'])
"""
from __future__ import annotations

import collections
import traceback
import weakref
from typing import Dict, List, Tuple

import torch
from torch.overrides import TorchFunctionMode

from torch_geometric_hyper import debug

_READS = {
    torch.Tensor.item: 'item',
    torch.Tensor.tolist: 'tolist',
    torch.Tensor.__bool__: '__bool__',
    torch.Tensor.__float__: '__float__',
    torch.Tensor.__int__: '__int__',
    torch.Tensor.__index__: '__index__',
    torch.Tensor.numpy: 'numpy',
    torch.Tensor.cpu: 'cpu',
    torch.Tensor.nonzero: 'nonzero',
    torch.nonzero: 'nonzero',
    torch.Tensor.unique: 'unique',
    torch.unique: 'unique',
    torch.unique_consecutive: 'unique',
    torch.masked_select: 'masked_select',
    torch.Tensor.masked_select: 'masked_select',
    torch.argwhere: 'nonzero',
    torch.Tensor.argwhere: 'nonzero',
    # sizes its output by the largest value
    torch.bincount: 'bincount',
    torch.Tensor.bincount: 'bincount',
}
_SHAPED = (torch.repeat_interleave, torch.Tensor.repeat_interleave)


def _is_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index, )
    return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool
               for t in items)


class HostSyncCounter(TorchFunctionMode):
    r"""Context manager counting the calls that synchronise host and
    device (see the module docstring).

    Attributes:
        count (int): calls counted.
        by_kind (collections.Counter): counts per kind (``'item'``,
            ``'cpu'``, ``'mask index'``, ...).
        where (list): ``(kind, 'file:line')`` of each call, the innermost
            frame outside torch (with ``record_stack=True``).

    Args:
        record_stack (bool, optional): record where each call was made
            (slower). (default: :obj:`False`)
        as_accelerator (bool, optional): while counting, the library's
            input checks that need a sync behave as on a GPU (off unless
            :func:`~torch_geometric_hyper.nn.set_input_validation` turned
            them on) and the kernels skip their host-only fast paths
            (:func:`torch_geometric_hyper.debug.set_host_as_accelerator`),
            so a CPU run counts what a GPU run would do.
            (default: :obj:`True`)
    """

    def __init__(self, record_stack: bool = False,
                 as_accelerator: bool = True):
        super().__init__()
        self.as_accelerator = as_accelerator
        self.count = 0
        self.by_kind: Dict[str, int] = collections.Counter()
        self.where: List[Tuple[str, str]] = []
        self.record_stack = record_stack
        self._host: Dict[int, 'weakref.ref'] = {}

    def _hit(self, kind: str) -> None:
        self.count += 1
        self.by_kind[kind] += 1
        if self.record_stack:
            for frame in reversed(traceback.extract_stack()):
                if '/torch/' not in frame.filename and \
                        frame.filename != __file__:
                    self.where.append((kind,
                                       f'{frame.filename}:{frame.lineno}'))
                    break

    # host tensors: what a transfer returned, factories without a device
    # (torch's default is the CPU), and results of host tensors alone
    def _is_host(self, t) -> bool:
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def _mark(self, out) -> None:
        for t in _tensors(out):
            self._host[id(t)] = weakref.ref(t)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = _tensors((args, kwargs))
        on_host = all(self._is_host(t) for t in inputs) if inputs else \
            _host_device(kwargs.get('device'))
        # the mode is off inside its own handler: only outermost calls come
        if not (inputs and on_host):
            kind = _READS.get(func)
            if kind is None:
                if func is torch.Tensor.__getitem__ and len(args) > 1 \
                        and _is_bool_index(args[1]):
                    kind = 'mask index'
                elif func in _SHAPED and kwargs.get('output_size') is None \
                        and isinstance(args[1] if len(args) > 1 else
                                       kwargs.get('repeats'), torch.Tensor):
                    kind = 'repeat_interleave'
                elif func is torch.where and len(args) == 1 and not kwargs:
                    kind = 'nonzero'
                elif func is torch.Tensor.to and _to_host(args, kwargs):
                    kind = 'cpu'
            if kind is not None:
                self._hit(kind)
        out = func(*args, **kwargs)
        transfer = _READS.get(func) == 'cpu' or (
            func is torch.Tensor.to and _to_host(args, kwargs))
        if transfer and not on_host and any(out is i for i in inputs):
            # on CPU, .cpu() and .to('cpu') return their input; on a GPU
            # they return a host copy, and so does the counter
            out = out.clone()
        if on_host or transfer or _READS.get(func) == 'numpy':
            self._mark(out)
        return out

    def __enter__(self):
        self._previous = debug.is_host_as_accelerator()
        debug.set_host_as_accelerator(self.as_accelerator)
        return super().__enter__()

    def __exit__(self, *exc):
        debug.set_host_as_accelerator(self._previous)
        return super().__exit__(*exc)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(count={self.count}, '
                f'{dict(self.by_kind)})')


def _tensors(obj) -> list:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _host_device(device) -> bool:
    """A factory's ``device``: none (torch's default) or the string
    ``'cpu'`` is the host."""
    return device is None or (isinstance(device, str)
                              and torch.device(device).type == 'cpu')


def _to_host(args, kwargs) -> bool:
    # ``.to('cpu')`` (a string) asks for the host; ``.to(device)`` with a
    # torch.device is taken as "to the compute device", which on a CPU run
    # cannot be told apart from the host
    target = kwargs.get('device')
    if target is None:
        for a in args[1:]:
            if isinstance(a, (str, torch.device)):
                target = a
                break
    return isinstance(target, str) and torch.device(target).type == 'cpu'
