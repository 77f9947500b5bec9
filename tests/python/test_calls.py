"""The lean call path: results decoded in one pass, cached option structs and
out-parameters, small batches without numpy, no lock around C calls.

Each result is checked against a reference built hit by hit through cffi,
the way pysvdb decoded results before; closing under concurrent calls gives
results or ClosedError, never anything else."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython
from pysvdb._db import _OUT_POOL
from pysvdb._lib import ffi, lib

DIM = 8
# ids of every UTF-8 length: ASCII, 2-, 3- and 4-byte characters, the longest id
IDS = ["a", "é", "日本語", "🙂x", "\u00a0sp ace", "z" * 1024, "ü" * 512, "mixed-ß-中-🎉", "#", "0"]


def reference_search(db: SvDBPython, q: np.ndarray, k: int, ef: int = 0) -> List[Tuple[str, float]]:
    """svdb_search decoded hit by hit (pysvdb's former path)."""
    opts = ffi.NULL
    if ef:
        opts = ffi.new("svdb_search_options *")
        lib.svdb_search_options_init(opts, lib.SVDB_SEARCH_OPTIONS_VERSION)
        opts.ef = ef
    hits = ffi.new("svdb_hit **")
    n = ffi.new("size_t *")
    qq = np.ascontiguousarray(q, dtype=np.float32)
    assert lib.svdb_search(db._handle, ffi.from_buffer("float[]", qq), len(qq), k, opts, hits, n) == 0
    try:
        return [(ffi.string(hits[0][i].id).decode("utf-8"), float(hits[0][i].distance)) for i in range(n[0])]
    finally:
        lib.svdb_hits_free(hits[0])


@pytest.fixture(params=["flat", "hnsw"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    db = SvDBPython(str(tmp_path / "c"), index=request.param, seed=3, build_threads=1)
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((len(IDS) + 40, DIM)).astype(np.float32)
    ids = IDS + ["row-%d" % i for i in range(40)]
    db.add(ids, vecs, [{"g": i % 3} for i in range(len(ids))])
    yield db, vecs, ids
    db.close()


@pytest.mark.parametrize("k", [1, 3, 10, 50, 51, 64, 65, 1000])  # 64: the last k searched into reused buffers
def test_search_matches_reference(filled: Any, k: int) -> None:
    db, vecs, ids = filled
    for i in range(0, len(ids), 7):
        got = db.search(vecs[i], k)
        assert got == reference_search(db, vecs[i], k)
        assert len(got) == min(k, len(ids))
        assert all(type(h[0]) is str and type(h[1]) is float for h in got)
    # every non-ASCII id comes back intact as its own nearest row
    for i, name in enumerate(IDS):
        assert db.search(vecs[i], 1)[0][0] == name


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_search_distances_are_the_c_floats(tmp_path: Path, metric: str) -> None:
    db = SvDBPython(str(tmp_path / "m"), metric=metric)
    v = np.random.default_rng(2).standard_normal((30, DIM)).astype(np.float32)
    db.add(["i%d" % i for i in range(30)], v)
    got = db.search(v[0] + 0.1, 30)
    ref = reference_search(db, v[0] + 0.1, 30)
    assert got == ref  # exact: the same float32 widened to float
    assert [d for _, d in got] == sorted(d for _, d in got)
    db.close()


def test_search_with_ef_matches_reference(filled: Any) -> None:
    db, vecs, _ = filled
    for ef in (1, 5, 64, 500):
        for _ in range(2):  # the second call takes the cached options struct
            assert db.search(vecs[3], 5, ef=ef) == reference_search(db, vecs[3], 5, ef)
    assert db.search(vecs[3], 5, ef=np.int64(64)) == reference_search(db, vecs[3], 5, 64)
    assert db.search(vecs[3], 5, ef=0) == db.search(vecs[3], 5)  # 0: the default, as None


@pytest.mark.parametrize(
    "ef, exc, msg",
    [
        (True, pysvdb.InvalidTypeError, "ef must be an int, not bool"),
        (-1, pysvdb.InvalidArgumentError, "ef must be between 0 and 4294967295, not -1"),
        (2**32, pysvdb.InvalidArgumentError, "ef must be between 0 and 4294967295"),
        (1.5, pysvdb.InvalidTypeError, "ef must be an int, not float"),
    ],
)
def test_search_bad_ef(filled: Any, ef: object, exc: type, msg: str) -> None:
    db, vecs, _ = filled
    with pytest.raises(exc, match=msg):
        db.search(vecs[0], 3, ef=ef)  # type: ignore[arg-type]


def test_search_empty_results(tmp_path: Path) -> None:
    db = SvDBPython(str(tmp_path / "e"), dim=DIM)
    q = np.ones(DIM, dtype=np.float32)
    assert db.search(q, 5) == []
    db.add(["x"], q[None, :], [{"g": 1}])
    assert db.search(q, 5, where={"g": 2}) == []
    assert db.search(q, 5, ef=10, where={"g": 1}) == [("x", 0.0)]
    db.close()


def test_search_query_kinds(filled: Any) -> None:
    """The fast path takes C-ready float32 vectors as they are; anything else
    is converted as before, with the same errors."""
    db, vecs, _ = filled
    want = db.search(vecs[4], 4)
    wide = np.zeros(2 * DIM, dtype=np.float32)
    wide[::2] = vecs[4]
    assert db.search(wide[::2], 4) == want  # strided view
    assert db.search(vecs[4].astype(">f4"), 4) == want  # byte-swapped
    assert db.search(vecs[4].astype(np.float64), 4) == want
    assert db.search(vecs[4].tolist(), 4) == want
    raw = np.zeros(DIM * 4 + 1, dtype=np.uint8)[1:].view(np.float32)  # unaligned
    raw[:] = vecs[4]
    assert not raw.flags.aligned
    assert db.search(raw, 4) == want
    with pytest.raises(pysvdb.DimensionError, match="0 dimensions"):
        db.search(np.zeros(0, dtype=np.float32), 4)
    with pytest.raises(pysvdb.InvalidArgumentError, match="1-dimensional"):
        db.search(vecs[:2], 4)
    with pytest.raises(pysvdb.DimensionError):
        db.search(np.zeros(DIM + 1, dtype=np.float32), 4)
    bad = vecs[4].copy()
    bad[0] = np.nan
    with pytest.raises(pysvdb.InvalidArgumentError):
        db.search(bad, 4)


def test_search_batch_matches_per_query_search(filled: Any) -> None:
    db, vecs, ids = filled
    for k in (1, 7, len(ids), len(ids) + 5):
        r = db.search_batch(vecs, k, threads=2)
        assert r.ids.shape == (len(vecs), k) and r.distances.shape == (len(vecs), k)
        assert r.ids.dtype == object and r.distances.dtype == np.float32
        for i in range(len(vecs)):
            hits = db.search(vecs[i], k)
            n = len(hits)
            assert r.ids[i, :n].tolist() == [h[0] for h in hits]
            assert r.distances[i, :n].tolist() == [h[1] for h in hits]
            assert all(x is None for x in r.ids[i, n:])
            assert np.all(np.isinf(r.distances[i, n:]))


def test_search_batch_padding_per_row(filled: Any) -> None:
    """Rows with different hit counts, including none."""
    db, vecs, ids = filled
    r = db.search_batch(vecs[:6], 5, where={"g": 1}, ids=[ids[1], ids[2], ids[4], ids[7]])
    # g == i % 3 == 1 among rows 1, 2, 4, 7: rows 1, 4 and 7
    for i in range(6):
        row = [x for x in r.ids[i].tolist() if x is not None]
        assert sorted(row) == sorted([ids[1], ids[4], ids[7]])
        assert r.ids[i, 3:].tolist() == [None, None]
        assert np.all(np.isinf(r.distances[i, 3:]))
    none = db.search_batch(vecs[:3], 4, where={"g": 99})
    assert none.ids.tolist() == [[None] * 4] * 3
    assert np.all(np.isinf(none.distances))


def test_search_batch_non_ascii_ids(filled: Any) -> None:
    db, vecs, _ = filled
    r = db.search_batch(vecs[: len(IDS)], 1)
    assert r.ids[:, 0].tolist() == IDS


def test_out_parameters_are_returned_after_errors(filled: Any) -> None:
    db, vecs, _ = filled
    before = len(_OUT_POOL)
    for _ in range(5):
        with pytest.raises(pysvdb.DimensionError):
            db.search(np.ones(DIM + 2, dtype=np.float32), 3)
        with pytest.raises(pysvdb.InvalidArgumentError):
            db.search(vecs[0], 3, where={"$bad": 1})
    assert len(_OUT_POOL) <= max(before, 1) + 1  # taken and given back, not piling up
    assert db.search(vecs[0], 3) == reference_search(db, vecs[0], 3)


def test_threads_share_nothing_between_searches(filled: Any) -> None:
    db, vecs, _ = filled
    expected = [db.search(v, 5) for v in vecs]
    errors: List[str] = []

    def worker(off: int) -> None:
        for rep in range(30):
            i = (off + rep) % len(vecs)
            got = db.search(vecs[i], 5)
            if got != expected[i]:
                errors.append("thread %d query %d" % (off, i))

    ts = [threading.Thread(target=worker, args=(j,)) for j in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


# ---------------------------------------------------------------- small batches of ids


@pytest.mark.parametrize("n", [1, 2, 16, 17, 40])
def test_write_paths_small_and_large_batches(tmp_path: Path, n: int) -> None:
    db = SvDBPython(str(tmp_path / "w"), dim=DIM)
    names = ["é-%d" % i if i % 2 else "id-%d" % i for i in range(n)]
    v = np.random.default_rng(n).standard_normal((n, DIM)).astype(np.float32)
    metas: List[Optional[Any]] = [None if i % 3 == 0 else {"i": i, "s": "ü"} for i in range(n)]
    db.add(names, v, metas)
    assert db.get_all_ids() == names
    assert [db.get(x) for x in names] == [None if m is None else '{"i": %d, "s": "ü"}' % m["i"] for m in metas]
    db.upsert(names[:1], v[-1:] + 1)
    assert np.array_equal(db.get_vector(names[0]), v[-1] + 1)
    assert db.update(names, metadatas=[{"u": 1}] * n) == n
    assert db.delete(names + ["missing"]) == n
    assert db.count() == 0
    db.close()


@pytest.mark.parametrize("n", [1, 5, 16, 17, 30])
@pytest.mark.parametrize(
    "bad, exc, msg",
    [
        ("", pysvdb.InvalidArgumentError, r"ids\[{i}\] is empty"),
        (5, pysvdb.InvalidTypeError, r"ids\[{i}\] must be a str, not int"),
        ("a\0b", pysvdb.InvalidArgumentError, r"ids\[{i}\] contains a NUL character"),
        ("\ud800", pysvdb.InvalidArgumentError, r"ids\[{i}\] cannot be encoded as UTF-8"),
        ("x" * 1025, pysvdb.TooBigError, r"ids\[{i}\] is 1025 bytes of UTF-8; the limit is 1024"),
    ],
)
def test_bad_id_named_in_any_batch_size(tmp_path: Path, n: int, bad: object, exc: type, msg: str) -> None:
    db = SvDBPython(str(tmp_path / "b"), dim=DIM)
    names: List[Any] = ["ok-%d" % i for i in range(n)]
    names[-1] = bad
    v = np.zeros((n, DIM), dtype=np.float32) + 1
    for call in (lambda: db.add(names, v), lambda: db.upsert(names, v), lambda: db.delete(names)):
        with pytest.raises(exc, match=msg.format(i=n - 1)):
            call()
    assert db.count() == 0
    db.close()


def test_str_subclass_ids(tmp_path: Path) -> None:
    class Name(str):
        pass

    db = SvDBPython(str(tmp_path / "s"), dim=DIM)
    db.add([Name("a"), "b"], np.ones((2, DIM), dtype=np.float32))
    assert db.get_all_ids() == ["a", "b"]
    assert db.delete((Name("a"),)) == 1  # a tuple: not a list, converted
    db.close()


# ---------------------------------------------------------------- closing under concurrent calls


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_close_under_many_threads(tmp_path: Path, index: str) -> None:
    for rnd in range(3):
        db = SvDBPython(str(tmp_path / ("c%d" % rnd)), index=index, build_threads=1)
        data = np.random.default_rng(rnd).standard_normal((2000, 16)).astype(np.float32)
        db.add(["%d" % i for i in range(len(data))], data)
        outcomes: List[str] = []
        bad: List[str] = []
        started = threading.Barrier(9)

        def caller(j: int) -> None:
            started.wait()
            n = 0
            try:
                while True:
                    kind = (j + n) % 5
                    if kind == 0:
                        assert len(db.search(data[n % 100], 5)) == 5
                    elif kind == 1:
                        assert db.search_batch(data[:4], 3, threads=1).ids.shape == (4, 3)
                    elif kind == 2:
                        db.upsert(["w%d" % j], data[j : j + 1])
                    elif kind == 3:
                        assert db.count() >= 2000
                    else:
                        db.get_vector("7")
                    n += 1
            except pysvdb.ClosedError as e:
                if str(e) != "database %r is closed" % db.path:
                    bad.append(str(e))
                outcomes.append("closed")
            except BaseException as e:  # anything else fails the test
                bad.append(repr(e))

        ts = [threading.Thread(target=caller, args=(j,)) for j in range(8)]
        for t in ts:
            t.start()
        started.wait()
        threading.Event().wait(0.05 * (rnd + 1))
        db.close()
        db.close()  # idempotent
        for t in ts:
            t.join(60)
        assert bad == []
        assert outcomes == ["closed"] * 8
        with pytest.raises(pysvdb.ClosedError, match="is closed"):
            db.search(data[0], 3)


def test_concurrent_close_calls(tmp_path: Path) -> None:
    for rnd in range(5):
        db = SvDBPython(str(tmp_path / ("d%d" % rnd)), dim=4)
        db.add(["a"], np.ones((1, 4), dtype=np.float32))
        errors: List[BaseException] = []
        barrier = threading.Barrier(4)

        def closer() -> None:
            barrier.wait()
            try:
                db.close()
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        ts = [threading.Thread(target=closer) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == [] and db.closed
        # the collection was closed once and cleanly: it opens again
        again = SvDBPython(str(tmp_path / ("d%d" % rnd)), create=False)
        assert again.count() == 1
        again.close()


def test_stale_call_after_close_is_closed_error(tmp_path: Path) -> None:
    """A call that read the token before close() and reaches C after it."""
    db = SvDBPython(str(tmp_path / "t"), dim=4)
    db.add(["a"], np.ones((1, 4), dtype=np.float32))
    token = db._acquire()  # what a call holds between reading the token and the C call
    db.close()
    out = ffi.new("size_t *")
    rc = lib.svdb_count(token, out)
    assert rc == lib.SVDB_EMISUSE
    e = db._fail(rc)
    assert type(e) is pysvdb.ClosedError and str(e) == "database %r is closed" % db.path
    # an open handle's misuse stays a MisuseError
    other = SvDBPython(str(tmp_path / "u"), dim=4)
    assert type(other._fail(lib.SVDB_EMISUSE)) is pysvdb.MisuseError
    other.close()


def test_search_with_longest_ids_fills_the_reused_buffer(tmp_path: Path) -> None:
    """64 hits of 1024-byte ids: exactly what the reused id buffer holds."""
    db = SvDBPython(str(tmp_path / "long"), dim=2)
    ids = [("%04d" % i) * 256 for i in range(70)]
    assert all(len(i.encode()) == int(lib.SVDB_MAX_ID_BYTES) for i in ids)
    db.add(ids, np.arange(140, dtype=np.float32).reshape(70, 2))
    got = db.search([0.0, 0.0], 64)
    assert [h[0] for h in got] == ids[:64]
    assert got == reference_search(db, np.zeros(2, dtype=np.float32), 64)
    db.close()
