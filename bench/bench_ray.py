"""Scale-out on Ray: pysvdb.ray's sharded collections beside one in-process collection.

One run, one data set, one local Ray cluster (``ray.cluster_utils.Cluster``: a
head with 2 CPUs and two worker nodes with 1 CPU each, as tests/python/test_ray.py
starts it; on one machine, so every "node" shares its cores and its disk).
For the in-process pysvdb Chroma collection (``pysvdb.PersistentClient``) and
for RayClient collections of 1, 2 and 4 shards (replicas=1) and 2 shards x 2
replicas, all with the same HNSW settings (M 16, ef_construction 100,
ef_search 100):

- ingest: ``add`` in batches of ``--batch`` rows, rows/s until the last ``add``
  returns and until every row is linked into the HNSW graph (pysvdb links in the
  background); ``add_dataset`` of a Ray Dataset holding the same rows;
- query: one query per ``query`` call, one after the other: per-query p50/p95
  latency and q/s; the whole query set in one call (batch q/s); recall@10
  against the data set's exact ground truth.

Where a query's time goes (ray rows only), each measured on its own:

- ``noop``: the Ray round trip of a no-op call (``__ray_ready__``) to one shard
  actor, and to all shards at once (the fan-out of Ray alone);
- ``in shard``: the shard actor's own ``Shard.query``, timed inside the actor;
- ``shard call``: ``Shard.query`` called straight on the actor (Ray + serialization + work);
- ``client read``: the client's ``_read`` of every shard (one call each, its waiting loop);
- ``merge``: the client's ``query`` with ``_read`` replaced by captured shard
  answers, so only the driver's validation, merge by distance and result building
  run (``validate`` alone: the same with no answers);
- once per run: pickling of the query arguments and of one shard answer (what Ray
  serializes), the submit of an actor call (``.remote()`` returning), a no-op
  actor call on the driver's node and on another node, a no-op Ray task (task
  scheduling: a worker lease), the catalog round trip each ``add`` pays, and one
  ``add``'s parts: the client's call, the driver's own part (``_write`` stubbed),
  ``Shard.add`` inside the actor, and the same rows there without the hidden
  ``svdb:seq`` metadata.

``--model`` then prints the paper model of docs/scale-out.md (1 billion 768-d
vectors) computed from this run's figures.

Usage:
    SVDB_LIBRARY=$PWD/build/libsvdb.so PYTHONPATH=$PWD python3 bench/bench_ray.py \
        [--dataset siftsmall|fashion_mnist|glove25] [--quick] [--model]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

import pysvdb

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.environ.get("SVDB_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
SPACES = {"siftsmall": "l2", "fashion_mnist": "l2", "glove25": "cosine"}
HNSW = {"max_neighbors": 16, "ef_construction": 100, "ef_search": 100}
K = 10
MB = 1 << 20

F32 = npt.NDArray[np.float32]


# ---------------------------------------------------------------- data


def read_vecs(path: str, dtype: Any) -> npt.NDArray[Any]:
    """A texmex .fvecs/.ivecs file as an (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return np.ascontiguousarray(raw.reshape(-1, d + 1)[:, 1:].view(dtype))


@dataclass
class Data:
    name: str
    space: str
    base: F32
    queries: F32
    gt: npt.NDArray[np.int64]  # (queries, K): row numbers of the exact nearest

    @property
    def ids(self) -> List[str]:
        return [str(i) for i in range(len(self.base))]


def exact_top(base: F32, queries: F32, space: str) -> npt.NDArray[np.int64]:
    """Brute-force top-K row numbers (for a subset, whose file ground truth no longer holds)."""
    if space == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        d = -(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ b.T
    else:
        d = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
    return np.argsort(d, axis=1, kind="stable")[:, :K].astype(np.int64)


def load(name: str, rows: Optional[int], queries: Optional[int]) -> Data:
    def f(kind: str) -> str:
        return os.path.join(DATA, "%s_%s" % (name, kind))

    base = read_vecs(f("base.fvecs"), np.float32)
    qs = read_vecs(f("query.fvecs"), np.float32)[:queries]
    if rows is None or rows >= len(base):
        gt = read_vecs(f("groundtruth.ivecs"), np.int32)[: len(qs), :K].astype(np.int64)
        return Data(name, SPACES[name], base, qs, gt)
    base = base[:rows]
    return Data(name, SPACES[name], base, qs, exact_top(base, qs, SPACES[name]))


def recall(ids: Sequence[Sequence[str]], gt: npt.NDArray[np.int64]) -> float:
    hits = [len({int(x) for x in got[:K]} & set(want.tolist())) for got, want in zip(ids, gt)]
    return sum(hits) / (K * len(gt))


# ---------------------------------------------------------------- figures


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))] if s else math.nan


