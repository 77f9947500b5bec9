"""The exception hierarchy: one class per libsvdb status code.

Every exception raised by pysvdb is a :class:`SvDBError`, which is a
:class:`ValueError`. ``.code`` is the C status code (``SVDB_E*``, negative)
and ``.message`` the detailed message (the C library's ``svdb_errmsg()`` for
errors reported by C, or pysvdb's own for arguments rejected before the call).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type

from ._lib import lib

__all__ = [
    "SvDBError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MisuseError",
    "ClosedError",
    "OutOfMemoryError",
    "SvDBIOError",
    "CorruptError",
    "FormatVersionError",
    "LockedError",
    "NotFoundError",
    "IdExistsError",
    "DimensionError",
    "NoSpaceError",
    "TooBigError",
    "ReadOnlyError",
    "MetadataError",
    "DuplicateIdError",
    "MismatchError",
    "CanceledError",
    "BusyError",
    "error_class",
]


class SvDBError(ValueError):
    """Base class of every pysvdb error; mirrors a libsvdb status code."""

    #: The C status code this class stands for (SVDB_E*).
    code: int = 0

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self._message = message
        # Set on the instance only when given: the ChromaDB-named subclasses
        # (pysvdb.chroma.errors) keep ChromaDB's code() method.
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The detailed message (also ``str(e)``)."""
        return self._message

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> Tuple[Type[SvDBError], Tuple[str, Optional[int]]]:
        return (type(self), (self._message, self.__dict__.get("code")))


class InvalidArgumentError(SvDBError):
    """SVDB_EINVAL: an argument is invalid (empty, NaN, bad id, wrong shape, ...)."""

    code = int(lib.SVDB_EINVAL)


class InvalidTypeError(InvalidArgumentError, TypeError):
    """SVDB_EINVAL for an argument of the wrong Python type (also a TypeError)."""


class MisuseError(SvDBError):
    """SVDB_EMISUSE: the handle is closed or used wrongly."""

    code = int(lib.SVDB_EMISUSE)


class ClosedError(MisuseError):
    """SVDB_EMISUSE: the database was closed."""


class OutOfMemoryError(SvDBError):
    """SVDB_ENOMEM: the C library ran out of memory."""

    code = int(lib.SVDB_ENOMEM)


class SvDBIOError(SvDBError):
    """SVDB_EIO: an I/O call failed."""

    code = int(lib.SVDB_EIO)


class CorruptError(SvDBError):
    """SVDB_ECORRUPT: a file is damaged or not an svdb file."""

    code = int(lib.SVDB_ECORRUPT)


class FormatVersionError(SvDBError):
    """SVDB_EVERSION: a file's format version is not supported."""

    code = int(lib.SVDB_EVERSION)


class LockedError(SvDBError):
    """SVDB_ELOCKED: another handle or process holds the collection."""

    code = int(lib.SVDB_ELOCKED)


class NotFoundError(SvDBError, KeyError):
    """SVDB_ENOTFOUND: the id (or the collection, with create=False) does not exist."""

    code = int(lib.SVDB_ENOTFOUND)


class IdExistsError(SvDBError):
    """SVDB_EEXISTS: add() of an id that already exists (use upsert)."""

    code = int(lib.SVDB_EEXISTS)


class DimensionError(SvDBError):
    """SVDB_EDIM: the vector dimension does not match the collection."""

    code = int(lib.SVDB_EDIM)


class NoSpaceError(SvDBError):
    """SVDB_ENOSPC: the disk is full; nothing was applied."""

    code = int(lib.SVDB_ENOSPC)


class TooBigError(SvDBError):
    """SVDB_ETOOBIG: an id, record, dimension or batch exceeds a limit."""

    code = int(lib.SVDB_ETOOBIG)


class ReadOnlyError(SvDBError):
    """SVDB_EREADONLY: a write on a read-only handle, or after an I/O failure (reopen)."""

    code = int(lib.SVDB_EREADONLY)


class MetadataError(SvDBError):
    """SVDB_EMETA: metadata is not a valid JSON object (or cannot be serialised)."""

    code = int(lib.SVDB_EMETA)


class DuplicateIdError(SvDBError):
    """SVDB_EDUPLICATE: the same id appears twice in one batch."""

    code = int(lib.SVDB_EDUPLICATE)


class MismatchError(SvDBError):
    """SVDB_EMISMATCH: open options disagree with the stored collection."""

    code = int(lib.SVDB_EMISMATCH)


class CanceledError(SvDBError):
    """SVDB_ECANCELED: a progress handler stopped the operation; nothing was changed."""

    code = int(lib.SVDB_ECANCELED)


class BusyError(SvDBError):
    """SVDB_EBUSY: another process held the write lock past the busy timeout; nothing was changed."""

    code = int(lib.SVDB_EBUSY)


_BY_CODE: Dict[int, Type[SvDBError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        MisuseError,
        OutOfMemoryError,
        SvDBIOError,
        CorruptError,
        FormatVersionError,
        LockedError,
        NotFoundError,
        IdExistsError,
        DimensionError,
        NoSpaceError,
        TooBigError,
        ReadOnlyError,
        MetadataError,
        DuplicateIdError,
        MismatchError,
        CanceledError,
        BusyError,
    )
}


def error_class(code: int) -> Type[SvDBError]:
    """The exception class for a C status code (SvDBError for unknown codes)."""
    return _BY_CODE.get(code, SvDBError)
