/* Portable scalar kernels and the run-time choice of the best table. Never
 * built with -march=native: SIMD lives in per-ISA files chosen by CPUID, so
 * one build runs on any CPU of its architecture. */
#include "distance.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void l2_scalar(const float *const *q, int nq, const float *x, size_t n, size_t dim, float *out)
{
    for (int j = 0; j < nq; j++)
        for (size_t i = 0; i < n; i++) {
            const float *row = x + i * dim;
            float s = 0.0f;
            for (size_t d = 0; d < dim; d++) {
                float t = q[j][d] - row[d];
                s += t * t;
            }
            out[(size_t)j * n + i] = s;
        }
}

static void dot_scalar(const float *const *q, int nq, const float *x, size_t n, size_t dim, float *out)
{
    for (int j = 0; j < nq; j++)
        for (size_t i = 0; i < n; i++) {
            const float *row = x + i * dim;
            float s = 0.0f;
            for (size_t d = 0; d < dim; d++) s += q[j][d] * row[d];
            out[(size_t)j * n + i] = s;
        }
}

static float l2_pair_scalar(const float *q, const float *x, size_t dim)
{
    float out;
    l2_scalar(&q, 1, x, 1, dim, &out);
    return out;
}

static float dot_pair_scalar(const float *q, const float *x, size_t dim)
{
    float out;
    dot_scalar(&q, 1, x, 1, dim, &out);
    return out;
}

static void l2_gather_scalar(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = l2_pair_scalar(q, rows[i], dim);
}

static void dot_gather_scalar(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = dot_pair_scalar(q, rows[i], dim);
}

static const svdb_kernels scalar_table = {"scalar",         l2_scalar,        dot_scalar,       l2_pair_scalar,
                                          dot_pair_scalar, l2_gather_scalar, dot_gather_scalar};

const svdb_kernels *svdb__kernels_scalar(void) { return &scalar_table; }

#if !defined(SVDB_HAVE_AVX2)
const svdb_kernels *svdb__kernels_avx2(void) { return NULL; }
#endif
#if !defined(SVDB_HAVE_AVX512)
const svdb_kernels *svdb__kernels_avx512(void) { return NULL; }
#endif
#if !defined(SVDB_HAVE_NEON)
const svdb_kernels *svdb__kernels_neon(void) { return NULL; }
#endif

static int cpu_has(const char *name)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
    return 0;
#elif defined(__aarch64__)
    return strcmp(name, "neon") == 0; /* Advanced SIMD is mandatory on AArch64 */
#else
    (void)name;
    return 0;
#endif
}

const svdb_kernels *svdb__kernels_named(const char *name)
{
    if (!name) return NULL;
    if (strcmp(name, "scalar") == 0) return &scalar_table;
    if (!cpu_has(name)) return NULL;
    if (strcmp(name, "avx2") == 0) return svdb__kernels_avx2();
    if (strcmp(name, "avx512") == 0) return svdb__kernels_avx512();
    if (strcmp(name, "neon") == 0) return svdb__kernels_neon();
    return NULL;
}

static const svdb_kernels *best;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void choose_best(void)
{
    const svdb_kernels *forced = svdb__kernels_named(getenv("SVDB_SIMD"));
    if (forced) {
        best = forced;
        return;
    }
    static const char *const order[] = {"avx512", "avx2", "neon"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const svdb_kernels *k = svdb__kernels_named(order[i]);
        if (k) {
            best = k;
            return;
        }
    }
    best = &scalar_table;
}

const svdb_kernels *svdb__kernels(void)
{
    pthread_once(&best_once, choose_best);
    return best;
}
