/* AVX-512F kernels; this file alone is compiled with -mavx512f -mavx2 -mfma. */
#include "distance.h"
#include "distance_kernel.h"

#include <immintrin.h>

/* One row against NQ queries; see distance_avx2.c for why NQ is a constant. */
static inline __attribute__((always_inline)) void row_q(const float *const *q, const int NQ, const float *x,
                                                        size_t dim, int is_l2, float *out, size_t stride)
{
    __m512 a0[SVDB_KERNEL_MAX_Q], a1[SVDB_KERNEL_MAX_Q];
    for (int j = 0; j < NQ; j++) a0[j] = a1[j] = _mm512_setzero_ps();
    size_t d = 0;
    for (; d + 32 <= dim; d += 32) {
        __m512 x0 = _mm512_loadu_ps(x + d), x1 = _mm512_loadu_ps(x + d + 16);
        for (int j = 0; j < NQ; j++) {
            __m512 q0 = _mm512_loadu_ps(q[j] + d), q1 = _mm512_loadu_ps(q[j] + d + 16);
            if (is_l2) {
                q0 = _mm512_sub_ps(q0, x0);
                q1 = _mm512_sub_ps(q1, x1);
                a0[j] = _mm512_fmadd_ps(q0, q0, a0[j]);
                a1[j] = _mm512_fmadd_ps(q1, q1, a1[j]);
            } else {
                a0[j] = _mm512_fmadd_ps(q0, x0, a0[j]);
                a1[j] = _mm512_fmadd_ps(q1, x1, a1[j]);
            }
        }
    }
    if (d + 16 <= dim) {
        __m512 x0 = _mm512_loadu_ps(x + d);
        for (int j = 0; j < NQ; j++) {
            __m512 q0 = _mm512_loadu_ps(q[j] + d);
            if (is_l2) {
                q0 = _mm512_sub_ps(q0, x0);
                a0[j] = _mm512_fmadd_ps(q0, q0, a0[j]);
            } else {
                a0[j] = _mm512_fmadd_ps(q0, x0, a0[j]);
            }
        }
        d += 16;
    }
    if (d < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - d)) - 1u);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + d);
        for (int j = 0; j < NQ; j++) {
            __m512 q0 = _mm512_maskz_loadu_ps(m, q[j] + d);
            if (is_l2) {
                q0 = _mm512_sub_ps(q0, x0);
                a1[j] = _mm512_fmadd_ps(q0, q0, a1[j]);
            } else {
                a1[j] = _mm512_fmadd_ps(q0, x0, a1[j]);
            }
        }
    }
    for (int j = 0; j < NQ; j++) out[(size_t)j * stride] = _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j]));
}

SVDB_DEFINE_KERNEL(l2_avx512, 1)
SVDB_DEFINE_KERNEL(dot_avx512, 0)

static const svdb_kernels table = {"avx512", l2_avx512, dot_avx512};

const svdb_kernels *svdb__kernels_avx512(void) { return &table; }
