"""A process killed between its checkpoint's log rename and the head record
that announces it: do the other processes' later writes survive?

Process B holds the collection open; process A (with tests/crash/kill_shim.c
preloaded) writes, checkpoints and is SIGKILLed just after renaming the new
log into place; B then writes and dies without closing; a fresh open must
hold all three rows. Exit status 0 when it does, 1 when a write was lost.

    python3 tests/crash/checkpoint_kill_repro.py [--shim build/libsvdb_crash_kill_shim.so]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import os, sys, numpy as np, pysvdb
db = pysvdb.SvDBPython(sys.argv[1], dim=2, autocheckpoint_bytes=0)
db.add(ids=[sys.argv[2]], embeddings=np.ones((1, 2), dtype=np.float32))
if sys.argv[3] == "persist":
    db.persist()  # the shim kills us after the log's rename
else:
    sys.stdin.readline()  # wait until A is dead
    db.add(ids=[sys.argv[3]], embeddings=np.ones((1, 2), dtype=np.float32))
    print("acknowledged", sys.argv[3], flush=True)
os._exit(0)  # no close, no checkpoint: as if killed
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shim", default="build/libsvdb_crash_kill_shim.so")
    args = ap.parse_args()
    import pysvdb

    path = os.path.join(tempfile.mkdtemp(prefix="svdb-ckpt-kill-"), "db")
    pysvdb.SvDBPython(path, dim=2).close()
    b = subprocess.Popen([sys.executable, "-c", CHILD, path, "b1", "b2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    while True:  # B has written b1
        with pysvdb.SvDBPython(path) as db:
            if "b1" in db:
                break
        time.sleep(0.01)
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(args.shim), SVDB_CRASH_KILL_AT_RENAME="1",
               SVDB_CRASH_KILL_AT_RENAME_OF="wal.svdb")
    a = subprocess.run([sys.executable, "-c", CHILD, path, "a1", "persist"], env=env)
    print("A exited with", a.returncode, "(-9: killed after the log rename)")
    out, _ = b.communicate("go\n")
    print(out.strip())
    with pysvdb.SvDBPython(path) as db:
        ids = sorted(db.get_all_ids())
    print("a fresh open holds", ids)
    lost = sorted({"a1", "b1", "b2"} - set(ids))
    if lost:
        print("LOST acknowledged writes:", lost)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
