"""A ChromaDB-compatible client over libsvdb: ``import pysvdb as chromadb``.

Clients, collections and results follow ChromaDB 1.5's core Python API (see
docs/chroma.md for what is supported and every known difference). Python
checks arguments the way ChromaDB does and converts; libsvdb stores the rows
(vector, metadata and document together, durably) and evaluates ``where`` and
``where_document`` during query, get and delete.

A persistent client's directory holds a catalog (``pysvdb-chroma.json``:
names, ids, metadata, HNSW settings), a lock file, and one libsvdb collection
directory per collection, named by the collection's UUID. libsvdb keeps the
catalog (svdb_catalog_*): its lock, atomic updates and removals are C's.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
)
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from . import errors
from . import _errors as svdb_errors
from ._cdef import DOCUMENT_KEY
from ._chroma_types import (
    SPACES,
    UPDATABLE_HNSW_KEYS,
    CollectionMetadata,
    DataLoader,
    DeleteResult,
    EmbeddingFunction,
    GetResult,
    Include,
    QueryResult,
    check_finite,
    check_hnsw_value,
    check_ids_storable,
    check_metadata_storable,
    hnsw_from_create_args,
    normalize_embeddings,
    normalize_metadatas,
    one_or_many,
    storable_value,
    unsigned,
    validate_collection_metadata,
    validate_collection_name,
    validate_documents,
    validate_ids,
    validate_images,
    validate_include,
    validate_metadata,
    validate_metadatas,
    validate_n_results,
    validate_query_ids,
    validate_where,
    validate_where_document,
)
from ._db import SvDBPython
from ._lib import ffi, lib

__all__ = [
    "Settings",
    "ClientAPI",
    "Client",
    "PersistentClient",
    "EphemeralClient",
    "Collection",
    "DefaultEmbeddingFunction",
    "DEFAULT_TENANT",
    "DEFAULT_DATABASE",
]

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"
#: The ChromaDB release whose API this module follows (what get_version() reports).
CHROMA_API_VERSION = "1.5.9"
#: get_max_batch_size(): pysvdb has no batch ceiling of its own.
MAX_BATCH_SIZE = 2**31 - 1

_DOC = DOCUMENT_KEY
_URI = "#uri"

_NO_EMBEDDING_FUNCTION = (
    "You must provide an embedding function to compute embeddings: pysvdb has no built-in embedding model "
    "(ChromaDB's default downloads ONNX all-MiniLM-L6-v2). Pass embeddings=/query_embeddings=, or create/get the "
    "collection with embedding_function=..."
)


class DefaultEmbeddingFunction(EmbeddingFunction[Any]):
    """The default ``embedding_function``: pysvdb downloads no model, so embedding
    with it raises a ValueError saying so. Pass your own function (any
    callable taking a list of documents), or embeddings."""

    def __call__(self, input: Any) -> Any:
        raise ValueError(_NO_EMBEDDING_FUNCTION)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultEmbeddingFunction)

    def __hash__(self) -> int:
        return hash(DefaultEmbeddingFunction)


# ---------------------------------------------------------------- settings


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name.upper(), os.environ.get(name.lower()))
    if v is None:
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


class Settings:
    """Client settings, as ``chromadb.Settings``.

    ``allow_reset`` (default False, env ``ALLOW_RESET``) enables
    :meth:`ClientAPI.reset`; ``is_persistent``/``persist_directory`` choose
    :func:`Client`'s storage. Every other ChromaDB setting (such as
    ``anonymized_telemetry``) is accepted and kept, and changes nothing:
    pysvdb sends no telemetry. ``pysvdb_durability`` is pysvdb's own:
    ``"sync"`` (default, each write is fsynced before it returns, as
    ChromaDB's SQLite commit) or ``"persist"`` (writes survive a process
    crash; fsync at checkpoints and close).
    """

    allow_reset: bool
    anonymized_telemetry: bool
    is_persistent: bool
    persist_directory: str
    chroma_api_impl: str
    pysvdb_durability: str

    def __init__(self, **kwargs: Any) -> None:
        self.allow_reset = _env_bool("allow_reset", False)
        self.anonymized_telemetry = _env_bool("anonymized_telemetry", True)
        self.is_persistent = _env_bool("is_persistent", False)
        self.persist_directory = os.environ.get("PERSIST_DIRECTORY", "./chroma")
        self.chroma_api_impl = "chromadb.api.rust.RustBindingsAPI"
        self.pysvdb_durability = "sync"
        for key, value in kwargs.items():
            setattr(self, key, value)
        if self.pysvdb_durability not in ("sync", "persist"):
            raise ValueError("pysvdb_durability must be 'sync' or 'persist', not %r" % (self.pysvdb_durability,))

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def require(self, key: str) -> Any:
        val = getattr(self, key, None)
        if val is None:
            raise ValueError("Missing required config value '%s'" % key)
        return val

    def _fields(self) -> Dict[str, Any]:
        return dict(vars(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self._fields() == other._fields()

    def __hash__(self) -> int:  # mutable, like ChromaDB's: compared, never hashed
        raise TypeError("Settings objects are unhashable")

    def __repr__(self) -> str:
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self._fields().items()))


# ---------------------------------------------------------------- catalog and engine


class _Record:
    """One collection's catalog entry, shared by every Collection object for it."""

    __slots__ = ("id", "name", "metadata", "hnsw")

    def __init__(self, id: uuid.UUID, name: str, metadata: Optional[Dict[str, Any]], hnsw: Dict[str, Any]) -> None:
        self.id = id
        self.name = name
        self.metadata = metadata
        self.hnsw = hnsw


def _text(p: Any) -> str:
    return cast(bytes, ffi.string(p)).decode("utf-8")


def _record(e: Any) -> _Record:
    """A _Record from a C svdb_catalog_entry (libsvdb checked every field)."""
    meta = json.loads(_text(e.metadata)) if e.metadata != ffi.NULL else None
    return _Record(uuid.UUID(_text(e.id)), _text(e.name), meta, json.loads(_text(e.hnsw)))


def _c_check(rc: int) -> None:
    if rc != 0:
        msg = _text(lib.svdb_errmsg()) or _text(lib.svdb_strerror(rc))
        raise svdb_errors.error_class(rc)(msg, rc)


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


