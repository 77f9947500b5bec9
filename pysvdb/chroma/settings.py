"""``Settings``: the client settings, with ChromaDB's fields and defaults."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Tuple, Union

__all__ = ["Settings", "SettingValue"]

#: A setting's value: ChromaDB's settings are strings, numbers, flags, lists and dicts of strings.
SettingValue = Union[str, int, float, bool, None, List[str], Dict[str, str], Dict[str, List[str]]]

#: How far linking may lag behind a collection's writes by default, in bytes
#: of vectors (libsvdb's index_backlog_bytes): a write returns once at most
#: this much waits to be linked, so a query never scans more than about 1 MiB
#: of rows exactly (4,096 rows of 64 floats, 341 of 768) on top of its graph
#: walk, as ChromaDB's add returns with at most its small brute-force buffer
#: unindexed. Enough rows that linking goes on while the caller prepares its
#: next batch (bench/bench_chroma_ops.py; docs/chroma.md has the trade).
BACKLOG_BYTES = 1 << 20

#: ChromaDB 1.5's settings (chromadb/config.py) that its own code and tests
#: read, with its defaults; each can also come from the environment variable
#: of its name in capitals. pysvdb acts on allow_reset, is_persistent,
#: persist_directory and chroma_api_impl; the others are kept and change nothing.
_CHROMA_FIELDS: Tuple[Tuple[str, SettingValue], ...] = (
    ("environment", ""),
    ("chroma_api_impl", "chromadb.api.rust.RustBindingsAPI"),
    ("chroma_server_nofile", None),
    ("chroma_server_thread_pool_size", 40),
    ("tenant_id", "default"),
    ("topic_namespace", "default"),
    ("chroma_server_host", None),
    ("chroma_server_headers", None),
    ("chroma_server_http_port", None),
    ("chroma_server_ssl_enabled", False),
    ("chroma_server_ssl_verify", None),
    ("chroma_server_api_default_path", "/api/v2"),
    ("chroma_server_cors_allow_origins", []),
    ("chroma_http_keepalive_secs", 40.0),
    ("chroma_http_max_connections", None),
    ("chroma_http_max_keepalive_connections", None),
    ("is_persistent", False),
    ("persist_directory", "./chroma"),
    ("chroma_memory_limit_bytes", 0),
    ("chroma_segment_cache_policy", None),
    ("allow_reset", False),
    ("chroma_auth_token_transport_header", None),
    ("chroma_client_auth_provider", None),
    ("chroma_client_auth_credentials", None),
    ("chroma_server_authn_provider", None),
    ("chroma_server_authn_credentials", None),
    ("chroma_server_authn_credentials_file", None),
    ("chroma_server_authz_provider", None),
    ("chroma_server_authz_config", None),
    ("chroma_server_authz_config_file", None),
    ("chroma_product_telemetry_impl", "chromadb.telemetry.product.posthog.Posthog"),
    ("chroma_telemetry_impl", "chromadb.telemetry.product.posthog.Posthog"),
    ("anonymized_telemetry", True),
    ("chroma_otel_collection_endpoint", ""),
    ("chroma_otel_service_name", "chromadb"),
    ("chroma_otel_collection_headers", {}),
    ("chroma_otel_granularity", None),
    ("migrations", "apply"),
    ("migrations_hash_algorithm", "md5"),
    ("chroma_server_grpc_port", None),
    ("chroma_sysdb_impl", "chromadb.db.impl.sqlite.SqliteDB"),
    ("chroma_producer_impl", "chromadb.db.impl.sqlite.SqliteDB"),
    ("chroma_consumer_impl", "chromadb.db.impl.sqlite.SqliteDB"),
    ("chroma_segment_manager_impl", "chromadb.segment.impl.manager.local.LocalSegmentManager"),
    ("chroma_executor_impl", "chromadb.execution.executor.local.LocalExecutor"),
    ("chroma_query_replication_factor", 2),
    ("chroma_db_impl", None),
)
_DURABILITIES = ("sync", "persist")


def _from_env(name: str, default: SettingValue) -> SettingValue:
    """The environment's value of a setting, converted to its default's type."""
    text = os.environ.get(name.upper(), os.environ.get(name.lower()))
    if text is None:
        return default
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, (list, dict)):
        value: SettingValue = json.loads(text)
        return value
    if isinstance(default, float):
        return float(text)
    if isinstance(default, int) or name.endswith(("_port", "_nofile", "_connections")):
        return int(text) if text.strip() else None
    return text


class Settings:
    """Client settings, as ``chromadb.Settings`` (a plain class, not pydantic).

    ``allow_reset`` (default False) enables :meth:`ClientAPI.reset`;
    ``is_persistent``/``persist_directory`` choose :func:`Client`'s storage;
    ``chroma_api_impl`` must name ChromaDB's local implementation. ChromaDB's
    other settings exist with its defaults and change nothing (pysvdb sends
    no telemetry and serves no HTTP); each field also reads the environment
    variable of its name in capitals. Unknown keywords are kept as attributes.
    ``pysvdb_durability`` is pysvdb's own: ``"sync"`` (default, each write is
    fsynced before it returns, as ChromaDB's SQLite commit) or ``"persist"``
    (writes survive a process crash; fsync at checkpoints and close).
    ``pysvdb_index_backlog_bytes`` is too: how far linking rows into the
    HNSW graph may lag behind ``add``/``upsert``/``update``, in bytes of
    vectors (default 1 MiB: an ``add`` returns once at most that much waits
    to be linked, so queries right after an ingest stay fast); ``0``: no
    bound (``add`` returns as soon as its rows are durable and searchable,
    and queries scan the rows still waiting exactly).
    """

    environment: str
    chroma_api_impl: str
    chroma_server_host: Optional[str]
    chroma_server_http_port: Optional[int]
    chroma_server_ssl_enabled: bool
    chroma_server_headers: Optional[Dict[str, str]]
    is_persistent: bool
    persist_directory: str
    allow_reset: bool
    anonymized_telemetry: bool
    pysvdb_durability: str
    pysvdb_index_backlog_bytes: int

    def __init__(self, **kwargs: SettingValue) -> None:
        for name, default in _CHROMA_FIELDS:
            setattr(self, name, _from_env(name, default))
        self.pysvdb_durability = "sync"
        self.pysvdb_index_backlog_bytes = BACKLOG_BYTES
        for key, value in kwargs.items():
            setattr(self, key, value)
        if self.pysvdb_durability not in _DURABILITIES:
            raise ValueError("pysvdb_durability must be 'sync' or 'persist', not %r" % (self.pysvdb_durability,))
        backlog = self.pysvdb_index_backlog_bytes
        if type(backlog) is not int or backlog < 0:
            raise ValueError("pysvdb_index_backlog_bytes must be an int >= 0, not %r" % (backlog,))

    def __getitem__(self, key: str) -> SettingValue:
        value: SettingValue = getattr(self, key)
        return value

    def require(self, key: str) -> SettingValue:
        val = self[key]
        if val is None:
            raise ValueError("Missing required config value '%s'" % key)
        return val

    def fields(self) -> Mapping[str, SettingValue]:
        """Every setting, by name."""
        return dict(vars(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.fields() == other.fields()

    def __hash__(self) -> int:  # mutable, like ChromaDB's: compared, never hashed
        raise TypeError("Settings objects are unhashable")

    def __repr__(self) -> str:
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.fields().items()))
