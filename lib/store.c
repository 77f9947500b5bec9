/* Row storage in chunks. */
#include "store.h"

#include "alloc.h"
#include "error.h"
#include "space.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct svdb_store {
    /* What readers see (dim, metric, shift, row_floats, ck and n_slots are
     * kept only there); its tables are the ones below, republished by
     * publish() whenever growth moves them. */
    svdb_store_view v;
    int storage; /* SVDB_STORAGE_F32, _F16 or _INT8 */
    float **vec;
    /* Compact storage only: per chunk, each row's float32 original, which
     * lives in a memory map of the snapshot or of the log (never freed here;
     * see svdb__store_remap). NULL for f32. */
    const float ***src;
    /* A map of the snapshot, owned here (see mapfile.h): private and
     * writable for format 2, which keeps slot i at row i, so f32 chunks the
     * file fills point into it (a write to a row copies its page); and a
     * compact store's originals. The graph's level-0 chunks borrow it. */
    svdb_map snap_map;
    float **norm;
    svdb_row **rows;
    size_t n_chunks, cap_chunks;
    uint32_t *free_slots;
    size_t n_free, cap_free;
    size_t n_live;
    uint64_t next_seq;
    svdb_idmap map;
};

static void publish(svdb_store *s)
{
    s->v.vec = (const float *const *)s->vec;
    s->v.src = (const float *const *const *)s->src;
    s->v.norm = (const float *const *)s->norm;
    s->v.rows = (const svdb_row *const *)s->rows;
}

/* The mutable forms of the view's accessors, for this file only. */
static size_t chunk_of(const svdb_store *s, size_t slot) { return slot >> s->v.shift; }
static size_t index_of(const svdb_store *s, size_t slot) { return slot & (svdb__chunk_rows(&s->v) - 1); }
static svdb_row *row_at(const svdb_store *s, size_t slot) { return &s->rows[chunk_of(s, slot)][index_of(s, slot)]; }
static float *graph_row_at(const svdb_store *s, size_t slot)
{
    return s->vec[chunk_of(s, slot)] + index_of(s, slot) * s->v.row_floats;
}

const svdb_store_view *svdb__store_view(const svdb_store *s) { return &s->v; }
uint32_t svdb__store_dim(const svdb_store *s) { return s->v.dim; }
int svdb__store_metric(const svdb_store *s) { return s->v.metric; }
int svdb__store_storage(const svdb_store *s) { return s->storage; }
int svdb__store_compact(const svdb_store *s) { return s->v.ck != NULL; }
size_t svdb__store_count(const svdb_store *s) { return s->n_live; }
size_t svdb__store_slots(const svdb_store *s) { return s->v.n_slots; }
size_t svdb__store_free_count(const svdb_store *s) { return s->n_free; }
uint64_t svdb__store_next_seq(const svdb_store *s) { return s->next_seq; }
int svdb__store_mapped(const svdb_store *s, const void *p) { return svdb__map_contains(&s->snap_map, p); }
const svdb_map *svdb__store_region(const svdb_store *s) { return &s->snap_map; }

/* About 4 MiB of vectors per chunk: big enough for long sequential scans,
 * small enough that growth costs little. */
static unsigned pick_shift(uint32_t dim)
{
    size_t rows = ((size_t)4 << 20) / ((size_t)(dim ? dim : 1) * sizeof(float));
    unsigned shift = 6;
    while (shift < 16 && ((size_t)1 << (shift + 1)) <= rows) shift++;
    return shift;
}

static void init(svdb_store *s, uint32_t dim, int metric)
{
    memset(s, 0, sizeof *s);
    s->v.metric = metric;
    s->storage = SVDB_STORAGE_F32;
    svdb__store_set_dim(s, dim);
}

int svdb__store_new(svdb_store **out, uint32_t dim, int metric)
{
    *out = svdb__malloc(sizeof **out);
    if (!*out) return svdb__fail(SVDB_ENOMEM, "out of memory creating a row store");
    init(*out, dim, metric);
    return SVDB_OK;
}

