/* The format-1 snapshot reader (docs/format.md, "Version 1"), and what it
 * shares with snapshot.c, which checks the header of both formats (one
 * field table) and calls svdb__legacy_v1_load for a format-1 body. Private
 * to snapshot.c and legacy_v1.c. */
#ifndef SVDB_LEGACY_V1_H
#define SVDB_LEGACY_V1_H

#include "hnsw.h"
#include "store.h"

#include <stdint.h>
#include <string.h>

/* A snapshot header as read and checked (field by field in snapshot.c's
 * table). For format 1, snapshot.c derives the fields it lacks: live =
 * count, empty link and code sections between the vectors and records. */
typedef struct svdb_snap_header {
    uint32_t version, hbytes;
    uint64_t uuid, last_lsn, next_seq, count;
    uint32_t dim, metric;
    uint64_t vec_offset, vec_bytes, rec_offset, rec_bytes;
    uint32_t vec_crc, rec_crc;
    uint32_t index, m, ef_construction, ef_search;
    uint64_t graph_bytes;
    uint32_t graph_crc;
    uint64_t seed;
    uint32_t storage; /* 0 in files from before the field: read as f32 */
    /* format 2: level-0 link blocks (HNSW), compact codes, and the rows in use */
    uint32_t l0_crc, codes_crc;
    uint64_t l0_offset, l0_bytes, live, codes_offset, codes_bytes;
} svdb_snap_header;

/* Little-endian fields (the library runs on little-endian hosts only). */
static inline uint64_t svdb__load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t svdb__load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* SVDB_ECORRUPT: "snapshot <path> is corrupt: <what>". */
int svdb__snap_bad(const char *path, const char *what);
/* A record's id and metadata at rec + *pos, their lengths read before:
 * checked, and *pos moved past them. *meta is NULL when the row has none. */
int svdb__snap_id_meta(const char *path, const unsigned char *rec, uint64_t rec_bytes, uint64_t *pos, uint32_t idlen,
                       uint32_t mlen, size_t row, const char **id, const char **meta);

/* Reads the body of the format-1 snapshot `fd` (size bytes, header h
 * checked) into the store, initialised for h; for HNSW also the graph,
 * created here with `hp` (*g). The vectors are read into memory, except a
 * compact store's originals, which stay in a shared map of the file that
 * the store takes. Everything is checked before this returns. On failure the
 * caller frees the store and *g. */
int svdb__legacy_v1_load(int fd, const char *path, svdb_store *s, svdb_hnsw **g, const svdb_snap_header *h,
                         uint64_t size, const svdb_hnsw_params *hp);

#endif
