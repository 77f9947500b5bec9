"""The clients of the ChromaDB-compatible API: ``ClientAPI``, the
``PersistentClient``/``EphemeralClient``/``Client`` constructors, and
``AdminClient`` (tenants and databases)."""

from __future__ import annotations

import operator
import os
import time
import uuid
from typing import List, Mapping, Optional, Union, cast

from . import catalog, errors
from .catalog import Engine, Record, Scope
from .collection import Collection
from .embedding import DefaultEmbeddingFunction, default_space, is_default
from .settings import Settings
from .types import (
    DEFAULT_DATABASE,
    DEFAULT_TENANT,
    CollectionMetadata,
    CreateCollectionConfiguration,
    Database,
    DataLoaderLike,
    EmbeddingFunctionLike,
    Tenant,
)
from .validation import (
    MAX_BATCH_SIZE,
    hnsw_from_create_args,
    unsigned,
    validate_collection_metadata,
    validate_collection_name,
)

__all__ = ["ClientAPI", "AdminClient", "Client", "PersistentClient", "EphemeralClient", "CHROMA_API_VERSION"]

#: The ChromaDB release whose API this package follows (what get_version() reports).
CHROMA_API_VERSION = "1.5.9"


class _System:
    """The one part of ChromaDB's ``System`` that client code reads: its settings."""

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class ClientAPI:
    """A client of a persistent directory or of the in-memory store, working
    in one database of one tenant (``tenant``, ``database``; see
    :meth:`set_tenant`), which must exist (else ``NotFoundError``).

    Create it with :func:`PersistentClient`, :func:`EphemeralClient` or
    :func:`Client`. Clients of the same directory in one process share one
    store; ``close()`` (or the end of a ``with`` block) releases it when the
    last one closes, which also checkpoints every collection.
    """

    def __init__(
        self,
        settings: Optional[Settings] = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        self._closed = True
        settings = _settings(settings)
        tenant, database = str(tenant), str(database)
        self._settings = settings
        self._engine = catalog.acquire(settings)
        try:
            self._engine.check_scope(tenant, database)
        except BaseException:
            catalog.release(self._engine)
            raise
        self.tenant = tenant
        self.database = database
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Releases this client; the store closes with the last client of it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        catalog.release(self._engine)

    def __enter__(self) -> "ClientAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> Engine:
        if self._closed:
            raise ValueError("this client was closed; create a new one")
        self._engine.check()
        return self._engine

    @property
    def _scope(self) -> Scope:
        return (self.tenant, self.database)

    # ------------------------------------------------------------ informational

    def heartbeat(self) -> int:
        """Nanoseconds since the epoch."""
        self._live()
        return time.time_ns()

    def get_version(self) -> str:
        """The ChromaDB version whose API pysvdb follows ("1.5.9"); pysvdb's own is pysvdb.__version__."""
        return CHROMA_API_VERSION

    def get_settings(self) -> Settings:
        return self._settings

    @property
    def _system(self) -> "_System":
        """ChromaDB's client has a ``_system`` whose ``settings`` code reads
        to make a client of the same store; pysvdb has no System, only this."""
        return _System(self._settings)

    def get_max_batch_size(self) -> int:
        """The most records one add/upsert/update takes (5,461, ChromaDB's); more raise InternalError."""
        return MAX_BATCH_SIZE

    @staticmethod
    def clear_system_cache() -> None:
        """Closes every store of this process (checkpointing its collections) and
        forgets it, so that the next client opens the directory afresh, with
        any settings. Clients made before are closed (ChromaDB's keep working)."""
        catalog.stop_all()

    # ------------------------------------------------------------ collections

    def _collection(
        self, rec: Record, embedding_function: Optional[EmbeddingFunctionLike], data_loader: Optional[DataLoaderLike]
    ) -> Collection:
        return Collection(self._engine, rec, embedding_function, data_loader)

    def list_collections(self, limit: Optional[int] = None, offset: Optional[int] = None) -> List[Collection]:
        """Every collection of the client's database, in creation order (ChromaDB's order is arbitrary)."""
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        recs = self._live().entries(self._scope)
        recs = recs[off : off + lim] if lim is not None else recs[off:]
        return [self._collection(r, DefaultEmbeddingFunction(), None) for r in recs]

    def count_collections(self) -> int:
        return len(self._live().entries(self._scope))

    def create_collection(
        self,
        name: str,
        schema: Optional[object] = None,
        configuration: Optional[CreateCollectionConfiguration] = None,
        metadata: Optional[CollectionMetadata] = None,
        embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoaderLike] = None,
        get_or_create: bool = False,
    ) -> Collection:
        """Creates a collection (``get_or_create=True``: or returns the existing one as is).

        The distance space comes from ``configuration={"hnsw": {"space": ...}}``
        or ``metadata={"hnsw:space": ...}``: "l2" (default), "cosine" or "ip".
        The HNSW settings ``max_neighbors``, ``ef_construction``,
        ``ef_search`` and ``num_threads`` become libsvdb's ``M``,
        ``ef_construction``, ``ef_search`` and build threads.
        """
        if schema is not None:
            raise ValueError("pysvdb does not support collection schemas; use configuration/metadata")
        validate_collection_name(name)
        validate_collection_metadata(metadata)
        config_ef = configuration.get("embedding_function") if configuration is not None else None
        if config_ef is not None:
            if not is_default(embedding_function):
                if config_ef is not embedding_function:
                    raise ValueError(
                        "Multiple embedding functions provided. Please provide only one: in the configuration or "
                        "as the embedding_function argument."
                    )
            embedding_function = config_ef
        ef = embedding_function
        hnsw = hnsw_from_create_args(
            cast(Optional[Mapping[str, object]], configuration), metadata, lambda: default_space(ef)
        )
        rec = self._live().create(name, metadata, hnsw, get_or_create, self._scope)
        return self._collection(rec, embedding_function, data_loader)

    def get_or_create_collection(
        self,
        name: str,
        schema: Optional[object] = None,
        configuration: Optional[CreateCollectionConfiguration] = None,
        metadata: Optional[CollectionMetadata] = None,
        embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoaderLike] = None,
    ) -> Collection:
        """The collection named ``name``, created when missing; an existing one is
        returned as is (``configuration`` and ``metadata`` are then ignored)."""
        return self.create_collection(
            name, schema, configuration, metadata, embedding_function, data_loader, get_or_create=True
        )

    def get_collection(
        self,
        name: str,
        embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoaderLike] = None,
    ) -> Collection:
        """The collection named ``name``; NotFoundError when there is none.

        Embedding functions are not stored with the collection: pass it again here.
        """
        return self._collection(self._live().by_name(name, self._scope), embedding_function, data_loader)

    def get_collection_by_id(
        self,
        id: Union[uuid.UUID, str],
        embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoaderLike] = None,
    ) -> Collection:
        engine = self._live()
        key = id if isinstance(id, uuid.UUID) else uuid.UUID(str(id))
        return self._collection(engine.by_id(key, self._scope), embedding_function, data_loader)

    def delete_collection(self, name: str) -> None:
        """Deletes the collection and its files; NotFoundError when there is none."""
        self._live().delete(name, self._scope)

    def reset(self) -> bool:
        """Deletes every collection, database and tenant of the store, as
        ChromaDB's reset; only with ``Settings(allow_reset=True)``. Afterwards
        only the default tenant and its empty ``default_database`` exist."""
        engine = self._live()
        if not engine.settings.allow_reset:
            raise errors.AuthorizationError("Reset is disabled by config")
        engine.reset()
        return True

    # ------------------------------------------------------------ tenants

    def set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> None:
        """Works in ``database`` of ``tenant`` from now on; both must exist
        (``NotFoundError``, the tenant checked first), else nothing changes."""
        tenant, database = str(tenant), str(database)
        self._live().check_scope(tenant, database)
        self.tenant, self.database = tenant, database

    def set_database(self, database: str) -> None:
        """Works in ``database`` of the client's tenant from now on (``NotFoundError`` if it does not exist)."""
        self.set_tenant(self.tenant, database)


