"""Tenants and databases of the ChromaDB-compatible client: ``AdminClient``,
clients opened with ``tenant=``/``database=``, ``set_tenant``/``set_database``.

Like test_chroma_compat.py, each test runs against pysvdb and, when it is
installed, against chromadb with the same code and expected values; the
differences kept on purpose (docs/chroma.md) are asserted per backend.
"""

from __future__ import annotations

import os
import re
import threading
import types
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import pysvdb

try:
    import chromadb
    import chromadb.errors
except Exception:  # pragma: no cover - chromadb is optional
    chromadb = None

BACKENDS = ["pysvdb"] + (["chromadb"] if chromadb is not None else [])
ZERO = uuid.UUID(int=0)
SHORT = "database name must be at least 3 characters"


class Store:
    """One store (a persistent directory) of one backend, with its admin client."""

    def __init__(self, mod: Any, errors: Any, name: str, path: Path) -> None:
        self.mod, self.errors, self.name, self.path = mod, errors, name, str(path)
        self.opened: List[Any] = []
        self.admin = self._keep(mod.AdminClient(mod.Settings(is_persistent=True, persist_directory=self.path)))

    def _keep(self, c: Any) -> Any:
        self.opened.append(c)
        return c

    def client(self, **kw: Any) -> Any:
        return self._keep(self.mod.PersistentClient(path=self.path, **kw))

    def close(self) -> None:
        for c in reversed(self.opened):
            if hasattr(c, "close"):  # chromadb's AdminClient has no close
                c.close()
        self.opened.clear()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "pysvdb":
        s = Store(pysvdb, pysvdb.errors, "pysvdb", tmp_path / "db")
    else:
        s = Store(chromadb, chromadb.errors, "chromadb", tmp_path / "db")
    yield s
    s.close()


@pytest.fixture
def pstore(tmp_path: Path) -> Iterator[Store]:
    """pysvdb alone: what chromadb does not have or does otherwise."""
    s = Store(pysvdb, pysvdb.errors, "pysvdb", tmp_path / "db")
    yield s
    s.close()


def _raises(cls: Any, message: str) -> Any:
    return pytest.raises(cls, match="^%s$" % re.escape(message))


def _names(dbs: Any) -> List[str]:
    return [d["name"] for d in dbs]


# ---------------------------------------------------------------- tenants


def test_default_tenant_and_database(store: Store) -> None:
    a = store.admin
    assert a.get_tenant("default_tenant") == {"name": "default_tenant"}
    default = {"id": ZERO, "name": "default_database", "tenant": "default_tenant"}
    assert a.get_database("default_database") == default
    assert a.get_database("default_database", tenant="default_tenant") == default
    assert list(a.list_databases()) == [default]
    c = store.client()
    assert (c.tenant, c.database) == ("default_tenant", "default_database")
    col = c.create_collection("abc", embedding_function=None)
    assert (col.tenant, col.database) == ("default_tenant", "default_database")


def test_create_and_get_tenant(store: Store) -> None:
    a = store.admin
    assert a.create_tenant("acme") is None
    assert a.get_tenant("acme") == {"name": "acme"}
    assert a.create_tenant("äöü") is None  # three characters, six bytes
    assert a.get_tenant("äöü") == {"name": "äöü"}
    with _raises(store.errors.InternalError, "Tenant [acme] already exists"):
        a.create_tenant("acme")
    with _raises(store.errors.InternalError, "Tenant [default_tenant] already exists"):
        a.create_tenant("default_tenant")
    for short in ["ab", "", "äö"]:
        with pytest.raises(store.errors.InvalidArgumentError, match="length"):
            a.create_tenant(short)
    for missing in ["nobody", "ab", ""]:
        with _raises(store.errors.NotFoundError, "Tenant [%s] not found" % missing):
            a.get_tenant(missing)
    # A new tenant has no database, not even default_database.
    assert list(a.list_databases(tenant="acme")) == []
    with _raises(store.errors.NotFoundError, "Database [default_database] not found. Are you sure it exists?"):
        store.client(tenant="acme")


