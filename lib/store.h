/* The row store: vectors in fixed-size chunks (growth never moves a row),
 * per-row id, metadata and insertion sequence, a free list of deleted slots
 * for reuse, and the id -> slot map. All mutation is split into a fallible
 * reserve step and an apply step that cannot fail, so a batch is applied
 * wholly or not at all. */
#ifndef SVDB_STORE_H
#define SVDB_STORE_H

#include "idmap.h"
#include "mapfile.h"
#include "quant.h"

#include <stddef.h>
#include <stdint.h>

/* A row's id and metadata share one allocation, "id\0meta\0"; an id of at
 * most SVDB_ROW_INLINE_ID bytes without metadata is kept in the row itself,
 * which spares the allocation and its overhead (numeric ids, for instance). */
#define SVDB_ROW_INLINE_ID 7
typedef struct svdb_row {
    union {
        char *blob;                        /* owned */
        char inl[SVDB_ROW_INLINE_ID + 1];  /* NUL-terminated */
    } u;
    uint64_t seq;
    uint32_t id_len;   /* 0 when the slot is free */
    uint32_t meta_len; /* 0: no metadata (metadata is a JSON object, never empty) */
} svdb_row;

static inline int svdb__row_live(const svdb_row *r) { return r->id_len != 0; }
static inline int svdb__row_is_inline(uint32_t id_len, uint32_t meta_len)
{
    return meta_len == 0 && id_len <= SVDB_ROW_INLINE_ID;
}
/* NUL-terminated, id_len bytes. */
static inline const char *svdb__row_id(const svdb_row *r)
{
    return svdb__row_is_inline(r->id_len, r->meta_len) ? r->u.inl : r->u.blob;
}
/* NUL-terminated, meta_len bytes; NULL when the row has none. */
static inline const char *svdb__row_meta(const svdb_row *r) { return r->meta_len ? r->u.blob + r->id_len + 1 : NULL; }
/* Packs an id and metadata (meta_len 0: none) as a row keeps them: *blob is
 * NULL when they fit in the row. The fallible half of an insert. */
int svdb__row_pack(const char *id, uint32_t id_len, const char *meta, uint32_t meta_len, char **blob);

/* The store's struct is private to store.c; the engine holds a pointer
 * (svdb__store_new / svdb__store_free) and everything else goes through the
 * functions below, except the loops that read a row per node or per block
 * (the graph walk, the scans), which read the layout itself. */
typedef struct svdb_store svdb_store;

/* The layout of the rows, read-only: per chunk of (1 << shift) slots, the
 * rows the graph walk scores (the f32 vectors, or compact codes, row_floats
 * floats each), compact storage's float32 originals (one pointer per row,
 * NULL for a free slot; src is NULL for f32), cosine's inverse norms (NULL
 * chunks for the other metrics) and the rows' ids, metadata and sequence.
 * It lives inside the store, so its address never changes; its fields change
 * only under the collection's write lock (growth moves the chunk tables, an
 * insert raises n_slots), so a reader holding the read lock may keep the
 * pointer, or copy fields, until it lets go. */
typedef struct svdb_store_view {
    const float *const *vec;
    const float *const *const *src;
    const float *const *norm;
    const svdb_row *const *rows;
    unsigned shift;
    size_t row_floats;
    uint32_t dim; /* 0 until fixed by the first row */
    int metric;
    const svdb_code_kernels *ck; /* compact storage's code kernels; NULL for f32 */
    size_t n_slots;              /* high-water mark of slots used */
} svdb_store_view;

const svdb_store_view *svdb__store_view(const svdb_store *s);

static inline size_t svdb__chunk_rows(const svdb_store_view *v) { return (size_t)1 << v->shift; }
static inline const svdb_row *svdb__row(const svdb_store_view *v, size_t slot)
{
    return &v->rows[slot >> v->shift][slot & (svdb__chunk_rows(v) - 1)];
}
/* A row's float32 vector. */
static inline const float *svdb__vec(const svdb_store_view *v, size_t slot)
{
    size_t i = slot & (svdb__chunk_rows(v) - 1);
    return v->src ? v->src[slot >> v->shift][i] : v->vec[slot >> v->shift] + i * v->dim;
}
/* The row the graph walk scores: the vector (f32) or its code. */
static inline const float *svdb__graph_row(const svdb_store_view *v, size_t slot)
{
    return v->vec[slot >> v->shift] + (slot & (svdb__chunk_rows(v) - 1)) * v->row_floats;
}
/* A row's inverse norm (cosine collections only). */
static inline const float *svdb__norm(const svdb_store_view *v, size_t slot)
{
    return &v->norm[slot >> v->shift][slot & (svdb__chunk_rows(v) - 1)];
}

/* A slot below the high-water mark holding a live row. */
static inline int svdb__slot_live(const svdb_store_view *v, size_t slot)
{
    return slot < v->n_slots && svdb__row_live(svdb__row(v, slot));
}

/* An empty f32 store; SVDB_ENOMEM. Freed with svdb__store_free (NULL is
 * harmless). */
int svdb__store_new(svdb_store **out, uint32_t dim, int metric);
void svdb__store_free(svdb_store *s);
/* Chooses the storage of an empty store (f32 after new); `k` picks the code
 * kernels. */
