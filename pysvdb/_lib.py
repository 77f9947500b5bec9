"""Finds and loads libsvdb with cffi in ABI mode (``ffi.dlopen``).

Search order:

1. ``$SVDB_LIBRARY``, when set: the path of another build of libsvdb. It is
   used as given; if it cannot be loaded the import fails (no silent fallback).
2. The library bundled inside the package (``pip install .`` puts it next to
   this file; editable installs are found through the package's ``__path__``).
3. The library of an installed ``pysvdb`` distribution, for when the package
   is imported from a source checkout that has no library of its own.

The library must export every function declared in the cdef and report
``svdb_abi_version() == EXPECTED_ABI_VERSION``; otherwise ``ImportError``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import cffi

from ._cdef import CDEF, EXPECTED_ABI_VERSION

__all__ = ["ffi", "lib", "library_path"]

ffi = cffi.FFI()
ffi.cdef(CDEF)

_FUNCTIONS = list(dict.fromkeys(re.findall(r"\b(svdb_\w+)\s*\(", re.sub(r"/\*.*?\*/", "", CDEF, flags=re.S))))

if sys.platform == "darwin":
    _NAMES = ("libsvdb.%d.dylib" % EXPECTED_ABI_VERSION, "libsvdb.dylib")
elif sys.platform == "win32":
    _NAMES = ("svdb.dll", "libsvdb.dll")
else:
    # The soname first: that is what a versioned install ships.
    _NAMES = ("libsvdb.so.%d" % EXPECTED_ABI_VERSION, "libsvdb.so")


def _package_dirs() -> Iterator[Path]:
    here = Path(__file__).resolve().parent
    yield here
    pkg = sys.modules.get(__package__ or "pysvdb")
    for entry in getattr(pkg, "__path__", None) or ():
        p = Path(entry).resolve()
        if p != here:
            yield p


def _candidates_in(d: Path) -> Iterator[Path]:
    for name in _NAMES:
        p = d / name
        if p.is_file():
            yield p
    # Any other versioned file name, e.g. libsvdb.so.1.2.3.
    if sys.platform not in ("darwin", "win32"):
        for p in sorted(d.glob("libsvdb.so.%d.*" % EXPECTED_ABI_VERSION)):
            if p.is_file():
                yield p


def _installed_distribution_dirs() -> Iterator[Path]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover
        return
    try:
        dist = metadata.distribution("pysvdb")
    except metadata.PackageNotFoundError:
        return
    for f in dist.files or ():
        if f.name.startswith(("libsvdb", "svdb.")) and f.parent.name == "pysvdb":
            yield Path(str(dist.locate_file(f.parent))).resolve()
            return


def _check(handle: Any, path: str) -> None:
    missing = []
    for name in _FUNCTIONS:
        try:
            getattr(handle, name)
        except AttributeError:
            missing.append(name)
    if missing:
        raise ImportError(
            "pysvdb: %s is not a matching libsvdb: it lacks %s (rebuild it or unset SVDB_LIBRARY)"
            % (path, ", ".join(missing))
        )
    abi = int(handle.svdb_abi_version())
    if abi != EXPECTED_ABI_VERSION:
        raise ImportError(
            "pysvdb: %s has ABI version %d but this pysvdb needs ABI version %d "
            "(reinstall pysvdb or point SVDB_LIBRARY at a matching build)" % (path, abi, EXPECTED_ABI_VERSION)
        )


def _open(path: str) -> Any:
    try:
        handle = ffi.dlopen(path)
    except OSError as e:
        raise ImportError("pysvdb: cannot load libsvdb from %s: %s" % (path, e)) from e
    _check(handle, path)
    return handle


def _load() -> Tuple[Any, str]:
    env = os.environ.get("SVDB_LIBRARY")
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            found = next(_candidates_in(p), None)
            if found is None:
                raise ImportError("pysvdb: SVDB_LIBRARY=%s is a directory without libsvdb in it" % env)
            p = found
        elif not p.exists():
            if os.sep in env or (os.altsep and os.altsep in env):
                raise ImportError("pysvdb: SVDB_LIBRARY=%s does not exist" % env)
            return _open(env), env  # a bare name: the dynamic loader's search path
        path = os.path.abspath(str(p))
        return _open(path), path
    tried: List[str] = []
    errors: List[str] = []
    seen = set()
    for dirs in (_package_dirs, _installed_distribution_dirs):
        for d in dirs():
            if d in seen:
                continue
            seen.add(d)
            tried.append(str(d))
            for cand in _candidates_in(d):
                try:
                    return _open(str(cand)), str(cand)
                except ImportError as e:
                    errors.append(str(e))
    if errors:  # found, but the loader refused it (a missing dependency, say)
        raise ImportError(
            "pysvdb: libsvdb was found but could not be loaded: %s. Reinstall the package (the "
            "wheel bundles the libraries it needs), or set SVDB_LIBRARY to a working build" % "; ".join(errors)
        )
    raise ImportError(
        "pysvdb: libsvdb was not found (looked in %s). Install the package with "
        "`pip install .` (which builds and bundles the library), or set SVDB_LIBRARY "
        "to a built libsvdb, e.g. SVDB_LIBRARY=build/libsvdb.so" % ", ".join(tried)
    )


lib: Any
library_path: str
lib, library_path = _load()