# ---------------------------------------------------------------- databases


def test_create_and_get_database(store: Store) -> None:
    a = store.admin
    a.create_tenant("acme")
    assert a.create_database("sales", tenant="acme") is None
    got = a.get_database("sales", tenant="acme")
    assert set(got) == {"id", "name", "tenant"} and (got["name"], got["tenant"]) == ("sales", "acme")
    assert isinstance(got["id"], uuid.UUID) and got["id"] != ZERO
    assert a.get_database("sales", tenant="acme") == got  # the id is kept
    a.create_database("sales")  # the same name in another tenant
    assert a.get_database("sales")["id"] not in (got["id"], ZERO)
    with _raises(store.errors.InternalError, "Database [sales] already exists"):
        a.create_database("sales", tenant="acme")
    with _raises(store.errors.InternalError, "Database [default_database] already exists"):
        a.create_database("default_database")
    a.create_database("äö")  # a database name counts bytes: four
    for short in ["ab", "", "ä"]:
        with _raises(store.errors.InvalidArgumentError, SHORT):
            a.create_database(short)
        with _raises(store.errors.InvalidArgumentError, SHORT):
            a.get_database(short)
    with _raises(store.errors.NotFoundError, "Database [nothere] not found. Are you sure it exists?"):
        a.get_database("nothere")
    with _raises(store.errors.NotFoundError, "Database [sales] not found. Are you sure it exists?"):
        a.get_database("sales", tenant="nobody")


def test_create_database_in_missing_tenant(store: Store) -> None:
    if store.name == "pysvdb":
        with _raises(store.errors.NotFoundError, "Tenant [nobody] not found"):
            store.admin.create_database("orphan", tenant="nobody")
        assert list(store.admin.list_databases(tenant="nobody")) == []
    else:  # ChromaDB's local store makes a database of a tenant that does not exist
        store.admin.create_database("orphan", tenant="nobody")
        assert _names(store.admin.list_databases(tenant="nobody")) == ["orphan"]


def test_list_databases(store: Store) -> None:
    a = store.admin
    for name in ["zzz", "bbb", "Aaa"]:
        a.create_database(name)
    everything = ["Aaa", "bbb", "default_database", "zzz"]  # by name, bytewise
    assert _names(a.list_databases()) == everything
    assert _names(a.list_databases(limit=2, offset=1)) == everything[1:3]
    assert _names(a.list_databases(limit=10)) == everything
    assert _names(a.list_databases(offset=3)) == everything[3:]
    assert _names(a.list_databases(limit=True)) == everything[:1]
    assert list(a.list_databases(limit=0)) == []
    assert list(a.list_databases(offset=4)) == []
    assert list(a.list_databases(offset=100)) == []
    assert list(a.list_databases(tenant="nobody")) == []
    for item in a.list_databases():
        assert item["tenant"] == "default_tenant" and item == a.get_database(item["name"])
    for kw in [{"limit": -1}, {"offset": -1}]:
        with pytest.raises(OverflowError):
            a.list_databases(**kw)
    with pytest.raises(OverflowError):
        a.list_databases(limit=2**70)
    for kw in [{"limit": 1.5}, {"offset": "1"}]:
        with pytest.raises(TypeError):
            a.list_databases(**kw)


def test_names_must_be_strings(store: Store) -> None:
    a = store.admin
    with pytest.raises(TypeError):
        a.create_tenant(123)
    with pytest.raises(TypeError):
        a.get_tenant(None)
    with pytest.raises(TypeError):
        a.create_database(b"bytes")
    with pytest.raises(TypeError):
        a.get_database(None)
    with pytest.raises(TypeError):
        a.list_databases(tenant=None)
    with pytest.raises(TypeError):
        a.delete_database(5)


# ---------------------------------------------------------------- clients in a tenant and database


