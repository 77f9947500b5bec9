/* Exact search on real data: siftsmall (L2) must reach recall 1.0 at k=100
 * counting ties, and search_batch must equal per-query search bit for bit. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "svdb.h"

typedef struct dataset {
    float *base, *query, *gt_dist;
    int *gt;
    size_t nb, nq, dim, k;
} dataset;

static int load(const char *name, dataset *d)
{
    char path[1024];
    size_t n, dim;
    memset(d, 0, sizeof *d);
    snprintf(path, sizeof path, "%s/%s_base.fvecs", SVDB_TEST_DATA_DIR, name);
    d->base = th_read_fvecs(path, &d->nb, &d->dim);
    snprintf(path, sizeof path, "%s/%s_query.fvecs", SVDB_TEST_DATA_DIR, name);
    d->query = th_read_fvecs(path, &d->nq, &dim);
    snprintf(path, sizeof path, "%s/%s_groundtruth.ivecs", SVDB_TEST_DATA_DIR, name);
    d->gt = th_read_ivecs(path, &n, &d->k);
    snprintf(path, sizeof path, "%s/%s_groundtruth_dist.fvecs", SVDB_TEST_DATA_DIR, name);
    d->gt_dist = th_read_fvecs(path, &n, &dim);
    return d->base && d->query && d->gt && d->gt_dist;
}

static void unload(dataset *d)
{
    free(d->base);
    free(d->query);
    free(d->gt);
    free(d->gt_dist);
}

static svdb *build(const dataset *d, const char *dir, int metric)
{
    svdb *db;
    assert_int_equal(th_open(&db, dir, 0, metric, 0), SVDB_OK);
    char **ids = malloc(d->nb * sizeof *ids);
    for (size_t i = 0; i < d->nb; i++) assert_true(asprintf(&ids[i], "%zu", i) > 0);
    for (size_t off = 0; off < d->nb; off += 1000) {
        size_t n = d->nb - off < 1000 ? d->nb - off : 1000;
        assert_int_equal(
            svdb_add_batch(db, n, (const char *const *)ids + off, d->base + off * d->dim, (uint32_t)d->dim, NULL),
            SVDB_OK);
    }
    for (size_t i = 0; i < d->nb; i++) free(ids[i]);
    free(ids);
    return db;
}

/* Tie-aware recall@k over all queries; also checks batch == single. */
static double recall(svdb *db, const dataset *d, size_t k, float eps)
{
    svdb_hit *all;
    size_t *nh = malloc(d->nq * sizeof *nh);
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.threads = 2;
    assert_int_equal(svdb_search_batch(db, d->nq, d->query, (uint32_t)d->dim, k, &so, &all, nh), SVDB_OK);
    size_t correct = 0, off = 0;
    for (size_t q = 0; q < d->nq; q++) {
        svdb_hit *h;
        size_t n;
        assert_int_equal(svdb_search(db, d->query + q * d->dim, (uint32_t)d->dim, k, NULL, &h, &n), SVDB_OK);
        assert_int_equal(n, k);
        assert_int_equal(nh[q], k);
        float kth = d->gt_dist[q * d->k + k - 1];
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(all[off + i].id, h[i].id);
            assert_memory_equal(&all[off + i].distance, &h[i].distance, sizeof(float));
            if (i) assert_true(h[i - 1].distance <= h[i].distance);
            /* The returned distance is the true distance of the returned row. */
            size_t row = (size_t)strtoul(h[i].id, NULL, 10);
            double ref = 0;
            for (size_t dd = 0; dd < d->dim; dd++) {
                double t = (double)d->query[q * d->dim + dd] - d->base[row * d->dim + dd];
                ref += t * t;
            }
            if (eps == 0.0f) assert_true(h[i].distance == (float)ref);
            if (h[i].distance <= kth + eps) correct++;
        }
        off += n;
        svdb_hits_free(h);
    }
    svdb_hits_free(all);
    free(nh);
    return (double)correct / (double)(d->nq * k);
}

static void test_recall__siftsmall(void **state)
{
    (void)state;
    dataset d;
    if (!load("siftsmall", &d)) {
        unload(&d);
        fprintf(stderr, "siftsmall not found under %s: skipped\n", SVDB_TEST_DATA_DIR);
        skip();
    }
    assert_int_equal(d.nb, 10000);
    assert_int_equal(d.dim, 128);
    char *dir = th_tmpdir("recall-sift");
    svdb *db = build(&d, dir, SVDB_METRIC_L2);
    /* Integer data: float32 squared distances are exact, so ties are real. */
    double r100 = recall(db, &d, 100, 0.0f);
    double r10 = recall(db, &d, 10, 0.0f);
    fprintf(stderr, "siftsmall exact: recall@100 %.4f, recall@10 %.4f\n", r100, r10);
    assert_true(r100 == 1.0);
    assert_true(r10 == 1.0);
    /* Distances equal the ground truth's, position by position. */
    for (size_t q = 0; q < d.nq; q += 9) {
        svdb_hit *h;
        size_t n;
        assert_int_equal(svdb_search(db, d.query + q * d.dim, 128, 100, NULL, &h, &n), SVDB_OK);
        for (size_t i = 0; i < n; i++) assert_true(h[i].distance == d.gt_dist[q * d.k + i]);
        /* Ties break by insertion order, i.e. by row number here. */
        for (size_t i = 1; i < n; i++)
            if (h[i].distance == h[i - 1].distance) assert_true(strtoul(h[i - 1].id, NULL, 10) < strtoul(h[i].id, NULL, 10));
        svdb_hits_free(h);
    }
    /* And the same after a reopen. */
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    assert_true(recall(db, &d, 100, 0.0f) == 1.0);
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
    unload(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall__siftsmall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
