"""Bad input raises the documented SvDBError subclass and changes nothing."""

from __future__ import annotations

import json
import os
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython

E = pysvdb

# ---------------------------------------------------------------- the hierarchy

CODES = {
    E.InvalidArgumentError: -1,
    E.MisuseError: -2,
    E.OutOfMemoryError: -3,
    E.SvDBIOError: -4,
    E.CorruptError: -5,
    E.FormatVersionError: -6,
    E.LockedError: -7,
    E.NotFoundError: -8,
    E.IdExistsError: -9,
    E.DimensionError: -10,
    E.NoSpaceError: -11,
    E.TooBigError: -12,
    E.ReadOnlyError: -13,
    E.MetadataError: -14,
    E.DuplicateIdError: -15,
    E.MismatchError: -16,
    E.CanceledError: -17,
    E.BusyError: -18,
}


def test_hierarchy_mirrors_c_codes() -> None:
    from pysvdb._errors import error_class
    from pysvdb._lib import lib

    names = {
        -1: "SVDB_EINVAL", -2: "SVDB_EMISUSE", -3: "SVDB_ENOMEM", -4: "SVDB_EIO", -5: "SVDB_ECORRUPT",
        -6: "SVDB_EVERSION", -7: "SVDB_ELOCKED", -8: "SVDB_ENOTFOUND", -9: "SVDB_EEXISTS", -10: "SVDB_EDIM",
        -11: "SVDB_ENOSPC", -12: "SVDB_ETOOBIG", -13: "SVDB_EREADONLY", -14: "SVDB_EMETA",
        -15: "SVDB_EDUPLICATE", -16: "SVDB_EMISMATCH", -17: "SVDB_ECANCELED", -18: "SVDB_EBUSY",
    }
    for cls, code in CODES.items():
        assert issubclass(cls, E.SvDBError) and issubclass(cls, ValueError)
        assert cls.code == code == getattr(lib, names[code])
        assert error_class(code) is cls
    assert error_class(-999) is E.SvDBError
    assert issubclass(E.NotFoundError, KeyError)
    assert issubclass(E.InvalidTypeError, TypeError) and issubclass(E.InvalidTypeError, E.InvalidArgumentError)
    assert issubclass(E.ClosedError, E.MisuseError)
    err = E.NotFoundError("id 'x' not found", -8)
    assert str(err) == "id 'x' not found"  # not KeyError's repr-quoting
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert type(again) is E.NotFoundError and again.code == -8 and str(again) == str(err)


# ---------------------------------------------------------------- helpers

def state(db: SvDBPython) -> Tuple[Any, ...]:
    ids = db.get_all_ids()
    return (
        db.count(),
        db.dim,
        ids,
        [db.get(i) for i in ids],
        [db.get_vector(i).tolist() for i in ids],
    )


@pytest.fixture
def filled(db: SvDBPython) -> SvDBPython:
    db.add(["a", "b", "c"], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [{"n": 1}, None, '{"n": 3}'])
    return db


def expect(db: SvDBPython, exc: Type[BaseException], fn: Callable[[], object], match: Optional[str] = None) -> None:
    before = state(db)
    with pytest.raises(exc, match=match) as ei:
        fn()
    assert isinstance(ei.value, E.SvDBError) and isinstance(ei.value, ValueError)
    assert ei.value.code == exc.code  # type: ignore[attr-defined]
    assert str(ei.value)  # carries a message
    assert state(db) == before


# ---------------------------------------------------------------- writes

