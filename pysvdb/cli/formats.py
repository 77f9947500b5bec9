"""Reading and writing the files ``svdb import`` and ``svdb export`` take.

Every reader yields :class:`Batch` es of at most ``size`` rows and never holds
more than one batch in memory: ``.npy`` by memory map, ``.npz`` members as
streams, ``.fvecs`` by memory map, Parquet through ``iter_batches``, JSON
Lines line by line. Readers check what they read and raise
:class:`FormatError` naming the file (and row or line); ``svdb import`` runs
a reader once without writing to check the whole file first.

Writers are in writers.py.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import struct
import zipfile
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .._cdef import DOCUMENT_KEY  # the reserved key a row's document is kept under (SVDB_DOCUMENT_KEY)
from .._lib import lib

__all__ = [
    "Batch",
    "FormatError",
    "FORMATS",
    "VECTOR_ONLY",
    "format_of",
    "open_reader",
    "pyarrow_modules",
    "Reader",
    "DOCUMENT_KEY",
]

#: Formats by file name suffix.
FORMATS = {".npy": "npy", ".npz": "npz", ".fvecs": "fvecs", ".parquet": "parquet", ".jsonl": "jsonl"}
#: Formats that carry vectors (and for .npz ids) only.
VECTOR_ONLY = ("npy", "npz", "fvecs")
_JSONL_KEYS = ("id", "embedding", "metadata", "document")
_MAX_DIM = int(lib.SVDB_MAX_DIM)
_F32 = np.dtype("<f4")


class FormatError(Exception):
    """A file that cannot be read or written as its format says."""


@dataclass
class Batch:
    """Rows read from or written to a file: ids, float32 vectors of shape
    (n, dim), and where the format carries them metadata objects and documents."""

    ids: List[str]
    vectors: npt.NDArray[np.float32]
    metadatas: Optional[List[Optional[Dict[str, Any]]]] = None
    documents: Optional[List[Optional[str]]] = None


def format_of(path: str) -> str:
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise FormatError("%s: unknown format; the file name must end in %s" % (path, ", ".join(FORMATS)))
    return fmt


def _as_vectors(a: npt.NDArray[Any], path: str, first_row: int) -> npt.NDArray[np.float32]:
    """Float32 rows, checked finite (a value beyond float32's range becomes inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(v).all(axis=1) if v.size else np.zeros(len(v), dtype=bool)
    if bad.any():
        raise FormatError("%s: row %d holds NaN, inf or a value beyond float32's range" % (path, first_row + int(np.argmax(bad))))
    return v


def _check_numeric(dtype: np.dtype[Any], path: str) -> None:
    if dtype.kind not in "fiu":
        raise FormatError("%s: vectors must be numbers, not %s" % (path, dtype))


def _check_dim(dim: int, path: str) -> None:
    if not 1 <= dim <= _MAX_DIM:
        raise FormatError("%s: dimension %d is outside 1..%d" % (path, dim, _MAX_DIM))


class _Ids:
    """Ids for a vectors-only file, taken batch by batch."""

    def take(self, n: int) -> List[str]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _GeneratedIds(_Ids):
    """prefix + row number: "0", "1", ... by default."""

    def __init__(self, prefix: str) -> None:
        self._prefix, self._next = prefix, 0

    def take(self, n: int) -> List[str]:
        start, self._next = self._next, self._next + n
        return ["%s%d" % (self._prefix, i) for i in range(start, start + n)]


class _FileIds(_Ids):
    """One id a line of a UTF-8 text file (``--ids-from``), as many as rows
    (line ends \\n or \\r\\n)."""

    def __init__(self, path: str, rows: int) -> None:
        self._path, self._rows, self._taken = path, rows, 0
        self._f = open(path, "r", encoding="utf-8", newline="\n")

    def take(self, n: int) -> List[str]:
        out: List[str] = []
        try:
            for _ in range(n):
                line = self._f.readline()
                if not line:
                    raise FormatError("%s has %d ids, the vectors file %d rows" % (self._path, self._taken + len(out), self._rows))
                out.append(line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line)
                if self._taken + len(out) == 1 and out[0].startswith("\ufeff"):
                    out[0] = out[0][1:]  # a UTF-8 byte-order mark is not part of the first id
        except UnicodeDecodeError as e:
            raise FormatError("%s: not UTF-8 text (%s)" % (self._path, e)) from None
        self._taken += n
        if self._taken == self._rows and self._f.read(1):
            raise FormatError("%s has more ids than the vectors file has rows (%d)" % (self._path, self._rows))
        return out

    def close(self) -> None:
        self._f.close()


class Reader:
    """Rows of one input file. ``rows`` and ``dim`` are known up front where
    the format says them (None otherwise)."""

    path: str
    rows: Optional[int] = None
    dim: Optional[int] = None

    def batches(self, size: int) -> Iterator[Batch]:
        raise NotImplementedError


class _VectorReader(Reader):
    """A reader of a vectors-only format: ids from ``--ids-from`` or generated."""

    def __init__(self, path: str, ids_from: Optional[str], prefix: str) -> None:
        self.path = path
        self._ids_from, self._prefix = ids_from, prefix
        if ids_from is not None:
            open(ids_from, "rb").close()  # a missing file fails before anything else

    def _rows(self, size: int) -> Iterator[npt.NDArray[np.float32]]:
        raise NotImplementedError

    def _new_ids(self, size: int) -> _Ids:
        if self._ids_from is not None:
            return _FileIds(self._ids_from, self.rows or 0)
        return _GeneratedIds(self._prefix)

    def batches(self, size: int) -> Iterator[Batch]:
        ids = self._new_ids(size)
        try:
            if self.rows == 0:
                ids.take(0)
            for vecs in self._rows(size):
                yield Batch(ids.take(len(vecs)), vecs)
        finally:
            ids.close()


class NpyReader(_VectorReader):
    def __init__(self, path: str, ids_from: Optional[str], prefix: str) -> None:
        super().__init__(path, ids_from, prefix)
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, struct.error) as e:  # truncated, not .npy, object arrays
            raise FormatError("%s: not a readable .npy array (%s)" % (path, e)) from None
        if not isinstance(a, np.ndarray):
            raise FormatError("%s: not a .npy array (an .npz archive? name it .npz)" % path)
        if a.ndim != 2:
            raise FormatError("%s: expected a 2-d array (rows, dim), found shape %s" % (path, a.shape))
        _check_numeric(a.dtype, path)
        _check_dim(a.shape[1], path)
        self._a = a
        self.rows, self.dim = int(a.shape[0]), int(a.shape[1])

    def _rows(self, size: int) -> Iterator[npt.NDArray[np.float32]]:
        for i in range(0, self._a.shape[0], size):
            yield _as_vectors(self._a[i : i + size], self.path, i)


