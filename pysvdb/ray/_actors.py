"""The classes behind pysvdb.ray's actors: ``Shard`` owns one pysvdb Chroma
collection on its node's disk; ``Catalog`` keeps the collections' records in a
JSON file. Both are plain classes, made actors by :mod:`._client`, so that
this module imports without ray (workers import it by name)."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np
import numpy.typing as npt

from .._db import SvDBPython
from ..chroma import Collection, PersistentClient, errors

#: The hidden metadata key holding a row's collection-wide insertion number:
#: merging shards by it gives the single collection's insertion order.
SEQ_KEY = "svdb:seq"

Record = Dict[str, Any]
Meta = Optional[Dict[str, Any]]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def owned_shard_dir(directory: str) -> bool:
    """True when ``directory`` is a replica directory this package made,
    ``<path>/<collection uuid>/shard-<k>/replica-<r>``, reached through no
    symbolic link: the one tree ``Shard.drop`` may remove."""
    d = os.path.normpath(directory)
    replica, shard, cid = os.path.basename(d), os.path.dirname(d), os.path.dirname(os.path.dirname(d))
    return bool(
        re.fullmatch(r"replica-[0-9]+", replica)
        and re.fullmatch(r"shard-[0-9]+", os.path.basename(shard))
        and _UUID.fullmatch(os.path.basename(cid))
        and not any(os.path.islink(p) for p in (d, shard, cid))
        and os.path.isdir(d)
    )


def _with_seq(meta: Meta, seq: int) -> Dict[str, Any]:
    out = dict(meta) if meta else {}
    out[SEQ_KEY] = seq
    return out


def _split_seq(meta: Meta) -> "tuple[int, Meta]":
    """The row's sequence number and its metadata as the user wrote it."""
    if not meta:
        return -1, None
    m = dict(meta)
    seq = m.pop(SEQ_KEY, -1)
    return int(seq), (m or None)


#: The writes a shard's primary passes on to its other replicas (Shard.lead).
_WRITES = frozenset({"add", "upsert", "update", "delete", "modify"})
#: The Ray concurrency group in which a replica applies the writes its primary
#: passes on: a thread of its own, so that two replicas that both lead a write
#: (the moment drivers disagree about which replica is live) never wait on each other.
REPLICA_GROUP = "replica"
#: How often Ray's view of an actor is read while an answer is awaited.
LIVENESS_POLL_S = 0.5


class ShardUnavailableError(errors.ChromaError):
    """A shard (or the catalog) did not answer: its actor died for good or did
    not reply within the client's timeout. The message names it."""

    def code(self) -> int:
        return 503

    @classmethod
    def name(cls) -> str:
        return "ShardUnavailableError"


def actor_alive(handle: Any) -> bool:
    """Whether Ray reports the actor ALIVE (not restarting, pending placement or
    dead). The state comes from Ray's GCS through ``ray._private.state`` (the
    public state API needs the dashboard); when it cannot be read the actor
    counts as alive, so a write waits for it as for any live replica."""
    try:
        from ray._private import state  # type: ignore[import-untyped, import-not-found, unused-ignore]

        info = state.actors(handle._actor_id.hex())
        return str(info.get("State", "ALIVE")) == "ALIVE"
    except Exception:
        return True


#: Bytes per call of a catch-up: a shard's files travel in pieces of this size.
COPY_CHUNK = 32 << 20
#: What a replica's copy leaves out: the locks, which each opener makes.
_NOT_COPIED = frozenset({"LOCK", "pysvdb-chroma.lock"})


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_STAGING = re.compile(r"replica-[0-9]+\.(incoming|old)")


def _remove_staging(path: str) -> None:
    """Removes a replica's staging directory (Shard._install's ``.incoming`` or
    ``.old``): only a real directory of that name inside a ``shard-<k>`` one."""
    if not os.path.isdir(path) or os.path.islink(path):
        return
    if not (_STAGING.fullmatch(os.path.basename(path))
            and re.fullmatch(r"shard-[0-9]+", os.path.basename(os.path.dirname(path)))):
        raise errors.InternalError("refusing to remove %r: not a staging directory of pysvdb.ray" % path)
    shutil.rmtree(path, ignore_errors=True)


