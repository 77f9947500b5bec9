"""What PATH names: one collection directory (an :class:`SvDBPython`), or a
ChromaDB client directory (:func:`pysvdb.chroma.PersistentClient`) holding
named collections. A :class:`Target` is one collection of either kind, with its
engine handle for the calls both kinds share (stats, verify, checkpoints,
reading rows, progress)."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .._db import IndexType, Metric, SvDBPython
from .formats import DOCUMENT_KEY, Batch

if TYPE_CHECKING:
    from ..chroma.client import ClientAPI
    from ..chroma.collection import Collection

__all__ = ["CliError", "Target", "open_targets", "is_client_dir", "is_collection_dir", "collection_names", "name_needed", "not_a_client_dir"]

#: The catalog file of a ChromaDB client directory, and a collection's files.
_CATALOG = "pysvdb-chroma.json"
_COLLECTION_FILES = ("snapshot.svdb", "wal.svdb")


class CliError(Exception):
    """A failure the command reports in one line (exit status 1)."""


def is_client_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, _CATALOG))


def is_collection_dir(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, f)) for f in _COLLECTION_FILES)


def split_row(text: Optional[str]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """A row's metadata text as (metadata without the document, document).
    ChromaDB's ``#uri`` is dropped: the files carry no uri."""
    if text is None:
        return None, None
    d: Dict[str, Any] = json.loads(text)
    doc = d.get(DOCUMENT_KEY)
    if isinstance(doc, str):
        del d[DOCUMENT_KEY]
    else:
        # not a document (a plain collection's row may hold any value under the
        # key): kept in the metadata, so that nothing is lost
        doc = None
    d.pop("#uri", None)
    return (d or None), doc


class Target:
    """One collection. ``db`` is its engine handle; ``collection`` is set for
    a collection of a ChromaDB client directory."""

    def __init__(self, name: str, db: SvDBPython, collection: Optional["Collection"] = None) -> None:
        self.name = name
        self.db = db
        self.collection = collection

    @property
    def kind(self) -> str:
        return "chroma" if self.collection is not None else "collection"

    def write(self, batch: Batch, upsert: bool) -> None:
        """One batch, atomically: every row or none."""
        if self.collection is not None:
            metas = [m or None for m in batch.metadatas] if batch.metadatas else None
            fn = self.collection.upsert if upsert else self.collection.add
            fn(ids=batch.ids, embeddings=batch.vectors, metadatas=metas, documents=batch.documents)  # type: ignore[arg-type]
            return
        rows = None
        if batch.metadatas is not None or batch.documents is not None:
            rows = [_row_text(batch, i) for i in range(len(batch.ids))]
        (self.db.upsert if upsert else self.db.add)(batch.ids, batch.vectors, rows)

    def existing(self, ids: List[str]) -> List[str]:
        """Which of ``ids`` the collection holds already."""
        found = self.db.get_batch(ids, metadata=False).found
        return [ids[i] for i in np.flatnonzero(found)]

    def read(self, ids: List[str], with_rows: bool) -> Batch:
        """The rows of ``ids`` that still exist (a concurrent delete may remove some)."""
        r = self.db.get_batch(ids, metadata=with_rows, vectors=True)
        keep = np.flatnonzero(r.found)
        vecs = r.vectors if r.vectors is not None else np.zeros((len(ids), 0), np.float32)
        batch = Batch([ids[i] for i in keep], np.ascontiguousarray(vecs[keep]))
        if with_rows and r.metadatas is not None:
            split = [split_row(r.metadatas[i]) for i in keep]
            batch.metadatas = [m for m, _ in split]
            batch.documents = [d for _, d in split]
        return batch


def _row_text(batch: Batch, i: int) -> Optional[str]:
    """A plain collection's row: the metadata object, with the document under
    the reserved key the library's ``where_document`` filters read."""
    meta = dict(batch.metadatas[i] or {}) if batch.metadatas else {}
    if DOCUMENT_KEY in meta:
        raise CliError("row %r: metadata key %r is reserved for the document" % (batch.ids[i], DOCUMENT_KEY))
    doc = batch.documents[i] if batch.documents else None
    if doc is not None:
        meta[DOCUMENT_KEY] = doc
    return json.dumps(meta, ensure_ascii=False, allow_nan=False) if meta else None


def _client(path: str) -> "ClientAPI":
    from ..chroma import PersistentClient

    return PersistentClient(path)


def collection_names(path: str) -> List[str]:
    """The collections of the client directory ``path``."""
    client = _client(path)
    try:
        return [c.name for c in client.list_collections()]
    finally:
        client.close()


def name_needed(path: str, names: List[str]) -> CliError:
    return CliError(
        "%s is a ChromaDB client directory: name the collection with --collection (%s)"
        % (path, ", ".join(names) or "it has none")
    )


def not_a_client_dir(path: str) -> CliError:
    if is_collection_dir(path):
        return CliError("%s is one collection, not a ChromaDB client directory: drop --collection" % path)
    return CliError("%s is not a ChromaDB client directory" % path)


def _chroma_target(col: "Collection") -> Target:
    # The collection's engine handle: the same object its own calls use, so a
    # progress handler set on it sees them.
    with col._engine.use(col._record) as db:
        return Target(col.name, db, col)


@contextmanager
def open_targets(
    path: str,
    name: Optional[str],
    *,
    write: bool,
    one: bool,
    create: bool = False,
    metric: Optional[Metric] = None,
    index: Optional[IndexType] = None,
) -> Iterator[List[Target]]:
    """The collections PATH names: a collection directory, or the collections
    of a client directory (the one called ``name``, or all of them unless
    ``one``). ``create`` makes a missing collection (with ``name``: in a client
    directory). Read-only commands open a plain collection read-only."""
    if not os.path.exists(path) and not create:
        raise CliError("%s does not exist" % path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError("%s is not a directory (a collection or a ChromaDB client directory)" % path)
    if is_client_dir(path) or (name is not None and create and not is_collection_dir(path)):
        with ExitStack() as stack:
            client = _client(path)
            stack.callback(client.close)
            yield _client_targets(client, path, name, one=one, create=create, metric=metric, index=index)
        return
    if name is not None:
        raise not_a_client_dir(path)
    if not is_collection_dir(path) and not create:
        raise CliError("%s is not a collection or a ChromaDB client directory" % path)
    db = SvDBPython(path, metric=metric, index=index, create=create, mode="shared" if write else "readonly")
    try:
        yield [Target(path, db)]
    finally:
        db.close()


def _client_targets(
    client: "ClientAPI",
    path: str,
    name: Optional[str],
    *,
    one: bool,
    create: bool,
    metric: Optional[Metric],
    index: Optional[IndexType],
) -> List[Target]:
    if index not in (None, "hnsw"):
        raise CliError("collections of a ChromaDB client directory are always HNSW (--index %s)" % index)
    names = [c.name for c in client.list_collections()]
    if name is None:
        if one:
            raise name_needed(path, names)
        return [_chroma_target(client.get_collection(n)) for n in names]
    if name not in names:
        if not create:
            raise CliError("%s has no collection %r (%s)" % (path, name, ", ".join(names) or "it has none"))
        col = client.create_collection(name, metadata={"hnsw:space": metric or "l2"}, embedding_function=None)
    else:
        col = client.get_collection(name, embedding_function=None)
    t = _chroma_target(col)
    if metric is not None and t.db.metric != metric:
        raise CliError("collection %r uses metric %s, not %s" % (name, t.db.metric, metric))
    return [t]