void svdb__store_set_dim(svdb_store *s, uint32_t dim)
{
    s->v.dim = dim;
    s->v.shift = pick_shift(dim);
    s->v.row_floats = s->v.ck ? svdb__code_bytes(s->storage, dim) / sizeof(float) : dim;
}

void svdb__store_set_storage(svdb_store *s, int storage, const svdb_kernels *k)
{
    s->storage = storage;
    s->v.ck = storage == SVDB_STORAGE_F16 || storage == SVDB_STORAGE_INT8 ? svdb__code_kernels(storage, k) : NULL;
    svdb__store_set_dim(s, s->v.dim);
}

/* Frees what the store holds and leaves it zeroed. */
static void release(svdb_store *s)
{
    for (size_t c = 0; c < s->n_chunks; c++) {
        size_t base = c << s->v.shift;
        for (size_t i = 0; i < svdb__chunk_rows(&s->v) && base + i < s->v.n_slots; i++) {
            svdb_row *r = &s->rows[c][i];
            if (svdb__row_live(r) && !svdb__row_is_inline(r->id_len, r->meta_len)) svdb__free(r->u.blob);
        }
        if (!svdb__store_mapped(s, s->vec[c])) svdb__free(s->vec[c]);
        svdb__free(s->norm[c]);
        svdb__free(s->rows[c]);
        if (s->src) svdb__free((void *)s->src[c]);
    }
    svdb__free(s->vec);
    svdb__free((void *)s->src);
    svdb__map_release(&s->snap_map);
    svdb__free(s->norm);
    svdb__free(s->rows);
    svdb__free(s->free_slots);
    svdb__idmap_free(&s->map);
    memset(s, 0, sizeof *s);
}

void svdb__store_free(svdb_store *s)
{
    if (!s) return;
    release(s);
    svdb__free(s);
}

void svdb__store_unset_dim(svdb_store *s)
{
    int metric = s->v.metric, storage = s->storage;
    const svdb_code_kernels *ck = s->v.ck;
    release(s);
    init(s, 0, metric);
    s->storage = storage;
    s->v.ck = ck;
    svdb__store_set_dim(s, 0);
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return SVDB_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) ncap *= 2;
    void *p = svdb__realloc(*arr, ncap * elem);
    if (!p) return svdb__fail(SVDB_ENOMEM, "out of memory growing the row store");
    *arr = p;
    *cap = ncap;
    return SVDB_OK;
}

static const char *row_key(const void *ctx, uint32_t slot, size_t *len);

/* The chunk tables, which always share one capacity. A table that moved is
 * published even when a later one fails to grow. */
static int grow_tables(svdb_store *s, size_t need_chunks)
{
    size_t cap = s->cap_chunks, cap2 = s->cap_chunks, cap3 = s->cap_chunks, cap4 = s->cap_chunks;
    int rc = grow_array((void **)&s->vec, &cap, need_chunks, sizeof(float *));
    if (rc == SVDB_OK) rc = grow_array((void **)&s->norm, &cap2, need_chunks, sizeof(float *));
    if (rc == SVDB_OK) rc = grow_array((void **)&s->rows, &cap3, need_chunks, sizeof(svdb_row *));
    if (rc == SVDB_OK && s->v.ck) rc = grow_array((void **)&s->src, &cap4, need_chunks, sizeof(float **));
    publish(s);
    if (rc == SVDB_OK) s->cap_chunks = cap;
    return rc;
}

