/* Shared by the per-ISA files: turns a file's always-inline `tile` (R rows x
 * NQ queries, both compile-time constants at each use) into a kernel with the
 * svdb_kernel_fn signature. Tiling lets several rows share each query load
 * and several queries share each row load; since every (row, query) pair runs
 * the same arithmetic in the same order whatever the tile shape, batch and
 * single searches agree bit for bit. R1..R4 are the rows per tile for 1..4
 * queries, chosen per ISA to fit its register file. */
#ifndef SVDB_DISTANCE_KERNEL_H
#define SVDB_DISTANCE_KERNEL_H

#define SVDB_RUN_TILES(NQ, R, IS_L2)                                                               \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + (R) <= n; i_ += (R)) {                                                         \
            const float *xr_[SVDB_TILE_MAX_R];                                                     \
            for (int r_ = 0; r_ < (R); r_++) xr_[r_] = x + (i_ + (size_t)r_) * dim;                \
            tile(q, NQ, xr_, R, dim, IS_L2, out + i_, n);                                          \
        }                                                                                          \
        for (; i_ < n; i_++) {                                                                     \
            const float *xr_[1] = {x + i_ * dim};                                                  \
            tile(q, NQ, xr_, 1, dim, IS_L2, out + i_, n);                                          \
        }                                                                                          \
    } while (0)

#define SVDB_DEFINE_KERNEL(NAME, IS_L2, R1, R2, R3, R4)                                            \
    static void NAME(const float *const *q, int nq, const float *x, size_t n, size_t dim, float *out) \
    {                                                                                              \
        switch (nq) {                                                                              \
        case 1: SVDB_RUN_TILES(1, R1, IS_L2); break;                                               \
        case 2: SVDB_RUN_TILES(2, R2, IS_L2); break;                                               \
        case 3: SVDB_RUN_TILES(3, R3, IS_L2); break;                                               \
        default: SVDB_RUN_TILES(4, R4, IS_L2); break;                                              \
        }                                                                                          \
    }

/* A pair kernel from the same tile, so a pair's distance equals the batch one. */
#define SVDB_DEFINE_PAIR(NAME, IS_L2)                                                              \
    static float NAME(const float *qv, const float *x, size_t dim)                                 \
    {                                                                                              \
        const float *q[1] = {qv};                                                                  \
        const float *xr[1] = {x};                                                                  \
        float out;                                                                                 \
        tile(q, 1, xr, 1, dim, IS_L2, &out, 1);                                                    \
        return out;                                                                                \
    }

/* One query against rows scattered in memory (a graph node's neighbours),
 * R rows per tile, again with the same per-row arithmetic. */
#define SVDB_DEFINE_GATHER(NAME, IS_L2, R)                                                         \
    static void NAME(const float *qv, const float *const *rows, size_t n, size_t dim, float *out)  \
    {                                                                                              \
        const float *q[1] = {qv};                                                                  \
        size_t i = 0;                                                                              \
        for (; i + (R) <= n; i += (R)) tile(q, 1, rows + i, R, dim, IS_L2, out + i, 1);            \
        for (; i < n; i++) tile(q, 1, rows + i, 1, dim, IS_L2, out + i, 1);                        \
    }

#define SVDB_TILE_MAX_R 4

/* The tile loops have constant trip counts; unrolled, their accumulators
 * live in registers instead of on the stack. */
#define SVDB_UNROLL _Pragma("GCC unroll 4")

#endif
