"""SvDBPython's batch calls over libsvdb's svdb_get_batch, svdb_update_batch,
the search id allow-list and automatic checkpoints: results, and every error."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython


@pytest.fixture
def rows(db: SvDBPython) -> SvDBPython:
    db.add(
        ["a", "b", "c"],
        [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
        [{"k": 1, "#document": "doc a"}, None, '{"s": "x", "n": 12345678901234567890}'],
    )
    return db


# ---------------------------------------------------------------- get_batch


def test_get_batch_answers_each_id_in_order(rows: SvDBPython) -> None:
    r = rows.get_batch(["c", "zz", "a", "c"], vectors=True)
    found, metas, vecs = r  # unpacks as a tuple
    assert found.dtype == np.bool_ and found.tolist() == [True, False, True, True]
    assert metas == ['{"s": "x", "n": 12345678901234567890}', None, '{"k": 1, "#document": "doc a"}', metas[0]]
    assert vecs is not None and vecs.dtype == np.float32
    np.testing.assert_array_equal(vecs, [[1, 1], [0, 0], [1, 0], [1, 1]])
    assert isinstance(r, pysvdb.GetBatchResult)


def test_get_batch_reads_only_what_is_asked(rows: SvDBPython) -> None:
    r = rows.get_batch(("b", "a"), metadata=False)
    assert r.found.tolist() == [True, True] and r.metadatas is None and r.vectors is None
    assert rows.get_batch(["b"]).metadatas == [None]  # a row without metadata


def test_get_batch_on_a_collection_never_written(db: SvDBPython) -> None:
    r = db.get_batch(["a", "b"], vectors=True)
    assert r.found.tolist() == [False, False] and r.metadatas == [None, None]
    assert r.vectors is not None and r.vectors.shape == (2, 0)


@pytest.mark.parametrize(
    "ids, exc, match",
    [
        ("ab", TypeError, "list of str"),
        (b"ab", TypeError, "list of str"),
        (None, TypeError, "list of str"),
        ({"a": 1}, TypeError, "list of str"),
        (["a", 5], TypeError, r"ids\[1\] must be a str"),
        ([], pysvdb.InvalidArgumentError, "empty"),
        (["a", ""], pysvdb.InvalidArgumentError, r"ids\[1\] is empty"),
        (["a\0b"], pysvdb.InvalidArgumentError, "NUL"),
        (["x" * 1025], pysvdb.TooBigError, "1024"),
    ],
)
def test_get_batch_refuses_bad_ids(rows: SvDBPython, ids: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        rows.get_batch(ids)


def test_get_many_is_get_batch_of_the_rows_found(rows: SvDBPython) -> None:
    found, metas, vecs = rows.get_many(["zz", "b", "a"], vectors=True)
    assert found == [1, 2] and metas == [None, '{"k": 1, "#document": "doc a"}']
    np.testing.assert_array_equal(vecs, [[0, 1], [1, 0]])
    found, metas, vecs = rows.get_many([], vectors=True)
    assert found == [] and metas == [] and vecs is not None and vecs.shape == (0, 2)


# ---------------------------------------------------------------- update


def test_update_replaces_only_what_is_given(rows: SvDBPython) -> None:
    assert rows.update(["a"], [[3.0, 4.0]]) == 1  # vector only: metadata stays
    assert json.loads(rows.get("a") or "") == {"k": 1, "#document": "doc a"}
    np.testing.assert_array_equal(rows.get_vector("a"), [3, 4])
    assert rows.update(["a", "b"], metadatas=[{"z": 1}, None]) == 2  # metadata only: vectors stay
    assert rows.get("a") == '{"z": 1}' and rows.get("b") is None
    np.testing.assert_array_equal(rows.get_vector("a"), [3, 4])
    rows.update(["a"], metadatas=["{}"])  # replace mode: an empty object
    assert json.loads(rows.get("a") or "null") in ({}, None)
    assert rows.search([3.0, 4.0], k=1)[0] == ("a", 0.0)
    assert rows.get_all_ids() == ["a", "b", "c"]  # rows keep their place


def test_update_merges_metadata(rows: SvDBPython) -> None:
    assert rows.update(["a", "c"], metadatas=[{"k": None, "new": [1, 2]}, {"n": None, "s": "y"}], merge=True) == 2
    assert rows.get("a") == '{"#document":"doc a","new":[1, 2]}'
    assert json.loads(rows.get("c") or "") == {"s": "y"}
    rows.update(["b"], metadatas=[{"gone": None}], merge=True)  # a row without metadata, a key not there
    assert rows.get("b") is None
    rows.update(["c"], metadatas=[{"s": None}], merge=True)  # the last key goes: no metadata
    assert rows.get("c") is None


def test_update_keeps_big_integers_exact(rows: SvDBPython) -> None:
    rows.update(["c"], metadatas=[{"t": True}], merge=True)
    text = rows.get("c") or ""
    assert "12345678901234567890" in text and json.loads(text) == {"s": "x", "n": 12345678901234567890, "t": True}


def test_update_missing_ids(rows: SvDBPython) -> None:
    with pytest.raises(pysvdb.NotFoundError, match="zz"):
        rows.update(["a", "zz"], metadatas=[{"x": 1}, {"x": 2}])
    assert rows.get("a") == '{"k": 1, "#document": "doc a"}'  # nothing changed
    assert rows.update(["zz", "a"], metadatas=[{"x": 2}, {"x": 1}], merge=True, skip_missing=True) == 1
    assert json.loads(rows.get("a") or "")["x"] == 1 and "zz" not in rows
    assert rows.update(["zz"], [[1.0, 1.0]], skip_missing=True) == 0


def test_update_is_all_or_nothing(rows: SvDBPython) -> None:
    big = "x" * (pysvdb.MAX_METADATA_BYTES - 100)
    rows.update(["b"], metadatas=[{"big": big}])
    with pytest.raises(pysvdb.TooBigError):
        rows.update(["a", "b"], [[9.0, 9.0], [9.0, 9.0]], [{"k": 2}, {"more": big}], merge=True)
    assert rows.get("a") == '{"k": 1, "#document": "doc a"}'
    np.testing.assert_array_equal(rows.get_vector("a"), [1, 0])


UPDATE_ERRORS: Dict[str, Any] = {
    "bare string": (lambda d: d.update("ab", metadatas=[{}, {}]), TypeError, "list of str"),
    "id type": (lambda d: d.update([1], metadatas=[{}]), TypeError, "must be a str"),
    "empty": (lambda d: d.update([], [[1.0, 2.0]]), pysvdb.InvalidArgumentError, "empty"),
    "bad id": (lambda d: d.update([""], [[1.0, 2.0]]), pysvdb.InvalidArgumentError, "empty"),
    "nothing": (lambda d: d.update(["a"]), pysvdb.InvalidArgumentError, "nothing to update"),
    "all None": (lambda d: d.update(["a"], metadatas=[None]), pysvdb.InvalidArgumentError, "nothing to update"),
    "count": (lambda d: d.update(["a", "b"], [[1.0, 2.0]]), pysvdb.InvalidArgumentError, "2 ids but 1"),
    "meta count": (lambda d: d.update(["a"], metadatas=[{}, {}]), pysvdb.InvalidArgumentError, "2 entries"),
    "dim": (lambda d: d.update(["a"], [[1.0, 2.0, 3.0]]), pysvdb.DimensionError, "3"),
    "nan": (lambda d: d.update(["a"], [[float("nan"), 1.0]]), pysvdb.InvalidArgumentError, None),
    "shape": (lambda d: d.update(["a"], [1.0, 2.0]), pysvdb.InvalidArgumentError, "2-dimensional"),
    "vector type": (lambda d: d.update(["a"], "12"), TypeError, "numbers"),
    "duplicate": (lambda d: d.update(["a", "a"], metadatas=[{}, {}]), pysvdb.DuplicateIdError, "a"),
    "json": (lambda d: d.update(["a"], metadatas=["[1]"]), pysvdb.MetadataError, None),
    "meta type": (lambda d: d.update(["a"], metadatas=[5]), pysvdb.MetadataError, "dict"),
    "metas type": (lambda d: d.update(["a"], metadatas="{}"), TypeError, "metadatas must be a list"),
    "merge type": (lambda d: d.update(["a"], metadatas=[{}], merge="yes"), TypeError, "merge must be a bool"),
    "skip type": (lambda d: d.update(["a"], metadatas=[{}], skip_missing=None), TypeError, "skip_missing"),
}


@pytest.mark.parametrize("name", sorted(UPDATE_ERRORS))
def test_update_errors_change_nothing(rows: SvDBPython, name: str) -> None:
    call, exc, match = UPDATE_ERRORS[name]
    with pytest.raises(exc, match=match):
        call(rows)
    assert rows.get_batch(["a", "b", "c"]).metadatas == [
        '{"k": 1, "#document": "doc a"}',
        None,
        '{"s": "x", "n": 12345678901234567890}',
    ]
    np.testing.assert_array_equal(rows.get_batch(["a", "b", "c"], vectors=True).vectors, [[1, 0], [0, 1], [1, 1]])


# ---------------------------------------------------------------- search with an id allow-list


def test_search_ids_scores_exactly_the_rows_named(tmp_path: Any) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((500, 8)).astype(np.float32)
    ids = ["r%d" % i for i in range(500)]
    for metric in ("l2", "cosine", "ip"):
        with SvDBPython(str(tmp_path / metric), metric=metric, index="hnsw") as db:  # type: ignore[arg-type]
            db.add(ids, data)
            allowed = ["r7", "r300", "nope", "r7", "r42", "r499"]
            q = rng.standard_normal(8).astype(np.float32)
            hits = db.search(q, k=10, ids=allowed)
            assert sorted(h[0] for h in hits) == ["r300", "r42", "r499", "r7"]
            rows = data[[7, 300, 42, 499]]
            if metric == "l2":
                want = ((rows - q) ** 2).sum(1)
            elif metric == "ip":
                want = 1 - rows @ q
            else:
                want = 1 - rows @ q / np.linalg.norm(rows, axis=1) / np.linalg.norm(q)
            got = dict(hits)
            np.testing.assert_allclose([got[i] for i in ("r7", "r300", "r42", "r499")], want, rtol=1e-5, atol=1e-5)
            assert [d for _, d in hits] == sorted(d for _, d in hits)
            assert db.search(q, k=2, ids=allowed) == hits[:2]
            res = db.search_batch(np.stack([q, -q]), k=3, ids=allowed, threads=1)
            assert res.ids[0].tolist() == [h[0] for h in hits[:3]]
            assert set(res.ids[1].tolist()) <= set(allowed)


def test_search_ids_with_filters(rows: SvDBPython) -> None:
    assert rows.search([1.0, 0.0], k=5, ids=["a", "b", "c"], where={"s": "x"}) == [("c", 1.0)]
    assert rows.search([1.0, 0.0], k=5, ids=["b"], where_document={"$contains": "doc"}) == []
    assert rows.search([1.0, 0.0], k=5, ids=["zz"]) == []


@pytest.mark.parametrize(
    "ids, exc",
    [
        ("ab", TypeError),
        ([1], TypeError),
        ([], pysvdb.InvalidArgumentError),
        ([""], pysvdb.InvalidArgumentError),
        (["x" * 1025], pysvdb.TooBigError),
    ],
)
def test_search_ids_refuses_bad_lists(rows: SvDBPython, ids: Any, exc: type) -> None:
    with pytest.raises(exc):
        rows.search([1.0, 0.0], k=1, ids=ids)
    with pytest.raises(exc):
        rows.search_batch([[1.0, 0.0]], k=1, ids=ids)


# ---------------------------------------------------------------- automatic checkpoints


def _log_size(path: str) -> int:
    return os.path.getsize(os.path.join(path, "wal.svdb"))


def test_autocheckpoint_bounds_the_log(tmp_path: Any) -> None:
    path = str(tmp_path / "ck")
    vec = np.ones((1, 16), dtype=np.float32)
    with SvDBPython(path, autocheckpoint_bytes=8192) as db:
        sizes = []
        for i in range(200):
            db.add(["r%d" % i], vec * i)
            sizes.append(_log_size(path))
        assert max(sizes) < 8192 + 512  # 200 records of about 100 bytes: 20 KB without checkpoints
    with SvDBPython(path, autocheckpoint_bytes=0) as db:
        before = _log_size(path)
        for i in range(200):
            db.add(["s%d" % i], vec * i)
        assert _log_size(path) > before + 16384  # 0: never
    with SvDBPython(path) as db:
        assert db.count() == 400


@pytest.mark.parametrize(
    "value, exc", [(-1, pysvdb.InvalidArgumentError), (2**64, pysvdb.InvalidArgumentError), ("1", TypeError), (True, TypeError)]
)
def test_autocheckpoint_bytes_is_checked(db_path: str, value: Any, exc: type) -> None:
    with pytest.raises(exc, match="autocheckpoint_bytes"):
        SvDBPython(db_path, autocheckpoint_bytes=value)
    assert not os.path.exists(db_path)


# ---------------------------------------------------------------- select


def test_select_returns_rows_in_insertion_order(rows: SvDBPython) -> None:
    assert rows.select() == pysvdb.SelectResult(["a", "b", "c"], None)
    rows.update(["a"], metadatas=[{"k": 5}])  # an update keeps the row's place
    rows.upsert(["b"], [[2.0, 2.0]], [{"k": 7}])
    assert rows.select().ids == ["a", "b", "c"]
    rows.delete(["a"])
    rows.add(["a"], [[1.0, 0.0]])  # re-added: last
    ids, metas = rows.select(metadata=True)
    assert ids == ["b", "c", "a"]
    assert metas == ['{"k": 7}', '{"s": "x", "n": 12345678901234567890}', None]
    assert rows.select(ids=["a", "zz", "c", "a"]).ids == ["c", "a"]  # insertion order, repeats once
    assert rows.select(ids=[]).ids == []
    assert rows.select(ids=["b", "c", "a"], where={"k": {"$gte": 7}}).ids == ["b"]
    assert rows.select(offset=1).ids == ["c", "a"]
    assert rows.select(offset=1, limit=1).ids == ["c"]
    assert rows.select(limit=0).ids == []
    assert rows.select(offset=5).ids == []
    assert rows.select(where_document={"$contains": "doc"}).ids == []  # a's document went with its metadata


def test_select_matches_ids_where(rows: SvDBPython) -> None:
    rows.add([f"é{i}" for i in range(50)], np.random.default_rng(1).random((50, 2)), [{"i": i} for i in range(50)])
    assert rows.select().ids == rows.get_all_ids()
    w = {"i": {"$lt": 10}}
    assert rows.select(where=w).ids == rows.ids_where(w) == [f"é{i}" for i in range(10)]
    ids, metas = rows.select(where=w, metadata=True)
    assert metas == [rows.get(i) for i in ids]


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"offset": -1}, pysvdb.InvalidArgumentError),
        ({"limit": -2}, pysvdb.InvalidArgumentError),
        ({"offset": "1"}, pysvdb.InvalidTypeError),
        ({"ids": "abc"}, pysvdb.InvalidTypeError),
        ({"ids": [""]}, pysvdb.InvalidArgumentError),
        ({"ids": ["a", 3]}, pysvdb.InvalidTypeError),
        ({"where": {"k": {"$gt": "x"}}}, pysvdb.InvalidArgumentError),
        ({"where_document": {"$bad": 1}}, pysvdb.InvalidArgumentError),
    ],
)
def test_select_errors(rows: SvDBPython, kwargs: Dict[str, Any], exc: type) -> None:
    with pytest.raises(exc):
        rows.select(**kwargs)
    assert rows.select().ids == ["a", "b", "c"]


def test_select_on_a_closed_handle(rows: SvDBPython) -> None:
    rows.close()
    with pytest.raises(pysvdb.ClosedError):
        rows.select()
