/* HNSW through mass deletes (issue 12, item 10). A delete really removes
 * its node, so the graph must stay navigable however much of it goes: every
 * survivor must still be found by its own vector (self-recall@1), after
 * deleting 50%, 90% and 98% of the rows, after reopening (from the snapshot,
 * and by replaying the deletes from the log), and through upserts (which
 * remove and re-insert a node). The graph is also checked directly: every
 * node reachable from the entry point on each of its levels. And recall@10
 * on siftsmall after deletes is at least what it was before, at the same ef. */
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

#include "distance.h"
#include "helpers.h"
#include "hnsw.h"
#include "store.h"
#include "svdb.h"

#define DIM 16

static int under_valgrind(void) { return getenv("SVDB_VALGRIND") != NULL; }

static svdb *open_db(const char *dir, uint32_t dim)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = dim;
    o.index = SVDB_INDEX_HNSW; /* M, ef_construction and ef_search: the defaults */
    o.seed = 12;
    o.build_threads = 1;
    svdb *db = NULL;
    ASSERT_OK(svdb_open(&db, dir, &o));
    return db;
}

/* n rows "r<i>" with vectors v (n * dim), in batches of 1000. */
static void add_rows(svdb *db, const float *v, size_t n, uint32_t dim)
{
    char(*idb)[24] = malloc(1000 * sizeof *idb);
    const char **ids = malloc(1000 * sizeof *ids);
    for (size_t b = 0; b < n; b += 1000) {
        size_t c = n - b < 1000 ? n - b : 1000;
        for (size_t i = 0; i < c; i++) {
            snprintf(idb[i], sizeof idb[i], "r%zu", b + i);
            ids[i] = idb[i];
        }
        ASSERT_OK(svdb_add_batch(db, c, ids, v + b * dim, dim, NULL));
    }
    free(idb);
    free(ids);
}

/* Deletes rows perm[from, to) one call each, as an application would. */
static void del_rows(svdb *db, const uint32_t *perm, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%u", perm[i]);
        const char *ids[1] = {id};
        size_t nd = 0;
        ASSERT_OK(svdb_delete(db, 1, ids, &nd));
        assert_int_equal(nd, 1);
    }
}

