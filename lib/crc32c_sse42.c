/* CRC32C with the SSE4.2 crc32 instruction; compiled with -msse4.2 only. */
#include "crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <string.h>

static uint32_t crc_hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
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
    return __builtin_cpu_supports("sse4.2") ? crc_hw : NULL;
}
#else
svdb_crc_fn svdb__crc32c_hw(void) { return NULL; }
#endif
