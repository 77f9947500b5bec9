/* Persistence: what is written comes back after close/reopen, after a
 * process exit without close (log replay), and after persist + more writes. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

/* Runs n_ops random ops from seed on db and the model; persist_pct as in th_gen_op. */
static int run_ops(svdb *db, th_model *m, uint64_t *rng, unsigned *next_id, int n_ops, int persist_pct)
{
    for (int i = 0; i < n_ops; i++) {
        th_op op;
        th_gen_op(rng, m, next_id, persist_pct, &op);
        int rc = th_op_run(db, &op);
        if (rc != SVDB_OK) {
            fprintf(stderr, "op %d (kind %d) failed: %d %s\n", i, op.kind, rc, svdb_errmsg());
            th_op_free(&op);
            return rc;
        }
        th_op_model(m, &op);
        th_op_free(&op);
    }
    return SVDB_OK;
}

static void test_persist__roundtrip(void **state)
{
    (void)state;
    for (int metric = SVDB_METRIC_L2; metric <= SVDB_METRIC_IP; metric++)
        for (int dur = SVDB_DURABILITY_PERSIST; dur <= SVDB_DURABILITY_SYNC; dur++) {
            char *dir = th_tmpdir("persist-rt");
            svdb *db;
            ASSERT_OK(th_open(&db, dir, 0, metric, dur));
            th_model m;
            th_model_init(&m, 13);
            uint64_t rng = 1000 + (uint64_t)metric * 10 + (uint64_t)dur;
            unsigned next_id = 0;
            ASSERT_OK(run_ops(db, &m, &rng, &next_id, dur == SVDB_DURABILITY_SYNC ? 60 : 250, 3));
            assert_true(th_check_db(db, &m, 1));
            ASSERT_OK(svdb_close(db));
            for (int round = 0; round < 2; round++) {
                ASSERT_OK(svdb_open(&db, dir, NULL));
                assert_true(th_check_db(db, &m, 1));
                int got_metric;
                ASSERT_OK(svdb_metric(db, &got_metric));
                assert_int_equal(got_metric, metric);
                ASSERT_OK(run_ops(db, &m, &rng, &next_id, 20, 0));
                ASSERT_OK(svdb_close(db));
            }
            ASSERT_OK(th_open(&db, dir, 13, metric, dur));
            assert_true(th_check_db(db, &m, 1));
            ASSERT_OK(svdb_close(db));
            th_model_free(&m);
            th_rmrf(dir);
            free(dir);
        }
}

/* Forks a child that opens dir, runs phase-1 ops, optionally persists and
 * runs phase-2 ops, then exits without closing (as if it crashed). The
 * parent replays the same ops on its model. */
static void crash_after(const char *dir, int metric, int dur, uint64_t seed, int n1, int do_persist, int n2,
                        th_model *m)
{
    pid_t pid = th_fork();
    if (pid == 0) {
        svdb *db;
        if (th_open(&db, dir, 0, metric, dur) != SVDB_OK) th_child_exit(2);
        th_model cm;
        th_model_copy(&cm, m);
        uint64_t rng = seed;
        unsigned next_id = (unsigned)seed * 100000u;
        if (run_ops(db, &cm, &rng, &next_id, n1, 0) != SVDB_OK) th_child_exit(3);
        if (do_persist && svdb_persist(db) != SVDB_OK) th_child_exit(4);
        if (run_ops(db, &cm, &rng, &next_id, n2, 0) != SVDB_OK) th_child_exit(5);
        th_child_exit(0); /* no close: the log is all there is */
    }
    assert_int_equal(th_wait(pid), 0);
    uint64_t rng = seed;
    unsigned next_id = (unsigned)seed * 100000u;
    th_op op;
    for (int i = 0; i < n1 + n2; i++) {
        th_gen_op(&rng, m, &next_id, 0, &op);
        th_op_model(m, &op);
        th_op_free(&op);
    }
}

