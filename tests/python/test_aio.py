"""pysvdb.aio: the async twins of SvDBPython and of the ChromaDB client.

Each test runs its own event loop with asyncio.run (no pytest plugin needed).
Results are checked against the sync API on the same data; concurrency,
responsiveness, cancellation and closing are checked by what happened (rows
present, ticks counted, threads gone), never by timing.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Dict, List, Set, Tuple

import numpy as np
import pytest

import pysvdb
import pysvdb.aio as aio
from pysvdb import SvDBPython
from pysvdb.chroma import errors as chroma_errors

REPO = Path(__file__).resolve().parents[2]


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs the async test in a fresh event loop (pytest still sees its fixtures)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def pool_threads() -> Set[int]:
    return {t.ident or 0 for t in threading.enumerate() if t.name.startswith("pysvdb-aio")}


class GatedPool(ThreadPoolExecutor):
    """A one-thread pool whose calls wait at a gate before they run, and say when they start."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.gate = threading.Event()
        self.started = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        def gated() -> Any:
            self.started.set()
            self.gate.wait()
            return fn(*args, **kwargs)

        return super().submit(gated)


async def wait_event(ev: threading.Event) -> None:
    while not ev.is_set():  # polled from the loop: the pool's one thread is the one we wait for
        await asyncio.sleep(0.001)


# ---------------------------------------------------------------- surface


def public_members(cls: type) -> Tuple[Set[str], Set[str]]:
    methods, props = set(), set()
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        (props if isinstance(attr, property) else methods).add(name)
    return methods, props


def check_mirror(sync_cls: type, async_obj: object, sync_only: Set[str]) -> None:
    methods, props = public_members(sync_cls)
    for name in methods - sync_only:
        twin = getattr(async_obj, name)
        # a sync method returning an iterator becomes an async iterator (async for)
        is_async = inspect.isasyncgenfunction if name.startswith("iter_") else inspect.iscoroutinefunction
        assert is_async(twin), "%s.%s is not async" % (type(async_obj).__name__, name)
        if name != "close":  # generated twins take exactly the sync parameters
            sync_params = list(inspect.signature(getattr(sync_cls, name)).parameters)[1:]
            assert list(inspect.signature(twin).parameters) == sync_params, name
    for name in sync_only:
        assert not inspect.iscoroutinefunction(getattr(async_obj, name)), name
    for name in props:
        assert isinstance(inspect.getattr_static(type(async_obj), name), property), name


@run_async
async def test_every_public_method_and_property_is_mirrored(tmp_path: Path) -> None:
    async with aio.AsyncSvDB(str(tmp_path / "c"), dim=2) as db:
        check_mirror(SvDBPython, db, set())
    client = await aio.AsyncPersistentClient(str(tmp_path / "chroma"))
    try:
        col = await client.create_collection("abc")
        check_mirror(pysvdb.Collection, col, set())
        # get_settings and the static clear_system_cache are sync in chromadb's async client too
        check_mirror(pysvdb.ClientAPI, client, {"get_settings", "clear_system_cache"})
        admin = await aio.AsyncAdminClient(client.get_settings())
        check_mirror(pysvdb.AdminClient, admin, set())
        await admin.close()
    finally:
        await client.close()


def test_import_is_lazy() -> None:
    code = (
        "import sys, pysvdb\n"
        "print('pysvdb.aio' in sys.modules, 'asyncio' in sys.modules)\n"
        "import pysvdb.aio\n"
        "print('pysvdb.chroma' in sys.modules)\n"
        "pysvdb.aio.AsyncPersistentClient\n"
        "print('pysvdb.chroma' in sys.modules, pysvdb.aio is sys.modules['pysvdb.aio'])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False", "True", "True"]


# ---------------------------------------------------------------- opening


