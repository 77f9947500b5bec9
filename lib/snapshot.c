/* Snapshot file format (little-endian; docs/format.md has the full layout).
 * Format 2, written here:
 *   header (4096 bytes): the fields of header_fields below, in two blocks
 *     each closed by its crc32c (bytes 0..123 at 124, 128..251 at 252)
 *   vectors: count * dim f32 at a page-aligned offset, slot i at row i
 *   level-0 links (HNSW): count blocks of (2m + 1) u32, the graph's own layout
 *   codes (compact storage): count rows of the store's codes, its own layout
 *   records: per slot u64 seq, u32 id_len (0: free), u32 meta_len
 *     (0xFFFFFFFF = none), id, meta
 *   graph (HNSW): see svdb__hnsw_upper_encode
 * Format 1 (still read, by legacy_v1.c): live rows only, in insertion
 * order, no link section; the graph encoded by svdb__hnsw_encode. */
#include "snapshot.h"

#include "alloc.h"
#include "crc32c.h"
#include "error.h"
#include "legacy_v1.h"
#include "mapfile.h"
#include "meta.h"
#include "os.h"
#include "record.h"

#include <fcntl.h>
#include <pthread.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SNAP_VERSION 2 /* written; 1 is still read */
#define SNAP_NAME "snapshot.svdb"
#define SNAP_TMP "snapshot.svdb.tmp"
static const char snap_magic[8] = {'S', 'V', 'D', 'B', 'S', 'N', 'A', 'P'};

/* ------------------------------------------------------------ the header */

/* Every header field, once: where it lives, since which format, and the
 * plain range a sound file keeps it in (what != NULL). Encode, check and map
 * all go through this table; checks that relate fields to each other or to
 * the file size follow in check_fields and check_sections. The version row
 * comes first: decode reads it before the rows that depend on it. */
typedef struct hfield {
    uint16_t off;    /* in the file */
    uint16_t member; /* in svdb_snap_header; its size is the width on disk */
    uint8_t width, since;
    uint64_t lo, hi;
    const char *what;
} hfield;

#define MEMBER(name) offsetof(svdb_snap_header, name), sizeof(((svdb_snap_header *)0)->name)
#define FIELD(name, off, since) {off, MEMBER(name), since, 0, 0, NULL}
#define RANGED(name, off, lo, hi, what) {off, MEMBER(name), 1, lo, hi, what}
static const hfield header_fields[] = {
    FIELD(version, 8, 1),
    RANGED(hbytes, 12, SVDB_SNAPSHOT_HEADER_BYTES, SVDB_SNAPSHOT_HEADER_BYTES, "unexpected header size"),
    FIELD(uuid, 16, 1),
    FIELD(last_lsn, 24, 1),
    FIELD(next_seq, 32, 1),
    FIELD(count, 40, 1),
    RANGED(dim, 48, 0, SVDB_MAX_DIM, "dimension out of range"),
    RANGED(metric, 52, SVDB_METRIC_L2, SVDB_METRIC_IP, "unknown metric"),
    RANGED(vec_offset, 56, SVDB_SNAPSHOT_HEADER_BYTES, SVDB_SNAPSHOT_HEADER_BYTES, "unexpected vector offset"),
    FIELD(vec_bytes, 64, 1),
    FIELD(rec_offset, 72, 1),
    FIELD(rec_bytes, 80, 1),
    FIELD(vec_crc, 88, 1),
    FIELD(rec_crc, 92, 1),
    RANGED(index, 96, SVDB_INDEX_FLAT, SVDB_INDEX_HNSW, "unknown index type"),
    FIELD(m, 100, 1),
    FIELD(ef_construction, 104, 1),
    FIELD(ef_search, 108, 1),
    FIELD(graph_bytes, 112, 1),
    FIELD(graph_crc, 120, 1),
    /* crc32c of bytes 0..123 at 124 */
    FIELD(seed, 128, 1),
    RANGED(storage, 136, 0, SVDB_STORAGE_INT8, "unknown storage type"), /* 0: from before the field, f32 */
    FIELD(l0_crc, 140, 2),
    FIELD(l0_offset, 144, 2),
    FIELD(l0_bytes, 152, 2),
    FIELD(live, 160, 2),
    FIELD(codes_offset, 168, 2),
    FIELD(codes_bytes, 176, 2),
    FIELD(codes_crc, 184, 2),
    /* zeros; crc32c of bytes 128..251 at 252 */
};
#define N_FIELDS (sizeof header_fields / sizeof header_fields[0])
/* The two checksummed blocks: bytes [start, start + 124), crc32c at start + 124. */
static const size_t header_blocks[2] = {0, 128};
#define BLOCK_BYTES 124

