"""ChromaDB against pysvdb's ChromaDB-compatible API: same data, same calls, one run.

Ingests N documents (384-d embeddings, metadata, document text) in batches
with ``collection.add``, then runs the same single queries (n_results=10,
default include) without and with a ``where`` filter, through chromadb and
through pysvdb (``import pysvdb as chromadb``), each in its own subprocess.
Reports ingest vectors/s, query p50/p99 latency and throughput, recall@10
against exact results (numpy brute force), disk footprint after close and
peak memory (the process's peak RSS over its RSS once the data is loaded).

The embeddings are a seeded mixture of 1,000 Gaussian clusters, L2-normalised
(sentence-embedding models produce clustered, unit-length vectors); queries
are further points of the same mixture. Both backends use ChromaDB's default
collection configuration (l2, HNSW M=16, ef_construction=100, ef_search=100).

Usage:
    python3 bench/bench_chroma.py [--n 100000] [--queries 500] [--batch 5000]
        [--repeat 1] [--backends pysvdb,chromadb] [--report docs/performance-chroma.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

DIM = 384
K = 10
WHERE = {"category": "c3"}  # 10% of the rows


def generate(n: int, nq: int, seed: int = 42) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, DIM)).astype(np.float32)
    lab = rng.integers(0, 1000, n + nq)
    x = centers[lab] + 0.35 * rng.standard_normal((n + nq, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return {"base": np.ascontiguousarray(x[:n]), "queries": np.ascontiguousarray(x[n:])}


def rows(n: int) -> Dict[str, List[Any]]:
    ids = ["doc-%07d" % i for i in range(n)]
    metas = [
        {"category": "c%d" % (i % 10), "year": 2000 + (i * 7) % 25, "score": (i % 1000) / 1000.0, "public": i % 3 == 0}
        for i in range(n)
    ]
    docs = ["Document %d about topic %d, written in %d." % (i, i % 10, 2000 + (i * 7) % 25) for i in range(n)]
    return {"ids": ids, "metadatas": metas, "documents": docs}


def exact(base: np.ndarray, queries: np.ndarray, mask: Any = None) -> List[List[int]]:
    """Exact top-K by squared L2, optionally among the rows where mask is true."""
    idx = np.arange(len(base)) if mask is None else np.flatnonzero(mask)
    sub = base[idx]
    out = []
    norms = (sub * sub).sum(1)
    for s in range(0, len(queries), 100):
        q = queries[s : s + 100]
        d = norms[None, :] - 2 * q @ sub.T
        top = np.argpartition(d, K, axis=1)[:, :K]
        order = np.take_along_axis(d, top, 1).argsort(1)
        out.extend(idx[np.take_along_axis(top, order, 1)].tolist())
    return out


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def run_backend(backend: str, data_dir: str, batch: int) -> Dict[str, Any]:
    """Runs in a subprocess: one backend, from loading the data to the final close."""
    import warnings

    warnings.simplefilter("ignore")
    in_lib = [0.0]
    if backend == "chromadb":
        import chromadb as api
    else:
        import pysvdb as api  # type: ignore[no-redef]

        # Time spent in SvDBPython.add (libsvdb's svdb_add_batch: storing and
        # linking into the HNSW graph), to split ingest time between Python and C.
        inner = api.SvDBPython.add

        def timed_add(self: Any, *a: Any, **kw: Any) -> None:
            t = time.perf_counter()
            try:
                inner(self, *a, **kw)
            finally:
                in_lib[0] += time.perf_counter() - t

        api.SvDBPython.add = timed_add  # type: ignore[method-assign]
    base = np.load(os.path.join(data_dir, "base.npy"))
    queries = np.load(os.path.join(data_dir, "queries.npy"))
    r = rows(len(base))
    baseline = rss_kib()
    db_dir = os.path.join(data_dir, "db-" + backend)
    client = api.PersistentClient(path=db_dir)
    col = client.create_collection("bench", embedding_function=None)
    t0 = time.perf_counter()
    for s in range(0, len(base), batch):
        col.add(
            ids=r["ids"][s : s + batch],
            embeddings=base[s : s + batch],
            metadatas=r["metadatas"][s : s + batch],
            documents=r["documents"][s : s + batch],
        )
    ingest_s = time.perf_counter() - t0
    # The first query at once: pysvdb may still be linking rows, which it
    # then scans exactly; ChromaDB's add has indexed its rows before returning.
    a = time.perf_counter()
    col.query(query_embeddings=[queries[0]], n_results=K)
    at_once_ms = (time.perf_counter() - a) * 1e3
    if backend == "pysvdb":
        with col._engine.use(col._record) as db:  # pysvdb-only: the collection's SvDBPython handle
            db.index_wait()  # until every row is in the graph
    indexed_s = time.perf_counter() - t0 - at_once_ms / 1e3
    assert col.count() == len(base)
    results: Dict[str, Any] = {
        "backend": backend,
        "ingest_s": ingest_s,
        "ingest_vps": len(base) / ingest_s,
        "indexed_s": indexed_s,
        "indexed_vps": len(base) / indexed_s,
        "query_at_once_ms": at_once_ms,
    }
    if backend == "pysvdb":
        results["ingest_in_libsvdb_s"] = in_lib[0]
    for label, where in (("plain", None), ("where", WHERE)):
        first = time.perf_counter()
        col.query(query_embeddings=[queries[0]], n_results=K, where=where)
        first_s = time.perf_counter() - first
        lat, got = [], []
        for q in queries:
            a = time.perf_counter()
            res = col.query(query_embeddings=[q], n_results=K, where=where)
            lat.append(time.perf_counter() - a)
            got.append([int(i[4:]) for i in res["ids"][0]])
        lat.sort()
        results[label] = {
            "first_ms": first_s * 1e3,
            "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[min(len(lat) - 1, int(round(0.99 * len(lat))))] * 1e3,
            "qps": len(lat) / sum(lat),
            "ids": got,
        }
    client.close()
    results["disk_bytes"] = du(db_dir)
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_over_baseline_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
    shutil.rmtree(db_dir, ignore_errors=True)
    return results


def recall(got: List[List[int]], truth: List[List[int]]) -> float:
    hit = sum(len(set(g) & set(t)) for g, t in zip(got, truth))
    return hit / (K * len(truth))


def fmt_bytes(b: float) -> str:
    return "%.0f MiB" % (b / 2**20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--batch", type=int, default=5000, help="rows per add call (ChromaDB allows at most 5461)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend; the report quotes medians")
    ap.add_argument("--backends", default="pysvdb,chromadb")
    ap.add_argument("--report", default="", help="write a markdown report here (e.g. docs/performance-chroma.md)")
    ap.add_argument("--child", nargs=3, metavar=("BACKEND", "DATA_DIR", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--from-report",
        default="",
        help="rebuild the tables of --report from the raw results saved in this earlier report (no new runs)",
    )
    ap.add_argument("--date", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_backend(args.child[0], args.child[1], int(args.child[2]))))
        return
    if args.from_report:
        with open(args.from_report) as f:
            old = f.read()
        raw = old.split("```json\n", 1)[1].split("\n```", 1)[0]
        args.date = old.split("Generated by `bench/bench_chroma.py` on ", 1)[1].split(".", 1)[0].strip()
        write_report(json.loads(raw), args)
        return

    work = tempfile.mkdtemp(prefix="svdb-chroma-bench-")
    try:
        data = generate(args.n, args.queries)
        np.save(os.path.join(work, "base.npy"), data["base"])
        np.save(os.path.join(work, "queries.npy"), data["queries"])
        cats = np.array([i % 10 == 3 for i in range(args.n)])
        truth = {"plain": exact(data["base"], data["queries"]), "where": exact(data["base"], data["queries"], cats)}
        runs: Dict[str, List[Dict[str, Any]]] = {}
        for rep in range(args.repeat):
            for backend in args.backends.split(","):
                print("== %s run %d/%d" % (backend, rep + 1, args.repeat), flush=True)
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child", backend, work, str(args.batch)],
                    capture_output=True,
                    text=True,
                )
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if out.returncode != 0 or not line:
                    print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                    raise SystemExit("%s failed" % backend)
                r = json.loads(line[0][7:])
                for label in ("plain", "where"):
                    r[label]["recall"] = recall(r[label].pop("ids"), truth[label])
                runs.setdefault(backend, []).append(r)
                print(
                    "   ingest %.0f vec/s | query p50 %.2f ms p99 %.2f ms recall %.3f | where p50 %.2f ms p99 %.2f ms "
                    "recall %.3f | disk %s | peak +%.0f MiB"
                    % (
                        r["ingest_vps"],
                        r["plain"]["p50_ms"],
                        r["plain"]["p99_ms"],
                        r["plain"]["recall"],
                        r["where"]["p50_ms"],
                        r["where"]["p99_ms"],
                        r["where"]["recall"],
                        fmt_bytes(r["disk_bytes"]),
                        r["peak_over_baseline_mib"],
                    ),
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    write_report(runs, args)


def summarize(runs: Dict[str, List[Dict[str, Any]]], backends: List[str]) -> str:
    """The markdown tables: medians over the runs, and the issue's targets."""

    def med(backend: str, *path: str) -> float:
        vals = []
        for r in runs[backend]:
            v: Any = r
            for p in path:
                v = v[p]
            vals.append(float(v))
        return statistics.median(vals)

    def med_qps(backend: str, label: str) -> float:
        return 1e3 / med(backend, label, "p50_ms")

    rows_ = [
        ("ingest: add calls, until they return (vectors/s)", lambda b: med(b, "ingest_vps"), "%.0f", True),
        ("ingest: until every row is in the HNSW graph (vectors/s)", lambda b: med(b, "indexed_vps"), "%.0f", True),
        ("first query right after the last add (ms)", lambda b: med(b, "query_at_once_ms"), "%.1f", False),
        ("query p50 (ms)", lambda b: med(b, "plain", "p50_ms"), "%.2f", False),
        ("query p99 (ms)", lambda b: med(b, "plain", "p99_ms"), "%.2f", False),
        ("query throughput, 1 / median latency (queries/s)", lambda b: med_qps(b, "plain"), "%.0f", True),
        ("query throughput, 1 / mean latency (queries/s)", lambda b: med(b, "plain", "qps"), "%.0f", True),
        ("query recall@10", lambda b: med(b, "plain", "recall"), "%.3f", True),
        ("where query p50 (ms)", lambda b: med(b, "where", "p50_ms"), "%.2f", False),
        ("where query p99 (ms)", lambda b: med(b, "where", "p99_ms"), "%.2f", False),
        ("where throughput, 1 / median latency (queries/s)", lambda b: med_qps(b, "where"), "%.0f", True),
        ("where throughput, 1 / mean latency (queries/s)", lambda b: med(b, "where", "qps"), "%.0f", True),
        ("where query recall@10", lambda b: med(b, "where", "recall"), "%.3f", True),
        ("first query once indexed (ms)", lambda b: med(b, "plain", "first_ms"), "%.1f", False),
        ("disk after close (MiB)", lambda b: med(b, "disk_bytes") / 2**20, "%.0f", False),
        ("peak RSS over data baseline (MiB)", lambda b: med(b, "peak_over_baseline_mib"), "%.0f", False),
        ("peak RSS of the process (MiB)", lambda b: med(b, "peak_rss_mib"), "%.0f", False),
    ]
    pair = len(backends) == 2
    table = ["| metric | " + " | ".join(backends) + (" | pysvdb / chromadb |" if pair else " |")]
    table.append("|---" * (len(backends) + 1 + pair) + "|")
    for name, get, f, higher in rows_:
        vals = [get(b) for b in backends]
        row = "| %s | " % name + " | ".join(f % v for v in vals)
        if pair and vals[1]:
            row += " | %.2fx%s" % (vals[0] / vals[1], "" if higher else " (lower is better)")
        table.append(row + " |")
    text = "\n".join(table)
    if pair and backends[0] == "pysvdb":
        ingest_x = med("pysvdb", "ingest_vps") / med("chromadb", "ingest_vps")
        indexed_x = med("pysvdb", "indexed_vps") / med("chromadb", "indexed_vps")
        qps_x = med_qps("pysvdb", "plain") / med_qps("chromadb", "plain")
        qps_mean_x = med("pysvdb", "plain", "qps") / med("chromadb", "plain", "qps")
        wqps_x = med_qps("pysvdb", "where") / med_qps("chromadb", "where")
        wqps_mean_x = med("pysvdb", "where", "qps") / med("chromadb", "where", "qps")
        rec_ok = all(med("pysvdb", lab, "recall") >= med("chromadb", lab, "recall") for lab in ("plain", "where"))
        lib = statistics.median(r["ingest_in_libsvdb_s"] / r["ingest_s"] for r in runs["pysvdb"])

        def verdict(x: float, goal: float) -> str:
            return "met" if x >= goal else "NOT met"

        text += "\n\n" + "\n".join(
            [
                "| target (issue 5) | median latency | mean latency | |",
                "|---|---|---|---|",
                "| ingest >= 10x ChromaDB's: add calls (rows durable and searchable when they return) "
                "| %.2fx | | %s |" % (ingest_x, verdict(ingest_x, 10)),
                "| ingest >= 10x ChromaDB's: until every row is linked into the graph | %.2fx | | %s |"
                % (indexed_x, verdict(indexed_x, 10)),
                "| query throughput >= 5x | %.2fx | %.2fx | %s |" % (qps_x, qps_mean_x, verdict(qps_x, 5)),
                "| where-query throughput >= 5x | %.2fx | %.2fx | %s |" % (wqps_x, wqps_mean_x, verdict(wqps_x, 5)),
                "| recall equal or better | | | %s |" % ("met" if rec_ok else "NOT met"),
                "",
                "Throughput is one query at a time, so it is 1 / latency; the verdict uses the median "
                "latency, which the other processes on this shared machine disturb least (the mean is shown "
                "too). pysvdb's Chroma client opens collections with background indexing: an add returns once "
                "its rows are logged and stored, and a libsvdb thread links them into the HNSW graph "
                "afterwards; until then searches scan the unlinked rows exactly, so every row is found at "
                "once (the first query right after the last add pays for that scan). %.0f%% of the add "
                "calls' time is spent inside SvDBPython.add (libsvdb storing and logging the rows); the rest "
                "is the Python layer (argument checks, metadata and documents to JSON). ChromaDB's add "
                "indexes its rows before it returns, so both of its ingest rates are the same "
                "measurement." % (100 * lib),
            ]
        )
    return text


