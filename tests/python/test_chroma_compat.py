"""ChromaDB compatibility suite, written against ../shared/docs/chroma-api.md.

Every test runs against pysvdb's ChromaDB-compatible API, and against chromadb
itself when it is installed (CI installs it), with the same code and the same
expected values: a difference between the two fails here. The few differences
kept on purpose (docs/chroma.md) are asserted per backend, so a change on
either side shows up too.
"""

from __future__ import annotations

import math
import types
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

import pysvdb

try:
    import chromadb
    import chromadb.errors
except Exception:  # pragma: no cover - chromadb is optional
    chromadb = None

BACKENDS = ["pysvdb"] + (["chromadb"] if chromadb is not None else [])


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


@pytest.fixture
def col(client: Any) -> Any:
    return client.create_collection("compat", embedding_function=None)


def make_ef(api: types.SimpleNamespace) -> Any:
    """A deterministic embedding function usable by both backends."""

    class LetterEF(api.mod.EmbeddingFunction):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.calls: List[List[str]] = []

        def __call__(self, input: List[str]) -> List[List[float]]:
            self.calls.append(list(input))
            return [[float(len(t)), float(t.count("a")), float(t.count("e")) + 1.0] for t in input]

    return LetterEF()


ROWS = {
    "ids": ["r1", "r2", "r3", "r4", "r5", "r6"],
    "embeddings": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0], [0.5, 0.5, 0.5]],
    "metadatas": [
        {"n": 1, "f": 1.5, "s": "apple", "b": True, "tags": ["x", "y"]},
        {"n": 2, "f": 2.0, "s": "banana", "b": False, "tags": ["y"]},
        {"n": 3, "s": "cherry", "nums": [1, 2, 3]},
        {"f": -1.0, "s": "apple"},
        None,
        {"n": 10, "b": True, "nums": [3]},
    ],
    "documents": ["The quick brown fox", "the lazy dog", None, "Quick thinking", "a fox and a dog", "nothing here"],
}


@pytest.fixture
def filled(col: Any) -> Any:
    col.add(**ROWS)
    return col


def ids_of(result: Dict[str, Any]) -> List[str]:
    return list(result["ids"])


# ---------------------------------------------------------------- client


def test_client_info(client: Any) -> None:
    assert isinstance(client.heartbeat(), int) and client.heartbeat() > 10**18
    assert isinstance(client.get_version(), str)
    assert client.get_max_batch_size() >= 5461
    assert client.count_collections() == 0
    assert list(client.list_collections()) == []


def test_collection_lifecycle(api: types.SimpleNamespace, client: Any) -> None:
    c1 = client.create_collection("first", embedding_function=None)
    client.create_collection("second", metadata={"topic": "x", "k": 1}, embedding_function=None)
    assert client.count_collections() == 2
    assert sorted(c.name for c in client.list_collections()) == ["first", "second"]
    got = client.get_collection("first", embedding_function=None)
    assert got.id == c1.id and isinstance(got.id, uuid.UUID)
    assert got.metadata is None
    assert client.get_collection("second").metadata == {"topic": "x", "k": 1}
    assert repr(got) == "Collection(name=first)"
    client.delete_collection("first")
    assert [c.name for c in client.list_collections()] == ["second"]
    with pytest.raises(api.errors.NotFoundError, match="does not exist"):
        client.get_collection("first")
    with pytest.raises(api.errors.NotFoundError, match="does not exist"):
        client.delete_collection("first")


def test_create_existing_raises(api: types.SimpleNamespace, client: Any) -> None:
    client.create_collection("dupe", embedding_function=None)
    with pytest.raises(api.errors.InternalError, match="already exists"):
        client.create_collection("dupe", embedding_function=None)


def test_get_or_create_ignores_new_metadata(client: Any) -> None:
    a = client.get_or_create_collection("goc", metadata={"v": 1}, embedding_function=None)
    b = client.get_or_create_collection("goc", metadata={"v": 2}, embedding_function=None)
    assert a.id == b.id and b.metadata == {"v": 1}
    assert client.count_collections() == 1


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "a" * 513, "ab..cd", "192.168.1.1", "with space", "ünï"])
def test_bad_collection_names(api: types.SimpleNamespace, client: Any, name: str) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection(name, embedding_function=None)
    assert client.count_collections() == 0


def test_good_collection_names(client: Any) -> None:
    for name in ["abc", "a.b-c_d", "A" * 512, "1.2.3", "x1y"]:
        client.create_collection(name, embedding_function=None)
    assert client.count_collections() == 5


def test_collection_name_type(client: Any) -> None:
    with pytest.raises(TypeError):
        client.create_collection(123, embedding_function=None)


def test_collection_metadata_validation(api: types.SimpleNamespace, client: Any) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("mm1", metadata={}, embedding_function=None)
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("mm2", metadata={"#k": 1}, embedding_function=None)
    with pytest.raises(TypeError):
        client.create_collection("mm3", metadata={"k": None}, embedding_function=None)
    assert client.count_collections() == 0


