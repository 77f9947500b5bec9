"""Per-call figures of the Chroma client (``import pysvdb as chromadb``) against chromadb.

The same rows (N x DIM float32, a seeded mixture of Gaussian clusters, with
metadata and a short document) and the same calls go through each backend, in
its own subprocess, in one run:

- ingest: ``collection.add`` in batches of 5,000 (or the client's
  ``get_max_batch_size()`` if smaller); the time until the calls return;
- pysvdb only: the time from the first ``add`` until every row is linked into
  the HNSW graph, in a collection nothing else touches, against hnswlib's
  single-threaded build of the same rows (M=16, ef_construction=100,
  ``add_items(..., num_threads=1)``) in its own subprocess of the same run.
  chromadb links its rows into its HNSW index before ``add`` returns;
- a query timeline from the moment the last ``add`` returns: single queries
  (``n_results=10``, default ``include``) back to back for ``--timeline``
  seconds, or until the rows are all linked plus ``--tail`` seconds, whichever
  is later (at most ``--timeline-max``); median and p99 latency per
  ``--slice`` seconds, with the rows still waiting to be linked;
- pysvdb only: ``get(ids=[1 id])`` and ``update`` of one row right after
  an ingest, while its rows are still being linked (``--during`` calls);
- once linked: ``--queries`` single queries (median, p99, recall@10 against
  numpy brute force); ``get(ids=[1 id])``, ``get(ids=[10 ids])``,
  ``update(ids=[1 id], metadatas=[...])``, ``upsert`` of one existing row
  (embedding, metadata, document) and ``delete`` of one row, each a median
  over many calls on random existing ids (the same ids for both backends).

``--repeat R`` runs every backend R times (interleaved) and reports the
median of each figure; every run's figures are kept in the raw results.

Rows waiting to be linked are read from ``collection.get_indexing_status()``
when the client implements it, else through pysvdb's private
``collection._engine.use(collection._record)`` (pysvdb.chroma's handle of the collection, an ``SvDBPython``:
``index_pending()``, ``index_wait()``); chromadb's local client implements
neither, and its rows are linked when ``add`` returns.

The child processes import pysvdb from this checkout (the directory above
bench/) and libsvdb from ``$SVDB_LIBRARY`` when set; the report names both.

Usage:
    python3 bench/bench_chroma_ops.py [--n 100000] [--dim 64] [--quick]
        [--repeat 3] [--backends pysvdb,chromadb,hnswlib] [--report bench/results/chroma-ops.md]
    python3 bench/bench_chroma_ops.py --from-report OLD.md --report NEW.md   # re-render, no runs
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

K = 10
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- data


def generate(n: int, dim: int, nq: int, seed: int = 42) -> Dict[str, np.ndarray]:
    """Clustered, unit-length rows (as sentence embeddings are), queries from the same mixture,
    and spare rows for upserts."""
    rng = np.random.default_rng(seed)
    nc = max(10, min(1000, n // 100))
    centers = rng.standard_normal((nc, dim)).astype(np.float32)
    total = n + nq + 1000
    x = centers[rng.integers(0, nc, total)] + 0.35 * rng.standard_normal((total, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return {
        "base": np.ascontiguousarray(x[:n]),
        "queries": np.ascontiguousarray(x[n : n + nq]),
        "spare": np.ascontiguousarray(x[n + nq :]),
    }


def row_id(i: int) -> str:
    return "doc-%07d" % i


def meta(i: int, rev: int = 0) -> Dict[str, Any]:
    return {"category": "c%d" % (i % 10), "year": 2000 + (i * 7) % 25, "score": (i % 1000) / 1000.0, "public": i % 3 == 0, "rev": rev}


def doc(i: int, rev: int = 0) -> str:
    return "Document %d about topic %d, written in %d (revision %d)." % (i, i % 10, 2000 + (i * 7) % 25, rev)


def exact(base: np.ndarray, queries: np.ndarray) -> List[List[int]]:
    norms = (base * base).sum(1)
    out: List[List[int]] = []
    for s in range(0, len(queries), 200):
        d = norms[None, :] - 2 * queries[s : s + 200] @ base.T
        top = np.argpartition(d, K, axis=1)[:, :K]
        order = np.take_along_axis(d, top, 1).argsort(1)
        out.extend(np.take_along_axis(top, order, 1).tolist())
    return out


def pct(sorted_vals: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_vals[min(len(sorted_vals) - 1, max(0, int(round(p * len(sorted_vals))) - 1))]


def summary_ms(lat_s: List[float]) -> Dict[str, float]:
    s = sorted(lat_s)
    return {"n": len(s), "median_ms": statistics.median(s) * 1e3, "p99_ms": pct(s, 0.99) * 1e3, "max_ms": s[-1] * 1e3}


# ---------------------------------------------------------------- children


class Linking:
    """How many rows wait to be linked into the collection's graph, and waiting until none do."""

    def __init__(self, col: Any) -> None:
        self.col = col
        self.via = "none"
        try:
            self._from_status(col.get_indexing_status())
            self.via = "get_indexing_status()"
        except (NotImplementedError, AttributeError, KeyError, TypeError):
            engine, rec = getattr(col, "_engine", None), getattr(col, "_record", None)
            if engine is not None and rec is not None and hasattr(engine, "use"):
                self.via = "_engine.use(_record)"  # pysvdb.chroma: the collection's SvDBPython handle

    def _db(self) -> Any:
        with self.col._engine.use(self.col._record) as db:
            return db

    @staticmethod
    def _from_status(st: Any) -> int:
        v = st["num_unindexed_ops"] if isinstance(st, dict) else st.num_unindexed_ops
        return int(v)

    def pending(self) -> Optional[int]:
        if self.via == "get_indexing_status()":
            return self._from_status(self.col.get_indexing_status())
        if self.via == "_engine.use(_record)":
            return int(self._db().index_pending())
        return None

    def wait(self) -> None:
        if self.via == "_engine.use(_record)":
            self._db().index_wait()
            return
        while self.via != "none" and self.pending():
            time.sleep(0.005)


