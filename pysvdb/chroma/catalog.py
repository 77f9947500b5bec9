"""The storage behind the ChromaDB-compatible clients: libsvdb's catalog of a
client directory (``svdb_catalog_*``) and the collections' handles.

A persistent client's directory holds a catalog (``pysvdb-chroma.json``:
tenants, databases, and each collection's name, id, database, metadata and
HNSW settings), a lock file, and one libsvdb collection directory per
collection, named by the collection's UUID. libsvdb keeps the
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
from .types import DEFAULT_DATABASE, DEFAULT_TENANT, CollectionMetadata, Database, HnswConfiguration, Tenant

__all__ = ["Record", "Scope", "DEFAULT_SCOPE", "Engine", "acquire", "release", "stop_all"]

#: A (tenant, database) pair: where a client works and a collection lives.
Scope = Tuple[str, str]
DEFAULT_SCOPE: Scope = (DEFAULT_TENANT, DEFAULT_DATABASE)


class Record:
    """One collection's catalog entry, shared by every Collection object for it."""

    __slots__ = ("id", "name", "metadata", "hnsw", "path", "tenant", "database")

    def __init__(
        self,
        id: uuid.UUID,
        name: str,
        metadata: Optional[CollectionMetadata],
        hnsw: HnswConfiguration,
        path: str,
        scope: Scope,
    ) -> None:
        self.id = id
        self.name = name
        self.metadata = metadata
        self.hnsw = hnsw
        self.path = path
        self.tenant, self.database = scope

    @property
    def scope(self) -> Scope:
        return (self.tenant, self.database)


#: A cffi value (char pointer, catalog entry, handle): cffi types them dynamically.
CData = Any

#: ChromaDB's message for a database name under 3 bytes (libsvdb's SVDB_EINVAL).
SHORT_DATABASE_NAME = "database name must be at least 3 characters"


def _text(p: CData) -> str:
    return cast(bytes, ffi.string(p)).decode("utf-8")


def _record(e: CData, scope: Scope) -> Record:
    """A Record from a C svdb_catalog_entry (libsvdb checked every field)."""
    meta = json.loads(_text(e.metadata)) if e.metadata != ffi.NULL else None
    hnsw = cast(HnswConfiguration, json.loads(_text(e.hnsw)))
    return Record(uuid.UUID(_text(e.id)), _text(e.name), meta, hnsw, _text(e.path), scope)


def _database(d: CData) -> Database:
    return {"id": uuid.UUID(_text(d.id)), "name": _text(d.name), "tenant": _text(d.tenant)}


def _c_name(name: str) -> bytes:
    """A tenant or database name as C takes it: UTF-8, which a NUL would cut short."""
    b = name.encode("utf-8")
    if b"\0" in b:
        raise errors.InvalidArgumentError("a tenant or database name cannot hold a NUL character: %r" % name)
    return b


def _c_check(rc: int) -> None:
    if rc != 0:
        msg = _text(lib.svdb_errmsg()) or _text(lib.svdb_strerror(rc))
        raise svdb_errors.error_class(rc)(msg, rc)


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


