"""The manylinux wheel and the sdist (scripts/build_wheel.sh, docs/packaging.md).

The tests marked `install` run the script once per session (sdist, a wheel
built from it, auditwheel repair; about 15 s of compiling), install the
wheels into fresh virtual environments (numpy and cffi come from this
interpreter's site-packages, so nothing is downloaded) and run pysvdb there.

The point of the repair is that the wheel works where the system has no
cJSON or RE2. That is tested by hiding the system's copies: in a private
mount namespace (`unshare -rm`) an empty file is bind-mounted over each of
them, so the dynamic loader finds only a file it cannot load. The same run
must pass with the repaired wheel and fail with the wheel before repair,
which shows that the hiding works. Where unshare is not allowed those two
tests skip; the ldd checks still show where the libraries resolve.

The unmarked tests only read the source tree.
"""

from __future__ import annotations

import ast
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_wheel.sh"
HIDDEN = ("libcjson", "libre2")  # what the repair must bundle


def _source_version() -> str:
    # The file is read, not imported: the pysvdb imported by the tests may be an installed copy.
    m = re.search(r'^__version__ = "([^"]+)"$', (REPO / "pysvdb" / "_version.py").read_text(), re.M)
    assert m, "pysvdb/_version.py has no __version__ line"
    return m.group(1)


# --- the source tree (fast, no build) -------------------------------------


def test_version_is_written_once_and_matches_the_c_library() -> None:
    version = _source_version()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', pyproject, re.M), "pyproject.toml must take the version from pysvdb/_version.py"
    assert not re.search(r"^version\s*=", pyproject, re.M), "pyproject.toml writes a version of its own"
    cmake = re.search(r"project\(svdb VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert cmake and cmake.group(1) == version, "CMakeLists.txt project(VERSION) differs from pysvdb/_version.py"
    header = (REPO / "include" / "svdb.h").read_text()
    parts = [re.search(r"#define SVDB_VERSION_%s (\d+)" % p, header) for p in ("MAJOR", "MINOR", "PATCH")]
    assert all(parts), "include/svdb.h lacks SVDB_VERSION_MAJOR/MINOR/PATCH"
    assert ".".join(m.group(1) for m in parts if m) == version, "include/svdb.h's version differs"
    api = re.search(r'svdb_version\(void\) \{ return "([^"]+)"; \}', (REPO / "lib" / "api.c").read_text())
    assert api and api.group(1) == version, "svdb_version() in lib/api.c differs from pysvdb/_version.py"


def test_package_version_attribute() -> None:
    import pysvdb

    # The imported pysvdb is this tree's, or a copy installed from it (conftest.py).
    assert pysvdb.__version__ == _source_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pysvdb.__version__)


def test_sources_parse_as_python_3_9() -> None:
    # Requires-Python says 3.9: no match statements or other newer syntax, and annotations
    # stay strings (`from __future__ import annotations`), so `X | None` in them is not run.
    for path in sorted((REPO / "pysvdb").rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source, str(path), feature_version=(3, 9))
        if any(isinstance(node, (ast.FunctionDef, ast.AnnAssign)) for node in ast.walk(tree)):
            assert "from __future__ import annotations" in source, path


# --- the built wheels ------------------------------------------------------


class Built(NamedTuple):
    sdist: Path
    raw: Path  # as scikit-build-core made it: linux_x86_64, needs the system's cJSON and RE2
    wheel: Path  # after auditwheel repair


