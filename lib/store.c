/* Row storage in chunks. */
#include "store.h"

#include "alloc.h"
#include "error.h"
#include "space.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* About 4 MiB of vectors per chunk: big enough for long sequential scans,
 * small enough that growth costs little. */
static unsigned pick_shift(uint32_t dim)
{
    size_t rows = ((size_t)4 << 20) / ((size_t)(dim ? dim : 1) * sizeof(float));
    unsigned shift = 6;
    while (shift < 16 && ((size_t)1 << (shift + 1)) <= rows) shift++;
    return shift;
}

void svdb__store_init(svdb_store *s, uint32_t dim, int metric)
{
    memset(s, 0, sizeof *s);
    s->metric = metric;
    s->storage = SVDB_STORAGE_F32;
    svdb__store_set_dim(s, dim);
}

void svdb__store_set_dim(svdb_store *s, uint32_t dim)
{
    s->dim = dim;
    s->shift = pick_shift(dim);
    s->row_floats = s->ck ? svdb__code_bytes(s->storage, dim) / sizeof(float) : dim;
}

void svdb__store_set_storage(svdb_store *s, int storage, const svdb_kernels *k)
{
    s->storage = storage;
    s->ck = storage == SVDB_STORAGE_F16 || storage == SVDB_STORAGE_INT8 ? svdb__code_kernels(storage, k) : NULL;
    svdb__store_set_dim(s, s->dim);
}

