/* Snapshot file format (little-endian; docs/format.md has the full layout).
 * Format 2, written here:
 *   header (4096 bytes): magic "SVDBSNAP", u32 version, u32 header bytes,
 *     u64 uuid, u64 last_lsn, u64 next_seq, u64 count (slots), u32 dim,
 *     u32 metric, u64 vec_offset, u64 vec_bytes, u64 rec_offset, u64 rec_bytes,
 *     u32 vec_crc, u32 rec_crc, u32 index, u32 hnsw_m, u32 ef_construction,
 *     u32 ef_search, u64 graph_bytes, u32 graph_crc, u32 crc32c(bytes 0..123);
 *     then u64 seed, u32 storage, u32 l0_crc, u64 l0_offset, u64 l0_bytes,
 *     u64 live, u64 codes_offset, u64 codes_bytes, u32 codes_crc, zeros,
 *     u32 crc32c(bytes 128..251)
 *   vectors: count * dim f32 at a page-aligned offset, slot i at row i
 *   level-0 links (HNSW): count blocks of (2m + 1) u32, the graph's own layout
 *   codes (compact storage): count rows of the store's codes, its own layout
 *   records: per slot u64 seq, u32 id_len (0: free), u32 meta_len
 *     (0xFFFFFFFF = none), id, meta
 *   graph (HNSW): see svdb__hnsw_upper_encode
 * Format 1 (still read): live rows only, in insertion order, no link
 * section; the graph encoded by svdb__hnsw_encode with row numbers. */
#include "snapshot.h"

#include "alloc.h"
#include "crc32c.h"
#include "error.h"
#include "fileio.h"
#include "meta.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_VERSION 2 /* written; 1 is still read */
#define SNAP_NAME "snapshot.svdb"
#define SNAP_TMP "snapshot.svdb.tmp"
static const char snap_magic[8] = {'S', 'V', 'D', 'B', 'S', 'N', 'A', 'P'};

typedef struct snap_header {
    uint64_t uuid, last_lsn, next_seq, count;
    uint32_t dim, metric;
    uint64_t vec_offset, vec_bytes, rec_offset, rec_bytes;
    uint32_t vec_crc, rec_crc;
    uint32_t index, m, ef_construction, ef_search;
    uint64_t graph_bytes;
    uint32_t graph_crc;
    uint64_t seed;
    uint32_t storage; /* 0 in files from before the field: f32 */
    uint32_t version;
    /* format 2: level-0 link blocks (HNSW), and the rows in use */
    uint32_t l0_crc, codes_crc;
    uint64_t l0_offset, l0_bytes, live, codes_offset, codes_bytes;
} snap_header;

static void encode_header(unsigned char *h, const snap_header *x)
{
    uint32_t version = SNAP_VERSION, hbytes = SVDB_SNAPSHOT_HEADER_BYTES;
    memset(h, 0, SVDB_SNAPSHOT_HEADER_BYTES);
    memcpy(h, snap_magic, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &hbytes, 4);
    memcpy(h + 16, &x->uuid, 8);
    memcpy(h + 24, &x->last_lsn, 8);
    memcpy(h + 32, &x->next_seq, 8);
    memcpy(h + 40, &x->count, 8);
    memcpy(h + 48, &x->dim, 4);
    memcpy(h + 52, &x->metric, 4);
    memcpy(h + 56, &x->vec_offset, 8);
    memcpy(h + 64, &x->vec_bytes, 8);
    memcpy(h + 72, &x->rec_offset, 8);
    memcpy(h + 80, &x->rec_bytes, 8);
    memcpy(h + 88, &x->vec_crc, 4);
    memcpy(h + 92, &x->rec_crc, 4);
    memcpy(h + 96, &x->index, 4);
    memcpy(h + 100, &x->m, 4);
    memcpy(h + 104, &x->ef_construction, 4);
    memcpy(h + 108, &x->ef_search, 4);
    memcpy(h + 112, &x->graph_bytes, 8);
    memcpy(h + 120, &x->graph_crc, 4);
    uint32_t crc = svdb__crc32c(0, h, 124);
    memcpy(h + 124, &crc, 4);
    memcpy(h + 128, &x->seed, 8);
    memcpy(h + 136, &x->storage, 4);
    memcpy(h + 140, &x->l0_crc, 4);
    memcpy(h + 144, &x->l0_offset, 8);
    memcpy(h + 152, &x->l0_bytes, 8);
    memcpy(h + 160, &x->live, 8);
    memcpy(h + 168, &x->codes_offset, 8);
    memcpy(h + 176, &x->codes_bytes, 8);
    memcpy(h + 184, &x->codes_crc, 4);
    crc = svdb__crc32c(0, h + 128, 124);
    memcpy(h + 252, &crc, 4);
}

/* Buffered sequential writer with a running CRC of the current section. */
typedef struct {
    int fd;
    const char *path;
    unsigned char *buf;
    size_t used, cap;
    uint64_t off;
    uint32_t crc;
} writer;