def timed(fn: Callable[[], Any], n: int) -> List[float]:
    """Seconds of each of n calls of fn (after one untimed call)."""
    fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


@dataclass
class Row:
    """One line of the main table."""

    label: str
    shards: int = 0
    replicas: int = 0
    add_rps: float = math.nan  # rows/s until the last add returned (median of repeats)
    linked_rps: float = math.nan  # rows/s until every row was linked
    dataset_rps: float = math.nan  # add_dataset rows/s (until it returned)
    lat: List[float] = field(default_factory=list)  # s per query, one per call
    batch_qps: float = math.nan
    recall: float = math.nan
    nodes: List[str] = field(default_factory=list)  # per replica actor: which node
    parts: Dict[str, float] = field(default_factory=dict)  # where a query's time goes, ms


# ---------------------------------------------------------------- in-process


def wait_linked(col: Any) -> None:
    """Until every row of a pysvdb Chroma collection is linked into its graph."""
    with col._engine.use(col._record) as db:
        db.index_wait()


def ingest_single(data: Data, work: str, batch: int) -> Tuple[Any, Any, float, float]:
    client = pysvdb.PersistentClient(work)
    col = client.create_collection("bench", configuration={"hnsw": {"space": data.space, **HNSW}},
                                   embedding_function=None)
    ids = data.ids
    t = time.perf_counter()
    for s in range(0, len(ids), batch):
        col.add(ids=ids[s:s + batch], embeddings=data.base[s:s + batch])
    added = time.perf_counter() - t
    wait_linked(col)
    return client, col, added, time.perf_counter() - t


def query_figures(row: Row, col: Any, data: Data, passes: int) -> None:
    """Per-query latency (passes over the query set), recall of the first pass, batch q/s."""
    got: List[List[str]] = []
    col.query(query_embeddings=data.queries[:1], n_results=K)
    for p in range(passes):
        for q in data.queries:
            t = time.perf_counter()
            res = col.query(query_embeddings=q[None, :], n_results=K)
            row.lat.append(time.perf_counter() - t)
            if p == 0:
                got.append(res["ids"][0])
    row.recall = recall(got, data.gt)
    batch = timed(lambda: col.query(query_embeddings=data.queries, n_results=K), 3)
    row.batch_qps = len(data.queries) / median(batch)


def run_single(data: Data, work: str, batch: int, repeats: int, passes: int) -> Row:
    row = Row("in-process PersistentClient")
    adds, links = [], []
    client: Any = None
    col: Any = None
    for r in range(repeats):
        if client is not None:
            client.close()
        client, col, added, linked = ingest_single(data, os.path.join(work, "single-%d" % r), batch)
        adds.append(len(data.base) / added)
        links.append(len(data.base) / linked)
    row.add_rps, row.linked_rps = median(adds), median(links)
    query_figures(row, col, data, passes)
    client.close()
    return row


# ---------------------------------------------------------------- the Ray cluster


def start_cluster(workers: int, store_mb: int) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": store_mb * MB, "include_dashboard": False})
    for _ in range(workers):
        c.add_node(num_cpus=1, object_store_memory=store_mb * MB)
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return c


# Run inside a shard actor through Ray's __ray_call__ (the actor instance comes first).
# Defined in __main__, so cloudpickle ships them by value; they import what they use.


def _in_shard_link_wait(shard: Any) -> str:
    import ray

    with shard._col._engine.use(shard._col._record) as db:
        db.index_wait()
    return str(ray.get_runtime_context().get_node_id())


def _in_shard_add_time(shard: Any, ids: List[str], vecs: Any, seqs: List[int]) -> float:
    import time as t_

    t = t_.perf_counter()
    shard.add(ids, vecs, None, None, None, seqs)
    return t_.perf_counter() - t


