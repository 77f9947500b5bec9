"""Argument checks of the ChromaDB-compatible API.

Each check raises what ChromaDB 1.5 raises for the same input (see
../shared/docs/chroma-api.md and docs/chroma.md): ``ValueError``/``TypeError``
where ChromaDB checks in Python, the classes of :mod:`pysvdb.chroma.errors`
where its Rust layer does. Nothing here touches the database.
"""

from __future__ import annotations

import math
import re
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    cast,
)

import numpy as np
import numpy.typing as npt

from .._lib import lib
from .errors import DuplicateIDError, InternalError, InvalidArgumentError
from .types import INCLUDE_ITEMS, HnswConfiguration, Space

#: ChromaDB's largest add/upsert/update batch (get_max_batch_size()): SQLite's
#: 32,766 bound variables over the 6 it binds per record, kept so that code
#: written for ChromaDB sees the same limit and error.
MAX_BATCH_SIZE = 5461


def check_batch_size(n: int) -> None:
    """A write of more records than ChromaDB takes fails as ChromaDB's does."""
    if n > MAX_BATCH_SIZE:
        raise InternalError("ValueError: Batch size of %d is greater than max batch size of %d" % (n, MAX_BATCH_SIZE))


def check_lengths(present: Sequence[Tuple[str, int]]) -> None:
    """ChromaDB's checks on the given record fields: none empty, all one length."""
    empty = [k for k, n in present if n == 0]
    if empty:
        raise ValueError("Non-empty lists are required for %s" % empty)
    if len({n for _, n in present}) > 1:
        raise ValueError("Unequal lengths for fields: %s" % ", ".join("%s: %d" % kv for kv in present))


# ---------------------------------------------------------------- ids, documents


def one_or_many(target: object) -> Optional[List[Any]]:
    """Chroma's maybe_cast_one_to_many: a list stays, None stays, anything else is wrapped."""
    if target is None:
        return None
    if isinstance(target, list):
        return target
    return [target]


def validate_ids(ids: object) -> List[str]:
    if not isinstance(ids, list):
        raise ValueError("Expected IDs to be a list, got %s as IDs" % type(ids).__name__)
    if not ids:
        raise ValueError("Expected IDs to be a non-empty list, got 0 IDs")
    for id_ in ids:
        if not isinstance(id_, str):
            raise ValueError("Expected ID to be a str, got %s" % (id_,))
    if len(set(ids)) != len(ids):
        seen: Set[str] = set()
        dups = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise DuplicateIDError("Expected IDs to be unique, found duplicates of: %s" % ", ".join(dups[:10]))
    return ids


def validate_query_ids(ids: object) -> Optional[List[str]]:
    """query(ids=...): one id or a list of them; anything else in the list is a
    TypeError, as ChromaDB's bindings raise (a list may be empty or repeat ids)."""
    id_list = one_or_many(ids)
    if id_list is not None:
        for id_ in id_list:
            if not isinstance(id_, str):
                raise TypeError("argument 'ids': '%s' object cannot be converted to 'PyString'" % type(id_).__name__)
    return id_list


