/* Allocation wrappers with a fault-injection countdown for OOM tests. */
#include "alloc.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

static long fail_countdown; /* 0: never fail */

void svdb__alloc_fail_after(long n) { __atomic_store_n(&fail_countdown, n, __ATOMIC_SEQ_CST); }

static int should_fail(void)
{
    if (__atomic_load_n(&fail_countdown, __ATOMIC_RELAXED) <= 0) return 0;
    return __atomic_sub_fetch(&fail_countdown, 1, __ATOMIC_SEQ_CST) == 0;
}

void *svdb__malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *svdb__calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *svdb__realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void *svdb__malloc_aligned(size_t align, size_t n)
{
    size_t size = n ? (n + align - 1) / align * align : align; /* aligned_alloc wants a multiple */
    return should_fail() ? NULL : aligned_alloc(align, size);
}

void svdb__free(void *p) { free(p); }

int svdb__copy_out_of_map(void **chunks, size_t n, size_t bytes, const void *lo, size_t len)
{
    const char *a = lo;
    void **copies = svdb__calloc(n ? n : 1, sizeof *copies);
    int ok = copies != NULL;
    for (size_t c = 0; ok && c < n; c++)
        if (a && (const char *)chunks[c] >= a && (const char *)chunks[c] < a + len && !(copies[c] = svdb__malloc(bytes)))
            ok = 0;
    for (size_t c = 0; copies && c < n; c++) {
        if (!copies[c]) continue;
        if (ok) {
            memcpy(copies[c], chunks[c], bytes);
            chunks[c] = copies[c];
        } else {
            svdb__free(copies[c]);
        }
    }
    svdb__free(copies);
    return ok ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory copying %zu-byte chunks out of a map", bytes);
}

char *svdb__strndup(const char *s, size_t n)
{
    char *r = svdb__malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}
