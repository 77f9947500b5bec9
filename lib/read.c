/* Reads: lookups by id, listing, and search. Readers hold the collection's
 * read lock while they touch rows, and copy what they return. */
#include "collection_impl.h"

#include "alloc.h"
#include "error.h"
#include "search.h"

#include <stdlib.h>
#include <string.h>

int svdb__coll_get(svdb_coll *db, const char *id, size_t len, float *vector, uint32_t dim, char **metadata)
{
    SVDB_TRY(svdb__coll_refresh(db));
    svdb__gate_rdlock(&db->gate);
    int rc = SVDB_OK;
    uint32_t slot = svdb__store_find(db->store, id, len);
    if (slot == SVDB_NO_SLOT) {
        rc = svdb__fail(SVDB_ENOTFOUND, "id '%s' not found", id);
    } else {
        const svdb_row *r = svdb__row(svdb__store_view(db->store), slot);
        /* The buffer's size is checked under the lock, where the dimension cannot change. */
        if (vector && dim != svdb__store_dim(db->store))
            rc = svdb__fail(SVDB_EDIM, "vector buffer holds %u floats but the collection has %u dimensions", dim,
                            svdb__store_dim(db->store));
        if (rc == SVDB_OK && metadata && r->meta_len && !(*metadata = svdb__strndup(svdb__row_meta(r), r->meta_len)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        if (rc == SVDB_OK && vector)
            memcpy(vector, svdb__vec(svdb__store_view(db->store), slot), svdb__store_dim(db->store) * sizeof(float));
    }
    svdb__gate_unlock(&db->gate);
    return rc;
}

/* Looks the ids up and copies what is asked under one hold of the read
 * lock: found flags, vectors (zeros for a missing id), and the metadata in
 * one block of n pointers followed by the strings. */
static int get_rows(svdb_coll *db, const svdb_batch *b, float *vectors, char ***metadatas, int *found)
{
    const svdb_store *s = db->store;
    const svdb_store_view *view = svdb__store_view(s);
    uint32_t dim = view->dim, *slots = svdb__malloc(b->n * sizeof *slots);
    if (!slots) return svdb__fail(SVDB_ENOMEM, "out of memory looking up %zu ids", b->n);
    size_t bytes = 0;
    for (size_t i = 0; i < b->n; i++) { /* each id looked up once */
        slots[i] = svdb__store_find(s, b->ids[i], b->id_lens[i]);
        found[i] = slots[i] != SVDB_NO_SLOT;
        if (found[i] && metadatas && svdb__row(view, slots[i])->meta_len) bytes += svdb__row(view, slots[i])->meta_len + 1;
    }
    char **m = NULL;
    if (metadatas && !(m = svdb__malloc(b->n * sizeof(char *) + bytes))) {
        svdb__free(slots);
        return svdb__fail(SVDB_ENOMEM, "out of memory returning the metadata of %zu rows", b->n);
    }
    char *at = m ? (char *)(m + b->n) : NULL;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t slot = slots[i];
        if (vectors && slot != SVDB_NO_SLOT)
            memcpy(vectors + i * (size_t)dim, svdb__vec(view, slot), dim * sizeof(float));
        else if (vectors) memset(vectors + i * (size_t)dim, 0, dim * sizeof(float));
        if (!m) continue;
        const svdb_row *r = slot != SVDB_NO_SLOT ? svdb__row(view, slot) : NULL;
        m[i] = r && r->meta_len ? memcpy(at, svdb__row_meta(r), r->meta_len + 1) : NULL;
        if (m[i]) at += r->meta_len + 1;
    }
    svdb__free(slots);
    if (metadatas) *metadatas = m;
    return SVDB_OK;
}

int svdb__coll_get_batch(svdb_coll *db, size_t n, const char *const *ids, float *vectors, uint32_t dim,
                         char ***metadatas, int *found)
{
    SVDB_TRY(svdb__coll_refresh(db));
    svdb_batch b;
    SVDB_TRY(svdb__batch_alloc(&b, n, 0));
    void *block = NULL;
    int rc = svdb__coll_copy_batch(&b, n, ids, NULL, 0, NULL, &block);
    if (rc == SVDB_OK) rc = svdb__coll_check_ids(&b);
    if (rc == SVDB_OK) {
        svdb__gate_rdlock(&db->gate);
        /* The buffer's size is checked under the lock, where the dimension cannot change. */
        if (vectors && dim != svdb__store_dim(db->store))
            rc = svdb__fail(SVDB_EDIM, "vector buffer holds %u floats per row but the collection has %u dimensions",
                            dim, svdb__store_dim(db->store));
        if (rc == SVDB_OK) rc = get_rows(db, &b, vectors, metadatas, found);
        svdb__gate_unlock(&db->gate);
    }
    svdb__batch_free(&b);
    svdb__free(block);
    return rc;
}

size_t svdb__coll_count(svdb_coll *db)
{
    (void)svdb__coll_refresh(db); /* a failed catch-up shows at the next call that can report it */
    svdb__gate_rdlock(&db->gate);
    size_t n = svdb__store_count(db->store);
    svdb__gate_unlock(&db->gate);
    return n;
}

uint32_t svdb__coll_dim(svdb_coll *db)
{
    (void)svdb__coll_refresh(db); /* a failed catch-up shows at the next call that can report it */
    svdb__gate_rdlock(&db->gate);
    uint32_t dim = svdb__store_dim(db->store);
    svdb__gate_unlock(&db->gate);
    return dim;
}

int svdb__coll_contains(svdb_coll *db, const char *id, size_t len, int *found)
{
    SVDB_TRY(svdb__coll_refresh(db));
    svdb__gate_rdlock(&db->gate);
    *found = svdb__store_find(db->store, id, len) != SVDB_NO_SLOT;
    svdb__gate_unlock(&db->gate);
    return SVDB_OK;
}

static int by_seq_of(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return (x > y) - (x < y);
}

/* The slots of the ids of `only` that exist, each once, in insertion order
 * (read lock held). */
static int only_in_order(const svdb_coll *db, const svdb_batch *only, uint32_t **out, size_t *n_out)
{
    const svdb_store_view *view = svdb__store_view(db->store);
    uint64_t *pairs = svdb__malloc((only->n ? only->n : 1) * 2 * sizeof *pairs); /* {seq, slot} */
    uint32_t *slots = svdb__malloc((only->n ? only->n : 1) * sizeof *slots);
    if (!pairs || !slots) {
        svdb__free(pairs);
        svdb__free(slots);
        return svdb__fail(SVDB_ENOMEM, "out of memory resolving %zu ids", only->n);
    }
    size_t n = 0;
    for (size_t i = 0; i < only->n; i++) {
        uint32_t slot = svdb__store_find(db->store, only->ids[i], only->id_lens[i]);
        if (slot == SVDB_NO_SLOT) continue;
        pairs[2 * n] = svdb__row(view, slot)->seq;
        pairs[2 * n + 1] = slot;
        n++;
    }
    qsort(pairs, n, 2 * sizeof *pairs, by_seq_of);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) /* a repeated id: the same row, adjacent once sorted */
        if (u == 0 || slots[u - 1] != (uint32_t)pairs[2 * i + 1]) slots[u++] = (uint32_t)pairs[2 * i + 1];
    svdb__free(pairs);
    *out = slots;
    *n_out = u;
    return SVDB_OK;
}

