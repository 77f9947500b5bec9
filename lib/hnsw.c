/* Hierarchical navigable small-world graph (Malkov & Yashunin), with the
 * neighbour-selection heuristic, deterministic levels and real deletion. */
#include "hnsw.h"

#include "alloc.h"
#include "error.h"
#include "svdb.h"

#include <math.h>
#include <pthread.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 16
/* Level-0 links live in chunks of L0_CHUNK nodes (the first one grows by
 * doubling up to that size), so a large graph grows without copying its
 * links and without up to 2x of unused capacity. */
#define L0_SHIFT 14
#define L0_CHUNK ((size_t)1 << L0_SHIFT)
#define N_STRIPES 1024 /* link-list locks for parallel inserts, by slot */
#define MIN_PARALLEL 256 /* smaller batches are linked on one thread */
#define MIN_BEFORE_YIELD 32 /* rows insert_some links before it may stop early */

typedef struct {
    float d;
    uint32_t id;
} pair;

/* Per-search scratch: visit marks by generation, and the two heaps. A mark
 * is one byte per node (the array is cleared once every 255 searches), so
 * each searcher in the pool costs a byte per node. */
typedef struct searcher {
    uint8_t *mark;
    size_t mark_cap;
    uint8_t gen;
    pair *cand, *res;
    size_t cand_cap, res_cap;
} searcher;

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
    pthread_mutex_t stripes[N_STRIPES];   /* a node's links, during parallel inserts */
};

int svdb__hnsw_create(svdb_hnsw **out, const svdb_hnsw_params *p)
{
    svdb_hnsw *h = svdb__calloc(1, sizeof *h);
    if (!h) return svdb__fail(SVDB_ENOMEM, "out of memory");
    h->p = *p;
    h->m0 = 2 * p->m;
    h->ml = 1.0 / log((double)(p->m > 1 ? p->m : 2));
    h->max_level = -1;
    h->entry = UINT32_MAX;
    pthread_mutex_init(&h->pool_mu, NULL);
    pthread_mutex_init(&h->entry_mu, NULL);
    for (int i = 0; i < N_STRIPES; i++) pthread_mutex_init(&h->stripes[i], NULL);
    *out = h;
    return SVDB_OK;
}

static void searcher_free(searcher *s)
{
    if (!s) return;
    svdb__free(s->mark);
    svdb__free(s->cand);
    svdb__free(s->res);
    svdb__free(s);
}

static int l0_mapped(const svdb_hnsw *h, const uint32_t *c)
{
    return h->map_lo && (const char *)c >= h->map_lo && (const char *)c < h->map_lo + h->map_len;
}

void svdb__hnsw_free(svdb_hnsw *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->cap; i++) svdb__free(h->upper ? h->upper[i] : NULL);
    for (size_t i = 0; i < h->n_pool; i++) searcher_free(h->pool[i]);
    svdb__free(h->pool);
    svdb__free(h->upper);
    for (size_t i = 0; i < h->n_l0; i++)
        if (!l0_mapped(h, h->l0[i])) svdb__free(h->l0[i]);
    svdb__free(h->l0);
    svdb__free(h->level);
    pthread_mutex_destroy(&h->pool_mu);
    pthread_mutex_destroy(&h->entry_mu);
    for (int i = 0; i < N_STRIPES; i++) pthread_mutex_destroy(&h->stripes[i]);
    svdb__free(h);
}

const svdb_hnsw_params *svdb__hnsw_params(const svdb_hnsw *h) { return &h->p; }
uint8_t svdb__hnsw_level_of(const svdb_hnsw *h, uint32_t slot) { return slot < h->cap ? h->level[slot] : SVDB_HNSW_NO_LEVEL; }

int svdb__hnsw_reserve(svdb_hnsw *h, size_t n_slots)
{
    if (n_slots <= h->cap) return SVDB_OK;
    size_t cap;
    if (n_slots <= L0_CHUNK) {
        cap = h->cap ? h->cap : 1024;
        while (cap < n_slots) cap *= 2;
    } else {
        cap = (n_slots + L0_CHUNK - 1) & ~(L0_CHUNK - 1);
    }
    /* Each step keeps the graph usable if a later one fails: cap moves last. */
    size_t block = (size_t)(h->m0 + 1) * sizeof(uint32_t), chunks = (cap + L0_CHUNK - 1) >> L0_SHIFT;
    if (chunks > h->cap_l0) {
        uint32_t **t = svdb__realloc(h->l0, chunks * sizeof *t);
        if (!t) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
        h->l0 = t;
        h->cap_l0 = chunks;
    }
    size_t first = cap < L0_CHUNK ? cap : L0_CHUNK;
    if (h->l0_first < first) {
        uint32_t *c = svdb__realloc(h->n_l0 ? h->l0[0] : NULL, first * block);
        if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
        h->l0[0] = c;
        h->n_l0 = h->n_l0 ? h->n_l0 : 1;
        h->l0_first = first;
    }
    while (h->n_l0 < chunks) {
        uint32_t *c = svdb__malloc(L0_CHUNK * block);
        if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
        h->l0[h->n_l0++] = c;
    }
    uint8_t *lv = svdb__realloc(h->level, cap);
    if (!lv) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
    h->level = lv;
    uint32_t **up = svdb__realloc(h->upper, cap * sizeof *up);
    if (!up) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
    h->upper = up;
    memset(h->level + h->cap, SVDB_HNSW_NO_LEVEL, cap - h->cap);
    memset(h->upper + h->cap, 0, (cap - h->cap) * sizeof *up);
    h->cap = cap;
    return SVDB_OK;
}