def _npy_stream_header(f: IO[bytes], path: str, member: str) -> Tuple[Tuple[int, ...], np.dtype[Any]]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError("npy format version %s is not supported" % (version,))
    except ValueError as e:
        raise FormatError("%s: member %s is not a readable .npy array (%s)" % (path, member, e)) from None
    if fortran and len(shape) > 1:
        raise FormatError("%s: member %s is Fortran-ordered; save np.ascontiguousarray(a)" % (path, member))
    if dtype.hasobject:
        raise FormatError("%s: member %s holds Python objects, which are not read" % (path, member))
    return tuple(shape), dtype


class NpzReader(_VectorReader):
    """An .npz archive: ``embeddings`` (rows, dim) and optionally ``ids``
    (rows,) of str, each read as a stream (compressed or not)."""

    def __init__(self, path: str, ids_from: Optional[str], prefix: str) -> None:
        super().__init__(path, ids_from, prefix)
        try:
            with zipfile.ZipFile(path) as z:
                infos = {i.filename: i for i in z.infolist()}
                names = sorted(n[:-4] if n.endswith(".npy") else n for n in infos)
                if "embeddings.npy" not in infos or not set(names) <= {"embeddings", "ids"}:
                    raise FormatError(
                        "%s: expected arrays 'embeddings' and optionally 'ids', found %s" % (path, ", ".join(names) or "none")
                    )
                shape, dtype = self._check_member(z, infos["embeddings.npy"], 2)
                _check_numeric(dtype, path)
                _check_dim(shape[1], path)
                self.rows, self.dim = shape[0], shape[1]
                self._has_ids = "ids.npy" in infos
                if self._has_ids:
                    if ids_from is not None:
                        raise FormatError("%s holds ids already: --ids-from is for files without" % path)
                    ishape, idtype = self._check_member(z, infos["ids.npy"], 1)
                    if idtype.kind not in "US":
                        raise FormatError("%s: 'ids' must be an array of str, not %s" % (path, idtype))
                    if ishape[0] != self.rows:
                        raise FormatError("%s: %d ids for %d embeddings" % (path, ishape[0], self.rows))
        except zipfile.BadZipFile as e:
            raise FormatError("%s: not a readable .npz archive (%s)" % (path, e)) from None

    def _check_member(self, z: zipfile.ZipFile, info: zipfile.ZipInfo, ndim: int) -> Tuple[Tuple[int, ...], np.dtype[Any]]:
        with z.open(info) as f:
            shape, dtype = _npy_stream_header(f, self.path, info.filename)
            header = f.tell()
        name = info.filename[:-4]
        if len(shape) != ndim:
            raise FormatError("%s: '%s' must have %d dimension(s), found shape %s" % (self.path, name, ndim, shape))
        if header + math.prod(shape) * dtype.itemsize != info.file_size:
            raise FormatError("%s: '%s' is truncated or has trailing bytes" % (self.path, name))
        return shape, dtype

    def _stream(self, z: zipfile.ZipFile, name: str, size: int) -> Iterator[npt.NDArray[Any]]:
        with z.open(name + ".npy") as f:
            shape, dtype = _npy_stream_header(f, self.path, name)
            row = dtype.itemsize * (shape[1] if len(shape) > 1 else 1)
            for i in range(0, shape[0], size):
                n = min(size, shape[0] - i)
                buf = f.read(n * row)
                if len(buf) != n * row:
                    raise FormatError("%s: '%s' is truncated" % (self.path, name))
                yield np.frombuffer(buf, dtype=dtype).reshape((n,) + tuple(shape[1:]))
            f.read()  # the CRC is checked at the member's end

    def _rows(self, size: int) -> Iterator[npt.NDArray[np.float32]]:
        try:
            with zipfile.ZipFile(self.path) as z:
                for i, a in enumerate(self._stream(z, "embeddings", size)):
                    yield _as_vectors(a, self.path, i * size)
        except zipfile.BadZipFile as e:
            raise FormatError("%s: damaged .npz archive (%s)" % (self.path, e)) from None

    def _new_ids(self, size: int) -> _Ids:
        return _NpzIds(self, size) if self._has_ids else super()._new_ids(size)