def test_configuration_defaults_and_spaces(client: Any) -> None:
    c = client.create_collection("cfg", embedding_function=None)
    hnsw = c.configuration["hnsw"]
    assert hnsw["space"] == "l2"
    assert (hnsw["ef_construction"], hnsw["ef_search"], hnsw["max_neighbors"]) == (100, 100, 16)
    c2 = client.create_collection("cfg2", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    assert c2.configuration["hnsw"]["space"] == "cosine" and c2.metadata == {"hnsw:space": "cosine"}
    c3 = client.create_collection(
        "cfg3",
        configuration={"hnsw": {"space": "ip", "ef_construction": 50, "max_neighbors": 8, "ef_search": 20}},
        embedding_function=None,
    )
    assert c3.configuration["hnsw"]["space"] == "ip"
    assert (c3.configuration["hnsw"]["ef_construction"], c3.configuration["hnsw"]["max_neighbors"]) == (50, 8)
    assert c3.configuration["hnsw"]["ef_search"] == 20 and c3.metadata is None


def test_bad_space(api: types.SimpleNamespace, client: Any) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("spp1", metadata={"hnsw:space": "foobar"}, embedding_function=None)
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("spp2", configuration={"hnsw": {"space": "foobar"}}, embedding_function=None)
    with pytest.raises(api.errors.InvalidArgumentError):
        client.create_collection("spp3", configuration={"hnsw": {"nope": 1}}, embedding_function=None)
    assert client.count_collections() == 0


def test_reset_needs_allow_reset(api: types.SimpleNamespace, client: Any, tmp_path: Path) -> None:
    client.create_collection("keep", embedding_function=None)
    with pytest.raises(api.errors.AuthorizationError):
        client.reset()
    assert client.count_collections() == 1
    c2 = api.mod.PersistentClient(path=str(tmp_path / "other"), settings=api.mod.Settings(allow_reset=True))
    try:
        c2.create_collection("gone", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
        assert c2.reset() is True
        assert c2.count_collections() == 0
        c2.create_collection("gone", embedding_function=None)  # the name is free again
    finally:
        c2.close()


def test_settings_commonly_passed(api: types.SimpleNamespace, tmp_path: Path) -> None:
    s = api.mod.Settings(anonymized_telemetry=False, allow_reset=True)
    assert s.allow_reset is True and s.anonymized_telemetry is False
    with api.mod.PersistentClient(path=str(tmp_path / "s"), settings=s) as c:
        assert c.get_settings().allow_reset is True


def test_persistence_across_clients(api: types.SimpleNamespace, tmp_path: Path) -> None:
    path = str(tmp_path / "p")
    with api.mod.PersistentClient(path=path) as c:
        col = c.create_collection("keep", metadata={"a": 1}, embedding_function=None)
        col.add(ids=["x", "y"], embeddings=[[1.0, 2.0], [3.0, 4.0]], metadatas=[{"k": 1}, None], documents=["dx", None])
        col.delete(ids=["y"])
    with api.mod.PersistentClient(path=path) as c:
        col = c.get_collection("keep", embedding_function=None)
        assert col.metadata == {"a": 1}
        r = col.get(include=["metadatas", "documents", "embeddings"])
        assert r["ids"] == ["x"] and r["metadatas"] == [{"k": 1}] and r["documents"] == ["dx"]
        np.testing.assert_array_equal(r["embeddings"], [[1.0, 2.0]])


def test_close_is_idempotent(api: types.SimpleNamespace, tmp_path: Path) -> None:
    c = api.mod.PersistentClient(path=str(tmp_path / "c"))
    c.create_collection("abc", embedding_function=None)
    c.close()
    c.close()


def test_same_path_shares_store(api: types.SimpleNamespace, tmp_path: Path) -> None:
    path = str(tmp_path / "shared")
    a = api.mod.PersistentClient(path=path)
    b = api.mod.PersistentClient(path=path)
    try:
        a.create_collection("seen", embedding_function=None).add(ids=["1"], embeddings=[[1.0]])
        assert b.get_collection("seen", embedding_function=None).count() == 1
        with pytest.raises(ValueError, match="different settings"):
            api.mod.PersistentClient(path=path, settings=api.mod.Settings(allow_reset=True))
    finally:
        a.close()
        b.close()


def test_list_collections_paging(client: Any) -> None:
    for n in ("aaa", "bbb", "ccc"):
        client.create_collection(n, embedding_function=None)
    assert len(client.list_collections(limit=2)) == 2
    assert len(client.list_collections(offset=1)) == 2
    assert len(client.list_collections(limit=1, offset=2)) == 1
    with pytest.raises(OverflowError):
        client.list_collections(limit=-1)


# ---------------------------------------------------------------- modify, deleted collections


def test_modify(api: types.SimpleNamespace, client: Any) -> None:
    c = client.create_collection("mod", metadata={"a": 1, "hnsw:space": "cosine"}, embedding_function=None)
    c.modify(metadata={"b": 2})
    assert c.metadata == {"b": 2}
    assert client.get_collection("mod").metadata == {"b": 2}
    assert client.get_collection("mod").configuration["hnsw"]["space"] == "cosine"
    c.modify(name="renamed")
    assert c.name == "renamed" and [x.name for x in client.list_collections()] == ["renamed"]
    with pytest.raises(ValueError, match="distance function"):
        c.modify(metadata={"hnsw:space": "l2"})
    with pytest.raises(ValueError):
        c.modify(metadata={})
    with pytest.raises(api.errors.InvalidArgumentError):
        c.modify(name="x")
    client.create_collection("other", embedding_function=None)
    with pytest.raises(api.errors.InternalError):
        c.modify(name="other")
    assert c.name == "renamed"
    c.modify(configuration={"hnsw": {"ef_search": 50}})
    assert client.get_collection("renamed").configuration["hnsw"]["ef_search"] == 50


def test_deleted_collection_object(api: types.SimpleNamespace, client: Any) -> None:
    c = client.create_collection("gone", embedding_function=None)
    c.add(ids=["a"], embeddings=[[1.0, 2.0]])
    client.delete_collection("gone")
    with pytest.raises(api.errors.NotFoundError):
        c.count()
    with pytest.raises(api.errors.NotFoundError):
        c.add(ids=["b"], embeddings=[[1.0, 2.0]])
    with pytest.raises(api.errors.NotFoundError):
        c.get()


# ---------------------------------------------------------------- add and get


def test_add_get_round_trip(filled: Any) -> None:
    r = filled.get()
    assert r["ids"] == ROWS["ids"]
    assert r["included"] == ["metadatas", "documents"]
    assert r["embeddings"] is None and r["uris"] is None and r["data"] is None
    assert r["documents"] == ROWS["documents"]
    metas = r["metadatas"]
    for got, want in zip(metas, ROWS["metadatas"]):
        if want is None:
            assert got is None
            continue
        assert set(got) == set(want)
        for k, v in want.items():
            if isinstance(v, list):
                assert sorted(got[k]) == sorted(v)
            else:
                assert got[k] == v and type(got[k]) is type(v)
    assert filled.count() == 6


def test_metadata_number_types_round_trip(col: Any) -> None:
    col.add(ids=["t"], embeddings=[[1.0]], metadatas=[{"i": 1, "f": 1.0, "neg": -3, "big": 2**53, "t": True, "z": 0.0}])
    m = col.get(ids=["t"])["metadatas"][0]
    assert m == {"i": 1, "f": 1.0, "neg": -3, "big": 2**53, "t": True, "z": 0.0}
    assert type(m["i"]) is int and type(m["f"]) is float and type(m["t"]) is bool


def test_add_existing_id_is_ignored(filled: Any) -> None:
    filled.add(ids=["r1", "new"], embeddings=[[9.0, 9.0, 9.0], [7.0, 7.0, 7.0]], documents=["changed", "fresh"])
    r = filled.get(ids=["r1", "new"], include=["documents", "embeddings"])
    assert r["ids"] == ["r1", "new"]
    assert r["documents"] == ["The quick brown fox", "fresh"]
    np.testing.assert_array_equal(r["embeddings"], [[1.0, 0.0, 0.0], [7.0, 7.0, 7.0]])
    assert filled.count() == 7


def test_duplicate_ids_in_one_call(api: types.SimpleNamespace, filled: Any) -> None:
    with pytest.raises(api.errors.DuplicateIDError):
        filled.add(ids=["d", "d"], embeddings=[[1.0, 0, 0], [0, 1.0, 0]])
    with pytest.raises(api.errors.DuplicateIDError):
        filled.upsert(ids=["r1", "r1"], embeddings=[[1.0, 0, 0], [0, 1.0, 0]])
    with pytest.raises(api.errors.DuplicateIDError):
        filled.update(ids=["r1", "r1"], metadatas=[{"a": 1}, {"a": 2}])
    with pytest.raises(api.errors.DuplicateIDError):
        filled.get(ids=["r1", "r1"])
    assert not isinstance(api.errors.DuplicateIDError("x"), ValueError)
    assert filled.count() == 6


def test_get_order_is_insertion_order(filled: Any) -> None:
    assert filled.get(ids=["r5", "r2", "r1", "missing"])["ids"] == ["r1", "r2", "r5"]
    assert filled.get(ids="r3")["ids"] == ["r3"]
    assert filled.get(ids=["missing"])["ids"] == []


def test_get_limit_offset(filled: Any) -> None:
    everything = filled.get()["ids"]
    for off in (0, 1, 4, 6, 10):
        for lim in (0, 1, 3, 100):
            assert filled.get(offset=off, limit=lim)["ids"] == everything[off : off + lim]
    assert filled.get(offset=2)["ids"] == everything[2:]
    with pytest.raises(OverflowError):
        filled.get(limit=-1)
    with pytest.raises(OverflowError):
        filled.get(offset=-1)
    with pytest.raises(TypeError):
        filled.get(limit="1")
    with pytest.raises(TypeError):
        filled.get(limit=1.0)


def test_get_include(filled: Any) -> None:
    r = filled.get(ids=["r1", "r2"], include=[])
    assert r["ids"] == ["r1", "r2"] and r["metadatas"] is None and r["documents"] is None and r["included"] == []
    r = filled.get(ids=["r1", "r2"], include=["embeddings"])
    assert isinstance(r["embeddings"], np.ndarray) and r["embeddings"].shape == (2, 3)
    np.testing.assert_array_equal(r["embeddings"], [[1, 0, 0], [0, 1, 0]])
    r = filled.get(ids=["nope"], include=["embeddings", "metadatas"])
    assert r["ids"] == [] and r["metadatas"] == [] and len(r["embeddings"]) == 0
    for bad in (("metadatas",), None, ["distances"], ["foo"], [1]):
        with pytest.raises(ValueError):
            filled.get(include=bad)


def test_peek(filled: Any) -> None:
    r = filled.peek()
    assert r["ids"] == ROWS["ids"] and r["embeddings"].shape == (6, 3)
    assert r["documents"] == ROWS["documents"]
    assert filled.peek(limit=2)["ids"] == ["r1", "r2"]


@pytest.mark.parametrize(
    "embeddings, shape",
    [
        ([1, 2, 3], (1, 3)),
        ([1.5, 2, 3], (1, 3)),
        ([[1, 2, 3]], (1, 3)),
        (np.array([1, 2, 3], dtype=np.float64), (1, 3)),
        (np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32), (2, 3)),
        (np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64), (2, 3)),
        ([np.array([1, 2, 3]), np.array([4.0, 5, 6])], (2, 3)),
    ],
)
def test_embedding_input_forms(col: Any, embeddings: Any, shape: tuple) -> None:
    ids = ["e%d" % i for i in range(shape[0])]
    col.add(ids=ids[0] if shape[0] == 1 else ids, embeddings=embeddings)
    got = col.get(include=["embeddings"])["embeddings"]
    np.testing.assert_array_equal(got, np.asarray(embeddings, dtype=np.float32).reshape(shape))


