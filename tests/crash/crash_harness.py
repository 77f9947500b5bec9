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

With ``--processes W --readers R`` (C writer only) each round runs W writer
processes, each in its own id namespace (``w<N>k<i>``) with its own
acknowledgement log, and R reader processes on one collection; random ones
are SIGKILLed (killed writers are often replaced at once by a successor that
joins the collection), all are killed by the end of the round, and a fresh
open checks every writer's acknowledged writes, ``svdb_verify``, that no
reader saw an impossible state, and that a fresh writer gets the write lock
within the busy timeout. ``--kill-at-rename P`` also makes writers kill
themselves just after a checkpoint renames its snapshot or log into place.

Usage::

    python3 tests/crash/crash_harness.py --writer c --c-writer build/svdb_crash_writer \\
        --durability persist --rounds 500
    python3 tests/crash/crash_harness.py --writer python --durability sync --rounds 100
    python3 tests/crash/crash_harness.py --processes 3 --readers 2 --rounds 500 --seed 2026
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
EBUSY = -18  # SVDB_EBUSY


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

def read_new_lines(log: str, offset: int) -> Tuple[List[str], int]:
    """The whole lines a dead process wrote to its log after offset, and the
    offset after them. A SIGKILL can stop write(2) between two pages of the
    file, so a line that crosses a page boundary may be left torn: the
    process was killed before that line's write returned, so what it
    announced never started (an I line) or is still in flight (an A line).
    The torn part is dropped and the line ended, so that a successor's lines
    start on their own."""
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read()
    whole = data.rfind(b"\n") + 1
    if whole == len(data):
        return data.decode().splitlines(), offset + len(data)
    with open(log, "ab") as f:
        f.write(b"\n")
    return data[:whole].decode().splitlines(), offset + len(data) + 1


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
        lines, self.offset = read_new_lines(log, self.offset)
        for line in lines:
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


# ---------------------------------------------------------------- many processes

Op = Tuple[str, List[Tuple[int, int]]]


@dataclass
class Space:
    """One writer's id namespace (ids "w<N>k<i>") and its acknowledgement log,
    written by one writer process at a time: a killed writer's successor
    appends to the same log."""

    prefix: str
    log: str
    ver: Dict[int, int] = field(default_factory=dict)
    present: Dict[int, bool] = field(default_factory=dict)
    acked_ops: int = 0
    last_op: int = -1
    offset: int = 0
    pending: Optional[Op] = None  # the batch in flight when its writer died, not yet resolved
    fails: Dict[str, int] = field(default_factory=dict)  # failed calls by status, this round
    fails_total: Dict[str, int] = field(default_factory=dict)
    kinds: Dict[str, int] = field(default_factory=dict)  # acknowledged ops by kind (a, u, d, p, c)

    def state(self) -> Dict[int, int]:
        return {i: v for i, v in self.ver.items() if self.present.get(i)}

    def check(self, found: Dict[int, int]) -> Optional[str]:
        """found (id -> version of the present rows) must be the acknowledged
        state, with the batch in flight applied wholly or not at all."""
        base = self.state()
        if found == base:
            return None
        if self.pending is not None and self.pending[0] in "aud":
            kind, pairs = self.pending
            after = dict(base)
            for i, v in pairs:
                if kind == "d":
                    after.pop(i, None)
                else:
                    after[i] = v
            if found == after:
                return None
        diff = sorted(i for i in set(found) | set(base) if found.get(i) != base.get(i))[:6]
        return "%s: ids %s found %s, acknowledged %s (in flight: %s)" % (
            self.prefix, diff, [found.get(i) for i in diff], [base.get(i) for i in diff], self.pending)

    def adopt(self, found: Dict[int, int]) -> None:
        for i in set(self.present) | set(found):
            self.present[i] = i in found
            if i in found:
                self.ver[i] = found[i]
        self.pending = None

    def replay(self) -> Optional[str]:
        """Reads what the log's (dead) writers added; an R line, a successor's
        view at its start, is checked and becomes the state."""
        if not os.path.exists(self.log):
            return None
        lines, self.offset = read_new_lines(self.log, self.offset)
        problem = None
        for line in lines:
            parts = line.split()
            if not parts or parts[0] == "O":
                continue
            if parts[0] == "R":
                found = {int(a): int(b) for a, b in (p.split(":") for p in parts[1:])}
                problem = problem or self.check(found)
                self.adopt(found)
            elif parts[0] == "I":
                self.last_op = int(parts[1])
                self.pending = (parts[2], [(int(a), int(b)) for a, b in (p.split(":") for p in parts[3:])])
            elif parts[0] in ("A", "F") and self.pending is not None:
                if parts[0] == "A":
                    self.acked_ops += 1
                    kind, pairs = self.pending
                    self.kinds[kind] = self.kinds.get(kind, 0) + 1
                    for i, v in pairs:
                        if kind in "aud":
                            self.ver[i] = v
                            self.present[i] = kind != "d"
                else:
                    rc = parts[2] if len(parts) > 2 else "?"
                    self.fails[rc] = self.fails.get(rc, 0) + 1
                self.pending = None
        return problem


