/* Compact row codes: encoding, decoding and the portable kernels. */
#include "quant.h"

#include "svdb.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

size_t svdb__code_bytes(int storage, uint32_t dim)
{
    size_t b = storage == SVDB_STORAGE_F16 ? (size_t)dim * 2 : 8 + (size_t)dim;
    return (b + 3) & ~(size_t)3;
}

uint16_t svdb__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mag = x & 0x7FFFFFFFu;
    if (mag >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (mag > 0x7F800000u ? 0x200u : 0)); /* inf, nan */
    if (mag >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  /* rounds past 65504: inf */
    if (mag < 0x38800000u) {                                       /* below the smallest normal half */
        if (mag < 0x33000000u) return (uint16_t)sign;              /* rounds to zero */
        uint32_t e = mag >> 23, m = (mag & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24: the subnormal half keeps m >> shift */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((mag - 0x38000000u) >> 13), rem = mag & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent: still right */
    return (uint16_t)(sign | h);
}

float svdb__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu, x;
    if (e == 0x1F) {
        x = sign | 0x7F800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            e = 113;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            x = sign | (e << 23) | ((m & 0x3FFu) << 13);
        }
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void svdb__code_encode(int storage, const float *x, uint32_t dim, void *code)
{
    if (storage == SVDB_STORAGE_F16) {
        uint16_t *h = code;
        for (uint32_t d = 0; d < dim; d++) {
            float v = x[d] > 65504.0f ? 65504.0f : x[d] < -65504.0f ? -65504.0f : x[d];
            h[d] = svdb__f32_to_f16(v);
        }
        return;
    }
    float lo = x[0], hi = x[0];
    for (uint32_t d = 1; d < dim; d++) {
        lo = x[d] < lo ? x[d] : lo;
        hi = x[d] > hi ? x[d] : hi;
    }
    float step = (float)(((double)hi - (double)lo) / 255.0); /* double: hi - lo may overflow a float */
    unsigned char *c = (unsigned char *)code + 8;
    memcpy(code, &lo, 4);
    memcpy((unsigned char *)code + 4, &step, 4);
    for (uint32_t d = 0; d < dim; d++) {
        float q = step > 0.0f ? nearbyintf((x[d] - lo) / step) : 0.0f;
        c[d] = (unsigned char)(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
    }
}

void svdb__code_decode(int storage, const void *code, uint32_t dim, float *x)
{
    if (storage == SVDB_STORAGE_F16) {
        const uint16_t *h = code;
        for (uint32_t d = 0; d < dim; d++) x[d] = svdb__f16_to_f32(h[d]);
        return;
    }
    float lo, step;
    memcpy(&lo, code, 4);
    memcpy(&step, (const unsigned char *)code + 4, 4);
    const unsigned char *c = (const unsigned char *)code + 8;
    for (uint32_t d = 0; d < dim; d++) x[d] = lo + step * (float)c[d];
}

static void f16_l2(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = svdb__f16_l2_from(q, (const uint16_t *)(const void *)rows[i], 0, dim, 0.0f);
}

static void f16_dot(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = svdb__f16_dot_from(q, (const uint16_t *)(const void *)rows[i], 0, dim, 0.0f);
}

static void i8_l2(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = svdb__i8_l2_from(q, (const unsigned char *)rows[i] + 8, rows[i][0], rows[i][1], 0, dim, 0.0f);
}

static void i8_dot(const float *q, const float *const *rows, size_t n, size_t dim, float *out)
{
    float qs = 0.0f;
    for (size_t d = 0; d < dim; d++) qs += q[d];
    for (size_t i = 0; i < n; i++)
        out[i] = rows[i][0] * qs + rows[i][1] * svdb__i8_dot_from(q, (const unsigned char *)rows[i] + 8, 0, dim, 0.0f);
}

static const svdb_code_kernels scalar_f16 = {"scalar", f16_l2, f16_dot};
static const svdb_code_kernels scalar_i8 = {"scalar", i8_l2, i8_dot};

const svdb_code_kernels *svdb__code_kernels_scalar(int storage)
{
    return storage == SVDB_STORAGE_F16 ? &scalar_f16 : &scalar_i8;
}

#if !defined(SVDB_HAVE_AVX2)
const svdb_code_kernels *svdb__code_kernels_avx2(int storage)
{
    (void)storage;
    return NULL;
}
#endif

static int has_f16c(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    /* clang's __builtin_cpu_supports does not know "f16c": CPUID leaf 1, ECX bit 29 */
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
#else
    return 0;
#endif
}

const svdb_code_kernels *svdb__code_kernels(int storage, const svdb_kernels *k)
{
    int simd = k && (strcmp(k->name, "avx2") == 0 || strcmp(k->name, "avx512") == 0);
    const svdb_code_kernels *a = simd && has_f16c() ? svdb__code_kernels_avx2(storage) : NULL;
    return a ? a : svdb__code_kernels_scalar(storage);
}