static inline uint32_t *links(const svdb_hnsw *h, uint32_t slot, int l)
{
    return l == 0 ? h->l0[slot >> L0_SHIFT] + (size_t)(slot & (L0_CHUNK - 1)) * (h->m0 + 1)
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

/* ------------------------------------------------------------ distances */

/* A query: a vector and, for cosine, its inverse norm (1 for prepared queries). */
typedef struct {
    const float *v;
    float inv_norm;
} qref;

static inline float node_norm(const svdb_store *s, uint32_t slot)
{
    return *svdb__norm(s, slot);
}

/* The kernel that scores a query against graph rows: float32 rows, or the
 * codes of compact storage. */
static inline svdb_gather_fn graph_gather(const svdb_store *s, const svdb_kernels *k)
{
    if (s->ck) return s->metric == SVDB_METRIC_L2 ? s->ck->l2_gather : s->ck->dot_gather;
    return s->metric == SVDB_METRIC_L2 ? k->l2_gather : k->dot_gather;
}

static inline float dist(const svdb_store *s, const svdb_kernels *k, qref q, uint32_t slot)
{
    float raw;
    if (s->ck) {
        const float *row = svdb__graph_row(s, slot);
        graph_gather(s, k)(q.v, &row, 1, s->dim, &raw);
    } else {
        raw = (s->metric == SVDB_METRIC_L2 ? k->l2_pair : k->dot_pair)(q.v, svdb__vec(s, slot), s->dim);
    }
    if (s->metric == SVDB_METRIC_COSINE) raw = 1.0f - raw * q.inv_norm * node_norm(s, slot);
    else if (s->metric == SVDB_METRIC_IP) raw = 1.0f - raw;
    return raw != raw ? __builtin_inff() : raw;
}

static inline qref node_ref(const svdb_store *s, uint32_t slot)
{
    qref q = {svdb__vec(s, slot), s->metric == SVDB_METRIC_COSINE ? node_norm(s, slot) : 1.0f};
    return q;
}

/* ------------------------------------------------------------ heaps of pairs */

/* Binary heaps of pairs: MIN_HEAP for candidates (nearest on top), and a
 * max-heap for results (farthest on top). */
#define DEFINE_HEAP(NAME, BEFORE)                                                                  \
    static inline void NAME##_push(pair *a, size_t *n, pair x)                                     \
    {                                                                                              \
        size_t i = (*n)++;                                                                         \
        while (i > 0) {                                                                            \
            size_t p = (i - 1) / 2;                                                                \
            if (!(x.d BEFORE a[p].d)) break;                                                       \
            a[i] = a[p];                                                                           \
            i = p;                                                                                 \
        }                                                                                          \
        a[i] = x;                                                                                  \
    }                                                                                              \
    static inline pair NAME##_pop(pair *a, size_t *n)                                              \
    {                                                                                              \
        pair top = a[0], x = a[--(*n)];                                                            \
        size_t i = 0, m = *n;                                                                      \
        for (;;) {                                                                                 \
            size_t c = 2 * i + 1;                                                                  \
            if (c >= m) break;                                                                     \
            if (c + 1 < m && a[c + 1].d BEFORE a[c].d) c++;                                        \
            if (!(a[c].d BEFORE x.d)) break;                                                       \
            a[i] = a[c];                                                                           \
            i = c;                                                                                 \
        }                                                                                          \
        if (m) a[i] = x;                                                                           \
        return top;                                                                                \
    }
DEFINE_HEAP(minh, <)
DEFINE_HEAP(maxh, >)

static int grow(pair **a, size_t *cap, size_t need)
{
    if (need <= *cap) return SVDB_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    pair *p = svdb__realloc(*a, c * sizeof *p);
    if (!p) return svdb__fail(SVDB_ENOMEM, "out of memory in graph search");
    *a = p;
    *cap = c;
    return SVDB_OK;
}

/* ------------------------------------------------------------ searcher pool */

static searcher *take_searcher(svdb_hnsw *h)
{
    pthread_mutex_lock(&h->pool_mu);
    searcher *s = h->n_pool ? h->pool[--h->n_pool] : NULL;
    pthread_mutex_unlock(&h->pool_mu);
    if (!s) s = svdb__calloc(1, sizeof *s);
    if (s && s->mark_cap < h->cap) {
        uint8_t *m = svdb__calloc(h->cap, sizeof *m);
        if (!m) {
            searcher_free(s);
            return NULL;
        }
        svdb__free(s->mark);
        s->mark = m;
        s->mark_cap = h->cap;
        s->gen = 0;
    }
    return s;
}

static void give_searcher(svdb_hnsw *h, searcher *s)
{
    pthread_mutex_lock(&h->pool_mu);
    if (h->n_pool == h->cap_pool) {
        size_t c = h->cap_pool ? h->cap_pool * 2 : 8;
        searcher **p = svdb__realloc(h->pool, c * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&h->pool_mu);
            searcher_free(s);
            return;
        }
        h->pool = p;
        h->cap_pool = c;
    }
    h->pool[h->n_pool++] = s;
    pthread_mutex_unlock(&h->pool_mu);
}

/* ------------------------------------------------------------ layer search */

typedef struct {
    const svdb_hnsw *h;
    const svdb_store *s;
    const svdb_kernels *k;
    searcher *sr;
    svdb_admit_fn admit; /* NULL: every live node may be a result */
    void *admit_ctx;
    int locked; /* parallel insert: read link lists under their stripe lock */
} walk;

static inline void lock_node(const svdb_hnsw *h, int locked, uint32_t slot)
{
    if (locked) pthread_mutex_lock((pthread_mutex_t *)&h->stripes[slot % N_STRIPES]);
}
static inline void unlock_node(const svdb_hnsw *h, int locked, uint32_t slot)
{
    if (locked) pthread_mutex_unlock((pthread_mutex_t *)&h->stripes[slot % N_STRIPES]);
}

/* A node's links at level l, copied under its lock when inserts run in
 * parallel; otherwise the list itself. */
static inline const uint32_t *read_links(const walk *w, uint32_t slot, int l, uint32_t *buf)
{
    const uint32_t *ln = links(w->h, slot, l);
    if (!w->locked) return ln;
    lock_node(w->h, 1, slot);
    memcpy(buf, ln, ((size_t)ln[0] + 1) * sizeof *ln);
    unlock_node(w->h, 1, slot);
    return buf;
}

/* A node another thread is inserting right now has links only on the levels
 * it has done so far: a walk may score it and pick it as a neighbour, but
 * must not descend through it, or the next level's search would start from
 * a node without links there and find nothing else. */
static inline int busy(const svdb_hnsw *h, uint32_t n) { return h->busy && __atomic_load_n(&h->busy[n], __ATOMIC_ACQUIRE); }

/* Nodes in the graph are live rows (deletes unlink them), so only the
 * filter decides. */
static inline int admitted(const walk *w, uint32_t id) { return !w->admit || w->admit(w->admit_ctx, id); }

/* Greedy descent on one upper level. */
static uint32_t greedy(const walk *w, qref q, uint32_t ep, float *ep_d, int l)
{
    const svdb_store *s = w->s;
    const svdb_gather_fn gf = graph_gather(s, w->k);
    uint32_t buf[2 * 64 + 1];
    for (int changed = 1; changed;) {
        changed = 0;
        const uint32_t *ln = read_links(w, ep, l, buf);
        /* Score the node's neighbours in one gather call (rows in parallel);
         * its per-row arithmetic is the pair kernel's, so results are the same. */
        uint32_t ids[2 * 64];
        const float *rows[2 * 64];
        float ds[2 * 64];
        size_t m = 0;
        for (uint32_t i = 1; i <= ln[0]; i++) {
            uint32_t n = ln[i];
            if (!on_level(w->h, n, l)) continue;
            ids[m] = n;
            rows[m++] = svdb__graph_row(s, n);
        }
        if (m) gf(q.v, rows, m, s->dim, ds);
        for (size_t j = 0; j < m; j++) {
            float d = ds[j];
            if (s->metric == SVDB_METRIC_COSINE) d = 1.0f - d * q.inv_norm * node_norm(s, ids[j]);
            else if (s->metric == SVDB_METRIC_IP) d = 1.0f - d;
            if (d != d) d = __builtin_inff();
            if (d < *ep_d && !busy(w->h, ids[j])) {
                *ep_d = d;
                ep = ids[j];
                changed = 1;
            }
        }
    }
    return ep;
}

/* The ef-bounded best-first search of one level; leaves the results as a
 * max-heap in sr->res (n_res entries). Everything the loop reads is copied
 * into locals first: the distance kernel is an indirect call, after which
 * the compiler would otherwise reload each field through its pointer. */
