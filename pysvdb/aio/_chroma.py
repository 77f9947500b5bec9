"""The async ChromaDB-compatible client: ``AsyncClientAPI``, ``AsyncCollection``,
``AsyncAdminClient`` and the ``AsyncPersistentClient``/``AsyncEphemeralClient``/
``AsyncClient`` constructors, over :mod:`pysvdb.chroma`.

Shaped as chromadb's own async client (``client = await
chromadb.AsyncHttpClient(...)``, coroutine methods, sync properties), so code
written for it runs on pysvdb with the constructor changed.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import Executor
from typing import List, Optional, Union

from ..chroma.client import AdminClient, ClientAPI, Client, EphemeralClient, PersistentClient
from ..chroma.collection import Collection
from ..chroma.settings import Settings
from ..chroma.types import (
    DEFAULT_DATABASE,
    DEFAULT_TENANT,
    CollectionConfiguration,
    CollectionMetadata,
)
from ._handle import AsyncHandle
from ._runner import AsyncBase, Runner, offload, offload_as

__all__ = [
    "AsyncClientAPI",
    "AsyncCollection",
    "AsyncAdminClient",
    "AsyncPersistentClient",
    "AsyncEphemeralClient",
    "AsyncClient",
]


def _client_closed() -> BaseException:
    return ValueError("this client was closed; create a new one")  # the sync client's words


class AsyncCollection(AsyncBase):
    """An async :class:`pysvdb.Collection`: ChromaDB's record methods as
    coroutines, run on its client's pool; properties as the sync ones.
    Obtained from an :class:`AsyncClientAPI`; usable until that client closes."""

    __slots__ = ("_collection", "_runner")

    def __init__(self, collection: Collection, runner: Runner) -> None:
        self._collection = collection
        self._runner = runner

    def _runner_of(self) -> Runner:
        return self._runner

    def _sync_target(self) -> Collection:
        if self._runner.closing:
            raise _client_closed()
        return self._collection

    # Collection's public methods (tests/python/test_aio.py checks none is missing).
    add = offload(Collection.add)
    update = offload(Collection.update)
    upsert = offload(Collection.upsert)
    delete = offload(Collection.delete)
    count = offload(Collection.count)
    get = offload(Collection.get)
    peek = offload(Collection.peek)
    query = offload(Collection.query)
    modify = offload(Collection.modify)
    get_model = offload(Collection.get_model)  # may open the collection's files
    fork = offload_as(Collection.fork, lambda self, c: AsyncCollection(c, self._runner))
    fork_count = offload(Collection.fork_count)
    search = offload(Collection.search)  # type: ignore[arg-type]  # mypy cannot split self off a (self, *args, **kwargs) method
    get_indexing_status = offload(Collection.get_indexing_status)
    # pysvdb's Arrow, pandas, Parquet extensions (pysvdb[arrow])
    get_arrow = offload(Collection.get_arrow)
    to_arrow = offload(Collection.to_arrow)
    to_pandas = offload(Collection.to_pandas)
    add_arrow = offload(Collection.add_arrow)
    add_dataframe = offload(Collection.add_dataframe)
    add_parquet = offload(Collection.add_parquet)

    @property
    def id(self) -> uuid.UUID:
        return self._collection.id

    @property
    def name(self) -> str:
        return self._collection.name

    @property
    def metadata(self) -> Optional[CollectionMetadata]:
        return self._collection.metadata

    @property
    def configuration_json(self) -> CollectionConfiguration:
        return self._collection.configuration_json

    @property
    def configuration(self) -> CollectionConfiguration:
        return self._collection.configuration

    @property
    def schema(self) -> None:
        return None

    @property
    def tenant(self) -> str:
        return self._collection.tenant

    @property
    def database(self) -> str:
        return self._collection.database

    def __repr__(self) -> str:
        return "AsyncCollection(name=%s)" % self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncCollection) and self._collection == other._collection

    def __hash__(self) -> int:
        return hash(self._collection)


def _wrap(client: "AsyncClientAPI", col: Collection) -> AsyncCollection:
    return AsyncCollection(col, client._runner)


def _wrap_all(client: "AsyncClientAPI", cols: List[Collection]) -> List[AsyncCollection]:
    return [AsyncCollection(c, client._runner) for c in cols]


class AsyncClientAPI(AsyncHandle[ClientAPI]):
    """An async :class:`pysvdb.ClientAPI`. Made by :func:`AsyncPersistentClient`,
    :func:`AsyncEphemeralClient` or :func:`AsyncClient`, which open nothing:
    ``await`` the client (or enter it with ``async with``) to open it on its
    pool. Its collections share that pool; ``await client.close()`` waits for
    their calls in flight, then closes the sync client and the pool."""

    __slots__ = ()

    def _closed_error(self) -> BaseException:
        return _client_closed()

    heartbeat = offload(ClientAPI.heartbeat)
    get_version = offload(ClientAPI.get_version)
    get_max_batch_size = offload(ClientAPI.get_max_batch_size)
    list_collections = offload_as(ClientAPI.list_collections, _wrap_all)
    count_collections = offload(ClientAPI.count_collections)
    create_collection = offload_as(ClientAPI.create_collection, _wrap)
    get_or_create_collection = offload_as(ClientAPI.get_or_create_collection, _wrap)
    get_collection = offload_as(ClientAPI.get_collection, _wrap)
    get_collection_by_id = offload_as(ClientAPI.get_collection_by_id, _wrap)
    delete_collection = offload(ClientAPI.delete_collection)
    reset = offload(ClientAPI.reset)
    set_tenant = offload(ClientAPI.set_tenant)
    set_database = offload(ClientAPI.set_database)

    # Sync in chromadb's async client too: no I/O.
    def get_settings(self) -> Settings:
        return self._sync_target().get_settings()

    clear_system_cache = staticmethod(ClientAPI.clear_system_cache)

    @property
    def tenant(self) -> str:
        return self._sync_target().tenant

    @property
    def database(self) -> str:
        return self._sync_target().database


class AsyncAdminClient(AsyncHandle[AdminClient]):
    """An async :class:`pysvdb.AdminClient` (tenants and databases);
    ``admin = await AsyncAdminClient(settings)``."""

    __slots__ = ()

    def __init__(
        self, settings: Optional[Settings] = None, *, executor: Optional[Executor] = None, max_workers: Optional[int] = None
    ) -> None:
        super().__init__(lambda: AdminClient(settings), executor, max_workers)

    def _closed_error(self) -> BaseException:
        return _client_closed()

    create_tenant = offload(AdminClient.create_tenant)
    get_tenant = offload(AdminClient.get_tenant)
    create_database = offload(AdminClient.create_database)
    get_database = offload(AdminClient.get_database)
    delete_database = offload(AdminClient.delete_database)
    list_databases = offload(AdminClient.list_databases)


def AsyncPersistentClient(
    path: Union[str, "os.PathLike[str]"] = "./chroma",
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
    *,
    executor: Optional[Executor] = None,
    max_workers: Optional[int] = None,
) -> AsyncClientAPI:
    """``client = await AsyncPersistentClient(path)``: :func:`pysvdb.PersistentClient`, async."""
    return AsyncClientAPI(lambda: PersistentClient(path, settings, tenant, database), executor, max_workers)


def AsyncEphemeralClient(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
    *,
    executor: Optional[Executor] = None,
    max_workers: Optional[int] = None,
) -> AsyncClientAPI:
    """``client = await AsyncEphemeralClient()``: :func:`pysvdb.EphemeralClient`, async."""
    return AsyncClientAPI(lambda: EphemeralClient(settings, tenant, database), executor, max_workers)


def AsyncClient(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
    *,
    executor: Optional[Executor] = None,
    max_workers: Optional[int] = None,
) -> AsyncClientAPI:
    """``client = await AsyncClient(settings)``: :func:`pysvdb.Client`, async."""
    return AsyncClientAPI(lambda: Client(settings, tenant, database), executor, max_workers)