def test_client_of_missing_tenant_or_database(store: Store) -> None:
    store.admin.create_tenant("acme")
    store.admin.create_database("sales", tenant="acme")
    with _raises(store.errors.NotFoundError, "Tenant [nobody] not found"):
        store.client(tenant="nobody", database="sales")
    with _raises(store.errors.NotFoundError, "Tenant [ab] not found"):
        store.client(tenant="ab")
    with _raises(store.errors.NotFoundError, "Database [nothere] not found. Are you sure it exists?"):
        store.client(tenant="acme", database="nothere")
    with _raises(store.errors.NotFoundError, "Database [sales] not found. Are you sure it exists?"):
        store.client(database="sales")  # it is acme's
    with _raises(store.errors.InvalidArgumentError, SHORT):
        store.client(tenant="acme", database="ab")
    c = store.client(tenant="acme", database="sales")
    assert (c.tenant, c.database) == ("acme", "sales")


def test_set_tenant_and_set_database(store: Store) -> None:
    a = store.admin
    a.create_tenant("acme")
    a.create_database("sales", tenant="acme")
    a.create_database("other")
    c = store.client()
    c.create_collection("in-default", embedding_function=None)
    with _raises(store.errors.NotFoundError, "Tenant [nobody] not found"):
        c.set_tenant("nobody")
    with _raises(store.errors.NotFoundError, "Database [default_database] not found. Are you sure it exists?"):
        c.set_tenant("acme")  # database defaults to default_database, which acme lacks
    with _raises(store.errors.NotFoundError, "Database [nothere] not found. Are you sure it exists?"):
        c.set_database("nothere")
    with _raises(store.errors.InvalidArgumentError, SHORT):
        c.set_database("ab")
    assert (c.tenant, c.database) == ("default_tenant", "default_database")  # failures change nothing
    c.set_database("other")
    assert (c.tenant, c.database) == ("default_tenant", "other")
    assert list(c.list_collections()) == [] and c.count_collections() == 0
    in_other = c.create_collection("in-other", embedding_function=None)
    assert (in_other.tenant, in_other.database) == ("default_tenant", "other")
    assert in_other.get_model().database == "other"
    c.set_tenant("acme", database="sales")
    assert (c.tenant, c.database) == ("acme", "sales")
    assert c.count_collections() == 0
    with _raises(store.errors.NotFoundError, "Database [other] not found. Are you sure it exists?"):
        c.set_database("other")  # other is default_tenant's
    c.set_tenant("default_tenant")
    assert [x.name for x in c.list_collections()] == ["in-default"]


def test_same_collection_name_in_two_databases(store: Store) -> None:
    a = store.admin
    a.create_database("second")
    a.create_tenant("acme")
    a.create_database("second", tenant="acme")
    first = store.client()
    second = store.client(database="second")
    third = store.client(tenant="acme", database="second")
    c1 = first.create_collection("docs", metadata={"db": "first"}, embedding_function=None)
    c2 = second.create_collection("docs", metadata={"db": "second"}, embedding_function=None)
    c3 = third.create_collection("docs", metadata={"db": "acme"}, embedding_function=None)
    assert len({c1.id, c2.id, c3.id}) == 3
    c1.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
    c2.add(ids=["c"], embeddings=[[1.0, 1.0, 1.0]])
    assert (c1.count(), c2.count(), c3.count()) == (2, 1, 0)
    assert second.get_collection("docs").metadata == {"db": "second"}
    assert third.get_collection("docs").metadata == {"db": "acme"}
    assert [x.id for x in first.list_collections()] == [c1.id]
    assert [x.id for x in second.list_collections()] == [c2.id]
    assert (c2.tenant, c2.database, c3.tenant, c3.database) == ("default_tenant", "second", "acme", "second")
    # get_collection_by_id looks in the client's database only
    assert second.get_collection_by_id(c2.id).name == "docs"
    with _raises(store.errors.NotFoundError, "Collection [%s] does not exist" % c1.id):
        second.get_collection_by_id(c1.id)
    # each database's names are its own: renames, deletes and get_or_create stay inside
    c2.modify(name="renamed")
    assert first.get_collection("docs").id == c1.id
    assert second.get_or_create_collection("docs", embedding_function=None).id not in (c1.id, c2.id, c3.id)
    first.delete_collection("docs")
    assert sorted(x.name for x in second.list_collections()) == ["docs", "renamed"]  # chromadb: no fixed order
    assert third.get_collection("docs").id == c3.id
    with pytest.raises(store.errors.NotFoundError):
        third.delete_collection("renamed")


