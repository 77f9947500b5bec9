"""The ``svdb`` commands (click). Each command opens PATH (see target.py),
does its work through the library, and reports in one line on failure."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar, cast

import click
import numpy as np
import numpy.typing as npt

from .. import MAX_ID_BYTES, __version__, library_path, library_version, simd_path
from .._db import IndexType, Metric, ProgressOp
from .._errors import CanceledError, CorruptError, FormatVersionError, SvDBError
from .._progress import RowProgress
from .formats import VECTOR_ONLY, Batch, FormatError, format_of, open_reader
from .writers import open_writer
from .progress import EngineBars, Interrupt, bars_enabled
from .target import (
    CliError,
    Target,
    collection_names,
    is_client_dir,
    is_collection_dir,
    name_needed,
    not_a_client_dir,
    open_targets,
)

__all__ = ["cli", "Interrupted"]

F = TypeVar("F", bound=Callable[..., Any])

#: Rows per batch: what one engine call writes (atomically) or one read returns.
DEFAULT_BATCH = 4096


class Interrupted(click.ClickException):
    """Ctrl-C: the message says what was done; exit status 130 (128 + SIGINT)."""

    exit_code = 130

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


def _reported(fn: F) -> F:
    """Turns the failures a user can cause into one line on stderr, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except (CliError, FormatError, SvDBError) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            what = "%s: %s" % (e.filename, e.strerror) if e.filename and e.strerror else str(e)
            raise click.ClickException(what) from None
        except Exception as e:
            # ChromaDB's errors and argument checks (ValueError, TypeError) of the client
            from ..chroma.errors import ChromaError

            if isinstance(e, (ChromaError, ValueError, TypeError)):
                raise click.ClickException(str(e)) from None
            raise

    return cast(F, wrapper)


def _collection_option(fn: F) -> F:
    return click.option(
        "--collection", "-c", "name", metavar="NAME", help="The collection of a ChromaDB client directory PATH."
    )(fn)


def _quiet_option(fn: F) -> F:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar (none either when stderr is not a terminal).")(fn)


