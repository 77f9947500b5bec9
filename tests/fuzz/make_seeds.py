"""Writes seed corpora for the fuzz targets from real collections.

Usage: python3 make_seeds.py LIBSVDB_SO OUT_DIR
"""
import ctypes
import os
import shutil
import struct
import sys
import tempfile


def main() -> None:
    lib = ctypes.CDLL(sys.argv[1])
    out = sys.argv[2]
    c_char_pp = ctypes.POINTER(ctypes.c_char_p)

    class OpenOptions(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint), ("dim", ctypes.c_uint32), ("metric", ctypes.c_int),
                    ("durability", ctypes.c_int), ("create", ctypes.c_int), ("index", ctypes.c_int),
                    ("hnsw_m", ctypes.c_uint32), ("hnsw_ef_construction", ctypes.c_uint32),
                    ("hnsw_ef_search", ctypes.c_uint32), ("seed", ctypes.c_uint64),
                    ("build_threads", ctypes.c_uint32), ("background_indexing", ctypes.c_int),
                    ("storage", ctypes.c_int)]

    def collection(rows: int, dim: int, deletes: int, persist_after: int, index: int = 0,
                   storage: int = 0) -> tuple[bytes, bytes]:
        d = tempfile.mkdtemp()
        db = ctypes.c_void_p()
        opts = OpenOptions()
        assert lib.svdb_open_options_init(ctypes.byref(opts), 2) == 0
        opts.index, opts.storage, opts.hnsw_m, opts.build_threads = index, storage, 4, 1
        assert lib.svdb_open(ctypes.byref(db), os.path.join(d, "c").encode(), ctypes.byref(opts)) == 0
        for i in range(rows):
            ids = (ctypes.c_char_p * 1)(f"id{i}".encode())
            vec = (ctypes.c_float * dim)(*[float((i * 7 + j) % 11) for j in range(dim)])
            metas = (ctypes.c_char_p * 1)(f'{{"i": {i}, "tag": "t{i % 3}"}}'.encode() if i % 2 else None)
            assert lib.svdb_add_batch(db, ctypes.c_size_t(1), ctypes.cast(ids, c_char_pp), vec,
                                      ctypes.c_uint32(dim), ctypes.cast(metas, c_char_pp)) == 0
            if i + 1 == persist_after:
                assert lib.svdb_persist(db) == 0
        for i in range(deletes):
            ids = (ctypes.c_char_p * 1)(f"id{i}".encode())
            assert lib.svdb_delete(db, ctypes.c_size_t(1), ctypes.cast(ids, c_char_pp), None) == 0
        # Read the files while the handle is open so the log is not checkpointed away.
        with open(os.path.join(d, "c", "snapshot.svdb"), "rb") as f:
            snap = f.read()
        with open(os.path.join(d, "c", "wal.svdb"), "rb") as f:
            wal = f.read()
        lib.svdb_close(db)
        shutil.rmtree(d)
        return snap, wal

    os.makedirs(os.path.join(out, "fuzz_open"), exist_ok=True)
    # index 2 = HNSW (level-0 link section); storage 3 = int8. Seeds named
    # v1-seed* are of snapshot format 1, kept for its reader.
    for n, (rows, dim, dels, pa, index, storage) in enumerate([
            (0, 3, 0, 0, 0, 0), (3, 3, 1, 0, 0, 0), (6, 5, 2, 3, 0, 0), (4, 2, 0, 4, 0, 0),
            (12, 3, 3, 12, 2, 0), (20, 4, 6, 10, 2, 0), (9, 4, 2, 9, 2, 3)]):
        snap, wal = collection(rows, dim, dels, pa, index, storage)
        # Trim the snapshot's zero padding so inputs stay small: the fuzzer
        # still learns the real header, and a short file is a case too.
        split = len(snap)
        blob = struct.pack(">H", split % 65536) + snap + wal
        with open(os.path.join(out, "fuzz_open", f"seed{n}"), "wb") as f:
            f.write(blob)
    os.makedirs(os.path.join(out, "fuzz_wal"), exist_ok=True)
    put = struct.pack("<IIQ", 4, 0, 1) + struct.pack("<4f", 1, 2, 3, 4) + struct.pack("<II", 2, 7) + b"id" + b'{"a":1}'
    dele = struct.pack("<Q", 1) + struct.pack("<I", 2) + b"id"
    for n, recs in enumerate([[(1, put)], [(1, put), (2, dele)], [(1, put), (1, put)]]):
        blob = b"".join(struct.pack("<BH", t, len(p)) + p for t, p in recs) + b"\x00"
        with open(os.path.join(out, "fuzz_wal", f"seed{n}"), "wb") as f:
            f.write(blob)
    os.makedirs(os.path.join(out, "fuzz_meta"), exist_ok=True)
    for n, text in enumerate([b'{"a": 1}', b'{"a": [1, 2, {"b": null}]}', b"[1]", b'{"a": "\\u00e9"}', b"{}"]):
        with open(os.path.join(out, "fuzz_meta", f"seed{n}"), "wb") as f:
            f.write(text)
    os.makedirs(os.path.join(out, "fuzz_api"), exist_ok=True)
    for n, ops in enumerate([bytes([0, 9, 0, 12, 3, 1, 6, 0]), bytes([0, 3, 2, 3, 4, 0, 5, 0, 6, 0]),
                             bytes([1, 20, 1, 21, 0, 22, 5, 0, 2, 20, 3, 4, 6, 0])]):
        with open(os.path.join(out, "fuzz_api", f"seed{n}"), "wb") as f:
            f.write(ops)


if __name__ == "__main__":
    main()
