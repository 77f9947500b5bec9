/* Norms, query preparation and the choice of kernels for a metric space. */
#include "space.h"

#include "alloc.h"
#include "error.h"

#include <math.h>
#include <string.h>

double svdb__norm2(const float *v, size_t dim)
{
    double n2 = 0.0;
    for (size_t d = 0; d < dim; d++) n2 += (double)v[d] * v[d];
    return n2;
}

float svdb__inv_norm(const float *v, size_t dim)
{
    double n2 = svdb__norm2(v, dim);
    return n2 >= SVDB_COSINE_MIN_NORM2 ? (float)(1.0 / sqrt(n2)) : 0.0f;
}

void svdb__space_init(svdb_space *sp, int metric, uint32_t dim, const svdb_kernels *k, const svdb_code_kernels *ck)
{
    /* cosine and ip score by the dot product of unit (or raw) vectors */
    int l2 = metric != SVDB_METRIC_COSINE && metric != SVDB_METRIC_IP;
    sp->metric = l2 ? SVDB_METRIC_L2 : metric;
    sp->dim = dim;
    sp->block = l2 ? k->l2 : k->dot;
    sp->pair = l2 ? k->l2_pair : k->dot_pair;
    sp->gather = l2 ? k->l2_gather : k->dot_gather;
    sp->ck = ck;
    sp->walk = !ck ? sp->gather : l2 ? ck->l2_gather : ck->dot_gather;
}

const svdb_code_kernels *svdb__space_code_kernels(int storage, const svdb_kernels *k)
{
    return storage == SVDB_STORAGE_F16 || storage == SVDB_STORAGE_INT8 ? svdb__code_kernels(storage, k) : NULL;
}

int svdb__space_check_vector(const float *v, uint32_t dim, const char *what, size_t row)
{
    for (uint32_t d = 0; d < dim; d++)
        if (!isfinite(v[d]))
            return svdb__fail(SVDB_EINVAL, "%s %zu has a NaN or infinite value at component %u", what, row, d);
    double n2 = svdb__norm2(v, dim);
    if (n2 > SVDB_MAX_NORM2)
        return svdb__fail(SVDB_EINVAL,
                          "%s %zu is too large: its squared norm %.3g exceeds %.3g, beyond which distances overflow "
                          "float32",
                          what, row, n2, SVDB_MAX_NORM2);
    return SVDB_OK;
}

int svdb__space_prepare_queries(const svdb_space *sp, const float *q, size_t n, uint32_t dim, float **out)
{
    /* On a cache line, as the stored rows are: a query that straddled lines
     * would cost a second load per SIMD step of every distance. */
    float *c = svdb__malloc_aligned(64, n * dim * sizeof(float));
    if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory copying %zu queries", n);
    memcpy(c, q, n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float *v = c + i * dim;
        int rc = svdb__space_check_vector(v, dim, "query", i);
        if (rc != SVDB_OK) {
            svdb__free(c);
            return rc;
        }
        if (sp->metric == SVDB_METRIC_COSINE) {
            float scale = svdb__inv_norm(v, dim); /* 0 for a zero vector: distance 1 to every row */
            for (uint32_t d = 0; d < dim; d++) v[d] *= scale;
        }
    }
    *out = c;
    return SVDB_OK;
}