@pytest.mark.parametrize(
    "embeddings",
    [
        [["a", "b"]],
        [[True, False]],
        [[[1.0, 2.0]]],
        [],
        "text",
        np.array([[True, False]]),
        np.array([[1, 2]], dtype=np.uint8),
        np.zeros((1, 2, 2)),
    ],
)
def test_bad_embeddings_value_error(col: Any, embeddings: Any) -> None:
    with pytest.raises(ValueError):
        col.add(ids=["x"], embeddings=embeddings)
    assert col.count() == 0


def test_embedding_values_and_dimension(api: types.SimpleNamespace, filled: Any) -> None:
    InvalidArgumentError = api.errors.InvalidArgumentError
    for bad in ([[math.nan, 0, 0]], [[math.inf, 0, 0]], [[1e39, 0, 0]]):
        with pytest.raises(InvalidArgumentError):
            filled.add(ids=["x"], embeddings=bad)
    with pytest.raises(InvalidArgumentError, match="dimension of 3, got 2"):
        filled.add(ids=["x"], embeddings=[[1.0, 2.0]])
    with pytest.raises(InvalidArgumentError, match="Inconsistent dimensions"):
        filled.add(ids=["x", "y"], embeddings=[[1.0, 2.0, 3.0], [1.0, 2.0]])
    with pytest.raises(InvalidArgumentError):
        filled.update(ids=["r1"], embeddings=[[1.0, 2.0]])
    with pytest.raises(InvalidArgumentError):
        filled.upsert(ids=["r1"], embeddings=[[1.0, 2.0]])
    assert filled.count() == 6


