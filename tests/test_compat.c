/* Files written by earlier releases still open. tests/fixtures/ holds
 * collections made by the library before snapshot format 2 (snapshot format
 * 1, log format 2; the log still holds writes made after the last
 * checkpoint): an HNSW L2 one, a flat cosine one and an int8 HNSW cosine
 * one, each with deletes, reused slots, upserts and metadata. Each test copies one, opens it, checks
 * every row against a model rebuilt from the same seeded workload, checks
 * that searches match a collection built now from the same workload, then
 * writes, checkpoints (which rewrites the snapshot in the current format)
 * and reopens.
 *
 * `test_compat --make-fixtures DIR` writes the fixtures; it was run with the
 * library of commit b5eb2f6 (this file compiled against it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include <svdb.h>

#define DIM 8
#define OPS 60

typedef struct fixture {
    const char *name;
    int index, metric;
    uint64_t seed;
    int storage;
} fixture;

static const fixture fixtures[] = {
    {"v1-hnsw-l2", SVDB_INDEX_HNSW, SVDB_METRIC_L2, 11, SVDB_STORAGE_DEFAULT},
    {"v1-flat-cosine", SVDB_INDEX_FLAT, SVDB_METRIC_COSINE, 12, SVDB_STORAGE_DEFAULT},
    {"v1-hnsw-int8-cosine", SVDB_INDEX_HNSW, SVDB_METRIC_COSINE, 13, SVDB_STORAGE_INT8},
};

static int open_fx(svdb **db, const char *path, const fixture *fx)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = DIM;
    o.metric = fx->metric;
    o.index = fx->index;
    o.storage = fx->storage;
    o.hnsw_m = 6;
    o.hnsw_ef_construction = 40;
    o.seed = 7;
    o.build_threads = 1;
    return svdb_open(db, path, &o);
}

/* The seeded workload: OPS writes with checkpoints among them, then a few
 * writes after the last checkpoint (left in the log). Runs them on db when
 * non-NULL; always updates the model. */
static int run_workload(svdb *db, const fixture *fx, th_model *m)
{
    uint64_t rng = fx->seed;
    unsigned next_id = 0;
    th_model_init(m, DIM);
    for (int i = 0; i < OPS; i++) {
        th_op op;
        th_gen_op(&rng, m, &next_id, i < OPS - 6 ? 10 : 0, &op);
        int rc = db ? th_op_run(db, &op) : SVDB_OK;
        if (rc != SVDB_OK) {
            th_op_free(&op);
            return rc;
        }
        th_op_model(m, &op);
        th_op_free(&op);
    }
    return SVDB_OK;
}

static char *copy_fixture(const fixture *fx)
{
    char *dir = th_tmpdir(fx->name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/%s/snapshot.svdb' '%s/%s/wal.svdb' '%s/'", dir, SVDB_TEST_FIXTURE_DIR,
             fx->name, SVDB_TEST_FIXTURE_DIR, fx->name, dir);
    assert_int_equal(system(cmd), 0);
    return dir;
}

/* The ids of a search, as one string, for comparing two collections. */
static void search_ids(svdb *db, const float *q, char *out, size_t cap)
{
    svdb_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(svdb_search(db, q, DIM, 10, NULL, &hits, &n), SVDB_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, hits[i].id, cap - strlen(out) - 2);
        strncat(out, ",", cap - strlen(out) - 1);
    }
    svdb_hits_free(hits);
}

static void check_fixture(const fixture *fx)
{
    th_model m;
    assert_int_equal(run_workload(NULL, fx, &m), SVDB_OK);
    assert_true(m.n > 20);
    char *dir = copy_fixture(fx);
    svdb *db;
    assert_int_equal(open_fx(&db, dir, fx), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    /* The same workload on a collection made now answers searches alike. */
    char *fresh = th_tmpdir("compat-fresh");
    svdb *now;
    th_model m2;
    assert_int_equal(open_fx(&now, fresh, fx), SVDB_OK);
    assert_int_equal(run_workload(now, fx, &m2), SVDB_OK);
    th_model_free(&m2);
    float q[DIM];
    char a[4096], b[4096];
    for (unsigned s = 0; s < 8; s++) {
        th_random(q, DIM, 100 + s);
        search_ids(db, q, a, sizeof a);
        search_ids(now, q, b, sizeof b);
        assert_string_equal(a, b);
    }
    assert_int_equal(svdb_close(now), SVDB_OK);
    th_rmrf(fresh);
    free(fresh);
    /* Writes, a checkpoint in the current format, a reopen. */
    float v[DIM];
    th_random(v, DIM, 99);
    const char *id = "after-upgrade";
    assert_int_equal(svdb_add_batch(db, 1, &id, v, DIM, NULL), SVDB_OK);
    th_model_put(&m, id, v, NULL);
    const char *gone = m.rows[0].id;
    assert_int_equal(svdb_delete(db, 1, &gone, NULL), SVDB_OK);
    th_model_del(&m, gone);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(open_fx(&db, dir, fx), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
    th_model_free(&m);
}

static void test_compat__v1_hnsw_l2(void **state)
{
    (void)state;
    check_fixture(&fixtures[0]);
}

static void test_compat__v1_flat_cosine(void **state)
{
    (void)state;
    check_fixture(&fixtures[1]);
}

static void test_compat__v1_hnsw_int8_cosine(void **state)
{
    (void)state;
    check_fixture(&fixtures[2]);
}

static int make_fixtures(const char *out)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", out, fixtures[i].name);
        svdb *db;
        th_model m;
        if (open_fx(&db, dir, &fixtures[i]) != SVDB_OK || run_workload(db, &fixtures[i], &m) != SVDB_OK) {
            fprintf(stderr, "%s: %s\n", dir, svdb_errmsg());
            return 1;
        }
        th_model_free(&m);
        /* Leave the last writes in the log: no close (which checkpoints). */
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s.out' && cp '%s/snapshot.svdb' '%s/wal.svdb' '%s.out/'", dir, dir, dir,
                 dir);
        if (system(cmd) != 0) return 1;
        svdb_close(db);
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.out' '%s'", dir, dir, dir);
        if (system(cmd) != 0) return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--make-fixtures") == 0) return make_fixtures(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat__v1_hnsw_l2),
        cmocka_unit_test(test_compat__v1_flat_cosine),
        cmocka_unit_test(test_compat__v1_hnsw_int8_cosine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
