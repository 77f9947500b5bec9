/* The row store: vectors in fixed-size chunks (growth never moves a row),
 * per-row id, metadata and insertion sequence, a free list of deleted slots
 * for reuse, and the id -> slot map. All mutation is split into a fallible
 * reserve step and an apply step that cannot fail, so a batch is applied
 * wholly or not at all. */
#ifndef SVDB_STORE_H
#define SVDB_STORE_H

#include "idmap.h"

#include <stddef.h>
#include <stdint.h>

typedef struct svdb_row {
    char *id;   /* owned; NULL when the slot is free */
    char *meta; /* owned JSON text or NULL */
    uint64_t seq;
    uint32_t id_len;
    uint32_t meta_len;
} svdb_row;

typedef struct svdb_store {
    uint32_t dim; /* 0 until fixed by the first row */
    int metric;
    unsigned shift; /* rows per chunk = 1 << shift */
    float **vec;    /* per chunk: (1 << shift) * dim floats */
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
static inline float *svdb__vec(const svdb_store *s, size_t slot)
{
    return s->vec[slot >> s->shift] + (slot & (((size_t)1 << s->shift) - 1)) * s->dim;
}
static inline size_t svdb__chunk_rows(const svdb_store *s) { return (size_t)1 << s->shift; }

void svdb__store_init(svdb_store *s, uint32_t dim, int metric);
void svdb__store_free(svdb_store *s);
/* Fixes the dimension of a store that has none yet. */
void svdb__store_set_dim(svdb_store *s, uint32_t dim);
/* Guarantees room for `adds` new rows and `deletes` freed slots. */
int svdb__store_reserve(svdb_store *s, size_t adds, size_t deletes);
uint32_t svdb__store_find(const svdb_store *s, const char *id, size_t len);

/* Apply steps (cannot fail once reserved). They take ownership of id/meta. */
/* Returns the slot the row went to. */
uint32_t svdb__store_insert(svdb_store *s, char *id, uint32_t id_len, char *meta, uint32_t meta_len, const float *v);
void svdb__store_replace(svdb_store *s, uint32_t slot, char *meta, uint32_t meta_len, const float *v);
void svdb__store_remove(svdb_store *s, uint32_t slot);

/* Live slots in insertion order; caller frees with svdb__free. */
int svdb__store_order(const svdb_store *s, uint32_t **slots_out);

#endif
