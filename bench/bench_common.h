/* Timing helpers and the data reader shared by the C benchmarks. */
#ifndef SVDB_BENCH_COMMON_H
#define SVDB_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static inline double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A texmex .fvecs file (an .ivecs file has the same layout): the rows in a
 * new array (freed with free), their count in *n and dimension in *dim;
 * NULL when the file cannot be opened or has no valid first row. */
static inline float *bench_read_fvecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int d = 0;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    size_t rows = (size_t)ftell(f) / (4 + 4 * (size_t)d);
    fseek(f, 0, SEEK_SET);
    float *out = malloc(rows * (size_t)d * sizeof *out);
    if (!out) abort();
    for (size_t i = 0; i < rows; i++)
        if (fread(&d, 4, 1, f) != 1 || fread(out + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) abort();
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return out;
}

#endif
