"""Writing the files ``svdb export`` makes, batch by batch, into a temporary
file beside the target that is moved into place only once complete: a failed
or interrupted export leaves nothing behind."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .formats import Batch, FormatError, pyarrow_modules

__all__ = ["Writer", "open_writer"]


def _npy_header(descr: str, shape: Tuple[int, ...]) -> bytes:
    """A .npy (format 1.0) header of a fixed 128 bytes, so that it can be
    rewritten in place once the row count is final."""
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + d.ljust(117).encode("latin1") + b"\n"


class _Temp:
    """A file written beside ``path`` under a temporary name, moved over
    ``path`` by :meth:`commit` and removed by :meth:`abort`."""

    def __init__(self, path: str) -> None:
        self.path = path
        fd, self.tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".%s." % os.path.basename(path), suffix=".tmp")
        self.f: IO[bytes] = os.fdopen(fd, "wb")
        # mkstemp makes the file 0600; the output gets the usual mode (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(fd, 0o666 & ~umask)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.f.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class Writer:
    """Writes batches to a temporary file; :meth:`commit` moves it into place."""

    def __init__(self) -> None:
        self._temps: List[_Temp] = []
        #: temporary files that are never moved into place (removed by abort)
        self._scratch: List[_Temp] = []

    def _temp(self, path: str) -> _Temp:
        t = _Temp(path)
        self._temps.append(t)
        return t

    def _scratch_temp(self, path: str) -> _Temp:
        t = _Temp(path)
        self._scratch.append(t)
        return t

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Around a writer's opening: a failure removes the temporary files
        made before it."""
        try:
            yield
        except BaseException:
            self.abort()
            raise

    def write(self, batch: Batch) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        pass

    def commit(self) -> None:
        self._finish()
        for t in self._temps:
            t.commit()

    def abort(self) -> None:
        for t in self._scratch + self._temps:
            t.abort()


class _IdsText:
    """``--ids-to``: the ids, one a line, beside a vectors-only export."""

    def __init__(self, writer: Writer, path: str) -> None:
        self._t = writer._temp(path)

    def write(self, ids: List[str]) -> None:
        for i in ids:
            if "\n" in i or "\r" in i:
                raise FormatError("id %r holds a line break: export to .jsonl or .parquet to keep such ids" % i)
        self._t.f.write("".join(i + "\n" for i in ids).encode("utf-8"))


class _NpyStream:
    """A .npy file written row block by row block, header fixed at the end."""

    def __init__(self, t: _Temp, descr: str, tail: Tuple[int, ...]) -> None:
        self._t, self._descr, self._tail, self.rows = t, descr, tail, 0
        t.f.write(_npy_header(descr, (0,) + tail))

    def write(self, a: npt.NDArray[Any]) -> None:
        self._t.f.write(np.ascontiguousarray(a).tobytes())
        self.rows += len(a)

    def finish(self) -> None:
        self._t.f.seek(0)
        self._t.f.write(_npy_header(self._descr, (self.rows,) + self._tail))
        self._t.f.seek(0, os.SEEK_END)


class NpyWriter(Writer):
    def __init__(self, path: str, dim: int, ids_to: Optional[str]) -> None:
        super().__init__()
        with self._opening():
            self._v = _NpyStream(self._temp(path), "<f4", (dim,))
            self._ids = _IdsText(self, ids_to) if ids_to else None

    def write(self, batch: Batch) -> None:
        self._v.write(batch.vectors.astype("<f4", copy=False))
        if self._ids:
            self._ids.write(batch.ids)

    def _finish(self) -> None:
        self._v.finish()


