/* Hierarchical navigable small-world graph (Malkov & Yashunin), with the
 * neighbour-selection heuristic, deterministic levels and real deletion. */
#include "hnsw.h"

#include "alloc.h"
#include "error.h"
#include "hnsw_impl.h"
#include "space.h"
#include "svdb.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MIN_PARALLEL 256 /* smaller batches are linked on one thread */

int svdb__hnsw_create(svdb_hnsw **out, const svdb_hnsw_params *p)
{
    /* every link buffer on the stack is sized for SVDB_MAX_HNSW_M */
    SVDB_FAIL_IF(p->m == 0 || p->m > SVDB_MAX_HNSW_M, SVDB_EINVAL, "hnsw_m must be 1..%d, not %u", SVDB_MAX_HNSW_M,
                 p->m);
    svdb_hnsw *h = svdb__calloc(1, sizeof *h);
    if (!h) return svdb__fail(SVDB_ENOMEM, "out of memory");
    h->p = *p;
    h->m0 = 2 * p->m;
    h->ml = 1.0 / log((double)(p->m > 1 ? p->m : 2));
    h->max_level = -1;
    h->entry = UINT32_MAX;
    pthread_mutex_init(&h->pool_mu, NULL);
    pthread_mutex_init(&h->entry_mu, NULL);
    for (int i = 0; i < HNSW_N_STRIPES; i++) pthread_mutex_init(&h->stripes[i], NULL);
    *out = h;
    return SVDB_OK;
}

void svdb__hnsw_free(svdb_hnsw *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->cap; i++) svdb__free(h->upper ? h->upper[i] : NULL);
    for (size_t i = 0; i < h->n_pool; i++) svdb__hnsw_searcher_free(h->pool[i]);
    svdb__free(h->pool);
    svdb__free(h->upper);
    for (size_t i = 0; i < h->n_l0; i++)
        if (!l0_mapped(h, h->l0[i])) svdb__free(h->l0[i]);
    svdb__free(h->l0);
    svdb__free(h->level);
    pthread_mutex_destroy(&h->pool_mu);
    pthread_mutex_destroy(&h->entry_mu);
    for (int i = 0; i < HNSW_N_STRIPES; i++) pthread_mutex_destroy(&h->stripes[i]);
    svdb__free(h);
}

const svdb_hnsw_params *svdb__hnsw_params(const svdb_hnsw *h) { return &h->p; }
uint8_t svdb__hnsw_level_of(const svdb_hnsw *h, uint32_t slot) { return slot < h->cap ? h->level[slot] : SVDB_HNSW_NO_LEVEL; }
uint64_t svdb__hnsw_generation(const svdb_hnsw *h) { return __atomic_load_n(&h->gen, __ATOMIC_RELAXED); }