static int flush(writer *w)
{
    if (!w->used) return SVDB_OK;
    SVDB_TRY(svdb__pwrite_all(w->fd, w->buf, w->used, w->off, w->path));
    w->off += w->used;
    w->used = 0;
    return SVDB_OK;
}

static int emit(writer *w, const void *p, size_t n)
{
    w->crc = svdb__crc32c(w->crc, p, n);
    const unsigned char *c = p;
    while (n) {
        if (w->used == w->cap) SVDB_TRY(flush(w));
        size_t take = w->cap - w->used < n ? w->cap - w->used : n;
        memcpy(w->buf + w->used, c, take);
        w->used += take;
        c += take;
        n -= take;
    }
    return SVDB_OK;
}

/* Format 2: every slot in place, a free one as zeros and an empty record,
 * so that a load maps the vectors and level-0 links instead of reading
 * them, and a checkpoint can point a running store at the new file. Once
 * more than a quarter of the slots are free the live rows are written
 * packed instead (order/to_row), so that deletes give disk space back. */
static int write_body(writer *w, const svdb_store *s, const svdb_hnsw *g, const uint32_t *order,
                      const uint32_t *to_row, snap_header *h)
{
    size_t rows = order ? s->n_live : s->n_slots;
    size_t row_bytes = (size_t)s->dim * sizeof(float), bw = g ? svdb__hnsw_l0_block_bytes(g) : 0;
    size_t upper = g ? svdb__hnsw_upper_size(g, order, rows) : 0;
    size_t scratch_bytes = row_bytes > bw ? row_bytes : bw;
    scratch_bytes = scratch_bytes > s->row_floats * sizeof(float) ? scratch_bytes : s->row_floats * sizeof(float);
    scratch_bytes = scratch_bytes > upper ? scratch_bytes : upper;
    /* zeros: a free slot's vector; then a level-0 block; then the upper levels */
    unsigned char *scratch = svdb__calloc(1, scratch_bytes + 1);
    if (!scratch) return svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
    int rc = SVDB_OK;
    h->count = rows;
    h->live = s->n_live;
    h->vec_offset = SVDB_SNAPSHOT_HEADER_BYTES;
    w->off = h->vec_offset;
    w->crc = 0;
#define SLOT(i) (order ? order[i] : (uint32_t)(i))
    for (size_t i = 0; i < rows && rc == SVDB_OK; i++)
        rc = emit(w, svdb__row_live(svdb__row(s, SLOT(i))) ? (const void *)svdb__vec(s, SLOT(i)) : scratch, row_bytes);
    if (rc == SVDB_OK) rc = flush(w);
    h->vec_crc = w->crc;
    h->vec_bytes = w->off - h->vec_offset;
    h->l0_offset = w->off;
    w->crc = 0;
    for (size_t i = 0; g && i < rows && rc == SVDB_OK; i++) {
        svdb__hnsw_l0_block(g, SLOT(i), to_row, (uint32_t *)(void *)scratch);
        rc = emit(w, scratch, bw);
    }
    if (rc == SVDB_OK) rc = flush(w);
    h->l0_crc = w->crc;
    h->l0_bytes = w->off - h->l0_offset;
    /* Compact storage: the codes too, so open need not encode every row. */
    h->codes_offset = w->off;
    w->crc = 0;
    size_t code_bytes = s->row_floats * sizeof(float);
    for (size_t i = 0; s->ck && i < rows && rc == SVDB_OK; i++)
        rc = emit(w, svdb__row_live(svdb__row(s, SLOT(i))) ? (const void *)svdb__graph_row(s, SLOT(i)) : scratch,
                  code_bytes);
    if (rc == SVDB_OK) rc = flush(w);
    h->codes_crc = w->crc;
    h->codes_bytes = w->off - h->codes_offset;
    h->rec_offset = w->off;
    w->crc = 0;
    for (size_t i = 0; i < rows && rc == SVDB_OK; i++) {
        const svdb_row *r = svdb__row(s, SLOT(i));
        uint64_t seq = svdb__row_live(r) ? r->seq : 0;
        uint32_t mlen = r->meta_len ? r->meta_len : SVDB_NO_META;
        rc = emit(w, &seq, 8);
        if (rc == SVDB_OK) rc = emit(w, &r->id_len, 4);
        if (rc == SVDB_OK) rc = emit(w, &mlen, 4);
        if (rc == SVDB_OK && r->id_len) rc = emit(w, svdb__row_id(r), r->id_len);
        if (rc == SVDB_OK && r->meta_len) rc = emit(w, svdb__row_meta(r), r->meta_len);
    }
    if (rc == SVDB_OK) rc = flush(w);
    h->rec_crc = w->crc;
    h->rec_bytes = w->off - h->rec_offset;
    if (g && rc == SVDB_OK) {
        svdb__hnsw_upper_encode(g, order, to_row, rows, scratch);
        w->crc = 0;
        rc = emit(w, scratch, upper);
        if (rc == SVDB_OK) rc = flush(w);
        h->graph_crc = w->crc;
        h->graph_bytes = upper;
    }
    if (rc == SVDB_OK) {
        unsigned char *hb = svdb__malloc(SVDB_SNAPSHOT_HEADER_BYTES);
        if (!hb) rc = svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
        if (rc == SVDB_OK) {
            encode_header(hb, h);
            rc = svdb__pwrite_all(w->fd, hb, SVDB_SNAPSHOT_HEADER_BYTES, 0, w->path);
        }
        svdb__free(hb);
    }
#undef SLOT
    svdb__free(scratch);
    if (rc == SVDB_OK) rc = svdb__fsync(w->fd, w->path);
    return rc;
}