/* Copies the chosen rows' ids (a NULL-terminated array, then the strings)
 * and, if asked, their metadata (n pointers, then the strings) out, each in
 * one block (read lock held). */
static int copy_rows_out(const svdb_store_view *view, const uint32_t *slots, size_t n, char ***ids, char ***metas)
{
    size_t id_bytes = 0, meta_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const svdb_row *r = svdb__row(view, slots[i]);
        id_bytes += r->id_len + 1;
        if (r->meta_len) meta_bytes += r->meta_len + 1;
    }
    char **arr = svdb__malloc((n + 1) * sizeof(char *) + id_bytes);
    char **m = metas ? svdb__malloc((n ? n : 1) * sizeof(char *) + meta_bytes) : NULL;
    if (!arr || (metas && !m)) {
        svdb__free(arr);
        svdb__free(m);
        return svdb__fail(SVDB_ENOMEM, "out of memory returning %zu rows", n);
    }
    char *s = (char *)(arr + n + 1), *t = m ? (char *)(m + (n ? n : 1)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const svdb_row *r = svdb__row(view, slots[i]);
        arr[i] = memcpy(s, svdb__row_id(r), r->id_len + 1);
        s += r->id_len + 1;
        if (!m) continue;
        m[i] = r->meta_len ? memcpy(t, svdb__row_meta(r), r->meta_len + 1) : NULL;
        if (r->meta_len) t += r->meta_len + 1;
    }
    arr[n] = NULL;
    *ids = arr;
    if (metas) *metas = m;
    return SVDB_OK;
}

