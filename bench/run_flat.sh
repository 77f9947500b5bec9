#!/usr/bin/env bash
# Exact-search benchmarks in one run: the C benchmark (bench_flat), faiss
# IndexFlatL2 on the same data, and pysvdb against the C API; writes the
# figures to docs/performance.md. Usage: bench/run_flat.sh [--quick]
# (--quick skips the 1M set).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
scripts/ensure_deps.sh demo
python3 -c "import faiss" 2>/dev/null || python3 -m pip install -q faiss-cpu
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSVDB_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target bench_flat svdb >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sets="siftsmall gen100k"
[ -z "$quick" ] && sets="$sets gen1m"
build-bench/bench_flat ../shared/data "$out" $quick | tee "$out/c.txt"
python3 bench/bench_faiss.py "$out" $sets | tee "$out/faiss.txt"
PYTHONPATH="$PWD" SVDB_LIBRARY="$PWD/build-bench/libsvdb.so" python3 bench/bench_python.py "$out" "$out/c.txt" | tee "$out/py.txt"
python3 bench/report.py "$out" "bench/run_flat.sh $quick" > docs/performance.md
echo "wrote docs/performance.md"
