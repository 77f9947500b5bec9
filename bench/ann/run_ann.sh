#!/usr/bin/env bash
# ANN benchmark in one command: svdb HNSW (C API and pysvdb) against hnswlib,
# faiss (IndexHNSWFlat, IndexFlat) and usearch, each library in its own
# process per data set; writes docs/performance-ann.md and docs/recall_qps*.png.
# Usage: bench/ann/run_ann.sh [--quick] [more run_ann.py options]
# (--quick: only the three ../shared/data sets, no 60k Fashion-MNIST, no 1M set).
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=""
for a in "$@"; do [ "$a" = "--quick" ] && quick="--quick"; done
scripts/ensure_deps.sh demo
for m in hnswlib faiss usearch matplotlib numpy cffi; do
  if ! python3 -c "import $m" >/dev/null 2>&1; then
    echo "== installing Python packages: hnswlib faiss-cpu usearch matplotlib numpy cffi"
    python3 -m pip install -q hnswlib faiss-cpu usearch matplotlib numpy cffi
    break
  fi
done
if [ -z "$quick" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "== installing Debian package dataset-fashion-mnist"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
cmake -S . -B build-ann -DCMAKE_BUILD_TYPE=Release -DSVDB_BUILD_TESTS=OFF >/dev/null
cmake --build build-ann -j"$(nproc)" --target svdb bench_ann >/dev/null
# pysvdb from this checkout over the library just built (PYTHONPATH and
# SVDB_LIBRARY are set by run_ann.py), so the C and Python figures are of one build.
out="bench/ann/.cache/results-$([ -n "$quick" ] && echo quick || echo full).jsonl"
mkdir -p bench/ann/.cache
python3 bench/ann/run_ann.py --out "$out" --command "$(echo bench/ann/run_ann.sh "$@")" "$@"
python3 bench/ann/report.py "$out" docs