class NpzWriter(Writer):
    """``embeddings`` and ``ids`` (str, ``max_id_len`` characters at most),
    streamed into two temporary .npy files and stored in the archive at the end."""

    def __init__(self, path: str, dim: int, max_id_len: int) -> None:
        super().__init__()
        with self._opening():
            self._path = path
            self._zip = self._temp(path)
            self._parts = [self._scratch_temp(path + ".embeddings"), self._scratch_temp(path + ".ids")]
            self._v = _NpyStream(self._parts[0], "<f4", (dim,))
            self._idlen = max(max_id_len, 1)
            self._i = _NpyStream(self._parts[1], "<U%d" % self._idlen, ())

    def write(self, batch: Batch) -> None:
        self._v.write(batch.vectors.astype("<f4", copy=False))
        self._i.write(np.array(batch.ids, dtype="<U%d" % self._idlen))

    def _finish(self) -> None:
        self._v.finish()
        self._i.finish()
        for p in self._parts:
            p.f.close()
        with zipfile.ZipFile(self._zip.f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            z.write(self._parts[0].tmp, "embeddings.npy")
            z.write(self._parts[1].tmp, "ids.npy")
        for p in self._parts:
            p.abort()


class FvecsWriter(Writer):
    def __init__(self, path: str, dim: int, ids_to: Optional[str]) -> None:
        super().__init__()
        with self._opening():
            self._t = self._temp(path)
            self._dim = dim
            self._ids = _IdsText(self, ids_to) if ids_to else None

    def write(self, batch: Batch) -> None:
        rows = np.empty((len(batch.ids), self._dim + 1), dtype="<i4")
        rows[:, 0] = self._dim
        rows[:, 1:] = batch.vectors.astype("<f4", copy=False).view("<i4")
        self._t.f.write(rows.tobytes())
        if self._ids:
            self._ids.write(batch.ids)


def _metadata_text(m: Optional[Dict[str, Any]]) -> Optional[str]:
    return None if m is None else json.dumps(m, ensure_ascii=False)


class ParquetWriter(Writer):
    """Columns id (string), embedding (fixed-size list of float32), metadata
    (JSON object text or null), document (string or null)."""

    def __init__(self, path: str, dim: int) -> None:
        super().__init__()
        pa, pq = pyarrow_modules()
        self._pa, self._dim = pa, dim
        with self._opening():
            self._t = self._temp(path)
            self._schema = pa.schema(
                [("id", pa.string()), ("embedding", pa.list_(pa.float32(), dim)), ("metadata", pa.string()), ("document", pa.string())]
            )
            self._w = pq.ParquetWriter(self._t.f, self._schema)

    def write(self, batch: Batch) -> None:
        pa = self._pa
        n = len(batch.ids)
        emb = pa.FixedSizeListArray.from_arrays(pa.array(batch.vectors.reshape(-1), type=pa.float32()), self._dim)
        metas = batch.metadatas or [None] * n
        docs = batch.documents or [None] * n
        table = pa.Table.from_arrays(
            [pa.array(batch.ids, pa.string()), emb, pa.array([_metadata_text(m) for m in metas], pa.string()), pa.array(docs, pa.string())],
            schema=self._schema,
        )
        self._w.write_table(table)

    def _finish(self) -> None:
        self._w.close()

    def abort(self) -> None:
        try:
            if hasattr(self, "_w"):  # (not there when opening failed)
                self._w.close()
        finally:
            super().abort()


class JsonlWriter(Writer):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._t = self._temp(path)

    def write(self, batch: Batch) -> None:
        n = len(batch.ids)
        metas = batch.metadatas or [None] * n
        docs = batch.documents or [None] * n
        lines = (
            json.dumps({"id": i, "embedding": v, "metadata": m, "document": d}, ensure_ascii=False) + "\n"
            for i, v, m, d in zip(batch.ids, batch.vectors.tolist(), metas, docs)
        )
        self._t.f.write("".join(lines).encode("utf-8"))


def open_writer(path: str, fmt: str, dim: int, max_id_len: int, ids_to: Optional[str] = None) -> Writer:
    """A writer of ``path`` in format ``fmt`` for ``dim``-d rows."""
    if ids_to is not None and fmt not in ("npy", "fvecs"):
        raise FormatError("--ids-to is for .npy and .fvecs files; %s files carry their ids" % fmt)
    if fmt == "npy":
        return NpyWriter(path, dim, ids_to)
    if fmt == "npz":
        return NpzWriter(path, dim, max_id_len)
    if fmt == "fvecs":
        return FvecsWriter(path, dim, ids_to)
    if fmt == "parquet":
        return ParquetWriter(path, dim)
    return JsonlWriter(path)
