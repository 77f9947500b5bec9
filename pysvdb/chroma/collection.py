"""``Collection``: ChromaDB's collection methods over one libsvdb collection.

Arguments are checked as ChromaDB checks them (:mod:`.validation`), records
become libsvdb rows (:mod:`.rows`), and every call on the collection's handle
runs inside one ``with engine.use(record) as db:`` (:mod:`.catalog`), which
opens the handle, holds the writer lock for writes, and turns libsvdb's errors
into ChromaDB's.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, Iterator, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple, Union, cast

import numpy as np
import numpy.typing as npt

from .. import _errors as svdb_errors
from .._db import SvDBPython
from . import errors
from . import rows as rows_
from .catalog import Engine, Record
from .embedding import embed, is_default
from .types import (
    ID,
    IDs,
    URI,
    ChromaMetadata,
    CollectionConfiguration,
    CollectionMetadata,
    CollectionModel,
    CreateCollectionConfiguration,
    DataLoaderLike,
    DeleteResult,
    Document,
    EmbeddingFunctionLike,
    EmbeddingsArg,
    GetResult,
    HnswConfiguration,
    Image,
    Include,
    OneOrMany,
    QueryResult,
    RowMetadata,
    URIs,
    Where,
    WhereDocument,
)
from .validation import (
    UPDATABLE_HNSW_KEYS,
    check_batch_size,
    check_finite,
    check_hnsw_value,
    check_ids_storable,
    check_lengths,
    check_metadata_storable,
    normalize_embeddings,
    normalize_metadatas,
    one_or_many,
    unsigned,
    validate_collection_metadata,
    validate_collection_name,
    validate_delete,
    validate_documents,
    validate_ids,
    validate_images,
    validate_include,
    validate_metadata,
    validate_metadatas,
    validate_n_results,
    validate_query_ids,
    validate_where,
    validate_where_document,
)

__all__ = ["Collection"]


class _RecordSet(NamedTuple):
    """The records of one add/upsert/update call, normalized and checked as ChromaDB does."""

    ids: IDs
    embeddings: Optional[npt.NDArray[np.float32]]
    metadatas: Optional[List[Optional[RowMetadata]]]
    documents: Optional[List[Optional[Document]]]
    images: Optional[List[Image]]
    uris: Optional[List[URI]]

    def row_fields(self) -> Iterator[Tuple[Optional[RowMetadata], Optional[Document], Optional[URI]]]:
        """Each record's metadata, document and uri (None where not given)."""
        for i in range(len(self.ids)):
            yield (
                self.metadatas[i] if self.metadatas is not None else None,
                self.documents[i] if self.documents is not None else None,
                self.uris[i] if self.uris is not None else None,
            )


