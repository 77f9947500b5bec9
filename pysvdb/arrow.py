"""Arrow, pandas and Parquet for pysvdb: tables in and out of a collection.

Needs the optional extra ``pip install pysvdb[arrow]`` (pyarrow, pandas); this
module is imported only by the methods that use it (``SvDBPython.add_arrow``,
``to_arrow``, ... and the Chroma collection's), never by ``import pysvdb``.

Tables read from a collection have the columns ``id`` (string),
``embedding`` (``fixed_size_list<float32>[dim]``, one buffer for the whole
batch) and ``metadata`` (each row's JSON text, null for a row without).
Metadata stays JSON text because rows of one collection need not share keys
or value types: a struct column would need one schema for every row, and
Arrow would fill every missing key with null (which the filters treat as a
value). ``pyarrow.compute`` and ``pandas.json_normalize`` parse it when one
schema does fit.

Bulk adds go batch by batch, each batch one library call (all or nothing). A
``fixed_size_list<float32>`` column without nulls goes to C without a copy:
its values buffer is viewed as an ``(n, dim)`` numpy array, which
``SvDBPython.add`` hands to C as it is.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager, nullcontext
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import numpy.typing as npt

from ._errors import InvalidArgumentError, InvalidTypeError, MetadataError, SvDBError
from ._db import _c_array, _metadata_list, _pointer_array
from ._lib import ffi, lib
from ._progress import RowProgress, check_progress

try:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pysvdb's Arrow, pandas and Parquet support needs pyarrow: pip install 'pysvdb[arrow]' (%s)" % e
    ) from None

__all__ = [
    "add_source",
    "chroma_add",
    "chroma_table",
    "iter_rows",
    "read_table",
    "to_pandas",
]

#: Anything that yields record batches: a Table, a RecordBatch, a
#: RecordBatchReader (or any object with ``__arrow_c_stream__``), or an
#: iterable of RecordBatches or Tables.
Source = Any
MetadataColumn = Union[None, str, Sequence[str]]


class Columns(NamedTuple):
    """Where each field of a row comes from in an input table."""

    id: str
    embedding: Optional[str]
    metadata: MetadataColumn = None
    document: Optional[str] = None

    def names(self) -> List[str]:
        """The columns read, each once, in order."""
        out: List[str] = [self.id]
        if self.embedding is not None:
            out.append(self.embedding)
        if isinstance(self.metadata, str):
            out.append(self.metadata)
        elif self.metadata is not None:
            out += list(self.metadata)
        if self.document is not None:
            out.append(self.document)
        return list(dict.fromkeys(out))


class Batch(NamedTuple):
    """One input batch converted: ids, float32 vectors (or None), metadata
    (JSON text or dicts, as asked; None when no metadata column), documents."""

    ids: List[str]
    vectors: Optional[npt.NDArray[np.float32]]
    metadatas: Optional[List[Any]]
    documents: Optional[List[Optional[str]]]


# ---------------------------------------------------------------- checks


def check_columns(cols: Columns) -> Columns:
    """The column names given to a bulk add, checked before any table is read."""
    named = (("id_column", cols.id), ("embedding_column", cols.embedding), ("document_column", cols.document))
    for what, name in named:
        if name is not None and not isinstance(name, str):
            raise InvalidTypeError("%s must be a column name (str), not %s" % (what, type(name).__name__), -1)
    if cols.embedding is None and cols.document is None:
        raise InvalidArgumentError("embedding_column is None and there is no document_column to embed", -1)
    m = cols.metadata
    if m is not None and not isinstance(m, str):
        if isinstance(m, (bytes, Mapping)) or not isinstance(m, Iterable):
            raise InvalidTypeError(
                "metadata_column must be a column name or a list of them, not %s" % type(m).__name__, -1
            )
        m = list(m)
        if not m or not all(isinstance(x, str) for x in m):
            raise InvalidArgumentError("metadata_column must be a column name or a non-empty list of names", -1)
        cols = cols._replace(metadata=m)
    return cols


def _never(t: Any) -> bool:
    return False


# string_view and list_view came in pyarrow 16; the extra asks for 14.
_TEXT_TESTS = (pa.types.is_string, pa.types.is_large_string, getattr(pa.types, "is_string_view", _never))
_LIST_TESTS = (
    pa.types.is_fixed_size_list,
    pa.types.is_list,
    pa.types.is_large_list,
    getattr(pa.types, "is_list_view", _never),
    getattr(pa.types, "is_large_list_view", _never),
)


def _is_text(t: Any) -> bool:
    return any(f(t) for f in _TEXT_TESTS)


def _is_list(t: Any) -> bool:
    return any(f(t) for f in _LIST_TESTS)


def _is_number(t: Any) -> bool:
    return bool(pa.types.is_floating(t) or pa.types.is_integer(t))


def check_schema(schema: Any, cols: Columns) -> None:
    """Every column the add reads exists and has a type it can take; raises
    before anything is written, naming the column and its type."""
    names = list(schema.names)
    for name in cols.names():
        if name not in names:
            raise InvalidArgumentError("column %r is not in the table (its columns: %s)" % (name, ", ".join(names)), -1)
    t = schema.field(cols.id).type
    if not _is_text(t):
        raise InvalidTypeError(
            "id column %r must hold strings, not %s (cast it: pc.cast(column, pa.string()))" % (cols.id, t),
            -1,
        )
    if cols.embedding is not None:
        t = schema.field(cols.embedding).type
        if not (_is_list(t) and _is_number(t.value_type)):
            raise InvalidTypeError(
                "embedding column %r must be a list of numbers "
                "(fixed_size_list<float32>[dim] is passed without a copy), not %s" % (cols.embedding, t),
                -1,
            )
    if cols.document is not None:
        t = schema.field(cols.document).type
        if not _is_text(t):
            raise InvalidTypeError("document column %r must hold strings, not %s" % (cols.document, t), -1)
    if isinstance(cols.metadata, str):
        t = schema.field(cols.metadata).type
        if not (_is_text(t) or pa.types.is_struct(t) or pa.types.is_map(t)):
            raise InvalidTypeError(
                "metadata column %r must hold JSON object text, structs or maps, not %s" % (cols.metadata, t), -1
            )


# ---------------------------------------------------------------- sources


def _rebatch(batches: Iterable[Any], batch_size: int) -> Iterator[Any]:
    """The rows of batches (RecordBatches or Tables) in batches of batch_size
    rows: a large batch is sliced (the slices share its buffers), small ones
    (a table of many small chunks, a stream of small batches) are joined, a
    copy that saves a library call per small batch."""
    pending: List[Any] = []
    rows = 0
    for item in batches:
        if isinstance(item, pa.Table):
            parts = item.to_batches()
        elif isinstance(item, pa.RecordBatch):
            parts = [item]
        else:
            raise InvalidTypeError("a bulk add reads pyarrow RecordBatches or Tables, not %s" % type(item).__name__, -1)
        for b in parts:
            if pending and b.schema != pending[0].schema:  # a changed schema is checked on its own
                yield _joined(pending)
                pending, rows = [], 0
            start = 0
            if pending and rows + b.num_rows >= batch_size:  # complete the pending batch
                start = batch_size - rows
                pending.append(b.slice(0, start))
                yield _joined(pending)
                pending, rows = [], 0
            while b.num_rows - start >= batch_size:
                yield b.slice(start, batch_size)
                start += batch_size
            if start < b.num_rows:
                pending.append(b.slice(start))
                rows += b.num_rows - start
    if pending:
        yield _joined(pending)


def _joined(parts: List[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]


def as_batches(source: Source, batch_size: int) -> Tuple[Optional[Any], Optional[int], Iterator[Any]]:
    """(schema, or None when only the first batch will tell; rows, or None
    when unknown; the batches of at most batch_size rows)."""
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        return source.schema, source.num_rows, _rebatch([source], batch_size)
    if isinstance(source, pa.RecordBatchReader):
        return source.schema, None, _rebatch(source, batch_size)
    if hasattr(source, "__arrow_c_stream__") and hasattr(pa.RecordBatchReader, "from_stream"):  # pyarrow >= 15
        reader = pa.RecordBatchReader.from_stream(source)
        return reader.schema, None, _rebatch(reader, batch_size)
    if isinstance(source, (str, bytes, os.PathLike)):
        raise InvalidTypeError("a file path goes to add_parquet(), not add_arrow()", -1)
    if isinstance(source, Iterable):
        return None, None, _rebatch(source, batch_size)
    raise InvalidTypeError(
        "add_arrow takes a pyarrow Table, RecordBatch, RecordBatchReader or an iterable of RecordBatches, not %s"
        % type(source).__name__,
        -1,
    )


def parquet_batches(path: Any, cols: Columns, batch_size: int) -> Tuple[Any, int, Iterator[Any], Any]:
    """(schema, rows, batches, the open file to close): a Parquet file read a
    batch at a time, only the columns the add needs."""
    try:
        f = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
        raise InvalidArgumentError("cannot read %r as Parquet: %s" % (shown, e), -1) from None
    schema = f.schema_arrow
    check_schema(schema, cols)
    return schema, f.metadata.num_rows, f.iter_batches(batch_size=batch_size, columns=cols.names()), f


def _is_dataframe(x: object) -> bool:
    return type(x).__name__ == "DataFrame" and type(x).__module__.startswith("pandas")


def dataframe_table(df: Any, cols: Columns) -> Any:
    """The columns an add reads of a pandas DataFrame, as an Arrow table. An
    embedding column of numpy arrays (or lists) becomes a list column; one of
    ``pd.ArrowDtype(fixed_size_list)`` passes its buffer through."""
    if not _is_dataframe(df):
        raise InvalidTypeError("add_dataframe takes a pandas DataFrame, not %s" % type(df).__name__, -1)
    names = [str(c) for c in df.columns]
    missing = [c for c in cols.names() if c not in names]
    if missing:
        raise InvalidArgumentError(
            "column %r is not in the DataFrame (its columns: %s)" % (missing[0], ", ".join(names)), -1
        )
    try:
        return pa.Table.from_pandas(df[cols.names()], preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise InvalidArgumentError("cannot convert the DataFrame's columns to Arrow: %s" % e, -1) from None


# ---------------------------------------------------------------- batch conversion


def _column(batch: Any, name: str) -> Any:
    a = batch.column(name)
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _first_null(a: Any) -> int:
    return int(pc.index(a.is_null(), True).as_py())


def _ids(batch: Any, name: str, first_row: int) -> List[str]:
    a = _column(batch, name)
    if a.null_count:
        raise InvalidArgumentError("id column %r is null in row %d" % (name, first_row + _first_null(a)), -1)
    out: List[str] = a.to_pylist()
    return out


def _id_array(batch: Any, name: str, first_row: int) -> Any:
    """The id column as a string array, checked for nulls and NULs (the
    library checks the rest: empty, too long)."""
    a: Any = _plain_text(_column(batch, name))  # check_schema made sure it is text
    if a.null_count:
        raise InvalidArgumentError("id column %r is null in row %d" % (name, first_row + _first_null(a)), -1)
    if _has_nul(a):
        raise InvalidArgumentError(
            "id column %r, row %d: an id contains a NUL character" % (name, first_row + _first_true(pc.match_substring(a, "\x00"))), -1
        )
    return a


def _vectors(batch: Any, name: str, first_row: int) -> npt.NDArray[np.float32]:
    """The embedding column as an (n, dim) float32 array: a view of the Arrow
    buffer when it is a fixed_size_list<float32> without nulls, else a copy."""
    a = _column(batch, name)
    n = len(a)
    if a.null_count:
        raise InvalidArgumentError("embedding column %r is null in row %d" % (name, first_row + _first_null(a)), -1)
    t = a.type
    if pa.types.is_fixed_size_list(t):
        dim = int(t.list_size)
    else:
        lengths = pc.list_value_length(a).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if n else 0
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            i = int(bad[0])
            raise InvalidArgumentError(
                "embedding column %r is ragged: row %d has %d values, row %d has %d"
                % (name, first_row + i, int(lengths[i]), first_row, dim),
                -1,
            )
    values = a.flatten()  # the rows' values only (a slice's offset applied), no copy for a fixed-size list
    if values.null_count:
        i = _first_null(values) // max(dim, 1)
        raise InvalidArgumentError("embedding column %r has a null value in row %d" % (name, first_row + i), -1)
    if pa.types.is_float32(values.type):
        flat = values.to_numpy(zero_copy_only=True)
    else:
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(n, dim)  # type: ignore[no-any-return]


def _drop_nulls(d: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A struct row or a row of scalar columns without its null fields: Arrow
    fills a missing key with null, and a row should not gain keys it never had."""
    if d is None:
        return None
    out = {k: v for k, v in d.items() if v is not None}
    return out or None