class _NpzIds(_Ids):
    """The ``ids`` member of an .npz archive, streamed beside its embeddings."""

    def __init__(self, reader: NpzReader, size: int) -> None:
        self._path = reader.path
        self._z = zipfile.ZipFile(reader.path)
        self._stream = reader._stream(self._z, "ids", max(size, 1))
        self._buffered: List[str] = []

    def take(self, n: int) -> List[str]:
        try:
            while len(self._buffered) < n:
                part = next(self._stream, None)
                if part is None:
                    break
                self._buffered.extend(x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in part.tolist())
        except (zipfile.BadZipFile, UnicodeDecodeError) as e:
            raise FormatError("%s: damaged ids (%s)" % (self._path, e)) from None
        out, self._buffered = self._buffered[:n], self._buffered[n:]
        return out

    def close(self) -> None:
        self._z.close()


class FvecsReader(_VectorReader):
    """The .fvecs format: each row an int32 dimension, then that many float32."""

    def __init__(self, path: str, ids_from: Optional[str], prefix: str) -> None:
        super().__init__(path, ids_from, prefix)
        size = os.path.getsize(path)
        self.rows, self._m = 0, None
        if size == 0:
            return
        if size % 4 or size < 8:
            raise FormatError("%s: truncated or not .fvecs (%d bytes)" % (path, size))
        m = np.memmap(path, dtype="<i4", mode="r")
        d = int(m[0])
        if not 1 <= d <= _MAX_DIM:
            raise FormatError("%s: not .fvecs: the first row says dimension %d" % (path, d))
        if (size // 4) % (d + 1):
            raise FormatError("%s: truncated or not .fvecs: %d bytes is not a whole number of %d-d rows" % (path, size, d))
        self.rows, self.dim = (size // 4) // (d + 1), d
        self._m = m.reshape(self.rows, d + 1)

    def _rows(self, size: int) -> Iterator[npt.NDArray[np.float32]]:
        m, d = self._m, self.dim
        if m is None:
            return
        for i in range(0, m.shape[0], size):
            chunk = m[i : i + size]
            bad = chunk[:, 0] != d
            if bad.any():
                j = int(np.argmax(bad))
                raise FormatError("%s: row %d has dimension %d, the first row %s" % (self.path, i + j, chunk[j, 0], d))
            yield _as_vectors(chunk[:, 1:].view("<f4"), self.path, i)


def pyarrow_modules() -> Tuple[Any, Any]:
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise FormatError("Parquet files need pyarrow: pip install pyarrow (or pip install 'pysvdb[arrow]')") from None


def _parse_metadata(text: Any, where: str) -> Optional[Dict[str, Any]]:
    if text is None:
        return None
    try:
        m = json.loads(text) if isinstance(text, str) else text
    except ValueError as e:
        raise FormatError("%s: metadata is not JSON (%s)" % (where, e)) from None
    if not isinstance(m, dict):
        raise FormatError("%s: metadata must be a JSON object or null, not %s" % (where, type(m).__name__))
    return m


def _check_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError("%s: id must be a non-empty string, not %r" % (where, value))
    return value


class ParquetReader(Reader):
    """Columns ``id`` (string), ``embedding`` (list of numbers), and
    optionally ``metadata`` (JSON object text) and ``document`` (string)."""

    def __init__(self, path: str) -> None:
        self.path = path
        pa, pq = pyarrow_modules()
        self._pa = pa
        try:
            self._pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as e:
            raise FormatError("%s: not a readable Parquet file (%s)" % (path, e)) from None
        schema = self._pf.schema_arrow
        names = list(schema.names)
        extra = [n for n in names if n not in _JSONL_KEYS]
        missing = [n for n in ("id", "embedding") if n not in names]
        if extra or missing:
            raise FormatError(
                "%s: expected columns id, embedding[, metadata, document]; %s"
                % (path, "; ".join(filter(None, ["missing " + ", ".join(missing) if missing else "", "unexpected " + ", ".join(extra) if extra else ""])))
            )
        t = pa.types
        et = schema.field("embedding").type
        if not (t.is_list(et) or t.is_large_list(et) or t.is_fixed_size_list(et)) or not (
            t.is_floating(et.value_type) or t.is_integer(et.value_type)
        ):
            raise FormatError("%s: column 'embedding' must be a list of numbers, not %s" % (path, et))
        for name in ("id", "metadata", "document"):
            if name in names and not (t.is_string(schema.field(name).type) or t.is_large_string(schema.field(name).type)):
                raise FormatError("%s: column '%s' must be strings, not %s" % (path, name, schema.field(name).type))
        if t.is_fixed_size_list(et):
            self.dim = int(et.list_size)
            _check_dim(self.dim, path)
        self.rows = int(self._pf.metadata.num_rows)
        self._names = names

    def _vectors(self, col: Any, first: int) -> npt.NDArray[np.float32]:
        n = len(col)
        if col.null_count:
            raise FormatError("%s: row %d has no embedding" % (self.path, first + int(np.argmax(np.asarray(col.is_null())))))
        values = col.flatten()
        if values.null_count:
            raise FormatError("%s: an embedding in rows %d..%d holds a null" % (self.path, first, first + n - 1))
        if self._pa.types.is_fixed_size_list(col.type):
            lengths = np.full(n, col.type.list_size)
        else:
            off = np.asarray(col.offsets)
            lengths = np.diff(off)
        if self.dim is None and n:
            self.dim = int(lengths[0])
            _check_dim(self.dim, self.path)
        bad = lengths != self.dim
        if bad.any():
            j = int(np.argmax(bad))
            raise FormatError("%s: row %d has dimension %d, expected %s" % (self.path, first + j, lengths[j], self.dim))
        return _as_vectors(values.to_numpy(zero_copy_only=False).reshape(n, self.dim or 0), self.path, first)

    def batches(self, size: int) -> Iterator[Batch]:
        first = 0
        try:
            for rb in self._pf.iter_batches(batch_size=size):
                vecs = self._vectors(rb.column("embedding"), first)
                ids = [_check_id(v, "%s: row %d" % (self.path, first + i)) for i, v in enumerate(rb.column("id").to_pylist())]
                metas = docs = None
                if "metadata" in self._names:
                    metas = [_parse_metadata(v, "%s: row %d" % (self.path, first + i)) for i, v in enumerate(rb.column("metadata").to_pylist())]
                if "document" in self._names:
                    docs = rb.column("document").to_pylist()
                yield Batch(ids, vecs, metas, docs)
                first += len(ids)
        except (self._pa.ArrowException, OSError) as e:
            raise FormatError("%s: damaged Parquet file near row %d (%s)" % (self.path, first, e)) from None


class JsonlReader(Reader):
    """JSON Lines: one object a line, ``{"id", "embedding", "metadata", "document"}``
    (``metadata`` and ``document`` optional or null); blank lines are skipped."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb"):  # a missing file fails here, before anything else
            pass

    def _row(self, line: str, lineno: int) -> Tuple[str, List[Any], Optional[Dict[str, Any]], Optional[str]]:
        where = "%s:%d" % (self.path, lineno)
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise FormatError("%s: malformed JSON (%s)" % (where, e)) from None
        if not isinstance(obj, dict):
            raise FormatError("%s: expected a JSON object, found %s" % (where, type(obj).__name__))
        extra = sorted(set(obj) - set(_JSONL_KEYS))
        if extra:
            raise FormatError("%s: unexpected key(s) %s; keys are id, embedding, metadata, document" % (where, ", ".join(extra)))
        emb = obj.get("embedding")
        if not isinstance(emb, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in emb):
            raise FormatError("%s: 'embedding' must be a list of numbers" % where)
        if self.dim is None:
            _check_dim(len(emb), where)
            self.dim = len(emb)
        elif len(emb) != self.dim:
            raise FormatError("%s: embedding has dimension %d, the first row %d" % (where, len(emb), self.dim))
        doc = obj.get("document")
        if doc is not None and not isinstance(doc, str):
            raise FormatError("%s: 'document' must be a string or null" % where)
        return _check_id(obj.get("id"), where), emb, _parse_metadata(obj.get("metadata"), where), doc

    def batches(self, size: int) -> Iterator[Batch]:
        rows: List[Tuple[str, List[Any], Optional[Dict[str, Any]], Optional[str]]] = []
        first = 0
        with open(self.path, "r", encoding="utf-8") as f:
            lineno = 0
            while True:
                try:
                    line = f.readline()
                except UnicodeDecodeError as e:
                    raise FormatError("%s:%d: not UTF-8 text (%s)" % (self.path, lineno + 1, e)) from None
                lineno += 1
                if line.strip():
                    rows.append(self._row(line, lineno))
                if rows and (len(rows) == size or not line):
                    try:
                        vecs = _as_vectors(np.array([r[1] for r in rows], dtype=np.float64), self.path, first)
                    except OverflowError:
                        raise FormatError("%s: a number near line %d is too large" % (self.path, lineno)) from None
                    yield Batch([r[0] for r in rows], vecs, [r[2] for r in rows], [r[3] for r in rows])
                    first += len(rows)
                    rows = []
                if not line:
                    return


def open_reader(path: str, fmt: str, ids_from: Optional[str] = None, id_prefix: str = "") -> Reader:
    """A reader of ``path`` in format ``fmt``; ``ids_from``/``id_prefix`` give
    the ids of formats without them."""
    if ids_from is not None and fmt not in VECTOR_ONLY:
        raise FormatError("--ids-from is for .npy, .npz and .fvecs files; %s files carry their ids" % fmt)
    if fmt == "npy":
        return NpyReader(path, ids_from, id_prefix)
    if fmt == "npz":
        return NpzReader(path, ids_from, id_prefix)
    if fmt == "fvecs":
        return FvecsReader(path, ids_from, id_prefix)
    if fmt == "parquet":
        return ParquetReader(path)
    return JsonlReader(path)
