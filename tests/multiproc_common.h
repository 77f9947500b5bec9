/* What tests/test_multiproc.c and its worker (tests/multiproc_worker.c)
 * both compute: the rows they write, the per-writer workloads, and checks
 * of a handle's view. The parent recomputes what a worker did from the
 * same arguments instead of trusting what the worker says. */
#ifndef SVDB_MULTIPROC_COMMON_H
#define SVDB_MULTIPROC_COMMON_H

#include "helpers.h"
#include "svdb.h"

#include <stddef.h>
#include <stdint.h>

#define MP_DIM 8

/* Row r of the batch tests: id "r<r>", a vector drawn from r, metadata
 * {"b":<batch>}. Batch k of size B holds rows k*B .. k*B+B-1. */
void mp_row_id(char *buf, size_t cap, uint64_t r);
void mp_row_vec(float *v, uint32_t dim, uint64_t r);
void mp_row_meta(char *buf, size_t cap, uint64_t batch);
/* Whether the handle holds row r exactly as written (1), or -1 on error. */
int mp_row_check(svdb *db, uint64_t r, uint64_t batch);

/* A writer's own namespace: th_gen_op's workload with every id prefixed by
 * "w<w>-", so that writers never touch each other's rows there. */
typedef struct mp_ns {
    char prefix[16];
    uint64_t rng;
    unsigned next_id;
    th_model model;
} mp_ns;
void mp_ns_init(mp_ns *ns, unsigned w, uint64_t seed);
void mp_ns_free(mp_ns *ns);
/* The next op (valid against ns->model, which it does not change). */
void mp_ns_next(mp_ns *ns, int persist_pct, th_op *op);
/* The model after nops ops of writer w (what a writer ends with). */
void mp_ns_model(unsigned w, uint64_t seed, unsigned nops, int persist_pct, th_model *out);
/* 1 when the rows of db whose ids start with prefix are exactly the model's
 * (same order, vectors, metadata); else 0, printing the first difference. */
int mp_check_ns(svdb *db, const char *prefix, const th_model *m);

/* The ring of ids every writer adds, upserts and deletes: "s<i>". A value
 * written by writer w in round r has metadata {"w":w,"r":r} and a vector
 * drawn from (w, r, i), so a row shows whose whole value it holds. */
void mp_ring_id(char *buf, size_t cap, unsigned i);
void mp_ring_vec(float *v, uint32_t dim, unsigned w, unsigned round, unsigned i);
void mp_ring_meta(char *buf, size_t cap, unsigned w, unsigned round);

/* An order-sensitive hash of the whole view (ids, metadata, vectors). */
int mp_digest(svdb *db, uint64_t *hash, size_t *count);

/* siftsmall, or the first nb_max rows and nq_max queries of it; 0 when
 * the data set is absent. */
int mp_load_sift(size_t nb_max, size_t nq_max, float **base, size_t *nb, float **query, size_t *nq, size_t *dim);
/* The k-th smallest exact L2 distance of each query (nq floats). */
float *mp_kth(const float *base, size_t nb, const float *query, size_t nq, size_t dim, size_t k);
/* Tie-aware recall@k of the handle, whose rows are named by their index
 * in base; < 0 on error. */
double mp_recall(svdb *db, const float *base, const float *query, size_t nq, size_t dim, size_t k, const float *kth);

#endif