V = [[1.0, 2.0, 3.0]]
BAD_ADDS: Dict[str, Tuple[Type[E.SvDBError], Dict[str, Any]]] = {
    "existing id": (E.IdExistsError, dict(ids=["a"], embeddings=V)),
    "existing id later in batch": (E.IdExistsError, dict(ids=["new", "b"], embeddings=V * 2)),
    "duplicate in batch": (E.DuplicateIdError, dict(ids=["x", "x"], embeddings=V * 2)),
    "wrong dim": (E.DimensionError, dict(ids=["x"], embeddings=[[1.0, 2.0]])),
    "zero dim": (E.DimensionError, dict(ids=["x"], embeddings=[[]])),
    "1-d embeddings": (E.InvalidArgumentError, dict(ids=["x"], embeddings=[1.0, 2.0, 3.0])),
    "3-d embeddings": (E.InvalidArgumentError, dict(ids=["x"], embeddings=np.zeros((1, 1, 3)))),
    "ragged": (E.InvalidArgumentError, dict(ids=["x", "y"], embeddings=[[1.0, 2.0, 3.0], [1.0, 2.0]])),
    "nan": (E.InvalidArgumentError, dict(ids=["x"], embeddings=[[1.0, math.nan, 3.0]])),
    "inf": (E.InvalidArgumentError, dict(ids=["x"], embeddings=[[1.0, math.inf, 3.0]])),
    "float32 overflow": (E.InvalidArgumentError, dict(ids=["x"], embeddings=[[1e300, 0.0, 0.0]])),
    "nan in second row": (E.InvalidArgumentError, dict(ids=["x", "y"], embeddings=[[1, 2, 3], [1, 2, math.nan]])),
    "str values": (E.InvalidTypeError, dict(ids=["x"], embeddings=[["1", "2", "3"]])),
    "None values": (E.InvalidTypeError, dict(ids=["x"], embeddings=[[None, 1.0, 2.0]])),
    "bool values": (E.InvalidTypeError, dict(ids=["x"], embeddings=np.ones((1, 3), dtype=bool))),
    "complex values": (E.InvalidTypeError, dict(ids=["x"], embeddings=np.ones((1, 3), dtype=complex))),
    "huge int": (E.InvalidTypeError, dict(ids=["x"], embeddings=[[10**400, 1, 2]])),
    "embeddings str": (E.InvalidTypeError, dict(ids=["x"], embeddings="abc")),
    "embeddings None": (E.InvalidTypeError, dict(ids=["x"], embeddings=None)),
    "embeddings dict": (E.InvalidTypeError, dict(ids=["x"], embeddings={"x": [1, 2, 3]})),
    "embeddings int": (E.InvalidArgumentError, dict(ids=["x"], embeddings=5)),
    "fewer embeddings": (E.InvalidArgumentError, dict(ids=["x", "y"], embeddings=V)),
    "more embeddings": (E.InvalidArgumentError, dict(ids=["x"], embeddings=V * 2)),
    "empty batch": (E.InvalidArgumentError, dict(ids=[], embeddings=np.zeros((0, 3)))),
    "ids str": (E.InvalidTypeError, dict(ids="x", embeddings=V)),
    "ids bytes": (E.InvalidTypeError, dict(ids=b"x", embeddings=V)),
    "ids int": (E.InvalidTypeError, dict(ids=5, embeddings=V)),
    "id int": (E.InvalidTypeError, dict(ids=[5], embeddings=V)),
    "id bytes": (E.InvalidTypeError, dict(ids=[b"x"], embeddings=V)),
    "id None": (E.InvalidTypeError, dict(ids=[None], embeddings=V)),
    "id empty": (E.InvalidArgumentError, dict(ids=[""], embeddings=V)),
    "id NUL": (E.InvalidArgumentError, dict(ids=["a\0b"], embeddings=V)),
    "id surrogate": (E.InvalidArgumentError, dict(ids=["bad\udc80"], embeddings=V)),
    "id too long": (E.TooBigError, dict(ids=["x" * 1025], embeddings=V)),
    "id too long in UTF-8": (E.TooBigError, dict(ids=["é" * 513], embeddings=V)),
    "metadata not JSON": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=["{not json"])),
    "metadata JSON array": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=["[1, 2]"])),
    "metadata trailing": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=['{"a": 1} x'])),
    "metadata NUL": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=['{"a": 1}\0garbage'])),
    "metadata surrogate": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=['{"a": "\udc80"}'])),
    "metadata unserialisable": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=[{"a": object()}])),
    "metadata NaN": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=[{"a": math.nan}])),
    "metadata int": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=[5])),
    "metadata list": (E.MetadataError, dict(ids=["x"], embeddings=V, metadatas=[[1, 2]])),
    "metadata too big": (E.TooBigError, dict(ids=["x"], embeddings=V, metadatas=[{"a": "x" * (1 << 20)}])),
    "metadatas too short": (E.InvalidArgumentError, dict(ids=["x", "y"], embeddings=V * 2, metadatas=[None])),
    "metadatas too long": (E.InvalidArgumentError, dict(ids=["x"], embeddings=V, metadatas=[None, None])),
    "metadatas dict": (E.InvalidTypeError, dict(ids=["x"], embeddings=V, metadatas={"a": 1})),
    "metadatas str": (E.InvalidTypeError, dict(ids=["x"], embeddings=V, metadatas='{"a": 1}')),
    "metadatas int": (E.InvalidTypeError, dict(ids=["x"], embeddings=V, metadatas=3)),
    "bad row after good rows": (E.MetadataError,
                                dict(ids=["x", "y", "z"], embeddings=V * 3, metadatas=[None, {"k": 1}, "nope"])),
}