int svdb__snapshot_write(const svdb_dir *dir, const svdb_store *s, const svdb_hnsw *g, const svdb_snap_info *info,
                         uint32_t **to_row_out)
{
    char *tmp = svdb__dir_file(dir, SNAP_TMP);
    writer w = {-1, tmp, NULL, 0, (size_t)1 << 20, 0, 0};
    uint32_t *order = NULL, *to_row = NULL;
    if (to_row_out) *to_row_out = NULL;
    int rc = !tmp ? svdb__fail(SVDB_ENOMEM, "out of memory") : SVDB_OK;
    if (rc == SVDB_OK && s->n_free * 4 > s->n_slots) {
        order = svdb__malloc((s->n_live ? s->n_live : 1) * sizeof *order);
        to_row = svdb__malloc(s->n_slots * sizeof *to_row);
        if (!order || !to_row) rc = svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
        for (size_t slot = 0, n = 0; rc == SVDB_OK && slot < s->n_slots; slot++) {
            to_row[slot] = svdb__row_live(svdb__row(s, slot)) ? (uint32_t)n : UINT32_MAX;
            if (to_row[slot] != UINT32_MAX) order[n++] = (uint32_t)slot;
        }
    }
    if (rc == SVDB_OK && !(w.buf = svdb__malloc(w.cap))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    /* A new file, never a link planted in its place (O_EXCL | O_NOFOLLOW). */
    if (rc == SVDB_OK) rc = svdb__file_create(dir, SNAP_TMP, &w.fd);
    if (rc == SVDB_OK) {
        snap_header h = {0};
        h.uuid = info->uuid;
        h.last_lsn = info->last_lsn;
        h.next_seq = s->next_seq;
        h.count = s->n_live;
        h.dim = s->dim;
        h.metric = (uint32_t)s->metric;
        h.index = (uint32_t)info->index;
        h.m = info->hnsw.m;
        h.ef_construction = info->hnsw.ef_construction;
        h.ef_search = info->hnsw.ef_search;
        h.seed = info->hnsw.seed;
        h.storage = (uint32_t)s->storage;
        rc = write_body(&w, s, g, order, to_row, &h);
    }
    int created = w.fd >= 0;
    if (w.fd >= 0) close(w.fd);
    if (rc == SVDB_OK) rc = svdb__file_rename(dir, SNAP_TMP, SNAP_NAME);
    if (rc == SVDB_OK) rc = svdb__dir_sync(dir);
    else if (created) unlinkat(dir->fd, SNAP_TMP, 0); /* ours; the old snapshot stays in place */
    svdb__free(w.buf);
    svdb__free(order);
    if (rc == SVDB_OK && to_row_out) *to_row_out = to_row;
    else svdb__free(to_row);
    svdb__free(tmp);
    return rc;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int bad(const char *path, const char *what) { return svdb__fail(SVDB_ECORRUPT, "snapshot %s is corrupt: %s", path, what); }

/* Every field is checked against the file size before anything is allocated. */
static int check_header(const char *path, const unsigned char *b, uint64_t size, snap_header *h)
{
    if (memcmp(b, snap_magic, 8) != 0) return bad(path, "not an svdb snapshot (bad magic)");
    if (get32(b + 124) != svdb__crc32c(0, b, 124)) return bad(path, "header checksum mismatch");
    h->version = get32(b + 8);
    if (h->version != 1 && h->version != SNAP_VERSION)
        return svdb__fail(SVDB_EVERSION, "snapshot %s has format version %u; this library reads 1 to %u", path,
                          h->version, SNAP_VERSION);
    if (get32(b + 12) != SVDB_SNAPSHOT_HEADER_BYTES) return bad(path, "unexpected header size");
    h->uuid = get64(b + 16);
    h->last_lsn = get64(b + 24);
    h->next_seq = get64(b + 32);
    h->count = get64(b + 40);
    h->dim = get32(b + 48);
    h->metric = get32(b + 52);
    h->vec_offset = get64(b + 56);
    h->vec_bytes = get64(b + 64);
    h->rec_offset = get64(b + 72);
    h->rec_bytes = get64(b + 80);
    h->vec_crc = get32(b + 88);
    h->rec_crc = get32(b + 92);
    h->index = get32(b + 96);
    h->m = get32(b + 100);
    h->ef_construction = get32(b + 104);
    h->ef_search = get32(b + 108);
    h->graph_bytes = get64(b + 112);
    h->graph_crc = get32(b + 120);
    if (get32(b + 252) != svdb__crc32c(0, b + 128, 124)) return bad(path, "second header block checksum mismatch");
    h->seed = get64(b + 128);
    h->storage = get32(b + 136);
    if (h->storage == 0) h->storage = SVDB_STORAGE_F32;
    if (h->storage > SVDB_STORAGE_INT8) return bad(path, "unknown storage type");
    if (h->storage != SVDB_STORAGE_F32 && h->index != SVDB_INDEX_HNSW) return bad(path, "compact storage in a flat collection");
    if (h->index != SVDB_INDEX_FLAT && h->index != SVDB_INDEX_HNSW) return bad(path, "unknown index type");
    if (h->index == SVDB_INDEX_HNSW && (h->m < 2 || h->m > 64 || h->ef_construction == 0 || h->ef_search == 0 ||
                                        h->ef_construction > 100000 || h->ef_search > 100000))
        return bad(path, "HNSW parameters out of range");
    if (h->index == SVDB_INDEX_FLAT && h->graph_bytes != 0) return bad(path, "graph section in a flat collection");
    if (h->dim > SVDB_MAX_DIM) return bad(path, "dimension out of range");
    if (h->metric < SVDB_METRIC_L2 || h->metric > SVDB_METRIC_IP) return bad(path, "unknown metric");
    if (h->count && !h->dim) return bad(path, "rows without a dimension");
    /* Format 1 holds live rows only; format 2 every slot, a free one in 16 bytes. */
    uint64_t min_rec = h->version == 1 ? 17 : 16;
    if (h->count > UINT32_MAX - 1 || h->count > size / min_rec) return bad(path, "row count does not fit the file");
    if (h->vec_offset != SVDB_SNAPSHOT_HEADER_BYTES) return bad(path, "unexpected vector offset");
    if (h->vec_bytes != h->count * h->dim * 4) return bad(path, "vector section size does not match count and dim");
    if (h->version == 1) {
        h->live = h->count;
        h->l0_offset = h->vec_offset + h->vec_bytes;
        h->l0_bytes = 0;
        h->codes_offset = h->l0_offset;
        h->codes_bytes = 0;
    } else {
        h->l0_crc = get32(b + 140);
        h->l0_offset = get64(b + 144);
        h->l0_bytes = get64(b + 152);
        h->live = get64(b + 160);
        h->codes_offset = get64(b + 168);
        h->codes_bytes = get64(b + 176);
        h->codes_crc = get32(b + 184);
        uint64_t l0 = h->index == SVDB_INDEX_HNSW ? h->count * (2 * (uint64_t)h->m + 1) * 4 : 0;
        if (h->l0_offset != h->vec_offset + h->vec_bytes || h->l0_bytes != l0)
            return bad(path, "link section does not match count and M");
        if (h->live > h->count) return bad(path, "more rows in use than rows");
        uint64_t codes = h->storage == SVDB_STORAGE_F32 ? 0 : h->count * svdb__code_bytes((int)h->storage, h->dim);
        if (h->codes_offset != h->l0_offset + h->l0_bytes || h->codes_bytes != codes)
            return bad(path, "code section does not match count, dim and storage");
        if (h->index == SVDB_INDEX_HNSW && h->graph_bytes < 8 + h->count)
            return bad(path, "graph section too small for the row count");
    }
    if (h->rec_offset != h->codes_offset + h->codes_bytes || h->rec_offset > size || h->rec_bytes > size - h->rec_offset ||
        h->graph_bytes != size - h->rec_offset - h->rec_bytes)
        return bad(path, "section sizes do not match the file size");
    if (h->rec_bytes < h->count * min_rec) return bad(path, "record section too small for the row count");
    if (h->next_seq < h->live) return bad(path, "sequence counter behind the row count");
    return SVDB_OK;
}

/* A record's id and metadata at rec + *pos, their lengths read before:
 * checked, and *pos moved past them. *meta is NULL when the row has none. */
static int read_id_meta(const char *path, const unsigned char *rec, uint64_t rec_bytes, uint64_t *pos, uint32_t idlen,
                        uint32_t mlen, size_t row, const char **id, const char **meta)
{
    if (idlen == 0 || idlen > SVDB_MAX_ID_BYTES || idlen > rec_bytes - *pos) return bad(path, "id length out of range");
    *id = (const char *)rec + *pos;
    *pos += idlen;
    if (svdb__utf8_check(*id, idlen) != SVDB_OK) return bad(path, "id is not valid UTF-8");
    *meta = NULL;
    if (mlen != SVDB_NO_META) {
        if (mlen > SVDB_MAX_METADATA_BYTES || mlen > rec_bytes - *pos) return bad(path, "metadata length out of range");
        *meta = (const char *)rec + *pos;
        *pos += mlen;
        if (svdb__meta_check(*meta, mlen, row) != SVDB_OK) return bad(path, "metadata is not a JSON object");
    }
    return SVDB_OK;
}

/* `mapped`: the vector section through a map (compact storage), else NULL
 * and the vectors are already in the store's slots 0..count-1. */
static int load_rows(const char *path, svdb_store *s, const snap_header *h, const unsigned char *rec, const float *mapped)
{
    uint64_t pos = 0, prev_seq = 0;
    for (uint64_t i = 0; i < h->count; i++) {
        if (h->rec_bytes - pos < 16) return bad(path, "record section truncated");
        uint64_t seq = get64(rec + pos);
        uint32_t idlen = get32(rec + pos + 8), mlen = get32(rec + pos + 12);
        pos += 16;
        if ((i && seq <= prev_seq) || seq >= h->next_seq) return bad(path, "row sequence numbers out of order");
        prev_seq = seq;
        const char *id, *meta;
        SVDB_TRY(read_id_meta(path, rec, h->rec_bytes, &pos, idlen, mlen, (size_t)i, &id, &meta));
        if (svdb__store_find(s, id, idlen) != SVDB_NO_SLOT) return bad(path, "duplicate id");
        const float *v = mapped ? mapped + i * h->dim : svdb__vec(s, (size_t)i);
        for (uint32_t d = 0; d < h->dim; d++)
            if (!isfinite(v[d])) return bad(path, "vector holds NaN or Inf");
        char *blob;
        if (svdb__row_pack(id, idlen, meta, meta ? mlen : 0, &blob) != SVDB_OK)
            return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
        svdb__store_insert(s, blob, id, idlen, meta ? mlen : 0, v);
        svdb__row(s, (size_t)i)->seq = seq;
    }
    if (pos != h->rec_bytes) return bad(path, "trailing bytes in the record section");
    s->next_seq = h->next_seq;
    return SVDB_OK;
}

static int load_graph(int fd, const char *path, svdb_hnsw *g, const snap_header *h)
{
    unsigned char *buf = svdb__malloc((size_t)h->graph_bytes);
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
    int rc = svdb__pread_all(fd, buf, (size_t)h->graph_bytes, h->rec_offset + h->rec_bytes, path);
    if (rc == SVDB_OK && svdb__crc32c(0, buf, (size_t)h->graph_bytes) != h->graph_crc)
        rc = bad(path, "graph section checksum mismatch");
    if (rc == SVDB_OK && svdb__hnsw_decode(g, buf, (size_t)h->graph_bytes, (size_t)h->count) != SVDB_OK)
        rc = svdb__fail(SVDB_ECORRUPT, "snapshot %s is corrupt: %s", path, svdb_errmsg());
    svdb__free(buf);
    return rc;
}

static int load_body(int fd, const char *path, svdb_store *s, const snap_header *h, uint64_t size)
{
    SVDB_TRY(svdb__store_reserve(s, (size_t)h->count, 0));
    uint32_t crc = 0;
    const float *mapped = NULL;
    if (s->ck && h->count) {
        /* Compact storage: the originals stay in the file, mapped; the store
         * owns the map from here (freed with it). */
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) return svdb__fail_errno(SVDB_ENOMEM, errno, "cannot map snapshot %s", path);
        s->snap_map = m;
        s->snap_map_len = (size_t)size;
        mapped = (const float *)(const void *)((const unsigned char *)m + h->vec_offset);
        crc = svdb__crc32c(0, mapped, (size_t)h->vec_bytes);
    } else {
        /* Rows land in slots 0..count-1, so each chunk is read straight into place. */
        size_t per = svdb__chunk_rows(s);
        for (size_t c = 0; c * per < h->count; c++) {
            size_t rows = h->count - c * per < per ? (size_t)h->count - c * per : per;
            size_t bytes = rows * h->dim * sizeof(float);
            SVDB_TRY(svdb__pread_all(fd, s->vec[c], bytes, h->vec_offset + (uint64_t)c * per * h->dim * 4, path));
            crc = svdb__crc32c(crc, s->vec[c], bytes);
        }
    }
    if (crc != h->vec_crc) return bad(path, "vector section checksum mismatch");
    unsigned char *rec = svdb__malloc((size_t)h->rec_bytes);
    if (!rec) return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
    int rc = svdb__pread_all(fd, rec, (size_t)h->rec_bytes, h->rec_offset, path);
    if (rc == SVDB_OK && svdb__crc32c(0, rec, (size_t)h->rec_bytes) != h->rec_crc)
        rc = bad(path, "record section checksum mismatch");
    if (rc == SVDB_OK) rc = load_rows(path, s, h, rec, mapped);
    svdb__free(rec);
    /* Encoding read every original; later reads are a few rows at a time.
     * Dropping the pages from this process leaves them to the page cache. */
    if (mapped) {
        madvise(s->snap_map, s->snap_map_len, MADV_DONTNEED);
        madvise(s->snap_map, s->snap_map_len, MADV_RANDOM);
    }
    return rc;
}

/* ------------------------------------------------------------ format 2 */

size_t svdb__snapshot_defer_bytes = (size_t)64 << 20;

/* Parses every record: rows go to their slots, and each live one's slot and
 * id hash to hs (at most h->live of them). */
static int load_records(const char *path, svdb_store *s, const snap_header *h, const unsigned char *rec,
                        const float *vecs, svdb_hashed_slot *hs, uint64_t *pos_out, uint64_t *live_out)
{
    uint64_t pos = 0, live = 0;
    s->n_slots = (size_t)h->count; /* so a failure part way frees the rows loaded */
    for (uint64_t i = 0; i < h->count; i++) {
        if (h->rec_bytes - pos < 16) return bad(path, "record section truncated");
        uint64_t seq = get64(rec + pos);
        uint32_t idlen = get32(rec + pos + 8), mlen = get32(rec + pos + 12);
        pos += 16;
        if (idlen == 0) {
            if (seq != 0 || mlen != SVDB_NO_META) return bad(path, "free slot with a sequence number or metadata");
            svdb__store_load_free(s, (uint32_t)i);
            continue;
        }
        if (live == h->live) return bad(path, "rows in use do not match the header");
        if (seq >= h->next_seq) return bad(path, "row sequence number beyond the counter");
        const char *id, *meta;
        SVDB_TRY(read_id_meta(path, rec, h->rec_bytes, &pos, idlen, mlen, (size_t)i, &id, &meta));
        char *blob;
        if (svdb__row_pack(id, idlen, meta, meta ? mlen : 0, &blob) != SVDB_OK)
            return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
        svdb__store_load_row(s, (uint32_t)i, blob, id, idlen, meta ? mlen : 0, seq, vecs + i * h->dim);
        hs[live].hash = svdb__hash(id, idlen);
        hs[live].slot = (uint32_t)i;
        live++;
    }
    if (live != h->live) return bad(path, "rows in use do not match the header");
    *pos_out = pos;
    *live_out = live;
    return SVDB_OK;
}

/* Rows in slot order: a free slot is seq 0, id length 0, no metadata. */
static int load_rows_v2(const char *path, svdb_store *s, const snap_header *h, const unsigned char *map)
{
    const unsigned char *rec = map + h->rec_offset;
    const float *vecs = (const float *)(const void *)(map + h->vec_offset);
    uint64_t pos = 0, live = 0;
    svdb_hashed_slot *hs = svdb__malloc((h->live ? (size_t)h->live : 1) * sizeof *hs);
    if (!hs) return svdb__fail(SVDB_ENOMEM, "out of memory loading %s", path);
    int rc = load_records(path, s, h, rec, vecs, hs, &pos, &live);
    if (rc == SVDB_OK && pos != h->rec_bytes) rc = bad(path, "trailing bytes in the record section");
    if (rc == SVDB_OK && svdb__store_load_finish(s, (size_t)h->count, hs, (size_t)live) != SVDB_NO_SLOT)
        rc = bad(path, "duplicate id");
    svdb__free(hs);
    s->next_seq = h->next_seq;
    return rc;
}

struct svdb_snap_check {
    int fd;
    char *path;
    uint64_t vec_offset, vec_bytes, l0_offset, l0_bytes, codes_offset, codes_bytes;
    uint32_t vec_crc, l0_crc, codes_crc;
};

void svdb__snapshot_check_free(svdb_snap_check *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    svdb__free(c->path);
    svdb__free(c);
}

/* Whether any of n floats is NaN or infinite (all exponent bits set). */
static uint32_t any_nonfinite(const unsigned char *p, size_t n)
{
    uint32_t bad = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i ex = _mm_set1_epi32(0x7f800000);
    __m128i acc = _mm_setzero_si128();
    for (; i + 4 <= n; i += 4) {
        __m128i x = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 4 * i)), ex);
        acc = _mm_or_si128(acc, _mm_cmpeq_epi32(x, ex));
    }
    bad = (uint32_t)(_mm_movemask_epi8(acc) != 0);
