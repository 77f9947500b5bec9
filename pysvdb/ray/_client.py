"""RayClient and RayCollection: pysvdb's Chroma client over shard actors.

The driver validates every call as pysvdb's Chroma client does, routes rows
to shards by a crc32 of their id, calls the involved shards in parallel (one
call each) and merges their answers. Nothing reaches a shard before the whole
batch has passed validation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, cast

import numpy as np
import numpy.typing as npt

import ray  # type: ignore[import-untyped, import-not-found, unused-ignore]
from ray.util.placement_group import PlacementGroup  # type: ignore[import-untyped, import-not-found, unused-ignore]
from ray.util.scheduling_strategies import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from ..chroma import errors
from ..chroma import rows as rows_
from ..chroma.embedding import DefaultEmbeddingFunction, embed
from ..chroma.types import (
    CollectionMetadata,
    CreateCollectionConfiguration,
    DeleteResult,
    EmbeddingFunctionLike,
    GetResult,
    Include,
    QueryResult,
)
from ..chroma.validation import (
    check_batch_size,
    check_finite,
    check_ids_storable,
    check_lengths,
    check_metadata_storable,
    hnsw_from_create_args,
    normalize_embeddings,
    normalize_metadatas,
    one_or_many,
    unsigned,
    validate_collection_metadata,
    validate_collection_name,
    validate_delete,
    validate_documents,
    validate_ids,
    validate_include,
    validate_metadata,
    validate_metadatas,
    validate_n_results,
    validate_query_ids,
    validate_where,
    validate_where_document,
)
from ._actors import (
    LIVENESS_POLL_S,
    REPLICA_GROUP,
    SEQ_KEY,
    Catalog,
    Record,
    Shard,
    ShardUnavailableError,
    _split_seq,
    actor_alive,
    group_by_shard,
)

__all__ = ["RayClient", "RayCollection", "ShardUnavailableError"]

NAMESPACE = "pysvdb"
#: Reads and writes are idempotent (add ignores existing ids; upsert, update and
#: delete give the same rows when repeated), so Ray may retry any of them on a
#: restarted actor.
_TASK_RETRIES = 5
#: Ray's own threshold (max_direct_call_object_size): larger arguments go through the object store.
_PUT_BYTES = 100 * 1024
#: What Ray raises for a call to an actor that is gone: it died for good, or it
#: is bound to a node that is gone (a shard without replicas).
_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError)


class _RestartableInGroupNote(logging.Filter):
    """Drops Ray's warning, printed for each replica actor, that a restartable
    detached actor in a placement group is killed when the group is removed:
    pysvdb.ray removes a replica's group only when it deletes the collection,
    after killing the actors on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "restartable detached actor with a placement group" not in record.getMessage()


logging.getLogger("ray.actor").addFilter(_RestartableInGroupNote())


def _head_node_strategy() -> Any:
    """The catalog's place: the head node, whose disk then holds every
    collection's record. Ray's head (its GCS) is the cluster's one node that
    cannot go without taking the cluster with it, so the catalog adds no new
    single point of failure; a cluster restarted on the same head finds it.
    Without a head node marker (an unusual Ray), the driver's node, softly."""
    for n in ray.nodes():  # type: ignore[no-untyped-call, unused-ignore]
        if n.get("Alive") and "node:__internal_head__" in (n.get("Resources") or {}):
            return NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)


def _path_key(path: str) -> str:
    return hashlib.blake2b(path.encode("utf-8"), digest_size=8).hexdigest()


def _gather(calls: Sequence[Tuple[str, Any]], timeout: float) -> List[Any]:
    """Results of ``(name, object_ref)`` calls, in order; a call that did not
    finish in ``timeout`` seconds or whose actor died raises ShardUnavailableError
    naming it, and an error raised inside the actor is re-raised as itself."""
    refs = [r for _, r in calls]
    if not refs:
        return []
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if pending:
        names = [n for n, r in calls if r in pending]
        raise ShardUnavailableError("%s did not answer within %g s" % (", ".join(names), timeout))
    out = []
    for name, ref in calls:
        try:
            out.append(ray.get(ref))
        except _GONE as e:
            raise ShardUnavailableError("%s is unavailable: %s" % (name, str(e).splitlines()[0])) from None
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
    return out


def _no_seq_key(metas: Optional[List[Any]]) -> None:
    for m in metas or []:
        if m and SEQ_KEY in m:
            raise ValueError("Expected metadata to not contain the key %s, reserved by pysvdb.ray" % SEQ_KEY)