def ingest(col: Any, base: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    for s in range(0, len(base), batch):
        e = min(len(base), s + batch)
        col.add(
            ids=[row_id(i) for i in range(s, e)],
            embeddings=base[s:e],
            metadatas=[meta(i) for i in range(s, e)],
            documents=[doc(i) for i in range(s, e)],
        )
    return t0


def timeline(col: Any, link: Linking, queries: np.ndarray, t_end: float, a: Dict[str, Any]) -> Dict[str, Any]:
    """Single queries back to back from t_end (the moment the last add returned)."""
    slice_s, lat, slices = a["slice"], [], []
    cur: List[float] = []
    cur_start, pend, pend_max = 0.0, link.pending(), 0
    linked_at: Optional[float] = 0.0 if link.via == "none" else (0.0 if pend == 0 else None)
    next_poll = 0.0
    i = 0
    first_ms = None
    while True:
        now = time.perf_counter() - t_end
        if now >= next_poll and link.via != "none":
            pend = link.pending()
            pend_max = max(pend_max, pend or 0)
            if pend == 0 and linked_at is None:
                linked_at = now
            next_poll = now + 0.1
        if now >= cur_start + slice_s:
            if cur:
                slices.append(dict(summary_ms(cur), t0=cur_start, pending_end=pend, pending_max=pend_max))
            cur, cur_start, pend_max = [], cur_start + slice_s, pend or 0
            done = now >= a["timeline"] and linked_at is not None and now >= linked_at + a["tail"]
            if done or now >= a["timeline_max"]:
                break
        q = time.perf_counter()
        col.query(query_embeddings=[queries[i % len(queries)]], n_results=K)
        dt = time.perf_counter() - q
        if first_ms is None:
            first_ms = dt * 1e3
        cur.append(dt)
        lat.append(dt)
        i += 1
    return {
        "first_query_ms": first_ms,
        "linked_at_s": linked_at,
        "all": summary_ms(lat),
        "slices": slices,
        "duration_s": time.perf_counter() - t_end,
    }


def timed(calls: int, fn: Callable[[int], Any]) -> Dict[str, float]:
    fn(0)  # the first call may compile or load; not counted
    lat = []
    for k in range(1, calls + 1):
        a = time.perf_counter()
        fn(k)
        lat.append(time.perf_counter() - a)
    return summary_ms(lat)


def run_client(backend: str, work: str, a: Dict[str, Any]) -> Dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")
    if backend != "chromadb":
        sys.path.insert(0, ROOT)  # this checkout's pysvdb, not a pip-installed one
    api: Any = importlib.import_module(backend)
    base = np.load(os.path.join(work, "base.npy"))
    queries = np.load(os.path.join(work, "queries.npy"))
    spare = np.load(os.path.join(work, "spare.npy"))
    n = len(base)
    out: Dict[str, Any] = {
        "backend": backend,
        "version": getattr(api, "__version__", "?"),
        "module": os.path.dirname(api.__file__),
    }
    if backend != "chromadb":
        out["library"] = str(getattr(api, "library_path", "?"))
    db_dir = os.path.join(work, "db-" + backend)
    shutil.rmtree(db_dir, ignore_errors=True)  # a fresh directory for every run
    client = api.PersistentClient(path=db_dir)
    batch = min(a["batch"], client.get_max_batch_size())
    out["batch"] = batch

    def log(msg: str) -> None:
        print("   [%s] %s" % (backend, msg), file=sys.stderr, flush=True)

    # 1. Ingest into a collection nothing else touches, then the wait until every row is linked.
    col = client.create_collection("bench-ingest", embedding_function=None)
    link = Linking(col)
    out["pending_via"] = link.via
    t0 = ingest(col, base, batch)
    out["add_s"] = time.perf_counter() - t0
    if link.via != "none":
        link.wait()
        out["linked_s"] = time.perf_counter() - t0
    else:
        out["linked_s"] = out["add_s"] if backend == "chromadb" else None
    log("add %.2f s, linked %s s (via %s)" % (out["add_s"], out["linked_s"], link.via))

    # 2. pysvdb: one-row reads and writes right after an ingest, while its rows are being linked
    # (chromadb's rows are linked when add returns: its figures below hold from that moment).
    rng = np.random.default_rng(7)
    pick = rng.permutation(n)
    if backend != "chromadb" and link.via != "none" and a["during"] > 0:
        client.delete_collection("bench-ingest")
        col = client.create_collection("bench-during", embedding_function=None)
        link = Linking(col)
        ingest(col, base, batch)
        dur: Dict[str, Any] = {"pending_start": link.pending()}
        dur["get1"] = timed(a["during"], lambda k: col.get(ids=[row_id(int(pick[k]))]))
        dur["update"] = timed(
            a["during"] // 2, lambda k: col.update(ids=[row_id(int(pick[k]))], metadatas=[meta(int(pick[k]), rev=1)])
        )
        dur["pending_end"] = link.pending()
        out["during_linking"] = dur
        log("while linking (%s -> %s rows waiting): get1 %.3f ms, update %.3f ms"
            % (dur["pending_start"], dur["pending_end"], dur["get1"]["median_ms"], dur["update"]["median_ms"]))
        link.wait()
        client.delete_collection("bench-during")
    elif backend != "chromadb":
        client.delete_collection("bench-ingest")

    # 3. The query timeline right after an ingest. pysvdb: a fresh collection (the earlier ones
    # are dropped); chromadb links inside add, so its first collection serves as is.
    if backend != "chromadb":
        col = client.create_collection("bench", embedding_function=None)
        link = Linking(col)
        t0 = ingest(col, base, batch)
        out["add2_s"] = time.perf_counter() - t0
    out["timeline"] = timeline(col, link, queries, time.perf_counter(), a)
    log(
        "timeline %.1f s, %d queries, first %.1f ms, linked at %s s"
        % (out["timeline"]["duration_s"], out["timeline"]["all"]["n"], out["timeline"]["first_query_ms"], out["timeline"]["linked_at_s"])
    )
    link.wait()
    assert col.count() == n, (col.count(), n)

    # 4. Once linked: queries with recall, then one-row reads and writes.
    lat, got = [], []
    for q in queries:
        s = time.perf_counter()
        res = col.query(query_embeddings=[q], n_results=K)
        lat.append(time.perf_counter() - s)
        got.append([int(x[4:]) for x in res["ids"][0]])
    out["query_linked"] = summary_ms(lat)
    out["query_ids"] = got

    one = pick[: a["gets"] + 1]
    got1 = col.get(ids=[row_id(int(one[0]))])
    assert got1["ids"] == [row_id(int(one[0]))] and got1["metadatas"][0]["rev"] == 0, got1
    out["get1"] = timed(a["gets"], lambda k: col.get(ids=[row_id(int(one[k]))]))
    tens = [rng.choice(n, 10, replace=False) for _ in range(a["gets"] + 1)]
    out["get10"] = timed(a["gets"], lambda k: col.get(ids=[row_id(int(i)) for i in tens[k]]))
    upd = pick[: a["updates"] + 1]
    out["update"] = timed(a["updates"], lambda k: col.update(ids=[row_id(int(upd[k]))], metadatas=[meta(int(upd[k]), rev=1)]))
    got1 = col.get(ids=[row_id(int(upd[1]))])
    assert got1["metadatas"][0]["rev"] == 1, got1
    ups = pick[: a["writes"] + 1]
    out["upsert"] = timed(
        a["writes"],
        lambda k: col.upsert(
            ids=[row_id(int(ups[k]))],
            embeddings=spare[k % len(spare) : k % len(spare) + 1],
            metadatas=[meta(int(ups[k]), rev=2)],
            documents=[doc(int(ups[k]), rev=2)],
        ),
    )
    dele = pick[-(a["writes"] + 1) :]
    out["delete"] = timed(a["writes"], lambda k: col.delete(ids=[row_id(int(dele[k]))]))
    assert col.count() == n - len(dele), (col.count(), n - len(dele))
    log("get1 %.3f ms, update %.3f ms" % (out["get1"]["median_ms"], out["update"]["median_ms"]))
    close = getattr(client, "close", None)  # chromadb's local client has no close()
    if close is not None:
        close()
    shutil.rmtree(db_dir, ignore_errors=True)
    return out


def run_hnswlib(work: str, a: Dict[str, Any]) -> Dict[str, Any]:
    import hnswlib

    base = np.load(os.path.join(work, "base.npy"))
    queries = np.load(os.path.join(work, "queries.npy"))
    idx = hnswlib.Index(space="l2", dim=base.shape[1])
    idx.init_index(max_elements=len(base), M=16, ef_construction=100, random_seed=100)
    t0 = time.perf_counter()
    idx.add_items(base, np.arange(len(base)), num_threads=1)
    build_s = time.perf_counter() - t0
    idx.set_ef(100)
    lat = []
    for q in queries:
        s = time.perf_counter()
        idx.knn_query(q, k=K, num_threads=1)
        lat.append(time.perf_counter() - s)
    from importlib.metadata import version

    return {"backend": "hnswlib", "version": version("hnswlib"), "build_s": build_s, "query": summary_ms(lat)}


# ---------------------------------------------------------------- parent


def child(backend: str, work: str, a: Dict[str, Any]) -> Dict[str, Any]:
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", backend, work, json.dumps(a)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # stderr: progress, shown live
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode != 0 or not line:
        print(p.stdout[-3000:], file=sys.stderr)
        raise SystemExit("%s failed (exit %d)" % (backend, p.returncode))
    return dict(json.loads(line[0][7:]))


def median_tree(runs: List[Any]) -> Any:
    """The runs' medians, figure by figure (numbers: median; other values: the first run's);
    lists (the timeline's slices) index by index, over the runs that reach that index."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_tree([r[k] for r in runs if isinstance(r, dict) and k in r]) for k in first}
    if isinstance(first, list):
        longest = max(len(r) for r in runs)
        return [median_tree([r[i] for r in runs if len(r) > i]) for i in range(longest)]
    nums = [r for r in runs if isinstance(r, (int, float)) and not isinstance(r, bool)]
    if nums and not isinstance(first, bool):
        return statistics.median(nums)
    return first


def recall(got: List[List[int]], truth: List[List[int]]) -> float:
    return sum(len(set(g) & set(t)) for g, t in zip(got, truth)) / (K * len(truth))


def verdict(x: Optional[float], goal: float) -> str:
    return "n/a" if x is None else ("met" if x >= goal else "NOT met")


def render(res: Dict[str, Any]) -> str:
    """The markdown tables: figures, ratios and the issue's targets."""
    p, c, h = res.get("pysvdb"), res.get("chromadb"), res.get("hnswlib")
    lines: List[str] = []

    def f(v: Optional[float], fmt: str) -> str:
        return "–" if v is None else fmt % v

    def speedup(name: str, key: str) -> Optional[float]:
        if not (p and c):
            return None
        return float(c[name][key] / p[name][key])

    dur = p.get("during_linking") if p else None
    n = res["args"]["n"]
    vps = {b: (n / r["add_s"] if r else None) for b, r in (("p", p), ("c", c))}
    linked = n / p["linked_s"] if p and p.get("linked_s") else None
    h_vps = n / h["build_s"] if h else None
    tl_c = c["timeline"]["all"]["median_ms"] if c else None
    worst = None
    if p and tl_c and p["timeline"]["slices"]:
        worst = min(float(tl_c) / s["median_ms"] for s in p["timeline"]["slices"])
    # name, pysvdb, chromadb, hnswlib, pysvdb's speedup, format, target, goal
    rows: List[Any] = [
        ("ingest, until the add calls return (vectors/s)", vps["p"], vps["c"], None,
         vps["p"] / vps["c"] if vps["p"] and vps["c"] else None, "%.0f", ">= 10x chromadb", 10.0),
        ("ingest, until every row is linked (vectors/s)", linked, vps["c"], h_vps,
         linked / h_vps if linked and h_vps else None, "%.0f", ">= hnswlib 1-thread build", 1.0),
        ("first query right after the last add (ms)", p and p["timeline"]["first_query_ms"],
         c and c["timeline"]["first_query_ms"], None,
         c["timeline"]["first_query_ms"] / p["timeline"]["first_query_ms"] if p and c else None, "%.2f", "(one call)", None),
        ("query after the ingest: slowest %g s slice, median (ms)" % res["args"]["slice"],
         p and max(s["median_ms"] for s in p["timeline"]["slices"]), tl_c, None, worst, "%.2f",
         ">= 3x chromadb at every moment", 3.0),
        ("query after the ingest: whole timeline, median (ms)", p and p["timeline"]["all"]["median_ms"], tl_c, None,
         tl_c / p["timeline"]["all"]["median_ms"] if p and c else None, "%.2f", "", None),
        ("query once linked, median (ms)", p and p["query_linked"]["median_ms"], c and c["query_linked"]["median_ms"],
         h and h["query"]["median_ms"], speedup("query_linked", "median_ms"), "%.3f", ">= 3x chromadb", 3.0),
        ("query once linked, p99 (ms)", p and p["query_linked"]["p99_ms"], c and c["query_linked"]["p99_ms"],
         h and h["query"]["p99_ms"], speedup("query_linked", "p99_ms"), "%.3f", "", None),
        ("query once linked, recall@10", p and p["recall"], c and c["recall"], None, None, "%.3f", "", None),
        ("get(ids=[1 id]), median (ms)", p and p["get1"]["median_ms"], c and c["get1"]["median_ms"], None,
         speedup("get1", "median_ms"), "%.3f", ">= 5x chromadb", 5.0),
        ("get(ids=[1 id]) right after an ingest, while linking, median (ms)", dur and dur["get1"]["median_ms"],
         c and c["get1"]["median_ms"], None, c["get1"]["median_ms"] / dur["get1"]["median_ms"] if dur and c else None,
         "%.3f", ">= 5x chromadb", 5.0),
        ("get(ids=[10 ids]), median (ms)", p and p["get10"]["median_ms"], c and c["get10"]["median_ms"], None,
         speedup("get10", "median_ms"), "%.3f", "", None),
        ("update(ids=[1 id], metadatas=[...]), median (ms)", p and p["update"]["median_ms"],
         c and c["update"]["median_ms"], None, speedup("update", "median_ms"), "%.3f", ">= 5x chromadb", 5.0),
        ("update(ids=[1 id], metadatas=[...]) right after an ingest, while linking, median (ms)",
         dur and dur["update"]["median_ms"], c and c["update"]["median_ms"], None,
         c["update"]["median_ms"] / dur["update"]["median_ms"] if dur and c else None, "%.3f", ">= 5x chromadb", 5.0),
        ("upsert of 1 existing row (embedding, metadata, document), median (ms)", p and p["upsert"]["median_ms"],
         c and c["upsert"]["median_ms"], None, speedup("upsert", "median_ms"), "%.3f", "", None),
        ("delete(ids=[1 id]), median (ms)", p and p["delete"]["median_ms"], c and c["delete"]["median_ms"], None,
         speedup("delete", "median_ms"), "%.3f", "", None),
    ]
    lines.append("| measure | pysvdb | chromadb | hnswlib, 1 thread | pysvdb speedup | target | verdict |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, pv, cv, hv, ratio, fmt, target, goal in rows:
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s |"
            % (name, f(pv, fmt), f(cv, fmt), f(hv, fmt), f(ratio, "%.2fx"), target, verdict(ratio, goal) if goal else "")
        )
    lines.append("")
    lines.append(
        "Speedup: chromadb's figure over pysvdb's (vectors/s: pysvdb's over the other's); for ingest until linked, "
        "against hnswlib's single-threaded build of the same rows (the index alone: no metadata, documents or log). "
        "The query target is checked on the slowest slice of the timeline against chromadb's timeline median "
        "(chromadb's rows are linked when add returns, so its timeline is flat)."
    )
    if h:
        lines.append("")
        lines.append(
            "hnswlib %s, same rows: single-threaded build %.2f s (%.0f vectors/s); single query at ef=100, "
            "median %.3f ms, p99 %.3f ms (the index alone, no metadata or documents)."
            % (h["version"], h["build_s"], n / h["build_s"], h["query"]["median_ms"], h["query"]["p99_ms"])
        )
    if p:
        lines.append("")
        lines.append(
            "pysvdb, the timeline's ingest: add calls %.2f s; every row linked %s s after the last add "
            "returned, with the timeline's queries running (rows waiting read via `%s`)."
            % (p["add2_s"], f(p["timeline"]["linked_at_s"], "%.1f"), p["pending_via"])
        )
    # The timeline, slice by slice, both backends side by side.
    lines.append("")
    lines.append(
        "Query timeline from the moment the last `add` returned (single queries, `n_results=10`, back to back). "
        "With several runs, each slice is the median over the runs that reached it (a run stops %g s after its "
        "rows are all linked, and no sooner than %g s)." % (res["args"]["tail"], res["args"]["timeline"])
    )
    lines.append("")
    lines.append("| from (s) | pysvdb queries | pysvdb median (ms) | pysvdb p99 (ms) | rows waiting at slice end "
                 "| chromadb median (ms) | chromadb p99 (ms) | speedup vs chromadb's timeline median |")
    lines.append("|---|---|---|---|---|---|---|---|")
    ps = p["timeline"]["slices"] if p else []
    cs = c["timeline"]["slices"] if c else []
    for k in range(max(len(ps), len(cs))):
        sp = ps[k] if k < len(ps) else None
        sc = cs[k] if k < len(cs) else None
        t0 = (sp or sc or {})["t0"]
        lines.append(
            "| %.0f | %s | %s | %s | %s | %s | %s | %s |"
            % (
                t0,
                f(sp and sp["n"], "%d"),
                f(sp and sp["median_ms"], "%.2f"),
                f(sp and sp["p99_ms"], "%.2f"),
                f(sp and sp["pending_end"], "%d"),
                f(sc and sc["median_ms"], "%.2f"),
                f(sc and sc["p99_ms"], "%.2f"),
                f(tl_c / sp["median_ms"] if sp and tl_c else None, "%.2fx"),
            )
        )
    return "\n".join(lines)


REPORT = """# Chroma client per-call figures: pysvdb against chromadb

Generated by `bench/bench_chroma_ops.py` on {date}.

    {cmd}

Machine: {machine}. {versions}. pysvdb from `{module}`, libsvdb `{library}`.

Workload: {n} rows of {dim}-d float32 (a seeded mixture of Gaussian clusters, L2-normalised),
each with metadata (`category`, `year`, `score`, `public`, `rev`) and a short document, added
with `collection.add` in batches of {batch}; the default collection configuration (l2, HNSW
M=16, ef_construction=100, ef_search=100). Each backend runs in its own process on a fresh
directory. pysvdb ingests three times, each into a fresh collection: one that nothing else
touches, timed until every row is linked into its graph; one read right after its ingest by
{during} `get(ids=[1 id])` and {during_upd} `update` calls, while its rows are still being linked;
and the one the query timeline then reads. chromadb links its rows before `add` returns, so one
ingest serves all three (its per-call figures hold from that moment). The per-call
figures are medians over {gets} `get` calls, {updates} `update` calls and {writes} `upsert` and
`delete` calls on random existing ids, after the timeline, with every row linked. The timeline
runs {timeline} s, or until every row is linked plus {tail} s, whichever is later (at most
{timeline_max} s). Figures are medians over {repeat} run(s) per backend (every run's figures are in
the raw results below); the machine is small and shared: compare the ratios, measured in one run.

{table}

Raw results:

```json
{raw}
```
"""


def write_report(res: Dict[str, Any], path: str) -> None:
    a = res["args"]
    text = render(res)
    print(text)
    if not path:
        return
    p = res.get("pysvdb") or {}
    versions = ", ".join("%s %s" % (b, res[b]["version"]) for b in ("pysvdb", "chromadb", "hnswlib") if b in res)
    with open(path, "w") as out:
        out.write(
            REPORT.format(
                date=res["date"],
                cmd=res["cmd"],
                machine=res["machine"],
                versions=versions,
                module=p.get("module", "–"),
                library=p.get("library", "–"),
                batch=(p or res.get("chromadb") or {}).get("batch", a["batch"]),
                table=text,
                raw=json.dumps(res, indent=1),
                repeat=a.get("repeat", 1),
                during=a.get("during", 0),
                during_upd=a.get("during", 0) // 2,
                **{k: a[k] for k in ("n", "dim", "gets", "updates", "writes", "timeline", "tail", "timeline_max")},
            )
        )
    print("report written to %s" % path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="rows (default 100,000; 20,000 with --quick)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="20,000 rows and shorter loops")
    ap.add_argument("--batch", type=int, default=5000, help="rows per add call (capped at get_max_batch_size())")
    ap.add_argument("--queries", type=int, default=None, help="queries once linked (default 1000; 300 with --quick)")
    ap.add_argument("--gets", type=int, default=None, help="get calls of each kind (default 1000; 300 with --quick)")
    ap.add_argument("--updates", type=int, default=None, help="update calls (default 500; 200 with --quick)")
    ap.add_argument("--writes", type=int, default=None, help="upsert and delete calls (default 200; 100 with --quick)")
    ap.add_argument("--during", type=int, default=None, help="pysvdb: get calls (and half as many updates) "
                    "right after an ingest, while linking (default 200; 100 with --quick; 0: skip)")
    ap.add_argument("--timeline", type=float, default=None, help="least seconds of queries after the ingest (30; 10)")
    ap.add_argument("--tail", type=float, default=5.0, help="seconds of queries after the last row is linked")
    ap.add_argument("--timeline-max", type=float, default=180.0, help="most seconds of the timeline")
    ap.add_argument("--slice", type=float, default=None, help="timeline slice, seconds (2; 1 with --quick)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend; the report quotes medians")
    ap.add_argument("--backends", default="pysvdb,chromadb,hnswlib")
    ap.add_argument("--report", default="", help="write the markdown report here")
    ap.add_argument("--from-report", default="", help="re-render --report from the raw results in this earlier report")
    ap.add_argument("--child", nargs=3, metavar=("BACKEND", "WORK", "ARGS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        backend, work, a = args.child[0], args.child[1], json.loads(args.child[2])
        r = run_hnswlib(work, a) if backend == "hnswlib" else run_client(backend, work, a)
        print("RESULT " + json.dumps(r))
        return
    if args.from_report:
        with open(args.from_report) as old:
            write_report(json.loads(old.read().split("```json\n", 1)[1].split("\n```", 1)[0]), args.report)
        return

    q = args.quick
    a = {
        "n": args.n or (20_000 if q else 100_000),
        "dim": args.dim,
        "batch": args.batch,
        "repeat": args.repeat,
        "queries": args.queries or (300 if q else 1000),
        "gets": args.gets or (300 if q else 1000),
        "updates": args.updates or (200 if q else 500),
        "writes": args.writes or (100 if q else 200),
        "during": args.during if args.during is not None else (100 if q else 200),
        "timeline": args.timeline if args.timeline is not None else (10.0 if q else 30.0),
        "tail": args.tail,
        "timeline_max": args.timeline_max,
        "slice": args.slice or (1.0 if q else 2.0),
    }
    res: Dict[str, Any] = {
        "args": a,
        "date": datetime.date.today().isoformat(),
        "cmd": ("SVDB_LIBRARY=%s " % os.path.relpath(os.environ["SVDB_LIBRARY"], ROOT) if os.environ.get("SVDB_LIBRARY") else "")
        + "python3 "
        + " ".join([os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:]),
        "machine": "%s, %d CPUs, Python %s" % (platform.machine(), os.cpu_count() or 0, platform.python_version()),
    }
    work = tempfile.mkdtemp(prefix="svdb-chroma-ops-")
    try:
        data = generate(a["n"], a["dim"], a["queries"])
        for k, v in data.items():
            np.save(os.path.join(work, k + ".npy"), v)
        truth = exact(data["base"], data["queries"])
        runs: Dict[str, List[Dict[str, Any]]] = {}
        for rep in range(a["repeat"]):
            for backend in ("hnswlib", "pysvdb", "chromadb"):  # this order: the shortest first
                if backend not in args.backends.split(","):
                    continue
                print("== %s, run %d/%d" % (backend, rep + 1, a["repeat"]), flush=True)
                r = child(backend, work, a)
                if "query_ids" in r:
                    r["recall"] = recall(r.pop("query_ids"), truth)
                runs.setdefault(backend, []).append(r)
        res["runs"] = runs
        for backend, rs in runs.items():
            res[backend] = median_tree(rs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(res, args.report)


if __name__ == "__main__":
    main()