@pytest.mark.parametrize(
    "method,case",
    [("add", c) for c in sorted(BAD_ADDS)]
    + [("upsert", c) for c in sorted(BAD_ADDS) if BAD_ADDS[c][0] is not E.IdExistsError],  # upsert overwrites
)
def test_bad_writes(filled: SvDBPython, method: str, case: str) -> None:
    exc, kwargs = BAD_ADDS[case]
    expect(filled, exc, lambda: getattr(filled, method)(**kwargs))


def test_zero_vector_under_cosine(db_path: str) -> None:
    """A zero (or denormal) vector has no direction: distance 1 to every row, never -inf."""
    with SvDBPython(db_path, metric="cosine") as db:
        db.add(["a", "b", "z", "poison"], [[1.0, 0.0], [0.9, 0.1], [0.0, 0.0], [1e-40, 1e-40]])
        hits = db.search([1.0, 0.0], k=4)
        assert [h[0] for h in hits[:2]] == ["a", "b"]
        assert [h[1] for h in hits[2:]] == [1.0, 1.0]
        assert all(0.0 <= h[1] <= 2.0 for h in hits)
        assert [h[1] for h in db.search([0.0, 0.0], k=4)] == [1.0] * 4
        expect(db, E.InvalidArgumentError, lambda: db.add(["huge"], [[1e19, 1e19]]), match="too large")


def test_failed_first_add_does_not_fix_dim(db: SvDBPython) -> None:
    with pytest.raises(E.InvalidArgumentError):
        db.add(["a", "b"], [[1.0, 2.0], [math.nan, 1.0]])
    assert db.dim is None and db.count() == 0
    db.add(["a"], [[1.0, 2.0, 3.0, 4.0]])
    assert db.dim == 4


BAD_DELETES: Dict[str, Tuple[Type[E.SvDBError], Any]] = {
    "str": (E.InvalidTypeError, "a"),
    "None": (E.InvalidTypeError, None),
    "int id": (E.InvalidTypeError, [1]),
    "empty": (E.InvalidArgumentError, []),
    "NUL": (E.InvalidArgumentError, ["a", "b\0"]),
    "surrogate": (E.InvalidArgumentError, ["a", "\ud800"]),
    "empty id": (E.InvalidArgumentError, ["a", ""]),
    "too long": (E.TooBigError, ["a", "y" * 2000]),
}


@pytest.mark.parametrize("case", sorted(BAD_DELETES))
def test_bad_deletes(filled: SvDBPython, case: str) -> None:
    exc, arg = BAD_DELETES[case]
    expect(filled, exc, lambda: filled.delete(arg))


# ---------------------------------------------------------------- reads

def test_get_unknown_id(filled: SvDBPython) -> None:
    expect(filled, E.NotFoundError, lambda: filled.get("nope"), match="nope")
    expect(filled, E.NotFoundError, lambda: filled.get_vector("nope"))
    with pytest.raises(KeyError):
        filled.get("nope")


def test_get_vector_before_dim(db: SvDBPython) -> None:
    with pytest.raises(E.NotFoundError):
        db.get_vector("a")


BAD_IDS: Dict[str, Tuple[Type[E.SvDBError], Any]] = {
    "int": (E.InvalidTypeError, 1),
    "None": (E.InvalidTypeError, None),
    "bytes": (E.InvalidTypeError, b"a"),
    "list": (E.InvalidTypeError, ["a"]),
    "empty": (E.InvalidArgumentError, ""),
    "NUL": (E.InvalidArgumentError, "a\0"),
    "surrogate": (E.InvalidArgumentError, "\udfff"),
    "too long": (E.TooBigError, "z" * 1025),
}


