"""Ray Data ingest and batch retrieval for RayCollection: each batch of the
Dataset runs, in a Ray task, the same add/query as the driver would."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ._client import RayCollection


def _vectors(column: Any) -> npt.NDArray[np.float32]:
    """A batch's embedding column (a 2-d tensor, or one array/list per row) as a float32 matrix."""
    arr = np.asarray(column)
    if arr.dtype == object:
        arr = np.stack([np.asarray(v, dtype=np.float32) for v in arr])
    return arr.astype(np.float32, copy=False)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def add_dataset(col: "RayCollection", ds: Any, id_column: str, embedding_column: str,
                metadata_columns: Optional[Sequence[str]], document_column: Optional[str], upsert: bool,
                batch_size: int) -> int:
    meta_cols = list(metadata_columns or [])

    def write(batch: Dict[str, Any]) -> Dict[str, Any]:
        ids = [str(_py(x)) for x in batch[id_column]]
        metas: Optional[List[Any]] = None
        if meta_cols:
            metas = [{c: _py(batch[c][i]) for c in meta_cols} for i in range(len(ids))]
        docs = [None if d is None else str(d) for d in batch[document_column]] if document_column else None
        (col.upsert if upsert else col.add)(ids=ids, embeddings=_vectors(batch[embedding_column]),
                                            metadatas=metas, documents=docs)
        return {"written": np.array([len(ids)], dtype=np.int64)}

    written = ds.map_batches(write, batch_size=batch_size, batch_format="numpy")
    return int(sum(int(row["written"]) for row in written.iter_rows()))


def query_dataset(col: "RayCollection", ds: Any, embedding_column: str, n_results: int, where: Any,
                  where_document: Any, batch_size: int) -> Any:
    import pyarrow as pa

    def search(batch: Any) -> Any:
        vecs = _vectors(batch.column(embedding_column).combine_chunks().to_numpy(zero_copy_only=False))
        res = col.query(query_embeddings=vecs, n_results=n_results, where=where, where_document=where_document,
                        include=["distances"])
        batch = batch.append_column("ids", pa.array(res["ids"], type=pa.list_(pa.string())))
        return batch.append_column("distances", pa.array(res["distances"], type=pa.list_(pa.float32())))

    return ds.map_batches(search, batch_size=batch_size, batch_format="pyarrow")
