"""The storage behind the ChromaDB-compatible clients: libsvdb's catalog of a
client directory (``svdb_catalog_*``) and the collections' handles.

A persistent client's directory holds a catalog (``pysvdb-chroma.json``:
names, ids, metadata, HNSW settings), a lock file, and one libsvdb collection
directory per collection, named by the collection's UUID. libsvdb keeps the
catalog: its lock, atomic updates and removals are C's. Clients of one
directory in a process share one :class:`Engine` (see :func:`acquire`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import uuid
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple, cast

from .. import _errors as svdb_errors
from .._db import SvDBPython
from .._lib import ffi, lib
from . import errors
from .settings import Settings, SettingValue
from .types import CollectionMetadata, HnswConfiguration

__all__ = ["Record", "Engine", "acquire", "release", "stop_all"]


class Record:
    """One collection's catalog entry, shared by every Collection object for it."""

    __slots__ = ("id", "name", "metadata", "hnsw")

    def __init__(self, id: uuid.UUID, name: str, metadata: Optional[CollectionMetadata], hnsw: HnswConfiguration) -> None:
        self.id = id
        self.name = name
        self.metadata = metadata
        self.hnsw = hnsw


#: A cffi value (char pointer, catalog entry, handle): cffi types them dynamically.
CData = Any


def _text(p: CData) -> str:
    return cast(bytes, ffi.string(p)).decode("utf-8")


def _record(e: CData) -> Record:
    """A Record from a C svdb_catalog_entry (libsvdb checked every field)."""
    meta = json.loads(_text(e.metadata)) if e.metadata != ffi.NULL else None
    return Record(uuid.UUID(_text(e.id)), _text(e.name), meta, cast(HnswConfiguration, json.loads(_text(e.hnsw))))


def _c_check(rc: int) -> None:
    if rc != 0:
        msg = _text(lib.svdb_errmsg()) or _text(lib.svdb_strerror(rc))
        raise svdb_errors.error_class(rc)(msg, rc)


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


