"""SvDBPython.compact() and SvDBPython.stats(): deleted rows' slots given
back with the same rows and search results, the Stats fields, and the
errors (closed, read-only, busy)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import pysvdb
from pysvdb import BusyError, ClosedError, ReadOnlyError, Stats, SvDBPython


def _fill(db: SvDBPython, n: int, dim: int, seed: int = 0) -> np.ndarray:
    vecs = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    db.add(ids=["r%d" % i for i in range(n)], embeddings=vecs, metadatas=[{"i": i} for i in range(n)])
    return vecs


def _searches(db: SvDBPython, dim: int) -> List[List[Tuple[str, float]]]:
    queries = np.random.default_rng(99).standard_normal((15, dim)).astype(np.float32)
    return [db.search(q, k=10) for q in queries]


def test_compact_flat_keeps_rows_and_results(tmp_path: Path) -> None:
    path = tmp_path / "c"
    with SvDBPython(path, index="flat") as db:
        vecs = _fill(db, 1000, 16)
        gone = ["r%d" % i for i in range(1000) if i % 10]
        assert db.delete(gone) == 900
        before = db.stats()
        assert (before.count, before.free_slots, before.slots) == (100, 900, 1000)
        results = _searches(db, 16)
        ids = db.get_all_ids()
        db.compact()
        after = db.stats()
        assert (after.count, after.free_slots, after.slots, after.pending) == (100, 0, 100, 0)
        assert after.snapshot_bytes < before.snapshot_bytes + before.log_bytes
        assert _searches(db, 16) == results  # ids and distances, exactly
        assert db.get_all_ids() == ids
        assert json.loads(db.get("r10") or "") == {"i": 10}
        np.testing.assert_array_equal(db.get_vector("r990"), vecs[990])
    with SvDBPython(path) as db:
        assert db.stats().free_slots == 0
        assert _searches(db, 16) == results
        assert db.get_all_ids() == ids


@pytest.mark.parametrize("storage", ["f32", "f16", "int8"])
def test_compact_hnsw(tmp_path: Path, storage: str) -> None:
    path = tmp_path / storage
    with SvDBPython(path, index="hnsw", storage=storage, M=8, ef_construction=64, build_threads=1) as db:  # type: ignore[arg-type]
        vecs = _fill(db, 600, 12, seed=1)
        db.delete(["r%d" % i for i in range(600) if i % 3])
        kept = range(0, 600, 3)
        # The graph is renumbered, not rebuilt: every row's own search finds the same hits.
        before = [db.search(vecs[i], k=3, ef=200) for i in kept]
        assert sum(hits[0][0] == "r%d" % i for i, hits in zip(kept, before)) >= 0.98 * len(kept)
        db.compact()
        st = db.stats()
        assert (st.count, st.free_slots, st.slots) == (200, 0, 200)
        assert (st.index, st.storage, st.M, st.ef_construction) == ("hnsw", storage, 8, 64)
        for i in kept:
            np.testing.assert_array_equal(db.get_vector("r%d" % i), vecs[i])  # the float32 originals
        assert [db.search(vecs[i], k=3, ef=200) for i in kept] == before
    with SvDBPython(path) as db:
        assert db.count() == 200
        assert [db.search(vecs[i], k=3, ef=200) for i in kept] == before


def test_stats_fields(tmp_path: Path) -> None:
    with SvDBPython(tmp_path / "s", metric="cosine") as db:
        st = db.stats()
        assert isinstance(st, Stats) and st is not None
        assert (st.count, st.dim, st.metric, st.index, st.storage) == (0, None, "cosine", "flat", "f32")
        assert (st.M, st.ef_construction, st.ef_search) == (None, None, None)
        _fill(db, 10, 4)
        st = db.stats()
        assert (st.count, st.dim, st.slots, st.free_slots, st.pending) == (10, 4, 10, 0, 0)
        assert st.log_bytes > 0 and st.snapshot_bytes > 0
        files = sum(f.stat().st_size for f in (tmp_path / "s").iterdir())
        assert st.disk_bytes == files
        with pytest.raises(dataclasses.FrozenInstanceError):
            st.count = 3  # type: ignore[misc]
    with SvDBPython(tmp_path / "h", index="hnsw", ef_search=77) as db:
        st = db.stats()
        assert (st.index, st.M, st.ef_construction, st.ef_search) == ("hnsw", 16, 200, 77)
    assert pysvdb.Stats is Stats and "Stats" in pysvdb.__all__


def test_compact_seen_by_other_handle(tmp_path: Path) -> None:
    path = tmp_path / "o"
    with SvDBPython(path) as a, SvDBPython(path) as b:
        _fill(a, 300, 8)
        a.delete(["r%d" % i for i in range(0, 300, 2)])
        assert b.stats().free_slots == 150  # b followed a's deletes
        a.compact()
        st = b.stats()
        assert (st.count, st.free_slots) == (150, 0)  # b loaded the compacted collection
        assert b.get_all_ids() == a.get_all_ids()
        b.add(ids=["new"], embeddings=[[0.0] * 8])
        assert "new" in a


def test_compact_errors(tmp_path: Path) -> None:
    path = tmp_path / "e"
    db = SvDBPython(path)
    _fill(db, 50, 4)
    db.delete(["r1", "r2"])
    with SvDBPython(path, mode="readonly") as ro:
        with pytest.raises(ReadOnlyError, match="read-only"):
            ro.compact()
        assert ro.stats().count == 48
    # Another owner of the write lock (a POSIX lock of this process does not
    # share the library's open-file-description lock).
    fd = os.open(path / "LOCK", os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
        with SvDBPython(path, busy_timeout_ms=20) as quick:
            with pytest.raises(BusyError, match="busy timeout"):
                quick.compact()
            assert quick.stats().count == 48
    finally:
        os.close(fd)
    db.compact()
    assert db.stats().free_slots == 0
    db.close()
    with pytest.raises(ClosedError):
        db.compact()
    with pytest.raises(ClosedError):
        db.stats()


@pytest.mark.parametrize("background", [False, True])
def test_compact_exclusive_and_background(tmp_path: Path, background: bool) -> None:
    path = tmp_path / "x"
    with SvDBPython(path, index="hnsw", mode="exclusive", background_indexing=background, build_threads=1) as db:
        vecs = _fill(db, 400, 8, seed=3)
        db.delete(["r%d" % i for i in range(0, 400, 2)])
        db.compact()
        db.index_wait()
        st = db.stats()
        assert (st.count, st.free_slots, st.pending) == (200, 0, 0)
        assert db.get_all_ids() == ["r%d" % i for i in range(1, 400, 2)]
        np.testing.assert_array_equal(db.get_vector("r399"), vecs[399])
    with SvDBPython(path) as db:
        assert db.count() == 200
