/* svdb_compact and svdb_get_stats: deleted rows' space given back on disk
 * and in memory, with the same rows, order and search results (flat:
 * identical; HNSW: every row found, recall on siftsmall unchanged) for
 * every index and storage; after reopen; with background indexing; seen by
 * a handle in another process at its next call; the error paths (closed,
 * read-only, busy, canceled, I/O failures at every step: nothing changed);
 * and processes killed while compacting (every acknowledged row there). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collection.h"
#include "helpers.h"
#include "multiproc_common.h"
#include "os.h"
#include "progress.h"
#include "svdb.h"

/* ------------------------------------------------------------ helpers */

static svdb *open_with(const char *dir, int index, int storage, int bg, int mode)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.storage = storage;
    o.background_indexing = bg;
    o.mode = mode;
    o.hnsw_m = index == SVDB_INDEX_HNSW ? 8 : 0;
    o.hnsw_ef_construction = index == SVDB_INDEX_HNSW ? 64 : 0;
    o.build_threads = 1; /* the same graph every run */
    o.seed = 7;
    svdb *db = NULL;
    ASSERT_OK(svdb_open(&db, dir, &o));
    return db;
}

static svdb_stats stats_of(svdb *db)
{
    svdb_stats st;
    ASSERT_OK(svdb_stats_init(&st, SVDB_STATS_VERSION));
    ASSERT_OK(svdb_get_stats(db, &st));
    return st;
}

/* Adds rows first .. first + n - 1 ("r<i>", metadata on odd rows) to db and m. */
static void add_rows(svdb *db, th_model *m, unsigned first, unsigned n, unsigned seed)
{
    enum { B = 500 };
    uint32_t dim = m->dim;
    float *v = malloc((size_t)B * dim * sizeof *v);
    char *ids[B], *metas[B];
    for (unsigned done = 0; done < n; done += B) {
        unsigned k = n - done < B ? n - done : B;
        th_random(v, (size_t)k * dim, seed + done);
        for (unsigned i = 0; i < k; i++) {
            assert_true(asprintf(&ids[i], "r%u", first + done + i) > 0);
            metas[i] = NULL;
            if ((first + done + i) % 2) assert_true(asprintf(&metas[i], "{\"i\":%u}", first + done + i) > 0);
        }
        ASSERT_OK(svdb_add_batch(db, k, (const char *const *)ids, v, dim, (const char *const *)metas));
        for (unsigned i = 0; i < k; i++) {
            th_model_put(m, ids[i], v + (size_t)i * dim, metas[i]);
            free(ids[i]);
            free(metas[i]);
        }
    }
    free(v);
}

/* Deletes the rows "r<i>", first <= i < first + n, with i % keep != 0. */
static void delete_rows(svdb *db, th_model *m, unsigned first, unsigned n, unsigned keep)
{
    for (unsigned i = first; i < first + n; i++) {
        if (i % keep == 0) continue;
        char id[32];
        snprintf(id, sizeof id, "r%u", i);
        const char *ids[] = {id};
        size_t gone = 0;
        ASSERT_OK(svdb_delete(db, 1, ids, &gone));
        assert_int_equal(gone, th_model_del(m, id));
    }
}

/* The hits of nq queries (k each): ids and distances, to compare. */
typedef struct hits {
    size_t n[32];
    char *ids[32][10];
    float dist[32][10];
} hits;

static void search_all(svdb *db, uint32_t dim, hits *h, unsigned nq)
{
    float *q = malloc(dim * sizeof *q);
    for (unsigned i = 0; i < nq; i++) {
        th_random(q, dim, 90000 + i);
        svdb_hit *r = NULL;
        ASSERT_OK(svdb_search(db, q, dim, 10, NULL, &r, &h->n[i]));
        for (size_t j = 0; j < h->n[i]; j++) {
            h->ids[i][j] = strdup(r[j].id);
            h->dist[i][j] = r[j].distance;
        }
        svdb_hits_free(r);
    }
    free(q);
}