def test_bad_ids(api: types.SimpleNamespace, col: Any) -> None:
    with pytest.raises(ValueError):
        col.add(ids=[1], embeddings=[[1.0]])
    with pytest.raises(ValueError):
        col.add(ids=[], embeddings=[[1.0]])
    with pytest.raises(ValueError):
        col.get(ids=[])
    with pytest.raises(ValueError):
        col.delete(ids=[])
    with pytest.raises(api.errors.InvalidArgumentError):
        col.add(ids=[""], embeddings=[[1.0]])
    with pytest.raises(ValueError, match="Unequal lengths"):
        col.add(ids=["a", "b"], embeddings=[[1.0]])
    with pytest.raises(ValueError, match="Unequal lengths"):
        col.add(ids=["a"], embeddings=[[1.0]], documents=["x", "y"])
    assert col.count() == 0


def test_add_needs_embeddings_or_data(col: Any) -> None:
    with pytest.raises(ValueError):
        col.add(ids=["a"])
    with pytest.raises(ValueError):
        col.add(ids=["a"], metadatas=[{"k": 1}])


@pytest.mark.parametrize(
    "metadata, exc",
    [
        ({}, ValueError),
        ({"a": {"b": 1}}, ValueError),
        ({"a": [1, "x"]}, ValueError),
        ({"a": []}, ValueError),
        ({"a": [[1]]}, ValueError),
        ({"a": object()}, ValueError),
        ({1: "x"}, TypeError),
        ({"chroma:document": "x"}, ValueError),
        ({"a": None}, TypeError),
        ("not a dict", ValueError),
    ],
)
def test_bad_metadata(api: types.SimpleNamespace, col: Any, metadata: Any, exc: type) -> None:
    if isinstance(metadata, str) and api.name == "chromadb":
        exc = AttributeError  # ChromaDB calls .items() on it; pysvdb raises the ValueError it meant
    with pytest.raises(exc):
        col.add(ids=["a"], embeddings=[[1.0]], metadatas=[metadata])
    assert col.count() == 0


@pytest.mark.parametrize("key", ["#x", "$x", ""])
def test_reserved_metadata_keys(api: types.SimpleNamespace, col: Any, key: str) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        col.add(ids=["a"], embeddings=[[1.0]], metadatas=[{key: 1}])
    assert col.count() == 0


