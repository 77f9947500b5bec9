"""One library on one data set, in this process: the Python side of the ANN benchmark.

Libraries: ``pysvdb-hnsw``, ``pysvdb-flat``, ``hnswlib``, ``faiss-hnsw``
(IndexHNSWFlat), ``faiss-flat`` (IndexFlatL2, or IndexFlatIP on normalised
vectors for cosine) and ``usearch`` (float32). It measures what bench_ann.c
measures for svdb's C API, the same way: build time (batches of 10,000, all
cores; median of BUILD_REPS builds), resident memory growth across the
build and across a reload, the
reload time (median of 5), and per ef, as medians of REPS passes (each at
least MIN_TIME seconds): QPS of one batch call on one thread, of one call per
query on one thread, and of one batch call on all cores, with recall@10.

Usage: python3 bench_peer.py LIBRARY DATASET_JSON WORK_DIR [--efs 10,16,...]
                             [--m 16] [--efc 200] [--reps 5] [--min-time 0.2] [--queries N]
                             [--build-reps 1]
Prints one line "RESULT {...}" on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.metadata
import json
import os
import shutil
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from datasets import read_vecs

K = 10
BATCH = 10000
F32 = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

_libc = ctypes.CDLL("libc.so.6")


def mem_usage() -> Tuple[int, int]:
    """(VmRSS, VmHWM) in bytes, after returning free heap to the system."""
    gc.collect()
    _libc.malloc_trim(0)
    rss = hwm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def reset_peak() -> None:
    """Resets VmHWM to the current RSS (Linux 4.0+), so the build's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def remove(path: str) -> None:
    """Removes an index file or collection directory, if there."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        os.remove(path)


def normalized(x: F32) -> F32:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


class Adapter:
    """One library's index. search_batch and search_one return what the
    library returns (timed); batch_ids and one_ids turn that into row numbers
    (not timed)."""

    version = ""

    def __init__(self, dim: int, metric: str, m: int, efc: int, cores: int) -> None:
        self.dim, self.metric, self.m, self.efc, self.cores = dim, metric, m, efc, cores

    def prepare_queries(self, xq: F32) -> F32:
        return xq

    def build(self, xb: F32, path: str) -> None:
        raise NotImplementedError

    def save(self, path: str) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def load(self, path: str, n: int) -> None:
        raise NotImplementedError

    def set_ef(self, ef: int) -> None:
        pass

    def single_thread(self) -> None:
        """Called before the one-call-per-query pass."""

    def search_batch(self, xq: F32, threads: int) -> Any:
        raise NotImplementedError

    def search_one(self, q: F32) -> Any:
        raise NotImplementedError

    def batch_ids(self, raw: Any) -> Ids:
        return np.asarray(raw, dtype=np.int64)

    def one_ids(self, raw: Any) -> Ids:
        return np.asarray(raw, dtype=np.int64).reshape(-1)


class PySvdb(Adapter):
    def __init__(self, dim: int, metric: str, m: int, efc: int, cores: int, index: str) -> None:
        super().__init__(dim, metric, m, efc, cores)
        import pysvdb

        self.pysvdb: Any = pysvdb
        self.version = pysvdb.__version__ if hasattr(pysvdb, "__version__") else ""
        self.index = index
        self.db: Any = None
        self.ef: Optional[int] = None

    def build(self, xb: F32, path: str) -> None:
        self.db = self.pysvdb.SvDBPython(path, dim=self.dim, metric=self.metric, index=self.index, M=self.m,
                                         ef_construction=self.efc)
        ids = [str(i) for i in range(len(xb))]
        for b in range(0, len(xb), BATCH):
            self.db.add(ids[b : b + BATCH], xb[b : b + BATCH])

    def save(self, path: str) -> None:
        self.db.close()  # checkpoints the collection

    def drop(self) -> None:
        if self.db is not None:
            self.db.close()
        self.db = None

    def load(self, path: str, n: int) -> None:
        self.db = self.pysvdb.SvDBPython(path, create=False)

    def set_ef(self, ef: int) -> None:
        self.ef = ef or None

    def search_batch(self, xq: F32, threads: int) -> Any:
        return self.db.search_batch(xq, K, ef=self.ef, threads=threads).ids

    def search_one(self, q: F32) -> Any:
        return self.db.search(q, K, ef=self.ef)

    def batch_ids(self, raw: Any) -> Ids:
        return np.array([[int(s) if s is not None else -1 for s in row] for row in raw], dtype=np.int64)

    def one_ids(self, raw: Any) -> Ids:
        return np.array([int(i) for i, _ in raw], dtype=np.int64)


class Hnswlib(Adapter):
    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        import hnswlib

        self.hnswlib = hnswlib
        self.version = importlib.metadata.version("hnswlib")
        self.index: Any = None

    def _new(self) -> Any:
        return self.hnswlib.Index(space="cosine" if self.metric == "cosine" else "l2", dim=self.dim)

    def build(self, xb: F32, path: str) -> None:
        self.index = self._new()
        self.index.init_index(max_elements=len(xb), M=self.m, ef_construction=self.efc, random_seed=100)
        for b in range(0, len(xb), BATCH):
            self.index.add_items(xb[b : b + BATCH], np.arange(b, min(b + BATCH, len(xb))), num_threads=self.cores)

    def save(self, path: str) -> None:
        self.index.save_index(path)

    def drop(self) -> None:
        self.index = None

    def load(self, path: str, n: int) -> None:
        self.index = self._new()
        self.index.load_index(path, max_elements=n)

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)

    def search_batch(self, xq: F32, threads: int) -> Any:
        return self.index.knn_query(xq, K, num_threads=threads)[0]

    def search_one(self, q: F32) -> Any:
        return self.index.knn_query(q, K, num_threads=1)[0]


class Faiss(Adapter):
    def __init__(self, dim: int, metric: str, m: int, efc: int, cores: int, hnsw: bool) -> None:
        super().__init__(dim, metric, m, efc, cores)
        import faiss

        self.faiss = faiss
        self.version = faiss.__version__
        self.hnsw = hnsw
        self.index: Any = None

    def prepare_queries(self, xq: F32) -> F32:
        return normalized(xq) if self.metric == "cosine" else xq

    def build(self, xb: F32, path: str) -> None:
        f = self.faiss
        f.omp_set_num_threads(self.cores)
        mt = f.METRIC_INNER_PRODUCT if self.metric == "cosine" else f.METRIC_L2
        if self.hnsw:
            self.index = f.IndexHNSWFlat(self.dim, self.m, mt)
            self.index.hnsw.efConstruction = self.efc
        else:
            self.index = f.IndexFlatIP(self.dim) if self.metric == "cosine" else f.IndexFlatL2(self.dim)
        for b in range(0, len(xb), BATCH):
            chunk = xb[b : b + BATCH]
            self.index.add(normalized(chunk) if self.metric == "cosine" else chunk)

    def save(self, path: str) -> None:
        self.faiss.write_index(self.index, path)

    def drop(self) -> None:
        self.index = None

    def load(self, path: str, n: int) -> None:
        self.index = self.faiss.read_index(path)

    def set_ef(self, ef: int) -> None:
        if self.hnsw:
            self.index.hnsw.efSearch = ef

    def search_batch(self, xq: F32, threads: int) -> Any:
        self.faiss.omp_set_num_threads(threads)
        return self.index.search(xq, K)[1]

    def search_one(self, q: F32) -> Any:
        # the thread count is set to 1 once, before the per-query pass
        return self.index.search(q[None, :], K)[1]

    def single_thread(self) -> None:
        self.faiss.omp_set_num_threads(1)


class Usearch(Adapter):
    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        import usearch
        from usearch.index import Index

        self.Index = Index
        self.version = usearch.__version__
        self.index: Any = None

    def build(self, xb: F32, path: str) -> None:
        self.index = self.Index(ndim=self.dim, metric="cos" if self.metric == "cosine" else "l2sq", dtype="f32",
                                connectivity=self.m, expansion_add=self.efc)
        for b in range(0, len(xb), BATCH):
            self.index.add(np.arange(b, min(b + BATCH, len(xb))), xb[b : b + BATCH], threads=self.cores)

    def save(self, path: str) -> None:
        self.index.save(path)

    def drop(self) -> None:
        self.index = None

    def load(self, path: str, n: int) -> None:
        self.index = self.Index.restore(path)

    def set_ef(self, ef: int) -> None:
        self.index.expansion_search = ef

    def search_batch(self, xq: F32, threads: int) -> Any:
        return self.index.search(xq, K, threads=threads).keys

    def search_one(self, q: F32) -> Any:
        return self.index.search(q, K, threads=1).keys


def make(lib: str, dim: int, metric: str, m: int, efc: int, cores: int) -> Tuple[Adapter, str]:
    """The adapter and its index kind ("hnsw" or "flat")."""
    if lib == "pysvdb-hnsw":
        return PySvdb(dim, metric, m, efc, cores, "hnsw"), "hnsw"
    if lib == "pysvdb-flat":
        return PySvdb(dim, metric, m, efc, cores, "flat"), "flat"
    if lib == "hnswlib":
        return Hnswlib(dim, metric, m, efc, cores), "hnsw"
    if lib == "faiss-hnsw":
        return Faiss(dim, metric, m, efc, cores, True), "hnsw"
    if lib == "faiss-flat":
        return Faiss(dim, metric, m, efc, cores, False), "flat"
    if lib == "usearch":
        return Usearch(dim, metric, m, efc, cores), "hnsw"
    raise SystemExit("unknown library %r" % lib)


def recall(found: Ids, gt: npt.NDArray[np.int32]) -> float:
    hits = sum(len(set(f[:K].tolist()) & set(g[:K].tolist())) for f, g in zip(found, gt))
    return hits / (len(gt) * K)


def timed(fn: Callable[[], Any], rounds: int) -> Tuple[float, Any]:
    t = time.perf_counter()
    out = None
    for _ in range(rounds):
        out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("dataset_json")
    ap.add_argument("work_dir")
    ap.add_argument("--efs", default="10,16,24,32,48,64,96,128,192,256")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--queries", type=int, default=0)
    ap.add_argument("--build-reps", type=int, default=1)
    a = ap.parse_args()
    ds: Dict[str, Any] = json.loads(a.dataset_json) if a.dataset_json.startswith("{") else json.load(
        open(a.dataset_json))
    cores = os.cpu_count() or 1
    xb = np.ascontiguousarray(read_vecs(ds["base"]), dtype=np.float32)
    xq = np.ascontiguousarray(read_vecs(ds["query"]), dtype=np.float32)
    gt = read_vecs(ds["gt"], np.int32).astype(np.int32)
    if a.queries:
        xq, gt = xq[: a.queries], gt[: a.queries]
    n, dim = xb.shape
    ad, kind = make(a.library, dim, ds["metric"], a.m, a.efc, cores)
    xq = ad.prepare_queries(xq)
    tag = "%s %s" % (a.library, ds["name"])
    path = os.path.join(a.work_dir, "%s.%s" % (ds["name"], a.library))
    remove(path)

    builds: List[float] = []
    rss0 = rss1 = hwm1 = 0
    for r in range(a.build_reps):  # the first build gives the memory figures
        if r:
            ad.drop()
            remove(path)
        else:
            rss0, _ = mem_usage()
            reset_peak()
        t = time.perf_counter()
        ad.build(xb, path)
        builds.append(time.perf_counter() - t)
        if not r:
            rss1, hwm1 = mem_usage()
    build_s = statistics.median(builds)
    t = time.perf_counter()
    ad.save(path)
    save_s = time.perf_counter() - t
    ad.drop()
    del xb
    rss2, _ = mem_usage()
    opens: List[float] = []
    for r in range(5):
        if r:
            ad.drop()
        t = time.perf_counter()
        ad.load(path, n)
        opens.append(time.perf_counter() - t)
    rss3, _ = mem_usage()
    print("  %s: build %.2f s, save %.2f s, reload %.1f ms" % (tag, build_s, save_s, statistics.median(opens) * 1e3),
          file=sys.stderr, flush=True)

    sweep = []
    efs = [int(e) for e in a.efs.split(",")] if kind == "hnsw" else [0]
    for ef in efs:
        ad.set_ef(ef)
        once, _ = timed(lambda: ad.search_batch(xq, 1), 1)
        rounds = 1 if once >= a.min_time else int(a.min_time / max(once, 1e-6)) + 1
        point: Dict[str, float] = {"ef": ef}
        modes: List[Tuple[str, Callable[[], Any], Callable[[Any], Ids]]] = [
            ("1t", lambda: ad.search_batch(xq, 1), ad.batch_ids),
            ("1t_single", lambda: [ad.search_one(q) for q in xq], lambda raw: np.stack([ad.one_ids(r) for r in raw])),
            ("all", lambda: ad.search_batch(xq, cores), ad.batch_ids),
        ]
        for mode, fn, to_ids in modes:
            if mode == "1t_single":
                ad.single_thread()
            runs = []
            for _ in range(a.reps):
                s, raw = timed(fn, rounds)
                runs.append(s)
            point["qps_" + mode] = len(xq) * rounds / statistics.median(runs)
            point["recall" if mode == "1t" else "recall_" + mode.replace("1t_", "")] = recall(to_ids(raw), gt)
        print("  %s ef %3d: recall %.4f  qps 1t %8.0f  1t single %8.0f  all %8.0f" % (
            tag, ef, point["recall"], point["qps_1t"], point["qps_1t_single"], point["qps_all"]),
            file=sys.stderr, flush=True)
        sweep.append(point)
    ad.drop()
    remove(path)
    res = {"library": a.library, "index": kind, "set": ds["name"], "metric": ds["metric"], "n": n, "dim": dim,
           "nq": len(xq), "m": a.m, "ef_construction": a.efc, "cores": cores, "version": ad.version,
           "build_s": build_s, "close_s": save_s, "reopen_ms": statistics.median(opens) * 1e3,
           "first_reopen_ms": opens[0] * 1e3, "mem_build_bytes": rss1 - rss0, "mem_peak_bytes": hwm1 - rss0,
           "mem_reopen_bytes": rss3 - rss2, "sweep": sweep}
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