class Engine:
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
        self.records: Dict[uuid.UUID, Record] = {}
        self.handles: Dict[uuid.UUID, SvDBPython] = {}
        self.writers: Dict[uuid.UUID, threading.Lock] = {}
        self.durability = "persist" if self.ephemeral else settings.pysvdb_durability
        self.cat: Optional[CData] = None
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

    def _collect_warning(self, message: CData, payload: CData) -> None:
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

    def _list(self) -> List[Record]:
        entries = ffi.new("svdb_catalog_entry **")
        n = ffi.new("size_t *")
        self._call(lib.svdb_catalog_list(self.cat, entries, n))
        try:
            return [_record(entries[0][i]) for i in range(n[0])]
        finally:
            lib.svdb_catalog_entries_free(entries[0])

    def _get(self, name: str) -> Record:
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

    def _forget(self, rec: Record) -> None:
        """The catalog forgets the collection (one atomic change); its directory is marked as being deleted."""
        self._change(lib.svdb_catalog_forget(self.cat, rec.name.encode("utf-8")))

    def check(self) -> None:
        if self.forked:
            raise ValueError(
                "this client was opened by process %d, and this process is a fork of it: a client is not usable "
                "after fork; create a new client in this process (a PersistentClient once the parent has closed "
                "the directory)" % self.pid
            )
        if self.closed:
            raise ValueError("the client of this store was closed; create a new client")

    # ---- the catalog's collections

    def _find(self, name: str) -> Optional[Record]:
        for rec in self.records.values():
            if rec.name == name:
                return rec
        return None

    def _current(self, rec: Record) -> None:
        """NotFoundError unless ``rec`` is still in the catalog (not deleted, not reset); under ``mu``."""
        if self.records.get(rec.id) is not rec:
            raise errors.NotFoundError("Collection [%s] does not exist." % rec.id)

    def entries(self) -> List[Record]:
        """Every collection, in creation order."""
        self.check()
        with self.mu:
            return list(self.records.values())

    def by_name(self, name: str) -> Record:
        self.check()
        with self.mu:
            rec = self._find(name)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % name)
        return rec

    def by_id(self, cid: uuid.UUID) -> Record:
        self.check()
        with self.mu:
            rec = self.records.get(cid)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % cid)
        return rec

    def create(
        self, name: str, metadata: Optional[CollectionMetadata], hnsw: HnswConfiguration, get_or_create: bool
    ) -> Record:
        """A new collection; with ``get_or_create`` an existing one of that name as it is."""
        self.check()
        with self.mu:
            self.check()
            existing = self._find(name)
            if existing is not None:
                if get_or_create:
                    return existing
                raise errors.InternalError("Collection [%s] already exists" % name)
            entry = ffi.new("svdb_catalog_entry **")
            meta = json.dumps(dict(metadata)).encode("utf-8") if metadata is not None else ffi.NULL
            self._change(
                lib.svdb_catalog_create(self.cat, name.encode("utf-8"), meta, json.dumps(hnsw).encode("utf-8"), entry)
            )
            try:
                rec = _record(entry[0][0])
            finally:
                lib.svdb_catalog_entries_free(entry[0])
            self.records[rec.id] = rec
            return rec

    def modify(
        self, rec: Record, name: Optional[str], metadata: Optional[CollectionMetadata], hnsw: HnswConfiguration
    ) -> None:
        """Renames, replaces the metadata and updates HNSW settings in one atomic change."""
        self.check()
        with self.mu:
            self.check()
            self._current(rec)
            if name is not None and name != rec.name and self._find(name) is not None:
                raise errors.InternalError("Collection [%s] already exists" % name)
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

    def delete(self, name: str) -> None:
        """Deletes the collection named ``name``; NotFoundError when there is none."""
        self.check()
        with self.mu:
            rec = self._find(name)
            if rec is None:
                raise errors.NotFoundError("Collection [%s] does not exist" % name)
            self._drop(rec)
        self._remove_collection_dir(rec.id)

    def reset(self) -> None:
        """Deletes every collection."""
        self.check()
        with self.mu:
            recs = list(self.records.values())
            for rec in recs:
                self._drop(rec)
        for rec in recs:
            self._remove_collection_dir(rec.id)

    # ---- the collections' handles

    def _open(self, rec: Record) -> Tuple[SvDBPython, threading.Lock]:
        """The collection's handle (opened on first use) and its writer lock."""
        self.check()  # before taking the lock: a forked child's copy of it may be held by a thread it does not have
        with self.mu:
            self.check()
            self._current(rec)
            h = self.handles.get(rec.id)
            if h is None:
                hn = rec.hnsw
                h = SvDBPython(
                    os.path.join(self.root, str(rec.id)),
                    metric=hn["space"],
                    durability="persist" if self.durability == "persist" else "sync",
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
            return h, self.writers[rec.id]

    @contextmanager
    def use(self, rec: Record, write: bool = False) -> Iterator[SvDBPython]:
        """The collection's handle for the length of a ``with``: opened on first
        use; with ``write`` the collection's writer lock is held (one writer at a
        time; a delete waits for it). libsvdb's errors inside become ChromaDB's."""
        try:
            h, lock = self._open(rec)
            if write:
                with lock:
                    yield h
            else:
                yield h
        except errors.ChromaError:
            raise
        except svdb_errors.ClosedError:  # deleted (or reset) by another thread meanwhile
            raise errors.NotFoundError("Collection [%s] does not exist." % rec.id) from None
        except (svdb_errors.DimensionError, svdb_errors.MetadataError, svdb_errors.TooBigError) as e:
            raise errors.InvalidArgumentError(e.message) from None
        except svdb_errors.InvalidArgumentError as e:
            if isinstance(e, TypeError):
                raise
            raise errors.InvalidArgumentError(e.message) from None

    def dimension(self, rec: Record) -> Optional[int]:
        """The collection's dimension (None before its first write, or once deleted)."""
        try:
            with self.use(rec) as db:
                return db.dim
        except errors.NotFoundError:
            return None

    def _drop(self, rec: Record) -> None:
        """Removes a collection from the catalog, under ``mu``: its handle is
        closed (writes in flight finish first), libsvdb marks its directory as
        being deleted and the catalog forgets it (atomically). Its files go
        next, in :meth:`_remove_collection_dir` (marker last)."""
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


_engines: Dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _comparable(settings: Settings) -> Dict[str, SettingValue]:
    f = dict(settings.fields())
    f.pop("persist_directory", None)
    return f


_LOCAL_IMPLS = ("chromadb.api.rust.RustBindingsAPI", "chromadb.api.segment.SegmentAPI")


def acquire(settings: Settings) -> Engine:
    """The store of the settings' directory (or the ephemeral one), shared by the clients of this process."""
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
            engine = Engine(key, root, settings)
            _engines[key] = engine
        elif _comparable(engine.settings) != _comparable(settings):
            raise ValueError("An instance of Chroma already exists for %s with different settings" % key)
        engine.refs += 1
        return engine


def release(engine: Engine) -> None:
    """Lets go of a client's store: the last client's release closes it."""
    with _engines_lock:
        engine.refs -= 1
        if engine.refs > 0:
            return
        if _engines.get(engine.key) is engine:
            del _engines[engine.key]
    engine.stop()


def stop_all() -> None:
    """Closes this process's stores (checkpoints, removes the ephemeral directory),
    at exit and for ClientAPI.clear_system_cache(); their clients are closed.
    Every store is stopped; the first error is raised after."""
    with _engines_lock:
        engines = [e for e in _engines.values() if e.pid == os.getpid()]
        _engines.clear()
    first: Optional[BaseException] = None
    for e in engines:
        try:
            e.stop()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def _stop_all_at_exit() -> None:
    try:
        stop_all()
    except Exception:  # pragma: no cover - nothing to report to at exit
        pass


atexit.register(_stop_all_at_exit)


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