class _Engine:
    """The storage behind every client of one directory (or of the ephemeral store).

    The directory's catalog (names, ids, metadata, HNSW settings), its lock,
    its atomic updates and the removal of deleted collections' directories
    are libsvdb's (svdb_catalog_*, docs/chroma.md); this class keeps the
    collections' handles and a copy of the catalog's entries.

    Belongs to the process that made it: a forked child abandons its copy
    (see :func:`_after_fork_in_child`) and never closes handles, releases the
    lock or removes files of its parent's (libsvdb lets go of the child's
    copy of the lock at fork).
    """

    def __init__(self, key: str, root: Optional[str], settings: Settings) -> None:
        self.key = key
        self.settings = settings
        self.refs = 0
        self.closed = False
        self.forked = False
        self.pid = os.getpid()
        self.ephemeral = root is None
        self.mu = threading.RLock()
        self.records: Dict[uuid.UUID, _Record] = {}
        self.handles: Dict[uuid.UUID, SvDBPython] = {}
        self.writers: Dict[uuid.UUID, threading.Lock] = {}
        self.durability = "persist" if self.ephemeral else settings.pysvdb_durability
        self.cat: Any = None
        self.warnings: List[str] = []
        self.on_warning = ffi.callback("void(const char *, void *)", self._collect_warning)
        self.root_identity: Optional[Tuple[int, int]] = None
        if root is None:
            self.root = tempfile.mkdtemp(prefix="pysvdb-ephemeral-")
            st = os.lstat(self.root)
            self.root_identity = (st.st_dev, st.st_ino)  # what stop() may remove: this directory, made here
        else:
            self.root = root
            if os.path.exists(os.path.join(self.root, "chroma.sqlite3")):
                raise ValueError(
                    "%s holds a ChromaDB database (chroma.sqlite3); pysvdb cannot read ChromaDB's files. "
                    "Use another directory and copy the data over (collection.get(include=[...]) then add)." % self.root
                )
        self._open_catalog()

    def _collect_warning(self, message: Any, payload: Any) -> None:
        self.warnings.append(_text(message))

    def _call(self, rc: int) -> None:
        """Raises the error of a catalog call; issues the warnings it reported."""
        pending, self.warnings = self.warnings, []
        for w in pending:
            _warn("pysvdb: " + w)
        _c_check(rc)

    def _open_catalog(self) -> None:
        """Opens (or starts) the directory's catalog: one process at a time,
        every change an atomic rename fsynced with the directory (but for the
        ephemeral store, which needs no durability)."""
        opts = ffi.new("svdb_catalog_options *")
        _c_check(lib.svdb_catalog_options_init(opts, lib.SVDB_CATALOG_OPTIONS_VERSION))
        opts.durability = lib.SVDB_DURABILITY_PERSIST if self.ephemeral else lib.SVDB_DURABILITY_SYNC
        opts.warning = self.on_warning
        out = ffi.new("svdb_catalog **")
        self._call(lib.svdb_catalog_open(out, os.fsencode(self.root), opts))
        self.cat = out[0]
        try:
            self.records = {rec.id: rec for rec in self._list()}
        except BaseException:
            lib.svdb_catalog_close(self.cat)
            self.cat = None
            raise

    def _list(self) -> List[_Record]:
        entries = ffi.new("svdb_catalog_entry **")
        n = ffi.new("size_t *")
        self._call(lib.svdb_catalog_list(self.cat, entries, n))
        try:
            return [_record(entries[0][i]) for i in range(n[0])]
        finally:
            lib.svdb_catalog_entries_free(entries[0])

    def _get(self, name: str) -> _Record:
        entry = ffi.new("svdb_catalog_entry **")
        self._call(lib.svdb_catalog_get(self.cat, name.encode("utf-8"), entry))
        try:
            return _record(entry[0][0])
        finally:
            lib.svdb_catalog_entries_free(entry[0])

    def _change(self, rc: int) -> None:
        """Raises the error of a catalog change, with the records resynchronised
        from libsvdb first: a change whose directory fsync failed was still made."""
        try:
            self._call(rc)
        except svdb_errors.SvDBError:
            try:
                fresh = {r.id: r for r in self._list()}
            except svdb_errors.SvDBError:
                fresh = {r.id: r for r in self.records.values()}
            for cid in [k for k in self.records if k not in fresh]:
                del self.records[cid]
            for cid, r in fresh.items():
                old = self.records.setdefault(cid, r)
                old.name, old.metadata, old.hnsw = r.name, r.metadata, r.hnsw
            raise

    def _remove_collection_dir(self, cid: uuid.UUID) -> None:
        """Removes a deleted collection's directory (libsvdb checks its marker
        says it is this store's collection ``cid`` being deleted, and removes
        the marker last, so an interrupted removal is finished at the next open)."""
        try:
            self._call(lib.svdb_catalog_purge(self.cat, str(cid).encode("ascii")))
        except svdb_errors.SvDBError as e:
            _warn("pysvdb: %s" % e.message)

    def _forget(self, rec: _Record) -> None:
        """The catalog forgets the collection (one atomic change); its directory is marked as being deleted."""
        self._change(lib.svdb_catalog_forget(self.cat, rec.name.encode("utf-8")))

    def create(self, name: str, metadata: Optional[Mapping[str, Any]], hnsw: Dict[str, Any]) -> _Record:
        entry = ffi.new("svdb_catalog_entry **")
        meta = json.dumps(dict(metadata)).encode("utf-8") if metadata is not None else ffi.NULL
        self._change(lib.svdb_catalog_create(self.cat, name.encode("utf-8"), meta, json.dumps(hnsw).encode("utf-8"), entry))
        try:
            rec = _record(entry[0][0])
        finally:
            lib.svdb_catalog_entries_free(entry[0])
        self.records[rec.id] = rec
        return rec

    def modify(self, rec: _Record, name: Optional[str], metadata: Optional[Mapping[str, Any]], hnsw: Dict[str, Any]) -> None:
        """Renames, replaces the metadata and updates HNSW settings in one atomic change."""
        self._change(
            lib.svdb_catalog_modify(
                self.cat,
                rec.name.encode("utf-8"),
                name.encode("utf-8") if name is not None else ffi.NULL,
                json.dumps(dict(metadata)).encode("utf-8") if metadata is not None else ffi.NULL,
                json.dumps(hnsw).encode("utf-8") if hnsw else ffi.NULL,
            )
        )
        fresh = self._get(name if name is not None else rec.name)
        rec.name, rec.metadata, rec.hnsw = fresh.name, fresh.metadata, fresh.hnsw

    def check(self) -> None:
        if self.forked:
            raise ValueError(
                "this client was opened by process %d, and this process is a fork of it: a client is not usable "
                "after fork; create a new client in this process (a PersistentClient once the parent has closed "
                "the directory)" % self.pid
            )
        if self.closed:
            raise ValueError("the client of this store was closed; create a new client")

    # ---- collections

    def find(self, name: str) -> Optional[_Record]:
        for rec in self.records.values():
            if rec.name == name:
                return rec
        return None

    def handle(self, rec: _Record) -> SvDBPython:
        self.check()  # before taking the lock: a forked child's copy of it may be held by a thread it does not have
        with self.mu:
            self.check()
            if self.records.get(rec.id) is not rec:
                raise errors.NotFoundError("Collection [%s] does not exist." % rec.id)
            h = self.handles.get(rec.id)
            if h is None:
                hn = rec.hnsw
                path = os.path.join(self.root, str(rec.id))
                h = SvDBPython(
                    path,
                    metric=hn["space"],
                    durability=self.durability,  # type: ignore[arg-type]
                    index="hnsw",
                    M=hn["max_neighbors"],
                    ef_construction=hn["ef_construction"],
                    ef_search=hn["ef_search"],
                    build_threads=hn.get("num_threads"),
                    # writes return once logged; rows are linked on a thread
                    # and searched exactly until then (docs/chroma.md)
                    background_indexing=True,
                )
                try:
                    # The catalog lists it, so it is ours: libsvdb says so in the
                    # directory (also for collections made before markers existed,
                    # and after a delete interrupted before the catalog forgot it).
                    self._call(lib.svdb_catalog_claim(self.cat, rec.name.encode("utf-8")))
                except BaseException:
                    h.close()
                    raise
                self.handles[rec.id] = h
                self.writers[rec.id] = threading.Lock()
            return h

    def writer(self, rec: _Record) -> threading.Lock:
        self.handle(rec)
        return self.writers[rec.id]

    def drop(self, rec: _Record) -> None:
        """Removes a collection: its handle is closed (writes in flight finish
        first), libsvdb marks its directory as being deleted and the catalog
        forgets it (atomically), then its files go (marker last)."""
        with self.mu:
            self.check()
            h = self.handles.pop(rec.id, None)
            lock = self.writers.pop(rec.id, None)
            if lock is not None:
                with lock:
                    pass
            if h is not None:
                try:
                    h.close()
                except svdb_errors.SvDBError:
                    pass  # what was logged stays; the collection is deleted next (or reopened if that fails)
            self._forget(rec)  # on failure the collection stays whole; its handle reopens when used
            del self.records[rec.id]
        self._remove_collection_dir(rec.id)

    def abandon(self) -> None:
        """In a forked child: forgets the parent's store without touching it.
        The handles were dropped by SvDBPython's own fork hook, and libsvdb
        closed the child's copy of the catalog's lock at fork (the parent
        keeps its lock); the catalog handle is not usable here."""
        self.closed = True
        self.forked = True
        self.mu = threading.RLock()
        self.handles.clear()
        self.cat = None

    def stop(self) -> None:
        if os.getpid() != self.pid:  # a fork that skipped the at-fork hook: still never touch the parent's files
            self.abandon()
            return
        with self.mu:
            if self.closed:
                return
            self.closed = True
            handles = list(self.handles.values())
            self.handles.clear()
        first: Optional[BaseException] = None
        for h in handles:
            try:
                h.close()
            except svdb_errors.SvDBError as e:
                first = first or e
        cat, self.cat = self.cat, None
        lib.svdb_catalog_close(cat)  # releases the directory's lock
        if self.ephemeral:
            self._remove_ephemeral_root()
        if first is not None:
            raise first

    def _remove_ephemeral_root(self) -> None:
        """Removes the temporary directory this engine made, and only that one."""
        try:
            st = os.lstat(self.root)
        except OSError:
            return
        if (st.st_dev, st.st_ino) != self.root_identity:
            _warn("pysvdb: %s is no longer the temporary directory this process made; it was left in place" % self.root)
            return
        shutil.rmtree(self.root, ignore_errors=True)


