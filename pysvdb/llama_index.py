"""A llama-index vector store over pysvdb: :class:`SvdbVectorStore`.

Needs ``llama-index-core`` (``pip install pysvdb[llama-index]``); ``import
pysvdb`` does not load this module. Nodes live in one collection of pysvdb's
ChromaDB-compatible client (:mod:`pysvdb.chroma`): the node's text is the
record's document, its metadata and the serialized node (llama-index's
``node_to_metadata_dict``) the record's metadata. libsvdb evaluates the
filters, translated to the ``where`` grammar, during the search.
See docs/llama-index.md.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, MetadataMode, TextNode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError as e:  # say which extra brings it
    raise ImportError("pysvdb.llama_index needs llama-index-core: pip install pysvdb[llama-index] (%s)" % e) from e

from .chroma import ClientAPI, Collection, EphemeralClient, PersistentClient
from .chroma.types import CollectionMetadata, Where, WhereDocument
from .chroma.validation import MAX_BATCH_SIZE

__all__ = ["SvdbVectorStore", "to_where"]

# llama-index's operator -> the where grammar's, plain and negated (for NOT).
# NE, NIN and $not_contains match records without the key, as the negation of
# EQ, IN and CONTAINS must; the range operators have no such negation.
_OPERATORS: Dict[FilterOperator, Tuple[str, Optional[str]]] = {
    FilterOperator.EQ: ("$eq", "$ne"),
    FilterOperator.NE: ("$ne", "$eq"),
    FilterOperator.GT: ("$gt", None),
    FilterOperator.GTE: ("$gte", None),
    FilterOperator.LT: ("$lt", None),
    FilterOperator.LTE: ("$lte", None),
    FilterOperator.IN: ("$in", "$nin"),
    FilterOperator.NIN: ("$nin", "$in"),
}
# Membership in list metadata; only a store with flat_metadata=False stores lists.
_LIST_OPERATORS = (FilterOperator.CONTAINS, FilterOperator.ANY, FilterOperator.ALL)


class _Nothing:
    """A filter that no record matches (``IN []``), which the where grammar cannot spell."""


_NOTHING = _Nothing()
# None: every record matches; _NOTHING: none does; else a where clause.
_Clause = Union[None, _Nothing, Where]


def _unsupported(f: MetadataFilter, why: str) -> ValueError:
    return ValueError("SvdbVectorStore cannot filter with %s on %r: %s" % (f.operator.name, f.key, why))


def _leaf(f: MetadataFilter, negate: bool, lists: bool) -> _Clause:
    value = f.value
    if f.operator in _LIST_OPERATORS:
        if not lists:
            raise _unsupported(
                f, "it tests list metadata, which a store with flat_metadata=True never holds (and never a substring)"
            )
        values: List[Any] = list(value) if isinstance(value, list) else [value]
        if f.operator == FilterOperator.CONTAINS and len(values) != 1:
            raise _unsupported(f, "it takes one value")
        op = "$not_contains" if negate else "$contains"
        # ANY: one of the values is in the list; ALL: every one is.
        any_ = f.operator == FilterOperator.ANY
        return _combine("$or" if any_ != negate else "$and", [{f.key: {op: v}} for v in values])
    ops = _OPERATORS.get(f.operator)
    if ops is None:
        hint = ""
        if f.operator in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
            hint = " (libsvdb matches text in the node's text only: query(..., where_document={'$contains': s}))"
        raise _unsupported(f, "the where grammar has no such operator" + hint)
    where_op = ops[1] if negate else ops[0]
    if where_op is None:
        raise _unsupported(
            f, "under NOT it would also have to match nodes without the key, which the where grammar cannot say"
        )
    if value is None:
        raise _unsupported(f, "None is no value (a node without the key matches NE and NIN)")
    if where_op in ("$in", "$nin"):
        members: List[Any] = list(value) if isinstance(value, list) else [value]  # a scalar: a list of one
        if not members:  # the where grammar refuses empty lists; say what they mean
            return _NOTHING if where_op == "$in" else None
        return {f.key: {where_op: members}}
    if isinstance(value, list):
        raise _unsupported(f, "it takes one value, not a list")
    return {f.key: {where_op: value}}


def _combine(op: str, clauses: Sequence[_Clause]) -> _Clause:
    """``$and``/``$or`` of clauses, folding the match-all and match-none ones."""
    absorbing, neutral = (_NOTHING, None) if op == "$and" else (None, _NOTHING)
    kept: List[Where] = []
    for c in clauses:
        if c is absorbing:
            return absorbing
        if isinstance(c, dict):
            kept.append(c)
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else {op: kept}


def _clause(filters: MetadataFilters, negate: bool = False, lists: bool = False) -> _Clause:
    """``filters`` (or their negation) as a clause; NOT is "none of them match",
    as in SimpleVectorStore, turned into AND/OR by De Morgan."""
    if not filters.filters:
        return _NOTHING if negate else None
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        op, negate_children = ("$or", False) if negate else ("$and", True)
    elif condition in (FilterCondition.AND, FilterCondition.OR):
        op = "$and" if (condition == FilterCondition.AND) != negate else "$or"
        negate_children = negate
    else:
        raise ValueError("SvdbVectorStore does not support the filter condition %r" % (condition,))
    return _combine(
        op,
        [
            _clause(f, negate_children, lists) if isinstance(f, MetadataFilters) else _leaf(f, negate_children, lists)
            for f in filters.filters
        ],
    )


def to_where(filters: Optional[MetadataFilters], lists: bool = False) -> Optional[Where]:
    """The ``where`` clause of pysvdb's ChromaDB client for llama-index ``filters``.

    None when every record matches. ``lists``: translate CONTAINS/ANY/ALL
    (membership in list metadata). Raises ``ValueError`` for operators and
    conditions without a faithful translation, and for filters that match
    nothing (``IN []``), which the grammar cannot spell.
    """
    c = _clause(filters, lists=lists) if filters is not None else None
    if isinstance(c, _Nothing):
        raise ValueError("these filters match no record (IN with an empty list)")
    return c


def _flat_metadata(node: BaseNode, flat: bool) -> Dict[str, Any]:
    meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=flat)
    # A None value means "no value" to llama-index's filters, and ChromaDB refuses
    # it: leaving the key out keeps NE/NIN matching, as in SimpleVectorStore.
    return {k: v for k, v in meta.items() if v is not None}


def _to_node(node_id: str, text: Optional[str], metadata: Optional[Mapping[str, Any]]) -> BaseNode:
    meta = dict(metadata or {})
    if "_node_content" in meta:
        return metadata_dict_to_node(meta, text=text)
    # A record written by other code through the client: a plain text node.
    return TextNode(id_=node_id, text=text or "", metadata=meta)


class SvdbVectorStore(BasePydanticVectorStore):
    """A llama-index vector store in a pysvdb collection.

    ``path``: the directory of a persistent store (created when missing);
    None keeps the nodes in the process's in-memory store (shared by every
    in-memory client of the process, as ChromaDB's ``EphemeralClient``).
    ``client``: an existing pysvdb client (``pysvdb.PersistentClient(...)``)
    instead of ``path``; the store then leaves closing it to the caller.
    ``collection_metadata`` applies when the collection is created; the
    default is ``{"hnsw:space": "cosine"}``, the similarity llama-index's
    embeddings are made for. An existing collection keeps its own.

    Example::

        store = SvdbVectorStore("./db", "docs")
        index = VectorStoreIndex.from_documents(
            docs, storage_context=StorageContext.from_defaults(vector_store=store))
    """

    stores_text: bool = True
    flat_metadata: bool = True

    path: Optional[str] = None
    collection_name: str = "llama_index"
    collection_metadata: Optional[Dict[str, Any]] = None

    _client: ClientAPI = PrivateAttr()
    _collection: Collection = PrivateAttr()
    _owns_client: bool = PrivateAttr(default=False)
    _space: str = PrivateAttr(default="l2")

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", None] = None,
        collection_name: str = "llama_index",
        *,
        client: Optional[ClientAPI] = None,
        collection_metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        if path is not None and client is not None:
            raise ValueError("give either path or client, not both")
        fields: Dict[str, Any] = dict(
            kwargs,
            path=None if path is None else os.fspath(path),
            collection_name=collection_name,
            collection_metadata=collection_metadata,
        )
        super().__init__(**fields)
        owns = client is None
        if client is None:
            client = PersistentClient(path) if path is not None else EphemeralClient()
        try:
            meta: CollectionMetadata = dict(
                {"hnsw:space": "cosine"} if collection_metadata is None else collection_metadata
            )
            collection = client.get_or_create_collection(collection_name, metadata=meta, embedding_function=None)
            space = str(collection.configuration_json["hnsw"]["space"])
        except BaseException:
            if owns:
                client.close()
            raise
        self._client = client
        self._owns_client = owns
        self._collection = collection
        self._space = space

    @classmethod
    def from_params(
        cls,
        collection_name: str = "llama_index",
        persist_dir: Optional[str] = None,
        collection_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> "SvdbVectorStore":
        """The arguments of ``ChromaVectorStore.from_params`` (``host``/``port``
        aside: pysvdb is embedded): ``collection_kwargs["metadata"]`` is the
        collection's metadata."""
        extra = dict(collection_kwargs or {})
        meta = extra.pop("metadata", None)
        if extra:
            raise ValueError("unsupported collection_kwargs: %s" % ", ".join(sorted(extra)))
        return cls(persist_dir, collection_name, collection_metadata=meta, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "SvdbVectorStore"

    @property
    def client(self) -> ClientAPI:
        """The pysvdb ChromaDB-compatible client the collection belongs to."""
        return self._client

    @property
    def collection(self) -> Collection:
        """The pysvdb collection holding the nodes."""
        return self._collection

    def close(self) -> None:
        """Closes the client this store opened (not one passed in). Idempotent."""
        if self._owns_client:
            self._client.close()

    # ------------------------------------------------------------ writes

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Stores the nodes (each needs an embedding); returns their ids.

        A node whose id is already stored replaces it, as in llama-index's
        SimpleVectorStore (within one call the last node of an id wins).
        """
        if add_kwargs:
            raise TypeError("unexpected arguments: %s" % ", ".join(sorted(add_kwargs)))
        # Convert everything first, so a bad node fails before anything is written.
        # The writes are then one atomic write per chunk of MAX_BATCH_SIZE nodes: a
        # write that fails leaves its chunk as it was, but the chunks before it stay written.
        rows: Dict[str, Tuple[List[float], Dict[str, Any], str]] = {}
        for node in nodes:
            rows.pop(node.node_id, None)  # keep the order of the last occurrence
            rows[node.node_id] = (
                node.get_embedding(),
                _flat_metadata(node, self.flat_metadata),
                node.get_content(metadata_mode=MetadataMode.NONE),
            )
        ids = list(rows)
        for start in range(0, len(ids), MAX_BATCH_SIZE):
            chunk = ids[start : start + MAX_BATCH_SIZE]
            old = self._collection.get(ids=chunk, include=["metadatas"])
            metadatas: List[Any] = [rows[i][1] for i in chunk]
            if not old["ids"]:
                self._collection.add(
                    ids=chunk,
                    embeddings=[rows[i][0] for i in chunk],
                    metadatas=metadatas,
                    documents=[rows[i][2] for i in chunk],
                )
                continue
            # upsert merges metadata key by key: the old node's other keys are set
            # to None (removed), so the node is replaced, in one write.
            stale = {i: m or {} for i, m in zip(old["ids"], old["metadatas"] or [])}
            for pos, id_ in enumerate(chunk):
                if id_ in stale:
                    metadatas[pos] = dict({k: None for k in stale[id_]}, **metadatas[pos])
            self._collection.upsert(
                ids=chunk,
                embeddings=[rows[i][0] for i in chunk],
                metadatas=metadatas,
                documents=[rows[i][2] for i in chunk],
            )
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the document ``ref_doc_id``."""
        if delete_kwargs:
            raise TypeError("unexpected arguments: %s" % ", ".join(sorted(delete_kwargs)))
        self._collection.delete(where={"doc_id": str(ref_doc_id)})

    def delete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        """Deletes the nodes that are in ``node_ids`` and match ``filters``.

        At least one must be given (``clear()`` deletes everything).
        """
        if delete_kwargs:
            raise TypeError("unexpected arguments: %s" % ", ".join(sorted(delete_kwargs)))
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters; clear() deletes every node")
        clause = _clause(filters, lists=not self.flat_metadata) if filters is not None else None
        if isinstance(clause, _Nothing) or (node_ids is not None and not node_ids):
            return
        if clause is None and node_ids is None:  # filters that match everything
            self.clear()
            return
        self._collection.delete(ids=list(node_ids) if node_ids is not None else None, where=clause)

    def clear(self) -> None:
        """Deletes every node (in one write)."""
        ids = self._collection.get(include=[])["ids"]
        if ids:
            self._collection.delete(ids=ids)

    # ------------------------------------------------------------ reads

    def get_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        """The nodes in ``node_ids`` (in that order; missing ones left out)
        that match ``filters``; every node when both are None."""
        clause = _clause(filters, lists=not self.flat_metadata) if filters is not None else None
        if isinstance(clause, _Nothing) or (node_ids is not None and not node_ids):
            return []
        got = self._collection.get(
            ids=list(node_ids) if node_ids is not None else None,
            where=clause,
            include=["metadatas", "documents"],
        )
        docs, metas = got["documents"] or [], got["metadatas"] or []
        nodes = {i: _to_node(i, d, m) for i, d, m in zip(got["ids"], docs, metas)}
        if node_ids is None:
            return list(nodes.values())
        return [nodes[i] for i in dict.fromkeys(node_ids) if i in nodes]

    def _similarity(self, distance: float) -> float:
        # llama-index's similarity(): cosine similarity, dot product, -euclidean.
        if self._space == "l2":
            return -math.sqrt(max(distance, 0.0))  # libsvdb's l2 is squared
        return 1.0 - distance  # cosine: 1 - cos; ip: 1 - dot

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest to ``query.query_embedding``.

        Honours ``filters``, ``doc_ids`` and ``node_ids`` (None or an empty
        list: no restriction). ``kwargs``: ``where`` and ``where_document``, in
        pysvdb's ChromaDB grammar, ANDed with the rest.
        """
        where_kw: Optional[Where] = kwargs.pop("where", None)
        where_document: Optional[WhereDocument] = kwargs.pop("where_document", None)
        if kwargs:
            raise TypeError("unexpected arguments: %s (accepted: where, where_document)" % ", ".join(sorted(kwargs)))
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError("SvdbVectorStore supports only the query mode DEFAULT, not %s" % query.mode.name)
        if query.query_embedding is None:
            raise ValueError("SvdbVectorStore needs query.query_embedding")
        k = query.similarity_top_k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError("similarity_top_k must be a non-negative integer, got %r" % (k,))
        filters = query.filters
        parts: List[_Clause] = [where_kw]
        if filters is not None:
            parts.append(_clause(filters, lists=not self.flat_metadata))
        # An empty doc_ids/node_ids restricts nothing: VectorStoreIndex.as_retriever()
        # passes node_ids=[] for stores that keep the text (its own list is empty).
        if query.doc_ids:
            parts.append({"doc_id": {"$in": list(query.doc_ids)}})
        clause = _combine("$and", parts)
        if k == 0 or isinstance(clause, _Nothing):
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        res = self._collection.query(
            query_embeddings=[list(query.query_embedding)],
            n_results=k,
            ids=list(query.node_ids) if query.node_ids else None,
            where=clause,
            where_document=where_document,
            include=["metadatas", "documents", "distances"],
        )
        ids = res["ids"][0]
        docs = (res["documents"] or [[]])[0]
        metas = (res["metadatas"] or [[]])[0]
        dists = (res["distances"] or [[]])[0]
        return VectorStoreQueryResult(
            nodes=[_to_node(i, d, m) for i, d, m in zip(ids, docs, metas)],
            similarities=[self._similarity(float(d)) for d in dists],
            ids=list(ids),
        )

    # ------------------------------------------------------------ async

    # The base class runs the synchronous call on the event loop; libsvdb's
    # calls block, so these run them in a worker thread instead.

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    async def aget_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)
