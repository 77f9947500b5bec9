/* NEON kernels for AArch64, where Advanced SIMD is always present. */
#include "distance.h"
#include "distance_kernel.h"

#include <arm_neon.h>

/* One row per tile (R is always 1 here); see distance_kernel.h. */
static inline __attribute__((always_inline)) void tile(const float *const *q, const int NQ,
                                                       const float *const *xr, const int R, size_t dim,
                                                       int is_l2, float *out, size_t stride)
{
    (void)R;
    float32x4_t a0[SVDB_KERNEL_MAX_Q], a1[SVDB_KERNEL_MAX_Q];
    SVDB_UNROLL
    for (int j = 0; j < NQ; j++) a0[j] = a1[j] = vdupq_n_f32(0.0f);
    size_t d = 0;
    for (; d + 8 <= dim; d += 8) {
        float32x4_t x0 = vld1q_f32(xr[0] + d), x1 = vld1q_f32(xr[0] + d + 4);
        SVDB_UNROLL
        for (int j = 0; j < NQ; j++) {
            float32x4_t q0 = vld1q_f32(q[j] + d), q1 = vld1q_f32(q[j] + d + 4);
            if (is_l2) {
                q0 = vsubq_f32(q0, x0);
                q1 = vsubq_f32(q1, x1);
                a0[j] = vfmaq_f32(a0[j], q0, q0);
                a1[j] = vfmaq_f32(a1[j], q1, q1);
            } else {
                a0[j] = vfmaq_f32(a0[j], q0, x0);
                a1[j] = vfmaq_f32(a1[j], q1, x1);
            }
        }
    }
    SVDB_UNROLL
    for (int j = 0; j < NQ; j++) {
        float s = vaddvq_f32(vaddq_f32(a0[j], a1[j]));
        for (size_t t = d; t < dim; t++) {
            float v = is_l2 ? q[j][t] - xr[0][t] : q[j][t];
            s += is_l2 ? v * v : v * xr[0][t];
        }
        out[(size_t)j * stride] = s;
    }
}

SVDB_DEFINE_KERNEL(l2_neon, 1, 1, 1, 1, 1)
SVDB_DEFINE_KERNEL(dot_neon, 0, 1, 1, 1, 1)

SVDB_DEFINE_PAIR(l2_pair_neon, 1)
SVDB_DEFINE_PAIR(dot_pair_neon, 0)
SVDB_DEFINE_GATHER(l2_gather_neon, 1, 1)
SVDB_DEFINE_GATHER(dot_gather_neon, 0, 1)

static const svdb_kernels table = {"neon", l2_neon, dot_neon, l2_pair_neon, dot_pair_neon, l2_gather_neon, dot_gather_neon};

const svdb_kernels *svdb__kernels_neon(void) { return &table; }
