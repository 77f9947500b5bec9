"""Progress bars (tqdm) for long Python-side loops: bulk adds, exports.

One :class:`RowProgress` counts rows over a whole operation; while the engine
reports a long step of one batch (``SvDBPython.set_progress_handler``: "write",
"link", ...), a second bar under it shows that step. tqdm is imported only
when a bar is wanted, so ``import pysvdb`` stays light.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

__all__ = ["Progress", "RowProgress", "check_progress"]

#: ``False``: no bar. ``True``: a bar on stderr when stderr is a terminal.
#: ``"always"``: a bar even when stderr is not a terminal (logs, tests).
Progress = Union[bool, Literal["always"]]


def check_progress(progress: object) -> Progress:
    """progress, checked: False, True or "always"."""
    if progress is None or progress is False:
        return False
    if progress is True:
        return True
    if isinstance(progress, str) and progress == "always":
        return "always"
    raise TypeError("progress must be False, True or 'always', not %r" % (progress,))


class RowProgress:
    """A bar over rows with rate and ETA (tqdm), or nothing when ``progress`` is False.

    ``total`` None: the number of rows is not known in advance (a stream);
    tqdm then shows the count and the rate without an ETA.
    """

    def __init__(self, progress: object, total: Optional[int], desc: str) -> None:
        mode = check_progress(progress)
        self._bar: Any = None
        self._step: Any = None
        self._step_op = ""
        if mode is False:
            return
        # tqdm itself, not tqdm.auto: the notebook widget needs ipywidgets, and
        # a missing optional package must not fail an add.
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

        # disable=None: tqdm turns itself off when stderr is not a terminal.
        self._bar = tqdm(
            total=total, desc=desc, unit="row", dynamic_ncols=True, disable=None if mode is True else False
        )

    @property
    def enabled(self) -> bool:
        """True when a bar is shown (so engine reports are worth asking for)."""
        return self._bar is not None and not self._bar.disable

    def update(self, rows: int) -> None:
        """rows more are done."""
        self.end_step()
        if self._bar is not None:
            self._bar.update(rows)

    def step(self, op: str, done: int, total: int) -> None:
        """The engine's report on the batch in flight: ``done`` of ``total`` units of ``op``."""
        if not self.enabled:
            return
        if self._step is None or op != self._step_op:
            self.end_step()
            from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

            self._step = tqdm(total=total, desc="  " + op, unit="row", leave=False, disable=False)
            self._step_op = op
        if total != self._step.total:
            self._step.total = total
        self._step.update(max(0, done - self._step.n))

    def end_step(self) -> None:
        if self._step is not None:
            self._step.close()
            self._step = None
            self._step_op = ""

    def close(self) -> None:
        self.end_step()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "RowProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