def write_report(runs: Dict[str, List[Dict[str, Any]]], args: argparse.Namespace) -> None:
    backends = [b for b in args.backends.split(",") if b in runs]
    text = summarize(runs, backends)
    print(text)
    if not args.report:
        return
    cmd = "python3 bench/bench_chroma.py --n %d --queries %d --batch %d --repeat %d --report %s" % (
        args.n,
        args.queries,
        args.batch,
        args.repeat,
        args.report,
    )
    versions = []
    for b in backends:
        mod = __import__(b)
        versions.append("%s %s" % (b, getattr(mod, "__version__", "?")))
    with open(args.report, "w") as f:
        f.write(
            REPORT.format(
                date=args.date or datetime.date.today().isoformat(),
                cmd=cmd,
                machine="%s, %d CPUs, Python %s" % (platform.machine(), os.cpu_count() or 0, platform.python_version()),
                versions=", ".join(versions),
                n=args.n,
                nq=args.queries,
                batch=args.batch,
                repeat=args.repeat,
                table=text,
                runs=json.dumps(runs, indent=1),
            )
        )
    print("report written to %s" % args.report)


REPORT = """# pysvdb vs ChromaDB: the same ingest and queries through both

Generated by `bench/bench_chroma.py` on {date}.

    {cmd}

Machine: {machine}. {versions}.

Workload: {n} documents (384-d float32 embeddings, a seeded mixture of 1,000 Gaussian clusters,
L2-normalised; metadata `category`/`year`/`score`/`public`; a short document text), added with
`collection.add` in batches of {batch}; then {nq} single queries (`n_results=10`, the default
`include`: metadatas, documents, distances), first without a filter, then with
`where={{"category": "c3"}}` (10% of the rows). Both backends run the same script code, each in
its own process, on a fresh directory, with ChromaDB's default collection configuration (l2,
HNSW M=16, ef_construction=100, ef_search=100). Recall@10 is against exact results (numpy brute
force, among the matching rows for the filtered queries). Disk is measured after the client is
closed; memory is the process's peak RSS minus its RSS once the data was loaded. Values are
medians over {repeat} run(s) per backend; the machine is small and shared, so single runs are noisy.

{table}

Per-call figures at 100,000 x 64 (get, update, upsert and delete of one row, the query latency while rows are still being linked, ingest until linked against hnswlib): `bench/bench_chroma_ops.py`, summarised in [performance.md](performance.md).

Raw results (every run):

```json
{runs}
```
"""


if __name__ == "__main__":
    main()
