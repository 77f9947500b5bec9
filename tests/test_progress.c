/* svdb_progress_handler: reports of long writes and their linking, and a
 * cancel at any report leaves the collection, its log and what a reopen
 * builds exactly as before the call. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection.h"
#include "helpers.h"
#include "progress.h"
#include "snapshot.h"
#include "svdb.h"

#include <unistd.h>

#define DIM 24

typedef struct calls {
    int n, by_op[5];
    int cancel_op;   /* cancel at the first report of this op (0: never) */
    int cancel_at;   /* ... at its cancel_at-th report */
    uint64_t last_done[5];
    int monotonic, bounded;
} calls;

static int handler(void *ctx, int op, uint64_t done, uint64_t total)
{
    calls *c = ctx;
    assert_true(op >= SVDB_PROGRESS_WRITE && op <= SVDB_PROGRESS_VERIFY);
    c->n++;
    c->by_op[op]++;
    if (done < c->last_done[op]) c->monotonic = 0;
    if (done > total) c->bounded = 0;
    c->last_done[op] = done;
    return op == c->cancel_op && c->by_op[op] >= c->cancel_at;
}

/* Under valgrind or a sanitizer smaller batches still take well over the
 * 50 ms between reports. */
static size_t rows(void) { return th_slow_tool() ? 3000 : 30000; }

static svdb *open_hnsw(const char *dir)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_ef_construction = 100;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    return db;
}

/* ids "<prefix><i>", random vectors (seed), small metadata */
typedef struct batch {
    size_t n;
    char **ids, **metas;
    float *v;
} batch;

static batch make_batch(const char *prefix, size_t first, size_t n, unsigned seed)
{
    batch b = {n, calloc(n, sizeof(char *)), calloc(n, sizeof(char *)), malloc(n * DIM * sizeof(float))};
    th_random(b.v, n * DIM, seed);
    for (size_t i = 0; i < n; i++) {
        b.ids[i] = malloc(32);
        snprintf(b.ids[i], 32, "%s%zu", prefix, first + i);
        b.metas[i] = malloc(48);
        snprintf(b.metas[i], 48, "{\"i\":%zu,\"s\":\"%s\"}", first + i, prefix);
    }
    return b;
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) free(b->ids[i]), free(b->metas[i]);
    free(b->ids), free(b->metas), free(b->v);
}

static void model_add(th_model *m, const batch *b)
{
    for (size_t i = 0; i < b->n; i++) th_model_put(m, b->ids[i], b->v + i * DIM, b->metas[i]);
}

static long wal_size(const char *dir)
{
    char *p = th_path(dir, "wal.svdb");
    long n = th_file_size(p);
    free(p);
    return n;
}

static void test_reports(void **state)
{
    (void)state;
    char *dir = th_tmpdir("progress");
    svdb *db = open_hnsw(dir);
    calls c = {0};
    c.monotonic = c.bounded = 1;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    batch b = make_batch("r", 0, rows(), 1);
    assert_int_equal(svdb_add_batch(db, b.n, (const char *const *)b.ids, b.v, DIM, (const char *const *)b.metas), SVDB_OK);
    assert_true(c.by_op[SVDB_PROGRESS_LINK] >= 2); /* linking takes far more than 50 ms */
    assert_true(c.last_done[SVDB_PROGRESS_LINK] == b.n); /* the last report is total/total */
    assert_true(c.monotonic && c.bounded);
    /* no handler: no reports */
    assert_int_equal(svdb_progress_handler(db, NULL, NULL), SVDB_OK);
    int before = c.n;
    batch b2 = make_batch("s", 0, rows() / 3, 2);
    assert_int_equal(svdb_add_batch(db, b2.n, (const char *const *)b2.ids, b2.v, DIM, NULL), SVDB_OK);
    assert_int_equal(c.n, before);
    assert_int_equal(svdb_progress_handler(NULL, handler, &c), SVDB_EMISUSE);
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_EMISUSE); /* closed */
    batch_free(&b), batch_free(&b2);
    th_rmrf(dir);
    free(dir);
}

