/* Distance kernels: one table per instruction set, chosen once at run time. */
#ifndef SVDB_DISTANCE_H
#define SVDB_DISTANCE_H

#include <stddef.h>

/* Most queries one kernel call scores at once; they share each row load. */
#define SVDB_KERNEL_MAX_Q 4

/* Scores `nq` (1..SVDB_KERNEL_MAX_Q) queries against `n` consecutive rows of
 * `dim` floats: out[j * n + i] = dist(q[j], x + i * dim). A query's result
 * does not depend on nq, so batch and single searches agree bit for bit. */
typedef void (*svdb_kernel_fn)(const float *const *q, int nq, const float *x, size_t n, size_t dim,
                               float *out);

/* One query against one row. */
typedef float (*svdb_pair_fn)(const float *q, const float *x, size_t dim);
/* One query against n rows given by pointers: out[i] = dist(q, rows[i]).
 * The graph walk scores a node's unvisited neighbours with one call. */
typedef void (*svdb_gather_fn)(const float *q, const float *const *rows, size_t n, size_t dim, float *out);

typedef struct svdb_kernels {
    const char *name;
    svdb_kernel_fn l2;  /* squared Euclidean distance */
    svdb_kernel_fn dot; /* dot product */
    svdb_pair_fn l2_pair;
    svdb_pair_fn dot_pair;
    svdb_gather_fn l2_gather;
    svdb_gather_fn dot_gather;
} svdb_kernels;

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

/* The fastest table this CPU supports (SVDB_SIMD in the environment may
 * force "scalar", "avx2", "avx512" or "neon" when supported). */
const svdb_kernels *svdb__kernels(void);
/* A table by name, or NULL when this build or CPU lacks it. */
const svdb_kernels *svdb__kernels_named(const char *name);

/* Per-ISA tables; each returns NULL when not compiled in. */
const svdb_kernels *svdb__kernels_scalar(void);
const svdb_kernels *svdb__kernels_avx2(void);
const svdb_kernels *svdb__kernels_avx512(void);
const svdb_kernels *svdb__kernels_neon(void);

#endif
