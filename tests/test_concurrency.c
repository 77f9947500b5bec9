/* Threads: searches running while another thread writes must see every
 * batch wholly or not at all; error messages are per thread. */
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

#include "helpers.h"
#include "svdb.h"

enum { B = 8, D = 16, ITERS = 400, READERS = 3, MAX_BATCHES = ITERS + 1 };

typedef struct shared {
    svdb *db;
    int metric;
    float eps;           /* distance of a row to its own vector */
    unsigned keys;       /* vectors handed out so far (atomic) */
    int done;            /* writer finished (atomic) */
    int writer_rc;
    long violations;     /* (atomic) */
    long searches;       /* (atomic) */
} shared;

static void key_vector(unsigned key, float *v) { th_random(v, D, 7919u * key + 13u); }

static void *writer(void *arg)
{
    shared *s = arg;
    uint64_t rng = 12345;
    int live[MAX_BATCHES] = {0};
    unsigned n_batches = 0;
    char idbuf[B][32];
    const char *ids[B];
    float v[B * D];
    for (int it = 0; it < ITERS && s->writer_rc == SVDB_OK; it++) {
        unsigned r = th_randn(&rng, 10);
        int rc = SVDB_OK;
        unsigned target = n_batches ? th_randn(&rng, n_batches) : 0;
        if (r < 5 || n_batches == 0 || (!live[target] && r < 8)) {
            unsigned b = n_batches++;
            unsigned key = __atomic_fetch_add(&s->keys, 1, __ATOMIC_SEQ_CST);
            for (int i = 0; i < B; i++) {
                snprintf(idbuf[i], sizeof idbuf[i], "b%u_%d", b, i);
                ids[i] = idbuf[i];
                key_vector(key, v + i * D);
            }
            rc = svdb_add_batch(s->db, B, ids, v, D, NULL);
            live[b] = 1;
        } else if (r < 8) {
            unsigned key = __atomic_fetch_add(&s->keys, 1, __ATOMIC_SEQ_CST);
            for (int i = 0; i < B; i++) {
                snprintf(idbuf[i], sizeof idbuf[i], "b%u_%d", target, i);
                ids[i] = idbuf[i];
                key_vector(key, v + i * D);
            }
            rc = svdb_upsert_batch(s->db, B, ids, v, D, NULL);
        } else if (r < 9 && live[target]) {
            for (int i = 0; i < B; i++) {
                snprintf(idbuf[i], sizeof idbuf[i], "b%u_%d", target, i);
                ids[i] = idbuf[i];
            }
            size_t nd = 0;
            rc = svdb_delete(s->db, B, ids, &nd);
            if (rc == SVDB_OK && nd != B) rc = -1000;
            live[target] = 0;
        } else {
            rc = svdb_persist(s->db);
        }
        if (rc != SVDB_OK) {
            fprintf(stderr, "writer: %d %s\n", rc, svdb_errmsg());
            s->writer_rc = rc;
        }
    }
    __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The hits of one query at distance 0 must be a whole batch or nothing. */
static int check_hits(const svdb_hit *h, size_t n, float eps)
{
    size_t zero = 0;
    const char *first = NULL;
    size_t plen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(h[i].distance <= eps)) continue;
        zero++;
        const char *us = strchr(h[i].id, '_');
        if (!us) return 0;
        if (!first) {
            first = h[i].id;
            plen = (size_t)(us - h[i].id);
        } else if ((size_t)(us - h[i].id) != plen || strncmp(first, h[i].id, plen) != 0) {
            return 0;
        }
    }
    return zero == 0 || zero == B;
}

