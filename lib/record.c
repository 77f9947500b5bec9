/* Encoding of log payloads.
 * PUT:    u32 dim, u32 reserved, u64 n, n*dim f32, then per row
 *         u32 id_len, u32 meta_len (0xFFFFFFFF = none), id bytes, meta bytes.
 * DELETE: u64 n, then per row u32 id_len, id bytes.
 * LINKS:  u64 put_lsn, u64 n, then per row u32 slot, u32 seq (low 32 bits),
 *         u32 level, and per level 0..level u32 count, then count pairs of
 *         u32 slot, u32 seq (low 32 bits). */
#include "record.h"

#include "alloc.h"
#include "error.h"
#include "idmap.h"
#include "meta.h"

#include <math.h>
#include <string.h>

/* Version-2 logs pad payloads with zeros to a multiple of 4 bytes, so every
 * record (and the vectors in a put) starts 4-byte aligned in the log, and a
 * compact-storage collection can use the vectors in place through a map.
 * Readers accept the padding in either version. */
#define PADDED(n) (((n) + 3) & ~(size_t)3)

int svdb__batch_alloc(svdb_batch *b, size_t n, int with_meta)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->ids = svdb__calloc(n, sizeof *b->ids);
    b->id_lens = svdb__calloc(n, sizeof *b->id_lens);
    if (with_meta) {
        b->metas = svdb__calloc(n, sizeof *b->metas);
        b->meta_lens = svdb__calloc(n, sizeof *b->meta_lens);
    }
    if (!b->ids || !b->id_lens || (with_meta && (!b->metas || !b->meta_lens))) {
        svdb__batch_free(b);
        return svdb__fail(SVDB_ENOMEM, "out of memory for a batch of %zu rows", n);
    }
    return SVDB_OK;
}

void svdb__batch_free(svdb_batch *b)
{
    svdb__free((void *)b->ids);
    svdb__free(b->id_lens);
    svdb__free((void *)b->metas);
    svdb__free(b->meta_lens);
    memset(b, 0, sizeof *b);
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
    return p + 4;
}
static unsigned char *put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

size_t svdb__put_size(const svdb_batch *b, int pad)
{
    size_t s = 16 + b->n * (size_t)b->dim * sizeof(float) + b->n * 8;
    for (size_t i = 0; i < b->n; i++) s += b->id_lens[i] + (b->metas[i] ? b->meta_lens[i] : 0);
    return pad ? PADDED(s) : s;
}

void svdb__put_encode(const svdb_batch *b, unsigned char *p, int pad)
{
    const unsigned char *end = p + svdb__put_size(b, pad);
    p = put32(p, b->dim);
    p = put32(p, 0);
    p = put64(p, b->n);
    size_t vbytes = b->n * (size_t)b->dim * sizeof(float);
    memcpy(p, b->vectors, vbytes);
    p += vbytes;
    for (size_t i = 0; i < b->n; i++) {
        p = put32(p, b->id_lens[i]);
        p = put32(p, b->metas[i] ? b->meta_lens[i] : SVDB_NO_META);
        memcpy(p, b->ids[i], b->id_lens[i]);
        p += b->id_lens[i];
        if (b->metas[i]) {
            memcpy(p, b->metas[i], b->meta_lens[i]);
            p += b->meta_lens[i];
        }
    }
    memset(p, 0, (size_t)(end - p));
}

size_t svdb__delete_size(const svdb_batch *b, int pad)
{
    size_t s = 8 + b->n * 4;
    for (size_t i = 0; i < b->n; i++) s += b->id_lens[i];
    return pad ? PADDED(s) : s;
}

void svdb__delete_encode(const svdb_batch *b, unsigned char *p, int pad)
{
    const unsigned char *end = p + svdb__delete_size(b, pad);
    p = put64(p, b->n);
    for (size_t i = 0; i < b->n; i++) {
        p = put32(p, b->id_lens[i]);
        memcpy(p, b->ids[i], b->id_lens[i]);
        p += b->id_lens[i];
    }
    memset(p, 0, (size_t)(end - p));
}

/* A bounds-checked reader over a payload. */
typedef struct {
    const unsigned char *p;
    size_t left;
} reader;

/* What may follow the last row: up to 3 zero bytes of padding. */
static int only_padding(const reader *r)
{
    if (r->left > 3) return 0;
    for (size_t i = 0; i < r->left; i++)
        if (r->p[i]) return 0;
    return 1;
}

static int take(reader *r, void *dst, size_t n)
{
    if (n > r->left) return 0;
    if (dst) memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 1;
}

static int corrupt(const char *what) { return svdb__fail(SVDB_ECORRUPT, "log record is corrupt: %s", what); }

static int read_id(reader *r, svdb_batch *b, size_t i)
{
    uint32_t len;
    if (!take(r, &len, 4)) return corrupt("truncated id length");
    if (len == 0 || len > SVDB_MAX_ID_BYTES) return corrupt("id length out of range");
    b->ids[i] = (const char *)r->p;
    b->id_lens[i] = len;
    if (!take(r, NULL, len)) return corrupt("truncated id");
    if (svdb__utf8_check(b->ids[i], len) != SVDB_OK) return corrupt("id is not valid UTF-8");
    return SVDB_OK;
}