@run_async
async def test_open_forms_and_misuse(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    db = await aio.open(path, dim=3, metric="cosine")
    assert (db.dim, db.metric, db.index, db.storage, db.durability, db.path) == (3, "cosine", "flat", "f32", "persist", path)
    assert await db is db  # awaiting an open handle returns it
    await db.add(["a"], [[1, 0, 0]])
    await db.close()
    await db.close()  # idempotent
    assert db.closed and "closed" in repr(db)

    pending = aio.AsyncSvDB(path)
    assert "not open" in repr(pending)
    with pytest.raises(pysvdb.MisuseError, match="not open"):
        await pending.count()
    async with pending as again:
        assert await again.get_all_ids() == ["a"]
    with pytest.raises(pysvdb.ClosedError, match="is closed"):
        await pending.count()
    with pytest.raises(pysvdb.ClosedError):
        pending.dim

    # A failed open raises the sync error and leaves the handle closed, its pool gone.
    before = pool_threads()
    missing = aio.AsyncSvDB(str(tmp_path / "missing"), create=False)
    with pytest.raises(pysvdb.NotFoundError):
        await missing
    assert missing.closed and pool_threads() == before
    with pytest.raises(pysvdb.MismatchError):
        await aio.open(path, dim=5)

    with pytest.raises(pysvdb.InvalidArgumentError, match="max_workers"):
        aio.AsyncSvDB(path, max_workers=0)
    with pytest.raises(pysvdb.InvalidTypeError, match="max_workers"):
        aio.AsyncSvDB(path, max_workers=2.0)  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(pysvdb.InvalidArgumentError, match="not both"):
            aio.AsyncSvDB(path, executor=ex, max_workers=2)


# ---------------------------------------------------------------- concurrency


@run_async
async def test_200_concurrent_tasks_match_the_sync_api(tmp_path: Path) -> None:
    dim, n_base = 16, 300
    base = vectors(n_base, dim, 1)
    base_ids = ["b%d" % i for i in range(n_base)]
    base_meta = [{"g": "base", "i": i} for i in range(n_base)]
    ref = SvDBPython(str(tmp_path / "ref"))
    ref.add(base_ids, base, base_meta)
    queries = vectors(50, dim, 2)
    new = vectors(50 * 5, dim, 3)

    threads_before = threading.active_count()
    async with aio.AsyncSvDB(str(tmp_path / "c"), max_workers=4) as db:
        await db.add(base_ids, base, base_meta)
        expected: Dict[int, object] = {}
        calls: List[Awaitable[object]] = []
        for t in range(200):
            j = t // 4
            if t % 4 == 0:  # adds of rows that the filtered searches never match
                ids = ["n%d_%d" % (j, r) for r in range(5)]
                calls.append(db.add(ids, new[j * 5 : j * 5 + 5], [{"g": "new"}] * 5))
                ref.add(ids, new[j * 5 : j * 5 + 5], [{"g": "new"}] * 5)
                expected[t] = None
            elif t % 4 == 1:
                calls.append(db.search(queries[j], k=5, where={"g": "base"}))
                expected[t] = ref.search(queries[j], k=5, where={"g": "base"})
            elif t % 4 == 2:
                calls.append(db.get(base_ids[t]))
                expected[t] = ref.get(base_ids[t])
            else:
                calls.append(db.get_vector(base_ids[t]))
                expected[t] = ref.get_vector(base_ids[t])
        results = await asyncio.gather(*calls)
        assert threading.active_count() <= threads_before + 4  # a bounded pool, not a thread per call
        for t, got in enumerate(results):
            if isinstance(got, np.ndarray):
                np.testing.assert_array_equal(got, expected[t])
            else:
                assert got == expected[t], t
        assert await db.count() == ref.count() == n_base + 250
        assert set(await db.get_all_ids()) == set(ref.get_all_ids())
        all_ids = ref.get_all_ids()
        mine, theirs = await db.get_batch(all_ids, vectors=True), ref.get_batch(all_ids, vectors=True)
        assert mine.found.all() and mine.metadatas == theirs.metadatas
        np.testing.assert_array_equal(mine.vectors, theirs.vectors)
        got_b, want_b = await db.search_batch(queries, k=7), ref.search_batch(queries, k=7)
        assert (got_b.ids == want_b.ids).all()
        np.testing.assert_allclose(got_b.distances, want_b.distances, rtol=1e-6)
    ref.close()


@run_async
async def test_event_loop_keeps_running_during_a_long_call(tmp_path: Path) -> None:
    rows, queries = vectors(20_000, 128, 4), vectors(300, 128, 5)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async with aio.AsyncSvDB(str(tmp_path / "c")) as db:
        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        t0 = ticks
        await db.add(["r%d" % i for i in range(len(rows))], rows)  # one big batch
        t1 = ticks
        got = await db.search_batch(queries, k=10, threads=1)  # an exact scan of every row, per query
        t2 = ticks
        beat.cancel()
        # Blocking the loop for a call would leave the heartbeat at most one tick.
        assert t1 - t0 >= 3 and t2 - t1 >= 10, (t1 - t0, t2 - t1)
        with SvDBPython(str(tmp_path / "c")) as sync:
            want = sync.search_batch(queries, k=10)
        assert (got.ids == want.ids).all()


# ---------------------------------------------------------------- cancellation


@run_async
async def test_a_call_cancelled_before_it_starts_never_runs(tmp_path: Path) -> None:
    pool = GatedPool()
    pool.gate.set()  # the open passes; the calls after it wait at the gate
    db = await aio.open(str(tmp_path / "c"), dim=2, executor=pool)
    pool.gate.clear()
    pool.started.clear()
    blocker = asyncio.create_task(db.count())  # holds the pool's one thread at the gate
    await wait_event(pool.started)
    queued = asyncio.create_task(db.add(["x"], [[1.0, 2.0]]))
    await asyncio.sleep(0.01)  # the add is queued behind the blocker
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    pool.gate.set()
    assert await blocker == 0
    assert await db.count() == 0 and not await db.contains("x")
    await db.close()
    pool.shutdown()
    with SvDBPython(str(tmp_path / "c")) as sync:
        assert sync.count() == 0  # never logged either


@run_async
async def test_a_call_cancelled_while_running_completes_whole(tmp_path: Path) -> None:
    pool = GatedPool()
    pool.gate.set()
    db = await aio.open(str(tmp_path / "c"), dim=8, executor=pool)
    pool.gate.clear()
    pool.started.clear()
    ids = ["r%d" % i for i in range(1000)]
    task = asyncio.create_task(db.add(ids, vectors(1000, 8, 6)))
    await wait_event(pool.started)  # the call is on the thread: past the point of no return
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # the awaiting task stops at once ...
    pool.gate.set()
    assert await db.count() == 1000  # ... and the add, queued first, was applied whole
    assert await db.get_all_ids() == ids
    await db.close()
    pool.shutdown()


@run_async
async def test_cancelling_real_writes_leaves_each_applied_whole_or_not_at_all(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    db = await aio.open(path, dim=32, max_workers=2)
    batches = [["w%d_%d" % (b, i) for i in range(2000)] for b in range(6)]
    data = vectors(2000, 32, 7)
    tasks = [asyncio.create_task(db.add(ids, data)) for ids in batches]
    await asyncio.sleep(0)  # all submitted; at most two running
    for t in tasks[1::2]:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
    await db.close()  # waits for the cancelled calls that had started
    with SvDBPython(path) as sync:
        present = set(sync.get_all_ids())
        assert sync.count() == len(present)
        for b, ids in enumerate(batches):
            n = len(present.intersection(ids))
            assert n in (0, len(ids)), (b, n)  # never half a batch
            if not tasks[b].cancelled():
                assert n == len(ids)


# ---------------------------------------------------------------- closing


@run_async
async def test_close_waits_for_calls_in_flight(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    before = pool_threads()
    db = await aio.open(path, dim=16, max_workers=2)
    assert len(pool_threads() - before) >= 1
    tasks = [asyncio.create_task(db.add(["t%d_%d" % (t, i) for i in range(500)], vectors(500, 16, t))) for t in range(8)]
    await asyncio.sleep(0)  # every add is issued
    late = db.count()  # created before close but awaited after it began
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0)
    with pytest.raises(pysvdb.ClosedError):
        await late
    with pytest.raises(pysvdb.ClosedError):
        await db.search([0.0] * 16)
    await closing
    assert all(t.done() and t.exception() is None for t in tasks)
    assert pool_threads() == before  # the handle's pool was shut down
    with SvDBPython(path) as sync:
        assert sync.count() == 8 * 500


@run_async
async def test_close_finishes_even_when_its_task_is_cancelled(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    db = await aio.open(path, dim=4, max_workers=1)
    adding = asyncio.create_task(db.add(["r%d" % i for i in range(3000)], vectors(3000, 4, 8)))
    await asyncio.sleep(0)
    closer = asyncio.create_task(db.close())
    other = asyncio.create_task(db.close())  # a second close waits for the same one
    await asyncio.sleep(0)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    await other
    assert adding.done() and db.closed
    with SvDBPython(path, mode="exclusive") as sync:  # the async handle is really closed
        assert sync.count() == 3000


@run_async
async def test_a_cancelled_open_closes_what_it_opened(tmp_path: Path) -> None:
    # cancelled before it starts: nothing is created
    pool = GatedPool()
    opening = asyncio.create_task(aio.open(str(tmp_path / "never"), dim=2, executor=pool))
    await wait_event(pool.started)
    queued = asyncio.create_task(aio.open(str(tmp_path / "never2"), dim=2, executor=pool))
    await asyncio.sleep(0.01)
    queued.cancel()
    opening.cancel()  # this one is already on the thread
    pool.gate.set()
    for t in (queued, opening):
        with pytest.raises(asyncio.CancelledError):
            await t
    for _ in range(2000):  # the open that ran is closed by a task of its own (polled: up to 10 s)
        await asyncio.sleep(0.005)
        try:
            with SvDBPython(str(tmp_path / "never"), mode="exclusive") as sync:
                assert sync.dim == 2
            break
        except pysvdb.LockedError:
            continue
    else:
        raise AssertionError("the cancelled open's handle was never closed")
    assert not (tmp_path / "never2").exists()
    pool.shutdown()


@run_async
async def test_a_shared_executor_is_not_shut_down_by_a_handle(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as ex:
        a = await aio.open(str(tmp_path / "a"), dim=2, executor=ex)
        b = await aio.open(str(tmp_path / "b"), dim=2, executor=ex)
        await a.close()
        await b.add(["x"], [[1.0, 1.0]])
        assert await b.count() == 1
        await b.close()
        assert ex.submit(lambda: 7).result() == 7


# ---------------------------------------------------------------- newer sync methods


@run_async
async def test_progress_handler_runs_on_the_pool_and_can_cancel(tmp_path: Path) -> None:
    async with aio.AsyncSvDB(str(tmp_path / "c"), index="hnsw", build_threads=1) as db:
        seen: List[Tuple[str, str]] = []

        def stop(op: str, done: int, total: int) -> bool:
            seen.append((op, threading.current_thread().name))
            return op == "link"

        await db.set_progress_handler(stop)
        with pytest.raises(pysvdb.CanceledError):
            await db.add(["r%d" % i for i in range(30_000)], vectors(30_000, 32, 10))
        assert seen and all(name.startswith("pysvdb-aio") for _, name in seen)
        assert await db.count() == 0  # the cancelled add was undone
        await db.set_progress_handler(None)
        await db.add(["a", "b"], vectors(2, 32, 11))
        await db.delete(["a"])
        await db.compact()
        st = await db.stats()
        assert (st.count, st.free_slots) == (1, 0)


@run_async
async def test_arrow_twins_match_the_sync_ones(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")  # the pysvdb[arrow] extra
    data = vectors(250, 4, 12)
    table = pa.table(
        {
            "id": ["r%d" % i for i in range(250)],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), 4),
            "n": list(range(250)),
        }
    )
    with SvDBPython(str(tmp_path / "s")) as sync:
        sync.add_arrow(table, metadata_column=["n"])
        want = sync.to_arrow(where={"n": {"$lt": 120}})
        want_batches = [b.num_rows for b in sync.iter_arrow_batches(batch_size=100)]
    async with aio.AsyncSvDB(str(tmp_path / "c")) as db:
        assert await db.add_arrow(table, metadata_column=["n"]) == 250
        assert (await db.to_arrow(where={"n": {"$lt": 120}})).equals(want)
        batches = [b async for b in db.iter_arrow_batches(batch_size=100)]
        assert [b.num_rows for b in batches] == want_batches == [100, 100, 50]
        assert pa.Table.from_batches(batches).column("id").to_pylist() == table.column("id").to_pylist()
        with pytest.raises(pysvdb.InvalidArgumentError):
            [b async for b in db.iter_arrow_batches(batch_size=0)]

    client = await aio.AsyncPersistentClient(str(tmp_path / "chroma"))
    col = await client.create_collection("arrow")
    await col.add(ids=["a", "b"], embeddings=[[1, 0], [0, 1]], documents=["x", "y"])
    got = await col.get_arrow()
    assert got.column("id").to_pylist() == ["a", "b"] and got.column("document").to_pylist() == ["x", "y"]
    await client.close()


# ---------------------------------------------------------------- errors


@run_async
async def test_errors_are_the_sync_classes_with_the_sync_messages(tmp_path: Path) -> None:
    async with aio.AsyncSvDB(str(tmp_path / "c"), dim=2) as db:
        with SvDBPython(str(tmp_path / "s"), dim=2) as sync:
            await db.add(["a"], [[1, 2]])
            sync.add(["a"], [[1, 2]])
            cases: List[Tuple[str, Tuple[Any, ...], Dict[str, Any], type]] = [
                ("add", (["a"], [[1, 2]]), {}, pysvdb.IdExistsError),
                ("add", (["b", "b"], [[1, 2], [3, 4]]), {}, pysvdb.DuplicateIdError),
                ("add", (["c"], [[1, 2, 3]]), {}, pysvdb.DimensionError),
                ("add", ("abc", [[1, 2]]), {}, pysvdb.InvalidTypeError),
                ("get", ("zz",), {}, pysvdb.NotFoundError),
                ("search", ([1, 2],), {"k": 0}, pysvdb.InvalidArgumentError),
                ("update", (["zz"],), {"metadatas": [{"a": 1}]}, pysvdb.NotFoundError),
            ]
            for name, args, kwargs, cls in cases:
                with pytest.raises(cls) as sync_err:
                    getattr(sync, name)(*args, **kwargs)
                with pytest.raises(cls) as async_err:
                    await getattr(db, name)(*args, **kwargs)
                assert type(async_err.value) is type(sync_err.value), name
                assert str(async_err.value).replace(str(tmp_path / "c"), "P") == str(sync_err.value).replace(
                    str(tmp_path / "s"), "P"
                ), name
            with pytest.raises(KeyError):  # NotFoundError is also a KeyError
                await db.get_vector("zz")
            assert await db.count() == 1  # nothing half-applied


# ---------------------------------------------------------------- ChromaDB client


async def chroma_script(col: Any, call: Callable[[Any], Awaitable[Any]]) -> List[Any]:
    """The same operations through a sync or an async collection; ``call`` awaits or not."""
    out: List[Any] = []
    await call(
        col.add(
            ids=["a", "b", "c", "d"],
            embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]],
            metadatas=[{"year": 2020}, {"year": 2024}, {"year": 2021}, {"year": 2019}],
            documents=["red apples", "green pears", "blue plums", "apple pie"],
        )
    )
    out.append(await call(col.count()))
    out.append(await call(col.query(query_embeddings=[[1, 0.1, 0]], n_results=2, where={"year": {"$lt": 2022}})))
    out.append(
        await call(
            col.query(query_embeddings=[[1, 0, 0], [0, 1, 0]], n_results=3, where_document={"$contains": "p"}, include=["distances", "metadatas", "embeddings"])
        )
    )
    out.append(await call(col.get(where={"year": {"$gte": 2021}}, include=["metadatas", "documents", "embeddings"])))
    out.append(await call(col.get(ids=["d", "a"])))
    await call(col.update(ids=["a"], metadatas=[{"year": 2000, "k": "v"}]))
    await call(col.upsert(ids=["e"], embeddings=[[0, 1, 1]], documents=["grapes"]))
    out.append(await call(col.delete(where={"year": 2024})))
    out.append(await call(col.delete(ids=["c"])))
    out.append(await call(col.peek()))
    out.append(await call(col.count()))
    return out


async def as_is(x: Any) -> Any:
    return x


async def awaited(x: Awaitable[Any]) -> Any:
    return await x


def same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)) and not isinstance(a, str):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6)
    else:
        assert a == b


