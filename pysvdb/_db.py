"""SvDBPython: a collection of vectors with string ids and JSON metadata."""

from __future__ import annotations

import json
import operator
import os
import struct
import threading
import weakref
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import numpy.typing as npt

from ._errors import (
    ClosedError,
    DimensionError,
    InvalidArgumentError,
    InvalidTypeError,
    MetadataError,
    NotFoundError,
    OutOfMemoryError,
    SvDBError,
    TooBigError,
    error_class,
)
from ._lib import ffi, lib

__all__ = [
    "SvDBPython",
    "BatchResult",
    "GetBatchResult",
    "SelectResult",
    "Stats",
    "Metric",
    "Durability",
    "IndexType",
    "StorageType",
    "OpenMode",
    "Vector",
    "Matrix",
    "Metadata",
    "Where",
    "ProgressFn",
    "ProgressOp",
]

#: Distance metric names (see docs/python.md): squared L2, 1 - cosine, 1 - dot.
Metric = Literal["l2", "cosine", "ip"]
#: Durability modes: "persist" (fsync at persist()/close()) or "sync" (fsync per write).
Durability = Literal["persist", "sync"]
#: Index types: "flat" (exact) or "hnsw" (approximate).
IndexType = Literal["flat", "hnsw"]
#: How an HNSW collection keeps the vectors its graph walk reads.
StorageType = Literal["f32", "f16", "int8"]
#: How a handle shares its collection: "shared" (default; many handles and
#: processes, writers take turns), "exclusive" (this handle alone) or
#: "readonly" (never writes; works on a read-only directory).
OpenMode = Literal["shared", "exclusive", "readonly"]
#: One vector: a 1-d numpy array or a sequence of numbers.
Vector = Union[npt.NDArray[Any], Sequence[float]]
#: Several vectors: a 2-d numpy array or a sequence of vectors.
Matrix = Union[npt.NDArray[Any], Sequence[Vector]]
#: One row's metadata: a JSON object as text, a dict (serialised with json.dumps), or None.
Metadata = Union[str, Mapping[str, Any], None]
#: A metadata filter (Chroma-style where clause): a dict or its JSON text.
Where = Union[str, Mapping[str, Any]]
#: What a long operation reports progress of (see SvDBPython.set_progress_handler).
ProgressOp = Literal["write", "link", "checkpoint", "verify"]
#: A progress handler: called with (op, done, total); a truthy return cancels.
ProgressFn = Callable[[ProgressOp, int, int], Optional[bool]]

_METRICS = {"l2": int(lib.SVDB_METRIC_L2), "cosine": int(lib.SVDB_METRIC_COSINE), "ip": int(lib.SVDB_METRIC_IP)}
_METRIC_NAMES = {v: k for k, v in _METRICS.items()}
_DURABILITY = {"persist": int(lib.SVDB_DURABILITY_PERSIST), "sync": int(lib.SVDB_DURABILITY_SYNC)}
_INDEXES = {"flat": int(lib.SVDB_INDEX_FLAT), "hnsw": int(lib.SVDB_INDEX_HNSW)}
_INDEX_NAMES = {v: k for k, v in _INDEXES.items()}
_STORAGES = {"f32": int(lib.SVDB_STORAGE_F32), "f16": int(lib.SVDB_STORAGE_F16), "int8": int(lib.SVDB_STORAGE_INT8)}
_STORAGE_NAMES = {v: k for k, v in _STORAGES.items()}
_MODES = {
    "shared": int(lib.SVDB_OPEN_SHARED),
    "exclusive": int(lib.SVDB_OPEN_EXCLUSIVE),
    "readonly": int(lib.SVDB_OPEN_READONLY),
}
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
_NUMERIC_KINDS = "fiu"
_EMISUSE = int(lib.SVDB_EMISUSE)
_MAX_ID_BYTES = int(lib.SVDB_MAX_ID_BYTES)
_MAX_DIM = int(lib.SVDB_MAX_DIM)
_K_MAX = 2**62
_F32 = np.dtype(np.float32)
# cffi types looked up once for ffi.new: a type given as a string is looked up on every use.
_CHARS = ffi.typeof("char[]")
_CHAR_PTRS = ffi.typeof("char *[]")
_PROGRESS_OPS: Dict[int, ProgressOp] = {
    int(lib.SVDB_PROGRESS_WRITE): "write",
    int(lib.SVDB_PROGRESS_LINK): "link",
    int(lib.SVDB_PROGRESS_CHECKPOINT): "checkpoint",
    int(lib.SVDB_PROGRESS_VERIFY): "verify",
}


class _Progress:
    """A handle's progress handler: the C callback's ctx, one per handle for
    the handle's life (a call in flight in another thread may still report
    to it), whose ``fn`` set_progress_handler replaces."""

    __slots__ = ("fn", "cdata")

    def __init__(self) -> None:
        self.fn: Optional[ProgressFn] = None
        self.cdata: Any = ffi.new_handle(self)


# What a progress handler raised (a KeyboardInterrupt from Ctrl-C, say), per
# thread: the handler runs on the thread that made the call, so the call,
# once C has undone its work, raises it instead of CanceledError (or, when it
# was raised at the operation's final report, after the operation is done).
# Every call that can report takes it as it returns (_ok, _fail, close).
_progress_raised = threading.local()


def _progress_take() -> Optional[BaseException]:
    e: Optional[BaseException] = getattr(_progress_raised, "exc", None)
    _progress_raised.exc = None
    return e


def _progress_error(exc_type: Any, exc: Optional[BaseException], tb: Any) -> int:
    # An exception raised before _progress_call's try (a signal is delivered
    # at the first bytecode of the callback): cancel and keep it as well.
    _progress_raised.exc = exc
    return 1


def _progress_call(ctx: Any, op: int, done: int, total: int) -> int:
    try:
        fn = ffi.from_handle(ctx).fn
        return 1 if fn is not None and fn(_PROGRESS_OPS.get(op, "write"), int(done), int(total)) else 0
    except BaseException as e:  # noqa: B902 - KeyboardInterrupt must cancel the C call too
        _progress_raised.exc = e
        return 1


# One C callback serves every handle (ctx says which): cffi callbacks are
# costly to create and must outlive every call that may invoke them.
_progress_trampoline: Any = ffi.callback("svdb_progress_fn", _progress_call, onerror=_progress_error)


class BatchResult(NamedTuple):
    """Result of :meth:`SvDBPython.search_batch`; unpacks as ``ids, distances``.

    ``ids`` is an object array of shape ``(nq, k)`` holding ``str`` ids, padded
    with ``None`` where a query found fewer than ``k`` hits; ``distances`` is a
    float32 array of shape ``(nq, k)`` padded with ``inf``. Row ``i`` is
    nearest first.
    """

    ids: npt.NDArray[np.object_]
    distances: npt.NDArray[np.float32]


class GetBatchResult(NamedTuple):
    """Result of :meth:`SvDBPython.get_batch`: one entry per id asked for, in
    the order asked (an id given twice is answered twice); unpacks as
    ``found, metadatas, vectors``.

    ``found`` is a bool array of shape ``(n,)``, True where the id exists;
    ``metadatas`` the metadata JSON text of each row (None for a missing row
    or one without metadata), or None when not asked for; ``vectors`` a
    float32 array of shape ``(n, dim)`` (zeros for a missing row), or None
    when not asked for.
    """

    found: npt.NDArray[np.bool_]
    metadatas: Optional[List[Optional[str]]]
    vectors: Optional[npt.NDArray[np.float32]]


class SelectResult(NamedTuple):
    """Result of :meth:`SvDBPython.select`: the chosen rows in insertion
    order; unpacks as ``ids, metadatas``. ``metadatas`` holds each row's
    metadata JSON text (None for a row without), or is None when not asked for."""

    ids: List[str]
    metadatas: Optional[List[Optional[str]]]


@dataclass(frozen=True)
class Stats:
    """What :meth:`SvDBPython.stats` reports: the collection as of the call
    (after what other handles and processes wrote, as every read).

    ``slots`` is the rows' allocated slots, ``count`` + ``free_slots``: a
    deleted row's slot waits for reuse by a later insert, or for
    :meth:`SvDBPython.compact`. ``pending`` counts the rows the background
    indexer has not linked yet. ``snapshot_bytes`` and ``log_bytes`` are the
    sizes of the collection's two data files, ``disk_bytes`` those and every
    other file of its directory (lock file, leftovers). ``dim`` is None
    while no add has fixed it; ``M``, ``ef_construction`` and ``ef_search``
    (this handle's default) are None for a flat index.
    """

    count: int
    dim: Optional[int]
    metric: Metric
    index: IndexType
    storage: StorageType
    slots: int
    free_slots: int
    pending: int
    snapshot_bytes: int
    log_bytes: int
    disk_bytes: int
    M: Optional[int]
    ef_construction: Optional[int]
    ef_search: Optional[int]