def _finish_install(directory: str) -> None:
    """Completes or undoes a copy from a peer that a crash interrupted
    (Shard._install): a complete ``.incoming`` is only ever renamed after the
    old directory moved to ``.old``, so a missing directory with an ``.incoming``
    beside it takes it, one with only an ``.old`` gets it back; leftovers go."""
    incoming, old = directory + ".incoming", directory + ".old"
    if not os.path.exists(directory):
        if os.path.isdir(incoming) and os.path.isdir(old):
            os.rename(incoming, directory)
        elif os.path.isdir(old):
            os.rename(old, directory)
    for leftover in (incoming, old):
        _remove_staging(leftover)


class Shard:
    """One shard: the only writer of the collection in ``directory``.

    Reopened from disk by its __init__ when Ray restarts the actor; every
    method returns after pysvdb has made the write durable in its log.
    """

    def __init__(self, directory: str, metadata: Meta, hnsw: Dict[str, Any], peers: Sequence[str] = (),
                 namespace: str = "pysvdb", sync_timeout: float = 30.0) -> None:
        self._dir = directory
        #: held by each write and by export_begin: a primary's own writes and the
        #: writes passed on to it (REPLICA_GROUP's thread) take turns
        self._lock = threading.RLock()
        #: the other replicas' actor handles, by name (Shard.lead)
        self._peers: Dict[str, Any] = {}
        #: copies of this replica in progress for peers (export_begin): token -> (start, open files)
        self._exports: Dict[str, Tuple[float, Dict[str, int]]] = {}
        _finish_install(directory)
        os.makedirs(directory, exist_ok=True)
        self._metadata = metadata
        self._hnsw = hnsw
        self._client = PersistentClient(directory)
        self._col = self._open()
        if peers:
            import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

            if ray.get_runtime_context().was_current_actor_reconstructed:
                # Writes may have gone to the peers while this replica was down (or it
                # restarted on a node without its files): copy a live peer before serving.
                self._catch_up(peers, namespace, sync_timeout)

    def _open(self) -> Collection:
        return self._client.get_or_create_collection(
            "shard", metadata=self._metadata, configuration={"hnsw": self._hnsw}, embedding_function=None
        )

    def _catch_up(self, peers: Sequence[str], namespace: str, timeout: float) -> bool:
        import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

        for name in peers:
            try:
                peer = ray.get_actor(name, namespace=namespace)
                begin = cast(Dict[str, Any], ray.get(peer.export_begin.remote(), timeout=timeout))
            except Exception:  # that peer is down too: try the next
                continue

            def read(rel: str, offset: int, size: int) -> bytes:
                return cast(bytes, ray.get(peer.export_read.remote(begin["token"], rel, offset, size), timeout=timeout))

            try:
                self._copy_in(begin, read)
            except Exception:  # the peer went during the copy: the next one
                continue
            finally:
                peer.export_end.remote(begin["token"])
            self._swap_in(begin)
            return True
        return False  # no live peer: serve the local files

    def export_begin(self) -> Dict[str, Any]:
        """Starts a copy of this replica for a peer's catch-up: a checkpoint (the
        snapshot then holds every row and the linked graph), then every file but
        the locks, which each opener makes, opened and its size taken. A later
        checkpoint replaces files by rename and a write only appends to the log,
        so the open files, up to those sizes, stay one consistent snapshot plus
        the log since, whatever this replica does meanwhile: export_read serves
        them in pieces, export_end closes them (as does an export left open for
        an hour, when the next one begins)."""
        with self._lock:
            return self._export_begin()

    def _export_begin(self) -> Dict[str, Any]:
        with self._col._engine.use(self._col._record, write=True) as db:
            db.persist()
        now = time.monotonic()
        for token in [t for t, (t0, _) in self._exports.items() if now - t0 > 3600]:
            self.export_end(token)
        fds: Dict[str, int] = {}
        files = []
        try:
            for root, _, names in os.walk(self._dir):
                for n in sorted(names):
                    if n in _NOT_COPIED or n.endswith(".tmp"):
                        continue
                    rel = os.path.relpath(os.path.join(root, n), self._dir)
                    fds[rel] = os.open(os.path.join(root, n), os.O_RDONLY | os.O_CLOEXEC)
                    files.append((rel, os.fstat(fds[rel]).st_size))
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise
        token = uuid.uuid4().hex
        self._exports[token] = (now, fds)
        # modify() may have changed them since this actor was created with its arguments
        return {"token": token, "files": files, "metadata": self._col.metadata,
                "hnsw": dict(self._col.configuration_json["hnsw"] or {})}

    def export_read(self, token: str, rel: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of file ``rel`` of the copy ``token``."""
        if token not in self._exports or rel not in self._exports[token][1]:
            raise errors.InternalError("no copy %r of file %r in progress here" % (token, rel))
        return os.pread(self._exports[token][1][rel], size, offset)

    def export_end(self, token: str) -> None:
        """Closes the copy ``token`` (nothing when it is not open)."""
        for fd in self._exports.pop(token, (0.0, {}))[1].values():
            os.close(fd)

    def _copy_in(self, begin: Dict[str, Any], read: Callable[[str, int, int], bytes]) -> None:
        """Writes a peer's files (``begin``'s list, read with ``read(rel, offset,
        size)`` in pieces of COPY_CHUNK bytes) into ``<dir>.incoming``, each
        synced, then the directories."""
        incoming = self._dir + ".incoming"
        if not owned_shard_dir(self._dir):
            raise errors.InternalError("refusing to replace %r: not a shard directory of pysvdb.ray" % self._dir)
        _remove_staging(incoming)
        for rel, size in begin["files"]:
            target = os.path.normpath(os.path.join(incoming, rel))
            if os.path.isabs(rel) or not target.startswith(incoming + os.sep):
                raise errors.InternalError("a peer sent a file outside its directory: %r" % (rel,))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                done = 0
                while done < size:
                    data = read(rel, done, min(COPY_CHUNK, size - done))
                    if not data:
                        raise errors.InternalError("the peer's file %r ended at %d of %d bytes" % (rel, done, size))
                    f.write(data)
                    done += len(data)
                f.flush()
                os.fsync(f.fileno())
        for root, dirs, _ in os.walk(incoming, topdown=False):
            for d in [root] + [os.path.join(root, x) for x in dirs]:
                _fsync_dir(d)

    def _swap_in(self, begin: Dict[str, Any]) -> None:
        """Replaces this replica's directory by the copy in ``<dir>.incoming`` by
        two renames (a crash in between is finished at the next start:
        _finish_install), then reopens it."""
        incoming, old = self._dir + ".incoming", self._dir + ".old"
        self._client.close()
        _remove_staging(old)
        os.rename(self._dir, old)
        os.rename(incoming, self._dir)
        _fsync_dir(os.path.dirname(self._dir))
        _remove_staging(old)
        self._metadata, self._hnsw = begin["metadata"], begin["hnsw"]
        self._client = PersistentClient(self._dir)
        self._col = self._open()

    def export(self) -> Dict[str, Any]:
        """Every row, with its hidden insertion number, in insertion order (re-sharding)."""
        res = self._col.get(include=["embeddings", "metadatas", "documents", "uris"])
        return {"ids": res["ids"], "embeddings": res["embeddings"], "metadatas": res["metadatas"],
                "documents": res["documents"], "uris": res["uris"], "metadata": self._col.metadata,
                "hnsw": dict(self._col.configuration_json["hnsw"] or {})}

    def node(self) -> str:
        """The id of the Ray node this replica runs on."""
        import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

        return str(ray.get_runtime_context().get_node_id())

    def lead(self, method: str, args: Tuple[Any, ...], backups: Sequence[str], namespace: str,
             timeout: float) -> None:
        """Applies a write as its shard's primary: passes it on to the other
        replicas (``backups``, by actor name), applies it here, and returns once
        every live backup has it. The hand-off happens under the write lock, and
        Ray delivers one caller's calls in order, so every replica applies the
        shard's writes in this replica's order. A backup that Ray reports not
        live is not waited for (it copies a live peer before it serves again);
        one that does not answer within ``timeout`` fails the write, named."""
        import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

        if method not in _WRITES:
            raise errors.InternalError("%r is not a write" % method)
        sent: Dict[Any, Tuple[str, Any]] = {}
        with self._lock:
            for name in backups:
                peer = self._peer(name, namespace)
                if peer is not None:
                    ref = peer.apply.options(concurrency_group=REPLICA_GROUP).remote(method, args)
                    sent[ref] = (name, peer)
            getattr(self, method)(*args)
        deadline = time.monotonic() + timeout
        while sent:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(sorted(name for name, _ in sent.values()))
                raise ShardUnavailableError("replica %s did not answer within %g s" % (names, timeout))
            done, _ = ray.wait(list(sent), num_returns=len(sent), timeout=min(left, LIVENESS_POLL_S))
            for ref in done:
                name, _ = sent.pop(ref)
                try:
                    ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError):
                    # gone: it copies a live peer if it comes back
                    self._peers.pop(name, None)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    raise cause if isinstance(cause, BaseException) else e from None
            for ref, (name, peer) in list(sent.items()):
                if not actor_alive(peer):
                    del sent[ref]

    def apply(self, method: str, args: Tuple[Any, ...]) -> None:
        """Applies a write that the shard's primary passes on (Shard.lead)."""
        if method not in _WRITES:
            raise errors.InternalError("%r is not a write" % method)
        getattr(self, method)(*args)

    def _peer(self, name: str, namespace: str) -> Any:
        """Another replica's actor handle, or None when Ray knows no actor of that name."""
        import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

        if name not in self._peers:
            try:
                self._peers[name] = ray.get_actor(name, namespace=namespace)
            except ValueError:
                return None
        return self._peers[name]

    def add(self, ids: List[str], vecs: npt.NDArray[np.float32], metas: Optional[List[Meta]],
            docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]], seqs: List[int]) -> None:
        m = [_with_seq(metas[i] if metas else None, s) for i, s in enumerate(seqs)]
        with self._lock:
            self._col.add(ids=ids, embeddings=vecs, metadatas=m, documents=docs, uris=uris)  # type: ignore[arg-type]

    def upsert(self, ids: List[str], vecs: npt.NDArray[np.float32], metas: Optional[List[Meta]],
               docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]], seqs: List[int]) -> None:
        with self._lock:
            # Existing rows keep their number (a single collection keeps their place); new rows take theirs.
            existing = set(self._col.get(ids=ids, include=[])["ids"])
            m: List[Meta] = []
            for i, (id_, s) in enumerate(zip(ids, seqs)):
                given = metas[i] if metas else None
                m.append(given if id_ in existing else _with_seq(given, s))
            self._col.upsert(ids=ids, embeddings=vecs, metadatas=m, documents=docs, uris=uris)  # type: ignore[arg-type]

    def update(self, ids: List[str], vecs: Optional[npt.NDArray[np.float32]], metas: Optional[List[Meta]],
               docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]]) -> None:
        with self._lock:
            self._col.update(ids=ids, embeddings=vecs, metadatas=metas,  # type: ignore[arg-type]
                             documents=docs, uris=uris)  # type: ignore[arg-type]

    def delete(self, ids: List[str]) -> None:
        with self._lock:
            self._col.delete(ids=ids)

    def count(self) -> int:
        return self._col.count()

    def get(self, ids: Optional[List[str]], where: Any, where_document: Any, limit: Optional[int],
            include: List[str]) -> Dict[str, Any]:
        """The matches in this shard's insertion order, each with its sequence number."""
        inc = sorted(set(include) | {"metadatas"})
        res = self._col.get(ids=ids, where=where, where_document=where_document, limit=limit, include=inc)  # type: ignore[arg-type]
        split = [_split_seq(m) for m in (res["metadatas"] or [])]
        emb = res["embeddings"]
        return {
            "ids": res["ids"],
            "seqs": [s for s, _ in split],
            "metadatas": [m for _, m in split],
            "documents": res["documents"],
            "uris": res["uris"],
            "embeddings": list(emb) if emb is not None and "embeddings" in include else None,
        }

    def query(self, qvecs: npt.NDArray[np.float32], k: int, where: Any, where_document: Any,
              ids: Optional[List[str]], include: List[str]) -> Dict[str, Any]:
        """Each query's k nearest rows of this shard, with distances and sequence numbers."""
        inc = sorted(set(include) | {"metadatas", "distances"})
        res = self._col.query(query_embeddings=qvecs, n_results=k, where=where, where_document=where_document,
                              ids=ids, include=inc)  # type: ignore[arg-type]
        split = [[_split_seq(m) for m in row] for row in (res["metadatas"] or [])]
        emb = res["embeddings"]
        return {
            "ids": res["ids"],
            "distances": res["distances"],
            "seqs": [[s for s, _ in row] for row in split],
            "metadatas": [[m for _, m in row] for row in split],
            "documents": res["documents"],
            "uris": res["uris"],
            "embeddings": [list(e) for e in emb] if emb is not None and "embeddings" in include else None,
        }

    def modify(self, metadata: Meta, hnsw: Optional[Dict[str, Any]]) -> None:
        with self._lock:
            self._col.modify(metadata=metadata, configuration={"hnsw": hnsw} if hnsw else None)

    def drop(self) -> None:
        """Closes the collection and removes the shard's directory (the collection is deleted)."""
        self._client.close()
        if not owned_shard_dir(self._dir):  # a tampered catalog or a link must not aim the removal elsewhere
            raise errors.InternalError("refusing to remove %r: not a shard directory of pysvdb.ray" % self._dir)
        shutil.rmtree(self._dir, ignore_errors=True)
        for staging in (self._dir + ".incoming", self._dir + ".old"):
            _remove_staging(staging)
        for parent in (os.path.dirname(self._dir), os.path.dirname(os.path.dirname(self._dir))):
            try:  # the shard's and the collection's directories, once their last replica is gone
                os.rmdir(parent)
            except OSError:
                break

    def pause(self, seconds: float) -> None:
        """Blocks the actor (tests: a shard that does not answer)."""
        time.sleep(seconds)


