"""Embedding functions: the default one (which has no model), and calling a
collection's function the ways ChromaDB's are called."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from .types import EmbeddingFunction, EmbeddingFunctionLike, Space
from .validation import SPACES, normalize_embeddings

__all__ = ["DefaultEmbeddingFunction"]

NO_EMBEDDING_FUNCTION = (
    "You must provide an embedding function to compute embeddings: pysvdb has no built-in embedding model "
    "(ChromaDB's default downloads ONNX all-MiniLM-L6-v2). Pass embeddings=/query_embeddings=, or create/get the "
    "collection with embedding_function=..."
)


class DefaultEmbeddingFunction(EmbeddingFunction[Any]):
    """The default ``embedding_function``: pysvdb downloads no model, so embedding
    with it raises a ValueError saying so. Pass your own function (any
    callable taking a list of documents), or embeddings."""

    def __call__(self, input: Any) -> Any:
        raise ValueError(NO_EMBEDDING_FUNCTION)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultEmbeddingFunction)

    def __hash__(self) -> int:
        return hash(DefaultEmbeddingFunction)


def is_default(ef: Optional[EmbeddingFunctionLike]) -> bool:
    """True when there is no function to embed with."""
    return ef is None or isinstance(ef, DefaultEmbeddingFunction)


def default_space(ef: Optional[EmbeddingFunctionLike]) -> Optional[Space]:
    """ChromaDB takes the space of a non-legacy embedding function when none is given."""
    if is_default(ef):
        return None
    try:
        is_legacy = getattr(ef, "is_legacy", None)
        if not callable(is_legacy) or is_legacy():
            return None
        space = getattr(ef, "default_space")()
    except Exception:
        return None
    for s in SPACES:
        if space == s:
            return s
    return None


def _call(ef: EmbeddingFunctionLike, inputs: List[Any]) -> Any:
    try:
        return ef(input=inputs)
    except TypeError as e:
        if "input" not in str(e):
            raise
        return ef(inputs)  # a plain function with another parameter name


def embed(ef: Optional[EmbeddingFunctionLike], inputs: Sequence[Any], is_query: bool) -> npt.NDArray[np.float32]:
    """One float32 row per input, from the collection's function (``embed_query`` for queries when it has one)."""
    if ef is None or is_default(ef):
        raise ValueError(NO_EMBEDDING_FUNCTION)
    fn = getattr(ef, "embed_query", None) if is_query else None
    out = fn(input=list(inputs)) if callable(fn) else _call(ef, list(inputs))
    vecs = normalize_embeddings(out)
    if vecs is None or vecs.shape[0] != len(inputs):
        raise ValueError(
            "the embedding function returned %s embeddings for %d inputs"
            % (0 if vecs is None else vecs.shape[0], len(inputs))
        )
    return vecs