def _metadatas(batch: Any, col: MetadataColumn, first_row: int, as_text: bool) -> Optional[List[Any]]:
    """Each row's metadata: JSON text (as_text) or a dict; None for a row without."""
    if col is None:
        return None
    rows: List[Any]
    if isinstance(col, str):
        a = _column(batch, col)
        if _is_text(a.type):
            rows = a.to_pylist()
            if as_text:
                return rows
            return [_parse(t, col, first_row + i) for i, t in enumerate(rows)]
        if pa.types.is_map(a.type):
            rows = [None if r is None else _drop_nulls(dict(r)) for r in a.to_pylist()]
        else:
            rows = [_drop_nulls(r) for r in a.to_pylist()]
    else:
        rows = [_drop_nulls(r) for r in batch.select(list(col)).to_pylist()]
    if not as_text:
        return rows
    return [_dump(r, first_row + i) for i, r in enumerate(rows)]


def _parse(text: Optional[str], col: str, row: int) -> Optional[Dict[str, Any]]:
    if text is None:
        return None
    try:
        d = json.loads(text)
    except ValueError as e:
        raise MetadataError("metadata column %r, row %d: not JSON: %s" % (col, row, e), -14) from None
    if not isinstance(d, dict):
        raise MetadataError("metadata column %r, row %d: not a JSON object" % (col, row), -14)
    return d or None


