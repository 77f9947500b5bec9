"""Runs the ANN benchmark: every library on every data set, each in its own process.

Usage: python3 bench/ann/run_ann.py [--quick] [--build DIR] [--cache DIR] [--out FILE]
                                    [--sets a,b] [--libs a,b] [--reps N] [--min-time S]

Writes one JSON object per (library, set) to --out (JSON lines; the first
line describes the run), then bench/ann/report.py turns it into
docs/performance-ann.md and docs/recall_qps*.png. A library that fails is
recorded with its error and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from datasets import DataSet, prepare  # noqa: E402

LIBRARIES = ["svdb-c-hnsw", "pysvdb-hnsw", "hnswlib", "faiss-hnsw", "usearch", "svdb-c-flat", "pysvdb-flat",
             "faiss-flat"]
# Flat scans of the large sets run on the first 200 queries only (a full pass costs minutes).
FLAT_QUERIES_LARGE = 200


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> Dict[str, str]:
    out: Dict[str, str] = {}
    for mod in ("hnswlib", "faiss", "usearch", "numpy"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "")
        except ImportError:
            out[mod] = "missing"
    if not out.get("hnswlib"):
        try:
            from importlib.metadata import version

            out["hnswlib"] = version("hnswlib")
        except Exception:  # noqa: BLE001 - any failure just leaves it unknown
            pass
    return out


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib", "include", "pysvdb"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (lib/include/pysvdb with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_for(lib: str, ds: DataSet, a: argparse.Namespace, work: str) -> List[str]:
    large = ds.n * ds.dim > 20_000_000
    queries = FLAT_QUERIES_LARGE if lib.endswith("flat") and large else 0
    build_reps = 1 if large else a.build_reps
    if lib.startswith("svdb-c-"):
        # svdb-c-hnsw-f16 / svdb-c-hnsw-int8: HNSW with compact storage
        index, _, storage = lib[len("svdb-c-"):].partition("-")
        cmd = [os.path.join(a.build, "bench_ann"), ds.name, ds.metric, index, ds.base, ds.query, ds.gt,
               work, "m=%d" % a.m, "efc=%d" % a.efc, "efs=" + a.efs, "reps=%d" % a.reps, "min_time=%g" % a.min_time,
               "build_reps=%d" % build_reps, "storage=" + (storage or "f32")]
        return cmd + (["queries=%d" % queries] if queries else [])
    cmd = [sys.executable, os.path.join(HERE, "bench_peer.py"), lib, json.dumps(ds.to_json()), work, "--m", str(a.m),
           "--efc", str(a.efc), "--efs", a.efs, "--reps", str(a.reps), "--min-time", str(a.min_time),
           "--build-reps", str(build_reps)]
    return cmd + (["--queries", str(queries)] if queries else [])


def run_one(cmd: List[str], env: Dict[str, str]) -> Dict[str, object]:
    t = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    result: Optional[Dict[str, object]] = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if p.returncode != 0 or result is None:
        return {"error": "exit status %d" % p.returncode, "stdout_tail": p.stdout[-2000:]}
    result["wall_s"] = time.time() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only the three ../shared/data sets")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build-ann"))
    ap.add_argument("--cache", default=os.path.join(HERE, ".cache"))
    ap.add_argument("--out", default=None, help="results file (default: CACHE/results-{quick,full}.jsonl)")
    ap.add_argument("--sets", default="", help="comma-separated subset of the sets")
    ap.add_argument("--libs", default=",".join(LIBRARIES))
    ap.add_argument("--efs", default="10,16,24,32,48,64,96,128,192,256")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--build-reps", type=int, default=3, help="builds per library on the small sets (median)")
    ap.add_argument("--command", default="", help="the command line to record in the report")
    a = ap.parse_args()
    out = a.out or os.path.join(a.cache, "results-%s.jsonl" % ("quick" if a.quick else "full"))
    work = os.path.join(a.cache, "work")
    os.makedirs(work, exist_ok=True)
    sets = prepare(a.data, a.cache, a.quick)
    if a.sets:
        wanted = a.sets.split(",")
        sets = [s for s in sets if s.name in wanted]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, ROOT, env.get("PYTHONPATH", "")) if p)
    lib_path = os.path.join(a.build, "libsvdb.so")
    built = "missing"
    if os.path.exists(lib_path):
        env.setdefault("SVDB_LIBRARY", lib_path)
        built = datetime.datetime.fromtimestamp(os.path.getmtime(lib_path)).strftime("%Y-%m-%d %H:%M")
    meta = {"run": {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "command": a.command or " ".join(
        sys.argv), "cpu": cpu_model(), "cores": os.cpu_count(), "commit": git_commit(), "libsvdb_built": built,
        "versions": versions(),
        "m": a.m, "ef_construction": a.efc, "efs": a.efs, "reps": a.reps, "min_time": a.min_time,
        "build_reps": a.build_reps,
        "sets": [s.to_json() for s in sets]}}
    with open(out, "w") as f:
        f.write(json.dumps(meta) + "\n")
        for ds in sets:
            for lib in a.libs.split(","):
                print("== %s on %s (%d x %d, %s)" % (lib, ds.name, ds.n, ds.dim, ds.metric), flush=True)
                res = run_one(command_for(lib, ds, a, work), env)
                res["run_library"] = lib  # the name the report uses
                res.setdefault("set", ds.name)
                if "error" in res:
                    print("!! %s on %s failed: %s" % (lib, ds.name, res["error"]), flush=True)
                f.write(json.dumps(res) + "\n")
                f.flush()
    print("results in %s" % out)


if __name__ == "__main__":
    main()
