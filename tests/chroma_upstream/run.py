#!/usr/bin/env python3
"""Runs ChromaDB's own test suite (the installed chromadb's ``chromadb/test``) against pysvdb.

The selected test files are copied, unchanged, into a temporary directory
together with upstream_conftest.py from here (as conftest.py), which replaces chromadb's fixtures with
ones that hand the tests pysvdb clients (pysvdb_shim.py says how). The tests
still import chromadb for its types, strategies and invariants.

    tests/chroma_upstream/run.py                     # CI: bounded examples, known failures xfail
    tests/chroma_upstream/run.py --profile full      # the long run (docs/chroma.md)
    tests/chroma_upstream/run.py --backend chromadb  # the same tests against chromadb itself
    tests/chroma_upstream/run.py --no-xfail -- -k test_add   # further arguments go to pytest

SKIPS lists every test that cannot apply, with the reason; KNOWN_FAILURES the
pysvdb failures FAILURES.md explains, marked xfail(strict) so CI fails on a
new failure and on a fixed one that is still listed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# The test files run, relative to chromadb/test. Others are in SKIPS_FILES.
FILES: List[str] = [
    "property/test_add.py",
    "property/test_filtering.py",
    "property/test_embeddings.py",
    "property/test_collections.py",
    "property/test_collections_with_database_tenant.py",
    "property/test_persist.py",
    "property/test_restart_persist.py",
    "property/test_fork.py",
    "test_api.py",
    "test_client.py",
    "api/test_collection.py",
    "api/test_count_api.py",
    "api/test_delete_database.py",
    "api/test_fork_count_api.py",
    "api/test_get_database.py",
    "api/test_indexing_status.py",
    "api/test_invalid_update.py",
    "api/test_limit_offset.py",
    "api/test_list_databases.py",
    "api/test_numpy_list_inputs.py",
    "client/test_database_tenant.py",
    "client/test_multiple_clients_concurrency.py",
]

SERVER = "needs a ChromaDB server (HTTP/FastAPI client, auth, SSL)"
ONNX = "needs ChromaDB's default embedding function (downloads the ONNX all-MiniLM-L6-v2 model)"
INTERNALS = "uses chromadb internals (System components, segments, sqlite tables, log)"
CLUSTER = "needs a distributed ChromaDB cluster"
NOT_CLIENT = "tests chromadb's own helpers, not a client"
NO_SEARCH = "ChromaDB's Search/Schema API (collection.search, schema=): pysvdb does not implement it (docs/chroma.md, Known differences)"

# Files not run at all (relative to chromadb/test), with the reason.
SKIPS_FILES: Dict[str, str] = {
    "auth/*": SERVER,
    "client/test_cloud_client.py": SERVER,
    "client/test_create_http_client.py": SERVER,
    "client/test_database_tenant_auth.py": SERVER,
    "property/test_client_url.py": SERVER,
    "test_cli.py": SERVER,
    "ef/*": "embedding functions of model providers: ONNX download or network services, no client",
    "distributed/*": CLUSTER,
    "stress/*": CLUSTER,
    "property/test_add_gc.py": CLUSTER,
    "property/test_add_mcmr.py": CLUSTER,
    "property/test_collections_with_database_tenant_overwrite.py": INTERNALS + " (ServerAPI, System)",
    "property/test_cross_version_persist.py": INTERNALS + "; also pip-installs old chromadb versions",
    "property/test_base64_conversion.py": NOT_CLIENT,
    "property/test_schema.py": NO_SEARCH,
    "api/test_schema.py": NO_SEARCH,
    "api/test_schema_e2e.py": NO_SEARCH,
    "api/test_search_api.py": NO_SEARCH,
    "api/test_shared_system_client.py": INTERNALS + " (SharedSystemClient)",
    "api/test_types.py": NOT_CLIENT,
    "configurations/*": INTERNALS + " (collection configuration internals, SPANN)",
    "data_loader/*": NOT_CLIENT,
    "db/*": INTERNALS,
    "segment/*": INTERNALS,
    "test_chroma.py": INTERNALS + " (System, Settings dependencies)",
    "test_config.py": INTERNALS + " (System, Settings dependencies)",
    "test_multithreaded.py": INTERNALS + " (System, ServerAPI)",
    "utils/*": NOT_CLIENT,
}

# Tests of the files run that cannot apply: nodeid patterns (fnmatch) -> reason.
SKIPS: Dict[str, str] = {
    "test_api.py::test_error_includes_trace_id*": SERVER,
    "test_api.py::test_ssl_self_signed*": SERVER,
    "test_api.py::test_pre_flight_checks*": SERVER,
    "test_api.py::test_default_embedding*": ONNX,
    "test_api.py::test_persist_index_loading[*": ONNX + " (adds documents without an embedding function)",
    "test_api.py::test_persist[*": ONNX + " (adds documents without an embedding function)",
    "test_client.py::test_http_client*": SERVER,
    "test_client.py::test_fastapi_uses_http_limits_from_settings*": SERVER,
    "property/test_persist.py::test_sync_threshold*": INTERNALS + " (LocalSegmentManager, hnswlib metadata file)",
    "api/test_delete_database.py::test_collection_was_removed*": INTERNALS + " (SqliteDB tables)",
    "property/test_persist.py::test_delete_less_than_k*": INTERNALS
    + " (calls the log_size_below_max invariant directly: ChromaDB's SQLite log via client._system)",
    "property/test_persist.py::test_batch_size_less_than_sync_with_duplicate_adds_results_in_skipped_seq_ids*": INTERNALS
    + " (calls the log_size_below_max invariant directly: ChromaDB's SQLite log via client._system)",
    "test_client.py::test_*_client_close*": INTERNALS + " (client._system._running); also " + ONNX,
    "test_client.py::test_*_client_context_manager*": INTERNALS + " (client._system._running); also " + ONNX,
    "test_client.py::test_client_close_idempotent*": ONNX + " (adds documents without an embedding function)",
    "test_api.py::test_collection_query_with_invalid_collection_throws*": ONNX + " (query_texts; ChromaDB embeds first)",
    "test_api.py::test_collection_update_with_invalid_collection_throws*": ONNX + " (documents; ChromaDB embeds first)",
    "test_api.py::test_persist_index_loading_params*": ONNX + " (adds documents without an embedding function)",
}


def register_hypothesis_profiles(hypothesis: Any) -> None:
    """svdb-ci: few examples, fixed seeds (a failure is found in every run or in
    none, so strict xfail is stable); svdb-full: chromadb's "normal" preset."""
    base = dict(
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.normal,
        database=None,
    )
    examples = int(os.environ.get("SVDB_UPSTREAM_MAX_EXAMPLES", "0"))
    steps = int(os.environ.get("SVDB_UPSTREAM_STEPS", "0"))
    # No shrinking in CI: a failing example is reported as found, at once
    # (shrinking a failing state machine takes minutes).
    ci_phases = [p for p in hypothesis.Phase if p not in (hypothesis.Phase.shrink, hypothesis.Phase.explain)]
    hypothesis.settings.register_profile(
        "svdb-ci",
        max_examples=examples or 5,
        stateful_step_count=steps or 10,
        derandomize=True,
        phases=ci_phases,
        **base,
    )
    hypothesis.settings.register_profile(
        "svdb-full", max_examples=examples or 100, stateful_step_count=steps or 50, **base
    )


