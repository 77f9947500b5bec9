"""The ``svdb`` command line, driven as a user drives it: ``python -m
pysvdb.cli ...`` in a subprocess, with the pysvdb and library under test.

Covers every command, a round trip (import, export, compare) of every
format, into a collection directory and a ChromaDB client directory, the
bad-file cases (one message, no traceback, nothing imported), Ctrl-C during
an import (a whole number of batches kept, exit status 130), and the JSON
outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest

import pysvdb

PKG_ROOT = str(Path(pysvdb.__file__).resolve().parents[1])
REPO = Path(__file__).resolve().parents[2]
DIM = 8


def _env(extra_path: Optional[str] = None) -> Dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in (extra_path, PKG_ROOT, env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def svdb(*args: object, cwd: Optional[Path] = None, extra_path: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pysvdb.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(extra_path),
        cwd=cwd,
        timeout=120,
    )


def ok(*args: object, **kw: Any) -> str:
    r = svdb(*args, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout


def fails(*args: object, expect: str, **kw: Any) -> str:
    """Runs a command that must fail with one clear message naming ``expect``."""
    r = svdb(*args, **kw)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert expect in r.stderr, r.stderr
    return r.stderr


def vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def write_jsonl(path: Path, rows: Sequence[Dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def rich_rows(n: int, dim: int = DIM) -> List[Dict[str, Any]]:
    v = vectors(n, dim)
    return [
        {
            "id": "doc-%d" % i,
            "embedding": v[i].tolist(),
            "metadata": {"n": i, "even": i % 2 == 0} if i % 3 else None,
            "document": "document number %d" % i if i % 4 else None,
        }
        for i in range(n)
    ]


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def count(path: Path) -> int:
    with pysvdb.SvDBPython(path, create=False, mode="readonly") as db:
        return db.count()


# ---------------------------------------------------------------- the package


def test_import_pysvdb_loads_no_cli() -> None:
    code = "import sys, pysvdb; print(sorted(m for m in ('click', 'tqdm', 'pysvdb.cli') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_help_lists_every_command() -> None:
    out = ok("--help")
    for cmd in ("info", "verify", "checkpoint", "compact", "import", "export", "query"):
        assert cmd in out
    assert "pysvdb" in ok("--version")


def test_unknown_command_is_a_usage_error() -> None:
    r = svdb("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "frobnicate" in r.stderr


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["npy", "npz", "fvecs"])
def test_vector_formats_round_trip(tmp_path: Path, fmt: str) -> None:
    v = vectors(1000)
    src = tmp_path / ("in." + fmt)
    ids = ["row-%d" % i for i in range(len(v))]
    if fmt == "npy":
        np.save(src, v)
    elif fmt == "npz":
        np.savez_compressed(src, embeddings=v, ids=np.array(ids))
    else:
        rows = np.empty((len(v), DIM + 1), dtype="<i4")
        rows[:, 0] = DIM
        rows[:, 1:] = v.view("<i4")
        rows.tofile(src)
    id_args: List[object] = []
    if fmt != "npz":
        (tmp_path / "ids.txt").write_text("".join(i + "\n" for i in ids))
        id_args = ["--ids-from", tmp_path / "ids.txt"]
    db = tmp_path / "db"
    out = ok("import", db, src, "--batch-size", 300, *id_args)
    assert "imported 1000 rows" in out
    with pysvdb.SvDBPython(db, create=False, mode="readonly") as h:
        assert h.get_all_ids() == ids
        np.testing.assert_array_equal(h.get_vector("row-7"), v[7])

    dst = tmp_path / ("out." + fmt)
    ids_to: List[object] = ["--ids-to", tmp_path / "ids-out.txt"] if fmt != "npz" else []
    ok("export", db, dst, "--batch-size", 333, *ids_to)
    if fmt == "npy":
        np.testing.assert_array_equal(np.load(dst), v)
    elif fmt == "npz":
        with np.load(dst) as z:
            np.testing.assert_array_equal(z["embeddings"], v)
            assert z["ids"].tolist() == ids
    else:
        raw = np.fromfile(dst, dtype="<i4").reshape(len(v), DIM + 1)
        assert (raw[:, 0] == DIM).all()
        np.testing.assert_array_equal(raw[:, 1:].view("<f4"), v)
    if ids_to:
        assert (tmp_path / "ids-out.txt").read_text().splitlines() == ids


def test_npy_ids_are_generated(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", vectors(5))
    ok("import", tmp_path / "a", tmp_path / "v.npy")
    ok("import", tmp_path / "b", tmp_path / "v.npy", "--id-prefix", "img-")
    with pysvdb.SvDBPython(tmp_path / "a", create=False) as a, pysvdb.SvDBPython(tmp_path / "b", create=False) as b:
        assert a.get_all_ids() == ["0", "1", "2", "3", "4"]
        assert b.get_all_ids() == ["img-%d" % i for i in range(5)]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_rich_formats_round_trip_in_a_collection(tmp_path: Path, fmt: str) -> None:
    rows = rich_rows(500)
    write_jsonl(tmp_path / "in.jsonl", rows)
    src = tmp_path / "in.jsonl"
    if fmt == "parquet":  # made through the command itself from a jsonl import
        ok("import", tmp_path / "seed", src)
        ok("export", tmp_path / "seed", tmp_path / "in.parquet")
        src = tmp_path / "in.parquet"
    db = tmp_path / "db"
    ok("import", db, src, "--batch-size", 128, "--metric", "cosine", "--index", "hnsw")
    with pysvdb.SvDBPython(db, create=False, mode="readonly") as h:
        assert h.metric == "cosine" and h.index == "hnsw" and h.count() == 500
        # documents are kept under the key where_document reads
        assert json.loads(h.get("doc-1") or "") == {"n": 1, "even": False, "#document": "document number 1"}
        hits = h.search(np.array(rows[5]["embedding"], np.float32), k=3, where_document={"$contains": "number 5"})
        assert hits[0][0] == "doc-5" and {i for i, _ in hits} <= {"doc-5", "doc-50", "doc-51", "doc-53", "doc-55", "doc-57", "doc-59"}
    ok("export", db, tmp_path / ("out." + fmt))
    if fmt == "jsonl":
        back = read_jsonl(tmp_path / "out.jsonl")
    else:
        import pyarrow.parquet as pq

        t = pq.read_table(tmp_path / "out.parquet").to_pylist()
        back = [
            {"id": r["id"], "embedding": r["embedding"], "metadata": json.loads(r["metadata"]) if r["metadata"] else None, "document": r["document"]}
            for r in t
        ]
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    np.testing.assert_array_equal(np.array([r["embedding"] for r in back], np.float32), np.array([r["embedding"] for r in rows], np.float32))
    assert [r["metadata"] for r in back] == [r["metadata"] for r in rows]
    assert [r["document"] for r in back] == [r["document"] for r in rows]


def test_chroma_client_directory_round_trip(tmp_path: Path) -> None:
    rows = rich_rows(300)
    write_jsonl(tmp_path / "in.jsonl", rows)
    client_dir = tmp_path / "chroma"
    out = ok("import", client_dir, tmp_path / "in.jsonl", "--collection", "docs", "--metric", "ip", "--batch-size", 100)
    assert "imported 300 rows" in out and "docs" in out
    client = pysvdb.PersistentClient(str(client_dir))
    try:
        col = client.get_collection("docs")
        got = col.get(ids=["doc-1", "doc-3"], include=["documents", "metadatas"])
        assert got["documents"] == ["document number 1", "document number 3"]
        assert got["metadatas"] == [{"n": 1, "even": False}, None]
        assert col.metadata == {"hnsw:space": "ip"}
    finally:
        client.close()
    ok("export", client_dir, tmp_path / "out.jsonl", "-c", "docs")
    back = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["id"], r["metadata"], r["document"]) for r in back] == [(r["id"], r["metadata"], r["document"]) for r in rows]
    np.testing.assert_array_equal(np.array([r["embedding"] for r in back], np.float32), np.array([r["embedding"] for r in rows], np.float32))
    # a second collection; commands without --collection that need one say which exist
    ok("import", client_dir, tmp_path / "in.jsonl", "-c", "other")
    fails("export", client_dir, tmp_path / "x.jsonl", expect="--collection (docs, other)")
    fails("import", client_dir, tmp_path / "in.jsonl", expect="--collection")
    fails("query", client_dir, "-c", "nope", "--vector", "1,2,3,4,5,6,7,8", expect="no collection 'nope'")
    fails("import", client_dir, tmp_path / "in.jsonl", "-c", "docs", "--index", "flat", expect="always HNSW")
    fails("import", client_dir, tmp_path / "in.jsonl", "-c", "docs", "--metric", "l2", "--upsert", expect="uses metric ip")


def test_upsert_and_existing_ids(tmp_path: Path) -> None:
    v = vectors(10)
    np.save(tmp_path / "v.npy", v)
    np.save(tmp_path / "w.npy", v + 1)
    db = tmp_path / "db"
    ok("import", db, tmp_path / "v.npy")
    fails("import", db, tmp_path / "w.npy", expect="use --upsert")
    with pysvdb.SvDBPython(db, create=False) as h:
        np.testing.assert_array_equal(h.get_vector("3"), v[3])
    ok("import", db, tmp_path / "w.npy", "--upsert")
    with pysvdb.SvDBPython(db, create=False) as h:
        assert h.count() == 10
        np.testing.assert_array_equal(h.get_vector("3"), v[3] + 1)


def test_no_create_and_mismatched_options(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", vectors(4))
    fails("import", tmp_path / "db", tmp_path / "v.npy", "--no-create", expect="no collection")
    assert not (tmp_path / "db").exists()
    ok("import", tmp_path / "db", tmp_path / "v.npy", "--metric", "cosine")
    fails("import", tmp_path / "db", tmp_path / "v.npy", "--metric", "l2", "--upsert", expect="metric")
    fails("import", tmp_path / "db", tmp_path / "v.npy", "-c", "x", expect="drop --collection")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    fails("import", tmp_path / "other", tmp_path / "v.npy", "-c", "x", expect="not a ChromaDB client directory")
    assert os.listdir(tmp_path / "other") == ["notes.txt"]


# ---------------------------------------------------------------- bad input


def _collection(tmp_path: Path, n: int = 20) -> Path:
    np.save(tmp_path / "good.npy", vectors(n))
    db = tmp_path / "db"
    ok("import", db, tmp_path / "good.npy")
    return db


def test_wrong_dimension_imports_nothing(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    np.save(tmp_path / "wide.npy", vectors(5, DIM + 1))
    fails("import", db, tmp_path / "wide.npy", "--id-prefix", "w", expect="9-d vectors, the collection 8-d")
    rows = rich_rows(10)
    rows[7]["embedding"] = rows[7]["embedding"][:-1]
    write_jsonl(tmp_path / "ragged.jsonl", rows)
    fails("import", db, tmp_path / "ragged.jsonl", "--batch-size", 2, expect="ragged.jsonl:8: embedding has dimension 7")
    assert count(db) == 20


def test_truncated_npy(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    np.save(tmp_path / "t.npy", vectors(100))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[: len(data) - 10])
    fails("import", db, tmp_path / "t.npy", "--id-prefix", "t", expect="t.npy: not a readable .npy array")
    (tmp_path / "h.npy").write_bytes(data[:20])
    fails("import", db, tmp_path / "h.npy", expect="h.npy: not a readable .npy array")
    assert count(db) == 20


def test_bad_npy_contents(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    v = vectors(50)
    v[41, 3] = np.nan
    np.save(tmp_path / "nan.npy", v)
    fails("import", db, tmp_path / "nan.npy", "--id-prefix", "n", "--batch-size", 10, expect="row 41 holds NaN")
    np.save(tmp_path / "flat.npy", np.zeros(8, np.float32))
    fails("import", db, tmp_path / "flat.npy", expect="expected a 2-d array")
    np.save(tmp_path / "str.npy", np.array([["a", "b"]]))
    fails("import", db, tmp_path / "str.npy", expect="vectors must be numbers")
    assert count(db) == 20


def test_bad_npz(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    np.savez(tmp_path / "noemb.npz", vecs=vectors(3))
    fails("import", db, tmp_path / "noemb.npz", expect="expected arrays 'embeddings'")
    np.savez(tmp_path / "short.npz", embeddings=vectors(3), ids=np.array(["a", "b"]))
    fails("import", db, tmp_path / "short.npz", expect="2 ids for 3 embeddings")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    fails("import", db, tmp_path / "junk.npz", expect="not a readable .npz archive")
    assert count(db) == 20


def test_truncated_fvecs(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    rows = np.empty((10, DIM + 1), dtype="<i4")
    rows[:, 0] = DIM
    rows[:, 1:] = vectors(10).view("<i4")
    data = rows.tobytes()
    (tmp_path / "t.fvecs").write_bytes(data[:-4])
    fails("import", db, tmp_path / "t.fvecs", "--id-prefix", "f", expect="truncated or not .fvecs")
    rows[6, 0] = 5
    (tmp_path / "m.fvecs").write_bytes(rows.tobytes())
    fails("import", db, tmp_path / "m.fvecs", "--id-prefix", "f", expect="row 6 has dimension 5")
    assert count(db) == 20


def test_bad_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    db = _collection(tmp_path)
    pq.write_table(pa.table({"id": ["a"], "vector": [[1.0] * DIM]}), tmp_path / "noemb.parquet")
    fails("import", db, tmp_path / "noemb.parquet", expect="missing embedding; unexpected vector")
    pq.write_table(pa.table({"id": ["a"], "embedding": ["1,2"]}), tmp_path / "strs.parquet")
    fails("import", db, tmp_path / "strs.parquet", expect="'embedding' must be a list of numbers")
    pq.write_table(pa.table({"id": ["a", "b"], "embedding": [[1.0] * DIM, [1.0] * DIM], "metadata": ["{}", "[1]"]}), tmp_path / "meta.parquet")
    fails("import", db, tmp_path / "meta.parquet", expect="row 1: metadata must be a JSON object")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 but no more")
    fails("import", db, tmp_path / "junk.parquet", expect="not a readable Parquet file")
    assert count(db) == 20


def test_parquet_without_pyarrow(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    blocked = tmp_path / "blocked"
    (blocked / "pyarrow").mkdir(parents=True)
    (blocked / "pyarrow" / "__init__.py").write_text("raise ImportError('pyarrow is blocked for this test')\n")
    (tmp_path / "x.parquet").write_bytes(b"")
    fails("import", db, tmp_path / "x.parquet", expect="pip install pyarrow", extra_path=str(blocked))
    fails("export", db, tmp_path / "y.parquet", expect="pip install pyarrow", extra_path=str(blocked))
    assert not (tmp_path / "y.parquet").exists()


def test_malformed_jsonl_imports_nothing(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    rows = rich_rows(30)
    write_jsonl(tmp_path / "r.jsonl", rows)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    lines[24] = lines[24][:-3]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    fails("import", db, tmp_path / "r.jsonl", "--batch-size", 5, expect="r.jsonl:25: malformed JSON")
    for bad, expect in [
        ({"id": "x", "embedding": [1] * DIM, "colour": "red"}, "unexpected key(s) colour"),
        ({"embedding": [1] * DIM}, "id must be a non-empty string"),
        ({"id": "x", "embedding": "1,2"}, "'embedding' must be a list of numbers"),
        ({"id": "x", "embedding": [1] * DIM, "document": 3}, "'document' must be a string"),
        ({"id": "x", "embedding": [1] * DIM, "metadata": {"#document": "d"}}, "reserved"),
    ]:
        write_jsonl(tmp_path / "b.jsonl", [rows[0], bad])
        fails("import", db, tmp_path / "b.jsonl", expect=expect)
    assert count(db) == 20


def test_missing_files_and_paths(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    fails("import", db, tmp_path / "nope.npy", expect="nope.npy")
    fails("import", db, tmp_path / "nope.jsonl", expect="No such file")
    fails("import", db, tmp_path / "data.csv", expect="unknown format")
    fails("import", db, tmp_path / "good.npy", "--ids-from", tmp_path / "ids.txt", expect="ids.txt")
    (tmp_path / "ids.txt").write_text("a\nb\n")
    fails("import", db, tmp_path / "good.npy", "--ids-from", tmp_path / "ids.txt", expect="has 2 ids, the vectors file 20 rows")
    (tmp_path / "empty").mkdir()
    for cmd in ("info", "verify", "checkpoint", "compact"):
        fails(cmd, tmp_path / "empty", expect="not a collection or a ChromaDB client directory")
    fails("info", tmp_path / "absent", expect="does not exist")
    fails("export", tmp_path / "empty", tmp_path / "o.npy", expect="not a collection")
    fails("info", db, "--collection", "x", expect="drop --collection")
    assert count(db) == 20


# ---------------------------------------------------------------- export


def test_export_refuses_to_overwrite_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    (tmp_path / "o.npy").write_bytes(b"keep me")
    fails("export", db, tmp_path / "o.npy", expect="--overwrite")
    assert (tmp_path / "o.npy").read_bytes() == b"keep me"
    ok("export", db, tmp_path / "o.npy", "--overwrite")
    assert np.load(tmp_path / "o.npy").shape == (20, DIM)
    fails("export", db, tmp_path / "o.jsonl", "--ids-to", tmp_path / "ids.txt", expect="--ids-to is for .npy and .fvecs")
    # an id .npy ids cannot keep: the export fails part way and leaves no file
    with pysvdb.SvDBPython(db, create=False) as h:
        h.add(["line\nbreak"], vectors(1))
    fails("export", db, tmp_path / "p.npy", "--ids-to", tmp_path / "ids.txt", "--batch-size", 7, expect="line break")
    assert sorted(os.listdir(tmp_path)) == ["db", "good.npy", "o.npy"]


def test_export_empty_collection(tmp_path: Path) -> None:
    pysvdb.SvDBPython(tmp_path / "db").close()
    ok("export", tmp_path / "db", tmp_path / "e.jsonl")
    assert (tmp_path / "e.jsonl").read_text() == ""


# ---------------------------------------------------------------- query


def test_query(tmp_path: Path) -> None:
    rows = rich_rows(200)
    write_jsonl(tmp_path / "r.jsonl", rows)
    db = tmp_path / "db"
    ok("import", db, tmp_path / "r.jsonl")
    vec = ",".join(repr(x) for x in rows[10]["embedding"])
    table = ok("query", db, "--vector", vec, "-k", 3)
    assert "doc-10" in table.splitlines()[1] and "document number 10" in table
    hits = json.loads(ok("query", db, "--vector", vec, "-k", 3, "--json"))
    assert len(hits) == 1 and len(hits[0]) == 3
    assert hits[0][0] == {"id": "doc-10", "distance": 0.0, "metadata": {"n": 10, "even": True}, "document": "document number 10"}
    filtered = json.loads(ok("query", db, "--vector", vec, "--where", '{"even": true}', "--json"))[0]
    assert filtered and all(h["metadata"]["even"] is True for h in filtered)
    by_doc = json.loads(ok("query", db, "--vector", vec, "--where-document", '{"$contains": "number 11"}', "--json"))[0]
    assert sorted(h["id"] for h in by_doc) == ["doc-11", "doc-110", "doc-111", "doc-113", "doc-114", "doc-115", "doc-117", "doc-118", "doc-119"]
    many = json.loads(ok("query", db, "--from", tmp_path / "r.jsonl", "--rows", 4, "-k", 1, "--json"))
    assert [q[0]["id"] for q in many] == ["doc-0", "doc-1", "doc-2", "doc-3"]
    np.save(tmp_path / "q.npy", np.array([r["embedding"] for r in rows[:2]], np.float32))
    assert json.loads(ok("query", db, "--from", tmp_path / "q.npy", "-k", 1, "--json"))[0][0]["id"] == "doc-0"
    r = svdb("query", db)
    assert r.returncode == 2 and "exactly one of --vector and --from" in r.stderr
    fails("query", db, "--vector", "1,2,x", expect="--vector must be numbers")
    fails("query", db, "--vector", "1,2,3", expect="3")
    fails("query", db, "--vector", vec, "--where", "{bad", expect="--where is not JSON")


def test_query_chroma(tmp_path: Path) -> None:
    rows = rich_rows(50)
    write_jsonl(tmp_path / "r.jsonl", rows)
    ok("import", tmp_path / "c", tmp_path / "r.jsonl", "-c", "docs")
    hits = json.loads(ok("query", tmp_path / "c", "-c", "docs", "--from", tmp_path / "r.jsonl", "-k", 2, "--json"))
    assert hits[0][0]["id"] == "doc-0" and hits[0][0]["distance"] == pytest.approx(0.0, abs=1e-5)
    assert hits[0][0]["metadata"] is None and hits[0][0]["document"] is None  # row 0 has neither
    one = json.loads(ok("query", tmp_path / "c", "-c", "docs", "--from", tmp_path / "r.jsonl", "--where", '{"n": 5}', "--json"))
    assert [h["id"] for h in one[0]] == ["doc-5"] and one[0][0]["document"] == "document number 5"


# ---------------------------------------------------------------- info and maintenance


def test_info(tmp_path: Path) -> None:
    db = _collection(tmp_path, 30)
    report = json.loads(ok("info", db, "--json"))
    assert report["kind"] == "collection"
    assert report["library"]["simd"] == pysvdb.simd_path()
    (c,) = report["collections"]
    assert (c["count"], c["dim"], c["metric"], c["index"], c["storage"]) == (30, DIM, "l2", "flat", "f32")
    assert c["disk_bytes"] > 30 * DIM * 4 and c["free_slots"] == 0
    text = ok("info", db)
    for label in ("count", "dimension", "metric", "index", "storage", "size on disk", "log size", "free slots", "SIMD path"):
        assert label in text
    write_jsonl(tmp_path / "r.jsonl", rich_rows(12))
    ok("import", tmp_path / "c", tmp_path / "r.jsonl", "-c", "one", "--metric", "cosine")
    ok("import", tmp_path / "c", tmp_path / "good.npy", "-c", "two")
    report = json.loads(ok("info", tmp_path / "c", "--json"))
    assert report["kind"] == "chroma"
    assert {(c["name"], c["count"], c["metric"], c["index"]) for c in report["collections"]} == {
        ("one", 12, "cosine", "hnsw"),
        ("two", 30, "l2", "hnsw"),
    }
    (c,) = json.loads(ok("info", tmp_path / "c", "-c", "two", "--json"))["collections"]
    assert c["name"] == "two"
    assert "ChromaDB client directory, 2 collection(s)" in ok("info", tmp_path / "c")


def test_verify_sound_and_damaged(tmp_path: Path) -> None:
    db = _collection(tmp_path, 200)
    assert "sound (200 rows)" in ok("verify", db)
    snap = db / "snapshot.svdb"
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    r = svdb("verify", db)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "damaged" in r.stderr
    write_jsonl(tmp_path / "r.jsonl", rich_rows(5))
    ok("import", tmp_path / "c", tmp_path / "r.jsonl", "-c", "docs")
    assert "docs: sound (5 rows)" in ok("verify", tmp_path / "c")


def _logged(db: Path, statement: str) -> None:
    """Runs ``statement`` on the collection (as ``db``) and exits without
    closing, so that what it wrote is in the log only (no checkpoint)."""
    code = "import os, numpy as np, pysvdb\ndb = pysvdb.SvDBPython(%r, autocheckpoint_bytes=0)\n%s\nos._exit(0)\n" % (str(db), statement)
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())


def _log_writes(db: Path, n: int) -> None:
    _logged(db, "db.add(['log%%d' %% i for i in range(%d)], np.ones((%d, %d), np.float32))" % (n, n, DIM))


def test_checkpoint(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    _log_writes(db, 50)
    before = (db / "wal.svdb").stat().st_size
    out = ok("checkpoint", db)
    assert "checkpointed" in out
    assert (db / "wal.svdb").stat().st_size < before
    assert json.loads(ok("info", db, "--json"))["collections"][0]["count"] == 70


def test_compact(tmp_path: Path) -> None:
    db = _collection(tmp_path, 2000)
    # deleted rows keep their slots until a checkpoint of a reopened collection or a compaction
    _logged(db, "db.delete([str(i) for i in range(0, 2000, 2)])")
    before = json.loads(ok("info", db, "--json"))["collections"][0]
    assert before["free_slots"] == 1000
    out = ok("compact", db)
    assert "compacted" in out
    after = json.loads(ok("info", db, "--json"))["collections"][0]
    assert after["count"] == 1000 and after["free_slots"] == 0
    assert after["disk_bytes"] < before["disk_bytes"]
    assert "sound (1000 rows)" in ok("verify", db)


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_keeps_whole_batches(tmp_path: Path) -> None:
    n, batch, dim = 200_000, 2000, 32
    np.save(tmp_path / "big.npy", vectors(n, dim))
    db = tmp_path / "db"
    p = subprocess.Popen(
        [sys.executable, "-m", "pysvdb.cli", "import", str(db), str(tmp_path / "big.npy"), "--index", "hnsw", "--batch-size", str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    # interrupt once a few batches are in the log (the file check is done by then)
    wal = db / "wal.svdb"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if wal.exists() and wal.stat().st_size > 3 * batch * dim * 4:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the import finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "imported " in err and "rows before the interrupt" in err
    done = int(err.split("imported ")[1].split()[0])
    assert 0 < done < n and done % batch == 0
    with pysvdb.SvDBPython(db, create=False) as h:
        assert h.count() == done
        assert h.get_all_ids() == [str(i) for i in range(done)]
        h.verify()


def test_ctrl_c_during_export_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with pysvdb.SvDBPython(db) as h:
        h.add([str(i) for i in range(200_000)], vectors(200_000, 32))
    out = tmp_path / "out.jsonl"
    p = subprocess.Popen(
        [sys.executable, "-m", "pysvdb.cli", "export", str(db), str(out), "--batch-size", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        partial = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        if partial and (tmp_path / partial[0]).stat().st_size > 1 << 20:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the export finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err and "nothing written" in err, err
    assert sorted(os.listdir(tmp_path)) == ["db"]


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    np.save(tmp_path / "v.npy", vectors(3000))

    def stderr_of(*args: object) -> str:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a terminal's size
        try:
            r = subprocess.run(
                [sys.executable, "-m", "pysvdb.cli", *map(str, args)], stdout=subprocess.PIPE, stderr=slave, env=_env(), timeout=120
            )
            os.close(slave)
            slave = -1
            chunks = []
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not data:
                    break
                chunks.append(data)
            assert r.returncode == 0
            return b"".join(chunks).decode("utf-8", "replace")
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)

    err = stderr_of("import", tmp_path / "db", tmp_path / "v.npy", "--batch-size", 500)
    assert "checking v.npy" in err and "importing v.npy" in err and "3000/3000" in err and "row/s" in err
    assert stderr_of("import", tmp_path / "db2", tmp_path / "v.npy", "--quiet") == ""
    assert "exporting to o.npy" in stderr_of("export", tmp_path / "db", tmp_path / "o.npy")
    assert svdb("import", tmp_path / "db3", tmp_path / "v.npy").stderr == ""  # stderr not a terminal


def test_ids_from_with_crlf_lines(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", vectors(3))
    (tmp_path / "ids.txt").write_bytes(b"a b\r\nc\r\nd\r\n")
    ok("import", tmp_path / "db", tmp_path / "v.npy", "--ids-from", tmp_path / "ids.txt")
    with pysvdb.SvDBPython(tmp_path / "db", create=False) as h:
        assert h.get_all_ids() == ["a b", "c", "d"]


def test_main_entry_point() -> None:
    code = "from pysvdb.cli import main; main(['--version'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert r.returncode == 0 and r.stdout.startswith("svdb (pysvdb) ")


# ---------------------------------------------------------------- the walk-through


def test_walkthrough_example_runs(tmp_path: Path) -> None:
    r = subprocess.run(
        ["bash", str(REPO / "examples" / "cli_walkthrough.sh"), str(tmp_path / "walk")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "walk-through done" in r.stdout


# ---------------------------------------------------------------- review fixes


def _client_dir(tmp_path: Path) -> Path:
    """A ChromaDB client directory holding one collection, "first"."""
    write_jsonl(tmp_path / "first.jsonl", rich_rows(3))
    client_dir = tmp_path / "chroma"
    ok("import", client_dir, tmp_path / "first.jsonl", "-c", "first")
    return client_dir


def _collections(client_dir: Path) -> List[str]:
    client = pysvdb.PersistentClient(str(client_dir))
    try:
        return sorted(c.name for c in client.list_collections())
    finally:
        client.close()


def test_new_chroma_collection_gets_chromas_checks_first(tmp_path: Path) -> None:
    client_dir = _client_dir(tmp_path)
    rows = rich_rows(10)
    rows[7]["metadata"] = {"nested": {"a": 1}}
    write_jsonl(tmp_path / "bad.jsonl", rows)
    err = fails("import", client_dir, tmp_path / "bad.jsonl", "--batch-size", 5, "-c", "second", expect="row 7")
    assert "Expected metadata value" in err, err
    assert _collections(client_dir) == ["first"]  # nothing imported, "second" not created
    # the same into a client directory that does not exist yet: it is not created
    fails("import", tmp_path / "new", tmp_path / "bad.jsonl", "--batch-size", 5, "-c", "second", expect="row 7")
    assert not (tmp_path / "new").exists()
    # and into an existing collection (checked before too): the file row is named
    fails("import", client_dir, tmp_path / "bad.jsonl", "--batch-size", 5, "-c", "first", "--upsert", expect="row 7")
    assert _collections(client_dir) == ["first"]


def test_ids_are_checked_across_the_whole_file(tmp_path: Path) -> None:
    rows = rich_rows(10)
    rows[8]["id"] = rows[2]["id"]  # in another batch
    write_jsonl(tmp_path / "dup.jsonl", rows)
    db = tmp_path / "db"
    fails("import", db, tmp_path / "dup.jsonl", "--batch-size", 5, expect="rows 2 and 8 have the same id 'doc-2'")
    assert not db.exists()
    client_dir = _client_dir(tmp_path)
    fails("import", client_dir, tmp_path / "dup.jsonl", "--batch-size", 5, "-c", "second", expect="rows 2 and 8 have the same id")
    assert _collections(client_dir) == ["first"]
    fails("import", client_dir, tmp_path / "dup.jsonl", "--batch-size", 5, "-c", "first", "--upsert", expect="rows 2 and 8")
    # within one batch, named by the file's rows (not the index within the batch)
    rows = rich_rows(10)
    rows[9]["id"] = rows[7]["id"]
    write_jsonl(tmp_path / "dup2.jsonl", rows)
    fails("import", db, tmp_path / "dup2.jsonl", "--batch-size", 5, expect="rows 7 and 9 have the same id 'doc-7'")
    assert not db.exists()
    # ids the library refuses: a NUL, too long, empty
    for i, (bad, expect) in enumerate(
        [("a\0b", "row 6: id 'a\\x00b' holds a NUL"), ("x" * (pysvdb.MAX_ID_BYTES + 1), "row 6: the id is %d bytes" % (pysvdb.MAX_ID_BYTES + 1))]
    ):
        rows = rich_rows(10)
        rows[6]["id"] = bad
        write_jsonl(tmp_path / ("bad%d.jsonl" % i), rows)
        fails("import", db, tmp_path / ("bad%d.jsonl" % i), "--batch-size", 5, expect=expect)
        assert not db.exists()  # no empty collection is left behind
        fails("import", client_dir, tmp_path / ("bad%d.jsonl" % i), "--batch-size", 5, "-c", "second", expect=expect)
        assert _collections(client_dir) == ["first"]
    rows = rich_rows(4)
    rows[3]["id"] = "é" * (pysvdb.MAX_ID_BYTES // 2)  # exactly the limit in UTF-8 bytes
    write_jsonl(tmp_path / "longest.jsonl", rows)
    ok("import", tmp_path / "db2", tmp_path / "longest.jsonl")
    np.save(tmp_path / "v.npy", vectors(3))
    (tmp_path / "ids.txt").write_text("a\n\nc\n")
    fails("import", db, tmp_path / "v.npy", "--ids-from", tmp_path / "ids.txt", expect="row 1: the id is empty")
    assert not db.exists()
    # an id in the collection already: the row of the file is named
    ok("import", db, tmp_path / "v.npy", "--id-prefix", "doc-")
    write_jsonl(tmp_path / "r.jsonl", rich_rows(10)[5:] + rich_rows(10)[:1])
    fails("import", db, tmp_path / "r.jsonl", "--batch-size", 3, expect="row 5: id 'doc-0' exists")
    assert count(db) == 3


_CTRL_C_AFTER = """
import os, signal
import pysvdb._db as _db
_orig = _db.SvDBPython.{method}
def _then_ctrl_c(self, *a, **k):
    r = _orig(self, *a, **k)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C once the (short) call is done
    return r