static void hits_equal(hits *a, hits *b, unsigned nq)
{
    for (unsigned i = 0; i < nq; i++) {
        assert_int_equal(a->n[i], b->n[i]);
        for (size_t j = 0; j < a->n[i]; j++) {
            assert_string_equal(a->ids[i][j], b->ids[i][j]);
            assert_memory_equal(&a->dist[i][j], &b->dist[i][j], sizeof(float)); /* bit-identical */
        }
    }
}

static void hits_free(hits *h, unsigned nq)
{
    for (unsigned i = 0; i < nq; i++)
        for (size_t j = 0; j < h->n[i]; j++) free(h->ids[i][j]);
}

static void assert_no_tmp(const char *dir)
{
    char *p = th_path(dir, "snapshot.svdb.tmp");
    assert_true(th_file_size(p) < 0);
    free(p);
    p = th_path(dir, "wal.svdb.tmp");
    assert_true(th_file_size(p) < 0);
    free(p);
}

static void assert_dense(svdb *db, size_t count)
{
    svdb_stats st = stats_of(db);
    assert_int_equal(st.count, count);
    assert_int_equal(st.free_slots, 0);
    assert_int_equal(st.slots, count);
}

/* ------------------------------------------------------------ flat */

static void test_compact__flat_identical(void **state)
{
    (void)state;
    unsigned n = th_slow_tool() ? 800 : 3000, nq = 20;
    char *dir = th_tmpdir("compact-flat");
    svdb *db = open_with(dir, SVDB_INDEX_FLAT, 0, 0, SVDB_OPEN_SHARED);
    th_model m;
    th_model_init(&m, 24);
    add_rows(db, &m, 0, n, 1);
    delete_rows(db, &m, 0, n, 10); /* 90% gone */
    add_rows(db, &m, n, 40, 2);    /* reuses some of the freed slots */
    ASSERT_OK(svdb_persist(db));
    svdb_stats before = stats_of(db);
    assert_int_equal(before.count, m.n);
    assert_true(before.free_slots > 0);
    assert_int_equal(before.slots, before.count + before.free_slots);
    assert_int_equal(before.index, SVDB_INDEX_FLAT);
    assert_int_equal(before.metric, SVDB_METRIC_L2);
    assert_int_equal(before.storage, SVDB_STORAGE_F32);
    assert_int_equal(before.dim, 24);
    assert_int_equal(before.hnsw_m, 0);
    hits h0, h1, h2;
    search_all(db, 24, &h0, nq);

    ASSERT_OK(svdb_compact(db));
    assert_dense(db, m.n);
    svdb_stats after = stats_of(db);
    assert_true(after.snapshot_bytes <= before.snapshot_bytes);
    assert_true(after.log_bytes <= before.log_bytes);
    assert_true(after.other_bytes > 0); /* the lock file */
    assert_true(th_check_db(db, &m, 1)); /* rows, insertion order, vectors, metadata */
    search_all(db, 24, &h1, nq);
    hits_equal(&h0, &h1, nq);
    assert_no_tmp(dir);
    ASSERT_OK(svdb_close(db));

    db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
    assert_true(th_check_db(db, &m, 1));
    assert_dense(db, m.n);
    search_all(db, 24, &h2, nq);
    hits_equal(&h0, &h2, nq);
    add_rows(db, &m, n + 100, 50, 3); /* a compacted collection takes writes as any */
    delete_rows(db, &m, n + 100, 50, 2);
    ASSERT_OK(svdb_close(db));
    db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_close(db));
    hits_free(&h0, nq);
    hits_free(&h1, nq);
    hits_free(&h2, nq);
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* Below a quarter of the slots free a checkpoint keeps every slot in the
 * file; compact gives the space back. Without free slots it is a plain
 * checkpoint: the log is emptied. Deleting every row leaves an empty
 * collection that takes rows again. */
