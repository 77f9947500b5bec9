/* CRC32C with the SSE4.2 crc32 instruction; compiled with -msse4.2 only. */
#include "crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <pthread.h>
#include <string.h>

/* The crc32 instruction has a latency of 3 cycles and a throughput of 1, so
 * long inputs run three independent streams over three blocks and join them:
 * the CRC register is linear, so state s followed by block B equals
 * shift(s) ^ crc(0, B), where shift multiplies by x^(8 * BLK) modulo the
 * polynomial; it is applied through four tables of 256 entries. */
#define BLK 1024
static uint32_t shift_tab[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void init_shift(void)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint64_t c = (uint64_t)1 << i;
        for (int k = 0; k < BLK / 8; k++) c = _mm_crc32_u64(c, 0);
        basis[i] = (uint32_t)c;
    }
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if ((b >> j) & 1) v ^= basis[8 * k + j];
            shift_tab[k][b] = v;
        }
}

static inline uint32_t shift(uint32_t x)
{
    return shift_tab[0][x & 0xFF] ^ shift_tab[1][(x >> 8) & 0xFF] ^ shift_tab[2][(x >> 16) & 0xFF] ^ shift_tab[3][x >> 24];
}

static uint32_t crc_hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (len >= 3 * BLK) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < BLK; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + BLK + i, 8);
            memcpy(&wd, p + 2 * BLK + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            d = _mm_crc32_u64(d, wd);
        }
        c = shift(shift((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * BLK;
        len -= 3 * BLK;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

svdb_crc_fn svdb__crc32c_hw(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.2")) return NULL;
    pthread_once(&shift_once, init_shift);
    return crc_hw;
}
#else
svdb_crc_fn svdb__crc32c_hw(void) { return NULL; }
#endif
