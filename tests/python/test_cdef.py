"""pysvdb's cffi cdef must declare exactly what include/svdb.h declares.

Every function declaration, #define constant and struct/typedef is compared
after stripping comments, SVDB_API and the preprocessor scaffolding, and
normalising whitespace. Skipped only when the header is not there (a run
against an installed wheel outside the source tree).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Dict, Tuple

import pytest

HEADER = Path(__file__).resolve().parents[2] / "include" / "svdb.h"

Decls = Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]


def load_cdef_module() -> Dict[str, object]:
    """The namespace of the tested pysvdb's _cdef.py, without loading the C library."""
    spec = importlib.util.find_spec("pysvdb")
    assert spec is not None and spec.submodule_search_locations
    for d in spec.submodule_search_locations:
        f = Path(d) / "_cdef.py"
        if f.is_file():
            ns: Dict[str, object] = {}
            exec(compile(f.read_text(), str(f), "exec"), ns)
            return ns
    raise AssertionError("pysvdb/_cdef.py not found")


def load_cdef() -> str:
    """The CDEF text plus the string macros kept beside it as Python values."""
    ns = load_cdef_module()
    macros = ns["STRING_MACROS"]
    assert isinstance(macros, dict)
    return str(ns["CDEF"]) + "".join('\n#define %s "%s"\n' % kv for kv in macros.items())


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def drop_cplusplus_blocks(text: str) -> str:
    out, skipping = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#ifdef __cplusplus"):
            skipping = True
        elif skipping and s.startswith("#endif"):
            skipping = False
        elif not skipping:
            out.append(line)
    return "\n".join(out)


def norm(s: str) -> str:
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(r"\s*([*(),;{}\[\]])\s*", r"\1", s)


def parse(text: str) -> Decls:
    text = drop_cplusplus_blocks(strip_comments(text))
    defines: Dict[str, str] = {}
    body = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#\s*define\s+(\w+)\s+(.+)$", s)
            if m and m.group(1) not in ("SVDB_API",):
                defines[m.group(1)] = norm(m.group(2))
            continue
        body.append(line)
    code = re.sub(r"\bSVDB_API\b", " ", "\n".join(body))
    funcs: Dict[str, str] = {}
    types: Dict[str, str] = {}
    depth, cur = 0, []
    for ch in code:
        cur.append(ch)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            decl = norm("".join(cur))
            cur = []
            if decl.startswith("typedef"):
                # "typedef ... name;" or a function pointer "typedef int (*name)(...);"
                fnptr = re.match(r"typedef [^(]*\(\s*\*\s*(\w+)\s*\)", decl)
                name = fnptr.group(1) if fnptr else re.findall(r"(\w+);$", decl)[0]
                assert name not in types, "typedef %s declared twice" % name
                types[name] = decl
            else:
                name = re.findall(r"(\w+)\(", decl)[0]
                assert name not in funcs, "function %s declared twice" % name
                funcs[name] = decl
    assert not norm("".join(cur)), "unparsed text: %r" % "".join(cur)
    return funcs, defines, types


@pytest.fixture(scope="module")
def both() -> Tuple[Decls, Decls]:
    if not HEADER.is_file():
        pytest.skip("include/svdb.h not found (not running from the source tree)")
    return parse(HEADER.read_text()), parse(load_cdef())


def test_header_parses(both: Tuple[Decls, Decls]) -> None:
    (funcs, defines, types), _ = both
    assert "svdb_open" in funcs and "svdb_search_batch" in funcs
    assert defines["SVDB_EINVAL"] == "-1" and "SVDB_MAX_DIM" in defines
    assert "svdb_open_options" in types and "svdb_hit" in types and "svdb" in types
    assert "SVDB_H" not in defines


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["functions", "defines", "types"])
def test_cdef_matches_header(both: Tuple[Decls, Decls], kind: int) -> None:
    header, cdef = both[0][kind], both[1][kind]
    missing = sorted(set(header) - set(cdef))
    extra = sorted(set(cdef) - set(header))
    differ = {k: (header[k], cdef[k]) for k in header.keys() & cdef.keys() if header[k] != cdef[k]}
    assert not missing, "in include/svdb.h but not in pysvdb/_cdef.py: %s" % missing
    assert not extra, "in pysvdb/_cdef.py but not in include/svdb.h: %s" % extra
    assert not differ, "declarations differ (header, cdef): %s" % differ


def test_abi_version_constant_matches() -> None:
    import pysvdb
    from pysvdb._cdef import EXPECTED_ABI_VERSION
    from pysvdb._lib import lib

    assert EXPECTED_ABI_VERSION == lib.SVDB_ABI_VERSION == pysvdb.ABI_VERSION
