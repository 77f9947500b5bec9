"""Fork and exec harness: process-wide resources of pysvdb (lock descriptors,
the at-exit hook, the ephemeral temporary directory, open handles) belong to
the process that made them.

Each scenario runs in a fresh interpreter (so a forked child never unwinds
through pytest): it opens a client or a collection, forks, lets the child exit
(``sys.exit``, which runs at-exit hooks, ``os._exit``, or a multiprocessing
"fork" worker), and the parent keeps writing and reading. The script prints
"OK" when every check passed.

The tests under a "Needs the C fork fix" comment depend on libsvdb dropping a
forked child's copies of its collection locks (lib/db.c, on_fork_child): a
child reopening a collection whose handle it inherited, and a third process
opening a collection while a child forked with it open lives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pysvdb

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork()")

PKG_PARENT = str(Path(pysvdb.__file__).resolve().parents[1])

PRELUDE = textwrap.dedent(
    """
    import multiprocessing, os, subprocess, sys, time
    sys.path.insert(0, %r)
    import pysvdb

    def fork(body, exit_mode="sys.exit"):
        '''Forks; the child runs body() and exits as exit_mode says (70 if body raised).'''
        pid = os.fork()
        if pid:
            return pid
        try:
            body()
        except BaseException as e:
            print("CHILD FAILED:", repr(e), flush=True)
            os._exit(70)
        sys.stdout.flush()
        if exit_mode == "os._exit":
            os._exit(0)
        sys.exit(0)  # a normal exit: at-exit hooks run in the child

    def reap(pid):
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "child status %%r" %% st

    def spawn(code, *args):
        '''A fresh interpreter (fork + exec) running code; returns its output.'''
        out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); " + code, *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    OPEN_PERSISTENT = "import pysvdb; c = pysvdb.PersistentClient(sys.argv[1]); print(c.get_collection('col').count()); c.close()"
    OPEN_SVDB = "import pysvdb; db = pysvdb.SvDBPython(sys.argv[1]); print(db.count()); db.close()"
    """
) % (PKG_PARENT, PKG_PARENT)

EXIT_MODES = ["sys.exit", "os._exit", "multiprocessing"]


def run_script(body: str, tmp_path: Path) -> None:
    code = PRELUDE + textwrap.dedent(body) + '\nprint("OK", flush=True)\n'
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=str(tmp_path)
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stdout + out.stderr


CHILD_EXITS = """
def child_exits(body):
    '''The child runs body() and exits the way EXIT says; the parent waits for it.'''
    if EXIT == "multiprocessing":
        p = multiprocessing.get_context("fork").Process(target=body)
        p.start()
        p.join()
        assert p.exitcode == 0, p.exitcode
    else:
        reap(fork(body, EXIT))
"""


# ---------------------------------------------------------------- EphemeralClient


@pytest.mark.parametrize("exit_mode", EXIT_MODES)
def test_ephemeral_survives_child_exit(tmp_path: Path, exit_mode: str) -> None:
    """The at-exit hook of a child that exits normally removed the parent's
    ephemeral directory; the parent's next write failed."""
    run_script(
        "EXIT = %r\n" % exit_mode
        + CHILD_EXITS
        + """
c = pysvdb.EphemeralClient()
col = c.create_collection("eph", embedding_function=None)
col.add(ids=["a"], embeddings=[[1.0, 0.0]])
root = c._engine.root

def child():
    pass

child_exits(child)
assert os.path.isdir(root), "the child removed the parent's ephemeral directory"
for i in range(50):
    col.add(ids=["b%d" % i], embeddings=[[0.0, float(i)]])
assert col.count() == 51
assert col.query(query_embeddings=[1.0, 0.0], n_results=1)["ids"] == [["a"]]
assert c.get_collection("eph").get(ids=["b7"])["ids"] == ["b7"]
c.close()
assert not os.path.exists(root)
""",
        tmp_path,
    )


def test_inherited_clients_unusable_in_child(tmp_path: Path) -> None:
    """A child cannot use its parent's clients (it says why) and gets stores of its own."""
    run_script(
        """
eph = pysvdb.EphemeralClient()
eph.create_collection("eph", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
per = pysvdb.PersistentClient(os.path.join(sys.argv[1], "db"))
pcol = per.create_collection("col", embedding_function=None)
pcol.add(ids=["a"], embeddings=[[1.0]])
root = eph._engine.root

def child():
    for call in (eph.list_collections, per.count_collections, pcol.count, lambda: pcol.add(ids=["c"], embeddings=[[1.0]])):
        try:
            call()
            raise AssertionError("an inherited client worked in the child")
        except ValueError as e:
            assert "fork" in str(e), e
    own = pysvdb.EphemeralClient()
    assert own._engine.root != root and own.count_collections() == 0
    own.create_collection("mine", embedding_function=None).add(ids=["x"], embeddings=[[1.0]])
    mine = own._engine.root
    own.close()
    assert not os.path.exists(mine) and os.path.isdir(root)

reap(fork(child))
assert eph.get_collection("eph").count() == 1 and pcol.count() == 1
eph.close()
per.close()
""",
        tmp_path,
    )