@run_async
async def test_chroma_async_client_end_to_end(tmp_path: Path) -> None:
    sync_client = pysvdb.PersistentClient(str(tmp_path / "sync"))
    sync_col = sync_client.create_collection("docs", metadata={"hnsw:space": "cosine"})
    want = await chroma_script(sync_col, as_is)
    sync_client.close()

    client = await aio.AsyncPersistentClient(str(tmp_path / "async"))
    assert isinstance(await client.heartbeat(), int)
    assert await client.get_version() == pysvdb.chroma.CHROMA_API_VERSION
    assert await client.get_max_batch_size() == pysvdb.chroma.MAX_BATCH_SIZE
    col = await client.create_collection("docs", metadata={"hnsw:space": "cosine"})
    assert isinstance(col, aio.AsyncCollection) and col.name == "docs" and col.metadata == {"hnsw:space": "cosine"}
    same(await chroma_script(col, awaited), want)

    again = await client.get_or_create_collection("docs")
    assert again == col and again.id == col.id and (await again.get_model()).dimension == 3
    assert [c.name for c in await client.list_collections()] == ["docs"]
    assert (await client.get_collection_by_id(col.id)).name == "docs"
    assert await client.count_collections() == 1
    await col.modify(name="docs2")
    assert (await client.get_collection("docs2")).id == col.id
    with pytest.raises(chroma_errors.NotFoundError):
        await client.get_collection("docs")
    with pytest.raises(chroma_errors.InvalidArgumentError):
        await col.query(query_embeddings=[[1, 0]], n_results=1)  # wrong dimension
    with pytest.raises(NotImplementedError):
        await col.fork("x")
    await client.delete_collection("docs2")
    assert await client.count_collections() == 0
    with pytest.raises(chroma_errors.NotFoundError):
        await col.count()
    await client.close()
    with pytest.raises(ValueError, match="client was closed"):
        await client.list_collections()
    with pytest.raises(ValueError, match="client was closed"):
        await col.count()

    async with aio.AsyncPersistentClient(str(tmp_path / "sync")) as reopened:  # the sync client's data
        same((await (await reopened.get_collection("docs")).get())["ids"], want[-2]["ids"])


