"""The clients of the ChromaDB-compatible API: ``ClientAPI`` and the
``PersistentClient``/``EphemeralClient``/``Client`` constructors."""

from __future__ import annotations

import os
import time
import uuid
from typing import List, Mapping, Optional, Union, cast

from . import catalog, errors
from .catalog import Engine, Record
from .collection import Collection
from .embedding import DefaultEmbeddingFunction, default_space, is_default
from .settings import Settings
from .types import (
    DEFAULT_DATABASE,
    DEFAULT_TENANT,
    CollectionMetadata,
    CreateCollectionConfiguration,
    DataLoaderLike,
    EmbeddingFunctionLike,
)
from .validation import (
    MAX_BATCH_SIZE,
    hnsw_from_create_args,
    unsigned,
    validate_collection_metadata,
    validate_collection_name,
)

__all__ = ["ClientAPI", "Client", "PersistentClient", "EphemeralClient", "CHROMA_API_VERSION"]

#: The ChromaDB release whose API this package follows (what get_version() reports).
CHROMA_API_VERSION = "1.5.9"


class ClientAPI:
    """A client of a persistent directory or of the in-memory store.

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
        if settings is None:
            settings = Settings()
        if not isinstance(settings, Settings):
            raise TypeError("settings must be a pysvdb.Settings, not %s" % type(settings).__name__)
        tenant, database = str(tenant), str(database)
        if tenant != DEFAULT_TENANT:
            raise ValueError("Could not connect to tenant %s. Are you sure it exists?" % tenant)
        if database != DEFAULT_DATABASE:
            raise ValueError("Could not connect to database %s for tenant %s. Are you sure it exists?" % (database, tenant))
        self.tenant = tenant
        self.database = database
        self._settings = settings
        self._engine = catalog.acquire(settings)
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
        return Collection(self._engine, rec, embedding_function, data_loader, self.tenant, self.database)

    def list_collections(self, limit: Optional[int] = None, offset: Optional[int] = None) -> List[Collection]:
        """Every collection, in creation order (ChromaDB's order is arbitrary)."""
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        recs = self._live().entries()
        recs = recs[off : off + lim] if lim is not None else recs[off:]
        return [self._collection(r, DefaultEmbeddingFunction(), None) for r in recs]

    def count_collections(self) -> int:
        return len(self._live().entries())

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
        rec = self._live().create(name, metadata, hnsw, get_or_create)
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
        return self._collection(self._live().by_name(name), embedding_function, data_loader)

    def get_collection_by_id(
        self,
        id: Union[uuid.UUID, str],
        embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoaderLike] = None,
    ) -> Collection:
        engine = self._live()
        key = id if isinstance(id, uuid.UUID) else uuid.UUID(str(id))
        return self._collection(engine.by_id(key), embedding_function, data_loader)

    def delete_collection(self, name: str) -> None:
        """Deletes the collection and its files; NotFoundError when there is none."""
        self._live().delete(name)

    def reset(self) -> bool:
        """Deletes every collection; only with ``Settings(allow_reset=True)``."""
        engine = self._live()
        if not engine.settings.allow_reset:
            raise errors.AuthorizationError("Reset is disabled by config")
        engine.reset()
        return True

    # ------------------------------------------------------------ tenants

    def set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> None:
        if tenant != DEFAULT_TENANT or database != DEFAULT_DATABASE:
            raise ValueError("pysvdb has one tenant and database: %s/%s" % (DEFAULT_TENANT, DEFAULT_DATABASE))

    def set_database(self, database: str) -> None:
        self.set_tenant(self.tenant, database)


def PersistentClient(
    path: Union[str, "os.PathLike[str]"] = "./chroma",
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client storing its collections in the directory ``path`` (created if missing).

    One process at a time: a client in another process raises
    :class:`pysvdb.LockedError` at once instead of waiting.
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
