/* The metric space of a collection: the only code that knows the metrics.
 * It owns the norms, query preparation, the choice of kernels (float32, or
 * the codes of compact storage for the graph walk), the conversion of a raw
 * kernel score to a distance, and the distance a caller sees. The graph
 * (hnsw.c) and the scans (search.c) score only through it.
 *
 * Distances: l2 is the squared Euclidean distance, the kernel's raw score;
 * ip is 1 - dot; cosine is 1 - dot * (1/|q|) * (1/|x|), with both inverse
 * norms stored or computed once. A NaN (+inf + -inf in a huge product) ranks
 * last as +inf. The hot helpers are static inline and take the metric as an
 * int, so a caller that passes a constant gets a loop specialised for it. */
#ifndef SVDB_SPACE_H
#define SVDB_SPACE_H

#include "distance.h"
#include "quant.h"
#include "svdb.h"

#include <stddef.h>
#include <stdint.h>

/* Vectors every distance stays finite for. A squared norm above
 * SVDB_MAX_NORM2 is refused at write and query: between two accepted
 * vectors an L2 distance (at most 2(|a|^2 + |b|^2)) and a dot product (at
 * most |a||b|) then fit a float with room for rounding. Under cosine a
 * squared norm below SVDB_COSINE_MIN_NORM2 has no direction a float can
 * carry (its inverse overflows, its products turn denormal), so such a row
 * or query is ranked as ChromaDB ranks a zero vector: inverse norm 0,
 * similarity 0, distance 1 to everything. */
#define SVDB_MAX_NORM2 4.0e37
#define SVDB_COSINE_MIN_NORM2 1.0e-30

/* Squared norm, summed in double. */
double svdb__norm2(const float *v, size_t dim);
/* 1/|v| for cosine, or 0 for a vector too short to have a direction. */
float svdb__inv_norm(const float *v, size_t dim);

/* The kernels a collection scores with, chosen once from its metric and
 * storage (a small value: build it where needed, it holds no resources). */
typedef struct svdb_space {
    int metric;                  /* SVDB_METRIC_L2, _COSINE or _IP */
    uint32_t dim;
    svdb_kernel_fn block;        /* queries x consecutive float32 rows (the exact scan) */
    svdb_pair_fn pair;           /* one query x one float32 row */
    svdb_gather_fn gather;       /* one query x float32 rows by pointer */
    svdb_gather_fn walk;         /* one query x the rows the graph walk reads: codes under compact storage */
    const svdb_code_kernels *ck; /* compact storage's code kernels; NULL for float32 */
} svdb_space;

/* Fills *sp for `metric` (L2 unless cosine or ip) with float32 kernels `k`
 * and, for compact storage, the code kernels `ck` (NULL: float32). */
void svdb__space_init(svdb_space *sp, int metric, uint32_t dim, const svdb_kernels *k, const svdb_code_kernels *ck);
/* The code kernels for `storage` with float32 table `k`: NULL for float32
 * storage (the graph walk then reads the vectors themselves). */
const svdb_code_kernels *svdb__space_code_kernels(int storage, const svdb_kernels *k);

/* Every component finite and the squared norm within SVDB_MAX_NORM2, so
 * every distance to it is finite; otherwise SVDB_EINVAL naming `what` and
 * `row`. A zero vector passes (under cosine it has no direction and scores
 * distance 1 to every row, as in ChromaDB). */
int svdb__space_check_vector(const float *v, uint32_t dim, const char *what, size_t row);
/* Copies n queries of dim floats (the caller's buffer is read once), checks
 * each and, under cosine, scales it to unit length (a zero one to zero).
 * *out is freed with svdb__free. SVDB_ENOMEM or SVDB_EINVAL; *out is then
 * untouched. */
int svdb__space_prepare_queries(const svdb_space *sp, const float *q, size_t n, uint32_t dim, float **out);

/* A row's inverse norm `expr` for the helpers below, evaluated only under
 * cosine: the other metrics keep no norms, so `expr` need not be valid
 * there, and a hot loop reads nothing for them. */
#define SVDB_SPACE_ROW_NORM(metric, expr) ((metric) == SVDB_METRIC_COSINE ? (expr) : 1.0f)

/* The distance for a raw kernel score, a NaN left as it is (for a scan that
 * compares first and tests for NaN only on the rare row that passes).
 * `qinv` is the query's inverse norm (1 for a prepared query), `norm` the
 * row's (SVDB_SPACE_ROW_NORM). */
static inline float svdb__space_score(int metric, float raw, float qinv, float norm)
{
    if (metric == SVDB_METRIC_COSINE) return 1.0f - raw * qinv * norm;
    if (metric == SVDB_METRIC_IP) return 1.0f - raw;
    return raw;
}
/* A NaN distance as +inf: ranked last, deterministically. */
static inline float svdb__space_nan_last(float d) { return d != d ? __builtin_inff() : d; }
/* The distance for a raw kernel score. */
static inline float svdb__space_dist(int metric, float raw, float qinv, float norm)
{
    return svdb__space_nan_last(svdb__space_score(metric, raw, qinv, norm));
}
/* The raw score of query q against one row the graph walk reads (the
 * vector, or its code under compact storage). */
static inline float svdb__space_walk_one(const svdb_space *sp, const float *q, const float *row)
{
    float raw;
    if (sp->ck) sp->walk(q, &row, 1, sp->dim, &raw);
    else raw = sp->pair(q, row, sp->dim);
    return raw;
}
/* The distance a caller sees: cosine within its range [0, 2] (rounding can
 * leave 1 - raw * norm a hair outside it); the others as computed. */
static inline float svdb__space_reported(int metric, float d)
{
    if (metric != SVDB_METRIC_COSINE) return d;
    return d < 0.0f ? 0.0f : d > 2.0f ? 2.0f : d;
}

/* Runs the statement(s) `...` with M an integer constant equal to `metric`,
 * one copy per metric, so scoring inlined there is specialised: the exact
 * scan's inner loop is then a compare. */
#define SVDB_SPACE_BY_METRIC(metric, M, ...)                                                       \
    do {                                                                                           \
        switch (metric) {                                                                          \
        case SVDB_METRIC_COSINE: {                                                                 \
            enum { M = SVDB_METRIC_COSINE };                                                       \
            __VA_ARGS__;                                                                           \
        } break;                                                                                   \
        case SVDB_METRIC_IP: {                                                                     \
            enum { M = SVDB_METRIC_IP };                                                           \
            __VA_ARGS__;                                                                           \
        } break;                                                                                   \
        default: {                                                                                 \
            enum { M = SVDB_METRIC_L2 };                                                           \
            __VA_ARGS__;                                                                           \
        } break;                                                                                   \
        }                                                                                          \
    } while (0)

#endif
