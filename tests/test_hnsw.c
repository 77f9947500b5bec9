/* The HNSW graph on real data: recall against exact ground truth, deletes
 * with slot reuse, determinism and serialisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "distance.h"
#include "helpers.h"
#include "hnsw.h"
#include "legacy_v1_writer.h"
#include "store.h"
#include "svdb.h"

typedef struct {
    float *base, *queries;
    int *gt;
    size_t n, nq, dim, gt_k;
    int metric;
} dataset;

static int load(const char *name, int metric, dataset *d)
{
    char p[512];
    size_t dd;
    snprintf(p, sizeof p, "%s/%s_base.fvecs", SVDB_TEST_DATA_DIR, name);
    if (!(d->base = th_read_fvecs(p, &d->n, &d->dim))) return 0;
    snprintf(p, sizeof p, "%s/%s_query.fvecs", SVDB_TEST_DATA_DIR, name);
    d->queries = th_read_fvecs(p, &d->nq, &dd);
    snprintf(p, sizeof p, "%s/%s_groundtruth.ivecs", SVDB_TEST_DATA_DIR, name);
    d->gt = th_read_ivecs(p, &dd, &d->gt_k);
    d->metric = metric;
    return d->queries && d->gt;
}

static void unload(dataset *d)
{
    free(d->base);
    free(d->queries);
    free(d->gt);
}

static svdb_store *fill_store(const dataset *d)
{
    svdb_store *s;
    assert_int_equal(svdb__store_new(&s, (uint32_t)d->dim, d->metric), SVDB_OK);
    assert_int_equal(svdb__store_reserve(s, d->n, d->n), SVDB_OK);
    for (size_t i = 0; i < d->n; i++) {
        char id[32];
        int len = snprintf(id, sizeof id, "%zu", i);
        char *blob;
        assert_int_equal(svdb__row_pack(id, (uint32_t)len, NULL, 0, &blob), SVDB_OK);
        svdb__store_insert(s, blob, id, (uint32_t)len, 0, d->base + i * d->dim);
    }
    return s;
}

static void prep_query(const dataset *d, size_t qi, float *q)
{
    memcpy(q, d->queries + qi * d->dim, d->dim * sizeof *q);
    if (d->metric != SVDB_METRIC_COSINE) return;
    double n2 = 0;
    for (size_t j = 0; j < d->dim; j++) n2 += (double)q[j] * q[j];
    for (size_t j = 0; j < d->dim; j++) q[j] = (float)(q[j] / sqrt(n2));
}

/* recall@10 of the graph; row i of the data set lives in the slot whose id is "i". */
static double recall10(const svdb_hnsw *h, const svdb_store *s, const dataset *d, size_t ef)
{
    const svdb_kernels *k = svdb__kernels();
    float *q = malloc(d->dim * sizeof *q);
    size_t hit = 0, nq = d->nq < 200 ? d->nq : 200;
    for (size_t qi = 0; qi < nq; qi++) {
        prep_query(d, qi, q);
        svdb_cand c[10];
        svdb_topk t;
        svdb__topk_init(&t, c, 10);
        assert_int_equal(svdb__hnsw_search(h, s, k, q, ef, NULL, NULL, &t), SVDB_OK);
        size_t n = svdb__topk_finish(&t);
        for (size_t i = 0; i < n; i++) {
            long row = atol(svdb__row_id(svdb__row(svdb__store_view(s), c[i].slot)));
            for (size_t g = 0; g < 10; g++)
                if (d->gt[qi * d->gt_k + g] == row) hit++;
        }
    }
    free(q);
    return (double)hit / (double)(nq * 10);
}

static svdb_hnsw *build(const svdb_store *s, uint64_t seed)
{
    svdb_hnsw_params p = {16, 200, 64, seed};
    svdb_hnsw *h;
    assert_int_equal(svdb__hnsw_create(&h, &p), SVDB_OK);
    for (size_t i = 0; i < svdb__store_slots(s); i++)
        if (svdb__row_live(svdb__row(svdb__store_view(s), i)))
            assert_int_equal(svdb__hnsw_insert(h, s, svdb__kernels(), (uint32_t)i), SVDB_OK);
    return h;
}