int svdb__put_decode(const unsigned char *p, size_t len, svdb_batch *b, float **vec_copy)
{
    reader r = {p, len};
    uint32_t dim, reserved;
    uint64_t n;
    *vec_copy = NULL;
    if (!take(&r, &dim, 4) || !take(&r, &reserved, 4) || !take(&r, &n, 8)) return corrupt("truncated put header");
    if (dim == 0 || dim > SVDB_MAX_DIM) return corrupt("dimension out of range");
    /* Each row needs at least its vector and 9 bytes of id framing. */
    if (n == 0 || n > len / ((uint64_t)dim * 4 + 9)) return corrupt("row count does not fit the record");
    size_t vbytes = (size_t)n * dim * sizeof(float);
    float *v = svdb__malloc(vbytes);
    if (!v) return svdb__fail(SVDB_ENOMEM, "out of memory replaying the log");
    take(&r, v, vbytes); /* fits: checked above */
    for (size_t i = 0; i < vbytes / sizeof(float); i++)
        if (!isfinite(v[i])) {
            svdb__free(v);
            return corrupt("vector holds NaN or Inf");
        }
    int rc = svdb__batch_alloc(b, (size_t)n, 1);
    if (rc != SVDB_OK) {
        svdb__free(v);
        return rc;
    }
    b->dim = dim;
    b->vectors = v;
    for (size_t i = 0; i < n && rc == SVDB_OK; i++) {
        uint32_t idlen, mlen;
        if (!take(&r, &idlen, 4) || !take(&r, &mlen, 4)) {
            rc = corrupt("truncated row header");
            break;
        }
        if (idlen == 0 || idlen > SVDB_MAX_ID_BYTES) {
            rc = corrupt("id length out of range");
            break;
        }
        b->ids[i] = (const char *)r.p;
        b->id_lens[i] = idlen;
        if (!take(&r, NULL, idlen)) {
            rc = corrupt("truncated id");
            break;
        }
        if (svdb__utf8_check(b->ids[i], idlen) != SVDB_OK) {
            rc = corrupt("id is not valid UTF-8");
            break;
        }
        if (mlen != SVDB_NO_META) {
            b->metas[i] = (const char *)r.p;
            b->meta_lens[i] = mlen;
            if (mlen > SVDB_MAX_METADATA_BYTES || !take(&r, NULL, mlen)) {
                rc = corrupt("metadata length out of range");
                break;
            }
            if (svdb__meta_check(b->metas[i], mlen, i) != SVDB_OK) rc = corrupt("metadata is not a JSON object");
        }
    }
    if (rc == SVDB_OK && !only_padding(&r)) rc = corrupt("trailing bytes after the last row");
    if (rc != SVDB_OK) {
        svdb__batch_free(b);
        svdb__free(v);
        return rc;
    }
    *vec_copy = v;
    return SVDB_OK;
}

int svdb__delete_decode(const unsigned char *p, size_t len, svdb_batch *b)
{
    reader r = {p, len};
    uint64_t n;
    if (!take(&r, &n, 8)) return corrupt("truncated delete header");
    if (n == 0 || n > len / 5) return corrupt("row count does not fit the record");
    SVDB_TRY(svdb__batch_alloc(b, (size_t)n, 0));
    int rc = SVDB_OK;
    for (size_t i = 0; i < n && rc == SVDB_OK; i++) rc = read_id(&r, b, i);
    if (rc == SVDB_OK && !only_padding(&r)) rc = corrupt("trailing bytes after the last id");
    if (rc != SVDB_OK) svdb__batch_free(b);
    return rc;
}

/* ---------------------------------------------------------------- links */

size_t svdb__links_size(size_t n_rows, size_t n_lists, size_t n_links)
{
    return 16 + n_rows * 12 + n_lists * 4 + n_links * 8;
}

unsigned char *svdb__links_put_header(unsigned char *out, uint64_t put_lsn, uint64_t n)
{
    return put64(put64(out, put_lsn), n);
}

unsigned char *svdb__links_put_row(unsigned char *out, uint32_t slot, uint32_t seq, uint32_t level)
{
    return put32(put32(put32(out, slot), seq), level);
}

unsigned char *svdb__links_put_list(unsigned char *out, uint32_t count, const uint32_t *slots, const uint32_t *seqs)
{
    out = put32(out, count);
    for (uint32_t i = 0; i < count; i++) out = put32(put32(out, slots[i]), seqs[i]);
    return out;
}

int svdb__links_check(const unsigned char *p, size_t len, uint64_t *put_lsn, uint64_t *n)
{
    reader r = {p, len};
    if (!take(&r, put_lsn, 8) || !take(&r, n, 8)) return corrupt("truncated links header");
    if (*n == 0 || *n > len / 16) return corrupt("links row count does not fit the record");
    for (uint64_t i = 0; i < *n; i++) {
        uint32_t row[3];
        if (!take(&r, row, 12)) return corrupt("truncated links row");
        if (row[2] > SVDB_LINKS_MAX_LEVEL) return corrupt("links level out of range");
        for (uint32_t l = 0; l <= row[2]; l++) {
            uint32_t count;
            if (!take(&r, &count, 4)) return corrupt("truncated link list");
            if (count > 2 * SVDB_MAX_HNSW_M || !take(&r, NULL, (size_t)count * 8)) return corrupt("link list length out of range");
        }
    }
    if (r.left) return corrupt("trailing bytes after the last row's links");
    return SVDB_OK;
}

const unsigned char *svdb__links_row(const unsigned char *at, uint32_t *slot, uint32_t *seq, uint32_t *level)
{
    memcpy(slot, at, 4);
    memcpy(seq, at + 4, 4);
    memcpy(level, at + 8, 4);
    return at + 12;
}

const unsigned char *svdb__links_list(const unsigned char *at, uint32_t *count, const unsigned char **pairs)
{
    memcpy(count, at, 4);
    *pairs = at + 4;
    return at + 4 + (size_t)*count * 8;
}