static void *reader(void *arg)
{
    shared *s = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    float q[3 * D];
    while (!__atomic_load_n(&s->done, __ATOMIC_SEQ_CST)) {
        unsigned keys = __atomic_load_n(&s->keys, __ATOMIC_SEQ_CST);
        if (!keys) continue;
        unsigned r = th_randn(&rng, 10);
        svdb_hit *hits = NULL;
        int bad = 0;
        if (r < 6) {
            key_vector(th_randn(&rng, keys), q);
            size_t n;
            svdb_search_options so1;
            svdb_search_options_init(&so1, SVDB_SEARCH_OPTIONS_VERSION);
            so1.ef = 256; /* HNSW: wide enough to find a whole batch of equal vectors */
            int rc = svdb_search(s->db, q, D, B + th_randn(&rng, 4), &so1, &hits, &n);
            bad = rc != SVDB_OK || !check_hits(hits, n, s->eps);
        } else if (r < 8) {
            for (int j = 0; j < 3; j++) key_vector(th_randn(&rng, keys), q + j * D);
            svdb_search_options so;
            svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
            so.threads = 2;
            so.ef = 256;
            size_t nh[3];
            int rc = svdb_search_batch(s->db, 3, q, D, B, &so, &hits, nh);
            bad = rc != SVDB_OK;
            for (size_t j = 0, off = 0; !bad && j < 3; off += nh[j], j++) bad = !check_hits(hits + off, nh[j], s->eps);
        } else {
            size_t c;
            char **ids;
            size_t n;
            bad = svdb_count(s->db, &c) != SVDB_OK || c % B != 0;
            if (!bad) {
                bad = svdb_ids(s->db, &ids, &n) != SVDB_OK || n % B != 0;
                if (!bad) svdb_ids_free(ids);
            }
        }
        svdb_hits_free(hits);
        if (bad) {
            fprintf(stderr, "reader: inconsistent result (%s)\n", svdb_errmsg());
            __atomic_fetch_add(&s->violations, 1, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&s->searches, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void test_concurrency__search_during_writes(void **state)
{
    (void)state;
    /* flat L2, flat cosine, and HNSW with int8 storage, whose checkpoints
     * move every row's original from the log to the new snapshot while
     * searches read them */
    const int metrics[] = {SVDB_METRIC_L2, SVDB_METRIC_COSINE, SVDB_METRIC_L2};
    for (int mi = 0; mi < 3; mi++) {
        char *dir = th_tmpdir("conc");
        shared s = {0};
        s.metric = metrics[mi];
        s.eps = s.metric == SVDB_METRIC_L2 ? 0.0f : 1e-5f;
        if (mi < 2) {
            ASSERT_OK(th_open(&s.db, dir, 0, s.metric, 0));
        } else {
            svdb_open_options o;
            svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
            o.index = SVDB_INDEX_HNSW;
            o.storage = SVDB_STORAGE_INT8;
            o.metric = s.metric;
            ASSERT_OK(svdb_open(&s.db, dir, &o));
        }
        pthread_t w, r[READERS];
        for (int i = 0; i < READERS; i++) assert_int_equal(pthread_create(&r[i], NULL, reader, &s), 0);
        assert_int_equal(pthread_create(&w, NULL, writer, &s), 0);
        pthread_join(w, NULL);
        for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
        assert_int_equal(s.writer_rc, SVDB_OK);
        assert_int_equal(s.violations, 0);
        assert_true(s.searches > 0);
        ASSERT_OK(svdb_close(s.db));
        th_rmrf(dir);
        free(dir);
    }
}

/* ------------------------------------------------------------------ per-thread messages */

typedef struct msg_ctx {
    svdb *db;
    pthread_barrier_t *bar;
    int which;
    int ok;
} msg_ctx;

static void *msg_thread(void *arg)
{
    msg_ctx *c = arg;
    float q[5] = {1, 2, 3, 4, 5};
    char want[512];
    int ok = 1;
    for (int round = 0; round < 200; round++) {
        int rc;
        if (c->which == 0) {
            svdb_hit *h;
            size_t n;
            rc = svdb_search(c->db, q, 5, 1, NULL, &h, &n); /* EDIM */
            ok &= rc == SVDB_EDIM;
        } else if (c->which == 1) {
            rc = svdb_get(c->db, "no-such-id", NULL, 0, NULL); /* ENOTFOUND */
            ok &= rc == SVDB_ENOTFOUND;
        } else {
            size_t n;
            rc = svdb_count(c->db, &n); /* success: empty message */
            ok &= rc == SVDB_OK;
        }
        snprintf(want, sizeof want, "%s", svdb_errmsg());
        ok &= (c->which == 2) == (want[0] == '\0');
        pthread_barrier_wait(c->bar); /* every thread has set its message */
        pthread_barrier_wait(c->bar);
        ok &= strcmp(want, svdb_errmsg()) == 0;
        if (c->which == 0) ok &= strstr(svdb_errmsg(), "dimension") != NULL;
        if (c->which == 1) ok &= strstr(svdb_errmsg(), "no-such-id") != NULL;
    }
    c->ok = ok;
    return NULL;
}

static void test_concurrency__errmsg_is_per_thread(void **state)
{
    (void)state;
    char *dir = th_tmpdir("conc-msg");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    const char *ids[] = {"a"};
    float v[3] = {1, 2, 3};
    ASSERT_OK(svdb_add_batch(db, 1, ids, v, 3, NULL));
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 3);
    msg_ctx c[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (msg_ctx){db, &bar, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, msg_thread, &c[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) assert_int_equal(c[i].ok, 1);
    /* This thread's message was never touched by the others. */
    pthread_barrier_destroy(&bar);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* Many threads searching one handle agree with a single-threaded answer. */
typedef struct agree_ctx {
    svdb *db;
    const float *q;
    const svdb_hit *ref;
    size_t nref;
    int ok;
} agree_ctx;

static void *agree_thread(void *arg)
{
    agree_ctx *c = arg;
    c->ok = 1;
    for (int i = 0; i < 50; i++) {
        svdb_hit *h;
        size_t n;
        if (svdb_search(c->db, c->q, D, 10, NULL, &h, &n) != SVDB_OK || n != c->nref) {
            c->ok = 0;
            return NULL;
        }
        for (size_t j = 0; j < n; j++)
            if (strcmp(h[j].id, c->ref[j].id) != 0 || h[j].distance != c->ref[j].distance) c->ok = 0;
        svdb_hits_free(h);
    }
    return NULL;
}

static void test_concurrency__parallel_readers_agree(void **state)
{
    (void)state;
    char *dir = th_tmpdir("conc-agree");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    enum { N = 3000 };
    float *v = malloc(N * D * sizeof(float));
    th_random(v, N * D, 3);
    char **ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) assert_true(asprintf(&ids[i], "r%d", i) > 0);
    ASSERT_OK(svdb_add_batch(db, N, (const char *const *)ids, v, D, NULL));
    float q[D];
    th_random(q, D, 4);
    svdb_hit *ref;
    size_t nref;
    ASSERT_OK(svdb_search(db, q, D, 10, NULL, &ref, &nref));
    agree_ctx c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (agree_ctx){db, q, ref, nref, 0};
        assert_int_equal(pthread_create(&t[i], NULL, agree_thread, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(c[i].ok, 1);
    svdb_hits_free(ref);
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
        cmocka_unit_test(test_concurrency__search_during_writes),
        cmocka_unit_test(test_concurrency__errmsg_is_per_thread),
        cmocka_unit_test(test_concurrency__parallel_readers_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
