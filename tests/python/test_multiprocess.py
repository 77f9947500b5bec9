"""Several processes on one collection and one Chroma directory, started the
way Python users start them (multiprocessing with "spawn"): writers take
turns, readers see whole batches only and every acknowledged one at their
next call, and upsert/add-exists semantics hold across processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import pysvdb

BATCH = 10
BATCHES = 15 if os.environ.get("CI") else 8
DIM = 4


def _vec(tag: int, i: int) -> List[float]:
    return [float(tag), float(i), float(tag * 1000 + i), 1.0]


def _writer(path: str, tag: int, sync: Tuple[Any, Any, Any, Any]) -> Tuple[int, List[str]]:
    """Adds BATCHES batches of its own ids while the readers count; then,
    readers gone, contends on shared ids and deletes."""
    go, added, adds_done, readers_done = sync
    go.wait()
    exists = 0
    with pysvdb.SvDBPython(path, busy_timeout_ms=20000) as db:
        for b in range(BATCHES):
            ids = ["w%d-%d" % (tag, b * BATCH + i) for i in range(BATCH)]
            db.add(ids, [_vec(tag, b * BATCH + i) for i in range(BATCH)], [{"w": tag}] * BATCH)
            time.sleep(0.005)  # lets the readers' calls fall between batches
        if added.wait() == 0:
            adds_done.set()
        readers_done.wait()
        # Every writer adds the same ids: exactly one add of the batch wins.
        try:
            db.add(["shared-%d" % i for i in range(BATCH)], [_vec(tag, -1)] * BATCH, [{"w": tag}] * BATCH)
        except pysvdb.IdExistsError:
            exists += 1
        # Every writer upserts the same ids: each row ends as one writer's whole row.
        db.upsert(["up-%d" % i for i in range(BATCH)], [_vec(tag, -2)] * BATCH, [{"w": tag}] * BATCH)
        deleted = ["w%d-%d" % (tag, i) for i in range(0, BATCHES * BATCH, 7)]
        db.delete(deleted)
    return exists, deleted


def _reader(path: str, sync: Tuple[Any, Any, Any, Any]) -> List[int]:
    """Counts while the writers add: whole batches only, never going down."""
    go, _, adds_done, _ = sync
    go.wait()
    seen: List[int] = []
    with pysvdb.SvDBPython(path, mode="readonly") as db:
        # Phase 2 waits for the readers to return, so every count here is
        # taken while only adds happen; at least 50, overlapping the adds.
        while len(seen) < 50 or not adds_done.is_set():
            n = db.count()
            hits = db.search(_vec(0, 0), k=3)
            assert min(3, n) <= len(hits) <= 3  # a batch may land between the two calls
            seen.append(n)
    return seen


def test_writers_and_readers_in_spawned_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "coll")
    with pysvdb.SvDBPython(path, dim=DIM, index="hnsw", background_indexing=True) as db:
        db.add(["seed"], [[0.0, 0.0, 0.0, 1.0]])
    ctx = mp.get_context("spawn")
    writers = 3
    with ctx.Manager() as m, ctx.Pool(writers + 2) as pool:
        sync = (m.Barrier(writers + 2), m.Barrier(writers), m.Event(), m.Event())
        w = [pool.apply_async(_writer, (path, t, sync)) for t in range(writers)]
        r = [pool.apply_async(_reader, (path, sync)) for _ in range(2)]
        seen = [x.get(timeout=300) for x in r]
        sync[3].set()
        results = [x.get(timeout=300) for x in w]
    # Readers: while the writers add, counts only grow and are whole batches
    # (the seed row aside); the last one may already see every add.
    for s in seen:
        assert s and all((n - 1) % BATCH == 0 for n in s), s
        assert s == sorted(s) and s[-1] <= 1 + writers * BATCHES * BATCH, s
    assert sum(e for e, _ in results) == writers - 1  # one add of the shared ids won
    with pysvdb.SvDBPython(path) as db:
        expect: Dict[str, List[float]] = {"seed": [0.0, 0.0, 0.0, 1.0]}
        for tag, (_, deleted) in enumerate(results):
            for i in range(BATCHES * BATCH):
                expect["w%d-%d" % (tag, i)] = _vec(tag, i)
            for d in deleted:
                del expect[d]
        got_ids = set(db.get_all_ids())
        assert got_ids == set(expect) | {"shared-%d" % i for i in range(BATCH)} | {"up-%d" % i for i in range(BATCH)}
        for k, v in expect.items():
            assert db.get_vector(k).tolist() == v
        for prefix, tag_of_vec in (("shared-", -1), ("up-", -2)):
            owners = set()
            for i in range(BATCH):
                vec = db.get_vector("%s%d" % (prefix, i)).tolist()
                meta = db.get("%s%d" % (prefix, i))
                assert vec[1] == tag_of_vec and meta is not None
                assert '"w":%d' % int(vec[0]) in meta.replace(" ", "")  # vector and metadata from one writer
                owners.add(int(vec[0]))
            if prefix == "shared-":
                assert len(owners) == 1  # one batch, all or nothing
        # The graph each process built finds every row.
        db.index_wait()
        for k in list(expect)[:50]:
            assert db.search(expect[k], k=1)[0][0] == k


def _chroma_worker(path: str, tag: int, go: "mp.synchronize.Event") -> int:
    go.wait()
    with pysvdb.PersistentClient(path) as client:
        col = client.get_or_create_collection("shared", embedding_function=None)
        mine = client.create_collection("own-%d" % tag, embedding_function=None)
        for b in range(BATCHES):
            ids = ["c%d-%d" % (tag, b * BATCH + i) for i in range(BATCH)]
            col.add(ids=ids, embeddings=[_vec(tag, b * BATCH + i) for i in range(BATCH)], documents=ids)
            mine.add(ids=ids[:1], embeddings=[_vec(tag, b)])
        col.upsert(ids=["both"], embeddings=[_vec(tag, -3)], metadatas=[{"w": tag}])
        return col.count()


def test_chroma_clients_in_spawned_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    ctx = mp.get_context("spawn")
    go = ctx.Manager().Event()
    n = 3
    with ctx.Pool(n) as pool:
        jobs = [pool.apply_async(_chroma_worker, (path, t, go)) for t in range(n)]
        go.set()
        counts = [j.get(timeout=300) for j in jobs]
    assert all(c >= BATCHES * BATCH for c in counts)
    with pysvdb.PersistentClient(path) as client:
        assert sorted(c.name for c in client.list_collections()) == ["own-%d" % t for t in range(n)] + ["shared"]
        col = client.get_collection("shared")
        assert col.count() == n * BATCHES * BATCH + 1
        got = col.get(ids=["c1-0", "c2-%d" % (BATCHES * BATCH - 1)], include=["documents"])
        assert sorted(got["documents"] or []) == ["c1-0", "c2-%d" % (BATCHES * BATCH - 1)]
        both = col.get(ids=["both"], include=["embeddings", "metadatas"])
        emb = np.asarray(both["embeddings"])[0]
        assert both["metadatas"] == [{"w": int(emb[0])}]
        for t in range(n):
            assert client.get_collection("own-%d" % t).count() == BATCHES
        res = col.query(query_embeddings=[_vec(2, 5)], n_results=1)
        assert res["ids"] == [["c2-5"]]


def test_exclusive_mode_keeps_other_processes_out(tmp_path: Path) -> None:
    path = str(tmp_path / "excl")
    with pysvdb.SvDBPython(path, dim=2, mode="exclusive") as db:
        db.add(["a"], [[1.0, 2.0]])
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            with pytest.raises(pysvdb.LockedError, match="exclusively"):
                pool.apply(pysvdb.SvDBPython, (path,))