# ---------------------------------------------------------------- PersistentClient


@pytest.mark.parametrize("exit_mode", EXIT_MODES)
def test_persistent_survives_child_exit(tmp_path: Path, exit_mode: str) -> None:
    """A child closing its inherited client (or exiting) neither closes,
    checkpoints nor unlocks the parent's store."""
    run_script(
        "EXIT = %r\n" % exit_mode
        + CHILD_EXITS
        + """
path = os.path.join(sys.argv[1], "db")
c = pysvdb.PersistentClient(path)
col = c.create_collection("col", embedding_function=None)
col.add(ids=["a"], embeddings=[[1.0, 0.0]])

def child():
    c.close()

child_exits(child)
for i in range(50):
    col.add(ids=["b%d" % i], embeddings=[[0.0, float(i)]])
assert col.count() == 51
# The parent's client still works, and another process shares the store.
assert spawn(OPEN_PERSISTENT, path) == "51"
c.close()
assert spawn(OPEN_PERSISTENT, path) == "51"
""".replace("PKG", repr(PKG_PARENT)),
        tmp_path,
    )


def test_child_reopens_persistent_client_after_parent_closed(tmp_path: Path) -> None:
    """Forked before any collection was opened: only pysvdb's own lock file is involved."""
    run_script(
        """
path = os.path.join(sys.argv[1], "db")
c = pysvdb.PersistentClient(path)
c.create_collection("col", embedding_function=None)
go_r, go_w = os.pipe()

def child():
    os.close(go_w)
    assert os.read(go_r, 1) == b"g"  # the parent has closed its client
    with pysvdb.PersistentClient(path) as mine:
        mine.get_collection("col").add(ids=["child"], embeddings=[[1.0]])

pid = fork(child)
os.close(go_r)
c.close()
os.write(go_w, b"g")
reap(pid)
assert spawn(OPEN_PERSISTENT, path) == "1"
""",
        tmp_path,
    )


# Needs the C fork fix (libsvdb drops a forked child's collection locks).
def test_child_reopens_persistent_client_with_open_collection(tmp_path: Path) -> None:
    """Forked while a collection handle was open (libsvdb's collection lock is inherited too)."""
    run_script(
        """
path = os.path.join(sys.argv[1], "db")
c = pysvdb.PersistentClient(path)
col = c.create_collection("col", embedding_function=None)
col.add(ids=["a"], embeddings=[[1.0]])
go_r, go_w = os.pipe()

def child():
    os.close(go_w)
    assert os.read(go_r, 1) == b"g"
    with pysvdb.PersistentClient(path) as mine:
        got = mine.get_collection("col")
        assert got.count() == 1
        got.add(ids=["child"], embeddings=[[2.0]])

pid = fork(child)
os.close(go_r)
c.close()
os.write(go_w, b"g")
reap(pid)
assert spawn(OPEN_PERSISTENT, path) == "2"
""",
        tmp_path,
    )


@pytest.mark.parametrize(
    "opened",
    [
        "no-collection-open",  # only pysvdb's own lock file is involved
        "collection-open",  # also libsvdb's collection lock: needs the C fork fix
    ],
)
def test_third_process_opens_persistent_while_child_lives(tmp_path: Path, opened: str) -> None:
    run_script(
        "OPENED = %r\n" % (opened == "collection-open")
        + """
path = os.path.join(sys.argv[1], "db")
c = pysvdb.PersistentClient(path)
col = c.create_collection("col", embedding_function=None)
if OPENED:
    col.add(ids=["a"], embeddings=[[1.0]])
done_r, done_w = os.pipe()

def child():
    os.close(done_w)
    os.read(done_r, 1)  # lives until the parent is done

pid = fork(child)
os.close(done_r)
c.close()
assert spawn(OPEN_PERSISTENT, path) == ("1" if OPENED else "0")  # the child holds no lock
os.write(done_w, b"x")
reap(pid)
""",
        tmp_path,
    )


# ---------------------------------------------------------------- SvDBPython