# ---------------------------------------------------------------- helpers


def _error(rc: int) -> SvDBError:
    msg = ffi.string(lib.svdb_errmsg()).decode("utf-8", "replace")
    if not msg:
        msg = ffi.string(lib.svdb_strerror(rc)).decode("utf-8", "replace")
    return error_class(rc)(msg, rc)


def _check(rc: int) -> None:
    if rc != 0:
        raise _error(rc)


def _typename(x: object) -> str:
    return type(x).__name__


def _uint(name: str, value: object, maximum: int, *, allow_none: bool = True) -> int:
    """An unsigned integer option; None means 0 (the library's default)."""
    if value is None and allow_none:
        return 0
    if isinstance(value, bool):
        raise InvalidTypeError("%s must be an int, not bool" % name, -1)
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidTypeError("%s must be an int, not %s" % (name, _typename(value)), -1) from None
    if v < 0 or v > maximum:
        raise InvalidArgumentError("%s must be between 0 and %d, not %d" % (name, maximum, v), -1)
    return v


def _k(k: object) -> int:
    if type(k) is int and 0 < k <= _K_MAX:  # the common case; a bool's type is bool
        return k
    if isinstance(k, bool):
        raise InvalidTypeError("k must be an int, not bool", -1)
    try:
        v = operator.index(k)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidTypeError("k must be an int, not %s" % _typename(k), -1) from None
    if v <= 0:
        raise InvalidArgumentError("k must be at least 1, not %d" % v, -1)
    return min(v, _K_MAX)


