"""The catalog of a ChromaDB client's directory is libsvdb's (svdb_catalog_*):
a directory the Python client made opens and lists from C, and one made from
C opens in the Python client, with the same names, ids, metadata, settings
and rows. C calls go through cffi, as any other language would call them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

import pysvdb
from pysvdb._lib import ffi, lib


def _ok(rc: int) -> None:
    assert rc == 0, (rc, ffi.string(lib.svdb_errmsg()).decode())


def _s(p: Any) -> str:
    return ffi.string(p).decode("utf-8")


@pytest.fixture
def open_c() -> Iterator[Any]:
    opened: List[Any] = []

    def opener(path: Path) -> Any:
        out = ffi.new("svdb_catalog **")
        _ok(lib.svdb_catalog_open(out, str(path).encode(), ffi.NULL))
        opened.append(out[0])
        return out[0]

    yield opener
    for cat in opened:
        lib.svdb_catalog_close(cat)


def _list(cat: Any) -> List[Dict[str, Any]]:
    entries = ffi.new("svdb_catalog_entry **")
    n = ffi.new("size_t *")
    _ok(lib.svdb_catalog_list(cat, entries, n))
    try:
        out = []
        for i in range(n[0]):
            e = entries[0][i]
            out.append(
                {
                    "id": _s(e.id),
                    "name": _s(e.name),
                    "metadata": json.loads(_s(e.metadata)) if e.metadata != ffi.NULL else None,
                    "hnsw": json.loads(_s(e.hnsw)),
                    "path": _s(e.path),
                    "metric": e.metric,
                    "m": e.hnsw_m,
                }
            )
        return out
    finally:
        lib.svdb_catalog_entries_free(entries[0])


def _count(cat: Any, name: str) -> int:
    db = ffi.new("svdb **")
    _ok(lib.svdb_catalog_open_collection(db, cat, name.encode(), ffi.NULL))
    n = ffi.new("size_t *")
    try:
        _ok(lib.svdb_count(db[0], n))
    finally:
        _ok(lib.svdb_close(db[0]))
    return int(n[0])


def test_python_directory_opens_and_lists_from_c(tmp_path: Path, open_c: Any) -> None:
    path = tmp_path / "db"
    meta = {"k": 1.5, "whole": 2.0, "big": 2**62 + 1, "tags": ["x", "y"], "ok": True}
    with pysvdb.PersistentClient(path=str(path)) as c:
        a = c.create_collection("aaa", metadata=meta, embedding_function=None)
        a.add(ids=["r%d" % i for i in range(5)], embeddings=np.eye(5, 3).tolist())
        b = c.create_collection("bbb", configuration={"hnsw": {"space": "ip", "max_neighbors": 8}}, embedding_function=None)
        ids = {"aaa": str(a.id), "bbb": str(b.id)}
    cat = open_c(path)
    listed = _list(cat)
    assert [e["name"] for e in listed] == ["aaa", "bbb"]
    assert {e["name"]: e["id"] for e in listed} == ids
    assert listed[0]["metadata"] == meta and isinstance(listed[0]["metadata"]["whole"], float)
    assert listed[0]["path"] == os.path.join(os.path.realpath(path), ids["aaa"])
    assert listed[1]["metric"] == lib.SVDB_METRIC_IP and listed[1]["m"] == 8 and listed[1]["hnsw"]["space"] == "ip"
    assert _count(cat, "aaa") == 5
    # The Python client shares the directory with the C handle and sees its
    # changes at its next call.
    with pysvdb.PersistentClient(path=str(path)) as live:
        _ok(lib.svdb_catalog_rename(cat, b"aaa", b"renamed"))
        _ok(lib.svdb_catalog_delete(cat, b"bbb"))
        assert not (path / ids["bbb"]).exists()
        assert [x.name for x in live.list_collections()] == ["renamed"]
        assert live.get_collection("renamed").count() == 5
    _ok(lib.svdb_catalog_close(cat))
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.get_collection("renamed")
        assert str(col.id) == ids["aaa"] and col.count() == 5 and col.metadata == meta
        assert isinstance(col.metadata["whole"], float) and col.metadata["big"] == 2**62 + 1
        assert [x.name for x in c.list_collections()] == ["renamed"]


def test_c_directory_opens_in_python(tmp_path: Path, open_c: Any) -> None:
    path = tmp_path / "made-in-c"
    cat = open_c(path)
    hnsw = {"space": "cosine", "ef_construction": 64, "ef_search": 32, "max_neighbors": 12}
    entry = ffi.new("svdb_catalog_entry **")
    _ok(lib.svdb_catalog_create(cat, b"docs", b'{"owner": "c", "n": 3}', json.dumps(hnsw).encode(), entry))
    cid = _s(entry[0][0].id)
    lib.svdb_catalog_entries_free(entry[0])
    db = ffi.new("svdb **")
    _ok(lib.svdb_catalog_open_collection(db, cat, b"docs", ffi.NULL))
    keep = [ffi.new("char[]", b"d%d" % i) for i in range(3)]
    ids = ffi.new("const char *[]", keep)
    vecs = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    doc = ffi.new("char[]", b'{"#document": "hello"}')
    metas = ffi.new("const char *[]", [doc, ffi.NULL, ffi.NULL])
    _ok(lib.svdb_add_batch(db[0], 3, ids, ffi.cast("const float *", ffi.from_buffer(vecs)), 2, metas))
    _ok(lib.svdb_close(db[0]))
    _ok(lib.svdb_catalog_set_metadata(cat, b"docs", b'{"owner": "c", "n": 4}'))
    _ok(lib.svdb_catalog_close(cat))
    marker = json.loads((path / cid / "pysvdb-collection.json").read_text())
    assert marker["id"] == cid and marker["state"] == "live"
    with pysvdb.PersistentClient(path=str(path)) as c:
        col = c.get_collection("docs")
        assert str(col.id) == cid and col.metadata == {"owner": "c", "n": 4}
        assert col.configuration_json["hnsw"] == hnsw
        assert col.count() == 3
        got = col.get(ids=["d0"], include=["documents"])
        assert got["documents"] == ["hello"]
        res = col.query(query_embeddings=[[1.0, 0.0]], n_results=1)
        assert res["ids"] == [["d0"]]
        c.delete_collection("docs")
    assert not (path / cid).exists()
    assert json.loads((path / "pysvdb-chroma.json").read_text())["collections"] == []


def _databases(cat: Any, tenant: bytes, limit: int = -1, offset: int = 0) -> List[Dict[str, str]]:
    out = ffi.new("svdb_catalog_database **")
    n = ffi.new("size_t *")
    _ok(lib.svdb_catalog_list_databases(cat, tenant, limit, offset, out, n))
    try:
        return [{"id": _s(out[0][i].id), "name": _s(out[0][i].name), "tenant": _s(out[0][i].tenant)} for i in range(n[0])]
    finally:
        lib.svdb_catalog_databases_free(out[0])


def test_databases_from_c_keep_through_the_python_client(tmp_path: Path, open_c: Any) -> None:
    """Tenants, databases and their collections made from C stay whole while
    today's Python client (the default database) changes the catalog."""
    path = tmp_path / "db"
    cat = open_c(path)
    _ok(lib.svdb_catalog_create_tenant(cat, b"acme"))
    assert lib.svdb_catalog_create_tenant(cat, b"acme") == lib.SVDB_EEXISTS
    assert lib.svdb_catalog_get_tenant(cat, b"nobody") == lib.SVDB_ENOTFOUND
    _ok(lib.svdb_catalog_create_database(cat, b"acme", b"sales"))
    _ok(lib.svdb_catalog_create_database(cat, b"acme", b"hr-team"))
    assert [d["name"] for d in _databases(cat, b"acme")] == ["hr-team", "sales"]
    assert [d["name"] for d in _databases(cat, b"acme", 1, 1)] == ["sales"]
    view = ffi.new("svdb_catalog **")
    _ok(lib.svdb_catalog_open_database(view, cat, b"acme", b"sales"))
    _ok(lib.svdb_catalog_create(view[0], b"shared", b'{"db": "sales"}', ffi.NULL, ffi.NULL))
    _ok(lib.svdb_catalog_create(cat, b"shared", b'{"db": "default"}', ffi.NULL, ffi.NULL))
    sales_id = _list(view[0])[0]["id"]
    _ok(lib.svdb_catalog_close(cat))  # closes the view too
    with pysvdb.PersistentClient(path=str(path)) as c:
        assert [x.name for x in c.list_collections()] == ["shared"]
        assert c.get_collection("shared").metadata == {"db": "default"}
        c.create_collection("more", embedding_function=None)
        c.delete_collection("shared")
    doc = json.loads((path / "pysvdb-chroma.json").read_text())
    assert doc["version"] == 2 and [t["name"] for t in doc["tenants"]] == ["default_tenant", "acme"]
    cat = open_c(path)
    _ok(lib.svdb_catalog_open_database(view, cat, b"acme", b"sales"))
    assert [(e["name"], e["id"], e["metadata"]) for e in _list(view[0])] == [("shared", sales_id, {"db": "sales"})]
    assert [e["name"] for e in _list(cat)] == ["more"]
    _ok(lib.svdb_catalog_delete_database(cat, b"acme", b"sales"))
    assert lib.svdb_catalog_list(view[0], ffi.new("svdb_catalog_entry **"), ffi.new("size_t *")) == lib.SVDB_ENOTFOUND
    assert [d["name"] for d in _databases(cat, b"acme")] == ["hr-team"]