def _in_shard_plain_add_time(shard: Any, ids: List[str], vecs: Any) -> float:
    import time as t_

    t = t_.perf_counter()
    shard._col.add(ids=ids, embeddings=vecs)  # as Shard.add, without the hidden insertion numbers
    return t_.perf_counter() - t


def _in_shard_query_times(shard: Any, qs: Any, k: int, inc: List[str]) -> List[float]:
    import time as t_

    out = []
    for q in qs:
        t = t_.perf_counter()
        shard.query(q[None, :], k, None, None, None, inc)
        out.append(t_.perf_counter() - t)
    return out


class NoOp:
    """An actor whose methods do nothing: the Ray round trip alone, with an
    argument, or returning a stored value."""

    def __init__(self) -> None:
        self._kept: Any = None

    def noop(self) -> None:
        return None

    def take(self, arg: Any) -> None:
        return None

    def keep(self, value: Any) -> None:
        self._kept = value

    def give(self) -> Any:
        return self._kept


def node_names() -> Dict[str, str]:
    """Ray node id -> "head", "worker1", ... (workers in the order Ray lists them)."""
    import ray

    names: Dict[str, str] = {}
    for nd in ray.nodes():  # type: ignore[no-untyped-call]
        head = "node:__internal_head__" in (nd.get("Resources") or {})
        names[nd["NodeID"]] = "head" if head else "worker%d" % (1 + sum(v != "head" for v in names.values()))
    return names


def ray_wait_linked(col: Any) -> List[str]:
    """Waits until every replica has linked its rows; returns the node of each (shard by shard)."""
    import ray

    refs = [rep.__ray_call__.remote(_in_shard_link_wait) for reps in col._replicas for rep in reps]
    names = node_names()
    return [names.get(str(n), str(n)[:6]) for n in ray.get(refs)]


def ingest_ray(client: Any, name: str, data: Data, shards: int, replicas: int, batch: int) -> Tuple[Any, float, float]:
    col = client.create_collection(name, shards=shards, replicas=replicas,
                                   configuration={"hnsw": {"space": data.space, **HNSW}}, embedding_function=None)
    ids = data.ids
    calls = []
    t = time.perf_counter()
    for s in range(0, len(ids), batch):
        c = time.perf_counter()
        col.add(ids=ids[s:s + batch], embeddings=data.base[s:s + batch])
        calls.append(time.perf_counter() - c)
    added = time.perf_counter() - t
    ray_wait_linked(col)
    linked = time.perf_counter() - t
    print("  %s: add calls median %.1f ms, max %.1f ms; linked after %.2f s"
          % (name, median(calls) * 1e3, max(calls) * 1e3, linked), file=sys.stderr)
    return col, added, linked