class _Records:
    """One add/upsert/update call's records, normalized and checked as pysvdb's Collection does."""

    def __init__(self, ids: object, embeddings: object, metadatas: object, documents: object,
                 images: object, uris: object) -> None:
        self.vecs = normalize_embeddings(embeddings)
        id_list = one_or_many(ids)
        self.metas = normalize_metadatas(one_or_many(metadatas))
        self.docs = one_or_many(documents)
        self.uris = one_or_many(uris)
        if images is not None:
            raise ValueError("RayClient collections do not store images: pass embeddings")
        fields = [("ids", id_list), ("embeddings", self.vecs), ("metadatas", self.metas), ("documents", self.docs),
                  ("uris", self.uris)]
        check_lengths([(k, len(v)) for k, v in fields if v is not None])
        if self.docs is not None:
            validate_documents(self.docs, nullable=self.vecs is not None)
        self.ids: List[str] = validate_ids(id_list)
        if self.metas is not None:
            validate_metadatas(self.metas)
            _no_seq_key(self.metas)

    def part(self, pos: List[int]) -> Tuple[List[str], Optional[npt.NDArray[np.float32]], Optional[List[Any]],
                                            Optional[List[Any]], Optional[List[Any]]]:
        def pick(xs: Optional[List[Any]]) -> Optional[List[Any]]:
            return [xs[i] for i in pos] if xs is not None else None

        return ([self.ids[i] for i in pos], self.vecs[pos] if self.vecs is not None else None,
                pick(self.metas), pick(self.docs), pick(self.uris))


