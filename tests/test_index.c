/* Index choice through the public API: HNSW recall, persistence of the
 * graph, filtered search against exact results, churn, option errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "svdb.h"

static float *base, *queries;
static int *gt;
static size_t n, nq, dim, gtk;

static int setup(void **state)
{
    (void)state;
    char p[512];
    size_t d2;
    snprintf(p, sizeof p, "%s/siftsmall_base.fvecs", SVDB_TEST_DATA_DIR);
    base = th_read_fvecs(p, &n, &dim);
    snprintf(p, sizeof p, "%s/siftsmall_query.fvecs", SVDB_TEST_DATA_DIR);
    queries = th_read_fvecs(p, &nq, &d2);
    snprintf(p, sizeof p, "%s/siftsmall_groundtruth.ivecs", SVDB_TEST_DATA_DIR);
    gt = th_read_ivecs(p, &d2, &gtk);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(base);
    free(queries);
    free(gt);
    return 0;
}

static svdb *open_hnsw(const char *dir, int index)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.seed = 5;
    o.build_threads = 1; /* deterministic: the reopen test compares results */
    svdb *db = NULL;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    return db;
}

/* Adds siftsmall with ids "0".."9999" and metadata {"m": i % 1000}, in batches. */
static void add_all(svdb *db, size_t from, size_t to, size_t step)
{
    for (size_t b = from; b < to; b += 1000) {
        const char *ids[1000], *metas[1000];
        char idb[1000][24], mb[1000][40];
        size_t cnt = 0;
        for (size_t i = b; i < to && i < b + 1000; i += step) {
            snprintf(idb[cnt], sizeof idb[cnt], "%zu", i);
            snprintf(mb[cnt], sizeof mb[cnt], "{\"m\": %zu}", i % 1000);
            ids[cnt] = idb[cnt];
            metas[cnt] = mb[cnt];
            cnt++;
        }
        float *v = malloc(cnt * dim * sizeof *v);
        size_t c = 0;
        for (size_t i = b; i < to && i < b + 1000; i += step) memcpy(v + c++ * dim, base + i * dim, dim * sizeof *v);
        assert_int_equal(svdb_add_batch(db, cnt, ids, v, (uint32_t)dim, metas), SVDB_OK);
        free(v);
    }
}

static double recall(svdb *db, const char *where, svdb *exact)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.where = where;
    size_t hit = 0, want = 0;
    for (size_t q = 0; q < nq; q++) {
        svdb_hit *h, *e = NULL;
        size_t nh, ne = 0;
        assert_int_equal(svdb_search(db, queries + q * dim, (uint32_t)dim, 10, &so, &h, &nh), SVDB_OK);
        if (exact) {
            assert_int_equal(svdb_search(exact, queries + q * dim, (uint32_t)dim, 10, &so, &e, &ne), SVDB_OK);
            want += ne;
            for (size_t i = 0; i < nh; i++)
                for (size_t j = 0; j < ne; j++) hit += strcmp(h[i].id, e[j].id) == 0;
        } else {
            want += 10;
            for (size_t i = 0; i < nh; i++)
                for (size_t j = 0; j < 10; j++) hit += atoi(h[i].id) == gt[q * gtk + j];
        }
        svdb_hits_free(h);
        svdb_hits_free(e);
    }
    return want ? (double)hit / (double)want : 1.0;
}

