/* Shared test helpers: fresh temporary collection paths and data readers. */
#ifndef SVDB_TEST_HELPERS_H
#define SVDB_TEST_HELPERS_H

#include <stddef.h>

/* A new empty directory path under $SVDB_TEST_TMP (or /tmp); caller frees. */
char *th_tmpdir(const char *tag);
/* rm -rf of a test directory. */
void th_rmrf(const char *path);
/* Reads a texmex .fvecs/.ivecs file; returns rows (NULL if absent). */
float *th_read_fvecs(const char *path, size_t *n, size_t *dim);
int *th_read_ivecs(const char *path, size_t *n, size_t *dim);
/* Deterministic pseudo-random floats in [-1, 1). */
void th_random(float *out, size_t n, unsigned seed);

#endif
