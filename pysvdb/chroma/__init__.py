"""A ChromaDB-compatible client over libsvdb: ``import pysvdb as chromadb``.

Clients, collections and results follow ChromaDB 1.5's core Python API (see
docs/chroma.md for what is supported and every known difference). Python
checks arguments the way ChromaDB does and converts; libsvdb stores the rows
(vector, metadata and document together, durably), evaluates ``where`` and
``where_document``, and keeps each client directory's catalog.

Modules, each calling only those above it in this list: :mod:`.errors` and
:mod:`.types` (the bottom), :mod:`.validation`, :mod:`.settings`,
:mod:`.embedding`, :mod:`.rows`, :mod:`.catalog` (the catalog and the
collections' handles, over :class:`pysvdb.SvDBPython`), :mod:`.collection`,
:mod:`.client` (the top). ``import pysvdb`` loads none of them until a
ChromaDB name is used.
"""

from __future__ import annotations

from . import errors, types
from .client import CHROMA_API_VERSION, AdminClient, Client, ClientAPI, EphemeralClient, PersistentClient
from .collection import Collection
from .embedding import DefaultEmbeddingFunction
from .settings import Settings
from .types import (
    DEFAULT_DATABASE,
    DEFAULT_TENANT,
    ID,
    IDs,
    URI,
    URIs,
    CollectionMetadata,
    CollectionModel,
    DataLoader,
    DeleteResult,
    Document,
    Documents,
    Embedding,
    EmbeddingFunction,
    Embeddings,
    GetResult,
    Include,
    Metadatas,
    QueryResult,
    WhereDocument,
)
from .validation import MAX_BATCH_SIZE

__all__ = [
    "Settings",
    "ClientAPI",
    "AdminClient",
    "Client",
    "PersistentClient",
    "EphemeralClient",
    "Collection",
    "CollectionModel",
    "DefaultEmbeddingFunction",
    "DEFAULT_TENANT",
    "DEFAULT_DATABASE",
    "CHROMA_API_VERSION",
    "MAX_BATCH_SIZE",
    "errors",
    "types",
    "ID",
    "IDs",
    "Document",
    "Documents",
    "Embedding",
    "Embeddings",
    "Metadatas",
    "CollectionMetadata",
    "WhereDocument",
    "Include",
    "URI",
    "URIs",
    "GetResult",
    "QueryResult",
    "DeleteResult",
    "EmbeddingFunction",
    "DataLoader",
]