def check_ids_storable(ids: Sequence[str]) -> None:
    """The checks ChromaDB's Rust layer makes on ids, plus libsvdb's limits."""
    for id_ in ids:
        if not id_:
            raise InvalidArgumentError("Empty ID, ID must have at least one character")
        if "\0" in id_:
            raise InvalidArgumentError("ID %r contains a NUL character" % id_)
        try:
            n = len(id_.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgumentError("ID %r cannot be encoded as UTF-8" % id_) from None
        if n > lib.SVDB_MAX_ID_BYTES:
            raise InvalidArgumentError(
                "ID of %d bytes; pysvdb ids are at most %d bytes of UTF-8" % (n, lib.SVDB_MAX_ID_BYTES)
            )


def validate_documents(documents: object, nullable: bool) -> None:
    if not isinstance(documents, list):
        raise ValueError("Expected documents to be a list, got %s" % type(documents).__name__)
    if not documents:
        raise ValueError("Expected documents to be a non-empty list, got 0 documents")
    for doc in documents:
        if doc is None and nullable:
            continue
        if not isinstance(doc, str):
            raise ValueError("Expected document to be a str, got %s" % (doc,))


def validate_images(images: object) -> None:
    if not isinstance(images, list):
        raise ValueError("Expected images to be a list, got %s" % type(images).__name__)
    if not images:
        raise ValueError("Expected images to be a non-empty list, got 0 images")
    for image in images:
        if not isinstance(image, np.ndarray) or image.ndim < 2:
            raise ValueError("Expected image to be a numpy array, got %s" % (image,))


# ---------------------------------------------------------------- embeddings

_EMBEDDING_DTYPES = (np.float16, np.float32, np.float64, np.int32, np.int64)
_BAD_EMBEDDINGS = (
    "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, "
    "or a list of numpy arrays, got %s"
)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_embedding_array(a: npt.NDArray[Any], pos: int) -> None:
    if a.ndim == 0:
        raise ValueError("Expected a 1-dimensional array, got a 0-dimensional array %s" % (a,))
    if a.size == 0:
        raise ValueError(
            "Expected each embedding in the embeddings to be a 1-dimensional numpy array with at least "
            "1 int/float value. Got a 1-dimensional numpy array with no values at pos %d" % pos
        )
    if a.dtype not in _EMBEDDING_DTYPES:
        raise ValueError(
            "Expected each value in the embedding to be a int or float, got an embedding with %s - %s" % (a.dtype, a)
        )


def _stack(rows: Sequence[npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
    dims = {int(r.shape[-1]) if r.ndim else 0 for r in rows}
    if len(dims) != 1 or any(r.ndim != 1 for r in rows):
        raise InvalidArgumentError("Inconsistent dimensions in provided embeddings")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def normalize_embeddings(target: object) -> Optional[npt.NDArray[np.float32]]:
    """Chroma's accepted embedding shapes as one C-contiguous float32 matrix.

    One flat list or 1-d array is one embedding; a list of lists, a 2-d array
    or a list of 1-d arrays is one per row. Rows of different lengths raise
    InvalidArgumentError ("Inconsistent dimensions"), as in ChromaDB.
    """
    if target is None:
        return None
    try:
        n = len(target)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(_BAD_EMBEDDINGS % (target,)) from None
    if n == 0:
        raise ValueError("Expected Embeddings to be non-empty list or numpy array, got %s" % (target,))
    if isinstance(target, np.ndarray):
        if target.ndim == 1:
            _check_embedding_array(target, 0)
            return np.ascontiguousarray(target.reshape(1, -1), dtype=np.float32)
        if target.ndim == 2:
            _check_embedding_array(target[0], 0)
            with np.errstate(over="ignore", invalid="ignore"):
                return np.ascontiguousarray(target, dtype=np.float32)
        raise ValueError(_BAD_EMBEDDINGS % (target,))
    if not isinstance(target, list):
        raise ValueError(_BAD_EMBEDDINGS % (target,))
    first = target[0]
    if _is_number(first):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.array(target, dtype=np.float32).reshape(1, -1)
    if isinstance(first, np.ndarray):
        for i, row in enumerate(target):
            if not isinstance(row, np.ndarray):
                raise ValueError(
                    "Expected each embedding in the embeddings to be a numpy array, got %s"
                    % sorted({type(e).__name__ for e in target})
                )
            _check_embedding_array(row, i)
        return _stack(target)
    if isinstance(first, list) and first and _is_number(first[0]):
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                arr = np.array(target, dtype=np.float32)
        except (ValueError, TypeError):
            arr = None  # ragged, or a bad value: converted row by row below, as ChromaDB does
        if arr is not None and arr.ndim == 2:
            if arr.shape[1] == 0:
                raise InvalidArgumentError("Inconsistent dimensions in provided embeddings")
            return np.ascontiguousarray(arr)
        with np.errstate(over="ignore", invalid="ignore"):
            rows = [np.array(row, dtype=np.float32) for row in target]
        for i, row in enumerate(rows):
            _check_embedding_array(row, i)
        return _stack(rows)
    raise ValueError(_BAD_EMBEDDINGS % (target,))


def check_finite(vecs: npt.NDArray[np.float32]) -> None:
    if not np.isfinite(vecs).all():
        raise InvalidArgumentError("Validation error: embeddings: Embeddings must not contain NaN or Infinity values")


# ---------------------------------------------------------------- metadata

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _validate_list_value(key: str, value: List[Any]) -> None:
    if not value:
        raise ValueError("Expected metadata list value for key '%s' to be non-empty" % key)
    first = bool if isinstance(value[0], bool) else type(value[0])
    for item in value:
        t = bool if isinstance(item, bool) else type(item)
        if t is not first or t not in (str, int, float, bool):
            raise ValueError(
                "Expected metadata list value for key '%s' to contain only str, int, float, or bool "
                "and all elements must be the same type, got %s" % (key, value)
            )


def validate_metadata(metadata: object) -> None:
    """Chroma's Python-side metadata check (ValueError/TypeError)."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise ValueError("Expected metadata to be a dict or None, got %s as metadata" % type(metadata).__name__)
    if not metadata:
        raise ValueError("Expected metadata to be a non-empty dict, got 0 metadata attributes")
    for key, value in metadata.items():
        if key == "chroma:document":
            raise ValueError("Expected metadata to not contain the reserved key chroma:document")
        if not isinstance(key, str):
            raise TypeError("Expected metadata key to be a str, got %s which is a %s" % (key, type(key).__name__))
        if isinstance(value, list):
            _validate_list_value(key, value)
        elif not isinstance(value, (str, int, float, bool, type(None))):
            raise ValueError(
                "Expected metadata value to be a str, int, float, bool, list, or None, got %s which is a %s"
                % (value, type(value).__name__)
            )


def normalize_metadatas(metadatas: Optional[List[Any]]) -> Optional[List[Any]]:
    """Mappings other than dict become dicts (ChromaDB rebuilds each metadata from .items())."""
    if metadatas is None:
        return None
    return [dict(m.items()) if not isinstance(m, (dict, str)) and hasattr(m, "items") else m for m in metadatas]


def validate_metadatas(metadatas: object) -> None:
    if not isinstance(metadatas, list):
        raise ValueError("Expected metadatas to be a list, got %s" % (metadatas,))
    for m in metadatas:
        validate_metadata(m)


def check_metadata_storable(metadatas: Sequence[Optional[Mapping[str, Any]]], allow_none_values: bool) -> None:
    """The checks ChromaDB's Rust layer makes on row metadata."""
    for i, m in enumerate(metadatas):
        if m is None:
            continue
        for key, value in m.items():
            if not key or key[0] in "#$":
                raise InvalidArgumentError("Validation error: metadatas: Invalid metadata at index %d" % i)
            if value is None and not allow_none_values:
                raise TypeError("argument 'metadatas': Cannot convert Python object to MetadataValue")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("metadata value %r of key '%s' cannot be stored (JSON has no NaN/Infinity)" % (value, key))


def storable_value(value: Any) -> Any:
    """Integers beyond 64 bits become floats, as in ChromaDB."""
    if isinstance(value, int) and not isinstance(value, bool) and not _I64_MIN <= value <= _I64_MAX:
        return float(value)
    return value


def validate_collection_metadata(metadata: object) -> None:
    """Collection metadata: Chroma's Python check, then its Rust one."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise ValueError("Expected metadata to be a dict or None, got %s as metadata" % type(metadata).__name__)
    if not metadata:
        raise InvalidArgumentError("Validation error: metadata: Metadata cannot be empty")
    validate_metadata(metadata)
    for key, value in metadata.items():
        if not key or key[0] in "#$":
            raise InvalidArgumentError("Validation error: metadata: Metadata key cannot start with '#' or '$': %s" % key)
        if value is None:
            raise TypeError("argument 'metadata': Cannot convert Python object to MetadataValue")


# ---------------------------------------------------------------- filters, include, numbers

_WHERE_OPS = ("$gt", "$gte", "$lt", "$lte", "$ne", "$eq", "$in", "$nin", "$contains", "$not_contains")
_DOC_OPS = ("$contains", "$not_contains", "$regex", "$not_regex", "$and", "$or")


def _validate_where(where: object) -> None:
    if not isinstance(where, dict):
        raise ValueError("Expected where to be a dict, got %s" % (where,))
    if len(where) != 1:
        raise ValueError("Expected where to have exactly one operator, got %s" % (where,))
    for key, value in where.items():
        if not isinstance(key, str):
            raise ValueError("Expected where key to be a str, got %s" % (key,))
        if key in ("$contains", "$not_contains"):
            raise ValueError(
                "Expected where key to be a metadata field name or a logical operator ($and, $or), got %s" % key
            )
        if key not in ("$and", "$or", "$in", "$nin") and not isinstance(value, (str, int, float, dict)):
            raise ValueError("Expected where value to be a str, int, float, or operator expression, got %s" % (value,))
        if key in ("$and", "$or"):
            if not isinstance(value, list):
                raise ValueError(
                    "Expected where value for $and or $or to be a list of where expressions, got %s" % (value,)
                )
            if len(value) <= 1:
                raise ValueError(
                    "Expected where value for $and or $or to be a list with at least two where expressions, got %s"
                    % (value,)
                )
            for sub in value:
                _validate_where(sub)
        if isinstance(value, dict):
            if len(value) != 1:
                raise ValueError("Expected operator expression to have exactly one operator, got %s" % (value,))
            for op, operand in value.items():
                if op in ("$gt", "$gte", "$lt", "$lte") and not isinstance(operand, (int, float)):
                    raise ValueError(
                        "Expected operand value to be an int or a float for operator %s, got %s" % (op, operand)
                    )
                if op in ("$in", "$nin") and not isinstance(operand, list):
                    raise ValueError("Expected operand value to be an list for operator %s, got %s" % (op, operand))
                if op in ("$contains", "$not_contains"):
                    if key == "#document" and not isinstance(operand, str):
                        raise ValueError(
                            "Expected operand value to be a str for operator %s on #document, got %s" % (op, operand)
                        )
                    if not isinstance(operand, (str, int, float, bool)):
                        raise ValueError(
                            "Expected operand value to be a str, int, float, or bool for operator %s, got %s"
                            % (op, operand)
                        )
                if op not in _WHERE_OPS:
                    raise ValueError(
                        "Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, "
                        "$contains, $not_contains, got %s" % op
                    )
                if not isinstance(operand, (str, int, float, bool, list)):
                    raise ValueError(
                        "Expected where operand value to be a str, int, float, bool, or list of those type, got %s"
                        % (operand,)
                    )
                if isinstance(operand, list) and (not operand or not all(isinstance(x, type(operand[0])) for x in operand)):
                    raise ValueError(
                        "Expected where operand value to be a non-empty list, and all values to be of the same type "
                        "got %s" % (operand,)
                    )


def validate_delete(ids: object, where: object, where_document: object, limit: object) -> Optional[List[str]]:
    """ChromaDB's checks of ``delete``'s arguments; returns the ids as a list (None when not given)."""
    if ids is None and where is None and where_document is None:
        raise ValueError("At least one of ids, where, or where_document must be provided")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError("limit must be a non-negative integer")
        if limit < 0:
            raise ValueError("limit must be a non-negative integer")
        if where is None and where_document is None:
            raise ValueError("limit can only be specified when a where or where_document clause is provided")
    id_list = one_or_many(ids)
    if id_list is not None:
        validate_ids(id_list)
    if where is not None:
        validate_where(where)
    if where_document is not None:
        validate_where_document(where_document)
    return id_list


def validate_where(where: object) -> None:
    """Chroma's where check (ValueError), then the "#" keys its engine rejects."""
    _validate_where(where)
    check_where_keys(where)


def check_where_keys(where: Any) -> None:
    """Keys starting with "#" are ChromaDB's own: only ``{"#document": {"$contains"|"$not_contains": s}}``
    is a valid filter on one (InvalidArgumentError otherwise, as ChromaDB's engine raises)."""
    for key, value in where.items():
        if key in ("$and", "$or"):
            for sub in value:
                check_where_keys(sub)
        elif key.startswith("#"):
            if key != "#document" or not isinstance(value, dict) or set(value) - {"$contains", "$not_contains"}:
                raise InvalidArgumentError(
                    "Cannot filter using metadata key '%s' with %r: only $contains and $not_contains filter "
                    "#document" % (key, value)
                )


def validate_where_document(where_document: object) -> None:
    if not isinstance(where_document, dict):
        raise ValueError("Expected where document to be a dictionary, got %s" % (where_document,))
    if len(where_document) != 1:
        raise ValueError("Expected where document to have exactly one operator, got %s" % (where_document,))
    for op, operand in where_document.items():
        if op not in _DOC_OPS:
            raise ValueError(
                "Expected where document operator to be one of $contains, $not_contains, $regex, $not_regex, "
                "$and, $or, got %s" % (op,)
            )
        if op in ("$and", "$or"):
            if not isinstance(operand, list):
                raise ValueError(
                    "Expected document value for $and or $or to be a list of where document expressions, got %s"
                    % (operand,)
                )
            if len(operand) <= 1:
                raise ValueError(
                    "Expected document value for $and or $or to be a list with at least two where document "
                    "expressions, got %s" % (operand,)
                )
            for sub in operand:
                validate_where_document(sub)
        elif not isinstance(operand, str):
            raise ValueError(
                "Expected where document operand value for operator %s to be a str, got %s" % (op, operand)
            )
        elif not operand:
            raise ValueError("Expected where document operand value for operator %s to be a non-empty str" % op)


def validate_include(include: object, disallowed: Sequence[str] = ()) -> List[str]:
    if not isinstance(include, list):
        raise ValueError("Expected include to be a list, got %s" % (include,))
    for item in include:
        if not isinstance(item, str):
            raise ValueError("Expected include item to be a str, got %s" % (item,))
        if item not in INCLUDE_ITEMS:
            raise ValueError("Expected include item to be one of %s, got %s" % (", ".join(INCLUDE_ITEMS), item))
        if item in disallowed:
            raise ValueError("Include item cannot be one of %s, got %s" % (", ".join(disallowed), item))
    return list(include)


def validate_n_results(n_results: object) -> int:
    if not isinstance(n_results, int):
        raise ValueError("Expected requested number of results to be a int, got %s" % (n_results,))
    if n_results <= 0:
        raise TypeError("Number of requested results %d, cannot be negative, or zero." % n_results)
    return int(n_results)


def unsigned(name: str, value: object) -> Optional[int]:
    """limit/offset as ChromaDB's bindings convert them (TypeError, OverflowError)."""
    if value is None:
        return None
    if not isinstance(value, (int, np.integer)):
        raise TypeError("argument '%s': '%s' object cannot be interpreted as an integer" % (name, type(value).__name__))
    if value < 0 or value > 2**32 - 1:
        raise OverflowError("out of range integral type conversion attempted")
    return int(value)


# ---------------------------------------------------------------- names and configuration

# Validators match whole strings (fullmatch): "$" would also match before a
# final newline, and let "abc\n" through.
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_IPV4_RE = re.compile(r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")


def validate_collection_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str):
        raise TypeError("argument '%s': '%s' object cannot be converted to 'PyString'" % (field, type(name).__name__))
    if not _NAME_RE.fullmatch(name):
        raise InvalidArgumentError(
            "Validation error: %s: Expected a name containing 3-512 characters from [a-zA-Z0-9._-], starting and "
            "ending with a character in [a-zA-Z0-9]. Got: %s" % (field, name)
        )
    if ".." in name:
        raise InvalidArgumentError(
            "Validation error: %s: Expected a name that does not contains two consecutive periods (..). Got %s"
            % (field, name)
        )
    if _IPV4_RE.fullmatch(name):
        raise InvalidArgumentError(
            "Validation error: %s: Expected a name that is not a valid ip address. Got %s" % (field, name)
        )
    return name


#: HNSW configuration keys ChromaDB accepts, and the legacy metadata keys naming them.
HNSW_KEYS = (
    "space",
    "ef_construction",
    "ef_search",
    "max_neighbors",
    "num_threads",
    "resize_factor",
    "sync_threshold",
    "batch_size",
)
LEGACY_HNSW_KEYS = {
    "hnsw:space": "space",
    "hnsw:construction_ef": "ef_construction",
    "hnsw:M": "max_neighbors",
    "hnsw:search_ef": "ef_search",
    "hnsw:num_threads": "num_threads",
    "hnsw:batch_size": "batch_size",
    "hnsw:sync_threshold": "sync_threshold",
    "hnsw:resize_factor": "resize_factor",
}
UPDATABLE_HNSW_KEYS = ("ef_search", "num_threads", "batch_size", "sync_threshold", "resize_factor")
SPACES: Tuple[Space, ...] = ("l2", "cosine", "ip")


def check_hnsw_value(key: str, value: object, legacy: bool) -> Union[str, int, float]:
    """One HNSW setting, checked; InvalidArgumentError as ChromaDB's parser raises."""
    bad = "Failed to parse hnsw parameters from segment metadata"
    if key == "space":
        if value not in SPACES:
            raise InvalidArgumentError(
                bad if legacy else "unknown variant `%s`, expected one of `l2`, `cosine`, `ip`" % (value,)
            )
        return value
    if key == "resize_factor":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InvalidArgumentError(bad if legacy else "invalid value for resize_factor: %r" % (value,))
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(bad if legacy else "invalid value for %s: %r (expected a positive integer)" % (key, value))
    if key == "max_neighbors" and not 2 <= value <= lib.SVDB_MAX_HNSW_M:
        raise InvalidArgumentError(
            "max_neighbors must be between 2 and %d in pysvdb, not %d" % (lib.SVDB_MAX_HNSW_M, value)
        )
    return int(value)


def hnsw_from_create_args(
    configuration: Optional[Mapping[str, object]],
    metadata: Optional[Mapping[str, object]],
    default_space: Callable[[], Optional[Space]],
) -> HnswConfiguration:
    """The collection's HNSW settings from configuration={"hnsw": {...}} or
    the legacy "hnsw:*" metadata keys, with ChromaDB's defaults."""
    hnsw: Dict[str, Union[str, int, float]] = {}
    if configuration is not None:
        if not isinstance(configuration, Mapping):
            raise ValueError("configuration must be a dict, not %s" % type(configuration).__name__)
        for key in configuration:
            if key not in ("hnsw", "spann", "embedding_function"):
                raise InvalidArgumentError("unknown configuration field `%s`" % key)
        if configuration.get("spann") is not None:
            raise InvalidArgumentError("pysvdb collections use HNSW; a spann configuration is not supported")
        given = configuration.get("hnsw")
        if given is not None:
            if not isinstance(given, Mapping):
                raise InvalidArgumentError("not a valid hnsw config: %r" % (given,))
            for key, value in given.items():
                if key not in HNSW_KEYS:
                    raise InvalidArgumentError(
                        "unknown field `%s`, expected one of %s" % (key, ", ".join("`%s`" % k for k in HNSW_KEYS))
                    )
                if value is not None:
                    hnsw[key] = check_hnsw_value(key, value, legacy=False)
    if not hnsw and metadata:
        for mkey, key in LEGACY_HNSW_KEYS.items():
            if mkey in metadata:
                hnsw[key] = check_hnsw_value(key, metadata[mkey], legacy=True)
    if "space" not in hnsw:
        hnsw["space"] = default_space() or "l2"
    hnsw.setdefault("ef_construction", 100)
    hnsw.setdefault("ef_search", 100)
    hnsw.setdefault("max_neighbors", 16)
    hnsw.setdefault("resize_factor", 1.2)
    hnsw.setdefault("sync_threshold", 1000)
    return cast(HnswConfiguration, hnsw)