def _clean_env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SVDB_LIBRARY", "PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if not sys.platform.startswith("linux"):
        pytest.skip("auditwheel repairs Linux wheels only")
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(["bash", str(SCRIPT), "-o", str(out), "--no-isolation"], cwd=str(REPO), env=_clean_env(),
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, "build_wheel.sh failed:\n" + r.stdout[-4000:] + r.stderr[-4000:]
    last = r.stdout.strip().splitlines()[-1]
    wheel = Path(last)
    assert wheel.is_file() and wheel.parent == out, "the script's last line is not the wheel: %r" % last
    sdists = list(out.glob("pysvdb-*.tar.gz"))
    raws = list((out / "raw").glob("pysvdb-*.whl"))
    assert len(sdists) == 1 and len(raws) == 1, (sdists, raws)
    return Built(sdists[0], raws[0], wheel)


def _venv(root: Path, wheel: Path) -> Path:
    """A fresh venv (seeing this interpreter's site-packages for the dependencies) with `wheel` installed."""
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    # The venv sees this interpreter's pysvdb too (when there is one), for which pip would
    # install nothing, hence --force-reinstall, and so --no-deps (it would reinstall those too).
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--force-reinstall",
                        "--no-deps", "--quiet", str(wheel)], env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "pip install %s failed:\n%s%s" % (wheel.name, r.stdout[-3000:], r.stderr[-3000:])
    r = subprocess.run([str(py), "-c", DEPS_MET], env=_clean_env(), capture_output=True, text=True)
    assert r.returncode == 0, "the venv does not satisfy pysvdb's requirements:\n" + r.stderr[-2000:]
    return py


# Each Requires-Dist of the installed pysvdb (not the extras) is installed, in a version it allows.
DEPS_MET = """
from importlib.metadata import requires, version
from packaging.requirements import Requirement
for req in map(Requirement, requires("pysvdb") or []):
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        assert req.specifier.contains(version(req.name), prereleases=True), (str(req), version(req.name))
"""


@pytest.fixture(scope="session")
def repaired_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("repaired"), built.wheel)


@pytest.fixture(scope="session")
def raw_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("raw"), built.raw)


# Open, add, search (with an RE2 document filter), close, reopen, search again.
# Prints what it found as JSON, with the cJSON and RE2 files the process mapped.
SMOKE = """
import json, os, sys, tempfile
import pysvdb
path = os.path.join(tempfile.mkdtemp(), "c")
with pysvdb.SvDBPython(path, metric="l2") as db:
    db.add(["a", "b", "c"], [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
           [{"#document": "hello world"}, {"#document": "goodbye"}, None])
    first = [h[0] for h in db.search([0.1, 0.9], k=3)]
    regex = db.ids_where(where_document={"$regex": "^hel+o"})
with pysvdb.SvDBPython(path) as db:
    again = [h[0] for h in db.search([0.1, 0.9], k=3)]
    meta = db.get("a")
    count = db.count()
maps = sorted({line.split()[-1] for line in open("/proc/self/maps")
               if any(n in line for n in ("libcjson", "libre2"))})
print(json.dumps({"first": first, "again": again, "regex": regex, "meta": meta, "count": count,
                  "file": pysvdb.__file__, "prefix": sys.prefix, "library": pysvdb.library_path,
                  "version": pysvdb.__version__, "library_version": pysvdb.library_version(), "maps": maps}))
"""


def _system_copies() -> List[str]:
    """The files the dynamic loader would find for cJSON and RE2 (ld.so.cache and the default directories)."""
    found = set()
    ldconfig = shutil.which("ldconfig") or shutil.which("ldconfig", path="/sbin:/usr/sbin")
    r = subprocess.run([ldconfig, "-p"], capture_output=True, text=True) if ldconfig else None
    for line in r.stdout.splitlines() if r else ():
        if "=>" in line and any(n in line for n in HIDDEN):
            found.add(os.path.realpath(line.split("=>")[-1].strip()))
    for d in ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/lib/x86_64-linux-gnu",
              "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"):
        for name in HIDDEN:
            for p in Path(d).glob(name + "*.so*") if os.path.isdir(d) else ():
                found.add(os.path.realpath(p))
    return sorted(p for p in found if os.path.isfile(p))


def _can_hide() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind /dev/null /dev/null"], capture_output=True)
    return r.returncode == 0