class Catalog:
    """The collections of one RayClient path: one row per collection in an svdb
    collection of its own, ``<path>/catalog`` (on the head node; see
    RayClient). The engine makes every change durable before the call returns,
    so a restarted actor finds the records as they were acknowledged.

    Insertion numbers are reserved in leases of :data:`SEQ_LEASE`: a record
    stores the ceiling of what may have been handed out, and a restarted
    catalog starts from that ceiling, so numbers only grow (a restart leaves a
    gap) and most reservations write nothing.
    """

    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self._db = SvDBPython(os.path.join(path, "catalog"), dim=1, durability="sync", index="flat", mode="exclusive")
        ids, texts = self._db.select(metadata=True)
        self._recs: List[Record] = [_parse_record(self._db.path, i, t) for i, t in zip(ids, texts or [])]
        #: next insertion number per collection id (in memory; the records hold the durable ceilings)
        self._next: Dict[str, int] = {r["id"]: int(r["next_seq"]) for r in self._recs}

    def _save(self, rec: Record, new: bool = False) -> None:
        meta = [{"record": json.dumps(rec, sort_keys=True)}]
        (self._db.add if new else self._db.upsert)([rec["id"]], _ONE, meta)

    def _find(self, name: str) -> Optional[Record]:
        return next((r for r in self._recs if r["name"] == name), None)

    def _by_id(self, cid: str) -> Record:
        for r in self._recs:
            if r["id"] == cid:
                return r
        raise errors.NotFoundError("Collection [%s] does not exist." % cid)

    def ping(self) -> int:
        return time.time_ns()

    def create(self, name: str, shards: int, replicas: int, metadata: Meta, hnsw: Dict[str, Any],
               get_or_create: bool, cid: Optional[str] = None, nodes: Optional[List[str]] = None) -> Record:
        """A new collection's record, with the id ``cid`` that the driver chose:
        Ray retries a call whose actor died before it answered, and the retry of
        a create that was saved then finds its own record instead of failing.
        ``nodes``: the node of each shard of a collection without replicas."""
        old = self._find(name)
        if old is not None:
            if get_or_create or (cid is not None and old["id"] == cid):
                return old
            raise errors.InternalError("Collection [%s] already exists" % name)
        if cid is not None and not _UUID.fullmatch(cid):
            raise errors.InternalError("not a collection id: %r" % (cid,))
        rec: Record = {"id": cid or str(uuid.uuid4()), "name": name, "shards": shards, "replicas": replicas,
                       "metadata": metadata, "hnsw": hnsw, "dim": None, "next_seq": 0}
        if nodes is not None:
            rec["nodes"] = list(nodes)
        self._save(rec, new=True)
        self._recs.append(rec)
        self._next[rec["id"]] = 0
        return rec

    def get(self, name: str) -> Record:
        rec = self._find(name)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % name)
        return rec

    def list(self) -> List[Record]:
        return list(self._recs)

    def record(self, cid: str) -> Record:
        """The record of collection ``cid`` (whatever its name now is)."""
        return self._by_id(cid)

    def delete(self, cid: str) -> bool:
        """Removes collection ``cid``'s record; False when there is none (so
        that Ray's retry of a delete that was done succeeds too)."""
        rec = next((r for r in self._recs if r["id"] == cid), None)
        if rec is None:
            return False
        self._db.delete([rec["id"]])
        self._recs.remove(rec)
        self._next.pop(rec["id"], None)
        return True

    def modify(self, cid: str, name: Optional[str], metadata: Meta, hnsw: Optional[Dict[str, Any]]) -> Record:
        rec = self._by_id(cid)
        if name is not None and name != rec["name"] and self._find(name) is not None:
            raise errors.InternalError("Collection [%s] already exists" % name)
        new = dict(rec)
        if name is not None:
            new["name"] = name
        if metadata is not None:
            new["metadata"] = metadata
        if hnsw:
            new["hnsw"] = {**rec["hnsw"], **hnsw}
        self._save(new)  # durable first; memory changes only once it is
        rec.update(new)
        return rec

    def set_dim(self, cid: str, dim: int) -> int:
        """Fixes the collection's dimension at its first write; returns the fixed one."""
        rec = self._by_id(cid)
        if rec["dim"] is None:
            self._save({**rec, "dim": dim})
            rec["dim"] = dim
        return int(rec["dim"])

    def next_seqs(self, cid: str, n: int) -> int:
        """Reserves n insertion numbers; returns the first. Numbers up to the
        record's durable ceiling are handed out without a write."""
        rec = self._by_id(cid)
        first = self._next[cid]
        if first + n > int(rec["next_seq"]):
            ceiling = first + n + SEQ_LEASE
            self._save({**rec, "next_seq": ceiling})
            rec["next_seq"] = ceiling
        self._next[cid] = first + n
        return first

    def close(self) -> None:
        self._db.close()


