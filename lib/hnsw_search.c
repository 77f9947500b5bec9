/* Searching the graph: the best-first walk over one level, which queries,
 * inserts and removals share, the pool of per-search scratch, and the
 * query itself. */
#include "hnsw.h"

#include "alloc.h"
#include "error.h"
#include "hnsw_impl.h"
#include "space.h"
#include "svdb.h"

#include <pthread.h>
#include <string.h>

void svdb__hnsw_searcher_free(searcher *s)
{
    if (!s) return;
    svdb__free(s->mark);
    svdb__free(s->cand);
    svdb__free(s->res);
    svdb__free(s);
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

searcher *svdb__hnsw_take_searcher(svdb_hnsw *h)
{
    pthread_mutex_lock(&h->pool_mu);
    searcher *s = h->n_pool ? h->pool[--h->n_pool] : NULL;
    pthread_mutex_unlock(&h->pool_mu);
    if (!s) s = svdb__calloc(1, sizeof *s);
    if (s && s->mark_cap < h->cap) {
        uint8_t *m = svdb__calloc(h->cap, sizeof *m);
        if (!m) {
            svdb__hnsw_searcher_free(s);
            return NULL;
        }
        svdb__free(s->mark);
        s->mark = m;
        s->mark_cap = h->cap;
        s->gen = 0;
    }
    return s;
}

void svdb__hnsw_give_searcher(svdb_hnsw *h, searcher *s)
{
    pthread_mutex_lock(&h->pool_mu);
    if (h->n_pool == h->cap_pool) {
        size_t c = h->cap_pool ? h->cap_pool * 2 : 8;
        searcher **p = svdb__realloc(h->pool, c * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&h->pool_mu);
            svdb__hnsw_searcher_free(s);
            return;
        }
        h->pool = p;
        h->cap_pool = c;
    }
    h->pool[h->n_pool++] = s;
    pthread_mutex_unlock(&h->pool_mu);
}

/* ------------------------------------------------------------ layer search */

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

/* Nodes in the graph are live rows (deletes unlink them), so only the
 * filter decides. */
static inline int admitted(const walk *w, uint32_t id) { return !w->admit || w->admit(w->admit_ctx, id); }

uint32_t svdb__hnsw_greedy(const walk *w, qref q, uint32_t ep, float *ep_d, int l)
{
    const svdb_store_view *s = w->s;
    const svdb_space *sp = w->sp;
    uint32_t buf[2 * SVDB_MAX_HNSW_M + 1];
    for (int changed = 1; changed;) {
        changed = 0;
        const uint32_t *ln = read_links(w, ep, l, buf);
        /* Score the node's neighbours in one gather call (rows in parallel);
         * its per-row arithmetic is the pair kernel's, so results are the same. */
        uint32_t ids[2 * SVDB_MAX_HNSW_M];
        const float *rows[2 * SVDB_MAX_HNSW_M];
        float ds[2 * SVDB_MAX_HNSW_M];
        size_t m = 0;
        for (uint32_t i = 1; i <= ln[0]; i++) {
            uint32_t n = ln[i];
            if (!on_level(w->h, n, l)) continue;
            ids[m] = n;
            rows[m++] = svdb__graph_row(s, n);
        }
        if (m) sp->walk(q.v, rows, m, sp->dim, ds);
        for (size_t j = 0; j < m; j++) {
            float nm = SVDB_SPACE_ROW_NORM(sp->metric, *svdb__norm(s, ids[j]));
            float d = svdb__space_dist(sp->metric, ds[j], q.inv_norm, nm);
            if (d < *ep_d && !busy(w->h, ids[j])) {
                *ep_d = d;
                ep = ids[j];
                changed = 1;
            }
        }
    }
    return ep;
}

/* Everything the loop reads is copied into locals first: the distance
 * kernel is an indirect call, after which the compiler would otherwise
 * reload each field through its pointer. */
int svdb__hnsw_search_level(const walk *w, qref q, uint32_t ep, float ep_d, int l, size_t ef, size_t *n_res)
{
    searcher *sr = w->sr;
    const svdb_hnsw *h = w->h;
    const svdb_store_view *s = w->s;
    if (++sr->gen == 0) { /* generations wrapped: clear the marks once */
        memset(sr->mark, 0, sr->mark_cap * sizeof *sr->mark);
        sr->gen = 1;
    }
    const uint8_t gen = sr->gen;
    uint8_t *const mark = sr->mark;
    const uint8_t *const level = h->level;
    const float *const *const vecs = s->vec;
    const float *const *const norms = s->norm;
    const unsigned shift = s->shift;
    const size_t mask = svdb__chunk_rows(s) - 1, dim = s->dim, stride = s->row_floats;
    const int metric = w->sp->metric;
    const svdb_gather_fn gf = w->sp->walk;
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
    uint32_t buf[2 * SVDB_MAX_HNSW_M + 1];
    while (nc) {
        pair c = minh_pop(cand, &nc);
        if (nr >= ef && c.d > res[0].d) break;
        const uint32_t *ln = locked ? read_links(w, c.id, l, buf) : links(h, c.id, l);
        uint32_t cnt = ln[0];
        for (uint32_t i = 1; i <= cnt; i++) __builtin_prefetch(&mark[ln[i]]);
        /* Gather the unvisited neighbours, then score them in one call. */
        uint32_t ids[2 * SVDB_MAX_HNSW_M];
        const float *rows[2 * SVDB_MAX_HNSW_M];
        float ds[2 * SVDB_MAX_HNSW_M];
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
            float d = svdb__space_dist(metric, ds[j], qn, SVDB_SPACE_ROW_NORM(metric, norms[n >> shift][n & mask]));
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

/* ------------------------------------------------------------ query */

int svdb__hnsw_search(const svdb_hnsw *hc, const svdb_store *store, const svdb_kernels *k, const float *qv, size_t ef,
                      svdb_admit_fn admit, void *ctx, svdb_topk *out)
{
    const svdb_store_view *s = svdb__store_view(store);
    svdb_hnsw *h = (svdb_hnsw *)hc; /* only the searcher pool is touched, under its mutex */
    if (h->max_level < 0 || out->k == 0) return SVDB_OK;
    if (ef < out->k) ef = out->k;
    if (ef > h->cap) ef = h->cap; /* never more candidates than nodes */
    searcher *sr = svdb__hnsw_take_searcher(h);
    if (!sr) return svdb__fail(SVDB_ENOMEM, "out of memory searching the graph");
    svdb_space sp = space_of(s, k);
    walk w = {h, s, &sp, sr, admit, ctx, 0};
    qref q = {qv, 1.0f};
    uint32_t ep = h->entry;
    float ep_d = dist(s, &sp, q, ep);
    for (int l = h->max_level; l > 0; l--) ep = svdb__hnsw_greedy(&w, q, ep, &ep_d, l);
    size_t nr = 0;
    int rc = svdb__hnsw_search_level(&w, q, ep, ep_d, 0, ef, &nr);
    for (size_t i = 0; rc == SVDB_OK && i < nr; i++) {
        uint32_t id = sr->res[i].id;
        float d = sr->res[i].d;
        if (sp.ck) /* compact storage: re-rank the candidates exactly against the originals */
            d = svdb__space_dist(sp.metric, sp.pair(qv, svdb__vec(s, id), sp.dim), 1.0f,
                                 SVDB_SPACE_ROW_NORM(sp.metric, *svdb__norm(s, id)));
        svdb_cand c = {d, id, svdb__row(s, id)->seq};
        svdb__topk_push(out, c);
    }
    svdb__hnsw_give_searcher(h, sr);
    return rc;
}