def _encode_id(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidTypeError("%s must be a str, not %s" % (what, _typename(value)), -1)
    if not value:
        raise InvalidArgumentError("%s is empty" % what, -1)
    if "\0" in value:
        raise InvalidArgumentError("%s contains a NUL character" % what, -1)
    try:
        b = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError("%s cannot be encoded as UTF-8: %s" % (what, e), -1) from None
    if len(b) > int(lib.SVDB_MAX_ID_BYTES):
        raise TooBigError("%s is %d bytes of UTF-8; the limit is %d" % (what, len(b), lib.SVDB_MAX_ID_BYTES), -12)
    return b


def _str_list(ids: object, what: str) -> Iterable[Any]:
    """ids, if it can be a list of strings as a whole: a bare str (or bytes)
    is iterable, but its characters are not ids (InvalidTypeError, a TypeError)."""
    if isinstance(ids, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(ids, Iterable):
        raise InvalidTypeError("%s must be a list of str, not %s" % (what, _typename(ids)), -1)
    return ids


def _id_list(ids: object, what: str = "ids") -> List[bytes]:
    ids = _str_list(ids, what)
    out = [_encode_id(v, "%s[%d]" % (what, i)) for i, v in enumerate(ids)]
    if not out:
        raise InvalidArgumentError("%s is empty" % what, -1)
    return out


def _id_pointers(ids: object, what: str = "ids") -> Tuple[Any, List[Any], int]:
    """A ``const char *[]`` of the ids, the objects to keep alive with it, and the count.

    Encodes the whole list at once (one join, one encode, the offsets found
    with numpy): per-id Python work would cost more than the C call itself.
    Anything unusual takes the per-id path, which names the offending id.
    """
    seq = ids if type(ids) is list else list(_str_list(ids, what))
    n = len(seq)
    if 0 < n <= _SMALL_BATCH:
        small = _small_id_pointers(seq)
        if small is not None:
            return small[0], small[1], n
    try:
        joined = "\0".join(seq)
        clean = n > 0 and joined.count("\0") == n - 1  # no id holds a NUL of its own
        blob = joined.encode("utf-8") + b"\0" if clean else b""
    except (TypeError, UnicodeEncodeError):
        clean = False
    if clean:
        ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 0).astype(np.uint64)
        starts = np.zeros(n, dtype=np.uint64)
        starts[1:] = ends[:-1] + np.uint64(1)
        lengths = ends - starts
        clean = bool(lengths.min() > 0) and int(lengths.max()) <= int(lib.SVDB_MAX_ID_BYTES)
    if not clean:
        arr, keep = _pointer_array(_id_list(seq, what))
        return arr, keep, n
    buf = ffi.from_buffer(blob)
    addrs = (starts + np.uint64(int(ffi.cast("uintptr_t", buf)))).astype(np.uintp)
    return _c_array("char *[]", addrs), [blob, buf, addrs], n


#: Up to this many ids, one cffi string per id costs less than numpy's fixed cost.
_SMALL_BATCH = 16


def _small_id_pointers(seq: List[Any]) -> Optional[Tuple[Any, List[Any]]]:
    """A few ids as a ``const char *[]`` and its strings, or None for anything
    unusual (the general path then names the offending id)."""
    strs = []
    for v in seq:
        if type(v) is not str or not v or "\0" in v:
            return None
        try:
            b = v.encode("utf-8")
        except UnicodeEncodeError:
            return None
        if len(b) > _MAX_ID_BYTES:
            return None
        strs.append(ffi.new(_CHARS, b))
    return ffi.new(_CHAR_PTRS, strs), strs


def _pointer_array(items: Sequence[Optional[bytes]]) -> Tuple[Any, List[Any]]:
    """A ``const char *[]`` pointing at NUL-terminated copies of items (None -> NULL).

    Returns the array and the objects that must stay alive while it is used.
    """
    n = len(items)
    if n <= _SMALL_BATCH:
        strs = [ffi.NULL if b is None else ffi.new(_CHARS, b) for b in items]
        return ffi.new(_CHAR_PTRS, strs), strs
    lens = np.fromiter((len(b) + 1 if b is not None else 0 for b in items), dtype=np.uint64, count=n)
    blob = b"".join(b + b"\0" for b in items if b is not None)
    buf = ffi.from_buffer(blob) if blob else ffi.NULL
    base = int(ffi.cast("uintptr_t", buf))
    starts = np.zeros(n, dtype=np.uint64)
    if n > 1:
        np.cumsum(lens[:-1], out=starts[1:])
    addrs = (starts + np.uint64(base)).astype(np.uintp)
    if any(b is None for b in items):
        addrs[lens == 0] = 0
    arr = _c_array("char *[]", addrs)
    return arr, [blob, buf, addrs]


#: What C needs of every numpy array it reads or writes through a pointer.
_C_REQUIREMENTS: List[Literal["C_CONTIGUOUS", "ALIGNED"]] = ["C_CONTIGUOUS", "ALIGNED"]


def _c_ready(a: npt.NDArray[Any]) -> bool:
    """True when C may use a's memory as an array of its element type: one
    C-contiguous block, aligned for the type, in native byte order."""
    return bool(a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative)


def _c_array(ctype: str, a: npt.NDArray[Any]) -> Any:
    """The one gate from numpy memory to a C pointer (``ffi.from_buffer``).

    A view that is not C-ready (unaligned, strided, byte-swapped) would reach
    C as a misaligned or wrong pointer, which is undefined behaviour; the
    callers pass arrays made C-ready by :func:`_as_float32` or allocated here,
    so this never copies, it only refuses.
    """
    if not _c_ready(a):
        raise AssertionError("pysvdb internal error: a %s array that is not C-contiguous, aligned and native" % a.dtype)
    return ffi.from_buffer(ctype, a)


# ---------------------------------------------------------------- search results
#
# svdb_search returns one allocation: the svdb_hit array, then every hit's id,
# NUL-terminated, in hit order (include/svdb.h). So the ids are read as one
# bytes object and decoded once, and the distances in one unpack; no cffi
# call per hit.

_HIT_SIZE = ffi.sizeof("svdb_hit")
_HIT_DIST = ffi.offsetof("svdb_hit", "distance")
_HIT_DTYPE = np.dtype({"names": ["distance"], "formats": [np.float32], "offsets": [_HIT_DIST], "itemsize": _HIT_SIZE})
_HIT_FORMAT = "%dxf%dx" % (_HIT_DIST, _HIT_SIZE - _HIT_DIST - 4)  # one hit, as struct reads its distance
_hit_structs: Dict[int, struct.Struct] = {}


def _distances(p: Any, m: int) -> Tuple[float, ...]:
    """The distances of the m hits at p, as Python floats."""
    s = _hit_structs.get(m)
    if s is None:
        s = struct.Struct("=" + _HIT_FORMAT * m)
        if m <= 1024:
            _hit_structs[m] = s
    return s.unpack(ffi.buffer(p, m * _HIT_SIZE))


def _decode_id_block(p: Any, m: int) -> List[str]:
    """The m (> 0) strings of an id list returned by the library (svdb_ids,
    svdb_select): its strings follow each other in one block, so they are
    read and decoded once and split on NUL."""
    first, last = p[0], p[m - 1]
    raw = ffi.unpack(first, last - first) + ffi.string(last)
    return raw.decode("utf-8", "replace").split("\0")  # type: ignore[no-any-return]


def _decode_ids(p: Any, m: int) -> List[str]:
    """The ids of the m (> 0) hits at p: the bytes from the first id to the
    end of the last, decoded once and split on NUL."""
    first, last = p[0].id, p[m - 1].id
    raw = ffi.unpack(first, last - first) + ffi.string(last)
    return raw.decode("utf-8", "replace").split("\0")  # type: ignore[no-any-return]


#: Out-parameters of searches (``svdb_hit *`` and ``size_t``), reused: a call
#: takes a pair and gives it back once it has read them, so concurrent (and
#: reentrant) calls never share one.
_OUT_POOL: List[Tuple[Any, Any]] = []


#: Buffers of svdb_search_into for k <= _INTO_K (distances, ids, n_hits,
#: ids_len), reused as _OUT_POOL's pairs are: each call takes its own set.
_INTO_K = 64
_INTO_CAP = _INTO_K * (int(lib.SVDB_MAX_ID_BYTES) + 1)
_INTO_POOL: List[Tuple[Any, Any, Any, Any, Any, Any]] = []
#: struct.Struct reading m float32 distances, by m.
_FLOATS = [struct.Struct("=%df" % m) for m in range(_INTO_K + 1)]


def _take_into() -> Tuple[Any, Any, Any, Any, Any, Any]:
    """(distances, ids, n_hits, ids_len) and buffer views of the first two
    (slicing a view is cheaper than ffi.unpack)."""
    try:
        return _INTO_POOL.pop()
    except IndexError:
        # _INTO_CAP always holds k ids of the longest length: no retry
        d, i = ffi.new("float[]", _INTO_K), ffi.new("char[]", _INTO_CAP)
        return d, i, ffi.new("size_t[1]"), ffi.new("size_t[1]"), ffi.buffer(d), ffi.buffer(i)


def _take_out() -> Tuple[Any, Any]:
    try:
        return _OUT_POOL.pop()
    except IndexError:
        return ffi.new("svdb_hit *[1]"), ffi.new("size_t[1]")


#: Search options holding only ``ef``, by value: built once, never changed
#: after (C only reads them), so threads share them.
_EF_OPTIONS: Dict[int, Any] = {}


def _ef_options(ef: object) -> Any:
    opts = _EF_OPTIONS.get(ef) if type(ef) is int else None
    if opts is None:
        ef_v = _uint("ef", ef, _U32_MAX)
        if not ef_v:
            return ffi.NULL
        opts = ffi.new("svdb_search_options *")
        _check(lib.svdb_search_options_init(opts, lib.SVDB_SEARCH_OPTIONS_VERSION))
        opts.ef = ef_v
        if len(_EF_OPTIONS) < 256:
            _EF_OPTIONS[ef_v] = opts
    return opts


def _as_float32(x: object, what: str, ndim: int) -> npt.NDArray[np.float32]:
    """x as a C-contiguous, aligned, native float32 array of ndim dimensions;
    no copy when it already is one (an unaligned or byte-swapped array is copied)."""
    if type(x) is np.ndarray and x.dtype is _F32 and x.ndim == ndim:  # the common case, checked cheaply
        f = x.flags
        if f.c_contiguous and f.aligned and 0 < x.shape[-1] <= _MAX_DIM:
            return x
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == ndim and _c_ready(x):
        arr: npt.NDArray[np.float32] = x
    else:
        if isinstance(x, (str, bytes, bytearray, Mapping)) or x is None:
            raise InvalidTypeError(
                "%s must be a %s of numbers, not %s"
                % (what, "list or 1-d array" if ndim == 1 else "list of lists or 2-d array", _typename(x)),
                -1,
            )
        try:
            src = np.asarray(x)
        except (ValueError, TypeError, OverflowError) as e:
            raise InvalidArgumentError("%s is not a %d-d array of numbers: %s" % (what, ndim, e), -1) from None
        if src.ndim != ndim:
            raise InvalidArgumentError(
                "%s must be %d-dimensional (%s), got shape %s"
                % (what, ndim, "one vector" if ndim == 1 else "one vector per row", src.shape),
                -1,
            )
        if src.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidTypeError("%s must hold numbers, not %s (dtype %s)" % (what, src.dtype.name, src.dtype), -1)
        with np.errstate(over="ignore", invalid="ignore"):  # values out of float32 range become inf: C rejects them
            arr = np.require(src, dtype=np.float32, requirements=_C_REQUIREMENTS)
    dim = arr.shape[-1]
    if dim == 0:
        raise DimensionError("%s have 0 dimensions" % what, -10)
    if dim > int(lib.SVDB_MAX_DIM):
        raise DimensionError("%s have %d dimensions; the maximum is %d" % (what, dim, lib.SVDB_MAX_DIM), -10)
    return arr


def _encode_metadata(m: object, what: str) -> Optional[bytes]:
    if m is None:
        return None
    if isinstance(m, Mapping):
        try:
            text = json.dumps(dict(m), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            raise MetadataError("%s cannot be serialised as JSON: %s" % (what, e), -14) from None
    elif isinstance(m, str):
        text = m
    else:
        raise MetadataError("%s must be a dict, a JSON object string or None, not %s" % (what, _typename(m)), -14)
    if "\0" in text:
        raise MetadataError("%s contains a NUL character" % what, -14)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MetadataError("%s cannot be encoded as UTF-8: %s" % (what, e), -14) from None


def _metadata_list(metadatas: object, n: int) -> Optional[List[Optional[bytes]]]:
    if metadatas is None:
        return None
    if isinstance(metadatas, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(metadatas, Iterable):
        raise InvalidTypeError("metadatas must be a list (one entry per id) or None, not %s" % _typename(metadatas), -1)
    out = [_encode_metadata(m, "metadatas[%d]" % i) for i, m in enumerate(metadatas)]
    if len(out) != n:
        raise InvalidArgumentError("metadatas has %d entries but there are %d ids" % (len(out), n), -1)
    if all(m is None for m in out):
        return None
    return out


def _encode_where(where: object, what: str = "where") -> Optional[bytes]:
    if where is None:
        return None
    if isinstance(where, Mapping):
        try:
            text = json.dumps(dict(where), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            raise InvalidArgumentError("%s cannot be serialised as JSON: %s" % (what, e), -1) from None
    elif isinstance(where, str):
        text = where
    else:
        raise InvalidTypeError("%s must be a dict or a JSON string, not %s" % (what, _typename(where)), -1)
    if "\0" in text:
        raise InvalidArgumentError("%s contains a NUL character" % what, -1)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError("%s cannot be encoded as UTF-8: %s" % (what, e), -1) from None


def _flag(name: str, value: object) -> int:
    if not isinstance(value, (bool, int)):
        raise InvalidTypeError("%s must be a bool, not %s" % (name, _typename(value)), -1)
    return 1 if value else 0


def _choice(name: str, value: object, table: Mapping[str, int]) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise InvalidTypeError("%s must be one of %s, not %s" % (name, ", ".join(map(repr, table)), _typename(value)), -1)
    try:
        return table[value.lower()]
    except KeyError:
        raise InvalidArgumentError(
            "%s must be one of %s, not %r" % (name, ", ".join(map(repr, table)), value), -1
        ) from None


# ---------------------------------------------------------------- fork


#: Every open handle of this process, so that a forked child can let go of them.
_open_handles: "weakref.WeakSet[SvDBPython]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for db in list(_open_handles):
        db._forget_in_child()
    _open_handles.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------- the collection


class SvDBPython:
    """An open libsvdb collection stored in the directory ``path``.

    Args:
        path: directory of the collection; created (with its parent's
            existing) unless ``create=False``.
        dim: vector dimension. ``None`` (default) uses the stored one, or for
            a new collection lets the first add fix it.
        metric: ``"l2"`` (squared Euclidean), ``"cosine"`` (1 - cosine
            similarity) or ``"ip"`` (1 - dot product). ``None``: the stored
            metric, ``"l2"`` for a new collection.
        durability: ``"persist"`` (default: each write is logged, fsync at
            :meth:`persist`/:meth:`close`) or ``"sync"`` (fsync per write).
        create: create the collection if it does not exist (default True).
        index: ``"flat"`` (exact, default for new collections) or ``"hnsw"``
            (approximate); fixed when the collection is created.
        M, ef_construction: HNSW build parameters, fixed at creation.
        ef_search: default HNSW search candidate list for this handle.
        seed: HNSW level seed (same seed + same insertions = same graph).
        build_threads: threads linking a large batch into the HNSW graph
            (None/0: all cores; 1: deterministic builds).
        background_indexing: HNSW only. ``True`` makes writes return once
            their rows are logged and stored; a thread of this handle links
            them into the graph afterwards, and searches scan the rows not
            yet linked exactly, so every row is found at once. See
            :meth:`index_wait` and :meth:`index_pending`. Default ``False``
            (writes link their rows before returning; deterministic).
        storage: HNSW only, fixed at creation. ``"f32"`` (default) keeps
            float32 vectors in memory; ``"f16"`` (2 bytes a component) and
            ``"int8"`` (1 byte a component, plus 8 a row) keep compact codes
            that the graph walk scores, then re-rank the candidates exactly
            against the float32 originals, which stay in the collection's
            files (memory-mapped). ``None``: the stored storage.
        allow_nonempty_dir: ``True`` lets a new collection be created in a
            directory that already holds other files; by default that is
            refused (``InvalidArgumentError`` naming a file found there) and
            nothing is written, so ``SvDBPython("/")`` or a home directory
            never becomes a collection by mistake.
        autocheckpoint_bytes: automatic checkpoints (as SQLite's
            ``wal_autocheckpoint``): a write that leaves the log at this many
            bytes or more checkpoints the collection before it returns.
            ``None``: the library's default, 64 MiB; ``0``: never (only
            :meth:`persist` and :meth:`close` checkpoint).
        mode: how this handle shares the collection. ``"shared"`` (default):
            any number of shared and read-only handles, in this and other
            processes, at once; writes take turns (waiting up to
            ``busy_timeout_ms``) and every call first sees what the others
            acknowledged. ``"exclusive"``: this handle alone (any other open
            fails with :class:`LockedError`). ``"readonly"``: never writes a
            byte (writes raise :class:`ReadOnlyError`); works on a read-only
            directory or file system.
        busy_timeout_ms: how long a write (or checkpoint) waits while another
            handle holds the write lock before raising :class:`BusyError`
            with nothing changed, as SQLite's ``busy_timeout``. ``None``: the
            library's default, 5000; ``0``: fail at once.
        index_backlog_bytes: with ``background_indexing``, a bound on how far
            linking may lag behind the writes: a write that leaves more than
            this many bytes of vectors (rows x dim x 4) waiting to be linked
            waits, once its rows are stored and searchable, until no more
            wait; so a search never scans much more than this exactly.
            ``None``/``0`` (default): no bound (writes return at once and the
            lag can reach whole batches).

    Raises:
        LockedError: an exclusive handle has it open, or this one is
            exclusive and another handle has it open.
        MismatchError: dim/metric/index/storage disagree with the stored collection.
        NotFoundError: no collection there and ``create=False``.
        CorruptError, FormatVersionError, SvDBIOError: the files cannot be read.
    """

    __slots__ = ("_handle", "_close_lock", "_path", "_durability", "_pid", "_progress", "__weakref__")

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        dim: Optional[int] = None,
        metric: Optional[Metric] = None,
        durability: Durability = "persist",
        *,
        create: bool = True,
        index: Optional[IndexType] = None,
        M: Optional[int] = None,
        ef_construction: Optional[int] = None,
        ef_search: Optional[int] = None,
        seed: Optional[int] = None,
        build_threads: Optional[int] = None,
        background_indexing: bool = False,
        storage: Optional[StorageType] = None,
        allow_nonempty_dir: bool = False,
        autocheckpoint_bytes: Optional[int] = None,
        mode: OpenMode = "shared",
        busy_timeout_ms: Optional[int] = None,
        index_backlog_bytes: Optional[int] = None,
    ) -> None:
        self._handle: Any = None
        self._close_lock = threading.Lock()
        self._progress: Optional[_Progress] = None  # made by the first set_progress_handler
        self._pid = os.getpid()
        try:
            fspath = os.fspath(path)
        except TypeError:
            raise InvalidTypeError("path must be a str or os.PathLike, not %s" % _typename(path), -1) from None
        if isinstance(fspath, bytes):
            raise InvalidTypeError("path must be a str or os.PathLike[str], not bytes", -1)
        if not fspath:
            raise InvalidArgumentError("path is empty", -1)
        if "\0" in fspath:
            raise InvalidArgumentError("path contains a NUL character", -1)
        try:
            cpath = os.fsencode(fspath)
        except UnicodeEncodeError as e:
            raise InvalidArgumentError("path cannot be encoded: %s" % e, -1) from None
        self._path = fspath
        if dim is not None:
            if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
                raise InvalidTypeError("dim must be an int or None, not %s" % _typename(dim), -1)
            if dim < 0:
                raise InvalidArgumentError("dim must be positive, not %d" % dim, -1)
            if dim > int(lib.SVDB_MAX_DIM):
                raise TooBigError("dim %d exceeds the maximum %d" % (dim, lib.SVDB_MAX_DIM), -12)
        create_v = _flag("create", create)
        opts = ffi.new("svdb_open_options *")
        _check(lib.svdb_open_options_init(opts, lib.SVDB_OPEN_OPTIONS_VERSION))
        opts.dim = int(dim or 0)
        opts.metric = _choice("metric", metric, _METRICS)
        if durability is None:
            durability = "persist"
        opts.durability = _choice("durability", durability, _DURABILITY)
        self._durability: Durability = "sync" if opts.durability == 1 else "persist"
        opts.create = create_v
        opts.index = _choice("index", index, _INDEXES)
        opts.hnsw_m = _uint("M", M, _U32_MAX)
        opts.hnsw_ef_construction = _uint("ef_construction", ef_construction, _U32_MAX)
        opts.hnsw_ef_search = _uint("ef_search", ef_search, _U32_MAX)
        opts.seed = _uint("seed", seed, _U64_MAX)
        opts.build_threads = _uint("build_threads", build_threads, _U32_MAX)
        opts.background_indexing = _flag("background_indexing", background_indexing)
        opts.storage = _choice("storage", storage, _STORAGES)
        opts.allow_nonempty_dir = _flag("allow_nonempty_dir", allow_nonempty_dir)
        if autocheckpoint_bytes is not None:
            opts.autocheckpoint_bytes = _uint("autocheckpoint_bytes", autocheckpoint_bytes, _U64_MAX, allow_none=False)
        opts.mode = _choice("mode", mode, _MODES)
        if busy_timeout_ms is not None:
            opts.busy_timeout_ms = _uint("busy_timeout_ms", busy_timeout_ms, _U32_MAX, allow_none=False)
        opts.index_backlog_bytes = _uint("index_backlog_bytes", index_backlog_bytes, _U64_MAX)
        out = ffi.new("svdb **")
        _check(lib.svdb_open(out, cpath, opts))
        self._handle = out[0]
        _open_handles.add(self)

    # ------------------------------------------------------------ handle
    #
    # The C library makes a call racing svdb_close defined: close retires the
    # token (later calls fail with SVDB_EMISUSE), then waits for the calls in
    # flight. So a call reads the token once and needs no lock; close() clears
    # _handle before it closes the token, and an SVDB_EMISUSE seen once
    # _handle is None is reported as ClosedError.

    def _acquire(self) -> Any:
        h = self._handle
        if h is None:
            raise self._closed_error()
        return h

    def _fail(self, rc: int) -> BaseException:
        """The exception for a failed call on this handle: for a call that
        the progress handler canceled by raising, what it raised."""
        if rc == _EMISUSE and self._handle is None:  # close() retired the token under the call
            return self._closed_error()
        err = _error(rc)
        raised = _progress_take() if self._progress is not None else None
        if raised is not None:
            raised.__context__ = err
            return raised
        return err

    def _ok(self, rc: int) -> None:
        if rc != 0:
            raise self._fail(rc)
        if self._progress is not None:
            raised = _progress_take()
            if raised is not None:  # raised at the final report: the operation is done, the exception stands
                raise raised

    def _closed_error(self) -> ClosedError:
        if self._pid != os.getpid():
            return ClosedError(
                "database %r was opened by process %d and this process is a fork of it: a handle is not usable "
                "after fork; open the collection again in this process (after the parent closes it)"
                % (self._path, self._pid),
                -2,
            )
        return ClosedError("database %r is closed" % self._path, -2)

    def _forget_in_child(self) -> None:
        """After fork, in the child: the handle belongs to the parent. Drop it
        without a C call (closing it here would checkpoint the parent's
        collection); the lock of close() may have been held by a thread that
        does not exist here, so it is replaced."""
        self._handle = None
        self._close_lock = threading.Lock()

    def _read_dim(self) -> int:
        h = self._acquire()
        d = ffi.new("uint32_t *")
        self._ok(lib.svdb_dim(h, d))
        return int(d[0])

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Checkpoints (as :meth:`persist`) and closes the collection.

        Waits for calls running in other threads to return. Closing twice is
        a no-op; any other call on a closed database raises ClosedError. The
        handle is released even when the final checkpoint fails, in which case
        the error is raised (what was logged is replayed at the next open).

        In a child forked from the process that opened it, the handle is
        already unusable (the child lets go of it at fork without touching
        the parent's collection), and ``close()`` is a no-op.
        """
        if self._pid != os.getpid():  # a fork that ran no at-fork hook (a C-level fork): still the parent's
            self._forget_in_child()
            return
        with self._close_lock:  # one close() takes the token; the others return at once
            h = self._handle
            if h is None:
                return  # closed, or inherited from the parent by fork (see _forget_in_child)
            self._handle = None
        _open_handles.discard(self)
        rc = lib.svdb_close(h)  # waits in C for the calls in flight; its checkpoint may report
        self._ok(rc)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle is None

    def persist(self) -> None:
        """Writes a snapshot and fsyncs it, then truncates the log.

        After it returns, everything written so far survives a crash or power
        loss. Cheap when nothing changed since the last snapshot.
        """
        h = self._acquire()
        self._ok(lib.svdb_persist(h))

    def compact(self) -> None:
        """Gives back the space of deleted rows, on disk and in memory.

        A deleted row's slot stays allocated until an insert reuses it; this
        writes a snapshot of the live rows only (the HNSW graph follows them)
        and loads it in place of this handle's rows, then empties the log.
        Ids, vectors, metadata, insertion order and search results stay as
        they were; other handles load the compacted collection at their next
        call. Crash-safe as :meth:`persist` (which it is when no row was
        deleted).

        Raises:
            ReadOnlyError: the handle is read-only.
            BusyError: another handle held the write lock for the busy timeout;
                nothing changed.
        """
        h = self._acquire()
        self._ok(lib.svdb_compact(h))

    def verify(self) -> None:
        """Waits for the integrity check of the collection's snapshot.

        Opening checks every part of the snapshot except, in a large
        collection (64 MiB or more of vectors, level-0 links and compact
        codes), their checksums: those are checked on a thread after
        the open returns. Raises ``CorruptError`` naming the damage if that
        check found any (every later call then raises it too); returns
        otherwise.
        """
        h = self._acquire()
        self._ok(lib.svdb_verify(h))

    def index_wait(self) -> None:
        """Blocks until every row is linked into the HNSW graph.

        Returns at once without ``background_indexing``. Raises the error
        that stopped the background indexer, if one did (writes are then
        refused until the collection is reopened).
        """
        h = self._acquire()
        self._ok(lib.svdb_index_wait(h))

    def set_progress_handler(self, fn: Optional[ProgressFn]) -> None:
        """Installs ``fn`` as this handle's progress handler (None removes it).

        As SQLite's ``sqlite3_progress_handler``, one handler serves every
        long operation of the handle: checking a batch's rows (``"write"``),
        linking them into the HNSW graph (``"link"``), checkpoints, automatic
        ones and close's included (``"checkpoint"``), and :meth:`verify`
        (``"verify"``). It is called as ``fn(op, done, total)`` on the thread
        that made the call, at most every few tens of milliseconds. A truthy
        return cancels the operation: it undoes what it did and raises
        :class:`CanceledError`. An exception raised by ``fn`` (a
        ``KeyboardInterrupt`` from Ctrl-C included) cancels it too, and is
        then raised from the call. ``fn`` must not call this handle.
        """
        h = self._acquire()
        if fn is not None and not callable(fn):
            raise InvalidTypeError("progress handler must be callable or None, not %s" % _typename(fn), -1)
        with self._close_lock:  # one ctx per handle, even when two threads set a handler at once
            if self._progress is None:
                self._progress = _Progress()
            self._progress.fn = fn
        if fn is None:  # C stops calling; the ctx stays for calls already in flight
            self._ok(lib.svdb_progress_handler(h, ffi.NULL, ffi.NULL))
        else:
            self._ok(lib.svdb_progress_handler(h, _progress_trampoline, self._progress.cdata))

    def index_pending(self) -> int:
        """The number of rows waiting to be linked (0 without background indexing)."""
        h = self._acquire()
        n = ffi.new("size_t *")
        self._ok(lib.svdb_index_pending(h, n))
        return int(n[0])

    def stats(self) -> Stats:
        """Counts and sizes of the collection (see :class:`Stats`), read at once."""
        h = self._acquire()
        st = ffi.new("svdb_stats *")
        _check(lib.svdb_stats_init(st, lib.SVDB_STATS_VERSION))
        self._ok(lib.svdb_get_stats(h, st))
        hnsw = int(st.index) == _INDEXES["hnsw"]
        return Stats(
            count=int(st.count),
            dim=int(st.dim) or None,
            metric=_METRIC_NAMES[int(st.metric)],  # type: ignore[arg-type]
            index=_INDEX_NAMES[int(st.index)],  # type: ignore[arg-type]
            storage=_STORAGE_NAMES[int(st.storage)],  # type: ignore[arg-type]
            slots=int(st.slots),
            free_slots=int(st.free_slots),
            pending=int(st.pending),
            snapshot_bytes=int(st.snapshot_bytes),
            log_bytes=int(st.log_bytes),
            disk_bytes=int(st.snapshot_bytes) + int(st.log_bytes) + int(st.other_bytes),
            M=int(st.hnsw_m) if hnsw else None,
            ef_construction=int(st.hnsw_ef_construction) if hnsw else None,
            ef_search=int(st.hnsw_ef_search) if hnsw else None,
        )

    def __enter__(self) -> "SvDBPython":
        if self._handle is None:
            raise self._closed_error()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            h = self._handle
        except AttributeError:
            return
        if h is not None and lib is not None and self._pid == os.getpid():
            self._handle = None
            try:
                lib.svdb_close(h)
                _progress_take()  # nobody to raise it to
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise InvalidTypeError("SvDBPython objects cannot be pickled or copied; open the path again", -1)

    def __copy__(self) -> "SvDBPython":
        raise InvalidTypeError("SvDBPython objects cannot be copied; share the object instead", -1)

    def __deepcopy__(self, memo: object) -> "SvDBPython":
        raise InvalidTypeError("SvDBPython objects cannot be copied; share the object instead", -1)

    # ------------------------------------------------------------ writes

    def _put(self, fn: Any, ids: Sequence[str], embeddings: Matrix, metadatas: Optional[Sequence[Metadata]]) -> None:
        id_arr, keep_ids, n = _id_pointers(ids)
        vecs = _as_float32(embeddings, "embeddings", 2)
        if vecs.shape[0] != n:
            raise InvalidArgumentError("there are %d ids but %d embeddings" % (n, vecs.shape[0]), -1)
        metas = _metadata_list(metadatas, n)
        if metas is None:
            meta_arr: Any = ffi.NULL
            keep_metas: List[Any] = []
        else:
            meta_arr, keep_metas = _pointer_array(metas)
        self._put_prepared(fn, n, id_arr, vecs, meta_arr)
        del keep_ids, keep_metas

    def _put_prepared(self, fn: Any, n: int, id_arr: Any, vecs: npt.NDArray[np.float32], meta_arr: Any) -> None:
        """The C call of an add or upsert whose ids and metadata are already C
        string arrays (pysvdb.arrow lays them out straight from Arrow buffers)."""
        vptr = _c_array("float[]", vecs)
        h = self._acquire()
        self._ok(fn(h, n, id_arr, vptr, vecs.shape[1], meta_arr))

    def add(
        self,
        ids: Sequence[str],
        embeddings: Matrix,
        metadatas: Optional[Sequence[Metadata]] = None,
    ) -> None:
        """Adds rows; all of them or none.

        Args:
            ids: one non-empty str per row (at most 1024 bytes of UTF-8, no NUL).
            embeddings: ``(n, dim)`` numbers: a 2-d numpy array (a C-contiguous
                float32 array is passed to C without a copy) or a list of lists.
            metadatas: ``None``, or one entry per row: a dict (serialised with
                ``json.dumps``), a JSON object string, or ``None``.

        Raises:
            IdExistsError: an id already exists (use :meth:`upsert`).
            DuplicateIdError: an id appears twice in ``ids``.
            DimensionError: the vectors' dimension is not the collection's.
            InvalidArgumentError: bad id, NaN/inf, zero vector under cosine,
                wrong shape, length mismatch, empty batch.
            InvalidTypeError: an argument of the wrong type.
            MetadataError: metadata not a JSON object or not serialisable.
            TooBigError: an id or metadata over the limits.
        """
        self._put(lib.svdb_add_batch, ids, embeddings, metadatas)

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Matrix,
        metadatas: Optional[Sequence[Metadata]] = None,
    ) -> None:
        """Like :meth:`add`, but rows whose id exists are overwritten (vector
        and metadata; a ``None`` metadata removes it) and keep their position."""
        self._put(lib.svdb_upsert_batch, ids, embeddings, metadatas)

    def update(
        self,
        ids: Sequence[str],
        embeddings: Optional[Matrix] = None,
        metadatas: Optional[Sequence[Metadata]] = None,
        *,
        merge: bool = False,
        skip_missing: bool = False,
        insert_missing: bool = False,
    ) -> int:
        """Changes only what is given of existing rows, all of them or none, as
        one log record; returns how many rows were changed (or added).

        Args:
            ids: the rows' ids (as in :meth:`add`; no id twice).
            embeddings: ``(n, dim)`` new vectors, or ``None`` to keep every
                row's vector (and its place in the HNSW graph).
            metadatas: ``None`` to keep every row's metadata, or one entry per
                row: a dict or JSON object text, or ``None`` to keep that row's.
            merge: ``False`` (default): a given metadata replaces the row's.
                ``True``: its keys replace the row's keys of that name, the
                row's other keys stay, and a key given as ``None`` (JSON
                ``null``) is removed (ChromaDB's ``update``).
            skip_missing: ``True`` skips ids that do not exist instead of failing.
            insert_missing: ``True`` adds ids that do not exist as new rows
                (``embeddings`` must be given; with ``merge`` their metadata
                drops keys given as ``None``): ChromaDB's ``upsert``.

        Raises:
            NotFoundError: an id does not exist (unless ``skip_missing``).
            DuplicateIdError: an id appears twice in ``ids``.
            DimensionError: the vectors' dimension is not the collection's.
            InvalidArgumentError: bad id, NaN/inf, wrong shape, length
                mismatch, empty batch, neither embeddings nor metadatas given.
            InvalidTypeError: an argument of the wrong type.
            MetadataError, TooBigError: bad metadata, or a merged row over the limit.
        """
        id_arr, keep_ids, n = _id_pointers(ids)
        vecs = None if embeddings is None else _as_float32(embeddings, "embeddings", 2)
        if vecs is not None and vecs.shape[0] != n:
            raise InvalidArgumentError("there are %d ids but %d embeddings" % (n, vecs.shape[0]), -1)
        metas = _metadata_list(metadatas, n)
        if vecs is None and metas is None:
            raise InvalidArgumentError("nothing to update: give embeddings, metadatas (not all None) or both", -1)
        meta_arr, keep_metas = (ffi.NULL, []) if metas is None else _pointer_array(metas)
        opts = ffi.new("svdb_update_options *")
        _check(lib.svdb_update_options_init(opts, lib.SVDB_UPDATE_OPTIONS_VERSION))
        opts.merge_metadata = _flag("merge", merge)
        opts.skip_missing = _flag("skip_missing", skip_missing)
        opts.insert_missing = _flag("insert_missing", insert_missing)
        vptr = ffi.NULL if vecs is None else _c_array("float[]", vecs)
        dim = 0 if vecs is None else int(vecs.shape[1])
        out = ffi.new("size_t *")
        h = self._acquire()
        self._ok(lib.svdb_update_batch(h, n, id_arr, vptr, dim, meta_arr, opts, out))
        del keep_ids, keep_metas
        return int(out[0])

    def delete(self, ids: Sequence[str]) -> int:
        """Deletes the rows with these ids and returns how many were removed.

        Missing ids are skipped and repeated ids count once.
        """
        arr, keep, n = _id_pointers(ids)
        out = ffi.new("size_t *")
        h = self._acquire()
        self._ok(lib.svdb_delete(h, n, arr, out))
        del keep
        return int(out[0])

    # ------------------------------------------------------------ reads

    def get(self, id: str) -> Optional[str]:
        """The metadata JSON text stored with ``id``, or None if it has none.

        Raises:
            NotFoundError: no row has this id (also a KeyError).
        """
        bid = _encode_id(id, "id")
        meta = ffi.new("char **")
        h = self._acquire()
        self._ok(lib.svdb_get(h, bid, ffi.NULL, 0, meta))
        if meta[0] == ffi.NULL:
            return None
        try:
            return ffi.string(meta[0]).decode("utf-8", "replace")  # type: ignore[no-any-return]
        finally:
            lib.svdb_free(meta[0])

    def get_vector(self, id: str) -> npt.NDArray[np.float32]:
        """A copy of the vector stored with ``id`` (float32, shape ``(dim,)``).

        Raises:
            NotFoundError: no row has this id (also a KeyError).
        """
        bid = _encode_id(id, "id")
        h = self._acquire()
        return self._get_vector(h, bid, id)

    def _get_vector(self, h: Any, bid: bytes, id: str) -> npt.NDArray[np.float32]:
        d = ffi.new("uint32_t *")
        self._ok(lib.svdb_dim(h, d))
        if d[0] == 0:
            raise NotFoundError("id %r not found" % id, -8)
        vec = np.empty(int(d[0]), dtype=np.float32)
        # The library checks the buffer's size against the dimension under its lock.
        self._ok(lib.svdb_get(h, bid, _c_array("float[]", vec), d[0], ffi.NULL))
        return vec

    def contains(self, id: str) -> bool:
        """True when a row has this id (same as ``id in db``)."""
        bid = _encode_id(id, "id")
        found = ffi.new("int *")
        h = self._acquire()
        self._ok(lib.svdb_contains(h, bid, found))
        return bool(found[0])

    def __contains__(self, id: object) -> bool:
        return self.contains(id)  # type: ignore[arg-type]

    def count(self) -> int:
        """The number of rows."""
        out = ffi.new("size_t *")
        h = self._acquire()
        self._ok(lib.svdb_count(h, out))
        return int(out[0])

    def __len__(self) -> int:
        return self.count()

    def __bool__(self) -> bool:
        # An open database is truthy even when empty (unlike a container).
        return True

    def get_all_ids(self) -> List[str]:
        """Every id, in insertion order (an upsert keeps the row's position)."""
        return self.ids_where()

    def ids_where(self, where: Optional[Where] = None, where_document: Optional[Where] = None) -> List[str]:
        """The ids of the rows matching ``where`` (metadata) and
        ``where_document`` (document) filters, in insertion order.

        Either filter may be None (no condition); with neither, this is
        :meth:`get_all_ids`. The filters are evaluated by the C library.
        """
        wbytes = _encode_where(where)
        dbytes = _encode_where(where_document, "where_document")
        arr = ffi.new("char ***")
        cnt = ffi.new("size_t *")
        h = self._acquire()
        if wbytes is None and dbytes is None:
            self._ok(lib.svdb_ids(h, arr, cnt))
        else:
            w = wbytes if wbytes is not None else ffi.NULL
            d = dbytes if dbytes is not None else ffi.NULL
            self._ok(lib.svdb_ids_where(h, w, d, arr, cnt))
        try:
            n = int(cnt[0])
            return _decode_id_block(arr[0], n) if n else []
        finally:
            lib.svdb_ids_free(arr[0])

    def select(
        self,
        *,
        where: Optional[Where] = None,
        where_document: Optional[Where] = None,
        ids: Optional[Sequence[str]] = None,
        offset: int = 0,
        limit: Optional[int] = None,
        metadata: bool = False,
    ) -> SelectResult:
        """The rows matching the filters, in insertion order, a page of them:
        ChromaDB's ``get`` in one library call.

        Args:
            where, where_document: filters as in :meth:`search` (None: no condition).
            ids: only rows with these ids (None: every row); ids not in the
                collection are ignored, repeats count once, and the rows come
                in insertion order whatever the order given.
            offset: matching rows skipped first.
            limit: at most this many rows (None: all).
            metadata: also return each row's metadata JSON text.

        Insertion order: a row keeps its place when updated or upserted; a
        row deleted and added again goes last. Ids and metadata are read
        under one hold of the collection's read lock.
        """
        off = _uint("offset", offset, _U64_MAX, allow_none=False)
        lim = _uint("limit", limit, _U64_MAX)
        opts = ffi.new("svdb_select_options *")
        _check(lib.svdb_select_options_init(opts, lib.SVDB_SELECT_OPTIONS_VERSION))
        keep: List[Any] = []
        wbytes = _encode_where(where)
        dbytes = _encode_where(where_document, "where_document")
        if wbytes is not None:
            keep.append(ffi.new("char[]", wbytes))
            opts.where = keep[-1]
        if dbytes is not None:
            keep.append(ffi.new("char[]", dbytes))
            opts.where_document = keep[-1]
        if ids is not None:
            seq = list(_str_list(ids, "ids"))
            if seq:
                arr, ikeep, opts.n_ids = _id_pointers(seq)
                opts.ids = arr
                keep += [arr, ikeep]
            else:  # restricted to no id
                keep.append(ffi.new("char *[1]"))
                opts.ids = keep[-1]
        opts.offset = off
        if limit is not None:
            opts.limit = lim
        out_ids = ffi.new("char ***")
        out_meta = ffi.new("char ***") if metadata else ffi.NULL
        cnt = ffi.new("size_t *")
        h = self._acquire()
        self._ok(lib.svdb_select(h, opts, out_ids, out_meta, cnt))
        del keep
        try:
            n = int(cnt[0])
            got = _decode_id_block(out_ids[0], n) if n else []
            metas: Optional[List[Optional[str]]] = None
            if metadata:
                mp = out_meta[0]
                metas = [None if mp[i] == ffi.NULL else ffi.string(mp[i]).decode("utf-8", "replace") for i in range(n)]
            return SelectResult(got, metas)
        finally:
            lib.svdb_ids_free(out_ids[0])
            if metadata:
                lib.svdb_metadatas_free(out_meta[0])

    def get_batch(self, ids: Sequence[str], *, metadata: bool = True, vectors: bool = False) -> GetBatchResult:
        """Looks up every id in one library call (one consistent view of the
        collection) and answers each, in the order given: see
        :class:`GetBatchResult`. ``metadata``/``vectors`` choose what is read
        beside the found flags.

        Raises:
            InvalidArgumentError: an empty list or a bad id.
            InvalidTypeError: ``ids`` is not a list of str.
            TooBigError: an id over 1024 bytes.
        """
        id_arr, keep, n = _id_pointers(ids)
        found = np.zeros(n, dtype=np.intc)
        metas = ffi.new("char ***") if metadata else ffi.NULL
        out: Optional[npt.NDArray[np.float32]] = None
        h = self._acquire()
        vptr, dim = ffi.NULL, 0
        if vectors:
            d = ffi.new("uint32_t *")
            self._ok(lib.svdb_dim(h, d))
            dim = int(d[0])  # fixed once set; the library checks it again under its lock
            out = np.zeros((n, dim), dtype=np.float32)
            if dim:
                vptr = _c_array("float[]", out)
        self._ok(lib.svdb_get_batch(h, n, id_arr, vptr, dim, metas, _c_array("int[]", found)))
        del keep
        texts: Optional[List[Optional[str]]] = None
        if metadata:
            p = metas[0]
            try:
                texts = [None if p[i] == ffi.NULL else ffi.string(p[i]).decode("utf-8", "replace") for i in range(n)]
            finally:
                lib.svdb_metadatas_free(p)
        return GetBatchResult(found.astype(np.bool_), texts, out)

    def get_many(
        self, ids: Sequence[str], *, metadata: bool = True, vectors: bool = False
    ) -> Tuple[List[int], List[Optional[str]], Optional[npt.NDArray[np.float32]]]:
        """Looks up several rows at once (:meth:`get_batch`, one library
        call); ids that do not exist are skipped.

        Returns ``(found, metadatas, vectors)``: ``found`` the positions in
        ``ids`` of the rows that exist, ``metadatas`` their metadata JSON text
        (None where a row has none; all None unless ``metadata``), and
        ``vectors`` a float32 array of shape ``(len(found), dim)`` when
        ``vectors`` is true, else None. An empty ``ids`` finds nothing.
        """
        seq = list(_str_list(ids, "ids"))
        if not seq:
            dim = self._read_dim()
            return [], [], (np.empty((0, dim), dtype=np.float32) if vectors else None)
        r = self.get_batch(seq, metadata=metadata, vectors=vectors)
        hit = np.flatnonzero(r.found)
        pos: List[int] = hit.tolist()
        metas: List[Optional[str]] = [r.metadatas[i] for i in pos] if r.metadatas is not None else [None] * len(pos)
        return pos, metas, (r.vectors[hit] if r.vectors is not None else None)

    def _search_options(
        self,
        where: Optional[Where],
        ef: Optional[int],
        threads: Optional[int],
        where_document: Optional[Where] = None,
        ids: Optional[Sequence[str]] = None,
    ) -> Tuple[Any, Any]:
        wbytes = _encode_where(where)
        dbytes = _encode_where(where_document, "where_document")
        ef_v = _uint("ef", ef, _U32_MAX)
        th_v = _uint("threads", threads, _U32_MAX)
        if wbytes is None and dbytes is None and not ef_v and not th_v and ids is None:
            return ffi.NULL, None
        opts = ffi.new("svdb_search_options *")
        _check(lib.svdb_search_options_init(opts, lib.SVDB_SEARCH_OPTIONS_VERSION))
        opts.ef = ef_v
        opts.threads = th_v
        keep: List[Any] = []
        if ids is not None:
            id_arr, id_keep, opts.n_ids = _id_pointers(ids)
            opts.ids = id_arr
            keep += [id_arr, id_keep]
        if wbytes is not None:
            keep.append(ffi.new("char[]", wbytes))
            opts.where = keep[-1]
        if dbytes is not None:
            keep.append(ffi.new("char[]", dbytes))
            opts.where_document = keep[-1]
        return opts, keep

    def search(
        self,
        query: Vector,
        k: int = 10,
        *,
        where: Optional[Where] = None,
        ef: Optional[int] = None,
        where_document: Optional[Where] = None,
        ids: Optional[Sequence[str]] = None,
    ) -> List[Tuple[str, float]]:
        """The ``k`` nearest rows to ``query`` as ``[(id, distance), ...]``, nearest first.

        Fewer than ``k`` when the collection (or the rows matching ``where``)
        has fewer; ``[]`` for an empty collection.

        Args:
            query: one vector (list or 1-d array) of the collection's dimension.
            k: how many hits, at least 1.
            where: metadata filter, e.g. ``{"year": {"$gte": 2020}}``.
            ef: HNSW candidate list for this search (None: the default).
            where_document: document filter (the metadata key
                ``"#document"``), e.g. ``{"$contains": "cat"}``.
            ids: an id allow-list (ChromaDB's ``query(ids=...)``): only these
                rows are candidates, every one scored exactly (no graph
                walk), filters still applied; ids not in the collection are
                ignored and repeats count once.

        Raises:
            DimensionError: the query's dimension is not the collection's.
            InvalidArgumentError: k < 1, NaN/inf, not 1-d, bad filter, an
                empty or bad ``ids``.
        """
        kk = k if type(k) is int and 0 < k <= _K_MAX else _k(k)  # _k's common case, inline
        q = _as_float32(query, "query", 1)
        if where is None and where_document is None and ids is None:
            opts, keep = (ffi.NULL if ef is None else _ef_options(ef)), None
        else:
            opts, keep = self._search_options(where, ef, None, where_document, ids)
        h = self._acquire()
        if kk <= _INTO_K:  # the common case: into reused buffers, one decode, nothing to free
            b = _take_into()
            rc = lib.svdb_search_into(
                h, ffi.from_buffer("float[]", q), q.shape[0], kk, opts, b[0], b[1], _INTO_CAP, b[2], b[3]
            )
            del keep
            if rc != 0:
                _INTO_POOL.append(b)
                raise self._fail(rc)
            m = b[2][0]
            if not m:
                _INTO_POOL.append(b)
                return []
            ids = b[5][: b[3][0] - 1].decode("utf-8", "replace").split("\0")
            dists = _FLOATS[m].unpack_from(b[4])
            _INTO_POOL.append(b)
            return list(zip(ids, dists))
        out = _take_out()
        # q is C-ready (_as_float32), so _c_array's check is skipped on this path
        rc = lib.svdb_search(h, ffi.from_buffer("float[]", q), q.shape[0], kk, opts, out[0], out[1])
        p, m = out[0][0], out[1][0]
        _OUT_POOL.append(out)
        del keep
        if rc != 0:
            raise self._fail(rc)
        if not m:
            return []
        try:
            return list(zip(_decode_ids(p, m), _distances(p, m)))
        finally:
            lib.svdb_hits_free(p)

    def search_batch(
        self,
        queries: Matrix,
        k: int = 10,
        *,
        where: Optional[Where] = None,
        ef: Optional[int] = None,
        threads: int = 0,
        where_document: Optional[Where] = None,
        ids: Optional[Sequence[str]] = None,
    ) -> BatchResult:
        """Searches several queries at once (spread over ``threads`` C threads,
        0 = all cores); the other arguments are :meth:`search`'s.

        Returns:
            ``BatchResult(ids, distances)``: ``ids`` an object array of shape
            ``(nq, k)`` (str, padded with None), ``distances`` float32 of shape
            ``(nq, k)`` (padded with inf); row i holds query i's hits nearest
            first.
        """
        kk = _k(k)
        qs = _as_float32(queries, "queries", 2)
        nq = int(qs.shape[0])
        if nq == 0:
            raise InvalidArgumentError("queries is empty", -1)
        opts, keep = self._search_options(where, ef, threads, where_document, ids)
        counts = np.zeros(nq, dtype=np.uintp)
        h = self._acquire()
        out = _take_out()
        cptr = _c_array("size_t[]", counts)
        rc = lib.svdb_search_batch(h, nq, _c_array("float[]", qs), qs.shape[1], kk, opts, out[0], cptr)
        p = out[0][0]
        _OUT_POOL.append(out)
        del keep
        if rc != 0:
            raise self._fail(rc)
        try:
            total = int(counts.sum()) if p != ffi.NULL else 0
            try:
                if total == nq * kk:  # every query has k hits (the common case): no padding
                    hit = np.frombuffer(ffi.buffer(p, total * _HIT_SIZE), dtype=_HIT_DTYPE)["distance"]
                    out_ids = np.empty(total, dtype=object)
                    out_ids[:] = _decode_ids(p, total)
                    return BatchResult(out_ids.reshape(nq, kk), hit.reshape(nq, kk).copy())
                out_ids = np.full((nq, kk), None, dtype=object)
                dists = np.full((nq, kk), np.inf, dtype=np.float32)
            except (MemoryError, ValueError) as e:
                raise OutOfMemoryError("cannot allocate %d x %d results: %s" % (nq, kk, e), -3) from None
            if not total:  # no hits at all
                return BatchResult(out_ids, dists)
            mask = np.arange(kk)[None, :] < counts.astype(np.int64)[:, None]  # the hits, in row-major order
            dists[mask] = np.frombuffer(ffi.buffer(p, total * _HIT_SIZE), dtype=_HIT_DTYPE)["distance"]
            out_ids[mask] = np.array(_decode_ids(p, total), dtype=object)
            return BatchResult(out_ids, dists)
        finally:
            lib.svdb_hits_free(p)

    # ------------------------------------------------------------ properties

    @property
    def path(self) -> str:
        """The collection's directory, as given to the constructor."""
        return self._path

    @property
    def dim(self) -> Optional[int]:
        """The vector dimension, or None while no add has fixed it."""
        d = self._read_dim()
        return d or None

    @property
    def metric(self) -> Metric:
        """The distance metric: "l2", "cosine" or "ip"."""
        out = ffi.new("int *")
        h = self._acquire()
        self._ok(lib.svdb_metric(h, out))
        name = _METRIC_NAMES.get(int(out[0]), "l2")
        return name  # type: ignore[return-value]

    @property
    def index(self) -> IndexType:
        """The index type: "flat" or "hnsw"."""
        out = ffi.new("int *")
        h = self._acquire()
        self._ok(lib.svdb_index_type(h, out))
        return _INDEX_NAMES.get(int(out[0]), "flat")  # type: ignore[return-value]

    @property
    def storage(self) -> StorageType:
        """How the vectors are kept: "f32", "f16" or "int8"."""
        out = ffi.new("int *")
        h = self._acquire()
        self._ok(lib.svdb_storage_type(h, out))
        return _STORAGE_NAMES.get(int(out[0]), "f32")  # type: ignore[return-value]

    @property
    def durability(self) -> Durability:
        """The durability mode this handle was opened with."""
        return self._durability

    def __repr__(self) -> str:
        if self._handle is None:
            return "<SvDBPython path=%r closed>" % self._path
        try:
            return "<SvDBPython path=%r dim=%s metric=%r index=%r count=%d>" % (
                self._path,
                self.dim,
                self.metric,
                self.index,
                self.count(),
            )
        except SvDBError:
            return "<SvDBPython path=%r closed>" % self._path

    # ------------------------------------------------------------ Arrow, pandas, Parquet
    #
    # Thin: pysvdb.arrow (imported here, on first use, so that `import pysvdb`
    # never imports pyarrow or pandas) converts; the calls above do the work.
    # batch_size 10,000: 30 MiB of vectors at dim 768, enough that a call's
    # fixed cost is lost, small enough to stream a file larger than memory.

    def iter_arrow_batches(
        self,
        ids: Optional[Sequence[str]] = None,
        where: Optional[Where] = None,
        where_document: Optional[Where] = None,
        *,
        vectors: bool = True,
        metadata: bool = True,
        batch_size: int = 10_000,
    ) -> Iterable[Any]:
        """The rows matching ``ids``/``where``/``where_document`` (as :meth:`select`),
        in insertion order, as ``pyarrow.RecordBatch`` es of ``batch_size`` rows:
        columns ``id`` (string), ``embedding`` (``fixed_size_list<float32>[dim]``,
        unless ``vectors=False``) and ``metadata`` (JSON text, null for a row
        without; unless ``metadata=False``). The ids are chosen once; each batch
        is read in one :meth:`get_batch` call. Needs ``pysvdb[arrow]``.
        """
        from . import arrow

        return arrow.iter_rows(
            self, ids, where, where_document, vectors=vectors, metadata=metadata, batch_size=batch_size
        )

    def to_arrow(
        self,
        ids: Optional[Sequence[str]] = None,
        where: Optional[Where] = None,
        where_document: Optional[Where] = None,
        *,
        vectors: bool = True,
        metadata: bool = True,
        batch_size: int = 10_000,
        progress: Union[bool, Literal["always"]] = False,
    ) -> Any:
        """The matching rows as one ``pyarrow.Table`` (the batches of
        :meth:`iter_arrow_batches`, not copied again); ``progress`` as in
        :meth:`add_arrow`. Needs ``pysvdb[arrow]``."""
        from . import arrow

        return arrow.read_table(
            self, ids, where, where_document, vectors=vectors, metadata=metadata, batch_size=batch_size,
            progress=progress,
        )

    def to_pandas(
        self,
        ids: Optional[Sequence[str]] = None,
        where: Optional[Where] = None,
        where_document: Optional[Where] = None,
        *,
        vectors: bool = True,
        metadata: bool = True,
        batch_size: int = 10_000,
        progress: Union[bool, Literal["always"]] = False,
    ) -> Any:
        """The matching rows as a ``pandas.DataFrame`` (through :meth:`to_arrow`):
        ``id``, ``embedding`` (one float32 numpy array per row;
        ``np.stack(df["embedding"])`` gives the ``(n, dim)`` matrix) and
        ``metadata`` (JSON text or None). Needs ``pysvdb[arrow]``."""
        from . import arrow

        table = self.to_arrow(
            ids, where, where_document, vectors=vectors, metadata=metadata, batch_size=batch_size, progress=progress
        )
        return arrow.to_pandas(table)

    def add_arrow(
        self,
        data: Any,
        *,
        id_column: str = "id",
        embedding_column: str = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        upsert: bool = False,
        batch_size: int = 10_000,
        atomic: bool = False,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """Adds the rows of an Arrow table (or RecordBatch, RecordBatchReader,
        iterable of RecordBatches) ``batch_size`` rows per :meth:`add` call;
        returns the number of rows written.

        Each batch is all or nothing; a failure keeps the batches written
        before it (``atomic=True``: every row in one call, all or nothing,
        when the whole input fits in memory). Column types are checked before
        anything is written. See docs/arrow.md.

        Args:
            id_column: string ids, no nulls.
            embedding_column: ``fixed_size_list<float32>[dim]`` without nulls
                (passed to C without a copy), or a list of numbers of any
                width, every row ``dim`` long (copied as float32).
            metadata_column: None (no metadata); a column of JSON object text,
                structs or maps; or a list of scalar columns, each a key (a
                null leaves the key out).
            upsert: overwrite rows whose id exists (:meth:`upsert`).
            progress: True: a progress bar over rows on stderr when it is a
                terminal; "always": even when it is not.
        """
        from . import arrow

        return arrow.add_source(
            self, "arrow", data, id_column=id_column, embedding_column=embedding_column,
            metadata_column=metadata_column, upsert=upsert, batch_size=batch_size, atomic=atomic, progress=progress,
        )

    def add_dataframe(
        self,
        df: Any,
        *,
        id_column: str = "id",
        embedding_column: str = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        upsert: bool = False,
        batch_size: int = 10_000,
        atomic: bool = False,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """:meth:`add_arrow` for a ``pandas.DataFrame``: the embedding column
        holds one numpy array (or list) per row, or is a
        ``pd.ArrowDtype(pa.list_(pa.float32(), dim))`` column."""
        from . import arrow

        return arrow.add_source(
            self, "dataframe", df, id_column=id_column, embedding_column=embedding_column,
            metadata_column=metadata_column, upsert=upsert, batch_size=batch_size, atomic=atomic, progress=progress,
        )

    def add_parquet(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        id_column: str = "id",
        embedding_column: str = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        upsert: bool = False,
        batch_size: int = 10_000,
        atomic: bool = False,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """:meth:`add_arrow` for a Parquet file, read ``batch_size`` rows at a
        time (only the columns used), so a file larger than memory works."""
        from . import arrow

        return arrow.add_source(
            self, "parquet", path, id_column=id_column, embedding_column=embedding_column,
            metadata_column=metadata_column, upsert=upsert, batch_size=batch_size, atomic=atomic, progress=progress,
        )