@pytest.mark.parametrize("method", ["get", "get_vector", "contains", "__contains__"])
@pytest.mark.parametrize("case", sorted(BAD_IDS))
def test_bad_ids_on_reads(filled: SvDBPython, method: str, case: str) -> None:
    exc, arg = BAD_IDS[case]
    expect(filled, exc, lambda: getattr(filled, method)(arg))


BAD_SEARCHES: Dict[str, Tuple[Type[E.SvDBError], Dict[str, Any]]] = {
    "k 0": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=0)),
    "k negative": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=-5)),
    "k float": (E.InvalidTypeError, dict(query=[1, 2, 3], k=2.0)),
    "k str": (E.InvalidTypeError, dict(query=[1, 2, 3], k="3")),
    "k bool": (E.InvalidTypeError, dict(query=[1, 2, 3], k=True)),
    "k None": (E.InvalidTypeError, dict(query=[1, 2, 3], k=None)),
    "wrong dim": (E.DimensionError, dict(query=[1, 2], k=1)),
    "empty query": (E.DimensionError, dict(query=[], k=1)),
    "2-d query": (E.InvalidArgumentError, dict(query=[[1, 2, 3]], k=1)),
    "scalar query": (E.InvalidArgumentError, dict(query=1.0, k=1)),
    "nan query": (E.InvalidArgumentError, dict(query=[1, math.nan, 3], k=1)),
    "str query": (E.InvalidTypeError, dict(query="abc", k=1)),
    "None query": (E.InvalidTypeError, dict(query=None, k=1)),
    "str items": (E.InvalidTypeError, dict(query=["1", "2", "3"], k=1)),
    "where bad": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=1, where={"a": {"$nope": 1}})),
    "where not JSON": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=1, where="{")),
    "where int": (E.InvalidTypeError, dict(query=[1, 2, 3], k=1, where=5)),
    "where NUL": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=1, where='{"a": 1}\0')),
    "ef negative": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=1, ef=-1)),
    "ef huge": (E.InvalidArgumentError, dict(query=[1, 2, 3], k=1, ef=2**40)),
    "ef str": (E.InvalidTypeError, dict(query=[1, 2, 3], k=1, ef="x")),
}


@pytest.mark.parametrize("case", sorted(BAD_SEARCHES))
def test_bad_searches(filled: SvDBPython, case: str) -> None:
    exc, kwargs = BAD_SEARCHES[case]
    expect(filled, exc, lambda: filled.search(**kwargs))


