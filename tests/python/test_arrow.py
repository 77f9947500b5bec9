"""pysvdb.arrow: Arrow tables, pandas DataFrames and Parquet files in and out
of SvDBPython and the Chroma collection; the progress bars of bulk adds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")  # the optional extra pysvdb[arrow]
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

import pysvdb  # noqa: E402
from pysvdb import (  # noqa: E402
    DuplicateIdError,
    IdExistsError,
    InvalidArgumentError,
    InvalidTypeError,
    MetadataError,
    SvDBPython,
)

DIM = 8


def _vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _embedding(v: np.ndarray) -> Any:
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])


def _table(n: int, dim: int = DIM, seed: int = 0, start: int = 0) -> Tuple[Any, np.ndarray]:
    v = _vectors(n, dim, seed)
    t = pa.table(
        {
            "id": [f"r{start + i}" for i in range(n)],
            "embedding": _embedding(v),
            "meta": [json.dumps({"n": start + i, "even": (start + i) % 2 == 0}) for i in range(n)],
        }
    )
    return t, v


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SvDBPython]:
    d = SvDBPython(str(tmp_path / "db"))
    yield d
    d.close()


# ---------------------------------------------------------------- import cost


def test_import_pysvdb_imports_neither_pyarrow_nor_pandas() -> None:
    code = (
        "import sys, pysvdb\n"
        "db = pysvdb.SvDBPython\n"
        "bad = [m for m in ('pyarrow', 'pandas', 'pysvdb.arrow', 'tqdm') if m in sys.modules]\n"
        "print(bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------- round trips


def test_add_arrow_then_to_arrow_round_trip(db: SvDBPython) -> None:
    t, v = _table(25)
    assert db.add_arrow(t, metadata_column="meta", batch_size=10) == 25
    out = db.to_arrow(batch_size=7)
    assert out.schema.field("id").type == pa.string()
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
    assert out.schema.field("metadata").type == pa.string()
    assert out.num_rows == 25
    assert out["id"].to_pylist() == t["id"].to_pylist()
    got = out["embedding"].combine_chunks().flatten().to_numpy().reshape(25, DIM)
    assert np.array_equal(got, v)
    assert [json.loads(m) for m in out["metadata"].to_pylist()] == [json.loads(m) for m in t["meta"].to_pylist()]


def test_to_arrow_columns_and_batches(db: SvDBPython) -> None:
    t, _ = _table(25)
    db.add_arrow(t)  # no metadata column: rows without metadata
    batches = list(db.iter_arrow_batches(batch_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert batches[0].schema.names == ["id", "embedding", "metadata"]
    assert batches[0].column("metadata").null_count == 10
    assert db.to_arrow(vectors=False).schema.names == ["id", "metadata"]
    assert db.to_arrow(metadata=False).schema.names == ["id", "embedding"]
    with pytest.raises(InvalidArgumentError, match="batch_size must be at least 1"):
        db.iter_arrow_batches(batch_size=0)  # checked at the call, not at the first batch
    with pytest.raises(InvalidTypeError, match="ids must be a list of str"):
        db.to_arrow(ids="r1")


def test_to_arrow_of_an_empty_collection(tmp_path: Path) -> None:
    with SvDBPython(str(tmp_path / "e"), dim=4) as db:
        t = db.to_arrow()
        assert t.num_rows == 0
        assert t.schema.field("embedding").type == pa.list_(pa.float32(), 4)
        assert len(db.to_pandas()) == 0


def test_to_arrow_filters(db: SvDBPython) -> None:
    t, v = _table(20)
    docs = pa.array([None if i % 5 == 0 else json.dumps({"n": i, "#document": "doc %d %s" % (i, "cat" if i % 3 == 0 else "dog")}) for i in range(20)])
    db.add_arrow(t.set_column(2, "meta", docs), metadata_column="meta")
    got = db.to_arrow(where={"n": {"$lt": 7}})
    assert got["id"].to_pylist() == ["r1", "r2", "r3", "r4", "r6"]  # r0, r5 have no metadata
    assert np.array_equal(got["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, DIM), v[[1, 2, 3, 4, 6]])
    got = db.to_arrow(where_document={"$contains": "cat"})
    assert got["id"].to_pylist() == ["r3", "r6", "r9", "r12", "r18"]
    got = db.to_arrow(ids=["r9", "r2", "nope"], where={"n": {"$gt": 2}})
    assert got["id"].to_pylist() == ["r9"]  # insertion order, missing ids ignored
    assert db.to_pandas(ids=["r2", "r1"])["id"].tolist() == ["r1", "r2"]


def test_to_pandas_embedding_is_one_array_per_row(db: SvDBPython) -> None:
    t, v = _table(12)
    db.add_arrow(t, metadata_column="meta")
    df = db.to_pandas()
    assert list(df.columns) == ["id", "embedding", "metadata"]
    assert isinstance(df["embedding"].iloc[0], np.ndarray) and df["embedding"].iloc[0].dtype == np.float32
    assert np.array_equal(np.stack(df["embedding"].to_numpy()), v)
    assert json.loads(df["metadata"].iloc[3]) == {"n": 3, "even": False}


def test_add_dataframe_round_trip(db: SvDBPython) -> None:
    v = _vectors(30)
    df = pd.DataFrame({"key": [f"k{i}" for i in range(30)], "vec": list(v), "year": range(2000, 2030), "tag": ["a", None, "c"] * 10})
    assert db.add_dataframe(df, id_column="key", embedding_column="vec", metadata_column=["year", "tag"], batch_size=8) == 30
    back = db.to_pandas()
    assert back["id"].tolist() == df["key"].tolist()
    assert np.array_equal(np.stack(back["embedding"].to_numpy()), v)
    assert json.loads(back["metadata"].iloc[0]) == {"year": 2000, "tag": "a"}
    assert json.loads(back["metadata"].iloc[1]) == {"year": 2001}  # a null leaves the key out
    # and the DataFrame that to_pandas gives goes back in as it is
    with SvDBPython(db.path + "2") as db2:
        assert db2.add_dataframe(back, metadata_column="metadata") == 30
        assert db2.get("k1") == back["metadata"].iloc[1]
        assert np.array_equal(db2.get_vector("k7"), v[7])


def test_add_dataframe_arrow_dtype_column(db: SvDBPython) -> None:
    v = _vectors(10)
    col = pd.Series(pd.arrays.ArrowExtensionArray(_embedding(v)))
    df = pd.DataFrame({"id": [f"r{i}" for i in range(10)], "embedding": col})
    assert db.add_dataframe(df) == 10
    assert np.array_equal(db.get_vector("r9"), v[9])


def test_add_dataframe_errors(db: SvDBPython) -> None:
    df = pd.DataFrame({"id": ["a", "b"], "embedding": [np.ones(3), np.ones(4)]})
    with pytest.raises(InvalidArgumentError, match="ragged: row 1 has 4 values, row 0 has 3"):
        db.add_dataframe(df)
    with pytest.raises(InvalidArgumentError, match="column 'emb' is not in the DataFrame"):
        db.add_dataframe(df, embedding_column="emb")
    with pytest.raises(InvalidTypeError, match="takes a pandas DataFrame"):
        db.add_dataframe({"id": ["a"]})
    with pytest.raises(InvalidArgumentError, match="ragged"):
        db.add_arrow(df)  # a DataFrame given to add_arrow takes add_dataframe's path
    assert db.count() == 0


def test_add_parquet_streams_row_groups(db: SvDBPython, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t, v = _table(1000)
    t = t.append_column("unused", pa.array([b"x" * 10] * 1000))
    path = tmp_path / "rows.parquet"
    pq.write_table(t, path, row_group_size=37)
    assert pq.ParquetFile(path).metadata.num_row_groups == 28
    calls: List[int] = []
    real_put = SvDBPython._put_prepared

    def spy(self: SvDBPython, fn: Any, n: int, *args: Any) -> None:
        calls.append(n)
        real_put(self, fn, n, *args)

    monkeypatch.setattr(SvDBPython, "_put_prepared", spy)
    assert db.add_parquet(path, metadata_column="meta", batch_size=100) == 1000
    assert calls == [100] * 10  # read and written a batch at a time
    out = db.to_arrow()
    assert out["id"].to_pylist() == t["id"].to_pylist()
    assert np.array_equal(out["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, DIM), v)
    assert db.get("r999") == t["meta"][999].as_py()


def test_add_parquet_errors(db: SvDBPython, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot read .* as Parquet"):
        db.add_parquet(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidArgumentError, match="as Parquet"):
        db.add_parquet(bad)
    t, _ = _table(5)
    path = tmp_path / "ok.parquet"
    pq.write_table(t, path)
    with pytest.raises(InvalidArgumentError, match="column 'vec' is not in the table"):
        db.add_parquet(path, embedding_column="vec")
    assert db.count() == 0


# ---------------------------------------------------------------- zero copy


def test_fixed_size_float32_column_reaches_c_without_a_copy(db: SvDBPython, monkeypatch: pytest.MonkeyPatch) -> None:
    import pysvdb._db as core

    seen: List[np.ndarray] = []
    real = core._c_array

    def spy(ctype: str, a: np.ndarray) -> Any:
        if ctype == "float[]":
            seen.append(a)
        return real(ctype, a)

    monkeypatch.setattr(core, "_c_array", spy)
    t, _ = _table(30)
    db.add_arrow(t, batch_size=12)
    values = t["embedding"].chunk(0).flatten().to_numpy(zero_copy_only=True)
    assert len(seen) == 3
    for i, a in enumerate(seen):  # each batch's vectors are a view of the table's buffer, at its rows
        assert np.shares_memory(a, values)
        assert a.ctypes.data == values.ctypes.data + i * 12 * DIM * 4
    # a list<double> column is copied (converted to float32)
    seen.clear()
    v = _vectors(4)
    db.add_arrow(pa.table({"id": ["x0", "x1", "x2", "x3"], "embedding": pa.array(v.astype(np.float64).tolist())}))
    assert len(seen) == 1 and seen[0].dtype == np.float32 and np.array_equal(seen[0], v)


@pytest.mark.parametrize(
    "kind",
    ["list<float32>", "list<float64>", "large_list<float32>", "fixed<float64>", "list<int16>", "list_view<float32>"],
)
def test_other_list_columns_are_copied(db: SvDBPython, kind: str) -> None:
    v = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = v.tolist()
    col = {
        "list<float32>": lambda: pa.array(rows, type=pa.list_(pa.float32())),
        "list<float64>": lambda: pa.array(rows, type=pa.list_(pa.float64())),
        "large_list<float32>": lambda: pa.array(rows, type=pa.large_list(pa.float32())),
        "fixed<float64>": lambda: pa.array(rows, type=pa.list_(pa.float64(), 3)),
        "list<int16>": lambda: pa.array(rows, type=pa.list_(pa.int16())),
        "list_view<float32>": lambda: pa.array(rows, type=pa.list_view(pa.float32())),
    }[kind]()
    db.add_arrow(pa.table({"id": ["a", "b", "c", "d"], "embedding": col}))
    assert np.array_equal(db.to_arrow()["embedding"].combine_chunks().flatten().to_numpy().reshape(4, 3), v)


def test_sliced_and_chunked_columns(db: SvDBPython) -> None:
    t, v = _table(50)
    # columns chunked at different boundaries, and a sliced table (offsets into the buffers)
    ids = pa.chunked_array([t["id"].chunk(0)[:7], t["id"].chunk(0)[7:31], t["id"].chunk(0)[31:]])
    emb = pa.chunked_array([t["embedding"].chunk(0)[:20], t["embedding"].chunk(0)[20:]])
    chunked = pa.table({"id": ids, "embedding": emb, "meta": t["meta"]})
    assert db.add_arrow(chunked.slice(3, 40), metadata_column="meta", batch_size=16) == 40
    out = db.to_arrow()
    assert out["id"].to_pylist() == [f"r{i}" for i in range(3, 43)]
    assert np.array_equal(out["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, DIM), v[3:43])
    assert json.loads(db.get("r42") or "") == {"n": 42, "even": True}


def test_small_chunks_are_joined_into_full_batches(db: SvDBPython, monkeypatch: pytest.MonkeyPatch) -> None:
    t, v = _table(100)
    small = pa.concat_tables([t.slice(i, 7) for i in range(0, 100, 7)])  # 15 chunks
    calls: List[int] = []
    real_put = SvDBPython._put_prepared

    def spy(self: SvDBPython, fn: Any, n: int, *args: Any) -> None:
        calls.append(n)
        real_put(self, fn, n, *args)

    monkeypatch.setattr(SvDBPython, "_put_prepared", spy)
    assert db.add_arrow(small, batch_size=30) == 100
    assert calls == [30, 30, 30, 10]
    assert db.add_arrow(pa.table({"id": pa.array([], pa.string()), "embedding": _embedding(v[:0])})) == 0
    assert calls == [30, 30, 30, 10]  # an empty table makes no call
    assert np.array_equal(np.stack(db.to_pandas()["embedding"].to_numpy()), v)


def test_sources_batch_reader_and_iterables(db: SvDBPython) -> None:
    t, v = _table(30)
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=13))
    assert db.add_arrow(reader, batch_size=5) == 30
    t2, _ = _table(10, start=30)
    assert db.add_arrow(iter(t2.to_batches(max_chunksize=4))) == 10
    t3, _ = _table(3, start=40)
    assert db.add_arrow(t3.to_batches()[0]) == 3
    assert db.add_arrow([_table(2, start=50)[0]]) == 2  # an iterable of Tables

    class Stream:  # another library's table (polars, duckdb, ...): the Arrow C stream interface
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return _table(4, start=60)[0].__arrow_c_stream__(requested_schema)

    assert db.add_arrow(Stream()) == 4
    assert db.count() == 49 and db.contains("r63")
    with pytest.raises(InvalidTypeError, match="RecordBatches or Tables, not int"):
        db.add_arrow([1, 2])
    with pytest.raises(InvalidTypeError, match="add_parquet"):
        db.add_arrow("file.parquet")
    with pytest.raises(InvalidTypeError, match="add_arrow takes"):
        db.add_arrow(42)


def test_upsert_overwrites(db: SvDBPython) -> None:
    t, _ = _table(10)
    db.add_arrow(t, metadata_column="meta")
    t2, v2 = _table(10, seed=5)
    with pytest.raises(IdExistsError):
        db.add_arrow(t2)
    assert db.add_arrow(t2, upsert=True) == 10
    assert np.array_equal(db.get_vector("r4"), v2[4])
    assert db.get("r4") is None  # upsert without metadata removes it


# ---------------------------------------------------------------- metadata columns


def test_metadata_struct_map_and_scalar_columns(db: SvDBPython) -> None:
    v = _vectors(3)
    structs = pa.array([{"a": 1, "b": "x"}, {"a": None, "b": "y"}, None], type=pa.struct([("a", pa.int64()), ("b", pa.string())]))
    maps = pa.array([[("k", 1.5)], [], None], type=pa.map_(pa.string(), pa.float64()))
    t = pa.table({"id": ["s0", "s1", "s2"], "embedding": _embedding(v), "st": structs, "mp": maps, "n": [1, None, 3]})
    db.add_arrow(t, metadata_column="st")
    assert [db.get(i) for i in ("s0", "s1", "s2")] == ['{"a": 1, "b": "x"}', '{"b": "y"}', None]
    db.add_arrow(t, metadata_column="mp", upsert=True)
    assert [db.get(i) for i in ("s0", "s1", "s2")] == ['{"k": 1.5}', None, None]
    db.add_arrow(t, metadata_column=["n", "st"], upsert=True)
    assert json.loads(db.get("s0") or "") == {"n": 1, "st": {"a": 1, "b": "x"}}
    assert json.loads(db.get("s1") or "") == {"st": {"a": None, "b": "y"}}
    assert json.loads(db.get("s2") or "") == {"n": 3}


def test_metadata_errors_write_nothing(db: SvDBPython) -> None:
    v = _vectors(2)
    t = pa.table({"id": ["a", "b"], "embedding": _embedding(v), "m": ['{"x": 1}', "[1, 2]"], "ts": pa.array([1, 2], pa.timestamp("s"))})
    with pytest.raises(MetadataError):
        db.add_arrow(t, metadata_column="m")  # the library rejects a JSON array
    with pytest.raises(MetadataError, match="row 0 cannot be stored as JSON"):
        db.add_arrow(t, metadata_column=["ts"])
    with pytest.raises(InvalidTypeError, match="metadata column 'ts' must hold JSON object text, structs or maps"):
        db.add_arrow(t, metadata_column="ts")
    with pytest.raises(InvalidArgumentError, match="non-empty list"):
        db.add_arrow(t, metadata_column=[])
    assert db.count() == 0


# ---------------------------------------------------------------- schema and row errors


def _bad_tables() -> List[Tuple[str, Any, Dict[str, Any], type, str]]:
    v = _vectors(3)
    ids = pa.array(["a", "b", "c"])
    emb = _embedding(v)
    return [
        ("missing id", pa.table({"key": ids, "embedding": emb}), {}, InvalidArgumentError, r"column 'id' is not in the table \(its columns: key, embedding\)"),
        ("missing embedding", pa.table({"id": ids}), {}, InvalidArgumentError, "column 'embedding' is not in the table"),
        ("missing metadata", pa.table({"id": ids, "embedding": emb}), {"metadata_column": "m"}, InvalidArgumentError, "column 'm' is not in the table"),
        ("int ids", pa.table({"id": [1, 2, 3], "embedding": emb}), {}, InvalidTypeError, "id column 'id' must hold strings, not int64 \\(cast it"),
        ("string embedding", pa.table({"id": ids, "embedding": ["x", "y", "z"]}), {}, InvalidTypeError, "embedding column 'embedding' must be a list of numbers"),
        ("list<string> embedding", pa.table({"id": ids, "embedding": [["x"], ["y"], ["z"]]}), {}, InvalidTypeError, "must be a list of numbers"),
        ("null id", pa.table({"id": ["a", None, "c"], "embedding": emb}), {}, InvalidArgumentError, "id column 'id' is null in row 1"),
        ("null vector", pa.table({"id": ids, "embedding": pa.array([[1.0, 2.0], None, [3.0, 4.0]])}), {}, InvalidArgumentError, "embedding column 'embedding' is null in row 1"),
        ("null value", pa.table({"id": ids, "embedding": pa.array([[1.0, 2.0], [3.0, None], [3.0, 4.0]])}), {}, InvalidArgumentError, "null value in row 1"),
        ("ragged", pa.table({"id": ids, "embedding": pa.array([[1.0, 2.0], [3.0, 4.0], [5.0]])}), {}, InvalidArgumentError, "ragged: row 2 has 1 values, row 0 has 2"),
        ("duplicate ids", pa.table({"id": ["a", "b", "a"], "embedding": emb}), {}, DuplicateIdError, r"id 'a' appears twice in the batch \(rows 0 and 2\)"),
        ("nan", pa.table({"id": ids, "embedding": pa.array([[1.0, float("nan")], [3.0, 4.0], [5.0, 6.0]])}), {}, InvalidArgumentError, "vector of row 0 has a NaN"),
        ("bad column name", pa.table({"id": ids, "embedding": emb}), {"id_column": 3}, InvalidTypeError, "id_column must be a column name"),
        ("no embedding", pa.table({"id": ids, "embedding": emb}), {"embedding_column": None}, InvalidArgumentError, "needs the vectors"),
        ("batch size", pa.table({"id": ids, "embedding": emb}), {"batch_size": 0}, InvalidArgumentError, "batch_size must be at least 1"),
        ("progress", pa.table({"id": ids, "embedding": emb}), {"progress": "yes"}, TypeError, "progress must be False, True or 'always'"),
    ]


@pytest.mark.parametrize("case", _bad_tables(), ids=lambda c: c[0])
def test_schema_and_row_errors_write_nothing(db: SvDBPython, case: Tuple[str, Any, Dict[str, Any], type, str]) -> None:
    _, table, kwargs, exc, message = case
    with pytest.raises(exc, match=message):
        db.add_arrow(table, **kwargs)
    assert db.count() == 0


def test_failed_batch_keeps_earlier_batches_unless_atomic(db: SvDBPython) -> None:
    t, _ = _table(25)
    ids = t["id"].to_pylist()
    ids[21] = None  # a null id in the third batch of 10
    bad = t.set_column(0, "id", pa.array(ids))
    with pytest.raises(InvalidArgumentError, match="id column 'id' is null in row 21"):
        db.add_arrow(bad, batch_size=10)
    assert db.count() == 20  # the first two batches stay, nothing of the third
    assert db.contains("r19") and not db.contains("r20")
    db.delete(db.get_all_ids())
    with pytest.raises(InvalidArgumentError, match="row 21"):
        db.add_arrow(bad, batch_size=10, atomic=True)
    assert db.count() == 0
    assert db.add_arrow(t, batch_size=10, atomic=True) == 25


def test_library_error_in_a_later_batch_says_where_that_batch_starts(db: SvDBPython) -> None:
    t, _ = _table(25)
    ids = t["id"].to_pylist()
    ids[23] = "r20"  # twice in the third batch
    with pytest.raises(DuplicateIdError, match=r"id 'r20' appears twice in the batch \(rows 0 and 3\) \(in the batch that starts at row 20 of the input\)"):
        db.add_arrow(t.set_column(0, "id", pa.array(ids)), batch_size=10)
    assert db.count() == 20


def test_schema_change_in_a_stream_stops_before_that_batch(db: SvDBPython) -> None:
    t, _ = _table(10)
    other = pa.table({"key": ["z"], "embedding": _embedding(_vectors(1))})
    with pytest.raises(InvalidArgumentError, match="column 'id' is not in the table"):
        db.add_arrow([t, other])
    assert db.count() == 10


def test_dimension_mismatch_between_batches(db: SvDBPython) -> None:
    t, _ = _table(5)
    t2, _ = _table(5, dim=4, start=5)
    with pytest.raises(pysvdb.DimensionError):
        db.add_arrow([t, t2])
    assert db.count() == 5
    db.delete(db.get_all_ids())
    with pytest.raises(InvalidArgumentError, match="different dimensions"):
        db.add_arrow([t, t2], atomic=True)
    assert db.count() == 0


# ---------------------------------------------------------------- progress bars and interrupts


def test_progress_bar_forced(db: SvDBPython, capsys: pytest.CaptureFixture[str]) -> None:
    t, _ = _table(30)
    db.add_arrow(t, batch_size=10, progress="always")
    err = capsys.readouterr().err
    assert "adding" in err and "30/30" in err and "row/s" in err and "100%" in err


def test_progress_bar_on_reads(db: SvDBPython, capsys: pytest.CaptureFixture[str]) -> None:
    db.add_arrow(_table(30)[0])
    capsys.readouterr()
    assert len(db.to_pandas(batch_size=7, progress="always")) == 30
    err = capsys.readouterr().err
    assert "reading" in err and "30/30" in err
    with pytest.raises(TypeError, match="progress must be"):
        db.to_arrow(progress="loud")


def test_progress_true_is_silent_when_stderr_is_not_a_terminal(db: SvDBPython, capsys: pytest.CaptureFixture[str]) -> None:
    t, _ = _table(30)
    db.add_arrow(t, batch_size=10, progress=True)
    db.add_arrow(_table(5, start=30)[0], progress=False)
    assert capsys.readouterr().err == ""
    assert db.count() == 35


def test_progress_of_a_stream_without_total(db: SvDBPython, capsys: pytest.CaptureFixture[str]) -> None:
    t, _ = _table(20)
    db.add_arrow(iter(t.to_batches(max_chunksize=5)), progress="always")
    err = capsys.readouterr().err
    assert "20row" in err.replace(" ", "") and "%" not in err  # a count and a rate, no percentage


def _hnsw(path: Path) -> SvDBPython:
    return SvDBPython(str(path), dim=48, index="hnsw", build_threads=1, seed=3)


def test_engine_steps_show_under_the_bar_and_user_handler_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t, _ = _table(3000, dim=48)
    seen: List[str] = []
    with _hnsw(tmp_path / "h") as db:
        db.set_progress_handler(lambda op, done, total: seen.append(op) and None)
        db.add_arrow(t, batch_size=3000, progress="always")  # one batch: linking it reports
        err = capsys.readouterr().err
        assert "link" in err and "3000/3000" in err
        assert "link" in seen  # the user's handler was called too, and is back afterwards
        seen.clear()
        db.add(["more%d" % i for i in range(3000)], _vectors(3000, 48, seed=9))
        assert "link" in seen


def test_keyboard_interrupt_keeps_earlier_batches_and_none_of_the_interrupted_one(tmp_path: Path) -> None:
    t, _ = _table(6000, dim=48)
    armed = [False]

    def batches() -> Iterator[Any]:
        for i, b in enumerate(t.to_batches(max_chunksize=2000)):
            armed[0] = i == 2
            yield b

    def interrupt(op: str, done: int, total: int) -> None:
        if armed[0] and op == "link":
            raise KeyboardInterrupt  # as Ctrl-C does, delivered in the engine's progress call

    with _hnsw(tmp_path / "h") as db:
        db.set_progress_handler(interrupt)
        with pytest.raises(KeyboardInterrupt):
            db.add_arrow(batches(), batch_size=2000)
        assert db.count() == 4000 and db.contains("r3999") and not db.contains("r4000")
    with _hnsw(tmp_path / "h") as db:
        assert db.count() == 4000


_SIGINT_SCRIPT = """
import os, signal, sys
import numpy as np, pyarrow as pa
import pysvdb