class AdminClient:
    """Creates, lists and deletes the tenants and databases of a store: the
    directory of ``settings.persist_directory`` when ``settings.is_persistent``,
    else the ephemeral store. It shares the store with this process's clients
    of it; ``close()`` (or the end of a ``with`` block) releases it.

    ``delete_database`` deletes the database's collections and their files;
    clients working in it then list no collections, and its old Collection
    objects raise ``NotFoundError``.
    """

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self._closed = True
        self._settings = _settings(settings)
        self._engine = catalog.acquire(self._settings)
        self._closed = False

    def close(self) -> None:
        """Releases this client; the store closes with the last client of it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        catalog.release(self._engine)

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> Engine:
        if self._closed:
            raise ValueError("this client was closed; create a new one")
        self._engine.check()
        return self._engine

    def create_tenant(self, name: str) -> None:
        """Adds a tenant (a name of at least 3 characters), with no database yet;
        ``InternalError`` if it exists."""
        self._live().create_tenant(_name("name", name))

    def get_tenant(self, name: str) -> Tenant:
        """``{"name": name}``; ``NotFoundError`` if there is no such tenant."""
        return self._live().get_tenant(_name("name", name))

    def create_database(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        """Adds a database (a name of at least 3 bytes) to an existing tenant
        (``NotFoundError`` if missing; ChromaDB would create it in a tenant that
        does not exist); ``InternalError`` if the tenant has one of that name."""
        self._live().create_database(_name("name", name), _name("tenant", tenant))

    def get_database(self, name: str, tenant: str = DEFAULT_TENANT) -> Database:
        """``{"id": UUID, "name": ..., "tenant": ...}``; ``NotFoundError`` if missing."""
        return self._live().get_database(_name("name", name), _name("tenant", tenant))

    def delete_database(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        """Deletes the database, its collections and their files (``default_database``
        too); ``NotFoundError`` if missing. Writes in flight to its collections finish first."""
        self._live().delete_database(_name("name", name), _name("tenant", tenant))

    def list_databases(
        self, limit: Optional[int] = None, offset: Optional[int] = None, tenant: str = DEFAULT_TENANT
    ) -> List[Database]:
        """The tenant's databases ordered by name, the first ``offset`` skipped, at most
        ``limit``; none for a tenant that does not exist. A negative ``limit``
        or ``offset`` raises ``OverflowError``, as in ChromaDB."""
        lim = -1 if limit is None else _count("limit", limit)
        off = 0 if offset is None else _count("offset", offset)
        return self._live().list_databases(lim, off, _name("tenant", tenant))


def _settings(settings: Optional[Settings]) -> Settings:
    if settings is None:
        return Settings()
    if not isinstance(settings, Settings):
        raise TypeError("settings must be a pysvdb.Settings, not %s" % type(settings).__name__)
    return settings


def _name(arg: str, value: object) -> str:
    """A tenant or database name argument: a str (TypeError otherwise, as ChromaDB's)."""
    if not isinstance(value, str):
        raise TypeError("argument '%s': '%s' object cannot be converted to 'PyString'" % (arg, type(value).__name__))
    return value


def _count(arg: str, value: object) -> int:
    """A ``limit``/``offset`` of list_databases, checked as ChromaDB's engine does
    (an unsigned 64-bit integer; libsvdb takes a signed one, -1 meaning no limit)."""
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "argument '%s': '%s' object cannot be interpreted as an integer" % (arg, type(value).__name__)
        ) from None
    if n < 0:
        raise OverflowError("out of range integral type conversion attempted")
    if n >= 1 << 64:
        raise OverflowError("Python int too large to convert to C long")
    return min(n, (1 << 63) - 1)  # the same answer: no store has that many databases


def PersistentClient(
    path: Union[str, "os.PathLike[str]"] = "./chroma",
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client storing its collections in the directory ``path`` (created if missing).

    Several processes may each have a client on the same directory: every
    call sees the collections and rows the others acknowledged, and writes
    take turns (a write that waits longer than 5 s for another process's
    raises :class:`pysvdb.BusyError`, changing nothing). A collection that a
    client in another process has open cannot be deleted from here
    (:class:`pysvdb.LockedError`) until that client closes.
    """
    if settings is None:
        settings = Settings()
    settings.persist_directory = str(os.fspath(path))
    settings.is_persistent = True
    return ClientAPI(settings, tenant, database)


def EphemeralClient(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client of the process's in-memory store (files in a temporary directory,
    removed when the last client closes or the process exits)."""
    if settings is None:
        settings = Settings()
    settings.is_persistent = False
    return ClientAPI(settings, tenant, database)


def Client(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client as ``settings`` say: persistent at ``settings.persist_directory`` when
    ``settings.is_persistent``, else ephemeral."""
    return ClientAPI(settings if settings is not None else Settings(), tenant, database)
