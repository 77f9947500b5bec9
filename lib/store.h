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

typedef struct svdb_store {
    uint32_t dim; /* 0 until fixed by the first row */
    int metric;
    int storage;    /* SVDB_STORAGE_F32, _F16 or _INT8 */
    unsigned shift; /* rows per chunk = 1 << shift */
    /* per chunk: (1 << shift) rows of row_floats floats, the rows the graph
     * walk reads: the vectors themselves (f32), or their codes (compact) */
    float **vec;
    size_t row_floats;
    /* Compact storage only: per chunk, each row's float32 original, which
     * lives in a memory map of the snapshot or of the log (never freed here;
     * see svdb__store_map), and the code kernels. NULL for f32. */
    const float ***src;
    const svdb_code_kernels *ck;
    /* A map of the snapshot, owned here (see mapfile.h): private and
     * writable for format 2, which keeps slot i at row i, so f32 chunks the
     * file fills point into it (a write to a row copies its page); and a
     * compact store's originals. The graph's level-0 chunks borrow it. */
    svdb_map snap_map;
    float **norm;   /* per chunk: 1/|x| per row, used by cosine */
    svdb_row **rows;
    size_t n_chunks, cap_chunks;
    size_t n_slots; /* high-water mark of slots used */
    uint32_t *free_slots;
    size_t n_free, cap_free;
    size_t n_live;
    uint64_t next_seq;
    svdb_idmap map;
} svdb_store;

static inline svdb_row *svdb__row(const svdb_store *s, size_t slot)
{
    return &s->rows[slot >> s->shift][slot & (((size_t)1 << s->shift) - 1)];
}
/* A row's float32 vector. */
static inline const float *svdb__vec(const svdb_store *s, size_t slot)
{
    size_t i = slot & (((size_t)1 << s->shift) - 1);
    return s->src ? s->src[slot >> s->shift][i] : s->vec[slot >> s->shift] + i * s->dim;
}
/* The row the graph walk scores: the vector (f32) or its code. */
static inline const float *svdb__graph_row(const svdb_store *s, size_t slot)
{
    return s->vec[slot >> s->shift] + (slot & (((size_t)1 << s->shift) - 1)) * s->row_floats;
}
static inline size_t svdb__chunk_rows(const svdb_store *s) { return (size_t)1 << s->shift; }
/* A row's inverse norm (cosine collections only). */
static inline float *svdb__norm(const svdb_store *s, size_t slot)
{
    return &s->norm[slot >> s->shift][slot & (svdb__chunk_rows(s) - 1)];
}

void svdb__store_init(svdb_store *s, uint32_t dim, int metric);
/* Chooses the storage of an empty store (f32 after init); `k` picks the code
 * kernels. */
void svdb__store_set_storage(svdb_store *s, int storage, const svdb_kernels *k);
static inline int svdb__store_compact(const svdb_store *s) { return s->ck != NULL; }
void svdb__store_free(svdb_store *s);
/* Fixes the dimension of a store that has none yet. */
void svdb__store_set_dim(svdb_store *s, uint32_t dim);
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

static inline int svdb__store_mapped(const svdb_store *s, const void *p) { return svdb__map_contains(&s->snap_map, p); }
/* The store takes *m, a map of the snapshot it loads from (leaving *m
 * empty), and releases the one it held (nothing may point into that one). */
void svdb__store_take_map(svdb_store *s, svdb_map *m);
/* The map the store holds (empty when none), for advice; the store owns it. */
static inline const svdb_map *svdb__store_region(const svdb_store *s) { return &s->snap_map; }

/* Loading a snapshot (format 2), after svdb__store_reserve(n_rows, free
 * slots) and svdb__store_take_map of the file's map: svdb__store_map_rows
 * points the chunks of graph rows (f32 vectors, or compact codes) that the
 * file's rows fill into the map (rows from `offset`) and copies the rest;
 * then, slot by slot in order, one svdb__store_load_row per live slot (`v`
 * its float32 vector in the map) or svdb__store_load_free per free one;
 * then svdb__store_load_finish with each live slot and the hash of its id
 * (svdb__hash), which fills the id table. It returns a slot whose id
 * another slot has too, else SVDB_NO_SLOT. */
typedef struct svdb_hashed_slot {
    uint64_t hash;
    uint32_t slot;
} svdb_hashed_slot;
void svdb__store_map_rows(svdb_store *s, size_t n_rows, uint64_t offset);
void svdb__store_load_row(svdb_store *s, uint32_t slot, char *blob, const char *id, uint32_t id_len, uint32_t meta_len,
                          uint64_t seq, const float *v);
void svdb__store_load_free(svdb_store *s, uint32_t slot);
uint32_t svdb__store_load_finish(svdb_store *s, size_t n_rows, const svdb_hashed_slot *live, size_t n_live);

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
