"""Crash-kill harness: SIGKILL a writer at random moments and check recovery.

Each round starts a writer process (the C writer, ``svdb_crash_writer``, or a
pysvdb writer in this file) on the same collection. The writer performs random
adds, upserts, deletes, persists and reopens, and records each operation in an
append-only acknowledgement log: ``I`` before the call, ``A``/``F`` after it.
The driver kills it with SIGKILL at a random time, just after it announces a
persist, or while it is still opening (recovering), then reopens the
collection and checks that:

* the open succeeds;
* every acknowledged write is present with its exact vector and metadata, and
  every acknowledged delete is gone;
* the operation in flight is applied wholly or not at all;
* nothing else appears.

Usage::

    python3 tests/crash/crash_harness.py --writer c --c-writer build/svdb_crash_writer \\
        --durability persist --rounds 500
    python3 tests/crash/crash_harness.py --writer python --durability sync --rounds 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

NID = 200
DIM = 8


def vec_for(ident: int, ver: int, dim: int) -> np.ndarray:
    """The same generator as crash_writer.c (32-bit LCG), so both writers agree."""
    h = (ident * 2654435761 ^ ver * 40503) & 0xFFFFFFFF
    out = np.empty(dim, dtype=np.float32)
    for d in range(dim):
        h = (h * 1103515245 + 12345) & 0xFFFFFFFF
        out[d] = np.float32((h >> 8) % 2001) / np.float32(100.0) - np.float32(10.0)
    out[0] += np.float32(0.25)
    return out


def meta_for(ident: int, ver: int) -> str:
    return '{"id": %d, "v": %d}' % (ident, ver)


# ---------------------------------------------------------------- the Python writer

def python_writer(path: str, log: str, durability: str, seed: int, first_op: int, index: str) -> None:
    import pysvdb

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(line: str) -> None:
        os.write(fd, (line + "\n").encode())  # one write(2) per line: never torn by SIGKILL

    def open_db() -> "pysvdb.SvDBPython":
        # "hnsw-bg": HNSW with background indexing, so kills land while rows wait to be linked
        # "hnsw-int8": compact storage, whose originals are read from the mapped log and snapshot
        return pysvdb.SvDBPython(path, dim=DIM, durability=durability,  # type: ignore[arg-type]
                                 index="hnsw" if index.startswith("hnsw") else index,  # type: ignore[arg-type]
                                 background_indexing=index == "hnsw-bg",
                                 storage="int8" if index == "hnsw-int8" else None)

    db = open_db()
    ver: Dict[int, int] = {}
    present: Dict[int, bool] = {}
    for i in range(NID):
        if ("k%d" % i) in db:
            m = json.loads(db.get("k%d" % i) or "{}")
            ver[i], present[i] = int(m.get("v", 0)), True
    say("O")
    rng = random.Random(seed)
    op = first_op
    while True:
        kind = rng.randrange(20)
        if kind >= 17:
            say("I %d %s" % (op, "c" if kind == 19 else "p"))
            if kind == 19:
                db.close()
                db = open_db()
            else:
                db.persist()
            say("A %d" % op)
            op += 1
            continue
        n = rng.randint(1, 64)
        ids: List[int] = []
        for _ in range(n):
            i = rng.randrange(NID)
            if i not in ids and not (kind <= 8 and present.get(i)):
                ids.append(i)
        if not ids:
            continue
        letter = "a" if kind <= 8 else "u" if kind <= 12 else "d"
        vers = [ver.get(i, 0) + 1 for i in ids]
        say("I %d %s %s" % (op, letter, " ".join("%d:%d" % iv for iv in zip(ids, vers))))
        keys = ["k%d" % i for i in ids]
        try:
            if letter == "d":
                db.delete(keys)
            else:
                vecs = np.stack([vec_for(i, v, DIM) for i, v in zip(ids, vers)])
                metas = [meta_for(i, v) for i, v in zip(ids, vers)]
                (db.add if letter == "a" else db.upsert)(ids=keys, embeddings=vecs, metadatas=metas)
        except pysvdb.SvDBError:
            say("F %d" % op)
        else:
            for i in ids:
                ver[i] = ver.get(i, 0) + 1
                present[i] = letter != "d"
            say("A %d" % op)
        op += 1


# ---------------------------------------------------------------- the model

@dataclass
class Model:
    """What the collection must hold: acknowledged operations, read from the
    log incrementally (each round only parses what the last writer added)."""

    ver: Dict[int, int] = field(default_factory=dict)
    present: Dict[int, bool] = field(default_factory=dict)
    acked_ops: int = 0
    last_op: int = -1
    offset: int = 0

    def replay(self, log: str) -> Optional[Tuple[str, List[Tuple[int, int]]]]:
        """Applies newly acknowledged operations; returns the one in flight, if any."""
        inflight: Optional[Tuple[str, List[Tuple[int, int]]]] = None
        if not os.path.exists(log):  # killed before it wrote anything: nothing acknowledged
            return None
        with open(log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        for line in data.decode().splitlines():
            parts = line.split()
            if not parts or parts[0] == "O":
                continue
            if parts[0] == "I":
                self.last_op = int(parts[1])
                pairs = [(int(a), int(b)) for a, b in (p.split(":") for p in parts[3:])]
                inflight = (parts[2], pairs)
            elif parts[0] in ("A", "F") and inflight is not None:
                if parts[0] == "A":
                    self.acked_ops += 1
                    kind, pairs = inflight
                    for i, v in pairs:
                        self.ver[i] = v
                        self.present[i] = kind != "d"
                inflight = None
        return inflight

    def adopt(self, path: str, inflight: Optional[Tuple[str, List[Tuple[int, int]]]]) -> None:
        """After a clean check, takes the recovered outcome of the op in flight."""
        if inflight is None or inflight[0] not in "aud":
            return
        import pysvdb

        with pysvdb.SvDBPython(path) as db:
            for i, v in inflight[1]:
                key = "k%d" % i
                if key in db:
                    self.present[i] = True
                    self.ver[i] = int(json.loads(db.get(key) or "{}").get("v", 0))
                else:
                    if self.present.get(i):
                        self.ver[i] = v
                    self.present[i] = False


def verify(path: str, model: Model, inflight: Optional[Tuple[str, List[Tuple[int, int]]]]) -> Optional[str]:
    import pysvdb

    if not os.path.exists(os.path.join(path, "snapshot.svdb")) and model.acked_ops == 0:
        return None  # killed before the collection was created, with nothing acknowledged
    try:
        db = pysvdb.SvDBPython(path)
    except pysvdb.SvDBError as e:
        return "open failed: %s" % e
    try:
        changes: Dict[int, Tuple[bool, int]] = {}
        if inflight is not None and inflight[0] in "aud":
            for i, v in inflight[1]:
                changes[i] = (inflight[0] != "d", v)
        applied = 0
        changing = 0
        for i in range(NID):
            key = "k%d" % i
            states = [(model.present.get(i, False), model.ver.get(i, 0))]
            if i in changes and changes[i] != states[0] and (changes[i][0] or states[0][0]):
                states.append(changes[i])
                changing += 1
            got = key in db
            ok = None
            for n, (pres, v) in enumerate(states):
                if pres != got:
                    continue
                if got:
                    vec = db.get_vector(key)
                    meta = db.get(key)
                    if not (np.array_equal(vec, vec_for(i, v, DIM)) and meta == meta_for(i, v)):
                        continue
                ok = n
                break
            if ok is None:
                return "%s: present=%s, model says present=%s ver=%s%s" % (
                    key, got, states[0][0], states[0][1], " (or in-flight %s)" % (changes[i],) if i in changes else "")
            applied += ok
        if applied not in (0, changing):
            return "in-flight batch partly applied: %d of %d rows" % (applied, changing)
        extra = [k for k in db.get_all_ids() if not k.startswith("k") or not k[1:].isdigit() or int(k[1:]) >= NID]
        if extra:
            return "unexpected ids: %s" % extra[:5]
        return None
    finally:
        db.close()


# ---------------------------------------------------------------- the driver

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--durability", choices=["persist", "sync"], default="persist")
    ap.add_argument("--writer", choices=["c", "python"], default="c")
    ap.add_argument("--index", choices=["flat", "hnsw", "hnsw-bg", "hnsw-int8"], default="flat")
    ap.add_argument("--c-writer", default="build/svdb_crash_writer")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        path, log, durability, rest, index = args._child
        seed, first = (int(x) for x in rest.split(","))
        python_writer(path, log, durability, seed, first, index)
        return 0

    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="svdb-crash-")
    path, log = os.path.join(work, "db"), os.path.join(work, "acks.log")
    model = Model()
    stats = {"rounds": 0, "clean": 0, "failed_opens": 0, "bad": 0, "kills": {"random": 0, "persist": 0, "recovery": 0}}
    try:
        for rnd in range(args.rounds):
            mode = rng.choices(["random", "persist", "recovery"], weights=[6, 3, 1])[0]
            first = model.last_op + 1
            if args.writer == "c":
                cmd = [args.c_writer, path, log, args.durability, str(rng.randrange(1 << 30)), str(first),
                       str(NID), str(DIM), args.index]
            else:
                cmd = [sys.executable, __file__, "--_child", path, log, args.durability,
                       "%d,%d" % (rng.randrange(1 << 30), first), args.index]
            start_size = os.path.getsize(log) if os.path.exists(log) else 0
            proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
            if mode == "recovery":
                time.sleep(rng.uniform(0.0, 0.02))  # likely still opening: replaying the log
            elif mode == "persist":
                deadline = time.time() + 3.0
                while time.time() < deadline and proc.poll() is None:
                    with open(log, "rb") as f:
                        f.seek(start_size)
                        tail = f.read()
                    if b" p\n" in tail or b" c\n" in tail:
                        time.sleep(rng.uniform(0.0, 0.004))
                        break
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0.005, 0.4))
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                print("round %d: writer exited on its own (%s): %s" % (rnd, proc.returncode, err.strip()))
                stats["bad"] += 1
                continue
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stats["kills"][mode] += 1
            stats["rounds"] += 1
            inflight = model.replay(log)
            problem = verify(path, model, inflight)
            if problem is None:
                stats["clean"] += 1
                model.adopt(path, inflight)
            else:
                print("round %d (%s kill): %s" % (rnd, mode, problem))
                if problem.startswith("open failed"):
                    stats["failed_opens"] += 1
                else:
                    stats["bad"] += 1
                break
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory kept:", work)
    k = stats["kills"]
    print("crash[%s, %s, %s writer]: %d/%d rounds clean, %d acknowledged ops checked, %d lost or partial, "
          "%d failed opens (kills: %d random, %d around persist/reopen, %d during recovery); seed %d"
          % (args.index, args.durability, args.writer, stats["clean"], stats["rounds"], model.acked_ops, stats["bad"],
             stats["failed_opens"], k["random"], k["persist"], k["recovery"], args.seed))
    return 0 if stats["clean"] == stats["rounds"] == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