int svdb__store_reserve(svdb_store *s, size_t adds, size_t deletes)
{
    if (s->n_live + adds > (size_t)SVDB_NO_SLOT - 1)
        return svdb__fail(SVDB_ETOOBIG, "a collection holds at most %u rows", (unsigned)SVDB_NO_SLOT - 1);
    SVDB_TRY(grow_array((void **)&s->free_slots, &s->cap_free, s->n_free + deletes, sizeof(uint32_t)));
    SVDB_TRY(svdb__idmap_reserve(&s->map, adds, row_key, s));
    size_t fresh = adds > s->n_free ? adds - s->n_free : 0;
    size_t need_slots = s->v.n_slots + fresh;
    size_t need_chunks = (need_slots + svdb__chunk_rows(&s->v) - 1) >> s->v.shift;
    if (need_chunks <= s->n_chunks) return SVDB_OK;
    SVDB_TRY(grow_tables(s, need_chunks));
    while (s->n_chunks < need_chunks) {
        size_t rows = svdb__chunk_rows(&s->v);
        float *v = svdb__malloc(rows * s->v.row_floats * sizeof(float));
        /* inverse norms serve cosine only: other metrics save 4 bytes a row */
        float *nm = s->v.metric == SVDB_METRIC_COSINE ? svdb__malloc(rows * sizeof(float)) : NULL;
        svdb_row *r = svdb__calloc(rows, sizeof(svdb_row));
        const float **src = s->v.ck ? svdb__calloc(rows, sizeof *src) : NULL;
        if (!v || (!nm && s->v.metric == SVDB_METRIC_COSINE) || !r || (!src && s->v.ck)) {
            svdb__free(v);
            svdb__free(nm);
            svdb__free(r);
            svdb__free((void *)src);
            return svdb__fail(SVDB_ENOMEM, "out of memory allocating %zu rows of %u floats", rows, s->v.dim);
        }
        s->vec[s->n_chunks] = v;
        s->norm[s->n_chunks] = nm;
        s->rows[s->n_chunks] = r;
        if (s->v.ck) s->src[s->n_chunks] = src;
        s->n_chunks++;
    }
    return SVDB_OK;
}

static const char *row_key(const void *ctx, uint32_t slot, size_t *len)
{
    const svdb_row *r = row_at(ctx, slot);
    *len = r->id_len;
    return svdb__row_id(r);
}

int svdb__row_pack(const char *id, uint32_t id_len, const char *meta, uint32_t meta_len, char **blob)
{
    *blob = NULL;
    if (svdb__row_is_inline(id_len, meta_len)) return SVDB_OK;
    char *b = svdb__malloc((size_t)id_len + 1 + (meta_len ? (size_t)meta_len + 1 : 0));
    if (!b) return svdb__fail(SVDB_ENOMEM, "out of memory storing a row");
    memcpy(b, id, id_len);
    b[id_len] = '\0';
    if (meta_len) {
        memcpy(b + id_len + 1, meta, meta_len);
        b[id_len + 1 + meta_len] = '\0';
    }
    *blob = b;
    return SVDB_OK;
}

/* Stores a packed id and metadata in r, freeing what r held. `id` is only
 * read when the row is inline, and may point into r's old blob. */
static void row_set(svdb_row *r, char *blob, const char *id, uint32_t id_len, uint32_t meta_len)
{
    char *old = svdb__row_live(r) && !svdb__row_is_inline(r->id_len, r->meta_len) ? r->u.blob : NULL;
    if (svdb__row_is_inline(id_len, meta_len)) {
        char inl[SVDB_ROW_INLINE_ID + 1] = {0};
        memcpy(inl, id, id_len);
        memcpy(r->u.inl, inl, sizeof inl);
    } else {
        r->u.blob = blob;
    }
    r->id_len = id_len;
    r->meta_len = meta_len;
    svdb__free(old);
}

uint32_t svdb__store_find(const svdb_store *s, const char *id, size_t len)
{
    return svdb__idmap_find(&s->map, id, len, row_key, s);
}

static void set_norm(svdb_store *s, uint32_t slot, const float *v)
{
    s->norm[chunk_of(s, slot)][index_of(s, slot)] = svdb__inv_norm(v, s->v.dim);
}

static void set_vector(svdb_store *s, uint32_t slot, const float *v)
{
    float *dst = graph_row_at(s, slot);
    if (s->v.ck) {
        svdb__code_encode(s->storage, v, s->v.dim, dst);
        s->src[chunk_of(s, slot)][index_of(s, slot)] = v;
    } else if (dst != v) {
        memcpy(dst, v, (size_t)s->v.dim * sizeof(float)); /* a loaded snapshot is read in place */
    }
    if (s->v.metric == SVDB_METRIC_COSINE) set_norm(s, slot, v);
}

