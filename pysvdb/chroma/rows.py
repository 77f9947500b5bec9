"""A ChromaDB record as a libsvdb row: metadata, document and uri in one JSON
object (the document under the reserved key ``"#document"``, the uri under
``"#uri"``), and embeddings as ChromaDB returns them."""

from __future__ import annotations

import json
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .._cdef import DOCUMENT_KEY
from .types import RowMetadata
from .validation import storable_value

URI_KEY = "#uri"

#: A decoded row: metadata (None when empty), document, uri.
Row = Tuple[Optional[RowMetadata], Optional[str], Optional[str]]


def _object(meta: Optional[RowMetadata], doc: Optional[str], uri: Optional[str], keep_none: bool) -> Optional[str]:
    d: RowMetadata = {k: storable_value(v) for k, v in meta.items() if keep_none or v is not None} if meta else {}
    if doc is not None:
        d[DOCUMENT_KEY] = doc
    if uri is not None:
        d[URI_KEY] = uri
    return json.dumps(d, ensure_ascii=False, allow_nan=False) if d else None


def encode(meta: Optional[RowMetadata], doc: Optional[str], uri: Optional[str]) -> Optional[str]:
    """A new row's metadata text (keys set to None are left out); None when empty."""
    return _object(meta, doc, uri, keep_none=False)


def encode_patch(meta: Optional[RowMetadata], doc: Optional[str], uri: Optional[str]) -> Optional[str]:
    """What ChromaDB's update changes in a row, as a metadata patch that libsvdb
    merges into the stored one (given keys replace, a None value removes the
    key, other keys stay); None when it changes nothing."""
    return _object(meta, doc, uri, keep_none=True)


def decode(text: Optional[str]) -> Row:
    if text is None:
        return None, None, None
    d: Dict[str, object] = json.loads(text)
    doc = d.pop(DOCUMENT_KEY, None)
    uri = d.pop(URI_KEY, None)
    return (d or None), (doc if isinstance(doc, str) else None), (uri if isinstance(uri, str) else None)


def as_array(rows: Sequence[npt.NDArray[np.float32]], dim: int) -> npt.NDArray[np.float64]:
    """Embeddings as ChromaDB returns them: np.array of lists of Python floats (float64)."""
    if not rows:
        return np.array([], dtype=np.float64)
    return np.stack(rows).astype(np.float64).reshape(len(rows), dim)
