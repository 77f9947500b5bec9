"""Finding libsvdb: bundled library, SVDB_LIBRARY, and clear ImportErrors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Optional

import pytest

import pysvdb
from pysvdb import _lib


def run_python(code: str, env_extra: Dict[str, Optional[str]], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if env.get("SVDB_LIBRARY"):
        env["SVDB_LIBRARY"] = pysvdb.library_path  # the same build, whatever the cwd
    for k, v in env_extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    # Import the same pysvdb the tests import.
    pkg_parent = str(Path(pysvdb.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in sys.path if p and p != pkg_parent])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120)


def test_svdb_library_is_honoured(tmp_path: Path) -> None:
    copy = tmp_path / "other" / "libsvdb.so.1"
    copy.parent.mkdir()
    shutil.copy(pysvdb.library_path, copy)
    r = run_python("import pysvdb; print(pysvdb.library_path)", {"SVDB_LIBRARY": str(copy)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)
    # A directory holding the library works too.
    r = run_python("import pysvdb; print(pysvdb.library_path)", {"SVDB_LIBRARY": str(copy.parent)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)


@pytest.mark.parametrize("target", ["missing", "not-a-library", "other-library", "empty-dir"])
def test_bad_svdb_library_is_an_import_error(tmp_path: Path, target: str) -> None:
    if target == "missing":
        path = str(tmp_path / "nope.so")
        want = "does not exist"
    elif target == "not-a-library":
        (tmp_path / "junk.so").write_bytes(b"\x7fELF but not really" * 10)
        path = str(tmp_path / "junk.so")
        want = "cannot load libsvdb"
    elif target == "other-library":
        import ctypes.util

        name = ctypes.util.find_library("m") or ctypes.util.find_library("c")
        if not name:
            pytest.skip("no libm/libc to point at")
        path = name
        want = "lacks svdb_"
    else:
        path = str(tmp_path)
        want = "without libsvdb"
    r = run_python("import pysvdb", {"SVDB_LIBRARY": path}, tmp_path)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and want in r.stderr, r.stderr
    assert "Segmentation" not in r.stderr


def stub_library(tmp_path: Path, abi: int) -> Path:
    """A library exporting every libsvdb symbol, reporting ABI version `abi`."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler")
    src = tmp_path / "stub.c"
    body = ["int svdb_abi_version(void) { return %d; }" % abi]
    body += ["int %s(void) { return 0; }" % f for f in _lib._FUNCTIONS if f != "svdb_abi_version"]
    src.write_text("\n".join(body) + "\n")
    out = tmp_path / "libsvdb.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True, timeout=120)
    return out


def test_abi_mismatch_is_an_import_error(tmp_path: Path) -> None:
    stub = stub_library(tmp_path, 99)
    r = run_python("import pysvdb", {"SVDB_LIBRARY": str(stub)}, tmp_path)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "ABI version 99" in r.stderr and "needs ABI version 1" in r.stderr


def test_bundled_library_found_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SVDB_LIBRARY", raising=False)
    d = tmp_path / "pkg"
    d.mkdir()
    shutil.copy(pysvdb.library_path, d / "libsvdb.so.1")
    other = tmp_path / "installed"
    other.mkdir()
    monkeypatch.setattr(_lib, "_package_dirs", lambda: iter([d]))
    monkeypatch.setattr(_lib, "_installed_distribution_dirs", lambda: iter([other]))
    _, path = _lib._load()
    assert path == str(d / "libsvdb.so.1")


def test_no_library_anywhere_is_a_clear_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SVDB_LIBRARY", raising=False)
    monkeypatch.setattr(_lib, "_package_dirs", lambda: iter([tmp_path]))
    monkeypatch.setattr(_lib, "_installed_distribution_dirs", lambda: iter([]))
    with pytest.raises(ImportError, match="libsvdb was not found.*pip install .*SVDB_LIBRARY"):
        _lib._load()


def test_package_imports_from_outside_the_repo(tmp_path: Path) -> None:
    r = run_python(
        """
        import pysvdb, tempfile, os
        d = tempfile.mkdtemp()
        with pysvdb.SvDBPython(os.path.join(d, "c")) as db:
            db.add(["a", "b"], [[0.0, 1.0], [1.0, 0.0]])
            print(db.search([0.0, 0.9], k=1)[0][0])
        """,
        {},
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "a"
