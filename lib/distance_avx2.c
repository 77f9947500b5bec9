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

/* R rows x NQ queries; same accumulation scheme as distance_avx512.c with
 * 8-lane halves of 16-float steps. */
static inline __attribute__((always_inline)) void tile(const float *const *q, const int NQ,
                                                       const float *const *xr, const int R, size_t dim,
                                                       int is_l2, float *out, size_t stride)
{
    __m256 a0[SVDB_TILE_MAX_R][SVDB_KERNEL_MAX_Q], a1[SVDB_TILE_MAX_R][SVDB_KERNEL_MAX_Q];
    SVDB_UNROLL
    for (int r = 0; r < R; r++)
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) a0[r][j] = a1[r][j] = _mm256_setzero_ps();
    size_t d = 0;
    for (; d + 16 <= dim; d += 16) {
        __m256 x0[SVDB_TILE_MAX_R], x1[SVDB_TILE_MAX_R];
        SVDB_UNROLL
        for (int r = 0; r < R; r++) {
            x0[r] = _mm256_loadu_ps(xr[r] + d);
            x1[r] = _mm256_loadu_ps(xr[r] + d + 8);
        }
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_loadu_ps(q[j] + d), q1 = _mm256_loadu_ps(q[j] + d + 8);
            SVDB_UNROLL
            for (int r = 0; r < R; r++) {
                if (is_l2) {
                    __m256 t0 = _mm256_sub_ps(q0, x0[r]), t1 = _mm256_sub_ps(q1, x1[r]);
                    a0[r][j] = _mm256_fmadd_ps(t0, t0, a0[r][j]);
                    a1[r][j] = _mm256_fmadd_ps(t1, t1, a1[r][j]);
                } else {
                    a0[r][j] = _mm256_fmadd_ps(q0, x0[r], a0[r][j]);
                    a1[r][j] = _mm256_fmadd_ps(q1, x1[r], a1[r][j]);
                }
            }
        }
    }
    if (d + 8 <= dim) {
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_loadu_ps(q[j] + d);
            SVDB_UNROLL
            for (int r = 0; r < R; r++) {
                __m256 x0 = _mm256_loadu_ps(xr[r] + d);
                if (is_l2) {
                    __m256 t0 = _mm256_sub_ps(q0, x0);
                    a0[r][j] = _mm256_fmadd_ps(t0, t0, a0[r][j]);
                } else {
                    a0[r][j] = _mm256_fmadd_ps(q0, x0, a0[r][j]);
                }
            }
        }
        d += 8;
    }
    if (d < dim) {
        __m256i m = tail_mask(dim - d);
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) {
            __m256 q0 = _mm256_maskload_ps(q[j] + d, m);
            SVDB_UNROLL
            for (int r = 0; r < R; r++) {
                __m256 x0 = _mm256_maskload_ps(xr[r] + d, m);
                if (is_l2) {
                    __m256 t0 = _mm256_sub_ps(q0, x0);
                    a1[r][j] = _mm256_fmadd_ps(t0, t0, a1[r][j]);
                } else {
                    a1[r][j] = _mm256_fmadd_ps(q0, x0, a1[r][j]);
                }
            }
        }
    }
    SVDB_UNROLL
    for (int r = 0; r < R; r++)
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) out[(size_t)j * stride + r] = hsum256(_mm256_add_ps(a0[r][j], a1[r][j]));
}

/* One row per tile: with 16 ymm registers, 2-row tiles measured slower. */
SVDB_DEFINE_KERNEL(l2_avx2, 1, 1, 1, 1, 1)
SVDB_DEFINE_KERNEL(dot_avx2, 0, 1, 1, 1, 1)

SVDB_DEFINE_PAIR(l2_pair_avx2, 1)
SVDB_DEFINE_PAIR(dot_pair_avx2, 0)
SVDB_DEFINE_GATHER(l2_gather_avx2, 1, 1)
SVDB_DEFINE_GATHER(dot_gather_avx2, 0, 1)

static const svdb_kernels table = {"avx2", l2_avx2, dot_avx2, l2_pair_avx2, dot_pair_avx2, l2_gather_avx2, dot_gather_avx2};

const svdb_kernels *svdb__kernels_avx2(void) { return &table; }