/* A cancel while rows are linked: an add and an upsert that replaces rows. */
static void cancel_link(int upsert)
{
    char *dir = th_tmpdir("progress-cancel");
    svdb *db = open_hnsw(dir);
    th_model m;
    th_model_init(&m, DIM);
    batch base = make_batch("r", 0, rows() / 2, 3);
    assert_int_equal(svdb_add_batch(db, base.n, (const char *const *)base.ids, base.v, DIM,
                                    (const char *const *)base.metas), SVDB_OK);
    model_add(&m, &base);
    long wal = wal_size(dir);
    /* the upsert replaces the first half of the rows and adds as many */
    batch b = make_batch(upsert ? "r" : "n", upsert ? base.n / 2 : 0, rows() / 2, 4);
    calls c = {0};
    c.monotonic = c.bounded = 1;
    c.cancel_op = SVDB_PROGRESS_LINK;
    c.cancel_at = 2;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    int rc = (upsert ? svdb_upsert_batch : svdb_add_batch)(db, b.n, (const char *const *)b.ids, b.v, DIM,
                                                            (const char *const *)b.metas);
    assert_int_equal(rc, SVDB_ECANCELED);
    assert_non_null(strstr(svdb_errmsg(), "canceled"));
    assert_int_equal(c.by_op[SVDB_PROGRESS_LINK], 2);
    assert_int_equal(wal_size(dir), wal); /* the record is gone from the log */
    assert_true(th_check_db(db, &m, 1));
    /* every row is still found by its own vector (replaced rows were linked again) */
    size_t misses = 0;
    for (size_t i = 0; i < base.n; i += 97) {
        svdb_hit *hits;
        size_t n;
        assert_int_equal(svdb_search(db, base.v + i * DIM, DIM, 1, NULL, &hits, &n), SVDB_OK);
        misses += n == 0 || strcmp(hits[0].id, base.ids[i]) != 0;
        svdb_hits_free(hits);
    }
    assert_true(misses <= 1);
    /* The canceled batch gave its sequence numbers back: a handle that
     * replays the next batch numbers its rows as this one did, so it adopts
     * every row's links from the links record this one logs. */
    svdb *f = open_hnsw(dir);
    uint64_t before[3], after[3];
    assert_int_equal(svdb__links_counts(f, before), SVDB_OK);
    /* the handle stays writable, and the batch goes in once not canceled */
    c.cancel_op = 0;
    rc = (upsert ? svdb_upsert_batch : svdb_add_batch)(db, b.n, (const char *const *)b.ids, b.v, DIM,
                                                        (const char *const *)b.metas);
    assert_int_equal(rc, SVDB_OK);
    size_t count;
    assert_int_equal(svdb_count(f, &count), SVDB_OK);
    assert_int_equal(svdb__links_counts(f, after), SVDB_OK);
    assert_int_equal(after[1] - before[1], b.n);
    assert_int_equal(svdb_close(f), SVDB_OK);
    model_add(&m, &b);
    assert_true(th_check_db(db, &m, 1));
    /* a reopen replays exactly what was acknowledged (no close: the child
     * of a crash is emulated by reading the files as they are) */
    assert_int_equal(svdb_close(db), SVDB_OK);
    db = open_hnsw(dir);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    batch_free(&base), batch_free(&b);
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

static void test_cancel_link_add(void **state) { (void)state, cancel_link(0); }
static void test_cancel_link_upsert(void **state) { (void)state, cancel_link(1); }

/* The first batch of an empty collection, canceled: its dimension is not fixed either. */
static void test_cancel_first_batch(void **state)
{
    (void)state;
    char *dir = th_tmpdir("progress-first");
    svdb *db = open_hnsw(dir);
    calls c = {0};
    c.cancel_op = SVDB_PROGRESS_LINK;
    c.cancel_at = 1;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    batch b = make_batch("r", 0, rows(), 5);
    assert_int_equal(svdb_add_batch(db, b.n, (const char *const *)b.ids, b.v, DIM, NULL), SVDB_ECANCELED);
    uint32_t dim = 7;
    size_t count = 7;
    assert_int_equal(svdb_dim(db, &dim), SVDB_OK);
    assert_int_equal(dim, 0);
    assert_int_equal(svdb_count(db, &count), SVDB_OK);
    assert_int_equal(count, 0);
    /* another dimension is accepted now */
    c.cancel_op = 0;
    float v[3] = {1, 2, 3};
    const char *id[] = {"x"};
    assert_int_equal(svdb_add_batch(db, 1, id, v, 3, NULL), SVDB_OK);
    assert_int_equal(svdb_close(db), SVDB_OK);
    db = open_hnsw(dir);
    assert_int_equal(svdb_count(db, &count), SVDB_OK);
    assert_int_equal(count, 1);
    assert_int_equal(svdb_close(db), SVDB_OK);
    batch_free(&b);
    th_rmrf(dir);
    free(dir);
}

/* A cancel while a batch's rows are checked (before anything is logged). */
static void test_cancel_write_checks(void **state)
{
    (void)state;
    char *dir = th_tmpdir("progress-write");
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    size_t n = th_slow_tool() ? 4000 : 40000;
    /* large metadata makes the checks slow enough to be reported */
    size_t mlen = 2000;
    char **ids = calloc(n, sizeof *ids), **metas = calloc(n, sizeof *metas);
    float *v = malloc(n * 4 * sizeof(float));
    th_random(v, n * 4, 6);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(32);
        snprintf(ids[i], 32, "w%zu", i);
        metas[i] = malloc(mlen + 1);
        memset(metas[i], 'a', mlen);
        memcpy(metas[i], "{\"t\":\"", 6);
        memcpy(metas[i] + mlen - 2, "\"}", 3);
    }
    calls c = {0};
    c.cancel_op = SVDB_PROGRESS_WRITE;
    c.cancel_at = 1;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    long wal = wal_size(dir);
    assert_int_equal(svdb_add_batch(db, n, (const char *const *)ids, v, 4, (const char *const *)metas), SVDB_ECANCELED);
    assert_int_equal(c.by_op[SVDB_PROGRESS_WRITE], 1);
    assert_int_equal(c.by_op[SVDB_PROGRESS_LINK], 0);
    assert_int_equal(wal_size(dir), wal);
    size_t count = 9;
    uint32_t dim = 9;
    assert_int_equal(svdb_count(db, &count), SVDB_OK);
    assert_int_equal(svdb_dim(db, &dim), SVDB_OK);
    assert_int_equal(count, 0);
    assert_int_equal(dim, 0);
    assert_int_equal(svdb_close(db), SVDB_OK);
    for (size_t i = 0; i < n; i++) free(ids[i]), free(metas[i]);
    free(ids), free(metas), free(v);
    th_rmrf(dir);
    free(dir);
}

