"""Hardening of the Python package (issue 12): what pysvdb removes, how it
reads its catalog, how it validates names, and what it hands to C.

* Removal: a directory is removed only when pysvdb can prove it made it (the
  marker written in each collection directory, the identity of the ephemeral
  temporary directory); a missing or damaged catalog is an error.
* The catalog: every field's type is checked; anything else is a CorruptError
  naming the file.
* Validators match whole strings (fullmatch): no trailing-newline names.
* Arrays reach C C-contiguous, aligned, float32, native byte order; list-taking
  calls refuse a bare str.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import types
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython
from pysvdb.chroma import catalog

try:
    import chromadb
    import chromadb.errors
except Exception:  # pragma: no cover - chromadb is optional
    chromadb = None

BACKENDS = ["pysvdb"] + (["chromadb"] if chromadb is not None else [])
CATALOG = "pysvdb-chroma.json"
MARKER = "pysvdb-collection.json"


def _store(path: Path, rows: int = 3) -> str:
    """A persistent store with one collection "col" holding rows; its id."""
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.create_collection("col", embedding_function=None)
        col.add(ids=["r%d" % i for i in range(rows)], embeddings=[[float(i), 1.0] for i in range(rows)])
        return str(col.id)


def _tree(path: Path) -> List[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ---------------------------------------------------------------- item 4: removal needs proof of ownership


def test_user_directory_named_like_a_collection_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store(path)
    mine = path / str(uuid.uuid4())
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.warns(RuntimeWarning, match="left in place"):
        c = pysvdb.PersistentClient(path=str(path))
    with c:
        assert c.get_collection("col").count() == 3
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_symlink_named_like_a_collection_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store(path)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "f").write_text("x")
    (target / MARKER).write_text("{}")
    (path / str(uuid.uuid4())).symlink_to(target)
    with pytest.warns(RuntimeWarning):
        pysvdb.PersistentClient(path=str(path)).close()
    assert (target / "f").exists()


def test_missing_catalog_is_an_error_and_nothing_is_deleted(tmp_path: Path) -> None:
    """A partial restore without the catalog: every collection's data was deleted."""
    path = tmp_path / "db"
    cid = _store(path)
    saved = (path / CATALOG).read_bytes()
    (path / CATALOG).unlink()
    before = _tree(path)
    for _ in range(2):  # and the failed open did not leave the directory locked
        with pytest.raises(pysvdb.CorruptError, match=re.escape(str(path / CATALOG)) + ".*missing"):
            pysvdb.PersistentClient(path=str(path))
    assert _tree(path) == before and (path / cid).is_dir()
    (path / CATALOG).write_bytes(saved)
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert c.get_collection("col").count() == 3


