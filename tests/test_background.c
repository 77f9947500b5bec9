/* Background HNSW indexing through the public API: rows are searchable the
 * moment a write returns (exactly, until linked), deletes and upserts of
 * rows still queued, waiting, rows saved unlinked and linked again at open,
 * searches running beside the indexer, and the API's errors. The checks do
 * not depend on how far the indexer has got. */
#define _GNU_SOURCE /* pthread_rwlock_t, through indexer.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "helpers.h"
#include "collection.h"
#include "indexer.h"
#include "svdb.h"

#define DIM 16

static svdb *open_bg_threads(const char *dir, int background, uint32_t threads)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.dim = DIM;
    o.background_indexing = background;
    o.build_threads = threads;
    svdb *db = NULL;
    ASSERT_OK(svdb_open(&db, dir, &o));
    return db;
}

static svdb *open_bg(const char *dir, int background) { return open_bg_threads(dir, background, 0); }

/* Puts rows [from, to) of vecs with ids "r<i>" and metadata {"m": i % 10}. */
static void put_rows(svdb *db, th_model *m, const float *vecs, size_t from, size_t to, int upsert)
{
    size_t cnt = to - from;
    char **ids = malloc(cnt * sizeof *ids);
    char **metas = malloc(cnt * sizeof *metas);
    for (size_t i = 0; i < cnt; i++) {
        ids[i] = malloc(24);
        metas[i] = malloc(24);
        snprintf(ids[i], 24, "r%zu", from + i);
        snprintf(metas[i], 24, "{\"m\": %zu}", (from + i) % 10);
    }
    const float *v = vecs + from * DIM;
    int rc = upsert ? svdb_upsert_batch(db, cnt, (const char *const *)ids, v, DIM, (const char *const *)metas)
                    : svdb_add_batch(db, cnt, (const char *const *)ids, v, DIM, (const char *const *)metas);
    ASSERT_OK(rc);
    for (size_t i = 0; i < cnt; i++) {
        if (m) th_model_put(m, ids[i], v + i * DIM, metas[i]);
        free(ids[i]);
        free(metas[i]);
    }
    free(ids);
    free(metas);
}

static void delete_rows(svdb *db, th_model *m, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char id[24];
        const char *p = id;
        snprintf(id, sizeof id, "r%zu", i);
        size_t nd;
        ASSERT_OK(svdb_delete(db, 1, &p, &nd));
        assert_int_equal(nd, 1);
        assert_int_equal(th_model_del(m, id), 1);
    }
}

static float l2(const float *a, const float *b)
{
    float s = 0;
    for (int d = 0; d < DIM; d++) s += (a[d] - b[d]) * (a[d] - b[d]);
    return s;
}

/* Fraction of the true 10 nearest (among rows with m < m_below) that the
 * collection returns, over nq queries; every hit must pass the filter. */
static double recall_vs_model(svdb *db, const th_model *m, const float *qs, size_t nq, int m_below)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 200;
    char where[64];
    if (m_below < 10) {
        snprintf(where, sizeof where, "{\"m\": {\"$lt\": %d}}", m_below);
        so.where = where;
    }
    size_t found = 0, want = 0;
    float *d = malloc(m->n * sizeof *d);
    for (size_t q = 0; q < nq; q++) {
        const float *qv = qs + q * DIM;
        size_t cand = 0;
        for (size_t i = 0; i < m->n; i++) {
            int mv = atoi(strchr(m->rows[i].meta, ':') + 1);
            d[i] = mv < m_below ? l2(qv, m->rows[i].vec) : __builtin_inff();
            cand += mv < m_below;
        }
        size_t k = cand < 10 ? cand : 10;
        /* the k-th smallest distance */
        float kth = -1;
        for (size_t r = 0; r < k; r++) {
            float best = __builtin_inff();
            for (size_t i = 0; i < m->n; i++)
                if (d[i] > kth && d[i] < best) best = d[i];
            kth = best;
        }
        svdb_hit *h;
        size_t nh;
        ASSERT_OK(svdb_search(db, qv, DIM, 10, &so, &h, &nh));
        assert_int_equal(nh, k);
        for (size_t i = 0; i < nh; i++) {
            long row = th_model_find(m, h[i].id);
            assert_true(row >= 0);
            assert_true(atoi(strchr(m->rows[row].meta, ':') + 1) < m_below);
            found += h[i].distance <= kth * 1.0001f + 1e-6f;
        }
        want += k;
        svdb_hits_free(h);
    }
    free(d);
    return want ? (double)found / (double)want : 1.0;
}