_PATH = click.argument("path", type=click.Path(file_okay=False, dir_okay=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="svdb", message="%(prog)s (pysvdb) %(version)s")
def cli() -> None:
    """Inspect, check and move data in and out of svdb collections.

    PATH is a collection directory (pysvdb.SvDBPython) or a ChromaDB client
    directory (pysvdb.PersistentClient), whose collections --collection names.
    See docs/cli.md.
    """


# ---------------------------------------------------------------- info


def _size(n: int) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s (%d bytes)" % (v, unit, n))
        v /= 1024
    return str(n)


def _info(t: Target) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": t.name}
    d.update(dataclasses.asdict(t.db.stats()))
    return d


_INFO_ROWS = (
    ("count", "count", str),
    ("dimension", "dim", lambda v: "- (fixed by the first row)" if v is None else str(v)),
    ("metric", "metric", str),
    ("index", "index", str),
    ("storage", "storage", str),
    ("size on disk", "disk_bytes", _size),
    ("snapshot", "snapshot_bytes", _size),
    ("log size", "log_bytes", _size),
    ("slots", "slots", str),
    ("free slots", "free_slots", str),
    ("pending links", "pending", str),
    ("HNSW M", "M", str),
    ("ef_construction", "ef_construction", str),
    ("ef_search", "ef_search", str),
)


@cli.command()
@_PATH
@_collection_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_reported
def info(path: str, name: Optional[str], as_json: bool) -> None:
    """Show each collection: rows, dimension, metric, index, storage, sizes."""
    with open_targets(path, name, write=False, one=False) as targets:
        kind = "chroma" if is_client_dir(path) else "collection"
        report = {
            "path": path,
            "kind": kind,
            "library": {"version": library_version(), "path": library_path, "simd": simd_path()},
            "collections": [_info(t) for t in targets],
        }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    cols = report["collections"]
    assert isinstance(cols, list)
    what = "ChromaDB client directory, %d collection(s)" % len(cols) if kind == "chroma" else "collection"
    click.echo("%s: %s" % (path, what))
    click.echo("library %s, SIMD path %s" % (library_version(), simd_path()))
    for c in cols:
        click.echo("")
        if kind == "chroma":
            click.echo(c["name"])
        for label, key, fmt in _INFO_ROWS:
            if c.get(key) is not None or key == "dim":
                click.echo("  %-16s %s" % (label, fmt(c[key])))


# ---------------------------------------------------------------- maintenance


def _engine_call(t: Target, quiet: bool, stop: Interrupt, label: str, call: Callable[[], None]) -> None:
    with EngineBars(stop, bars_enabled(quiet), label).attach(t.db):
        call()


@cli.command()
@_PATH
@_collection_option
@_quiet_option
@_reported
def verify(path: str, name: Optional[str], quiet: bool) -> None:
    """Check every checksum of the collection's files (exit status 1 if damaged)."""
    damaged: List[str] = []
    try:
        with open_targets(path, name, write=False, one=False) as targets, Interrupt() as stop:
            for t in targets:
                if stop.requested:
                    raise Interrupted("\n".join(damaged + ["interrupted: verify stopped before %s (nothing is changed by verify)" % t.name]))
                try:
                    _engine_call(t, quiet, stop, t.name, t.db.verify)
                except CanceledError:
                    raise Interrupted("interrupted: verify of %s stopped (nothing is changed by verify)" % t.name) from None
                except (CorruptError, FormatVersionError) as e:
                    damaged.append("%s: damaged: %s" % (t.name, e))
                else:
                    click.echo("%s: sound (%d rows)" % (t.name, t.db.count()))
                # a call shorter than the handler's report interval never sees Ctrl-C
                if stop.requested:
                    raise Interrupted("\n".join(damaged + ["interrupted: after verifying %s (nothing is changed by verify)" % t.name]))
    except (CorruptError, FormatVersionError) as e:  # found while opening
        raise CliError("damaged: %s" % e) from None
    if damaged:
        raise CliError("\n".join(damaged))


@cli.command()
@_PATH
@_collection_option
@_quiet_option
@_reported
def checkpoint(path: str, name: Optional[str], quiet: bool) -> None:
    """Write a snapshot and empty the log (persist)."""
    with open_targets(path, name, write=True, one=False) as targets, Interrupt() as stop:
        for t in targets:
            if stop.requested:
                raise Interrupted("interrupted: checkpoint stopped before %s; every write is kept" % t.name)
            try:
                _engine_call(t, quiet, stop, t.name, t.db.persist)
            except CanceledError:
                raise Interrupted("interrupted: checkpoint of %s canceled; its log still holds every write" % t.name) from None
            click.echo("%s: checkpointed (log %s)" % (t.name, _size(t.db.stats().log_bytes)))
            # a call shorter than the handler's report interval never sees Ctrl-C
            if stop.requested:
                raise Interrupted("interrupted: after the checkpoint of %s; every write is kept" % t.name)


@cli.command()
@_PATH
@_collection_option
@_quiet_option
@_reported
def compact(path: str, name: Optional[str], quiet: bool) -> None:
    """Rewrite the collection without the space of deleted rows."""
    with open_targets(path, name, write=True, one=False) as targets, Interrupt() as stop:
        for t in targets:
            if stop.requested:
                raise Interrupted("interrupted: compaction stopped before %s, which is as it was" % t.name)
            before = t.db.stats().disk_bytes
            try:
                _engine_call(t, quiet, stop, t.name, t.db.compact)
            except CanceledError:
                raise Interrupted("interrupted: compaction of %s canceled; the collection is as it was" % t.name) from None
            click.echo("%s: compacted, %s -> %s on disk" % (t.name, _size(before), _size(t.db.stats().disk_bytes)))
            # a call shorter than the handler's report interval never sees Ctrl-C
            if stop.requested:
                raise Interrupted("interrupted: after the compaction of %s" % t.name)


# ---------------------------------------------------------------- import


def _target_exists(path: str, name: Optional[str]) -> bool:
    """Whether the collection to import into exists. A PATH that cannot take
    the import is refused here, before the file is read."""
    if is_client_dir(path):
        names = collection_names(path)
        if name is None:
            raise name_needed(path, names)
        return name in names
    if name is not None and os.path.exists(path) and (is_collection_dir(path) or os.listdir(path)):
        raise not_a_client_dir(path)
    return name is None and is_collection_dir(path)


class _IdCheck:
    """The checks of every id of the file the library makes when writing:
    non-empty, no NUL, at most MAX_ID_BYTES bytes of UTF-8, and unique across
    the whole file. Uniqueness keeps a 64-bit hash and the row number of each
    id (16 bytes a row, not the ids); equal hashes are confirmed by reading
    those rows' ids again."""

    def __init__(self, file: str) -> None:
        self._file = file
        self._hashes: List[npt.NDArray[np.uint64]] = []
        self._rows: List[npt.NDArray[np.int64]] = []

    def batch(self, ids: List[str], first: int) -> None:
        hashes = np.empty(len(ids), dtype=np.uint64)
        for i, id_ in enumerate(ids):
            where = "%s: row %d" % (self._file, first + i)
            try:
                b = id_.encode("utf-8")
            except UnicodeEncodeError:
                raise CliError("%s: id %r cannot be encoded as UTF-8" % (where, id_)) from None
            if not b:
                raise CliError("%s: the id is empty" % where)
            if b"\0" in b:
                raise CliError("%s: id %r holds a NUL character" % (where, id_))
            if len(b) > MAX_ID_BYTES:
                raise CliError("%s: the id is %d bytes of UTF-8; the limit is %d" % (where, len(b), MAX_ID_BYTES))
            hashes[i] = int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little")
        self._hashes.append(hashes)
        self._rows.append(np.arange(first, first + len(ids), dtype=np.int64))

    def finish(self, reader: Any, size: int) -> None:
        """Raises if two rows of the file have the same id."""
        if not self._hashes:
            return
        hashes, rows = np.concatenate(self._hashes), np.concatenate(self._rows)
        self._hashes, self._rows = [], []
        order = np.argsort(hashes, kind="stable")
        hashes, rows = hashes[order], rows[order]
        same = np.flatnonzero(hashes[1:] == hashes[:-1])
        if not len(same):
            return
        # rows whose hash another row has: read their ids to tell a repeat from a hash collision
        suspects = np.unique(np.concatenate([rows[same], rows[same + 1]]))
        wanted = set(suspects.tolist())
        ids: Dict[int, str] = {}
        first = 0
        for batch in reader.batches(size):
            for i in range(len(batch.ids)):
                if first + i in wanted:
                    ids[first + i] = batch.ids[i]
            first += len(batch.ids)
            if len(ids) == len(wanted):
                break
        seen: Dict[str, int] = {}
        for row in sorted(ids):
            id_ = ids[row]
            if id_ in seen:
                raise CliError("%s: rows %d and %d have the same id %r" % (self._file, seen[id_], row, id_))
            seen[id_] = row


def _check_batch(batch: Batch, t: Optional[Target], chroma: bool, dim: Optional[int], upsert: bool, file: str, first: int) -> None:
    """What can be checked of a batch (rows ``first``... of ``file``) before
    anything is written. ``chroma``: the target is, or will be, a collection
    of a ChromaDB client directory."""
    if dim is not None and batch.vectors.shape[1] != dim:
        raise CliError("%s: row %d has %d-d vectors, the collection %d-d" % (file, first, batch.vectors.shape[1], dim))
    if t is not None and not upsert and batch.ids:
        there = t.existing(batch.ids)
        if there:
            row = first + batch.ids.index(there[0])
            raise CliError(
                "%s: row %d: id %r exists in the collection already (%d rows of rows %d..%d do); use --upsert to overwrite"
                % (file, row, there[0], len(there), first, first + len(batch.ids) - 1)
            )
    if chroma:
        from ..chroma.validation import check_metadata_storable, validate_metadata

        for i, m in enumerate(batch.metadatas or ()):
            try:
                validate_metadata(m or None)
                check_metadata_storable([m or None], allow_none_values=False)
            except Exception as e:
                raise CliError("%s: row %d: %s" % (file, first + i, str(e).replace(" at index 0", ""))) from None
    elif batch.metadatas is not None or batch.documents is not None:
        from .target import _row_text

        for i in range(len(batch.ids)):
            try:
                _row_text(batch, i)
            except (CliError, ValueError) as e:
                raise CliError("%s: row %d: %s" % (file, first + i, e)) from None


def _prepass(reader: Any, file: str, t: Optional[Target], chroma: bool, size: int, upsert: bool, quiet: bool, stop: Interrupt) -> int:
    """Reads the whole file once, checking it: a bad file imports nothing."""
    dim = t.db.dim if t is not None else None
    rows = 0
    ids = _IdCheck(file)
    with RowProgress(not quiet, reader.rows, "checking %s" % os.path.basename(file)) as bar:
        for batch in reader.batches(size):
            if stop.requested:
                raise Interrupted("interrupted while checking %s: nothing imported" % file)
            if dim is None and len(batch.ids):
                dim = batch.vectors.shape[1]
            ids.batch(batch.ids, rows)
            _check_batch(batch, t, chroma, dim, upsert, file, rows)
            rows += len(batch.ids)
            bar.update(len(batch.ids))
        ids.finish(reader, size)
    if stop.requested:
        raise Interrupted("interrupted while checking %s: nothing imported" % file)
    return rows


def _write_all(reader: Any, file: str, t: Target, size: int, total: int, upsert: bool, quiet: bool, stop: Interrupt) -> int:
    done = 0
    with RowProgress(not quiet, total, "importing %s" % os.path.basename(file)) as bar:

        def on_progress(op: ProgressOp, step_done: int, step_total: int) -> bool:
            # the engine's steps of a long batch under the rows bar; Ctrl-C cancels the batch
            bar.step(op, step_done, step_total)
            return stop.requested

        t.db.set_progress_handler(on_progress)
        try:
            for batch in reader.batches(size):
                if stop.requested:
                    break
                try:
                    t.write(batch, upsert)
                except CanceledError:
                    break
                except (SvDBError, ValueError) as e:
                    raise CliError(
                        "rows %d..%d of %s were not imported: %s (the %d rows before them were)"
                        % (done, done + len(batch.ids) - 1, file, e, done)
                    ) from None
                done += len(batch.ids)
                bar.update(len(batch.ids))
        finally:
            t.db.set_progress_handler(None)
    if stop.requested:
        raise Interrupted(
            "interrupted: imported %d rows before the interrupt (of %d); the interrupted batch was not applied" % (done, total)
        )
    return done


@cli.command("import")
@_PATH
@click.argument("file", type=click.Path(dir_okay=False))
@_collection_option
@click.option("--metric", type=click.Choice(["l2", "cosine", "ip"]), help="Metric of a new collection (checked against an existing one).")
@click.option("--index", type=click.Choice(["flat", "hnsw"]), help="Index of a new plain collection (checked against an existing one).")
@click.option("--create/--no-create", default=True, show_default=True, help="Create the collection when missing.")
@click.option("--upsert", is_flag=True, help="Overwrite rows whose id exists (default: such a row is an error).")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH, show_default=True, help="Rows per atomic write.")
@click.option("--ids-from", type=click.Path(dir_okay=False), help="Ids, one a line, for .npy/.npz/.fvecs files.")
@click.option("--id-prefix", default="", help="Generated ids are PREFIX + row number (files without ids).")
@_quiet_option
@_reported
def import_(
    path: str,
    file: str,
    name: Optional[str],
    metric: Optional[str],
    index: Optional[str],
    create: bool,
    upsert: bool,
    batch_size: int,
    ids_from: Optional[str],
    id_prefix: str,
    quiet: bool,
) -> None:
    """Import FILE (.npy, .npz, .fvecs, .parquet, .jsonl) into PATH.

    The file is checked in full first, so a bad file imports nothing; rows are
    then written in atomic batches.
    """
    reader = open_reader(file, format_of(file), ids_from, id_prefix)
    exists = _target_exists(path, name)
    if not exists and not create:
        raise CliError("%s: no collection%s there (--no-create)" % (path, " %r" % name if name else ""))
    opts: Dict[str, Any] = {"metric": cast(Optional[Metric], metric), "index": cast(Optional[IndexType], index)}
    with Interrupt() as stop:
        if exists:
            with open_targets(path, name, write=True, one=True, **opts) as (t,):
                size = _batch_size(batch_size, t.collection is not None)
                total = _prepass(reader, file, t, t.collection is not None, size, upsert, quiet, stop)
                done = _write_all(reader, file, t, size, total, upsert, quiet, stop)
                count = t.db.count()
        else:
            # with --collection the new collection is one of a client directory
            # (_target_exists refused anything else): ChromaDB's checks apply
            size = _batch_size(batch_size, name is not None)
            total = _prepass(reader, file, None, name is not None, size, upsert, quiet, stop)
            with open_targets(path, name, write=True, one=True, create=True, **opts) as (t,):
                done = _write_all(reader, file, t, size, total, upsert, quiet, stop)
                count = t.db.count()
    click.echo("imported %d rows from %s into %s (%d rows now)" % (done, file, t.name, count))


