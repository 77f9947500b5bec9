"""pysvdb.llama_index.SvdbVectorStore: llama-index's vector-store contract.

Modelled on llama-index's own tests of SimpleVectorStore and of the Chroma
integration; where llama-index defines the behaviour (filters, NOT, missing
keys), SimpleVectorStore on the same nodes is the oracle.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import BaseEmbedding  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    BaseNode,
    IndexNode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores import SimpleVectorStore  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

import pysvdb  # noqa: E402
from pysvdb.llama_index import SvdbVectorStore, to_where  # noqa: E402

W1 = "AF3BE6C4-5F43-4D74-B075-6B0E07900DE8"
W2 = "7D9CD555-846C-445C-A9DD-F8924A01411D"
W3 = "452D24AB-F185-414C-A352-590B4B9EE51B"
W4 = "0C1D2E3F-0000-4000-8000-000000000004"  # has no "weight"
ALL = {W1, W2, W3, W4}


def _nodes(lists: bool = False) -> List[TextNode]:
    def node(id_: str, emb: List[float], doc: str, meta: Dict[str, Any], quality: List[str]) -> TextNode:
        if lists:
            meta = dict(meta, quality=quality)
        return TextNode(
            id_=id_,
            text="lorem ipsum %s" % id_[:4],
            embedding=emb,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
            metadata=meta,
        )

    return [
        node(W1, [1.0, 0.0], "doc-0", {"weight": 1.0, "rank": "a", "n": 1}, ["medium", "high"]),
        node(W2, [0.0, 1.0], "doc-1", {"weight": 2.0, "rank": "c", "n": 2}, ["medium"]),
        node(W3, [1.0, 1.0], "doc-2", {"weight": 3.0, "rank": "c", "n": 3}, ["low", "medium", "high"]),
        node(W4, [-1.0, 0.5], "doc-2", {"rank": "b", "author": None}, ["none"]),
    ]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SvdbVectorStore]:
    s = SvdbVectorStore(str(tmp_path / "db"))
    s.add(_nodes())
    yield s
    s.close()


def _ids(store: Any, filters: Optional[MetadataFilters] = None, **kw: Any) -> List[str]:
    q = VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=10, filters=filters, **kw)
    return list(store.query(q).ids or [])


def _f(key: str, op: FilterOperator, value: Any) -> MetadataFilter:
    return MetadataFilter(key=key, operator=op, value=value)


def _oracle(filters: MetadataFilters, lists: bool = False) -> set[str]:
    simple = SimpleVectorStore()
    simple.add(_nodes(lists))
    return set(_ids(simple, filters))


# ------------------------------------------------------------ packaging


def test_import_pysvdb_does_not_import_llama_index() -> None:
    code = (
        "import sys, pysvdb\n"
        "pysvdb.EphemeralClient\n"  # the ChromaDB client, loaded on first use, does not either
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('llama_index', 'pysvdb.llama_index'))\n"
        "assert not bad and 'pysvdb.llama_index' not in sys.modules, bad\n"
        "print(pysvdb.__file__)\n"
    )
    root = str(Path(pysvdb.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(Path(pysvdb.__file__).resolve())


def test_without_llama_index_core_the_error_names_the_extra() -> None:
    code = "import sys; sys.modules['llama_index.core'] = None; import pysvdb.llama_index"
    root = str(Path(pysvdb.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "ImportError: pysvdb.llama_index needs llama-index-core: pip install pysvdb[llama-index]" in out.stderr


def test_class_attributes(store: SvdbVectorStore) -> None:
    assert store.stores_text is True
    assert store.flat_metadata is True
    assert store.is_embedding_query is True
    assert SvdbVectorStore.class_name() == "SvdbVectorStore"
    assert isinstance(store.client, pysvdb.chroma.ClientAPI)
    assert store.collection.name == "llama_index"
    assert store.collection.count() == 4


# ------------------------------------------------------------ add / query


def test_query_orders_by_cosine_similarity_and_rebuilds_nodes(store: SvdbVectorStore) -> None:
    res = store.query(VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=4))
    assert res.ids == [W3, W1, W2, W4]
    q = np.array([1.0, 0.9])
    embs = {n.node_id: np.array(n.embedding) for n in _nodes()}
    want = [float(q @ embs[i] / np.linalg.norm(q) / np.linalg.norm(embs[i])) for i in res.ids]
    assert res.similarities == pytest.approx(want, abs=1e-5)
    assert res.nodes is not None
    by_id = {n.node_id: n for n in _nodes()}
    for node in res.nodes:
        orig = by_id[node.node_id]
        assert isinstance(node, TextNode)
        assert node.text == orig.text
        assert node.metadata == orig.metadata  # None values too
        assert node.ref_doc_id == orig.ref_doc_id
        assert node.embedding is None


def test_query_honours_top_k(store: SvdbVectorStore) -> None:
    for k, want in ((1, [W3]), (2, [W3, W1]), (10, [W3, W1, W2, W4]), (0, [])):
        res = store.query(VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=k))
        assert res.ids == want
        assert len(res.similarities or []) == len(res.nodes or []) == len(want)


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_similarity_per_metric_matches_llama_index(tmp_path: Path, space: str) -> None:
    # llama-index's own similarity(): -euclidean, dot product, cosine; higher is better.
    from llama_index.core.base.embeddings.base import SimilarityMode, similarity

    mode = {"l2": SimilarityMode.EUCLIDEAN, "ip": SimilarityMode.DOT_PRODUCT, "cosine": SimilarityMode.DEFAULT}[space]
    s = SvdbVectorStore(str(tmp_path), "metric", collection_metadata={"hnsw:space": space})
    try:
        s.add(_nodes())
        q = [0.3, -0.8]
        res = s.query(VectorStoreQuery(query_embedding=q, similarity_top_k=4))
        emb = {n.node_id: n.embedding for n in _nodes()}
        want = [float(similarity(q, emb[i], mode)) for i in res.ids or []]
        assert res.similarities == pytest.approx(want, abs=1e-5)
        assert want == sorted(want, reverse=True)
    finally:
        s.close()


def test_add_replaces_an_existing_node(store: SvdbVectorStore) -> None:
    new = TextNode(id_=W1, text="replaced", embedding=[0.0, -1.0], metadata={"rank": "z"})
    assert store.add([new]) == [W1]
    assert store.collection.count() == 4
    (node,) = store.get_nodes([W1])
    assert node.get_content() == "replaced"
    assert node.metadata == {"rank": "z"}  # "weight" and "n" of the old node are gone
    assert _ids(store, MetadataFilters(filters=[_f("weight", FilterOperator.EQ, 1.0)])) == []


def test_failed_replacement_keeps_the_old_node(tmp_path: Path) -> None:
    s = SvdbVectorStore(str(tmp_path), flat_metadata=False)
    try:
        s.add(_nodes(lists=True))
        bad = TextNode(id_=W1, text="bad", embedding=[0.0, 1.0], metadata={"nested": {"x": 1}})
        fresh = TextNode(id_="fresh", text="fresh", embedding=[0.0, 1.0])
        with pytest.raises(ValueError, match="Expected metadata value"):  # ChromaDB's upsert check
            s.add([fresh, bad])
        assert s.collection.count() == 4
        (node,) = s.get_nodes([W1])
        assert node.get_content() == "lorem ipsum AF3B"
        assert node.metadata["quality"] == ["medium", "high"]
    finally:
        s.close()


def test_add_duplicate_ids_in_one_call_last_wins(tmp_path: Path) -> None:
    s = SvdbVectorStore(str(tmp_path))
    try:
        a = TextNode(id_="x", text="first", embedding=[1.0, 0.0])
        b = TextNode(id_="x", text="second", embedding=[0.0, 1.0])
        assert s.add([a, b]) == ["x", "x"]
        assert [n.get_content() for n in s.get_nodes()] == ["second"]
    finally:
        s.close()


def test_add_node_without_embedding_writes_nothing(tmp_path: Path) -> None:
    s = SvdbVectorStore(str(tmp_path))
    try:
        good = TextNode(id_="a", text="a", embedding=[1.0, 0.0])
        with pytest.raises(ValueError, match="embedding"):
            s.add([good, TextNode(id_="b", text="b")])
        assert s.collection.count() == 0
        with pytest.raises(ValueError, match="must be one of"):  # llama-index's flat-metadata check
            s.add([good, TextNode(id_="c", text="c", embedding=[0.0, 1.0], metadata={"tags": ["x"]})])
        assert s.collection.count() == 0
        assert s.add([]) == []
    finally:
        s.close()


def test_add_more_than_one_batch(tmp_path: Path) -> None:
    s = SvdbVectorStore(str(tmp_path))
    try:
        n = pysvdb.chroma.MAX_BATCH_SIZE + 7
        rng = np.random.default_rng(0)
        nodes = [TextNode(id_="n%d" % i, text="t", embedding=rng.standard_normal(4).tolist()) for i in range(n)]
        assert s.add(nodes) == [x.node_id for x in nodes]
        assert s.collection.count() == n
        res = s.query(VectorStoreQuery(query_embedding=nodes[-1].embedding, similarity_top_k=1))
        assert res.ids == [nodes[-1].node_id]
    finally:
        s.close()


def test_node_types_round_trip(store: SvdbVectorStore) -> None:
    idx = IndexNode(id_="idx", text="an index node", index_id="other", embedding=[0.5, 0.5])
    store.add([idx])
    (node,) = store.get_nodes(["idx"])
    assert isinstance(node, IndexNode)
    assert node.index_id == "other"
    assert node.get_content() == "an index node"


def test_records_written_through_the_client_read_as_text_nodes(store: SvdbVectorStore) -> None:
    store.collection.add(ids=["raw"], embeddings=[[1.0, 0.9]], documents=["raw text"], metadatas=[{"k": 1}])
    res = store.query(VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=1))
    assert res.ids == ["raw"]
    assert res.nodes is not None
    node = res.nodes[0]
    assert isinstance(node, TextNode)
    assert (node.node_id, node.text, node.metadata) == ("raw", "raw text", {"k": 1})


# ------------------------------------------------------------ filters


@pytest.mark.parametrize(
    "flt, want",
    [
        (_f("weight", FilterOperator.EQ, 2.0), {W2}),
        (_f("n", FilterOperator.EQ, 2), {W2}),
        (_f("weight", FilterOperator.EQ, 2), {W2}),  # an int equals the stored float 2.0
        (_f("n", FilterOperator.GT, 1.5), {W2, W3}),
        (_f("rank", FilterOperator.EQ, "c"), {W2, W3}),
        (_f("weight", FilterOperator.NE, 1.0), {W2, W3, W4}),  # W4 has no weight
        (_f("weight", FilterOperator.GT, 1.5), {W2, W3}),
        (_f("weight", FilterOperator.GTE, 2.0), {W2, W3}),
        (_f("weight", FilterOperator.LT, 2.0), {W1}),
        (_f("n", FilterOperator.LTE, 2), {W1, W2}),
        (_f("rank", FilterOperator.IN, ["a", "b"]), {W1, W4}),
        (_f("n", FilterOperator.IN, [1, 3]), {W1, W3}),
        (_f("rank", FilterOperator.NIN, ["c"]), {W1, W4}),
        (_f("weight", FilterOperator.NIN, [1.0, 2.0]), {W3, W4}),
        (_f("author", FilterOperator.NE, "x"), ALL),  # a None value is no value
        (_f("unknown", FilterOperator.EQ, "c"), set()),
    ],
    ids=lambda x: "%s-%s" % (x.key, x.operator.name) if isinstance(x, MetadataFilter) else "",
)
def test_each_operator(store: SvdbVectorStore, flt: MetadataFilter, want: set[str]) -> None:
    filters = MetadataFilters(filters=[flt])
    assert _oracle(filters) == want  # the expectation is llama-index's
    assert set(_ids(store, filters)) == want
    assert {n.node_id for n in store.get_nodes(filters=filters)} == want


@pytest.mark.parametrize(
    "filters",
    [
        MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c"), _f("weight", FilterOperator.EQ, 1.0)]),
        MetadataFilters(
            filters=[_f("rank", FilterOperator.EQ, "c"), _f("weight", FilterOperator.EQ, 1.0)],
            condition=FilterCondition.OR,
        ),
        MetadataFilters(
            filters=[_f("rank", FilterOperator.EQ, "c"), _f("weight", FilterOperator.GT, 2.5)],
            condition=FilterCondition.AND,
        ),
        MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "a")], condition=FilterCondition.NOT),
        MetadataFilters(
            filters=[_f("rank", FilterOperator.IN, ["a", "b"]), _f("n", FilterOperator.NE, 2)],
            condition=FilterCondition.NOT,
        ),
        MetadataFilters(filters=[_f("weight", FilterOperator.NIN, [3.0])], condition=FilterCondition.NOT),
        MetadataFilters(filters=[_f("weight", FilterOperator.EQ, 2), _f("weight", FilterOperator.EQ, 3)]),
        MetadataFilters(filters=[]),
    ],
    ids=["and", "or", "and-range", "not-eq", "not-in-ne", "not-nin", "contradiction", "empty"],
)
def test_conditions_match_simple_vector_store(store: SvdbVectorStore, filters: MetadataFilters) -> None:
    assert set(_ids(store, filters)) == _oracle(filters)


def test_nested_filters(store: SvdbVectorStore) -> None:
    # (rank == c AND (weight < 2.5 OR n == 3)) OR rank == b
    inner = MetadataFilters(
        filters=[_f("weight", FilterOperator.LT, 2.5), _f("n", FilterOperator.EQ, 3)], condition=FilterCondition.OR
    )
    mid = MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c"), inner])
    top = MetadataFilters(filters=[mid, _f("rank", FilterOperator.EQ, "b")], condition=FilterCondition.OR)
    assert set(_ids(store, top)) == {W2, W3, W4}
    # NOT (rank == c AND weight > 2.5): De Morgan; a node without weight matches
    neg = MetadataFilters(
        filters=[MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c"), _f("n", FilterOperator.IN, [3])])],
        condition=FilterCondition.NOT,
    )
    assert to_where(neg) == {"$or": [{"rank": {"$ne": "c"}}, {"n": {"$nin": [3]}}]}
    assert set(_ids(store, neg)) == {W1, W2, W4}
    # NOT NOT
    twice = MetadataFilters(
        filters=[MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "a")], condition=FilterCondition.NOT)],
        condition=FilterCondition.NOT,
    )
    assert set(_ids(store, twice)) == {W1}


def test_to_where_translation() -> None:
    f = MetadataFilters(
        filters=[
            _f("a", FilterOperator.GTE, 1),
            MetadataFilters(
                filters=[_f("b", FilterOperator.IN, "x"), _f("c", FilterOperator.NE, 2.5)],
                condition=FilterCondition.OR,
            ),
        ]
    )
    assert to_where(f) == {"$and": [{"a": {"$gte": 1}}, {"$or": [{"b": {"$in": ["x"]}}, {"c": {"$ne": 2.5}}]}]}
    assert to_where(MetadataFilters(filters=[_f("a", FilterOperator.EQ, "v")])) == {"a": {"$eq": "v"}}
    assert to_where(MetadataFilters(filters=[])) is None
    assert to_where(None) is None
    assert to_where(MetadataFilters(filters=[_f("a", FilterOperator.NIN, [])])) is None
    with pytest.raises(ValueError, match="match no record"):
        to_where(MetadataFilters(filters=[_f("a", FilterOperator.IN, [])]))
    lists = MetadataFilters(filters=[_f("q", FilterOperator.ALL, ["x", "y"])], condition=FilterCondition.NOT)
    assert to_where(lists, lists=True) == {"$or": [{"q": {"$not_contains": "x"}}, {"q": {"$not_contains": "y"}}]}


def test_empty_lists(store: SvdbVectorStore) -> None:
    nothing = MetadataFilters(filters=[_f("rank", FilterOperator.IN, [])])
    everything = MetadataFilters(filters=[_f("rank", FilterOperator.NIN, [])])
    assert _oracle(nothing) == set() and _oracle(everything) == ALL
    assert _ids(store, nothing) == []
    assert set(_ids(store, everything)) == ALL
    either = MetadataFilters(filters=[nothing, _f("rank", FilterOperator.EQ, "a")], condition=FilterCondition.OR)
    assert _ids(store, either) == [W1]
    assert store.get_nodes(filters=nothing) == []
    store.delete_nodes(filters=nothing)
    assert store.collection.count() == 4


@pytest.mark.parametrize(
    "flt, message",
    [
        (_f("rank", FilterOperator.TEXT_MATCH, "a"), "where_document"),
        (_f("rank", FilterOperator.TEXT_MATCH_INSENSITIVE, "a"), "where_document"),
        (_f("rank", FilterOperator.IS_EMPTY, None), "no such operator"),
        (_f("quality", FilterOperator.CONTAINS, "high"), "flat_metadata=True"),
        (_f("quality", FilterOperator.ANY, ["high"]), "flat_metadata=True"),
        (_f("quality", FilterOperator.ALL, ["high"]), "flat_metadata=True"),
        (_f("rank", FilterOperator.EQ, ["a", "b"]), "not a list"),
        (_f("rank", FilterOperator.EQ, None), "None is no value"),
    ],
    ids=lambda x: x.operator.name if isinstance(x, MetadataFilter) else "",
)
def test_unsupported_filters_raise(store: SvdbVectorStore, flt: MetadataFilter, message: str) -> None:
    filters = MetadataFilters(filters=[flt])
    with pytest.raises(ValueError, match=message):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], filters=filters))
    with pytest.raises(ValueError, match=message):
        store.get_nodes(filters=filters)
    with pytest.raises(ValueError, match=message):
        store.delete_nodes(filters=filters)
    assert store.collection.count() == 4


def test_not_over_a_range_operator_raises(store: SvdbVectorStore) -> None:
    filters = MetadataFilters(filters=[_f("weight", FilterOperator.GT, 1.0)], condition=FilterCondition.NOT)
    with pytest.raises(ValueError, match="without the key"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], filters=filters))


def test_range_on_strings_is_the_clients_error(store: SvdbVectorStore) -> None:
    filters = MetadataFilters(filters=[_f("rank", FilterOperator.GT, "a")])
    with pytest.raises(ValueError, match="int or a float"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], filters=filters))


@pytest.mark.parametrize(
    "flt",
    [
        _f("quality", FilterOperator.CONTAINS, "high"),
        _f("quality", FilterOperator.CONTAINS, "low"),
        _f("quality", FilterOperator.ANY, ["high", "low"]),
        _f("quality", FilterOperator.ANY, ["nothing"]),
        _f("quality", FilterOperator.ALL, ["medium", "high"]),
        _f("quality", FilterOperator.ALL, ["medium"]),
    ],
    ids=lambda x: "%s-%s" % (x.operator.name, x.value),
)
def test_list_operators_without_flat_metadata(tmp_path: Path, flt: MetadataFilter) -> None:
    s = SvdbVectorStore(str(tmp_path), flat_metadata=False)
    try:
        assert s.add(_nodes(lists=True))
        for cond in (FilterCondition.AND, FilterCondition.NOT):
            filters = MetadataFilters(filters=[flt], condition=cond)
            assert set(_ids(s, filters)) == _oracle(filters, lists=True)
        (node,) = s.get_nodes([W1])
        assert node.metadata["quality"] == ["medium", "high"]
    finally:
        s.close()


# ------------------------------------------------------------ restrictions, modes, kwargs


def test_doc_ids_and_node_ids_restrict(store: SvdbVectorStore) -> None:
    assert set(_ids(store, doc_ids=["doc-2"])) == {W3, W4}
    assert set(_ids(store, doc_ids=["doc-2", "doc-0"])) == {W1, W3, W4}
    assert _ids(store, node_ids=[W2, W4]) == [W2, W4]
    # Empty lists restrict nothing: VectorStoreIndex.as_retriever() passes node_ids=[].
    assert set(_ids(store, doc_ids=[])) == ALL
    assert set(_ids(store, node_ids=[])) == ALL
    assert _ids(store, node_ids=[W2, W3, "missing"], doc_ids=["doc-2"]) == [W3]
    rank_c = MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c")])
    assert _ids(store, rank_c, node_ids=[W3, W4]) == [W3]


def test_where_and_where_document_kwargs(store: SvdbVectorStore) -> None:
    q = VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=10)
    assert store.query(q, where_document={"$contains": "lorem ipsum AF3B"}).ids == [W1]
    rank_c = MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c")])
    q2 = VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=10, filters=rank_c)
    assert store.query(q2, where={"n": {"$lt": 3}}).ids == [W2]  # ANDed with the filters
    with pytest.raises(TypeError, match="unexpected arguments: bogus"):
        store.query(q, bogus=1)


@pytest.mark.parametrize("mode", [m for m in VectorStoreQueryMode if m != VectorStoreQueryMode.DEFAULT])
def test_other_query_modes_raise(store: SvdbVectorStore, mode: VectorStoreQueryMode) -> None:
    with pytest.raises(ValueError, match="only the query mode DEFAULT"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], mode=mode))


def test_query_errors(store: SvdbVectorStore) -> None:
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="text only"))
    with pytest.raises(ValueError, match="similarity_top_k"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=-1))
    with pytest.raises(pysvdb.errors.InvalidArgumentError, match="dimension of 2, got 3"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0]))


# ------------------------------------------------------------ delete, get, clear


def test_delete_removes_every_node_of_the_document(store: SvdbVectorStore) -> None:
    store.delete("doc-2")
    assert set(_ids(store)) == {W1, W2}
    store.delete("no-such-doc")
    assert store.collection.count() == 2


def test_delete_nodes(store: SvdbVectorStore) -> None:
    store.delete_nodes([W1, "missing"])
    assert set(_ids(store)) == {W2, W3, W4}
    rank_c = MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c")])
    store.delete_nodes([W2, W4], filters=rank_c)  # both: the intersection
    assert set(_ids(store)) == {W3, W4}
    store.delete_nodes(filters=rank_c)
    assert set(_ids(store)) == {W4}
    store.delete_nodes([])
    assert store.collection.count() == 1
    with pytest.raises(ValueError, match="clear"):
        store.delete_nodes()
    store.delete_nodes(filters=MetadataFilters(filters=[]))  # matches every node
    assert store.collection.count() == 0


def test_get_nodes(store: SvdbVectorStore) -> None:
    assert [n.node_id for n in store.get_nodes([W3, "missing", W1])] == [W3, W1]
    assert [n.node_id for n in store.get_nodes()] == [W1, W2, W3, W4]
    rank_c = MetadataFilters(filters=[_f("rank", FilterOperator.EQ, "c")])
    assert [n.node_id for n in store.get_nodes(filters=rank_c)] == [W2, W3]
    assert [n.node_id for n in store.get_nodes([W1, W2], filters=rank_c)] == [W2]
    assert store.get_nodes([]) == []
    (node,) = store.get_nodes([W4])
    assert node.metadata == {"rank": "b", "author": None}
    assert node.get_content() == "lorem ipsum 0C1D"


def test_clear(store: SvdbVectorStore) -> None:
    store.clear()
    assert store.collection.count() == 0
    assert _ids(store) == []
    store.clear()
    store.add(_nodes()[:1])
    assert _ids(store) == [W1]


# ------------------------------------------------------------ construction, persistence


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    s = SvdbVectorStore(path, "docs", collection_metadata={"hnsw:space": "l2"})
    s.add(_nodes())
    before = s.query(VectorStoreQuery(query_embedding=[0.2, 0.7], similarity_top_k=3))
    s.close()
    s.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        s.get_nodes()
    again = SvdbVectorStore(Path(path), "docs")  # the collection keeps its own metric
    try:
        assert again.path == path
        after = again.query(VectorStoreQuery(query_embedding=[0.2, 0.7], similarity_top_k=3))
        assert after.ids == before.ids
        assert after.similarities == pytest.approx(before.similarities or [])
        assert again.collection.configuration_json["hnsw"]["space"] == "l2"
        assert {n.node_id: n.get_content() for n in again.get_nodes()} == {n.node_id: n.text for n in _nodes()}
    finally:
        again.close()
    other = SvdbVectorStore(path, "other")  # a second collection in the same directory
    try:
        assert other.get_nodes() == []
    finally:
        other.close()


def test_in_memory_store(tmp_path: Path) -> None:
    name = "mem-" + uuid.uuid4().hex[:8]
    s = SvdbVectorStore(collection_name=name)
    try:
        assert s.path is None
        s.add(_nodes())
        assert set(_ids(s)) == ALL
        # The process's in-memory store is shared, as ChromaDB's EphemeralClient.
        t = SvdbVectorStore(collection_name=name)
        assert t.collection.count() == 4
        t.close()
    finally:
        s.close()


def test_client_argument(tmp_path: Path) -> None:
    client = pysvdb.chroma.PersistentClient(str(tmp_path))
    try:
        s = SvdbVectorStore(client=client, collection_name="col1")
        assert s.client is client
        s.add(_nodes())
        s.close()  # not this store's client: still open
        assert client.get_collection("col1").count() == 4
        with pytest.raises(ValueError, match="either path or client"):
            SvdbVectorStore(str(tmp_path), client=client)
    finally:
        client.close()


def test_bad_collection_name_closes_what_it_opened(tmp_path: Path) -> None:
    with pytest.raises(pysvdb.errors.InvalidArgumentError):
        SvdbVectorStore(str(tmp_path), "x")  # ChromaDB's names: 3 characters at least
    s = SvdbVectorStore(str(tmp_path), "fine")
    s.close()


def test_from_params_and_serialization(tmp_path: Path) -> None:
    s = SvdbVectorStore.from_params(
        collection_name="pp1", persist_dir=str(tmp_path), collection_kwargs={"metadata": {"hnsw:space": "ip"}}
    )
    try:
        assert s.collection.configuration_json["hnsw"]["space"] == "ip"
        d = s.to_dict()
        assert d["class_name"] == "SvdbVectorStore"
        assert (d["path"], d["collection_name"]) == (str(tmp_path), "pp1")
        s.add(_nodes())
        copy = SvdbVectorStore.from_dict(d)
        assert copy.collection.count() == 4
        copy.close()
    finally:
        s.close()
    with pytest.raises(ValueError, match="unsupported collection_kwargs: embedding_function"):
        SvdbVectorStore.from_params("p2", str(tmp_path), {"embedding_function": None})


# ------------------------------------------------------------ async


def test_async_variants(store: SvdbVectorStore) -> None:
    async def run() -> None:
        q = VectorStoreQuery(query_embedding=[1.0, 0.9], similarity_top_k=2)
        assert (await store.aquery(q)).ids == [W3, W1]
        new = TextNode(id_="async", text="a", embedding=[1.0, 0.9])
        assert await store.async_add([new]) == ["async"]
        assert [n.node_id for n in await store.aget_nodes(["async"])] == ["async"]
        await store.adelete("doc-2")
        await store.adelete_nodes([W1])
        assert {n.node_id for n in await store.aget_nodes()} == {W2, "async"}
        results = await asyncio.gather(*(store.aquery(q) for _ in range(4)))
        assert all(r.ids == ["async", W2] for r in results)
        await store.aclear()
        assert await store.aget_nodes() == []

    asyncio.run(run())


# ------------------------------------------------------------ end to end


class _WordEmbedding(BaseEmbedding):
    """A deterministic bag-of-words embedding over a fixed vocabulary (no network)."""

    vocabulary: List[str] = ["apple", "banana", "cherry", "engine", "wheel", "river"]

    def _vec(self, text: str) -> List[float]:
        words = text.lower().replace(".", " ").split()
        v = [float(words.count(w)) for w in self.vocabulary]
        return [x + 0.01 for x in v]  # never the zero vector

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._vec(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._vec(text)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._vec(query)


@pytest.fixture()
def mock_llm() -> Iterator[None]:
    saved = Settings._llm
    Settings.llm = None  # type: ignore[assignment]  # a MockLLM: nothing reaches a network
    yield
    Settings._llm = saved


def test_vector_store_index_end_to_end(tmp_path: Path, mock_llm: None) -> None:
    docs = [
        Document(id_="fruit", text="An apple and a banana. Apple pie.", metadata={"topic": "food", "year": 2020}),
        Document(id_="cars", text="The engine turns the wheel. Engine oil.", metadata={"topic": "cars", "year": 2022}),
        Document(id_="nature", text="A river and a cherry tree by the river.", metadata={"topic": "x", "year": 2024}),
    ]
    store = SvdbVectorStore(str(tmp_path / "db"))
    try:
        ctx = StorageContext.from_defaults(vector_store=store)
        index = VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=_WordEmbedding())
        assert store.collection.count() == 3
        hits = index.as_retriever(similarity_top_k=1).retrieve("where is the engine")
        assert [h.node.ref_doc_id for h in hits] == ["cars"]
        assert "engine turns" in hits[0].node.get_content()
        assert hits[0].score is not None and hits[0].score > 0.5
        later = MetadataFilters(filters=[_f("year", FilterOperator.GTE, 2021)])
        hits = index.as_retriever(similarity_top_k=3, filters=later).retrieve("apple")
        assert {h.node.ref_doc_id for h in hits} == {"cars", "nature"}
        hits = asyncio.run(index.as_retriever(similarity_top_k=1).aretrieve("cherry river"))
        assert [h.node.ref_doc_id for h in hits] == ["nature"]
        index.delete_ref_doc("fruit")
        assert {n.ref_doc_id for n in store.get_nodes()} == {"cars", "nature"}
    finally:
        store.close()
    # A new index over the reopened directory finds the same nodes.
    reopened = SvdbVectorStore(str(tmp_path / "db"))
    try:
        index = VectorStoreIndex.from_vector_store(reopened, embed_model=_WordEmbedding())
        hits = index.as_retriever(similarity_top_k=1).retrieve("river")
        assert [h.node.ref_doc_id for h in hits] == ["nature"]
    finally:
        reopened.close()