static void test_compact__space_and_plain(void **state)
{
    (void)state;
    char *dir = th_tmpdir("compact-space");
    svdb *db = open_with(dir, SVDB_INDEX_FLAT, 0, 0, SVDB_OPEN_SHARED);
    th_model m;
    th_model_init(&m, 64);
    add_rows(db, &m, 0, 2000, 5);
    delete_rows(db, &m, 0, 2000, 5); /* 80% of rows 0..1999 ... */
    add_rows(db, &m, 2000, 1200, 6); /* ... 1200 of those slots reused: 400 free of 2000 */
    ASSERT_OK(svdb_persist(db));
    svdb_stats a = stats_of(db);
    assert_int_equal(a.free_slots, 400);
    assert_int_equal(a.slots, 2000);
    ASSERT_OK(svdb_compact(db));
    svdb_stats b = stats_of(db);
    assert_int_equal(b.slots, 1600);
    /* 400 rows of 256 bytes of vector and 16 of record header fewer */
    assert_true(b.snapshot_bytes + 400 * (256 + 16) <= a.snapshot_bytes);
    assert_true(th_check_db(db, &m, 1));

    /* No free slot: a plain checkpoint (the log's records go to the snapshot). */
    add_rows(db, &m, 5000, 10, 7);
    svdb_stats c = stats_of(db);
    assert_int_equal(c.free_slots, 0);
    ASSERT_OK(svdb_compact(db));
    svdb_stats d = stats_of(db);
    assert_true(d.log_bytes < c.log_bytes);
    assert_true(d.snapshot_bytes > c.snapshot_bytes);
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_compact(db)); /* nothing new: nothing to do */
    svdb_stats e = stats_of(db);
    assert_int_equal(e.snapshot_bytes, d.snapshot_bytes);

    /* Every row deleted. */
    char **ids = NULL;
    size_t n_ids = 0;
    ASSERT_OK(svdb_ids(db, &ids, &n_ids));
    size_t gone = 0;
    ASSERT_OK(svdb_delete(db, n_ids, (const char *const *)ids, &gone));
    assert_int_equal(gone, n_ids);
    svdb_ids_free(ids);
    th_model_free(&m);
    th_model_init(&m, 64);
    ASSERT_OK(svdb_compact(db));
    assert_dense(db, 0);
    ASSERT_OK(svdb_close(db));
    db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
    assert_dense(db, 0);
    add_rows(db, &m, 9000, 20, 8);
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* ------------------------------------------------------------ HNSW */

/* Live rows find themselves first at distance 0 (the vectors are random
 * and distinct). HNSW may leave a rare row unreachable from the entry
 * point (seen at M = 8 even before any delete), so 99% must. */
static void assert_self_found(svdb *db, const th_model *m)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 200;
    size_t missed = 0;
    for (size_t i = 0; i < m->n; i++) {
        svdb_hit *h = NULL;
        size_t n = 0;
        ASSERT_OK(svdb_search(db, m->rows[i].vec, m->dim, 1, &so, &h, &n));
        assert_int_equal(n, 1);
        if (strcmp(h[0].id, m->rows[i].id) != 0) missed++;
        else assert_true(h[0].distance < 1e-4f);
        svdb_hits_free(h);
    }
    if (missed) fprintf(stderr, "%zu of %zu rows not found by their own vector\n", missed, m->n);
    assert_true(missed * 100 <= m->n);
}

static void test_compact__hnsw_storages(void **state)
{
    (void)state;
    unsigned n = th_slow_tool() ? 300 : 1500;
    for (int storage = SVDB_STORAGE_F32; storage <= SVDB_STORAGE_INT8; storage++)
        for (int bg = 0; bg <= 1; bg++) {
            char *dir = th_tmpdir("compact-hnsw");
            svdb *db = open_with(dir, SVDB_INDEX_HNSW, storage, bg, SVDB_OPEN_SHARED);
            th_model m;
            th_model_init(&m, 16);
            add_rows(db, &m, 0, n, 11 + (unsigned)storage);
            delete_rows(db, &m, 0, n, 3);
            add_rows(db, &m, n, n / 4, 21); /* with background indexing: often still queued below */
            ASSERT_OK(svdb_compact(db));
            ASSERT_OK(svdb_index_wait(db));
            svdb_stats st = stats_of(db);
            assert_int_equal(st.pending, 0);
            assert_int_equal(st.storage, storage);
            assert_int_equal(st.index, SVDB_INDEX_HNSW);
            assert_int_equal(st.hnsw_m, 8);
            assert_int_equal(st.hnsw_ef_construction, 64);
            assert_dense(db, m.n);
            assert_true(th_check_db(db, &m, 1));
            assert_self_found(db, &m);
            ASSERT_OK(svdb_close(db));
            db = open_with(dir, 0, 0, bg, SVDB_OPEN_SHARED);
            ASSERT_OK(svdb_verify(db));
            ASSERT_OK(svdb_index_wait(db));
            assert_true(th_check_db(db, &m, 1));
            assert_self_found(db, &m);
            add_rows(db, &m, 3 * n, 100, 31); /* the graph takes new rows after compact */
            ASSERT_OK(svdb_index_wait(db));
            assert_self_found(db, &m);
            ASSERT_OK(svdb_close(db));
            th_model_free(&m);
            th_rmrf(dir);
            free(dir);
        }
}