static int search_level(const walk *w, qref q, uint32_t ep, float ep_d, int l, size_t ef, size_t *n_res)
{
    searcher *sr = w->sr;
    const svdb_hnsw *h = w->h;
    const svdb_store *s = w->s;
    if (++sr->gen == 0) { /* generations wrapped: clear the marks once */
        memset(sr->mark, 0, sr->mark_cap * sizeof *sr->mark);
        sr->gen = 1;
    }
    const uint8_t gen = sr->gen;
    uint8_t *const mark = sr->mark;
    const uint8_t *const level = h->level;
    float *const *const vecs = s->vec;
    const float *const *const norms = (const float *const *)s->norm;
    const unsigned shift = s->shift;
    const size_t mask = svdb__chunk_rows(s) - 1, dim = s->dim, stride = s->row_floats;
    const int metric = s->metric;
    const svdb_gather_fn gf = graph_gather(s, w->k);
    const float qn = q.inv_norm;
    const int locked = w->locked;
    size_t nc = 0, nr = 0;
    SVDB_TRY(grow(&sr->res, &sr->res_cap, ef + 1));
    SVDB_TRY(grow(&sr->cand, &sr->cand_cap, 64));
    pair *res = sr->res, *cand = sr->cand;
    size_t cand_cap = sr->cand_cap;
    mark[ep] = gen;
    pair e = {ep_d, ep};
    minh_push(cand, &nc, e);
    if (admitted(w, ep)) maxh_push(res, &nr, e);
    uint32_t buf[2 * 64 + 1];
    while (nc) {
        pair c = minh_pop(cand, &nc);
        if (nr >= ef && c.d > res[0].d) break;
        const uint32_t *ln = locked ? read_links(w, c.id, l, buf) : links(h, c.id, l);
        uint32_t cnt = ln[0];
        for (uint32_t i = 1; i <= cnt; i++) __builtin_prefetch(&mark[ln[i]]);
        /* Gather the unvisited neighbours, then score them in one call. */
        uint32_t ids[2 * 64];
        const float *rows[2 * 64];
        float ds[2 * 64];
        size_t m = 0;
        for (uint32_t i = 1; i <= cnt; i++) {
            uint32_t n = ln[i];
            if (mark[n] == gen) continue;
            mark[n] = gen;
            uint8_t lv = __atomic_load_n(&level[n], __ATOMIC_ACQUIRE);
            if (lv == SVDB_HNSW_NO_LEVEL || (int)lv < l) continue;
            ids[m] = n;
            rows[m] = vecs[n >> shift] + (n & mask) * stride;
            __builtin_prefetch(rows[m]);
            m++;
        }
        if (!m) continue;
        gf(q.v, rows, m, dim, ds);
        for (size_t j = 0; j < m; j++) {
            uint32_t n = ids[j];
            float d = ds[j];
            if (metric == SVDB_METRIC_COSINE) d = 1.0f - d * qn * norms[n >> shift][n & mask];
            else if (metric == SVDB_METRIC_IP) d = 1.0f - d;
            if (d != d) d = __builtin_inff();
            if (nr < ef || d < res[0].d) {
                if (nc + 1 > cand_cap) {
                    sr->cand = cand;
                    SVDB_TRY(grow(&sr->cand, &sr->cand_cap, nc + 1));
                    cand = sr->cand;
                    cand_cap = sr->cand_cap;
                }
                pair x = {d, n};
                minh_push(cand, &nc, x);
                if (admitted(w, n)) {
                    maxh_push(res, &nr, x);
                    if (nr > ef) maxh_pop(res, &nr);
                }
            }
        }
    }
    *n_res = nr;
    return SVDB_OK;
}

/* ------------------------------------------------------------ neighbour selection */

static int by_dist(const void *a, const void *b)
{
    float x = ((const pair *)a)->d, y = ((const pair *)b)->d;
    if (x != y) return (x > y) - (x < y);
    uint32_t i = ((const pair *)a)->id, j = ((const pair *)b)->id;
    return (i > j) - (i < j);
}

/* Keeps a candidate only when it is closer to the base than to every
 * neighbour already kept: spreads links over directions. `c` is sorted. */
static size_t select_neighbors(const svdb_store *s, const svdb_kernels *k, pair *c, size_t n, size_t m, uint32_t *out)
{
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        int good = 1;
        qref ci = node_ref(s, c[i].id);
        for (size_t j = 0; j < kept && good; j++)
            if (dist(s, k, ci, out[j]) < c[i].d) good = 0;
        if (good) out[kept++] = c[i].id;
    }
    return kept;
}

/* Nodes that lost an in-link to a re-selection or a removal, while one
 * insert (on one thread) or one delete changes the graph. */
typedef struct {
    uint32_t ids[4 * 64];
    size_t n;
} lost_links;

static void note_lost(lost_links *lost, uint32_t id)
{
    if (lost && lost->n < sizeof lost->ids / sizeof lost->ids[0]) lost->ids[lost->n++] = id;
}

/* Adds `from` to the links of `to` at level l, re-selecting when full; the
 * links that re-selection drops go to `lost` (or NULL). */
static int add_link_unlocked(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t to, uint32_t from,
                             int l, lost_links *lost);

static int add_link(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t to, uint32_t from, int l,
                    int locked)
{
    lock_node(h, locked, to);
    int rc = add_link_unlocked(h, s, k, to, from, l, NULL);
    unlock_node(h, locked, to);
    return rc;
}

static int add_link_unlocked(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t to, uint32_t from,
                             int l, lost_links *lost)
{
    uint32_t *ln = links(h, to, l);
    uint32_t cap = max_links(h, l);
    for (uint32_t i = 1; i <= ln[0]; i++)
        if (ln[i] == from) return SVDB_OK;
    if (ln[0] < cap) {
        ln[++ln[0]] = from;
        return SVDB_OK;
    }
    pair c[2 * 64 + 1];
    pair *cands = cap + 1 <= sizeof c / sizeof c[0] ? c : svdb__malloc((cap + 1) * sizeof *cands);
    if (!cands) return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    qref base = node_ref(s, to);
    size_t n = 0;
    for (uint32_t i = 1; i <= ln[0]; i++)
        if (on_level(h, ln[i], l)) cands[n++] = (pair){dist(s, k, base, ln[i]), ln[i]};
    cands[n++] = (pair){dist(s, k, base, from), from};
    qsort(cands, n, sizeof *cands, by_dist);
    uint32_t sel[2 * 64 + 1];
    uint32_t *out = cap <= sizeof sel / sizeof sel[0] ? sel : svdb__malloc(cap * sizeof *out);
    if (!out) {
        if (cands != c) svdb__free(cands);
        return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    }
    size_t kept = select_neighbors(s, k, cands, n, cap, out);
    for (size_t i = 0; lost && i < n; i++) {
        int in = 0;
        for (size_t j = 0; j < kept && !in; j++) in = out[j] == cands[i].id;
        if (!in) note_lost(lost, cands[i].id);
    }
    memcpy(ln + 1, out, kept * sizeof *out);
    ln[0] = (uint32_t)kept;
    if (cands != c) svdb__free(cands);
    if (out != sel) svdb__free(out);
    return SVDB_OK;
}

static int links_to(const svdb_hnsw *h, uint32_t x, uint32_t d, int l)
{
    const uint32_t *lx = links(h, x, l);
    for (uint32_t i = 1; i <= lx[0]; i++)
        if (lx[i] == d) return 1;
    return 0;
}