uint32_t svdb__store_insert(svdb_store *s, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                            const float *v)
{
    uint32_t slot = s->n_free ? s->free_slots[--s->n_free] : (uint32_t)s->v.n_slots++;
    svdb_row *r = row_at(s, slot);
    memset(r, 0, sizeof *r);
    row_set(r, blob, id, id_len, meta_len);
    r->seq = s->next_seq++;
    set_vector(s, slot, v);
    svdb__idmap_insert(&s->map, id, id_len, slot);
    s->n_live++;
    return slot;
}

void svdb__store_replace(svdb_store *s, uint32_t slot, char *blob, uint32_t meta_len, const float *v)
{
    svdb_row *r = row_at(s, slot);
    row_set(r, blob, svdb__row_id(r), r->id_len, meta_len);
    set_vector(s, slot, v);
}

void svdb__store_remove(svdb_store *s, uint32_t slot)
{
    svdb_row *r = row_at(s, slot);
    svdb__idmap_remove(&s->map, svdb__row_id(r), r->id_len, row_key, s);
    if (!svdb__row_is_inline(r->id_len, r->meta_len)) svdb__free(r->u.blob);
    memset(r, 0, sizeof *r);
    if (s->src) s->src[chunk_of(s, slot)][index_of(s, slot)] = NULL;
    s->free_slots[s->n_free++] = slot;
    s->n_live--;
}

/* Chunks of graph rows that rows [0, n_rows) of the map fill point there. */
static void point_chunks(svdb_store *s, const float *base, size_t n_rows)
{
    size_t per = svdb__chunk_rows(&s->v);
    for (size_t c = 0; c < s->n_chunks && (c + 1) * per <= n_rows; c++) {
        if (!svdb__store_mapped(s, s->vec[c])) svdb__free(s->vec[c]);
        s->vec[c] = (float *)(uintptr_t)(base + c * per * s->v.row_floats); /* a private map: writes copy the page */
    }
}

void svdb__store_map_rows(svdb_store *s, size_t n_rows, uint64_t offset)
{
    const float *base = (const float *)(const void *)((const unsigned char *)svdb__map_base(&s->snap_map) + offset);
    point_chunks(s, base, n_rows);
    size_t per = svdb__chunk_rows(&s->v);
    for (size_t c = 0; c < s->n_chunks && c * per < n_rows; c++)
        if (!svdb__store_mapped(s, s->vec[c]))
            memcpy(s->vec[c], base + c * per * s->v.row_floats, (n_rows - c * per) * s->v.row_floats * sizeof(float));
}

void svdb__store_load_row(svdb_store *s, uint32_t slot, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                          uint64_t seq, const float *v)
{
    svdb_row *r = row_at(s, slot);
    if (svdb__row_is_inline(id_len, meta_len)) memcpy(r->u.inl, id, id_len); /* the row was zeroed */
    else r->u.blob = blob;
    r->id_len = id_len;
    r->meta_len = meta_len;
    r->seq = seq;
    /* The vector or code is in place already (svdb__store_map_rows). */
    if (s->v.ck) s->src[chunk_of(s, slot)][index_of(s, slot)] = v;
    if (s->v.metric == SVDB_METRIC_COSINE) set_norm(s, slot, v);
}

void svdb__store_load_begin(svdb_store *s, size_t n_rows) { s->v.n_slots = n_rows; }
void svdb__store_load_free(svdb_store *s, uint32_t slot) { s->free_slots[s->n_free++] = slot; }
void svdb__store_set_next_seq(svdb_store *s, uint64_t next_seq) { s->next_seq = next_seq; }
float *svdb__store_chunk(svdb_store *s, size_t chunk) { return s->vec[chunk]; }
void svdb__store_set_seq(svdb_store *s, uint32_t slot, uint64_t seq) { row_at(s, slot)->seq = seq; }