static void test_index__hnsw_recall_and_reopen(void **state)
{
    (void)state;
    if (!base) skip();
    char *dir = th_tmpdir("hnsw");
    svdb *db = open_hnsw(dir, SVDB_INDEX_HNSW);
    int idx;
    assert_int_equal(svdb_index_type(db, &idx), SVDB_OK);
    assert_int_equal(idx, SVDB_INDEX_HNSW);
    add_all(db, 0, n, 1);
    double r = recall(db, NULL, NULL);
    printf("hnsw recall@10 with defaults: %.4f\n", r);
    assert_true(r >= 0.95);
    /* Keep the first query's answer, then reopen from the log (no persist)
     * and from the snapshot: a deterministic graph answers the same. */
    svdb_hit *h0;
    size_t n0;
    assert_int_equal(svdb_search(db, queries, (uint32_t)dim, 10, NULL, &h0, &n0), SVDB_OK);
    assert_int_equal(svdb_close(db), SVDB_OK);
    db = open_hnsw(dir, SVDB_INDEX_DEFAULT);
    svdb_hit *h1;
    size_t n1;
    assert_int_equal(svdb_search(db, queries, (uint32_t)dim, 10, NULL, &h1, &n1), SVDB_OK);
    assert_int_equal(n0, n1);
    for (size_t i = 0; i < n0; i++) {
        assert_string_equal(h0[i].id, h1[i].id);
        assert_true(h0[i].distance == h1[i].distance);
    }
    svdb_hits_free(h1);
    svdb_hits_free(h0);
    /* exact per-query ef: a large ef finds the true neighbours */
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 400;
    svdb_hit *h;
    size_t nh;
    assert_int_equal(svdb_search(db, queries, (uint32_t)dim, 10, &so, &h, &nh), SVDB_OK);
    assert_int_equal(nh, 10);
    assert_int_equal(atoi(h[0].id), gt[0]);
    svdb_hits_free(h);
    assert_int_equal(svdb_close(db), SVDB_OK);
    /* the index type and its parameters are fixed at creation */
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_FLAT;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_EMISMATCH);
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_m = 8;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_EMISMATCH);
    o.hnsw_m = SVDB_MAX_HNSW_M + 1;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_EINVAL);
    o.hnsw_m = 0;
    o.index = 7;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_EINVAL);
    th_rmrf(dir);
    free(dir);
}

/* The largest M (ChromaDB's tests use hnsw:M 128) builds, saves, reloads and finds every row. */
static void test_index__max_m(void **state)
{
    (void)state;
    char *dir = th_tmpdir("index-maxm");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_m = SVDB_MAX_HNSW_M;
    o.hnsw_ef_construction = 64;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    enum { N = 3000, D = 16 };
    float *v = malloc((size_t)N * D * sizeof(float));
    th_random(v, (size_t)N * D, 11);
    char (*ids)[16] = malloc((size_t)N * sizeof *ids);
    const char **idp = malloc(N * sizeof *idp);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        idp[i] = ids[i];
    }
    assert_int_equal(svdb_add_batch(db, N, idp, v, D, NULL), SVDB_OK);
    for (int round = 0; round < 2; round++) {
        int misses = 0;
        for (int i = 0; i < N; i += 7) {
            svdb_hit *hits;
            size_t nh;
            assert_int_equal(svdb_search(db, v + (size_t)i * D, D, 1, NULL, &hits, &nh), SVDB_OK);
            misses += nh != 1 || strcmp(hits[0].id, ids[i]) != 0;
            svdb_hits_free(hits);
        }
        assert_true(misses <= 2);
        assert_int_equal(svdb_close(db), SVDB_OK); /* the snapshot holds M = 128 */
        assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    }
    assert_int_equal(svdb_close(db), SVDB_OK);
    free(v), free(ids), free(idp);
    th_rmrf(dir);
    free(dir);
}

