"""Progress bars and Ctrl-C for the long commands.

A bar is a tqdm bar on stderr, off with ``--quiet`` or when stderr is not a
terminal. Ctrl-C only sets a flag (:class:`Interrupt`): the engine's progress
handler returns it, so the library cancels and undoes the batch in flight, and
the batch loops stop between batches. The command then reports what was done.
"""

from __future__ import annotations

import importlib
import signal
import sys
import types
from typing import Any, Dict, Optional

from .._db import ProgressFn, ProgressOp, SvDBPython

__all__ = ["Bar", "EngineBars", "Interrupt", "bars_enabled"]

#: Unit and wording of each operation the engine reports.
_OPS: Dict[str, str] = {
    "write": "checking rows",
    "link": "linking rows",
    "checkpoint": "checkpoint",
    "verify": "verifying",
}


# tqdm has no type information of its own (types-tqdm may be missing).
_tqdm: Any = importlib.import_module("tqdm").tqdm


def bars_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


class Bar:
    """One progress bar (a no-op when disabled), with rate and ETA."""

    def __init__(self, desc: str, total: Optional[int], unit: str, enabled: bool) -> None:
        self._bar: Optional[Any] = None
        if enabled:
            self._bar = _tqdm(
                desc=desc, total=total, unit=unit, unit_scale=unit == "B", file=sys.stderr, dynamic_ncols=True
            )

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set(self, done: int, total: int) -> None:
        if self._bar is not None:
            if self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Interrupt:
    """Within ``with Interrupt() as stop:``, Ctrl-C sets ``stop.requested``
    instead of raising, so that nothing is left half-done: the engine undoes a
    canceled batch, and loops check the flag between batches."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def _on_sigint(self, signum: int, frame: Optional[types.FrameType]) -> None:
        self.requested = True

    def __enter__(self) -> "Interrupt":
        self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)


class EngineBars:
    """A progress handler for a handle: one bar per operation the engine
    reports, and a cancel once Ctrl-C was pressed. Use as a context manager
    around the call: it installs itself on the handle and removes itself."""

    def __init__(self, stop: Interrupt, enabled: bool, label: str) -> None:
        self._stop = stop
        self._enabled = enabled
        self._label = label
        self._bars: Dict[str, Bar] = {}
        self._db: Optional[SvDBPython] = None

    def __call__(self, op: ProgressOp, done: int, total: int) -> bool:
        if self._enabled:
            bar = self._bars.get(op)
            if bar is None:
                desc = (self._label + ": " if self._label else "") + _OPS.get(op, op)
                bar = self._bars[op] = Bar(desc, total, "B" if op == "verify" else "rows", True)
            bar.set(done, total)
        return self._stop.requested

    def attach(self, db: SvDBPython) -> "EngineBars":
        fn: ProgressFn = self
        db.set_progress_handler(fn)
        self._db = db
        return self

    def __enter__(self) -> "EngineBars":
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._db is not None and not self._db.closed:
            self._db.set_progress_handler(None)
        self._db = None