def _batch_size(size: int, chroma: bool) -> int:
    """At most ChromaDB's largest batch for a client directory's collection."""
    if not chroma:
        return size
    from ..chroma.validation import MAX_BATCH_SIZE  # (imported only when needed)

    return min(size, MAX_BATCH_SIZE)


# ---------------------------------------------------------------- export


@cli.command("export")
@_PATH
@click.argument("file", type=click.Path(dir_okay=False))
@_collection_option
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH, show_default=True, help="Rows read at a time.")
@click.option("--ids-to", type=click.Path(dir_okay=False), help="Also write the ids, one a line (.npy/.fvecs).")
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
@_quiet_option
@_reported
def export(path: str, file: str, name: Optional[str], batch_size: int, ids_to: Optional[str], overwrite: bool, quiet: bool) -> None:
    """Export PATH's rows, in insertion order, to FILE (.npy, .npz, .fvecs, .parquet, .jsonl)."""
    fmt = format_of(file)
    for out in filter(None, (file, ids_to)):
        if os.path.exists(out) and not overwrite:
            raise CliError("%s exists; pass --overwrite to replace it" % out)
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise CliError("%s: directory %s does not exist" % (out, os.path.dirname(out) or folder))
    with open_targets(path, name, write=False, one=True) as (t,), Interrupt() as stop:
        ids = t.db.get_all_ids()
        writer = open_writer(file, fmt, t.db.dim or 0, max((len(i) for i in ids), default=1), ids_to)
        bar = RowProgress(not quiet, len(ids), "exporting to %s" % os.path.basename(file))
        done = 0
        try:
            for i in range(0, len(ids), batch_size):
                if stop.requested:
                    raise Interrupted("interrupted: nothing written (%s is left as it was)" % file)
                batch = t.read(ids[i : i + batch_size], with_rows=fmt not in VECTOR_ONLY)
                writer.write(batch)
                done += len(batch.ids)
                bar.update(len(batch.ids))
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
    click.echo("exported %d rows of %s to %s" % (done, t.name, file))


