/* All library allocations go through here so tests can inject failures. */
#ifndef SVDB_ALLOC_H
#define SVDB_ALLOC_H

#include <stddef.h>

void *svdb__malloc(size_t n);
void *svdb__calloc(size_t count, size_t size);
void *svdb__realloc(void *p, size_t n);
/* n bytes at a multiple of `align` (a power of two); freed by svdb__free. */
void *svdb__malloc_aligned(size_t align, size_t n);
void svdb__free(void *p);
char *svdb__strndup(const char *s, size_t n);

/* Replaces each of the n chunks (of `bytes` bytes) that lies in the memory
 * map [lo, lo + len) by a copy in allocated memory, so the map may go; on
 * failure nothing changed. */
int svdb__copy_out_of_map(void **chunks, size_t n, size_t bytes, const void *lo, size_t len);

/* Test hook: make the n-th allocation from now fail (0 disables). */
void svdb__alloc_fail_after(long n);

#endif