@pytest.mark.parametrize("setup", ["missing", "empty", "unrelated-files"])
def test_new_directory_needs_no_catalog(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "db"
    if setup != "missing":
        path.mkdir()
    if setup == "unrelated-files":
        (path / "notes.txt").write_text("x")
        (path / "subdir").mkdir()
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert c.count_collections() == 0
    assert (path / CATALOG).exists()  # written at once: a collection directory never exists without it
    if setup == "unrelated-files":
        assert (path / "notes.txt").exists() and (path / "subdir").is_dir()


def test_collection_directory_carries_marker(tmp_path: Path) -> None:
    path = tmp_path / "db"
    cid = _store(path)
    catalog = json.loads((path / CATALOG).read_text())
    marker = json.loads((path / cid / MARKER).read_text())
    assert marker == {"format": "pysvdb-chroma-collection", "store": catalog["store"], "id": cid, "state": "live"}


def test_delete_interrupted_after_catalog_save_is_finished_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash window of delete_collection: the catalog forgot the collection,
    its files are still there. The marker says "deleting": removed at next open."""
    path = tmp_path / "db"
    cid = _store(path)
    with monkeypatch.context() as m:
        m.setattr(catalog.Engine, "_remove_collection_dir", lambda self, cid: None)  # the "crash"
        with pysvdb.PersistentClient(path=str(path)) as c:
            c.delete_collection("col")
    assert json.loads((path / cid / MARKER).read_text())["state"] == "deleting"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pysvdb.PersistentClient(path=str(path)) as c:
            assert c.count_collections() == 0
    assert not (path / cid).exists()


def test_delete_interrupted_before_catalog_save_keeps_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Marked "deleting" but the catalog still lists it: the collection stays, whole, and is marked live again."""
    path = tmp_path / "db"
    cid = _store(path)

    def failing_save(self: Any, records: Any = None) -> None:
        raise OSError("disk gone")

    with pysvdb.PersistentClient(path=str(path)) as c:
        c.get_collection("col").count()
        with monkeypatch.context() as m:
            m.setattr(catalog.Engine, "_forget", failing_save)
            with pytest.raises(OSError):
                c.delete_collection("col")
        assert c.get_collection("col").count() == 3  # nothing changed in memory either
    # As if the process had died right after writing the marker:
    (path / cid / MARKER).write_text(json.dumps(dict(json.loads((path / cid / MARKER).read_text()), state="deleting")))
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert c.get_collection("col").count() == 3
    assert json.loads((path / cid / MARKER).read_text())["state"] == "live"


@pytest.mark.parametrize("marker", ["none", "live", "other-store", "other-id", "garbage"])
def test_unlisted_directory_without_proof_is_kept(tmp_path: Path, marker: str) -> None:
    """Only this store's own "deleting" marker proves a leftover: a directory of an
    older pysvdb (no marker), one restored from a backup newer than the catalog
    (live), one copied from another store, or a damaged marker stay."""
    path = tmp_path / "db"
    _store(path)
    store = json.loads((path / CATALOG).read_text())["store"]
    name = str(uuid.uuid4())
    d = path / name
    d.mkdir()
    (d / "snapshot.svdb").write_bytes(b"data")
    body = {"format": "pysvdb-chroma-collection", "store": store, "id": name, "state": "deleting"}
    if marker == "live":
        body["state"] = "live"
    elif marker == "other-store":
        body["store"] = str(uuid.uuid4())
    elif marker == "other-id":
        body["id"] = str(uuid.uuid4())
    if marker == "garbage":
        (d / MARKER).write_text("{not json")
    elif marker != "none":
        (d / MARKER).write_text(json.dumps(body))
    with pytest.warns(RuntimeWarning, match="left in place"):
        pysvdb.PersistentClient(path=str(path)).close()
    assert (d / "snapshot.svdb").read_bytes() == b"data"


def test_collection_of_an_older_version_gets_a_marker_and_can_be_deleted(tmp_path: Path) -> None:
    """Older pysvdb wrote no marker and no store id: such a store opens, its listed
    collections are marked when opened, and delete_collection still works."""
    path = tmp_path / "db"
    cid = _store(path)
    (path / cid / MARKER).unlink()
    cat = json.loads((path / CATALOG).read_text())
    del cat["store"]
    (path / CATALOG).write_text(json.dumps(cat))
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert "store" in json.loads((path / CATALOG).read_text())
        c.create_collection("other", embedding_function=None)
        c.delete_collection("col")  # never opened in this session: no marker until delete writes one
        assert [x.name for x in c.list_collections()] == ["other"]
    assert not (path / cid).exists()


def test_delete_collection_and_reset_remove_their_directories(tmp_path: Path) -> None:
    path = tmp_path / "db"
    cid = _store(path)
    with pysvdb.PersistentClient(path=str(path), settings=pysvdb.Settings(allow_reset=True)) as c:
        c.delete_collection("col")
        assert not (path / cid).exists()
        ids = []
        for name in ("aaa", "bbb"):
            col = c.create_collection(name, embedding_function=None)
            col.add(ids=["x"], embeddings=[[1.0]])
            ids.append(str(col.id))
        c.create_collection("never-opened", embedding_function=None)
        assert c.reset()
        assert c.count_collections() == 0
    assert sorted(os.listdir(path)) == [CATALOG, "pysvdb-chroma.lock"]


def test_ephemeral_removes_only_its_own_directory(tmp_path: Path) -> None:
    c = pysvdb.EphemeralClient()
    c.create_collection("eph", embedding_function=None).add(ids=["x"], embeddings=[[1.0]])
    root = Path(c._engine.root)
    moved = tmp_path / "moved"
    root.rename(moved)  # someone replaced the directory at that path
    root.mkdir()
    (root / "theirs").write_text("x")
    with pytest.warns(RuntimeWarning, match="left in place"):
        c.close()
    assert (root / "theirs").exists()
    (root / "theirs").unlink()
    root.rmdir()


def test_rmtree_only_behind_ownership_checks() -> None:
    """Every removal call in the package goes through one of the checked helpers."""
    pkg = Path(pysvdb.__file__).parent
    src = (pkg / "chroma" / "catalog.py").read_text()
    calls = [m.start() for m in re.finditer(r"shutil\.rmtree|os\.unlink|os\.remove|os\.rmdir", src)]
    helpers = [m.start() for m in re.finditer(r"\n    def (_remove_collection_dir|_remove_ephemeral_root)\(", src)]
    ends = [min(i for i in (src.find("\n    def ", h + 10), src.find("\n\n\n", h), len(src)) if i >= 0) for h in helpers]
    assert calls and all(any(h < c < e for h, e in zip(helpers, ends)) for c in calls)
    # `svdb export` writes the user's output file through a temporary file of
    # its own beside it: the one removal it makes is of that file.
    export = pkg / "cli" / "writers.py"
    removals = re.findall(r"(?:shutil\.rmtree|os\.unlink|os\.remove|os\.rmdir)\([^)]*\)", export.read_text())
    assert removals == ["os.unlink(self.tmp)"], removals
    assert re.findall(r"tempfile\.\w+", export.read_text()) == ["tempfile.mkstemp"]
    # pysvdb.ray's shard removes its replica directory only after owned_shard_dir said it is one,
    # and the staging directories of a catch-up only after _remove_staging checked their names.
    actors = pkg / "ray" / "_actors.py"
    src = actors.read_text()
    removals = re.findall(r"(?:shutil\.rmtree|os\.unlink|os\.remove|os\.rmdir)\([^)]*\)", src)
    assert removals == ["shutil.rmtree(path, ignore_errors=True)", "shutil.rmtree(self._dir, ignore_errors=True)",
                        "os.rmdir(parent)"], removals
    assert src.index("if not owned_shard_dir(self._dir)") < src.index("shutil.rmtree(self._dir")
    staging = src.index("def _remove_staging(")
    assert staging < src.index("_STAGING.fullmatch(", staging) < src.index("shutil.rmtree(path", staging)
    assert "tempfile" not in src
    others = [p for p in sorted(pkg.rglob("*.py")) if p.name != "catalog.py" and p not in (export, actors)]
    assert len(others) >= 14
    for other in others:
        assert not re.search(r"rmtree|os\.unlink|os\.remove\(|os\.rmdir|tempfile", other.read_text()), other


# ---------------------------------------------------------------- item 12: a damaged catalog is a CorruptError naming the file

_HNSW = {"space": "l2", "ef_construction": 100, "ef_search": 100, "max_neighbors": 16}
_ID = "2f1e0a39-2d1b-4c57-9a51-8a2b0bb2a7a4"


def _entry(**kw: Any) -> dict:
    e: dict = {"id": _ID, "name": "abc", "metadata": None, "hnsw": dict(_HNSW)}
    for k, v in kw.items():
        if v is _DROP:
            e.pop(k)
        else:
            e[k] = v
    return e


_DROP = object()

BAD_CATALOGS = [
    ("list", []),
    ("string", "x"),
    ("null", None),
    ("collections-int", {"collections": 5}),
    ("collections-dict", {"collections": {}}),
    ("collections-missing", {"version": 1}),
    ("entry-int", {"collections": [3]}),
    ("id-missing", {"collections": [_entry(id=_DROP)]}),
    ("id-not-uuid", {"collections": [_entry(id="nope")]}),
    ("id-int", {"collections": [_entry(id=7)]}),
    ("id-not-canonical", {"collections": [_entry(id=_ID.upper())]}),
    ("name-missing", {"collections": [_entry(name=_DROP)]}),
    ("name-int", {"collections": [_entry(name=5)]}),
    ("name-empty", {"collections": [_entry(name="")]}),
    ("metadata-list", {"collections": [_entry(metadata=[1])]}),
    ("metadata-nested", {"collections": [_entry(metadata={"a": {"b": 1}})]}),
    ("metadata-null-value", {"collections": [_entry(metadata={"a": None})]}),
    ("hnsw-missing", {"collections": [_entry(hnsw=_DROP)]}),
    ("hnsw-list", {"collections": [_entry(hnsw=[])]}),
    ("hnsw-no-space", {"collections": [_entry(hnsw={k: v for k, v in _HNSW.items() if k != "space"})]}),
    ("hnsw-bad-space", {"collections": [_entry(hnsw=dict(_HNSW, space="manhattan"))]}),
    ("hnsw-ef-str", {"collections": [_entry(hnsw=dict(_HNSW, ef_search="100"))]}),
    ("hnsw-ef-bool", {"collections": [_entry(hnsw=dict(_HNSW, ef_search=True))]}),
    ("hnsw-ef-zero", {"collections": [_entry(hnsw=dict(_HNSW, max_neighbors=0))]}),
    ("hnsw-unknown-key", {"collections": [_entry(hnsw=dict(_HNSW, foo=1))]}),
    ("hnsw-resize-str", {"collections": [_entry(hnsw=dict(_HNSW, resize_factor="x"))]}),
    ("duplicate-id", {"collections": [_entry(), _entry(name="other")]}),
    ("duplicate-name", {"collections": [_entry(), _entry(id=str(uuid.uuid4()))]}),
    ("version-str", {"version": "1", "collections": []}),
    ("version-bool", {"version": True, "collections": []}),
    ("format-other", {"format": "something-else", "collections": []}),
    ("store-not-uuid", {"store": 5, "collections": []}),
]


@pytest.mark.parametrize("doc", [d for _, d in BAD_CATALOGS], ids=[n for n, _ in BAD_CATALOGS])
def test_malformed_catalog_is_corrupt_error(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "db"
    path.mkdir()
    (path / CATALOG).write_text(json.dumps(doc))
    with pytest.raises(pysvdb.CorruptError, match=re.escape(str(path / CATALOG))) as e:
        pysvdb.PersistentClient(path=str(path))
    assert e.value.code == -5
    assert json.loads((path / CATALOG).read_text()) == doc  # nothing rewritten


@pytest.mark.parametrize(
    "raw",
    [b"{half", b"\xff\xfe{}", b"[" * 100000 + b"]" * 100000, b""],
    ids=["truncated", "not-utf8", "deep", "empty"],
)
def test_unreadable_catalog_is_corrupt_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "db"
    path.mkdir()
    (path / CATALOG).write_bytes(raw)
    with pytest.raises(pysvdb.CorruptError, match=re.escape(str(path / CATALOG))):
        pysvdb.PersistentClient(path=str(path))


def test_catalog_of_a_newer_format_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.mkdir()
    (path / CATALOG).write_text(json.dumps({"version": 3, "collections": []}))
    with pytest.raises(pysvdb.FormatVersionError, match=re.escape(str(path / CATALOG))):
        pysvdb.PersistentClient(path=str(path))


def test_damaged_catalog_deletes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    cid = _store(path)
    (path / CATALOG).write_text(json.dumps({"collections": 5}))
    before = _tree(path)
    with pytest.raises(pysvdb.CorruptError):
        pysvdb.PersistentClient(path=str(path))
    assert _tree(path) == before and (path / cid).is_dir()


def test_valid_catalog_variants_still_open(tmp_path: Path) -> None:
    """What pysvdb itself writes or wrote opens: optional fields, list metadata,
    every HNSW key, and names of older versions that today's rules refuse."""
    path = tmp_path / "db"
    path.mkdir()
    hnsw = dict(_HNSW, num_threads=2, resize_factor=1.2, sync_threshold=1000, batch_size=100)
    doc = {
        "format": "pysvdb-chroma",
        "version": 1,
        "collections": [
            {"id": _ID, "name": "old\n", "metadata": {"k": [1, 2], "s": "x", "f": 1.5, "b": True}, "hnsw": hnsw},
            {"id": str(uuid.uuid4()), "name": "plain", "hnsw": dict(_HNSW)},
        ],
    }
    (path / CATALOG).write_text(json.dumps(doc))
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert sorted(x.name for x in c.list_collections()) == ["old\n", "plain"]
        assert c.get_collection("old\n").metadata == {"k": [1, 2], "s": "x", "f": 1.5, "b": True}


# ---------------------------------------------------------------- item 13: validators match whole strings


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    if request.param == "pysvdb":
        return types.SimpleNamespace(name="pysvdb", mod=pysvdb, errors=pysvdb.errors)
    return types.SimpleNamespace(name="chromadb", mod=chromadb, errors=chromadb.errors)


@pytest.fixture
def client(api: types.SimpleNamespace, tmp_path: Path) -> Iterator[Any]:
    c = api.mod.PersistentClient(path=str(tmp_path / "db"))
    yield c
    c.close()


@pytest.mark.parametrize("name", ["abc\n", "abcd\n", "a" * 511 + "\n", "1.1.1.1\n", "abc\r", "\nabc", "ab\nc"])
def test_names_with_newlines_are_refused(api: types.SimpleNamespace, client: Any, name: str) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection(name, embedding_function=None)
    with pytest.raises(api.errors.InvalidArgumentError):
        client.get_or_create_collection(name, embedding_function=None)
    col = client.create_collection("good", embedding_function=None)
    with pytest.raises(api.errors.InvalidArgumentError):
        col.modify(name=name)
    assert [c.name for c in client.list_collections()] == ["good"]


def test_ip_address_names_are_refused_whole(api: types.SimpleNamespace, client: Any) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("10.0.0.1", embedding_function=None)
    client.create_collection("10.0.0.1a", embedding_function=None)  # not an address: fine in both
    client.create_collection("1.2.3", embedding_function=None)


@pytest.mark.parametrize("field", ["tenant", "database"])
def test_tenant_and_database_with_newline_are_refused(tmp_path: Path, field: str) -> None:
    value = {"tenant": pysvdb.DEFAULT_TENANT, "database": pysvdb.DEFAULT_DATABASE}[field] + "\n"
    with pytest.raises(ValueError):
        pysvdb.PersistentClient(path=str(tmp_path / "db"), **{field: value})


def test_no_validator_uses_match_or_dollar() -> None:
    """Every regex validator of the package matches whole strings: no re.match /
    .match / .search, and no pattern relying on "$"."""
    for f in Path(pysvdb.__file__).parent.glob("*.py"):
        src = f.read_text()
        assert not re.search(r"\bre\.(match|search)\(|_RE\w*\.(match|search)\(", src), f.name
        for pat in re.findall(r"re\.compile\(r?\"([^\"]*)\"", src):
            assert not pat.endswith("$") and not pat.startswith("^"), (f.name, pat)


# ---------------------------------------------------------------- item 14: arrays to C, bare-str id lists


class _FfiSpy:
    """Records the address of every float buffer pysvdb hands to C."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.addresses: List[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def from_buffer(self, *args: Any, **kw: Any) -> Any:
        buf = self._real.from_buffer(*args, **kw)
        if args and args[0] == "float[]":
            self.addresses.append(int(self._real.cast("uintptr_t", buf)))
        return buf


def _unaligned(a: np.ndarray) -> np.ndarray:
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(np.float32).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def test_unaligned_arrays_reach_c_aligned(db: SvDBPython, monkeypatch: pytest.MonkeyPatch) -> None:
    import pysvdb._db as impl

    rng = np.random.default_rng(1)
    data = rng.standard_normal((20, 8)).astype(np.float32)
    spy = _FfiSpy(impl.ffi)
    monkeypatch.setattr(impl, "ffi", spy)
    db.add(["%d" % i for i in range(10)], _unaligned(data[:10]))
    db.upsert(["%d" % i for i in range(10, 20)], _unaligned(data[10:]))
    hits = db.search(_unaligned(data[3]), k=1)
    batch = db.search_batch(_unaligned(data[:4]), k=1)
    assert spy.addresses and all(a % 4 == 0 for a in spy.addresses), [a % 4 for a in spy.addresses]
    assert hits[0][0] == "3" and list(batch.ids[:, 0]) == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(db.get_vector("15"), data[15])


@pytest.mark.parametrize("kind", ["big-endian", "strided", "fortran", "float64", "unaligned-2d-view"])
def test_odd_arrays_are_converted(db: SvDBPython, kind: str) -> None:
    data = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    if kind == "big-endian":
        arr: np.ndarray = data.astype(">f4")
    elif kind == "strided":
        wide = np.zeros((6, 8), dtype=np.float32)
        wide[:, ::2] = data
        arr = wide[:, ::2]
    elif kind == "fortran":
        arr = np.asfortranarray(data)
    elif kind == "float64":
        arr = data.astype(np.float64)
    else:
        arr = _unaligned(data)
    db.add(["a", "b", "c", "d", "e", "f"], arr)
    np.testing.assert_array_equal(db.get_many(["a", "b", "c", "d", "e", "f"], vectors=True)[2], data)
    assert db.search(arr[2], k=1)[0][0] == "c"


def test_c_ready_gate_refuses_unaligned() -> None:
    import pysvdb._db as impl

    with pytest.raises(AssertionError):
        impl._c_array("float[]", _unaligned(np.ones(4, dtype=np.float32)))
    with pytest.raises(AssertionError):
        impl._c_array("float[]", np.ones(4, dtype=">f4"))


@pytest.mark.parametrize("ids", ["r1x", b"r1", bytearray(b"r1"), {"r1": 1}, 5, None])
def test_get_many_refuses_a_bare_string(db: SvDBPython, ids: Any) -> None:
    """get_many("r1x") looked up "r", "1" and "x"."""
    db.add(["r", "1", "x", "r1"], [[1.0], [2.0], [3.0], [4.0]])
    with pytest.raises(TypeError, match="list of str"):
        db.get_many(ids)
    assert db.get_many(["r1", "nope"]) == ([0], [None], None)
    assert db.get_many(("r", "x"))[0] == [0, 1]
    assert db.get_many([]) == ([], [], None)


@pytest.mark.parametrize("ids", ["ab", b"ab", bytearray(b"ab"), memoryview(b"ab")])
def test_list_taking_methods_refuse_a_bare_string(db: SvDBPython, ids: Any) -> None:
    db.add(["a", "b"], [[1.0], [2.0]])
    for call in (
        lambda: db.add(ids, [[1.0], [2.0]]),
        lambda: db.upsert(ids, [[1.0], [2.0]]),
        lambda: db.delete(ids),
        lambda: db.get_many(ids),
        lambda: db.add(["c"], [[1.0]], metadatas=ids),
    ):
        with pytest.raises(TypeError):
            call()
    assert db.count() == 2


@pytest.fixture
def filled(client: Any) -> Any:
    col = client.create_collection("ids", embedding_function=None)
    col.add(ids=["x", "y", "xy"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    return col


def test_chroma_single_str_id_is_one_id(filled: Any) -> None:
    """As in ChromaDB: ids="xy" means the one id "xy", never "x" and "y"."""
    assert filled.get(ids="xy")["ids"] == ["xy"]
    assert filled.query(query_embeddings=[1.0, 0.0], ids="xy", n_results=3)["ids"] == [["xy"]]
    filled.update(ids="xy", metadatas={"k": 1})
    filled.upsert(ids="xy", embeddings=[[2.0, 2.0]])
    assert filled.get(ids=["xy"])["metadatas"] == [{"k": 1}]
    assert filled.delete(ids="xy") == {"deleted": 1}
    assert sorted(filled.get()["ids"]) == ["x", "y"]


@pytest.mark.parametrize("ids", [b"x", ("x",), [b"x"], [1]])
def test_chroma_ids_that_are_not_str(api: types.SimpleNamespace, filled: Any, ids: Any) -> None:
    for call in (
        lambda: filled.get(ids=ids),
        lambda: filled.delete(ids=ids),
        lambda: filled.update(ids=ids, metadatas={"k": 1}),
        lambda: filled.add(ids=ids, embeddings=[[1.0, 2.0]]),
    ):
        with pytest.raises(ValueError, match="Expected ID"):
            call()
    with pytest.raises(TypeError):
        filled.query(query_embeddings=[1.0, 0.0], ids=ids)
    with pytest.raises(TypeError):
        filled.query(query_embeddings=[1.0, 0.0], ids=ids, where={"k": 1})
    assert filled.count() == 3


# ---------------------------------------------------------------- pysvdb.ray: a tampered catalog aims no removal


def test_ray_shard_directories_and_catalog_records_are_checked(tmp_path: Path) -> None:
    from pysvdb.chroma import errors as chroma_errors
    from pysvdb.ray._actors import Catalog, owned_shard_dir

    cid = "0b7e1c7a-93b1-4f43-9e2f-1a2b3c4d5e6f"
    good = tmp_path / cid / "shard-0" / "replica-1"
    good.mkdir(parents=True)
    assert owned_shard_dir(str(good))
    assert not owned_shard_dir(str(tmp_path / cid / "shard-0"))  # not a replica directory
    other = tmp_path / "home"
    other.mkdir()
    assert not owned_shard_dir(str(other))
    (tmp_path / "not-a-uuid" / "shard-0" / "replica-0").mkdir(parents=True)
    assert not owned_shard_dir(str(tmp_path / "not-a-uuid" / "shard-0" / "replica-0"))
    linked = tmp_path / "1b7e1c7a-93b1-4f43-9e2f-1a2b3c4d5e6f"
    (linked / "shard-0").mkdir(parents=True)
    os.symlink(other, linked / "shard-0" / "replica-0")  # a link to elsewhere is never removed through
    assert not owned_shard_dir(str(linked / "shard-0" / "replica-0"))

    rec = {"id": cid, "name": "docs", "shards": 2, "replicas": 1, "metadata": None, "hnsw": {}, "dim": None, "next_seq": 0}
    one = np.ones((1, 1), dtype=np.float32)

    def catalog_with(row_id: str, meta: Any) -> Any:
        shutil.rmtree(tmp_path / "cat", ignore_errors=True)
        (tmp_path / "cat").mkdir()
        db = pysvdb.SvDBPython(tmp_path / "cat" / "catalog", dim=1, index="flat")
        db.add([row_id], one, [meta])
        db.close()
        return Catalog(str(tmp_path / "cat"))

    cat = catalog_with(cid, {"record": json.dumps(rec)})
    assert cat.list() == [rec]
    cat.close()
    for bad in ({"id": "../../etc"}, {"shards": 0}, {"replicas": True}, {"next_seq": -1}, {"dim": "x"}):
        with pytest.raises(chroma_errors.ChromaError, match="catalog .* is damaged"):
            catalog_with(cid, {"record": json.dumps({**rec, **bad})})
    for meta in ({"record": "{not json"}, {"other": 1}, None):
        with pytest.raises(chroma_errors.ChromaError, match="is damaged"):
            catalog_with(cid, meta)
    with pytest.raises(chroma_errors.ChromaError, match="is damaged"):  # a row id that is no uuid
        catalog_with("../x", {"record": json.dumps({**rec, "id": "../x"})})
