#!/usr/bin/env bash
# Installs pysvdb from this checkout (building libsvdb) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_deps.sh demo
if ! python3 -c "import pysvdb" >/dev/null 2>&1 || [ "${SVDB_REINSTALL:-1}" = 1 ]; then
  python3 -m pip install -q scikit-build-core >/dev/null 2>&1 || true
  python3 -m pip install -q .
fi
(cd /tmp && python3 "$OLDPWD/examples/python_demo.py")