static uint64_t field_get(const svdb_snap_header *h, const hfield *f)
{
    const unsigned char *p = (const unsigned char *)h + f->member;
    return f->width == 4 ? svdb__load32(p) : svdb__load64(p);
}

static void encode_header(unsigned char *b, const svdb_snap_header *x)
{
    svdb_snap_header h = *x;
    h.version = SNAP_VERSION;
    h.hbytes = SVDB_SNAPSHOT_HEADER_BYTES;
    memset(b, 0, SVDB_SNAPSHOT_HEADER_BYTES);
    memcpy(b, snap_magic, 8);
    for (size_t i = 0; i < N_FIELDS; i++)
        memcpy(b + header_fields[i].off, (const unsigned char *)&h + header_fields[i].member, header_fields[i].width);
    for (size_t i = 0; i < 2; i++) {
        uint32_t crc = svdb__crc32c(0, b + header_blocks[i], BLOCK_BYTES);
        memcpy(b + header_blocks[i] + BLOCK_BYTES, &crc, 4);
    }
}

/* Reads the version, then the fields that version has (h zeroed before). */
static void decode_header(const unsigned char *b, svdb_snap_header *h)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (i == 0 || header_fields[i].since <= h->version)
            memcpy((unsigned char *)h + header_fields[i].member, b + header_fields[i].off, header_fields[i].width);
}

static int block_ok(const unsigned char *b, size_t i)
{
    return svdb__load32(b + header_blocks[i] + BLOCK_BYTES) == svdb__crc32c(0, b + header_blocks[i], BLOCK_BYTES);
}

static int bad(const char *path, const char *what) { return svdb__fail(SVDB_ECORRUPT, "snapshot %s is corrupt: %s", path, what); }
int svdb__snap_bad(const char *path, const char *what) { return bad(path, what); }

/* Format 1 holds live rows only; format 2 every slot, a free one in 16 bytes. */
static uint64_t min_record(const svdb_snap_header *h) { return h->version == 1 ? 17 : 16; }

/* Fields against each other, and the row count against the file size. */
static int check_fields(const char *path, const svdb_snap_header *h, uint64_t size)
{
    if (h->storage != SVDB_STORAGE_F32 && h->index != SVDB_INDEX_HNSW) return bad(path, "compact storage in a flat collection");
    if (h->index == SVDB_INDEX_HNSW && (h->m < 2 || h->m > SVDB_MAX_HNSW_M || h->ef_construction == 0 || h->ef_search == 0 ||
                                        h->ef_construction > 100000 || h->ef_search > 100000))
        return bad(path, "HNSW parameters out of range");
    if (h->index == SVDB_INDEX_FLAT && h->graph_bytes != 0) return bad(path, "graph section in a flat collection");
    if (h->count && !h->dim) return bad(path, "rows without a dimension");
    if (h->count > UINT32_MAX - 1 || h->count > size / min_record(h)) return bad(path, "row count does not fit the file");
    if (h->vec_bytes != h->count * h->dim * 4) return bad(path, "vector section size does not match count and dim");
    return SVDB_OK;
}

/* The sections tile the file in order: vectors, links, codes, records,
 * graph. Format 1 has no link or code section: they are set empty here. */