static void test_persist__log_replay(void **state)
{
    (void)state;
    for (int dur = 0; dur <= 1; dur++) {
        char *dir = th_tmpdir("persist-replay");
        svdb *db;
        ASSERT_OK(th_open(&db, dir, 0, SVDB_METRIC_COSINE, dur));
        ASSERT_OK(svdb_close(db));
        char *snap = th_path(dir, "snapshot.svdb"), *wal = th_path(dir, "wal.svdb");
        long snap_size = th_file_size(snap);
        th_model m;
        th_model_init(&m, 6);
        crash_after(dir, SVDB_METRIC_COSINE, dur, 42 + (uint64_t)dur, 80, 0, 0, &m);
        /* Nothing was checkpointed: the snapshot is the empty one, the log holds it all. */
        assert_int_equal(th_file_size(snap), snap_size);
        assert_true(th_file_size(wal) > 32);
        ASSERT_OK(svdb_open(&db, dir, NULL));
        assert_true(th_check_db(db, &m, 1));
        uint32_t d;
        ASSERT_OK(svdb_dim(db, &d));
        assert_int_equal(d, 6);
        ASSERT_OK(svdb_close(db));
        ASSERT_OK(svdb_open(&db, dir, NULL));
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        /* A second crash on top of the recovered state. */
        crash_after(dir, 0, dur, 77 + (uint64_t)dur, 30, 0, 0, &m);
        ASSERT_OK(svdb_open(&db, dir, NULL));
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        th_model_free(&m);
        free(snap);
        free(wal);
        th_rmrf(dir);
        free(dir);
    }
}

static void test_persist__persist_then_more_writes(void **state)
{
    (void)state;
    for (int dur = 0; dur <= 1; dur++) {
        char *dir = th_tmpdir("persist-mixed");
        th_model m;
        th_model_init(&m, 9);
        /* The first crash creates the collection itself. */
        crash_after(dir, SVDB_METRIC_L2, dur, 5 + (uint64_t)dur, 50, 1, 40, &m);
        svdb *db;
        ASSERT_OK(svdb_open(&db, dir, NULL));
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        crash_after(dir, 0, dur, 16 + (uint64_t)dur * 10, 10, 1, 0, &m);
        crash_after(dir, 0, dur, 17 + (uint64_t)dur * 10, 0, 1, 25, &m);
        ASSERT_OK(svdb_open(&db, dir, NULL));
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        th_model_free(&m);
        th_rmrf(dir);
        free(dir);
    }
}

static void test_persist__dim_fixed_by_first_add(void **state)
{
    (void)state;
    for (int crash = 0; crash <= 1; crash++) {
        char *dir = th_tmpdir("persist-dim");
        svdb *db;
        ASSERT_OK(svdb_open(&db, dir, NULL));
        ASSERT_OK(svdb_close(db));
        const char *ids[] = {"a"};
        float v[7] = {1, 2, 3, 4, 5, 6, 7};
        if (crash) {
            pid_t pid = th_fork();
            if (pid == 0) {
                if (svdb_open(&db, dir, NULL) != SVDB_OK || svdb_add_batch(db, 1, ids, v, 7, NULL) != SVDB_OK)
                    th_child_exit(1);
                th_child_exit(0);
            }
            assert_int_equal(th_wait(pid), 0);
        } else {
            ASSERT_OK(svdb_open(&db, dir, NULL));
            ASSERT_OK(svdb_add_batch(db, 1, ids, v, 7, NULL));
            ASSERT_OK(svdb_close(db));
        }
        ASSERT_OK(svdb_open(&db, dir, NULL));
        uint32_t d;
        ASSERT_OK(svdb_dim(db, &d));
        assert_int_equal(d, 7);
        const char *ids2[] = {"b"};
        assert_int_equal(svdb_add_batch(db, 1, ids2, v, 6, NULL), SVDB_EDIM);
        ASSERT_OK(svdb_close(db));
        /* Mismatched options on reopen, with the dimension known only from the log or the snapshot. */
        assert_int_equal(th_open(&db, dir, 6, 0, 0), SVDB_EMISMATCH);
        assert_null(db);
        assert_int_equal(th_open(&db, dir, 0, SVDB_METRIC_COSINE, 0), SVDB_EMISMATCH);
        assert_int_equal(th_open(&db, dir, 0, SVDB_METRIC_IP, 1), SVDB_EMISMATCH);
        ASSERT_OK(th_open(&db, dir, 7, SVDB_METRIC_L2, 1));
        float got[7];
        ASSERT_OK(svdb_get(db, "a", got, 7, NULL));
        assert_memory_equal(got, v, sizeof v);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
}

static void test_persist__dim_option_on_create(void **state)
{
    (void)state;
    char *dir = th_tmpdir("persist-dimopt");
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 5, SVDB_METRIC_IP, 0));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL));
    uint32_t d;
    int metric;
    ASSERT_OK(svdb_dim(db, &d));
    ASSERT_OK(svdb_metric(db, &metric));
    assert_int_equal(d, 5);
    assert_int_equal(metric, SVDB_METRIC_IP);
    ASSERT_OK(svdb_close(db));
    assert_int_equal(th_open(&db, dir, 4, 0, 0), SVDB_EMISMATCH);
    th_rmrf(dir);
    free(dir);
}