/* A canceled checkpoint leaves the previous snapshot and the log as they
 * were; so does a close whose checkpoint is canceled (nothing is lost: the
 * log holds the rows, and the reopen replays them). */
static void test_cancel_checkpoint(void **state)
{
    (void)state;
    char *dir = th_tmpdir("progress-ckpt");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.autocheckpoint_bytes = 0;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    /* wide rows: a snapshot that takes well over 50 ms to write */
    enum { WIDE = 1024 };
    /* writing is I/O and memcpy, which only valgrind slows much */
    size_t n = getenv("SVDB_VALGRIND") ? 4000 : 30000;
    char **ids = calloc(n, sizeof *ids);
    float *v = malloc(n * WIDE * sizeof(float));
    th_random(v, n * WIDE, 7);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(32);
        snprintf(ids[i], 32, "c%zu", i);
    }
    assert_int_equal(svdb_add_batch(db, n, (const char *const *)ids, v, WIDE, NULL), SVDB_OK);
    char *snap = th_path(dir, "snapshot.svdb"), *tmp = th_path(dir, "snapshot.svdb.tmp");
    size_t before_len, after_len;
    unsigned char *before = th_read_file(snap, &before_len);
    long wal = wal_size(dir);
    calls c = {0};
    c.monotonic = c.bounded = 1;
    c.cancel_op = SVDB_PROGRESS_CHECKPOINT;
    c.cancel_at = 1;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    assert_int_equal(svdb_persist(db), SVDB_ECANCELED);
    assert_int_equal(c.by_op[SVDB_PROGRESS_CHECKPOINT], 1);
    unsigned char *after = th_read_file(snap, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_int_equal(th_file_size(tmp), -1); /* the temporary file is gone */
    assert_int_equal(wal_size(dir), wal);
    /* the close's checkpoint canceled too: the rows stay in the log */
    assert_int_equal(svdb_close(db), SVDB_ECANCELED);
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    size_t count = 0;
    assert_int_equal(svdb_count(db, &count), SVDB_OK);
    assert_int_equal(count, n);
    float got[WIDE];
    for (size_t i = 0; i < n; i += n / 7) {
        assert_int_equal(svdb_get(db, ids[i], got, WIDE, NULL), SVDB_OK);
        assert_memory_equal(got, v + i * WIDE, sizeof got);
    }
    /* not canceled: reported to the end, and the log is cut */
    c.cancel_op = 0; /* a fresh count: the canceled checkpoints above started over from 0 */
    memset(c.by_op, 0, sizeof c.by_op);
    memset(c.last_done, 0, sizeof c.last_done);
    c.monotonic = c.bounded = 1;
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    const char *id[] = {"one-more"};
    assert_int_equal(svdb_add_batch(db, 1, id, v, WIDE, NULL), SVDB_OK);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    assert_true(c.by_op[SVDB_PROGRESS_CHECKPOINT] >= 2);
    assert_true(c.monotonic && c.bounded);
    assert_true(wal_size(dir) < wal);
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    assert_int_equal(svdb_count(db, &count), SVDB_OK);
    assert_int_equal(count, n + 1);
    assert_int_equal(svdb_close(db), SVDB_OK);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids), free(v), free(before), free(after), free(snap), free(tmp);
    th_rmrf(dir);
    free(dir);
}