def multi_verify(path: str, spaces: List[Space]) -> Tuple[Optional[str], List[Dict[int, int]]]:
    """Opens the collection afresh: it must open and verify, each namespace
    must match its writers' acknowledgements (batches all or nothing, exact
    vectors and metadata), and nothing else may be there."""
    import pysvdb

    founds: List[Dict[int, int]] = [{} for _ in spaces]
    if not os.path.exists(os.path.join(path, "snapshot.svdb")) and not any(s.acked_ops for s in spaces):
        return None, founds
    try:
        db = pysvdb.SvDBPython(path)
    except pysvdb.SvDBError as e:
        return "open failed: %s" % e, founds
    try:
        try:
            db.verify()
        except pysvdb.SvDBError as e:
            return "verify failed: %s" % e, founds
        problems: List[str] = []
        byprefix = {s.prefix: n for n, s in enumerate(spaces)}
        for key in db.get_all_ids():
            head, sep, tail = key.partition("k")
            if not sep or head not in byprefix or not tail.isdigit() or int(tail) >= NID:
                problems.append("unexpected id %s" % key)
                continue
            i = int(tail)
            meta = db.get(key) or ""
            try:
                v = int(json.loads(meta)["v"])
            except (ValueError, KeyError):
                problems.append("%s: metadata %r" % (key, meta))
                continue
            if meta != meta_for(i, v) or not np.array_equal(db.get_vector(key), vec_for(i, v, DIM)):
                problems.append("%s: vector or metadata not those of v%d" % (key, v))
            founds[byprefix[head]][i] = v
        for s, found in zip(spaces, founds):
            p = s.check(found)
            if p:
                problems.append(p)
        return ("; ".join(problems[:4]) if problems else None), founds
    finally:
        db.close()


