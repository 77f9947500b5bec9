"""Differential fuzzing of libsvdb's where / where_document filters (issue 12,
items 8, 11 and 14).

Random metadata (integers near and beyond 2**53 and beyond int64, floats,
booleans, strings with escapes and NUL, arrays, nested objects, null,
duplicate keys, missing keys, documents) and random filters run through the
C filter (``SvDBPython.ids_where``) and through ``model_where`` /
``model_where_document``, a plain-Python model of ChromaDB's semantics; both
must agree on every row.

The model is ChromaDB 1.5.9's behaviour as checked against the real package
(see docs/api.md, "Metadata filters"), with numbers compared mathematically
where ChromaDB truncates a float operand for integer rows or rounds an
integer operand for float rows. When chromadb is importable,
``test_model_agrees_with_chromadb`` checks the model itself against it on
values where ChromaDB is exact.

Cases: SVDB_FILTER_FUZZ_CASES (default 600, a few seconds; SVDB_FILTER_FUZZ_SECONDS caps the
where run by time for long runs); seed:
SVDB_FILTER_FUZZ_SEED (default 12).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import pysvdb
from pysvdb import SvDBPython

CASES = int(os.environ.get("SVDB_FILTER_FUZZ_CASES", "600"))
SEED = int(os.environ.get("SVDB_FILTER_FUZZ_SEED", "12"))
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
DOC = "#document"


# ---------------------------------------------------------------- the model


def parse_int(text: str) -> Any:
    """An integer literal: exact within int64, else the nearest double (as ChromaDB stores it)."""
    v = int(text)
    return v if I64_MIN <= v <= I64_MAX else float(v)


def loads(text: str) -> Any:
    """JSON as libsvdb reads it: duplicate keys count by their last value (Python's rule)."""
    return json.loads(text, parse_int=parse_int)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def same(row: Any, arg: Any) -> bool:
    """$eq: strings by value, booleans only with booleans, numbers mathematically (int vs float exact)."""
    if isinstance(arg, bool) or isinstance(row, bool):
        return isinstance(arg, bool) and isinstance(row, bool) and arg == row
    if isinstance(arg, str):
        return isinstance(row, str) and row == arg
    return is_num(row) and row == arg  # Python compares int with float exactly


def same_typed(elem: Any, arg: Any) -> bool:
    """$contains: an array element matches only within its type (ChromaDB: 2 does not find 2.0)."""
    return type(elem) is type(arg) and elem == arg


def model_where(meta: Optional[Dict[str, Any]], w: Dict[str, Any]) -> bool:
    ((key, value),) = w.items()
    if key == "$and":
        return all(model_where(meta, x) for x in value)
    if key == "$or":
        return any(model_where(meta, x) for x in value)
    m = meta if isinstance(meta, dict) else {}
    op, arg = next(iter(value.items())) if isinstance(value, dict) else ("$eq", value)
    if key == DOC and op in ("$contains", "$not_contains"):
        return model_where_document(meta, {op: arg})
    present = key in m
    v = m.get(key)
    if op == "$eq":
        return present and same(v, arg)
    if op == "$ne":
        return not (present and same(v, arg))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not present or not is_num(v):
            return False
        return {"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op]
    if op == "$in":
        return present and any(same(v, a) for a in arg)
    if op == "$nin":
        return not (present and any(same(v, a) for a in arg))
    if op == "$contains":
        return present and isinstance(v, list) and any(same_typed(x, arg) for x in v)
    if op == "$not_contains":
        return not (present and isinstance(v, list) and any(same_typed(x, arg) for x in v))
    raise AssertionError(op)


def model_where_document(meta: Optional[Dict[str, Any]], wd: Dict[str, Any]) -> bool:
    ((op, arg),) = wd.items()
    if op == "$and":
        return all(model_where_document(meta, x) for x in arg)
    if op == "$or":
        return any(model_where_document(meta, x) for x in arg)
    doc = meta.get(DOC) if isinstance(meta, dict) else None
    if not isinstance(doc, str):
        return op in ("$not_contains", "$not_regex")
    hit = arg in doc if op in ("$contains", "$not_contains") else re.search(arg, doc) is not None
    return hit if op in ("$contains", "$regex") else not hit


# ---------------------------------------------------------------- generators

BIG = [2**53 - 1, 2**53, 2**53 + 1, 2**62 + 7, 1234567890123456789, 1234567890123456700, I64_MAX, I64_MIN, I64_MAX + 1, 2**64]
STR_CHARS = ["a", "b", "é", "\n", '"', "\\", "\x00", "/", "😀", " "]
KEYS = ["i", "f", "s", "b", "l", "x", "é", "a\x00b", DOC]


def rand_int(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.randint(-3, 3)
    v = rng.choice(BIG)
    return v + rng.randint(-2, 2) if abs(v) < 2**63 - 4 else v


def rand_float(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.4:
        return rng.randint(-6, 6) / 2
    if r < 0.7:
        return float(rng.choice(BIG) + rng.randint(-2, 2))
    return rng.choice([0.1, -0.0, 1e300, 9.3e18, -9.3e18, 2.0**63, 2.0**53 + 2, 1.5e-300])


def rand_str(rng: random.Random, n: int = 3) -> str:
    return "".join(rng.choice(STR_CHARS) for _ in range(rng.randint(0, n)))


def rand_scalar(rng: random.Random) -> Any:
    return rng.choice([rand_int, rand_float, rand_str, lambda r: r.random() < 0.5])(rng)


def rand_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.65:
        return rand_scalar(rng)
    if r < 0.85:  # arrays: usually of one type, sometimes mixed (only raw JSON can hold those)
        make = rng.choice([rand_int, rand_float, rand_str, lambda r: r.random() < 0.5, rand_scalar])
        return [make(rng) for _ in range(rng.randint(0, 4))]
    if r < 0.95:
        return {"i": rand_int(rng), "l": [rand_int(rng)]}
    return None


def rand_doc(rng: random.Random) -> str:
    return "".join(rng.choice(["a", "b", "c", "ab", " ", "\n", "é", "\x00", '"', "\\"]) for _ in range(rng.randint(0, 12)))


def dump_json(v: Any) -> str:
    """JSON text, sometimes with escapes for characters json.dumps writes raw."""
    text = json.dumps(v, ensure_ascii=False, allow_nan=False)
    return text


def rand_meta(rng: random.Random) -> Tuple[Optional[str], bool]:
    """(metadata JSON text or None, whether it repeats a key)."""
    if rng.random() < 0.07:
        return None, False
    pairs: List[Tuple[str, Any]] = []
    for key in KEYS:
        if rng.random() < 0.5:
            pairs.append((key, rand_doc(rng) if key == DOC and rng.random() < 0.9 else rand_value(rng)))
    dup = bool(pairs) and rng.random() < 0.06
    if dup:
        k = rng.choice(pairs)[0]
        pairs.append((k, rand_value(rng)))
        rng.shuffle(pairs)
    if not pairs:
        pairs.append(("i", rand_int(rng)))
    ascii_escapes = rng.random() < 0.3
    body = ", ".join(
        json.dumps(k, ensure_ascii=ascii_escapes) + ": " + json.dumps(v, ensure_ascii=ascii_escapes, allow_nan=False)
        for k, v in pairs
    )
    return "{" + body + "}", dup


def rand_where(rng: random.Random, depth: int = 0) -> Dict[str, Any]:
    if depth < 3 and rng.random() < 0.25:
        return {rng.choice(["$and", "$or"]): [rand_where(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    key = rng.choice(KEYS + ["missing"])
    op = rng.choice(["$eq", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$not_contains"])
    if key == DOC and (rng.random() < 0.5 or op in ("$contains", "$not_contains")):
        # ChromaDB's document search inside where: a non-empty string
        return {DOC: {rng.choice(["$contains", "$not_contains"]): rng.choice(["a", "ab", "é", "\x00", '"', "\\", "\n"])}}
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {key: {op: rng.choice([rand_int, rand_float])(rng)}}
    if op in ("$in", "$nin"):
        kind = rng.choice(["num", "str", "bool"])
        make: Callable[[random.Random], Any] = {
            "num": lambda r: r.choice([rand_int, rand_float])(r),
            "str": rand_str,
            "bool": lambda r: r.random() < 0.5,
        }[kind]
        return {key: {op: [make(rng) for _ in range(rng.randint(1, 3))]}}
    arg = rand_scalar(rng)
    if op == "$eq" and rng.random() < 0.5:
        return {key: arg}
    return {key: {op: arg}}


REGEX_ATOMS = ["a", "b", "c", ".", "[ab]", "[^a]", "é", " ", "(?:a|bc)", "(?:a|aa)", "\\n", "\\\\", '"']
REGEX_QUANTS = ["", "", "*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}"]


def rand_regex(rng: random.Random) -> str:
    parts = [rng.choice(REGEX_ATOMS) + rng.choice(REGEX_QUANTS) for _ in range(rng.randint(1, 4))]
    pat = "".join(parts)
    if rng.random() < 0.2:
        pat = "^" + pat
    if rng.random() < 0.2:
        pat = pat + "|" + rng.choice(REGEX_ATOMS)
    return pat


def rand_where_document(rng: random.Random, depth: int = 0) -> Dict[str, Any]:
    if depth < 2 and rng.random() < 0.25:
        return {rng.choice(["$and", "$or"]): [rand_where_document(rng, depth + 1) for _ in range(2)]}
    op = rng.choice(["$contains", "$not_contains", "$regex", "$not_regex"])
    if op in ("$regex", "$not_regex"):
        return {op: rand_regex(rng)}
    return {op: rng.choice(["a", "ab", "b c", "é", "\x00", '"', "\\", "\n", "aa"])}


def where_text(w: Dict[str, Any], rng: random.Random) -> str:
    return json.dumps(w, ensure_ascii=rng.random() < 0.3, allow_nan=False)


# ---------------------------------------------------------------- the differential run


def _model_row(text: Optional[str]) -> Optional[Dict[str, Any]]:
    return None if text is None else loads(text)


@pytest.fixture
def fuzz_db(tmp_path: Path) -> Any:
    rng = random.Random(SEED)
    db = SvDBPython(str(tmp_path / "fz"), 2, "l2")
    ids: List[str] = []
    rows: List[Optional[Dict[str, Any]]] = []
    batch_ids: List[str] = []
    batch_meta: List[Optional[str]] = []
    dup_rows = dup_refused = 0
    for n in range(300):
        text, dup = rand_meta(rng)
        rid = "r%03d" % n
        if dup:
            dup_rows += 1
            try:
                db.add([rid], [[1.0, float(n)]], [text])
            except pysvdb.MetadataError as e:
                assert "twice" in str(e)
                dup_refused += 1
                continue
            ids.append(rid)
            rows.append(_model_row(text))
            continue
        batch_ids.append(rid)
        batch_meta.append(text)
        ids.append(rid)
        rows.append(_model_row(text))
    db.add(batch_ids, [[1.0, float(i)] for i in range(len(batch_ids))], batch_meta)
    order = db.ids_where()
    by_id = dict(zip(ids, rows))
    yield db, order, [by_id[i] for i in order], (dup_rows, dup_refused)
    db.close()


def test_where_differential(fuzz_db: Any) -> None:
    db, ids, rows, _ = fuzz_db
    rng = random.Random(SEED + 1)
    deadline = time.monotonic() + float(os.environ.get("SVDB_FILTER_FUZZ_SECONDS", "1e9"))
    for case in range(CASES):
        if time.monotonic() > deadline:
            break
        w = rand_where(rng)
        wd = rand_where_document(rng) if rng.random() < 0.3 else None
        if rng.random() < 0.15:
            w, wd = None, rand_where_document(rng)  # type: ignore[assignment]
        wt = where_text(w, rng) if w is not None else None
        dt = where_text(wd, rng) if wd is not None else None
        # the model reads the filter's text as the library does (integers beyond int64 become doubles)
        mw = loads(wt) if wt is not None else None
        mwd = loads(dt) if dt is not None else None
        want = [i for i, m in zip(ids, rows) if (mw is None or model_where(m, mw)) and (mwd is None or model_where_document(m, mwd))]
        got = db.ids_where(wt, dt)
        assert got == want, "case %d (seed %d): where=%s where_document=%s" % (case, SEED, wt, dt)


def test_where_document_differential(fuzz_db: Any) -> None:
    db, ids, rows, _ = fuzz_db
    rng = random.Random(SEED + 2)
    for case in range(max(CASES // 2, 1)):
        wd = rand_where_document(rng)
        dt = where_text(wd, rng)
        want = [i for i, m in zip(ids, rows) if model_where_document(m, loads(dt))]
        assert db.ids_where(None, dt) == want, "case %d (seed %d): where_document=%s" % (case, SEED, dt)


def test_duplicate_metadata_keys_refused_at_write(tmp_path: Path) -> None:
    with SvDBPython(str(tmp_path / "dup"), 2) as db:
        try:
            db.add(["x"], [[1.0, 0.0]], ['{"user_id": 1, "user_id": 2}'])
        except pysvdb.MetadataError as e:
            assert '"user_id" twice' in str(e)
            return
        # Accepted: the library's write path still calls the stored-text check
        # (svdb__meta_check) instead of svdb__meta_check_new. The filter then
        # reads the last value, as Python does.
        assert db.ids_where({"user_id": 2}) == ["x"] and db.ids_where({"user_id": 1}) == []
        pytest.xfail("lib/db.c put_batch does not call svdb__meta_check_new yet")


# ---------------------------------------------------------------- regressions of the issue


def test_item8_big_integers_chroma_client(tmp_path: Path) -> None:
    client = pysvdb.PersistentClient(path=str(tmp_path / "chroma"))
    try:
        col = client.create_collection("tenants", embedding_function=None)
        col.add(
            ids=["alice-secret", "mallory-note"],
            embeddings=[[1.0, 0.0], [0.0, 1.0]],
            metadatas=[{"user_id": 1234567890123456789}, {"user_id": 1234567890123456700}],
        )
        assert col.get(where={"user_id": 1234567890123456700})["ids"] == ["mallory-note"]
        assert col.get(where={"user_id": {"$ne": 1234567890123456789}})["ids"] == ["mallory-note"]
        assert col.get(where={"user_id": {"$gt": 1234567890123456700}})["ids"] == ["alice-secret"]
        assert col.get(where={"user_id": {"$in": [1234567890123456700]}})["ids"] == ["mallory-note"]
        assert col.get(where={"user_id": {"$nin": [1234567890123456700]}})["ids"] == ["alice-secret"]
        res = col.query(query_embeddings=[[1.0, 0.0]], n_results=2, where={"user_id": 1234567890123456700})
        assert res["ids"] == [["mallory-note"]]
    finally:
        client.close()


def test_deep_json(tmp_path: Path) -> None:
    deep = "[" * 1500 + "]" * 1500
    with SvDBPython(str(tmp_path / "deep"), 2) as db:
        with pytest.raises(pysvdb.MetadataError, match=r"nested too deep \(limit 1000"):
            db.add(["x"], [[1.0, 0.0]], ['{"a": %s}' % deep])
        db.add(["y"], [[1.0, 0.0]], [{"a": 1}])
        with pytest.raises(pysvdb.InvalidArgumentError, match=r"where filter: nested too deep \(limit"):
            db.ids_where('{"a": {"$in": %s}}' % deep)
        with pytest.raises(pysvdb.InvalidArgumentError, match=r"where_document filter: nested too deep \(limit"):
            db.ids_where(None, '{"$contains": %s}' % deep)
        with pytest.raises(pysvdb.InvalidArgumentError, match=r"duplicate key \"a\""):
            db.ids_where('{"a": 1, "a": 2}')


def test_regex_blowup_patterns(tmp_path: Path) -> None:
    with SvDBPython(str(tmp_path / "re"), 2) as db:
        db.add(["a16", "a64"], [[1.0, 0.0], [0.0, 1.0]], [{DOC: "a" * 16384}, {DOC: "a" * 65536}])
        t0 = time.monotonic()
        with pytest.raises(pysvdb.InvalidArgumentError, match=re.escape("(a{,1000}){,1000}")):
            db.ids_where(None, {"$regex": "(a{,1000}){,1000}"})
        assert time.monotonic() - t0 < 5.0  # glibc: 23 s and 10 GiB
        t0 = time.monotonic()
        assert db.ids_where(None, {"$regex": "(a|aa)*b"}) == []
        assert db.ids_where(None, {"$regex": "(a|aa)*$"}) == ["a16", "a64"]
        assert db.ids_where(None, {"$not_regex": "(a|aa)*b"}) == ["a16", "a64"]
        assert time.monotonic() - t0 < 5.0  # a hang guard, not a benchmark: glibc took 8.6 s on 64 KB


def test_add_completes_while_regex_query_scans(tmp_path: Path) -> None:
    """An add() from another thread is not held up for the length of a slow scan."""
    with SvDBPython(str(tmp_path / "conc"), 2) as db:
        n = 200
        db.add(["d%d" % i for i in range(n)], [[1.0, float(i)] for i in range(n)], [{DOC: "a" * 65536} for _ in range(n)])
        stop = threading.Event()
        scans: List[float] = []
        failures: List[BaseException] = []

        def scan() -> None:
            try:
                while not stop.is_set():
                    t = time.monotonic()
                    assert db.ids_where(None, {"$regex": "(a|aa)*b"}) == []
                    scans.append(time.monotonic() - t)
            except BaseException as e:  # reported below
                failures.append(e)

        th = threading.Thread(target=scan)
        th.start()
        try:
            time.sleep(0.2)
            waits = []
            for k in range(5):
                t = time.monotonic()
                db.add(["new%d" % k], [[0.5, 0.5]], [{DOC: "c"}])
                waits.append(time.monotonic() - t)
        finally:
            stop.set()
            th.join()
        assert not failures, failures
        assert scans, "the scan never finished"
        assert max(waits) < 5.0, (waits, scans[:5])
        assert db.ids_where(None, {"$regex": "^c"}) == ["new%d" % k for k in range(5)]


# ---------------------------------------------------------------- the model against chromadb itself


def test_model_agrees_with_chromadb() -> None:
    """The model is ChromaDB's semantics where ChromaDB is exact: checked on the real package."""
    chromadb = pytest.importorskip("chromadb")
    rng = random.Random(SEED + 3)
    client = chromadb.EphemeralClient()
    name = "model-check-%d" % os.getpid()
    col = client.create_collection(name, embedding_function=None)
    try:
        metas: List[Dict[str, Any]] = []
        for _ in range(120):
            m: Dict[str, Any] = {}
            if rng.random() < 0.7:
                m["i"] = rand_int(rng) if rng.random() < 0.8 else rng.random() < 0.5
                if isinstance(m["i"], int) and not isinstance(m["i"], bool) and not I64_MIN <= m["i"] <= I64_MAX:
                    m["i"] = float(m["i"])
            if rng.random() < 0.6:
                m["f"] = rng.randint(-6, 6) / 2
            if rng.random() < 0.6:
                m["s"] = rand_str(rng).replace("\x00", "")
            if rng.random() < 0.5:
                m["l"] = rng.choice([[rng.randint(-3, 3) for _ in range(2)], [rng.randint(-3, 3) / 1.0], ["a", "b"], [True]])
            metas.append(m or {"z": 1})
        ids = ["c%03d" % i for i in range(len(metas))]
        col.add(ids=ids, embeddings=[[1.0, float(i)] for i in range(len(ids))], metadatas=metas)  # type: ignore[arg-type]
        checked = 0
        for _ in range(150):
            key = rng.choice(["i", "f", "s", "l", "missing"])
            op = rng.choice(["$eq", "$ne", "$gt", "$lte", "$in", "$nin", "$contains", "$not_contains"])
            # operands on which ChromaDB is exact: ints within int64, integral floats of small magnitude
            make = rng.choice([lambda r: rand_int(r) if r.random() < 0.7 else r.randint(-3, 3),
                               lambda r: float(r.randint(-3, 3)), lambda r: r.choice(["a", "b", ""]),
                               lambda r: r.random() < 0.5])
            arg = make(rng)
            if is_num(arg) and isinstance(arg, int) and not I64_MIN <= arg <= I64_MAX:
                continue
            if op in ("$gt", "$lte") and not is_num(arg):
                continue
            w = {key: {op: [arg] if op in ("$in", "$nin") else arg}}
            want = [i for i, m in zip(ids, metas) if model_where(m, w)]
            got = col.get(where=w, include=[])["ids"]  # type: ignore[arg-type]
            assert sorted(got) == want, w
            checked += 1
        assert checked > 50
    finally:
        client.delete_collection(name)
