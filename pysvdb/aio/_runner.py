"""The machinery of pysvdb.aio: a bounded thread pool per async handle, and
async methods generated from the sync classes' methods.

A sync call runs whole on a pool thread: the Python checks and conversions,
then the C call, during which cffi has released the GIL, so the event loop
keeps running. Nothing here repeats the sync classes' logic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import os
import sys
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Coroutine, Generic, Iterable, Iterator, Optional, Set, TypeVar, overload

from .._errors import InvalidArgumentError, InvalidTypeError

if sys.version_info >= (3, 10):
    from typing import ParamSpec

    _P = ParamSpec("_P")
else:  # Python 3.9 has no ParamSpec; type checkers read the branch above
    _P = TypeVar("_P")

if TYPE_CHECKING:
    from typing import Concatenate

_R = TypeVar("_R")
_T = TypeVar("_T")
_S = TypeVar("_S")

#: Tasks nobody awaits (the close of a handle whose open was cancelled), kept
#: referenced until they finish, as asyncio asks.
_background: Set["asyncio.Future[None]"] = set()


def _pool_size(max_workers: object) -> int:
    if max_workers is None:
        return os.cpu_count() or 1
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise InvalidTypeError("max_workers must be an int or None, not %s" % type(max_workers).__name__)
    if max_workers < 1:
        raise InvalidArgumentError("max_workers must be at least 1, not %d" % max_workers)
    return max_workers


class Runner:
    """Runs one async handle's sync calls on a bounded pool, counts the calls
    in flight, and closes: no new call, wait for those in flight, the final
    sync close, then the pool's shutdown (when it owns the pool).

    A call is submitted to the pool when awaited. Cancelling the awaiting task
    before a thread picks the call up removes it from the queue (it never
    runs); once it runs, it runs to the end (a C call cannot be interrupted)
    and only the awaiting task stops waiting.
    """

    __slots__ = ("_executor", "_owned", "_calls", "_closing", "_close_task", "_closed_error", "__weakref__")

    def __init__(
        self, executor: Optional[Executor], max_workers: Optional[int], closed_error: Callable[[], BaseException]
    ) -> None:
        if executor is not None and max_workers is not None:
            raise InvalidArgumentError("give executor or max_workers, not both")
        if executor is not None and not isinstance(executor, Executor):
            raise InvalidTypeError("executor must be a concurrent.futures.Executor, not %s" % type(executor).__name__)
        self._owned = executor is None
        if executor is None:
            executor = ThreadPoolExecutor(_pool_size(max_workers), thread_name_prefix="pysvdb-aio")
            # A handle dropped without close(): its idle threads go with it.
            weakref.finalize(self, executor.shutdown, wait=False)
        self._executor: Executor = executor
        self._calls: Set["concurrent.futures.Future[Any]"] = set()
        self._closing = False
        self._close_task: Optional["asyncio.Future[None]"] = None
        self._closed_error = closed_error

    @property
    def closing(self) -> bool:
        return self._closing

    def _submit(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> "concurrent.futures.Future[_R]":
        def call() -> _R:
            return fn(*args, **kwargs)

        # The call sees the caller's context variables, as with asyncio.to_thread.
        cf = self._executor.submit(contextvars.copy_context().run, call)
        self._calls.add(cf)
        cf.add_done_callback(self._calls.discard)  # runs first once done, so close() never misses it
        return cf

    async def run(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``fn(*args, **kwargs)`` on the pool; ClosedError (or the handle's
        closed error) once :meth:`close` has begun."""
        if self._closing:
            raise self._closed_error()
        # wrap_future cancels the pool's future when the awaiting task is cancelled.
        return await asyncio.wrap_future(self._submit(fn, *args, **kwargs))

    async def close(self, final: Optional[Callable[[], None]]) -> None:
        """Refuses new calls, waits for those in flight, runs ``final`` (the
        sync close) on the pool and shuts the pool down if it owns it.

        Once begun, closing finishes even if the awaiting task is cancelled.
        Concurrent calls wait for the same close; its error, if any, is raised
        to them, and later calls return at once.
        """
        self._closing = True
        task = self._close_task
        if task is None:
            task = self._close_task = asyncio.ensure_future(self._finish(final))
        elif task.done():
            return
        await asyncio.shield(task)

    def close_later(self, final: Optional[Callable[[], None]]) -> None:
        """:meth:`close` in a task nobody awaits (after a cancelled open)."""
        task = asyncio.ensure_future(self.close(final))
        _background.add(task)
        task.add_done_callback(_background.discard)
        # Its error has nobody to go to; keep asyncio from logging it as unretrieved.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _finish(self, final: Optional[Callable[[], None]]) -> None:
        try:
            while True:
                # copy() is one C call: pool threads remove finished calls meanwhile
                pending = [f for f in self._calls.copy() if not f.done()]
                if not pending:
                    break
                await asyncio.wait([asyncio.wrap_future(f) for f in pending])
            if final is not None:
                await asyncio.wrap_future(self._submit(final))
        finally:
            if self._owned:
                self._executor.shutdown(wait=True)  # its threads are idle: joining them is immediate