/* Insertion order, slot reuse and tie order survive reopening. */
static void test_persist__order_and_ties(void **state)
{
    (void)state;
    for (int crash = 0; crash <= 1; crash++) {
        char *dir = th_tmpdir("persist-order");
        svdb *db;
        ASSERT_OK(svdb_open(&db, dir, NULL));
        ASSERT_OK(svdb_close(db));
        const char *ids[] = {"r0", "r1", "r2", "r3", "r4", "r5"};
        float same[2 * 6] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        pid_t pid = crash ? th_fork() : 0;
        if (pid == 0) {
            int ok = svdb_open(&db, dir, NULL) == SVDB_OK && svdb_add_batch(db, 6, ids, same, 2, NULL) == SVDB_OK;
            const char *del[] = {"r1", "r3"};
            ok = ok && svdb_delete(db, 2, del, NULL) == SVDB_OK;
            const char *readd[] = {"r1", "n0"};
            ok = ok && svdb_add_batch(db, 2, readd, same, 2, NULL) == SVDB_OK;
            const char *up[] = {"r0", "n1"};
            ok = ok && svdb_upsert_batch(db, 2, up, same, 2, NULL) == SVDB_OK;
            if (crash) th_child_exit(ok ? 0 : 1);
            assert_true(ok);
            ASSERT_OK(svdb_close(db));
        } else {
            assert_int_equal(th_wait(pid), 0);
        }
        const char *want[] = {"r0", "r2", "r4", "r5", "r1", "n0", "n1"};
        for (int round = 0; round < 2; round++) {
            ASSERT_OK(svdb_open(&db, dir, NULL));
            char **got;
            size_t n;
            ASSERT_OK(svdb_ids(db, &got, &n));
            assert_int_equal(n, 7);
            for (size_t i = 0; i < n; i++) assert_string_equal(got[i], want[i]);
            svdb_ids_free(got);
            svdb_hit *hits;
            float q[2] = {0, 0};
            ASSERT_OK(svdb_search(db, q, 2, 10, NULL, &hits, &n));
            assert_int_equal(n, 7);
            for (size_t i = 0; i < n; i++) assert_string_equal(hits[i].id, want[i]);
            svdb_hits_free(hits);
            ASSERT_OK(svdb_close(db));
        }
        th_rmrf(dir);
        free(dir);
    }
}

/* A bigger collection spanning several store chunks survives a checkpoint. */
static void test_persist__large(void **state)
{
    (void)state;
    char *dir = th_tmpdir("persist-large");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    enum { N = 20000, D = 64 };
    float *v = malloc((size_t)N * D * sizeof(float));
    th_random(v, (size_t)N * D, 9);
    char **ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) assert_true(asprintf(&ids[i], "id%d", i) > 0);
    ASSERT_OK(svdb_add_batch(db, N / 2, (const char *const *)ids, v, D, NULL));
    ASSERT_OK(svdb_persist(db));
    ASSERT_OK(svdb_add_batch(db, N / 2, (const char *const *)ids + N / 2, v + (size_t)N / 2 * D, D, NULL));
    const char *del[] = {"id0", "id19999", "id12345"};
    ASSERT_OK(svdb_delete(db, 3, del, NULL));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL));
    size_t n;
    ASSERT_OK(svdb_count(db, &n));
    assert_int_equal(n, N - 3);
    char **got;
    ASSERT_OK(svdb_ids(db, &got, &n));
    size_t j = 0;
    float row[D];
    for (int i = 0; i < N; i++) {
        if (i == 0 || i == 19999 || i == 12345) continue;
        assert_string_equal(got[j], ids[i]);
        j++;
        if (i % 97 == 0) {
            ASSERT_OK(svdb_get(db, ids[i], row, D, NULL));
            assert_memory_equal(row, v + (size_t)i * D, sizeof row);
        }
    }
    svdb_ids_free(got);
    ASSERT_OK(svdb_close(db));
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
    free(v);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persist__roundtrip),
        cmocka_unit_test(test_persist__log_replay),
        cmocka_unit_test(test_persist__persist_then_more_writes),
        cmocka_unit_test(test_persist__dim_fixed_by_first_add),
        cmocka_unit_test(test_persist__dim_option_on_create),
        cmocka_unit_test(test_persist__order_and_ties),
        cmocka_unit_test(test_persist__large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