@pytest.mark.parametrize("exit_mode", EXIT_MODES)
def test_svdb_survives_child_exit(tmp_path: Path, exit_mode: str) -> None:
    """A child closing its inherited handle (or exiting) touches nothing of the parent's."""
    run_script(
        "EXIT = %r\n" % exit_mode
        + CHILD_EXITS
        + """
path = os.path.join(sys.argv[1], "coll")
with pysvdb.SvDBPython(path) as db:
    db.add(["a"], [[1.0, 0.0]])

    def child():
        db.close()  # a no-op here: never the parent's checkpoint, never an error

    child_exits(child)
    for i in range(50):
        db.add(["b%d" % i], [[0.0, float(i)]])
    assert db.count() == 51 and db.search([1.0, 0.0], k=1)[0][0] == "a"
assert spawn(OPEN_SVDB, path) == "51"
""",
        tmp_path,
    )


def test_svdb_handle_unusable_in_child(tmp_path: Path) -> None:
    run_script(
        """
db = pysvdb.SvDBPython(os.path.join(sys.argv[1], "coll"))
db.add(["a"], [[1.0]])

def child():
    for call in (db.count, lambda: db.add(["b"], [[1.0]]), lambda: db.search([1.0], k=1)):
        try:
            call()
            raise AssertionError("the inherited handle worked in the child")
        except pysvdb.MisuseError as e:
            assert e.code == -2 and "fork" in str(e), e
    assert db.closed

reap(fork(child))
assert db.count() == 1
db.close()
""",
        tmp_path,
    )


def test_svdb_with_block_in_child_exits_cleanly(tmp_path: Path) -> None:
    """sys.exit inside the parent's ``with`` block in the child: __exit__ closes nothing and raises nothing."""
    run_script(
        """
path = os.path.join(sys.argv[1], "coll")
with pysvdb.SvDBPython(path) as db:
    db.add(["a"], [[1.0]])
    pid = os.fork()
    if pid == 0:
        sys.exit(0)
    reap(pid)
    db.add(["b"], [[2.0]])
assert spawn(OPEN_SVDB, path) == "2"
""",
        tmp_path,
    )


# Needs the C fork fix (libsvdb drops a forked child's collection locks).
def test_child_reopens_svdb_after_parent_closed(tmp_path: Path) -> None:
    run_script(
        """
path = os.path.join(sys.argv[1], "coll")
db = pysvdb.SvDBPython(path)
db.add(["a"], [[1.0]])
go_r, go_w = os.pipe()

def child():
    os.close(go_w)
    assert os.read(go_r, 1) == b"g"
    with pysvdb.SvDBPython(path) as mine:  # the inherited handle is gone; the lock is not held here
        assert mine.count() == 1
        mine.add(["child"], [[2.0]])

pid = fork(child)
os.close(go_r)
db.close()
os.write(go_w, b"g")
reap(pid)
assert spawn(OPEN_SVDB, path) == "2"
""",
        tmp_path,
    )


# Needs the C fork fix (libsvdb drops a forked child's collection locks).
def test_third_process_opens_svdb_while_child_lives(tmp_path: Path) -> None:
    run_script(
        """
path = os.path.join(sys.argv[1], "coll")
db = pysvdb.SvDBPython(path)
db.add(["a"], [[1.0]])
done_r, done_w = os.pipe()

def child():
    os.close(done_w)
    os.read(done_r, 1)

pid = fork(child)
os.close(done_r)
db.close()
assert spawn(OPEN_SVDB, path) == "1"
os.write(done_w, b"x")
reap(pid)
""",
        tmp_path,
    )


# ---------------------------------------------------------------- exec


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_exec_child_inherits_no_lock_descriptor(tmp_path: Path) -> None:
    """A program started with subprocess holds none of the lock files open,
    and can open the store as soon as the parent closes it, while it still runs."""
    run_script(
        """
path = os.path.join(sys.argv[1], "db")
coll = os.path.join(sys.argv[1], "coll")
c = pysvdb.PersistentClient(path)
c.create_collection("col", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
db = pysvdb.SvDBPython(coll)
db.add(["a"], [[1.0]])
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; sys.path.insert(0, %r); sys.stdin.readline(); import pysvdb\\n"
     "c = pysvdb.PersistentClient(sys.argv[1]); print(c.get_collection('col').count()); c.close()\\n"
     "db = pysvdb.SvDBPython(sys.argv[2]); print(db.count()); db.close()" % PKG, path, coll],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, close_fds=False)
time.sleep(0.2)
fds = os.listdir("/proc/%d/fd" % child.pid)
targets = []
for fd in fds:
    try:
        targets.append(os.readlink("/proc/%d/fd/%s" % (child.pid, fd)))
    except OSError:
        pass
held = [t for t in targets if t.endswith(("pysvdb-chroma.lock", "/LOCK")) or t.startswith(sys.argv[1])]
assert not held, held
c.close()
db.close()
out, _ = child.communicate("go\\n", timeout=120)
assert child.returncode == 0 and out.split() == ["1", "1"], out
""".replace("PKG", repr(PKG_PARENT)),
        tmp_path,
    )