class AsyncBase:
    """An async handle: its sync object (``_sync_target``, which raises the
    handle's error when it is closing or not open) and the runner its calls go through."""

    __slots__ = ()

    def _runner_of(self) -> Runner:
        raise NotImplementedError

    def _sync_target(self) -> Any:
        raise NotImplementedError


class _Twin:
    """What the async twins of sync methods share: the sync method's name
    (the attribute's: an alias such as ``Collection.to_arrow`` calls its own
    name), docstring and signature less ``self`` (for help() and IDEs)."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self._name: str = method.__name__
        self.__doc__ = method.__doc__
        sig = inspect.signature(method)
        self._signature = sig.replace(parameters=list(sig.parameters.values())[1:])

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def _dress(self, fn: Any, obj: AsyncBase) -> Any:
        fn.__name__ = self._name
        fn.__qualname__ = "%s.%s" % (type(obj).__qualname__, self._name)
        fn.__doc__ = self.__doc__
        fn.__signature__ = self._signature
        return fn


class Offload(_Twin, Generic[_P, _R]):
    """An async method running the sync object's method of the same name on
    the pool, typed as the sync method (its parameters, its result, or what
    ``convert`` makes of its result: an async collection for a sync one)."""

    def __init__(self, method: Callable[..., Any], convert: Optional[Callable[[Any, Any], Any]]) -> None:
        super().__init__(method)
        self._convert = convert

    @overload
    def __get__(self, obj: None, owner: type) -> "Offload[_P, _R]": ...

    @overload
    def __get__(self, obj: AsyncBase, owner: type) -> Callable[_P, Coroutine[Any, Any, _R]]: ...

    def __get__(self, obj: Optional[AsyncBase], owner: type) -> Any:
        if obj is None:
            return self
        name, convert = self._name, self._convert

        async def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            # The sync target is fetched here, on the loop: a closed or unopened handle fails before any thread work.
            result = await obj._runner_of().run(getattr(obj._sync_target(), name), *args, **kwargs)
            return convert(obj, result) if convert is not None else result  # type: ignore[no-any-return]

        return self._dress(call, obj)


_END = object()


class OffloadIter(_Twin, Generic[_P, _R]):
    """For a sync method returning an iterable: an async iterator of its
    items (``async for``). The sync call runs on the pool at the first step,
    then each ``next()`` on the pool, one at a time."""

    @overload
    def __get__(self, obj: None, owner: type) -> "OffloadIter[_P, _R]": ...

    @overload
    def __get__(self, obj: AsyncBase, owner: type) -> Callable[_P, AsyncIterator[_R]]: ...

    def __get__(self, obj: Optional[AsyncBase], owner: type) -> Any:
        if obj is None:
            return self
        name = self._name

        async def call(*args: _P.args, **kwargs: _P.kwargs) -> AsyncIterator[_R]:
            runner = obj._runner_of()
            it: Iterator[_R] = iter(await runner.run(getattr(obj._sync_target(), name), *args, **kwargs))

            def step() -> Any:
                return next(it, _END)

            while True:
                item = await runner.run(step)
                if item is _END:
                    return
                yield item

        return self._dress(call, obj)


def offload(method: "Callable[Concatenate[_S, _P], _R]") -> Offload[_P, _R]:
    """The async twin of the sync ``method`` (an unbound method of the sync class)."""
    return Offload(method, None)


def offload_iter(method: "Callable[Concatenate[_S, _P], Iterable[_T]]") -> OffloadIter[_P, _T]:
    """The async iterator twin of the sync ``method``, which returns an iterable."""
    return OffloadIter(method)


def offload_as(method: "Callable[Concatenate[_S, _P], _T]", convert: Callable[[Any, _T], _R]) -> Offload[_P, _R]:
    """As :func:`offload`, its result passed through ``convert(async_handle, result)``."""
    return Offload(method, convert)