def ingest_dataset(client: Any, name: str, data: Data, shards: int, replicas: int, batch: int) -> float:
    """add_dataset rows/s: the same rows as a Ray Dataset of 8 blocks (from Arrow)."""
    import pyarrow as pa
    import ray.data

    col = client.create_collection(name, shards=shards, replicas=replicas,
                                   configuration={"hnsw": {"space": data.space, **HNSW}}, embedding_function=None)
    n, d = data.base.shape
    table = pa.table({"id": pa.array(data.ids),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(data.base.reshape(-1)), d)})
    step = -(-n // 8)
    ds = ray.data.from_arrow([table.slice(s, step) for s in range(0, n, step)])
    t = time.perf_counter()
    written = col.add_dataset(ds, id_column="id", embedding_column="embedding", batch_size=batch)
    took = time.perf_counter() - t
    if written != n or col.count() != n:
        raise RuntimeError("add_dataset wrote %d rows, count %d, expected %d" % (written, col.count(), n))
    client.delete_collection(name)
    return float(n / took)


def overheads(row: Row, col: Any, data: Data, n: int) -> None:
    """Where a query's time goes: see the module docstring. Medians in ms."""
    import ray

    qs = data.queries[:n]
    q0 = qs[:1]
    inc = ["metadatas", "documents", "distances"]  # query()'s default include, as the client sends it
    shards = [reps[0] for reps in col._replicas]
    calls = [(s, "query", (q0, K, None, None, None, inc)) for s in range(len(shards))]
    ms = 1e3
    row.parts["noop one shard"] = median(timed(lambda: ray.get(shards[0].__ray_ready__.remote()), n)) * ms
    row.parts["noop all shards"] = median(timed(lambda: ray.get([s.__ray_ready__.remote() for s in shards]), n)) * ms
    inside = ray.get([s.__ray_call__.remote(_in_shard_query_times, qs, K, inc) for s in shards])
    row.parts["in shard"] = median([median(t) for t in inside]) * ms
    row.parts["shard call"] = median(timed(lambda: ray.get(shards[0].query.remote(q0, K, None, None, None, inc)), n)) * ms
    row.parts["client read"] = median(timed(lambda: col._read(calls), n)) * ms
    captured = col._read(calls)
    try:
        col._read = lambda _calls: captured
        row.parts["merge"] = median(timed(lambda: col.query(query_embeddings=q0, n_results=K), n)) * ms
        col._read = lambda _calls: []
        row.parts["validate"] = median(timed(lambda: col.query(query_embeddings=q0, n_results=K), n)) * ms
    finally:
        del col._read
    row.parts["client query"] = median(timed(lambda: col.query(query_embeddings=q0, n_results=K), n)) * ms
    row.parts["driver CPU"] = median(cpu_times(lambda: col.query(query_embeddings=q0, n_results=K), n)) * ms


def cpu_times(fn: Callable[[], Any], n: int) -> List[float]:
    """CPU seconds of the driver process (all its threads, Ray's included) per call of fn."""
    fn()
    out = []
    for _ in range(n):
        t = time.process_time()
        fn()
        out.append(time.process_time() - t)
    return out


def run_ray(client: Any, data: Data, shards: int, replicas: int, a: argparse.Namespace, with_dataset: bool) -> Row:
    row = Row("ray %d shard%s x %d replica%s" % (shards, "s" if shards > 1 else "", replicas,
                                                 "s" if replicas > 1 else ""), shards, replicas)
    adds, links = [], []
    col: Any = None
    for r in range(a.repeats):
        if col is not None:
            client.delete_collection(col.name)
        col, added, linked = ingest_ray(client, "bench-%d-%d-%d" % (shards, replicas, r), data, shards, replicas,
                                        a.batch)
        adds.append(len(data.base) / added)
        links.append(len(data.base) / linked)
    row.add_rps, row.linked_rps = median(adds), median(links)
    row.nodes = ray_wait_linked(col)
    query_figures(row, col, data, a.passes)
    overheads(row, col, data, min(len(data.queries), a.calls))
    client.delete_collection(col.name)
    if with_dataset:
        row.dataset_rps = median([ingest_dataset(client, "bench-ds-%d-%d-%d" % (shards, replicas, r), data, shards,
                                                 replicas, a.batch) for r in range(a.repeats)])
    return row


def add_parts(col: Any, data: Data, batch: int, calls: int = 5) -> Dict[str, float]:
    """One add of ``batch`` rows to a 1-shard collection: the client's call; the same
    with ``_write`` replaced by nothing (the driver's checks, catalog call and
    routing); Shard.add timed inside the actor; the collection's own add there
    without the hidden insertion numbers. Fresh ids each time, the data set's first rows."""
    import ray

    vecs = data.base[:batch]
    shard = col._shards[0]
    times: Dict[str, List[float]] = {"client": [], "driver": [], "shard": [], "plain": []}
    for c in range(calls):
        t = time.perf_counter()
        col.add(ids=["c%d-%d" % (c, i) for i in range(len(vecs))], embeddings=vecs)
        times["client"].append(time.perf_counter() - t)
        try:
            col._write = lambda _calls: None
            t = time.perf_counter()
            col.add(ids=["d%d-%d" % (c, i) for i in range(len(vecs))], embeddings=vecs)
            times["driver"].append(time.perf_counter() - t)
        finally:
            del col._write
        ids = ["s%d-%d" % (c, i) for i in range(len(vecs))]
        seqs = list(range(10**9 + c * len(vecs), 10**9 + (c + 1) * len(vecs)))
        times["shard"].append(ray.get(shard.__ray_call__.remote(_in_shard_add_time, ids, vecs, seqs)))
        ids = ["p%d-%d" % (c, i) for i in range(len(vecs))]
        times["plain"].append(ray.get(shard.__ray_call__.remote(_in_shard_plain_add_time, ids, vecs)))
    ms = {k: median(v) * 1e3 for k, v in times.items()}
    return {"add of %d rows, the client's call, 1 shard (ms)" % len(vecs): ms["client"],
            "  in the driver: checks, catalog call, routing (ms)": ms["driver"],
            "  Shard.add inside the actor (ms)": ms["shard"],
            "    the same rows without the hidden svdb:seq metadata (ms)": ms["plain"]}


def once_per_run(client: Any, data: Data, n: int, batch: int) -> Dict[str, float]:
    """The pieces that do not depend on the shard count: see the module docstring."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    out: Dict[str, float] = {}
    me = ray.get_runtime_context().get_node_id()
    alive = [nd["NodeID"] for nd in ray.nodes() if nd["Alive"]]  # type: ignore[no-untyped-call]
    other = next(node for node in alive if node != me)
    col = client.create_collection("bench-ser", shards=1, configuration={"hnsw": {"space": data.space, **HNSW}},
                                   embedding_function=None)
    col.add(ids=data.ids[:1000], embeddings=data.base[:1000])
    inc = ["metadatas", "documents", "distances"]
    args = (data.queries[:1], K, None, None, None, inc)
    answer = col._read([(0, "query", args)])[0]
    out.update(add_parts(col, data, batch))
    client.delete_collection("bench-ser")
    for where, node in (("same node", me), ("other node", other)):
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)
        a: Any = ray.remote(NoOp).options(num_cpus=0, scheduling_strategy=strategy).remote()
        base = median(timed(lambda: ray.get(a.noop.remote()), n)) * 1e3
        out["noop actor call, %s (ms)" % where] = base
        if where == "other node":
            out["  + the query's arguments as argument (1 x d float32 array, k, include) (ms)"] = median(
                timed(lambda: ray.get(a.take.remote(args)), n)) * 1e3 - base
            ray.get(a.keep.remote(answer))
            out["  + one shard's answer returned (ms)"] = median(timed(lambda: ray.get(a.give.remote()), n)) * 1e3 - base
            refs: List[Any] = []
            out["submit of an actor call (.remote() returns) (ms)"] = median(
                timed(lambda: refs.append(a.noop.remote()), n)) * 1e3
            ray.get(refs)
            out["driver CPU of a noop actor call (ms)"] = median(cpu_times(lambda: ray.get(a.noop.remote()), n)) * 1e3
        ray.kill(a)

    @ray.remote(num_cpus=0)
    def nothing() -> None:
        return None

    out["noop Ray task, scheduled (ms)"] = median(timed(lambda: ray.get(nothing.remote()), n)) * 1e3
    out["catalog round trip, once per add (ms)"] = median(timed(client.heartbeat, n)) * 1e3
    for what, obj in (("query arguments", args), ("one shard's answer", answer)):
        blob = pickle.dumps(obj, protocol=5)
        out["pickle + unpickle %s, %d B (ms)" % (what, len(blob))] = median(
            timed(lambda: pickle.loads(pickle.dumps(obj, protocol=5)), n)) * 1e3
    return out


# ---------------------------------------------------------------- report


def fmt(x: float, digits: int = 2) -> str:
    return "-" if math.isnan(x) else ("{:,.%df}" % digits).format(x)


def print_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def report(data: Data, rows: List[Row], once: Dict[str, float]) -> None:
    single = rows[0]
    print("\n## %s: %d x %d (%s), %d queries, k = %d\n" % (data.name, len(data.base), data.base.shape[1],
                                                            data.space, len(data.queries), K))
    print_table(
        ["configuration", "add rows/s (returned)", "add rows/s (linked)", "add_dataset rows/s", "query p50 ms",
         "p95 ms", "q/s one by one", "q/s one batch call", "recall@10", "p50 / in-process"],
        [[r.label, fmt(r.add_rps, 0), fmt(r.linked_rps, 0), fmt(r.dataset_rps, 0), fmt(median(r.lat) * 1e3, 3),
          fmt(pct(r.lat, 0.95) * 1e3, 3), fmt(len(r.lat) / sum(r.lat), 0), fmt(r.batch_qps, 0), fmt(r.recall, 3),
          fmt(median(r.lat) / median(single.lat), 1) + "x"] for r in rows])
    ray_rows = [r for r in rows[1:] if r.parts]
    keys = ["noop one shard", "noop all shards", "in shard", "shard call", "client read", "validate", "merge",
            "client query", "driver CPU"]
    print("Where one query's time goes (medians, ms; `merge` includes `validate`):\n")
    print_table(["configuration"] + keys + ["node of each shard (replica)"],
                [[r.label] + [fmt(r.parts.get(k, math.nan), 3) for k in keys]
                 + [" ".join(r.nodes)] for r in ray_rows])
    print_table(["once per run", "ms"], [[k, fmt(v, 3)] for k, v in once.items()])
    slope, fanout = per_shard_cost(rows)
    print("Fan-out, per extra shard (least squares over the replicas=1 rows): query p50 +%.3f ms; Ray alone "
          "(a no-op to every shard) +%.3f ms; the driver's CPU per query +%.3f ms."
          % (slope, fanout, fit_shards(rows, lambda r: r.parts["driver CPU"])))


def fit_shards(rows: List[Row], y: Callable[[Row], float]) -> float:
    """Least-squares slope of y against the shard count over the replicas=1 rows."""
    pts = [r for r in rows if r.replicas == 1 and r.parts]
    if len(pts) < 2:
        return math.nan
    return float(np.polyfit([float(r.shards) for r in pts], [y(r) for r in pts], 1)[0])


def per_shard_cost(rows: List[Row]) -> Tuple[float, float]:
    """Slope of the query p50 and of the no-op fan-out against the shard count (replicas=1)."""
    return fit_shards(rows, lambda r: median(r.lat) * 1e3), fit_shards(rows, lambda r: r.parts["noop all shards"])


# ---------------------------------------------------------------- the paper model


#: Growth of a query's cost (ef fixed) and of a row's linking cost per tenfold rows, from
#: docs/performance-storage.md (same machine, f32, M 16): siftsmall 10k -> gen1m 1M,
#: QPS at ef=64 29,967 -> 11,007 (x2.72 over two decades), build 0.52 s -> 97.21 s (x1.87 per row).
QUERY_GROWTH_PER_DECADE = math.sqrt(29_967 / 11_007)
LINK_GROWTH_PER_DECADE = math.sqrt((97.21 / 1e6) / (0.52 / 1e4))
#: libsvdb's default automatic checkpoint (include/svdb.h SVDB_AUTOCHECKPOINT_DEFAULT): a write
#: that leaves the log at 64 MiB rewrites the whole snapshot before it returns.
AUTOCHECKPOINT = 64 * MB


@dataclass
class Model:
    rows: float = 1e9
    dim: int = 768
    m: int = 16
    id_bytes: int = 16  # e.g. "doc-000123456789"
    user_meta_bytes: int = 100  # a small JSON object per row
    node_gib: int = 256
    usable: float = 0.70  # of a node's memory for shards: the rest for the OS, Ray's object store, workers
    cores: int = 32  # per node (a 256 GiB node with 8 GiB per vCPU)
    disk_gbs: float = 1.0  # sequential write and copy rate, GB/s (an SSD, or 10 Gbit/s between nodes)

    def record_bytes(self) -> float:
        seq_meta = len('{"svdb:seq":123456789}')  # the hidden insertion number, in every row's JSON
        return self.id_bytes + seq_meta + self.user_meta_bytes

    def resident(self, storage: str) -> Dict[str, float]:
        """Resident bytes per row (lib/store.h, lib/hnsw.c, lib/idmap.c, docs/format.md)."""
        return {
            "vector": 4.0 * self.dim if storage == "f32" else 8.0 + 4 * math.ceil(self.dim / 4),
            "level-0 links": (2 * self.m + 1) * 4.0,
            "upper levels": (self.m + 1) * 4.0 / (self.m - 1) + 8 + 1,
            "row struct": 24.0,
            "id+metadata blob": self.record_bytes() + 2 + 16,
            "id hash": 5 / 0.5,
            "cosine norm": 4.0,
        }

    def snapshot_bytes(self) -> float:
        """Bytes per row of a shard's snapshot file (f32 vectors always; docs/format.md)."""
        return (4.0 * self.dim + (2 * self.m + 1) * 4.0 + 16 + self.record_bytes()
                + 1 + (self.m + 1) * 4.0 / (self.m - 1))


def model(rows: List[Row], data: Data, once: Dict[str, float]) -> None:
    mdl = Model()
    ray1 = next(r for r in rows if r.shards == 1 and r.replicas == 1 and r.parts)
    slope, fanout = per_shard_cost(rows)
    cpu_slope = fit_shards(rows, lambda r: r.parts["driver CPU"])
    single = rows[0]
    d = data.base.shape[1]
    print("\n## Model: %.0e rows x %d-d, M %d, %d GiB nodes (%.0f%% of it for shards), %d cores each"
          % (mdl.rows, mdl.dim, mdl.m, mdl.node_gib, 100 * mdl.usable, mdl.cores))
    print("(figures measured here on %s, %d-d, are scaled by %d/%d for the dimension)\n" % (data.name, d, mdl.dim, d))
    nodes: Dict[str, int] = {}
    for storage in ("f32", "int8"):
        parts = mdl.resident(storage)
        per_row = sum(parts.values())
        nodes[storage] = math.ceil(mdl.rows * per_row / (mdl.node_gib * 2**30 * mdl.usable))
        print("%s resident B/row: %s = %.0f -> %.2f TiB: %d nodes a copy, %.0f M rows a node%s"
              % (storage, " + ".join("%s %.0f" % kv for kv in parts.items()), per_row, mdl.rows * per_row / 2**40,
                 nodes[storage], mdl.rows / nodes[storage] / 1e6,
                 "" if storage == "f32" else " (+ %d B/row float32 originals on disk, read to re-rank)" % (4 * mdl.dim)))
    shards = nodes["f32"]
    per_shard = mdl.rows / shards
    in_shard = median([r.parts["in shard"] for r in rows[1:] if r.parts])  # every ray row's, for less noise
    fixed = median(ray1.lat) * 1e3 - in_shard

    def growth(rows_per_shard: float) -> float:
        return float(QUERY_GROWTH_PER_DECADE ** math.log10(rows_per_shard / len(data.base)))

    print()
    for s in (shards, 4 * shards):
        compute = in_shard * (mdl.dim / d) * growth(mdl.rows / s)
        lo, hi = fixed + compute + cpu_slope * (s - 1), fixed + compute + slope * (s - 1)
        print("query, %d shards of %.0f M rows: %.2f ms fixed (1-shard p50 - in-shard) + %.2f ms in a shard "
              "(%.3f x %.2f dim x %.2f size) + (s-1) x [%.3f driver CPU .. %.3f measured here] = %.1f .. %.1f ms"
              % (s, mdl.rows / s / 1e6, fixed, compute, in_shard, mdl.dim / d, growth(mdl.rows / s),
                 cpu_slope, slope, lo, hi))
    print("(Ray alone, a no-op to every shard: +%.3f ms a shard here)" % fanout)
    cpu1 = ray1.parts["driver CPU"]
    for s in (shards, 4 * shards):
        cpu = cpu1 + cpu_slope * (s - 1)
        print("driver CPU per query at %d shards: %.1f ms: one driver process answers at most ~%.0f queries/s"
              % (s, cpu, 1e3 / cpu))
    decades = math.log10(per_shard / len(data.base))
    add_rate = ray1.add_rps * d / mdl.dim
    ds_rows = [r.dataset_rps for r in rows if not math.isnan(r.dataset_rps)]
    link_core = single.linked_rps / (os.cpu_count() or 1) * d / mdl.dim / LINK_GROWTH_PER_DECADE**decades
    link_cluster = link_core * mdl.cores * shards
    print("\ningest, one driver's add: %.0f rows/s (%.0f measured x %d/%d): %.1f h; add_dataset here: %s rows/s"
          % (add_rate, ray1.add_rps, d, mdl.dim, mdl.rows / add_rate / 3600,
             ", ".join(fmt(x, 0) for x in ds_rows) or "-"))
    print("linking: %.0f rows/s a core at %.0f M rows a shard (%.0f rows/s in-process on %d cores x %d/%d, "
          "/ %.2f size) x %d cores x %d nodes = %.0f rows/s: %.1f h if it scaled with cores"
          % (link_core, per_shard / 1e6, single.linked_rps, os.cpu_count() or 1, d, mdl.dim,
             LINK_GROWTH_PER_DECADE**decades, mdl.cores, shards, link_cluster, mdl.rows / link_cluster / 3600))
    snap = per_shard * mdl.snapshot_bytes()
    per_ckpt = AUTOCHECKPOINT / (4.0 * mdl.dim + mdl.record_bytes() + 32)  # rows a 64 MiB log holds
    written = (per_shard / per_ckpt) * snap / 2
    print("checkpoints: a %.0f GB shard file; the 64 MiB automatic checkpoint rewrites it every %.0f rows: "
          "%.0f TB written per shard while it fills (%.0f h at %.1f GB/s); the last ones take %.0f s inside one add "
          "(the client's timeout is 60 s)" % (snap / 1e9, per_ckpt, written / 1e12, written / mdl.disk_gbs / 1e9 / 3600,
                                               mdl.disk_gbs, snap / mdl.disk_gbs / 1e9))
    print("  (one checkpoint passes 60 s from %.0f GB of shard file, %.0f M rows, at %.1f GB/s)"
          % (60 * mdl.disk_gbs, 60 * mdl.disk_gbs * 1e9 / mdl.snapshot_bytes() / 1e6, mdl.disk_gbs))
    print("catch-up: a restarted replica copies the whole %.0f GB shard in %d calls of 32 MiB: %.0f min at %.1f GB/s,"
          % (snap / 1e9, math.ceil(snap / (32 * MB)), snap / mdl.disk_gbs / 1e9 / 60, mdl.disk_gbs))
    print("  after its peer's export_begin checkpointed (rewrote) the same %.0f GB inside one actor call (%.0f s), "
          "during which that peer answers nothing" % (snap / 1e9, snap / mdl.disk_gbs / 1e9))
    cat = once.get("catalog round trip, once per add (ms)", math.nan)
    print("catalog: one next_seqs round trip (%.3f ms here) per add call, all through one actor on the head: "
          "at most ~%.0f add calls/s for the whole cluster" % (cat, 1e3 / cat))


# ---------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(SPACES), default="siftsmall")
    p.add_argument("--quick", action="store_true", help="2,000 rows, 50 queries, 1 and 2 shards (~40 s)")
    p.add_argument("--model", action="store_true", help="print the 1-billion-vector model from this run")
    p.add_argument("--rows", type=int, default=None, help="use the first ROWS base rows (exact top-10 recomputed)")
    p.add_argument("--queries", type=int, default=None, help="use the first QUERIES queries")
    p.add_argument("--batch", type=int, default=1000, help="rows per add call and per add_dataset batch")
    p.add_argument("--repeats", type=int, default=3, help="ingests per configuration (median)")
    p.add_argument("--passes", type=int, default=3, help="passes over the queries, one query per call")
    p.add_argument("--calls", type=int, default=200, help="calls per overhead figure")
    p.add_argument("--no-replicas", action="store_true", help="skip the 2 shards x 2 replicas row")
    a = p.parse_args(argv)
    configs = [(1, 1), (2, 1), (4, 1)] + ([] if a.no_replicas else [(2, 2)])
    if a.quick:
        a.rows, a.queries = a.rows or 2000, a.queries or 50
        a.repeats, a.passes, a.calls = 1, 2, 50
        configs = [(1, 1), (2, 1)]
    t0 = time.perf_counter()
    data = load(a.dataset, a.rows, a.queries)
    work = tempfile.mkdtemp(prefix="svdb-raybench-")
    cluster: Any = None
    try:
        rows = [run_single(data, work, a.batch, a.repeats, a.passes)]
        print("in-process done (%.1f s)" % (time.perf_counter() - t0), file=sys.stderr)
        cluster = start_cluster(workers=2, store_mb=150)
        client = pysvdb.RayClient(path=os.path.join(work, "ray"))
        print("cluster up (%.1f s)" % (time.perf_counter() - t0), file=sys.stderr)
        for shards, replicas in configs:
            rows.append(run_ray(client, data, shards, replicas, a, with_dataset=not a.quick or shards == 2))
            print("%s done (%.1f s)" % (rows[-1].label, time.perf_counter() - t0), file=sys.stderr)
        once = once_per_run(client, data, a.calls, a.batch)
        report(data, rows, once)
        if a.model:
            model(rows, data, once)
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print("\nwhole run %.1f s" % (time.perf_counter() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