#endif
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad;
}

/* CRC of [off, off + len) of the file, read a block at a time; with
 * `finite`, also whether every 4-byte float in it is finite. */
static int crc_range(const svdb_snap_check *c, uint64_t off, uint64_t len, int finite, uint32_t *crc_out,
                     const int *stop, unsigned char *buf, size_t cap)
{
    uint32_t crc = 0, nonfinite = 0;
    while (len) {
        if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) return -1;
        size_t take = len < cap ? (size_t)len : cap;
        SVDB_TRY(svdb__pread_all(c->fd, buf, take, off, c->path));
        crc = svdb__crc32c(crc, buf, take);
        if (finite) nonfinite |= any_nonfinite(buf, take / 4);
        off += take;
        len -= take;
    }
    if (nonfinite) return bad(c->path, "vector holds NaN or Inf");
    *crc_out = crc;
    return SVDB_OK;
}

int svdb__snapshot_check(const svdb_snap_check *c, const int *stop)
{
    size_t cap = (size_t)1 << 20;
    unsigned char *buf = svdb__malloc(cap);
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory checking snapshot %s", c->path);
    uint32_t crc = 0;
    int rc = crc_range(c, c->vec_offset, c->vec_bytes, 1, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != c->vec_crc) rc = bad(c->path, "vector section checksum mismatch");
    if (rc == SVDB_OK) rc = crc_range(c, c->l0_offset, c->l0_bytes, 0, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != c->l0_crc) rc = bad(c->path, "link section checksum mismatch");
    if (rc == SVDB_OK) rc = crc_range(c, c->codes_offset, c->codes_bytes, 0, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != c->codes_crc) rc = bad(c->path, "code section checksum mismatch");
    svdb__free(buf);
    return rc;
}