_engines: Dict[str, _Engine] = {}
_engines_lock = threading.Lock()


def _comparable(settings: Settings) -> Dict[str, Any]:
    f = settings._fields()
    f.pop("persist_directory", None)
    return f


_LOCAL_IMPLS = ("chromadb.api.rust.RustBindingsAPI", "chromadb.api.segment.SegmentAPI")


def _acquire_engine(settings: Settings) -> _Engine:
    if settings.chroma_api_impl not in _LOCAL_IMPLS:
        raise ValueError(
            "Unsupported Chroma API implementation %s: pysvdb is an embedded database and has no HTTP client"
            % settings.chroma_api_impl
        )
    if settings.is_persistent:
        root: Optional[str] = os.path.realpath(os.path.expanduser(str(settings.persist_directory)))
        key = cast(str, root)
    else:
        root, key = None, "ephemeral"
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _Engine(key, root, settings)
            _engines[key] = engine
        elif _comparable(engine.settings) != _comparable(settings):
            raise ValueError("An instance of Chroma already exists for %s with different settings" % key)
        engine.refs += 1
        return engine


def _release_engine(engine: _Engine) -> None:
    with _engines_lock:
        engine.refs -= 1
        if engine.refs > 0:
            return
        if _engines.get(engine.key) is engine:
            del _engines[engine.key]
    engine.stop()


def _stop_all() -> None:
    """At exit: closes this process's stores (checkpoints, removes the ephemeral directory)."""
    with _engines_lock:
        engines = [e for e in _engines.values() if e.pid == os.getpid()]
        _engines.clear()
    for e in engines:
        try:
            e.stop()
        except Exception:  # pragma: no cover - nothing to report to at exit
            pass


atexit.register(_stop_all)


# ---- fork: the child starts with no store; its copies of the parent's are abandoned


def _before_fork() -> None:
    _engines_lock.acquire()  # no engine is half made while the process is copied


def _after_fork_in_parent() -> None:
    _engines_lock.release()


def _after_fork_in_child() -> None:
    global _engines_lock
    _engines_lock = threading.Lock()
    for e in _engines.values():
        e.abandon()
    _engines.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------- storage helpers


