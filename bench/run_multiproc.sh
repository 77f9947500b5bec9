#!/usr/bin/env bash
# Many processes on one collection (bench/bench_multiproc.c): N reader
# processes searching while one writer process ingests, with SQLite's WAL
# mode doing the analogous thing in the same run (when libsqlite3-dev is
# installed; without it the SQLite rows are left out). Prints the tables and
# keeps them in bench/results/multiproc.md (multiproc_background.md with
# --background: every handle links on its indexer thread, as the Chroma
# client's collections do).
# Usage: bench/run_multiproc.sh [--quick] [extra bench_multiproc arguments]
# (--quick: 1 s phases, one repetition, readers 1 and 2).
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--seconds 3 --reps 5 --readers 1,2,4)
if [ "${1:-}" = "--quick" ]; then
  shift
  args=(--seconds 1 --reps 1 --readers 1,2)
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSVDB_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target bench_multiproc >/dev/null
if ! grep -q SVDB_BENCH_SQLITE build-bench/CMakeFiles/bench_multiproc.dir/flags.make 2>/dev/null; then
  echo "note: sqlite3.h not found (apt-get install libsqlite3-dev): the SQLite analogue is left out" >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results
out=bench/results/multiproc.md
for a in "$@"; do [ "$a" = --background ] && out=bench/results/multiproc_background.md; done
{
  echo "# bench_multiproc, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: bench/run_multiproc.sh $*  (bench_multiproc ../shared/data WORK ${args[*]} $*)"
  echo
  build-bench/bench_multiproc ../shared/data "$work" "${args[@]}" "$@"
} | tee "$out"