#define PARALLEL_LOAD_ROWS 65536

typedef struct graph_job {
    svdb_hnsw *g;
    const unsigned char *upper;
    size_t upper_len;
    const uint32_t *blocks;
    size_t n;
    void *map;
    size_t map_len;
    int rc;
    char msg[256];
} graph_job;

static void *graph_main(void *arg)
{
    graph_job *j = arg;
    j->rc = svdb__hnsw_load_mapped(j->g, j->upper, j->upper_len, j->blocks, j->n, j->map, j->map_len);
    if (j->rc != SVDB_OK) snprintf(j->msg, sizeof j->msg, "%s", svdb_errmsg()); /* the message is per thread */
    return NULL;
}

static int load_v2(int fd, const char *path, svdb_store *s, svdb_hnsw **g, const snap_header *h, uint64_t size,
                   const svdb_hnsw_params *hp, svdb_snap_check **deferred)
{
    /* Private and writable: a write to a row copies its page, the file
     * stays as it is (it is only ever replaced, never written in place). */
    void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) return svdb__fail_errno(SVDB_ENOMEM, errno, "cannot map snapshot %s", path);
    s->snap_map = m;
    s->snap_map_len = (size_t)size;
    const unsigned char *map = m;
    SVDB_TRY(svdb__store_reserve(s, (size_t)h->count, (size_t)(h->count - h->live)));
    svdb__store_map_rows(s, (size_t)h->count, s->ck ? h->codes_offset : h->vec_offset);
    if (svdb__crc32c(0, map + h->rec_offset, (size_t)h->rec_bytes) != h->rec_crc)
        return bad(path, "record section checksum mismatch");
    if (h->index == SVDB_INDEX_HNSW &&
        svdb__crc32c(0, map + h->rec_offset + h->rec_bytes, (size_t)h->graph_bytes) != h->graph_crc)
        return bad(path, "graph section checksum mismatch");
    /* The graph loads on a second thread while this one reads the rows: a
     * million rows take about as long for each. */
    graph_job job = {NULL, map + h->rec_offset + h->rec_bytes, (size_t)h->graph_bytes,
                     (const uint32_t *)(const void *)(map + h->l0_offset), (size_t)h->count, m, (size_t)size,
                     SVDB_OK, ""};
    pthread_t tid;
    int threaded = 0;
    if (h->index == SVDB_INDEX_HNSW) {
        SVDB_TRY(svdb__hnsw_create(g, hp));
        job.g = *g;
        threaded = h->count >= PARALLEL_LOAD_ROWS && pthread_create(&tid, NULL, graph_main, &job) == 0;
    }
    int rc = load_rows_v2(path, s, h, map);
    if (threaded) pthread_join(tid, NULL);
    else if (h->index == SVDB_INDEX_HNSW && rc == SVDB_OK) graph_main(&job);
    SVDB_TRY(rc);
    if (job.rc != SVDB_OK)
        return job.rc == SVDB_ENOMEM ? svdb__fail(SVDB_ENOMEM, "%s", job.msg)
                                     : svdb__fail(SVDB_ECORRUPT, "snapshot %s is corrupt: %s", path, job.msg);
    /* The records and graph section were copied out: their pages need not
     * stay in this process (never written, so nothing is lost). */
    uint64_t copied = (h->rec_offset + 4095) & ~(uint64_t)4095;
    if (copied < size) madvise((unsigned char *)m + copied, (size_t)(size - copied), MADV_DONTNEED);
    if (s->ck) /* originals are read a few rows at a time: no read-ahead there */
        madvise(m, (size_t)(h->vec_offset + h->vec_bytes) & ~(size_t)4095, MADV_RANDOM);
    if (h->index == SVDB_INDEX_HNSW) {
        /* Live rows must be in the graph or waiting for it; free slots never are. */
        for (size_t i = 0; i < h->count; i++)
            if (!svdb__row_live(svdb__row(s, i)) && svdb__hnsw_level_of(*g, (uint32_t)i) != SVDB_HNSW_NO_LEVEL)
                return bad(path, "free slot in the graph");
    }
    /* The vectors and level-0 links are checked (checksums, finite values)
     * from the file itself: now when small, else on the caller's thread
     * after open returns, so a large collection opens without reading them. */
    svdb_snap_check *c = svdb__calloc(1, sizeof *c);
    if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory");
    c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* an exec'd child must not inherit it */
    c->path = svdb__strndup(path, strlen(path));
    c->vec_offset = h->vec_offset;
    c->vec_bytes = h->vec_bytes;
    c->vec_crc = h->vec_crc;
    c->l0_offset = h->l0_offset;
    c->l0_bytes = h->l0_bytes;
    c->l0_crc = h->l0_crc;
    c->codes_offset = h->codes_offset;
    c->codes_bytes = h->codes_bytes;
    c->codes_crc = h->codes_crc;
    if (c->fd < 0 || !c->path) {
        svdb__snapshot_check_free(c);
        return svdb__fail(SVDB_ENOMEM, "out of resources checking snapshot %s", path);
    }
    if (h->vec_bytes + h->l0_bytes + h->codes_bytes >= svdb__snapshot_defer_bytes) {
        *deferred = c;
        return SVDB_OK;
    }
    rc = svdb__snapshot_check(c, NULL);
    svdb__snapshot_check_free(c);
    return rc;
}