/* Gives v a link from x at level l: appended when x has room, else in
 * place of x's farthest link, which goes to `lost`. */
static void force_link(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t x, uint32_t v, int l,
                       lost_links *lost)
{
    uint32_t *lx = links(h, x, l);
    if (links_to(h, x, v, l)) return;
    if (lx[0] < max_links(h, l)) {
        lx[++lx[0]] = v;
        return;
    }
    uint32_t far = 1;
    qref base = node_ref(s, x);
    float far_d = -1.0f;
    for (uint32_t i = 1; i <= lx[0]; i++) {
        float dd = on_level(h, lx[i], l) ? dist(s, k, base, lx[i]) : __builtin_inff();
        if (dd > far_d) {
            far_d = dd;
            far = i;
        }
    }
    if (on_level(h, lx[far], l)) note_lost(lost, lx[far]);
    lx[far] = v;
}

/* Nodes that lost an in-link (`lost`: dropped by a re-selection, or from a
 * removed node) and have none left from the nodes around them (`near`, the
 * search's results there, and `extra`) get one from their nearest neighbour
 * (never `gone`, a node being removed), so that no node is cut off from the
 * graph. Uses sr's marks. */
static void keep_reachable(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, searcher *sr, int l,
                           const pair *near, size_t n_near, const uint32_t *extra, size_t n_extra, lost_links *lost,
                           uint32_t gone)
{
    if (!sr || !lost->n) return;
    if (++sr->gen == 0) {
        memset(sr->mark, 0, sr->mark_cap * sizeof *sr->mark);
        sr->gen = 1;
    }
    for (size_t i = 0; i < n_near + n_extra; i++) {
        uint32_t x = i < n_near ? near[i].id : extra[i - n_near];
        if (!on_level(h, x, l)) continue;
        const uint32_t *lx = links(h, x, l);
        for (uint32_t j = 1; j <= lx[0]; j++) sr->mark[lx[j]] = sr->gen;
    }
    for (size_t i = 0; i < lost->n; i++) {
        uint32_t v = lost->ids[i];
        if (sr->mark[v] == sr->gen || v == gone || !on_level(h, v, l)) continue;
        sr->mark[v] = sr->gen;
        /* from its nearest neighbour with room, else from its nearest */
        const uint32_t *lv = links(h, v, l);
        uint32_t x = UINT32_MAX, room = UINT32_MAX;
        float best = __builtin_inff(), best_room = __builtin_inff();
        qref base = node_ref(s, v);
        for (uint32_t j = 1; j <= lv[0]; j++) {
            if (lv[j] == gone || lv[j] == v || !on_level(h, lv[j], l)) continue;
            float dd = dist(s, k, base, lv[j]);
            if (x == UINT32_MAX || dd < best) {
                best = dd;
                x = lv[j];
            }
            if (links(h, lv[j], l)[0] < max_links(h, l) && (room == UINT32_MAX || dd < best_room)) {
                best_room = dd;
                room = lv[j];
            }
        }
        if (room != UINT32_MAX) x = room;
        for (size_t j = 0; x == UINT32_MAX && j < n_near; j++)
            if (near[j].id != v && on_level(h, near[j].id, l)) x = near[j].id;
        if (x == UINT32_MAX || x == v) continue;
        size_t before = lost->n;
        force_link(h, s, k, x, v, l, lost);
        for (size_t j = before; j < lost->n; j++) sr->mark[lost->ids[j]] = 0; /* their in-link may be gone */
    }
}

/* ------------------------------------------------------------ insert */

static int draw_level(const svdb_hnsw *h, uint64_t seq)
{
    uint64_t z = h->p.seed ^ (seq + 1) * 0x9E3779B97F4A7C15ull; /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 1.0) / 9007199254740992.0; /* (0, 1] */
    int l = (int)floor(-log(u) * h->ml);
    return l > MAX_LEVEL ? MAX_LEVEL : l;
}

static int insert_one(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot, int locked)
{
    int L = draw_level(h, svdb__row(s, slot)->seq);
    if (L > 0) {
        h->upper[slot] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t));
        if (!h->upper[slot]) return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    }
    links(h, slot, 0)[0] = 0;
    if (h->busy) __atomic_store_n(&h->busy[slot], 1, __ATOMIC_RELAXED); /* cleared by the worker */
    __atomic_store_n(&h->level[slot], (uint8_t)L, __ATOMIC_RELEASE);
    /* A node that raises the top level keeps the entry lock for its whole
     * insert (rare: about one node in M^level), as hnswlib does. */
    if (locked) pthread_mutex_lock(&h->entry_mu);
    int hold = 1;
    if (h->max_level < 0) {
        h->entry = slot;
        h->max_level = L;
        if (locked) pthread_mutex_unlock(&h->entry_mu);
        return SVDB_OK;
    }
    uint32_t ep = h->entry;
    int top = h->max_level;
    if (locked && L <= top) {
        pthread_mutex_unlock(&h->entry_mu);
        hold = 0;
    }
    searcher *sr = take_searcher(h);
    int rc = sr ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    walk w = {h, s, k, sr, NULL, NULL, locked};
    qref q = node_ref(s, slot);
    float ep_d = rc == SVDB_OK ? dist(s, k, q, ep) : 0.0f;
    for (int l = top; rc == SVDB_OK && l > L; l--) ep = greedy(&w, q, ep, &ep_d, l);
    uint32_t out[2 * 64 + 1];
    for (int l = L < top ? L : top; rc == SVDB_OK && l >= 0; l--) {
        size_t nr;
        rc = search_level(&w, q, ep, ep_d, l, h->p.ef_construction, &nr);
        if (rc != SVDB_OK) break;
        qsort(sr->res, nr, sizeof *sr->res, by_dist);
        /* the node itself may be reached through a stale link to its slot */
        size_t j = 0;
        for (size_t i = 0; i < nr; i++)
            if (sr->res[i].id != slot) sr->res[j++] = sr->res[i];
        nr = j;
        size_t kept = select_neighbors(s, k, sr->res, nr, h->p.m, out);
        lock_node(h, locked, slot);
        uint32_t *ln = links(h, slot, l);
        memcpy(ln + 1, out, kept * sizeof *out);
        ln[0] = (uint32_t)kept;
        unlock_node(h, locked, slot);
        if (locked) {
            for (size_t i = 0; i < kept && rc == SVDB_OK; i++) rc = add_link(h, s, k, out[i], slot, l, 1);
        } else { /* one thread: the links re-selection drops must leave no node cut off */
            lost_links lost;
            lost.n = 0;
            for (size_t i = 0; i < kept && rc == SVDB_OK; i++) rc = add_link_unlocked(h, s, k, out[i], slot, l, &lost);
            if (rc == SVDB_OK) keep_reachable(h, s, k, sr, l, sr->res, nr, &slot, 1, &lost, UINT32_MAX);
        }
        size_t e = 0; /* the next level starts at the nearest node not being inserted */
        while (e < nr && busy(h, sr->res[e].id)) e++;
        if (e < nr) {
            ep = sr->res[e].id;
            ep_d = sr->res[e].d;
        }
    }
    if (sr) give_searcher(h, sr);
    /* Only a node holding the entry lock can be above the top level. */
    if (rc == SVDB_OK && hold && L > h->max_level) {
        h->entry = slot;
        h->max_level = L;
    }
    if (locked && hold) pthread_mutex_unlock(&h->entry_mu);
    return rc;
}