class RayCollection:
    """A sharded collection: the methods and results of pysvdb's Chroma ``Collection``.

    Obtained from a :class:`RayClient`. Picklable: Ray tasks (``add_dataset``,
    ``query_dataset``) use it as the driver does.
    """

    def __init__(self, client: "RayClient", rec: Record, embedding_function: Optional[EmbeddingFunctionLike]) -> None:
        self._client = client
        self._rec = rec
        self._ef = embedding_function
        #: _replicas[k][r]: replica r of shard k (one actor each).
        self._replicas = [[client._shard(rec, k, r) for r in range(int(rec["replicas"]))]
                          for k in range(int(rec["shards"]))]
        self._shards = [reps[0] for reps in self._replicas]
        self._turn = 0  # rotates the replica that answers reads
        #: (shard, replica) -> (when read, whether Ray reported it live): the primary's choice
        self._live: Dict[Tuple[int, int], Tuple[float, bool]] = {}

    # ------------------------------------------------------------ properties

    @property
    def id(self) -> str:
        return str(self._rec["id"])

    @property
    def name(self) -> str:
        return str(self._rec["name"])

    @property
    def metadata(self) -> Optional[CollectionMetadata]:
        m = self._rec["metadata"]
        return dict(m) if m is not None else None

    @property
    def shards(self) -> int:
        return len(self._shards)

    @property
    def replicas(self) -> int:
        return int(self._rec["replicas"])

    def __repr__(self) -> str:
        return "RayCollection(name=%s, shards=%d)" % (self.name, self.shards)

    # ------------------------------------------------------------ internals

    def _name(self, k: int, r: int = 0) -> str:
        rep = " replica %d" % r if self.replicas > 1 else ""
        return "shard %d%s of collection %r (actor %s)" % (k, rep, self.name, self._client._shard_name(self._rec, k, r))

    def _write(self, calls: Sequence[Tuple[int, str, Tuple[Any, ...]]]) -> None:
        """Runs each (shard, method, args) on its shard, in parallel across shards,
        and returns once every *live* replica of each involved shard has it
        (acknowledged). With replicas, the call goes to the shard's primary, its
        lowest-numbered live replica, which applies it and passes it on to the
        others (Shard.lead): every replica applies a shard's writes in the
        primary's order, whichever drivers sent them. A primary that dies or is
        not live is replaced by the next replica and the write sent again
        (repeating a write is harmless). An error raised inside a shard (bad
        input) is raised as itself."""
        n = self.replicas
        timeout = self._client._timeout
        pending: Dict[Any, int] = {}  # ref -> index in calls
        used: List[List[int]] = [[] for _ in calls]  # the replicas that led each call, in turn

        def submit(i: int) -> None:
            k, m, a = calls[i]
            if n == 1:
                used[i].append(0)
                pending[getattr(self._replicas[k][0], m).remote(*a)] = i
                return
            r = self._lead(k, used[i])
            used[i].append(r)
            backups = [self._client._shard_name(self._rec, k, b) for b in range(n) if b != r]
            # No Ray retry: a lead queued on a restarting replica must not run after the next one's.
            call = self._replicas[k][r].lead.options(max_task_retries=0)
            # The primary waits for its backups a little less than the driver waits for it,
            # so that a backup that does not answer is the one named.
            pending[call.remote(m, a, backups, NAMESPACE, timeout * 0.9)] = i

        def fail_over(i: int, why: str) -> None:
            k = calls[i][0]
            self._live[(k, used[i][-1])] = (time.monotonic(), False)
            if len(used[i]) >= n:
                raise ShardUnavailableError(why)
            submit(i)

        for i in range(len(calls)):
            submit(i)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = [self._name(calls[i][0], used[i][-1]) for i in pending.values()]
                raise ShardUnavailableError("%s did not answer within %g s" % (", ".join(names), timeout))
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=min(left, LIVENESS_POLL_S))
            for ref in done:
                i = pending.pop(ref)
                try:
                    ray.get(ref)
                except _GONE as e:  # dead for good, died in the call, or its node is gone
                    why = "%s is unavailable: %s" % (self._name(calls[i][0], used[i][-1]), str(e).splitlines()[0])
                    if n == 1:
                        raise ShardUnavailableError(why) from None
                    fail_over(i, why)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
            if n > 1:
                for ref, i in list(pending.items()):
                    k, r = calls[i][0], used[i][-1]
                    if not actor_alive(self._replicas[k][r]):
                        del pending[ref]
                        try:
                            ray.cancel(ref)
                        except Exception:  # noqa: BLE001 - already running or gone: nothing to cancel
                            pass
                        fail_over(i, "%s is not live and no other replica of shard %d answered" % (self._name(k, r), k))

    def _lead(self, k: int, skip: Sequence[int] = ()) -> int:
        """The primary of shard k: its lowest-numbered replica (not in ``skip``)
        that Ray reports live, read at most every LIVENESS_POLL_S per replica so
        that drivers agree on it within that time; else the lowest not skipped."""
        now = time.monotonic()
        left = [r for r in range(self.replicas) if r not in skip] or [0]
        for r in left:
            t, alive = self._live.get((k, r), (-1e9, True))
            if now - t > LIVENESS_POLL_S:
                alive = actor_alive(self._replicas[k][r])
                self._live[(k, r)] = (now, alive)
            if alive:
                return r
        return left[0]

    def _read(self, calls: Sequence[Tuple[int, str, Tuple[Any, ...]]]) -> List[Any]:
        """Runs each (shard, method, args) on one replica of the shard, in
        parallel, the replicas taken in turn. A replica that fails is replaced
        by the next one; one that is not live while its answer is awaited (Ray
        is restarting it, or cannot place it) gets the next one asked beside it,
        and the first answer counts. ShardUnavailableError when every replica
        of a shard failed, or when ``timeout`` passed."""
        n = self.replicas
        self._turn += 1

        def submit(k: int, r: int, m: str, a: Tuple[Any, ...]) -> Any:
            # No retry on a dead replica when another can answer: fail fast, ask the next.
            method = getattr(self._replicas[k][r], m)
            return (method.options(max_task_retries=0) if n > 1 else method).remote(*a)

        out: List[Any] = [None] * len(calls)
        asked = [0] * len(calls)  # replicas asked so far, per call: (first + j) % n for j < asked
        first = [(self._turn + k) % n for k, _, _ in calls]
        pending: Dict[Any, Tuple[int, int]] = {}  # ref -> (call, replica)
        errors_: Dict[int, str] = {}

        def ask_next(i: int) -> bool:
            if asked[i] >= n:
                return False
            k, m, a = calls[i]
            r = (first[i] + asked[i]) % n
            asked[i] += 1
            pending[submit(k, r, m, a)] = (i, r)
            return True

        for i in range(len(calls)):
            ask_next(i)
        deadline = time.monotonic() + self._client._timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = [self._name(calls[i][0], r) for i, r in pending.values()]
                raise ShardUnavailableError("%s did not answer within %g s" % (", ".join(names), self._client._timeout))
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=min(left, LIVENESS_POLL_S))
            for ref in done:
                i, r = pending.pop(ref, (-1, -1))
                if i < 0:
                    continue
                try:
                    out[i] = _gather([(self._name(calls[i][0], r), ref)], left)[0]
                except ShardUnavailableError as e:
                    errors_[i] = str(e)
                    ask_next(i)
                    if not any(j == i for j, _ in pending.values()):
                        raise ShardUnavailableError(errors_[i]) from None
                    continue
                for other in [x for x, (j, _) in pending.items() if j == i]:  # answered: drop the spares
                    del pending[other]
            if n > 1:
                for ref, (i, r) in list(pending.items()):
                    if not actor_alive(self._replicas[calls[i][0]][r]):
                        ask_next(i)
        return out

    def _dim(self) -> Optional[int]:
        if self._rec["dim"] is None:
            self._rec = self._client._catalog_call("record", self.id)  # by id: another driver may rename it
        d = self._rec["dim"]
        return int(d) if d is not None else None

    def _check_vectors(self, vecs: npt.NDArray[np.float32]) -> None:
        dim = self._dim()
        if dim is None:  # the first write fixes the dimension, for every shard and driver
            dim = int(self._client._catalog_call("set_dim", self.id, int(vecs.shape[1])))
            self._rec["dim"] = dim
        if vecs.shape[1] != dim:
            raise errors.InvalidArgumentError(
                "Collection expecting embedding with dimension of %d, got %d" % (dim, vecs.shape[1])
            )
        check_finite(vecs)

    def _embed_docs(self, docs: Optional[List[Any]], is_query: bool = False) -> npt.NDArray[np.float32]:
        if docs is None:
            raise ValueError("Exactly one of documents, images, uris must be provided")
        return embed(self._ef, docs, is_query)

    def _seqs(self, n: int) -> List[int]:
        first = int(self._client._catalog_call("next_seqs", self.id, n))
        return list(range(first, first + n))

    # ------------------------------------------------------------ writes

    def add(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
            images: Any = None, uris: Any = None) -> None:
        """Adds records; an id that already exists is ignored. Acknowledged (returns)
        once every involved shard has the rows in its log."""
        rs = _Records(ids, embeddings, metadatas, documents, images, uris)
        if rs.vecs is None:
            rs.vecs = self._embed_docs(rs.docs)
        check_batch_size(len(rs.ids))
        check_ids_storable(rs.ids)
        if rs.metas is not None:
            check_metadata_storable(rs.metas, allow_none_values=False)
        self._check_vectors(rs.vecs)
        seqs = self._seqs(len(rs.ids))
        calls: List[Tuple[int, str, Tuple[Any, ...]]] = []
        for k, pos in group_by_shard(rs.ids, self.shards).items():
            calls.append((k, "add", (*rs.part(pos), [seqs[i] for i in pos])))
        self._write(calls)

    def _merge_write(self, op: str, ids: Any, embeddings: Any, metadatas: Any, documents: Any,
                     images: Any, uris: Any) -> None:
        rs = _Records(ids, embeddings, metadatas, documents, images, uris)
        if rs.vecs is None and (op == "upsert" or rs.docs is not None):
            rs.vecs = self._embed_docs(rs.docs)
        check_batch_size(len(rs.ids))
        check_ids_storable(rs.ids)
        if rs.metas is not None:
            check_metadata_storable(rs.metas, allow_none_values=True)
        if rs.vecs is not None:
            self._check_vectors(rs.vecs)
        seqs = self._seqs(len(rs.ids)) if op == "upsert" else []
        calls: List[Tuple[int, str, Tuple[Any, ...]]] = []
        for k, pos in group_by_shard(rs.ids, self.shards).items():
            if op == "upsert":
                calls.append((k, "upsert", (*rs.part(pos), [seqs[i] for i in pos])))
            else:
                calls.append((k, "update", rs.part(pos)))
        self._write(calls)

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               images: Any = None, uris: Any = None) -> None:
        """Updates existing records (metadata merged key by key); missing ids are ignored."""
        self._merge_write("update", ids, embeddings, metadatas, documents, images, uris)

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               images: Any = None, uris: Any = None) -> None:
        """Adds new ids and updates existing ones (metadata merged, as :meth:`update`)."""
        self._merge_write("upsert", ids, embeddings, metadatas, documents, images, uris)

    def delete(self, ids: Any = None, where: Any = None, where_document: Any = None,
               limit: Optional[int] = None) -> DeleteResult:
        """Deletes the records matching ``ids`` and the filters (ANDed); with
        ``limit``, the first ``limit`` matches in insertion order."""
        id_list = validate_delete(ids, where, where_document, limit)
        if where is None and where_document is None:
            gone = cast(List[str], id_list)
        else:
            gone = self.get(ids=id_list, where=where, where_document=where_document, limit=limit, include=[])["ids"]
        self._write([(k, "delete", ([gone[i] for i in pos],)) for k, pos in group_by_shard(gone, self.shards).items()])
        return {"deleted": len(gone)}

    # ------------------------------------------------------------ reads

    def count(self) -> int:
        """The number of records: the sum of the shards' counts."""
        return sum(self._read([(k, "count", ()) for k in range(self.shards)]))

    def get(self, ids: Any = None, where: Any = None, limit: Optional[int] = None, offset: Optional[int] = None,
            where_document: Any = None,
            include: Include = ["metadatas", "documents"]) -> GetResult:  # noqa: B006 - never mutated
        """Records matching ``ids`` and the filters, in insertion order across
        shards (the single collection's order), paged by ``offset``/``limit``."""
        id_list = one_or_many(ids)
        if id_list is not None:
            validate_ids(id_list)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include, ("distances",))
        if "data" in inc:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        # Each shard's first off+lim matches hold the global page: merge them by insertion number.
        fetch = None if lim is None else off + lim
        calls: List[Tuple[int, str, Tuple[Any, ...]]]
        if id_list is not None:
            calls = [(k, "get", ([id_list[i] for i in pos], where, where_document, fetch, inc))
                     for k, pos in group_by_shard(id_list, self.shards).items()]
        else:
            calls = [(k, "get", (None, where, where_document, fetch, inc)) for k in range(self.shards)]
        parts = self._read(calls)
        order = sorted((seq, p, j) for p, part in enumerate(parts) for j, seq in enumerate(part["seqs"]))
        order = order[off:off + lim] if lim is not None else order[off:]

        def column(key: str) -> List[Any]:
            return [parts[p][key][j] for _, p, j in order]

        return {
            "ids": column("ids"),
            "embeddings": rows_.as_array(column("embeddings"), self._dim() or 0) if "embeddings" in inc else None,
            "documents": column("documents") if "documents" in inc else None,
            "uris": column("uris") if "uris" in inc else None,
            "data": None,
            "metadatas": column("metadatas") if "metadatas" in inc else None,
            "included": cast(Include, inc),
        }

    def peek(self, limit: int = 10) -> GetResult:
        """The first ``limit`` records, with their embeddings."""
        return self.get(limit=limit, include=["metadatas", "documents", "embeddings"])

    def query(self, query_embeddings: Any = None, query_texts: Any = None, query_images: Any = None,
              query_uris: Any = None, ids: Any = None, n_results: int = 10, where: Any = None,
              where_document: Any = None,
              include: Include = ["metadatas", "documents", "distances"]) -> QueryResult:  # noqa: B006
        """The ``n_results`` nearest records to each query, nearest first: every
        shard answers with its own ``n_results`` nearest (filters applied in the
        shard), merged by distance, equal distances in insertion order."""
        qvecs = normalize_embeddings(query_embeddings)
        texts = one_or_many(query_texts)
        if query_images is not None or query_uris is not None:
            raise ValueError("RayClient collections take query_embeddings or query_texts, not images or uris")
        present = [(k, len(v)) for k, v in (("embeddings", qvecs), ("documents", texts)) if v is not None]
        if not present:
            raise ValueError("At least one of one of embeddings, documents, images, uris must be provided")
        check_lengths(present)
        if texts is not None:
            validate_documents(texts, nullable=qvecs is not None)
        filter_ids = validate_query_ids(ids)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include)
        if "data" in inc:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        k = validate_n_results(n_results)
        if qvecs is None:
            qvecs = self._embed_docs(texts, is_query=True)
        nq = int(qvecs.shape[0])
        dim = self._dim()
        if dim is not None:
            if qvecs.shape[1] != dim:
                raise errors.InvalidArgumentError(
                    "Collection expecting embedding with dimension of %d, got %d" % (dim, qvecs.shape[1])
                )
            if not np.isfinite(qvecs).all():
                raise errors.InvalidArgumentError("Query embeddings must not contain NaN or Infinity values")
        # A large query matrix goes to the object store once, not once per shard (Ray
        # would store a copy for each call); a small one travels inside the calls.
        qarg: Any = ray.put(qvecs) if qvecs.nbytes > _PUT_BYTES and self.shards > 1 else qvecs
        if dim is None:  # never written: nothing matches
            parts: List[Any] = []
        elif filter_ids is not None:
            allowed = list(dict.fromkeys(filter_ids))
            parts = self._read([(s, "query", (qarg, k, where, where_document, [allowed[i] for i in pos], inc))
                                for s, pos in group_by_shard(allowed, self.shards).items()])
        else:
            parts = self._read([(s, "query", (qarg, k, where, where_document, None, inc)) for s in range(self.shards)])
        merged = []
        for q in range(nq):
            cands = sorted((d, part["seqs"][q][j], p, j) for p, part in enumerate(parts)
                           for j, d in enumerate(part["distances"][q]))
            merged.append(cands[:k])

        def column(key: str) -> List[List[Any]]:
            return [[parts[p][key][q][j] for _, _, p, j in row] for q, row in enumerate(merged)]

        return {
            "ids": column("ids") if parts else [[] for _ in range(nq)],
            "embeddings": ([rows_.as_array(r, dim or 0) for r in column("embeddings")] if parts
                           else [rows_.as_array([], 0) for _ in range(nq)]) if "embeddings" in inc else None,
            "documents": (column("documents") if parts else [[] for _ in range(nq)]) if "documents" in inc else None,
            "uris": (column("uris") if parts else [[] for _ in range(nq)]) if "uris" in inc else None,
            "data": None,
            "metadatas": (column("metadatas") if parts else [[] for _ in range(nq)]) if "metadatas" in inc else None,
            "distances": (column("distances") if parts else [[] for _ in range(nq)]) if "distances" in inc else None,
            "included": cast(Include, inc),
        }

    # ------------------------------------------------------------ collection changes

    def modify(self, name: Optional[str] = None, metadata: Optional[CollectionMetadata] = None,
               configuration: Optional[CreateCollectionConfiguration] = None) -> None:
        """Renames the collection, replaces its metadata, or changes the updatable
        HNSW settings; the shards are changed first (each validates), then the catalog."""
        if metadata is not None:
            validate_metadata(metadata)
            if "hnsw:space" in metadata:
                raise ValueError(
                    "Changing the distance function of a collection once it is created is not supported currently."
                )
            validate_collection_metadata(metadata)
        if name is not None:
            validate_collection_name(name, "new_name")
        hnsw: Optional[Dict[str, Any]] = None
        if configuration is not None:
            extra = set(configuration) - {"hnsw"}
            if extra:
                raise errors.InvalidArgumentError("RayClient collections can modify only `hnsw`, not %s"
                                                  % ", ".join(sorted(extra)))
            hnsw = dict(cast(Dict[str, Any], configuration.get("hnsw") or {}))
        if metadata is not None or hnsw:
            self._write([(k, "modify", (metadata, hnsw)) for k in range(self.shards)])
        self._rec = self._client._catalog_call("modify", self.id, name, metadata, hnsw)

    # ------------------------------------------------------------ not supported (docs/ray.md)

    def _unsupported(self, what: str, instead: str) -> NotImplementedError:
        return NotImplementedError("%s is not supported by RayClient collections; %s" % (what, instead))

    def fork(self, new_name: str) -> "RayCollection":
        raise self._unsupported("fork", "use RayClient.copy_collection")

    def search(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("search", "use query")

    def get_arrow(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("get_arrow", "use get")

    def to_pandas(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("to_pandas", "use get")

    def add_arrow(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("add_arrow", "use add_dataset(ray.data.from_arrow(table))")

    def add_dataframe(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("add_dataframe", "use add_dataset(ray.data.from_pandas(df))")

    def add_parquet(self, *args: object, **kwargs: object) -> None:
        raise self._unsupported("add_parquet", "use add_dataset(ray.data.read_parquet(path))")

    # ------------------------------------------------------------ Ray Data

    def add_dataset(self, ds: Any, *, id_column: str = "id", embedding_column: str = "embedding",
                    metadata_columns: Optional[Sequence[str]] = None, document_column: Optional[str] = None,
                    upsert: bool = False, batch_size: int = 1000) -> int:
        """Adds (or upserts) the rows of a Ray Dataset in parallel Ray tasks, each
        batch through :meth:`add` (grouped by shard, one call per shard, all of a
        batch validated first). Returns the number of rows sent: ids that already
        existed count too, though ``add`` ignores them, as it does in one collection."""
        from ._data import add_dataset

        return add_dataset(self, ds, id_column, embedding_column, metadata_columns, document_column, upsert,
                           batch_size)

    def query_dataset(self, ds: Any, *, embedding_column: str = "embedding", n_results: int = 10,
                      where: Any = None, where_document: Any = None, batch_size: int = 256) -> Any:
        """A Dataset: ``ds``'s columns plus ``ids`` (list of str) and ``distances``
        (list of float), each row's :meth:`query` answer, computed in Ray tasks."""
        from ._data import query_dataset

        return query_dataset(self, ds, embedding_column, n_results, where, where_document, batch_size)


class RayClient:
    """pysvdb's Chroma client on a Ray cluster: collections split into shard actors.

    ``path`` is a directory on each node's local disk (the same path on every
    node): shard k of a collection lives in ``<path>/<collection id>/shard-<k>``
    on the node its actor runs on, the catalog in ``<path>/catalog`` on the head node.
    Calls to the actors wait at most ``timeout`` seconds. Connects to the
    running Ray (``ray.init()`` first; started here if none is).
    """

    def __init__(self, path: "str | os.PathLike[str]" = "./svdb-ray", *, timeout: float = 60.0) -> None:
        if not ray.is_initialized():
            ray.init()
        self._path = os.path.abspath(os.fspath(path))
        self._key = _path_key(self._path)
        self._timeout = float(timeout)
        self._catalog = ray.remote(Catalog).options(
            name="svdb-catalog-" + self._key, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=_TASK_RETRIES, num_cpus=0,
            scheduling_strategy=_head_node_strategy(),
        ).remote(self._path)

    def _catalog_call(self, method: str, *args: Any) -> Any:
        return _gather([("the catalog of %s" % self._path, getattr(self._catalog, method).remote(*args))],
                       self._timeout)[0]

    def _shard_name(self, rec: Record, k: int, r: int = 0) -> str:
        return "svdb-shard-%s-%s-%d-%d" % (self._key, rec["id"], k, r)

    def _shard(self, rec: Record, k: int, r: int) -> Any:
        """Replica r of shard k: the running actor of that name, else a new one. The
        replicas of a shard are placed by a STRICT_SPREAD placement group (one node
        each; Ray moves a bundle, and restarts its replica, when a node goes); the
        shards of a collection without replicas are dealt round the alive nodes
        (Ray's SPREAD, strategy or placement group, piled 4 of 6 shards on one of
        3 nodes; a soft affinity was not kept either) and bound to them: such a
        shard's rows are on its node's disk only, so when the node is gone its
        calls fail (ShardUnavailableError) instead of an empty shard answering."""
        name = self._shard_name(rec, k, r)
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            pass
        n = int(rec["replicas"])
        strategy: Any
        if n > 1:
            strategy = PlacementGroupSchedulingStrategy(self._placement(rec, k), placement_group_bundle_index=r)
        else:
            strategy = NodeAffinitySchedulingStrategy(self._node_of(rec, k), soft=False)
        directory = os.path.join(self._path, str(rec["id"]), "shard-%d" % k, "replica-%d" % r)
        peers = [self._shard_name(rec, k, p) for p in range(n) if p != r]
        # A group of its own for the writes a primary passes on (Shard.lead); Ray takes
        # concurrency groups at ray.remote only, not in .options().
        groups = {REPLICA_GROUP: 1}
        shard_cls = ray.remote(concurrency_groups=groups)(Shard)  # type: ignore[call-overload, unused-ignore]
        return shard_cls.options(
            name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=_TASK_RETRIES, num_cpus=0, scheduling_strategy=strategy,
        ).remote(directory, rec["metadata"], rec["hnsw"], peers, NAMESPACE, self._timeout)

    @staticmethod
    def _deal(cid: str, shards: int) -> List[str]:
        """The nodes for the shards of a new collection without replicas: the
        alive nodes in id order, from a place that the collection's id chooses."""
        alive = ray.nodes()  # type: ignore[no-untyped-call, unused-ignore]
        nodes = sorted(str(n["NodeID"]) for n in alive if n.get("Alive"))
        start = int(_path_key(cid), 16)
        return [nodes[(start + k) % len(nodes)] for k in range(shards)]

    def _node_of(self, rec: Record, k: int) -> str:
        """Shard k's node, as the catalog recorded it at creation: a shard started
        again later (by another driver, or to be deleted) goes where its files
        are, never to an empty directory elsewhere. (Records made before nodes
        were recorded get a fresh deal.)"""
        nodes = rec.get("nodes") or self._deal(str(rec["id"]), int(rec["shards"]))
        return str(nodes[k])

    def _pg_name(self, rec: Record, k: int) -> str:
        return "svdb-pg-%s-%s-%d" % (self._key, rec["id"], k)

    def _placement(self, rec: Record, k: int) -> Any:
        name = self._pg_name(rec, k)
        try:
            return ray.util.get_placement_group(name)
        except ValueError:
            pass
        n = int(rec["replicas"])
        # A token bundle: it reserves a node per replica, not capacity (the actors take none). One
        # byte of memory, not a share of a CPU: a CPU share would leave 0.999 of a 1-CPU node, on
        # which no 1-CPU task (Ray Data's, the user's) could start.
        pg = ray.util.placement_group([{"memory": 1}] * n, strategy="STRICT_SPREAD", name=name, lifetime="detached")
        ready, _ = ray.wait([pg.ready()], timeout=self._timeout)
        if not ready:
            ray.util.remove_placement_group(pg)
            raise ShardUnavailableError(
                "cannot place the %d replicas of shard %d of collection %r on %d different nodes "
                "(each needs 1 byte of Ray memory free)" % (n, k, rec["name"], n))
        return pg
    def heartbeat(self) -> int:
        """The catalog actor's clock in nanoseconds (it answers: the cluster is up)."""
        return int(self._catalog_call("ping"))

    def create_collection(self, name: str, *, shards: int = 1, replicas: int = 1,
                          configuration: Optional[CreateCollectionConfiguration] = None,
                          metadata: Optional[CollectionMetadata] = None,
                          embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008
                          get_or_create: bool = False) -> RayCollection:
        """Creates a collection of ``shards`` shard actors (fixed for its life)."""
        validate_collection_name(name)
        validate_collection_metadata(metadata)
        if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
            raise ValueError("shards must be a positive integer, got %r" % (shards,))
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            raise ValueError("replicas must be a positive integer, got %r" % (replicas,))
        alive = len([n for n in ray.nodes() if n["Alive"]])  # type: ignore[no-untyped-call, unused-ignore]
        if replicas > alive:
            raise ValueError("replicas=%d needs as many nodes; the cluster has %d" % (replicas, alive))
        hnsw = hnsw_from_create_args(cast(Optional[Dict[str, object]], configuration), metadata, lambda: None)
        cid = str(uuid.uuid4())
        nodes = self._deal(cid, shards) if replicas == 1 else None
        rec = self._catalog_call("create", name, shards, replicas, metadata, dict(hnsw), get_or_create, cid, nodes)
        col = RayCollection(self, rec, embedding_function)
        col.count()  # every shard opened its collection (and answers) before the collection is handed out
        return col

    def get_or_create_collection(self, name: str, *, shards: int = 1, replicas: int = 1,
                                 configuration: Optional[CreateCollectionConfiguration] = None,
                                 metadata: Optional[CollectionMetadata] = None,
                                 embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008
                                 ) -> RayCollection:
        """The collection named ``name``, created when missing (an existing one as is)."""
        return self.create_collection(name, shards=shards, replicas=replicas, configuration=configuration,
                                      metadata=metadata, embedding_function=embedding_function, get_or_create=True)

    def get_collection(self, name: str,
                       embedding_function: Optional[EmbeddingFunctionLike] = DefaultEmbeddingFunction(),  # noqa: B008
                       ) -> RayCollection:
        """The collection named ``name``; NotFoundError when there is none."""
        return RayCollection(self, self._catalog_call("get", name), embedding_function)

    def list_collections(self, limit: Optional[int] = None, offset: Optional[int] = None) -> List[RayCollection]:
        """Every collection, in creation order."""
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        recs = self._catalog_call("list")
        recs = recs[off:off + lim] if lim is not None else recs[off:]
        return [RayCollection(self, r, DefaultEmbeddingFunction()) for r in recs]

    def count_collections(self) -> int:
        return len(self._catalog_call("list"))

    def copy_collection(self, name: str, new_name: str, *, shards: int = 1, replicas: int = 1,
                        batch_size: int = 5000) -> RayCollection:
        """Re-sharding: a new collection ``new_name`` with ``shards`` shards and
        ``replicas`` replicas, holding ``name``'s rows in ``name``'s insertion order
        (same metadata and HNSW settings). Each source shard's rows travel once
        through the object store, so a shard must fit in the driver's memory.
        Writes to ``name`` during the copy may be missed: stop them first."""
        src = self.get_collection(name)
        dst = self.create_collection(new_name, shards=shards, replicas=replicas, metadata=src.metadata,
                                     configuration=cast(CreateCollectionConfiguration, {"hnsw": src._rec["hnsw"]}))
        parts = src._read([(k, "export", ()) for k in range(src.shards)])
        rows = sorted((_split_seq(m)[0], p, j) for p, part in enumerate(parts) for j, m in enumerate(part["metadatas"]))
        for s in range(0, len(rows), batch_size):
            page = rows[s:s + batch_size]
            dst.add(ids=[parts[p]["ids"][j] for _, p, j in page],
                    embeddings=np.stack([parts[p]["embeddings"][j] for _, p, j in page]),
                    metadatas=[_split_seq(parts[p]["metadatas"][j])[1] for _, p, j in page],
                    documents=[parts[p]["documents"][j] for _, p, j in page],
                    uris=[parts[p]["uris"][j] for _, p, j in page])
        return dst

    def reset(self) -> bool:
        raise NotImplementedError("reset is not supported by RayClient; delete the collections one by one")

    def set_tenant(self, tenant: str, database: str = "default_database") -> None:
        raise NotImplementedError("RayClient has no tenants or databases: use one path per tenant")

    def set_database(self, database: str) -> None:
        raise NotImplementedError("RayClient has no tenants or databases: use one path per database")

    def delete_collection(self, name: str) -> None:
        """Deletes the collection: its catalog entry, then its shards' actors and
        files (a shard whose actor is gone is started to remove its files on its
        node), then its placement groups."""
        rec = self._catalog_call("get", name)
        self._catalog_call("delete", rec["id"])  # by id, and a retried delete succeeds
        shards = [(k, r, self._shard(rec, k, r)) for k in range(int(rec["shards"])) for r in range(int(rec["replicas"]))]
        _gather([("shard %d replica %d of %r" % (k, r, name), s.drop.remote()) for k, r, s in shards], self._timeout)
        for _, _, s in shards:
            ray.kill(s, no_restart=True)
        # By name in Ray's table of every job's groups: a group is named in the namespace of the
        # driver that made it, so get_placement_group from another driver would not find it.
        names = {self._pg_name(rec, k) for k in range(int(rec["shards"]))}
        for pg_id, info in ray.util.placement_group_table().items():  # type: ignore[no-untyped-call, unused-ignore]
            if info.get("name") in names and info.get("state") != "REMOVED":
                ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
