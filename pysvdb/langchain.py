"""A LangChain vector store over pysvdb: :class:`SvdbVectorStore`.

Needs ``langchain-core`` (``pip install pysvdb[langchain]``); ``import pysvdb``
never loads this module. The store is a collection of pysvdb's ChromaDB-compatible
client (:mod:`pysvdb.chroma`), so ``filter=`` takes ChromaDB's ``where`` grammar,
``where_document=`` its document filters, and a store made with a ``path`` is
also a ``pysvdb.PersistentClient(path)`` directory. See docs/langchain.md.
"""

from __future__ import annotations

import math
import os
import uuid
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, TypeVar, Union, cast

import numpy as np
import numpy.typing as npt
try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.runnables.config import run_in_executor
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as e:  # say which extra brings it
    raise ImportError("pysvdb.langchain needs langchain-core: pip install pysvdb[langchain] (%s)" % e) from e

from . import chroma
from .chroma import rows as rows_
from .chroma import validation
from .chroma.types import CollectionMetadata, Include, QueryResult, Where, WhereDocument

__all__ = ["SvdbVectorStore"]

_VST = TypeVar("_VST", bound="SvdbVectorStore")

#: Metadata of a LangChain document.
_Meta = Dict[str, Any]


def _l2_relevance(distance: float) -> float:
    # Squared L2 is unbounded unless vectors are normalised; 1/(1+d) maps any
    # distance into (0, 1] and keeps the order.
    return 1.0 / (1.0 + max(distance, 0.0))


def _cosine_relevance(distance: float) -> float:
    # 1 - cos lies in [0, 2]: half of it off 1 is (1 + cos) / 2, in [0, 1].
    return min(1.0, max(0.0, 1.0 - distance / 2.0))


#: Relevance (1 is the most similar, 0 the least) from libsvdb's distance, per space.
#: ip's distance is 1 - dot, the cosine one for unit vectors (what ip is used for);
#: beyond [0, 2] it is clamped.
RELEVANCE_FUNCTIONS: Dict[str, Callable[[float], float]] = {
    "l2": _l2_relevance,
    "cosine": _cosine_relevance,
    "ip": _cosine_relevance,
}