# ---------------------------------------------------------------- query


def _parse_vector(text: str) -> npt.NDArray[np.float32]:
    parts = [p for p in text.strip().strip("[]").replace(",", " ").split()]
    try:
        v = np.array([float(p) for p in parts], dtype=np.float32)
    except ValueError:
        raise CliError("--vector must be numbers separated by commas, e.g. \"0.1,0.2,0.3\"") from None
    if not len(v):
        raise CliError("--vector is empty")
    return v.reshape(1, -1)


def _parse_json(option: str, text: Optional[str]) -> Optional[Dict[str, Any]]:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise CliError("%s is not JSON: %s" % (option, e)) from None
    if not isinstance(value, dict):
        raise CliError("%s must be a JSON object" % option)
    return value


def _query_rows(file: str, rows: int) -> npt.NDArray[np.float32]:
    reader = open_reader(file, format_of(file))
    for batch in reader.batches(rows):
        return batch.vectors
    raise CliError("%s holds no rows" % file)


Hit = Dict[str, Any]


def _search(t: Target, queries: npt.NDArray[np.float32], k: int, where: Any, where_document: Any) -> List[List[Hit]]:
    if t.collection is not None:
        r = t.collection.query(
            query_embeddings=queries,
            n_results=k,
            where=where,
            where_document=where_document,
            include=["metadatas", "documents", "distances"],
        )
        dist, metas, docs = r["distances"] or [], r["metadatas"] or [], r["documents"] or []
        return [
            [{"id": i, "distance": float(d), "metadata": m, "document": doc} for i, d, m, doc in zip(ids, dist[q], metas[q], docs[q])]
            for q, ids in enumerate(r["ids"])
        ]
    out: List[List[Hit]] = []
    for q in queries:
        hits = t.db.search(q, k, where=where, where_document=where_document)
        rows = t.read([h[0] for h in hits], with_rows=True) if hits else Batch([], queries[:0])
        by_id = {i: (m, d) for i, m, d in zip(rows.ids, rows.metadatas or [], rows.documents or [])}
        out.append([{"id": i, "distance": d, "metadata": by_id.get(i, (None, None))[0], "document": by_id.get(i, (None, None))[1]} for i, d in hits])
    return out