static void test_index__filtered_recall(void **state)
{
    (void)state;
    if (!base) skip();
    char *dh = th_tmpdir("filt-h"), *df = th_tmpdir("filt-f");
    svdb *h = open_hnsw(dh, SVDB_INDEX_HNSW), *f = open_hnsw(df, SVDB_INDEX_FLAT);
    add_all(h, 0, n, 1);
    add_all(f, 0, n, 1);
    const char *filters[] = {"{\"m\": {\"$lt\": 500}}", "{\"m\": {\"$lt\": 50}}", "{\"m\": 7}"};
    const double keep[] = {0.5, 0.05, 0.001};
    for (int i = 0; i < 3; i++) {
        double r = recall(h, filters[i], f);
        printf("filter keeping %.1f%%: recall@10 vs exact = %.4f\n", keep[i] * 100, r);
        assert_true(r >= 0.9);
        /* every hit really matches */
        svdb_search_options so;
        svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
        so.where = filters[i];
        svdb_hit *hits;
        size_t nh;
        assert_int_equal(svdb_search(h, queries, (uint32_t)dim, 10, &so, &hits, &nh), SVDB_OK);
        assert_int_equal(nh, 10);
        for (size_t j = 0; j < nh; j++) {
            int m = atoi(hits[j].id) % 1000;
            assert_true(i == 0 ? m < 500 : i == 1 ? m < 50 : m == 7);
        }
        svdb_hits_free(hits);
    }
    /* an invalid filter is an error, in both index types */
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.where = "{\"m\": {\"$bad\": 1}}";
    svdb_hit *hits = (svdb_hit *)1;
    size_t nh = 9;
    assert_int_equal(svdb_search(h, queries, (uint32_t)dim, 10, &so, &hits, &nh), SVDB_EINVAL);
    assert_null(hits);
    assert_int_equal(svdb_search(f, queries, (uint32_t)dim, 10, &so, &hits, &nh), SVDB_EINVAL);
    /* a filter nothing matches gives no hits */
    so.where = "{\"m\": 5000}";
    assert_int_equal(svdb_search(h, queries, (uint32_t)dim, 10, &so, &hits, &nh), SVDB_OK);
    assert_int_equal(nh, 0);
    svdb_close(h);
    svdb_close(f);
    th_rmrf(dh);
    th_rmrf(df);
    free(dh);
    free(df);
}

static long file_size(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void test_index__churn_reuses_space(void **state)
{
    (void)state;
    if (!base) skip();
    /* 9,000 deletes, each searching its neighbourhood, take most of
     * valgrind's 15 minutes (693 s for the file): under valgrind the delete
     * paths are covered by test_churn and test_mapped at small sizes. */
    if (getenv("SVDB_VALGRIND")) skip();
    char *dir = th_tmpdir("churn");
    svdb *db = open_hnsw(dir, SVDB_INDEX_HNSW);
    add_all(db, 0, n, 1);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    long before = file_size(dir, "snapshot.svdb");
    /* delete 90% of the rows, then add them back */
    for (size_t b = 0; b < n; b += 500) {
        const char *ids[500];
        char idb[500][24];
        size_t c = 0;
        for (size_t i = b; i < b + 500 && i < n; i++)
            if (i % 10) {
                snprintf(idb[c], sizeof idb[c], "%zu", i);
                ids[c] = idb[c];
                c++;
            }
        size_t nd;
        assert_int_equal(svdb_delete(db, c, ids, &nd), SVDB_OK);
        assert_int_equal(nd, c);
    }
    size_t cnt;
    assert_int_equal(svdb_count(db, &cnt), SVDB_OK);
    assert_int_equal(cnt, n / 10);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    assert_true(file_size(dir, "snapshot.svdb") < before / 5); /* deletes free disk at persist */
    /* Regression: links left pointing at deleted nodes must not reach the
     * snapshot (they made the graph section fail its checks at reopen). */
    assert_int_equal(svdb_close(db), SVDB_OK);
    db = open_hnsw(dir, SVDB_INDEX_DEFAULT);
    assert_int_equal(svdb_count(db, &cnt), SVDB_OK);
    assert_int_equal(cnt, n / 10);
    for (size_t r = 1; r < 10; r++) add_all(db, r, n, 10);
    assert_int_equal(svdb_count(db, &cnt), SVDB_OK);
    assert_int_equal(cnt, n);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    long after = file_size(dir, "snapshot.svdb");
    printf("snapshot bytes: %ld before churn, %ld after\n", before, after);
    assert_true(after <= before + before / 10);
    assert_int_equal(svdb_close(db), SVDB_OK);
    db = open_hnsw(dir, SVDB_INDEX_DEFAULT);
    double r = recall(db, NULL, NULL);
    printf("recall@10 after churn: %.4f\n", r);
    assert_true(r >= 0.95);
    svdb_close(db);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index__hnsw_recall_and_reopen),
        cmocka_unit_test(test_index__max_m),
        cmocka_unit_test(test_index__filtered_recall),
        cmocka_unit_test(test_index__churn_reuses_space),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
