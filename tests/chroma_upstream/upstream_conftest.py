"""Fixtures for ChromaDB's own tests, replacing chromadb/test/conftest.py's.

run.py copies this file, unchanged, as conftest.py into the run directory
next to the copied chromadb test files. Its fixtures (``system``, ``client``,
``client_factories``, ``sqlite_persistent``, ``database_name``) build pysvdb
clients (backend "pysvdb") or chromadb's in-process clients (backend
"chromadb", to tell chromadb's own failures from ours); every client is
local: an ephemeral store and a persistent one in a fresh directory per test.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Generator, List

import hypothesis
import pytest

HERE = Path(os.environ["SVDB_UPSTREAM_DIR"])
sys.path.insert(0, str(HERE))

# chromadb's conftest module, imported by many tests for helpers, loads its own
# hypothesis profile on import: import it first, so ours below wins.
import chromadb.test.conftest as chroma_conftest  # noqa: E402
import chromadb.config  # noqa: E402
from chromadb.api.client import Client as ChromaClient  # noqa: E402
from chromadb.api.shared_system_client import SharedSystemClient  # noqa: E402

import pysvdb_shim as shim  # noqa: E402


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("svdb_upstream_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


runner = _load_runner()
BACKEND = os.environ.get("SVDB_UPSTREAM_BACKEND", "pysvdb")
if BACKEND == "pysvdb":
    import pysvdb

runner.register_hypothesis_profiles(hypothesis)
hypothesis.settings.load_profile(os.environ.get("SVDB_UPSTREAM_PROFILE", "svdb-ci"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dual_database: run test with both databases")
    config.addinivalue_line("markers", "test_with_multi_region: run test with MCMR database")


def pytest_report_header(config: pytest.Config) -> str:
    where = pysvdb.__file__ if BACKEND == "pysvdb" else "-"
    return "backend %s (pysvdb from %s), hypothesis profile %s" % (BACKEND, where, hypothesis.settings._current_profile)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As chromadb's conftest, without multi-region (a cluster feature).
    if "database_name" in metafunc.fixturenames:
        metafunc.parametrize(
            "database_name", [pytest.param(chroma_conftest.DEFAULT_DATABASE, id="classic")], indirect=True
        )


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if BACKEND == "pysvdb":
        modules = {id(m): m for m in (getattr(i, "module", None) for i in items) if m is not None}
        modules.update({id(m): m for n, m in list(sys.modules.items()) if n.startswith("chromadb.test.") and m})
        for mod in modules.values():
            shim.patch_module(mod)
        shim.install_client_attributes()
    apply_known = BACKEND == "pysvdb" and os.environ.get("SVDB_UPSTREAM_XFAIL", "1") == "1"
    for item in items:
        for pattern, reason in runner.SKIPS.items():
            if fnmatchcase(item.nodeid, pattern):
                item.add_marker(pytest.mark.skip(reason=reason))
                break
        else:
            if apply_known and item.nodeid in runner.KNOWN_TEARDOWN_FAILURES:
                reason = "known pysvdb failure in fixture teardown, FAILURES.md: " + runner.KNOWN_TEARDOWN_FAILURES[item.nodeid]
                item.add_marker(pytest.mark.skip(reason=reason))
            elif apply_known and item.nodeid in runner.KNOWN_FAILURES:
                reason = "known pysvdb failure, FAILURES.md: " + runner.KNOWN_FAILURES[item.nodeid]
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


# ------------------------------------------------------------------ systems


def _chroma_settings(persistent: bool, directory: Path) -> Any:
    return chromadb.config.Settings(
        chroma_api_impl="chromadb.api.rust.RustBindingsAPI",
        chroma_sysdb_impl="chromadb.db.impl.sqlite.SqliteDB",
        chroma_producer_impl="chromadb.db.impl.sqlite.SqliteDB",
        chroma_consumer_impl="chromadb.db.impl.sqlite.SqliteDB",
        chroma_segment_manager_impl="chromadb.segment.impl.manager.local.LocalSegmentManager",
        is_persistent=persistent,
        allow_reset=True,
        persist_directory=str(directory) if persistent else "",
    )


def _make_system(persistent: bool, directory: Path) -> Generator[Any, None, None]:
    if BACKEND == "chromadb":
        system = chromadb.config.System(_chroma_settings(persistent, directory))
        system.start()
        yield system
        system.stop()
        SharedSystemClient.clear_system_cache()
        return
    system = shim.System(pysvdb.Settings(allow_reset=True, is_persistent=persistent, persist_directory=str(directory)))
    if not persistent:
        # The ephemeral store is one per process: empty what an earlier test left.
        with pysvdb.EphemeralClient(pysvdb.Settings(allow_reset=True)) as c:
            c.reset()
    yield system
    system.stop()


@pytest.fixture(params=["ephemeral", "persistent"])
def system(request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Any, None, None]:
    yield from _make_system(request.param == "persistent", tmp_path / "db")


@pytest.fixture
def sqlite_persistent(tmp_path: Path) -> Generator[Any, None, None]:
    yield from _make_system(True, tmp_path / "db")


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(system: Any, database_name: str) -> Generator[Any, None, None]:
    if BACKEND == "chromadb":
        system.reset_state()
        c = ChromaClient.from_system(system, database=database_name)
        yield c
        c.clear_system_cache()
        return
    c = shim.ClientCreator.from_system(system, database=database_name)
    yield c
    c.close()


class PysvdbClientFactories:
    """chromadb.test.conftest.ClientFactories for pysvdb: clients of the fixture's store."""

    def __init__(self, system: Any) -> None:
        self._system = system
        self._created_clients: List[Any] = []

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("settings") is None:
            kwargs["settings"] = self._system.settings
        c = shim.ClientCreator(*args, **kwargs)
        self._created_clients.append(c)
        return c

    def create_client_from_system(self) -> Any:
        c = shim.ClientCreator.from_system(self._system)
        self._created_clients.append(c)
        return c

    def create_admin_client(self, *args: Any, **kwargs: Any) -> Any:
        c = shim.AdminClient(*args, **kwargs)
        self._created_clients.append(c)
        return c

    def create_admin_client_from_system(self) -> Any:
        c = shim.AdminClient.from_system(self._system)
        self._created_clients.append(c)
        return c


@pytest.fixture
def client_factories(system: Any) -> Generator[Any, None, None]:
    if BACKEND == "chromadb":
        system.reset_state()
        factories = chroma_conftest.ClientFactories(system)
        yield factories
        while factories._created_clients:
            factories._created_clients.pop().clear_system_cache()
        return
    factories = PysvdbClientFactories(system)
    yield factories
    while factories._created_clients:
        factories._created_clients.pop().close()