/* A random permutation of 0..n-1. */
static uint32_t *shuffled(size_t n, uint64_t seed)
{
    uint32_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        uint32_t j = th_randn(&seed, (uint32_t)(i + 1)), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

/* Self-recall@1 of the survivors perm[from, n): the share whose own vector
 * finds them first, at the collection's default ef. */
static double self_recall(svdb *db, const float *v, const uint32_t *perm, size_t from, size_t n, uint32_t dim)
{
    size_t nq = n - from, hit = 0;
    float *q = calloc(nq * dim, sizeof *q);
    size_t *counts = malloc(nq * sizeof *counts);
    for (size_t i = 0; i < nq; i++) memcpy(q + i * dim, v + (size_t)perm[from + i] * dim, dim * sizeof *q);
    svdb_hit *hits;
    ASSERT_OK(svdb_search_batch(db, nq, q, dim, 1, NULL, &hits, counts));
    size_t at = 0;
    for (size_t i = 0; i < nq; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%u", perm[from + i]);
        if (counts[i] && strcmp(hits[at].id, id) == 0) hit++;
        at += counts[i];
    }
    svdb_hits_free(hits);
    free(counts);
    free(q);
    return (double)hit / (double)nq;
}

static void expect_self_recall(svdb *db, const float *v, const uint32_t *perm, size_t from, size_t n, const char *when)
{
    double r = self_recall(db, v, perm, from, n, DIM);
    printf("%zu of %zu rows left, %s: self-recall@1 = %.4f\n", n - from, n, when, r);
    assert_true(r >= 0.99);
}

static void test_churn__survivors_found_after_mass_deletes(void **state)
{
    (void)state;
    size_t n = under_valgrind() ? 1500 : 5000;
    char *dir = th_tmpdir("churn");
    float *v = malloc(n * DIM * sizeof *v);
    th_random(v, n * DIM, 77);
    uint32_t *perm = shuffled(n, 4242);
    size_t cut50 = n / 2, cut90 = n * 9 / 10, cut98 = n * 98 / 100;
    svdb *db = open_db(dir, DIM);
    add_rows(db, v, n, DIM);
    expect_self_recall(db, v, perm, 0, n, "before deletes");

    /* 50%, then reopened from the snapshot close writes */
    del_rows(db, perm, 0, cut50);
    expect_self_recall(db, v, perm, cut50, n, "after deleting 50%");
    ASSERT_OK(svdb_close(db));
    db = open_db(dir, DIM);
    expect_self_recall(db, v, perm, cut50, n, "50%, reopened");
    ASSERT_OK(svdb_close(db));

    /* 90%: a process deletes and dies without closing; the next open
     * replays the deletes from the log through the same repair */
    pid_t pid = th_fork();
    if (pid == 0) {
        svdb *c = NULL;
        svdb_open_options o;
        svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
        o.build_threads = 1;
        int ok = svdb_open(&c, dir, &o) == SVDB_OK;
        for (size_t i = cut50; ok && i < cut90; i++) {
            char id[16];
            snprintf(id, sizeof id, "r%u", perm[i]);
            const char *ids[1] = {id};
            ok = svdb_delete(c, 1, ids, NULL) == SVDB_OK;
        }
        ok = ok && self_recall(c, v, perm, cut90, n, DIM) >= 0.99;
        free(dir); /* what the child inherited; the handle is left open, as by a crash */
        free(perm);
        free(v);
        th_child_exit(ok ? 0 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    db = open_db(dir, DIM);
    size_t count;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, n - cut90);
    expect_self_recall(db, v, perm, cut90, n, "after deleting 90% (log replayed)");

    /* 98%, then reopened from a packed snapshot (rows renumbered) */
    del_rows(db, perm, cut90, cut98);
    expect_self_recall(db, v, perm, cut98, n, "after deleting 98%");
    ASSERT_OK(svdb_close(db));
    db = open_db(dir, DIM);
    expect_self_recall(db, v, perm, cut98, n, "98%, reopened");
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
    free(perm);
    free(v);
}

/* An upsert of an existing id removes its node and inserts it again: rounds
 * of upserting half the rows to new vectors must keep every row findable. */
static void test_churn__survivors_found_after_upserts(void **state)
{
    (void)state;
    size_t n = under_valgrind() ? 1000 : 3000, rounds = 3;
    char *dir = th_tmpdir("churn-upsert");
    float *v = malloc(n * DIM * sizeof *v), *nv = malloc(n / 2 * DIM * sizeof *nv);
    th_random(v, n * DIM, 5);
    svdb *db = open_db(dir, DIM);
    add_rows(db, v, n, DIM);
    uint32_t *ident = shuffled(n, 1);
    char(*idb)[16] = malloc(n / 2 * sizeof *idb);
    const char **ids = malloc(n / 2 * sizeof *ids);
    for (size_t r = 0; r < rounds; r++) {
        uint32_t *perm = shuffled(n, 100 + r);
        th_random(nv, n / 2 * DIM, 200 + (unsigned)r);
        for (size_t i = 0; i < n / 2; i++) {
            snprintf(idb[i], sizeof idb[i], "r%u", perm[i]);
            ids[i] = idb[i];
            memcpy(v + (size_t)perm[i] * DIM, nv + i * DIM, DIM * sizeof *v);
        }
        for (size_t b = 0; b < n / 2; b += 100) /* small batches: one remove and insert after another */
            ASSERT_OK(svdb_upsert_batch(db, n / 2 - b < 100 ? n / 2 - b : 100, ids + b, nv + b * DIM, DIM, NULL));
        free(perm);
    }
    expect_self_recall(db, v, ident, 0, n, "after 3 rounds of upserting half the rows");
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
    free(ident);
    free(idb);
    free(ids);
    free(nv);
    free(v);
}

/* The graph itself, without the public API in between: after each step of
 * deletes every node is reachable from the entry point on each of its
 * levels (with M = 4, where a node has few in-links to lose, all but a
 * few), and no more than a few links are stale. */
static void check_graph_through_deletes(uint32_t m, int metric)
{
    size_t n = under_valgrind() ? 1200 : 4000;
    float *v = malloc(n * DIM * sizeof *v);
    th_random(v, n * DIM, 31 + m);
    svdb_store *s;
    ASSERT_OK(svdb__store_new(&s, DIM, metric));
    ASSERT_OK(svdb__store_reserve(s, n, n));
    for (size_t i = 0; i < n; i++) {
        char id[16];
        int len = snprintf(id, sizeof id, "%zu", i);
        char *blob;
        ASSERT_OK(svdb__row_pack(id, (uint32_t)len, NULL, 0, &blob));
        svdb__store_insert(s, blob, id, (uint32_t)len, 0, v + i * DIM);
    }
    const svdb_kernels *k = svdb__kernels();
    svdb_hnsw_params p = {m, 100, 64, 3};
    svdb_hnsw *h;
    ASSERT_OK(svdb__hnsw_create(&h, &p));
    for (size_t i = 0; i < n; i++) ASSERT_OK(svdb__hnsw_insert(h, s, k, (uint32_t)i));
    uint32_t *perm = shuffled(n, 99 + m);
    const double frac[] = {0.5, 0.9, 0.98, 1.0};
    size_t done = 0;
    for (size_t f = 0; f < sizeof frac / sizeof frac[0]; f++) {
        size_t to = (size_t)(frac[f] * (double)n);
        for (; done < to; done++) {
            svdb__hnsw_remove(h, s, k, perm[done]);
            svdb__store_remove(s, perm[done]);
        }
        size_t unreachable, stale;
        ASSERT_OK(svdb__hnsw_check(h, &unreachable, &stale));
        printf("M=%u, %zu of %zu nodes left: %zu unreachable, %zu stale links\n", m, n - done, n, unreachable, stale);
        /* with M = 4 a few nodes may form islands, as in a fresh graph (the
         * repair before issue 12 left 1.4% after 50%, 10% after 90%) */
        assert_true(unreachable <= (m >= 16 ? 0 : (n - done) / 100));
        assert_true(stale <= (n - done) * m / 8);
    }
    svdb__hnsw_free(h);
    svdb__store_free(s);
    free(perm);
    free(v);
}

static void test_churn__graph_connected_through_deletes(void **state)
{
    (void)state;
    check_graph_through_deletes(16, SVDB_METRIC_L2);
    check_graph_through_deletes(4, SVDB_METRIC_COSINE);
}

/* recall@10 on siftsmall against exact results over the rows present, at
 * the default ef: a hit is a result within the 10th exact distance (so ties
 * count either way). */
static double sift_recall(svdb *db, const float *base, const uint8_t *live, size_t n, const float *qs, size_t nq,
                          uint32_t dim)
{
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *x = qs + q * dim;
        double best[10];
        int nb = 0;
        for (size_t i = 0; i < n; i++) {
            if (!live[i]) continue;
            double d = 0;
            for (uint32_t j = 0; j < dim; j++) d += ((double)x[j] - base[i * dim + j]) * ((double)x[j] - base[i * dim + j]);
            if (nb < 10 || d < best[nb - 1]) {
                int at = nb < 10 ? nb++ : 9;
                while (at > 0 && best[at - 1] > d) {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = d;
            }
        }
        svdb_hit *h;
        size_t nh;
        ASSERT_OK(svdb_search(db, x, dim, 10, NULL, &h, &nh));
        for (size_t i = 0; i < nh; i++) hit += (double)h[i].distance <= best[nb - 1] * (1 + 1e-5) + 1e-3;
        svdb_hits_free(h);
    }
    return (double)hit / (double)(nq * 10);
}

static void test_churn__siftsmall_recall_not_lower_after_deletes(void **state)
{
    (void)state;
    char p[512];
    size_t n, nq, dim, dq;
    snprintf(p, sizeof p, "%s/siftsmall_base.fvecs", SVDB_TEST_DATA_DIR);
    float *base = th_read_fvecs(p, &n, &dim);
    snprintf(p, sizeof p, "%s/siftsmall_query.fvecs", SVDB_TEST_DATA_DIR);
    float *qs = th_read_fvecs(p, &nq, &dq);
    if (!base || !qs) {
        free(base);
        free(qs);
        skip();
    }
    if (under_valgrind()) n = 2000, nq = 20;
    char *dir = th_tmpdir("churn-sift");
    svdb *db = open_db(dir, (uint32_t)dim);
    add_rows(db, base, n, (uint32_t)dim);
    uint8_t *live = malloc(n);
    memset(live, 1, n);
    double before = sift_recall(db, base, live, n, qs, nq, (uint32_t)dim);
    printf("siftsmall, %zu rows: recall@10 = %.4f\n", n, before);
    uint32_t *perm = shuffled(n, 8);
    const double frac[] = {0.5, 0.9};
    size_t done = 0;
    for (size_t f = 0; f < sizeof frac / sizeof frac[0]; f++) {
        size_t to = (size_t)(frac[f] * (double)n);
        del_rows(db, perm, done, to);
        for (; done < to; done++) live[perm[done]] = 0;
        double after = sift_recall(db, base, live, n, qs, nq, (uint32_t)dim);
        printf("siftsmall after deleting %.0f%%: recall@10 = %.4f\n", frac[f] * 100, after);
        assert_true(after >= before);
    }
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
    free(perm);
    free(live);
    free(base);
    free(qs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn__survivors_found_after_mass_deletes),
        cmocka_unit_test(test_churn__survivors_found_after_upserts),
        cmocka_unit_test(test_churn__graph_connected_through_deletes),
        cmocka_unit_test(test_churn__siftsmall_recall_not_lower_after_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
