"""Shared fixtures, and the choice of which pysvdb the tests import.

CI runs ``pip install .`` and then ``pytest`` from the repository root, and
the tests must exercise that installed package (with its bundled library),
not the source tree's pysvdb/ directory, which has no library. ``python -m
pytest`` puts the current directory first on sys.path, so when an installed
pysvdb exists the repository root is taken off sys.path here.

Development without installing: ``SVDB_LIBRARY=build-py/libsvdb.so pytest``
imports the source tree and loads that build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]


def _is_repo(entry: str) -> bool:
    try:
        return Path(entry or os.getcwd()).resolve() == REPO
    except OSError:
        return False


def _installed() -> bool:
    try:
        from importlib import metadata

        metadata.distribution("pysvdb")
        return True
    except Exception:
        return False


if os.environ.get("SVDB_LIBRARY") or not _installed():
    if not any(_is_repo(p) for p in sys.path):
        sys.path.insert(0, str(REPO))
else:
    sys.path[:] = [p for p in sys.path if not _is_repo(p)]

import pysvdb  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str:
    try:
        import chromadb

        chroma = "chromadb %s: the ChromaDB compatibility suite runs against it too" % chromadb.__version__
    except Exception:
        chroma = "chromadb not installed: the ChromaDB compatibility suite runs against pysvdb only"
    return "pysvdb: %s, library %s (%s, %s)\n%s" % (
        os.path.dirname(pysvdb.__file__),
        pysvdb.library_path,
        pysvdb.library_version(),
        pysvdb.simd_path(),
        chroma,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "coll")


@pytest.fixture
def db(db_path: str) -> Iterator[pysvdb.SvDBPython]:
    d = pysvdb.SvDBPython(db_path)
    yield d
    d.close()