int svdb__hnsw_reserve(svdb_hnsw *h, size_t n_slots)
{
    if (n_slots <= h->cap) return SVDB_OK;
    size_t cap;
    if (n_slots <= HNSW_L0_CHUNK) {
        cap = h->cap ? h->cap : 1024;
        while (cap < n_slots) cap *= 2;
    } else {
        cap = (n_slots + HNSW_L0_CHUNK - 1) & ~(HNSW_L0_CHUNK - 1);
    }
    /* Each step keeps the graph usable if a later one fails: cap moves last. */
    size_t block = (size_t)(h->m0 + 1) * sizeof(uint32_t), chunks = (cap + HNSW_L0_CHUNK - 1) >> HNSW_L0_SHIFT;
    if (chunks > h->cap_l0) {
        uint32_t **t = svdb__realloc(h->l0, chunks * sizeof *t);
        if (!t) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
        h->l0 = t;
        h->cap_l0 = chunks;
    }
    size_t first = cap < HNSW_L0_CHUNK ? cap : HNSW_L0_CHUNK;
    if (h->l0_first < first) {
        uint32_t *c = svdb__realloc(h->n_l0 ? h->l0[0] : NULL, first * block);
        if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory growing the graph");
        h->l0[0] = c;
        h->n_l0 = h->n_l0 ? h->n_l0 : 1;
        h->l0_first = first;
    }
    while (h->n_l0 < chunks) {
        uint32_t *c = svdb__malloc(HNSW_L0_CHUNK * block);
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

/* ------------------------------------------------------------ neighbour selection */

/* Sorts by (distance, id) without a comparator call per comparison (the
 * insert's sorts were ~5% of linking through qsort): insertion sort for
 * short runs, median-of-three quicksort above, recursing into the smaller
 * side (depth log n). Ids are distinct, so the order is total and the
 * graph is the one any correct sort builds. */
static inline int pair_less(pair a, pair b) { return a.d < b.d || (a.d == b.d && a.id < b.id); }

static inline void pair_swap(pair *a, size_t i, size_t j)
{
    pair t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void sort_pairs(pair *a, size_t n)
{
    while (n > 16) {
        size_t mid = n / 2, last = n - 1;
        if (pair_less(a[mid], a[0])) pair_swap(a, mid, 0);
        if (pair_less(a[last], a[0])) pair_swap(a, last, 0);
        if (pair_less(a[last], a[mid])) pair_swap(a, last, mid);
        pair p = a[mid];
        size_t i = 0, j = last;
        for (;;) { /* Hoare's partition; a[0] <= p <= a[last] stop the scans */
            while (pair_less(a[i], p)) i++;
            while (pair_less(p, a[j])) j--;
            if (i >= j) break;
            pair_swap(a, i++, j--);
        }
        size_t left = j + 1; /* a[0, left) <= p <= a[left, n) */
        if (left < n - left) {
            sort_pairs(a, left);
            a += left;
            n -= left;
        } else {
            sort_pairs(a + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        pair x = a[i];
        size_t j = i;
        for (; j > 0 && pair_less(x, a[j - 1]); j--) a[j] = a[j - 1];
        a[j] = x;
    }
}

/* Keeps a candidate only when it is closer to the base than to every
 * neighbour already kept: spreads links over directions. `c` is sorted. */
static size_t select_neighbors(const svdb_store_view *s, const svdb_space *sp, pair *c, size_t n, size_t m,
                               uint32_t *out)
{
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        int good = 1;
        qref ci = node_ref(s, sp, c[i].id);
        for (size_t j = 0; j < kept && good; j++)
            if (dist(s, sp, ci, out[j]) < c[i].d) good = 0;
        if (good) out[kept++] = c[i].id;
    }
    return kept;
}

/* Nodes that lost an in-link to a re-selection or a removal, while one
 * insert (on one thread) or one delete changes the graph. */
typedef struct {
    uint32_t ids[4 * SVDB_MAX_HNSW_M];
    size_t n;
} lost_links;

static void note_lost(lost_links *lost, uint32_t id)
{
    if (lost && lost->n < sizeof lost->ids / sizeof lost->ids[0]) lost->ids[lost->n++] = id;
}

/* Adds `from` to the links of `to` at level l, re-selecting when full; the
 * links that re-selection drops go to `lost` (or NULL). */
static int add_link_unlocked(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t to, uint32_t from,
                             int l, lost_links *lost);

static int add_link(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t to, uint32_t from, int l,
                    int locked)
{
    lock_node(h, locked, to);
    int rc = add_link_unlocked(h, s, sp, to, from, l, NULL);
    unlock_node(h, locked, to);
    return rc;
}

static int add_link_unlocked(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t to, uint32_t from,
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
    pair c[2 * SVDB_MAX_HNSW_M + 1];
    pair *cands = cap + 1 <= sizeof c / sizeof c[0] ? c : svdb__malloc((cap + 1) * sizeof *cands);
    if (!cands) return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    qref base = node_ref(s, sp, to);
    size_t n = 0;
    for (uint32_t i = 1; i <= ln[0]; i++)
        if (on_level(h, ln[i], l)) cands[n++] = (pair){dist(s, sp, base, ln[i]), ln[i]};
    cands[n++] = (pair){dist(s, sp, base, from), from};
    sort_pairs(cands, n);
    uint32_t sel[2 * SVDB_MAX_HNSW_M + 1];
    uint32_t *out = cap <= sizeof sel / sizeof sel[0] ? sel : svdb__malloc(cap * sizeof *out);
    if (!out) {
        if (cands != c) svdb__free(cands);
        return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    }
    size_t kept = select_neighbors(s, sp, cands, n, cap, out);
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
static void force_link(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t x, uint32_t v, int l,
                       lost_links *lost)
{
    uint32_t *lx = links(h, x, l);
    if (links_to(h, x, v, l)) return;
    if (lx[0] < max_links(h, l)) {
        lx[++lx[0]] = v;
        return;
    }
    uint32_t far = 1;
    qref base = node_ref(s, sp, x);
    float far_d = -1.0f;
    for (uint32_t i = 1; i <= lx[0]; i++) {
        float dd = on_level(h, lx[i], l) ? dist(s, sp, base, lx[i]) : __builtin_inff();
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
static void keep_reachable(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, searcher *sr, int l,
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
        qref base = node_ref(s, sp, v);
        for (uint32_t j = 1; j <= lv[0]; j++) {
            if (lv[j] == gone || lv[j] == v || !on_level(h, lv[j], l)) continue;
            float dd = dist(s, sp, base, lv[j]);
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
        force_link(h, s, sp, x, v, l, lost);
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
    return l > HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : l;
}

static int insert_one(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t slot, int locked)
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
    searcher *sr = svdb__hnsw_take_searcher(h);
    int rc = sr ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    walk w = {h, s, sp, sr, NULL, NULL, locked};
    qref q = node_ref(s, sp, slot);
    float ep_d = rc == SVDB_OK ? dist(s, sp, q, ep) : 0.0f;
    for (int l = top; rc == SVDB_OK && l > L; l--) ep = svdb__hnsw_greedy(&w, q, ep, &ep_d, l);
    uint32_t out[2 * SVDB_MAX_HNSW_M + 1];
    for (int l = L < top ? L : top; rc == SVDB_OK && l >= 0; l--) {
        size_t nr;
        rc = svdb__hnsw_search_level(&w, q, ep, ep_d, l, h->p.ef_construction, &nr);
        if (rc != SVDB_OK) break;
        sort_pairs(sr->res, nr);
        /* the node itself may be reached through a stale link to its slot */
        size_t j = 0;
        for (size_t i = 0; i < nr; i++)
            if (sr->res[i].id != slot) sr->res[j++] = sr->res[i];
        nr = j;
        size_t kept = select_neighbors(s, sp, sr->res, nr, h->p.m, out);
        lock_node(h, locked, slot);
        uint32_t *ln = links(h, slot, l);
        memcpy(ln + 1, out, kept * sizeof *out);
        ln[0] = (uint32_t)kept;
        unlock_node(h, locked, slot);
        if (locked) {
            for (size_t i = 0; i < kept && rc == SVDB_OK; i++) rc = add_link(h, s, sp, out[i], slot, l, 1);
        } else { /* one thread: the links re-selection drops must leave no node cut off */
            lost_links lost;
            lost.n = 0;
            for (size_t i = 0; i < kept && rc == SVDB_OK; i++) rc = add_link_unlocked(h, s, sp, out[i], slot, l, &lost);
            if (rc == SVDB_OK) keep_reachable(h, s, sp, sr, l, sr->res, nr, &slot, 1, &lost, UINT32_MAX);
        }
        size_t e = 0; /* the next level starts at the nearest node not being inserted */
        while (e < nr && busy(h, sr->res[e].id)) e++;
        if (e < nr) {
            ep = sr->res[e].id;
            ep_d = sr->res[e].d;
        }
    }
    if (sr) svdb__hnsw_give_searcher(h, sr);
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
static void remove_node(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t slot);

static int insert_or_undo(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t slot)
{
    int rc = insert_one(h, s, sp, slot, 0);
    if (rc != SVDB_OK) remove_node(h, s, sp, slot);
    return rc;
}

int svdb__hnsw_insert(svdb_hnsw *h, const svdb_store *store, const svdb_kernels *k, uint32_t slot)
{
    const svdb_store_view *s = svdb__store_view(store);
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    SVDB_TRY(svdb__hnsw_reserve(h, (size_t)slot + 1));
    svdb_space sp = space_of(s, k);
    return insert_or_undo(h, s, &sp, slot);
}

/* ------------------------------------------------------------ adopting links */

int svdb__hnsw_adopt(svdb_hnsw *h, const svdb_store *store, const svdb_kernels *k, uint32_t slot, int level,
                     const uint32_t *const *nb, const uint32_t *n_nb)
{
    const svdb_store_view *s = svdb__store_view(store);
    if (slot >= h->cap || h->level[slot] != SVDB_HNSW_NO_LEVEL) return 0;
    int L = draw_level(h, svdb__row(s, slot)->seq);
    if (L != level) return 0; /* another seed or sequence: not this graph's node */
    int top = h->max_level;
    /* Keep only neighbours this graph holds on each level; without one on
     * level 0 (in a graph that has nodes) the row is better inserted.
     * kept + l * m0: level l's (a little over 1 KiB a level: not on the stack). */
    uint32_t *kept = svdb__malloc((size_t)(L + 1) * h->m0 * sizeof *kept);
    if (!kept) return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    uint32_t n_kept[HNSW_MAX_LEVEL + 1] = {0};
    for (int l = 0; l <= L && l <= top; l++)
        for (uint32_t i = 0; i < n_nb[l] && n_kept[l] < max_links(h, l); i++) {
            uint32_t x = nb[l][i], *kl = kept + (size_t)l * h->m0;
            if (x == slot || x >= h->cap || !on_level(h, x, l) || !svdb__slot_live(s, x)) continue;
            int dup = 0;
            for (uint32_t j = 0; j < n_kept[l] && !dup; j++) dup = kl[j] == x;
            if (!dup) kl[n_kept[l]++] = x;
        }
    if (top >= 0 && n_kept[0] == 0) {
        svdb__free(kept);
        return 0;
    }
    svdb_space sp = space_of(s, k);
    searcher *sr = top >= 0 ? svdb__hnsw_take_searcher(h) : NULL;
    if ((top >= 0 && !sr) || (L > 0 && !(h->upper[slot] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t))))) {
        if (sr) svdb__hnsw_give_searcher(h, sr);
        svdb__free(kept);
        return svdb__fail(SVDB_ENOMEM, "out of memory linking the graph");
    }
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    links(h, slot, 0)[0] = 0;
    __atomic_store_n(&h->level[slot], (uint8_t)L, __ATOMIC_RELEASE);
    int rc = SVDB_OK;
    for (int l = (L < top ? L : top); l >= 0 && rc == SVDB_OK; l--) {
        const uint32_t *kl = kept + (size_t)l * h->m0;
        uint32_t *ln = links(h, slot, l);
        memcpy(ln + 1, kl, n_kept[l] * sizeof *kl);
        ln[0] = n_kept[l];
        /* as insert_one's one-thread path: the links re-selection drops must
         * leave no node cut off */
        lost_links lost;
        lost.n = 0;
        for (uint32_t i = 0; i < n_kept[l] && rc == SVDB_OK; i++) rc = add_link_unlocked(h, s, &sp, kl[i], slot, l, &lost);
        if (rc == SVDB_OK && lost.n) {
            pair near[2 * SVDB_MAX_HNSW_M]; /* keep_reachable reads their ids only */
            for (uint32_t i = 0; i < n_kept[l]; i++) near[i] = (pair){0.0f, kl[i]};
            keep_reachable(h, s, &sp, sr, l, near, n_kept[l], &slot, 1, &lost, UINT32_MAX);
        }
    }
    if (sr) svdb__hnsw_give_searcher(h, sr);
    svdb__free(kept);
    if (rc != SVDB_OK) {
        remove_node(h, s, &sp, slot);
        return rc;
    }
    if (L > h->max_level) {
        h->entry = slot;
        h->max_level = L;
    }
    return 1;
}

const uint32_t *svdb__hnsw_links(const svdb_hnsw *h, uint32_t slot, int l, uint32_t *n)
{
    if (slot >= h->cap || h->level[slot] == SVDB_HNSW_NO_LEVEL || l > h->level[slot]) {
        *n = 0;
        return NULL;
    }
    const uint32_t *ln = links(h, slot, l);
    *n = ln[0];
    return ln + 1;
}

typedef struct {
    svdb_hnsw *h;
    const svdb_store_view *s;
    const svdb_space *sp;
    const uint32_t *slots;
    size_t n, next;
    int rc;
    const int *yield; /* or NULL */
    size_t min;       /* rows claimed before a yield may stop the batch */
    uint32_t failed[64]; /* nodes whose insert failed part way (one per thread at most) */
    unsigned n_failed;
} insert_job;

static void *insert_worker(void *arg)
{
    insert_job *job = arg;
    for (;;) {
        /* checked before claiming a slot; the first few always go in, so a
         * steady stream of callers cannot stop linking altogether */
        if (job->yield && __atomic_load_n(&job->next, __ATOMIC_RELAXED) >= job->min &&
            __atomic_load_n(job->yield, __ATOMIC_RELAXED) > 0)
            break;
        size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n || __atomic_load_n(&job->rc, __ATOMIC_RELAXED) != SVDB_OK) break;
        int rc = insert_one(job->h, job->s, job->sp, job->slots[i], 1);
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

int svdb__hnsw_insert_some(svdb_hnsw *h, const svdb_store *store, const svdb_kernels *k, const uint32_t *slots,
                           size_t n, unsigned threads, const int *yield, size_t *done)
{
    const svdb_store_view *s = svdb__store_view(store);
    *done = 0;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    size_t max_slot = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i] > max_slot) max_slot = slots[i];
    if (n) SVDB_TRY(svdb__hnsw_reserve(h, max_slot + 1));
    svdb_space space = space_of(s, k);
    const svdb_space *sp = &space;
    /* The first nodes of an empty graph go in one by one, so the parallel
     * phase starts from a graph with some structure. */
    size_t i = 0;
    size_t serial = (threads <= 1 || n < MIN_PARALLEL) ? n : (h->max_level < 0 ? 64 : 0);
    /* Once asked to yield, a batch stops after one row per thread: a caller
     * waiting for the lock waits for about one insert (not a fixed number
     * of rows, whose time grows with the graph), and each hold still links
     * something, so a steady stream of callers cannot stop linking. */
    size_t min = threads > 1 && serial < n ? (threads < 64 ? threads : 64) : 1;
    for (; i < serial; i++) {
        if (yield && i >= min && __atomic_load_n(yield, __ATOMIC_RELAXED) > 0) return SVDB_OK;
        SVDB_TRY(insert_or_undo(h, s, sp, slots[i]));
        *done = i + 1;
    }
    if (i == n) return SVDB_OK;
    insert_job job = {h, s, sp, slots + i, n - i, 0, SVDB_OK, yield, min, {0}, 0};
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
        remove_node(h, s, sp, job.failed[f]);
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
#define POOL_MAX (2 * SVDB_MAX_HNSW_M + REPAIR_POOL)

/* Re-selects u's links at level l without d: from its other live links and
 * the pool, by the heuristic, topped up with the nearest rejected candidates
 * to the count u had; each new neighbour gets a link back to u. */
static void relink(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t u, uint32_t d, int l,
                   const uint32_t *pool, size_t n_pool, lost_links *lost)
{
    uint32_t *lu = links(h, u, l);
    uint32_t had = lu[0], old[2 * SVDB_MAX_HNSW_M];
    pair c[2 * SVDB_MAX_HNSW_M + POOL_MAX];
    size_t n = 0, n_old = 0;
    qref base = node_ref(s, sp, u);
    for (uint32_t i = 1; i <= lu[0]; i++) {
        uint32_t x = lu[i];
        if (x == d || x == u || !on_level(h, x, l)) continue;
        old[n_old++] = x;
        c[n++] = (pair){dist(s, sp, base, x), x};
    }
    for (size_t i = 0; i < n_pool; i++) {
        uint32_t x = pool[i];
        int dup = x == u;
        for (size_t j = 0; j < n_old && !dup; j++) dup = old[j] == x;
        if (!dup) c[n++] = (pair){dist(s, sp, base, x), x};
    }
    sort_pairs(c, n);
    uint32_t cap = max_links(h, l), out[2 * SVDB_MAX_HNSW_M];
    size_t kept = select_neighbors(s, sp, c, n, cap, out);
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
        if (!was) (void)add_link_unlocked(h, s, sp, out[i], u, l, lost); /* no allocation: m0 <= 2 * SVDB_MAX_HNSW_M */
    }
}

/* Repairs level l around d: `near` (n_near, nearest first) are the search's
 * survivors near d, or none when the search could not run (sr NULL). */
static void repair_level(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, searcher *sr, uint32_t d, int l,
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
            relink(h, s, sp, seen[i], d, l, pool, n_pool, &lost);
    keep_reachable(h, s, sp, sr, l, near, n_near, pool, n_own, &lost, d);
}

void svdb__hnsw_remove(svdb_hnsw *h, const svdb_store *store, const svdb_kernels *k, uint32_t slot)
{
    const svdb_store_view *s = svdb__store_view(store);
    svdb_space sp = space_of(s, k);
    remove_node(h, s, &sp, slot);
}

static void remove_node(svdb_hnsw *h, const svdb_store_view *s, const svdb_space *sp, uint32_t slot)
{
    if (slot >= h->cap || h->level[slot] == SVDB_HNSW_NO_LEVEL) return;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
    int L = h->level[slot];
    /* Descend to d's top level as an insert would, then search each of its
     * levels for its neighbourhood (d itself still links it up). Without
     * memory for the search, only d's own links are repaired. */
    searcher *sr = svdb__hnsw_take_searcher(h);
    walk w = {h, s, sp, sr, NULL, NULL, 0};
    qref q = node_ref(s, sp, slot);
    uint32_t ep = h->entry, heir = UINT32_MAX;
    float ep_d = sr ? dist(s, sp, q, ep) : 0.0f;
    for (int l = h->max_level; sr && l > L; l--) ep = svdb__hnsw_greedy(&w, q, ep, &ep_d, l);
    pair near[REPAIR_EF];
    size_t ef = h->p.ef_construction < REPAIR_EF ? h->p.ef_construction : REPAIR_EF;
    for (int l = L; l >= 0; l--) {
        size_t nr = 0, n_near = 0;
        if (sr && svdb__hnsw_search_level(&w, q, ep, ep_d, l, ef + 1, &nr) == SVDB_OK) {
            sort_pairs(sr->res, nr);
            for (size_t i = 0; i < nr && n_near < ef; i++)
                if (sr->res[i].id != slot) near[n_near++] = sr->res[i];
        }
        if (n_near) {
            ep = near[0].id;
            ep_d = near[0].d;
            if (l == L && heir == UINT32_MAX) heir = near[0].id; /* the nearest node on d's top level */
        }
        repair_level(h, s, sp, sr, slot, l, near, n_near);
    }
    if (sr) svdb__hnsw_give_searcher(h, sr);
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
