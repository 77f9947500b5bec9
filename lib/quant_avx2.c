/* AVX2+FMA+F16C kernels for code rows; this file alone is compiled with
 * -mavx2 -mfma -mf16c. One row at a time, two accumulators of 8 lanes. */
#include "quant.h"

#include "svdb.h"

#include <immintrin.h>
#include <string.h>

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_h8(const uint16_t *h) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h)); }

static inline __m256 load_b8(const unsigned char *c)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)c)));
}

static void f16_l2(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint16_t *h = (const uint16_t *)(const void *)rows[i];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= dim; d += 16) {
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + d), load_h8(h + d));
            __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + d + 8), load_h8(h + d + 8));
            a0 = _mm256_fmadd_ps(t0, t0, a0);
            a1 = _mm256_fmadd_ps(t1, t1, a1);
        }
        for (; d + 8 <= dim; d += 8) {
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + d), load_h8(h + d));
            a0 = _mm256_fmadd_ps(t0, t0, a0);
        }
        out[i] = svdb__f16_l2_from(q, h, d, dim, hsum256(_mm256_add_ps(a0, a1)));
    }
}

static void f16_dot(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint16_t *h = (const uint16_t *)(const void *)rows[i];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= dim; d += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_h8(h + d), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), load_h8(h + d + 8), a1);
        }
        for (; d + 8 <= dim; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_h8(h + d), a0);
        out[i] = svdb__f16_dot_from(q, h, d, dim, hsum256(_mm256_add_ps(a0, a1)));
    }
}

static void i8_l2(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = (const unsigned char *)rows[i] + 8;
        float lo = rows[i][0], step = rows[i][1];
        __m256 vlo = _mm256_set1_ps(lo), vst = _mm256_set1_ps(step);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= dim; d += 16) {
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + d), _mm256_fmadd_ps(vst, load_b8(c + d), vlo));
            __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + d + 8), _mm256_fmadd_ps(vst, load_b8(c + d + 8), vlo));
            a0 = _mm256_fmadd_ps(t0, t0, a0);
            a1 = _mm256_fmadd_ps(t1, t1, a1);
        }
        for (; d + 8 <= dim; d += 8) {
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + d), _mm256_fmadd_ps(vst, load_b8(c + d), vlo));
            a0 = _mm256_fmadd_ps(t0, t0, a0);
        }
        out[i] = svdb__i8_l2_from(q, c, lo, step, d, dim, hsum256(_mm256_add_ps(a0, a1)));
    }
}

static void i8_dot(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    float qs = 0.0f;
    for (size_t d = 0; d < dim; d++) qs += q[d];
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = (const unsigned char *)rows[i] + 8;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= dim; d += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_b8(c + d), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), load_b8(c + d + 8), a1);
        }
        for (; d + 8 <= dim; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_b8(c + d), a0);
        out[i] = rows[i][0] * qs + rows[i][1] * svdb__i8_dot_from(q, c, d, dim, hsum256(_mm256_add_ps(a0, a1)));
    }
}

static const svdb_code_kernels avx2_f16 = {"avx2", f16_l2, f16_dot};
static const svdb_code_kernels avx2_i8 = {"avx2", i8_l2, i8_dot};

const svdb_code_kernels *svdb__code_kernels_avx2(int storage) { return storage == SVDB_STORAGE_F16 ? &avx2_f16 : &avx2_i8; }