/* Inserts one node on the calling thread; a node whose insert failed part
 * way is unlinked again, so the graph holds only fully linked nodes. */
static int insert_or_undo(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot)
{
    int rc = insert_one(h, s, k, slot, 0);
    if (rc != SVDB_OK) svdb__hnsw_remove(h, s, k, slot);
    return rc;
}

int svdb__hnsw_insert(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot)
{
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    SVDB_TRY(svdb__hnsw_reserve(h, (size_t)slot + 1));
    return insert_or_undo(h, s, k, slot);
}

typedef struct {
    svdb_hnsw *h;
    const svdb_store *s;
    const svdb_kernels *k;
    const uint32_t *slots;
    size_t n, next;
    int rc;
    const int *yield; /* or NULL */
    uint32_t failed[64]; /* nodes whose insert failed part way (one per thread at most) */
    unsigned n_failed;
} insert_job;

static void *insert_worker(void *arg)
{
    insert_job *job = arg;
    for (;;) {
        /* checked before claiming a slot; the first few always go in, so a
         * steady stream of callers cannot stop linking altogether */
        if (job->yield && __atomic_load_n(&job->next, __ATOMIC_RELAXED) >= MIN_BEFORE_YIELD &&
            __atomic_load_n(job->yield, __ATOMIC_RELAXED) > 0)
            break;
        size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n || __atomic_load_n(&job->rc, __ATOMIC_RELAXED) != SVDB_OK) break;
        int rc = insert_one(job->h, job->s, job->k, job->slots[i], 1);
        __atomic_store_n(&job->h->busy[job->slots[i]], 0, __ATOMIC_RELEASE);
        if (rc != SVDB_OK) {
            unsigned f = __atomic_fetch_add(&job->n_failed, 1, __ATOMIC_RELAXED);
            if (f < sizeof job->failed / sizeof job->failed[0]) job->failed[f] = job->slots[i];
            __atomic_store_n(&job->rc, rc, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

int svdb__hnsw_insert_many(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, const uint32_t *slots, size_t n,
                           unsigned threads)
{
    size_t done;
    return svdb__hnsw_insert_some(h, s, k, slots, n, threads, NULL, &done);
}

int svdb__hnsw_insert_some(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, const uint32_t *slots, size_t n,
                           unsigned threads, const int *yield, size_t *done)
{
    *done = 0;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    size_t max_slot = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i] > max_slot) max_slot = slots[i];
    if (n) SVDB_TRY(svdb__hnsw_reserve(h, max_slot + 1));
    /* The first nodes of an empty graph go in one by one, so the parallel
     * phase starts from a graph with some structure. */
    size_t i = 0;
    size_t serial = (threads <= 1 || n < MIN_PARALLEL) ? n : (h->max_level < 0 ? 64 : 0);
    for (; i < serial; i++) {
        if (yield && i >= MIN_BEFORE_YIELD && __atomic_load_n(yield, __ATOMIC_RELAXED) > 0) return SVDB_OK;
        SVDB_TRY(insert_or_undo(h, s, k, slots[i]));
        *done = i + 1;
    }
    if (i == n) return SVDB_OK;
    insert_job job = {h, s, k, slots + i, n - i, 0, SVDB_OK, yield, {0}, 0};
    if (!(h->busy = svdb__calloc(h->cap, 1))) return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    if (threads > 64) threads = 64;
    pthread_t tids[64];
    unsigned started = 0;
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tids[started], NULL, insert_worker, &job) != 0) break;
        started++;
    }
    insert_worker(&job);
    for (unsigned t = 0; t < started; t++) pthread_join(tids[t], NULL);
    svdb__free(h->busy);
    h->busy = NULL;
    /* every claimed slot was linked (or failed, which ends the batch) */
    *done = i + (job.next < job.n ? job.next : job.n);
    /* Unlink the nodes that failed part way, now that no other thread runs. */
    for (unsigned f = 0; f < job.n_failed && f < sizeof job.failed / sizeof job.failed[0]; f++)
        svdb__hnsw_remove(h, s, k, job.failed[f]);
    return job.rc;
}

/* ------------------------------------------------------------ remove */

/* Links are directed: the nodes that point at a removed node d (its
 * in-neighbours) need not be among d's own links, and d's links may be the
 * only way into some of its out-neighbours. Repairing only d's own links, as
 * if the graph were undirected, and re-selecting them by the heuristic alone
 * left the other in-neighbours a dead link short, d's out-neighbours an
 * in-link short and every repaired node with fewer links: over mass deletes
 * the graph thinned out until survivors could no longer be reached (self-
 * recall@1 0.59 after deleting 98% of 5,000 rows). So a removal, on each of
 * d's levels:
 * - searches the level around d (REPAIR_EF survivors, nearest first; they
 *   hold nearly all of d's in-neighbours);
 * - re-selects the links of every in-neighbour found, from its own live
 *   links, d's links and the REPAIR_POOL nearest survivors, by the heuristic
 *   topped up to the links it had (at most M), and links each new neighbour
 *   back to it, as an insert does;
 * - gives every node that lost an in-link (from d, or by a re-selection)
 *   and has none left from d's neighbourhood a link from its nearest
 *   neighbour (keep_reachable; a single-threaded insert does the same for
 *   the links its neighbours' re-selections drop).
 * A delete costs about as much as an insert (4-7x the old repair). A node
 * that points at d from outside the search's reach keeps a stale link
 * (skipped by walks, dropped by the next re-selection of its links and by
 * snapshots). */

#define REPAIR_EF 64   /* survivors the search around d finds (at most ef_construction) */
#define REPAIR_POOL 16 /* of them, the nearest offered to each in-neighbour with d's own links */
#define POOL_MAX (2 * 64 + REPAIR_POOL)

/* Re-selects u's links at level l without d: from its other live links and
 * the pool, by the heuristic, topped up with the nearest rejected candidates
 * to the count u had; each new neighbour gets a link back to u. */
