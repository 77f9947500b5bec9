#!/usr/bin/env bash
# Installs libsvdb into a scratch prefix and builds two consumers against it,
# one with pkg-config and one with CMake find_package(svdb), then runs them.
# Usage: install_consumer.sh SOURCE_DIR SCRATCH_DIR
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake -S "$src" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$prefix" -DSVDB_BUILD_TESTS=OFF \
  -DSVDB_BUILD_BENCH=OFF -DSVDB_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$work/build" -j2 >/dev/null
cmake --install "$work/build" >/dev/null

cat >"$work/consumer.c" <<'C'
#include <svdb.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    (void)argc;
    svdb *db;
    if (svdb_open(&db, argv[1], NULL) != SVDB_OK) { puts(svdb_errmsg()); return 1; }
    const char *ids[] = {"x"};
    float v[] = {1, 2};
    if (svdb_add_batch(db, 1, ids, v, 2, NULL) != SVDB_OK) return 2;
    size_t n = 0;
    if (svdb_count(db, &n) != SVDB_OK || n != 1) return 3;
    if (svdb_close(db) != SVDB_OK) return 4;
    return svdb_abi_version() == SVDB_ABI_VERSION ? 0 : 5;
}
C
libdir=$(find "$prefix" -name 'svdb.pc' -printf '%h\n' | head -1)
export PKG_CONFIG_PATH=$libdir
cc "$work/consumer.c" -o "$work/consumer_pc" $(pkg-config --cflags --libs svdb) -Wl,-rpath,"$prefix/lib" -Wl,-rpath,"$(dirname "$libdir")"
"$work/consumer_pc" "$work/db_pc"

mkdir -p "$work/cm"
cat >"$work/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(svdb 0.1 REQUIRED)
add_executable(consumer_cm $work/consumer.c)
target_link_libraries(consumer_cm PRIVATE svdb::svdb)
set_target_properties(consumer_cm PROPERTIES BUILD_RPATH "$(dirname "$libdir")")
CM
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm/build" >/dev/null
"$work/cm/build/consumer_cm" "$work/db_cm"
echo "pkg-config and find_package consumers built and ran against $prefix"
