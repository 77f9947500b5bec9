"""Hands ChromaDB's own tests pysvdb clients instead of chromadb's.

The test files are chromadb's, unchanged. They build clients in three ways:
through fixtures (our conftest.py), through ``chromadb.Client(...)`` /
``chromadb.PersistentClient(...)`` and through ``System(settings)`` +
``Client.from_system(system)``. :func:`patch_module` rebinds those names in a
test module's globals to the stand-ins below, which return pysvdb clients,
and rebinds ChromaDB's exception classes to pysvdb.errors' same-named ones
(step 2 of "Switching" in docs/chroma.md). Everything else the tests import
(strategies, invariants, chromadb.api.types) stays chromadb's.
"""

from __future__ import annotations

import importlib
import inspect
import os
import types
from typing import Any, Dict, List

import chromadb
import chromadb.api.client
import chromadb.config
import chromadb.errors

import pysvdb
import pysvdb.errors

DEFAULT_TENANT = chromadb.config.DEFAULT_TENANT
DEFAULT_DATABASE = chromadb.config.DEFAULT_DATABASE


def pysvdb_settings(settings: Any) -> pysvdb.Settings:
    """pysvdb's Settings for a chromadb (or pysvdb) Settings: the keywords the
    test set explicitly, as a user switching the import would pass them."""
    if settings is None:
        return pysvdb.Settings()
    if isinstance(settings, pysvdb.Settings):
        return settings
    return pysvdb.Settings(**{k: getattr(settings, k) for k in settings.model_fields_set})


class System:
    """Stands in for chromadb.config.System: a settings holder whose stop()
    closes the clients made from it, as stopping ChromaDB's system does."""

    def __init__(self, settings: Any) -> None:
        self.settings = pysvdb_settings(settings)
        self._clients: List[Any] = []

    def start(self) -> None:
        pass

    def stop(self) -> None:
        while self._clients:
            self._clients.pop().close()

    def reset_state(self) -> None:
        # ChromaDB empties the whole system; the fixtures give each test a fresh
        # directory or reset the ephemeral store, so nothing is left to do.
        pass

    def instance(self, type_: Any) -> Any:
        raise NotImplementedError("%s is a chromadb internal; pysvdb has none" % getattr(type_, "__name__", type_))


class ClientCreator:
    """Stands in for chromadb.api.client.Client (the class behind chromadb.Client)."""

    def __new__(cls, settings: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> Any:
        return pysvdb.Client(pysvdb_settings(settings), tenant=tenant, database=database)

    @staticmethod
    def from_system(system: System, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> Any:
        client = pysvdb.Client(system.settings, tenant=tenant, database=database)
        system._clients.append(client)
        return client


def _admin_class() -> Any:
    # pysvdb has no AdminClient yet (FAILURES.md): the AttributeError is the test's failure.
    return getattr(pysvdb, "AdminClient")


class AdminClient:
    """Stands in for chromadb.api.client.AdminClient: pysvdb.AdminClient."""

    def __new__(cls, settings: Any = None) -> Any:
        return _admin_class()(pysvdb_settings(settings))

    @staticmethod
    def from_system(system: System) -> Any:
        admin = _admin_class()(system.settings)
        system._clients.append(admin)
        return admin


def _client(settings: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> Any:
    return pysvdb.Client(pysvdb_settings(settings), tenant=tenant, database=database)


def _persistent_client(
    path: Any = "./chroma", settings: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE
) -> Any:
    return pysvdb.PersistentClient(path, pysvdb_settings(settings), tenant=tenant, database=database)


def _ephemeral_client(settings: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> Any:
    return pysvdb.EphemeralClient(pysvdb_settings(settings), tenant=tenant, database=database)


# What `chromadb.X` means inside a patched module.
_CHROMADB_OVERRIDES: Dict[str, Any] = {
    "Client": _client,
    "PersistentClient": _persistent_client,
    "EphemeralClient": _ephemeral_client,
    "AdminClient": AdminClient,
    "errors": pysvdb.errors,
}


class _ChromadbProxy(types.ModuleType):
    """The module `chromadb` as a patched test module sees it: the client
    factories and errors are pysvdb's, every other attribute is chromadb's."""

    def __getattr__(self, name: str) -> Any:
        if name in _CHROMADB_OVERRIDES:
            return _CHROMADB_OVERRIDES[name]
        return getattr(chromadb, name)


CHROMADB_PROXY = _ChromadbProxy("chromadb")


def _not_chromadb_in_process(client: Any) -> bool:
    """chromadb.test.conftest.is_client_in_process gates the checks that read
    an in-process ChromaDB's System (its SQLite log): pysvdb has none."""
    return False


# chromadb's test helpers read private attributes of chromadb's client. Where
# they only choose whether to check chromadb's internals, the stand-in value
# says "not chromadb's": invariants.collection_deleted asks
# isinstance(client._server, SegmentAPI) before reading chromadb's sysdb.
PYSVDB_CLIENT_ATTRIBUTES: Dict[str, Any] = {"_server": None}


def install_client_attributes() -> None:
    for name, value in PYSVDB_CLIENT_ATTRIBUTES.items():
        if not hasattr(pysvdb.ClientAPI, name):
            setattr(pysvdb.ClientAPI, name, value)


_TABLE: Dict[int, Any] = {}


def _replacements() -> Dict[int, Any]:
    """chromadb object (by id) -> its stand-in. Built once, before the first
    patch: patching chromadb.test.conftest rebinds names read here."""
    if not _TABLE:
        _TABLE.update(_build_replacements())
    return _TABLE


def _build_replacements() -> Dict[int, Any]:
    import chromadb.test.conftest as chroma_conftest

    out: Dict[int, Any] = {
        id(chroma_conftest.is_client_in_process): _not_chromadb_in_process,
        id(chromadb): CHROMADB_PROXY,
        id(chromadb.errors): pysvdb.errors,
        id(chromadb.config.System): System,
        id(chromadb.api.client.Client): ClientCreator,
        id(chromadb.api.client.AdminClient): AdminClient,
        id(chromadb.Client): _client,
        id(chromadb.PersistentClient): _persistent_client,
        id(chromadb.EphemeralClient): _ephemeral_client,
    }
    for name, obj in vars(chromadb.errors).items():
        ours = getattr(pysvdb.errors, name, None)
        if inspect.isclass(obj) and issubclass(obj, BaseException) and inspect.isclass(ours):
            out[id(obj)] = ours
    return out


# Module-level functions that tests hand to a multiprocessing child (which
# imports the test module afresh, without our patches): wrapped so the child
# patches its copy first.
CHILD_TARGETS = ("load_and_check",)


class ChildTarget:
    """A picklable stand-in for a test module's function run in a child process."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mod = importlib.import_module(self.module)
        fn = getattr(mod, self.name)
        if isinstance(fn, ChildTarget):
            raise RuntimeError("%s.%s was patched twice" % (self.module, self.name))
        patch_module(mod)
        return fn(*args, **kwargs)


def patch_module(mod: types.ModuleType) -> None:
    """Rebinds, in mod's globals, chromadb's client constructors and errors to pysvdb's."""
    if getattr(mod, "__pysvdb_patched__", False):
        return
    table = _replacements()
    for name, value in list(vars(mod).items()):
        if name.startswith("__"):
            continue
        new = table.get(id(value))
        if new is not None:
            setattr(mod, name, new)
        elif name in CHILD_TARGETS and inspect.isfunction(value) and value.__module__ == mod.__name__:
            setattr(mod, name, ChildTarget(mod.__name__, name))
    mod.__pysvdb_patched__ = True  # type: ignore[attr-defined]

