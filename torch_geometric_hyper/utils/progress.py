r"""Progress reporting that suits both a terminal and a log file."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Optional, TextIO


class Progress:
    r"""A progress bar on a terminal, a plain line now and then elsewhere.

    On a terminal (``stream.isatty()``) it is a :mod:`tqdm` bar. When the
    output goes to a file or a pipe it prints one line ``desc: i/total
    (pct%, elapsed)`` at most every ``interval`` seconds (and at the end),
    so a log holds a few readable lines instead of thousands of carriage
    returns. ``enabled=False`` prints nothing at all.

    Args:
        total (int, optional): number of steps.
        desc (str, optional): label.
        enabled (bool, optional): show anything. (default: :obj:`True`)
        interval (float, optional): seconds between log lines.
            (default: 30)
        stream (file, optional): where to write (default: ``sys.stderr``).
        leave (bool, optional): keep the terminal bar when done.

    Example:
        >>> with Progress(3, 'work', stream=sys.stdout, interval=0) as bar:
        ...     for _ in range(3):
        ...         bar.update()  # doctest: +ELLIPSIS
        work: 1/3 (33%, ...s)
        work: 2/3 (67%, ...s)
        work: 3/3 (100%, ...s)
    """

    def __init__(self, total: Optional[int] = None, desc: str = '',
                 enabled: bool = True, interval: float = 30.0,
                 stream: Optional[TextIO] = None, leave: bool = False):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.interval, self.n = float(interval), 0
        self.stream = stream if stream is not None else sys.stderr
        self._start = self._last = time.monotonic()
        self._bar = None
        self._postfix = ''
        if enabled and _isatty(self.stream):
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, leave=leave,
                             file=self.stream)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        done = self.total is not None and self.n >= self.total
        if self.enabled and (now - self._last >= self.interval or done):
            self._last = now
            self._write(now)

    def reset(self, total: Optional[int] = None) -> None:
        """Starts over (e.g. a new epoch) with ``total`` steps."""
        self.total, self.n = total, 0
        self._start = self._last = time.monotonic()
        if self._bar is not None:
            self._bar.reset(total=total)

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def write(self, line: str) -> None:
        """Prints a line without breaking the terminal bar."""
        if self._bar is not None:
            from tqdm.auto import tqdm
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=sys.stdout, flush=True)

    def set_postfix(self, **values) -> None:
        """Shown after the count (e.g. the current loss)."""
        self._postfix = ', '.join(f'{k}={v}' for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def _write(self, now: float) -> None:
        count = f'{self.n}/{self.total}' if self.total else f'{self.n}'
        pct = f'{100 * self.n / self.total:.0f}%, ' if self.total else ''
        extra = f' {self._postfix}' if self._postfix else ''
        print(f'{self.desc}: {count} ({pct}{now - self._start:.0f}s)'
              f'{extra}', file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> 'Progress':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable, total: Optional[int] = None,
             desc: str = '', enabled: bool = True, interval: float = 30.0,
             stream: Optional[TextIO] = None):
    r"""Iterates over ``iterable`` while reporting with :class:`Progress`."""
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)
    with Progress(total, desc, enabled, interval, stream) as bar:
        for item in iterable:
            yield item
            bar.update()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
