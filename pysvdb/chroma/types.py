"""The types of the ChromaDB-compatible API: aliases, result dicts, configuration
dicts, the collection model, and the embedding-function and data-loader bases.

Bottom of :mod:`pysvdb.chroma` with :mod:`.errors`: it imports nothing else of
pysvdb. ``Any`` stands only for values that are truly arbitrary: metadata
values, and what embedding functions and data loaders take and return.
"""

from __future__ import annotations

import uuid
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    TypedDict,
    TypeVar,
    Union,
)

import numpy as np
import numpy.typing as npt

__all__ = [
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
    "Tenant",
    "Database",
]

T = TypeVar("T")
D = TypeVar("D", contravariant=True)

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"

OneOrMany = Union[T, List[T]]
ID = str
IDs = List[ID]
Document = str
Documents = List[Document]
URI = str
URIs = List[URI]
#: An image: a numpy array of at least 2 dimensions.
Image = npt.NDArray[Any]
#: One embedding: a 1-d numpy array or a list of numbers.
Embedding = Union[npt.NDArray[Any], Sequence[float]]
Embeddings = List[Embedding]
#: What add/upsert/update/query accept as embeddings: one, a list, or a 2-d array.
EmbeddingsArg = Union[Embedding, Sequence[Embedding], npt.NDArray[Any]]
#: Metadata values: str, int, float, bool, or a non-empty list of one of those.
MetadataValue = Union[str, int, float, bool, List[str], List[int], List[float], List[bool], None]
ChromaMetadata = Mapping[str, MetadataValue]
Metadatas = List[ChromaMetadata]
#: A stored row's metadata, as returned: JSON values, so any of them.
RowMetadata = Dict[str, Any]
CollectionMetadata = Dict[str, Any]
#: A where clause: operators and metadata values nest arbitrarily.
Where = Dict[str, Any]
WhereDocument = Dict[str, Any]
IncludeItem = Literal["documents", "embeddings", "metadatas", "distances", "uris", "data"]
Include = List[IncludeItem]
INCLUDE_ITEMS = ("documents", "embeddings", "metadatas", "distances", "uris", "data")
#: A collection's embedding function: any callable taking a list of inputs
#: (documents, images) and returning one embedding per input.
EmbeddingFunctionLike = Callable[..., Any]
#: A data loader: a callable taking a list of URIs (None for a record without one).
DataLoaderLike = Callable[[Sequence[Optional[URI]]], Any]
Space = Literal["l2", "cosine", "ip"]


class HnswConfiguration(TypedDict, total=False):
    """A collection's HNSW settings, as stored in the catalog (ChromaDB's names)."""

    space: Space
    ef_construction: int
    ef_search: int
    max_neighbors: int
    num_threads: int
    resize_factor: float
    sync_threshold: int
    batch_size: int


class CreateCollectionConfiguration(TypedDict, total=False):
    """``configuration=`` of create_collection and modify: values are checked as ChromaDB does."""

    hnsw: Optional[Mapping[str, object]]
    spann: Optional[Mapping[str, object]]
    embedding_function: Optional[EmbeddingFunctionLike]


class CollectionConfiguration(TypedDict):
    """``Collection.configuration`` (with the object's embedding function) and
    ``configuration_json`` (embedding_function None: functions are not stored)."""

    hnsw: HnswConfiguration
    spann: None
    embedding_function: Optional[EmbeddingFunctionLike]


class GetResult(TypedDict):
    """Result of Collection.get and peek: flat lists aligned by position."""

    ids: List[ID]
    embeddings: Optional[npt.NDArray[np.float64]]
    documents: Optional[List[Optional[Document]]]
    uris: Optional[List[Optional[URI]]]
    data: Optional[Any]
    metadatas: Optional[List[Optional[RowMetadata]]]
    included: Include


class QueryResult(TypedDict):
    """Result of Collection.query: one inner list per query, nearest first."""

    ids: List[IDs]
    embeddings: Optional[List[npt.NDArray[np.float64]]]
    documents: Optional[List[List[Optional[Document]]]]
    uris: Optional[List[List[Optional[URI]]]]
    data: Optional[List[Any]]
    metadatas: Optional[List[List[Optional[RowMetadata]]]]
    distances: Optional[List[List[float]]]
    included: Include


class Tenant(TypedDict):
    """What ``AdminClient.get_tenant`` returns (ChromaDB's ``chromadb.types.Tenant``)."""

    name: str


class Database(TypedDict):
    """One database of a tenant (ChromaDB's ``chromadb.types.Database``)."""

    id: uuid.UUID
    name: str
    tenant: str


class DeleteResult(TypedDict):
    deleted: int


class EmbeddingFunction(Generic[D]):
    """Base class for embedding functions, as ``chromadb.EmbeddingFunction``.

    Subclass it and define ``__call__(self, input)`` returning one embedding
    per input; override :meth:`embed_query` when queries are embedded
    differently. Any callable taking a list of documents works as well.
    """

    def __call__(self, input: D) -> Embeddings:
        raise NotImplementedError("an EmbeddingFunction must define __call__(self, input)")

    def embed_query(self, input: D) -> Embeddings:
        """Embeds query inputs; by default the same as calling the function."""
        return self.__call__(input)


class DataLoader(Generic[T]):
    """Loads the data behind URIs (``include=["data"]`` and uri-only adds)."""

    def __call__(self, uris: Sequence[Optional[URI]]) -> T:
        raise NotImplementedError


class CollectionModel:
    """What ``Collection.get_model()`` and ``Collection._model`` return, as
    ChromaDB's ``chromadb.types.Collection``: the collection's fields, also
    readable as ``model["name"]`` (an unknown key reads None)."""

    _FIELDS = (
        "id",
        "name",
        "configuration_json",
        "serialized_schema",
        "metadata",
        "dimension",
        "tenant",
        "database",
        "version",
        "log_position",
    )

    def __init__(
        self,
        id: uuid.UUID,
        name: str,
        configuration_json: CollectionConfiguration,
        metadata: Optional[CollectionMetadata],
        dimension: Optional[int],
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        self.id = id
        self.name = name
        self.configuration_json = configuration_json
        self.serialized_schema: Optional[Dict[str, object]] = None  # pysvdb has no schemas
        self.metadata = metadata
        self.dimension = dimension
        self.tenant = tenant
        self.database = database
        self.version = 0  # only used by distributed ChromaDB
        self.log_position = 0

    def get_model_fields(self) -> Dict[str, None]:
        return dict.fromkeys(self._FIELDS)

    def get_configuration(self) -> CollectionConfiguration:
        return self.configuration_json

    def __getitem__(self, key: str) -> object:
        if key == "configuration":
            return self.get_configuration()
        return getattr(self, key) if key in self._FIELDS else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollectionModel) and all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return "CollectionModel(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._FIELDS)
