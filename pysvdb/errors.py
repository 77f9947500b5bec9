"""``pysvdb.errors``: the ChromaDB-named exceptions, as ``chromadb.errors``.

An alias of :mod:`pysvdb.chroma.errors` (the same classes), kept so that
``import pysvdb as chromadb; chromadb.errors.NotFoundError`` and
``from pysvdb.errors import NotFoundError`` keep working. Importing it loads
:mod:`pysvdb.chroma`.
"""

from __future__ import annotations

from .chroma.errors import *  # noqa: F401,F403 - the alias re-exports every name
from .chroma.errors import __all__ as __all__  # noqa: F401