static void relink(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t u, uint32_t d, int l,
                   const uint32_t *pool, size_t n_pool, lost_links *lost)
{
    uint32_t *lu = links(h, u, l);
    uint32_t had = lu[0], old[2 * 64];
    pair c[2 * 64 + POOL_MAX];
    size_t n = 0, n_old = 0;
    qref base = node_ref(s, u);
    for (uint32_t i = 1; i <= lu[0]; i++) {
        uint32_t x = lu[i];
        if (x == d || x == u || !on_level(h, x, l)) continue;
        old[n_old++] = x;
        c[n++] = (pair){dist(s, k, base, x), x};
    }
    for (size_t i = 0; i < n_pool; i++) {
        uint32_t x = pool[i];
        int dup = x == u;
        for (size_t j = 0; j < n_old && !dup; j++) dup = old[j] == x;
        if (!dup) c[n++] = (pair){dist(s, k, base, x), x};
    }
    qsort(c, n, sizeof *c, by_dist);
    uint32_t cap = max_links(h, l), out[2 * 64];
    size_t kept = select_neighbors(s, k, c, n, cap, out);
    /* top up: the heuristic alone would shrink u's links at every repair */
    if (had > cap) had = cap;
    if (had > h->p.m) had = h->p.m;
    for (size_t i = 0; i < n && kept < had; i++) {
        int in = 0;
        for (size_t j = 0; j < kept && !in; j++) in = out[j] == c[i].id;
        if (!in) out[kept++] = c[i].id;
    }
    for (size_t j = 0; j < n_old; j++) {
        int in = 0;
        for (size_t i = 0; i < kept && !in; i++) in = out[i] == old[j];
        if (!in) note_lost(lost, old[j]);
    }
    memcpy(lu + 1, out, kept * sizeof *out);
    lu[0] = (uint32_t)kept;
    for (size_t i = 0; i < kept; i++) {
        int was = 0;
        for (size_t j = 0; j < n_old && !was; j++) was = old[j] == out[i];
        if (!was) (void)add_link_unlocked(h, s, k, out[i], u, l, lost); /* no allocation: m0 <= 128 */
    }
}

/* Repairs level l around d: `near` (n_near, nearest first) are the search's
 * survivors near d, or none when the search could not run (sr NULL). */
static void repair_level(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, searcher *sr, uint32_t d, int l,
                         const pair *near, size_t n_near)
{
    uint32_t pool[POOL_MAX], seen[POOL_MAX + REPAIR_EF];
    lost_links lost;
    size_t n_pool = 0;
    lost.n = 0;
    const uint32_t *ld = links(h, d, l);
    for (uint32_t i = 1; i <= ld[0]; i++)
        if (ld[i] != d && on_level(h, ld[i], l)) note_lost(&lost, pool[n_pool++] = ld[i]);
    size_t n_own = n_pool;
    for (size_t i = 0; i < n_near && i < REPAIR_POOL; i++) {
        int dup = 0;
        for (size_t j = 0; j < n_own && !dup; j++) dup = pool[j] == near[i].id;
        if (!dup) pool[n_pool++] = near[i].id;
    }
    /* In-neighbours: among d's links and everything the search reached. */
    size_t n_seen = 0;
    for (size_t i = 0; i < n_pool; i++) seen[n_seen++] = pool[i];
    for (size_t i = REPAIR_POOL; i < n_near; i++) seen[n_seen++] = near[i].id;
    for (size_t i = 0; i < n_seen; i++)
        if (on_level(h, seen[i], l) && links_to(h, seen[i], d, l))
            relink(h, s, k, seen[i], d, l, pool, n_pool, &lost);
    keep_reachable(h, s, k, sr, l, near, n_near, pool, n_own, &lost, d);
}

void svdb__hnsw_remove(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot)
{
    if (slot >= h->cap || h->level[slot] == SVDB_HNSW_NO_LEVEL) return;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    int L = h->level[slot];
    /* Descend to d's top level as an insert would, then search each of its
     * levels for its neighbourhood (d itself still links it up). Without
     * memory for the search, only d's own links are repaired. */
    searcher *sr = take_searcher(h);
    walk w = {h, s, k, sr, NULL, NULL, 0};
    qref q = node_ref(s, slot);
    uint32_t ep = h->entry, heir = UINT32_MAX;
    float ep_d = sr ? dist(s, k, q, ep) : 0.0f;
    for (int l = h->max_level; sr && l > L; l--) ep = greedy(&w, q, ep, &ep_d, l);
    pair near[REPAIR_EF];
    size_t ef = h->p.ef_construction < REPAIR_EF ? h->p.ef_construction : REPAIR_EF;
    for (int l = L; l >= 0; l--) {
        size_t nr = 0, n_near = 0;
        if (sr && search_level(&w, q, ep, ep_d, l, ef + 1, &nr) == SVDB_OK) {
            qsort(sr->res, nr, sizeof *sr->res, by_dist);
            for (size_t i = 0; i < nr && n_near < ef; i++)
                if (sr->res[i].id != slot) near[n_near++] = sr->res[i];
        }
        if (n_near) {
            ep = near[0].id;
            ep_d = near[0].d;
            if (l == L && heir == UINT32_MAX) heir = near[0].id; /* the nearest node on d's top level */
        }
        repair_level(h, s, k, sr, slot, l, near, n_near);
    }
    if (sr) give_searcher(h, sr);
    h->level[slot] = SVDB_HNSW_NO_LEVEL;
    links(h, slot, 0)[0] = 0;
    svdb__free(h->upper[slot]);
    h->upper[slot] = NULL;
    if (h->entry == slot) {
        /* The entry passes to d's nearest node on the top level; when d was
         * alone there, to the first node on the highest remaining level. */
        if (heir != UINT32_MAX && on_level(h, heir, L)) {
            h->entry = heir;
        } else {
            h->entry = UINT32_MAX;
            h->max_level = -1;
            for (size_t i = 0; i < h->cap; i++)
                if (h->level[i] != SVDB_HNSW_NO_LEVEL && (int)h->level[i] > h->max_level) {
                    h->max_level = h->level[i];
                    h->entry = (uint32_t)i;
                }
        }
    }
}

/* For tests: on every level, the nodes that links from the entry point do
 * not reach (a search can never return them), and the stale links. */
int svdb__hnsw_check(const svdb_hnsw *h, size_t *unreachable, size_t *stale)
{
    *unreachable = *stale = 0;
    if (h->max_level < 0) return SVDB_OK;
    uint8_t *seen = svdb__calloc(h->cap, 1);
    uint32_t *queue = svdb__malloc(h->cap * sizeof *queue);
    if (!seen || !queue) {
        svdb__free(seen);
        svdb__free(queue);
        return svdb__fail(SVDB_ENOMEM, "out of memory checking the graph");
    }
    for (int l = 0; l <= h->max_level; l++) {
        size_t on = 0, head = 0, tail = 0;
        memset(seen, 0, h->cap);
        for (size_t i = 0; i < h->cap; i++) {
            if (!on_level(h, (uint32_t)i, l)) continue;
            on++;
            const uint32_t *ln = links(h, (uint32_t)i, l);
            for (uint32_t j = 1; j <= ln[0]; j++) *stale += (size_t)!on_level(h, ln[j], l);
        }
        queue[tail++] = h->entry;
        seen[h->entry] = 1;
        while (head < tail) {
            const uint32_t *ln = links(h, queue[head++], l);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (on_level(h, ln[j], l) && !seen[ln[j]]) {
                    seen[ln[j]] = 1;
                    queue[tail++] = ln[j];
                }
        }
        *unreachable += on - tail;
    }
    svdb__free(seen);
    svdb__free(queue);
    return SVDB_OK;
}

/* ------------------------------------------------------------ query */