# Known pysvdb failures (nodeid -> FAILURES.md entry): xfail(strict) in CI.
KNOWN_FAILURES: Dict[str, str] = {}  # none: every test that applies passes

# Known pysvdb failures in fixture teardown (nodeid -> FAILURES.md entry):
# skipped with the reason in CI (an error in teardown cannot be xfail).
KNOWN_TEARDOWN_FAILURES: Dict[str, str] = {}


def chromadb_test_dir() -> Path:
    spec = importlib.util.find_spec("chromadb.test")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("chromadb (with its test package) is not installed: pip install chromadb")
    return Path(list(spec.submodule_search_locations)[0])


def skipped_file(rel: str) -> str:
    for pattern, reason in SKIPS_FILES.items():
        if fnmatchcase(rel, pattern):
            return reason
    return ""


def assemble(run_dir: Path) -> None:
    src = chromadb_test_dir()
    for rel in FILES:
        if skipped_file(rel):
            raise SystemExit("%s is both in FILES and SKIPS_FILES" % rel)
        dest = run_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, dest)
    shutil.copyfile(HERE / "upstream_conftest.py", run_dir / "conftest.py")
    # The repository's pytest settings (testpaths) must not apply here.
    (run_dir / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    ignore::DeprecationWarning\n")


def pysvdb_path_entry() -> str:
    """The source tree when SVDB_LIBRARY names a build or pysvdb is not installed
    (as tests/python/conftest.py decides), else nothing: the installed package."""
    if os.environ.get("SVDB_LIBRARY"):
        return str(REPO)
    try:
        from importlib import metadata

        metadata.distribution("pysvdb")
        return ""
    except Exception:
        return str(REPO)


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["pysvdb", "chromadb"], default="pysvdb")
    ap.add_argument("--profile", choices=["ci", "full"], default="ci")
    ap.add_argument("--max-examples", type=int, default=0, help="override the profile's max_examples")
    ap.add_argument("--steps", type=int, default=0, help="override the profile's stateful_step_count")
    ap.add_argument("--no-xfail", action="store_true", help="report the known failures as failures")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    args = ap.parse_args(argv)

    run_dir = Path(tempfile.mkdtemp(prefix="chroma-upstream-"))
    try:
        assemble(run_dir)
        tmp = run_dir / "tmp"
        tmp.mkdir()
        env = dict(os.environ)
        env.update(
            SVDB_UPSTREAM_DIR=str(HERE),
            SVDB_UPSTREAM_BACKEND=args.backend,
            SVDB_UPSTREAM_PROFILE="svdb-" + args.profile,
            SVDB_UPSTREAM_MAX_EXAMPLES=str(args.max_examples),
            SVDB_UPSTREAM_STEPS=str(args.steps),
            SVDB_UPSTREAM_XFAIL="0" if args.no_xfail else "1",
            # chromadb's tests then expect its local Rust bindings, the
            # in-process ChromaDB a PersistentClient is (no SPANN).
            CHROMA_RUST_BINDINGS_TEST_ONLY="1",
            ANONYMIZED_TELEMETRY="False",
            # Tests that use tempfile.gettempdir() + a fixed name get a directory of this run.
            TMPDIR=str(tmp),
        )
        entry = pysvdb_path_entry() if args.backend == "pysvdb" else ""
        if entry:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (entry, env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEX", *args.pytest_args]
        print("== run directory %s, backend %s, profile %s" % (run_dir, args.backend, args.profile), flush=True)
        return subprocess.call(cmd, cwd=run_dir, env=env)
    finally:
        if args.keep:
            print("== kept %s" % run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
