#define _GNU_SOURCE
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *th_tmpdir(const char *tag)
{
    const char *base = getenv("SVDB_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    static unsigned counter;
    char *p = NULL;
    if (asprintf(&p, "%s/%s-%d-%u", base, tag, (int)getpid(), counter++) < 0) abort();
    th_rmrf(p);
    return p;
}

void th_rmrf(const char *path)
{
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", path) < 0) abort();
    if (system(cmd) != 0) fprintf(stderr, "warning: %s failed\n", cmd);
    free(cmd);
}

static void *read_vecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int d = 0;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rows = (size_t)size / (4 + 4 * (size_t)d);
    char *out = malloc(rows * (size_t)d * 4);
    for (size_t i = 0; i < rows; i++) {
        int dd;
        if (fread(&dd, 4, 1, f) != 1 || dd != d || fread(out + i * (size_t)d * 4, 4, (size_t)d, f) != (size_t)d) {
            free(out);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return out;
}

float *th_read_fvecs(const char *path, size_t *n, size_t *dim) { return read_vecs(path, n, dim); }
int *th_read_ivecs(const char *path, size_t *n, size_t *dim) { return read_vecs(path, n, dim); }

void th_random(float *out, size_t n, unsigned seed)
{
    unsigned long long s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}
