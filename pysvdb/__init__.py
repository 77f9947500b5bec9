"""pysvdb: Python bindings for libsvdb, an embedded persistent vector database.

Quick start::

    import pysvdb

    with pysvdb.SvDBPython("./db", metric="cosine") as db:
        db.add(ids=["a", "b"], embeddings=[[1, 0], [0, 1]], metadatas=[{"n": 1}, None])
        db.search([1, 0.1], k=1)      # [("a", 0.0049...)]

See docs/python.md for the full reference. ``import pysvdb as chromadb`` gives
code written for ChromaDB a compatible client (PersistentClient,
EphemeralClient, Collection, ...): see docs/chroma.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, List

from ._errors import (
    ClosedError,
    CorruptError,
    DimensionError,
    DuplicateIdError,
    FormatVersionError,
    IdExistsError,
    InvalidArgumentError,
    InvalidTypeError,
    LockedError,
    MetadataError,
    MismatchError,
    CanceledError,
    BusyError,
    MisuseError,
    NoSpaceError,
    NotFoundError,
    OutOfMemoryError,
    ReadOnlyError,
    SvDBError,
    SvDBIOError,
    TooBigError,
)
from ._lib import ffi as _ffi
from ._lib import lib as _clib
from ._lib import library_path
from ._db import (
    BatchResult,
    GetBatchResult,
    SelectResult,
    Stats,
    Durability,
    IndexType,
    Matrix,
    Metadata,
    Metric,
    OpenMode,
    ProgressFn,
    ProgressOp,
    StorageType,
    SvDBPython,
    Vector,
    Where,
)

# The ChromaDB-compatible client (pysvdb.chroma) is loaded on first use of one
# of its names (PEP 562), so that `import pysvdb` costs only the core.
_CHROMA_NAMES = (
    "Settings",
    "ClientAPI",
    "AdminClient",
    "Client",
    "PersistentClient",
    "EphemeralClient",
    "Collection",
    "DefaultEmbeddingFunction",
    "DEFAULT_TENANT",
    "DEFAULT_DATABASE",
    "URI",
    "CollectionMetadata",
    "DataLoader",
    "DeleteResult",
    "Document",
    "Documents",
    "Embedding",
    "EmbeddingFunction",
    "Embeddings",
    "GetResult",
    "ID",
    "IDs",
    "Include",
    "Metadatas",
    "QueryResult",
    "URIs",
    "WhereDocument",
)

#: pysvdb.ray's client, loaded (with ray) on first use, as the Chroma names are.
_RAY_NAMES = ("RayClient", "RayCollection")

if TYPE_CHECKING:
    from .ray import RayClient as RayClient, RayCollection as RayCollection
    from . import aio as aio
    from . import ray as ray
    from . import chroma as chroma
    from . import errors as errors
    from .chroma import (
        DEFAULT_DATABASE as DEFAULT_DATABASE,
        DEFAULT_TENANT as DEFAULT_TENANT,
        URI as URI,
        AdminClient as AdminClient,
        Client as Client,
        ClientAPI as ClientAPI,
        Collection as Collection,
        CollectionMetadata as CollectionMetadata,
        DataLoader as DataLoader,
        DefaultEmbeddingFunction as DefaultEmbeddingFunction,
        DeleteResult as DeleteResult,
        Document as Document,
        Documents as Documents,
        Embedding as Embedding,
        EmbeddingFunction as EmbeddingFunction,
        Embeddings as Embeddings,
        EphemeralClient as EphemeralClient,
        GetResult as GetResult,
        ID as ID,
        IDs as IDs,
        Include as Include,
        Metadatas as Metadatas,
        PersistentClient as PersistentClient,
        QueryResult as QueryResult,
        Settings as Settings,
        URIs as URIs,
        WhereDocument as WhereDocument,
    )


def __getattr__(name: str) -> object:
    if name in _CHROMA_NAMES:
        value: object = getattr(importlib.import_module(".chroma", __name__), name)
    elif name in _RAY_NAMES:  # pysvdb.RayClient as the API shows it; ray loads only now
        value = getattr(importlib.import_module(".ray", __name__), name)
    elif name in ("chroma", "errors", "aio", "ray"):
        value = importlib.import_module("." + name, __name__)
    else:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    globals()[name] = value  # resolved once
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | {"chroma"})


from ._version import __version__ as __version__

#: ABI version of the loaded libsvdb (equals the SOVERSION).
ABI_VERSION: int = int(_clib.svdb_abi_version())
#: Limits of the loaded library.
MAX_ID_BYTES: int = int(_clib.SVDB_MAX_ID_BYTES)
MAX_DIM: int = int(_clib.SVDB_MAX_DIM)
MAX_METADATA_BYTES: int = int(_clib.SVDB_MAX_METADATA_BYTES)


def library_version() -> str:
    """The release version of the loaded libsvdb, e.g. "0.1.0"."""
    return str(_ffi.string(_clib.svdb_version()).decode("ascii", "replace"))


def simd_path() -> str:
    """The distance kernels the library chose for this CPU (e.g. "avx2")."""
    return str(_ffi.string(_clib.svdb_simd_path()).decode("ascii", "replace"))


from . import _db, _errors

__all__ = [
    *_db.__all__,
    *_CHROMA_NAMES,
    "errors",
    *(name for name in _errors.__all__ if name != "error_class"),
    "ABI_VERSION",
    "MAX_ID_BYTES",
    "MAX_DIM",
    "MAX_METADATA_BYTES",
    "library_path",
    "library_version",
    "simd_path",
    "__version__",
]