static void check_set(const char *name, int metric, double want)
{
    dataset d;
    if (!load(name, metric, &d)) {
        unload(&d);
        skip();
    }
    svdb_store *s = fill_store(&d);
    svdb_hnsw *h = build(s, 42);
    double r = recall10(h, s, &d, 64);
    printf("%s: recall@10 = %.4f at ef=64\n", name, r);
    assert_true(r >= want);
    svdb__hnsw_free(h);
    svdb__store_free(s);
    unload(&d);
}

static void test_hnsw__recall_siftsmall(void **state)
{
    (void)state;
    check_set("siftsmall", SVDB_METRIC_L2, 0.95);
}

static void test_hnsw__recall_glove25(void **state)
{
    (void)state;
    check_set("glove25", SVDB_METRIC_COSINE, 0.90);
}

static void test_hnsw__churn_keeps_recall(void **state)
{
    (void)state;
    dataset d;
    if (!load("siftsmall", SVDB_METRIC_L2, &d)) {
        unload(&d);
        skip();
    }
    svdb_store *s = fill_store(&d);
    svdb_hnsw *h = build(s, 7);
    const svdb_kernels *k = svdb__kernels();
    /* Delete 90% (rows not divisible by 10), then add them back. Under
     * valgrind 10% (rows ending in 1): a delete searches its neighbourhood,
     * and 9,000 of them take most of valgrind's 15 minutes. */
    int small = getenv("SVDB_VALGRIND") != NULL;
    for (size_t i = 0; i < d.n; i++) {
        if (small ? i % 10 != 1 : i % 10 == 0) continue;
        char id[32];
        int len = snprintf(id, sizeof id, "%zu", i);
        uint32_t slot = svdb__store_find(s, id, (size_t)len);
        svdb__hnsw_remove(h, s, k, slot);
        svdb__store_remove(s, slot);
    }
    size_t slots_before = svdb__store_slots(s);
    for (size_t i = 0; i < d.n; i++) {
        if (small ? i % 10 != 1 : i % 10 == 0) continue;
        char id[32];
        int len = snprintf(id, sizeof id, "%zu", i);
        char *blob;
        assert_int_equal(svdb__row_pack(id, (uint32_t)len, NULL, 0, &blob), SVDB_OK);
        svdb__store_insert(s, blob, id, (uint32_t)len, 0, d.base + i * d.dim);
        uint32_t slot = svdb__store_find(s, id, (size_t)len);
        assert_int_equal(svdb__hnsw_insert(h, s, k, slot), SVDB_OK);
    }
    assert_int_equal(svdb__store_slots(s), slots_before); /* freed slots were reused */
    double r = recall10(h, s, &d, 64);
    printf("siftsmall after %s churn: recall@10 = %.4f\n", small ? "10%" : "90%", r);
    assert_true(r >= 0.95);
    svdb__hnsw_free(h);
    svdb__store_free(s);
    unload(&d);
}