BAD_BATCHES: Dict[str, Tuple[Type[E.SvDBError], Dict[str, Any]]] = {
    "1-d queries": (E.InvalidArgumentError, dict(queries=[1, 2, 3], k=1)),
    "ragged": (E.InvalidArgumentError, dict(queries=[[1, 2, 3], [1, 2]], k=1)),
    "no queries": (E.InvalidArgumentError, dict(queries=np.zeros((0, 3)), k=1)),
    "wrong dim": (E.DimensionError, dict(queries=[[1, 2]], k=1)),
    "k 0": (E.InvalidArgumentError, dict(queries=[[1, 2, 3]], k=0)),
    "nan": (E.InvalidArgumentError, dict(queries=[[1, 2, 3], [1, 2, math.nan]], k=1)),
    "threads negative": (E.InvalidArgumentError, dict(queries=[[1, 2, 3]], k=1, threads=-1)),
    "threads str": (E.InvalidTypeError, dict(queries=[[1, 2, 3]], k=1, threads="2")),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batch_searches(filled: SvDBPython, case: str) -> None:
    exc, kwargs = BAD_BATCHES[case]
    expect(filled, exc, lambda: filled.search_batch(**kwargs))


def test_huge_k_is_fine_for_search(filled: SvDBPython) -> None:
    assert len(filled.search([1, 2, 3], k=2**70)) == 3


# ---------------------------------------------------------------- opening

BAD_OPENS: Dict[str, Tuple[Type[E.SvDBError], Dict[str, Any]]] = {
    "metric": (E.InvalidArgumentError, dict(metric="manhattan")),
    "metric int": (E.InvalidTypeError, dict(metric=1)),
    "durability": (E.InvalidArgumentError, dict(durability="never")),
    "index": (E.InvalidArgumentError, dict(index="ivf")),
    "dim negative": (E.InvalidArgumentError, dict(dim=-1)),
    "dim too big": (E.TooBigError, dict(dim=65537)),
    "dim huge": (E.TooBigError, dict(dim=2**40)),
    "dim str": (E.InvalidTypeError, dict(dim="3")),
    "dim float": (E.InvalidTypeError, dict(dim=3.0)),
    "M 1": (E.InvalidArgumentError, dict(index="hnsw", M=1)),
    "M 129": (E.InvalidArgumentError, dict(index="hnsw", M=129)),  # SVDB_MAX_HNSW_M + 1
    "seed negative": (E.InvalidArgumentError, dict(seed=-1)),
    "seed huge": (E.InvalidArgumentError, dict(seed=2**64)),
}


@pytest.mark.parametrize("case", sorted(BAD_OPENS))
def test_bad_open_options(db_path: str, case: str) -> None:
    exc, kwargs = BAD_OPENS[case]
    with pytest.raises(exc) as ei:
        SvDBPython(db_path, **kwargs)
    assert ei.value.code == exc.code


@pytest.mark.parametrize(
    "path,exc",
    [("", E.InvalidArgumentError), ("a\0b", E.InvalidArgumentError), (None, E.InvalidTypeError),
     (5, E.InvalidTypeError), (b"/tmp/x", E.InvalidTypeError)],
)
def test_bad_paths(path: Any, exc: Type[E.SvDBError]) -> None:
    with pytest.raises(exc):
        SvDBPython(path)


def test_path_is_a_file(tmp_path: Any) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(E.InvalidArgumentError, match="not a directory"):
        SvDBPython(str(f))


def test_path_parent_missing(tmp_path: Any) -> None:
    with pytest.raises(E.SvDBIOError):
        SvDBPython(str(tmp_path / "missing" / "deeper"))


def test_messages_come_from_c(filled: SvDBPython) -> None:
    with pytest.raises(E.IdExistsError) as ei:
        filled.add(["b"], [[1, 1, 1]])
    assert "'b'" in str(ei.value) and "upsert" in str(ei.value)
    assert ei.value.message == str(ei.value)
    with pytest.raises(E.DimensionError, match="2 dimensions but the collection has 3"):
        filled.search([1, 2], k=1)


def test_nonempty_directory_is_not_made_a_collection(tmp_path: Path) -> None:
    """Issue 12 item 14: SvDBPython("/") as root wrote its files into /."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(E.InvalidArgumentError, match="notes.txt"):
        SvDBPython(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(E.InvalidArgumentError, match="not empty"):
        SvDBPython("/")
    assert not os.path.exists("/LOCK") and not os.path.exists("/wal.svdb")
    with SvDBPython(str(tmp_path), allow_nonempty_dir=True) as db:
        db.add(["a"], [[1.0, 2.0]])
    with SvDBPython(str(tmp_path)) as db:  # a collection now
        assert db.count() == 1


def test_relative_path_then_chdir(tmp_path: Path) -> None:
    """Issue 12 item 1: the issue's reproducer; both collections keep their own rows."""
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(b)
        with SvDBPython("data") as db_b:
            db_b.add(["b_row"], [[9.0, 9.0]])
        os.chdir(a)
        db_a = SvDBPython("data")
        db_a.add(["a_row"], [[1.0, 1.0]])
        os.chdir(b)
        db_a.add(["a_row2"], [[2.0, 2.0]])
        db_a.close()
    finally:
        os.chdir(cwd)
    with SvDBPython(str(a / "data")) as db:
        assert db.get_all_ids() == ["a_row", "a_row2"]
    with SvDBPython(str(b / "data")) as db:
        assert db.get_all_ids() == ["b_row"]


def test_racing_writer_cannot_store_nan(db_path: str) -> None:
    """Issue 12 item 2: another thread writes NaN into the array during upserts."""
    import threading

    arr = np.ones((1, 64), dtype=np.float32)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            arr[0, 7] = np.nan
            arr[0, 7] = 1.0

    t = threading.Thread(target=flip)
    with SvDBPython(db_path) as db:
        t.start()
        try:
            for _ in range(2000):
                try:
                    db.upsert(["row"], arr)
                except E.InvalidArgumentError:
                    continue
                assert np.isfinite(db.get_vector("row")).all()
        finally:
            stop.set()
            t.join()
    with SvDBPython(db_path) as db:  # never unopenable
        assert db.count() == 1