static int check_sections(const char *path, svdb_snap_header *h, uint64_t size)
{
    if (h->version == 1) {
        h->live = h->count;
        h->l0_offset = h->vec_offset + h->vec_bytes;
        h->l0_bytes = 0;
        h->codes_offset = h->l0_offset;
        h->codes_bytes = 0;
    } else {
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
    if (h->rec_bytes < h->count * min_record(h)) return bad(path, "record section too small for the row count");
    if (h->next_seq < h->live) return bad(path, "sequence counter behind the row count");
    return SVDB_OK;
}

/* Every field is checked against the file size before anything is
 * allocated; h must be zeroed. */
static int check_header(const char *path, const unsigned char *b, uint64_t size, svdb_snap_header *h)
{
    if (memcmp(b, snap_magic, 8) != 0) return bad(path, "not an svdb snapshot (bad magic)");
    if (!block_ok(b, 0)) return bad(path, "header checksum mismatch");
    decode_header(b, h);
    if (h->version != 1 && h->version != SNAP_VERSION)
        return svdb__fail(SVDB_EVERSION, "snapshot %s has format version %u; this library reads 1 to %u", path,
                          h->version, SNAP_VERSION);
    if (!block_ok(b, 1)) return bad(path, "second header block checksum mismatch");
    for (size_t i = 0; i < N_FIELDS; i++) {
        const hfield *f = &header_fields[i];
        uint64_t v = field_get(h, f);
        if (f->what && (v < f->lo || v > f->hi)) return bad(path, f->what);
    }
    if (h->storage == 0) h->storage = SVDB_STORAGE_F32;
    SVDB_TRY(check_fields(path, h, size));
    return check_sections(path, h, size);
}

/* ------------------------------------------------------------ writing */

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

/* What the sections are written from: rows are slots, or with `order` the
 * live slots packed (to_row: each slot's row). */
typedef struct body {
    const svdb_store_view *s;
    const svdb_hnsw *g;
    const uint32_t *order, *to_row;
    size_t rows, upper;
    unsigned char *scratch; /* zeros: a free slot's vector; then a level-0 block; then the upper levels */
    svdb_progress *pr;      /* rows written, summed over the sections written row by row (or NULL) */
    uint64_t *done;
} body;

/* One more row written; nonzero (with the error set) when the progress
 * handler cancels the checkpoint. */
static int row_done(const body *b)
{
    if (!b->pr || !svdb__progress_tick(b->pr, ++*b->done)) return 0;
    svdb__progress_canceled(b->pr, "the checkpoint");
    return 1;
}

static uint32_t slot_of(const body *b, size_t row) { return b->order ? b->order[row] : (uint32_t)row; }

/* One fixed-size row per slot: a live row's `row`, a free slot's zeros. */
static int emit_rows(writer *w, const body *b, const float *(*row)(const svdb_store_view *, size_t), size_t bytes)
{
    for (size_t i = 0; i < b->rows; i++) {
        uint32_t slot = slot_of(b, i);
        SVDB_TRY(emit(w, svdb__row_live(svdb__row(b->s, slot)) ? (const void *)row(b->s, slot) : b->scratch, bytes));
        if (row_done(b)) return SVDB_ECANCELED;
    }
    return SVDB_OK;
}

static int emit_vectors(writer *w, const body *b) { return emit_rows(w, b, svdb__vec, (size_t)b->s->dim * sizeof(float)); }

static int emit_links(writer *w, const body *b)
{
    for (size_t i = 0; b->g && i < b->rows; i++) {
        svdb__hnsw_l0_block(b->g, slot_of(b, i), b->to_row, (uint32_t *)(void *)b->scratch);
        SVDB_TRY(emit(w, b->scratch, svdb__hnsw_l0_block_bytes(b->g)));
        if (row_done(b)) return SVDB_ECANCELED;
    }
    return SVDB_OK;
}

/* Compact storage: the codes too, so open need not encode every row. */
static int emit_codes(writer *w, const body *b)
{
    return b->s->ck ? emit_rows(w, b, svdb__graph_row, b->s->row_floats * sizeof(float)) : SVDB_OK;
}

static int emit_records(writer *w, const body *b)
{
    for (size_t i = 0; i < b->rows; i++) {
        const svdb_row *r = svdb__row(b->s, slot_of(b, i));
        uint64_t seq = svdb__row_live(r) ? r->seq : 0;
        uint32_t mlen = r->meta_len ? r->meta_len : SVDB_NO_META;
        SVDB_TRY(emit(w, &seq, 8));
        SVDB_TRY(emit(w, &r->id_len, 4));
        SVDB_TRY(emit(w, &mlen, 4));
        if (r->id_len) SVDB_TRY(emit(w, svdb__row_id(r), r->id_len));
        if (r->meta_len) SVDB_TRY(emit(w, svdb__row_meta(r), r->meta_len));
        if (row_done(b)) return SVDB_ECANCELED;
    }
    return SVDB_OK;
}

static int emit_graph(writer *w, const body *b)
{
    if (!b->g) return SVDB_OK;
    svdb__hnsw_upper_encode(b->g, b->order, b->to_row, b->rows, b->scratch);
    return emit(w, b->scratch, b->upper);
}

/* Writes one section where the last ended; its offset, size and CRC go to
 * the header. */
static int section(writer *w, const body *b, int (*fn)(writer *, const body *), uint64_t *off, uint64_t *bytes,
                   uint32_t *crc)
{
    *off = w->off;
    w->crc = 0;
    SVDB_TRY(fn(w, b));
    SVDB_TRY(flush(w));
    *bytes = w->off - *off;
    *crc = w->crc;
    return SVDB_OK;
}

static int write_sections(writer *w, const body *b, svdb_snap_header *h)
{
    uint64_t graph_off;
    w->off = SVDB_SNAPSHOT_HEADER_BYTES;
    SVDB_TRY(section(w, b, emit_vectors, &h->vec_offset, &h->vec_bytes, &h->vec_crc));
    SVDB_TRY(section(w, b, emit_links, &h->l0_offset, &h->l0_bytes, &h->l0_crc));
    SVDB_TRY(section(w, b, emit_codes, &h->codes_offset, &h->codes_bytes, &h->codes_crc));
    SVDB_TRY(section(w, b, emit_records, &h->rec_offset, &h->rec_bytes, &h->rec_crc));
    SVDB_TRY(section(w, b, emit_graph, &graph_off, &h->graph_bytes, &h->graph_crc));
    unsigned char *hb = svdb__malloc(SVDB_SNAPSHOT_HEADER_BYTES);
    if (!hb) return svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
    encode_header(hb, h);
    int rc = svdb__pwrite_all(w->fd, hb, SVDB_SNAPSHOT_HEADER_BYTES, 0, w->path);
    svdb__free(hb);
    return rc;
}

/* Format 2: every slot in place, a free one as zeros and an empty record,
 * so that a load maps the vectors and level-0 links instead of reading
 * them, and a checkpoint can point a running store at the new file. Once
 * more than a quarter of the slots are free the live rows are written
 * packed instead (order/to_row), so that deletes give disk space back. */
static int write_body(writer *w, const svdb_store *s, const svdb_hnsw *g, const uint32_t *order,
                      const uint32_t *to_row, svdb_snap_header *h, svdb_progress *pr)
{
    uint64_t done = 0;
    body b = {svdb__store_view(s), g, order, to_row, order ? svdb__store_count(s) : svdb__store_slots(s), 0, NULL,
              pr, &done};
    if (pr) pr->total = (uint64_t)b.rows * (2u + (g != NULL) + (b.s->ck != NULL)); /* the row-by-row sections */
    b.upper = g ? svdb__hnsw_upper_size(g, order, b.rows) : 0;
    size_t row_bytes = (size_t)b.s->dim * sizeof(float), bw = g ? svdb__hnsw_l0_block_bytes(g) : 0;
    size_t scratch_bytes = row_bytes > bw ? row_bytes : bw;
    scratch_bytes = scratch_bytes > b.s->row_floats * sizeof(float) ? scratch_bytes : b.s->row_floats * sizeof(float);
    scratch_bytes = scratch_bytes > b.upper ? scratch_bytes : b.upper;
    b.scratch = svdb__calloc(1, scratch_bytes + 1);
    if (!b.scratch) return svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
    h->count = b.rows;
    h->live = svdb__store_count(s);
    int rc = write_sections(w, &b, h);
    svdb__free(b.scratch);
    if (rc == SVDB_OK) rc = svdb__fd_sync(w->fd, w->path);
    return rc;
}

static void header_of(svdb_snap_header *h, const svdb_store *s, const svdb_snap_info *info)
{
    memset(h, 0, sizeof *h);
    h->uuid = info->uuid;
    h->last_lsn = info->last_lsn;
    h->next_seq = svdb__store_next_seq(s);
    h->dim = svdb__store_dim(s);
    h->metric = (uint32_t)svdb__store_metric(s);
    h->index = (uint32_t)info->index;
    h->m = info->hnsw.m;
    h->ef_construction = info->hnsw.ef_construction;
    h->ef_search = info->hnsw.ef_search;
    h->seed = info->hnsw.seed;
    h->storage = (uint32_t)svdb__store_storage(s);
}

/* With more than a quarter of the slots free (with `pack`, any), the live
 * slots in order and each slot's row (UINT32_MAX: free); else both NULL. */
static int pack_plan(const svdb_store *s, int pack, uint32_t **order, uint32_t **to_row)
{
    const svdb_store_view *v = svdb__store_view(s);
    size_t live = svdb__store_count(s), n_free = svdb__store_free_count(s);
    *order = *to_row = NULL;
    if (!n_free || (!pack && n_free * 4 <= v->n_slots)) return SVDB_OK;
    *order = svdb__malloc((live ? live : 1) * sizeof **order);
    *to_row = svdb__malloc(v->n_slots * sizeof **to_row);
    if (!*order || !*to_row) return svdb__fail(SVDB_ENOMEM, "out of memory writing a snapshot");
    for (size_t slot = 0, n = 0; slot < v->n_slots; slot++) {
        (*to_row)[slot] = svdb__row_live(svdb__row(v, slot)) ? (uint32_t)n : UINT32_MAX;
        if ((*to_row)[slot] != UINT32_MAX) (*order)[n++] = (uint32_t)slot;
    }
    return SVDB_OK;
}

int svdb__snapshot_write(const svdb_dir *dir, const svdb_store *s, const svdb_hnsw *g, const svdb_snap_info *info,
                         int pack, uint32_t **to_row_out, svdb_progress *pr)
{
    char *tmp = svdb__dir_file(dir, SNAP_TMP);
    writer w = {-1, tmp, NULL, 0, (size_t)1 << 20, 0, 0};
    uint32_t *order = NULL, *to_row = NULL;
    if (to_row_out) *to_row_out = NULL;
    int rc = !tmp ? svdb__fail(SVDB_ENOMEM, "out of memory") : SVDB_OK;
    if (rc == SVDB_OK) rc = pack_plan(s, pack, &order, &to_row);
    if (rc == SVDB_OK && !(w.buf = svdb__malloc(w.cap))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    /* A new file, never a link planted in its place (O_EXCL | O_NOFOLLOW). */
    if (rc == SVDB_OK) rc = svdb__file_create(dir, SNAP_TMP, &w.fd);
    if (rc == SVDB_OK) {
        svdb_snap_header h;
        header_of(&h, s, info);
        rc = write_body(&w, s, g, order, to_row, &h, pr);
    }
    int created = w.fd >= 0;
    svdb__fd_close(w.fd);
    if (rc == SVDB_OK) rc = svdb__file_rename(dir, SNAP_TMP, SNAP_NAME);
    if (rc == SVDB_OK) rc = svdb__dir_sync(dir);
    else if (created) svdb__file_discard(dir, SNAP_TMP); /* ours; the old snapshot stays in place */
    svdb__free(w.buf);
    svdb__free(order);
    if (rc == SVDB_OK && to_row_out) *to_row_out = to_row;
    else svdb__free(to_row);
    svdb__free(tmp);
    return rc;
}

/* ------------------------------------------------------------ format 2 */

int svdb__snap_id_meta(const char *path, const unsigned char *rec, uint64_t rec_bytes, uint64_t *pos, uint32_t idlen,
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

size_t svdb__snapshot_defer_bytes = (size_t)64 << 20;
void (*svdb__snapshot_check_hook)(void);

/* Parses every record: rows go to their slots, and each live one's slot and
 * id hash to hs (at most h->live of them). */
static int load_records(const char *path, svdb_store *s, const svdb_snap_header *h, const unsigned char *rec,
                        const float *vecs, svdb_hashed_slot *hs, uint64_t *pos_out, uint64_t *live_out)
{
    uint64_t pos = 0, live = 0;
    svdb__store_load_begin(s, (size_t)h->count);
    for (uint64_t i = 0; i < h->count; i++) {
        if (h->rec_bytes - pos < 16) return bad(path, "record section truncated");
        uint64_t seq = svdb__load64(rec + pos);
        uint32_t idlen = svdb__load32(rec + pos + 8), mlen = svdb__load32(rec + pos + 12);
        pos += 16;
        if (idlen == 0) {
            if (seq != 0 || mlen != SVDB_NO_META) return bad(path, "free slot with a sequence number or metadata");
            svdb__store_load_free(s, (uint32_t)i);
            continue;
        }
        if (live == h->live) return bad(path, "rows in use do not match the header");
        if (seq >= h->next_seq) return bad(path, "row sequence number beyond the counter");
        const char *id, *meta;
        SVDB_TRY(svdb__snap_id_meta(path, rec, h->rec_bytes, &pos, idlen, mlen, (size_t)i, &id, &meta));
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
static int load_rows_v2(const char *path, svdb_store *s, const svdb_snap_header *h, const unsigned char *map)
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
    svdb__store_set_next_seq(s, h->next_seq);
    return rc;
}

struct svdb_snap_check {
    int fd;
    char *path;
    svdb_snap_header h; /* where the sections are, and their CRCs */
    uint64_t done;      /* atomic: bytes checked so far, for svdb_verify's progress */
};

void svdb__snapshot_check_progress(const svdb_snap_check *c, uint64_t *done, uint64_t *total)
{
    *done = __atomic_load_n(&c->done, __ATOMIC_RELAXED);
    *total = c->h.vec_bytes + c->h.l0_bytes + c->h.codes_bytes;
}

void svdb__snapshot_check_free(svdb_snap_check *c)
{
    if (!c) return;
    svdb__fd_close(c->fd);
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
static int crc_range(svdb_snap_check *c, uint64_t off, uint64_t len, int finite, uint32_t *crc_out,
                     const int *stop, unsigned char *buf, size_t cap)
{
    uint32_t crc = 0, nonfinite = 0;
    while (len) {
        if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) return -1;
        if (svdb__snapshot_check_hook) svdb__snapshot_check_hook();
        size_t take = len < cap ? (size_t)len : cap;
        SVDB_TRY(svdb__pread_all(c->fd, buf, take, off, c->path));
        crc = svdb__crc32c(crc, buf, take);
        if (finite) nonfinite |= any_nonfinite(buf, take / 4);
        __atomic_add_fetch(&c->done, take, __ATOMIC_RELAXED);
        off += take;
        len -= take;
    }
    if (nonfinite) return bad(c->path, "vector holds NaN or Inf");
    *crc_out = crc;
    return SVDB_OK;
}

int svdb__snapshot_check(svdb_snap_check *c, const int *stop)
{
    const svdb_snap_header *h = &c->h;
    size_t cap = (size_t)1 << 20;
    unsigned char *buf = svdb__malloc(cap);
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory checking snapshot %s", c->path);
    uint32_t crc = 0;
    int rc = crc_range(c, h->vec_offset, h->vec_bytes, 1, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != h->vec_crc) rc = bad(c->path, "vector section checksum mismatch");
    if (rc == SVDB_OK) rc = crc_range(c, h->l0_offset, h->l0_bytes, 0, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != h->l0_crc) rc = bad(c->path, "link section checksum mismatch");
    if (rc == SVDB_OK) rc = crc_range(c, h->codes_offset, h->codes_bytes, 0, &crc, stop, buf, cap);
    if (rc == SVDB_OK && crc != h->codes_crc) rc = bad(c->path, "code section checksum mismatch");
    svdb__free(buf);
    return rc;
}

/* The vectors and level-0 links are checked (checksums, finite values) from
 * the file itself: now when small, else on the caller's thread after open
 * returns (*deferred), so a large collection opens without reading them. */
static int check_or_defer(int fd, const char *path, const svdb_snap_header *h, svdb_snap_check **deferred)
{
    svdb_snap_check *c = svdb__calloc(1, sizeof *c);
    if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory");
    c->fd = svdb__fd_dup(fd); /* close-on-exec: an exec'd child must not inherit it */
    c->path = svdb__strndup(path, strlen(path));
    c->h = *h;
    if (c->fd < 0 || !c->path) {
        svdb__snapshot_check_free(c);
        return svdb__fail(SVDB_ENOMEM, "out of resources checking snapshot %s", path);
    }
    if (h->vec_bytes + h->l0_bytes + h->codes_bytes >= svdb__snapshot_defer_bytes) {
        *deferred = c;
        return SVDB_OK;
    }
    int rc = svdb__snapshot_check(c, NULL);
    svdb__snapshot_check_free(c);
    return rc;
}

#define PARALLEL_LOAD_ROWS 65536

typedef struct graph_job {
    svdb_hnsw *g;
    const unsigned char *upper;
    size_t upper_len;
    const uint32_t *blocks;
    size_t n;
    const void *map;
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

/* The rows on this thread, and the graph (its level-0 chunks pointing into
 * the map, which the store owns) on a second one: a million rows take about
 * as long for each. */
static int load_rows_and_graph(const char *path, svdb_store *s, svdb_hnsw **g, const svdb_snap_header *h,
                               const svdb_hnsw_params *hp)
{
    const svdb_map *m = svdb__store_region(s);
    const unsigned char *map = svdb__map_base(m);
    graph_job job = {NULL, map + h->rec_offset + h->rec_bytes, (size_t)h->graph_bytes,
                     (const uint32_t *)(const void *)(map + h->l0_offset), (size_t)h->count, map, svdb__map_len(m),
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
    /* Live rows must be in the graph or waiting for it; free slots never are. */
    const svdb_store_view *v = svdb__store_view(s);
    for (size_t i = 0; h->index == SVDB_INDEX_HNSW && i < h->count; i++)
        if (!svdb__row_live(svdb__row(v, i)) && svdb__hnsw_level_of(*g, (uint32_t)i) != SVDB_HNSW_NO_LEVEL)
            return bad(path, "free slot in the graph");
    return SVDB_OK;
}

static int load_v2(int fd, const char *path, svdb_store *s, svdb_hnsw **g, const svdb_snap_header *h, uint64_t size,
                   const svdb_hnsw_params *hp, svdb_snap_check **deferred)
{
    SVDB_TRY(svdb__store_reserve(s, (size_t)h->count, (size_t)(h->count - h->live)));
    /* Private and writable: a write to a row copies its page, the file
     * stays as it is (it is only ever replaced, never written in place). */
    svdb_map taken;
    SVDB_TRY(svdb__map_file(&taken, fd, (size_t)size, SVDB_MAP_PRIVATE, "snapshot", path));
    svdb__store_take_map(s, &taken);
    svdb__store_map_rows(s, (size_t)h->count, svdb__store_compact(s) ? h->codes_offset : h->vec_offset);
    const svdb_map *m = svdb__store_region(s);
    const unsigned char *map = svdb__map_base(m);
    if (svdb__crc32c(0, map + h->rec_offset, (size_t)h->rec_bytes) != h->rec_crc)
        return bad(path, "record section checksum mismatch");
    if (h->index == SVDB_INDEX_HNSW &&
        svdb__crc32c(0, map + h->rec_offset + h->rec_bytes, (size_t)h->graph_bytes) != h->graph_crc)
        return bad(path, "graph section checksum mismatch");
    SVDB_TRY(load_rows_and_graph(path, s, g, h, hp));
    /* The records and graph section were copied out: their pages need not
     * stay in this process (never written, so nothing is lost). */
    svdb__map_drop(m, (size_t)h->rec_offset, (size_t)(size - h->rec_offset));
    if (svdb__store_compact(s)) /* originals are read a few rows at a time: no read-ahead there */
        svdb__map_advise_random(m, 0, (size_t)(h->vec_offset + h->vec_bytes));
    return check_or_defer(fd, path, h, deferred);
}

/* ------------------------------------------------------------ opening */

int svdb__snapshot_map(const svdb_dir *dir, svdb_snap_map *out)
{
    char *path = svdb__dir_file(dir, SNAP_NAME);
    if (!path) return svdb__fail(SVDB_ENOMEM, "out of memory");
    int fd;
    int rc = svdb__file_open(dir, SNAP_NAME, O_RDONLY, &fd);
    if (rc == SVDB_ENOTFOUND) rc = svdb__fail(SVDB_ECORRUPT, "snapshot %s vanished right after it was written", path);
    struct stat st;
    if (rc == SVDB_OK) rc = svdb__fd_stat(fd, path, &st);
    if (rc == SVDB_OK) rc = svdb__map_file(&out->map, fd, (size_t)st.st_size, SVDB_MAP_PRIVATE, "snapshot", path);
    if (rc == SVDB_OK) {
        /* written by this process a moment ago: the header is trusted */
        svdb_snap_header h = {0};
        decode_header(svdb__map_base(&out->map), &h);
        out->rows = (size_t)h.count;
        out->vec_offset = h.vec_offset;
        out->l0_offset = h.l0_offset;
        out->codes_offset = h.codes_offset;
    }
    svdb__fd_close(fd);
    svdb__free(path);
    return rc;
}

/* Opens dir's snapshot and checks its header: *fd, *size and *path (the
 * caller's to close and free) on success. */
static int open_checked(const svdb_dir *dir, int *fd, char **path, uint64_t *size, svdb_snap_header *h)
{
    *path = svdb__dir_file(dir, SNAP_NAME);
    if (!*path) return svdb__fail(SVDB_ENOMEM, "out of memory");
    int rc = svdb__file_open(dir, SNAP_NAME, O_RDONLY, fd);
    if (rc == SVDB_ENOTFOUND) return svdb__fail(SVDB_ECORRUPT, "snapshot %s is missing", *path);
    SVDB_TRY(rc);
    struct stat st;
    unsigned char hb[256];
    SVDB_TRY(svdb__fd_stat(*fd, *path, &st));
    if (!S_ISREG(st.st_mode)) return bad(*path, "not a regular file");
    *size = (uint64_t)st.st_size;
    if (*size < SVDB_SNAPSHOT_HEADER_BYTES) return bad(*path, "file shorter than its header");
    SVDB_TRY(svdb__pread_all(*fd, hb, sizeof hb, 0, *path));
    return check_header(*path, hb, *size, h);
}

int svdb__snapshot_load(const svdb_dir *dir, svdb_store **s, svdb_hnsw **g, svdb_snap_info *info,
                        const svdb_kernels *k, svdb_snap_check **deferred)
{
    *s = NULL;
    *g = NULL;
    *deferred = NULL;
    int fd = -1;
    char *path = NULL;
    uint64_t size = 0;
    svdb_snap_header h = {0};
    int rc = open_checked(dir, &fd, &path, &size, &h);
    svdb_hnsw_params hp = {h.m, h.ef_construction, h.ef_search, h.seed};
    if (rc == SVDB_OK) rc = svdb__store_new(s, h.dim, (int)h.metric);
    if (rc == SVDB_OK) {
        svdb__store_set_storage(*s, (int)h.storage, k);
        if (h.version == 1) rc = svdb__legacy_v1_load(fd, path, *s, g, &h, size, &hp);
        else rc = load_v2(fd, path, *s, g, &h, size, &hp, deferred);
        if (rc != SVDB_OK) {
            svdb__snapshot_check_free(*deferred);
            *deferred = NULL;
            svdb__store_free(*s);
            *s = NULL;
            svdb__hnsw_free(*g);
            *g = NULL;
        }
    }
    svdb__fd_close(fd);
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
