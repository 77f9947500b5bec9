/* svdb_close racing other calls on the same handle: a call either completes
 * before close frees the collection or fails with SVDB_EMISUSE; close waits
 * for the calls in flight; concurrent closes close once; a progress handler
 * that closes its own handle is refused instead of deadlocking. Run under
 * ThreadSanitizer too (scripts/run_tests.sh). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "progress.h"
#include "svdb.h"

#define DIM 16
#define CLOSED_MSG "database handle is closed or invalid"

static svdb *open_filled(const char *dir, int index, size_t n)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.hnsw_ef_construction = 40;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    float *v = malloc(n * DIM * sizeof(float));
    char **ids = malloc(n * sizeof(char *));
    th_random(v, n * DIM, 3);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "r%zu", i);
    }
    assert_int_equal(svdb_add_batch(db, n, (const char *const *)ids, v, DIM, NULL), SVDB_OK);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(v);
    return db;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- many threads calling while another closes */

enum { HAMMERS = 4 };

typedef struct hammer {
    svdb *db;
    int kind;       /* 0 search, 1 count, 2 upsert, 3 get */
    long ok;        /* calls that succeeded (atomic) */
    long refused;   /* calls refused as closed */
    int bad;        /* any other status, or a success after a refusal */
    char badmsg[256];
} hammer;

static int one_call(hammer *h, unsigned i)
{
    float q[DIM];
    th_random(q, DIM, i);
    switch (h->kind) {
    case 0: {
        svdb_hit *hits;
        size_t n;
        int rc = svdb_search(h->db, q, DIM, 5, NULL, &hits, &n);
        if (rc == SVDB_OK) {
            if (n != 5 || (hits[0].id[0] != 'r' && hits[0].id[0] != 'w')) rc = 1000; /* the hits are readable */
            svdb_hits_free(hits);
        }
        return rc;
    }
    case 1: {
        size_t n;
        int rc = svdb_count(h->db, &n);
        return rc == SVDB_OK && n < 200 ? 1000 : rc;
    }
    case 2: {
        char id[32];
        snprintf(id, sizeof id, "w%u", i % 50);
        const char *ids[1] = {id};
        return svdb_upsert_batch(h->db, 1, ids, q, DIM, NULL);
    }
    default: {
        float v[DIM];
        return svdb_get(h->db, "r7", v, DIM, NULL);
    }
    }
}

static void *hammer_thread(void *arg)
{
    hammer *h = arg;
    for (unsigned i = 0;; i++) {
        int rc = one_call(h, i);
        if (rc == SVDB_OK) {
            if (h->refused) { /* a closed handle never answers again */
                h->bad = 1;
                snprintf(h->badmsg, sizeof h->badmsg, "call %u succeeded after a refusal", i);
                return NULL;
            }
            __atomic_add_fetch(&h->ok, 1, __ATOMIC_SEQ_CST);
        } else if (rc == SVDB_EMISUSE && strcmp(svdb_errmsg(), CLOSED_MSG) == 0) {
            if (++h->refused >= 50) return NULL; /* keep calling a while: the token stays dead */
        } else {
            h->bad = 1;
            snprintf(h->badmsg, sizeof h->badmsg, "kind %d call %u: status %d (%s)", h->kind, i, rc, svdb_errmsg());
            return NULL;
        }
    }
}

static void close_while_calling(int index)
{
    int rounds = th_slow_tool() ? 3 : 20;
    for (int r = 0; r < rounds; r++) {
        char *dir = th_tmpdir("close-race");
        svdb *db = open_filled(dir, index, 300);
        hammer h[HAMMERS];
        pthread_t t[HAMMERS];
        for (int i = 0; i < HAMMERS; i++) {
            memset(&h[i], 0, sizeof h[i]);
            h[i].db = db;
            h[i].kind = i;
            assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
        }
        /* close once every thread is busy; round r waits a little longer */
        for (int i = 0; i < HAMMERS; i++)
            while (__atomic_load_n(&h[i].ok, __ATOMIC_SEQ_CST) < 3 + r) sleep_ms(1);
        assert_int_equal(svdb_close(db), SVDB_OK);
        size_t n;
        assert_int_equal(svdb_count(db, &n), SVDB_EMISUSE); /* at once, in this thread too */
        assert_string_equal(svdb_errmsg(), CLOSED_MSG);
        for (int i = 0; i < HAMMERS; i++) {
            pthread_join(t[i], NULL);
            if (h[i].bad) fail_msg("%s", h[i].badmsg);
            assert_int_equal(h[i].refused, 50);
        }
        /* what the upserts committed before close was kept */
        db = NULL;
        svdb_open_options o;
        svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
        o.create = 0;
        assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
        assert_int_equal(svdb_count(db, &n), SVDB_OK);
        assert_true(n >= 300 && n <= 350);
        assert_int_equal(svdb_close(db), SVDB_OK);
        th_rmrf(dir);
        free(dir);
    }
}