Runner = Callable[[Path, Path], "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def hidden_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """Runs a command with the system's cJSON and RE2 replaced by an empty file."""
    if not _can_hide():
        pytest.skip("unshare -rm with bind mounts is not allowed here (see the ldd tests instead)")
    copies = _system_copies()
    assert copies, "found no system copy of cJSON or RE2 to hide: the check could not fail"
    empty = tmp_path_factory.mktemp("hide") / "empty"
    empty.write_bytes(b"")
    hide = 'for f in "$@"; do mount --bind "%s" "$f" || exit 99; done; exec "$PY" -c "$SMOKE"' % empty

    def run(py: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = dict(_clean_env(), PY=str(py), SMOKE=textwrap.dedent(SMOKE))
        r = subprocess.run(["unshare", "-rm", "sh", "-c", hide, "hide", *copies], cwd=str(cwd), env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode != 99, "bind-mounting over the system libraries failed: " + r.stderr
        return r

    yield run


def _smoke(r: subprocess.CompletedProcess[str]) -> Dict[str, Any]:
    assert r.returncode == 0, r.stderr[-4000:]
    result: Dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["first"] == ["a", "c", "b"] and result["again"] == ["a", "c", "b"], result
    assert result["regex"] == ["a"] and result["count"] == 3, result
    assert json.loads(str(result["meta"])) == {"#document": "hello world"}, result
    assert str(result["file"]).startswith(str(result["prefix"])), result  # the venv's copy, not the tree's
    assert os.path.dirname(str(result["library"])) == os.path.dirname(str(result["file"])), result
    return result


@pytest.mark.install
def test_artifact_names_and_tags(built: Built) -> None:
    version = _source_version()
    assert built.sdist.name == "pysvdb-%s.tar.gz" % version
    assert re.fullmatch(r"pysvdb-%s-py3-none-linux_(x86_64|aarch64)\.whl" % re.escape(version), built.raw.name), built.raw.name
    # py3-none: one wheel for every Python 3, the library being dlopen'ed, not an extension.
    m = re.fullmatch(r"pysvdb-%s-py3-none-manylinux_(\d+)_(\d+)_(x86_64|aarch64)\.whl" % re.escape(version), built.wheel.name)
    assert m, built.wheel.name
    with zipfile.ZipFile(built.wheel) as z:
        tags = [line[5:] for line in z.read("pysvdb-%s.dist-info/WHEEL" % version).decode().splitlines() if line.startswith("Tag: ")]
    assert tags == [built.wheel.name[len("pysvdb-%s-" % version):-len(".whl")]], tags


@pytest.mark.install
def test_repaired_wheel_bundles_cjson_and_re2_only(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as z:
        libs = sorted(n for n in z.namelist() if n.startswith("pysvdb.libs/") and n != "pysvdb.libs/")
        names = set(z.namelist())
    assert "pysvdb/libsvdb.so.1" in names
    for name in HIDDEN:
        assert any(os.path.basename(n).startswith(name + "-") for n in libs), (name, libs)
    # glibc and libstdc++ come from the system, as manylinux requires.
    assert not [n for n in libs if re.search(r"/lib(c|m|stdc\+\+|gcc_s|pthread)[.-]", n)], libs
    with zipfile.ZipFile(built.raw) as z:
        assert not [n for n in z.namelist() if ".libs/" in n], "the raw wheel already bundles libraries"
    r = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(built.wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r'consistent with the\s+following platform tag: "manylinux_', r.stdout), r.stdout


def _ldd(wheel: Path, dest: Path) -> Dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    lib = dest / "pysvdb" / "libsvdb.so.1"
    r = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, env=_clean_env())
    assert r.returncode == 0, r.stderr
    deps = {}
    for line in r.stdout.splitlines():
        parts = line.split("=>")
        if len(parts) == 2:
            deps[parts[0].strip()] = os.path.realpath(parts[1].split("(")[0].strip()) if "not found" not in parts[1] else "not found"
    return deps


@pytest.mark.install
def test_bundled_library_resolves_cjson_and_re2_inside_the_wheel(built: Built, tmp_path: Path) -> None:
    deps = _ldd(built.wheel, tmp_path / "repaired")
    libs_dir = os.path.realpath(tmp_path / "repaired" / "pysvdb.libs")
    for name in HIDDEN:
        found = {k: v for k, v in deps.items() if k.startswith(name)}
        assert found and all(os.path.dirname(v) == libs_dir for v in found.values()), (name, deps)
    # The contrast: before the repair they come from the system.
    raw = _ldd(built.raw, tmp_path / "raw")
    for name in HIDDEN:
        found = {k: v for k, v in raw.items() if k.startswith(name)}
        assert found and all(not v.startswith(str(tmp_path)) for v in found.values()), (name, raw)


@pytest.mark.install
def test_repaired_wheel_runs_without_the_system_cjson_and_re2(repaired_venv: Path, hidden_run: Runner, tmp_path: Path) -> None:
    result = _smoke(hidden_run(repaired_venv, tmp_path))
    libs_dir = os.path.join(os.path.dirname(os.path.dirname(str(result["file"]))), "pysvdb.libs")
    maps = result["maps"]
    assert isinstance(maps, list) and len(maps) == 2, maps
    assert all(os.path.dirname(m) == libs_dir for m in maps), (maps, libs_dir)
    assert result["version"] == result["library_version"] == _source_version(), result


@pytest.mark.install
def test_unrepaired_wheel_fails_without_the_system_cjson(raw_venv: Path, hidden_run: Runner, tmp_path: Path) -> None:
    # It works while the system's libraries are visible...
    env = _clean_env()
    r = subprocess.run([str(raw_venv), "-c", textwrap.dedent(SMOKE)], cwd=str(tmp_path), env=env, capture_output=True, text=True)
    ok = _smoke(r)
    assert ok["maps"] and not [m for m in ok["maps"] if ".libs/" in m], ok
    # ...and hiding them makes it fail to load: the hiding test above can fail.
    r = hidden_run(raw_venv, tmp_path)
    assert r.returncode != 0, r.stdout
    assert "ImportError: pysvdb: " in r.stderr and "libsvdb was found but could not be loaded" in r.stderr and "cannot load libsvdb from " in r.stderr, r.stderr[-3000:]
    assert re.search(r"/lib(cjson|re2)\.so[.0-9]*: file too short", r.stderr), r.stderr[-3000:]


@pytest.mark.install
def test_wheel_metadata(built: Built) -> None:
    version = _source_version()
    with zipfile.ZipFile(built.wheel) as z:
        meta = email.parser.Parser().parsestr(z.read("pysvdb-%s.dist-info/METADATA" % version).decode())
        names = set(z.namelist())
    assert meta["Name"] == "pysvdb" and meta["Version"] == version
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"] and "pysvdb-%s.dist-info/licenses/LICENSE" % version in names
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["Author"] and meta["Keywords"] and "vector database" in meta["Keywords"]
    classifiers = meta.get_all("Classifier") or []
    for minor in range(9, 14):
        assert "Programming Language :: Python :: 3.%d" % minor in classifiers
    for c in ("Topic :: Database", "Intended Audience :: Developers", "Operating System :: POSIX :: Linux", "Typing :: Typed"):
        assert c in classifiers, c
    assert [c for c in classifiers if c.startswith("Development Status :: ")], classifiers
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: no License classifier next to an expression"
    requires = [re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert {"cffi", "numpy"} <= set(requires), requires
    assert meta["Description-Content-Type"] == "text/markdown" and "pysvdb" in meta.get_payload()
    # The sdist says the same.
    import tarfile

    with tarfile.open(built.sdist) as t:
        f = t.extractfile("pysvdb-%s/PKG-INFO" % version)
        assert f is not None
        pkg = email.parser.Parser().parsestr(f.read().decode())
        members = set(t.getnames())
    assert pkg["Version"] == version and pkg["License-Expression"] == "MIT"
    for needed in ("CMakeLists.txt", "include/svdb.h", "lib/api.c", "cmake/svdb.map", "pysvdb/_version.py", "LICENSE", "docs/python.md"):
        assert "pysvdb-%s/%s" % (version, needed) in members, needed