class Collection:
    """A collection of records: ids, embeddings, metadata, documents and uris.

    Obtained from a client (``create_collection``, ``get_collection``, ...).
    Methods, arguments and results are ChromaDB's.
    """

    def __init__(
        self,
        engine: Engine,
        record: Record,
        embedding_function: Optional[EmbeddingFunctionLike],
        data_loader: Optional[DataLoaderLike],
    ) -> None:
        if embedding_function is not None and not callable(embedding_function):
            raise ValueError("embedding_function must be callable, not %s" % type(embedding_function).__name__)
        self._engine = engine
        self._record = record
        self._embedding_function = embedding_function
        self._data_loader = data_loader

    # ------------------------------------------------------------ properties

    @property
    def id(self) -> uuid.UUID:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def metadata(self) -> Optional[CollectionMetadata]:
        m = self._record.metadata
        return dict(m) if m is not None else None

    @property
    def configuration_json(self) -> CollectionConfiguration:
        return {"hnsw": HnswConfiguration(**self._record.hnsw), "spann": None, "embedding_function": None}

    @property
    def configuration(self) -> CollectionConfiguration:
        ef = None if is_default(self._embedding_function) else self._embedding_function
        return {"hnsw": HnswConfiguration(**self._record.hnsw), "spann": None, "embedding_function": ef}

    @property
    def _model(self) -> CollectionModel:
        """ChromaDB's model of the collection, as of now (a new object at each access)."""
        return CollectionModel(
            self.id,
            self.name,
            self.configuration_json,
            self.metadata,
            self._engine.dimension(self._record),
            self._record.tenant,
            self._record.database,
        )

    def get_model(self) -> CollectionModel:
        return self._model

    @property
    def schema(self) -> None:
        return None

    @property
    def tenant(self) -> str:
        return self._record.tenant

    @property
    def database(self) -> str:
        return self._record.database

    def __repr__(self) -> str:
        return "Collection(name=%s)" % self.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Collection):
            return False
        return (
            self.id == other.id
            and self.name == other.name
            and self.metadata == other.metadata
            and self.configuration_json == other.configuration_json
            and self._embedding_function == other._embedding_function
            and self._data_loader == other._data_loader
        )

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------ internals

    def _embed(self, inputs: Sequence[Any], is_query: bool) -> npt.NDArray[np.float32]:
        return embed(self._embedding_function, inputs, is_query)

    def _embed_record_set(
        self,
        documents: Optional[List[Optional[Document]]],
        images: Optional[List[Image]],
        uris: Optional[List[URI]],
        fields: Tuple[str, ...],
        is_query: bool = False,
    ) -> npt.NDArray[np.float32]:
        given = {"documents": documents, "images": images, "uris": uris}
        if sum(given[f] is not None for f in fields) != 1:
            raise ValueError("Exactly one of %s must be provided" % ", ".join(fields))
        if documents is not None and "documents" in fields:
            return self._embed(documents, is_query)
        if images is not None and "images" in fields:
            return self._embed(images, is_query)
        if self._data_loader is None:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        return self._embed(self._data_loader(cast(URIs, uris)), is_query)

    def _normalize_insert(
        self,
        ids: object,
        embeddings: object,
        metadatas: object,
        documents: object,
        images: object,
        uris: object,
    ) -> _RecordSet:
        """Chroma's normalize + validate_insert_record_set, in its order."""
        vecs = normalize_embeddings(embeddings)
        id_list = one_or_many(ids)
        meta_list = normalize_metadatas(one_or_many(metadatas))
        doc_list = one_or_many(documents)
        img_list = one_or_many(images)
        uri_list = one_or_many(uris)
        fields = [
            ("ids", id_list),
            ("embeddings", vecs),
            ("metadatas", meta_list),
            ("documents", doc_list),
            ("images", img_list),
            ("uris", uri_list),
        ]
        present = [(k, len(v)) for k, v in fields if v is not None]
        check_lengths(present)
        if doc_list is not None:
            validate_documents(doc_list, nullable=vecs is not None)
        if img_list is not None:
            validate_images(img_list)
        validate_ids(id_list)
        if meta_list is not None:
            validate_metadatas(meta_list)
        return _RecordSet(cast(IDs, id_list), vecs, meta_list, doc_list, img_list, uri_list)

    def _check_vectors(self, db: SvDBPython, vecs: npt.NDArray[np.float32]) -> None:
        dim = db.dim
        if dim is not None and vecs.shape[1] != dim:
            raise errors.InvalidArgumentError(
                "Collection expecting embedding with dimension of %d, got %d" % (dim, vecs.shape[1])
            )
        check_finite(vecs)

    # ------------------------------------------------------------ writes

    def add(
        self,
        ids: OneOrMany[ID],
        embeddings: Optional[EmbeddingsArg] = None,
        metadatas: Optional[OneOrMany[ChromaMetadata]] = None,
        documents: Optional[OneOrMany[Document]] = None,
        images: Optional[OneOrMany[Image]] = None,
        uris: Optional[OneOrMany[URI]] = None,
    ) -> None:
        """Adds records; an id that already exists is ignored (the first write wins).

        Without ``embeddings``, the collection's embedding function embeds
        ``documents`` (or ``images``, or what the data loader loads from ``uris``).
        """
        rs = self._normalize_insert(ids, embeddings, metadatas, documents, images, uris)
        vecs = rs.embeddings
        if vecs is None:
            vecs = self._embed_record_set(rs.documents, rs.images, rs.uris, ("documents", "images", "uris"))
        check_batch_size(len(rs.ids))
        check_ids_storable(rs.ids)
        if rs.metadatas is not None:
            check_metadata_storable(rs.metadatas, allow_none_values=False)
        rows = [rows_.encode(*fields) for fields in rs.row_fields()]
        with self._engine.use(self._record, write=True) as db:
            self._check_vectors(db, vecs)
            try:
                db.add(rs.ids, vecs, rows)
            except svdb_errors.IdExistsError:
                keep = np.flatnonzero(~db.get_batch(rs.ids, metadata=False).found)
                if len(keep):
                    db.add([rs.ids[i] for i in keep], vecs[keep], [rows[i] for i in keep])

    def _merge_write(
        self,
        op: Literal["update", "upsert"],
        ids: object,
        embeddings: object,
        metadatas: object,
        documents: object,
        images: object,
        uris: object,
    ) -> None:
        rs = self._normalize_insert(ids, embeddings, metadatas, documents, images, uris)
        vecs = rs.embeddings
        if vecs is None and (op == "upsert" or rs.documents is not None or rs.images is not None):
            vecs = self._embed_record_set(rs.documents, rs.images, None, ("documents", "images"))
        check_batch_size(len(rs.ids))
        check_ids_storable(rs.ids)
        if rs.metadatas is not None:
            check_metadata_storable(rs.metadatas, allow_none_values=True)
        # Existing rows get ChromaDB's update: libsvdb merges each patch into the stored metadata.
        patches = [rows_.encode_patch(*fields) for fields in rs.row_fields()]
        with self._engine.use(self._record, write=True) as db:
            if vecs is not None:
                self._check_vectors(db, vecs)
            if op == "update":  # missing ids are ignored
                if vecs is not None or any(p is not None for p in patches):
                    db.update(rs.ids, vecs, patches, merge=True, skip_missing=True)
                return
            assert vecs is not None
            # New ids are added, existing ones updated (merged): one call, one log record.
            db.update(rs.ids, vecs, patches, merge=True, insert_missing=True)

    def update(
        self,
        ids: OneOrMany[ID],
        embeddings: Optional[EmbeddingsArg] = None,
        metadatas: Optional[OneOrMany[ChromaMetadata]] = None,
        documents: Optional[OneOrMany[Document]] = None,
        images: Optional[OneOrMany[Image]] = None,
        uris: Optional[OneOrMany[URI]] = None,
    ) -> None:
        """Updates existing records; ids that do not exist are ignored.

        Metadata is merged key by key (a key set to None is removed); a
        document, uri or embedding is replaced only when given. Documents
        without embeddings are re-embedded by the embedding function. libsvdb
        merges and writes every record in one call, all or nothing.
        """
        self._merge_write("update", ids, embeddings, metadatas, documents, images, uris)

    def upsert(
        self,
        ids: OneOrMany[ID],
        embeddings: Optional[EmbeddingsArg] = None,
        metadatas: Optional[OneOrMany[ChromaMetadata]] = None,
        documents: Optional[OneOrMany[Document]] = None,
        images: Optional[OneOrMany[Image]] = None,
        uris: Optional[OneOrMany[URI]] = None,
    ) -> None:
        """Adds new ids and updates existing ones (metadata merged, as :meth:`update`)."""
        self._merge_write("upsert", ids, embeddings, metadatas, documents, images, uris)

    def delete(
        self,
        ids: Optional[OneOrMany[ID]] = None,
        where: Optional[Where] = None,
        where_document: Optional[WhereDocument] = None,
        limit: Optional[int] = None,
    ) -> DeleteResult:
        """Deletes the records matching ``ids`` and the filters (ANDed).

        Returns ``{"deleted": n}``; with ids only, n is the number of ids
        given (as in ChromaDB), else the number of records removed.
        """
        id_list = validate_delete(ids, where, where_document, limit)
        with self._engine.use(self._record, write=True) as db:
            if where is None and where_document is None:
                ids_ = cast(IDs, id_list)
                db.delete(ids_)
                return {"deleted": len(ids_)}
            cand = db.ids_where(where, where_document)
            if id_list is not None:
                wanted = set(id_list)
                cand = [i for i in cand if i in wanted]
            if limit is not None:
                cand = cand[:limit]
            removed = db.delete(cand) if cand else 0
            return {"deleted": removed}

    # ------------------------------------------------------------ reads

    def count(self) -> int:
        """The number of records (O(1))."""
        with self._engine.use(self._record) as db:
            return db.count()

    def _rows(
        self, db: SvDBPython, ids: List[str], include: Sequence[str]
    ) -> Tuple[IDs, List[rows_.Row], Optional[List[npt.NDArray[np.float32]]]]:
        need_rows = any(x in include for x in ("metadatas", "documents", "uris", "data"))
        need_vecs = "embeddings" in include
        if not need_rows and not need_vecs:
            return ids, [], None
        found, texts, vecs = db.get_many(ids, metadata=need_rows, vectors=need_vecs)
        rows = [rows_.decode(t) for t in texts] if need_rows else []
        return [ids[i] for i in found], rows, (list(vecs) if vecs is not None else None)

    def get(
        self,
        ids: Optional[OneOrMany[ID]] = None,
        where: Optional[Where] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Optional[WhereDocument] = None,
        include: Include = ["metadatas", "documents"],  # noqa: B006 - never mutated
    ) -> GetResult:
        """Records matching ``ids`` and the filters, in insertion order.

        ``offset``/``limit`` page through the matches. ``include`` picks the
        fields returned beside ``ids``: "metadatas", "documents",
        "embeddings" (a 2-d numpy array), "uris", "data".
        """
        id_list = one_or_many(ids)
        if id_list is not None:
            validate_ids(id_list)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include, ("distances",))
        if "data" in inc and self._data_loader is None:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        if "data" in inc and "uris" not in inc:
            inc.append("uris")
        lim = unsigned("limit", limit)
        off = unsigned("offset", offset) or 0
        need_rows = any(x in inc for x in ("metadatas", "documents", "uris", "data"))
        with self._engine.use(self._record) as db:
            # One library call chooses the page, in insertion order, with its metadata.
            sel = db.select(where=where, where_document=where_document, ids=id_list, offset=off, limit=lim, metadata=need_rows)
            out_ids: IDs = sel.ids
            rows = [rows_.decode(t) for t in sel.metadatas] if sel.metadatas is not None else []
            vecs: Optional[List[npt.NDArray[np.float32]]] = None
            if "embeddings" in inc and out_ids:
                found, _, v = db.get_many(out_ids, metadata=False, vectors=True)
                if len(found) != len(out_ids):  # deleted by another thread in between
                    out_ids = [out_ids[i] for i in found]
                    rows = [rows[i] for i in found] if rows else rows
                vecs = list(v) if v is not None else []
            elif "embeddings" in inc:
                vecs = []
            dim = db.dim or 0
        result: GetResult = {
            "ids": out_ids,
            "embeddings": rows_.as_array(vecs, dim) if vecs is not None else None,
            "documents": [r[1] for r in rows] if "documents" in inc else None,
            "uris": [r[2] for r in rows] if "uris" in inc else None,
            "data": None,
            "metadatas": [r[0] for r in rows] if "metadatas" in inc else None,
            "included": cast(Include, inc),
        }
        if "data" in inc and self._data_loader is not None and result["uris"] is not None:
            result["data"] = self._data_loader(result["uris"])
        return result

    def peek(self, limit: int = 10) -> GetResult:
        """The first ``limit`` records, with their embeddings."""
        return self.get(limit=limit, include=["metadatas", "documents", "embeddings"])

    def query(
        self,
        query_embeddings: Optional[EmbeddingsArg] = None,
        query_texts: Optional[OneOrMany[Document]] = None,
        query_images: Optional[OneOrMany[Image]] = None,
        query_uris: Optional[OneOrMany[URI]] = None,
        ids: Optional[OneOrMany[ID]] = None,
        n_results: int = 10,
        where: Optional[Where] = None,
        where_document: Optional[WhereDocument] = None,
        include: Include = ["metadatas", "documents", "distances"],  # noqa: B006 - never mutated
    ) -> QueryResult:
        """The ``n_results`` nearest records to each query, nearest first.

        Queries are ``query_embeddings``, or ``query_texts``/``query_images``/
        ``query_uris`` embedded by the collection's embedding function.
        ``ids``, ``where`` and ``where_document`` restrict the candidates, inside
        libsvdb: the filters during the HNSW search, ``ids`` as an allow-list
        whose rows are scored exactly.
        """
        qvecs = normalize_embeddings(query_embeddings)
        texts = one_or_many(query_texts)
        images_ = one_or_many(query_images)
        uri_list = one_or_many(query_uris)
        present = [
            (k, len(v))
            for k, v in (("embeddings", qvecs), ("documents", texts), ("images", images_), ("uris", uri_list))
            if v is not None
        ]
        if not present:
            raise ValueError("At least one of one of embeddings, documents, images, uris must be provided")
        check_lengths(present)
        if texts is not None:
            validate_documents(texts, nullable=qvecs is not None)
        if images_ is not None:
            validate_images(images_)
        filter_ids = validate_query_ids(ids)
        if where is not None:
            validate_where(where)
        if where_document is not None:
            validate_where_document(where_document)
        inc = validate_include(include)
        k = validate_n_results(n_results)
        if qvecs is None:
            qvecs = self._embed_record_set(texts, images_, uri_list, ("documents", "images", "uris"), is_query=True)
        if "data" in inc and "uris" not in inc:
            inc.append("uris")
        nq = int(qvecs.shape[0])
        with self._engine.use(self._record) as db:
            dim = db.dim
            if dim is None:  # never written: any dimension is fine, nothing matches
                hit_ids: List[List[str]] = [[] for _ in range(nq)]
                hit_d: List[List[float]] = [[] for _ in range(nq)]
            else:
                if qvecs.shape[1] != dim:
                    raise errors.InvalidArgumentError(
                        "Collection expecting embedding with dimension of %d, got %d" % (dim, qvecs.shape[1])
                    )
                if not np.isfinite(qvecs).all():
                    raise errors.InvalidArgumentError("Query embeddings must not contain NaN or Infinity values")
                allowed: Optional[List[str]] = None
                if filter_ids is not None:  # an allow-list, scored exactly by libsvdb
                    allowed = list(dict.fromkeys(filter_ids))
                    if allowed and where is None and where_document is None:
                        if not db.get_batch(allowed, metadata=False).found.all():
                            raise errors.InternalError("Error executing plan: Internal error: Error finding id")
                    kk = min(k, len(allowed))
                else:
                    kk = min(k, db.count())
                hit_ids, hit_d = [[] for _ in range(nq)], [[] for _ in range(nq)]
                ef = self._record.hnsw["ef_search"]
                if kk and nq == 1:
                    hits = db.search(qvecs[0], kk, where=where, where_document=where_document, ef=ef, ids=allowed)
                    hit_ids, hit_d = [[h[0] for h in hits]], [[h[1] for h in hits]]
                elif kk:
                    res = db.search_batch(qvecs, kk, where=where, where_document=where_document, ef=ef, ids=allowed)
                    hit_ids, hit_d = [], []
                    for row_ids, row_d in zip(res.ids, res.distances):
                        m = sum(1 for x in row_ids if x is not None)
                        hit_ids.append(list(row_ids[:m]))
                        hit_d.append(row_d[:m].tolist())
            fetched: Dict[str, Tuple[Optional[rows_.Row], Optional[npt.NDArray[np.float32]]]] = {}
            if dim is not None:
                unique = list(dict.fromkeys(i for row in hit_ids for i in row))
                got_ids, rows, vecs = self._rows(db, unique, inc)
                for j, id_ in enumerate(got_ids):
                    fetched[id_] = (rows[j] if rows else None, vecs[j] if vecs is not None else None)
        if dim is not None:
            # Drop hits deleted by another thread between the search and the fetch.
            keep = [[j for j, i in enumerate(row) if i in fetched] for row in hit_ids]
            if any(len(kp) != len(row) for kp, row in zip(keep, hit_ids)):
                hit_d = [[row[j] for j in kp] for kp, row in zip(keep, hit_d)]
                hit_ids = [[row[j] for j in kp] for kp, row in zip(keep, hit_ids)]

        def column(pos: int) -> List[List[Any]]:  # metadata, document or uri of each hit
            return [[cast(rows_.Row, fetched[i][0])[pos] for i in row] for row in hit_ids]

        result: QueryResult = {
            "ids": hit_ids,
            "embeddings": (
                [rows_.as_array([cast(npt.NDArray[np.float32], fetched[i][1]) for i in row], dim or 0) for row in hit_ids] if "embeddings" in inc else None
            ),
            "documents": column(1) if "documents" in inc else None,
            "uris": column(2) if "uris" in inc else None,
            "data": None,
            "metadatas": column(0) if "metadatas" in inc else None,
            "distances": hit_d if "distances" in inc else None,
            "included": cast(Include, inc),
        }
        if "data" in inc and self._data_loader is not None and result["uris"] is not None:
            result["data"] = [self._data_loader(u) for u in result["uris"]]
        return result

    # ------------------------------------------------------------ collection changes

    def modify(
        self,
        name: Optional[str] = None,
        metadata: Optional[CollectionMetadata] = None,
        configuration: Optional[CreateCollectionConfiguration] = None,
    ) -> None:
        """Renames the collection, replaces its metadata, or changes the updatable
        HNSW settings (ef_search, num_threads, batch_size, sync_threshold,
        resize_factor). The distance space cannot change."""
        if metadata is not None:
            validate_metadata(metadata)
            if "hnsw:space" in metadata:
                raise ValueError(
                    "Changing the distance function of a collection once it is created is not supported currently."
                )
        if name is not None:
            validate_collection_name(name, "new_name")
        if metadata is not None:
            validate_collection_metadata(metadata)
        hnsw_updates: Dict[str, Union[str, int, float]] = {}
        ef: Optional[EmbeddingFunctionLike] = None
        if configuration is not None:
            for key, value in configuration.items():
                if key == "embedding_function":
                    if value is not None and not callable(value):
                        raise ValueError("embedding_function must be callable, not %s" % type(value).__name__)
                    ef = value
                elif key == "hnsw":
                    if not isinstance(value, Mapping):
                        raise errors.InvalidArgumentError("not a valid hnsw config: %r" % (value,))
                    for hk, hv in value.items():
                        if hk not in UPDATABLE_HNSW_KEYS:
                            raise errors.InvalidArgumentError(
                                "unknown field `%s`, expected one of %s"
                                % (hk, ", ".join("`%s`" % x for x in UPDATABLE_HNSW_KEYS))
                            )
                        if hv is not None:
                            hnsw_updates[hk] = check_hnsw_value(hk, hv, legacy=False)
                elif key == "spann":
                    if value is not None:
                        raise errors.InvalidArgumentError("pysvdb collections use HNSW; spann cannot be configured")
                else:
                    raise errors.InvalidArgumentError("unknown configuration field `%s`" % key)
        self._engine.modify(self._record, name, metadata, cast(HnswConfiguration, hnsw_updates))
        if ef is not None:
            self._embedding_function = ef

    # ------------------------------------------------------------ not in local ChromaDB

    def fork(self, new_name: str) -> "Collection":
        raise NotImplementedError("Collection forking is not implemented for Local Chroma")

    def fork_count(self) -> int:
        raise NotImplementedError("Fork count is not implemented for Local Chroma")

    def search(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("Search is not implemented for Local Chroma")

    def get_indexing_status(self) -> None:
        raise NotImplementedError("Indexing status is not implemented for Local Chroma")

    # ------------------------------------------------------------ Arrow, pandas, Parquet (pysvdb extensions)
    #
    # pysvdb.arrow is imported on first use: `import pysvdb` never imports pyarrow or pandas.

    def get_arrow(
        self,
        ids: Optional[OneOrMany[ID]] = None,
        where: Optional[Where] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Optional[WhereDocument] = None,
        include: Include = ["embeddings", "metadatas", "documents"],  # noqa: B006 - never mutated
    ) -> Any:
        """:meth:`get` as a ``pyarrow.Table``: ``id``, then, as ``include``
        asks, ``embedding`` (``fixed_size_list<float32>[dim]``), ``metadata``
        (JSON text of the record's metadata), ``document`` and ``uri``.
        Needs ``pysvdb[arrow]``."""
        from .. import arrow

        res = self.get(ids=ids, where=where, limit=limit, offset=offset, where_document=where_document, include=include)
        return arrow.chroma_table(res, self._engine.dimension(self._record) or 0)

    to_arrow = get_arrow

    def to_pandas(
        self,
        ids: Optional[OneOrMany[ID]] = None,
        where: Optional[Where] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Optional[WhereDocument] = None,
        include: Include = ["embeddings", "metadatas", "documents"],  # noqa: B006 - never mutated
    ) -> Any:
        """:meth:`get_arrow` as a ``pandas.DataFrame`` (``embedding``: one
        float32 numpy array per row)."""
        from .. import arrow

        return arrow.to_pandas(self.get_arrow(ids, where, limit, offset, where_document, include))

    def _add_table(self, kind: str, data: Any, options: Dict[str, Any]) -> int:
        from .. import arrow
        from .validation import MAX_BATCH_SIZE

        return arrow.chroma_add(self, kind, data, max_batch_size=MAX_BATCH_SIZE, **options)

    def add_arrow(
        self,
        data: Any,
        *,
        id_column: str = "id",
        embedding_column: Optional[str] = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        document_column: Optional[str] = None,
        upsert: bool = False,
        batch_size: int = 5000,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """Adds the records of an Arrow table (or RecordBatch, RecordBatchReader,
        iterable of RecordBatches), ``batch_size`` per :meth:`add` (or
        :meth:`upsert`) call; returns the number of rows read. Each batch is
        all or nothing and a failure keeps the earlier ones.

        ``embedding_column=None`` embeds ``document_column`` with the
        collection's embedding function. ``metadata_column``: a column of
        JSON object text, structs or maps, or a list of scalar columns. See
        docs/arrow.md. Needs ``pysvdb[arrow]``.
        """
        return self._add_table("arrow", data, dict(
            id_column=id_column, embedding_column=embedding_column, metadata_column=metadata_column,
            document_column=document_column, upsert=upsert, batch_size=batch_size, progress=progress,
        ))

    def add_dataframe(
        self,
        df: Any,
        *,
        id_column: str = "id",
        embedding_column: Optional[str] = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        document_column: Optional[str] = None,
        upsert: bool = False,
        batch_size: int = 5000,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """:meth:`add_arrow` for a ``pandas.DataFrame``."""
        return self._add_table("dataframe", df, dict(
            id_column=id_column, embedding_column=embedding_column, metadata_column=metadata_column,
            document_column=document_column, upsert=upsert, batch_size=batch_size, progress=progress,
        ))

    def add_parquet(
        self,
        path: Any,
        *,
        id_column: str = "id",
        embedding_column: Optional[str] = "embedding",
        metadata_column: Union[None, str, Sequence[str]] = None,
        document_column: Optional[str] = None,
        upsert: bool = False,
        batch_size: int = 5000,
        progress: Union[bool, Literal["always"]] = False,
    ) -> int:
        """:meth:`add_arrow` for a Parquet file, read a batch at a time."""
        return self._add_table("parquet", path, dict(
            id_column=id_column, embedding_column=embedding_column, metadata_column=metadata_column,
            document_column=document_column, upsert=upsert, batch_size=batch_size, progress=progress,
        ))
