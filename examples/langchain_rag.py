"""Retrieval for a RAG prompt with LangChain and pysvdb, offline.

A dozen short documents are embedded with a tiny deterministic embedding (a
hashed bag of words in 64 dimensions: no model download, no network), stored in
a pysvdb collection, and a question retrieves the most relevant ones, with a
metadata filter, to build the context an LLM would be given.

    pip install .[langchain]
    python3 examples/langchain_rag.py            # in-memory
    python3 examples/langchain_rag.py ./rag_db   # or kept in a directory
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from typing import List

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from pysvdb.langchain import SvdbVectorStore

DIM = 64
STOP = frozenset("a an and after as at before do does how in is it its not of on one or the their to with work works".split())


class HashedBagOfWords(Embeddings):
    """Each lower-cased word (stop words left out, a plural "s" cut) adds +-1 to one
    of DIM buckets (by its MD5), then the vector is normalised: texts sharing
    words point the same way."""

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> List[float]:
        v = [0.0] * DIM
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            if word in STOP:
                continue
            word = word[:-1] if len(word) > 3 and word.endswith("s") else word
            h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
            v[h % DIM] += 1.0 if (h >> 16) & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]


DOCS = [
    ("svdb stores vectors durably in a write-ahead log before a write returns.", "storage", 2024),
    ("A checkpoint writes a snapshot of the collection and empties the log.", "storage", 2025),
    ("Deleted rows free their disk space at the next checkpoint.", "storage", 2026),
    ("The HNSW index answers approximate nearest neighbour queries quickly.", "search", 2024),
    ("Metadata filters run inside the HNSW graph walk, not after it.", "search", 2025),
    ("A very selective filter makes svdb scan the matching rows exactly.", "search", 2026),
    ("Compact int8 storage keeps one byte a component in memory.", "memory", 2025),
    ("f16 storage halves the memory of the vectors and re-ranks exactly.", "memory", 2026),
    ("Several processes may open one collection; writes take turns.", "processes", 2025),
    ("A process killed at any moment leaves no stale lock behind.", "processes", 2026),
    ("pysvdb loads libsvdb with cffi in ABI mode, without compiling.", "python", 2024),
    ("The ChromaDB-compatible client works with import pysvdb as chromadb.", "python", 2026),
]


def main(path: str | None) -> None:
    docs = [
        Document(page_content=text, metadata={"topic": topic, "year": year}, id="doc%02d" % i)
        for i, (text, topic, year) in enumerate(DOCS)
    ]
    store = SvdbVectorStore.from_documents(
        docs, HashedBagOfWords(), path=path, collection_name="rag", collection_metadata={"hnsw:space": "cosine"}
    )
    with store:
        question = "How do filters work with the HNSW search?"
        # Only this year's notes, and the three best matches with their relevance (1 = same direction).
        hits = store.similarity_search_with_relevance_scores(question, k=3, filter={"year": {"$gte": 2025}})
        context = "\n".join("- [%s, %.2f] %s" % (d.id, score, d.page_content) for d, score in hits)
        print("Question: %s\n\nContext (2025 and later):\n%s\n" % (question, context))
        # Relevant but different from each other, among the storage and memory notes.
        diverse = store.max_marginal_relevance_search(
            "storage memory", k=3, fetch_k=6, lambda_mult=0.3, filter={"topic": {"$in": ["storage", "memory"]}}
        )
        print("Diverse context for 'storage memory':")
        print("\n".join("- [%s] %s" % (d.id, d.page_content) for d in diverse))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
