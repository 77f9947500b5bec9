/* Search: the exact SIMD scan, the driver that runs a batch of queries on
 * several threads over the flat scan or the HNSW graph, and the metadata
 * filter in either. Callers hold the store's read lock. */
#ifndef SVDB_SEARCH_H
#define SVDB_SEARCH_H

#include "distance.h"
#include "filter.h"
#include "hnsw.h"
#include "store.h"
#include "svdb.h"
#include "topk.h"

/* Scans every live row admitted by `admit` (NULL: all) for nq prepared
 * queries (normalised for cosine), filling tops[j]; one pass over the rows. */
void svdb__flat_scan(const svdb_store *s, const svdb_kernels *kern, const float *const *q, size_t nq,
                     svdb_topk *tops, svdb_admit_fn admit, void *ctx);

typedef struct svdb_search_plan {
    const svdb_store *s;
    const svdb_kernels *kern;
    const svdb_hnsw *graph;     /* NULL: exact scan */
    size_t ef;                  /* graph candidate list */
    const svdb_filter *filter;  /* NULL: no filter */
    const uint32_t *pending;    /* slots queued for linking, scanned exactly beside the walk */
    size_t n_pending;
    const uint32_t *only;       /* non-NULL: search only these slots, exactly */
    size_t n_only;
} svdb_search_plan;

/* Searches n prepared queries (contiguous, dim floats each) on `threads`
 * threads; cands must hold n * k entries; counts[i] receives query i's hits. */
int svdb__search_many(const svdb_search_plan *plan, const float *queries, size_t n, size_t k, unsigned threads,
                      svdb_cand *cands, size_t *counts);

/* Where a search's results go: an svdb_hit array allocated for the caller
 * (`hits`, freed by svdb_hits_free: ids copied after the array), or, for one
 * query, the caller's buffers (`hits` NULL): distances[k] and the ids one
 * after another, NUL-terminated, in ids[ids_cap]; *ids_len receives the
 * bytes written (or needed, with SVDB_ETOOBIG when they do not fit). */
typedef struct svdb_hit_sink {
    svdb_hit **hits;
    float *distances;
    char *ids;
    size_t ids_cap;
    size_t *ids_len;
} svdb_hit_sink;

/* Hands the candidates of n queries to the sink. */
int svdb__hits_build(const svdb_store *s, const svdb_cand *cands, size_t k, const size_t *counts, size_t n,
                     const svdb_hit_sink *out);

#endif