def _dump(d: Optional[Dict[str, Any]], row: int) -> Optional[str]:
    if d is None:
        return None
    try:
        return json.dumps(d, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise MetadataError(
            "metadata of row %d cannot be stored as JSON: %s (cast the column first)" % (row, e), -14
        ) from None


# ------------------------------------------------ Arrow strings to C, no Python per row


def _plain_text(a: Any) -> Optional[Any]:
    """a as a string or large_string array (whose buffers are offsets + bytes), or None."""
    t = a.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return a
    if _is_text(t):  # string_view and the like: one cast, still no Python per row
        return a.cast(pa.large_string())
    return None


def _has_nul(a: Any) -> bool:
    return bool(pc.any(pc.match_substring(a, "\x00")).as_py())


def _first_true(mask: Any) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def c_strings(a: Any) -> Tuple[Any, List[Any]]:
    """A ``const char *[]`` of a string array's values (NULL for a null) and
    the objects to keep alive with it: the bytes copied once, with a NUL after
    each value, by numpy, without a Python step per row."""
    n = len(a)
    wide = pa.types.is_large_string(a.type)
    offsets = np.frombuffer(a.buffers()[1], np.int64 if wide else np.int32)[a.offset : a.offset + n + 1].astype(np.int64)
    data = a.buffers()[2]
    raw = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    rel = offsets - offsets[0]
    blob = np.insert(raw, rel[1:], 0)  # a NUL at the end of each value
    blob = np.append(blob, np.uint8(0)) if n == 0 else blob
    buf = ffi.from_buffer(blob)
    addrs = (rel[:-1] + np.arange(n, dtype=np.int64) + int(ffi.cast("uintptr_t", buf))).astype(np.uintp)
    if a.null_count:
        addrs[a.is_null().to_numpy(zero_copy_only=False)] = 0
    return _c_array("char *[]", addrs), [blob, buf, addrs]


_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'))


def _json_value(a: Any, name: str, first_row: int) -> Optional[Any]:
    """Each value of a scalar column as JSON text (null stays null), by Arrow
    compute; None for a type that takes the per-row path."""
    t = a.type
    if pa.types.is_boolean(t):
        return pc.if_else(a, "true", "false")
    if pa.types.is_integer(t):
        return pc.cast(a, pa.string())
    if pa.types.is_floating(t):
        bad = pc.invert(pc.is_finite(a))
        if pc.any(bad).as_py():
            raise MetadataError(
                "metadata column %r, row %d: %s is not a JSON number" % (name, first_row + _first_true(bad), a[_first_true(bad)]), -14
            )
        # As the per-row path (json.dumps of a Python float): a float32 value is
        # written as the float64 it widens to, in its shortest round-trip form
        # ("1" for 1.0 gets its ".0" below, "1e+20" stays).
        text = pc.cast(a.cast(pa.float64()), pa.string())
        return pc.if_else(pc.match_substring_regex(text, "[.e]"), text, pc.binary_join_element_wise(text, ".0", ""))
    v = _plain_text(a)
    if v is not None and not pa.types.is_string(v.type):
        v = v.cast(pa.string())  # one string type for the joins below (a batch is far below 2 GiB)
    if v is None or pc.any(pc.match_substring_regex(v, "[\\x00-\\x1f]")).as_py():
        return None  # a control character needs a \u escape: json.dumps does it
    for old, new in _JSON_ESCAPES:
        v = pc.replace_substring(v, old, new)
    return pc.binary_join_element_wise('"', v, '"', "")


def _text_array(batch: Any, col: MetadataColumn, first_row: int) -> Optional[Any]:
    """Each row's metadata as JSON text in one string array (null: none), by
    Arrow compute; None when the column needs the per-row path (structs,
    maps, nested values, strings with control characters)."""
    if isinstance(col, str):
        a = _plain_text(_column(batch, col))
        if a is not None and _has_nul(a):
            raise MetadataError("metadata column %r, row %d: a NUL character" % (col, first_row + _first_true(pc.match_substring(a, "\x00"))), -14)
        return a
    assert col is not None
    pieces = []
    for name in col:
        v = _json_value(_column(batch, name), name, first_row)
        if v is None:
            return None
        pieces.append(pc.binary_join_element_wise(json.dumps(name, ensure_ascii=False) + ": ", v, ""))  # null value: null piece
    body = pc.binary_join_element_wise(*pieces, ", ", null_handling="skip")  # a null value's key is left out
    text = pc.binary_join_element_wise("{", body, "}", "")
    return pc.if_else(pc.equal(body, ""), pa.scalar(None, pa.string()), text)


def convert(batch: Any, cols: Columns, first_row: int, *, metadata_as_text: bool) -> Batch:
    """One record batch as the lists and arrays an add takes; raises before
    any write on a null id, a null or ragged vector, or bad metadata."""
    if metadata_as_text:  # SvDBPython: ids and metadata go to C from Arrow buffers (see write_arrays)
        ids: Any = _id_array(batch, cols.id, first_row)
        metas: Any = _text_array(batch, cols.metadata, first_row) if cols.metadata is not None else None
        if metas is None and cols.metadata is not None:
            metas = _metadatas(batch, cols.metadata, first_row, True)
    else:
        ids = _ids(batch, cols.id, first_row)
        metas = _metadatas(batch, cols.metadata, first_row, False)
    vecs = _vectors(batch, cols.embedding, first_row) if cols.embedding is not None else None
    docs: Optional[List[Optional[str]]] = None
    if cols.document is not None:
        docs = _column(batch, cols.document).to_pylist()
    return Batch(ids, vecs, metas, docs)


# ---------------------------------------------------------------- the bulk add loop


def write_batches(
    schema: Optional[Any],
    total: Optional[int],
    batches: Iterator[Any],
    cols: Columns,
    write: Callable[[Batch], None],
    *,
    metadata_as_text: bool,
    atomic: bool,
    progress: object,
    around: Optional[Callable[[RowProgress], ContextManager[None]]] = None,
) -> int:
    """Converts and writes each batch (one ``write`` call per batch, all or
    nothing each) and returns the rows written. With ``atomic``, every batch
    is converted first and written in one call. ``around(bar)`` is entered
    for the whole loop (the engine's reports)."""
    check_progress(progress)
    if schema is not None:
        check_schema(schema, cols)
    done = 0
    with RowProgress(progress, total, "adding") as bar, (around(bar) if around is not None else nullcontext()):
        if atomic:
            numbered = _numbered(batches, cols, schema)
            parts = [convert(x, cols, i, metadata_as_text=metadata_as_text) for i, x in numbered]
            b = _concat(parts)
            if b is not None:
                write(b)
                done = len(b.ids)
                bar.update(done)
            return done
        for first, rb in _numbered(batches, cols, schema):
            b = convert(rb, cols, first, metadata_as_text=metadata_as_text)
            if not len(b.ids):
                continue
            try:
                write(b)
            except SvDBError as e:
                raise _located(e, first) from None
            done += len(b.ids)
            bar.update(len(b.ids))
    return done


def _located(e: SvDBError, first: int) -> SvDBError:
    """The library's error about a batch (its rows counted from 0), saying
    where that batch starts in the input."""
    if first == 0 or type(e).__module__ != SvDBError.__module__:  # ChromaDB's errors keep ChromaDB's words
        return e
    return type(e)("%s (in the batch that starts at row %d of the input)" % (e.message, first), e.__dict__.get("code"))


def _numbered(batches: Iterator[Any], cols: Columns, schema: Optional[Any]) -> Iterator[Tuple[int, Any]]:
    """(row number of its first row, batch); a stream's batches have their
    schema checked one by one (its schema is not known before)."""
    first = 0
    for b in batches:
        if schema is None:
            check_schema(b.schema, cols)
        yield first, b
        first += b.num_rows


def _concat(parts: List[Batch]) -> Optional[Batch]:
    parts = [p for p in parts if p.ids]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0].ids, list):
        ids: Any = [i for p in parts for i in p.ids]
    else:
        ids = pa.concat_arrays([p.ids.cast(pa.large_string()) for p in parts])
    vecs = None
    if parts[0].vectors is not None:
        dims = {int(p.vectors.shape[1]) for p in parts if p.vectors is not None}
        if len(dims) > 1:
            raise InvalidArgumentError("the batches' embeddings have different dimensions: %s" % sorted(dims), -1)
        vecs = np.concatenate([p.vectors for p in parts if p.vectors is not None])
    metas: Any = None
    if parts[0].metadatas is not None:
        arrays: List[Any] = [p.metadatas for p in parts]
        if all(not isinstance(m, list) for m in arrays):
            metas = pa.concat_arrays([m.cast(pa.large_string()) for m in arrays])
        else:
            metas = [m for p in parts for m in _as_list(p.metadatas)]
    docs = None if parts[0].documents is None else [d for p in parts for d in (p.documents or [])]
    return Batch(ids, vecs, metas, docs)


