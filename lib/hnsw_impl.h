/* The graph's internals, for its own files only: hnsw.c (create, insert,
 * remove, check), hnsw_search.c (the walk over one level, and queries) and
 * hnsw_codec.c (the on-disk encodings). */
#ifndef SVDB_HNSW_IMPL_H
#define SVDB_HNSW_IMPL_H

#include "hnsw.h"
#include "space.h"
#include "store.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define HNSW_MAX_LEVEL 16
/* Level-0 links live in chunks of HNSW_L0_CHUNK nodes (the first one grows
 * by doubling up to that size), so a large graph grows without copying its
 * links and without up to 2x of unused capacity. */
#define HNSW_L0_SHIFT 14
#define HNSW_L0_CHUNK ((size_t)1 << HNSW_L0_SHIFT)
#define HNSW_N_STRIPES 1024 /* link-list locks for parallel inserts, by slot */

typedef struct searcher searcher; /* per-search scratch, below */

struct svdb_hnsw {
    svdb_hnsw_params p;
    uint32_t m0;
    double ml;
    size_t cap;
    uint8_t *level;
    uint32_t **l0;     /* chunks of blocks of (m0 + 1): count, then ids */
    size_t n_l0, cap_l0, l0_first; /* chunks allocated, table size, nodes in chunk 0 */
    /* Level-0 chunks may point into a map of the snapshot (format 2 stores
     * them as these blocks): those are not freed here; the store owns the map. */
    const char *map_lo;
    size_t map_len;
    uint64_t gen; /* bumped by every insert and removal (atomic) */
    uint32_t **upper;  /* per slot: level blocks of (m + 1) */
    uint32_t entry;
    int max_level;     /* -1 when empty */
    pthread_mutex_t pool_mu;
    searcher **pool;
    size_t n_pool, cap_pool;
    pthread_mutex_t entry_mu;             /* entry point and top level during parallel inserts */
    uint8_t *busy;                        /* during parallel inserts: 1 while a node is being inserted */
    pthread_mutex_t stripes[HNSW_N_STRIPES]; /* a node's links, during parallel inserts */
};

static inline uint32_t *links(const svdb_hnsw *h, uint32_t slot, int l)
{
    return l == 0 ? h->l0[slot >> HNSW_L0_SHIFT] + (size_t)(slot & (HNSW_L0_CHUNK - 1)) * (h->m0 + 1)
                  : h->upper[slot] + (size_t)(l - 1) * (h->p.m + 1);
}
static inline uint32_t max_links(const svdb_hnsw *h, int l) { return l == 0 ? h->m0 : h->p.m; }

/* A link is stale when its target was deleted (or its slot reused by a node
 * that does not reach level l): a delete repairs the in-neighbours its
 * search around the removed node finds, and a rare one beyond its reach may
 * still point at the slot (see svdb__hnsw_remove). Walks skip stale links;
 * re-selection and serialisation drop them. */
/* A node's level as seen by a walk. During parallel inserts a walk can reach
 * a slot that another thread is inserting right now, through a stale link
 * to the slot's previous node: the level is published with release order
 * after the node's link arrays are set up, and read with acquire order. */
static inline uint8_t level_of(const svdb_hnsw *h, uint32_t n) { return __atomic_load_n(&h->level[n], __ATOMIC_ACQUIRE); }
static inline int on_level(const svdb_hnsw *h, uint32_t n, int l)
{
    uint8_t v = level_of(h, n);
    return v != SVDB_HNSW_NO_LEVEL && (int)v >= l;
}

/* A level-0 chunk that points into the snapshot's map (not freed here). */
static inline int l0_mapped(const svdb_hnsw *h, const uint32_t *c)
{
    return h->map_lo && (const char *)c >= h->map_lo && (const char *)c < h->map_lo + h->map_len;
}

/* ------------------------------------------------ walks */

/* A node and its distance to the walk's query. */
typedef struct {
    float d;
    uint32_t id;
} pair;

/* Per-search scratch: visit marks by generation, and the two heaps. A mark
 * is one byte per node (the array is cleared once every 255 searches), so
 * each searcher in the pool costs a byte per node. */
struct searcher {
    uint8_t *mark;
    size_t mark_cap;
    uint8_t gen;
    pair *cand, *res;
    size_t cand_cap, res_cap;
};

/* A query: a vector and its inverse norm (1 for prepared queries). */
typedef struct {
    const float *v;
    float inv_norm;
} qref;

static inline float dist(const svdb_store_view *s, const svdb_space *sp, qref q, uint32_t slot)
{
    float raw = svdb__space_walk_one(sp, q.v, svdb__graph_row(s, slot));
    return svdb__space_dist(sp->metric, raw, q.inv_norm, SVDB_SPACE_ROW_NORM(sp->metric, *svdb__norm(s, slot)));
}

/* A node as the query of a walk (inserts and removals): scaled by its
 * inverse norm under cosine. */
static inline qref node_ref(const svdb_store_view *s, const svdb_space *sp, uint32_t slot)
{
    qref q = {svdb__vec(s, slot), SVDB_SPACE_ROW_NORM(sp->metric, *svdb__norm(s, slot))};
    return q;
}

/* The space a store's rows are scored in, with float32 kernels k. */
static inline svdb_space space_of(const svdb_store_view *s, const svdb_kernels *k)
{
    svdb_space sp;
    svdb__space_init(&sp, s->metric, s->dim, k, s->ck);
    return sp;
}

/* A walk over one level: a query's, or an insert's or removal's. */
typedef struct {
    const svdb_hnsw *h;
    const svdb_store_view *s; /* the store's rows, read through its view */
    const svdb_space *sp;
    searcher *sr;
    svdb_admit_fn admit; /* NULL: every live node may be a result */
    void *admit_ctx;
    int locked; /* parallel insert: read link lists under their stripe lock */
} walk;

/* A node's link list lock, taken only while inserts run in parallel. */
static inline void lock_node(const svdb_hnsw *h, int locked, uint32_t slot)
{
    if (locked) pthread_mutex_lock((pthread_mutex_t *)&h->stripes[slot % HNSW_N_STRIPES]);
}
static inline void unlock_node(const svdb_hnsw *h, int locked, uint32_t slot)
{
    if (locked) pthread_mutex_unlock((pthread_mutex_t *)&h->stripes[slot % HNSW_N_STRIPES]);
}

/* A node another thread is inserting right now has links only on the levels
 * it has done so far: a walk may score it and pick it as a neighbour, but
 * must not descend through it, or the next level's search would start from
 * a node without links there and find nothing else. */
static inline int busy(const svdb_hnsw *h, uint32_t n) { return h->busy && __atomic_load_n(&h->busy[n], __ATOMIC_ACQUIRE); }

/* hnsw_search.c: the searcher pool and the walk over one level. */
searcher *svdb__hnsw_take_searcher(svdb_hnsw *h);
void svdb__hnsw_give_searcher(svdb_hnsw *h, searcher *s);
void svdb__hnsw_searcher_free(searcher *s);
/* Greedy descent on one upper level from ep (at distance *ep_d); returns
 * the nearest node found, its distance in *ep_d. */
uint32_t svdb__hnsw_greedy(const walk *w, qref q, uint32_t ep, float *ep_d, int l);
/* The ef-bounded best-first search of level l from ep; leaves the results
 * as a max-heap in w->sr->res (*n_res entries). SVDB_ENOMEM only. */
int svdb__hnsw_search_level(const walk *w, qref q, uint32_t ep, float ep_d, int l, size_t ef, size_t *n_res);

#endif
