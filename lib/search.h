/* Exact (flat) search: a SIMD scan of every row with a bounded heap per query,
 * and a threaded driver for batches. Callers hold the store's read lock. */
#ifndef SVDB_SEARCH_H
#define SVDB_SEARCH_H

#include "distance.h"
#include "store.h"
#include "svdb.h"
#include "topk.h"

/* Scans every live row for nq (<= SVDB_KERNEL_MAX_Q) prepared queries
 * (normalised for cosine), filling tops[j]. */
void svdb__flat_scan(const svdb_store *s, const svdb_kernels *kern, const float *const *q, int nq, svdb_topk *tops);

/* Searches n prepared queries (contiguous, dim floats each) on `threads`
 * threads; cands must hold n * k entries; counts[i] receives query i's hits. */
int svdb__flat_search_many(const svdb_store *s, const svdb_kernels *kern, const float *queries, size_t n, size_t k,
                           unsigned threads, svdb_cand *cands, size_t *counts);

/* Packs the candidates of n queries into one caller-owned svdb_hit array
 * (ids copied after the array; freed by svdb_hits_free). */
int svdb__hits_build(const svdb_store *s, const svdb_cand *cands, size_t k, const size_t *counts, size_t n,
                     svdb_hit **out);

#endif
