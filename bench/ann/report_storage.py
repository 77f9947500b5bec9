"""Turns a compact-storage benchmark run into docs/performance-storage.md.

Usage: python3 bench/ann/report_storage.py RESULTS.jsonl [DOCS_DIR]

RESULTS.jsonl comes from bench/ann/run_storage.sh: svdb HNSW through the C API
with storage f32, f16 and int8, and hnswlib, on the same sets in one run.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional

from report import by_set, fmt, fmt_q, load, qps_at, ratio

STORAGES = [("svdb-c-hnsw", "f32"), ("svdb-c-hnsw-f16", "f16"), ("svdb-c-hnsw-int8", "int8")]
FIXED_EFS = (16, 64)


def at_ef(r: Dict[str, Any], ef: int, key: str) -> Optional[float]:
    for p in r["sweep"]:
        if p["ef"] == ef:
            return float(p[key])
    return None


def per_vec(r: Dict[str, Any], key: str) -> Optional[float]:
    v = r.get(key)
    return None if v is None else float(v) / float(r["n"])


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run, results = load(sys.argv[1])
    docs = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "docs")
    sets = by_set([r for r in results if "error" not in r])
    out: List[str] = []
    w = out.append
    w("# Compact storage: recall, speed and memory\n")
    w("HNSW collections can keep compact codes of their vectors in memory instead of float32 (open option "
      "`storage`, pysvdb `storage=`; see [api.md](api.md#compact-storage)). The graph walk scores the codes; "
      "the `ef` candidates it keeps are re-ranked with exact float32 distances read from the collection's "
      "files through memory maps. This page compares the three storages with each other and with hnswlib, "
      "in one run on one machine.\n")
    w("- Command: `%s`" % run["command"])
    w("- Date: %s; CPU: %s, %s cores; commit %s" % (run["date"], run["cpu"], run["cores"], run["commit"]))
    w("- M = %s, ef_construction = %s; QPS medians of %s passes, one thread (batch call), built on all cores"
      % (run["m"], run["ef_construction"], run["reps"]))
    w("- **Memory** is bytes per vector of the process's resident growth across the build, and across a reopen "
      "of the saved collection followed by the whole query sweep. *anon* counts the process's own (anonymous) "
      "memory only; *RSS* adds the file pages it has mapped in: after a build, for compact storage, the float32 "
      "originals read so far; after a reopen, svdb maps its snapshot and reads the vectors (f32) or codes "
      "(f16, int8), the level-0 links and the originals it re-ranks in place, so *RSS after searches* is the "
      "memory a searched collection occupies, most of it page cache that the kernel can drop and read again. "
      "hnswlib loads its index into anonymous memory.")
    w("- QPS at recall@10 = 0.95 is interpolated on the ef sweep (≥: the smallest ef already exceeds 0.95).\n")
    for name, libs in sets.items():
        base = libs.get("svdb-c-hnsw")
        any_r = next(iter(libs.values()))
        w("## %s (%s x %s, %s)\n" % (name, fmt(any_r["n"]), any_r["dim"], any_r["metric"]))
        w("| storage | recall@10 ef=16 | recall@10 ef=64 | QPS@0.95 | vs f32 | QPS ef=64 | build s | "
          "anon B/vec after build | RSS B/vec after build | RSS (anon) B/vec reopened, after searches | reopen ms |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        q_base = qps_at(base["sweep"], "qps_1t")[0] if base else None
        for lib, label in STORAGES:
            r = libs.get(lib)
            if not r:
                continue
            q = qps_at(r["sweep"], "qps_1t")
            w("| svdb %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, fmt(at_ef(r, 16, "recall"), 4), fmt(at_ef(r, 64, "recall"), 4), fmt_q(q),
                fmt(ratio(q[0], q_base), 2), fmt(at_ef(r, 64, "qps_1t")), fmt(r["build_s"], 2),
                fmt(per_vec(r, "mem_build_anon_bytes")), fmt(per_vec(r, "mem_build_bytes")),
                "%s (%s)" % (fmt(per_vec(r, "mem_search_bytes")), fmt(per_vec(r, "mem_search_anon_bytes"))),
                fmt(r["reopen_ms"], 1)))
        h = libs.get("hnswlib")
        if h:
            q = qps_at(h["sweep"], "qps_1t")
            w("| hnswlib (f32) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                fmt(at_ef(h, 16, "recall"), 4), fmt(at_ef(h, 64, "recall"), 4), fmt_q(q),
                fmt(ratio(q[0], q_base), 2), fmt(at_ef(h, 64, "qps_1t")), fmt(h["build_s"], 2),
                fmt(per_vec(h, "mem_build_bytes")), fmt(per_vec(h, "mem_build_bytes")),
                "%s (%s)" % (fmt(per_vec(h, "mem_reopen_bytes")), fmt(per_vec(h, "mem_reopen_bytes"))),
                fmt(h.get("reopen_ms"), 1)))
        w("")
    w("Raw results: `%s`; regenerate this page with `python3 bench/ann/report_storage.py FILE docs`.\n"
      % os.path.relpath(sys.argv[1], os.path.join(os.path.dirname(__file__), "..", "..")))
    path = os.path.join(docs, "performance-storage.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("wrote %s" % path)


if __name__ == "__main__":
    main()