@contextmanager
def _storage(rec: _Record) -> Iterator[None]:
    """Turns the errors of a libsvdb call into the ones ChromaDB raises."""
    try:
        yield
    except svdb_errors.ClosedError:
        raise errors.NotFoundError("Collection [%s] does not exist." % rec.id) from None
    except (svdb_errors.DimensionError, svdb_errors.MetadataError, svdb_errors.TooBigError) as e:
        raise errors.InvalidArgumentError(e.message) from None
    except svdb_errors.InvalidArgumentError as e:
        if isinstance(e, TypeError):
            raise
        raise errors.InvalidArgumentError(e.message) from None


def _check_lengths(present: Sequence[Tuple[str, int]]) -> None:
    """ChromaDB's checks on the given record fields: none empty, all one length."""
    empty = [k for k, n in present if n == 0]
    if empty:
        raise ValueError("Non-empty lists are required for %s" % empty)
    if len({n for _, n in present}) > 1:
        raise ValueError("Unequal lengths for fields: %s" % ", ".join("%s: %d" % kv for kv in present))


def _encode_row(meta: Optional[Mapping[str, Any]], doc: Optional[str], uri: Optional[str]) -> Optional[str]:
    d: Dict[str, Any] = {k: storable_value(v) for k, v in meta.items() if v is not None} if meta else {}
    if doc is not None:
        d[_DOC] = doc
    if uri is not None:
        d[_URI] = uri
    return json.dumps(d, ensure_ascii=False, allow_nan=False) if d else None


def _encode_patch(meta: Optional[Mapping[str, Any]], doc: Optional[str], uri: Optional[str]) -> Optional[str]:
    """What ChromaDB's update changes in a row, as a metadata patch that libsvdb
    merges into the stored one (given keys replace, a None value removes the
    key, other keys stay); None when it changes nothing."""
    d: Dict[str, Any] = {k: storable_value(v) for k, v in meta.items()} if meta else {}
    if doc is not None:
        d[_DOC] = doc
    if uri is not None:
        d[_URI] = uri
    return json.dumps(d, ensure_ascii=False, allow_nan=False) if d else None


def _decode_row(text: Optional[str]) -> Tuple[Optional[Dict[str, Any]], Optional[str], Optional[str]]:
    if text is None:
        return None, None, None
    d = json.loads(text)
    doc = d.pop(_DOC, None)
    uri = d.pop(_URI, None)
    return (d or None), doc, uri


def _as_array(rows: Sequence[npt.NDArray[np.float32]], dim: int) -> npt.NDArray[Any]:
    """Embeddings as ChromaDB returns them: np.array of lists of Python floats (float64)."""
    if not rows:
        return np.array([])
    return np.stack(rows).astype(np.float64).reshape(len(rows), dim)


# ---------------------------------------------------------------- collection