void svdb__store_free(svdb_store *s)
{
    for (size_t c = 0; c < s->n_chunks; c++) {
        size_t base = c << s->shift;
        for (size_t i = 0; i < svdb__chunk_rows(s) && base + i < s->n_slots; i++) {
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

int svdb__store_reserve(svdb_store *s, size_t adds, size_t deletes)
{
    if (s->n_live + adds > (size_t)SVDB_NO_SLOT - 1)
        return svdb__fail(SVDB_ETOOBIG, "a collection holds at most %u rows", (unsigned)SVDB_NO_SLOT - 1);
    SVDB_TRY(grow_array((void **)&s->free_slots, &s->cap_free, s->n_free + deletes, sizeof(uint32_t)));
    SVDB_TRY(svdb__idmap_reserve(&s->map, adds, row_key, s));
    size_t fresh = adds > s->n_free ? adds - s->n_free : 0;
    size_t need_slots = s->n_slots + fresh;
    size_t need_chunks = (need_slots + svdb__chunk_rows(s) - 1) >> s->shift;
    if (need_chunks <= s->n_chunks) return SVDB_OK;
    /* The chunk arrays always share one capacity. */
    size_t cap = s->cap_chunks, cap2 = s->cap_chunks, cap3 = s->cap_chunks, cap4 = s->cap_chunks;
    SVDB_TRY(grow_array((void **)&s->vec, &cap, need_chunks, sizeof(float *)));
    SVDB_TRY(grow_array((void **)&s->norm, &cap2, need_chunks, sizeof(float *)));
    SVDB_TRY(grow_array((void **)&s->rows, &cap3, need_chunks, sizeof(svdb_row *)));
    if (s->ck) SVDB_TRY(grow_array((void **)&s->src, &cap4, need_chunks, sizeof(float **)));
    s->cap_chunks = cap;
    while (s->n_chunks < need_chunks) {
        size_t rows = svdb__chunk_rows(s);
        float *v = svdb__malloc(rows * s->row_floats * sizeof(float));
        /* inverse norms serve cosine only: other metrics save 4 bytes a row */
        float *nm = s->metric == SVDB_METRIC_COSINE ? svdb__malloc(rows * sizeof(float)) : NULL;
        svdb_row *r = svdb__calloc(rows, sizeof(svdb_row));
        const float **src = s->ck ? svdb__calloc(rows, sizeof *src) : NULL;
        if (!v || (!nm && s->metric == SVDB_METRIC_COSINE) || !r || (!src && s->ck)) {
            svdb__free(v);
            svdb__free(nm);
            svdb__free(r);
            svdb__free((void *)src);
            return svdb__fail(SVDB_ENOMEM, "out of memory allocating %zu rows of %u floats", rows, s->dim);
        }
        s->vec[s->n_chunks] = v;
        s->norm[s->n_chunks] = nm;
        s->rows[s->n_chunks] = r;
        if (s->ck) s->src[s->n_chunks] = src;
        s->n_chunks++;
    }
    return SVDB_OK;
}

static const char *row_key(const void *ctx, uint32_t slot, size_t *len)
{
    const svdb_row *r = svdb__row(ctx, slot);
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

static void set_norm(svdb_store *s, uint32_t slot, const float *v) { *svdb__norm(s, slot) = svdb__inv_norm(v, s->dim); }

static void set_vector(svdb_store *s, uint32_t slot, const float *v)
{
    float *dst = (float *)svdb__graph_row(s, slot);
    if (s->ck) {
        svdb__code_encode(s->storage, v, s->dim, dst);
        s->src[slot >> s->shift][slot & (svdb__chunk_rows(s) - 1)] = v;
    } else if (dst != v) {
        memcpy(dst, v, (size_t)s->dim * sizeof(float)); /* a loaded snapshot is read in place */
    }
    if (s->metric == SVDB_METRIC_COSINE) set_norm(s, slot, v);
}

uint32_t svdb__store_insert(svdb_store *s, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                            const float *v)
{
    uint32_t slot = s->n_free ? s->free_slots[--s->n_free] : (uint32_t)s->n_slots++;
    svdb_row *r = svdb__row(s, slot);
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
    svdb_row *r = svdb__row(s, slot);
    row_set(r, blob, svdb__row_id(r), r->id_len, meta_len);
    set_vector(s, slot, v);
}

void svdb__store_remove(svdb_store *s, uint32_t slot)
{
    svdb_row *r = svdb__row(s, slot);
    svdb__idmap_remove(&s->map, svdb__row_id(r), r->id_len, row_key, s);
    if (!svdb__row_is_inline(r->id_len, r->meta_len)) svdb__free(r->u.blob);
    memset(r, 0, sizeof *r);
    if (s->src) s->src[slot >> s->shift][slot & (svdb__chunk_rows(s) - 1)] = NULL;
    s->free_slots[s->n_free++] = slot;
    s->n_live--;
}

/* Chunks of graph rows that rows [0, n_rows) of the map fill point there. */
static void point_chunks(svdb_store *s, const float *base, size_t n_rows)
{
    size_t per = svdb__chunk_rows(s);
    for (size_t c = 0; c < s->n_chunks && (c + 1) * per <= n_rows; c++) {
        if (!svdb__store_mapped(s, s->vec[c])) svdb__free(s->vec[c]);
        s->vec[c] = (float *)(uintptr_t)(base + c * per * s->row_floats); /* a private map: writes copy the page */
    }
}

void svdb__store_map_rows(svdb_store *s, size_t n_rows, uint64_t offset)
{
    const float *base = (const float *)(const void *)((const unsigned char *)svdb__map_base(&s->snap_map) + offset);
    point_chunks(s, base, n_rows);
    size_t per = svdb__chunk_rows(s);
    for (size_t c = 0; c < s->n_chunks && c * per < n_rows; c++)
        if (!svdb__store_mapped(s, s->vec[c]))
            memcpy(s->vec[c], base + c * per * s->row_floats, (n_rows - c * per) * s->row_floats * sizeof(float));
}

void svdb__store_load_row(svdb_store *s, uint32_t slot, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                          uint64_t seq, const float *v)
{
    svdb_row *r = svdb__row(s, slot);
    if (svdb__row_is_inline(id_len, meta_len)) memcpy(r->u.inl, id, id_len); /* the row was zeroed */
    else r->u.blob = blob;
    r->id_len = id_len;
    r->meta_len = meta_len;
    r->seq = seq;
    /* The vector or code is in place already (svdb__store_map_rows). */
    if (s->ck) s->src[slot >> s->shift][slot & (svdb__chunk_rows(s) - 1)] = v;
    if (s->metric == SVDB_METRIC_COSINE) set_norm(s, slot, v);
}

void svdb__store_load_free(svdb_store *s, uint32_t slot) { s->free_slots[s->n_free++] = slot; }

uint32_t svdb__store_load_finish(svdb_store *s, size_t n_rows, const svdb_hashed_slot *live, size_t n_live)
{
    s->n_slots = n_rows;
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
    return svdb__copy_out_of_map((void **)s->vec, s->n_chunks, svdb__chunk_rows(s) * s->row_floats * sizeof(float),
                                 svdb__map_base(&s->snap_map), svdb__map_len(&s->snap_map));
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
    if (s->ck) {
        for (size_t slot = 0; slot < s->n_slots; slot++)
            if (svdb__row_live(svdb__row(s, slot)))
                s->src[slot >> s->shift][slot & (svdb__chunk_rows(s) - 1)] =
                    base + (size_t)(to_row ? to_row[slot] : slot) * s->dim;
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
    for (size_t slot = 0; slot < s->n_slots; slot++) {
        const svdb_row *r = svdb__row(s, slot);
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