int svdb__hnsw_search(const svdb_hnsw *hc, const svdb_store *s, const svdb_kernels *k, const float *qv, size_t ef,
                      svdb_admit_fn admit, void *ctx, svdb_topk *out)
{
    svdb_hnsw *h = (svdb_hnsw *)hc; /* only the searcher pool is touched, under its mutex */
    if (h->max_level < 0 || out->k == 0) return SVDB_OK;
    if (ef < out->k) ef = out->k;
    if (ef > h->cap) ef = h->cap; /* never more candidates than nodes */
    searcher *sr = take_searcher(h);
    if (!sr) return svdb__fail(SVDB_ENOMEM, "out of memory searching the graph");
    walk w = {h, s, k, sr, admit, ctx, 0};
    qref q = {qv, 1.0f};
    uint32_t ep = h->entry;
    float ep_d = dist(s, k, q, ep);
    for (int l = h->max_level; l > 0; l--) ep = greedy(&w, q, ep, &ep_d, l);
    size_t nr = 0;
    int rc = search_level(&w, q, ep, ep_d, 0, ef, &nr);
    for (size_t i = 0; rc == SVDB_OK && i < nr; i++) {
        uint32_t id = sr->res[i].id;
        float d = sr->res[i].d;
        if (s->ck) { /* compact storage: re-rank the candidates exactly against the originals */
            d = (s->metric == SVDB_METRIC_L2 ? k->l2_pair : k->dot_pair)(qv, svdb__vec(s, id), s->dim);
            if (s->metric == SVDB_METRIC_COSINE) d = 1.0f - d * node_norm(s, id);
            else if (s->metric == SVDB_METRIC_IP) d = 1.0f - d;
            if (d != d) d = __builtin_inff();
        }
        svdb_cand c = {d, id, svdb__row(s, id)->seq};
        svdb__topk_push(out, c);
    }
    give_searcher(h, sr);
    return rc;
}

/* ------------------------------------------------------------ serialisation */

size_t svdb__hnsw_encoded_size(const svdb_hnsw *h, const uint32_t *order, size_t n)
{
    size_t bytes = 8;
    for (size_t i = 0; i < n; i++) {
        int L = h->level[order[i]];
        bytes += 1;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 0; l <= L; l++) {
            const uint32_t *ln = links(h, order[i], l);
            bytes += 4;
            for (uint32_t j = 1; j <= ln[0]; j++) bytes += on_level(h, ln[j], l) ? 4 : 0;
        }
    }
    return bytes;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
    return p + 4;
}

void svdb__hnsw_encode(const svdb_hnsw *h, const uint32_t *order, size_t n, const uint32_t *slot_to_row,
                       unsigned char *p)
{
    p = put32(p, h->entry == UINT32_MAX ? UINT32_MAX : slot_to_row[h->entry]);
    p = put32(p, (uint32_t)h->max_level);
    for (size_t i = 0; i < n; i++) {
        uint8_t L = h->level[order[i]];
        *p++ = L;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 0; l <= L; l++) {
            const uint32_t *ln = links(h, order[i], l);
            uint32_t live = 0;
            for (uint32_t j = 1; j <= ln[0]; j++) live += (uint32_t)on_level(h, ln[j], l);
            p = put32(p, live);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (on_level(h, ln[j], l)) p = put32(p, slot_to_row[ln[j]]);
        }
    }
}

int svdb__hnsw_decode(svdb_hnsw *h, const unsigned char *p, size_t len, size_t n)
{
#define NEED(x)                                                                                    \
    do {                                                                                           \
        if ((size_t)(end - p) < (x)) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated"); \
    } while (0)
    const unsigned char *end = p + len;
    SVDB_TRY(svdb__hnsw_reserve(h, n ? n : 1));
    uint32_t entry, maxl;
    NEED(8);
    memcpy(&entry, p, 4);
    memcpy(&maxl, p + 4, 4);
    p += 8;
    int max_seen = -1;
    for (size_t i = 0; i < n; i++) {
        NEED(1);
        uint8_t L = *p++;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        if (L > MAX_LEVEL) return svdb__fail(SVDB_ECORRUPT, "graph level out of range");
        if (L > 0 && !(h->upper[i] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t))))
            return svdb__fail(SVDB_ENOMEM, "out of memory loading the graph");
        h->level[i] = L;
        for (int l = 0; l <= L; l++) {
            uint32_t cnt;
            NEED(4);
            memcpy(&cnt, p, 4);
            p += 4;
            if (cnt > max_links(h, l)) return svdb__fail(SVDB_ECORRUPT, "graph node has too many links");
            NEED((size_t)cnt * 4);
            uint32_t *ln = links(h, (uint32_t)i, l);
            ln[0] = cnt;
            memcpy(ln + 1, p, (size_t)cnt * 4);
            p += (size_t)cnt * 4;
            for (uint32_t j = 1; j <= cnt; j++)
                if (ln[j] >= n) return svdb__fail(SVDB_ECORRUPT, "graph link points past the last row");
        }
        if ((int)L > max_seen) max_seen = L;
    }
    if (p != end) return svdb__fail(SVDB_ECORRUPT, "trailing bytes in the graph section");
    /* Links must point at nodes present on that level. */
    for (size_t i = 0; i < n; i++) {
        if (h->level[i] == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 0; l <= h->level[i]; l++) {
            const uint32_t *ln = links(h, (uint32_t)i, l);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (h->level[ln[j]] == SVDB_HNSW_NO_LEVEL || (int)h->level[ln[j]] < l)
                    return svdb__fail(SVDB_ECORRUPT, "graph link points to a node missing from its level");
        }
    }
    if ((int)maxl != max_seen || (max_seen >= 0 && (entry >= n || h->level[entry] != maxl)) ||
        (max_seen < 0 && entry != UINT32_MAX))
        return svdb__fail(SVDB_ECORRUPT, "graph entry point is inconsistent");
    h->entry = entry;
    h->max_level = max_seen;
    return SVDB_OK;
#undef NEED
}

/* ------------------------------------------------ snapshot format 2 */

uint64_t svdb__hnsw_generation(const svdb_hnsw *h) { return __atomic_load_n(&h->gen, __ATOMIC_RELAXED); }
size_t svdb__hnsw_l0_block_bytes(const svdb_hnsw *h) { return (size_t)(h->m0 + 1) * sizeof(uint32_t); }

#define ROW(slot) (to_row ? to_row[slot] : (slot))
#define SLOT(row) (order ? order[row] : (uint32_t)(row))

void svdb__hnsw_l0_block(const svdb_hnsw *h, uint32_t slot, const uint32_t *to_row, uint32_t *out)
{
    memset(out, 0, svdb__hnsw_l0_block_bytes(h));
    if (slot >= h->cap || h->level[slot] == SVDB_HNSW_NO_LEVEL) return;
    const uint32_t *ln = links(h, slot, 0);
    uint32_t n = 0;
    for (uint32_t j = 1; j <= ln[0]; j++)
        if (on_level(h, ln[j], 0)) out[1 + n++] = ROW(ln[j]);
    out[0] = n;
}

