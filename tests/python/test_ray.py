"""pysvdb.ray: sharded collections on a local Ray cluster give the single
collection's answers, lose no acknowledged write when a shard dies, refuse bad
batches before any shard sees them, and name a shard that does not answer.

One small Ray instance (2 CPUs, 100 MB object store) serves the whole module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import numpy as np
import pytest

import pysvdb

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SVDB_DATA", REPO.parent / "shared" / "data"))


def test_import_pysvdb_neither_needs_nor_imports_ray() -> None:
    code = (
        "import sys\n"
        "import pysvdb, pysvdb.chroma\n"
        "assert 'ray' not in sys.modules, 'import pysvdb imported ray'\n"
        "sys.modules['ray'] = None  # as if ray were not installed\n"
        "import importlib; importlib.invalidate_caches()\n"
        "c = pysvdb.chroma\n"
        "try:\n"
        "    import pysvdb.ray\n"
        "except ImportError:\n"
        "    print('ok')\n"
        "try:\n"
        "    pysvdb.RayClient\n"
        "except ImportError as e:\n"
        "    print('ok', 'ray' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["ok", "ok True"]


def test_ray_client_is_reachable_as_pysvdb_attribute() -> None:
    pytest.importorskip("ray")
    import pysvdb.ray

    assert pysvdb.RayClient is pysvdb.ray.RayClient and pysvdb.RayCollection is pysvdb.ray.RayCollection


# ---------------------------------------------------------------- fixtures


MB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head (2 CPUs) and two worker nodes (1 CPU each), 100 MB of object store apiece."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": 100 * MB, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=1, object_store_memory=100 * MB)
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def ray_mod(cluster: Any) -> Any:
    import ray

    return ray


@pytest.fixture(scope="module")
def client(ray_mod: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pysvdb.ray import RayClient

    return RayClient(tmp_path_factory.mktemp("ray") / "db")


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return pysvdb.PersistentClient(tmp_path_factory.mktemp("single"))


def _rows(n: int, dim: int = 8, seed: int = 1) -> Tuple[List[str], np.ndarray, List[Dict[str, Any]], List[str]]:
    rng = np.random.default_rng(seed)
    vecs = rng.random((n, dim), dtype=np.float32)
    ids = ["id%d" % i for i in range(n)]
    metas = [{"i": i, "m": i % 3, "tag": "t%d" % (i % 5)} for i in range(n)]
    docs = ["doc %d %s" % (i, "red" if i % 4 == 0 else "blue") for i in range(n)]
    return ids, vecs, metas, docs


def _same_history(cols: List[Any]) -> np.ndarray:
    """The same writes on each collection: adds, upserts, updates, deletes, re-adds and exact ties."""
    ids, vecs, metas, docs = _rows(300)
    for c in cols:
        c.add(ids=ids[:200], embeddings=vecs[:200], metadatas=metas[:200], documents=docs[:200])
        c.upsert(ids=ids[150:300], embeddings=vecs[150:300], metadatas=metas[150:300])
        c.add(ids=ids[:5], embeddings=vecs[:5] * 0)  # existing ids: ignored
        c.delete(ids=["id3", "id10"])
        c.add(ids=["id3"], embeddings=vecs[3:4])  # back, now last in insertion order
        c.update(ids=["id20", "nope"], metadatas=[{"m": None, "z": 1}, {"z": 2}])
        c.update(ids=["id21"], embeddings=vecs[22:23], documents=["changed"])
        # Rows with equal vectors: equal distances, ordered by insertion.
        c.add(ids=["tie-b", "tie-a", "tie-c"], embeddings=np.stack([vecs[40]] * 3), metadatas=[{"m": 7}] * 3)
        c.delete(where={"m": 2}, limit=4)
    return vecs


@pytest.fixture(scope="module")
def pair(client: Any, single: Any) -> Tuple[Any, Any, np.ndarray]:
    sharded = client.create_collection("pair", shards=3)
    one = single.create_collection("pair")
    vecs = _same_history([sharded, one])
    return sharded, one, vecs


def _eq(a: Any, b: Any) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k == "embeddings" and a[k] is not None:
            assert len(a[k]) == len(b[k])
            for x, y in zip(a[k], b[k]):
                np.testing.assert_array_equal(x, y)
        else:
            assert a[k] == b[k], k


# ---------------------------------------------------------------- same answers as one collection


def test_count_and_order_equal_one_collection(pair: Tuple[Any, Any, np.ndarray]) -> None:
    sharded, one, _ = pair
    assert sharded.count() == one.count() == 300 - 2 + 1 - 4 + 3
    _eq(sharded.get(), one.get())
    _eq(sharded.peek(7), one.peek(7))
    assert sharded.get()["ids"][-4:] == ["id3", "tie-b", "tie-a", "tie-c"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"where": {"m": 1}},
        {"where": {"m": 1}, "limit": 7, "offset": 3},
        {"limit": 10, "offset": 290},
        {"offset": 5, "include": ["embeddings", "documents", "metadatas", "uris"]},
        {"where_document": {"$contains": "red"}, "limit": 5},
        {"where": {"$and": [{"i": {"$gte": 100}}, {"tag": {"$in": ["t1", "t2"]}}]}, "limit": 20, "offset": 2},
        {"ids": ["id250", "id3", "id7", "nope", "id20"]},
        {"ids": ["id250", "id3", "id7", "id20"], "where": {"m": {"$ne": 0}}, "include": ["metadatas"]},
        {"limit": 0},
    ],
)
def test_get_equals_one_collection(pair: Tuple[Any, Any, np.ndarray], kwargs: Dict[str, Any]) -> None:
    sharded, one, _ = pair
    _eq(sharded.get(**kwargs), one.get(**kwargs))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_results": 10},
        {"n_results": 10, "include": ["embeddings", "distances", "documents", "metadatas", "uris"]},
        {"n_results": 5, "where": {"m": 1}},
        {"n_results": 5, "where_document": {"$contains": "red"}},
        {"n_results": 4, "ids": ["id40", "tie-a", "tie-b", "tie-c", "id41", "id250"]},
        {"n_results": 1000},
    ],
)
def test_query_equals_one_collection(pair: Tuple[Any, Any, np.ndarray], kwargs: Dict[str, Any]) -> None:
    sharded, one, vecs = pair
    q = vecs[[40, 1, 99, 250]]
    _eq(sharded.query(query_embeddings=q, **kwargs), one.query(query_embeddings=q, **kwargs))


def test_a_large_query_matrix_is_stored_once_for_every_shard(pair: Tuple[Any, Any, np.ndarray], ray_mod: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sharded, one, vecs = pair
    q = np.random.default_rng(4).random((3500, vecs.shape[1]), dtype=np.float32)  # 112 KB
    put = ray_mod.put
    stored: List[int] = []
    monkeypatch.setattr(ray_mod, "put", lambda v, *a, **kw: (stored.append(v.nbytes), put(v, *a, **kw))[1])
    _eq(sharded.query(query_embeddings=q, n_results=3), one.query(query_embeddings=q, n_results=3))
    assert stored == [q.nbytes] and sharded.shards > 1


def test_equal_distances_merge_in_insertion_order(pair: Tuple[Any, Any, np.ndarray]) -> None:
    sharded, one, vecs = pair
    got = sharded.query(query_embeddings=vecs[40], n_results=4, include=["distances"])
    assert got["ids"][0][:4] == one.query(query_embeddings=vecs[40], n_results=4, include=["distances"])["ids"][0]
    assert got["ids"][0][:4] == ["id40", "tie-b", "tie-a", "tie-c"]
    assert len(set(got["distances"][0])) == 1


def test_copy_collection_reshards_keeping_everything(client: Any, pair: Tuple[Any, Any, np.ndarray]) -> None:
    sharded, one, vecs = pair
    two = client.copy_collection("pair", "pair-2", shards=2)
    assert (two.shards, two.count(), two.metadata) == (2, one.count(), sharded.metadata)
    inc = ["metadatas", "documents", "embeddings", "uris"]
    _eq(two.get(include=inc), one.get(include=inc))
    _eq(two.query(query_embeddings=vecs[[40, 7]], n_results=6), one.query(query_embeddings=vecs[[40, 7]], n_results=6))
    client.delete_collection("pair-2")


def test_rows_live_only_on_their_hashed_shard(pair: Tuple[Any, Any, np.ndarray], ray_mod: Any) -> None:
    from pysvdb.ray._actors import shard_of

    sharded, _, _ = pair
    per_shard = [ray_mod.get(s.get.remote(None, None, None, None, []))["ids"] for s in sharded._shards]
    assert sum(map(len, per_shard)) == sharded.count()
    assert all(per_shard), "every shard holds rows"
    for k, ids in enumerate(per_shard):
        assert all(shard_of(i, 3) == k for i in ids)


# ---------------------------------------------------------------- bad input: same errors, nothing applied


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add(ids=["new1", "new2"], embeddings=[[0.0] * 8, [0.0] * 7]),
        lambda c: c.add(ids=["new1", "new2"], embeddings=[[0.0] * 9, [0.0] * 9]),
        lambda c: c.add(ids=["new1", "new2", "new1"], embeddings=[[0.0] * 8] * 3),
        lambda c: c.add(ids=["new1", "new2"], embeddings=[[0.0] * 8, [float("nan")] * 8]),
        lambda c: c.add(ids=["new1", "new2"], embeddings=[[0.0] * 8] * 2, metadatas=[{"a": 1}, {"b": {"x": 1}}]),
        lambda c: c.upsert(ids=["new1", "id5"], embeddings=[[0.0] * 8] * 2, metadatas=[{"a": 1}, {}]),
        lambda c: c.update(ids=["id5", "id6"], embeddings=[[0.0] * 8] * 3),
        lambda c: c.get(where={"m": {"$bad": 1}}),
        lambda c: c.query(query_embeddings=[[0.0] * 9], n_results=3),
        lambda c: c.query(query_embeddings=[[0.0] * 8], where_document={"$nope": "x"}),
        lambda c: c.delete(where={"$and": [{"m": 1}]}),
    ],
)
def test_bad_input_same_error_and_nothing_applied(pair: Tuple[Any, Any, np.ndarray], call: Any) -> None:
    sharded, one, _ = pair
    before = sharded.get(include=["metadatas", "embeddings", "documents"])
    errs = []
    for c in (sharded, one):
        with pytest.raises(Exception) as info:
            call(c)
        errs.append(info.value)
    assert type(errs[0]) is type(errs[1])
    assert str(errs[0]) == str(errs[1])
    _eq(sharded.get(include=["metadatas", "embeddings", "documents"]), before)


def test_the_hidden_order_key_is_refused(pair: Tuple[Any, Any, np.ndarray]) -> None:
    sharded, _, _ = pair
    n = sharded.count()
    with pytest.raises(ValueError, match="svdb:seq"):
        sharded.add(ids=["x1"], embeddings=[[0.0] * 8], metadatas=[{"svdb:seq": 3}])
    assert sharded.count() == n


@pytest.mark.parametrize("method", ["fork", "search", "get_arrow", "to_pandas", "add_arrow", "add_dataframe",
                                    "add_parquet"])
def test_unsupported_collection_methods_say_so(pair: Tuple[Any, Any, np.ndarray], method: str) -> None:
    with pytest.raises(NotImplementedError, match="not supported by RayClient collections; use"):
        getattr(pair[0], method)("x")


def test_images_and_data_loaders_are_refused(pair: Tuple[Any, Any, np.ndarray]) -> None:
    sharded = pair[0]
    n = sharded.count()
    with pytest.raises(ValueError, match="do not store images"):
        sharded.add(ids=["img"], images=[np.zeros((2, 2, 3))])
    with pytest.raises(ValueError, match="not images or uris"):
        sharded.query(query_uris=["file:///x"])
    with pytest.raises(ValueError, match="data loader"):
        sharded.get(include=["data"])
    assert sharded.count() == n


def _embed_text(input: List[str]) -> List[List[float]]:
    return [[float(len(t)), float(t.count("a")), 1.0] for t in input]


def test_documents_embedded_by_the_embedding_function(client: Any, single: Any) -> None:
    cols = [client.create_collection("texts", shards=2, embedding_function=_embed_text),
            single.create_collection("texts", embedding_function=_embed_text)]
    docs = ["a", "banana", "cab", "apple pie", "zz", "aaaa a"]
    for c in cols:
        c.add(ids=["d%d" % i for i in range(len(docs))], documents=docs)
        c.upsert(ids=["d1", "d9"], documents=["bandana", "aa"])
    got = [c.query(query_texts=["aab", "pineapple"], n_results=3) for c in cols]
    _eq(got[0], got[1])
    _eq(cols[0].get(include=["documents", "embeddings"]), cols[1].get(include=["documents", "embeddings"]))


# ---------------------------------------------------------------- catalog


def test_catalog_survives_its_actor_and_a_new_client(client: Any, ray_mod: Any) -> None:
    from pysvdb.ray import RayClient

    col = client.create_collection("cat-a", shards=2, metadata={"owner": "x", "hnsw:space": "cosine"})
    col.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    col.modify(name="cat-b", metadata={"owner": "y"})
    ray_mod.kill(client._catalog, no_restart=False)  # Ray restarts it; it reopens <path>/catalog
    again = RayClient(client._path)
    got = again.get_collection("cat-b")
    assert (got.metadata, got.shards, got.count()) == ({"owner": "y"}, 2, 3)
    assert "cat-b" in [c.name for c in again.list_collections()]
    assert got.query(query_embeddings=[[2.0, 0.0]], n_results=1)["distances"][0][0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(pysvdb.chroma.errors.NotFoundError):
        again.get_collection("cat-a")
    with pytest.raises(pysvdb.chroma.errors.InternalError, match="already exists"):
        again.create_collection("cat-b")
    assert again.get_or_create_collection("cat-b").id == got.id
    again.delete_collection("cat-b")
    assert not (Path(client._path) / got.id).joinpath("shard-0").exists()
    with pytest.raises(pysvdb.chroma.errors.NotFoundError):
        client.get_collection("cat-b")
    assert isinstance(client.heartbeat(), int)


def test_insertion_order_continues_across_a_catalog_restart(client: Any, ray_mod: Any) -> None:
    col = client.create_collection("cat-order", shards=3)
    col.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ray_mod.kill(client._catalog, no_restart=False)  # the restarted catalog skips the rest of its lease
    col.add(ids=["d", "e"], embeddings=[[2.0, 0.0], [0.0, 2.0]])
    col.upsert(ids=["b", "f"], embeddings=[[0.0, 3.0], [3.0, 3.0]])
    assert col.get(include=[])["ids"] == ["a", "b", "c", "d", "e", "f"]
    assert col.get(limit=2, offset=3, include=[])["ids"] == ["d", "e"]
    client.delete_collection("cat-order")


def test_catalog_records_are_durable_rows_of_an_svdb_collection(tmp_path: Path) -> None:
    from pysvdb.ray._actors import SEQ_LEASE, Catalog

    cat = Catalog(str(tmp_path))
    rec = cat.create("one", 2, 1, {"k": "v"}, {"space": "l2"}, False)
    assert cat.set_dim(rec["id"], 8) == 8 and cat.set_dim(rec["id"], 4) == 8
    firsts = [cat.next_seqs(rec["id"], n) for n in (3, 5, 1)]
    assert firsts == [0, 3, 8]
    cat.modify(rec["id"], "uno", None, {"ef_search": 50})
    with pytest.raises(pysvdb.SvDBError, match="open in another handle or process"):  # one catalog per path
        Catalog(str(tmp_path))
    cat.close()
    assert not (tmp_path / "catalog.json").exists()

    again = Catalog(str(tmp_path))
    got = again.get("uno")
    assert (got["id"], got["shards"], got["dim"], got["metadata"]) == (rec["id"], 2, 8, {"k": "v"})
    assert got["hnsw"] == {"space": "l2", "ef_search": 50}
    # The first reservation wrote the ceiling 3 + SEQ_LEASE (the next two wrote
    # nothing); the reopened catalog starts there, above every number handed out.
    assert again.next_seqs(rec["id"], 2) == 3 + SEQ_LEASE
    with pytest.raises(pysvdb.chroma.errors.NotFoundError):
        again.get("one")
    assert again.record(rec["id"])["name"] == "uno"  # by id, whatever the name
    # Ray retries a call whose actor died before answering: a create or delete that was
    # done answers the retry as done (the driver chose the id), not "exists"/"not found".
    cid = "0b0e7a9c-27d2-4c58-9e3a-7f0c1c1d2e3f"
    made = again.create("dos", 1, 1, None, {}, False, cid)
    assert again.create("dos", 1, 1, None, {}, False, cid) == made and made["id"] == cid
    with pytest.raises(pysvdb.chroma.errors.InternalError, match="already exists"):
        again.create("dos", 1, 1, None, {}, False, "1b0e7a9c-27d2-4c58-9e3a-7f0c1c1d2e3f")
    with pytest.raises(pysvdb.chroma.errors.InternalError, match="not a collection id"):
        again.create("tres", 1, 1, None, {}, False, "../x")
    assert again.delete(rec["id"]) is True and again.delete(rec["id"]) is False
    assert again.delete(cid) is True
    again.close()
    assert Catalog(str(tmp_path)).list() == []


def test_bad_shard_and_replica_counts(client: Any) -> None:
    for kw in ({"shards": 0}, {"replicas": 0}, {"shards": 1.5}, {"replicas": True}):
        with pytest.raises(ValueError, match="must be a positive integer"):
            client.create_collection("counts", **kw)
    with pytest.raises(ValueError, match="replicas=4 needs as many nodes; the cluster has 3"):
        client.create_collection("counts", replicas=4)
    assert "counts" not in [c.name for c in client.list_collections()]


# ---------------------------------------------------------------- failures


def test_killed_shard_mid_ingest_loses_no_acknowledged_row(client: Any, ray_mod: Any) -> None:
    col = client.create_collection("kill", shards=2)
    rng = np.random.default_rng(7)
    acked: List[str] = []
    killer = threading.Timer(0.5, lambda: ray_mod.kill(col._shards[0], no_restart=False))
    killer.start()
    kills = 1
    for b in range(40):
        if b == 39:
            assert killer.finished.is_set(), "the timer kill happened during the ingest"
        ids = ["k%d-%d" % (b, i) for i in range(50)]
        col.add(ids=ids, embeddings=rng.random((50, 4), dtype=np.float32))
        acked += ids  # add returned: acknowledged
        if b == 25:
            ray_mod.kill(col._shards[1], no_restart=False)
            kills += 1
    killer.join()
    got = col.get(include=[])["ids"]
    assert kills == 2
    assert len(got) == len(set(got)) == col.count()
    assert set(got) == set(acked)


def test_unreachable_shard_is_named(client: Any, ray_mod: Any) -> None:
    from pysvdb.ray import RayClient, ShardUnavailableError

    col = client.create_collection("dead", shards=2)
    col.add(ids=["a", "b", "c", "d"], embeddings=[[float(i)] * 3 for i in range(4)])
    impatient = RayClient(client._path, timeout=1.0).get_collection("dead")
    col._shards[1].pause.remote(4.0)  # shard 1 busy: no answer within 1 s
    with pytest.raises(ShardUnavailableError, match=r"shard 1 of collection 'dead' .* did not answer within 1 s"):
        impatient.count()
    time.sleep(3.5)
    assert impatient.count() == 4
    ray_mod.kill(col._shards[0], no_restart=True)  # gone for good
    # ray.kill only sends the kill: the actor may answer a call or two before it dies
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ray_mod.get(col._shards[0].ping.remote(), timeout=5)
        except Exception:
            break
        time.sleep(0.05)
    with pytest.raises(ShardUnavailableError, match=r"shard 0 of collection 'dead' .* is unavailable"):
        col.query(query_embeddings=[[0.0] * 3], n_results=2)


# ---------------------------------------------------------------- HNSW recall


def _fvecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return raw.reshape(-1, dim + 1)[:, 1:].copy().view(np.float32)


def _ivecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, int(raw[0]) + 1)[:, 1:]


def test_hnsw_recall_close_to_one_collection(client: Any, single: Any) -> None:
    if not (DATA / "siftsmall_base.fvecs").exists():
        pytest.skip("siftsmall not found in %s (set SVDB_DATA)" % DATA)
    base = _fvecs(DATA / "siftsmall_base.fvecs")
    queries = _fvecs(DATA / "siftsmall_query.fvecs")
    truth = _ivecs(DATA / "siftsmall_groundtruth.ivecs")[:, :10]
    ids = [str(i) for i in range(len(base))]
    recalls = []
    for col in (client.create_collection("sift", shards=3), single.create_collection("sift")):
        for s in range(0, len(base), 5000):
            col.add(ids=ids[s:s + 5000], embeddings=base[s:s + 5000])
        res = col.query(query_embeddings=queries, n_results=10, include=[])
        hits = [len({int(x) for x in row} & set(t.tolist())) for row, t in zip(res["ids"], truth)]
        recalls.append(sum(hits) / truth.size)
    assert recalls[0] >= recalls[1] - 0.01, recalls
    assert recalls[1] > 0.9


# ---------------------------------------------------------------- Ray Data


def test_add_dataset_from_parquet_and_numpy(client: Any, single: Any, ray_mod: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, vecs, metas, docs = _rows(500, dim=6, seed=3)
    table = pa.table({
        "id": ids,
        "emb": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 6),
        "m": [m["m"] for m in metas],
        "tag": [m["tag"] for m in metas],
        "doc": docs,
    })
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=100)
    col = client.create_collection("parquet", shards=3)
    n = col.add_dataset(ray_mod.data.read_parquet(str(tmp_path / "rows.parquet")), id_column="id",
                        embedding_column="emb", metadata_columns=["m", "tag"], document_column="doc",
                        batch_size=128)
    assert n == col.count() == 500
    got = col.get(ids=["id0", "id499", "id77"], include=["embeddings", "metadatas", "documents"])
    assert sorted(got["ids"]) == ["id0", "id499", "id77"]
    for i, id_ in enumerate(got["ids"]):
        j = int(id_[2:])
        np.testing.assert_array_equal(got["embeddings"][i], vecs[j].astype(np.float64))
        assert got["metadatas"][i] == {"m": metas[j]["m"], "tag": metas[j]["tag"]}
        assert got["documents"][i] == docs[j]

    # A numpy-backed dataset: a tensor column beside the ids.
    col2 = client.create_collection("numpy", shards=2)
    ds = ray_mod.data.range(500).map_batches(
        lambda b: {"id": np.array(["n%d" % i for i in b["id"]]), "emb": vecs[b["id"]]}, batch_format="numpy")
    assert col2.add_dataset(ds, id_column="id", embedding_column="emb", batch_size=100) == 500
    assert col2.count() == 500
    assert col2.get(ids=["n3"], include=["embeddings"])["embeddings"][0].tolist() == vecs[3].tolist()


def test_query_dataset_equals_per_row_queries(pair: Tuple[Any, Any, np.ndarray], ray_mod: Any) -> None:
    sharded, _, vecs = pair
    q = vecs[:40] + np.float32(0.01)
    out = sharded.query_dataset(ray_mod.data.from_numpy(q), embedding_column="data", n_results=5,
                                where={"m": {"$ne": 1}}, batch_size=16).take_all()
    assert len(out) == 40
    for row in out:
        want = sharded.query(query_embeddings=np.asarray(row["data"]), n_results=5, where={"m": {"$ne": 1}},
                             include=["distances"])
        assert list(row["ids"]) == want["ids"][0]
        np.testing.assert_allclose(row["distances"], want["distances"][0], rtol=1e-6)


def test_a_replica_that_lost_its_files_catches_up_from_its_peer(client: Any, ray_mod: Any) -> None:
    import shutil

    col = client.create_collection("catchup", shards=1, replicas=2)
    ids, vecs, metas, docs = _rows(120, seed=9)
    col.add(ids=ids[:100], embeddings=vecs[:100], metadatas=metas[:100], documents=docs[:100])
    col.delete(ids=["id5"])
    col.modify(metadata={"v": 2}, configuration={"hnsw": {"ef_search": 33}})
    # As if replica 1 restarted on a node without its files: remove them, then kill its process.
    shutil.rmtree(Path(client._path) / col.id / "shard-0" / "replica-1")
    ray_mod.kill(col._replicas[0][1], no_restart=False)
    col.add(ids=ids[100:], embeddings=vecs[100:], metadatas=metas[100:], documents=docs[100:])  # waits for both
    want = ray_mod.get(col._replicas[0][0].export.remote())
    got = ray_mod.get(col._replicas[0][1].export.remote(), timeout=60)
    assert len(got["ids"]) == 119
    assert got["ids"] == want["ids"] and got["metadatas"] == want["metadatas"]
    assert got["documents"] == want["documents"]
    assert (got["metadata"], got["hnsw"]["ef_search"]) == ({"v": 2}, 33) and got["hnsw"] == want["hnsw"]
    np.testing.assert_array_equal(np.asarray(got["embeddings"]), np.asarray(want["embeddings"]))
    # It received its peer's files (snapshot and log), not the rows: the same
    # collection directory, named by the peer's collection id, is now in both.
    shard = Path(client._path) / col.id / "shard-0"
    subdirs = [sorted(p.name for p in (shard / r).iterdir() if p.is_dir()) for r in ("replica-0", "replica-1")]
    assert subdirs[0] == subdirs[1] and len(subdirs[0]) == 1
    assert sorted(p.name for p in shard.iterdir()) == ["replica-0", "replica-1"]  # no .incoming or .old left


def test_concurrent_writers_leave_every_replica_equal(client: Any, ray_mod: Any) -> None:
    """Several writers (Ray tasks, each its own caller) upsert, update and delete
    the same ids at once: the replicas of each shard apply the writes in one
    order, so they end up holding the same rows, values and insertion order."""
    col = client.create_collection("order", shards=2, replicas=2)
    path = str(client._path)

    @ray_mod.remote(num_cpus=0)
    def writer(w: int) -> None:
        from pysvdb.ray import RayClient

        c = RayClient(path).get_collection("order")
        ids = ["x%d" % i for i in range(12)]
        for r in range(30):
            v = np.full((12, 4), w * 100 + r, dtype=np.float32)
            c.upsert(ids=ids, embeddings=v, metadatas=[{"w": w, "r": r, "k%d" % w: r}] * 12)
            c.update(ids=ids[:6], metadatas=[{"u": w * 100 + r}] * 6)
            if r % 7 == w % 7:
                c.delete(ids=ids[w::4])

    ray_mod.get([writer.remote(w) for w in range(4)], timeout=300)
    for k, reps in enumerate(col._replicas):
        a, b = (ray_mod.get(rep.export.remote(), timeout=60) for rep in reps)
        assert a["ids"] == b["ids"], "shard %d: rows or insertion order differ between replicas" % k
        assert a["metadatas"] == b["metadatas"], "shard %d: metadata differs between replicas" % k
        np.testing.assert_array_equal(np.asarray(a["embeddings"]), np.asarray(b["embeddings"]))


def test_a_killed_primary_hands_the_writes_to_the_next_replica(client: Any, ray_mod: Any) -> None:
    col = client.create_collection("failover", shards=1, replicas=2)
    rng = np.random.default_rng(3)
    acked: List[str] = []
    for b in range(30):
        if b in (10, 20):  # the primary (replica 0, the lowest live one), killed between writes and mid-write
            threading.Timer(0.0 if b == 10 else 0.01, lambda: ray_mod.kill(col._replicas[0][0], no_restart=False)).start()
        ids = ["f%d-%d" % (b, i) for i in range(20)]
        col.upsert(ids=ids, embeddings=rng.random((20, 4), dtype=np.float32), metadatas=[{"b": b}] * 20)
        acked += ids
    a, b_ = (ray_mod.get(rep.export.remote(), timeout=120) for rep in col._replicas[0])
    assert sorted(a["ids"]) == sorted(b_["ids"]) == sorted(acked)
    assert col.count() == len(acked)


def test_delete_removes_the_replicas_placement_groups(client: Any, ray_mod: Any) -> None:
    col = client.create_collection("pgdel", shards=2, replicas=2)
    names = {client._pg_name(col._rec, k) for k in range(2)}

    def live_groups() -> Set[str]:
        return {i["name"] for i in ray_mod.util.placement_group_table().values()
                if i["name"] in names and i["state"] != "REMOVED"}

    assert live_groups() == names
    client.delete_collection("pgdel")
    assert live_groups() == set()
    assert not (Path(client._path) / col.id).exists()


def test_a_copy_is_the_snapshot_and_log_as_of_its_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pysvdb.ray import _actors

    monkeypatch.setattr(_actors, "COPY_CHUNK", 1000)  # many pieces per file
    shard = tmp_path / "0b7e1c7a-93b1-4f43-9e2f-1a2b3c4d5e6f" / "shard-0"
    src = _actors.Shard(str(shard / "replica-0"), None, {})
    ids, vecs, metas, docs = _rows(60, seed=3)
    src.add(ids[:40], vecs[:40], metas[:40], docs[:40], None, list(range(40)))
    src.delete(["id7"])
    begin = src.export_begin()
    assert {rel for rel, _ in begin["files"]} >= {"pysvdb-chroma.json"} and all(
        "LOCK" not in rel and not rel.endswith(".lock") for rel, _ in begin["files"])
    # After the copy began: more writes and another checkpoint, which replaces the files.
    src.add(ids[40:], vecs[40:], metas[40:], docs[40:], None, list(range(40, 60)))
    src.export_end(src.export_begin()["token"])

    dst = _actors.Shard(str(shard / "replica-1"), None, {})
    reads = []

    def read(rel: str, offset: int, size: int) -> bytes:
        reads.append(size)
        return src.export_read(begin["token"], rel, offset, size)

    dst._copy_in(begin, read)
    dst._swap_in(begin)
    src.export_end(begin["token"])
    assert len(reads) > len(begin["files"]) and max(reads) == 1000
    got = dst.get(None, None, None, None, ["embeddings", "documents"])
    assert got["ids"] == [i for i in ids[:40] if i != "id7"]  # as of the start: not the later rows
    assert got["seqs"] == [i for i in range(40) if i != 7] and got["documents"] == [d for d in docs[:40] if d != docs[7]]
    np.testing.assert_array_equal(np.asarray(got["embeddings"]), np.delete(vecs[:40], 7, axis=0))
    assert src.count() == 59
    with pytest.raises(pysvdb.chroma.errors.InternalError, match="no copy"):
        src.export_read(begin["token"], begin["files"][0][0], 0, 10)
    with pytest.raises(pysvdb.chroma.errors.InternalError, match="outside its directory"):
        dst._copy_in({"files": [("../../escape", 1)]}, read)
    assert not (shard.parent / "escape").exists()


@pytest.mark.parametrize("state", ["incoming only", "both", "old only", "done"])
def test_an_interrupted_copy_is_finished_or_undone_at_start(tmp_path: Path, state: str) -> None:
    from pysvdb.ray._actors import _finish_install

    d = tmp_path / "shard-0" / "replica-1"
    d.parent.mkdir()
    made = {"incoming only": ["incoming", "dir"], "both": ["incoming", "old"], "old only": ["old"],
            "done": ["dir", "old"]}[state]
    for m in made:
        p = d if m == "dir" else d.with_name(d.name + "." + m)
        p.mkdir()
        (p / "which").write_text(m)
    _finish_install(str(d))
    # both: the complete copy was about to be renamed in; old only: the copy never began
    # its swap; incoming only / done: the directory is there, the leftover goes.
    want = {"incoming only": "dir", "both": "incoming", "old only": "old", "done": "dir"}[state]
    assert (d / "which").read_text() == want
    assert sorted(p.name for p in d.parent.iterdir()) == ["replica-1"]


def test_staging_removal_refuses_what_is_not_a_staging_directory(tmp_path: Path) -> None:
    from pysvdb.ray._actors import _remove_staging

    for bad in (tmp_path / "elsewhere" / "replica-1.incoming", tmp_path / "shard-0" / "data.old"):
        bad.mkdir(parents=True)
        with pytest.raises(pysvdb.chroma.errors.InternalError, match="not a staging directory"):
            _remove_staging(str(bad))
        assert bad.is_dir()
    target = tmp_path / "keep"
    target.mkdir()
    (tmp_path / "shard-0" / "replica-0.old").symlink_to(target)  # a link is left alone, its target too
    _remove_staging(str(tmp_path / "shard-0" / "replica-0.old"))
    assert target.is_dir()


# ---------------------------------------------------------------- replicas (last: removes a node)


@pytest.mark.slow
def test_replicas_keep_answering_when_a_node_goes(cluster: Any, client: Any, single: Any, ray_mod: Any) -> None:
    col = client.create_collection("repl", shards=2, replicas=2)
    one = single.create_collection("repl")
    # A replica on every node: once a node goes, one of its replicas has nowhere to run.
    three = client.create_collection("repl3", shards=1, replicas=3)
    three.add(ids=["t0"], embeddings=[[0.0] * 8])
    # The replicas' placement holds back no CPU: a 1-CPU task still starts on each 1-CPU node.
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray_mod.remote(num_cpus=1)
    def on_node() -> str:
        return str(ray_mod.get_runtime_context().get_node_id())

    nodes = [n.node_id for n in cluster.worker_nodes]
    ran = ray_mod.get([on_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
                       for n in nodes], timeout=60)
    assert ran == nodes
    where = {(k, r): ray_mod.get(rep.node.remote()) for k, reps in enumerate(col._replicas) for r, rep in enumerate(reps)}
    assert all(where[(k, 0)] != where[(k, 1)] for k in range(2)), "replicas of a shard on different nodes"
    ids, vecs, metas, docs = _rows(400, seed=5)
    for c in (col, one):
        c.add(ids=ids[:200], embeddings=vecs[:200], metadatas=metas[:200], documents=docs[:200])

    failures: List[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                r = col.query(query_embeddings=vecs[:3], n_results=5, include=["distances"])
                assert [len(x) for x in r["ids"]] == [5, 5, 5]
                answered[0] += 1
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)
                return

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    victim = next(n for n in cluster.worker_nodes if n.node_id in where.values())
    # Shards without replicas are dealt round the nodes, one each here.
    solo = client.create_collection("solo", shards=3)
    solo.add(ids=ids[:60], embeddings=vecs[:60])
    solo_nodes = [ray_mod.get(s.node.remote()) for s in solo._shards]
    assert sorted(solo_nodes) == sorted(n["NodeID"] for n in ray_mod.nodes() if n["Alive"])
    cluster.remove_node(victim)
    before_removal = answered[0]
    for s in range(200, 400, 25):  # writes during and after: each acknowledged when it returns
        for c in (col, one):
            c.add(ids=ids[s:s + 25], embeddings=vecs[s:s + 25], metadatas=metas[s:s + 25], documents=docs[s:s + 25])
    # Writes to the shard whose third replica cannot be placed are acknowledged by
    # the two live replicas, without waiting out the timeout for the third.
    waits = []
    for s in range(0, 40, 10):
        t0 = time.monotonic()
        three.add(ids=ids[s:s + 10], embeddings=vecs[s:s + 10])
        waits.append(time.monotonic() - t0)
    assert max(waits) < client._timeout / 4, waits
    time.sleep(0.5)
    stop.set()
    t.join()
    assert not failures, failures
    assert answered[0] > before_removal > 0
    # The shard without replicas that lived on the removed node had its rows on that node's disk
    # only: its calls fail, naming it, instead of an empty shard answering with rows missing.
    from pysvdb.ray import ShardUnavailableError

    lost = solo_nodes.index(victim.node_id)
    t0 = time.monotonic()
    with pytest.raises(ShardUnavailableError, match=r"shard %d of collection 'solo'" % lost):
        solo.count()
    assert time.monotonic() - t0 < client._timeout / 2
    # A new client starts that shard's actor again on the node the catalog recorded, not elsewhere on
    # an empty directory: the same error, and no answer without its rows.
    from pysvdb.ray import RayClient

    assert client._catalog_call("get", "solo")["nodes"] == solo_nodes
    again = RayClient(client._path, timeout=client._timeout).get_collection("solo")
    with pytest.raises(ShardUnavailableError, match=r"shard %d of collection 'solo'" % lost):
        again.get(include=[])
    assert three.count() == 41
    # A new node: Ray places the third replica there; it copies a live peer before it answers.
    cluster.add_node(num_cpus=1, object_store_memory=100 * MB)
    third = three._replicas[0][2]
    assert sorted(ray_mod.get(third.get.remote(None, None, None, None, []), timeout=120)["ids"]) == sorted(
        ["t0"] + ids[:40])

    assert col.count() == one.count() == 400
    _eq(col.get(include=["metadatas", "documents", "embeddings"]), one.get(include=["metadatas", "documents", "embeddings"]))
    q = vecs[[0, 150, 399]]
    _eq(col.query(query_embeddings=q, n_results=7), one.query(query_embeddings=q, n_results=7))
    # The replicas that were on the removed node run elsewhere, caught up: each one alone has every row of its shard.
    for k, reps in enumerate(col._replicas):
        got = [ray_mod.get(rep.get.remote(None, None, None, None, []), timeout=60)["ids"] for rep in reps]
        assert got[0] == got[1] and len(got[0]) > 0
        assert all(ray_mod.get(rep.node.remote()) != victim.node_id for rep in reps)
    assert sum(len(ray_mod.get(reps[0].get.remote(None, None, None, None, []))["ids"]) for reps in col._replicas) == 400