/* The live rows admitted by `filter` (NULL: all) and, if `only` is given,
 * among its ids, in insertion order; `offset` of them skipped, at most
 * `limit` returned. */
static int select_rows(svdb_coll *db, const svdb_filter *filter, const svdb_batch *only, size_t offset, size_t limit,
                       char ***ids, char ***metas, size_t *count)
{
    svdb__gate_rdlock(&db->gate);
    uint32_t *order = NULL;
    size_t total = 0;
    int rc = only ? only_in_order(db, only, &order, &total) : svdb__store_order(db->store, &order);
    if (rc == SVDB_OK && !only) total = svdb__store_count(db->store);
    size_t n = 0, skipped = 0;
    /* Keep the chosen slots in place at the front of `order`. */
    const svdb_store_view *view = svdb__store_view(db->store);
    for (size_t i = 0; rc == SVDB_OK && i < total && n < limit; i++) {
        const svdb_row *r = svdb__row(view, order[i]);
        int m = filter ? svdb__filter_match(filter, svdb__row_meta(r), r->meta_len) : 1;
        if (m < 0) rc = svdb__filter_error(filter);
        if (m <= 0) continue;
        if (skipped < offset) {
            skipped++;
            continue;
        }
        order[n++] = order[i];
    }
    if (rc == SVDB_OK) rc = copy_rows_out(view, order, n, ids, metas);
    if (rc == SVDB_OK) *count = n;
    svdb__gate_unlock(&db->gate);
    svdb__free(order);
    return rc;
}

int svdb__coll_select(svdb_coll *db, const svdb_filter *filter, const char *const *only, size_t n_only, size_t offset,
                      size_t limit, char ***ids, char ***metas, size_t *count)
{
    SVDB_TRY(svdb__coll_refresh(db));
    if (!only) return select_rows(db, filter, NULL, offset, limit, ids, metas, count);
    if (n_only == 0) { /* restricted to no id: nothing matches */
        svdb_batch none = {0};
        return select_rows(db, filter, &none, offset, limit, ids, metas, count);
    }
    svdb_batch b; /* the caller's ids copied and checked first, as every read of caller memory */
    SVDB_TRY(svdb__batch_alloc(&b, n_only, 0));
    void *block = NULL;
    int rc = svdb__coll_copy_batch(&b, n_only, only, NULL, 0, NULL, &block);
    if (rc == SVDB_OK) rc = svdb__coll_check_ids(&b);
    if (rc == SVDB_OK) rc = select_rows(db, filter, &b, offset, limit, ids, metas, count);
    svdb__batch_free(&b);
    svdb__free(block);
    return rc;
}

int svdb__coll_ids(svdb_coll *db, const svdb_filter *filter, char ***ids, size_t *count)
{
    SVDB_TRY(svdb__coll_refresh(db));
    return select_rows(db, filter, NULL, 0, SIZE_MAX, ids, NULL, count);
}

/* Copies the queries, then checks and normalises the copy (for cosine), so
 * the caller's buffer is read once. */
static int prepare_queries(const svdb_coll *db, const float *q, size_t n, uint32_t dim, float **out)
{
    svdb_space sp;
    svdb__space_init(&sp, svdb__store_metric(db->store), dim, db->kern, svdb__store_view(db->store)->ck);
    return svdb__space_prepare_queries(&sp, q, n, dim, out);
}

