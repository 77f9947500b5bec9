#!/usr/bin/env bash
# The include graph of lib/ points downward only: a module may include its
# own layer's headers and lower ones, never a higher layer's. The layers are
# docs/internals.md's module map; a new file must be placed here (an unknown
# file fails the check, so the map cannot fall behind the code).
set -euo pipefail
lib="${1:-$(dirname "$0")/../lib}"

layer() {
  case "$1" in
    api | handles | catalog | catalog_impl | catalog_file | catalog_json | catalog_dirs | catalog_scope) echo 6 ;; # the public entry points (the catalog opens collections through svdb_open)
    collection | collection_impl | write | links | read | checkpoint | compact | sharing) echo 5 ;; # the engine
    search | indexer | snapshot | legacy_v1 | wal | rwgate) echo 4 ;;       # what the engine drives
    hnsw | hnsw_codec | hnsw_search | hnsw_impl | store | filter | filter_json | record | meta | regex | regex_re2 | idmap) echo 3 ;;
    space | quant | quant_avx2 | topk | distance | distance_kernel | distance_avx2 | distance_avx512 | \
      distance_neon | crc32c | crc32c_sse42 | mapfile | os | progress) echo 2 ;;
    alloc | error) echo 1 ;;
    svdb) echo 0 ;; # the public header: every file may include it
    *) echo "" ;;
  esac
}

status=0
for f in "$lib"/*.c "$lib"/*.h "$lib"/*.cc; do
  [ -e "$f" ] || continue
  base=$(basename "$f"); mod=${base%%.*}
  me=$(layer "$mod")
  if [ -z "$me" ]; then echo "check_layers: $base is in no layer; add it to tests/check_layers.sh and docs/internals.md"; status=1; continue; fi
  while read -r inc; do
    [ -n "$inc" ] || continue
    imod=${inc%%.*}
    [ -e "$lib/$inc" ] || [ "$imod" = svdb ] || continue # a system or public header
    them=$(layer "$imod")
    if [ -z "$them" ]; then echo "check_layers: $base includes $inc, which is in no layer"; status=1; continue; fi
    if [ "$them" -gt "$me" ]; then
      echo "check_layers: $base (layer $me) includes $inc (layer $them): a lower module may not include a higher one"
      status=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
[ "$status" -eq 0 ] && echo "check_layers: every include in lib/ points downward"
exit "$status"