/* Rows queued for the background indexer at compact are queued again in
 * the new numbering: pending is counted, and they get linked. */
static void test_compact__pending_rows(void **state)
{
    (void)state;
    char *dir = th_tmpdir("compact-pending");
    svdb *db = open_with(dir, SVDB_INDEX_HNSW, SVDB_STORAGE_F32, 1, SVDB_OPEN_SHARED);
    th_model m;
    th_model_init(&m, 16);
    add_rows(db, &m, 0, 400, 41);
    ASSERT_OK(svdb_index_wait(db));
    delete_rows(db, &m, 0, 400, 2);
    /* Pause the indexer so the next rows stay queued through the compact. */
    svdb_indexer *ix = svdb__indexer_of(db);
    svdb__indexer_pause(ix, 1);
    add_rows(db, &m, 400, 300, 42);
    size_t pending = 0;
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_int_equal(pending, 300);
    ASSERT_OK(svdb_compact(db));
    svdb_stats st = stats_of(db);
    assert_int_equal(st.pending, 300);
    assert_dense(db, m.n);
    assert_true(th_check_db(db, &m, 1));
    assert_self_found(db, &m); /* queued rows are scanned exactly meanwhile */
    ASSERT_OK(svdb_close(db)); /* saved unlinked, queued again at open */
    db = open_with(dir, 0, 0, 1, SVDB_OPEN_SHARED);
    ASSERT_OK(svdb_index_wait(db));
    assert_int_equal(stats_of(db).pending, 0);
    assert_self_found(db, &m);
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

static void test_compact__hnsw_recall_siftsmall(void **state)
{
    (void)state;
    float *base, *query;
    size_t nb, nq, dim;
    if (!mp_load_sift(th_slow_tool() ? 2000 : 10000, th_slow_tool() ? 30 : 100, &base, &nb, &query, &nq, &dim)) {
        fprintf(stderr, "siftsmall is not in %s\n", SVDB_TEST_DATA_DIR);
        skip();
    }
    char *dir = th_tmpdir("compact-sift");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_ef_construction = 100;
    o.hnsw_ef_search = 12; /* a recall below 1, so that a worse graph would show */
    o.build_threads = 2;
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, &o));
    char **ids = malloc(nb * sizeof *ids);
    for (size_t i = 0; i < nb; i++) assert_true(asprintf(&ids[i], "%zu", i) > 0);
    ASSERT_OK(svdb_add_batch(db, nb, (const char *const *)ids, base, (uint32_t)dim, NULL));
    /* Delete every odd row; the exact neighbours come from the even ones. */
    size_t half = nb / 2;
    const char **odd = malloc(half * sizeof *odd);
    for (size_t i = 0; i < half; i++) odd[i] = ids[2 * i + 1];
    size_t gone = 0;
    ASSERT_OK(svdb_delete(db, half, odd, &gone));
    assert_int_equal(gone, half);
    float *masked = malloc(nb * dim * sizeof *masked);
    memcpy(masked, base, nb * dim * sizeof *masked);
    for (size_t i = 1; i < nb; i += 2)
        for (size_t j = 0; j < dim; j++) masked[i * dim + j] = 1e6f;
    float *kth = mp_kth(masked, nb, query, nq, dim, 10);
    double before = mp_recall(db, base, query, nq, dim, 10, kth);
    ASSERT_OK(svdb_compact(db));
    assert_dense(db, nb - half);
    double after = mp_recall(db, base, query, nq, dim, 10, kth);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL));
    double reopened = mp_recall(db, base, query, nq, dim, 10, kth);
    ASSERT_OK(svdb_close(db));
    fprintf(stderr, "siftsmall %zu rows, half deleted: recall@10 %.4f before compact, %.4f after, %.4f reopened\n", nb,
            before, after, reopened);
    assert_true(before > 0.8);
    /* The same graph, renumbered: only ties between equal distances may differ. */
    assert_true(after >= before - 0.005);
    assert_true(reopened >= before - 0.005);
    for (size_t i = 0; i < nb; i++) free(ids[i]);
    free(ids);
    free(odd);
    free(masked);
    free(kth);
    free(base);
    free(query);
    th_rmrf(dir);
    free(dir);
}