_db.SvDBPython.{method} = _then_ctrl_c
"""


@pytest.mark.parametrize("command,method", [("verify", "verify"), ("checkpoint", "persist"), ("compact", "compact")])
def test_ctrl_c_after_a_short_maintenance_call(tmp_path: Path, command: str, method: str) -> None:
    client_dir = _client_dir(tmp_path)
    write_jsonl(tmp_path / "more.jsonl", rich_rows(5))
    ok("import", client_dir, tmp_path / "more.jsonl", "-c", "second")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_CTRL_C_AFTER.format(method=method))
    r = svdb(command, client_dir, "-q", extra_path=str(hook))
    assert r.returncode == 130, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "interrupted" in r.stderr, r.stderr
    assert len(r.stdout.splitlines()) == 1, r.stdout  # the second collection was not started
    assert "sound" in ok("verify", client_dir)


def test_export_keeps_a_non_string_document_key(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with pysvdb.SvDBPython(db) as h:
        h.add(["n", "s"], vectors(2), ['{"#document": 7, "a": 1}', '{"#document": "text", "a": 2}'])
    ok("export", db, tmp_path / "o.jsonl")
    back = read_jsonl(tmp_path / "o.jsonl")
    assert [(r["metadata"], r["document"]) for r in back] == [({"#document": 7, "a": 1}, None), ({"a": 2}, "text")]


_PARQUET_WRITER_FAILS = """
import pyarrow.parquet as pq
class _Failing:
    def __init__(self, *a, **k):
        raise OSError("parquet writer refused")