@run_async
async def test_chroma_concurrent_tasks_on_one_collection(tmp_path: Path) -> None:
    data = vectors(400, 8, 9)
    async with aio.AsyncPersistentClient(str(tmp_path / "c"), max_workers=4) as client:
        col = await client.get_or_create_collection("many")
        await col.add(ids=["b%d" % i for i in range(200)], embeddings=data[:200], metadatas=[{"g": "base"}] * 200)
        calls: List[Awaitable[Any]] = []
        for t in range(200):
            if t % 2 == 0:
                i = 200 + t
                calls.append(col.add(ids=["n%d" % i], embeddings=data[i : i + 1], metadatas=[{"g": "new"}]))
            else:
                calls.append(col.query(query_embeddings=data[t : t + 1], n_results=3, where={"g": "base"}))
        results = await asyncio.gather(*calls)
        with pysvdb.SvDBPython(str(tmp_path / "ref"), dim=8) as ref:
            ref.add(["b%d" % i for i in range(200)], data[:200])
            for t in range(1, 200, 2):
                assert results[t]["ids"][0] == [h[0] for h in ref.search(data[t], k=3)]
        assert await col.count() == 300
        got = await col.get(where={"g": "new"})
        assert sorted(got["ids"]) == sorted("n%d" % (200 + t) for t in range(0, 200, 2))


@run_async
async def test_chroma_ephemeral_client_and_admin(tmp_path: Path) -> None:
    client = await aio.AsyncEphemeralClient()
    col = await client.create_collection("tmp")
    await col.add(ids=["a"], embeddings=[[1.0, 2.0]])
    assert (await col.get(include=["embeddings"]))["embeddings"].tolist() == [[1.0, 2.0]]
    await client.close()

    settings = pysvdb.Settings(is_persistent=True, persist_directory=str(tmp_path / "store"))
    async with aio.AsyncClient(settings) as c:
        assert c.tenant == pysvdb.DEFAULT_TENANT and c.get_settings() is settings
        async with aio.AsyncAdminClient(settings) as admin:
            await admin.create_database("second")
            assert (await admin.get_database("second"))["name"] == "second"
            assert "second" in [d["name"] for d in await admin.list_databases()]
        await c.set_database("second")
        assert c.database == "second"
        await c.create_collection("in2")
        await c.set_database(pysvdb.DEFAULT_DATABASE)
        assert await c.count_collections() == 0
