#!/usr/bin/env bash
# Compact storage benchmark in one command: svdb HNSW (C API) with storage
# f32, f16 and int8, and hnswlib for reference, each in its own process per
# data set; writes docs/performance-storage.md.
# Usage: bench/ann/run_storage.sh [--quick] [more run_ann.py options]
# (--quick: only the three ../shared/data sets, not the 1M set).
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=""
for a in "$@"; do [ "$a" = "--quick" ] && quick="--quick"; done
scripts/ensure_deps.sh demo
for m in hnswlib numpy; do
  if ! python3 -c "import $m" >/dev/null 2>&1; then
    echo "== installing Python packages: hnswlib numpy"
    python3 -m pip install -q hnswlib numpy
    break
  fi
done
cmake -S . -B build-ann -DCMAKE_BUILD_TYPE=Release -DSVDB_BUILD_TESTS=OFF >/dev/null
cmake --build build-ann -j"$(nproc)" --target svdb bench_ann >/dev/null
sets="siftsmall,fashion_mnist,glove25"
[ -z "$quick" ] && sets="$sets,gen1m"
out="bench/ann/.cache/results-storage-$([ -n "$quick" ] && echo quick || echo full).jsonl"
mkdir -p bench/ann/.cache
# --quick is not passed on: it would drop the 1M set from the data preparation
args=()
for a in "$@"; do [ "$a" != "--quick" ] && args+=("$a"); done
python3 bench/ann/run_ann.py --out "$out" --sets "$sets" \
  --libs svdb-c-hnsw,svdb-c-hnsw-f16,svdb-c-hnsw-int8,hnswlib \
  --command "$(echo bench/ann/run_storage.sh "$@")" ${args[@]+"${args[@]}"}
python3 bench/ann/report_storage.py "$out" docs