int svdb__snapshot_map(const svdb_dir *dir, svdb_snap_map *out)
{
    char *path = svdb__dir_file(dir, SNAP_NAME);
    if (!path) return svdb__fail(SVDB_ENOMEM, "out of memory");
    int fd;
    int rc = svdb__file_open(dir, SNAP_NAME, O_RDONLY, &fd);
    if (rc == SVDB_ENOTFOUND) rc = svdb__fail(SVDB_ECORRUPT, "snapshot %s vanished right after it was written", path);
    struct stat st;
    if (rc == SVDB_OK && fstat(fd, &st) != 0) rc = svdb__fail_errno(SVDB_EIO, errno, "cannot stat %s", path);
    if (rc == SVDB_OK) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = svdb__fail_errno(SVDB_ENOMEM, errno, "cannot map snapshot %s", path);
        } else {
            /* written by this process a moment ago: the header is trusted */
            const unsigned char *b = m;
            out->map = m;
            out->len = (size_t)st.st_size;
            out->rows = (size_t)get64(b + 40);
            out->vec_offset = get64(b + 56);
            out->l0_offset = get64(b + 144);
            out->codes_offset = get64(b + 168);
        }
    }
    if (fd >= 0) close(fd);
    svdb__free(path);
    return rc;
}

int svdb__snapshot_load(const svdb_dir *dir, svdb_store *s, svdb_hnsw **g, svdb_snap_info *info,
                        const svdb_kernels *k, svdb_snap_check **deferred)
{
    *g = NULL;
    *deferred = NULL;
    char *path = svdb__dir_file(dir, SNAP_NAME);
    if (!path) return svdb__fail(SVDB_ENOMEM, "out of memory");
    int fd;
    int rc = svdb__file_open(dir, SNAP_NAME, O_RDONLY, &fd);
    if (rc != SVDB_OK) {
        if (rc == SVDB_ENOTFOUND) rc = svdb__fail(SVDB_ECORRUPT, "snapshot %s is missing", path);
        svdb__free(path);
        return rc;
    }
    struct stat st;
    unsigned char hb[256];
    snap_header h = {0};
    if (fstat(fd, &st) != 0) rc = svdb__fail_errno(SVDB_EIO, errno, "cannot stat %s", path);
    else if (!S_ISREG(st.st_mode)) rc = bad(path, "not a regular file");
    else if ((uint64_t)st.st_size < SVDB_SNAPSHOT_HEADER_BYTES) rc = bad(path, "file shorter than its header");
    if (rc == SVDB_OK) rc = svdb__pread_all(fd, hb, sizeof hb, 0, path);
    if (rc == SVDB_OK) rc = check_header(path, hb, (uint64_t)st.st_size, &h);
    svdb_hnsw_params hp = {h.m, h.ef_construction, h.ef_search, h.seed};
    if (rc == SVDB_OK) {
        svdb__store_init(s, h.dim, (int)h.metric);
        svdb__store_set_storage(s, (int)h.storage, k);
        if (h.version == 1) {
            rc = load_body(fd, path, s, &h, (uint64_t)st.st_size);
            if (rc == SVDB_OK && h.index == SVDB_INDEX_HNSW) {
                rc = svdb__hnsw_create(g, &hp);
                if (rc == SVDB_OK) rc = load_graph(fd, path, *g, &h);
            }
        } else {
            rc = load_v2(fd, path, s, g, &h, (uint64_t)st.st_size, &hp, deferred);
        }
        if (rc != SVDB_OK) {
            svdb__snapshot_check_free(*deferred);
            *deferred = NULL;
            svdb__store_free(s);
            svdb__hnsw_free(*g);
            *g = NULL;
        }
    }
    close(fd);
    svdb__free(path);
    if (rc == SVDB_OK) {
        info->uuid = h.uuid;
        info->last_lsn = h.last_lsn;
        info->index = (int)h.index;
        info->storage = (int)h.storage;
        info->hnsw = hp;
    }
    return rc;
}