# ---------------------------------------------------------------- delete_database


def test_delete_database(store: Store) -> None:
    a = store.admin
    a.create_database("doomed")
    a.create_database("kept")
    doomed = store.client(database="doomed")
    kept = store.client(database="kept")
    col = doomed.create_collection("foo", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 2.0]])
    other = kept.create_collection("foo", embedding_function=None)
    other.add(ids=["b"], embeddings=[[3.0, 4.0]])
    assert a.delete_database("doomed") is None
    with _raises(store.errors.NotFoundError, "Database [doomed] not found. Are you sure it exists?"):
        a.get_database("doomed")
    assert _names(a.list_databases()) == ["default_database", "kept"]
    # a client still set on it finds nothing and cannot create
    with _raises(store.errors.NotFoundError, "Collection [foo] does not exist"):
        doomed.get_collection("foo")
    with _raises(store.errors.NotFoundError, "Collection [foo] does not exist"):
        doomed.delete_collection("foo")
    assert list(doomed.list_collections()) == [] and doomed.count_collections() == 0
    with _raises(store.errors.InvalidArgumentError, "Database [doomed] does not exist"):
        doomed.create_collection("bar", embedding_function=None)
    with _raises(store.errors.InvalidArgumentError, "Database [doomed] does not exist"):
        doomed.get_or_create_collection("bar", embedding_function=None)
    # its old collection objects are gone
    with pytest.raises(store.errors.NotFoundError, match=re.escape("Collection [%s] does not exist." % col.id)):
        col.upsert(ids=["x"], embeddings=[[0.0, 0.0]])
    with _raises(store.errors.NotFoundError, "Collection [%s] does not exist." % col.id):
        col.count()
    # other databases are untouched
    assert kept.get_collection("foo").id == other.id and other.count() == 1
    # a database made again under the name is a new, empty one, which the client then works in
    a.create_database("doomed")
    assert list(doomed.list_collections()) == []
    new = doomed.create_collection("foo", embedding_function=None)
    assert new.id != col.id and new.count() == 0
    with pytest.raises(store.errors.NotFoundError):
        col.count()


def test_delete_database_errors(store: Store) -> None:
    a = store.admin
    a.create_tenant("acme")
    a.create_database("sales", tenant="acme")
    with _raises(store.errors.NotFoundError, "Database [nothere] not found"):
        a.delete_database("nothere")
    with _raises(store.errors.NotFoundError, "Database [ab] not found"):
        a.delete_database("ab")
    with _raises(store.errors.NotFoundError, "Database [sales] not found"):
        a.delete_database("sales")  # acme's, not default_tenant's
    a.delete_database("sales", tenant="acme")
    with _raises(store.errors.NotFoundError, "Database [sales] not found"):
        a.delete_database("sales", tenant="acme")
    assert a.get_tenant("acme") == {"name": "acme"}  # the tenant stays


def test_delete_default_database(store: Store) -> None:
    c = store.client()
    col = c.create_collection("foo", embedding_function=None)
    store.admin.delete_database("default_database")
    with pytest.raises(store.errors.NotFoundError):
        col.count()
    with _raises(store.errors.NotFoundError, "Database [default_database] not found. Are you sure it exists?"):
        store.client()
    with _raises(store.errors.NotFoundError, "Database [default_database] not found. Are you sure it exists?"):
        c.set_database("default_database")
    store.admin.create_database("default_database")
    assert store.admin.get_database("default_database")["id"] != ZERO  # a new database
    assert store.client().count_collections() == 0


