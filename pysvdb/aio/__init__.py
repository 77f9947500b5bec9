"""asyncio versions of :class:`pysvdb.SvDBPython` and of the ChromaDB client.

::

    import pysvdb.aio

    async with pysvdb.aio.AsyncSvDB("./db", metric="cosine") as db:   # or: db = await pysvdb.aio.open(...)
        await db.add(ids, vectors)
        hits = await db.search(q, k=10)

    client = await pysvdb.aio.AsyncPersistentClient("./chroma")
    col = await client.get_or_create_collection("docs")
    await col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    await client.close()

Every method of the sync classes has an async twin with the same parameters
and result, generated from the sync method (no logic is repeated). Each call
runs the sync method on a thread of a bounded pool owned by the handle (sized
to the CPU count, or ``max_workers``, or a pool you pass as ``executor``);
the C library releases the GIL, so the event loop runs meanwhile. See
docs/async.md for cancellation and closing.

The ChromaDB names (``AsyncPersistentClient``, ...) load ``pysvdb.chroma`` on
first use, as ``pysvdb``'s own do.
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, List, Optional, Union

from .._db import Durability, IndexType, Metric, StorageType, SvDBPython
from .._errors import ClosedError
from ._handle import AsyncHandle
from ._runner import offload, offload_iter

if TYPE_CHECKING:
    from ._chroma import (
        AsyncAdminClient,
        AsyncClient,
        AsyncClientAPI,
        AsyncCollection,
        AsyncEphemeralClient,
        AsyncPersistentClient,
    )

__all__ = [
    "AsyncSvDB",
    "open",
    "AsyncClientAPI",
    "AsyncCollection",
    "AsyncAdminClient",
    "AsyncPersistentClient",
    "AsyncEphemeralClient",
    "AsyncClient",
]

_CHROMA_NAMES = __all__[2:]


class AsyncSvDB(AsyncHandle[SvDBPython]):
    """An async :class:`pysvdb.SvDBPython`.

    ``AsyncSvDB(path, ...)`` takes SvDBPython's arguments and opens nothing;
    ``await`` it, or enter it with ``async with``, to open the collection on
    the handle's pool (as aiosqlite's ``connect``). Every method is
    SvDBPython's, as a coroutine; the properties are SvDBPython's.

    Args:
        executor: a ``concurrent.futures.Executor`` to run the calls on
            (shared with other handles, never shut down by this one).
        max_workers: the size of the handle's own pool when ``executor`` is
            not given; default ``os.cpu_count()``.
    """

    __slots__ = ("_path",)

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        *args: Any,
        executor: Optional[Executor] = None,
        max_workers: Optional[int] = None,
        **options: Any,
    ) -> None:
        self._path = path
        super().__init__(lambda: SvDBPython(path, *args, **options), executor, max_workers)

    def _closed_error(self) -> BaseException:
        return ClosedError("database %r is closed" % (self.path,), -2)

    # SvDBPython's public methods, each run on the pool (tests/python/test_aio.py checks none is missing).
    add = offload(SvDBPython.add)
    upsert = offload(SvDBPython.upsert)
    update = offload(SvDBPython.update)
    delete = offload(SvDBPython.delete)
    persist = offload(SvDBPython.persist)
    compact = offload(SvDBPython.compact)
    stats = offload(SvDBPython.stats)
    set_progress_handler = offload(SvDBPython.set_progress_handler)  # the handler runs on the pool's threads
    verify = offload(SvDBPython.verify)
    index_wait = offload(SvDBPython.index_wait)
    index_pending = offload(SvDBPython.index_pending)
    get = offload(SvDBPython.get)
    get_vector = offload(SvDBPython.get_vector)
    contains = offload(SvDBPython.contains)
    count = offload(SvDBPython.count)
    get_all_ids = offload(SvDBPython.get_all_ids)
    ids_where = offload(SvDBPython.ids_where)
    select = offload(SvDBPython.select)
    get_batch = offload(SvDBPython.get_batch)
    get_many = offload(SvDBPython.get_many)
    search = offload(SvDBPython.search)
    search_batch = offload(SvDBPython.search_batch)
    # Arrow, pandas, Parquet (pysvdb[arrow]): reading and converting run on the pool too.
    iter_arrow_batches = offload_iter(SvDBPython.iter_arrow_batches)  # async for; rows chosen at the first step
    to_arrow = offload(SvDBPython.to_arrow)
    to_pandas = offload(SvDBPython.to_pandas)
    add_arrow = offload(SvDBPython.add_arrow)
    add_dataframe = offload(SvDBPython.add_dataframe)
    add_parquet = offload(SvDBPython.add_parquet)

    # Properties read what the open handle already holds (no file access).
    @property
    def path(self) -> str:
        return self._sync.path if self._sync is not None else str(self._path)

    @property
    def dim(self) -> Optional[int]:
        return self._sync_target().dim

    @property
    def metric(self) -> Metric:
        return self._sync_target().metric

    @property
    def index(self) -> IndexType:
        return self._sync_target().index

    @property
    def storage(self) -> StorageType:
        return self._sync_target().storage

    @property
    def durability(self) -> Durability:
        return self._sync_target().durability

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self._sync is not None else "not open"
        return "<AsyncSvDB path=%r %s>" % (self.path, state)


async def open(
    path: Union[str, "os.PathLike[str]"],
    *args: Any,
    executor: Optional[Executor] = None,
    max_workers: Optional[int] = None,
    **options: Any,
) -> AsyncSvDB:
    """``await AsyncSvDB(path, ...)``: the collection, opened."""
    return await AsyncSvDB(path, *args, executor=executor, max_workers=max_workers, **options)


def __getattr__(name: str) -> object:
    if name not in _CHROMA_NAMES:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value: object = getattr(importlib.import_module("._chroma", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
