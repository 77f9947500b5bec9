"""What pysvdb's ChromaDB-compatible API does beyond (or differently from) ChromaDB,
and the SvDBPython calls it is built on: filters evaluated in libsvdb, no batch
ceiling, a second process sharing the store, crash-safe catalog,
disk space released at checkpoints, no default model download."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython, errors


@pytest.fixture
def client(tmp_path: Path) -> Iterator[pysvdb.ClientAPI]:
    c = pysvdb.PersistentClient(path=str(tmp_path / "db"))
    yield c
    c.close()


# ---------------------------------------------------------------- SvDBPython additions


def _docs_db(path: str) -> SvDBPython:
    db = SvDBPython(path)
    db.add(
        ["a", "b", "c", "d"],
        [[1, 0], [0, 1], [1, 1], [2, 2]],
        [{"#document": "hello world", "n": 1}, {"#document": "Hello", "n": 2}, None, {"n": 3}],
    )
    return db


def test_ids_where(db_path: str) -> None:
    with _docs_db(db_path) as db:
        assert db.ids_where() == ["a", "b", "c", "d"] == db.get_all_ids()
        assert db.ids_where({"n": {"$gte": 2}}) == ["b", "d"]
        assert db.ids_where(where_document={"$contains": "ello"}) == ["a", "b"]
        assert db.ids_where(where_document={"$not_contains": "world"}) == ["b", "c", "d"]
        assert db.ids_where({"n": {"$lt": 3}}, {"$regex": "^H"}) == ["b"]
        assert db.ids_where('{"#document": {"$contains": "world"}}') == ["a"]
        with pytest.raises(pysvdb.InvalidArgumentError, match="where_document"):
            db.ids_where(where_document={"$regex": "("})
        with pytest.raises(pysvdb.InvalidTypeError):
            db.ids_where(where_document=5)  # type: ignore[arg-type]


def test_search_where_document(db_path: str) -> None:
    with _docs_db(db_path) as db:
        assert db.search([1, 0], k=4, where_document={"$contains": "o"}) == [("a", 0.0), ("b", 2.0)]
        assert db.search([1, 0], k=4, where={"n": 2}, where_document={"$contains": "o"}) == [("b", 2.0)]
        res = db.search_batch([[1, 0], [0, 1]], k=3, where_document={"$not_regex": "w"})
        assert res.ids.tolist() == [["c", "b", "d"], ["b", "c", "d"]]


def test_get_many(db_path: str) -> None:
    with _docs_db(db_path) as db:
        found, metas, vecs = db.get_many(["d", "zz", "a", "c"], vectors=True)
        assert found == [0, 2, 3]
        assert metas == ['{"n": 3}', '{"#document": "hello world", "n": 1}', None]
        np.testing.assert_array_equal(vecs, [[2, 2], [1, 0], [1, 1]])
        found, metas, vecs = db.get_many(["b"], metadata=False)
        assert found == [0] and metas == [None] and vecs is None
        assert db.get_many([], vectors=True)[0] == []
    with SvDBPython(db_path + "-empty") as empty:
        assert empty.get_many(["a"], vectors=True)[0] == []


# ---------------------------------------------------------------- filters in libsvdb vs a reference model


def _model_where(meta: Optional[Dict[str, Any]], w: Dict[str, Any]) -> bool:
    """ChromaDB's where semantics, numbers compared mathematically."""
    (key, value), = w.items()
    if key == "$and":
        return all(_model_where(meta, x) for x in value)
    if key == "$or":
        return any(_model_where(meta, x) for x in value)
    m = meta or {}
    op, arg = next(iter(value.items())) if isinstance(value, dict) else ("$eq", value)
    present = key in m
    v = m.get(key)

    def same(a: Any, b: Any) -> bool:
        return isinstance(a, bool) == isinstance(b, bool) and type(a) in (int, float, bool, str) and (
            a == b if not isinstance(a, str) and not isinstance(b, str) else (isinstance(a, str) and isinstance(b, str) and a == b)
        )

    if op == "$eq":
        return present and not isinstance(v, list) and same(v, arg)
    if op == "$ne":
        return not (present and not isinstance(v, list) and same(v, arg))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not present or isinstance(v, (bool, str, list)):
            return False
        return {"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op]
    if op == "$in":
        return present and not isinstance(v, list) and any(same(v, a) for a in arg)
    if op == "$nin":
        return not (present and not isinstance(v, list) and any(same(v, a) for a in arg))
    if op == "$contains":  # array elements compare within their type (ChromaDB: 2 does not find 2.0)
        return present and isinstance(v, list) and any(type(x) is type(arg) and x == arg for x in v)
    if op == "$not_contains":
        return not (present and isinstance(v, list) and any(type(x) is type(arg) and x == arg for x in v))
    raise AssertionError(op)


def _random_where(rng: random.Random, depth: int = 0) -> Dict[str, Any]:
    if depth < 2 and rng.random() < 0.3:
        return {rng.choice(["$and", "$or"]): [_random_where(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    key = rng.choice(["i", "f", "s", "b", "l", "missing"])
    op = rng.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$not_contains"])
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {key: {op: rng.choice([rng.randint(-3, 3), rng.randint(-6, 6) / 2])}}
    scalar = rng.choice([rng.randint(-3, 3), float(rng.randint(-3, 3)), rng.randint(-6, 6) / 2, "s%d" % rng.randint(0, 3), rng.random() < 0.5])
    if op in ("$in", "$nin"):
        if isinstance(scalar, bool):
            return {key: {op: [scalar, not scalar]}}
        if isinstance(scalar, str):
            return {key: {op: [scalar, "s%d" % rng.randint(0, 3)]}}
        return {key: {op: [scalar, rng.randint(-3, 3)] if isinstance(scalar, int) else [scalar, 0.5]}}
    return {key: {op: scalar}}


def test_where_matches_reference_model(client: pysvdb.ClientAPI) -> None:
    rng = random.Random(7)
    col = client.create_collection("model", embedding_function=None)
    metas: List[Optional[Dict[str, Any]]] = []
    for i in range(300):
        m: Dict[str, Any] = {}
        if rng.random() < 0.8:
            m["i"] = rng.randint(-3, 3)
        if rng.random() < 0.7:
            m["f"] = rng.randint(-6, 6) / 2
        if rng.random() < 0.7:
            m["s"] = "s%d" % rng.randint(0, 3)
        if rng.random() < 0.5:
            m["b"] = rng.random() < 0.5
        if rng.random() < 0.5:
            m["l"] = rng.choice([[rng.randint(-3, 3) for _ in range(3)], ["s%d" % rng.randint(0, 3)], [True]])
        metas.append(m or None)
    ids = ["id%03d" % i for i in range(300)]
    vecs = np.random.default_rng(1).standard_normal((300, 4)).astype(np.float32)
    col.add(ids=ids, embeddings=vecs, metadatas=metas)
    for _ in range(300):
        w = _random_where(rng)
        want = [i for i, m in zip(ids, metas) if _model_where(m, w)]
        assert col.get(where=w, include=[])["ids"] == want, w
        hits = col.query(query_embeddings=vecs[0], n_results=300, where=w, include=[])["ids"][0]
        assert sorted(hits) == want, w


# ---------------------------------------------------------------- beyond ChromaDB


def test_no_default_embedding_model(client: pysvdb.ClientAPI) -> None:
    col = client.create_collection("noef")
    with pytest.raises(ValueError, match="no built-in embedding model"):
        col.add(ids=["a"], documents=["text"])
    with pytest.raises(ValueError, match="no built-in embedding model"):
        col.query(query_texts=["text"])
    col2 = client.create_collection("noef2", embedding_function=None)
    with pytest.raises(ValueError, match="embedding function"):
        col2.add(ids=["a"], documents=["text"])
    assert col.count() == 0 and col2.count() == 0


def test_plain_callable_embedding_function(client: pysvdb.ClientAPI) -> None:
    col = client.create_collection("plain", embedding_function=lambda texts: [[float(len(t)), 1.0] for t in texts])
    col.add(ids=["a", "b"], documents=["xx", "xxxx"])
    assert col.query(query_texts=["xxx"], n_results=1, include=["distances"])["distances"] == [[1.0]]


def test_batch_size_limit_is_chromas(client: pysvdb.ClientAPI) -> None:
    """get_max_batch_size() is ChromaDB's 5,461, and a larger add/upsert/update
    fails as ChromaDB's does (InternalError naming both sizes), writing nothing;
    reads and deletes are not limited, as in ChromaDB."""
    limit = client.get_max_batch_size()
    assert limit == pysvdb.chroma.MAX_BATCH_SIZE == 5461
    col = client.create_collection("big", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    n = limit + 1
    vecs = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    ids = [str(i) for i in range(n)]
    message = "ValueError: Batch size of %d is greater than max batch size of %d" % (n, limit)
    for op in ("add", "upsert", "update"):
        with pytest.raises(errors.InternalError) as ei:
            getattr(col, op)(ids=ids, embeddings=vecs)
        assert str(ei.value) == message
        assert col.count() == 0
    col.add(ids=ids[:limit], embeddings=vecs[:limit], metadatas=[{"i": i} for i in range(limit)])
    assert col.count() == limit
    col.upsert(ids=ids[1:], embeddings=vecs[1:])  # exactly the limit: 5,460 updated, one added
    assert col.count() == n
    assert len(col.get(ids=ids)["ids"]) == n
    assert col.get(where={"i": {"$gte": limit - 3}})["ids"] == [str(limit - 3), str(limit - 2), str(limit - 1)]
    assert col.delete(ids=ids) == {"deleted": n} and col.count() == 0


def test_add_returns_with_linking_caught_up(client: pysvdb.ClientAPI) -> None:
    """An add returns once at most BACKLOG_BYTES of vectors wait to be linked,
    so a query never scans a whole ingest exactly (ChromaDB links in add)."""
    from pysvdb.chroma.settings import BACKLOG_BYTES

    dim, n = 64, 12_000
    bound = BACKLOG_BYTES // (dim * 4)
    assert n > 2 * bound
    col = client.create_collection("lag")
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    with col._engine.use(col._record) as h:  # the collection's SvDBPython handle
        for start in range(0, n, 5000):
            col.add(ids=[str(i) for i in range(start, min(n, start + 5000))], embeddings=vecs[start : start + 5000])
            assert h.index_pending() <= bound
        hits = col.query(query_embeddings=vecs[n - 1 : n], n_results=1)
        assert hits["ids"] == [[str(n - 1)]]
        h.index_wait()
        assert h.index_pending() == 0


def test_backlog_setting_reaches_the_collections(tmp_path: Path) -> None:
    """Settings(pysvdb_index_backlog_bytes=N) is the bound the collections get:
    with 10 rows' worth, an add returns once at most 10 rows wait."""
    path = str(tmp_path / "db")
    settings = pysvdb.Settings(is_persistent=True, persist_directory=path, pysvdb_index_backlog_bytes=10 * 16 * 4)
    client = pysvdb.Client(settings)
    try:
        col = client.create_collection("tight")
        vecs = np.random.default_rng(6).standard_normal((3000, 16)).astype(np.float32)
        with col._engine.use(col._record) as h:
            col.add(ids=[str(i) for i in range(3000)], embeddings=vecs)
            assert h.index_pending() <= 10
        assert col.query(query_embeddings=vecs[2999:3000], n_results=1)["ids"] == [["2999"]]
    finally:
        client.close()


def test_second_process_shares_the_store(tmp_path: Path) -> None:
    """Two processes with PersistentClient on one directory both work: each
    sees the other's collections and rows at its next call."""
    path = str(tmp_path / "shared")
    with pysvdb.PersistentClient(path=path) as c:
        col = c.create_collection("abc", embedding_function=None)
        col.add(ids=["parent"], embeddings=[[1.0, 0.0]])
        code = textwrap.dedent(
            """
            import sys, pysvdb
            with pysvdb.PersistentClient(path=sys.argv[1]) as c:
                col = c.get_collection("abc")
                assert col.count() == 1, col.count()
                col.add(ids=["child"], embeddings=[[0.0, 1.0]], metadatas=[{"who": "child"}])
                c.create_collection("made-by-child", embedding_function=None)
            print("OK")
            """
        )
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "OK", out.stdout + out.stderr
        assert col.count() == 2
        assert col.get(ids=["child"])["metadatas"] == [{"who": "child"}]
        assert sorted(x.name for x in c.list_collections()) == ["abc", "made-by-child"]
        got = col.query(query_embeddings=[[0.0, 1.0]], n_results=1)
        assert got["ids"] == [["child"]]
        # A collection another process has open cannot be deleted from under it.
        code = "import sys, pysvdb\nc = pysvdb.PersistentClient(path=sys.argv[1])\n" \
               "try:\n    c.delete_collection('abc')\nexcept pysvdb.LockedError as e:\n    print('LOCKED', e)\n"
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
        assert out.stdout.startswith("LOCKED") and "open" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(
        [sys.executable, "-c", "import sys, pysvdb; print(pysvdb.PersistentClient(path=sys.argv[1]).get_collection('abc').count())", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "2", out.stderr


def test_ephemeral_clients_share_and_clean_up() -> None:
    a = pysvdb.EphemeralClient()
    b = pysvdb.EphemeralClient()
    try:
        a.create_collection("eph", embedding_function=None).add(ids=["x"], embeddings=[[1.0]])
        assert b.get_collection("eph").count() == 1
        root = a._engine.root
        assert os.path.isdir(root)
    finally:
        a.close()
        b.close()
    assert not os.path.exists(root)
    with pysvdb.EphemeralClient() as c:
        assert c.count_collections() == 0


def test_client_from_settings(tmp_path: Path) -> None:
    s = pysvdb.Settings(is_persistent=True, persist_directory=str(tmp_path / "viaset"), anonymized_telemetry=False)
    with pysvdb.Client(s) as c:
        c.create_collection("abc", embedding_function=None)
    assert (tmp_path / "viaset" / "pysvdb-chroma.json").exists()
    with pysvdb.Client() as c:
        assert c._engine.ephemeral


def test_catalog_and_crash_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "cat"
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.create_collection("one", metadata={"k": 1}, configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        cid = str(col.id)
    catalog = json.loads((path / "pysvdb-chroma.json").read_text())
    assert [e["name"] for e in catalog["collections"]] == ["one"]
    assert catalog["collections"][0]["hnsw"]["space"] == "ip"
    assert (path / cid).is_dir()
    # A directory named like a collection that the catalog does not list, with
    # no marker proving it is a leftover of this store, is never removed
    # (it may be a user's, or restored from a backup): left, with a warning.
    stray = path / str(uuid.uuid4())
    stray.mkdir()
    (stray / "junk").write_text("x")
    (path / "pysvdb-chroma.json.tmp").write_text("{half")
    with pytest.warns(RuntimeWarning, match="left in place"):
        c = pysvdb.PersistentClient(path=str(path))
    with c:
        assert (stray / "junk").read_text() == "x"
        assert c.get_collection("one").query(query_embeddings=[1.0, 0.0], n_results=1)["distances"] == [[0.0]]


def test_refuses_chromadb_directory(tmp_path: Path) -> None:
    (tmp_path / "chroma.sqlite3").write_bytes(b"SQLite format 3\0")
    with pytest.raises(ValueError, match="ChromaDB database"):
        pysvdb.PersistentClient(path=str(tmp_path))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_deletes_free_disk_at_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "shrink"
    vecs = np.random.default_rng(0).standard_normal((3000, 64)).astype(np.float32)
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.create_collection("abc", embedding_function=None)
        col.add(ids=[str(i) for i in range(3000)], embeddings=vecs, documents=["doc %d" % i for i in range(3000)])
    full = _size(path)
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.get_collection("abc")
        # "doc 1", "doc 10".."doc 19", ... "doc 1999" stay: 1 + 10 + 100 + 1000 of them.
        assert col.delete(where={"#document": {"$not_contains": "doc 1"}})["deleted"] == 3000 - 1111
    assert _size(path) < full / 2
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert c.get_collection("abc").count() == 1111


def test_checkpoint_bounds_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libsvdb checkpoints a collection by itself (open option autocheckpoint_bytes,
    64 MiB by default); the client never decides when, so its log stays bounded."""
    from pysvdb.chroma import catalog

    class SmallLog(SvDBPython):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("autocheckpoint_bytes", 8192)
            super().__init__(*args, **kwargs)

        def persist(self) -> None:
            raise AssertionError("the client checkpointed by itself")

    monkeypatch.setattr(catalog, "SvDBPython", SmallLog)
    with pysvdb.PersistentClient(path=str(tmp_path / "ck")) as c:
        col = c.create_collection("abc", embedding_function=None)
        wal = tmp_path / "ck" / str(col.id) / "wal.svdb"
        sizes = []
        for b in range(20):
            col.add(ids=["%d-%d" % (b, i) for i in range(20)], embeddings=np.ones((20, 4), dtype=np.float32) * (b + 1))
            col.update(ids=["%d-0" % b], metadatas=[{"b": b}])
            col.upsert(ids=["%d-1" % b, "%d-new" % b], embeddings=np.ones((2, 4), dtype=np.float32))
            col.delete(ids=["%d-2" % b])
            sizes.append(wal.stat().st_size)
        assert max(sizes) < 8192 + 2048  # about 25 KB of records in all
        assert col.count() == 20 * 20 and col.get(ids=["19-0"])["metadatas"] == [{"b": 19}]
    with pysvdb.PersistentClient(path=str(tmp_path / "ck")) as c:
        assert c.get_collection("abc").count() == 400


def test_update_keeps_key_order(client: pysvdb.ClientAPI) -> None:
    """libsvdb merges in place: kept keys stay where they were, new ones come last."""
    col = client.create_collection("order", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0]], metadatas=[{"x": 1, "y": 2, "z": 3}], documents=["doc"])
    col.update(ids=["a"], metadatas=[{"w": 0, "y": None, "x": 5}])
    r = col.get(ids=["a"])
    assert list(r["metadatas"][0].items()) == [("x", 5), ("z", 3), ("w", 0)] and r["documents"] == ["doc"]
    col.upsert(ids=["a"], embeddings=[[2.0]], metadatas=[{"z": None, "v": 2**70}])
    assert list(col.get(ids=["a"])["metadatas"][0].items()) == [("x", 5), ("w", 0), ("v", float(2**70))]


def test_update_merged_row_over_the_limit(client: pysvdb.ClientAPI) -> None:
    """A merged row must fit the metadata limit; nothing of the call is written
    when it does not, also when an upsert adds other rows."""
    col = client.create_collection("limit", embedding_function=None)
    big = "x" * (pysvdb.MAX_METADATA_BYTES - 1000)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"big": big}, {"k": 1}])
    with pytest.raises(errors.InvalidArgumentError):
        col.update(ids=["b", "a"], metadatas=[{"k": 2}, {"more": big}])
    with pytest.raises(errors.InvalidArgumentError):
        col.upsert(ids=["new", "b", "a"], embeddings=[[1.0, 1.0]] * 3, metadatas=[{"k": 1}, {"k": 2}, {"more": big}])
    r = col.get(include=["metadatas", "embeddings"])
    assert r["ids"] == ["a", "b"] and r["metadatas"][1] == {"k": 1}
    np.testing.assert_array_equal(r["embeddings"], [[1, 0], [0, 1]])
    col.upsert(ids=["new", "b"], embeddings=[[1.0, 1.0]] * 2, metadatas=[{"k": 1}, {"k": 2}])
    assert col.get()["ids"] == ["a", "b", "new"]


def test_storage_errors_keep_pysvdb_classes() -> None:
    assert errors.LockedError is pysvdb.LockedError
    assert issubclass(errors.InvalidArgumentError, errors.ChromaError)
    assert errors.NotFoundError("x").code() == 404 and errors.NotFoundError.name() == "NotFoundError"
    assert errors.NotFoundError("x").message() == "x" == str(errors.NotFoundError("x"))


def test_cosine_zero_vector_scores_one(client: pysvdb.ClientAPI) -> None:
    """ChromaDB accepts a zero vector under cosine: no direction, distance 1 to every row."""
    col = client.create_collection("cos", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    col.add(ids=["a", "z", "poison"], embeddings=[[1.0, 0.0], [0.0, 0.0], [1e-40, 1e-40]])
    assert col.count() == 3
    r = col.query(query_embeddings=[[1.0, 0.0]], n_results=3)
    assert r["ids"][0][0] == "a"
    assert r["distances"][0][1:] == [1.0, 1.0]
    r = col.query(query_embeddings=[[0.0, 0.0]], n_results=3)
    assert r["distances"] == [[1.0, 1.0, 1.0]]


def test_nan_query_rejected(client: pysvdb.ClientAPI) -> None:
    col = client.create_collection("nanq", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 2.0]])
    with pytest.raises(errors.InvalidArgumentError):
        col.query(query_embeddings=[float("nan"), 0.0])


def test_concurrent_upserts_merge(client: pysvdb.ClientAPI) -> None:
    import threading

    col = client.create_collection("conc", embedding_function=None)
    col.add(ids=["row"], embeddings=[[1.0]], metadatas=[{"start": 0}])

    def work(k: int) -> None:
        for j in range(50):
            col.update(ids=["row"], metadatas=[{"t%d_%d" % (k, j): j}])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = col.get(ids=["row"])["metadatas"][0]
    assert len(meta) == 1 + 4 * 50  # no update lost to a concurrent read-modify-write


def test_closed_client(tmp_path: Path) -> None:
    c = pysvdb.PersistentClient(path=str(tmp_path / "closed"))
    col = c.create_collection("abc", embedding_function=None)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.list_collections()
    with pytest.raises(ValueError, match="closed"):
        col.count()


def test_http_settings_refused() -> None:
    with pytest.raises(ValueError, match="HTTP"):
        pysvdb.Client(pysvdb.Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI"))


def test_documented_limits(client: pysvdb.ClientAPI) -> None:
    col = client.create_collection("limits", metadata={"tags": ["a", "b"]}, embedding_function=None)
    assert client.get_collection("limits").metadata == {"tags": ["a", "b"]}
    with pytest.raises(errors.InvalidArgumentError):
        col.add(ids=["x" * 1025], embeddings=[[1.0]])
    with pytest.raises(errors.InvalidArgumentError):
        col.add(ids=["big"], embeddings=[[1.0]], documents=["x" * (1 << 20)])
    with pytest.raises(ValueError):
        col.add(ids=["nan"], embeddings=[[1.0]], metadatas=[{"v": float("nan")}])
    col.add(ids=["huge"], embeddings=[[1.0]], metadatas=[{"v": 2**70}])
    assert col.get(ids=["huge"])["metadatas"] == [{"v": float(2**70)}]
    assert col.count() == 1
    assert client.get_version() == "1.5.9"
    with pytest.raises(ValueError):
        pysvdb.PersistentClient(path=str(Path(client._engine.root)), tenant="other")
