/* Format-1 snapshots, still read (the first checkpoint rewrites them as
 * format 2): live rows only, in insertion order, no link or code section,
 * and the graph encoded by svdb__hnsw_encode with row numbers. Read into
 * memory and checked completely at open. */
#include "legacy_v1.h"

#include "alloc.h"
#include "crc32c.h"
#include "error.h"
#include "mapfile.h"
#include "os.h"
#include "record.h"

#include <math.h>

/* `mapped`: the vector section through a map (compact storage), else NULL
 * and the vectors are already in the store's slots 0..count-1. */
static int load_rows(const char *path, svdb_store *s, const svdb_snap_header *h, const unsigned char *rec,
                     const float *mapped)
{
    uint64_t pos = 0, prev_seq = 0;
    for (uint64_t i = 0; i < h->count; i++) {
        if (h->rec_bytes - pos < 16) return svdb__snap_bad(path, "record section truncated");
        uint64_t seq = svdb__load64(rec + pos);
        uint32_t idlen = svdb__load32(rec + pos + 8), mlen = svdb__load32(rec + pos + 12);
        pos += 16;
        if ((i && seq <= prev_seq) || seq >= h->next_seq) return svdb__snap_bad(path, "row sequence numbers out of order");
        prev_seq = seq;
        const char *id, *meta;
        SVDB_TRY(svdb__snap_id_meta(path, rec, h->rec_bytes, &pos, idlen, mlen, (size_t)i, &id, &meta));
        if (svdb__store_find(s, id, idlen) != SVDB_NO_SLOT) return svdb__snap_bad(path, "duplicate id");
        const float *v = mapped ? mapped + i * h->dim : svdb__vec(svdb__store_view(s), (size_t)i);
        for (uint32_t d = 0; d < h->dim; d++)
            if (!isfinite(v[d])) return svdb__snap_bad(path, "vector holds NaN or Inf");
        char *blob;
        if (svdb__row_pack(id, idlen, meta, meta ? mlen : 0, &blob) != SVDB_OK)
            return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
        svdb__store_insert(s, blob, id, idlen, meta ? mlen : 0, v);
        svdb__store_set_seq(s, (uint32_t)i, seq);
    }
    if (pos != h->rec_bytes) return svdb__snap_bad(path, "trailing bytes in the record section");
    svdb__store_set_next_seq(s, h->next_seq);
    return SVDB_OK;
}

static int load_graph(int fd, const char *path, svdb_hnsw *g, const svdb_snap_header *h)
{
    unsigned char *buf = svdb__malloc((size_t)h->graph_bytes);
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
    int rc = svdb__pread_all(fd, buf, (size_t)h->graph_bytes, h->rec_offset + h->rec_bytes, path);
    if (rc == SVDB_OK && svdb__crc32c(0, buf, (size_t)h->graph_bytes) != h->graph_crc)
        rc = svdb__snap_bad(path, "graph section checksum mismatch");
    if (rc == SVDB_OK && svdb__hnsw_decode(g, buf, (size_t)h->graph_bytes, (size_t)h->count) != SVDB_OK)
        rc = svdb__fail(SVDB_ECORRUPT, "snapshot %s is corrupt: %s", path, svdb_errmsg());
    svdb__free(buf);
    return rc;
}

/* The vector section: into the store's slots 0..count-1, or for compact
 * storage left in a map of the file the store takes (*mapped, else NULL).
 * Its checksum is checked. */
static int load_vectors(int fd, const char *path, svdb_store *s, const svdb_snap_header *h, uint64_t size,
                        const float **mapped)
{
    uint32_t crc = 0;
    *mapped = NULL;
    if (svdb__store_compact(s) && h->count) {
        svdb_map m;
        SVDB_TRY(svdb__map_file(&m, fd, (size_t)size, SVDB_MAP_SHARED, "snapshot", path));
        *mapped = (const float *)(const void *)((const unsigned char *)svdb__map_base(&m) + h->vec_offset);
        svdb__store_take_map(s, &m); /* the originals live there from here on */
        crc = svdb__crc32c(0, *mapped, (size_t)h->vec_bytes);
    } else {
        /* Rows land in slots 0..count-1, so each chunk is read straight into place. */
        size_t per = svdb__chunk_rows(svdb__store_view(s));
        for (size_t c = 0; c * per < h->count; c++) {
            size_t rows = h->count - c * per < per ? (size_t)h->count - c * per : per;
            size_t bytes = rows * h->dim * sizeof(float);
            float *chunk = svdb__store_chunk(s, c);
            SVDB_TRY(svdb__pread_all(fd, chunk, bytes, h->vec_offset + (uint64_t)c * per * h->dim * 4, path));
            crc = svdb__crc32c(crc, chunk, bytes);
        }
    }
    return crc == h->vec_crc ? SVDB_OK : svdb__snap_bad(path, "vector section checksum mismatch");
}

static int load_body(int fd, const char *path, svdb_store *s, const svdb_snap_header *h, uint64_t size)
{
    SVDB_TRY(svdb__store_reserve(s, (size_t)h->count, 0));
    const float *mapped;
    SVDB_TRY(load_vectors(fd, path, s, h, size, &mapped));
    unsigned char *rec = svdb__malloc((size_t)h->rec_bytes);
    if (!rec) return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
    int rc = svdb__pread_all(fd, rec, (size_t)h->rec_bytes, h->rec_offset, path);
    if (rc == SVDB_OK && svdb__crc32c(0, rec, (size_t)h->rec_bytes) != h->rec_crc)
        rc = svdb__snap_bad(path, "record section checksum mismatch");
    if (rc == SVDB_OK) rc = load_rows(path, s, h, rec, mapped);
    svdb__free(rec);
    /* Encoding read every original; later reads are a few rows at a time.
     * Dropping the pages from this process leaves them to the page cache. */
    if (mapped) {
        const svdb_map *m = svdb__store_region(s);
        svdb__map_drop(m, 0, svdb__map_len(m));
        svdb__map_advise_random(m, 0, svdb__map_len(m));
    }
    return rc;
}

int svdb__legacy_v1_load(int fd, const char *path, svdb_store *s, svdb_hnsw **g, const svdb_snap_header *h,
                         uint64_t size, const svdb_hnsw_params *hp)
{
    SVDB_TRY(load_body(fd, path, s, h, size));
    if (h->index != SVDB_INDEX_HNSW) return SVDB_OK;
    SVDB_TRY(svdb__hnsw_create(g, hp));
    return load_graph(fd, path, *g, h);
}
