"""Per-call cost of pysvdb next to the C API and hnswlib, measured in one run.

What is timed (microseconds per call, median of ROUNDS rounds of the mean):

- ``search``: ``SvDBPython.search(q, k, ef=EF)``, one query per call over the
  query set, on an HNSW collection (M 16, ef_construction 200, seed 1, one
  build thread); EF is the smallest in a fixed ladder whose recall@k (k = 10)
  against the data set's ground truth is at least 0.95, measured here.
- ``search_batch``: one ``search_batch(queries, k, ef=EF, threads=1)`` call.
- ``cffi call only``: the floor of any ABI-mode cffi wrapper: the bare
  ``lib.svdb_search_into`` call of ``search`` with every argument prepared
  before the timing (query pointers, options, result buffers) and nothing
  read back, one query per call.
- ``add``/``upsert``/``delete``: one-row calls on a flat collection of the
  same base vectors (``add`` of new ids, ``upsert`` of each, ``delete`` of
  each), durability "persist" (the log is written per call, not fsynced).

The same calls through the C API come from ``bench_calls`` (bench/bench_calls.c,
built with SVDB_BUILD_BENCH), run on the same collection files with the same
parameters; hnswlib's ``knn_query`` one query per call, with the same M and
ef_construction and its own ef for recall 0.95, when hnswlib is installed.

Usage: python3 bench/bench_calls.py [--dataset siftsmall] [--quick] [--build build]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
EF_LADDER = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512]
METRICS = {"glove25": "cosine"}  # the others are L2
K = 10
M = 16
EF_CONSTRUCTION = 200


def read_vecs(path: Path, dtype: Any) -> npt.NDArray[Any]:
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def recall(found: List[List[Any]], gt: npt.NDArray[np.int32]) -> float:
    hits = sum(len(set(int(x) for x in f[:K]) & set(gt[i, :K].tolist())) for i, f in enumerate(found))
    return hits / (len(found) * K)


MIN_SECONDS = 0.2  # as the C driver: passes over the queries until this long


def per_call(fn: Callable[[int], object], n: int, rounds: int) -> float:
    """Median over rounds of the mean microseconds of fn(0..n-1), each round
    repeating the passes until MIN_SECONDS."""
    for i in range(n):  # warm-up, as the C driver's
        fn(i)
    times = []
    for _ in range(rounds):
        calls = 0
        t0 = time.perf_counter()
        while True:
            for i in range(n):
                fn(i)
            calls += n
            t = time.perf_counter() - t0
            if t >= MIN_SECONDS:
                break
        times.append(t / calls * 1e6)
    return statistics.median(times)


def pick_ef(search: Callable[[int], List[List[Any]]], gt: npt.NDArray[np.int32]) -> Tuple[int, float]:
    for ef in EF_LADDER:
        r = recall(search(ef), gt)
        if r >= 0.95:
            return ef, r
    raise SystemExit("no ef up to %d reaches recall 0.95" % EF_LADDER[-1])


def run_c(driver: Path, hnsw: str, flat: str, qpath: Path, ef: int, rounds: int, n_writes: int) -> Dict[str, float]:
    out = subprocess.run(
        [str(driver), hnsw, flat, str(qpath), str(K), str(ef), str(rounds), str(n_writes)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name: float(v) for name, v in (line.split() for line in out.splitlines())}


def run_hnswlib(base: npt.NDArray[np.float32], q: npt.NDArray[np.float32], gt: npt.NDArray[np.int32],
                metric: str, rounds: int) -> Optional[Tuple[int, float, float]]:
    try:
        import hnswlib  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    index = hnswlib.Index(space="cosine" if metric == "cosine" else "l2", dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=EF_CONSTRUCTION, M=M, random_seed=1)
    index.set_num_threads(1)
    index.add_items(base, np.arange(len(base)))

    def batch(ef: int) -> List[List[Any]]:
        index.set_ef(max(ef, K))
        labels, _ = index.knn_query(q, k=K, num_threads=1)
        return labels.tolist()  # type: ignore[no-any-return]

    ef, r = pick_ef(batch, gt)
    index.set_ef(max(ef, K))
    us = per_call(lambda i: index.knn_query(q[i], k=K, num_threads=1), len(q), rounds)
    return ef, r, us


def bare_call(db: Any, q: npt.NDArray[np.float32], ef: int) -> float:
    """search's C call alone, through cffi, as pysvdb makes it (the floor of
    any ABI-mode wrapper: argument conversion, libffi, the GIL let go)."""
    from pysvdb import _db

    ffi, lib = _db.ffi, _db.lib
    ptrs = [ffi.from_buffer("float[]", q[i]) for i in range(len(q))]
    opts, dim, cap = _db._ef_options(ef), q.shape[1], _db._INTO_CAP
    d, ids, n, n_len = ffi.new("float[]", K), ffi.new("char[]", cap), ffi.new("size_t[1]"), ffi.new("size_t[1]")
    h, call = db._acquire(), lib.svdb_search_into
    return per_call(lambda i: call(h, ptrs[i], dim, K, opts, d, ids, cap, n, n_len), len(q), 1)


def py_round(cls: Any, hnsw: str, flat: str, q: npt.NDArray[np.float32], ef: int, wids: List[List[str]],
             rows: List[npt.NDArray[np.float32]]) -> Dict[str, float]:
    """One round of the C driver's calls through pysvdb (same order, same warm-up)."""
    out: Dict[str, float] = {}
    with cls(hnsw, create=False) as db:
        out["search"] = per_call(lambda i: db.search(q[i], K, ef=ef), len(q), 1)
        out["cffi call only"] = bare_call(db, q, ef)
        out["search_batch"] = per_call(lambda i: db.search_batch(q, K, ef=ef, threads=1), 1, 1)
    n = len(wids)
    with cls(flat, create=False) as f:
        for name, call in (("add", f.add), ("upsert", f.upsert)):
            t0 = time.perf_counter()
            for i in range(n):
                call(wids[i], rows[i])
            out[name] = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        for i in range(n):
            f.delete(wids[i])
        out["delete"] = (time.perf_counter() - t0) / n * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="siftsmall", choices=["siftsmall", "fashion_mnist", "glove25"])
    ap.add_argument("--quick", action="store_true", help="3 rounds, at most 200 queries and 200 writes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=1000, help="queries used (the first N of the set)")
    ap.add_argument("--writes", type=int, default=1000, help="one-row writes per operation and round")
    ap.add_argument("--build", default=str(REPO / "build"), help="CMake build directory (libsvdb, bench_calls)")
    args = ap.parse_args()
    rounds, nq_max, n_writes = args.rounds, args.queries, args.writes
    if args.quick:
        rounds, nq_max, n_writes = 3, min(nq_max, 200), min(n_writes, 200)
    build = Path(args.build).resolve()
    os.environ.setdefault("SVDB_LIBRARY", str(build / "libsvdb.so"))
    sys.path.insert(0, str(REPO))
    from pysvdb import SvDBPython

    base = read_vecs(DATA / ("%s_base.fvecs" % args.dataset), np.float32)
    q = read_vecs(DATA / ("%s_query.fvecs" % args.dataset), np.float32)[:nq_max]
    gt = read_vecs(DATA / ("%s_groundtruth.ivecs" % args.dataset), np.int32)[: len(q)]
    metric = METRICS.get(args.dataset, "l2")
    ids = [str(i) for i in range(len(base))]
    work = tempfile.mkdtemp(prefix="bench-calls-")
    try:
        qpath = Path(work) / "query.fvecs"  # the queries used, for the C driver
        np.hstack([np.full((len(q), 1), q.shape[1], dtype=np.int32).view(np.float32), q]).tofile(qpath)
        hnsw, flat = os.path.join(work, "hnsw"), os.path.join(work, "flat")
        t0 = time.perf_counter()
        db = SvDBPython(hnsw, metric=metric, index="hnsw", M=M, ef_construction=EF_CONSTRUCTION, seed=1,
                        build_threads=1)
        db.add(ids, base)
        print("%s: %d x %d (%s), %d queries; HNSW built in %.1f s" % (args.dataset, len(base), base.shape[1], metric,
                                                                     len(q), time.perf_counter() - t0))
        def batch(e: int) -> List[List[Any]]:
            return [[h for h in row if h is not None] for row in db.search_batch(q, K, ef=e).ids.tolist()]

        ef, r = pick_ef(batch, gt)
        db.close()
        with SvDBPython(flat, metric=metric, index="flat") as f:
            f.add(ids, base)

        # Rounds alternate between the C driver and pysvdb, so that a slow spell
        # of a shared machine hits both sides alike; medians over rounds.
        driver = build / "bench_calls"
        wids = [["bench-%d" % i] for i in range(n_writes)]
        rows = [q[i % len(q)][None, :] for i in range(n_writes)]
        c_rounds: List[Dict[str, float]] = []
        py_rounds: List[Dict[str, float]] = []
        for _ in range(rounds):
            if driver.exists():
                c_rounds.append(run_c(driver, hnsw, flat, qpath, ef, 1, n_writes))
            py_rounds.append(py_round(SvDBPython, hnsw, flat, q, ef, wids, rows))
        for rd in c_rounds:  # the C side of the floor is the same C search
            rd["cffi call only"] = rd["search"]
        c = {name: statistics.median(rd[name] for rd in c_rounds) for name in c_rounds[0]} if c_rounds else {}
        py = {name: statistics.median(rd[name] for rd in py_rounds) for name in py_rounds[0]}
        if os.environ.get("BENCH_CALLS_VERBOSE"):
            print("C rounds", c_rounds, "\npysvdb rounds", py_rounds)
        hn = run_hnswlib(base, q, gt, metric, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("ef %d (recall@%d %.3f), %d rounds, medians in microseconds per call" % (ef, K, r, rounds))
    if not c:
        print("(no %s: build with -DSVDB_BUILD_BENCH=ON for the C figures)" % driver)
    print("%-13s %10s %10s %10s %12s  %s" % ("call", "pysvdb", "C API", "C/pysvdb", "pysvdb - C", "best rounds: pysvdb, C"))
    for name in ("search", "cffi call only", "search_batch", "add", "upsert", "delete"):
        cv = c.get(name)
        best = min(rd[name] for rd in py_rounds)
        if cv:
            cbest = min(rd[name] for rd in c_rounds)
            print("%-13s %10.2f %10.2f %10.3f %12.2f  %.2f, %.2f" % (name, py[name], cv, cv / py[name], py[name] - cv,
                                                                   best, cbest))
        else:
            print("%-13s %10.2f %10s" % (name, py[name], "-"))
    if hn is not None:
        hef, hr, hus = hn
        print("hnswlib knn_query one query per call: %.2f us (ef %d, recall %.3f); hnswlib/pysvdb %.3f"
              % (hus, hef, hr, hus / py["search"]))
    else:
        print("hnswlib not installed: no peer figure")


if __name__ == "__main__":
    main()