class SvdbVectorStore(VectorStore):
    """A LangChain ``VectorStore`` kept in a pysvdb collection.

    ``path=None`` gives a new, empty store of its own in the process's
    in-memory (ephemeral) store, removed by :meth:`close` or at exit; a
    ``path`` opens (or creates) the collection ``collection_name`` of the
    ``pysvdb.PersistentClient`` at that directory; ``client=`` uses a
    ChromaDB-compatible client you made (it is not closed by the store).
    ``collection_metadata`` is used when the collection is created, e.g.
    ``{"hnsw:space": "cosine"}`` (the default space is "l2", squared).
    ``relevance_score_fn`` replaces the relevance function chosen by space.

    Adding an id that exists replaces its text, metadata and vector.
    """

    def __init__(
        self,
        embedding: Embeddings,
        path: Optional[Union[str, "os.PathLike[str]"]] = None,
        collection_name: str = "langchain",
        *,
        client: Optional[chroma.ClientAPI] = None,
        collection_metadata: Optional[CollectionMetadata] = None,
        relevance_score_fn: Optional[Callable[[float], float]] = None,
    ) -> None:
        if client is not None and path is not None:
            raise ValueError("pass either path= or client=, not both")
        self._embedding = embedding
        self._relevance_score_fn = relevance_score_fn
        self._owned: Optional[chroma.ClientAPI] = None
        self._finalizer: Optional[weakref.finalize] = None  # type: ignore[type-arg]
        try:
            if client is None:
                client = self._open_client(path)
            self._client = client
            self._collection = client.get_or_create_collection(
                collection_name, metadata=collection_metadata, embedding_function=None
            )
        except BaseException:
            self.close()
            raise

    def _open_client(self, path: Optional[Union[str, "os.PathLike[str]"]]) -> chroma.ClientAPI:
        if path is not None:
            self._owned = chroma.PersistentClient(path)
            return self._owned
        # A database of its own in the ephemeral store: two in-memory stores never
        # share a collection, and close() removes its files.
        name = "langchain-" + uuid.uuid4().hex
        admin = chroma.AdminClient(chroma.Settings(is_persistent=False))
        try:
            admin.create_database(name)
        except BaseException:
            admin.close()
            raise
        self._finalizer = weakref.finalize(self, _drop_database, admin, name)
        self._owned = chroma.EphemeralClient(database=name)
        return self._owned

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Releases the client the store opened (an in-memory store's rows go). Idempotent."""
        owned, self._owned = self._owned, None
        fin, self._finalizer = self._finalizer, None
        try:
            if owned is not None:
                owned.close()
        finally:
            dropped = fin.detach() if fin is not None else None
            if dropped is not None:  # here, unlike at exit, a failure is reported
                admin, name = dropped[2]
                try:
                    admin.delete_database(name)
                finally:
                    admin.close()

    def __enter__(self) -> "SvdbVectorStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def delete_collection(self) -> None:
        """Deletes the collection and its files; the store cannot be used afterwards."""
        self._client.delete_collection(self._collection.name)

    # ------------------------------------------------------------ properties

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def collection(self) -> chroma.Collection:
        """The underlying ChromaDB-compatible collection."""
        return self._collection

    @property
    def space(self) -> str:
        """The distance space: "l2" (squared), "cosine" (1 - cos) or "ip" (1 - dot)."""
        return str(self._collection.configuration_json["hnsw"].get("space", "l2"))

    # ------------------------------------------------------------ writes

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """Embeds and stores ``texts``; returns their ids (uuid4 for each missing one).

        An id that exists is overwritten: text, metadata and vector are replaced.
        All rows are written in one call, all or none.
        """
        _no_kwargs("add_texts", kwargs)
        text_list, meta_list, id_list = _records(texts, metadatas, ids)
        if not text_list:
            return []
        vectors = self._embedding.embed_documents(text_list)
        self._write(id_list, text_list, meta_list, vectors)
        return id_list

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """:meth:`add_texts` with the embeddings' own async call (an API request need not hold a thread)."""
        _no_kwargs("aadd_texts", kwargs)
        text_list, meta_list, id_list = _records(texts, metadatas, ids)
        if not text_list:
            return []
        vectors = await self._embedding.aembed_documents(text_list)
        await run_in_executor(None, self._write, id_list, text_list, meta_list, vectors)
        return id_list

    def _write(self, ids: List[str], texts: List[str], metadatas: List[_Meta], vectors: Sequence[Sequence[float]]) -> None:
        vecs = _matrix(vectors, len(ids))
        validation.check_ids_storable(ids)
        for i, meta in enumerate(metadatas):
            _check_metadata(i, meta)
        rows = [rows_.encode(meta or None, text, None) for meta, text in zip(metadatas, texts)]
        col = self._collection
        # LangChain replaces a document whose id exists; ChromaDB's upsert would
        # merge the old metadata keys in. libsvdb's upsert replaces the rows, all
        # of them in one call, under the collection's writer lock.
        with col._engine.use(col._record, write=True) as db:
            col._check_vectors(db, vecs)
            db.upsert(ids, vecs, rows)

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes the documents with these ids (missing ones are skipped), or, with
        ``filter=``/``where_document=`` and no ids, those matching. ``delete()``
        with neither raises ValueError rather than emptying the store."""
        where = _filter(kwargs)
        where_document = _where_document(kwargs)
        _no_kwargs("delete", kwargs)
        if ids is None and where is None and where_document is None:
            raise ValueError("delete() needs ids, filter= or where_document=; delete_collection() removes everything")
        id_list = None if ids is None else list(dict.fromkeys(_id_list(ids)))
        if id_list == []:
            return True
        self._collection.delete(ids=id_list, where=where, where_document=where_document)
        return True

    # ------------------------------------------------------------ reads

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The documents with these ids, in the order asked; missing ids are left out."""
        wanted = list(dict.fromkeys(_id_list(ids)))
        if not wanted:
            return []
        got = self._collection.get(ids=wanted, include=cast(Include, ["metadatas", "documents"]))
        by_id = {
            id_: _document(id_, doc, meta)
            for id_, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [])
        }
        return [by_id[i] for i in wanted if i in by_id]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> List[Document]:
        """The ``k`` documents nearest to ``query``; ``filter=`` (a ChromaDB ``where``)
        and ``where_document=`` restrict the candidates."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> List[Tuple[Document, float]]:
        """As :meth:`similarity_search`, each with its distance (smaller is nearer)."""
        return self.similarity_search_by_vector_with_score(self._embedding.embed_query(query), k, **kwargs)

    def similarity_search_by_vector(self, embedding: List[float], k: int = 4, **kwargs: Any) -> List[Document]:
        return [doc for doc, _ in self.similarity_search_by_vector_with_score(embedding, k, **kwargs)]

    def similarity_search_by_vector_with_score(
        self, embedding: Sequence[float], k: int = 4, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        res = self._query(embedding, k, kwargs, "similarity_search", embeddings=False)
        return list(zip(_documents(res), (res["distances"] or [[]])[0]))

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> List[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> List[Tuple[Document, float]]:
        vector = await self._embedding.aembed_query(query)
        return await run_in_executor(None, self.similarity_search_by_vector_with_score, vector, k, **kwargs)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self._relevance_score_fn is not None:
            return self._relevance_score_fn
        return RELEVANCE_FUNCTIONS[self.space]

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> List[Document]:
        """``k`` documents chosen among the ``fetch_k`` nearest for relevance to the
        query and difference from each other (``lambda_mult`` 1: relevance only)."""
        return self.max_marginal_relevance_search_by_vector(
            self._embedding.embed_query(query), k, fetch_k, lambda_mult, **kwargs
        )

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> List[Document]:
        vector = await self._embedding.aembed_query(query)
        return await run_in_executor(
            None, self.max_marginal_relevance_search_by_vector, vector, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self, embedding: List[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> List[Document]:
        _positive("k", k)
        _positive("fetch_k", fetch_k)
        if not 0.0 <= lambda_mult <= 1.0:
            raise ValueError("lambda_mult must be between 0 and 1, got %r" % (lambda_mult,))
        res = self._query(embedding, max(k, fetch_k), kwargs, "max_marginal_relevance_search", embeddings=True)
        docs = _documents(res)
        if not docs:
            return []
        candidates = (res["embeddings"] or [np.empty((0, 0))])[0]
        picked = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float64), candidates.tolist(), lambda_mult=lambda_mult, k=k
        )
        return [docs[i] for i in picked]

    def _query(
        self, embedding: Sequence[float], k: int, kwargs: Dict[str, Any], method: str, embeddings: bool
    ) -> QueryResult:
        _positive("k", k)
        where = _filter(kwargs)
        where_document = _where_document(kwargs)
        _no_kwargs(method, kwargs)
        include = ["metadatas", "documents", "distances"] + (["embeddings"] if embeddings else [])
        return self._collection.query(
            query_embeddings=_matrix([embedding], 1),
            n_results=k,
            where=where,
            where_document=where_document,
            include=cast(Include, include),
        )

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_texts(
        cls: Type[_VST],
        texts: List[str],
        embedding: Embeddings,
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> _VST:
        """A store made with ``kwargs`` (``path``, ``collection_name``, ``client``, ...) holding ``texts``."""
        store = cls(embedding, **kwargs)
        try:
            store.add_texts(texts, metadatas, ids=ids)
        except BaseException:
            store.close()
            raise
        return store


# ---------------------------------------------------------------- helpers


def _drop_database(admin: chroma.AdminClient, name: str) -> None:
    """An unclosed in-memory store's finalizer: removes its database (its files)."""
    try:
        admin.delete_database(name)
    except Exception:
        pass  # at exit the ephemeral store may have gone first, and its directory with it
    finally:
        admin.close()


