"""Reopening, persist(), durability modes, locking, and crashes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython


def test_reopen_keeps_everything(db_path: str) -> None:
    data = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    ids = ["id%03d" % i for i in range(100)]
    with SvDBPython(db_path, metric="cosine") as db:
        db.add(ids[:60], data[:60], [{"i": i} for i in range(60)])
        db.persist()
        db.add(ids[60:], data[60:])  # only in the log when closed... then checkpointed by close
        db.upsert(["id000"], [data[99]], [{"changed": True}])
        db.delete(["id001"])
        before = (db.get_all_ids(), db.search(data[5], k=7), db.get("id000"), db.get_vector("id000"))
    with SvDBPython(db_path) as db:  # metric, dim come from the files
        assert db.metric == "cosine" and db.dim == 8 and db.count() == 99
        after = (db.get_all_ids(), db.search(data[5], k=7), db.get("id000"), db.get_vector("id000"))
    assert after[:3] == before[:3]
    np.testing.assert_array_equal(after[3], before[3])


def test_persist_is_idempotent(db: SvDBPython) -> None:
    db.persist()
    db.add(["a"], [[1.0, 2.0]])
    db.persist()
    db.persist()
    assert db.count() == 1


def test_second_handle_shares_exclusive_is_locked(db_path: str) -> None:
    with SvDBPython(db_path) as db:
        db.add(["a"], [[1.0]])
        with SvDBPython(db_path) as other:  # shared, the default
            assert other.count() == 1
            other.add(["b"], [[2.0]])
            assert db.count() == 2 and db.get_vector("b").tolist() == [2.0]
        with pytest.raises(pysvdb.LockedError) as ei:
            SvDBPython(db_path, mode="exclusive")
        assert ei.value.code == -7 and db_path in str(ei.value)
        assert db.count() == 2
    with SvDBPython(db_path, mode="exclusive") as db:  # free again after close
        assert db.count() == 2
        with pytest.raises(pysvdb.LockedError):
            SvDBPython(db_path)


def test_readonly_handle_and_busy_timeout(db_path: str) -> None:
    with SvDBPython(db_path) as db:
        db.add(["a"], [[1.0]])
    with SvDBPython(db_path, mode="readonly") as ro:
        assert ro.count() == 1
        with pytest.raises(pysvdb.ReadOnlyError):
            ro.add(["b"], [[2.0]])
        with SvDBPython(db_path, busy_timeout_ms=0) as w:
            w.add(["b"], [[2.0]])
            assert ro.count() == 2
    with pytest.raises(pysvdb.InvalidArgumentError, match="mode"):
        SvDBPython(db_path, mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(pysvdb.InvalidArgumentError):
        SvDBPython(db_path, busy_timeout_ms=-1)


def test_mismatched_options(db_path: str) -> None:
    with SvDBPython(db_path, dim=4, metric="ip") as db:
        db.add(["a"], [[1, 0, 0, 0]])
    with pytest.raises(pysvdb.MismatchError):
        SvDBPython(db_path, dim=5)
    with pytest.raises(pysvdb.MismatchError):
        SvDBPython(db_path, metric="l2")
    with pytest.raises(pysvdb.MismatchError):
        SvDBPython(db_path, index="hnsw")
    with SvDBPython(db_path, dim=4, metric="ip", index="flat") as db:  # matching options are fine
        assert db.count() == 1


def test_create_false(tmp_path: Path) -> None:
    with pytest.raises(pysvdb.NotFoundError):
        SvDBPython(str(tmp_path / "nothing"), create=False)
    assert not (tmp_path / "nothing").exists()
    with SvDBPython(str(tmp_path / "c")) as db:
        db.add(["a"], [[1.0]])
    with SvDBPython(str(tmp_path / "c"), create=False) as db:
        assert db.count() == 1


def test_dim_fixed_at_open_is_kept(db_path: str) -> None:
    with SvDBPython(db_path, dim=3) as db:
        assert db.dim == 3
        with pytest.raises(pysvdb.DimensionError):
            db.add(["a"], [[1.0, 2.0]])
    with SvDBPython(db_path) as db:
        assert db.dim == 3


def test_corrupt_snapshot(db_path: str) -> None:
    with SvDBPython(db_path) as db:
        db.add(["a", "b"], [[1.0, 2.0], [3.0, 4.0]])
    snap = Path(db_path) / "snapshot.svdb"
    raw = bytearray(snap.read_bytes())
    raw[4096 + 1] ^= 0xFF  # inside the vector section (after the 4 KiB header)
    snap.write_bytes(bytes(raw))
    with pytest.raises(pysvdb.CorruptError) as ei:
        SvDBPython(db_path)
    assert ei.value.code == -5


def test_verify(db_path: str) -> None:
    with SvDBPython(db_path, index="hnsw") as db:
        db.add(["a", "b"], [[1.0, 2.0], [3.0, 4.0]])
    with SvDBPython(db_path) as db:
        assert db.verify() is None  # small: already checked by the open
        assert db.count() == 2
    with pytest.raises(pysvdb.SvDBError):
        db.verify()  # closed


def test_not_an_svdb_file(db_path: str) -> None:
    Path(db_path).mkdir()
    (Path(db_path) / "snapshot.svdb").write_bytes(b"hello, this is not a snapshot" * 10)
    with pytest.raises((pysvdb.CorruptError, pysvdb.FormatVersionError)):
        SvDBPython(db_path)


CRASH = """
import os, sys
sys.path[:0] = {syspath!r}
import pysvdb
db = pysvdb.SvDBPython({path!r}, durability={mode!r})
db.add(["a", "b"], [[1.0, 2.0], [3.0, 4.0]], [{{"x": 1}}, None])
db.persist()
db.add(["c"], [[5.0, 6.0]])
db.upsert(["a"], [[7.0, 8.0]], [{{"x": 2}}])
db.delete(["b"])
os._exit(0)  # a crash: no close(), no checkpoint, no destructors
"""


@pytest.mark.parametrize("mode", ["persist", "sync"])
def test_acknowledged_writes_survive_a_process_crash(db_path: str, mode: str) -> None:
    code = textwrap.dedent(CRASH.format(path=db_path, mode=mode, syspath=[p for p in sys.path if p]))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with SvDBPython(db_path) as db:
        assert db.get_all_ids() == ["a", "c"]
        assert db.get("a") == '{"x": 2}'
        np.testing.assert_array_equal(db.get_vector("a"), [7.0, 8.0])
        assert db.search([5.0, 6.0], k=1)[0][0] == "c"


def test_lock_released_when_process_dies(db_path: str) -> None:
    code = "import sys; sys.path[:0] = %r\nimport os, pysvdb\ndb = pysvdb.SvDBPython(%r)\ndb.add(['a'], [[1.0]])\nos._exit(3)" % (
        [p for p in sys.path if p],
        db_path,
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 3
    with SvDBPython(db_path) as db:
        assert db.get_all_ids() == ["a"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_handle_unusable_in_forked_child(db_path: str) -> None:
    import os

    with SvDBPython(db_path) as db:
        db.add(["a"], [[1.0]])
        pid = os.fork()
        if pid == 0:  # child: every call must fail cleanly, never touch the parent's state
            status = 1
            try:
                db.count()
            except pysvdb.MisuseError as e:
                status = 0 if e.code == -2 and "fork" in str(e) else 2
            except BaseException:
                status = 3
            os._exit(status)
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
        assert db.count() == 1  # the parent's handle is unaffected