uint32_t svdb__store_load_finish(svdb_store *s, size_t n_rows, const svdb_hashed_slot *live, size_t n_live)
{
    s->v.n_slots = n_rows;
    s->n_live = n_live;
    /* Free slots are reused lowest first, which keeps the file short. */
    for (size_t i = 0; i < s->n_free / 2; i++) {
        uint32_t t = s->free_slots[i];
        s->free_slots[i] = s->free_slots[s->n_free - 1 - i];
        s->free_slots[s->n_free - 1 - i] = t;
    }
    /* The id table, with each bucket fetched AHEAD inserts early: a million
     * ids would otherwise wait on a cache miss each. */
    enum { AHEAD = 16 };
    for (size_t i = 0; i < n_live && i < AHEAD; i++) svdb__idmap_prefetch(&s->map, live[i].hash);
    for (size_t i = 0; i < n_live; i++) {
        if (i + AHEAD < n_live) svdb__idmap_prefetch(&s->map, live[i + AHEAD].hash);
        uint32_t dup = svdb__idmap_insert_unique(&s->map, live[i].hash, live[i].slot, row_key, s);
        if (dup != SVDB_NO_SLOT) return dup;
    }
    return SVDB_NO_SLOT;
}

int svdb__store_unmap(svdb_store *s)
{
    size_t chunk_bytes = svdb__chunk_rows(&s->v) * s->v.row_floats * sizeof(float);
    return svdb__copy_out_of_map((void **)s->vec, s->n_chunks, chunk_bytes, svdb__map_base(&s->snap_map),
                                 svdb__map_len(&s->snap_map));
}

void svdb__store_take_map(svdb_store *s, svdb_map *m)
{
    svdb__map_release(&s->snap_map);
    s->snap_map = svdb__map_take(m);
}

void svdb__store_remap(svdb_store *s, svdb_map *map, uint64_t vec_offset, uint64_t codes_offset, size_t n_rows,
                       const uint32_t *to_row)
{
    const unsigned char *at = svdb__map_base(map);
    const float *base = (const float *)(const void *)(at + vec_offset);
    if (s->v.ck) {
        for (size_t slot = 0; slot < s->v.n_slots; slot++)
            if (svdb__row_live(row_at(s, slot)))
                s->src[chunk_of(s, slot)][index_of(s, slot)] =
                    base + (size_t)(to_row ? to_row[slot] : slot) * s->v.dim;
        if (!to_row) point_chunks(s, (const float *)(const void *)(at + codes_offset), n_rows);
    } else if (!to_row) {
        /* Rows never move and slots are never given back, so every chunk
         * in the old map is full in the new one too. */
        point_chunks(s, base, n_rows);
    }
    svdb__store_take_map(s, map);
}

typedef struct {
    uint64_t seq;
    uint32_t slot;
} seq_slot;

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const seq_slot *)a)->seq, y = ((const seq_slot *)b)->seq;
    return (x > y) - (x < y);
}

int svdb__store_order(const svdb_store *s, uint32_t **slots_out)
{
    seq_slot *tmp = svdb__malloc(s->n_live * sizeof *tmp);
    uint32_t *out = svdb__malloc(s->n_live * sizeof *out);
    if (!tmp || !out) {
        svdb__free(tmp);
        svdb__free(out);
        return svdb__fail(SVDB_ENOMEM, "out of memory listing %zu ids", s->n_live);
    }
    size_t n = 0;
    int sorted = 1;
    for (size_t slot = 0; slot < s->v.n_slots; slot++) {
        const svdb_row *r = row_at(s, slot);
        if (!svdb__row_live(r)) continue;
        if (n && r->seq < tmp[n - 1].seq) sorted = 0;
        tmp[n].seq = r->seq;
        tmp[n].slot = (uint32_t)slot;
        n++;
    }
    if (!sorted) qsort(tmp, n, sizeof *tmp, by_seq);
    for (size_t i = 0; i < n; i++) out[i] = tmp[i].slot;
    svdb__free(tmp);
    *slots_out = out;
    return SVDB_OK;
}