#: How many insertion numbers one durable write of the catalog reserves.
SEQ_LEASE = 1 << 20
_ONE = np.ones((1, 1), dtype=np.float32)


def _parse_record(where: str, rid: str, text: Optional[str]) -> Record:
    """A catalog row's record, checked: a damaged or tampered catalog is an
    error naming it, never an id that would make a path outside the store."""
    try:
        r = json.loads(json.loads(text or "null")["record"])
        ok = (
            isinstance(r, dict)
            and r.get("id") == rid and isinstance(rid, str) and _UUID.fullmatch(rid)
            and isinstance(r.get("name"), str)
            and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool) and r[k] >= 1
                    for k in ("shards", "replicas"))
            and isinstance(r.get("next_seq"), int) and not isinstance(r["next_seq"], bool) and r["next_seq"] >= 0
            and (r.get("dim") is None or (isinstance(r["dim"], int) and r["dim"] >= 1))
            and isinstance(r.get("hnsw"), dict)
            and (r.get("metadata") is None or isinstance(r["metadata"], dict))
            and (r.get("nodes") is None or (isinstance(r["nodes"], list) and len(r["nodes"]) == r["shards"]
                                            and all(isinstance(n, str) for n in r["nodes"])))
        )
        if not ok:
            raise ValueError("a bad collection record: %.200r" % (r,))
    except (ValueError, KeyError, TypeError) as e:
        raise errors.InternalError("the catalog %s is damaged (row %.80r): %s" % (where, rid, e)) from None
    return cast(Record, r)


def shard_of(id_: str, shards: int) -> int:
    """The shard holding ``id_``: crc32 of its UTF-8 bytes, the same in every process."""
    import zlib

    return zlib.crc32(id_.encode("utf-8")) % shards


def group_by_shard(ids: Sequence[str], shards: int) -> Dict[int, List[int]]:
    """Positions of ``ids`` per shard, in the given order."""
    out: Dict[int, List[int]] = {}
    for i, id_ in enumerate(ids):
        out.setdefault(shard_of(id_, shards), []).append(i)
    return out
