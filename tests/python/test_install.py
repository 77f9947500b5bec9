"""Install from a clean virtual environment, the way a user would.

Marked `install` (select with `-m install`, skip with `-m "not install"`).
Creates a venv in a temporary directory, runs `pip install <repo root>`
(building libsvdb with CMake through scikit-build-core), then imports pysvdb
in that venv from a directory outside the repository and runs a tiny
add/search, and the demo. Takes a minute or so; pip needs to reach an index
(or a local wheelhouse) for scikit-build-core, cffi and numpy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.install

SMOKE = """
import os, sys, tempfile
import pysvdb
here = os.path.dirname(pysvdb.__file__)
assert here.startswith(sys.prefix), (here, sys.prefix)          # the installed copy
assert os.path.dirname(pysvdb.library_path) == here, pysvdb.library_path  # its bundled library
with pysvdb.SvDBPython(os.path.join(tempfile.mkdtemp(), "c")) as db:
    db.add(["a", "b"], [[0.0, 1.0], [1.0, 0.0]], [{"x": 1}, None])
    hits = db.search([0.1, 0.9], k=2)
    assert [h[0] for h in hits] == ["a", "b"], hits
    assert db.get("a") == '{"x": 1}'
print("OK", pysvdb.library_path)
"""


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not running from the source tree")
    root = tmp_path_factory.mktemp("venv")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k not in ("SVDB_LIBRARY", "PYTHONPATH", "PYTHONHOME")}
    r = subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(REPO)], cwd=str(root), env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "pip install failed:\n" + r.stdout[-4000:] + r.stderr[-4000:]
    return py


def run_in(py: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SVDB_LIBRARY", "PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(py), *args], cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


def test_import_and_search_in_clean_venv(installed_venv: Path, tmp_path: Path) -> None:
    r = run_in(installed_venv, tmp_path, "-c", textwrap.dedent(SMOKE))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK ")


def test_wheel_contents(installed_venv: Path, tmp_path: Path) -> None:
    code = "import pysvdb, os; print(sorted(os.listdir(os.path.dirname(pysvdb.__file__))))"
    r = run_in(installed_venv, tmp_path, "-c", code)
    assert r.returncode == 0, r.stderr
    files = eval(r.stdout)
    assert "py.typed" in files and "_cdef.py" in files
    assert any(f.startswith("libsvdb.so") or f.endswith((".dylib", ".dll")) for f in files), files
    # Nothing but the library and the package: no tests, benchmarks or headers.
    assert not [f for f in files if f.endswith((".h", ".a", ".c"))], files


def test_demo_runs_in_clean_venv(installed_venv: Path, tmp_path: Path) -> None:
    r = run_in(installed_venv, tmp_path, str(REPO / "examples" / "python_demo.py"))
    assert r.returncode == 0, r.stderr
    assert "done; removed" in r.stdout
    assert not list(tmp_path.iterdir())  # it cleaned up after itself
