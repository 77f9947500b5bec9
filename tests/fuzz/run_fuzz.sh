#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# SECONDS (default 60) from the committed seed corpus. Prints executions and
# crashes per target; exits non-zero on any crash.
# Usage: tests/fuzz/run_fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=${*:-fuzz_open fuzz_wal fuzz_meta fuzz_api fuzz_filter}
command -v clang >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq clang libclang-rt-dev >/dev/null; }
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSVDB_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in $targets; do
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t"/
  log="$work/$t.log"
  if TMPDIR="$work" ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
      build-fuzz/tests/fuzz/"$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/$t" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "$t: $runs executions, 0 crashes (${secs}s)"
  else
    echo "$t: CRASH"; grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -20
    ls "$work"/"$t"-* 2>/dev/null && mkdir -p build-fuzz/artifacts && cp "$work"/"$t"-* build-fuzz/artifacts/ || true
    status=1
  fi
done
exit $status