def _short(text: Optional[str], width: int = 40) -> str:
    if text is None:
        return ""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@_PATH
@_collection_option
@click.option("--vector", "vector", metavar="V1,V2,...", help="The query vector.")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="Query with the first rows of a file.")
@click.option("--rows", type=click.IntRange(1), default=1, show_default=True, help="How many rows of --from to query with.")
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Nearest rows to return.")
@click.option("--where", metavar="JSON", help='A metadata filter, e.g. \'{"year": {"$gte": 2020}}\'.')
@click.option("--where-document", metavar="JSON", help='A document filter, e.g. \'{"$contains": "apple"}\'.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one list of hits per query.")
@_reported
def query(
    path: str,
    name: Optional[str],
    vector: Optional[str],
    from_file: Optional[str],
    rows: int,
    k: int,
    where: Optional[str],
    where_document: Optional[str],
    as_json: bool,
) -> None:
    """Find the K rows nearest to a vector (--vector) or to rows of a file (--from)."""
    if (vector is None) == (from_file is None):
        raise click.UsageError("give exactly one of --vector and --from")
    queries = _parse_vector(vector) if vector is not None else _query_rows(cast(str, from_file), rows)
    w, wd = _parse_json("--where", where), _parse_json("--where-document", where_document)
    with open_targets(path, name, write=False, one=True) as (t,):
        results = _search(t, queries, k, w, wd)
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
        return
    for q, hits in enumerate(results):
        if len(results) > 1:
            click.echo("query %d" % q)
        click.echo("%4s  %-24s %12s  %-40s %s" % ("rank", "id", "distance", "document", "metadata"))
        for r, h in enumerate(hits, 1):
            meta = json.dumps(h["metadata"], ensure_ascii=False) if h["metadata"] is not None else ""
            click.echo("%4d  %-24s %12.6g  %-40s %s" % (r, _short(h["id"], 24), h["distance"], _short(h["document"]), meta))
        if not hits:
            click.echo("  (no rows)")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``svdb`` console script."""
    try:
        rc = cli.main(args=list(argv) if argv is not None else None, prog_name="svdb", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)
