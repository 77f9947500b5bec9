"""The GIL is released during C calls, so threads really run in parallel."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
import time
from typing import Callable, Iterator, List, Tuple

import numpy as np
import pytest

import pysvdb
from pysvdb import SvDBPython


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SvDBPython]:
    path = tmp_path_factory.mktemp("threads") / "big"
    db = SvDBPython(str(path))
    data = np.random.default_rng(0).standard_normal((100_000, 64)).astype(np.float32)
    db.add(["r%d" % i for i in range(len(data))], data)
    yield db
    db.close()


def python_progress_during(call: Callable[[], object], repeats: int, margin: float = 0.005) -> Tuple[int, float]:
    """Runs call() `repeats` times while another thread spins in pure Python.

    Returns how many spins happened inside the calls' time windows (less a
    margin at each end, for the GIL hand-over around the call) and the total
    time spent in the calls. A spin needs the GIL, so if the GIL were held
    during the C call there would be none.
    """
    stamps: List[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())

    windows: List[Tuple[float, float]] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            windows.append((t0, t1))
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    arr = np.array(stamps)
    inside = sum(int(((arr > a + margin) & (arr < b - margin)).sum()) for a, b in windows)
    return inside, sum(b - a for a, b in windows)


def test_probe_detects_a_held_gil() -> None:
    """Control: during a C call that keeps the GIL (ctypes.PyDLL) no Python runs."""
    import ctypes

    try:
        usleep = ctypes.PyDLL(None).usleep
    except (AttributeError, OSError):  # pragma: no cover
        pytest.skip("no usleep in the process")
    best = min(python_progress_during(lambda: usleep(50000), 3)[0] for _ in range(3))
    assert best == 0


def test_gil_released_during_search_batch(big: SvDBPython) -> None:
    qs = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    while True:  # calls of at least 80 ms, so three of them exceed 0.15 s even on a noisy machine
        t0 = time.perf_counter()
        big.search_batch(qs, k=10, threads=1)
        if time.perf_counter() - t0 > 0.08:
            break
        qs = np.concatenate([qs, qs])
    inside, spent = python_progress_during(lambda: big.search_batch(qs, k=10, threads=1), 3)
    assert spent > 0.15
    assert inside > 100, "a pure-Python thread made no progress during search_batch: the GIL is held"


def test_gil_released_during_add(tmp_path: Path) -> None:
    with SvDBPython(str(tmp_path / "add"), durability="sync") as db:
        data = np.random.default_rng(3).standard_normal((50_000, 128)).astype(np.float32)
        batches = iter(range(5))

        def add() -> None:
            b = next(batches)
            db.add(["%d-%d" % (b, i) for i in range(10_000)], data[b * 10_000:(b + 1) * 10_000])

        inside, spent = python_progress_during(add, 5, margin=0.001)
        assert db.count() == 50_000
    assert inside > 0, "no Python ran during %.3f s of add()" % spent


def test_threaded_results_match_serial(big: SvDBPython) -> None:
    qs = np.random.default_rng(5).standard_normal((64, 64)).astype(np.float32)
    expected = [big.search(q, k=5) for q in qs]
    got: List[object] = [None] * len(qs)

    def work(i0: int) -> None:
        for i in range(i0, len(qs), 4):
            got[i] = big.search(qs[i], k=5)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == expected


def test_close_while_other_threads_search(tmp_path: Path) -> None:
    db = SvDBPython(str(tmp_path / "c"))
    data = np.random.default_rng(6).standard_normal((20_000, 32)).astype(np.float32)
    db.add(["%d" % i for i in range(len(data))], data)
    outcomes: List[str] = []
    started = threading.Barrier(5)

    def searcher() -> None:
        started.wait()
        n = 0
        try:
            while True:
                db.search(data[n % 100], k=3)
                db.search_batch(data[:8], k=3)
                n += 1
        except pysvdb.ClosedError:
            outcomes.append("closed")
        except Exception as e:  # pragma: no cover
            outcomes.append(repr(e))

    ts = [threading.Thread(target=searcher) for _ in range(4)]
    for t in ts:
        t.start()
    started.wait()
    time.sleep(0.2)
    db.close()  # waits for the calls in flight, then frees the handle
    for t in ts:
        t.join(30)
    assert outcomes == ["closed"] * 4
    with pytest.raises(pysvdb.ClosedError):
        db.count()


def test_writers_and_readers_see_whole_batches(db: SvDBPython) -> None:
    rng = np.random.default_rng(7)
    stop = threading.Event()
    seen: List[int] = []
    errors: List[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(db.count())
                db.search(rng.standard_normal(16).astype(np.float32), k=5)
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    db.add(["seed"], rng.standard_normal((1, 16)).astype(np.float32))
    rs = [threading.Thread(target=reader) for _ in range(2)]
    for t in rs:
        t.start()
    for b in range(50):
        db.add(["b%d-%d" % (b, i) for i in range(10)], rng.standard_normal((10, 16)).astype(np.float32))
    stop.set()
    for t in rs:
        t.join()
    assert not errors
    assert db.count() == 501
    assert all((c - 1) % 10 == 0 for c in seen)


def test_get_vector_races_first_add(db: SvDBPython) -> None:
    """get_vector beside the add that fixes the dimension must never overrun its buffer."""
    stop = threading.Event()
    results: List[object] = []

    def getter() -> None:
        while not stop.is_set():
            try:
                results.append(db.get_vector("a").shape)
            except pysvdb.NotFoundError:
                pass

    t = threading.Thread(target=getter)
    t.start()
    time.sleep(0.01)
    db.add(["a"], np.ones((1, 4096), dtype=np.float32))
    time.sleep(0.01)
    stop.set()
    t.join()
    assert all(r == (4096,) for r in results)