/* Encodes into p, or only counts the bytes when p is NULL. */
static size_t upper_encode(const svdb_hnsw *h, const uint32_t *order, const uint32_t *to_row, size_t n_rows,
                           unsigned char *p)
{
    size_t bytes = 8 + n_rows;
    if (p) {
        p = put32(p, h->entry == UINT32_MAX ? UINT32_MAX : ROW(h->entry));
        p = put32(p, (uint32_t)h->max_level);
        for (size_t i = 0; i < n_rows; i++) *p++ = SLOT(i) < h->cap ? h->level[SLOT(i)] : SVDB_HNSW_NO_LEVEL;
    }
    for (size_t i = 0; i < n_rows; i++) {
        uint32_t slot = SLOT(i);
        int L = slot < h->cap ? h->level[slot] : SVDB_HNSW_NO_LEVEL;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 1; l <= L; l++) {
            const uint32_t *ln = links(h, slot, l);
            uint32_t live = 0;
            for (uint32_t j = 1; j <= ln[0]; j++) live += (uint32_t)on_level(h, ln[j], l);
            bytes += 4 + 4 * (size_t)live;
            if (!p) continue;
            p = put32(p, live);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (on_level(h, ln[j], l)) p = put32(p, ROW(ln[j]));
        }
    }
    return bytes;
}

size_t svdb__hnsw_upper_size(const svdb_hnsw *h, const uint32_t *order, size_t n_rows)
{
    return upper_encode(h, order, NULL, n_rows, NULL);
}

void svdb__hnsw_upper_encode(const svdb_hnsw *h, const uint32_t *order, const uint32_t *to_row, size_t n_rows,
                             unsigned char *out)
{
    upper_encode(h, order, to_row, n_rows, out);
}
#undef ROW
#undef SLOT

/* Level-0 blocks are sound: counts within m0, none for a row out of the
 * graph, and every entry (unused ones are written as 0) below n. Tens of
 * millions of links for a million rows: 4 lanes at a time where SSE2 is
 * (signed lanes with the sign bit flipped: it has no unsigned compare). */
static int l0_blocks_valid(const uint32_t *blocks, size_t n, uint32_t m0, const uint8_t *lv)
{
    uint32_t bad = 0;
#ifdef __SSE2__
    const __m128i flip = _mm_set1_epi32(INT32_MIN);
    const __m128i lim = _mm_set1_epi32((int32_t)(((uint32_t)n - 1) ^ 0x80000000u)); /* x > n - 1: bad */
    __m128i over = _mm_setzero_si128();
#endif
    for (size_t i = 0; i < n; i++) {
        const uint32_t *b = blocks + i * (m0 + 1);
        bad |= (uint32_t)(b[0] > m0) | (uint32_t)(lv[i] == SVDB_HNSW_NO_LEVEL && b[0] != 0);
        uint32_t j = 1;
#ifdef __SSE2__
        for (; j + 4 <= m0 + 1; j += 4) {
            __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(b + j)), flip);
            over = _mm_or_si128(over, _mm_cmpgt_epi32(x, lim));
        }
#endif
        for (; j <= m0; j++) bad |= (uint32_t)(b[j] >= n);
    }
#ifdef __SSE2__
    bad |= (uint32_t)(_mm_movemask_epi8(over) != 0);
#endif
    return !bad;
}

/* Points level-0 chunks that rows [0, n_rows) fill completely at `blocks`;
 * the rest keep (a copy of) their blocks in memory. */
static void l0_point(svdb_hnsw *h, const uint32_t *blocks, size_t n_rows)
{
    size_t bw = h->m0 + 1;
    for (size_t c = 0; c < h->n_l0 && (c + 1) * L0_CHUNK <= n_rows; c++) {
        if (!l0_mapped(h, h->l0[c])) svdb__free(h->l0[c]);
        h->l0[c] = (uint32_t *)(uintptr_t)(blocks + c * L0_CHUNK * bw); /* written only through a private map */
    }
}

int svdb__hnsw_load_mapped(svdb_hnsw *h, const unsigned char *p, size_t len, const uint32_t *blocks, size_t n,
                           const void *map, size_t map_len)
{
    const unsigned char *end = p + len;
    SVDB_TRY(svdb__hnsw_reserve(h, n ? n : 1));
    if ((size_t)(end - p) < 8 + n) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
    uint32_t entry, maxl;
    memcpy(&entry, p, 4);
    memcpy(&maxl, p + 4, 4);
    p += 8;
    const unsigned char *lv = p;
    p += n;
    /* Level-0 blocks: at most m0 links, each to an existing row; a row out
     * of the graph has none. Links to rows missing from level 0 are stale
     * links, which every walk skips, as after a delete. */
    if (!l0_blocks_valid(blocks, n, h->m0, lv))
        return svdb__fail(SVDB_ECORRUPT, "level-0 links out of range (too many, or past the last row)");
    int max_seen = -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t L = lv[i];
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        if (L > MAX_LEVEL) return svdb__fail(SVDB_ECORRUPT, "graph level out of range");
        if ((int)L > max_seen) max_seen = L;
        h->level[i] = L;
        if (L == 0) continue;
        if (!(h->upper[i] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t))))
            return svdb__fail(SVDB_ENOMEM, "out of memory loading the graph");
        for (int l = 1; l <= L; l++) {
            uint32_t cnt;
            if ((size_t)(end - p) < 4) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
            memcpy(&cnt, p, 4);
            p += 4;
            if (cnt > h->p.m) return svdb__fail(SVDB_ECORRUPT, "graph node has too many links");
            if ((size_t)(end - p) < (size_t)cnt * 4) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
            uint32_t *ln = links(h, (uint32_t)i, l);
            ln[0] = cnt;
            memcpy(ln + 1, p, (size_t)cnt * 4);
            p += (size_t)cnt * 4;
            for (uint32_t j = 1; j <= cnt; j++)
                if (ln[j] >= n || lv[ln[j]] == SVDB_HNSW_NO_LEVEL || lv[ln[j]] < l)
                    return svdb__fail(SVDB_ECORRUPT, "graph link points to a node missing from its level");
        }
    }
    if (p != end) return svdb__fail(SVDB_ECORRUPT, "trailing bytes in the graph section");
    if ((int)maxl != max_seen || (max_seen >= 0 && (entry >= n || lv[entry] != maxl)) ||
        (max_seen < 0 && entry != UINT32_MAX))
        return svdb__fail(SVDB_ECORRUPT, "graph entry point is inconsistent");
    /* Chunks the rows fill are the map itself; a partial last one is copied. */
    h->map_lo = map;
    h->map_len = map_len;
    l0_point(h, blocks, n);
    for (size_t c = 0; c < h->n_l0 && c * L0_CHUNK < n; c++) {
        if (l0_mapped(h, h->l0[c])) continue;
        size_t rows = n - c * L0_CHUNK < L0_CHUNK ? n - c * L0_CHUNK : L0_CHUNK;
        memcpy(h->l0[c], blocks + c * L0_CHUNK * (h->m0 + 1), rows * (h->m0 + 1) * sizeof(uint32_t));
    }
    h->entry = entry;
    h->max_level = max_seen;
    return SVDB_OK;
}

void svdb__hnsw_remap(svdb_hnsw *h, const uint32_t *blocks, size_t n_rows, const void *map, size_t map_len)
{
    l0_point(h, blocks, n_rows); /* frees the heap chunks now in the map */
    h->map_lo = map;
    h->map_len = map_len;
}

int svdb__hnsw_unmap(svdb_hnsw *h)
{
    SVDB_TRY(svdb__copy_out_of_map((void **)h->l0, h->n_l0, L0_CHUNK * (h->m0 + 1) * sizeof(uint32_t), h->map_lo,
                                   h->map_len));
    h->map_lo = NULL;
    h->map_len = 0;
    return SVDB_OK;
}