static void test_background__searchable_at_once(void **state)
{
    (void)state;
    char *dir = th_tmpdir("bg_search");
    svdb *db = open_bg(dir, 1);
    size_t n = 6000, nq = 50;
    float *v = malloc((n + nq) * DIM * sizeof *v);
    th_random(v, (n + nq) * DIM, 7);
    const float *qs = v + n * DIM;
    th_model m;
    th_model_init(&m, DIM);
    /* Searches right after each write: rows still queued are scanned exactly. */
    put_rows(db, &m, v, 0, 3000, 0);
    assert_true(recall_vs_model(db, &m, qs, nq, 10) >= 0.98);
    delete_rows(db, &m, 0, 300);               /* some of them still queued */
    th_random(v, 500 * DIM, 8);                /* new vectors for r0..r499 */
    put_rows(db, &m, v, 0, 500, 1);            /* re-adds deleted ids, replaces others */
    put_rows(db, &m, v, 3000, n, 0);
    assert_true(recall_vs_model(db, &m, qs, nq, 10) >= 0.98);
    assert_true(recall_vs_model(db, &m, qs, nq, 3) >= 0.98); /* a 30% filter */
    size_t pending, count;
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_true(pending <= n);
    printf("rows waiting to be linked after the writes: %zu\n", pending);
    ASSERT_OK(svdb_index_wait(db));
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_int_equal(pending, 0);
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, m.n);
    assert_true(th_check_db(db, &m, 1));
    assert_true(recall_vs_model(db, &m, qs, nq, 10) >= 0.98);
    assert_true(recall_vs_model(db, &m, qs, nq, 3) >= 0.98);
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    free(v);
    th_rmrf(dir);
    free(dir);
}

/* Rows saved while still queued are linked at the next open: by the
 * indexer with background indexing, before svdb_open returns without. */
static void test_background__unlinked_rows_survive_reopen(void **state)
{
    (void)state;
    char *dir = th_tmpdir("bg_reopen");
    svdb *db = open_bg(dir, 1);
    size_t n = 20000, nq = 40;
    float *v = malloc((n + nq) * DIM * sizeof *v);
    th_random(v, (n + nq) * DIM, 11);
    th_model m;
    th_model_init(&m, DIM);
    put_rows(db, &m, v, 0, n / 2, 0);
    ASSERT_OK(svdb_persist(db)); /* a snapshot, probably with rows not yet linked */
    put_rows(db, &m, v, n / 2, n, 0);
    ASSERT_OK(svdb_close(db)); /* closes without waiting for the indexer */

    db = open_bg(dir, 1); /* rows from the snapshot and the log queued again */
    size_t queued;
    ASSERT_OK(svdb_index_pending(db, &queued));
    printf("rows queued again at open: %zu\n", queued);
    assert_true(recall_vs_model(db, &m, v + n * DIM, nq, 10) >= 0.98);
    ASSERT_OK(svdb_close(db));

    db = open_bg(dir, 0); /* without background indexing everything is linked at open */
    size_t pending = 1;
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_int_equal(pending, 0);
    ASSERT_OK(svdb_index_wait(db)); /* nothing to wait for */
    assert_true(th_check_db(db, &m, 1));
    assert_true(recall_vs_model(db, &m, v + n * DIM, nq, 10) >= 0.98);
    /* every row is in the graph: each stored vector finds itself */
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 100;
    size_t self = 0;
    for (size_t i = 0; i < n; i += 97) {
        svdb_hit *h;
        size_t nh;
        ASSERT_OK(svdb_search(db, v + i * DIM, DIM, 1, &so, &h, &nh));
        char id[24];
        snprintf(id, sizeof id, "r%zu", i);
        self += nh == 1 && strcmp(h[0].id, id) == 0;
        svdb_hits_free(h);
    }
    assert_true(self >= (n / 97) * 99 / 100);
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    free(v);
    th_rmrf(dir);
    free(dir);
}