pq.ParquetWriter = _Failing
"""


def test_export_names_the_users_path_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    db = _collection(tmp_path)
    err = fails("export", db, tmp_path / "nodir" / "x.jsonl", expect=str(tmp_path / "nodir"))
    assert ".tmp" not in err and "does not exist" in err, err
    fails("export", db, tmp_path / "o.npy", "--ids-to", tmp_path / "nodir" / "ids.txt", expect="does not exist")
    assert sorted(os.listdir(tmp_path)) == ["db", "good.npy"]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_PARQUET_WRITER_FAILS)
    fails("export", db, tmp_path / "out" / "o.parquet", expect="does not exist")
    (tmp_path / "out").mkdir()
    fails("export", db, tmp_path / "out" / "o.parquet", expect="parquet writer refused", extra_path=str(hook))
    assert os.listdir(tmp_path / "out") == []


def test_ids_from_drops_a_byte_order_mark(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", vectors(3))
    (tmp_path / "ids.txt").write_bytes(b"\xef\xbb\xbfa\nb\nc\n")
    ok("import", tmp_path / "db", tmp_path / "v.npy", "--ids-from", tmp_path / "ids.txt")
    with pysvdb.SvDBPython(tmp_path / "db", create=False) as h:
        assert h.get_all_ids() == ["a", "b", "c"]


def test_cli_reuses_the_librarys_constants() -> None:
    cli_dir = Path(pysvdb.__file__).parent / "cli"
    assert '"#document"' not in (cli_dir / "formats.py").read_text()
    assert "5461" not in (cli_dir / "commands.py").read_text()
    from pysvdb._cdef import DOCUMENT_KEY
    from pysvdb.cli.formats import DOCUMENT_KEY as cli_key

    assert cli_key is DOCUMENT_KEY