static void test_close_race__flat(void **state)
{
    (void)state;
    close_while_calling(SVDB_INDEX_FLAT);
}

static void test_close_race__hnsw(void **state)
{
    (void)state;
    close_while_calling(SVDB_INDEX_HNSW);
}

/* ---- concurrent closes: one closes, the others are refused */

typedef struct closer {
    svdb *db;
    int *go;
    int rc;
} closer;

static void *close_thread(void *arg)
{
    closer *c = arg;
    while (!__atomic_load_n(c->go, __ATOMIC_SEQ_CST)) {
    }
    c->rc = svdb_close(c->db);
    return NULL;
}

static void test_close_race__concurrent_closes(void **state)
{
    (void)state;
    for (int r = 0; r < 10; r++) {
        char *dir = th_tmpdir("close-twice");
        svdb *db = open_filled(dir, SVDB_INDEX_FLAT, 10);
        int go = 0;
        closer c[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            c[i] = (closer){db, &go, 99};
            assert_int_equal(pthread_create(&t[i], NULL, close_thread, &c[i]), 0);
        }
        __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
        int ok = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            assert_true(c[i].rc == SVDB_OK || c[i].rc == SVDB_EMISUSE);
            ok += c[i].rc == SVDB_OK;
        }
        assert_int_equal(ok, 1);
        assert_int_equal(svdb_close(db), SVDB_EMISUSE);
        th_rmrf(dir);
        free(dir);
    }
}

/* ---- a stale token never reaches the handle that reuses its slot */

static void test_close_race__stale_token_after_reuse(void **state)
{
    (void)state;
    char *dir = th_tmpdir("close-reuse");
    svdb *old = open_filled(dir, SVDB_INDEX_FLAT, 5);
    assert_int_equal(svdb_close(old), SVDB_OK);
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK); /* most likely the same slot, a new generation */
    size_t n;
    assert_int_equal(svdb_count(old, &n), SVDB_EMISUSE);
    assert_int_equal(svdb_close(old), SVDB_EMISUSE);
    assert_int_equal(svdb_count(db, &n), SVDB_OK); /* the refused calls left the new handle alone */
    assert_int_equal(n, 5);
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
}

/* ---- close waits for a call in flight */

typedef struct slow_add {
    svdb *db;
    int in_handler, release, add_done, rc;
    size_t rows;
} slow_add;

static int holding_handler(void *ctx, int op, uint64_t done, uint64_t total)
{
    slow_add *s = ctx;
    (void)op, (void)done, (void)total;
    if (!__atomic_exchange_n(&s->in_handler, 1, __ATOMIC_SEQ_CST))
        while (!__atomic_load_n(&s->release, __ATOMIC_SEQ_CST)) sleep_ms(1);
    return 0;
}

static void *slow_add_thread(void *arg)
{
    slow_add *s = arg;
    float *v = malloc(s->rows * DIM * sizeof(float));
    char **ids = malloc(s->rows * sizeof(char *));
    th_random(v, s->rows * DIM, 9);
    for (size_t i = 0; i < s->rows; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "s%zu", i);
    }
    s->rc = svdb_add_batch(s->db, s->rows, (const char *const *)ids, v, DIM, NULL);
    __atomic_store_n(&s->add_done, 1, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < s->rows; i++) free(ids[i]);
    free(ids);
    free(v);
    return NULL;
}

