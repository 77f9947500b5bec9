/* Compact row codes for HNSW collections (storage f16 or int8): the graph
 * walk scores queries against these instead of float32 rows, and the
 * candidates it keeps are re-ranked exactly against the float32 originals.
 * A code row is padded to a multiple of 4 bytes, so rows stay aligned in the
 * store's chunks (which are float arrays).
 *   f16:  dim IEEE half floats
 *   int8: float lo, float step, then dim bytes c; component = lo + step * c */
#ifndef SVDB_QUANT_H
#define SVDB_QUANT_H

#include "distance.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes of one code row (a multiple of 4). */
size_t svdb__code_bytes(int storage, uint32_t dim);
/* Encodes a float32 row. f16 clamps components beyond +-65504 (the largest
 * half) and rounds to nearest even; int8 rounds to the nearest of 256 evenly
 * spaced levels between the row's minimum and maximum. */
void svdb__code_encode(int storage, const float *x, uint32_t dim, void *code);
/* Decodes a code row back to dim floats. */
void svdb__code_decode(int storage, const void *code, uint32_t dim, float *x);

/* Scores a float32 query against code rows given by pointers (the pointers
 * are the code rows' addresses): the svdb_gather_fn signature, so the graph
 * walk uses these exactly as the float32 ones. */
typedef struct svdb_code_kernels {
    const char *name;
    svdb_gather_fn l2_gather;
    svdb_gather_fn dot_gather;
} svdb_code_kernels;

/* The kernels for `storage` that match the float32 table in use ("scalar"
 * and "neon" get the portable ones; x86 tables the AVX2+F16C ones when the
 * CPU has them). */
const svdb_code_kernels *svdb__code_kernels(int storage, const svdb_kernels *k);

/* Portable versions, also the reference in tests. */
const svdb_code_kernels *svdb__code_kernels_scalar(int storage);
/* AVX2+FMA+F16C versions, or NULL when not compiled in. */
const svdb_code_kernels *svdb__code_kernels_avx2(int storage);

/* IEEE half <-> float, round to nearest even (no clamping here). */
uint16_t svdb__f32_to_f16(float f);
float svdb__f16_to_f32(uint16_t h);

/* Scalar sums over components [d, dim) of one code row, added to s: the
 * portable kernels use them for whole rows, the SIMD ones for their tails. */
static inline float svdb__f16_l2_from(const float *q, const uint16_t *h, size_t d, size_t dim, float s)
{
    for (; d < dim; d++) {
        float t = q[d] - svdb__f16_to_f32(h[d]);
        s += t * t;
    }
    return s;
}
static inline float svdb__f16_dot_from(const float *q, const uint16_t *h, size_t d, size_t dim, float s)
{
    for (; d < dim; d++) s += q[d] * svdb__f16_to_f32(h[d]);
    return s;
}
static inline float svdb__i8_l2_from(const float *q, const unsigned char *c, float lo, float step, size_t d,
                                     size_t dim, float s)
{
    for (; d < dim; d++) {
        float t = q[d] - (lo + step * (float)c[d]);
        s += t * t;
    }
    return s;
}
/* The sum of q[d] * c[d]; the row's dot product is lo * sum(q) + step * this. */
static inline float svdb__i8_dot_from(const float *q, const unsigned char *c, size_t d, size_t dim, float s)
{
    for (; d < dim; d++) s += q[d] * (float)c[d];
    return s;
}

#endif