typedef struct {
    svdb *db;
    const float *qs;
    int stop;
    int failures;
    size_t searches;
} searcher_arg;

static void *search_loop(void *arg)
{
    searcher_arg *a = arg;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        svdb_hit *h;
        size_t nh;
        if (svdb_search(a->db, a->qs + (a->searches % 20) * DIM, DIM, 5, NULL, &h, &nh) != SVDB_OK) a->failures++;
        svdb_hits_free(h);
        a->searches++;
    }
    return NULL;
}

/* Searches, writes and the indexer at once (TSan runs this too). */
static void test_background__concurrent_searches(void **state)
{
    (void)state;
    char *dir = th_tmpdir("bg_conc");
    svdb *db = open_bg(dir, 1);
    size_t n = 4000;
    float *v = malloc((n + 20) * DIM * sizeof *v);
    th_random(v, (n + 20) * DIM, 13);
    put_rows(db, NULL, v, 0, 100, 0);
    searcher_arg a = {db, v + n * DIM, 0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, search_loop, &a), 0);
    for (size_t b = 100; b < n; b += 300) put_rows(db, NULL, v, b, b + 300 < n ? b + 300 : n, 0);
    ASSERT_OK(svdb_index_wait(db));
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    assert_int_equal(a.failures, 0);
    assert_true(a.searches > 0);
    size_t count;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, n);
    ASSERT_OK(svdb_close(db));
    free(v);
    th_rmrf(dir);
    free(dir);
}

/* Each stored vector of rows [0, n) finds itself as its nearest row. */
static void assert_all_found(svdb *db, const float *v, size_t n)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 200;
    for (size_t i = 0; i < n; i++) {
        svdb_hit *h;
        size_t nh;
        char id[24];
        snprintf(id, sizeof id, "r%zu", i);
        ASSERT_OK(svdb_search(db, v + i * DIM, DIM, 1, &so, &h, &nh));
        assert_int_equal(nh, 1);
        if (strcmp(h[0].id, id) != 0) printf("row %s: nearest is %s at %g\n", id, h[0].id, h[0].distance);
        assert_string_equal(h[0].id, id);
        svdb_hits_free(h);
    }
}

/* Out of memory while the indexer links: the rows it could not link stay
 * queued and found, svdb_index_wait reports the failure, writes are refused,
 * and a reopen links everything. The n-th allocation of the linking fails,
 * for each n until linking gets through. */