# As in a terminal: a run started in the background (CI) hands us SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
path = sys.argv[1]
n = 30000
v = np.random.default_rng(0).standard_normal((n, 48)).astype(np.float32)
table = pa.table({"id": [f"r{i}" for i in range(n)],
                  "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), 48)})
sent = []

def ctrl_c(op, done, total):  # Ctrl-C at the first report of a batch's linking, whichever batch
    if op == "link" and done < total and not sent:
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)

db = pysvdb.SvDBPython(path, dim=48, index="hnsw", build_threads=1, seed=3)
db.set_progress_handler(ctrl_c)
try:
    db.add_arrow(table, batch_size=3000)
    print("finished", db.count())
except KeyboardInterrupt:
    print("interrupted", db.count())
db.close()
"""


def test_ctrl_c_cancels_the_batch_in_flight(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    path = str(tmp_path / "h")
    out = subprocess.run([sys.executable, "-c", _SIGINT_SCRIPT, path], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    word, count = out.stdout.split()
    kept = int(count)
    assert word == "interrupted" and kept % 3000 == 0 and kept < 30000  # whole batches, none of the one in flight
    with SvDBPython(path) as db:
        assert db.count() == kept and not db.contains("r%d" % kept)
        assert kept == 0 or db.contains("r%d" % (kept - 1))


def test_interrupt_between_batches(db: SvDBPython) -> None:
    t, _ = _table(30)

    def batches() -> Iterator[Any]:
        yield from t.to_batches(max_chunksize=10)[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        db.add_arrow(batches(), batch_size=10)
    assert db.count() == 20


# ---------------------------------------------------------------- the Chroma collection


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    c = pysvdb.PersistentClient(path=str(tmp_path / "chroma"))
    yield c
    c.close()


def _records(n: int) -> Tuple[Any, np.ndarray]:
    v = _vectors(n, 4)
    t = pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "embedding": _embedding(v),
            "meta": [json.dumps({"n": i}) if i % 4 else None for i in range(n)],
            "text": [f"document {i} about {'cats' if i % 2 else 'dogs'}" for i in range(n)],
        }
    )
    return t, v


def test_chroma_add_arrow_and_get_arrow(client: Any) -> None:
    col = client.create_collection("colc", embedding_function=None)
    t, v = _records(12)
    assert col.add_arrow(t, metadata_column="meta", document_column="text", batch_size=5) == 12
    got = col.get(ids=["d1", "d4"], include=["metadatas", "documents"])
    assert got["metadatas"] == [{"n": 1}, None] and got["documents"] == ["document 1 about cats", "document 4 about dogs"]
    out = col.get_arrow()
    assert out.schema.names == ["id", "embedding", "metadata", "document"]
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 4)
    assert out["id"].to_pylist() == t["id"].to_pylist()
    assert np.array_equal(out["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, 4), v)
    assert out["document"].to_pylist() == t["text"].to_pylist()
    assert out["metadata"].to_pylist()[:3] == [None, '{"n": 1}', '{"n": 2}']  # no "#document" inside
    page = col.to_arrow(where={"n": {"$gte": 2}}, where_document={"$contains": "cats"}, limit=2, offset=1, include=["documents"])
    assert page.schema.names == ["id", "document"]
    assert page["id"].to_pylist() == ["d5", "d7"]
    df = col.to_pandas(ids=["d3", "d2"])
    assert df["id"].tolist() == ["d2", "d3"] and np.array_equal(np.stack(df["embedding"].to_numpy()), v[2:4])
    assert df["document"].tolist() == ["document 2 about dogs", "document 3 about cats"]
    assert col.get_arrow(include=["uris"]).schema.names == ["id", "uri"]


def test_chroma_add_dataframe_parquet_and_upsert(client: Any, tmp_path: Path) -> None:
    col = client.create_collection("colc", embedding_function=None)
    t, v = _records(20)
    path = tmp_path / "docs.parquet"
    pq.write_table(t, path, row_group_size=3)
    assert col.add_parquet(path, metadata_column="meta", document_column="text", batch_size=7) == 20
    assert col.count() == 20
    df = col.to_pandas()
    df["document"] = df["document"].str.upper()
    assert col.add_dataframe(df, metadata_column="metadata", document_column="document", upsert=True) == 20
    assert col.get(ids=["d3"])["documents"] == ["DOCUMENT 3 ABOUT CATS"]
    assert col.get(ids=["d3"])["metadatas"] == [{"n": 3}]
    # Chroma's add ignores ids that exist: nothing changes
    assert col.add_arrow(t, document_column="text") == 20
    assert col.get(ids=["d3"])["documents"] == ["DOCUMENT 3 ABOUT CATS"]


def test_chroma_add_arrow_embeds_documents(client: Any) -> None:
    col = client.create_collection("cole", embedding_function=lambda texts: [[float(len(x)), 1.0] for x in texts])
    t = pa.table({"id": ["a", "b"], "text": ["hi", "hello"]})
    assert col.add_arrow(t, embedding_column=None, document_column="text") == 2
    assert np.array_equal(col.get(include=["embeddings"])["embeddings"], [[2.0, 1.0], [5.0, 1.0]])


def test_chroma_add_arrow_errors(client: Any) -> None:
    col = client.create_collection("colc", embedding_function=None)
    t, _ = _records(4)
    with pytest.raises(InvalidArgumentError, match="max batch size"):
        col.add_arrow(t, batch_size=100_000)
    with pytest.raises(InvalidArgumentError, match="no document_column to embed"):
        col.add_arrow(t, embedding_column=None)
    with pytest.raises(InvalidTypeError, match="document column 'meta' must hold strings"):
        col.add_arrow(t.set_column(2, "meta", pa.array([1, 2, 3, 4])), document_column="meta")
    with pytest.raises(MetadataError, match="row 1: not JSON"):
        col.add_arrow(t.set_column(2, "meta", pa.array(["{}", "{", None, None])), metadata_column="meta")
    with pytest.raises(ValueError):  # ChromaDB rejects nested metadata values
        col.add_arrow(t.set_column(2, "meta", pa.array(['{"a": {"b": 1}}'] * 4)), metadata_column="meta")
    assert col.count() == 0


# ---------------------------------------------------------------- ids and metadata to C from Arrow buffers


def test_scalar_metadata_columns_become_the_same_json_as_per_row(db: SvDBPython) -> None:
    """The Arrow-compute JSON of scalar columns parses to what the per-row path
    (json.dumps of each row's non-null values) stores, for every scalar type,
    escapes, nulls, a row with no value, a sliced table and large strings."""
    n = 9
    v = _vectors(n)
    words = ['plain', 'a "quote"', "back\\slash", "ünïcödé ✓", None, "", "tab\tcontrol", "x", "y"]
    t = pa.table(
        {
            "id": pa.array(["m%d" % i for i in range(n)], pa.large_string()),
            "embedding": _embedding(v),
            "i": pa.array([1, -2, None, 2**53 + 1, 0, 7, 8, None, 10], pa.int64()),
            "f": pa.array([1.0, 0.1, -0.0, 1e20, None, 2.5e-7, 3.0, None, 4.0], pa.float64()),
            "f32": pa.array([0.5, None, 1.0, 2.0, 3.0, 4.0, 5.0, None, 6.0], pa.float32()),
            "b": pa.array([True, False, None, True, None, False, True, None, True]),
            "s": pa.array(words),
        }
    ).slice(0)
    cols = ["i", "f", "f32", "b", "s"]
    assert db.add_arrow(t.slice(0, 6), metadata_column=cols) == 6  # row 6 has a tab: that batch goes per row
    assert db.add_arrow(t.slice(6), metadata_column=cols) == 3
    for i, row in enumerate(t.select(cols).to_pylist()):
        want = {k: x for k, x in row.items() if x is not None} or None
        got = db.get("m%d" % i)
        assert (json.loads(got) if got is not None else None) == want, (i, got)
    assert json.loads(db.get("m0") or "")["f"] == 1.0 and isinstance(json.loads(db.get("m0") or "")["f"], float)
    assert db.search(v[3], k=1, where={"i": 2**53 + 1})[0][0] == "m3"  # integers stay exact


def test_a_float32_value_is_stored_alike_on_both_paths(db: SvDBPython) -> None:
    """A batch whose strings need json.dumps (a control character) takes the
    per-row path; its float32 values are written as the other batches' are."""
    v = _vectors(2)
    t = pa.table({"id": ["a", "b"], "embedding": _embedding(v), "score": pa.array([0.4, 0.4], pa.float32()),
                  "note": ["plain", "tab\there"]})
    assert db.add_arrow(t, metadata_column=["score", "note"], batch_size=1) == 2
    assert json.loads(db.get("a") or "")["score"] == json.loads(db.get("b") or "")["score"]
    assert sorted(db.ids_where({"score": float(np.float32(0.4))})) == ["a", "b"]


def test_non_finite_float_metadata_is_refused(db: SvDBPython) -> None:
    v = _vectors(3)
    t = pa.table({"id": ["a", "b", "c"], "embedding": _embedding(v), "x": pa.array([1.0, float("nan"), 2.0])})
    with pytest.raises(MetadataError, match=r"column 'x', row 1: nan is not a JSON number"):
        db.add_arrow(t, metadata_column=["x"])
    assert db.count() == 0


def test_nul_in_an_id_or_in_metadata_text_is_refused(db: SvDBPython) -> None:
    v = _vectors(2)
    with pytest.raises(InvalidArgumentError, match=r"row 1: an id contains a NUL"):
        db.add_arrow(pa.table({"id": ["a", "b\x00c"], "embedding": _embedding(v)}))
    with pytest.raises(MetadataError, match=r"row 0: a NUL"):
        db.add_arrow(pa.table({"id": ["a", "b"], "embedding": _embedding(v), "m": ['{"k": "x\x00y"}', None]}), metadata_column="m")
    assert db.count() == 0


def test_ids_and_metadata_text_reach_c_from_arrow_buffers(db: SvDBPython, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Python list of ids or metadata is built: the per-row converters are not called."""
    import pysvdb.arrow as arrow

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("per-row path used")

    monkeypatch.setattr(arrow, "_ids", boom)
    monkeypatch.setattr(arrow, "_metadatas", boom)
    v = _vectors(50)
    metas = [None if i % 7 == 0 else json.dumps({"n": i}) for i in range(50)]
    t = pa.table({"id": ["k%d" % i for i in range(50)], "embedding": _embedding(v), "m": metas})
    assert db.add_arrow(t.slice(5), metadata_column="m", batch_size=20) == 45  # sliced: offsets not at 0
    assert db.add_arrow(t.slice(0, 5), metadata_column="m", atomic=True) == 5
    assert db.add_arrow(pa.table({"id": ["q", "r"], "embedding": _embedding(v[:2]), "n": [1, None]}), metadata_column=["n"]) == 2
    for i in range(50):
        assert db.get("k%d" % i) == metas[i]
    assert db.get("q") == '{"n": 1}' and db.get("r") is None