def test_documents(col: Any) -> None:
    with pytest.raises(ValueError):
        col.add(ids=["a"], embeddings=[[1.0]], documents=[5])
    col.add(ids=["a", "b"], embeddings=[[1.0], [2.0]], documents=["text ünïcode \"q\" \\ \x00 end", None])
    assert col.get()["documents"] == ["text ünïcode \"q\" \\ \x00 end", None]
    col.add(ids="c", embeddings=[3.0], documents="single", metadatas={"k": "v"})
    assert col.get(ids="c") ["documents"] == ["single"]


# ---------------------------------------------------------------- update and upsert


def test_update_merges(filled: Any) -> None:
    filled.update(ids=["r1", "missing"], metadatas=[{"n": None, "new": 5, "s": "pear"}, {"x": 1}])
    r = filled.get(ids=["r1"], include=["metadatas", "documents", "embeddings"])
    m = r["metadatas"][0]
    assert m["new"] == 5 and m["s"] == "pear" and "n" not in m and m["f"] == 1.5
    assert r["documents"] == ["The quick brown fox"]
    np.testing.assert_array_equal(r["embeddings"], [[1, 0, 0]])
    assert "missing" not in filled.get()["ids"]
    filled.update(ids=["r2"], embeddings=[[5.0, 5.0, 5.0]], documents=["new doc"])
    r = filled.get(ids=["r2"], include=["metadatas", "documents", "embeddings"])
    assert r["documents"] == ["new doc"] and r["metadatas"][0]["s"] == "banana"
    np.testing.assert_array_equal(r["embeddings"], [[5, 5, 5]])
    filled.update(ids=["r2"], embeddings=[[5.0, 5.0, 5.0]], documents=[None])
    assert filled.get(ids=["r2"])["documents"] == ["new doc"]
    filled.update(ids=["r4"], metadatas=[{"f": None, "s": None}])
    assert filled.get(ids=["r4"])["metadatas"] == [None]
    filled.update(ids=["r5"], metadatas=[{"k": 1}])
    assert filled.get(ids=["r5"])["metadatas"] == [{"k": 1}]
    filled.update(ids=["r3"])  # nothing to change
    assert filled.get()["ids"] == ROWS["ids"]


def test_upsert(filled: Any) -> None:
    filled.upsert(
        ids=["r1", "u1"],
        embeddings=[[0.0, 0.0, 9.0], [3.0, 3.0, 3.0]],
        metadatas=[{"q": 1}, {"r": None, "s": 1}],
        documents=[None, "u doc"],
    )
    r = filled.get(ids=["r1", "u1"], include=["metadatas", "documents", "embeddings"])
    assert r["ids"] == ["r1", "u1"]
    assert r["metadatas"][0]["q"] == 1 and r["metadatas"][0]["s"] == "apple"
    assert r["metadatas"][1] == {"s": 1}
    assert r["documents"] == ["The quick brown fox", "u doc"]
    np.testing.assert_array_equal(r["embeddings"], [[0, 0, 9], [3, 3, 3]])
    filled.upsert(ids=["r1"], embeddings=[[0.0, 0.0, 8.0]], metadatas=None)
    assert filled.get(ids=["r1"])["metadatas"][0]["q"] == 1
    assert filled.get()["ids"] == ROWS["ids"] + ["u1"]
    with pytest.raises(ValueError):
        filled.upsert(ids=["r1"], metadatas=[{"q": 2}])


# ---------------------------------------------------------------- delete


def test_delete(api: types.SimpleNamespace, filled: Any) -> None:
    assert filled.delete(ids=["r1", "zzz"]) == {"deleted": 2}
    assert filled.count() == 5
    assert filled.delete(where={"s": "apple"}) == {"deleted": 1}
    assert filled.delete(where={"n": {"$gte": 2}}, limit=1) == {"deleted": 1}
    assert filled.get()["ids"] == ["r3", "r5", "r6"]
    assert filled.delete(ids=["r3"], where={"n": 99}) == {"deleted": 0}
    assert filled.delete(where_document={"$contains": "fox"}) == {"deleted": 1}
    assert filled.get()["ids"] == ["r3", "r6"]
    with pytest.raises(ValueError):
        filled.delete()
    with pytest.raises(ValueError, match="limit"):
        filled.delete(ids=["r3"], limit=1)
    with pytest.raises(ValueError):
        filled.delete(where={"n": 3}, limit=-1)
    with pytest.raises(TypeError):
        filled.delete(where={"n": 3}, limit="1")
    with pytest.raises(ValueError):
        filled.delete(where={})
    assert filled.count() == 2


# ---------------------------------------------------------------- query


def test_query_distances_l2(filled: Any) -> None:
    r = filled.query(query_embeddings=[1.0, 0.0, 0.0], n_results=3)
    assert r["ids"] == [["r1", "r6", "r4"]]
    assert r["distances"] == [[0.0, 0.75, 1.0]]
    assert r["documents"] == [["The quick brown fox", "nothing here", "Quick thinking"]]
    assert r["metadatas"][0][2] == {"f": -1.0, "s": "apple"}
    assert r["included"] == ["metadatas", "documents", "distances"]
    assert r["embeddings"] is None and r["uris"] is None


