/* Shared by the per-ISA files: turns a file's always-inline `row_q` into a
 * kernel with the svdb_kernel_fn signature, instantiating row_q once per
 * query count so every count runs the same per-query arithmetic. */
#ifndef SVDB_DISTANCE_KERNEL_H
#define SVDB_DISTANCE_KERNEL_H

#define SVDB_DEFINE_KERNEL(NAME, IS_L2)                                                            \
    static void NAME(const float *const *q, int nq, const float *x, size_t n, size_t dim, float *out) \
    {                                                                                              \
        for (size_t i = 0; i < n; i++) {                                                           \
            const float *row = x + i * dim;                                                        \
            switch (nq) {                                                                          \
            case 1: row_q(q, 1, row, dim, IS_L2, out + i, n); break;                               \
            case 2: row_q(q, 2, row, dim, IS_L2, out + i, n); break;                               \
            case 3: row_q(q, 3, row, dim, IS_L2, out + i, n); break;                               \
            default: row_q(q, 4, row, dim, IS_L2, out + i, n); break;                              \
            }                                                                                      \
        }                                                                                          \
    }

#endif
