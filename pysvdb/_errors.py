"""The exception hierarchy: one class per libsvdb status code.

Every exception raised by pysvdb is a :class:`SvDBError`, which is a
:class:`ValueError`. ``.code`` is the C status code (``SVDB_E*``, negative)
and ``.message`` the detailed message (the C library's ``svdb_errmsg()`` for
errors reported by C, or pysvdb's own for arguments rejected before the call).
"""

from __future__ import annotations

from typing import Dict, Type

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
    "error_class",
]


class SvDBError(ValueError):
    """Base class of every pysvdb error; mirrors a libsvdb status code."""

    #: The C status code this class stands for (SVDB_E*).
    code: int = 0

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message: str = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[SvDBError], tuple[str, int]]:
        return (type(self), (self.message, self.code))


class InvalidArgumentError(SvDBError):
    """SVDB_EINVAL: an argument is invalid (empty, NaN, bad id, wrong shape, ...)."""

    code = -1


class InvalidTypeError(InvalidArgumentError, TypeError):
    """SVDB_EINVAL for an argument of the wrong Python type (also a TypeError)."""


class MisuseError(SvDBError):
    """SVDB_EMISUSE: the handle is closed or used wrongly."""

    code = -2


class ClosedError(MisuseError):
    """SVDB_EMISUSE: the database was closed."""


class OutOfMemoryError(SvDBError):
    """SVDB_ENOMEM: the C library ran out of memory."""

    code = -3


class SvDBIOError(SvDBError):
    """SVDB_EIO: an I/O call failed."""

    code = -4


class CorruptError(SvDBError):
    """SVDB_ECORRUPT: a file is damaged or not an svdb file."""

    code = -5


class FormatVersionError(SvDBError):
    """SVDB_EVERSION: a file's format version is not supported."""

    code = -6


class LockedError(SvDBError):
    """SVDB_ELOCKED: another handle or process holds the collection."""

    code = -7


class NotFoundError(SvDBError, KeyError):
    """SVDB_ENOTFOUND: the id (or the collection, with create=False) does not exist."""

    code = -8


class IdExistsError(SvDBError):
    """SVDB_EEXISTS: add() of an id that already exists (use upsert)."""

    code = -9


class DimensionError(SvDBError):
    """SVDB_EDIM: the vector dimension does not match the collection."""

    code = -10


class NoSpaceError(SvDBError):
    """SVDB_ENOSPC: the disk is full; nothing was applied."""

    code = -11


class TooBigError(SvDBError):
    """SVDB_ETOOBIG: an id, record, dimension or batch exceeds a limit."""

    code = -12


class ReadOnlyError(SvDBError):
    """SVDB_EREADONLY: writes refused after an I/O failure; reopen."""

    code = -13


class MetadataError(SvDBError):
    """SVDB_EMETA: metadata is not a valid JSON object (or cannot be serialised)."""

    code = -14


class DuplicateIdError(SvDBError):
    """SVDB_EDUPLICATE: the same id appears twice in one batch."""

    code = -15


class MismatchError(SvDBError):
    """SVDB_EMISMATCH: open options disagree with the stored collection."""

    code = -16


class CanceledError(SvDBError):
    """SVDB_ECANCELED: a progress handler stopped the operation; nothing was changed."""

    code = -17


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
    )
}


def error_class(code: int) -> Type[SvDBError]:
    """The exception class for a C status code (SvDBError for unknown codes)."""
    return _BY_CODE.get(code, SvDBError)
