"""The life cycle shared by the async handles that open something: opened when
awaited (or by ``async with``) on their own pool, closed by ``await close()``."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any, Callable, Generator, Generic, Optional, Protocol, TypeVar

from .._errors import MisuseError
from ._runner import AsyncBase, Runner


class _Closable(Protocol):
    def close(self) -> None: ...


_S = TypeVar("_S", bound=_Closable)
_H = TypeVar("_H", bound="AsyncHandle[Any]")


class AsyncHandle(AsyncBase, Generic[_S]):
    """Opens its sync object (``open_sync()``, on its pool) when awaited or entered.

    As aiosqlite's connections: ``h = await AsyncX(...)`` or ``async with
    AsyncX(...) as h``; awaiting an open handle returns it. A handle whose
    open failed is closed.
    """

    __slots__ = ("_runner", "_sync", "_open_sync", "_opening")

    def __init__(self, open_sync: Callable[[], _S], executor: Optional[Executor], max_workers: Optional[int]) -> None:
        self._sync: Optional[_S] = None
        self._opening = False
        self._open_sync = open_sync
        self._runner = Runner(executor, max_workers, self._closed_error)

    def _closed_error(self) -> BaseException:
        raise NotImplementedError

    def _runner_of(self) -> Runner:
        return self._runner

    def _sync_target(self) -> _S:
        if self._runner.closing:
            raise self._closed_error()
        if self._sync is None:
            raise MisuseError(
                "%s is not open: await it (h = await %s(...)) or use async with" % (type(self).__name__, type(self).__name__)
            )
        return self._sync

    def _make(self) -> _S:
        # On the pool. Recorded here, not by the awaiting task, so that a
        # cancelled open still closes what it opened (see _open).
        sync = self._open_sync()
        self._sync = sync
        return sync

    def _close_sync(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def _open(self: _H) -> _H:
        if self._sync is not None:
            return self
        if self._opening:
            raise MisuseError("%s is already being opened: await that call" % type(self).__name__)
        self._opening = True
        try:
            await self._runner.run(self._make)
        except asyncio.CancelledError:
            self._runner.close_later(self._close_sync)  # the open may still finish on its thread
            raise
        except BaseException:
            await self._runner.close(None)  # nothing was opened; the pool goes
            raise
        finally:
            self._opening = False
        return self

    def __await__(self: _H) -> Generator[Any, None, _H]:
        return self._open().__await__()

    async def __aenter__(self: _H) -> _H:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes: calls made from now on raise the closed error, calls in
        flight (also those whose awaiting task was cancelled) finish first,
        then the sync object closes on the pool, and the pool shuts down.
        Idempotent; it completes even if the task awaiting it is cancelled."""
        await self._runner.close(self._close_sync)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun (or an open failed)."""
        return self._runner.closing