/* svdb_verify waits for the check open deferred: reported, and a cancel
 * stops the wait (the check goes on, and a later verify gets its verdict). */
static void slow_block(void) { usleep(20000); }

/* The cancel tests report at every chance (no 50 ms wait), so where the
 * cancel lands does not depend on this machine's speed. */
static int every_tick(void **state)
{
    (void)state;
    svdb__progress_interval_ns = 0;
    return 0;
}
static int default_interval(void **state)
{
    (void)state;
    svdb__progress_interval_ns = (uint64_t)SVDB_PROGRESS_MS * 1000000u;
    return 0;
}

static void test_verify(void **state)
{
    (void)state;
    char *dir = th_tmpdir("progress-verify");
    svdb *db = open_hnsw(dir);
    batch b = make_batch("v", 0, 2000, 8);
    assert_int_equal(svdb_add_batch(db, b.n, (const char *const *)b.ids, b.v, DIM, NULL), SVDB_OK);
    assert_int_equal(svdb_close(db), SVDB_OK);
    size_t defer = svdb__snapshot_defer_bytes;
    svdb__snapshot_defer_bytes = 1; /* every check is left to the thread */
    svdb__snapshot_check_hook = slow_block;
    calls c = {0};
    c.monotonic = c.bounded = 1;
    c.cancel_op = SVDB_PROGRESS_VERIFY;
    c.cancel_at = 1;
    db = open_hnsw(dir);
    assert_int_equal(svdb_progress_handler(db, handler, &c), SVDB_OK);
    assert_int_equal(svdb_verify(db), SVDB_ECANCELED);
    assert_non_null(strstr(svdb_errmsg(), "goes on in the background"));
    assert_int_equal(c.by_op[SVDB_PROGRESS_VERIFY], 1);
    c.cancel_op = 0;
    assert_int_equal(svdb_verify(db), SVDB_OK); /* waits for the verdict */
    assert_true(c.monotonic && c.bounded);
    svdb__snapshot_check_hook = NULL;
    svdb__snapshot_defer_bytes = defer;
    assert_int_equal(svdb_close(db), SVDB_OK);
    batch_free(&b);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reports, default_interval, default_interval),
        cmocka_unit_test_setup_teardown(test_cancel_link_add, every_tick, default_interval),
        cmocka_unit_test_setup_teardown(test_cancel_link_upsert, every_tick, default_interval),
        cmocka_unit_test_setup_teardown(test_cancel_first_batch, every_tick, default_interval),
        cmocka_unit_test_setup_teardown(test_cancel_write_checks, every_tick, default_interval),
        cmocka_unit_test_setup_teardown(test_cancel_checkpoint, every_tick, default_interval),
        cmocka_unit_test_setup_teardown(test_verify, every_tick, default_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
