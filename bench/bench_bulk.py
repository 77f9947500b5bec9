"""Bulk loading and export through Parquet: pysvdb beside chromadb, in one run.

The same rows (N x DIM float32 with two metadata keys and a short document)
are written once to a Parquet file. Each figure is the median of --repeat
runs, every run in a fresh subprocess and a fresh directory:

- ``svdb add_parquet``: ``SvDBPython.add_parquet`` (flat collection), until it returns;
- ``chroma add_parquet``: pysvdb's Chroma client, ``Collection.add_parquet``
  (HNSW, background linking), until it returns, and until every row is linked;
- ``chromadb add``: chromadb's ``PersistentClient``: the file read with
  ``pyarrow.parquet``, converted to the lists ``Collection.add`` takes, added in
  batches of its ``get_max_batch_size()`` (its HNSW index is built before ``add``
  returns); the usual way to load a Parquet file into chromadb;
- ``export``: the whole collection back to a Parquet file: pysvdb's
  ``Collection.to_arrow`` + ``pyarrow.parquet.write_table`` against chromadb's
  ``Collection.get(include=[embeddings, metadatas, documents])`` in pages of
  the batch size, converted to an Arrow table and written.

Usage:
    python3 bench/bench_bulk.py [--n 100000] [--dim 64] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def make_parquet(path: str, n: int, dim: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    topics = np.array(["fruit", "sport", "news", "tech"])
    table = pa.table(
        {
            "id": pa.array(["doc%d" % i for i in range(n)]),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
            "year": pa.array(1990 + np.arange(n) % 35),
            "topic": pa.array(topics[np.arange(n) % 4]),
            "document": pa.array(["document number %d about %s" % (i, topics[i % 4]) for i in range(n)]),
        }
    )
    pq.write_table(table, path, row_group_size=10_000)


CHILD = r"""
import json, sys, time, os
import numpy as np
import pyarrow as pa, pyarrow.parquet as pq
which, parquet, work = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
if which == "svdb":
    import pysvdb, pysvdb.arrow  # imported before the clock starts, as chromadb is
    db = pysvdb.SvDBPython(os.path.join(work, "db"))
    t = time.perf_counter()
    db.add_parquet(parquet, metadata_column=["year", "topic"])
    out["import"] = time.perf_counter() - t
    t = time.perf_counter()
    pq.write_table(db.to_arrow(), os.path.join(work, "out.parquet"))
    out["export"] = time.perf_counter() - t
    out["count"] = db.count()
    db.close()
elif which == "chroma":
    import pysvdb.chroma as chromadb, pysvdb.arrow
    client = chromadb.PersistentClient(path=os.path.join(work, "db"))
    col = client.create_collection("bulk")
    t = time.perf_counter()
    col.add_parquet(parquet, metadata_column=["year", "topic"], document_column="document")
    out["import"] = time.perf_counter() - t
    with col._engine.use(col._record) as db:  # pysvdb's handle: wait for the background linking
        db.index_wait()
    out["linked"] = time.perf_counter() - t
    t = time.perf_counter()
    pq.write_table(col.to_arrow(include=["embeddings", "metadatas", "documents"]), os.path.join(work, "out.parquet"))
    out["export"] = time.perf_counter() - t
    out["count"] = col.count()
else:
    import chromadb
    client = chromadb.PersistentClient(path=os.path.join(work, "db"))
    col = client.create_collection("bulk")
    bs = client.get_max_batch_size()
    t = time.perf_counter()
    f = pq.ParquetFile(parquet)
    for batch in f.iter_batches(batch_size=bs):
        d = batch.to_pydict()
        emb = batch.column("embedding").flatten().to_numpy().reshape(len(batch), -1)
        col.add(ids=d["id"], embeddings=emb, metadatas=[{"year": y, "topic": p} for y, p in zip(d["year"], d["topic"])],
                documents=d["document"])
    out["import"] = time.perf_counter() - t
    out["linked"] = out["import"]
    t = time.perf_counter()
    n = col.count()
    ids, embs, metas, docs = [], [], [], []
    for off in range(0, n, bs):
        r = col.get(include=["embeddings", "metadatas", "documents"], limit=bs, offset=off)
        ids += r["ids"]; embs.append(np.asarray(r["embeddings"], np.float32)); metas += r["metadatas"]; docs += r["documents"]
    e = np.concatenate(embs)
    table = pa.table({"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(pa.array(e.reshape(-1)), e.shape[1]),
                      "metadata": [json.dumps(m) for m in metas], "document": docs})
    pq.write_table(table, os.path.join(work, "out.parquet"))
    out["export"] = time.perf_counter() - t
    out["count"] = n
print(json.dumps(out))
"""


def run_child(which: str, parquet: str) -> Dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="svdb-bulk-") as work:
        r = subprocess.run([sys.executable, "-c", CHILD, which, parquet, work], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit("%s failed:\n%s" % (which, r.stderr[-3000:]))
        return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20,000 rows, one run each")
    ap.add_argument("--backends", default="svdb,chroma,chromadb")
    a = ap.parse_args()
    if a.quick:
        a.n, a.repeat = 20_000, 1
    backends = a.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="svdb-bulk-data-") as d:
        parquet = os.path.join(d, "rows.parquet")
        make_parquet(parquet, a.n, a.dim)
        runs: Dict[str, List[Dict[str, float]]] = {b: [] for b in backends}
        for r in range(a.repeat):  # interleaved, so drift on a shared machine hits every backend
            for b in backends:
                res = run_child(b, parquet)
                assert res["count"] == a.n, (b, res)
                runs[b].append(res)
                print("run %d %-8s %s" % (r + 1, b, " ".join("%s=%.3f" % kv for kv in res.items() if kv[0] != "count")), flush=True)
    med = {b: {k: statistics.median(x[k] for x in v) for k in v[0] if k != "count"} for b, v in runs.items()}
    print("\n%d rows x %d dims, Parquet file with id, embedding, 2 metadata columns and a document; "
          "median of %d runs (seconds; rows/s)" % (a.n, a.dim, a.repeat))
    print("| backend | import | rows/s | until linked | export | rows/s |")
    print("|---|---|---|---|---|---|")
    names = {"svdb": "pysvdb `SvDBPython.add_parquet` (flat)", "chroma": "pysvdb Chroma `Collection.add_parquet` (HNSW)",
             "chromadb": "chromadb 1.5.9 `Collection.add` from pyarrow batches"}
    for b, m in med.items():
        linked = "%.2f" % m["linked"] if "linked" in m else "-"
        print("| %s | %.2f | %s | %s | %.2f | %s |" % (names[b], m["import"], "{:,.0f}".format(a.n / m["import"]), linked,
                                                  m["export"], "{:,.0f}".format(a.n / m["export"])))
    if "chroma" in med and "chromadb" in med:
        c, r = med["chroma"], med["chromadb"]
        print("\nChroma client vs chromadb: import %.1fx, until linked %.1fx, export %.1fx faster"
              % (r["import"] / c["import"], r["linked"] / c["linked"], r["export"] / c["export"]))


if __name__ == "__main__":
    main()
