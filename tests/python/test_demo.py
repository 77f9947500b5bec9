"""examples/python_demo.py runs with the pysvdb under test and cleans up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pysvdb

DEMO = Path(__file__).resolve().parents[2] / "examples" / "python_demo.py"


def test_demo(tmp_path: Path) -> None:
    if not DEMO.is_file():
        pytest.skip("examples/python_demo.py not found")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pysvdb.__file__).resolve().parent.parent)] + sys.path)
    if env.get("SVDB_LIBRARY"):
        env["SVDB_LIBRARY"] = pysvdb.library_path
    r = subprocess.run([sys.executable, str(DEMO)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for method in ("add", "search", "search_batch", "get", "get_vector", "upsert", "delete", "persist", "close"):
        assert method in out, method
    assert "IdExistsError(code -9)" in out and "NotFoundError(code -8)" in out
    assert "done; removed" in out
    tmp_dir = out.rsplit("done; removed", 1)[1].strip()
    assert not os.path.exists(tmp_dir)
    assert not list(tmp_path.iterdir())
