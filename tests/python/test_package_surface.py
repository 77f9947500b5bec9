"""The package surface: pysvdb.chroma loaded lazily, one exception family,
constants from the C header, the collection handle's one context manager,
and the ChromaDB names added on the way (Settings fields, get_model,
clear_system_cache)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Type

import numpy as np
import pytest

import pysvdb
from pysvdb import _errors, errors
from pysvdb._lib import lib

REPO = Path(__file__).resolve().parents[2]

# What `import pysvdb as chromadb` code used before pysvdb.chroma existed: the
# names of pysvdb.__all__ then (kept here so that none is ever dropped).
NAMES_BEFORE = [
    "SvDBPython", "BatchResult", "GetBatchResult", "Metric", "Durability", "IndexType", "StorageType", "Vector",
    "Matrix", "Metadata", "Where", "Settings", "ClientAPI", "Client", "PersistentClient", "EphemeralClient",
    "Collection", "DefaultEmbeddingFunction", "DEFAULT_TENANT", "DEFAULT_DATABASE", "ID", "IDs", "Document",
    "Documents", "Embedding", "Embeddings", "Metadatas", "CollectionMetadata", "WhereDocument", "Include", "URI",
    "URIs", "GetResult", "QueryResult", "DeleteResult", "EmbeddingFunction", "DataLoader", "errors", "SvDBError",
    "InvalidArgumentError", "InvalidTypeError", "MisuseError", "ClosedError", "OutOfMemoryError", "SvDBIOError",
    "CorruptError", "FormatVersionError", "LockedError", "NotFoundError", "IdExistsError", "DimensionError",
    "NoSpaceError", "TooBigError", "ReadOnlyError", "MetadataError", "DuplicateIdError", "MismatchError",
    "CanceledError", "BusyError", "ABI_VERSION", "MAX_ID_BYTES", "MAX_DIM", "MAX_METADATA_BYTES", "library_path",
    "library_version", "simd_path", "__version__",
]


def _python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ---------------------------------------------------------------- lazy loading


def test_import_pysvdb_does_not_load_chroma() -> None:
    code = "import pysvdb, sys; print(pysvdb.__file__); print(sorted(m for m in sys.modules if 'chroma' in m))"
    file, loaded = _python(code).splitlines()
    assert Path(file).parent == REPO / "pysvdb"  # the worktree's package, not an installed one
    assert loaded == "[]"


def test_chroma_names_load_it_on_first_use() -> None:
    code = (
        "import pysvdb, sys\n"
        "before = 'pysvdb.chroma' in sys.modules\n"
        "c = pysvdb.PersistentClient\n"
        "print(before, 'pysvdb.chroma' in sys.modules, c is sys.modules['pysvdb.chroma.client'].PersistentClient)"
    )
    assert _python(code) == "False True True"
    assert _python("import pysvdb, sys; pysvdb.errors; print('pysvdb.chroma' in sys.modules)") == "True"


def test_every_former_name_resolves_and_is_listed() -> None:
    assert set(NAMES_BEFORE) <= set(pysvdb.__all__)
    listed = dir(pysvdb)
    for name in pysvdb.__all__:
        assert getattr(pysvdb, name) is not None, name
        assert name in listed, name
    assert "chroma" in listed and pysvdb.chroma.Collection is pysvdb.Collection
    assert pysvdb.Settings is pysvdb.chroma.settings.Settings
    assert pysvdb.DEFAULT_TENANT == "default_tenant"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        pysvdb.NoSuchName  # type: ignore[attr-defined]
    assert not hasattr(pysvdb, "_chroma")


def test_old_private_modules_are_gone() -> None:
    for name in ("_chroma.py", "_chroma_types.py"):
        assert not (REPO / "pysvdb" / name).exists()


# ---------------------------------------------------------------- one exception family


def _classes(module: object) -> Dict[str, Type[BaseException]]:
    return {
        n: c for n, c in vars(module).items() if isinstance(c, type) and issubclass(c, BaseException)
    }


def test_errors_alias_is_the_chroma_errors() -> None:
    assert errors.__all__ == pysvdb.chroma.errors.__all__
    for name in errors.__all__:
        assert getattr(errors, name) is getattr(pysvdb.chroma.errors, name)


def test_chroma_errors_relate_to_svdb_errors() -> None:
    E = pysvdb.chroma.errors
    assert issubclass(E.NotFoundError, pysvdb.NotFoundError)
    assert issubclass(E.InvalidArgumentError, pysvdb.InvalidArgumentError)
    for cls in (E.NotFoundError, E.InvalidArgumentError):
        assert issubclass(cls, E.ChromaError) and issubclass(cls, pysvdb.SvDBError)
    assert E.LockedError is pysvdb.LockedError
    # ChromaDB's own classes that name no libsvdb condition stay out of the SvDB family.
    for cls in (E.ChromaError, E.InternalError, E.AuthorizationError, E.UniqueConstraintError, E.DuplicateIDError):
        assert not issubclass(cls, pysvdb.SvDBError)
    assert not issubclass(pysvdb.SvDBError, E.ChromaError)


def test_no_two_unrelated_classes_share_a_name() -> None:
    seen: Dict[str, List[Type[BaseException]]] = {}
    for module in (pysvdb.chroma.errors, errors, pysvdb, _errors):
        for name, cls in _classes(module).items():
            if cls.__module__.startswith("pysvdb"):
                seen.setdefault(name, []).append(cls)
    for name, classes in seen.items():
        for a in classes:
            for b in classes:
                assert issubclass(a, b) or issubclass(b, a), (name, a, b)
    assert len(seen["NotFoundError"]) >= 2  # the check above did compare the two


def test_bridged_error_keeps_both_interfaces() -> None:
    e = pysvdb.chroma.errors.NotFoundError("Collection [x] does not exist")
    assert e.code() == 404 and e.message() == str(e) == "Collection [x] does not exist"
    assert e.name() == "NotFoundError"
    assert pysvdb.NotFoundError.code == lib.SVDB_ENOTFOUND  # the status it stands for
    with pytest.raises(pysvdb.NotFoundError):
        raise e
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is type(e) and str(again) == str(e) and again.code() == 404
    plain = pysvdb.NotFoundError("id 'x' not found", int(lib.SVDB_ENOTFOUND))
    assert plain.message == str(plain) and plain.code == lib.SVDB_ENOTFOUND


def test_missing_collection_caught_as_either_family(tmp_path: Path) -> None:
    with pysvdb.PersistentClient(path=str(tmp_path / "db")) as client:
        for caught in (pysvdb.chroma.errors.NotFoundError, pysvdb.NotFoundError, pysvdb.SvDBError):
            with pytest.raises(caught):
                client.get_collection("nope")
        col = client.create_collection("abc", embedding_function=None)
        with pytest.raises(pysvdb.InvalidArgumentError):
            col.add(ids=["a"], embeddings=[[float("nan")]])


# ---------------------------------------------------------------- constants from the C header


def test_tables_use_the_header_constants() -> None:
    from pysvdb import _db

    assert _db._METRICS == {"l2": lib.SVDB_METRIC_L2, "cosine": lib.SVDB_METRIC_COSINE, "ip": lib.SVDB_METRIC_IP}
    assert _db._INDEXES == {"flat": lib.SVDB_INDEX_FLAT, "hnsw": lib.SVDB_INDEX_HNSW}
    assert _db._STORAGES == {"f32": lib.SVDB_STORAGE_F32, "f16": lib.SVDB_STORAGE_F16, "int8": lib.SVDB_STORAGE_INT8}
    assert _db._DURABILITY == {"persist": lib.SVDB_DURABILITY_PERSIST, "sync": lib.SVDB_DURABILITY_SYNC}
    for name in _errors.__all__:
        cls = getattr(_errors, name)
        if isinstance(cls, type) and cls is not _errors.SvDBError and not issubclass(cls, (TypeError, _errors.ClosedError)):
            assert _errors.error_class(cls.code) is cls, name


def test_no_status_or_enum_literals_in_the_package() -> None:
    """Status codes and metric/index/storage numbers come from lib.SVDB_*."""
    import re

    for path in sorted((REPO / "pysvdb").rglob("*.py")):
        if path.name in ("_cdef.py",):
            continue
        text = path.read_text()
        assert not re.search(r"\bcode = -\d", text), path
        assert not re.search(r'"(l2|cosine|ip|flat|hnsw|f32|f16|int8|persist|sync)": \d', text), path


# ---------------------------------------------------------------- the handle's context manager


def test_use_holds_the_writer_lock_and_translates_errors(tmp_path: Path) -> None:
    from pysvdb.chroma import catalog

    with pysvdb.PersistentClient(path=str(tmp_path / "db")) as client:
        col = client.create_collection("abc", embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        engine = client._engine
        rec = engine.by_name("abc")
        lock = engine.writers[rec.id]
        with engine.use(rec, write=True) as db:
            assert lock.locked() and db.count() == 1
        assert not lock.locked()
        with engine.use(rec) as db:
            assert not lock.locked()
        with pytest.raises(pysvdb.chroma.errors.InvalidArgumentError):  # libsvdb's DimensionError, translated
            with engine.use(rec, write=True) as db:
                db.add(["b"], np.ones((1, 3), dtype=np.float32))
        assert not lock.locked()
        # A delete waits for a write in flight, then the collection is gone for the stale object.
        entered, go = threading.Event(), threading.Event()

        def writer() -> None:
            with engine.use(rec, write=True):
                entered.set()
                go.wait(5)

        t = threading.Thread(target=writer)
        t.start()
        entered.wait(5)
        d = threading.Thread(target=client.delete_collection, args=("abc",))
        d.start()
        d.join(0.2)
        assert d.is_alive()  # waiting for the writer lock
        go.set()
        t.join()
        d.join()
        with pytest.raises(pysvdb.chroma.errors.NotFoundError):
            col.count()
        assert isinstance(engine, catalog.Engine)


# ---------------------------------------------------------------- ChromaDB names added


def test_settings_fields_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = pysvdb.Settings()
    assert s.chroma_server_http_port is None and s.chroma_server_host is None
    assert s.is_persistent is False and s.persist_directory == "./chroma" and s.allow_reset is False
    assert s.chroma_api_impl == "chromadb.api.rust.RustBindingsAPI" and s["anonymized_telemetry"] is True
    monkeypatch.setenv("CHROMA_SERVER_HTTP_PORT", "8123")
    monkeypatch.setenv("ALLOW_RESET", "TRUE")
    monkeypatch.setenv("CHROMA_SERVER_CORS_ALLOW_ORIGINS", '["http://x"]')
    s = pysvdb.Settings(persist_directory="/tmp/x", my_own=3)
    assert s.chroma_server_http_port == 8123 and s.allow_reset is True
    assert s["chroma_server_cors_allow_origins"] == ["http://x"]
    assert s.persist_directory == "/tmp/x" and s["my_own"] == 3
    with pytest.raises(ValueError, match="Missing required config value 'chroma_server_host'"):
        s.require("chroma_server_host")
    with pytest.raises(ValueError, match="pysvdb_durability"):
        pysvdb.Settings(pysvdb_durability="never")
    assert pysvdb.Settings().pysvdb_index_backlog_bytes == 1 << 20
    for bad in (-1, "1", 1.5, None, True):
        with pytest.raises(ValueError, match="pysvdb_index_backlog_bytes"):
            pysvdb.Settings(pysvdb_index_backlog_bytes=bad)
    with pytest.raises(AttributeError):
        s["no_such_setting"]


def test_settings_match_chromadb_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = pytest.importorskip("chromadb.config")
    from pysvdb.chroma.settings import _CHROMA_FIELDS

    for name, _ in _CHROMA_FIELDS:
        monkeypatch.delenv(name.upper(), raising=False)
    ours, theirs = pysvdb.Settings(), config.Settings()
    for name, default in _CHROMA_FIELDS:
        value = getattr(theirs, name)
        assert getattr(ours, name) == (value.value if hasattr(value, "value") else value), name


def test_get_model(tmp_path: Path) -> None:
    with pysvdb.PersistentClient(path=str(tmp_path / "db")) as client:
        col = client.create_collection("abc", metadata={"k": 1}, embedding_function=None)
        m = col.get_model()
        assert isinstance(m, pysvdb.chroma.CollectionModel)
        assert (m.id, m.name, m.metadata, m.dimension) == (col.id, "abc", {"k": 1}, None)
        assert m["name"] == "abc" and m["nope"] is None and m["configuration"] == col.configuration_json
        assert m.configuration_json["hnsw"]["space"] == "l2" and m.configuration_json["embedding_function"] is None
        assert (m.tenant, m.database, m.version, m.log_position, m.serialized_schema) == (
            "default_tenant", "default_database", 0, 0, None
        )
        col.add(ids=["a"], embeddings=[[1.0, 2.0, 3.0]])
        col.modify(name="abd", configuration={"hnsw": {"ef_search": 50}})
        m2 = col._model
        assert (m2.name, m2.dimension, m2.configuration_json["hnsw"]["ef_search"]) == ("abd", 3, 50)
        assert m2 != m and m2 == col.get_model()
        client.delete_collection("abd")
        assert col.get_model().dimension is None


def test_clear_system_cache(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    old = pysvdb.PersistentClient(path=path)
    old.create_collection("abc", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
    with pytest.raises(ValueError, match="different settings"):
        pysvdb.PersistentClient(path=path, settings=pysvdb.Settings(allow_reset=True))
    pysvdb.ClientAPI.clear_system_cache()
    with pytest.raises(ValueError, match="closed"):
        old.list_collections()
    with pysvdb.PersistentClient(path=path, settings=pysvdb.Settings(allow_reset=True)) as new:
        assert new.get_collection("abc").count() == 1  # checkpointed and reopened
        new.clear_system_cache()  # also through an instance, as in ChromaDB
    old.close()  # harmless after the cache was cleared