def _as_list(m: Any) -> List[Any]:
    return m if isinstance(m, list) else list(m.to_pylist())


# ---------------------------------------------------------------- output tables


def schema_of(dim: int, *, vectors: bool, metadata: bool, document: bool = False) -> Any:
    fields = [pa.field("id", pa.string(), nullable=False)]
    if vectors:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False))
    if metadata:
        fields.append(pa.field("metadata", pa.string()))
    if document:
        fields.append(pa.field("document", pa.string()))
    return pa.schema(fields)


def table_of(
    ids: List[str],
    vectors: Optional[npt.NDArray[np.float32]],
    metadatas: Optional[Sequence[Optional[str]]],
    dim: int,
    documents: Optional[Sequence[Optional[str]]] = None,
    *,
    vectors_col: bool,
    metadata_col: bool,
) -> Any:
    """A record batch of the rows: the embedding column is built on the one
    (n, dim) buffer, without a Python loop per row."""
    schema = schema_of(dim, vectors=vectors_col, metadata=metadata_col, document=documents is not None)
    arrays = [pa.array(ids, type=pa.string())]
    if vectors_col:
        flat = np.empty(0, np.float32)
        if vectors is not None:
            flat = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim))
    if metadata_col:
        arrays.append(pa.array(list(metadatas) if metadatas is not None else [None] * len(ids), type=pa.string()))
    if documents is not None:
        arrays.append(pa.array(list(documents), type=pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def to_pandas(table: Any) -> Any:
    """The table as a DataFrame: ``embedding`` holds one float32 numpy array
    per row (``np.stack(df.embedding)`` makes the (n, dim) matrix)."""
    return table.to_pandas()


# ---------------------------------------------------------------- SvDBPython's methods


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InvalidTypeError("batch_size must be an int, not %s" % type(batch_size).__name__, -1)
    if batch_size < 1:
        raise InvalidArgumentError("batch_size must be at least 1, not %d" % batch_size, -1)
    return int(batch_size)


def iter_rows(
    db: Any,
    ids: Optional[Sequence[str]],
    where: Any,
    where_document: Any,
    *,
    vectors: bool,
    metadata: bool,
    batch_size: object,
) -> Iterator[Any]:
    """The matching rows in insertion order, batch_size rows per RecordBatch.

    The ids are chosen once (one ``select``); each batch then reads its
    vectors and metadata in one ``get_batch`` call, so a batch is one
    consistent view, and a row deleted in between is left out.
    """
    size = check_batch_size(batch_size)
    chosen: List[str] = db.select(where=where, where_document=where_document, ids=ids).ids
    return _read_batches(db, chosen, int(db.dim or 0), size, vectors, metadata)


def _read_batches(db: Any, chosen: List[str], dim: int, size: int, vectors: bool, metadata: bool) -> Iterator[Any]:
    for start in range(0, len(chosen), size):
        chunk = chosen[start : start + size]
        vecs, metas = None, None
        if vectors or metadata:
            r = db.get_batch(chunk, metadata=metadata, vectors=vectors)
            vecs, metas = r.vectors, r.metadatas
            if not r.found.all():  # deleted since the select
                keep = np.flatnonzero(r.found)
                chunk = [chunk[i] for i in keep]
                vecs = vecs[keep] if vecs is not None else None
                metas = [metas[i] for i in keep] if metas is not None else None
        yield table_of(chunk, vecs, metas, dim, vectors_col=vectors, metadata_col=metadata)


def read_table(
    db: Any,
    ids: Optional[Sequence[str]],
    where: Any,
    where_document: Any,
    *,
    vectors: bool,
    metadata: bool,
    batch_size: object,
    progress: object = False,
) -> Any:
    """iter_rows' batches as one table (not copied again), with a bar over rows."""
    size = check_batch_size(batch_size)
    check_progress(progress)
    chosen: List[str] = db.select(where=where, where_document=where_document, ids=ids).ids
    dim = int(db.dim or 0)
    batches = []
    with RowProgress(progress, len(chosen), "reading") as bar:
        for b in _read_batches(db, chosen, dim, size, vectors, metadata):
            batches.append(b)
            bar.update(b.num_rows)
    return pa.Table.from_batches(batches, schema=schema_of(dim, vectors=vectors, metadata=metadata))


def _writer(db: Any, upsert: bool) -> Callable[[Batch], None]:
    fn = lib.svdb_upsert_batch if upsert else lib.svdb_add_batch

    def write(b: Batch) -> None:
        assert b.vectors is not None
        id_arr, keep_ids = c_strings(b.ids)
        keep_metas: List[Any]
        if b.metadatas is None:
            meta_arr, keep_metas = ffi.NULL, []
        elif isinstance(b.metadatas, list):  # the per-row path's JSON text
            meta_arr, keep_metas = _pointer_array(_metadata_list(b.metadatas, len(b.metadatas)) or [])
        else:
            meta_arr, keep_metas = c_strings(b.metadatas)
        if b.vectors.shape[0] != len(b.ids):
            raise InvalidArgumentError("there are %d ids but %d embeddings" % (len(b.ids), b.vectors.shape[0]), -1)
        db._put_prepared(fn, len(b.ids), id_arr, b.vectors, meta_arr)
        del keep_ids, keep_metas

    return write


def add_source(
    db: Any,
    kind: str,
    source: Any,
    *,
    id_column: str,
    embedding_column: str,
    metadata_column: MetadataColumn,
    upsert: bool,
    batch_size: object,
    atomic: bool,
    progress: object,
) -> int:
    """SvDBPython.add_arrow / add_dataframe / add_parquet: rows written."""
    if embedding_column is None:
        raise InvalidArgumentError("embedding_column is None: SvDBPython needs the vectors", -1)
    cols = check_columns(Columns(id_column, embedding_column, metadata_column))
    return add_columns(
        db, kind, source, cols, _writer(db, upsert), batch_size=batch_size, atomic=atomic, progress=progress,
        metadata_as_text=True, around=lambda bar: _engine_reports(db, bar),
    )


@contextmanager
def _engine_reports(db: Any, bar: RowProgress) -> Iterator[None]:
    """For the whole bulk add, a progress handler on db that shows the
    engine's steps of a long batch under the row bar, and calls the handler
    the user installed (whose answer still cancels). Installed even without
    a bar: Ctrl-C during a long batch then cancels that batch in C (the
    handler is where Python raises the KeyboardInterrupt) instead of waiting
    for it to finish."""
    state = db._progress
    user: Optional[Callable[[str, int, int], Optional[bool]]] = state.fn if state is not None else None

    def report(op: str, done: int, total: int) -> Optional[bool]:
        bar.step(op, done, total)
        return user(op, done, total) if user is not None else None

    db.set_progress_handler(report)
    try:
        yield
    finally:
        bar.end_step()
        if not db.closed:
            db.set_progress_handler(user)


def add_columns(
    db: Any,
    kind: str,
    source: Any,
    cols: Columns,
    write: Callable[[Batch], None],
    *,
    batch_size: object,
    atomic: bool,
    progress: object,
    metadata_as_text: bool,
    around: Optional[Callable[[RowProgress], ContextManager[None]]] = None,
) -> int:
    """The bulk add of kind "arrow", "dataframe" or "parquet", batch by batch through write."""
    size = check_batch_size(batch_size)
    check_progress(progress)
    opened = None
    total: Optional[int]
    if kind == "arrow" and _is_dataframe(source):  # pandas 3 DataFrames are Arrow streams too: same path
        kind = "dataframe"
    if kind == "parquet":
        schema, total, batches, opened = parquet_batches(source, cols, size)
    elif kind == "dataframe":
        table = dataframe_table(source, cols)
        schema, total, batches = table.schema, table.num_rows, _rebatch([table], size)
    else:
        schema, total, batches = as_batches(source, size)
    try:
        return write_batches(
            schema, total, batches, cols, write, metadata_as_text=metadata_as_text, atomic=atomic, progress=progress,
            around=around,
        )
    finally:
        if opened is not None:
            opened.close()


# ---------------------------------------------------------------- the Chroma collection's methods


def chroma_table(result: Mapping[str, Any], dim: int) -> Any:
    """A Chroma ``get`` result as a table: ``id``, then what ``include`` asked
    for among ``embedding``, ``metadata`` (JSON text of the user's keys),
    ``document`` and ``uri``."""
    ids: List[str] = list(result["ids"])
    fields = [pa.field("id", pa.string(), nullable=False)]
    arrays = [pa.array(ids, type=pa.string())]
    emb = result.get("embeddings")
    if emb is not None:
        vecs = np.asarray(emb, dtype=np.float32)
        d = int(vecs.shape[1]) if vecs.ndim == 2 else dim
        flat = np.ascontiguousarray(vecs).reshape(-1)
        fields.append(pa.field("embedding", pa.list_(pa.float32(), d), nullable=False))
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), d))
    metas = result.get("metadatas")
    if metas is not None:
        fields.append(pa.field("metadata", pa.string()))
        arrays.append(pa.array([_dump(m, i) for i, m in enumerate(metas)], type=pa.string()))
    for key, name in (("documents", "document"), ("uris", "uri")):
        col = result.get(key)
        if col is not None:
            fields.append(pa.field(name, pa.string()))
            arrays.append(pa.array(list(col), type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def chroma_add(
    collection: Any,
    kind: str,
    source: Any,
    *,
    id_column: str,
    embedding_column: Optional[str],
    metadata_column: MetadataColumn,
    document_column: Optional[str],
    upsert: bool,
    batch_size: object,
    max_batch_size: int,
    progress: object,
) -> int:
    """Collection.add_arrow / add_dataframe / add_parquet: each batch is one
    ``Collection.add`` (or ``upsert``) call, with ChromaDB's checks and the
    collection's embedding function for rows without an embedding column."""
    size = check_batch_size(batch_size)
    if size > max_batch_size:
        raise InvalidArgumentError(
            "batch_size %d is over the collection's max batch size %d" % (size, max_batch_size), -1
        )
    cols = check_columns(Columns(id_column, embedding_column, metadata_column, document_column))
    put = collection.upsert if upsert else collection.add

    def write(b: Batch) -> None:
        put(ids=b.ids, embeddings=b.vectors, metadatas=b.metadatas, documents=b.documents)

    return add_columns(
        collection, kind, source, cols, write, batch_size=size, atomic=False, progress=progress, metadata_as_text=False
    )
