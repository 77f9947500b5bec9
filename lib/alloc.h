/* All library allocations go through here so tests can inject failures. */
#ifndef SVDB_ALLOC_H
#define SVDB_ALLOC_H

#include <stddef.h>

void *svdb__malloc(size_t n);
void *svdb__calloc(size_t count, size_t size);
void *svdb__realloc(void *p, size_t n);
void svdb__free(void *p);
char *svdb__strndup(const char *s, size_t n);

/* Test hook: make the n-th allocation from now fail (0 disables). */
void svdb__alloc_fail_after(long n);

#endif
