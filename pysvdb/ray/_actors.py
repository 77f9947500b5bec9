"""The classes behind pysvdb.ray's actors: ``Shard`` owns one pysvdb Chroma
collection on its node's disk; ``Catalog`` keeps the collections' records in a
JSON file. Both are plain classes, made actors by :mod:`._client`, so that
this module imports without ray (workers import it by name)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, cast

import numpy as np
import numpy.typing as npt

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


class Shard:
    """One shard: the only writer of the collection in ``directory``.

    Reopened from disk by its __init__ when Ray restarts the actor; every
    method returns after pysvdb has made the write durable in its log.
    """

    def __init__(self, directory: str, metadata: Meta, hnsw: Dict[str, Any], peers: Sequence[str] = (),
                 namespace: str = "pysvdb", sync_timeout: float = 30.0) -> None:
        os.makedirs(directory, exist_ok=True)
        self._dir = directory
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
                rows = cast(Dict[str, Any], ray.get(peer.export.remote(), timeout=timeout))
            except Exception:  # that peer is down too: try the next
                continue
            self._rebuild(rows)
            return True
        return False  # no live peer: serve the local files

    def export(self) -> Dict[str, Any]:
        """Every row, with its hidden insertion number, in insertion order (a peer's catch-up)."""
        res = self._col.get(include=["embeddings", "metadatas", "documents", "uris"])
        return {"ids": res["ids"], "embeddings": res["embeddings"], "metadatas": res["metadatas"],
                "documents": res["documents"], "uris": res["uris"],
                # modify() may have changed them since this actor was created with its arguments
                "metadata": self._col.metadata, "hnsw": dict(self._col.configuration_json["hnsw"] or {})}

    def _rebuild(self, rows: Dict[str, Any]) -> None:
        """Replaces this replica's rows by ``rows``, added in insertion-number order."""
        self._metadata, self._hnsw = rows["metadata"], rows["hnsw"]
        self._client.delete_collection("shard")
        self._col = self._open()
        order = sorted(range(len(rows["ids"])), key=lambda i: _split_seq(rows["metadatas"][i])[0])
        for s in range(0, len(order), 5000):
            part = order[s:s + 5000]
            self._col.add(ids=[rows["ids"][i] for i in part], embeddings=np.asarray(rows["embeddings"])[part],
                          metadatas=[rows["metadatas"][i] for i in part],
                          documents=[rows["documents"][i] for i in part], uris=[rows["uris"][i] for i in part])

    def node(self) -> str:
        """The id of the Ray node this replica runs on."""
        import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]

        return str(ray.get_runtime_context().get_node_id())

    def add(self, ids: List[str], vecs: npt.NDArray[np.float32], metas: Optional[List[Meta]],
            docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]], seqs: List[int]) -> None:
        m = [_with_seq(metas[i] if metas else None, s) for i, s in enumerate(seqs)]
        self._col.add(ids=ids, embeddings=vecs, metadatas=m, documents=docs, uris=uris)  # type: ignore[arg-type]

    def upsert(self, ids: List[str], vecs: npt.NDArray[np.float32], metas: Optional[List[Meta]],
               docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]], seqs: List[int]) -> None:
        # Existing rows keep their number (a single collection keeps their place); new rows take theirs.
        existing = set(self._col.get(ids=ids, include=[])["ids"])
        m: List[Meta] = []
        for i, (id_, s) in enumerate(zip(ids, seqs)):
            given = metas[i] if metas else None
            m.append(given if id_ in existing else _with_seq(given, s))
        self._col.upsert(ids=ids, embeddings=vecs, metadatas=m, documents=docs, uris=uris)  # type: ignore[arg-type]

    def update(self, ids: List[str], vecs: Optional[npt.NDArray[np.float32]], metas: Optional[List[Meta]],
               docs: Optional[List[Optional[str]]], uris: Optional[List[Optional[str]]]) -> None:
        self._col.update(ids=ids, embeddings=vecs, metadatas=metas, documents=docs, uris=uris)  # type: ignore[arg-type]

    def delete(self, ids: List[str]) -> None:
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
        self._col.modify(metadata=metadata, configuration={"hnsw": hnsw} if hnsw else None)

    def drop(self) -> None:
        """Closes the collection and removes the shard's directory (the collection is deleted)."""
        self._client.close()
        if not owned_shard_dir(self._dir):  # a tampered catalog or a link must not aim the removal elsewhere
            raise errors.InternalError("refusing to remove %r: not a shard directory of pysvdb.ray" % self._dir)
        shutil.rmtree(self._dir, ignore_errors=True)
        for parent in (os.path.dirname(self._dir), os.path.dirname(os.path.dirname(self._dir))):
            try:  # the shard's and the collection's directories, once their last replica is gone
                os.rmdir(parent)
            except OSError:
                break

    def pause(self, seconds: float) -> None:
        """Blocks the actor (tests: a shard that does not answer)."""
        time.sleep(seconds)