@pytest.mark.parametrize(
    "space, expected",
    [
        ("cosine", [("a", 0.0), ("c", 1 - 1 / math.sqrt(2)), ("b", 1.0)]),
        ("ip", [("c", -0.5), ("a", 0.0), ("b", 1.0)]),
        ("l2", [("a", 0.0), ("b", 2.0), ("c", 2.5)]),
    ],
)
def test_query_spaces(client: Any, space: str, expected: list) -> None:
    c = client.create_collection("sp" + space, metadata={"hnsw:space": space}, embedding_function=None)
    c.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.5, 1.5]])
    r = c.query(query_embeddings=[[1.0, 0.0]], n_results=3, include=["distances", "embeddings"])
    assert r["ids"][0] == [e[0] for e in expected]
    assert r["distances"][0] == pytest.approx([e[1] for e in expected], abs=1e-6)
    # The stored vectors come back as given, not normalised.
    np.testing.assert_array_equal(r["embeddings"][0][[e[0] for e in expected].index("c")], [1.5, 1.5])


@pytest.mark.parametrize(
    "space, expected",
    [
        ("cosine", [("a", 0.0), ("c", 1 - 1 / math.sqrt(2)), ("b", 1.0)]),
        ("ip", [("c", -0.5), ("a", 0.0), ("b", 1.0)]),
        ("l2", [("a", 0.0), ("b", 2.0), ("c", 2.5)]),
    ],
)
def test_query_ids_distances(client: Any, space: str, expected: list) -> None:
    """query(ids=...) scores the rows named, in each space's convention."""
    c = client.create_collection("ids" + space, metadata={"hnsw:space": space}, embedding_function=None)
    vecs = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.5, 1.5], "d": [-1.0, 0.2]}
    c.add(ids=list(vecs), embeddings=list(vecs.values()))
    r = c.query(query_embeddings=[[1.0, 0.0], [1.0, 0.0]], ids=["c", "b", "a"], n_results=10, include=["distances"])
    for row_ids, row_d in zip(r["ids"], r["distances"]):
        assert row_ids == [e[0] for e in expected]
        assert row_d == pytest.approx([e[1] for e in expected], abs=1e-6)
    r = c.query(query_embeddings=[1.0, 0.0], ids=["b", "c", "a"], n_results=2, include=["distances", "embeddings"])
    assert r["ids"] == [[e[0] for e in expected[:2]]]
    np.testing.assert_array_equal(r["embeddings"][0], [vecs[e[0]] for e in expected[:2]])


def test_update_metadata_and_vectors_apart(client: Any) -> None:
    """An update changes what it is given and survives a reopen."""
    c = client.create_collection("upd", embedding_function=None)
    c.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"k": 1}, {"k": 2}], documents=["da", "db"])
    c.update(ids=["a"], embeddings=[[3.0, 3.0]])
    c.update(ids=["b"], metadatas=[{"j": True}], uris=["u://b"])
    c.update(ids=["b", "zz"], metadatas=[{"k": None}, {"k": 1}])
    r = c.get(include=["metadatas", "documents", "embeddings", "uris"])
    assert r["metadatas"] == [{"k": 1}, {"j": True}] and r["documents"] == ["da", "db"]
    assert r["uris"] == [None, "u://b"]
    np.testing.assert_array_equal(r["embeddings"], [[3, 3], [0, 1]])
    assert c.query(query_embeddings=[3.0, 3.0], n_results=1)["ids"] == [["a"]]


def test_query_n_results(filled: Any) -> None:
    assert len(filled.query(query_embeddings=[1.0, 0, 0], n_results=100)["ids"][0]) == 6
    assert len(filled.query(query_embeddings=[1.0, 0, 0], n_results=True)["ids"][0]) == 1
    for bad, exc in ((0, TypeError), (-1, TypeError), ("1", ValueError), (1.0, ValueError)):
        with pytest.raises(exc):
            filled.query(query_embeddings=[1.0, 0, 0], n_results=bad)


def test_query_batch_and_include(filled: Any) -> None:
    r = filled.query(query_embeddings=[[1.0, 0, 0], [0, 0, 1.0]], n_results=2, include=["embeddings", "distances"])
    assert r["ids"] == [["r1", "r6"], ["r3", "r6"]]
    assert isinstance(r["embeddings"], list) and len(r["embeddings"]) == 2
    np.testing.assert_array_equal(r["embeddings"][1], [[0, 0, 1], [0.5, 0.5, 0.5]])
    assert r["documents"] is None and r["metadatas"] is None
    r = filled.query(query_embeddings=np.array([[0.0, 1.0, 0.0]]), n_results=1, include=[])
    assert r["ids"] == [["r2"]] and r["distances"] is None
    with pytest.raises(ValueError):
        filled.query(query_embeddings=[1.0, 0, 0], include=["foo"])