static void *close_after(void *arg)
{
    closer *c = arg;
    c->rc = svdb_close(c->db);
    __atomic_store_n(c->go, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_close_race__close_waits_for_calls_in_flight(void **state)
{
    (void)state;
    char *dir = th_tmpdir("close-waits");
    svdb *db = open_filled(dir, SVDB_INDEX_HNSW, 10);
    uint64_t saved = svdb__progress_interval_ns;
    svdb__progress_interval_ns = 0; /* report at every chance */
    slow_add s = {.db = db, .rows = 2000};
    assert_int_equal(svdb_progress_handler(db, holding_handler, &s), SVDB_OK);
    pthread_t adder, cl;
    assert_int_equal(pthread_create(&adder, NULL, slow_add_thread, &s), 0);
    while (!__atomic_load_n(&s.in_handler, __ATOMIC_SEQ_CST)) sleep_ms(1);
    int closed = 0;
    closer c = {db, &closed, 99};
    assert_int_equal(pthread_create(&cl, NULL, close_after, &c), 0);
    /* once close has begun, new calls are refused, though the add still runs */
    size_t n;
    int rc;
    while ((rc = svdb_count(db, &n)) == SVDB_OK) sleep_ms(1);
    assert_int_equal(rc, SVDB_EMISUSE);
    sleep_ms(50);
    assert_int_equal(__atomic_load_n(&closed, __ATOMIC_SEQ_CST), 0); /* close waits for the add */
    assert_int_equal(__atomic_load_n(&s.add_done, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&s.release, 1, __ATOMIC_SEQ_CST);
    pthread_join(adder, NULL);
    pthread_join(cl, NULL);
    assert_int_equal(s.rc, SVDB_OK); /* the call in flight completed */
    assert_int_equal(c.rc, SVDB_OK);
    svdb__progress_interval_ns = saved;
    /* and its rows are in the collection */
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    assert_int_equal(svdb_count(db, &n), SVDB_OK);
    assert_int_equal(n, 10 + s.rows);
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
}

/* ---- a progress handler closing its own handle is refused */

typedef struct self_closer {
    svdb *db;
    int calls, close_rc;
    char msg[256];
} self_closer;

static int closing_handler(void *ctx, int op, uint64_t done, uint64_t total)
{
    self_closer *s = ctx;
    (void)op, (void)done, (void)total;
    if (s->calls++ == 0) {
        s->close_rc = svdb_close(s->db);
        snprintf(s->msg, sizeof s->msg, "%s", svdb_errmsg());
    }
    return 0;
}

static void test_close_race__handler_closing_its_handle(void **state)
{
    (void)state;
    char *dir = th_tmpdir("close-self");
    svdb *db = open_filled(dir, SVDB_INDEX_HNSW, 10);
    uint64_t saved = svdb__progress_interval_ns;
    svdb__progress_interval_ns = 0;
    self_closer s = {db, 0, 99, ""};
    assert_int_equal(svdb_progress_handler(db, closing_handler, &s), SVDB_OK);
    enum { N = 200 };
    float v[N * DIM];
    char idbuf[N][16];
    const char *ids[N];
    th_random(v, N * DIM, 5);
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "h%d", i);
        ids[i] = idbuf[i];
    }
    assert_int_equal(svdb_add_batch(db, N, ids, v, DIM, NULL), SVDB_OK); /* the outer call is unharmed */
    assert_true(s.calls > 0);
    assert_int_equal(s.close_rc, SVDB_EMISUSE);
    assert_non_null(strstr(s.msg, "from inside another call on the same handle"));
    size_t n;
    assert_int_equal(svdb_count(db, &n), SVDB_OK); /* still open */
    assert_int_equal(n, 10 + N);
    /* during close's own checkpoint, a handler's close finds the handle closing */
    s.calls = 0;
    s.close_rc = 99;
    assert_int_equal(svdb_close(db), SVDB_OK);
    if (s.calls) {
        assert_int_equal(s.close_rc, SVDB_EMISUSE);
        assert_string_equal(s.msg, CLOSED_MSG);
    }
    svdb__progress_interval_ns = saved;
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_race__flat),
        cmocka_unit_test(test_close_race__hnsw),
        cmocka_unit_test(test_close_race__concurrent_closes),
        cmocka_unit_test(test_close_race__stale_token_after_reuse),
        cmocka_unit_test(test_close_race__close_waits_for_calls_in_flight),
        cmocka_unit_test(test_close_race__handler_closing_its_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
