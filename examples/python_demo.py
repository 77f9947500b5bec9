#!/usr/bin/env python3
"""pysvdb demo: every method of SvDBPython on a small collection.

Run it after `pip install .` (from any directory):

    python3 examples/python_demo.py

The collection lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading

import numpy as np

import pysvdb


def show(title: str) -> None:
    print("\n== %s" % title)


def main() -> None:
    print("pysvdb %s, libsvdb %s (%s kernels) from %s"
          % (pysvdb.__version__, pysvdb.library_version(), pysvdb.simd_path(), pysvdb.library_path))
    tmp = tempfile.mkdtemp(prefix="pysvdb-demo-")
    path = os.path.join(tmp, "demo_db")
    rng = np.random.default_rng(42)
    try:
        show("open a new collection (cosine metric; the first add fixes the dimension)")
        db = pysvdb.SvDBPython(path, metric="cosine")
        print(db)

        show("add: lists, JSON strings and dicts as metadata")
        db.add(
            ids=["apple", "banana", "cherry"],
            embeddings=[[1.0, 0.1, 0.0, 0.0], [0.9, 0.3, 0.1, 0.0], [0.0, 0.1, 1.0, 0.2]],
            metadatas=['{"kind": "fruit", "color": "red"}', {"kind": "fruit", "color": "yellow"}, None],
        )
        print("count:", db.count(), "| len:", len(db), "| dim:", db.dim, "| metric:", db.metric)

        show("add: a float32 numpy array is passed to C without a copy")
        more = rng.standard_normal((5, 4)).astype(np.float32)
        db.add(["vec%d" % i for i in range(5)], more, [{"kind": "random", "i": i} for i in range(5)])
        print("ids:", db.get_all_ids())

        show("search (nearest first)")
        for rid, dist in db.search([1.0, 0.2, 0.0, 0.0], k=3):
            print("  %-8s %.4f" % (rid, dist))

        show("search with a metadata filter")
        for rid, dist in db.search([1.0, 0.2, 0.0, 0.0], k=3, where={"kind": "random"}):
            print("  %-8s %.4f" % (rid, dist))

        show("search_batch: numpy arrays, padded with None / inf past the collection's size")
        ids, dists = db.search_batch(np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]], dtype=np.float32), k=10)
        for q in range(ids.shape[0]):
            print("  query %d:" % q, ", ".join("%s=%.3f" % (i, d) for i, d in zip(ids[q][:3], dists[q][:3])),
                  "... last column:", ids[q][-1], dists[q][-1])

        show("get / get_vector / contains")
        print("get('banana') ->", db.get("banana"), "->", json.loads(db.get("banana") or "{}")["color"])
        print("get('cherry') ->", db.get("cherry"), "(no metadata)")
        print("get_vector('apple') ->", db.get_vector("apple"))
        print("'apple' in db ->", "apple" in db, "| 'kiwi' in db ->", "kiwi" in db)

        show("upsert: overwrite banana, add kiwi")
        db.upsert(["banana", "kiwi"], [[0.1, 1.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]],
                  [{"kind": "fruit", "color": "green"}, {"kind": "fruit"}])
        print("banana ->", db.get("banana"), db.get_vector("banana"))

        show("delete (missing ids are skipped)")
        print("deleted:", db.delete(["vec0", "vec1", "no-such-id"]), "| count now:", db.count())

        show("errors are ValueError subclasses carrying the C message and code")
        for label, call in [
            ("add an existing id", lambda: db.add(["apple"], [[1, 0, 0, 0]])),
            ("wrong dimension", lambda: db.search([1.0, 2.0], k=1)),
            ("unknown id", lambda: db.get("durian")),
            ("NaN in a vector", lambda: db.add(["nan"], [[float("nan"), 0, 0, 0]])),
            ("bad metadata", lambda: db.add(["m"], [[1, 1, 1, 1]], ["not json"])),
        ]:
            try:
                call()
            except pysvdb.SvDBError as e:
                print("  %-20s %s(code %d): %s" % (label, type(e).__name__, e.code, e))
        print("  count unchanged:", db.count())

        show("threads search in parallel (the GIL is released in C)")
        results = {}

        def worker(n: int) -> None:
            query = np.random.default_rng(n).standard_normal(4).astype(np.float32)
            results[n] = db.search(query, k=1)[0][0]

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("  nearest per thread:", [results[n] for n in sorted(results)])

        show("persist, close, reopen")
        db.persist()
        db.close()
        print(db)
        with pysvdb.SvDBPython(path) as again:
            print(again)
            print("ids after reopen:", again.get_all_ids())
            print("path:", again.path == path, "| index:", again.index)
        try:
            db.count()
        except pysvdb.ClosedError as e:
            print("using the closed handle ->", type(e).__name__ + ":", e)

        show("the ChromaDB-compatible client (import pysvdb as chromadb)")
        client = pysvdb.PersistentClient(path=os.path.join(tmp, "chroma"))
        col = client.get_or_create_collection("fruit", metadata={"hnsw:space": "cosine"})
        col.add(
            ids=["a", "b", "c"],
            embeddings=[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]],
            documents=["red apples", "green apples", "yellow bananas"],
            metadatas=[{"price": 3}, {"price": 2}, {"price": 1}],
        )
        res = col.query(
            query_embeddings=[[1.0, 0.05]],
            n_results=2,
            where={"price": {"$lte": 2}},
            where_document={"$contains": "apples"},
        )
        print("query ->", res["ids"], res["documents"])
        print("get(where) ->", col.get(where={"price": {"$gt": 1}})["ids"])
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\ndone; removed", tmp)


if __name__ == "__main__":
    main()