def test_query_with_filters_and_ids(api: types.SimpleNamespace, filled: Any) -> None:
    q = [1.0, 0.0, 0.0]
    assert filled.query(query_embeddings=q, where={"s": "apple"}, n_results=5)["ids"] == [["r1", "r4"]]
    dog = filled.query(query_embeddings=[0.0, 1.0, 0.0], where_document={"$contains": "dog"}, n_results=5)
    assert dog["ids"] == [["r2", "r5"]] and dog["distances"] == [[0.0, 6.0]]
    assert filled.query(query_embeddings=q, where={"b": True}, where_document={"$contains": "fox"})["ids"] == [["r1"]]
    assert filled.query(query_embeddings=q, ids=["r2", "r3"], n_results=5)["ids"] == [["r2", "r3"]]
    assert filled.query(query_embeddings=q, ids=["r2", "nope"], where={"n": 2})["ids"] == [["r2"]]
    assert filled.query(query_embeddings=q, where={"s": "none"})["ids"] == [[]]
    with pytest.raises(api.errors.InternalError):
        filled.query(query_embeddings=q, ids=["r2", "nope"])


def test_query_errors(api: types.SimpleNamespace, filled: Any, client: Any) -> None:
    with pytest.raises(ValueError):
        filled.query()
    with pytest.raises(api.errors.InvalidArgumentError, match="dimension of 3, got 2"):
        filled.query(query_embeddings=[1.0, 0.0])
    empty = client.create_collection("never", embedding_function=None)
    r = empty.query(query_embeddings=[[1.0, 2.0], [3.0, 4.0]], n_results=3)
    assert r["ids"] == [[], []] and r["distances"] == [[], []] and r["documents"] == [[], []]
    assert empty.get()["ids"] == [] and empty.count() == 0


# ---------------------------------------------------------------- filters

WHERE_CASES = [
    ({"s": "apple"}, ["r1", "r4"]),
    ({"s": {"$eq": "apple"}}, ["r1", "r4"]),
    ({"s": {"$ne": "apple"}}, ["r2", "r3", "r5", "r6"]),
    ({"n": 2}, ["r2"]),
    ({"n": 2.0}, ["r2"]),
    ({"f": 2}, ["r2"]),
    ({"n": {"$gt": 2}}, ["r3", "r6"]),
    ({"n": {"$gte": 2}}, ["r2", "r3", "r6"]),
    ({"n": {"$lt": 3}}, ["r1", "r2"]),
    ({"n": {"$lte": 3}}, ["r1", "r2", "r3"]),
    ({"f": {"$lt": 0}}, ["r4"]),
    ({"f": {"$gte": 1.5}}, ["r1", "r2"]),
    ({"n": {"$in": [1, 3]}}, ["r1", "r3"]),
    ({"n": {"$nin": [1, 3]}}, ["r2", "r4", "r5", "r6"]),
    ({"s": {"$in": ["banana", "cherry"]}}, ["r2", "r3"]),
    ({"b": True}, ["r1", "r6"]),
    ({"b": {"$ne": True}}, ["r2", "r3", "r4", "r5"]),
    ({"tags": {"$contains": "y"}}, ["r1", "r2"]),
    ({"tags": {"$not_contains": "x"}}, ["r2", "r3", "r4", "r5", "r6"]),
    ({"nums": {"$contains": 3}}, ["r3", "r6"]),
    ({"$and": [{"s": "apple"}, {"n": 1}]}, ["r1"]),
    ({"$or": [{"s": "banana"}, {"n": 10}]}, ["r2", "r6"]),
    ({"$and": [{"$or": [{"n": 1}, {"n": 3}]}, {"s": {"$ne": "cherry"}}]}, ["r1"]),
    ({"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 10}}]}, ["r2", "r3"]),
    ({"#document": {"$contains": "fox"}}, ["r1", "r5"]),
    ({"missing": {"$ne": 1}}, ["r1", "r2", "r3", "r4", "r5", "r6"]),
    ({"missing": 1}, []),
]


@pytest.mark.parametrize("where, expected", WHERE_CASES)
def test_where(filled: Any, where: Dict[str, Any], expected: List[str]) -> None:
    assert filled.get(where=where)["ids"] == expected
    hits = filled.query(query_embeddings=[0.3, 0.3, 0.3], where=where, n_results=10)["ids"][0]
    assert sorted(hits) == expected


def test_where_int_field_float_operand(api: types.SimpleNamespace, filled: Any) -> None:
    """ChromaDB truncates a float operand for integer fields (a bug, per the contract);
    pysvdb compares mathematically."""
    lt = filled.get(where={"n": {"$lt": 1.5}})["ids"]
    gte = filled.get(where={"n": {"$gte": 1.5}})["ids"]
    in_ = filled.get(where={"n": {"$in": [1.5]}})["ids"]
    if api.name == "pysvdb":
        assert (lt, gte, in_) == (["r1"], ["r2", "r3", "r6"], [])
    else:
        assert (lt, gte, in_) == ([], ["r1", "r2", "r3", "r6"], ["r1"])


@pytest.mark.parametrize(
    "where",
    [
        {},
        {"a": 1, "b": 2},
        {"a": None},
        {"a": [1, 2]},
        {"a": {"$gt": "x"}},
        {"a": {"$in": []}},
        {"a": {"$in": [1, "x"]}},
        {"a": {"$in": 1}},
        {"a": {"$foo": 1}},
        {"a": {"$eq": 1, "$ne": 2}},
        {"$and": [{"a": 1}]},
        {"$or": {"a": 1}},
        {"$contains": "x"},
        {"#document": {"$contains": 5}},
        "a = 1",
    ],
)
def test_bad_where(filled: Any, where: Any) -> None:
    with pytest.raises(ValueError):
        filled.get(where=where)
    with pytest.raises(ValueError):
        filled.query(query_embeddings=[1.0, 0, 0], where=where)
    with pytest.raises(ValueError):
        filled.delete(where=where)
    assert filled.count() == 6


@pytest.mark.parametrize("where", [{"a": {"$eq": [1, 2]}}, {"$in": [1, 2]}, {"#document": "x"}])
def test_where_rejected_by_engine(api: types.SimpleNamespace, filled: Any, where: Any) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        filled.get(where=where)


DOC_CASES = [
    ({"$contains": "fox"}, ["r1", "r5"]),
    ({"$contains": "Quick"}, ["r4"]),
    ({"$contains": "quick"}, ["r1"]),
    ({"$not_contains": "fox"}, ["r2", "r3", "r4", "r6"]),
    ({"$contains": "%"}, []),
    ({"$contains": "_"}, []),
    ({"$regex": "^[Tt]he"}, ["r1", "r2"]),
    ({"$regex": "o[gx]$"}, ["r1", "r2", "r5"]),
    ({"$not_regex": "o"}, ["r3", "r4"]),
    ({"$and": [{"$contains": "fox"}, {"$contains": "dog"}]}, ["r5"]),
    ({"$or": [{"$contains": "lazy"}, {"$regex": "thinking"}]}, ["r2", "r4"]),
]


@pytest.mark.parametrize("where_document, expected", DOC_CASES)
def test_where_document(filled: Any, where_document: Dict[str, Any], expected: List[str]) -> None:
    assert filled.get(where_document=where_document)["ids"] == expected
    hits = filled.query(query_embeddings=[0.3, 0.3, 0.3], where_document=where_document, n_results=10)["ids"][0]
    assert sorted(hits) == expected


@pytest.mark.parametrize(
    "where_document",
    [{}, {"$contains": ""}, {"$contains": 1}, {"$foo": "x"}, {"$and": [{"$contains": "a"}]}, {"a": 1, "b": 2}, "x"],
)
def test_bad_where_document(filled: Any, where_document: Any) -> None:
    with pytest.raises(ValueError):
        filled.get(where_document=where_document)


def test_bad_regex(api: types.SimpleNamespace, filled: Any) -> None:
    with pytest.raises(api.errors.InvalidArgumentError):
        filled.get(where_document={"$regex": "("})


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (r"\d{3}-\d{4}", ["p1"]),
        (r"[\d.]+%", ["p3"]),
        (r"^\w+ \w+\.$", ["p2"]),
        (r"\bcat\b", ["p2"]),
        (r"\D\.$", ["p2"]),
        (r"tab\there", ["p4"]),
        (r"[[:upper:]]{3}", ["p1"]),
        (r"\\", ["p4"]),
    ],
)
def test_regex_syntax(col: Any, pattern: str, expected: List[str]) -> None:
    col.add(
        ids=["p1", "p2", "p3", "p4"],
        embeddings=[[1.0], [2.0], [3.0], [4.0]],
        documents=["call ABC 555-1234", "black cat.", "rate 12.5% up", "tab\there \\ back"],
    )
    assert col.get(where_document={"$regex": pattern})["ids"] == expected