/* ------------------------------------------------------------ errors */

static int cancel_calls;
static int cancel_at_first(void *ctx, int op, uint64_t done, uint64_t total)
{
    (void)ctx;
    (void)done;
    (void)total;
    assert_int_equal(op, SVDB_PROGRESS_CHECKPOINT);
    cancel_calls++;
    return 1;
}

static void test_compact__errors(void **state)
{
    (void)state;
    char *dir = th_tmpdir("compact-errors");
    svdb *db = open_with(dir, SVDB_INDEX_FLAT, 0, 0, SVDB_OPEN_SHARED);
    th_model m;
    th_model_init(&m, 8);
    add_rows(db, &m, 0, 200, 51);
    delete_rows(db, &m, 0, 200, 4);
    ASSERT_OK(svdb_persist(db));
    svdb_stats st0 = stats_of(db);

    ASSERT_FAILS(svdb_compact(NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_get_stats(NULL, &st0), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_get_stats(db, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_stats_init(NULL, SVDB_STATS_VERSION), SVDB_EINVAL);
    svdb_stats bad;
    ASSERT_FAILS(svdb_stats_init(&bad, 0), SVDB_EINVAL);
    ASSERT_FAILS(svdb_stats_init(&bad, SVDB_STATS_VERSION + 1), SVDB_EINVAL);
    memset(&bad, 0, sizeof bad);
    ASSERT_FAILS(svdb_get_stats(db, &bad), SVDB_EINVAL); /* version 0: not initialized */
    bad.version = SVDB_STATS_VERSION + 1;
    ASSERT_FAILS(svdb_get_stats(db, &bad), SVDB_EINVAL);

    /* Canceled by the progress handler: nothing changed. */
    uint64_t saved = svdb__progress_interval_ns;
    svdb__progress_interval_ns = 0;
    ASSERT_OK(svdb_progress_handler(db, cancel_at_first, NULL));
    ASSERT_FAILS(svdb_compact(db), SVDB_ECANCELED);
    svdb__progress_interval_ns = saved;
    assert_int_equal(cancel_calls, 1);
    ASSERT_OK(svdb_progress_handler(db, NULL, NULL));
    svdb_stats st1 = stats_of(db);
    assert_int_equal(st1.free_slots, st0.free_slots);
    assert_int_equal(st1.snapshot_bytes, st0.snapshot_bytes);
    assert_int_equal(st1.log_bytes, st0.log_bytes);
    assert_no_tmp(dir);
    assert_true(th_check_db(db, &m, 1));

    /* Busy: another holder of the write lock (an open file description of
     * LOCK of our own, as another process would hold it). */
    char *lock = th_path(dir, "LOCK");
    int fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SVDB_LOCK_WRITE, .l_len = 1};
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.busy_timeout_ms = 50;
    svdb *quick;
    ASSERT_OK(svdb_open(&quick, dir, &o));
    ASSERT_FAILS(svdb_compact(quick), SVDB_EBUSY);
    assert_int_equal(stats_of(quick).count, m.n); /* reads go on */
    fl.l_type = F_UNLCK;
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
    close(fd);
    free(lock);
    ASSERT_OK(svdb_close(quick));

    /* Read-only. */
    svdb *ro = open_with(dir, 0, 0, 0, SVDB_OPEN_READONLY);
    ASSERT_FAILS(svdb_compact(ro), SVDB_EREADONLY);
    svdb_stats rs = stats_of(ro);
    assert_int_equal(rs.count, m.n);
    assert_int_equal(rs.snapshot_bytes, st0.snapshot_bytes);
    ASSERT_OK(svdb_close(ro));

    /* Closed: the token is retired. */
    ASSERT_OK(svdb_close(db));
    ASSERT_FAILS(svdb_compact(db), SVDB_EMISUSE);
    svdb_stats cs;
    svdb_stats_init(&cs, SVDB_STATS_VERSION);
    ASSERT_FAILS(svdb_get_stats(db, &cs), SVDB_EMISUSE);

    db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
    assert_true(th_check_db(db, &m, 1));
    delete_rows(db, &m, 0, 200, 8); /* the snapshot was packed (3/4 free): free slots again */
    ASSERT_OK(svdb_compact(db));
    assert_dense(db, m.n);
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* A failed write, sync, rename or truncate at each step in turn: the call
 * fails naming it, the handle still holds every row, and so does a reopen. */
static void test_compact__io_failure_at_every_step(void **state)
{
    (void)state;
    int finished = 0;
    for (long step = 1; step < 200 && !finished; step++) {
        char *dir = th_tmpdir("compact-io");
        svdb *db = open_with(dir, SVDB_INDEX_HNSW, step % 2 ? SVDB_STORAGE_F32 : SVDB_STORAGE_F16, 0,
                             SVDB_OPEN_SHARED);
        th_model m;
        th_model_init(&m, 8);
        add_rows(db, &m, 0, 120, 61);
        ASSERT_OK(svdb_persist(db));
        delete_rows(db, &m, 0, 120, 3);
        svdb__io_fail_after(step, EIO);
        int rc = svdb_compact(db);
        svdb__io_fail_after(0, 0);
        if (rc == SVDB_OK) finished = 1;
        else {
            assert_int_equal(rc, SVDB_EIO);
            assert_true(strstr(svdb_errmsg(), dir) != NULL);
        }
        assert_true(th_check_db(db, &m, 1));
        (void)svdb_close(db); /* a poisoned handle refuses its final checkpoint */
        db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
        assert_true(th_check_db(db, &m, 1));
        assert_self_found(db, &m);
        ASSERT_OK(svdb_compact(db));
        assert_dense(db, m.n);
        ASSERT_OK(svdb_close(db));
        th_model_free(&m);
        th_rmrf(dir);
        free(dir);
    }
    assert_true(finished);
}

/* ------------------------------------------------------------ other processes */

static void write_byte(int fd, char c)
{
    if (write(fd, &c, 1) != 1) _exit(7);
}

static char read_byte(int fd)
{
    char c = 0;
    while (read(fd, &c, 1) < 0 && errno == EINTR) {
    }
    return c;
}

/* The child holds the collection open across the parent's compact and
 * sees the same rows, densely, at its next call; its write afterwards is
 * seen by the parent. */
static int peer_child(const char *dir, const th_model *m, int rfd, int wfd, int index)
{
    svdb *db = NULL;
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    if (svdb_open(&db, dir, &o) != SVDB_OK) return 2;
    svdb_stats st;
    svdb_stats_init(&st, SVDB_STATS_VERSION);
    if (svdb_get_stats(db, &st) != SVDB_OK || st.free_slots == 0 || st.count != m->n) return 3;
    write_byte(wfd, 'r');
    if (read_byte(rfd) != 'g') return 4;
    if (svdb_get_stats(db, &st) != SVDB_OK) return 5;
    if (st.free_slots != 0 || st.slots != m->n || st.count != m->n) return 6;
    if (!th_check_db(db, m, 1)) return 7;
    if (index == SVDB_INDEX_HNSW) {
        svdb_hit *h = NULL;
        size_t n = 0;
        if (svdb_search(db, m->rows[0].vec, m->dim, 1, NULL, &h, &n) != SVDB_OK || n != 1 ||
            strcmp(h[0].id, m->rows[0].id) != 0)
            return 8;
        svdb_hits_free(h);
    }
    float v[8] = {0};
    const char *id[] = {"from-child"};
    if (svdb_add_batch(db, 1, id, v, m->dim, NULL) != SVDB_OK) return 9;
    if (svdb_close(db) != SVDB_OK) return 10;
    return 0;
}

static void test_compact__seen_by_other_process(void **state)
{
    (void)state;
    for (int index = SVDB_INDEX_FLAT; index <= SVDB_INDEX_HNSW; index++) {
        char *dir = th_tmpdir("compact-peer");
        svdb *db = open_with(dir, index, 0, 0, SVDB_OPEN_SHARED);
        th_model m;
        th_model_init(&m, 8);
        add_rows(db, &m, 0, 600, 71);
        delete_rows(db, &m, 0, 600, 4);
        ASSERT_OK(svdb_close(db)); /* 3/4 free: the snapshot is packed */
        db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
        delete_rows(db, &m, 0, 80, 8); /* 10 of 150: kept as free slots in the snapshot */
        ASSERT_OK(svdb_close(db));
        int to_child[2], to_parent[2];
        assert_int_equal(pipe(to_child), 0);
        assert_int_equal(pipe(to_parent), 0);
        pid_t pid = th_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(to_child[1]);
            close(to_parent[0]);
            th_child_exit(peer_child(dir, &m, to_child[0], to_parent[1], index));
        }
        close(to_child[0]);
        close(to_parent[1]);
        assert_int_equal(read_byte(to_parent[0]), 'r');
        db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
        ASSERT_OK(svdb_compact(db));
        assert_dense(db, m.n);
        write_byte(to_child[1], 'g');
        int code = th_wait(pid);
        if (code) fprintf(stderr, "index %d: the other process failed with %d (%s)\n", index, code, svdb_errmsg());
        assert_int_equal(code, 0);
        close(to_child[1]);
        close(to_parent[0]);
        int found = 0;
        ASSERT_OK(svdb_contains(db, "from-child", &found));
        assert_true(found);
        float v[8] = {0};
        th_model_put(&m, "from-child", v, NULL);
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
        assert_true(th_check_db(db, &m, 1));
        ASSERT_OK(svdb_close(db));
        th_model_free(&m);
        th_rmrf(dir);
        free(dir);
    }
}

/* ------------------------------------------------------------ crashes */

static void write_u32(int fd, uint32_t v)
{
    if (write(fd, &v, 4) != 4) _exit(7);
}

static int read_u32(int fd, uint32_t *v)
{
    size_t got = 0;
    while (got < 4) {
        ssize_t r = read(fd, (char *)v + got, 4 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        got += (size_t)r;
    }
    return 1;
}

static void kill_self(svdb *db)
{
    (void)db;
    kill(getpid(), SIGKILL);
}

static uint64_t kill_tick;
static int kill_at_tick(void *ctx, int op, uint64_t done, uint64_t total)
{
    (void)ctx;
    (void)op;
    (void)total;
    if (done >= kill_tick) kill(getpid(), SIGKILL);
    return 0;
}

/* A collection of 4000 base rows, three in four deleted, for the rounds. */
static void crash_base(const char *dir, th_model *m)
{
    svdb *db = open_with(dir, SVDB_INDEX_HNSW, SVDB_STORAGE_F32, 0, SVDB_OPEN_SHARED);
    add_rows(db, m, 0, th_slow_tool() ? 1000 : 4000, 81);
    delete_rows(db, m, 0, th_slow_tool() ? 1000 : 4000, 4);
    ASSERT_OK(svdb_close(db));
}

static void reopen_matches(const char *dir, th_model *m, const th_model *with)
{
    svdb *db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
    assert_no_tmp(dir);
    if (th_check_db(db, m, 0)) {
        /* the op in flight is absent */
    } else if (with && th_check_db(db, with, 0)) {
        th_model_free(m);
        th_model_copy(m, with);
    } else {
        th_check_db(db, m, 1);
        fail_msg("after the kill the collection matches no acknowledged state");
    }
    assert_self_found(db, m);
    ASSERT_OK(svdb_close(db));
}

/* Killed at chosen points of a compact: inside the snapshot's rows (a
 * progress handler), and right after the new snapshot's rename, before the
 * handle reloads and the log is replaced (the checkpoint hook). */
static void test_compact__kill_at_points(void **state)
{
    (void)state;
    char *dir = th_tmpdir("compact-kill");
    th_model m;
    th_model_init(&m, 8);
    crash_base(dir, &m);
    uint64_t rng = 4242;
    int rounds = th_slow_tool() ? 4 : 12, killed = 0;
    for (int round = 0; round < rounds; round++) {
        svdb *db = open_with(dir, 0, 0, 0, SVDB_OPEN_SHARED);
        add_rows(db, &m, 100000 + (unsigned)round * 100, 60, 90 + (unsigned)round); /* in the log only */
        delete_rows(db, &m, 100000 + (unsigned)round * 100, 60, 3);
        ASSERT_OK(svdb_close(db));
        kill_tick = 1 + th_randn(&rng, (uint32_t)m.n * 3);
        int at_hook = round % 3 == 2;
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (svdb_open(&db, dir, NULL) != SVDB_OK) _exit(2);
            if (at_hook) svdb__checkpoint_hook = kill_self;
            else {
                svdb__progress_interval_ns = 0;
                svdb_progress_handler(db, kill_at_tick, NULL);
            }
            svdb_compact(db);
            _exit(3); /* a tick past the last: compact finished; the parent checks the rows all the same */
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || (WIFEXITED(st) && WEXITSTATUS(st) == 3));
        killed += WIFSIGNALED(st);
        reopen_matches(dir, &m, NULL);
    }
    assert_true(killed * 2 >= rounds); /* the points were reached, not stepped over */
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* A child alternates a random write (acknowledged) and a compact
 * (acknowledged); the parent kills it at a random moment: every
 * acknowledged write is there, the one in flight wholly or not at all. */
static void test_compact__kill_at_random(void **state)
{
    (void)state;
    char *dir = th_tmpdir("compact-crash");
    th_model m;
    th_model_init(&m, 8);
    crash_base(dir, &m);
    uint64_t rng = 777;
    for (int round = 0; round < (th_slow_tool() ? 5 : 25); round++) {
        uint64_t seed = 5000 + (uint64_t)round;
        unsigned first_id = 1000000u * (unsigned)(round + 1);
        int p[2];
        assert_int_equal(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            svdb *db;
            if (svdb_open(&db, dir, NULL) != SVDB_OK) _exit(2);
            th_model cm;
            th_model_copy(&cm, &m);
            uint64_t r = seed;
            unsigned next_id = first_id;
            for (uint32_t i = 0;; i++) {
                th_op op;
                th_gen_op(&r, &cm, &next_id, 0, &op);
                if (th_op_run(db, &op) != SVDB_OK) _exit(3);
                write_u32(p[1], 2 * i + 1);
                th_op_model(&cm, &op);
                th_op_free(&op);
                if (svdb_compact(db) != SVDB_OK) _exit(4);
                write_u32(p[1], 2 * i + 2);
            }
        }
        close(p[1]);
        uint32_t acked = 0, v, target = th_randn(&rng, 8);
        while (acked < target && read_u32(p[0], &v)) acked = v;
        usleep(th_randn(&rng, 20000));
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        while (read_u32(p[0], &v)) acked = v;
        close(p[0]);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        /* acked odd: ops (acked + 1) / 2 done, a compact in flight; even: the next op in flight */
        uint64_t r = seed;
        unsigned next_id = first_id;
        th_op op;
        for (uint32_t i = 0; i < (acked + 1) / 2; i++) {
            th_gen_op(&r, &m, &next_id, 0, &op);
            th_op_model(&m, &op);
            th_op_free(&op);
        }
        th_model with;
        th_model_copy(&with, &m);
        th_gen_op(&r, &m, &next_id, 0, &op);
        th_op_model(&with, &op);
        th_op_free(&op);
        reopen_matches(dir, &m, acked % 2 ? NULL : &with);
        th_model_free(&with);
    }
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact__flat_identical),
        cmocka_unit_test(test_compact__space_and_plain),
        cmocka_unit_test(test_compact__hnsw_storages),
        cmocka_unit_test(test_compact__pending_rows),
        cmocka_unit_test(test_compact__hnsw_recall_siftsmall),
        cmocka_unit_test(test_compact__errors),
        cmocka_unit_test(test_compact__io_failure_at_every_step),
        cmocka_unit_test(test_compact__seen_by_other_process),
        cmocka_unit_test(test_compact__kill_at_points),
        cmocka_unit_test(test_compact__kill_at_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
