"""pysvdb.langchain.SvdbVectorStore: langchain-tests' standard VectorStore suite,
run unchanged, and our own tests of what it does not cover (filters, relevance
per space, MMR, persistence, replacing writes, errors)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import math
import os
import subprocess
import sys
from typing import Iterator, List, Mapping, Sequence

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from pysvdb.chroma import AdminClient, PersistentClient, Settings  # noqa: E402
from pysvdb.chroma import errors as chroma_errors  # noqa: E402
from pysvdb.langchain import SvdbVectorStore  # noqa: E402

# The standard suite's async tests are plain ``async def`` methods, written for
# pytest-asyncio's auto mode; this repository runs it in strict mode, so they are
# marked here (the functions themselves stay the suite's: none is overridden).
for _name, _fn in inspect.getmembers(VectorStoreIntegrationTests, inspect.iscoroutinefunction):
    if _name.startswith("test_"):
        pytest.mark.asyncio(_fn)


class TestSvdbStandard(VectorStoreIntegrationTests):
    """langchain-tests' suite, sync and async, get_by_ids included."""

    @pytest.fixture()
    def vectorstore(self) -> Iterator[SvdbVectorStore]:
        store = SvdbVectorStore(self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


# ---------------------------------------------------------------- helpers


class TableEmbeddings(Embeddings):
    """Known texts to given vectors; counts calls (sync and async)."""

    def __init__(self, table: Mapping[str, Sequence[float]]) -> None:
        self.table = {k: [float(x) for x in v] for k, v in table.items()}
        self.calls: List[str] = []

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        self.calls.append("embed_documents")
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> List[float]:
        self.calls.append("embed_query")
        return self.table[text]

    async def aembed_documents(self, texts: List[str]) -> List[List[float]]:
        self.calls.append("aembed_documents")
        return [self.table[t] for t in texts]

    async def aembed_query(self, text: str) -> List[float]:
        self.calls.append("aembed_query")
        return self.table[text]


def unit(deg: float) -> List[float]:
    """A unit vector in the plane at ``deg`` degrees."""
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


@pytest.fixture()
def fake() -> Embeddings:
    return DeterministicFakeEmbedding(size=6)


@pytest.fixture()
def store(fake: Embeddings) -> Iterator[SvdbVectorStore]:
    s = SvdbVectorStore(fake)
    yield s
    s.close()


FRUIT = [
    Document(id="a1", page_content="red apple pie", metadata={"kind": "fruit", "year": 2020, "price": 1.5, "ripe": True}),
    Document(id="a2", page_content="green apple juice", metadata={"kind": "fruit", "year": 2022, "price": 2.0, "ripe": False}),
    Document(id="p1", page_content="pear tart", metadata={"kind": "fruit", "year": 2024, "price": 3.25, "ripe": True}),
    Document(id="c1", page_content="carrot soup", metadata={"kind": "vegetable", "year": 2021, "price": 0.5, "ripe": True}),
    Document(id="n1", page_content="no metadata at all", metadata={}),
]


# ---------------------------------------------------------------- packaging


def test_import_pysvdb_does_not_import_langchain() -> None:
    code = (
        "import sys, pysvdb; pysvdb.PersistentClient; "
        "bad = sorted(m for m in sys.modules if m.startswith(('langchain', 'pysvdb.langchain'))); "
        "assert not bad, bad; print('ok')"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_without_langchain_core_the_error_names_the_extra() -> None:
    code = "import sys; sys.modules['langchain_core'] = None; import pysvdb.langchain"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "ImportError: pysvdb.langchain needs langchain-core: pip install pysvdb[langchain]" in out.stderr


# ---------------------------------------------------------------- writes and reads


def test_metadata_round_trips_types_and_empty(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    got = store.get_by_ids(["a1", "n1"])
    assert got == [FRUIT[0], FRUIT[4]]
    meta = got[0].metadata
    assert type(meta["year"]) is int and type(meta["price"]) is float and meta["ripe"] is True
    assert got[1].metadata == {}


def test_get_by_ids_order_missing_and_repeats(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    got = store.get_by_ids(["p1", "zz", "a1", "p1"])
    assert [d.id for d in got] == ["p1", "a1"]
    assert store.get_by_ids([]) == []


def test_overwrite_replaces_metadata_and_text(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    store.add_texts(["pear tart"], [{"kind": "dessert"}], ids=["a1"])
    assert store.get_by_ids(["a1"]) == [Document(id="a1", page_content="pear tart", metadata={"kind": "dessert"})]
    store.add_texts(["red apple pie"], [{}], ids=["a1"])  # empty metadata replaces too
    assert store.get_by_ids(["a1"])[0].metadata == {}
    assert store.collection.count() == len(FRUIT)


def test_ids_generated_kept_and_mixed(store: SvdbVectorStore) -> None:
    ids = store.add_texts(["red apple pie", "pear tart"])
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)
    mixed = store.add_documents([Document(id="mine", page_content="carrot soup"), Document(page_content="pear tart")])
    assert mixed[0] == "mine" and mixed[1] not in ids
    assert store.add_texts([]) == []


def test_from_texts_and_from_documents(fake: Embeddings) -> None:
    s = SvdbVectorStore.from_documents(FRUIT, fake, collection_name="fromdocs")
    try:
        assert s.get_by_ids(["c1"]) == [FRUIT[3]]
    finally:
        s.close()
    t = SvdbVectorStore.from_texts(["x y", "z"], fake, metadatas=[{"n": 1}, {"n": 2}], ids=["1", "2"])
    try:
        assert [d.metadata["n"] for d in t.get_by_ids(["2", "1"])] == [2, 1]
    finally:
        t.close()


def test_in_memory_stores_are_separate_and_go_away(fake: Embeddings) -> None:
    admin = AdminClient(Settings())  # the process's ephemeral store
    try:
        before = len(admin.list_databases())
        with SvdbVectorStore(fake) as one, SvdbVectorStore(fake) as two:
            one.add_texts(["red apple pie"], ids=["x"])
            assert two.get_by_ids(["x"]) == []
            assert one.collection.name == two.collection.name == "langchain"
            assert len(admin.list_databases()) == before + 2
        one.close()  # again: nothing
        assert len(admin.list_databases()) == before
        with pytest.raises(ValueError, match="Expected a name containing 3-512 characters"):
            SvdbVectorStore(fake, collection_name="x")  # too short: nothing is left behind
        assert len(admin.list_databases()) == before
        dropped = SvdbVectorStore(fake)
        dropped.add_texts(["red apple pie"])
        del dropped
        gc.collect()  # an unclosed store's rows go when it does
        assert len(admin.list_databases()) == before
    finally:
        admin.close()


def test_list_metadata_round_trips(store: SvdbVectorStore) -> None:
    meta = {"tags": ["a", "b"], "years": [2020, 2021], "w": [0.5]}
    store.add_texts(["red apple pie"], [meta], ids=["x"])
    assert store.get_by_ids(["x"])[0].metadata == meta
    assert [d.id for d in store.similarity_search("pear tart", filter={"tags": {"$contains": "b"}})] == ["x"]


def test_more_than_one_chroma_batch_in_one_call() -> None:
    emb = DeterministicFakeEmbedding(size=4)
    n = 6000  # above ChromaDB's 5,461 a call
    with SvdbVectorStore(emb) as s:
        ids = s.add_texts(["t%d" % i for i in range(n)], [{"i": i} for i in range(n)])
        assert s.collection.count() == n
        assert s.get_by_ids([ids[-1]])[0].metadata == {"i": n - 1}


def test_delete_ids_repeats_missing_and_filter(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    assert store.delete(["a1", "a1", "missing"]) is True
    assert store.delete([]) is True
    assert store.get_by_ids(["a1"]) == []
    store.delete(filter={"kind": "vegetable"})
    assert sorted(d.id or "" for d in store.get_by_ids(["a2", "p1", "c1", "n1"])) == ["a2", "n1", "p1"]
    store.delete(where_document={"$contains": "pear"})
    assert store.collection.count() == 2
    with pytest.raises(ValueError, match="delete_collection"):
        store.delete()
    assert store.collection.count() == 2


def test_delete_collection(tmp_path: "os.PathLike[str]", fake: Embeddings) -> None:
    path = str(tmp_path)
    with SvdbVectorStore(fake, path, "gone") as s:
        s.add_texts(["red apple pie"])
        s.delete_collection()
    client = PersistentClient(path)
    try:
        assert [c.name for c in client.list_collections()] == []
    finally:
        client.close()


# ---------------------------------------------------------------- filters


def test_filter_where_grammar(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    got = store.similarity_search("red apple pie", k=10, filter={"kind": "fruit"})
    assert got[0].id == "a1" and sorted(d.id or "" for d in got) == ["a1", "a2", "p1"]
    got = store.similarity_search("carrot soup", k=10, filter={"$and": [{"year": {"$gte": 2021}}, {"ripe": True}]})
    assert sorted(d.id or "" for d in got) == ["c1", "p1"]
    got = store.similarity_search("pear tart", k=10, filter={"price": {"$in": [0.5, 2.0]}})
    assert sorted(d.id or "" for d in got) == ["a2", "c1"]
    assert store.similarity_search("pear tart", k=10, filter={"kind": "meat"}) == []
    # An empty filter is no filter.
    assert len(store.similarity_search("pear tart", k=10, filter={})) == len(FRUIT)


def test_filter_where_document_and_both(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    got = store.similarity_search("pear tart", k=10, where_document={"$contains": "apple"})
    assert sorted(d.id or "" for d in got) == ["a1", "a2"]
    got = store.similarity_search(
        "pear tart", k=10, filter={"year": {"$lt": 2022}}, where_document={"$regex": "^(red|carrot)"}
    )
    assert sorted(d.id or "" for d in got) == ["a1", "c1"]
    with_scores = store.similarity_search_with_score("pear tart", k=10, where_document={"$not_contains": "a"})
    assert [d.id for d, _ in with_scores] == []


def test_filters_in_every_search(store: SvdbVectorStore, fake: Embeddings) -> None:
    store.add_documents(FRUIT)
    vec = fake.embed_query("red apple pie")
    only_veg = {"kind": "vegetable"}
    assert [d.id for d in store.similarity_search_by_vector(vec, k=3, filter=only_veg)] == ["c1"]
    assert [d.id for d, _ in store.similarity_search_by_vector_with_score(vec, k=3, filter=only_veg)] == ["c1"]
    assert [d.id for d in store.max_marginal_relevance_search("red apple pie", k=3, filter=only_veg)] == ["c1"]
    scored = store.similarity_search_with_relevance_scores("red apple pie", k=3, filter=only_veg)
    assert [d.id for d, _ in scored] == ["c1"]
    assert [d.id for d in asyncio.run(store.asimilarity_search("red apple pie", k=3, filter=only_veg))] == ["c1"]
    retriever = store.as_retriever(search_kwargs={"k": 3, "filter": only_veg})
    assert [d.id for d in retriever.invoke("red apple pie")] == ["c1"]


def test_bad_filter_is_a_clear_error(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    with pytest.raises(ValueError, match=r"\$bogus"):
        store.similarity_search("pear tart", filter={"year": {"$bogus": 1}})
    with pytest.raises(TypeError, match="unexpected keyword arguments: filtre"):
        store.similarity_search("pear tart", filtre={"kind": "fruit"})


# ---------------------------------------------------------------- scores


ANGLES = {"q": 0.0, "d10": 10.0, "d60": 60.0, "d120": 120.0, "d180": 180.0}


@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_relevance_scores_per_space(space: str) -> None:
    emb = TableEmbeddings({k: unit(v) for k, v in ANGLES.items()})
    with SvdbVectorStore(emb, collection_metadata={"hnsw:space": space}) as s:
        assert s.space == space
        s.add_texts(list(ANGLES), ids=list(ANGLES))
        scored = s.similarity_search_with_relevance_scores("q", k=5)
        assert [d.id for d, _ in scored] == ["q", "d10", "d60", "d120", "d180"]
        scores = [r for _, r in scored]
        assert all(0.0 <= r <= 1.0 for r in scores)
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5
        assert scores[0] == pytest.approx(1.0, abs=1e-6)
        if space != "l2":  # cosine and ip (unit vectors): (1 + cos) / 2
            want = [(1 + math.cos(math.radians(a))) / 2 for a in ANGLES.values()]
            assert scores == pytest.approx(want, abs=1e-5)
        else:  # 1 / (1 + squared distance)
            want = [1 / (1 + 2 - 2 * math.cos(math.radians(a))) for a in ANGLES.values()]
            assert scores == pytest.approx(want, abs=1e-5)
        kept = s.similarity_search_with_relevance_scores("q", k=5, score_threshold=0.7)
        assert [d.id for d, _ in kept] == ["q", "d10"] + (["d60"] if space != "l2" else [])


def test_distances_are_the_spaces(fake: Embeddings) -> None:
    emb = TableEmbeddings({k: unit(v) for k, v in ANGLES.items()})
    with SvdbVectorStore(emb, collection_metadata={"hnsw:space": "cosine"}) as s:
        s.add_texts(list(ANGLES), ids=list(ANGLES))
        got = dict((d.id, dist) for d, dist in s.similarity_search_with_score("q", k=5))
        assert got["d60"] == pytest.approx(0.5, abs=1e-5) and got["d180"] == pytest.approx(2.0, abs=1e-5)


def test_relevance_score_fn_override() -> None:
    emb = TableEmbeddings({k: unit(v) for k, v in ANGLES.items()})
    with SvdbVectorStore(emb, relevance_score_fn=lambda d: 1.0 - d / 4.0) as s:
        s.add_texts(list(ANGLES), ids=list(ANGLES))
        scored = s.similarity_search_with_relevance_scores("q", k=5)
        assert [r for _, r in scored] == pytest.approx([1.0, 1 - (2 - 2 * math.cos(math.radians(10))) / 4, 0.75, 0.25, 0.0], abs=1e-5)


# ---------------------------------------------------------------- MMR


def test_mmr_prefers_diverse_documents() -> None:
    table = {"q": unit(0), "dup1": unit(1), "dup2": unit(2), "dup3": unit(3), "other": unit(50)}
    emb = TableEmbeddings(table)
    with SvdbVectorStore(emb, collection_metadata={"hnsw:space": "cosine"}) as s:
        s.add_texts(["dup1", "dup2", "dup3", "other"], ids=["dup1", "dup2", "dup3", "other"])
        assert [d.id for d in s.similarity_search("q", k=2)] == ["dup1", "dup2"]
        # dup1 is almost q, so any candidate's penalty is about its relevance: the
        # diversity term must weigh more than half for "other" to win.
        assert [d.id for d in s.max_marginal_relevance_search("q", k=2, fetch_k=4, lambda_mult=0.25)] == ["dup1", "other"]
        assert [d.id for d in s.max_marginal_relevance_search("q", k=2, fetch_k=4, lambda_mult=1.0)] == ["dup1", "dup2"]
        # Only the fetch_k nearest are candidates.
        assert [d.id for d in s.max_marginal_relevance_search("q", k=2, fetch_k=2, lambda_mult=0.0)] == ["dup1", "dup2"]
        got = asyncio.run(s.amax_marginal_relevance_search("q", k=2, fetch_k=4, lambda_mult=0.25))
        assert [d.id for d in got] == ["dup1", "other"]
        assert "aembed_query" in emb.calls
        retriever = s.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.25})
        assert [d.id for d in retriever.invoke("q")] == ["dup1", "other"]
    with SvdbVectorStore(emb) as empty:
        assert empty.max_marginal_relevance_search("q", k=2) == []


def test_mmr_checks_arguments(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    with pytest.raises(ValueError, match="lambda_mult"):
        store.max_marginal_relevance_search("pear tart", lambda_mult=1.5)
    with pytest.raises(ValueError, match="fetch_k must be a positive integer"):
        store.max_marginal_relevance_search("pear tart", fetch_k=0)


# ---------------------------------------------------------------- async


def test_async_add_uses_async_embeddings() -> None:
    emb = TableEmbeddings({k: unit(v) for k, v in ANGLES.items()})

    async def run() -> List[Document]:
        with SvdbVectorStore(emb) as s:
            ids = await s.aadd_texts(["d10", "d60"], [{"n": 1}, {"n": 2}], ids=["x", "y"])
            assert ids == ["x", "y"]
            return await s.asimilarity_search("q", k=1, filter={"n": 2})

    assert asyncio.run(run()) == [Document(id="y", page_content="d60", metadata={"n": 2})]
    assert "aembed_documents" in emb.calls and "embed_documents" not in emb.calls


# ---------------------------------------------------------------- persistence


def test_persists_across_reopen(tmp_path: "os.PathLike[str]", fake: Embeddings) -> None:
    path = str(tmp_path)
    s = SvdbVectorStore.from_documents(FRUIT, fake, path=path, collection_metadata={"hnsw:space": "cosine"})
    s.close()
    with SvdbVectorStore(fake, tmp_path) as again:  # a path-like works too
        assert again.space == "cosine"
        assert again.get_by_ids([d.id or "" for d in FRUIT]) == FRUIT
        assert again.similarity_search("carrot soup", k=1) == [FRUIT[3]]
        again.add_texts(["pear tart"], [{"kind": "fruit"}], ids=["p2"])
    # The directory is a pysvdb.PersistentClient's.
    client = PersistentClient(path)
    try:
        col = client.get_collection("langchain")
        assert col.count() == len(FRUIT) + 1
        assert col.get(ids=["p2"])["documents"] == ["pear tart"]
    finally:
        client.close()


def test_given_client_is_used_and_left_open(tmp_path: "os.PathLike[str]", fake: Embeddings) -> None:
    client = PersistentClient(str(tmp_path))
    try:
        with SvdbVectorStore(fake, collection_name="shared", client=client) as s:
            s.add_texts(["red apple pie"], ids=["r"])
        assert client.get_collection("shared").count() == 1  # still open
    finally:
        client.close()
    with pytest.raises(ValueError, match="not both"):
        SvdbVectorStore(fake, str(tmp_path), client=client)


# ---------------------------------------------------------------- errors


def test_wrong_dimension_is_a_clear_error_and_writes_nothing(store: SvdbVectorStore) -> None:
    store.add_documents(FRUIT)
    short = DeterministicFakeEmbedding(size=5)
    other = SvdbVectorStore(short, client=store._client)
    with pytest.raises(chroma_errors.InvalidArgumentError, match="dimension of 6, got 5"):
        other.add_texts(["new one"], ids=["new"])
    with pytest.raises(chroma_errors.InvalidArgumentError, match="dimension of 6, got 5"):
        other.similarity_search("pear tart")
    assert store.get_by_ids(["new"]) == [] and store.collection.count() == len(FRUIT)


def test_embeddings_that_are_not_vectors(store: SvdbVectorStore) -> None:
    ragged = TableEmbeddings({"a": [1.0, 2.0], "b": [1.0]})
    bad = SvdbVectorStore(ragged, client=store._client, collection_name="ragged")
    with pytest.raises(ValueError, match="equal-length"):
        bad.add_texts(["a", "b"])
    nan = SvdbVectorStore(TableEmbeddings({"a": [float("nan"), 1.0]}), client=store._client, collection_name="nan")
    with pytest.raises(ValueError, match="NaN"):
        nan.add_texts(["a"])
    assert bad.collection.count() == 0 and nan.collection.count() == 0


@pytest.mark.parametrize(
    "meta, error, message",
    [
        ({"nested": {"a": 1}}, ValueError, "metadata of document 1: Expected metadata value"),
        ({"none": None}, ValueError, "key 'none' is None"),
        ({"x": float("inf")}, ValueError, "cannot be stored"),
        ({"#document": "x"}, ValueError, "key '#document' is reserved"),
        ({"$k": 1}, ValueError, r"key '\$k' is reserved"),
        ({1: "x"}, TypeError, "metadata of document 1: Expected metadata key to be a str"),
        ("text", TypeError, "must be a dict"),
    ],
)
def test_bad_metadata_writes_nothing(store: SvdbVectorStore, meta: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        store.add_texts(["red apple pie", "pear tart"], [{"ok": 1}, meta], ids=["a", "b"])  # type: ignore[list-item]
    assert store.collection.count() == 0


def test_argument_errors(store: SvdbVectorStore) -> None:
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        store.add_texts(["a"], ids=["1", "2"])
    with pytest.raises(ValueError, match="2 metadatas for 1 texts"):
        store.add_texts(["a"], [{}, {}])
    with pytest.raises(ValueError, match="repeated: 1"):
        store.add_texts(["a", "b"], ids=["1", "1"])
    with pytest.raises(TypeError, match="not a str"):
        store.add_texts("abc")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        store.similarity_search("a", k=0)
    with pytest.raises(TypeError, match="unexpected keyword arguments: batch"):
        store.add_texts(["a"], batch=3)
    assert store.collection.count() == 0


# ---------------------------------------------------------------- the example


def test_example_runs_offline(tmp_path: "os.PathLike[str]") -> None:
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "langchain_rag.py")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for args in ([], [os.path.join(str(tmp_path), "db")]):
        out = subprocess.run([sys.executable, example, *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        first = lines[lines.index("Context (2025 and later):") + 1]
        assert first.startswith("- [doc04, ") and "graph walk" in first
