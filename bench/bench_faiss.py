"""faiss IndexFlatL2 on the data bench_flat dumped, in the same run.

Usage: python3 bench/bench_faiss.py OUT_DIR SET [SET ...]
Prints one "RESULT {...}" JSON line per set: add throughput, single-query
median latency (k = 10), and batch throughput on 1 thread and on all cores.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import numpy as np


def load(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        n, d = np.frombuffer(f.read(8), dtype=np.uint32)
        return np.frombuffer(f.read(), dtype=np.float32).reshape(int(n), int(d))


def main() -> None:
    import faiss  # pip install faiss-cpu

    out = sys.argv[1]
    cores = os.cpu_count() or 1
    for name in sys.argv[2:]:
        xb = load(os.path.join(out, name + "_base.f32"))
        xq = load(os.path.join(out, name + "_query.f32"))
        faiss.omp_set_num_threads(cores)
        index = faiss.IndexFlatL2(xb.shape[1])
        t = time.perf_counter()
        for b in range(0, len(xb), 10000):
            index.add(xb[b:b + 10000])
        add_s = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        index.search(xq[:1], 10)
        reps = max(200, len(xq))
        lat = []
        for r in range(reps):
            q = xq[r % len(xq):r % len(xq) + 1]
            a = time.perf_counter()
            index.search(q, 10)
            lat.append(time.perf_counter() - a)
        qps = {}
        for threads in (1, cores):
            faiss.omp_set_num_threads(threads)
            runs = []
            for _ in range(3):
                a = time.perf_counter()
                index.search(xq, 10)
                runs.append(time.perf_counter() - a)
            qps[threads] = len(xq) / statistics.median(runs)
        res = {"set": name, "add_vps": len(xb) / add_s, "single_median_us": statistics.median(lat) * 1e6,
               "batch_qps_1t": qps[1], "batch_qps_all": qps[cores], "faiss": faiss.__version__}
        print("faiss %-10s add %9.0f vec/s | single query median %8.1f us | batch %8.0f qps (1 thread) %8.0f qps "
              "(all cores)" % (name, res["add_vps"], res["single_median_us"], qps[1], qps[cores]))
        print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