static void test_background__link_failure(void **state)
{
    (void)state;
    size_t n = 600;
    float *v = malloc(n * DIM * sizeof *v);
    th_random(v, n * DIM, 17);
    int failed = 0, passed = 0;
    for (long k = 1; !passed && k < 200; k++) {
        char *dir = th_tmpdir("bg_fail");
        svdb *db = open_bg_threads(dir, 1, 1); /* one thread: the allocations come in a fixed order */
        put_rows(db, NULL, v, 0, n / 2, 0);
        ASSERT_OK(svdb_index_wait(db));
        svdb_indexer *ix = svdb__indexer_of(db);
        svdb__indexer_pause(ix, 1);
        put_rows(db, NULL, v, n / 2, n, 0);
        /* only the indexer allocates from here until the wait returns */
        svdb__alloc_fail_after(k);
        svdb__indexer_pause(ix, 0);
        int rc = svdb_index_wait(db);
        svdb__alloc_fail_after(0);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        size_t pending, count;
        ASSERT_OK(svdb_index_pending(db, &pending));
        if (rc == SVDB_OK) {
            passed = 1;
            assert_int_equal(pending, 0);
        } else {
            failed++;
            assert_int_equal(rc, SVDB_ENOMEM);
            assert_non_null(strstr(msg, "background indexing stopped: out of memory"));
            assert_true(pending > 0);
            ASSERT_FAILS(svdb_index_wait(db), SVDB_ENOMEM); /* stays failed */
            float x[DIM] = {1};
            const char *id = "extra", *gone = "r0";
            ASSERT_FAILS(svdb_add_batch(db, 1, &id, x, DIM, NULL), SVDB_EREADONLY);
            ASSERT_FAILS(svdb_delete(db, 1, &gone, NULL), SVDB_EREADONLY);
        }
        assert_all_found(db, v, n); /* linked or still queued */
        ASSERT_OK(svdb_count(db, &count));
        assert_int_equal(count, n);
        ASSERT_OK(svdb_close(db));
        db = open_bg(dir, 0); /* links what is left before returning */
        ASSERT_OK(svdb_index_pending(db, &pending));
        assert_int_equal(pending, 0);
        assert_all_found(db, v, n);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
    printf("linking failed at %d allocation points, then got through\n", failed);
    assert_true(failed > 0 && passed);
    free(v);
}

/* Rows linked on two threads are all reachable. A node being inserted has no
 * links yet on its lower levels; a concurrent insert that started its next
 * level's search from such a node found nothing else, linked only to it, and
 * lost even that link when the node then wrote its own list (about 1 row in
 * 500 was unreachable). Both linking paths are checked: in the write
 * (synchronous) and on the indexer thread. */
static void test_background__parallel_linking_reaches_every_row(void **state)
{
    (void)state;
    size_t n = 600;
    float *v = malloc(n * DIM * sizeof *v);
    for (unsigned seed = 0; seed < 12; seed++) {
        th_random(v, n * DIM, 100 + seed);
        char *dir = th_tmpdir("bg_par");
        svdb *db = open_bg_threads(dir, (int)(seed & 1), 2);
        put_rows(db, NULL, v, 0, n / 2, 0); /* 300 rows: linked in parallel after the first 64 */
        put_rows(db, NULL, v, n / 2, n, 0);
        ASSERT_OK(svdb_index_wait(db));
        assert_all_found(db, v, n);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
    free(v);
}

/* ---- Exact scans of waiting rows: runs of consecutive slots crossing
 * store chunks, holes, requeued and reused slots. WDIM = 512 gives chunks
 * of 2048 rows (about 4 MiB each). Row i has id "w<i>"; the test keeps
 * what each row holds and whether it waits. */
#define WDIM 512
#define WROWS 5000

typedef struct {
    svdb *db;
    float *vec; /* WROWS x WDIM: each row's current vector */
    int *live, *waiting;
} wset;

static void w_put(wset *w, size_t i, const float *v, int upsert)
{
    char id[24];
    const char *p = id;
    snprintf(id, sizeof id, "w%zu", i);
    int rc = upsert ? svdb_upsert_batch(w->db, 1, &p, v, WDIM, NULL) : svdb_add_batch(w->db, 1, &p, v, WDIM, NULL);
    ASSERT_OK(rc);
    memcpy(w->vec + i * WDIM, v, WDIM * sizeof *v);
    w->live[i] = 1;
}

static void w_put_range(wset *w, size_t from, size_t to, const float *v)
{
    size_t cnt = to - from;
    char **ids = calloc(cnt, sizeof *ids);
    for (size_t i = 0; i < cnt; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "w%zu", from + i);
        w->live[from + i] = 1;
    }
    ASSERT_OK(svdb_add_batch(w->db, cnt, (const char *const *)ids, v, WDIM, NULL));
    memcpy(w->vec + from * WDIM, v, cnt * WDIM * sizeof *v);
    for (size_t i = 0; i < cnt; i++) free(ids[i]);
    free(ids);
}

static void w_del(wset *w, size_t i)
{
    char id[24];
    const char *p = id;
    size_t nd;
    snprintf(id, sizeof id, "w%zu", i);
    ASSERT_OK(svdb_delete(w->db, 1, &p, &nd));
    assert_int_equal(nd, 1);
    w->live[i] = 0;
    w->waiting[i] = 0;
}

static float wl2(const float *a, const float *b)
{
    float s = 0;
    for (int d = 0; d < WDIM; d++) s += (a[d] - b[d]) * (a[d] - b[d]);
    return s;
}

/* Checks one search's hits: distinct ids, each a live row at its true
 * distance, sorted; and every waiting row among the true k nearest is
 * there (the walk may miss a linked row, never a waiting one). */
static void w_check_hits(const wset *w, const float *q, size_t k, const svdb_hit *h, size_t nh)
{
    float *d = malloc(WROWS * sizeof *d);
    size_t live = 0;
    for (size_t i = 0; i < WROWS; i++) {
        d[i] = w->live[i] ? wl2(q, w->vec + i * WDIM) : __builtin_inff();
        live += (size_t)w->live[i];
    }
    assert_int_equal(nh, k < live ? k : live);
    int *seen = calloc(WROWS, sizeof *seen);
    for (size_t j = 0; j < nh; j++) {
        size_t i = strtoul(h[j].id + 1, NULL, 10);
        assert_true(i < WROWS && w->live[i]);
        assert_int_equal(seen[i], 0); /* no row twice */
        seen[i] = 1;
        assert_true(fabsf(h[j].distance - d[i]) <= 1e-3f * (1.0f + d[i]));
        if (j) assert_true(h[j].distance >= h[j - 1].distance);
    }
    float kth = nh ? h[nh - 1].distance : __builtin_inff();
    for (size_t i = 0; i < WROWS; i++) /* a waiting row nearer than the last hit is a hit */
        if (w->waiting[i] && d[i] < kth * (1.0f - 1e-4f)) assert_int_equal(seen[i], 1);
    free(seen);
    free(d);
}

static void w_search_check(const wset *w, const float *q, size_t k)
{
    svdb_hit *h;
    size_t nh;
    ASSERT_OK(svdb_search(w->db, q, WDIM, k, NULL, &h, &nh));
    w_check_hits(w, q, k, h, nh);
    svdb_hits_free(h);
}

/* Rows waiting to be linked are scanned exactly (in runs across chunk
 * boundaries, around holes, and one by one) beside the walk, each at most
 * once; deletes and upserts of waiting and linked rows are seen at once;
 * and searches running while the indexer links never return a row twice. */
static void test_background__waiting_rows_scanned_exactly(void **state)
{
    (void)state;
    char *dir = th_tmpdir("bg_exact");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.dim = WDIM;
    o.background_indexing = 1;
    o.build_threads = 2;
    wset w = {NULL, malloc((size_t)WROWS * WDIM * sizeof(float)), calloc(WROWS, sizeof(int)),
              calloc(WROWS, sizeof(int))};
    ASSERT_OK(svdb_open(&w.db, dir, &o));
    size_t nq = 24;
    float *v = malloc((size_t)WROWS * WDIM * sizeof *v), *qs = malloc(nq * WDIM * sizeof *qs);
    th_random(v, (size_t)WROWS * WDIM, 41);
    th_random(qs, nq * WDIM, 42);
    w_put_range(&w, 0, 1000, v); /* linked */
    ASSERT_OK(svdb_index_wait(w.db));
    svdb_indexer *ix = svdb__indexer_of(w.db);
    svdb__indexer_pause(ix, 1);
    w_put_range(&w, 1000, 4800, v + (size_t)1000 * WDIM); /* slots 1000..4799 wait: chunks end at 2048, 4096 */
    for (size_t i = 1000; i < 4800; i++) w.waiting[i] = 1;
    for (size_t i = 1500; i < 4800; i += 97) w_del(&w, i); /* holes in the runs */
    for (size_t i = 2040; i < 2056; i += 3) w_del(&w, i); /* short runs at a chunk boundary */
    float *nv = malloc(WDIM * sizeof *nv);
    for (size_t i = 0; i < 40; i++) { /* replaced: linked rows requeued, waiting rows rewritten */
        size_t r = i < 20 ? i * 37 : 1001 + i * 50;
        th_random(nv, WDIM, 500 + (unsigned)i);
        w_put(&w, r, nv, 1);
        w.waiting[r] = 1;
    }
    for (size_t i = 4800; i < 4810; i++) { /* new rows in freed slots, queued out of order */
        th_random(nv, WDIM, 900 + (unsigned)i);
        w_put(&w, i, nv, 0);
        w.waiting[i] = 1;
    }
    size_t pending, want = 0;
    for (size_t i = 0; i < WROWS; i++) want += (size_t)(w.waiting[i] && w.live[i]);
    ASSERT_OK(svdb_index_pending(w.db, &pending));
    assert_int_equal(pending, want);
    for (size_t j = 0; j < nq; j++) w_search_check(&w, qs + j * WDIM, 10);
    for (size_t i = 0; i < WROWS; i += 211) /* each waiting row finds itself */
        if (w.live[i]) w_search_check(&w, w.vec + i * WDIM, 3);

    /* An id allow-list is scored by the same scan, exactly: a long run of
     * consecutive slots, scattered ids, a deleted one and a missing one. */
    size_t n_ids = 0;
    char **ids = malloc(3000 * sizeof *ids);
    for (size_t i = 0; i < WROWS && n_ids < 2998; i += i < 2500 ? 1 : 7) {
        ids[n_ids] = malloc(24);
        snprintf(ids[n_ids++], 24, "w%zu", i);
    }
    ids[n_ids++] = strdup("w1500"); /* deleted */
    ids[n_ids++] = strdup("nope");
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ids = (const char *const *)ids;
    so.n_ids = n_ids;
    wset allowed = w; /* the allowed rows only, all compared exactly */
    allowed.live = calloc(WROWS, sizeof(int));
    allowed.waiting = allowed.live;
    for (size_t j = 0; j + 2 < n_ids; j++) {
        size_t i = strtoul(ids[j] + 1, NULL, 10);
        allowed.live[i] = w.live[i];
    }
    for (size_t j = 0; j < 8; j++) {
        svdb_hit *h;
        size_t nh;
        ASSERT_OK(svdb_search(w.db, qs + j * WDIM, WDIM, 15, &so, &h, &nh));
        w_check_hits(&allowed, qs + j * WDIM, 15, h, nh);
        svdb_hits_free(h);
    }
    free(allowed.live);
    for (size_t j = 0; j < n_ids; j++) free(ids[j]);
    free(ids);

    /* While the indexer links: no row twice, every row at its distance. */
    svdb__indexer_pause(ix, 0);
    memset(w.waiting, 0, WROWS * sizeof(int)); /* which rows still wait is unknown now */
    size_t rounds = 0;
    do {
        ASSERT_OK(svdb_index_pending(w.db, &pending));
        w_search_check(&w, qs + (rounds % nq) * WDIM, 30);
        rounds++;
    } while (pending > 0 && (!th_slow_tool() || rounds < 12)); /* under valgrind: a dozen checked searches */
    ASSERT_OK(svdb_index_wait(w.db));
    printf("searches while linking: %zu\n", rounds);
    for (size_t i = 0; i < WROWS; i += 89) /* every row linked: each finds itself */
        if (w.live[i]) {
            svdb_hit *h;
            size_t nh;
            ASSERT_OK(svdb_search(w.db, w.vec + i * WDIM, WDIM, 1, NULL, &h, &nh));
            char id[24];
            snprintf(id, sizeof id, "w%zu", i);
            assert_string_equal(h[0].id, id);
            svdb_hits_free(h);
        }
    ASSERT_OK(svdb_close(w.db));
    free(nv);
    free(v);
    free(qs);
    free(w.vec);
    free(w.live);
    free(w.waiting);
    th_rmrf(dir);
    free(dir);
}

/* index_backlog_bytes: a write returns only once at most the bound's rows
 * wait to be linked (adds, upserts and vector updates alike); a paused
 * indexer does not hold writers; older option structs and the default have
 * no bound. */
static void test_background__backlog_bound(void **state)
{
    (void)state;
    const size_t bound = 200, n = th_slow_tool() ? 1200 : 3000, n_up = n / 3;
    char *dir = th_tmpdir("bg_backlog");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    assert_int_equal(o.index_backlog_bytes, 0); /* no bound by default */
    o.index = SVDB_INDEX_HNSW;
    o.dim = DIM;
    o.background_indexing = 1;
    o.index_backlog_bytes = bound * DIM * sizeof(float) + DIM; /* a part of a row counts for nothing */
    svdb *db = NULL;
    ASSERT_OK(svdb_open(&db, dir, &o));
    float *v = malloc(n * DIM * sizeof *v);
    th_random(v, n * DIM, 41);
    th_model m;
    th_model_init(&m, DIM);
    size_t pending;
    for (size_t from = 0; from < n / 2; from += n / 6) {
        size_t to = from + n / 3 > n / 2 ? n / 2 : from + n / 3;
        put_rows(db, &m, v, from, to, from != 0); /* overlapping upserts */
        ASSERT_OK(svdb_index_pending(db, &pending));
        assert_true(pending <= bound);
    }
    /* vector updates queue rows too */
    th_random(v, n_up * DIM, 42);
    const char *ids[1000];
    char names[1000][24];
    for (size_t i = 0; i < n_up; i++) {
        snprintf(names[i], sizeof names[i], "r%zu", i);
        ids[i] = names[i];
        char meta[24]; /* kept: the update gives no metadata */
        snprintf(meta, sizeof meta, "{\"m\": %zu}", i % 10);
        th_model_put(&m, ids[i], v + i * DIM, meta);
    }
    svdb_update_options uo;
    svdb_update_options_init(&uo, SVDB_UPDATE_OPTIONS_VERSION);
    uo.merge_metadata = 1;
    ASSERT_OK(svdb_update_batch(db, n_up, ids, v, DIM, NULL, &uo, NULL));
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_true(pending <= bound);
    /* a paused indexer links nothing: the write must not wait for it */
    svdb_indexer *ix = svdb__indexer_of(db);
    svdb__indexer_pause(ix, 1);
    put_rows(db, &m, v, n / 2, n, 0);
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_true(pending >= n / 2);
    svdb__indexer_pause(ix, 0);
    ASSERT_OK(svdb_index_wait(db));
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    /* a version-5 struct ends before the field: init leaves it alone, and open reads no bound */
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index_backlog_bytes = 12345;
    ASSERT_OK(svdb_open_options_init(&o, 5));
    assert_int_equal(o.index_backlog_bytes, 12345);
    th_model_free(&m);
    free(v);
    free(dir);
}

static void test_background__api_errors(void **state)
{
    (void)state;
    size_t pending = 7;
    ASSERT_FAILS(svdb_index_wait(NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_index_pending(NULL, &pending), SVDB_EMISUSE);
    char *dir = th_tmpdir("bg_err");
    svdb *db = open_bg(dir, 1);
    ASSERT_FAILS(svdb_index_pending(db, NULL), SVDB_EINVAL);
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_int_equal(pending, 0);
    ASSERT_OK(svdb_index_wait(db)); /* empty: returns at once */
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    /* a flat collection has nothing to link: the option is ignored */
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.background_indexing = 1;
    ASSERT_OK(svdb_open(&db, dir, &o));
    float x[DIM] = {1};
    const char *id = "a";
    ASSERT_OK(svdb_add_batch(db, 1, &id, x, DIM, NULL));
    ASSERT_OK(svdb_index_pending(db, &pending));
    assert_int_equal(pending, 0);
    ASSERT_OK(svdb_index_wait(db));
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* ---------------------------------------------------------------- holds
 * Rows another handle wrote wait in the queue while a hold is in force
 * (their links may come in a deferred links record); the handle's own rows
 * do not, and svdb__indexer_wait ends a hold. */

typedef struct fake_engine {
    pthread_mutex_t mu; /* stands for the engine's write lock */
    svdb_indexer *ix;
    uint32_t linked[64];
    size_t n_linked;
} fake_engine;

static int fake_link(void *ctx, uint32_t *chunk, size_t max, int *more)
{
    fake_engine *e = ctx;
    pthread_mutex_lock(&e->mu);
    size_t n = svdb__indexer_pop(e->ix, chunk, max);
    for (size_t i = 0; i < n; i++) e->linked[e->n_linked++] = chunk[i];
    svdb__indexer_chunk_done(e->ix);
    *more = svdb__indexer_ready(e->ix) > 0;
    pthread_mutex_unlock(&e->mu);
    return SVDB_OK;
}

static int fake_empty(void *ctx)
{
    fake_engine *e = ctx;
    pthread_mutex_lock(&e->mu);
    size_t n;
    svdb__indexer_queue(e->ix, &n);
    pthread_mutex_unlock(&e->mu);
    return n == 0;
}

static size_t fake_linked(fake_engine *e)
{
    pthread_mutex_lock(&e->mu);
    size_t n = e->n_linked;
    pthread_mutex_unlock(&e->mu);
    return n;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int keep_odd(void *ctx, uint32_t slot)
{
    (void)ctx;
    return slot & 1;
}

static void test_background__hold(void **state)
{
    (void)state;
    svdb_indexer ix;
    svdb__indexer_init(&ix);
    ASSERT_OK(svdb__indexer_reserve(&ix, 16));
    /* the queue alone: held rows are passed over, in place, while a hold is in force */
    svdb__indexer_push_held(&ix, 1);
    svdb__indexer_push(&ix, 2);
    svdb__indexer_push_held(&ix, 3);
    svdb__indexer_push(&ix, 4);
    svdb__indexer_push_held(&ix, 3); /* queued already: stays where it is */
    assert_int_equal(svdb__indexer_ready(&ix), 4); /* no hold yet */
    svdb__indexer_hold(&ix, 60000);
    assert_int_equal(svdb__indexer_ready(&ix), 2);
    uint32_t out[8];
    assert_int_equal(svdb__indexer_pop(&ix, out, 1), 1);
    assert_int_equal(out[0], 2);
    svdb__indexer_unpop(&ix, 2); /* back in front of the held rows it passed */
    assert_int_equal(svdb__indexer_pop(&ix, out, 8), 2);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 4);
    size_t n;
    const uint32_t *q = svdb__indexer_queue(&ix, &n);
    assert_int_equal(n, 2);
    assert_int_equal(q[0], 1);
    assert_int_equal(q[1], 3);
    assert_int_equal(svdb__indexer_ready(&ix), 0);
    svdb__indexer_push_held(&ix, 6);
    svdb__indexer_retain(&ix, keep_odd, NULL); /* drops 6 */
    q = svdb__indexer_queue(&ix, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ix.n_held, 2);
    svdb__indexer_clear(&ix);
    assert_int_equal(ix.n_held, 0);
    assert_int_equal(ix.backlog, 0);
    svdb__indexer_free(&ix);

    /* with the thread: own rows are linked during a hold, held rows after it */
    fake_engine e = {.n_linked = 0};
    pthread_mutex_init(&e.mu, NULL);
    svdb__indexer_init(&ix);
    e.ix = &ix;
    ASSERT_OK(svdb__indexer_reserve(&ix, 64));
    svdb_indexer_ops ops = {fake_link, fake_empty, NULL, &e};
    svdb__indexer_hold(&ix, 600000);
    pthread_mutex_lock(&e.mu);
    for (uint32_t s = 0; s < 10; s++) svdb__indexer_push_held(&ix, s);
    svdb__indexer_push(&ix, 20);
    pthread_mutex_unlock(&e.mu);
    ASSERT_OK(svdb__indexer_start(&ix, &ops, 1));
    for (int i = 0; i < 10000 && fake_linked(&e) < 1; i++) nap_ms(1);
    nap_ms(50);
    assert_int_equal(fake_linked(&e), 1);
    assert_int_equal(e.linked[0], 20);
    /* svdb__indexer_wait ends the hold: the held rows are linked at once */
    ASSERT_OK(svdb__indexer_wait(&ix));
    assert_int_equal(fake_linked(&e), 11);
    /* a short hold ends by itself */
    svdb__indexer_hold(&ix, 100);
    pthread_mutex_lock(&e.mu);
    for (uint32_t s = 30; s < 35; s++) svdb__indexer_push_held(&ix, s);
    pthread_mutex_unlock(&e.mu);
    svdb__indexer_notify(&ix);
    for (int i = 0; i < 10000 && fake_linked(&e) < 16; i++) nap_ms(1);
    assert_int_equal(fake_linked(&e), 16);
    svdb__indexer_free(&ix);
    pthread_mutex_destroy(&e.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_background__searchable_at_once),
        cmocka_unit_test(test_background__unlinked_rows_survive_reopen),
        cmocka_unit_test(test_background__concurrent_searches),
        cmocka_unit_test(test_background__link_failure),
        cmocka_unit_test(test_background__parallel_linking_reaches_every_row),
        cmocka_unit_test(test_background__waiting_rows_scanned_exactly),
        cmocka_unit_test(test_background__backlog_bound),
        cmocka_unit_test(test_background__api_errors),
        cmocka_unit_test(test_background__hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