static void test_hnsw__deterministic_and_roundtrip(void **state)
{
    (void)state;
    dataset d;
    if (!load("siftsmall", SVDB_METRIC_L2, &d)) {
        unload(&d);
        skip();
    }
    d.n = 2000;
    svdb_store *s = fill_store(&d);
    svdb_hnsw *a = build(s, 99), *b = build(s, 99);
    uint32_t *order, *inv = malloc(svdb__store_slots(s) * sizeof *inv);
    assert_int_equal(svdb__store_order(s, &order), SVDB_OK);
    for (size_t i = 0; i < svdb__store_count(s); i++) inv[order[i]] = (uint32_t)i;
    size_t live = svdb__store_count(s);
    size_t na = legacy_v1_graph_size(a, order, live), nb = legacy_v1_graph_size(b, order, live);
    assert_int_equal(na, nb);
    unsigned char *ea = malloc(na), *eb = malloc(nb);
    legacy_v1_graph_encode(a, order, svdb__store_count(s), inv, ea);
    legacy_v1_graph_encode(b, order, svdb__store_count(s), inv, eb);
    assert_memory_equal(ea, eb, na);
    /* decode gives the same graph back */
    svdb_hnsw *c;
    svdb_hnsw_params p = *svdb__hnsw_params(a);
    assert_int_equal(svdb__hnsw_create(&c, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_decode(c, ea, na, svdb__store_count(s)), SVDB_OK);
    unsigned char *ec = malloc(na);
    legacy_v1_graph_encode(c, order, svdb__store_count(s), inv, ec);
    assert_memory_equal(ea, ec, na);
    /* damaged encodings are refused */
    svdb_hnsw *e;
    assert_int_equal(svdb__hnsw_create(&e, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_decode(e, ea, na - 3, svdb__store_count(s)), SVDB_ECORRUPT);
    svdb__hnsw_free(e);
    ea[8 + 1 + 4] = 0xFF; /* first link of row 0 points far away */
    ea[8 + 1 + 5] = 0xFF;
    assert_int_equal(svdb__hnsw_create(&e, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_decode(e, ea, na, svdb__store_count(s)), SVDB_ECORRUPT);
    svdb__hnsw_free(e);
    free(ea);
    free(eb);
    free(ec);
    free(order);
    free(inv);
    svdb__hnsw_free(b);
    svdb__hnsw_free(c);
    /* Format 2: level-0 blocks and upper levels, slots as rows; loading them
     * back (blocks in a buffer standing for the map) gives the same bytes. */
    size_t n = svdb__store_slots(s), bw = svdb__hnsw_l0_block_bytes(a), nu = svdb__hnsw_upper_size(a, NULL, n);
    uint32_t *blocks = malloc(n * bw), *blocks2 = malloc(n * bw);
    unsigned char *up = malloc(nu), *up2 = malloc(nu);
    for (size_t i = 0; i < n; i++) svdb__hnsw_l0_block(a, (uint32_t)i, NULL, blocks + i * (bw / 4));
    svdb__hnsw_upper_encode(a, NULL, NULL, n, up);
    assert_int_equal(svdb__hnsw_create(&c, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_load_mapped(c, up, nu, blocks, n, blocks, n * bw), SVDB_OK);
    assert_int_equal(svdb__hnsw_upper_size(c, NULL, n), nu);
    for (size_t i = 0; i < n; i++) svdb__hnsw_l0_block(c, (uint32_t)i, NULL, blocks2 + i * (bw / 4));
    svdb__hnsw_upper_encode(c, NULL, NULL, n, up2);
    assert_memory_equal(blocks, blocks2, n * bw);
    assert_memory_equal(up, up2, nu);
    svdb__hnsw_free(c);
    /* damaged encodings are refused: truncated, an upper link past the end,
     * a level-0 count over 2M */
    assert_int_equal(svdb__hnsw_create(&e, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_load_mapped(e, up, nu - 1, blocks, n, blocks, n * bw), SVDB_ECORRUPT);
    svdb__hnsw_free(e);
    blocks[0] = 2 * p.m + 1;
    assert_int_equal(svdb__hnsw_create(&e, &p), SVDB_OK);
    assert_int_equal(svdb__hnsw_load_mapped(e, up, nu, blocks, n, blocks, n * bw), SVDB_ECORRUPT);
    svdb__hnsw_free(e);
    free(blocks);
    free(blocks2);
    free(up);
    free(up2);
    svdb__hnsw_free(a);
    svdb__store_free(s);
    unload(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnsw__recall_siftsmall),
        cmocka_unit_test(test_hnsw__recall_glove25),
        cmocka_unit_test(test_hnsw__churn_keeps_recall),
        cmocka_unit_test(test_hnsw__deterministic_and_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