class Catalog:
    """The collections of one RayClient path, in ``<path>/catalog.json``.

    Every change is written to a temporary file, fsynced and renamed over the
    old one before the call returns, so a restarted actor finds it.
    """

    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self._file = os.path.join(path, "catalog.json")
        self._recs: List[Record] = []
        if os.path.exists(self._file):
            self._recs = _load_records(self._file)

    def _save(self) -> None:
        d = os.path.dirname(self._file)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".catalog-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "collections": self._recs}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._file)
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

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
               get_or_create: bool) -> Record:
        old = self._find(name)
        if old is not None:
            if get_or_create:
                return old
            raise errors.InternalError("Collection [%s] already exists" % name)
        rec: Record = {"id": str(uuid.uuid4()), "name": name, "shards": shards, "replicas": replicas,
                       "metadata": metadata, "hnsw": hnsw, "dim": None, "next_seq": 0}
        self._recs.append(rec)
        self._save()
        return rec

    def get(self, name: str) -> Record:
        rec = self._find(name)
        if rec is None:
            raise errors.NotFoundError("Collection [%s] does not exist" % name)
        return rec

    def list(self) -> List[Record]:
        return list(self._recs)

    def delete(self, name: str) -> Record:
        rec = self.get(name)
        self._recs.remove(rec)
        self._save()
        return rec

    def modify(self, cid: str, name: Optional[str], metadata: Meta, hnsw: Optional[Dict[str, Any]]) -> Record:
        rec = self._by_id(cid)
        if name is not None and name != rec["name"] and self._find(name) is not None:
            raise errors.InternalError("Collection [%s] already exists" % name)
        if name is not None:
            rec["name"] = name
        if metadata is not None:
            rec["metadata"] = metadata
        if hnsw:
            rec["hnsw"] = {**rec["hnsw"], **hnsw}
        self._save()
        return rec

    def set_dim(self, cid: str, dim: int) -> int:
        """Fixes the collection's dimension at its first write; returns the fixed one."""
        rec = self._by_id(cid)
        if rec["dim"] is None:
            rec["dim"] = dim
            self._save()
        return int(rec["dim"])

    def next_seqs(self, cid: str, n: int) -> int:
        """Reserves n insertion numbers; returns the first (durable before it is handed out)."""
        rec = self._by_id(cid)
        first = int(rec["next_seq"])
        rec["next_seq"] = first + n
        self._save()
        return first


def _load_records(path: str) -> List[Record]:
    """The catalog file's records, each checked: a damaged or tampered file is
    an error naming it, never an id that would make a path outside the store."""
    try:
        with open(path, encoding="utf-8") as f:
            recs = json.load(f)["collections"]
        if not isinstance(recs, list):
            raise ValueError("collections is not a list")
        for r in recs:
            ok = (
                isinstance(r, dict)
                and isinstance(r.get("id"), str) and _UUID.fullmatch(r["id"])
                and isinstance(r.get("name"), str)
                and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool) and r[k] >= 1 for k in ("shards", "replicas"))
                and isinstance(r.get("next_seq"), int) and r["next_seq"] >= 0
                and (r.get("dim") is None or (isinstance(r["dim"], int) and r["dim"] >= 1))
                and isinstance(r.get("hnsw"), dict)
                and (r.get("metadata") is None or isinstance(r["metadata"], dict))
            )
            if not ok:
                raise ValueError("a bad collection record: %.200r" % (r,))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise errors.InternalError("the catalog %s is damaged: %s" % (path, e)) from None
    return cast(List[Record], recs)


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