def test_get_where_and_ids(filled: Any) -> None:
    assert filled.get(ids=["r1", "r2", "r4"], where={"s": "apple"})["ids"] == ["r1", "r4"]
    assert filled.get(where={"s": "apple"}, limit=1, offset=1)["ids"] == ["r4"]
    assert filled.get(where={"s": "apple"}, where_document={"$contains": "Quick"})["ids"] == ["r4"]


# ---------------------------------------------------------------- embedding functions and uris


def test_embedding_function(api: types.SimpleNamespace, client: Any) -> None:
    ef = make_ef(api)
    c = client.create_collection("efc", embedding_function=ef)
    c.add(ids=["a", "b"], documents=["banana", "cherry tree"])
    r = c.get(include=["embeddings", "documents"])
    np.testing.assert_array_equal(r["embeddings"], [[6, 3, 1], [11, 0, 4]])
    q = c.query(query_texts=["banana"], n_results=1)
    assert q["ids"] == [["a"]] and q["distances"] == [[0.0]]
    c.update(ids=["b"], documents=["aaaa"])
    np.testing.assert_array_equal(c.get(ids=["b"], include=["embeddings"])["embeddings"], [[4, 4, 1]])
    c.upsert(ids=["c"], documents=["e"])
    assert c.count() == 3
    c.add(ids=["d"], embeddings=[[1.0, 1.0, 1.0]], documents=["given"])  # embeddings given: not embedded
    assert ["given"] not in ef.calls
    again = client.get_collection("efc", embedding_function=ef)
    assert again.query(query_texts="aaaa", n_results=1)["ids"] == [["b"]]


def test_uris(col: Any) -> None:
    col.add(ids=["a", "b"], embeddings=[[1.0, 2.0], [2.0, 1.0]], uris=["file://a", None])
    r = col.get(include=["uris"])
    assert r["uris"] == ["file://a", None] and r["included"] == ["uris"]
    q = col.query(query_embeddings=[1.0, 2.0], n_results=2, include=["uris"])
    assert q["uris"] == [["file://a", None]]
    with pytest.raises(ValueError, match="data loader"):
        col.get(include=["data"])
