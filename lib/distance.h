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

/* Norms, and what a distance means per metric, live in space.h. */

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