def _no_kwargs(method: str, kwargs: Dict[str, Any]) -> None:
    if kwargs:
        raise TypeError("SvdbVectorStore.%s() got unexpected keyword arguments: %s" % (method, ", ".join(sorted(kwargs))))


def _filter(kwargs: Dict[str, Any]) -> Optional[Where]:
    # An empty filter means no filter, as in LangChain's other stores.
    where = kwargs.pop("filter", None)
    if "where" in kwargs:
        if where:
            raise ValueError("pass filter= or where=, not both")
        where = kwargs.pop("where")
    return cast(Optional[Where], where or None)


def _where_document(kwargs: Dict[str, Any]) -> Optional[WhereDocument]:
    return cast(Optional[WhereDocument], kwargs.pop("where_document", None) or None)


def _positive(name: str, n: object) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError("%s must be a positive integer, got %r" % (name, n))


def _id_list(ids: Iterable[str]) -> List[str]:
    if isinstance(ids, str):
        raise TypeError("ids must be a list of str, not a str")
    out = list(ids)
    for id_ in out:
        if not isinstance(id_, str):
            raise TypeError("ids must be str, got %s" % type(id_).__name__)
    return out


def _records(
    texts: Iterable[str], metadatas: Optional[List[_Meta]], ids: Optional[Sequence[Optional[str]]]
) -> Tuple[List[str], List[_Meta], List[str]]:
    """Texts, one metadata dict each and one id each (uuid4 where none given), checked."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of str, not a str")
    text_list = list(texts)
    n = len(text_list)
    for t in text_list:
        if not isinstance(t, str):
            raise TypeError("texts must be str, got %s" % type(t).__name__)
    if metadatas is not None and len(metadatas) != n:
        raise ValueError("%d metadatas for %d texts" % (len(metadatas), n))
    if ids is not None and len(ids) != n:
        raise ValueError("%d ids for %d texts" % (len(ids), n))
    meta_list = list(metadatas) if metadatas is not None else [{} for _ in range(n)]
    id_list = [i if i else str(uuid.uuid4()) for i in (ids if ids is not None else [None] * n)]
    _id_list(id_list)
    if len(set(id_list)) != n:
        dups = sorted({i for i in id_list if id_list.count(i) > 1})
        raise ValueError("ids must be unique in one call; repeated: %s" % ", ".join(dups[:10]))
    return text_list, meta_list, id_list


def _check_metadata(i: int, meta: object) -> None:
    """A document's metadata: a dict of str keys to str, int, float, bool (or lists of them)."""
    if meta is None or meta == {}:
        return
    if not isinstance(meta, dict):
        raise TypeError("metadata of document %d must be a dict, not %s" % (i, type(meta).__name__))
    for key, value in meta.items():
        if isinstance(key, str) and (not key or key[0] in "#$"):
            # "#document" holds the text; ChromaDB reserves both prefixes.
            raise ValueError("metadata of document %d: key %r is reserved (empty, or starting with # or $)" % (i, key))
        if value is None:
            raise ValueError("metadata of document %d: key %r is None; drop the key or give a value" % (i, key))
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("metadata of document %d: key %r is %r, which cannot be stored" % (i, key, value))
    try:
        validation.validate_metadata(meta)
    except (ValueError, TypeError) as e:
        raise type(e)("metadata of document %d: %s" % (i, e)) from None


def _matrix(vectors: Sequence[Sequence[float]], n: int) -> npt.NDArray[np.float32]:
    try:
        m = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError("the embeddings are not a list of equal-length lists of numbers: %s" % e) from None
    if m.ndim != 2 or m.shape[0] != n or m.shape[1] == 0:
        raise ValueError("expected %d embeddings of one non-zero length, got an array of shape %s" % (n, m.shape))
    if not np.isfinite(m).all():
        raise ValueError("the embeddings hold NaN or infinite values")
    return m


def _document(id_: str, text: Optional[str], meta: Optional[Dict[str, Any]]) -> Document:
    return Document(id=id_, page_content=text or "", metadata=dict(meta) if meta else {})


def _documents(res: QueryResult) -> List[Document]:
    ids = res["ids"][0] if res["ids"] else []
    docs = (res["documents"] or [[]])[0]
    metas = (res["metadatas"] or [[]])[0]
    return [_document(i, d, m) for i, d, m in zip(ids, docs, metas)]