def test_persistence_across_reopen(store: Store) -> None:
    a = store.admin
    a.create_tenant("acme")
    a.create_database("sales", tenant="acme")
    a.create_database("gone")
    sales_id = a.get_database("sales", tenant="acme")["id"]
    c = store.client(tenant="acme", database="sales")
    col = c.create_collection("docs", metadata={"k": 1}, embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["x", "y"])
    store.client().create_collection("docs", embedding_function=None)
    a.delete_database("gone")
    cid = col.id
    c.clear_system_cache()  # both libraries: the next clients open the directory afresh
    store.opened.clear()
    a = store.mod.AdminClient(store.mod.Settings(is_persistent=True, persist_directory=store.path))
    store.opened.append(a)
    assert a.get_tenant("acme") == {"name": "acme"}
    assert a.get_database("sales", tenant="acme")["id"] == sales_id
    assert _names(a.list_databases()) == ["default_database"]
    c = store.client(tenant="acme", database="sales")
    got = c.get_collection("docs", embedding_function=None)
    assert (got.id, got.metadata, got.count()) == (cid, {"k": 1}, 2)
    assert got.get(ids=["b"])["documents"] == ["y"]
    assert store.client().get_collection("docs").id != cid


# ---------------------------------------------------------------- pysvdb alone


def test_delete_database_removes_collection_directories(pstore: Store) -> None:
    a = pstore.admin
    a.create_database("doomed")
    a.create_database("kept")
    doomed = pstore.client(database="doomed")
    ids = []
    for name in ["one", "two"]:
        col = doomed.create_collection(name, embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0]])
        ids.append(str(col.id))
    kept = pstore.client(database="kept").create_collection("one", embedding_function=None)
    kept.add(ids=["a"], embeddings=[[1.0]])
    for cid in ids + [str(kept.id)]:
        assert os.path.isdir(os.path.join(pstore.path, cid))
    a.delete_database("doomed")
    for cid in ids:
        assert not os.path.exists(os.path.join(pstore.path, cid))
    assert os.path.isdir(os.path.join(pstore.path, str(kept.id))) and kept.count() == 1


def test_delete_database_waits_for_writers(pstore: Store) -> None:
    pstore.admin.create_database("busy")
    col = pstore.client(database="busy").create_collection("www", embedding_function=None)
    col.add(ids=["first"], embeddings=[[1.0, 2.0]])
    outcome: List[BaseException] = []
    started = threading.Event()

    def write() -> None:
        i = 0
        try:
            while True:
                ids = ["id%d-%d" % (i, j) for j in range(50)]
                col.add(ids=ids, embeddings=[[float(i), float(j)] for j in range(50)])
                i += 1
                started.set()
        except BaseException as e:  # the write after the delete: NotFoundError, nothing else
            outcome.append(e)
            started.set()

    t = threading.Thread(target=write)
    t.start()
    assert started.wait(30)
    pstore.admin.delete_database("busy")
    t.join(30)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], pysvdb.errors.NotFoundError), outcome
    assert not os.path.exists(os.path.join(pstore.path, str(col.id)))