def run_multi(args: argparse.Namespace) -> int:
    """Each round: W writers (own namespaces and logs) and R readers on one
    collection, random SIGKILLs (restarting some writers at once), all killed
    by the end; then a fresh open checks every acknowledged write."""
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="svdb-crash-multi-")
    path = os.path.join(work, "db")
    spaces = [Space("w%d" % w, os.path.join(work, "w%d.log" % w)) for w in range(args.processes)]
    kills = {"writer": 0, "reader": 0, "all-at-once": 0, "contended": 0, "restarts": 0, "at-rename": 0}
    stats = {"rounds": 0, "clean": 0, "bad": 0, "reader_errors": 0, "reader_loops": 0, "exited": 0}
    probe_ms: List[float] = []
    problems: List[str] = []  # this round's
    writers: Dict[int, "subprocess.Popen[bytes]"] = {}  # this round's, by namespace
    t0 = time.time()

    def start_writer(w: int) -> "subprocess.Popen[bytes]":
        # A busy timeout of 0 or 2 ms makes writes fail with SVDB_EBUSY, which must change nothing.
        env = dict(os.environ, SVDB_CRASH_NS=spaces[w].prefix, SVDB_CRASH_BUSY_MS=rng.choice(["5000"] * 4 + ["2", "0"]),
                   SVDB_CRASH_AUTOCKPT=str(rng.choice([0, 4096, 16384, 65536, 1 << 20])))
        if args.kill_at_rename:
            env.update(LD_PRELOAD=os.path.abspath(args.kill_shim), SVDB_CRASH_KILL_AT_RENAME=str(args.kill_at_rename))
        cmd = [args.c_writer, path, spaces[w].log, args.durability, str(rng.randrange(1 << 30)),
               str(spaces[w].last_op + 1), str(NID), str(DIM), args.index]
        return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)

    def start_reader(r: int) -> "subprocess.Popen[bytes]":
        cmd = [args.c_writer, "reader", path, os.path.join(work, "r%d.log" % r), str(rng.randrange(1 << 30)),
               str(NID), str(DIM), str(args.processes), rng.choice(["shared", "readonly"])]
        return subprocess.Popen(cmd, stderr=subprocess.PIPE)

    def reader_report(r: int, rnd: int) -> None:
        log = os.path.join(work, "r%d.log" % r)
        if not os.path.exists(log):
            return
        lines, _ = read_new_lines(log, 0)
        os.unlink(log)
        errs = [ln for ln in lines if ln.startswith("E")]
        stats["reader_loops"] += max([int(ln.split()[1]) for ln in lines if ln.startswith("Q")] or [0])
        stats["reader_errors"] += len(errs)
        for e in errs[:3]:
            print("round %d reader %d: %s" % (rnd, r, e))

    def writer_died(n: int, rnd: int, restart: bool = False) -> None:
        """Brings the model up to a dead writer's log; sometimes a successor joins at once."""
        problem = spaces[n].replay()
        if problem:
            problems.append("restart of w%d: %s" % (n, problem))
        if restart or rng.random() < 0.6:  # a new writer joins where the last one died
            kills["restarts"] += 1
            writers[n] = start_writer(n)
        else:
            del writers[n]

    def wait_until(t: float, rnd: int) -> None:
        """Sleeps; with --kill-at-rename, a successor replaces each writer the shim
        killed at once: its open sees the renamed files while the others may not."""
        while True:
            left = t - time.time()
            if not args.kill_at_rename:
                time.sleep(max(0.0, left))
                return
            for n, p in list(writers.items()):
                if p.poll() == -signal.SIGKILL:
                    kills["at-rename"] += 1
                    writer_died(n, rnd, restart=True)
            if left <= 0:
                return
            time.sleep(min(left, 0.002))

    def exited(p: "subprocess.Popen[bytes]", who: str, rnd: int) -> None:
        err = p.stderr.read().decode() if p.stderr else ""
        print("round %d: %s exited on its own (%s): %s" % (rnd, who, p.returncode, err.strip()))
        stats["exited"] += 1

    readers: Dict[int, "subprocess.Popen[bytes]"] = {}
    try:
        for rnd in range(args.rounds):
            problems.clear()
            writers.clear()
            writers.update({w: start_writer(w) for w in range(args.processes)})
            readers.clear()
            readers.update({r: start_reader(r) for r in range(args.readers)})
            end = time.time() + rng.uniform(0.05, 0.6)
            for _ in range(rng.randint(0, args.processes + args.readers)):
                wait_until(time.time() + max(0.0, rng.uniform(0.0, end - time.time())), rnd)
                victims = [("w", w) for w in writers] + [("r", r) for r in readers]
                who, n = rng.choice(victims)
                p = writers[n] if who == "w" else readers[n]
                if p.poll() is not None and not (args.kill_at_rename and p.returncode == -signal.SIGKILL):
                    exited(p, "%s%d" % (who, n), rnd)
                else:
                    p.kill()
                p.wait()
                if who == "r":
                    kills["reader"] += 1
                    reader_report(n, rnd)
                    readers[n] = start_reader(n)
                    continue
                kills["writer"] += 1
                writer_died(n, rnd)
            wait_until(end, rnd)
            procs = list(writers.values()) + list(readers.values())
            if rng.random() < 0.3:
                kills["all-at-once"] += 1
                for p in procs:
                    p.kill()
            else:
                # Each waits for the write lock or holds it, so a kill
                # lands while others contend for it.
                kills["contended"] += 1
                rng.shuffle(procs)
                for p in procs:
                    time.sleep(rng.uniform(0.0, 0.01))
                    p.kill()
            for p in procs:
                p.wait()
                if p.returncode != -signal.SIGKILL:
                    exited(p, "a process", rnd)
            for r in readers:
                reader_report(r, rnd)
            for s in spaces:
                problem = s.replay()
                if problem:
                    problems.append("restart: %s" % problem)
            if args.keep and os.path.exists(path):
                shutil.rmtree(os.path.join(work, "last-round"), ignore_errors=True)
                shutil.copytree(path, os.path.join(work, "last-round"))
            problem, founds = multi_verify(path, spaces)
            if problem:
                problems.append(problem)
            if problem is None or not problem.startswith(("open failed", "verify failed")):
                probe = subprocess.run([args.c_writer, "probe", path], capture_output=True, text=True, timeout=60)
                if probe.returncode != 0 or float(probe.stdout) > 5000:
                    problems.append("fresh writer: %s" % probe.stdout.strip())
                else:
                    probe_ms.append(float(probe.stdout))
            for s in spaces:
                # In its own namespace a writer's add fails with EEXISTS, or its
                # persist with anything but EBUSY, only if its writes were lost or
                # came back: one the final check may not see if later writes hid it.
                odd = {rc: n for rc, n in s.fails.items() if rc != str(EBUSY)}
                if odd:
                    problems.append("%s: failed calls by status %s" % (s.prefix, odd))
                s.fails_total.update({rc: s.fails_total.get(rc, 0) + n for rc, n in s.fails.items()})
                s.fails.clear()
            stats["rounds"] += 1
            if problems:
                stats["bad"] += 1
                print("round %d (seed %d): %s" % (rnd, args.seed, "; ".join(problems)))
                if args.keep:  # the files as the killed processes left them, and every log, for a post-mortem
                    os.rename(os.path.join(work, "last-round"), os.path.join(work, "bad-round-%d" % rnd))
                    for s in spaces:
                        shutil.copy(s.log, os.path.join(work, "bad-round-%d" % rnd))
                if problem and problem.startswith(("open failed", "verify failed")):
                    break
            else:
                stats["clean"] += 1
            for s, found in zip(spaces, founds):  # the next round starts from what is there
                s.adopt(found)
    finally:
        for p in list(writers.values()) + list(readers.values()):  # none left running if this raised
            if p.poll() is None:
                p.kill()
                p.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory kept:", work)
    fails: Dict[str, int] = {}
    kinds: Dict[str, int] = {}
    for s in spaces:
        for rc, n in s.fails_total.items():
            fails[rc] = fails.get(rc, 0) + n
        for k, n in s.kinds.items():
            kinds[k] = kinds.get(k, 0) + n
    ops = ", ".join("%s %d" % (name, kinds.get(k, 0)) for k, name in
                    (("a", "adds"), ("u", "upserts"), ("d", "deletes"), ("p", "persists"), ("c", "reopens")))
    print("crash-multi[%s, %s, %d writers, %d readers]: %d/%d rounds clean, %d acknowledged ops checked (%s), "
          "%d bad rounds, %d processes exited on their own; kills: %d writers (%d restarted at once), "
          "%d writers by themselves at a checkpoint's rename, %d readers, round ends %d all at once + %d one by one; "
          "reader loops %d, reader errors %d; failed writes by status %s; fresh writer after each round: "
          "max %.1f ms; %.0f s; seed %d"
          % (args.index, args.durability, args.processes, args.readers, stats["clean"], stats["rounds"],
             sum(s.acked_ops for s in spaces), ops, stats["bad"], stats["exited"], kills["writer"], kills["restarts"],
             kills["at-rename"], kills["reader"], kills["all-at-once"], kills["contended"], stats["reader_loops"],
             stats["reader_errors"], fails, max(probe_ms or [0.0]), time.time() - t0, args.seed))
    ok = stats["clean"] == stats["rounds"] == args.rounds and not stats["reader_errors"] and not stats["exited"]
    return 0 if ok else 1


# ---------------------------------------------------------------- the driver

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--durability", choices=["persist", "sync"], default="persist")
    ap.add_argument("--writer", choices=["c", "python"], default="c")
    ap.add_argument("--index", choices=["flat", "hnsw", "hnsw-bg", "hnsw-int8"], default="flat")
    ap.add_argument("--c-writer", default="build/svdb_crash_writer")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (multi-process mode: with each bad round's files, bad-round-N)")
    ap.add_argument("--processes", type=int, default=0,
                    help="multi-process mode (C writer only): this many writer processes per round, "
                         "each in its own namespace")
    ap.add_argument("--readers", type=int, default=2, help="multi-process mode: reader processes per round")
    ap.add_argument("--kill-at-rename", type=float, default=0.0, metavar="P",
                    help="multi-process mode: writers SIGKILL themselves just after a checkpoint renames its "
                         "snapshot or log into place, with probability P (an LD_PRELOAD shim)")
    ap.add_argument("--kill-shim", default="build/libsvdb_crash_kill_shim.so")
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        path, log, durability, rest, index = args._child
        seed, first = (int(x) for x in rest.split(","))
        python_writer(path, log, durability, seed, first, index)
        return 0
    if args.processes:
        return run_multi(args)

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
