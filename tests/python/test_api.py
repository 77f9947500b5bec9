"""Every public method, on lists and on numpy arrays."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython


def rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def brute_force(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "l2":
        return ((data - q) ** 2).sum(axis=1)
    if metric == "ip":
        return 1.0 - data @ q
    dn = data / np.linalg.norm(data, axis=1, keepdims=True)
    return 1.0 - dn @ (q / np.linalg.norm(q))


def test_issue_example(db: SvDBPython) -> None:
    db.add(ids=["id1", "id2"], embeddings=[[0.0, 1.0], [1.0, 0.0]], metadatas=['{"a": 1}', '{"b": 2}'])
    res = db.search(query=[0.1, 0.9], k=10)
    assert [r[0] for r in res] == ["id1", "id2"]
    assert all(isinstance(i, str) and isinstance(d, float) for i, d in res)
    assert res[0][1] == pytest.approx(0.02, abs=1e-6)
    assert db.get("id1") == '{"a": 1}'
    assert db.count() == 2
    assert db.delete(["id2"]) == 1
    assert db.get_all_ids() == ["id1"]
    db.persist()


def test_add_search_get(db: SvDBPython) -> None:
    data = rows(50, 8)
    ids = ["r%d" % i for i in range(50)]
    metas = [{"i": i, "name": "row %d" % i} if i % 2 else None for i in range(50)]
    db.add(ids=ids, embeddings=data, metadatas=metas)
    assert len(db) == db.count() == 50
    assert db.dim == 8
    assert db.get_all_ids() == ids
    for i in (0, 1, 49):
        m = db.get(ids[i])
        assert (m is None) if i % 2 == 0 else json.loads(m) == metas[i]
        np.testing.assert_array_equal(db.get_vector(ids[i]), data[i])
        assert db.get_vector(ids[i]).dtype == np.float32
    q = rows(1, 8, seed=9)[0]
    res = db.search(q, k=5)
    want = np.argsort(brute_force(data, q, "l2"), kind="stable")[:5]
    assert [r[0] for r in res] == [ids[i] for i in want]
    dists = [r[1] for r in res]
    assert dists == sorted(dists)
    np.testing.assert_allclose(dists, brute_force(data, q, "l2")[want], rtol=1e-4, atol=1e-4)


def test_metadata_forms(db: SvDBPython) -> None:
    db.add(["s", "d", "n", "u"], np.eye(4, dtype=np.float32),
           ['{"kind": "str"}', {"kind": "dict", "nested": {"x": [1, 2.5, None, True]}}, None, {"ü": "é"}])
    assert db.get("s") == '{"kind": "str"}'
    assert json.loads(db.get("d") or "") == {"kind": "dict", "nested": {"x": [1, 2.5, None, True]}}
    assert db.get("n") is None
    assert json.loads(db.get("u") or "") == {"ü": "é"}
    db.add(["none"], [[1, 1, 1, 1]], [None])
    db.add(["omitted"], [[1, 1, 1, 2]])
    assert db.get("none") is None and db.get("omitted") is None


def test_unicode_ids(db: SvDBPython) -> None:
    ids = ["日本語", "emoji-😀", "a b\tc", "x" * 1024]
    db.add(ids, rows(4, 3))
    assert db.get_all_ids() == ids
    assert all(i in db for i in ids)
    assert {r[0] for r in db.search([0, 0, 0], k=10)} == set(ids)


def test_upsert(db: SvDBPython) -> None:
    db.add(["a", "b"], [[1, 0], [0, 1]], [{"v": 1}, {"v": 2}])
    db.upsert(["b", "c"], [[5, 5], [7, 7]], [None, {"v": 3}])
    assert db.count() == 3
    assert db.get_all_ids() == ["a", "b", "c"]  # b keeps its position
    assert db.get("b") is None  # None metadata removes it
    np.testing.assert_array_equal(db.get_vector("b"), [5, 5])
    assert db.get("c") == '{"v": 3}'
    db.upsert(["a"], [[1, 0]])
    assert db.get("a") is None


def test_delete(db: SvDBPython) -> None:
    db.add(["a", "b", "c"], rows(3, 4))
    assert db.delete(["a", "zzz", "a"]) == 1
    assert db.delete(["a"]) == 0
    assert db.get_all_ids() == ["b", "c"]
    assert "a" not in db and "b" in db
    assert db.contains("b") and not db.contains("a")
    assert db.delete(("b", "c")) == 2
    assert db.count() == 0 and db.get_all_ids() == []
    assert db.search([1, 2, 3, 4], k=3) == []
    db.add(["a"], rows(1, 4))  # a deleted id can be added again
    assert db.count() == 1


def test_search_k_larger_than_count_and_empty(db: SvDBPython) -> None:
    assert db.search([1.0, 2.0], k=5) == []  # no dimension yet: nothing to find
    ids, d = db.search_batch([[1.0, 2.0]], k=2)
    assert ids.tolist() == [[None, None]] and np.isinf(d).all()
    db.add(["a", "b"], [[0, 0], [1, 1]])
    assert len(db.search([0, 0], k=100)) == 2
    assert len(db.search([0, 0], k=1)) == 1


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_metrics_match_numpy(db_path: str, metric: str) -> None:
    data = rows(200, 16, seed=3)
    if metric == "ip":
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    with SvDBPython(db_path, metric=metric) as db:  # type: ignore[arg-type]
        assert db.metric == metric
        db.add(["%d" % i for i in range(200)], data)
        qs = rows(5, 16, seed=4)
        for q in qs:
            res = db.search(q, k=10)
            bf = brute_force(data, q, metric)
            want = np.argsort(bf, kind="stable")[:10]
            assert [int(r[0]) for r in res] == want.tolist()
            np.testing.assert_allclose([r[1] for r in res], bf[want], rtol=1e-4, atol=1e-5)


def test_search_batch(db: SvDBPython) -> None:
    data = rows(100, 12, seed=1)
    ids = ["v%d" % i for i in range(100)]
    db.add(ids, data)
    qs = rows(7, 12, seed=2)
    res = db.search_batch(qs, k=4)
    out_ids, dists = res
    assert res.ids is out_ids and res.distances is dists
    assert out_ids.shape == (7, 4) and out_ids.dtype == object
    assert dists.shape == (7, 4) and dists.dtype == np.float32
    assert dists.flags.c_contiguous and dists.flags.writeable  # an ordinary array, not a view of C's hits
    for i, q in enumerate(qs):
        single = db.search(q, k=4)
        assert out_ids[i].tolist() == [s[0] for s in single]
        np.testing.assert_allclose(dists[i], [s[1] for s in single], rtol=1e-6)
    # Padding when k exceeds the collection.
    small_ids, small_d = db.search_batch(qs[:2], k=150)
    assert small_ids.shape == (2, 150)
    assert all(x is not None for x in small_ids[:, :100].ravel())
    assert all(x is None for x in small_ids[:, 100:].ravel())
    assert np.isinf(small_d[:, 100:]).all() and np.isfinite(small_d[:, :100]).all()
    # Threads option gives the same answer.
    t_ids, t_d = db.search_batch(qs, k=4, threads=1)
    assert t_ids.tolist() == out_ids.tolist()
    np.testing.assert_array_equal(t_d, dists)


def test_where_filter(db: SvDBPython) -> None:
    data = rows(40, 4, seed=5)
    db.add(["%d" % i for i in range(40)], data, [{"even": i % 2 == 0, "i": i} for i in range(40)])
    res = db.search(data[3], k=40, where={"even": True})
    assert len(res) == 20 and all(int(i) % 2 == 0 for i, _ in res)
    res = db.search(data[3], k=5, where='{"i": {"$lt": 3}}')
    assert sorted(int(i) for i, _ in res) == [0, 1, 2]
    ids, d = db.search_batch(data[:2], k=5, where={"i": {"$in": [7, 8]}})
    assert sorted(x for x in ids[0] if x is not None) == ["7", "8"]
    assert ids[0, 2] is None and np.isinf(d[0, 2])
    with pytest.raises(pysvdb.InvalidArgumentError):
        db.search(data[0], k=3, where={"i": {"$bogus": 1}})


def test_hnsw_index(db_path: str) -> None:
    data = rows(500, 16, seed=11)
    with SvDBPython(db_path, index="hnsw", M=8, ef_construction=64, ef_search=64, seed=1,
                    build_threads=1) as db:
        assert db.index == "hnsw"
        db.add(["%d" % i for i in range(500)], data)
        hits = db.search(data[17], k=5, ef=100)
        assert hits[0][0] == "17" and hits[0][1] == pytest.approx(0.0, abs=1e-5)
    with SvDBPython(db_path) as db:
        assert db.index == "hnsw" and db.count() == 500
        assert db.search(data[42], k=1)[0][0] == "42"


def test_hnsw_background_indexing(db_path: str) -> None:
    data = rows(3000, 16, seed=12)
    ids = ["%d" % i for i in range(3000)]
    with SvDBPython(db_path, index="hnsw", background_indexing=True) as db:
        assert db.index_pending() == 0
        db.add(ids[:2000], data[:2000])
        # found at once, linked or not: a stored vector is its own nearest row
        for i in (0, 999, 1999):
            assert db.search(data[i], k=1, ef=100)[0][0] == ids[i]
        db.delete(ids[:10])
        db.add(ids[2000:], data[2000:])
        assert 0 <= db.index_pending() <= 2990
        db.index_wait()
        assert db.index_pending() == 0 and db.count() == 2990
        assert db.search(data[2500], k=1)[0][0] == "2500"
        assert all(h[0] not in ids[:10] for h in db.search(data[5], k=20, ef=100))
    with SvDBPython(db_path) as db:  # reopened without it: everything linked at open
        assert db.index_pending() == 0
        db.index_wait()
        assert db.search(data[1500], k=1)[0][0] == "1500"
    with pytest.raises(pysvdb.InvalidTypeError):
        SvDBPython(db_path, background_indexing="yes")  # type: ignore[arg-type]


def test_index_backlog_bytes_bounds_the_rows_waiting(db_path: str) -> None:
    data = rows(6000, 16, seed=13)
    ids = ["%d" % i for i in range(6000)]
    bound = 300  # rows
    with SvDBPython(db_path, index="hnsw", background_indexing=True, index_backlog_bytes=bound * 16 * 4) as db:
        for start in range(0, 6000, 1500):
            db.add(ids[start : start + 1500], data[start : start + 1500])
            assert db.index_pending() <= bound  # the add returned only once linking had caught up
        db.upsert(ids[:1500], data[1500:3000])
        assert db.index_pending() <= bound
        for i in (3000, 4500, 5999):  # rows the upsert left alone
            assert db.search(data[i], k=1, ef=100)[0][0] == ids[i]
        assert np.array_equal(db.get_vector(ids[0]), data[1500])
    bad_values = (("1", pysvdb.InvalidTypeError), (-1, pysvdb.InvalidArgumentError), (2**64, pysvdb.InvalidArgumentError))
    for bad, err in bad_values:
        with pytest.raises(err):
            SvDBPython(db_path, index_backlog_bytes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("storage", ["f16", "int8"])
def test_hnsw_compact_storage(db_path: str, storage: str) -> None:
    data = rows(1500, 32, seed=21)
    ids = ["%d" % i for i in range(1500)]
    q = rows(20, 32, seed=22)
    with SvDBPython(db_path, index="hnsw", storage=storage, metric="l2") as db:
        assert db.storage == storage
        db.add(ids[:1000], data[:1000])
        db.persist()  # the originals move from the log to the snapshot
        db.add(ids[1000:], data[1000:])
        # the float32 originals come back bit for bit, wherever they live
        for i in (0, 999, 1000, 1499):
            vec = db.get_vector(ids[i])
            assert np.array_equal(vec, data[i])
        # distances are exact (re-ranked against the originals), results in order
        for j in range(len(q)):
            hits = db.search(q[j], k=5, ef=64)
            exact = brute_force(data, q[j], "l2")
            for hid, d in hits:
                assert d == pytest.approx(float(exact[int(hid)]), rel=1e-4)
            assert [h[1] for h in hits] == sorted(h[1] for h in hits)
        batch = db.search_batch(q, k=5, ef=64)
        assert [list(r) for r in batch.ids] == [[h[0] for h in db.search(v, k=5, ef=64)] for v in q]
    with SvDBPython(db_path) as db:  # reopened: the stored storage
        assert db.storage == storage and db.count() == 1500
        assert db.search(data[1234], k=1)[0] == ("1234", 0.0)
    with pytest.raises(pysvdb.MismatchError):
        SvDBPython(db_path, storage="f32")
    with pytest.raises(pysvdb.InvalidArgumentError):
        SvDBPython(db_path + "-flat", index="flat", storage=storage)
    with pytest.raises(pysvdb.InvalidArgumentError):
        SvDBPython(db_path + "-x", index="hnsw", storage="f8")  # type: ignore[arg-type]
    with pytest.raises(pysvdb.InvalidTypeError):
        SvDBPython(db_path + "-y", index="hnsw", storage=16)  # type: ignore[arg-type]


def test_storage_defaults_to_f32(db: SvDBPython) -> None:
    assert db.storage == "f32"


def test_numpy_and_lists_identical(db_path: str, tmp_path: Path) -> None:
    data = rows(30, 6, seed=7)
    ids = ["x%d" % i for i in range(30)]
    q = rows(3, 6, seed=8)
    inputs = {
        "list": (data.tolist(), q.tolist()),
        "f32": (data, q),
        "f64": (data.astype(np.float64), q.astype(np.float64)),
        "fortran": (np.asfortranarray(data), np.asfortranarray(q)),
        "strided": (np.repeat(data, 2, axis=1)[:, ::2], np.repeat(q, 2, axis=1)[:, ::2]),
        "tuple": (tuple(tuple(r) for r in data.tolist()), tuple(tuple(r) for r in q.tolist())),
        "list-of-arrays": (list(data), list(q)),
    }
    results = {}
    for name, (emb, queries) in inputs.items():
        with SvDBPython(str(tmp_path / name)) as db:
            db.add(ids, emb)
            single = [db.search(qq, k=5) for qq in queries]
            batch = db.search_batch(queries, k=5)
            vec = db.get_vector("x3")
            results[name] = (single, batch.ids.tolist(), batch.distances.tolist(), vec.tolist())
    first = results["list"]
    for name, r in results.items():
        assert r == first, name


def test_zero_copy_for_contiguous_float32(db: SvDBPython, monkeypatch: pytest.MonkeyPatch) -> None:
    """A C-contiguous float32 array goes to C as is: numpy is not asked to convert it."""
    import pysvdb._db as impl

    data = rows(10, 4)
    called: List[object] = []

    def spy(name: str) -> Any:
        real = getattr(impl.np, name)

        def f(*a: object, **kw: object) -> object:
            called.append(a[0])
            return real(*a, **kw)

        return f

    for name in ("ascontiguousarray", "asarray", "require"):
        monkeypatch.setattr(impl.np, name, spy(name))
    db.add(["%d" % i for i in range(10)], data)
    db.search(data[0], k=2)
    db.search_batch(data[:3], k=2)
    assert called == []
    db.search(data[0].tolist(), k=2)  # a list is converted once
    assert len(called) == 2  # asarray, then require(float32, C-contiguous, aligned)


def test_properties_repr_len_contains(db_path: str) -> None:
    db = SvDBPython(db_path, dim=3, metric="cosine", durability="sync")
    assert db.path == db_path
    assert db.dim == 3 and db.metric == "cosine" and db.durability == "sync" and db.index == "flat"
    assert not db.closed and bool(db)  # an empty open database is still truthy
    r = repr(db)
    assert db_path in r and "dim=3" in r and "'cosine'" in r and "count=0" in r
    db.add(["a"], [[1, 2, 3]])
    assert "count=1" in repr(db) and len(db) == 1 and "a" in db and "b" not in db
    db.close()
    assert db.closed and "closed" in repr(db) and db_path in repr(db)


def test_dim_none_until_first_add(db: SvDBPython) -> None:
    assert db.dim is None
    db.add(["a"], [[1.0] * 5])
    assert db.dim == 5


def test_pathlike(tmp_path: Path) -> None:
    with SvDBPython(tmp_path / "p") as db:
        assert db.path == str(tmp_path / "p")
        db.add(["a"], [[1.0]])
    assert (tmp_path / "p").is_dir()


def test_context_manager_and_close(db_path: str) -> None:
    with SvDBPython(db_path) as db:
        db.add(["a"], [[1.0, 2.0]])
    assert db.closed
    db.close()  # closing twice is a no-op
    with pytest.raises(pysvdb.ClosedError):
        with db:
            pass


CLOSED_CALLS = {
    "add": lambda d: d.add(["z"], [[1.0, 2.0]]),
    "upsert": lambda d: d.upsert(["z"], [[1.0, 2.0]]),
    "delete": lambda d: d.delete(["a"]),
    "get": lambda d: d.get("a"),
    "get_vector": lambda d: d.get_vector("a"),
    "contains": lambda d: "a" in d,
    "count": lambda d: d.count(),
    "len": lambda d: len(d),
    "get_all_ids": lambda d: d.get_all_ids(),
    "search": lambda d: d.search([1.0, 2.0], k=1),
    "search_batch": lambda d: d.search_batch([[1.0, 2.0]], k=1),
    "search_ids": lambda d: d.search([1.0, 2.0], k=1, ids=["a"]),
    "get_batch": lambda d: d.get_batch(["a"]),
    "get_many": lambda d: d.get_many(["a"]),
    "get_many_empty": lambda d: d.get_many([]),
    "update": lambda d: d.update(["a"], metadatas=[{"k": 1}]),
    "persist": lambda d: d.persist(),
    "dim": lambda d: d.dim,
    "metric": lambda d: d.metric,
    "index": lambda d: d.index,
}


@pytest.mark.parametrize("name", sorted(CLOSED_CALLS))
def test_closed_handle_raises(db_path: str, name: str) -> None:
    db = SvDBPython(db_path)
    db.add(["a"], [[1.0, 2.0]])
    db.close()
    with pytest.raises(pysvdb.ClosedError) as ei:
        CLOSED_CALLS[name](db)
    assert isinstance(ei.value, pysvdb.MisuseError) and isinstance(ei.value, ValueError)
    assert ei.value.code == -2


def test_not_copyable_or_picklable(db: SvDBPython) -> None:
    for fn in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(pysvdb.InvalidTypeError):
            fn(db)
    db.add(["a"], [[1.0]])
    assert db.count() == 1


def test_garbage_collected_handle_releases_lock(db_path: str) -> None:
    db = SvDBPython(db_path)
    db.add(["a"], [[1.0]])
    del db
    import gc

    gc.collect()
    with SvDBPython(db_path) as again:  # would be LockedError if the handle leaked
        assert again.get_all_ids() == ["a"]


def test_module_info() -> None:
    assert pysvdb.ABI_VERSION == 1
    assert pysvdb.library_version().count(".") == 2
    assert pysvdb.simd_path()
    assert pysvdb.MAX_ID_BYTES == 1024 and pysvdb.MAX_DIM == 65536
    assert isinstance(pysvdb.__version__, str)
    for name in pysvdb.__all__:
        assert hasattr(pysvdb, name), name
