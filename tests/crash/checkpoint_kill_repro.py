"""Two deterministic replays of a process killed in the middle of a
checkpoint while other processes share the collection; both lost
acknowledged writes until the fix of lib/sharing.c and lib/wal.c (writers
check the log's inode by name; following a log checks continuity against the
log's own last record). Each prints what a fresh open holds; exit status 1
when a write was lost. CI runs both.

log-rename: A checkpoints and is SIGKILLed just after renaming the new log
    into place (tests/crash/kill_shim.c), before its head record names the
    new log. B, open all along, still appends to the replaced log: its
    acknowledged b2 is gone after a fresh open.
snapshot-rename: A's add makes an automatic checkpoint, and A is killed just
    after renaming the new snapshot (which holds A's row) into place, before
    replacing the log; the head still ends before A's record. Z opens while
    the write lock is held (so it reads the log only up to the head) and
    starts from that snapshot; Y then opens, adds y1; Z adds z1: Z's catch-up
    finds A's record where it expects its next one, cuts the log there
    (y1 gone), and appends z1 with a sequence number that a fresh open does
    not accept after the records before it (z1 gone).

    python3 tests/crash/checkpoint_kill_repro.py [log-rename|snapshot-rename|all] \
        [--shim build/libsvdb_crash_kill_shim.so]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
from typing import Dict, List

CHILD = r"""
import os, sys, numpy as np, pysvdb
path, ident, mode = sys.argv[1:4]
db = pysvdb.SvDBPython(path, dim=2, autocheckpoint_bytes=1 if mode == "auto" else 0)
add = lambda i: db.add(ids=[i], embeddings=np.ones((1, 2), dtype=np.float32))
print("open", flush=True)
if mode == "wait":
    sys.stdin.readline()
add(ident)
print("acknowledged", ident, flush=True)
if mode == "persist":
    db.persist()
elif mode == "hold":
    sys.stdin.readline()  # until told, then one more write
    add(ident + "b")
    print("acknowledged", ident + "b", flush=True)
os._exit(0)  # no close, no checkpoint: as if killed
"""
WRITE_LOCK_BYTE = 1  # SVDB_LOCK_WRITE in lib/os.h: a POSIX lock on it conflicts with svdb's OFD locks


def child(path: str, ident: str, mode: str, env: Dict[str, str] | None = None) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, "-c", CHILD, path, ident, mode], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def killer(shim: str, at: str) -> Dict[str, str]:
    return dict(os.environ, LD_PRELOAD=os.path.abspath(shim), SVDB_CRASH_KILL_AT_RENAME="1",
                SVDB_CRASH_KILL_AT_RENAME_OF=at)


def holds(path: str, want: List[str]) -> bool:
    import pysvdb

    with pysvdb.SvDBPython(path) as db:
        ids = sorted(db.get_all_ids())
    lost = sorted(set(want) - set(ids))
    print("  a fresh open holds %s%s" % (ids, "; LOST acknowledged writes: %s" % lost if lost else ""))
    return not lost


def log_rename(path: str, shim: str) -> bool:
    b = child(path, "b1", "hold")
    assert b.stdout is not None
    while "acknowledged" not in b.stdout.readline():
        pass
    a = child(path, "a1", "persist", killer(shim, "wal.svdb"))
    a.communicate()
    print("  A exited with", a.returncode, "(-9: killed just after the log rename)")
    out, _ = b.communicate("go\n")
    print("  B:", out.strip().replace("\n", "; "))
    return holds(path, ["a1", "b1", "b1b"])


def snapshot_rename(path: str, shim: str) -> bool:
    for ident, mode, env in (("p0", "now", None), ("a1", "auto", killer(shim, "snapshot.svdb"))):
        p = child(path, ident, mode, env)
        p.communicate()
        print("  %s exited with %d" % (ident, p.returncode))
    fd = os.open(os.path.join(path, "LOCK"), os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, WRITE_LOCK_BYTE)  # Z opens as a reader would
    z = child(path, "z1", "wait")
    assert z.stdout is not None
    z.stdout.readline()
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, WRITE_LOCK_BYTE)
    os.close(fd)
    y = child(path, "y1", "now")
    print("  Y:", y.communicate()[0].strip().replace("\n", "; "))
    print("  Z:", z.communicate("go\n")[0].strip())
    return holds(path, ["b0", "p0", "a1", "y1", "z1"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", nargs="?", default="all", choices=["log-rename", "snapshot-rename", "all"])
    ap.add_argument("--shim", default="build/libsvdb_crash_kill_shim.so")
    args = ap.parse_args()
    import numpy as np
    import pysvdb

    ok = True
    for name, case in (("log-rename", log_rename), ("snapshot-rename", snapshot_rename)):
        if args.case not in (name, "all"):
            continue
        path = os.path.join(tempfile.mkdtemp(prefix="svdb-ckpt-kill-"), "db")
        with pysvdb.SvDBPython(path, dim=2) as db:
            db.add(ids=["b0"], embeddings=np.ones((1, 2), dtype=np.float32))
        print(name + ":")
        ok = case(path, args.shim) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
