/* AVX2+FMA kernels; this file alone is compiled with -mavx2 -mfma. */
#include "distance.h"
#include "distance_kernel.h"

#include <immintrin.h>
#include <stdint.h>

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i tail_mask(size_t r)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

/* One row against NQ queries; NQ is a constant in each instantiation, so the
 * per-query operation order is the same whatever NQ is. */
static inline __attribute__((always_inline)) void row_q(const float *const *q, const int NQ, const float *x,
                                                        size_t dim, int is_l2, float *out, size_t stride)
{
    __m256 a0[SVDB_KERNEL_MAX_Q], a1[SVDB_KERNEL_MAX_Q];
    for (int j = 0; j < NQ; j++) a0[j] = a1[j] = _mm256_setzero_ps();
    size_t d = 0;
    for (; d + 16 <= dim; d += 16) {
        __m256 x0 = _mm256_loadu_ps(x + d), x1 = _mm256_loadu_ps(x + d + 8);
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_loadu_ps(q[j] + d), q1 = _mm256_loadu_ps(q[j] + d + 8);
            if (is_l2) {
                q0 = _mm256_sub_ps(q0, x0);
                q1 = _mm256_sub_ps(q1, x1);
                a0[j] = _mm256_fmadd_ps(q0, q0, a0[j]);
                a1[j] = _mm256_fmadd_ps(q1, q1, a1[j]);
            } else {
                a0[j] = _mm256_fmadd_ps(q0, x0, a0[j]);
                a1[j] = _mm256_fmadd_ps(q1, x1, a1[j]);
            }
        }
    }
    if (d + 8 <= dim) {
        __m256 x0 = _mm256_loadu_ps(x + d);
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_loadu_ps(q[j] + d);
            if (is_l2) {
                q0 = _mm256_sub_ps(q0, x0);
                a0[j] = _mm256_fmadd_ps(q0, q0, a0[j]);
            } else {
                a0[j] = _mm256_fmadd_ps(q0, x0, a0[j]);
            }
        }
        d += 8;
    }
    if (d < dim) {
        __m256i m = tail_mask(dim - d);
        __m256 x0 = _mm256_maskload_ps(x + d, m);
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_maskload_ps(q[j] + d, m);
            if (is_l2) {
                q0 = _mm256_sub_ps(q0, x0);
                a1[j] = _mm256_fmadd_ps(q0, q0, a1[j]);
            } else {
                a1[j] = _mm256_fmadd_ps(q0, x0, a1[j]);
            }
        }
    }
    for (int j = 0; j < NQ; j++) out[(size_t)j * stride] = hsum256(_mm256_add_ps(a0[j], a1[j]));
}

SVDB_DEFINE_KERNEL(l2_avx2, 1)
SVDB_DEFINE_KERNEL(dot_avx2, 0)

static const svdb_kernels table = {"avx2", l2_avx2, dot_avx2};

const svdb_kernels *svdb__kernels_avx2(void) { return &table; }