static int by_slot(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The slots of a search's id allow-list (read lock held): existing ids
 * only, each once. */
static int only_slots(const svdb_coll *db, const svdb_batch *b, uint32_t **out, size_t *n_out)
{
    uint32_t *slots = svdb__malloc((b->n ? b->n : 1) * sizeof *slots);
    if (!slots) return svdb__fail(SVDB_ENOMEM, "out of memory resolving %zu ids", b->n);
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t slot = svdb__store_find(db->store, b->ids[i], b->id_lens[i]);
        if (slot != SVDB_NO_SLOT) slots[n++] = slot;
    }
    qsort(slots, n, sizeof *slots, by_slot);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || slots[u - 1] != slots[i]) slots[u++] = slots[i];
    *out = slots;
    *n_out = u;
    return SVDB_OK;
}

static int run_search(svdb_coll *db, const float *q, size_t n_queries, size_t k, const svdb_search_options *opts,
                      const svdb_filter *filter, const uint32_t *only, size_t n_only, const svdb_hit_sink *out,
                      size_t *n_hits)
{
    size_t live = only ? n_only : svdb__store_count(db->store);
    size_t keff = k < live ? k : live;
    if (keff == 0) return SVDB_OK;
    svdb_cand *cands = NULL;
    if (n_queries > SIZE_MAX / sizeof(svdb_cand) / keff || !(cands = svdb__malloc(n_queries * keff * sizeof *cands)))
        return svdb__fail(SVDB_ENOMEM, "out of memory for %zu x %zu results", n_queries, keff);
    unsigned threads = opts && opts->threads ? opts->threads : db->ncpu;
    svdb_search_plan plan = {db->store, db->kern, db->graph, opts && opts->ef ? opts->ef : db->hnsw.ef_search, filter,
                             NULL, 0, only, n_only};
    if (db->background) plan.pending = svdb__indexer_queue(&db->ix, &plan.n_pending);
    int rc = svdb__search_many(&plan, q, n_queries, keff, threads, cands, n_hits);
    if (rc == SVDB_OK) rc = svdb__hits_build(db->store, cands, keff, n_hits, n_queries, out);
    if (rc != SVDB_OK)
        for (size_t i = 0; i < n_queries; i++) n_hits[i] = 0;
    svdb__free(cands);
    return rc;
}

int svdb__coll_search(svdb_coll *db, size_t n_queries, const float *queries, uint32_t dim, size_t k,
                      const svdb_search_options *opts, const svdb_filter *filter, const svdb_hit_sink *out,
                      size_t *n_hits)
{
    SVDB_TRY(svdb__coll_refresh(db));
    /* An id allow-list (version 2) is copied and checked before the lock. */
    int restricted = opts && opts->version >= 2 && opts->ids;
    svdb_batch ids = {0};
    void *block = NULL;
    int rc = restricted && opts->n_ids ? svdb__batch_alloc(&ids, opts->n_ids, 0) : SVDB_OK;
    if (rc == SVDB_OK && restricted && opts->n_ids)
        rc = svdb__coll_copy_batch(&ids, opts->n_ids, opts->ids, NULL, 0, NULL, &block);
    if (rc == SVDB_OK && restricted) rc = svdb__coll_check_ids(&ids);
    float *q = NULL;
    uint32_t *only = NULL;
    size_t n_only = 0;
    svdb__gate_rdlock(&db->gate); /* the first add may fix the dimension concurrently */
    if (rc == SVDB_OK) rc = svdb__coll_check_dim(db, dim, "queries");
    if (rc == SVDB_OK) rc = prepare_queries(db, queries, n_queries, dim, &q);
    if (rc == SVDB_OK && restricted) rc = only_slots(db, &ids, &only, &n_only);
    if (rc == SVDB_OK) rc = run_search(db, q, n_queries, k, opts, filter, only, n_only, out, n_hits);
    svdb__gate_unlock(&db->gate);
    svdb__free(only);
    svdb__free(q);
    svdb__batch_free(&ids);
    svdb__free(block);
    return rc;
}

