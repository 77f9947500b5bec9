"""pysvdb against the C API on the same data, in the same run.

Measures single-query latency over siftsmall (10,000 x 128, k = 10) and add
throughput of the generated 100,000 x 128 set from a float32 numpy array in
batches of 10,000, through pysvdb, and compares them with bench_flat's
figures for the same operations (read from its output file).
Targets (issue): a single search costs at most 1.3x the C call; adding from
numpy reaches at least 80% of the C add throughput.

Usage: python3 bench/bench_python.py OUT_DIR C_RESULTS_FILE
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

import pysvdb


def load(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        n, d = np.frombuffer(f.read(8), dtype=np.uint32)
        return np.frombuffer(f.read(), dtype=np.float32).reshape(int(n), int(d))


def main() -> None:
    out, c_file = sys.argv[1], sys.argv[2]
    c = {}
    with open(c_file) as f:
        for line in f:
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                c[r["set"]] = r
    work = tempfile.mkdtemp(prefix="svdb-pybench-")
    try:
        xb, xq = load(os.path.join(out, "siftsmall_base.f32")), load(os.path.join(out, "siftsmall_query.f32"))
        with pysvdb.SvDBPython(os.path.join(work, "s"), dim=xb.shape[1]) as db:
            db.add([str(i) for i in range(len(xb))], xb)
            db.search(xq[0], k=10)
            lat = []
            for r in range(max(200, len(xq))):
                q = xq[r % len(xq)]
                a = time.perf_counter()
                db.search(q, k=10)
                lat.append(time.perf_counter() - a)
        py_us = statistics.median(lat) * 1e6
        big = load(os.path.join(out, "gen100k_base.f32"))
        ids = [str(i) for i in range(len(big))]
        with pysvdb.SvDBPython(os.path.join(work, "g"), dim=big.shape[1]) as db:
            a = time.perf_counter()
            for b in range(0, len(big), 10000):
                db.add(ids[b:b + 10000], big[b:b + 10000])
            py_vps = len(big) / (time.perf_counter() - a)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s_ratio = py_us / c["siftsmall"]["single_median_us"]
    a_ratio = py_vps / c["gen100k"]["add_vps"]
    res = {"single_us_py": py_us, "single_us_c": c["siftsmall"]["single_median_us"], "single_ratio": s_ratio,
           "add_vps_py": py_vps, "add_vps_c": c["gen100k"]["add_vps"], "add_ratio": a_ratio}
    print("pysvdb single search over siftsmall: %.1f us vs %.1f us in C = %.2fx (target <= 1.3x: %s)"
          % (py_us, res["single_us_c"], s_ratio, "met" if s_ratio <= 1.3 else "MISSED"))
    print("pysvdb add 100k x 128 from numpy: %.0f vec/s vs %.0f in C = %.0f%% (target >= 80%%: %s)"
          % (py_vps, res["add_vps_c"], 100 * a_ratio, "met" if a_ratio >= 0.8 else "MISSED"))
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
