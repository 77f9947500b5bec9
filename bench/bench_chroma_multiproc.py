"""Two Python processes on one Chroma client directory: one queries while the other ingests.

What a ChromaDB user with a worker that ingests beside a worker that serves
queries sees (chromadb's own PersistentClient supports one process per
directory, so there is no peer to run beside it; the figures are pysvdb's
against pysvdb's, with and without the writer, in one run):

- ``reader, no writer``: a process opens ``PersistentClient(path)`` and runs
  single queries (``n_results=10``, default ``include``) back to back for
  ``--seconds``; queries per second, median and p99 latency, and the
  process's CPU seconds (``resource.getrusage``: user + system, so its
  background indexer's linking of rows it replays counts too);
- ``reader, writer ingesting``: the same while a second process adds rows in
  batches of ``--batch`` for as long as the reader runs, as fast as ``add``
  returns (the Chroma client links on a background thread with a 1 MiB
  backlog bound) or held to ``--rate`` rows a second; rows added per second;
- ``writer alone``: the writer's rate with no reader attached.

The collection starts with ``--preload`` rows, linked. Every phase starts
from a fresh copy of it; phases alternate over ``--repeat`` rounds and the
medians are reported. The processes import pysvdb from this checkout and
libsvdb from ``$SVDB_LIBRARY`` when set (to compare two builds of the library).

Usage:
    SVDB_LIBRARY=$PWD/build/libsvdb.so python3 bench/bench_chroma_multiproc.py [--dim 128]
        [--preload 10000] [--batch 500] [--seconds 5] [--repeat 3] [--rate 0]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _rows(seed: int, n: int, dim: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _reader(path: str, dim: int, start: float, seconds: float, out: "mp.Queue[Dict[str, float]]") -> None:
    import pysvdb as chromadb

    col = chromadb.PersistentClient(path=path).get_collection("bench")
    queries = _rows(7, 256, dim)
    lat: List[float] = []
    while time.time() < start:
        time.sleep(0.001)
    cpu0, t0 = _cpu(), time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        q0 = time.perf_counter()
        col.query(query_embeddings=[queries[i % len(queries)]], n_results=10)
        lat.append(time.perf_counter() - q0)
        i += 1
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    lat.sort()
    out.put({"qps": len(lat) / wall, "p50_ms": lat[len(lat) // 2] * 1e3,
             "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, "cpu_s": cpu, "wall_s": wall})


def _writer(path: str, dim: int, batch: int, rate: float, start: float, seconds: float,
            out: "mp.Queue[Dict[str, float]]") -> None:
    import pysvdb as chromadb

    col = chromadb.PersistentClient(path=path).get_collection("bench")
    rows = _rows(11, 20 * batch, dim)
    while time.time() < start:
        time.sleep(0.001)
    t0, n, b = time.perf_counter(), 0, 0
    while time.perf_counter() - t0 < seconds:
        if rate > 0 and n / rate > time.perf_counter() - t0:  # held to `rate` rows a second
            time.sleep(min(n / rate - (time.perf_counter() - t0), 0.05))
            continue
        at = (b % 20) * batch
        col.add(ids=[f"w{b}-{j}" for j in range(batch)], embeddings=rows[at:at + batch])
        n += batch
        b += 1
    out.put({"rows_per_s": n / (time.perf_counter() - t0)})


def _build(path: str, n: int, dim: int) -> None:
    """The preloaded collection, every row linked, closed (saved) at exit."""
    import pysvdb as chromadb

    client = chromadb.PersistentClient(path=path)
    col = client.create_collection("bench")
    base = _rows(3, n, dim)
    for at in range(0, n, 5000):
        col.add(ids=[f"p{i}" for i in range(at, min(at + 5000, n))], embeddings=base[at:at + 5000])
    with col._engine.use(col._record) as db:  # pysvdb.chroma's handle of the collection
        db.index_wait()
    client.clear_system_cache()


def _fresh(template: str, work: str) -> str:
    path = os.path.join(work, "run")
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(template, path)
    return path


def _phase(template: str, work: str, dim: int, batch: int, rate: float, seconds: float, reader: bool,
           writer: bool) -> Dict[str, float]:
    path = _fresh(template, work)
    ctx = mp.get_context("spawn")
    out: "mp.Queue[Dict[str, float]]" = ctx.Queue()
    start = time.time() + 2.0  # every process has opened its client by then
    procs = []
    if reader:
        procs.append(ctx.Process(target=_reader, args=(path, dim, start, seconds, out)))
    if writer:
        procs.append(ctx.Process(target=_writer, args=(path, dim, batch, rate, start, seconds, out)))
    for p in procs:
        p.start()
    got: Dict[str, float] = {}
    for _ in procs:
        got.update(out.get(timeout=seconds + 120))
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a benchmark process failed (exit {p.exitcode})")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--preload", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.0, help="writer rows a second (0: as fast as add returns)")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="svdb-chroma-mp-")
    try:
        template = os.path.join(work, "template")
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_build, args=(template, a.preload, a.dim))
        p.start()
        p.join()
        if p.exitcode != 0:
            raise SystemExit("building the collection failed")
        runs: Dict[str, List[Dict[str, float]]] = {"alone": [], "with": [], "writer": []}
        for _ in range(a.repeat):
            runs["alone"].append(_phase(template, work, a.dim, a.batch, a.rate, a.seconds, True, False))
            runs["with"].append(_phase(template, work, a.dim, a.batch, a.rate, a.seconds, True, True))
            runs["writer"].append(_phase(template, work, a.dim, a.batch, a.rate, a.seconds, False, True))

        def med(phase: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[phase])

        lib = os.environ.get("SVDB_LIBRARY", "(the installed pysvdb's)")
        pace = f"{a.rate:,.0f} rows/s" if a.rate > 0 else "full speed"
        print(f"# bench_chroma_multiproc: {a.preload:,} x {a.dim} preloaded, batches of {a.batch} at {pace}, "
              f"{a.seconds:g} s phases, medians of {a.repeat}; libsvdb {lib}\n")
        print("| phase | reader QPS | vs no writer | p50 ms | p99 ms | reader CPU s per s | writer rows/s | vs alone |")
        print("|---|---|---|---|---|---|---|---|")
        q0 = med("alone", "qps")
        w0 = med("writer", "rows_per_s")
        print(f"| reader, no writer | {q0:,.0f} | | {med('alone', 'p50_ms'):.3f} | {med('alone', 'p99_ms'):.3f} | "
              f"{med('alone', 'cpu_s') / med('alone', 'wall_s'):.2f} | | |")
        q1, w1 = med("with", "qps"), med("with", "rows_per_s")
        print(f"| reader, writer ingesting | {q1:,.0f} | {q1 / q0:.2f} | {med('with', 'p50_ms'):.3f} | "
              f"{med('with', 'p99_ms'):.3f} | {med('with', 'cpu_s') / med('with', 'wall_s'):.2f} | {w1:,.0f} | "
              f"{w1 / w0:.2f} |")
        print(f"| writer alone | | | | | | {w0:,.0f} | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