def test_reset_clears_every_tenant_and_database(tmp_path: Path) -> None:
    """As ChromaDB's reset (its own test_list_databases relies on it): every
    collection, database and tenant goes; the default tenant and its empty
    default database (id all zeros) remain, on disk too."""
    path = str(tmp_path / "db")
    settings = pysvdb.Settings(is_persistent=True, persist_directory=path, allow_reset=True)
    with pysvdb.AdminClient(settings) as a:
        a.create_tenant("acme")
        a.create_database("sales", tenant="acme")
        a.create_database("extra")
        a.create_tenant("other")
        a.create_database("untouched", tenant="other")
        with pysvdb.PersistentClient(path, settings=settings, tenant="acme", database="sales") as c:
            col = c.create_collection("docs", embedding_function=None)
            col.add(ids=["a"], embeddings=[[1.0, 2.0]])
            c.set_tenant("default_tenant")
            kept = c.create_collection("docs", embedding_function=None)
            kept.add(ids=["b"], embeddings=[[1.0, 2.0]])
            dirs = [os.path.join(path, str(x.id)) for x in (col, kept)]
            assert all(os.path.isdir(d) for d in dirs)
            assert c.reset() is True
            for old in (col, kept):
                with pytest.raises(pysvdb.errors.NotFoundError):
                    old.count()
            assert not any(os.path.exists(d) for d in dirs)
            assert c.count_collections() == 0
            for t in ("acme", "other"):
                with pytest.raises(pysvdb.errors.NotFoundError):
                    a.get_tenant(t)
                assert list(a.list_databases(tenant=t)) == []
            assert list(a.list_databases()) == [{"id": ZERO, "name": "default_database", "tenant": "default_tenant"}]
            a.create_tenant("acme")  # the names are free again
            a.delete_database("default_database")
            assert c.reset() is True  # makes default_database again, with its all-zeros id
            assert list(a.list_databases()) == [{"id": ZERO, "name": "default_database", "tenant": "default_tenant"}]
            c.create_collection("again", embedding_function=None)
    with pysvdb.PersistentClient(path, settings=settings) as c:  # the reset state persisted
        assert [x.name for x in c.list_collections()] == ["again"]
    with pysvdb.AdminClient(settings) as a:
        with pytest.raises(pysvdb.errors.NotFoundError):
            a.get_tenant("other")


def test_reset_needs_allow_reset(tmp_path: Path) -> None:
    with pysvdb.PersistentClient(str(tmp_path / "db")) as c:
        c.create_collection("docs", embedding_function=None)
        with pytest.raises(pysvdb.errors.AuthorizationError):
            c.reset()
        assert c.count_collections() == 1


def test_admin_client_lifecycle(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    a = pysvdb.AdminClient(pysvdb.Settings(is_persistent=True, persist_directory=path))
    a.create_database("shared")
    with pysvdb.PersistentClient(path, database="shared") as c:  # the same store
        assert c._engine is a._engine
        c.create_collection("abc", embedding_function=None)
    a.close()
    a.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        a.list_databases()
    with pysvdb.AdminClient(pysvdb.Settings(is_persistent=True, persist_directory=path)) as b:
        assert _names(b.list_databases()) == ["default_database", "shared"]
    with pytest.raises(TypeError):
        pysvdb.AdminClient("not settings")  # type: ignore[arg-type]
    assert pysvdb.AdminClient is pysvdb.chroma.AdminClient


def test_names_with_nul_are_refused(pstore: Store) -> None:
    with pytest.raises(pysvdb.errors.InvalidArgumentError, match="NUL"):
        pstore.admin.create_tenant("abc\0def")
    with pytest.raises(pysvdb.errors.InvalidArgumentError, match="NUL"):
        pstore.admin.create_database("abc\0def")
    with pytest.raises(pysvdb.errors.InvalidArgumentError, match="NUL"):
        pstore.client(database="default_database\0x")
    assert _names(pstore.admin.list_databases()) == ["default_database"]


def test_ephemeral_store(tmp_path: Path) -> None:
    with pysvdb.AdminClient() as a:  # default Settings: the ephemeral store, as in ChromaDB
        a.create_tenant("acme")
        a.create_database("sales", tenant="acme")
        with pysvdb.EphemeralClient(tenant="acme", database="sales") as c, pysvdb.EphemeralClient() as d:
            assert c._engine is a._engine is d._engine
            x = c.create_collection("docs", embedding_function=None)
            y = d.create_collection("docs", embedding_function=None)
            x.add(ids=["a"], embeddings=[[1.0]])
            assert x.id != y.id and (x.count(), y.count()) == (1, 0)
            assert (x.tenant, x.database) == ("acme", "sales")
            a.delete_database("sales", tenant="acme")
            with pytest.raises(pysvdb.errors.NotFoundError):
                x.count()
            assert d.get_collection("docs").id == y.id
        with pytest.raises(pysvdb.errors.NotFoundError, match="Tenant"):
            pysvdb.EphemeralClient(tenant="nobody")
