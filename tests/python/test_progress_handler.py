"""SvDBPython.set_progress_handler: reports, cancel by return value, cancel by
an exception (Ctrl-C included), and that a canceled batch leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import pysvdb
from pysvdb import CanceledError, ClosedError, InvalidTypeError, SvDBPython

# Big enough that linking takes well over the library's 50 ms report interval.
N, DIM = 20000, 48


def _rows(n: int = N, seed: int = 1) -> Tuple[List[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return [f"r{i}" for i in range(n)], rng.standard_normal((n, DIM)).astype(np.float32)


def _open(path: Path) -> SvDBPython:
    return SvDBPython(str(path), dim=DIM, index="hnsw", ef_construction=200, seed=7)


def test_reports_each_phase_in_order(tmp_path: Path) -> None:
    ids, vecs = _rows()
    seen: List[Tuple[str, int, int]] = []
    with _open(tmp_path / "db") as db:
        db.set_progress_handler(lambda op, done, total: seen.append((op, done, total)) and False)
        db.add(ids, vecs)
        assert db.count() == N
    link = [(d, t) for op, d, t in seen if op == "link"]
    assert link, seen  # linking 20k rows lasts several report intervals
    assert all(t == N for _, t in link)
    dones = [d for d, _ in link]
    assert dones == sorted(dones) and dones[-1] == N  # the last report says: all done
    assert {op for op, _, _ in seen} <= {"write", "link", "checkpoint", "verify"}


def test_truthy_return_cancels_and_changes_nothing(tmp_path: Path) -> None:
    ids, vecs = _rows()
    with _open(tmp_path / "db") as db:
        db.add(["keep"], vecs[:1])
        calls = []

        def stop(op: str, done: int, total: int) -> bool:
            calls.append(op)
            return op == "link"

        db.set_progress_handler(stop)
        with pytest.raises(CanceledError, match="canceled"):
            db.add(ids, vecs)
        assert "link" in calls
        assert db.count() == 1 and db.contains("keep") and not db.contains("r0")
        db.set_progress_handler(None)
        db.add(ids[:100], vecs[:100])  # the handle still works; no handler now
        assert db.count() == 101
    with _open(tmp_path / "db") as db:  # and the canceled batch is not in the log either
        assert db.count() == 101 and not db.contains("r100")


def test_exception_from_handler_is_raised_and_cancels(tmp_path: Path) -> None:
    ids, vecs = _rows()

    class Stop(Exception):
        pass

    def boom(op: str, done: int, total: int) -> None:
        raise Stop(op)

    with _open(tmp_path / "db") as db:
        db.set_progress_handler(boom)
        with pytest.raises(Stop) as info:
            db.add(ids, vecs)
        assert isinstance(info.value.__context__, CanceledError)
        assert db.count() == 0
        with pytest.raises(KeyboardInterrupt):
            db.set_progress_handler(lambda op, d, t: (_ for _ in ()).throw(KeyboardInterrupt()))
            db.add(ids, vecs)
        assert db.count() == 0


def test_bad_arguments_and_closed_handle(tmp_path: Path) -> None:
    db = _open(tmp_path / "db")
    with pytest.raises(InvalidTypeError, match="callable"):
        db.set_progress_handler(42)  # type: ignore[arg-type]
    db.set_progress_handler(lambda op, d, t: None)
    db.set_progress_handler(lambda op, d, t: None)  # replacing is fine
    db.close()
    with pytest.raises(ClosedError):
        db.set_progress_handler(None)


def test_ctrl_c_during_a_batch_leaves_the_collection_as_before(tmp_path: Path) -> None:
    """A real SIGINT while the C library links a batch: the batch is undone,
    KeyboardInterrupt reaches the script, the earlier rows stay."""
    path = tmp_path / "db"
    script = textwrap.dedent(
        f"""
        import signal, sys, numpy as np, pysvdb
        # As in a terminal: a run started in the background (CI) hands us SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        db = pysvdb.SvDBPython({str(path)!r}, dim={DIM}, index="hnsw", ef_construction=400, seed=7)
        db.add(["first"], np.ones((1, {DIM}), np.float32))
        started = []
        def report(op, done, total):
            if not started:
                started.append(op)
                print("started", flush=True)
        db.set_progress_handler(report)
        rng = np.random.default_rng(3)
        try:
            db.add([f"r{{i}}" for i in range(60000)], rng.standard_normal((60000, {DIM})).astype(np.float32))
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", db.count(), flush=True)
        db.close()
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pysvdb.__file__).parent.parent), env.get("PYTHONPATH", "")])
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "started"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0
    assert out.strip() == "interrupted 1"
    with SvDBPython(str(path)) as db:
        assert db.count() == 1 and db.contains("first")


def test_exception_at_the_final_report_is_raised_by_that_call_only(tmp_path: Path) -> None:
    """The last report (done == total) cannot cancel: the operation is done.
    What the handler raised there is raised by that call, after it, and never
    by a later, unrelated call on this thread."""
    ids, vecs = _rows()

    class Late(Exception):
        pass

    def at_the_end(op: str, done: int, total: int) -> None:
        if op == "link" and done == total:
            raise Late()

    with _open(tmp_path / "a") as a, _open(tmp_path / "b") as b:
        a.set_progress_handler(at_the_end)
        with pytest.raises(Late):
            a.add(ids, vecs)
        assert a.count() == N  # done, and kept
        b.set_progress_handler(lambda op, d, t: True)
        with pytest.raises(CanceledError):  # not the Late from a's call
            b.add(ids, vecs)
        b.set_progress_handler(None)
        b.add(ids[:10], vecs[:10])  # and no stale exception on a plain call
        assert b.count() == 10


def test_replacing_the_handler_keeps_one_context_per_handle(tmp_path: Path) -> None:
    with _open(tmp_path / "db") as db:
        db.set_progress_handler(lambda op, d, t: None)
        ctx = db._progress
        for _ in range(100):
            db.set_progress_handler(lambda op, d, t: None)
            db.set_progress_handler(None)
        assert db._progress is ctx