class Collection:
    """A collection of records: ids, embeddings, metadata, documents and uris.

    Obtained from a client (``create_collection``, ``get_collection``, ...).
    Methods, arguments and results are ChromaDB's.
    """

    def __init__(
        self,
        engine: _Engine,
        record: _Record,
        embedding_function: Optional[Any],
        data_loader: Optional[Any],
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        if embedding_function is not None and not callable(embedding_function):
            raise ValueError("embedding_function must be callable, not %s" % type(embedding_function).__name__)
        self._engine = engine
        self._record = record
        self._embedding_function = embedding_function
        self._data_loader = data_loader
        self._tenant = tenant
        self._database = database

    # ------------------------------------------------------------ properties

    @property
    def id(self) -> uuid.UUID:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def metadata(self) -> Optional[CollectionMetadata]:
        m = self._record.metadata
        return dict(m) if m is not None else None

    @property
    def configuration_json(self) -> Dict[str, Any]:
        return {"hnsw": dict(self._record.hnsw), "spann": None, "embedding_function": None}

    @property
    def configuration(self) -> Dict[str, Any]:
        ef = self._embedding_function
        if isinstance(ef, DefaultEmbeddingFunction):
            ef = None
        return {"hnsw": dict(self._record.hnsw), "spann": None, "embedding_function": ef}

    @property
    def schema(self) -> None:
        return None

    @property
    def tenant(self) -> str:
        return self._tenant

    @property
    def database(self) -> str:
        return self._database

    def __repr__(self) -> str:
        return "Collection(name=%s)" % self.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Collection):
            return False
        return (
            self.id == other.id
            and self.name == other.name
            and self.metadata == other.metadata
            and self.configuration_json == other.configuration_json
            and self._embedding_function == other._embedding_function
            and self._data_loader == other._data_loader
        )

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------ internals

    def _db(self) -> SvDBPython:
        return self._engine.handle(self._record)

    def _embed(self, inputs: Sequence[Any], is_query: bool) -> npt.NDArray[np.float32]:
        ef = self._embedding_function
        if ef is None or isinstance(ef, DefaultEmbeddingFunction):
            raise ValueError(_NO_EMBEDDING_FUNCTION)
        fn = getattr(ef, "embed_query", None) if is_query else None
        out = fn(input=list(inputs)) if callable(fn) else self._call_ef(ef, list(inputs))
        vecs = normalize_embeddings(out)
        if vecs is None or vecs.shape[0] != len(inputs):
            raise ValueError(
                "the embedding function returned %s embeddings for %d inputs"
                % (0 if vecs is None else vecs.shape[0], len(inputs))
            )
        return vecs

    @staticmethod
    def _call_ef(ef: Any, inputs: List[Any]) -> Any:
        try:
            return ef(input=inputs)
        except TypeError as e:
            if "input" not in str(e):
                raise
            return ef(inputs)  # a plain function with another parameter name

    def _embed_record_set(
        self,
        documents: Optional[List[Any]],
        images: Optional[List[Any]],
        uris: Optional[List[Any]],
        fields: Tuple[str, ...],
        is_query: bool = False,
    ) -> npt.NDArray[np.float32]:
        given = {"documents": documents, "images": images, "uris": uris}
        if sum(given[f] is not None for f in fields) != 1:
            raise ValueError("Exactly one of %s must be provided" % ", ".join(fields))
        if documents is not None and "documents" in fields:
            return self._embed(documents, is_query)
        if images is not None and "images" in fields:
            return self._embed(images, is_query)
        if self._data_loader is None:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        return self._embed(self._data_loader(uris), is_query)

    def _normalize_insert(
        self,
        op: str,
        ids: Any,
        embeddings: Any,
        metadatas: Any,
        documents: Any,
        images: Any,
        uris: Any,
    ) -> Tuple[List[str], Optional[npt.NDArray[np.float32]], Optional[List[Any]], Optional[List[Any]], Optional[List[Any]], Optional[List[Any]]]:
        """Chroma's normalize + validate_insert_record_set, in its order."""
        vecs = normalize_embeddings(embeddings)
        id_list = one_or_many(ids)
        meta_list = normalize_metadatas(one_or_many(metadatas))
        doc_list = one_or_many(documents)
        img_list = one_or_many(images)
        uri_list = one_or_many(uris)
        fields = [
            ("ids", id_list),
            ("embeddings", vecs),
            ("metadatas", meta_list),
            ("documents", doc_list),
            ("images", img_list),
            ("uris", uri_list),
        ]
        present = [(k, len(v)) for k, v in fields if v is not None]
        _check_lengths(present)
        if doc_list is not None:
            validate_documents(doc_list, nullable=vecs is not None)
        if img_list is not None:
            validate_images(img_list)
        validate_ids(id_list)
        if meta_list is not None:
            validate_metadatas(meta_list)
        return cast(List[str], id_list), vecs, meta_list, doc_list, img_list, uri_list

    def _check_vectors(self, db: SvDBPython, vecs: npt.NDArray[np.float32]) -> None:
        dim = db.dim
        if dim is not None and vecs.shape[1] != dim:
            raise errors.InvalidArgumentError(
                "Collection expecting embedding with dimension of %d, got %d" % (dim, vecs.shape[1])
            )
        check_finite(vecs)

    # ------------------------------------------------------------ writes

    def add(
        self,
        ids: Union[str, List[str]],
        embeddings: Optional[Any] = None,
        metadatas: Optional[Any] = None,
        documents: Optional[Any] = None,
        images: Optional[Any] = None,
        uris: Optional[Any] = None,
    ) -> None:
        """Adds records; an id that already exists is ignored (the first write wins).

        Without ``embeddings``, the collection's embedding function embeds
        ``documents`` (or ``images``, or what the data loader loads from ``uris``).
        """
        id_list, vecs, metas, docs, images_, uri_list = self._normalize_insert(
            "add", ids, embeddings, metadatas, documents, images, uris
        )
        if vecs is None:
            vecs = self._embed_record_set(docs, images_, uri_list, ("documents", "images", "uris"))
        check_ids_storable(id_list)
        if metas is not None:
            check_metadata_storable(metas, allow_none_values=False)
        n = len(id_list)
        rows = [
            _encode_row(
                metas[i] if metas is not None else None,
                docs[i] if docs is not None else None,
                uri_list[i] if uri_list is not None else None,
            )
            for i in range(n)
        ]
        rec = self._record
        with _storage(rec):
            db = self._db()
            self._check_vectors(db, vecs)
            with self._engine.writer(rec):
                try:
                    db.add(id_list, vecs, rows)
                except svdb_errors.IdExistsError:
                    keep = np.flatnonzero(~db.get_batch(id_list, metadata=False).found)
                    if len(keep):
                        db.add([id_list[i] for i in keep], vecs[keep], [rows[i] for i in keep])

    def _merge_write(self, op: str, ids: Any, embeddings: Any, metadatas: Any, documents: Any, images: Any, uris: Any) -> None:
        id_list, vecs, metas, docs, images_, uri_list = self._normalize_insert(
            op, ids, embeddings, metadatas, documents, images, uris
        )
        if vecs is None and (op == "upsert" or docs is not None or images_ is not None):
            vecs = self._embed_record_set(docs, images_, None, ("documents", "images"))
        check_ids_storable(id_list)
        if metas is not None:
            check_metadata_storable(metas, allow_none_values=True)
        n = len(id_list)
        # Existing rows get ChromaDB's update: libsvdb merges each patch into the stored metadata.
        patches = [
            _encode_patch(
                metas[i] if metas is not None else None,
                docs[i] if docs is not None else None,
                uri_list[i] if uri_list is not None else None,
            )
            for i in range(n)
        ]
        rec = self._record
        with _storage(rec):
            db = self._db()
            if vecs is not None:
                self._check_vectors(db, vecs)
            with self._engine.writer(rec):
                if op == "update":  # missing ids are ignored
                    if vecs is not None or any(p is not None for p in patches):
                        db.update(id_list, vecs, patches, merge=True, skip_missing=True)
                    return
                assert vecs is not None
                # New ids are added, existing ones updated (merged): one call, one log record.
                db.update(id_list, vecs, patches, merge=True, insert_missing=True)

    def update(
        self,
        ids: Union[str, List[str]],
        embeddings: Optional[Any] = None,
        metadatas: Optional[Any] = None,
        documents: Optional[Any] = None,
        images: Optional[Any] = None,
        uris: Optional[Any] = None,
    ) -> None:
        """Updates existing records; ids that do not exist are ignored.

        Metadata is merged key by key (a key set to None is removed); a
        document, uri or embedding is replaced only when given. Documents
        without embeddings are re-embedded by the embedding function. libsvdb
        merges and writes every record in one call, all or nothing.
        """
        self._merge_write("update", ids, embeddings, metadatas, documents, images, uris)

    def upsert(
        self,
        ids: Union[str, List[str]],
        embeddings: Optional[Any] = None,
        metadatas: Optional[Any] = None,
        documents: Optional[Any] = None,
        images: Optional[Any] = None,
        uris: Optional[Any] = None,
    ) -> None:
        """Adds new ids and updates existing ones (metadata merged, as :meth:`update`)."""
        self._merge_write("upsert", ids, embeddings, metadatas, documents, images, uris)

    def delete(
        self,
        ids: Optional[Union[str, List[str]]] = None,
        where: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None,
        limit: Optional[int] = None,
    ) -> DeleteResult:
        """Deletes the records matching ``ids`` and the filters (ANDed).

        Returns ``{"deleted": n}``; with ids only, n is the number of ids
        given (as in ChromaDB), else the number of records removed.
        """
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
        rec = self._record
        with _storage(rec):
            db = self._db()
            with self._engine.writer(rec):
                if where is None and where_document is None:
                    ids_ = cast(List[str], id_list)
                    db.delete(ids_)
                    return {"deleted": len(ids_)}
                cand = db.ids_where(where, where_document)
                if id_list is not None:
                    wanted = set(id_list)
                    cand = [i for i in cand if i in wanted]
                if limit is not None:
                    cand = cand[:limit]
                removed = db.delete(cand) if cand else 0
                return {"deleted": removed}

    # ------------------------------------------------------------ reads

    def count(self) -> int:
        """The number of records (O(1))."""
        rec = self._record
        with _storage(rec):
            return self._db().count()

    def _rows(
        self, db: SvDBPython, ids: List[str], include: Sequence[str]
    ) -> Tuple[List[str], List[Tuple[Optional[Dict[str, Any]], Optional[str], Optional[str]]], Optional[List[npt.NDArray[np.float32]]]]:
        need_rows = any(x in include for x in ("metadatas", "documents", "uris", "data"))
        need_vecs = "embeddings" in include
        if not need_rows and not need_vecs:
            return ids, [], None
        found, texts, vecs = db.get_many(ids, metadata=need_rows, vectors=need_vecs)
        rows = [_decode_row(t) for t in texts] if need_rows else []
        return [ids[i] for i in found], rows, (list(vecs) if vecs is not None else None)

    def get(
        self,
        ids: Optional[Union[str, List[str]]] = None,
        where: Optional[Dict[str, Any]] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Optional[Dict[str, Any]] = None,
        include: Include = ["metadatas", "documents"],  # noqa: B006 - never mutated
    ) -> GetResult:
        """Records matching ``ids`` and the filters, in insertion order.

        ``offset``/``limit`` page through the matches. ``include`` picks the
        fields returned beside ``ids``: "metadatas", "documents",
        "embeddings" (a 2-d numpy array), "uris", "data".
        """
        id_list = one_or_many(ids)
        if id_list is not None:
            validate_ids(id_list)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include, ("distances",))
        if "data" in inc and self._data_loader is None:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        if "data" in inc and "uris" not in inc:
            inc.append("uris")
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        rec = self._record
        with _storage(rec):
            db = self._db()
            if where is not None or where_document is not None:
                cand = db.ids_where(where, where_document)
                if id_list is not None:
                    wanted = set(id_list)
                    cand = [i for i in cand if i in wanted]
            elif id_list is not None and len(id_list) == 1:
                cand = id_list if db.contains(id_list[0]) else []
            elif id_list is not None:
                wanted = set(id_list)
                cand = [i for i in db.get_all_ids() if i in wanted]
            else:
                cand = db.get_all_ids()
            cand = cand[off : off + lim] if lim is not None else cand[off:]
            out_ids, rows, vecs = self._rows(db, cand, inc)
            dim = db.dim or 0
        result: GetResult = {
            "ids": out_ids,
            "embeddings": _as_array(vecs, dim) if vecs is not None else None,
            "documents": [r[1] for r in rows] if "documents" in inc else None,
            "uris": [r[2] for r in rows] if "uris" in inc else None,
            "data": None,
            "metadatas": [r[0] for r in rows] if "metadatas" in inc else None,
            "included": cast(Include, inc),
        }
        if "data" in inc and self._data_loader is not None:
            result["data"] = self._data_loader(result["uris"])
        return result

    def peek(self, limit: int = 10) -> GetResult:
        """The first ``limit`` records, with their embeddings."""
        return self.get(limit=limit, include=["metadatas", "documents", "embeddings"])

    def query(
        self,
        query_embeddings: Optional[Any] = None,
        query_texts: Optional[Any] = None,
        query_images: Optional[Any] = None,
        query_uris: Optional[Any] = None,
        ids: Optional[Union[str, List[str]]] = None,
        n_results: int = 10,
        where: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None,
        include: Include = ["metadatas", "documents", "distances"],  # noqa: B006 - never mutated
    ) -> QueryResult:
        """The ``n_results`` nearest records to each query, nearest first.

        Queries are ``query_embeddings``, or ``query_texts``/``query_images``/
        ``query_uris`` embedded by the collection's embedding function.
        ``ids``, ``where`` and ``where_document`` restrict the candidates, inside
        libsvdb: the filters during the HNSW search, ``ids`` as an allow-list
        whose rows are scored exactly.
        """
        qvecs = normalize_embeddings(query_embeddings)
        texts = one_or_many(query_texts)
        images_ = one_or_many(query_images)
        uri_list = one_or_many(query_uris)
        present = [
            (k, len(v))
            for k, v in (("embeddings", qvecs), ("documents", texts), ("images", images_), ("uris", uri_list))
            if v is not None
        ]
        if not present:
            raise ValueError("At least one of one of embeddings, documents, images, uris must be provided")
        _check_lengths(present)
        if texts is not None:
            validate_documents(texts, nullable=qvecs is not None)
        if images_ is not None:
            validate_images(images_)
        filter_ids = validate_query_ids(ids)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include)
        k = validate_n_results(n_results)
        if qvecs is None:
            qvecs = self._embed_record_set(texts, images_, uri_list, ("documents", "images", "uris"), is_query=True)
        if "data" in inc and "uris" not in inc:
            inc.append("uris")
        nq = int(qvecs.shape[0])
        rec = self._record
        with _storage(rec):
            db = self._db()
            dim = db.dim
            if dim is None:  # never written: any dimension is fine, nothing matches
                hit_ids: List[List[str]] = [[] for _ in range(nq)]
                hit_d: List[List[float]] = [[] for _ in range(nq)]
            else:
                if qvecs.shape[1] != dim:
                    raise errors.InvalidArgumentError(
                        "Collection expecting embedding with dimension of %d, got %d" % (dim, qvecs.shape[1])
                    )
                if not np.isfinite(qvecs).all():
                    raise errors.InvalidArgumentError("Query embeddings must not contain NaN or Infinity values")
                allowed: Optional[List[str]] = None
                if filter_ids is not None:  # an allow-list, scored exactly by libsvdb
                    allowed = list(dict.fromkeys(filter_ids))
                    if allowed and where is None and where_document is None:
                        if not db.get_batch(allowed, metadata=False).found.all():
                            raise errors.InternalError("Error executing plan: Internal error: Error finding id")
                    kk = min(k, len(allowed))
                else:
                    kk = min(k, db.count())
                hit_ids, hit_d = [[] for _ in range(nq)], [[] for _ in range(nq)]
                ef = self._record.hnsw["ef_search"]
                if kk and nq == 1:
                    hits = db.search(qvecs[0], kk, where=where, where_document=where_document, ef=ef, ids=allowed)
                    hit_ids, hit_d = [[h[0] for h in hits]], [[h[1] for h in hits]]
                elif kk:
                    res = db.search_batch(qvecs, kk, where=where, where_document=where_document, ef=ef, ids=allowed)
                    hit_ids, hit_d = [], []
                    for row_ids, row_d in zip(res.ids, res.distances):
                        m = sum(1 for x in row_ids if x is not None)
                        hit_ids.append(list(row_ids[:m]))
                        hit_d.append(row_d[:m].tolist())
            fetched: Dict[str, Tuple[Any, Any]] = {}
            if dim is not None:
                unique = list(dict.fromkeys(i for row in hit_ids for i in row))
                got_ids, rows, vecs = self._rows(db, unique, inc)
                for j, id_ in enumerate(got_ids):
                    fetched[id_] = (rows[j] if rows else None, vecs[j] if vecs is not None else None)
        if dim is not None:
            # Drop hits deleted by another thread between the search and the fetch.
            keep = [[j for j, i in enumerate(row) if i in fetched] for row in hit_ids]
            if any(len(kp) != len(row) for kp, row in zip(keep, hit_ids)):
                hit_d = [[row[j] for j in kp] for kp, row in zip(keep, hit_d)]
                hit_ids = [[row[j] for j in kp] for kp, row in zip(keep, hit_ids)]

        def column(pos: int) -> List[List[Any]]:
            return [[fetched[i][0][pos] for i in row] for row in hit_ids]

        result: QueryResult = {
            "ids": hit_ids,
            "embeddings": (
                [_as_array([fetched[i][1] for i in row], dim or 0) for row in hit_ids] if "embeddings" in inc else None
            ),
            "documents": column(1) if "documents" in inc else None,
            "uris": column(2) if "uris" in inc else None,
            "data": None,
            "metadatas": column(0) if "metadatas" in inc else None,
            "distances": hit_d if "distances" in inc else None,
            "included": cast(Include, inc),
        }
        if "data" in inc and self._data_loader is not None and result["uris"] is not None:
            result["data"] = [self._data_loader(u) for u in result["uris"]]
        return result

    # ------------------------------------------------------------ collection changes

    def modify(
        self,
        name: Optional[str] = None,
        metadata: Optional[CollectionMetadata] = None,
        configuration: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Renames the collection, replaces its metadata, or changes the updatable
        HNSW settings (ef_search, num_threads, batch_size, sync_threshold,
        resize_factor). The distance space cannot change."""
        if metadata is not None:
            validate_metadata(metadata)
            if "hnsw:space" in metadata:
                raise ValueError(
                    "Changing the distance function of a collection once it is created is not supported currently."
                )
        if name is not None:
            validate_collection_name(name, "new_name")
        if metadata is not None:
            validate_collection_metadata(metadata)
        hnsw_updates: Dict[str, Any] = {}
        ef = None
        if configuration is not None:
            for key, value in configuration.items():
                if key == "embedding_function":
                    ef = value
                elif key == "hnsw":
                    if not isinstance(value, Mapping):
                        raise errors.InvalidArgumentError("not a valid hnsw config: %r" % (value,))
                    for hk, hv in value.items():
                        if hk not in UPDATABLE_HNSW_KEYS:
                            raise errors.InvalidArgumentError(
                                "unknown field `%s`, expected one of %s"
                                % (hk, ", ".join("`%s`" % x for x in UPDATABLE_HNSW_KEYS))
                            )
                        if hv is not None:
                            hnsw_updates[hk] = check_hnsw_value(hk, hv, legacy=False)
                elif key == "spann":
                    if value is not None:
                        raise errors.InvalidArgumentError("pysvdb collections use HNSW; spann cannot be configured")
                else:
                    raise errors.InvalidArgumentError("unknown configuration field `%s`" % key)
        engine, rec = self._engine, self._record
        with engine.mu:
            engine.check()
            if engine.records.get(rec.id) is not rec:
                raise errors.NotFoundError("Collection [%s] does not exist." % rec.id)
            if name is not None and name != rec.name and engine.find(name) is not None:
                raise errors.InternalError("Collection [%s] already exists" % name)
            engine.modify(rec, name, metadata, hnsw_updates)
        if ef is not None:
            self._embedding_function = ef

    # ------------------------------------------------------------ not in local ChromaDB

    def fork(self, new_name: str) -> "Collection":
        raise NotImplementedError("Collection forking is not implemented for Local Chroma")

    def fork_count(self) -> int:
        raise NotImplementedError("Fork count is not implemented for Local Chroma")

    def search(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Search is not implemented for Local Chroma")

    def get_indexing_status(self) -> Any:
        raise NotImplementedError("Indexing status is not implemented for Local Chroma")


# ---------------------------------------------------------------- clients


def _ef_default_space(ef: Any) -> Optional[str]:
    """ChromaDB takes the space of a non-legacy embedding function when none is given."""
    if ef is None or isinstance(ef, DefaultEmbeddingFunction):
        return None
    try:
        is_legacy = getattr(ef, "is_legacy", None)
        if not callable(is_legacy) or is_legacy():
            return None
        space = ef.default_space()
    except Exception:
        return None
    return space if space in SPACES else None


class ClientAPI:
    """A client of a persistent directory or of the in-memory store.

    Create it with :func:`PersistentClient`, :func:`EphemeralClient` or
    :func:`Client`. Clients of the same directory in one process share one
    store; ``close()`` (or the end of a ``with`` block) releases it when the
    last one closes, which also checkpoints every collection.
    """

    def __init__(
        self,
        settings: Optional[Settings] = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        self._closed = True
        if settings is None:
            settings = Settings()
        if not isinstance(settings, Settings):
            raise TypeError("settings must be a pysvdb.Settings, not %s" % type(settings).__name__)
        tenant, database = str(tenant), str(database)
        if tenant != DEFAULT_TENANT:
            raise ValueError("Could not connect to tenant %s. Are you sure it exists?" % tenant)
        if database != DEFAULT_DATABASE:
            raise ValueError("Could not connect to database %s for tenant %s. Are you sure it exists?" % (database, tenant))
        self.tenant = tenant
        self.database = database
        self._settings = settings
        self._engine = _acquire_engine(settings)
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Releases this client; the store closes with the last client of it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _release_engine(self._engine)

    def __enter__(self) -> "ClientAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> _Engine:
        if self._closed:
            raise ValueError("this client was closed; create a new one")
        self._engine.check()
        return self._engine

    # ------------------------------------------------------------ informational

    def heartbeat(self) -> int:
        """Nanoseconds since the epoch."""
        self._live()
        return time.time_ns()

    def get_version(self) -> str:
        """The ChromaDB version whose API pysvdb follows ("1.5.9"); pysvdb's own is pysvdb.__version__."""
        return CHROMA_API_VERSION

    def get_settings(self) -> Settings:
        return self._settings

    def get_max_batch_size(self) -> int:
        """pysvdb has no batch ceiling: a very large number, so batching helpers make one batch."""
        return MAX_BATCH_SIZE

    # ------------------------------------------------------------ collections

    def _collection(self, rec: _Record, embedding_function: Any, data_loader: Any) -> Collection:
        return Collection(self._engine, rec, embedding_function, data_loader, self.tenant, self.database)

    def list_collections(self, limit: Optional[int] = None, offset: Optional[int] = None) -> List[Collection]:
        """Every collection, in creation order (ChromaDB's order is arbitrary)."""
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        engine = self._live()
        with engine.mu:
            recs = list(engine.records.values())
        recs = recs[off : off + lim] if lim is not None else recs[off:]
        return [self._collection(r, DefaultEmbeddingFunction(), None) for r in recs]

    def count_collections(self) -> int:
        engine = self._live()
        with engine.mu:
            return len(engine.records)

    def create_collection(
        self,
        name: str,
        schema: Optional[Any] = None,
        configuration: Optional[Mapping[str, Any]] = None,
        metadata: Optional[CollectionMetadata] = None,
        embedding_function: Optional[Any] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoader[Any]] = None,
        get_or_create: bool = False,
    ) -> Collection:
        """Creates a collection (``get_or_create=True``: or returns the existing one as is).

        The distance space comes from ``configuration={"hnsw": {"space": ...}}``
        or ``metadata={"hnsw:space": ...}``: "l2" (default), "cosine" or "ip".
        The HNSW settings ``max_neighbors``, ``ef_construction``,
        ``ef_search`` and ``num_threads`` become libsvdb's ``M``,
        ``ef_construction``, ``ef_search`` and build threads.
        """
        if schema is not None:
            raise ValueError("pysvdb does not support collection schemas; use configuration/metadata")
        validate_collection_name(name)
        validate_collection_metadata(metadata)
        if configuration is not None and configuration.get("embedding_function") is not None:
            if embedding_function is not None and not isinstance(embedding_function, DefaultEmbeddingFunction):
                if configuration["embedding_function"] is not embedding_function:
                    raise ValueError(
                        "Multiple embedding functions provided. Please provide only one: in the configuration or "
                        "as the embedding_function argument."
                    )
            embedding_function = configuration["embedding_function"]
        hnsw = hnsw_from_create_args(configuration, metadata, lambda: _ef_default_space(embedding_function))
        engine = self._live()
        with engine.mu:
            engine.check()
            existing = engine.find(name)
            if existing is not None:
                if get_or_create:
                    return self._collection(existing, embedding_function, data_loader)
                raise errors.InternalError("Collection [%s] already exists" % name)
            rec = engine.create(name, metadata, hnsw)
        return self._collection(rec, embedding_function, data_loader)

    def get_or_create_collection(
        self,
        name: str,
        schema: Optional[Any] = None,
        configuration: Optional[Mapping[str, Any]] = None,
        metadata: Optional[CollectionMetadata] = None,
        embedding_function: Optional[Any] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoader[Any]] = None,
    ) -> Collection:
        """The collection named ``name``, created when missing; an existing one is
        returned as is (``configuration`` and ``metadata`` are then ignored)."""
        return self.create_collection(
            name, schema, configuration, metadata, embedding_function, data_loader, get_or_create=True
        )

    def get_collection(
        self,
        name: str,
        embedding_function: Optional[Any] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoader[Any]] = None,
    ) -> Collection:
        """The collection named ``name``; NotFoundError when there is none.

        Embedding functions are not stored with the collection: pass it again here.
        """
        engine = self._live()
        with engine.mu:
            rec = engine.find(name)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % name)
        return self._collection(rec, embedding_function, data_loader)

    def get_collection_by_id(
        self,
        id: uuid.UUID,
        embedding_function: Optional[Any] = DefaultEmbeddingFunction(),  # noqa: B008 - immutable
        data_loader: Optional[DataLoader[Any]] = None,
    ) -> Collection:
        engine = self._live()
        key = id if isinstance(id, uuid.UUID) else uuid.UUID(str(id))
        with engine.mu:
            rec = engine.records.get(key)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % id)
        return self._collection(rec, embedding_function, data_loader)

    def delete_collection(self, name: str) -> None:
        """Deletes the collection and its files; NotFoundError when there is none."""
        engine = self._live()
        with engine.mu:
            rec = engine.find(name)
            if rec is None:
                raise errors.NotFoundError("Collection [%s] does not exist" % name)
            engine.drop(rec)

    def reset(self) -> bool:
        """Deletes every collection; only with ``Settings(allow_reset=True)``."""
        engine = self._live()
        if not engine.settings.allow_reset:
            raise errors.AuthorizationError("Reset is disabled by config")
        with engine.mu:
            for rec in list(engine.records.values()):
                engine.drop(rec)
        return True

    # ------------------------------------------------------------ tenants

    def set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> None:
        if tenant != DEFAULT_TENANT or database != DEFAULT_DATABASE:
            raise ValueError("pysvdb has one tenant and database: %s/%s" % (DEFAULT_TENANT, DEFAULT_DATABASE))

    def set_database(self, database: str) -> None:
        self.set_tenant(self.tenant, database)


def PersistentClient(
    path: Union[str, "os.PathLike[str]"] = "./chroma",
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client storing its collections in the directory ``path`` (created if missing).

    One process at a time: a client in another process raises
    :class:`pysvdb.LockedError` at once instead of waiting.
    """
    if settings is None:
        settings = Settings()
    settings.persist_directory = str(os.fspath(path))
    settings.is_persistent = True
    return ClientAPI(settings, tenant, database)


def EphemeralClient(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client of the process's in-memory store (files in a temporary directory,
    removed when the last client closes or the process exits)."""
    if settings is None:
        settings = Settings()
    settings.is_persistent = False
    return ClientAPI(settings, tenant, database)


def Client(
    settings: Optional[Settings] = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> ClientAPI:
    """A client as ``settings`` say: persistent at ``settings.persist_directory`` when
    ``settings.is_persistent``, else ephemeral."""
    return ClientAPI(settings if settings is not None else Settings(), tenant, database)
