"""The exceptions of pysvdb's ChromaDB-compatible API, named as in ``chromadb.errors``.

Code written for ChromaDB catches ``chromadb.errors.NotFoundError`` and the
like; with pysvdb it catches the same-named classes here. As in ChromaDB they
all derive from :class:`ChromaError` and have ``code()`` (the HTTP status
ChromaDB's server would answer), ``message()`` and ``name()``. Argument checks
that ChromaDB makes in Python raise the same standard exceptions
(``ValueError``, ``TypeError``) as ChromaDB does.

One family with pysvdb's own errors: the two ChromaDB classes whose names
pysvdb's classes also use derive from them, so that no two unrelated classes
share a name and ``except pysvdb.NotFoundError`` catches a missing collection
too: :class:`NotFoundError` is a ``pysvdb.NotFoundError`` and
:class:`InvalidArgumentError` a ``pysvdb.InvalidArgumentError`` (so both are
also an ``SvDBError`` and a ``ValueError``, which ChromaDB's are not). Being
ChromaDB classes, their ``code()`` and ``message()`` are ChromaDB's methods;
the libsvdb status they stand for is the ``code`` of the pysvdb base
(``pysvdb.NotFoundError.code``). :class:`DuplicateIDError` stays ChromaDB's
alone (not a ``ValueError``, as in ChromaDB): its name is not pysvdb's
``DuplicateIdError``.

Failures of the storage itself keep pysvdb's own classes (all
:class:`pysvdb.SvDBError`): :class:`LockedError` when a collection to delete
is open in another process's client, :class:`BusyError` when another process
held a collection's write lock past the busy timeout, ``SvDBIOError``,
``NoSpaceError``, ``CorruptError``.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from .. import _errors as _svdb
from .._errors import BusyError, LockedError

__all__ = [
    "ChromaError",
    "InvalidDimensionException",
    "IDAlreadyExistsError",
    "ChromaAuthError",
    "DuplicateIDError",
    "InvalidArgumentError",
    "InvalidUUIDError",
    "InvalidHTTPVersion",
    "AuthorizationError",
    "NotFoundError",
    "UniqueConstraintError",
    "BatchSizeExceededError",
    "VersionMismatchError",
    "InternalError",
    "RateLimitError",
    "QuotaError",
    "LockedError",
    "BusyError",
    "error_types",
]


class ChromaError(Exception):
    """Base class of the ChromaDB-compatible errors."""

    trace_id: Optional[str] = None

    def code(self) -> int:
        """The HTTP status ChromaDB's server would answer with."""
        return 400

    def message(self) -> str:
        return ", ".join(str(a) for a in self.args)

    @classmethod
    def name(cls) -> str:
        return "ChromaError"


class InvalidDimensionException(ChromaError):
    """Kept for code that catches it; ChromaDB 1.x raises InvalidArgumentError instead."""

    @classmethod
    def name(cls) -> str:
        return "InvalidDimension"


class IDAlreadyExistsError(ChromaError):
    """Kept for code that catches it; add() of an existing id is ignored, as in ChromaDB."""

    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "IDAlreadyExists"


class ChromaAuthError(ChromaError):
    def code(self) -> int:
        return 403

    @classmethod
    def name(cls) -> str:
        return "AuthError"

    def message(self) -> str:
        return "Forbidden"


class DuplicateIDError(ChromaError):
    """The same id appears twice in one add/upsert/update/get call."""

    @classmethod
    def name(cls) -> str:
        return "DuplicateID"


# ChromaDB's code()/message() methods win over pysvdb's code/message
# attributes in the two classes that also derive from pysvdb's: they are
# ChromaDB-named, and ChromaDB's callers use the methods (hence the ignores).
class InvalidArgumentError(ChromaError, _svdb.InvalidArgumentError):  # type: ignore[misc]
    """An argument ChromaDB's Rust layer rejects: NaN, wrong dimension, bad name, ..."""

    def code(self) -> int:  # type: ignore[override]  # ChromaDB's method, see above
        return 400

    @classmethod
    def name(cls) -> str:
        return "InvalidArgument"


class InvalidUUIDError(ChromaError):
    @classmethod
    def name(cls) -> str:
        return "InvalidUUID"


class InvalidHTTPVersion(ChromaError):
    @classmethod
    def name(cls) -> str:
        return "InvalidHTTPVersion"


class AuthorizationError(ChromaError):
    """reset() without Settings(allow_reset=True)."""

    def code(self) -> int:
        return 401

    @classmethod
    def name(cls) -> str:
        return "AuthorizationError"


class NotFoundError(ChromaError, _svdb.NotFoundError):  # type: ignore[misc]
    """A collection that does not exist (or was deleted)."""

    def code(self) -> int:  # type: ignore[override]  # ChromaDB's method, see above
        return 404

    @classmethod
    def name(cls) -> str:
        return "NotFoundError"


class UniqueConstraintError(ChromaError):
    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "UniqueConstraintError"


class BatchSizeExceededError(ChromaError):
    """Kept for code that catches it; a batch over get_max_batch_size() raises InternalError, as in ChromaDB."""

    def code(self) -> int:
        return 413

    @classmethod
    def name(cls) -> str:
        return "BatchSizeExceededError"


class VersionMismatchError(ChromaError):
    def code(self) -> int:
        return 500

    @classmethod
    def name(cls) -> str:
        return "VersionMismatchError"


class InternalError(ChromaError):
    """What ChromaDB raises for an existing collection name, a query naming a missing id, and a batch
    over get_max_batch_size()."""

    def code(self) -> int:
        return 500

    @classmethod
    def name(cls) -> str:
        return "InternalError"


class RateLimitError(ChromaError):
    def code(self) -> int:
        return 429

    @classmethod
    def name(cls) -> str:
        return "RateLimitError"


class QuotaError(ChromaError):
    def code(self) -> int:
        return 400

    @classmethod
    def name(cls) -> str:
        return "QuotaError"


error_types: Dict[str, Type[ChromaError]] = {
    "InvalidDimension": InvalidDimensionException,
    "InvalidArgumentError": InvalidArgumentError,
    "IDAlreadyExists": IDAlreadyExistsError,
    "DuplicateID": DuplicateIDError,
    "InvalidUUID": InvalidUUIDError,
    "InvalidHTTPVersion": InvalidHTTPVersion,
    "AuthorizationError": AuthorizationError,
    "NotFoundError": NotFoundError,
    "BatchSizeExceededError": BatchSizeExceededError,
    "VersionMismatchError": VersionMismatchError,
    "RateLimitError": RateLimitError,
    "AuthError": ChromaAuthError,
    "UniqueConstraintError": UniqueConstraintError,
    "QuotaError": QuotaError,
    "InternalError": InternalError,
    "ChromaError": ChromaError,
}