class Engine:
    """The storage behind every client of one directory (or of the ephemeral store).

    The directory's catalog (tenants, databases, and each collection's name,
    id, metadata, HNSW settings), its lock, its atomic updates and the
    removal of deleted collections' directories are libsvdb's
    (svdb_catalog_*, docs/chroma.md); this class keeps one catalog handle
    per (tenant, database) in use (a view, svdb_catalog_open_database), the
    collections' handles, and a copy of the entries of those databases.

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
        # Only the databases with a view have their collections here (read when the view opens).
        self.views: Dict[Scope, CData] = {}
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

    def _status(self, rc: int, *expected: int) -> int:
        """Issues the warnings a catalog call reported; returns its status when
        it is SVDB_OK or one of ``expected``, else raises its error."""
        pending, self.warnings = self.warnings, []
        for w in pending:
            _warn("pysvdb: " + w)
        if rc != 0 and rc not in expected:
            _c_check(rc)
        return rc

    def _call(self, rc: int) -> None:
        self._status(rc)

    def _open_catalog(self) -> None:
        """Opens (or starts) the directory's catalog, shared with the clients
        of other processes (libsvdb serialises their changes and rereads what
        another saved), every change an atomic rename fsynced with the directory (but for the
        ephemeral store, which needs no durability)."""
        opts = ffi.new("svdb_catalog_options *")
        _c_check(lib.svdb_catalog_options_init(opts, lib.SVDB_CATALOG_OPTIONS_VERSION))
        opts.durability = lib.SVDB_DURABILITY_PERSIST if self.ephemeral else lib.SVDB_DURABILITY_SYNC
        opts.warning = self.on_warning
        out = ffi.new("svdb_catalog **")
        self._call(lib.svdb_catalog_open(out, os.fsencode(self.root), opts))
        self.cat = out[0]

    @contextmanager
    def _held(self) -> Iterator[None]:
        """``mu`` held on an open engine (also checked before taking it: a
        forked child's copy of ``mu`` may be held by a thread it does not have)."""
        self.check()
        with self.mu:
            self.check()
            yield

    def check(self) -> None:
        if self.forked:
            raise ValueError(
                "this client was opened by process %d, and this process is a fork of it: a client is not usable "
                "after fork; create a new client in this process (a PersistentClient once the parent has closed "
                "the directory)" % self.pid
            )
        if self.closed:
            raise ValueError("the client of this store was closed; create a new client")

    # ---- databases: one view handle each, opened on first use

    def _view(self, scope: Scope) -> Optional[CData]:
        """The catalog handle of ``scope``'s database, under ``mu``: opened on
        first use; its collections read again (other processes may have
        changed them; libsvdb rereads the catalog only when it changed); None
        while that database does not exist."""
        view = self.views.get(scope)
        if view is not None:
            self._resync(scope, strict=True)
            return self.views.get(scope)
        out = ffi.new("svdb_catalog **")
        tenant, database = scope
        rc = self._status(
            lib.svdb_catalog_open_database(out, self.cat, _c_name(tenant), _c_name(database)),
            lib.SVDB_ENOTFOUND,
            lib.SVDB_EINVAL,
        )
        if rc == lib.SVDB_EINVAL:
            raise errors.InvalidArgumentError(SHORT_DATABASE_NAME)
        if rc == lib.SVDB_ENOTFOUND:
            return None
        view = out[0]
        try:
            recs = self._list(view, scope)
        except BaseException:
            lib.svdb_catalog_close(view)
            raise
        self.views[scope] = view
        for rec in recs:
            self.records[rec.id] = rec
        return view

    def _scope_records(self, scope: Scope) -> List[Record]:
        return [r for r in self.records.values() if r.scope == scope]

    def _drop_scope(self, scope: Scope) -> None:
        """Forgets a deleted database, under ``mu``: its collections' handles are
        closed, their records dropped (old Collection objects: NotFoundError), its view closed."""
        for rec in self._scope_records(scope):
            self._close_handle(rec)
            del self.records[rec.id]
        view = self.views.pop(scope, None)
        if view is not None:
            lib.svdb_catalog_close(view)

    def _resync(self, scope: Scope, strict: bool = False) -> None:
        """Re-reads the database's collections from libsvdb, after a failed
        change (one whose directory fsync failed was still made) or before a
        lookup (another process may have changed them), keeping the Record
        objects of those still there. ``strict``: a failure to read raises
        (else the copy stays as it was)."""
        view = self.views.get(scope)
        if view is None:
            return
        try:
            fresh = {r.id: r for r in self._list(view, scope)}
        except svdb_errors.NotFoundError:  # the database itself is gone
            self._drop_scope(scope)
            return
        except svdb_errors.SvDBError:
            if strict:
                raise
            return  # the copy stays as it was
        for rec in self._scope_records(scope):
            if rec.id not in fresh:
                self._close_handle(rec)
                del self.records[rec.id]
        for cid, r in fresh.items():
            old = self.records.setdefault(cid, r)
            old.name, old.metadata, old.hnsw = r.name, r.metadata, r.hnsw

    def check_scope(self, tenant: str, database: str) -> None:
        """Raises ChromaDB's error unless the tenant and its database exist: the
        tenant first, then the database (ChromaDB's order and messages)."""
        with self._held():
            self._tenant_must_exist(tenant)
            if self._view((tenant, database)) is None:
                raise errors.NotFoundError("Database [%s] not found. Are you sure it exists?" % database)

    def _tenant_must_exist(self, name: str) -> None:
        rc = self._status(
            lib.svdb_catalog_get_tenant(self.cat, _c_name(name)), lib.SVDB_ENOTFOUND, lib.SVDB_EINVAL
        )
        if rc != lib.SVDB_OK:  # SVDB_EINVAL: the empty name, which ChromaDB does not find either
            raise errors.NotFoundError("Tenant [%s] not found" % name)

    def create_tenant(self, name: str) -> None:
        with self._held():
            rc = self._status(
                lib.svdb_catalog_create_tenant(self.cat, _c_name(name)), lib.SVDB_EEXISTS, lib.SVDB_EINVAL
            )
        if rc == lib.SVDB_EEXISTS:
            raise errors.InternalError("Tenant [%s] already exists" % name)
        if rc == lib.SVDB_EINVAL:
            raise errors.InvalidArgumentError(
                'Validation error: name: Validation error: length [{"value": String(%s), "min": Number(3)}]'
                % json.dumps(name, ensure_ascii=False)
            )

    def get_tenant(self, name: str) -> Tenant:
        with self._held():
            self._tenant_must_exist(name)
        return {"name": name}

    def create_database(self, name: str, tenant: str) -> None:
        with self._held():
            rc = self._status(
                lib.svdb_catalog_create_database(self.cat, _c_name(tenant), _c_name(name)),
                    lib.SVDB_EEXISTS,
                lib.SVDB_EINVAL,
                lib.SVDB_ENOTFOUND,
            )
        if rc == lib.SVDB_EEXISTS:
            raise errors.InternalError("Database [%s] already exists" % name)
        if rc == lib.SVDB_EINVAL:
            raise errors.InvalidArgumentError(SHORT_DATABASE_NAME)
        if rc == lib.SVDB_ENOTFOUND:  # ChromaDB would create it in a tenant that does not exist
            raise errors.NotFoundError("Tenant [%s] not found" % tenant)

    def get_database(self, name: str, tenant: str) -> Database:
        out = ffi.new("svdb_catalog_database **")
        with self._held():
            rc = self._status(
                lib.svdb_catalog_get_database(self.cat, _c_name(tenant), _c_name(name), out),
                    lib.SVDB_ENOTFOUND,
                lib.SVDB_EINVAL,
            )
        if rc == lib.SVDB_EINVAL:
            raise errors.InvalidArgumentError(SHORT_DATABASE_NAME)
        if rc == lib.SVDB_ENOTFOUND:
            raise errors.NotFoundError("Database [%s] not found. Are you sure it exists?" % name)
        try:
            return _database(out[0][0])
        finally:
            lib.svdb_catalog_databases_free(out[0])

    def list_databases(self, limit: int, offset: int, tenant: str) -> List[Database]:
        """The tenant's databases by name, ``offset`` skipped, at most ``limit`` (-1: all)."""
        out = ffi.new("svdb_catalog_database **")
        n = ffi.new("size_t *")
        with self._held():
            self._call(lib.svdb_catalog_list_databases(self.cat, _c_name(tenant), limit, offset, out, n))
        try:
            return [_database(out[0][i]) for i in range(n[0])]
        finally:
            lib.svdb_catalog_databases_free(out[0])

    def delete_database(self, name: str, tenant: str) -> None:
        """Deletes the database and its collections (libsvdb removes their files);
        its collections' handles are closed first, writes in flight finishing."""
        scope = (tenant, name)
        with self._held():
            for rec in self._scope_records(scope):
                self._close_handle(rec)  # libsvdb refuses while one is open
            try:
                rc = self._status(
                    lib.svdb_catalog_delete_database(self.cat, _c_name(tenant), _c_name(name)),
                            lib.SVDB_ENOTFOUND,
                    lib.SVDB_EINVAL,
                )
            except svdb_errors.SvDBError:
                self._resync(scope)
                raise
            if rc != lib.SVDB_OK:  # SVDB_EINVAL: a name under 3 bytes, which ChromaDB does not find either
                raise errors.NotFoundError("Database [%s] not found" % name)
            self._drop_scope(scope)

    # ---- the collections of one database

    def _list(self, view: CData, scope: Scope) -> List[Record]:
        entries = ffi.new("svdb_catalog_entry **")
        n = ffi.new("size_t *")
        self._call(lib.svdb_catalog_list(view, entries, n))
        try:
            return [_record(entries[0][i], scope) for i in range(n[0])]
        finally:
            lib.svdb_catalog_entries_free(entries[0])

    def _get(self, view: CData, name: str, scope: Scope) -> Record:
        entry = ffi.new("svdb_catalog_entry **")
        self._call(lib.svdb_catalog_get(view, name.encode("utf-8"), entry))
        try:
            return _record(entry[0][0], scope)
        finally:
            lib.svdb_catalog_entries_free(entry[0])

    def _change(self, rc: int, scope: Scope) -> None:
        """Raises the error of a catalog change, with the database's records
        resynchronised from libsvdb first: a change whose directory fsync failed was still made."""
        try:
            self._call(rc)
        except svdb_errors.SvDBError:
            self._resync(scope)
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
        self._change(lib.svdb_catalog_forget(self.views[rec.scope], rec.name.encode("utf-8")), rec.scope)

    def _find(self, name: str, scope: Scope) -> Optional[Record]:
        for rec in self.records.values():
            if rec.name == name and rec.scope == scope:
                return rec
        return None

    def _current(self, rec: Record) -> None:
        """NotFoundError unless ``rec`` is still in the catalog (not deleted, not reset); under ``mu``."""
        if self.records.get(rec.id) is not rec:
            raise errors.NotFoundError("Collection [%s] does not exist." % rec.id)

    def entries(self, scope: Scope = DEFAULT_SCOPE) -> List[Record]:
        """Every collection of the database, in creation order (none once it was deleted)."""
        with self._held():
            if self._view(scope) is None:
                return []
            return self._scope_records(scope)

    def by_name(self, name: str, scope: Scope = DEFAULT_SCOPE) -> Record:
        with self._held():
            self._view(scope)
            rec = self._find(name, scope)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % name)
        return rec

    def by_id(self, cid: uuid.UUID, scope: Scope = DEFAULT_SCOPE) -> Record:
        with self._held():
            self._view(scope)
            rec = self.records.get(cid)
        if rec is None or rec.scope != scope:
            raise errors.NotFoundError("Collection [%s] does not exist" % cid)
        return rec

    def create(
        self,
        name: str,
        metadata: Optional[CollectionMetadata],
        hnsw: HnswConfiguration,
        get_or_create: bool,
        scope: Scope = DEFAULT_SCOPE,
    ) -> Record:
        """A new collection; with ``get_or_create`` an existing one of that name as it is."""
        with self._held():
            view = self._view(scope)
            if view is None:
                raise errors.InvalidArgumentError("Database [%s] does not exist" % scope[1])
            existing = self._find(name, scope)
            if existing is not None:
                if get_or_create:
                    return existing
                raise errors.InternalError("Collection [%s] already exists" % name)
            entry = ffi.new("svdb_catalog_entry **")
            meta = json.dumps(dict(metadata)).encode("utf-8") if metadata is not None else ffi.NULL
            rc = lib.svdb_catalog_create(view, name.encode("utf-8"), meta, json.dumps(hnsw).encode("utf-8"), entry)
            if rc == lib.SVDB_EEXISTS:  # another process made it since this one looked
                self.warnings.clear()
                self._resync(scope, strict=True)
                existing = self._find(name, scope)
                if get_or_create and existing is not None:
                    return existing
                raise errors.InternalError("Collection [%s] already exists" % name)
            self._change(rc, scope)
            try:
                rec = _record(entry[0][0], scope)
            finally:
                lib.svdb_catalog_entries_free(entry[0])
            self.records[rec.id] = rec
            return rec

    def modify(
        self, rec: Record, name: Optional[str], metadata: Optional[CollectionMetadata], hnsw: HnswConfiguration
    ) -> None:
        """Renames, replaces the metadata and updates HNSW settings in one atomic change."""
        with self._held():
            self._current(rec)
            if name is not None and name != rec.name and self._find(name, rec.scope) is not None:
                raise errors.InternalError("Collection [%s] already exists" % name)
            view = self.views[rec.scope]
            self._change(
                lib.svdb_catalog_modify(
                    view,
                    rec.name.encode("utf-8"),
                    name.encode("utf-8") if name is not None else ffi.NULL,
                    json.dumps(dict(metadata)).encode("utf-8") if metadata is not None else ffi.NULL,
                    json.dumps(hnsw).encode("utf-8") if hnsw else ffi.NULL,
                ),
                rec.scope,
            )
            fresh = self._get(view, name if name is not None else rec.name, rec.scope)
            rec.name, rec.metadata, rec.hnsw = fresh.name, fresh.metadata, fresh.hnsw

    def delete(self, name: str, scope: Scope = DEFAULT_SCOPE) -> None:
        """Deletes the collection named ``name``; NotFoundError when there is none."""
        with self._held():
            self._view(scope)
            rec = self._find(name, scope)
            if rec is None:
                raise errors.NotFoundError("Collection [%s] does not exist" % name)
            self._drop(rec)
        self._remove_collection_dir(rec.id)

    def reset(self) -> None:
        """Deletes every collection, database and tenant in one libsvdb change
        (their files go next): afterwards only the default tenant and its empty
        default database exist. Open collections' handles are closed first,
        writes in flight finishing; old Collection objects raise NotFoundError."""
        with self._held():
            self.check()
            for rec in list(self.records.values()):
                self._close_handle(rec)  # libsvdb refuses while one is open
            try:
                self._call(lib.svdb_catalog_reset(self.cat))
            except svdb_errors.SvDBError:
                for scope in list(self.views):
                    self._resync(scope)
                raise
            for scope in list(self.views):
                self._drop_scope(scope)

    # ---- the collections' handles

    def _open(self, rec: Record) -> Tuple[SvDBPython, threading.Lock]:
        """The collection's handle (opened on first use) and its writer lock."""
        with self._held():
            self._current(rec)
            h = self.handles.get(rec.id)
            if h is None:
                hn = rec.hnsw
                h = SvDBPython(
                    rec.path,
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
                    index_backlog_bytes=self.settings.pysvdb_index_backlog_bytes,
                )
                try:
                    # The catalog lists it, so it is ours: libsvdb says so in the
                    # directory (also for collections made before markers existed,
                    # and after a delete interrupted before the catalog forgot it).
                    self._call(lib.svdb_catalog_claim(self.views[rec.scope], rec.name.encode("utf-8")))
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
        self._close_handle(rec)
        self._forget(rec)  # on failure the collection stays whole; its handle reopens when used
        del self.records[rec.id]

    def _close_handle(self, rec: Record) -> None:
        """Closes the collection's handle, if open, once writes in flight finish; under ``mu``."""
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

    def abandon(self) -> None:
        """In a forked child: forgets the parent's store without touching it.
        The handles were dropped by SvDBPython's own fork hook, and libsvdb
        closed the child's copy of the catalog's lock at fork (the parent
        keeps its lock); the catalog handle is not usable here."""
        self.closed = True
        self.forked = True
        self.mu = threading.RLock()
        self.handles.clear()
        self.views.clear()
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
        self.views.clear()
        lib.svdb_catalog_close(cat)  # closes the views too, and releases the directory's lock
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