void svdb__store_set_storage(svdb_store *s, int storage, const svdb_kernels *k);
/* Fixes the dimension of a store that has none yet. */
void svdb__store_set_dim(svdb_store *s, uint32_t dim);
/* Takes the dimension back from a store no row ever used (a batch that
 * fixed it failed): memory reserved for that dimension goes too. */
void svdb__store_unset_dim(svdb_store *s);

uint32_t svdb__store_dim(const svdb_store *s);
int svdb__store_metric(const svdb_store *s);
int svdb__store_storage(const svdb_store *s); /* SVDB_STORAGE_F32, _F16 or _INT8 */
int svdb__store_compact(const svdb_store *s); /* f16 or int8 codes */
size_t svdb__store_count(const svdb_store *s); /* live rows */
size_t svdb__store_slots(const svdb_store *s); /* high-water mark of slots used */
size_t svdb__store_free_count(const svdb_store *s); /* slots below the mark that are free */
uint64_t svdb__store_next_seq(const svdb_store *s); /* the next insert's sequence number */

/* Guarantees room for `adds` new rows and `deletes` freed slots. */
int svdb__store_reserve(svdb_store *s, size_t adds, size_t deletes);
uint32_t svdb__store_find(const svdb_store *s, const char *id, size_t len);

/* Apply steps (cannot fail once reserved). They take ownership of `blob`,
 * made by svdb__row_pack from the row's id and (new) metadata. With compact
 * storage `v` must stay valid until the row is replaced or removed, or
 * svdb__store_remap moves it: it is a row in a mapped log or snapshot. */
/* Returns the slot the row went to. */
uint32_t svdb__store_insert(svdb_store *s, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                            const float *v);
void svdb__store_replace(svdb_store *s, uint32_t slot, char *blob, uint32_t meta_len, const float *v);
void svdb__store_remove(svdb_store *s, uint32_t slot);

/* Whether p points into the snapshot map the store holds. */
int svdb__store_mapped(const svdb_store *s, const void *p);
/* The store takes *m, a map of the snapshot it loads from (leaving *m
 * empty), and releases the one it held (nothing may point into that one). */
void svdb__store_take_map(svdb_store *s, svdb_map *m);
/* The map the store holds (empty when none), for advice; the store owns it. */
const svdb_map *svdb__store_region(const svdb_store *s);

/* Loading a snapshot (format 2), after svdb__store_reserve(n_rows, free
 * slots) and svdb__store_take_map of the file's map: svdb__store_map_rows
 * points the chunks of graph rows (f32 vectors, or compact codes) that the
 * file's rows fill into the map (rows from `offset`) and copies the rest;
 * then svdb__store_load_begin, and slot by slot in order, one
 * svdb__store_load_row per live slot (`v` its float32 vector in the map) or
 * svdb__store_load_free per free one; then svdb__store_load_finish with
 * each live slot and the hash of its id (svdb__hash), which fills the id
 * table. It returns a slot whose id another slot has too, else
 * SVDB_NO_SLOT. Last, svdb__store_set_next_seq with the file's counter. */
typedef struct svdb_hashed_slot {
    uint64_t hash;
    uint32_t slot;
} svdb_hashed_slot;
void svdb__store_map_rows(svdb_store *s, size_t n_rows, uint64_t offset);
/* Slots [0, n_rows) are in use from here, so a failure part way frees the
 * rows loaded so far. */
void svdb__store_load_begin(svdb_store *s, size_t n_rows);
void svdb__store_load_row(svdb_store *s, uint32_t slot, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                          uint64_t seq, const float *v);
void svdb__store_load_free(svdb_store *s, uint32_t slot);
uint32_t svdb__store_load_finish(svdb_store *s, size_t n_rows, const svdb_hashed_slot *live, size_t n_live);
void svdb__store_set_next_seq(svdb_store *s, uint64_t next_seq);
/* Format 1 loads rows with svdb__store_insert into slots 0.. in order, the
 * vectors read first into the chunk of graph rows (f32) that
 * svdb__store_chunk gives, then sets each row's stored sequence number. */
float *svdb__store_chunk(svdb_store *s, size_t chunk);
void svdb__store_set_seq(svdb_store *s, uint32_t slot, uint64_t seq);

/* The hand-over at a checkpoint, which wrote the store to a snapshot now
 * mapped as *map (n_rows rows, vectors from vec_offset, compact codes from
 * codes_offset; slot s at row to_row[s], or at row s when to_row is NULL):
 * the store takes *map (leaving it empty), points compact originals into it, and the chunks
 * of graph rows it fills when rows are slots, then releases the previous
 * map. With to_row, svdb__store_unmap must have run first. */
void svdb__store_remap(svdb_store *s, svdb_map *map, uint64_t vec_offset, uint64_t codes_offset, size_t n_rows,
                       const uint32_t *to_row);
/* Copies the f32 chunks that point into the map to memory; on failure
 * nothing changed. */
int svdb__store_unmap(svdb_store *s);

/* Live slots in insertion order; caller frees with svdb__free. */
int svdb__store_order(const svdb_store *s, uint32_t **slots_out);

#endif
