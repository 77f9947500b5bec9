/* Crash safety: a child process writes to a collection and reports each
 * acknowledged operation through a pipe; the parent SIGKILLs it at a random
 * moment, reopens, and checks that every acknowledged write is there, every
 * acknowledged delete is gone, and the batch in flight is wholly applied or
 * wholly absent. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

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

static void write_u32(int fd, uint32_t v)
{
    if (write(fd, &v, 4) != 4) _exit(7);
}

/* The child: runs the op stream from `seed` against the collection, starting
 * from model m, writing the number of acknowledged ops after each. */
static void child_loop(const char *dir, int dur, uint64_t seed, unsigned first_id, int persist_pct, const th_model *m,
                       int wfd)
{
    svdb *db;
    if (th_open(&db, dir, 0, 0, dur) != SVDB_OK) _exit(2);
    th_model cm;
    th_model_copy(&cm, m);
    uint64_t rng = seed;
    unsigned next_id = first_id;
    for (uint32_t acked = 0;;) {
        th_op op;
        th_gen_op(&rng, &cm, &next_id, persist_pct, &op);
        if (th_op_run(db, &op) != SVDB_OK) {
            fprintf(stderr, "child: op %u failed: %s\n", acked, svdb_errmsg());
            _exit(3);
        }
        write_u32(wfd, ++acked);
        th_op_model(&cm, &op);
        th_op_free(&op);
    }
}

/* One round: returns through *m the state the collection is in afterwards. */
static void crash_round(const char *dir, int dur, uint64_t seed, unsigned first_id, int persist_pct, uint32_t target,
                        unsigned delay_us, th_model *m)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_loop(dir, dur, seed, first_id, persist_pct, m, p[1]);
        _exit(0);
    }
    close(p[1]);
    uint32_t acked = 0, v;
    while (acked < target && read_u32(p[0], &v)) acked = v;
    if (delay_us) usleep(delay_us);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    while (read_u32(p[0], &v)) acked = v;
    close(p[0]);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) fprintf(stderr, "child status %d\n", st);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* Models with and without the op in flight. */
    uint64_t rng = seed;
    unsigned next_id = first_id;
    th_op op;
    for (uint32_t i = 0; i < acked; i++) {
        th_gen_op(&rng, m, &next_id, persist_pct, &op);
        th_op_model(m, &op);
        th_op_free(&op);
    }
    th_model with;
    th_model_copy(&with, m);
    th_gen_op(&rng, m, &next_id, persist_pct, &op);
    th_op_model(&with, &op);
    th_op_free(&op);

    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    char *tmp = th_path(dir, "snapshot.svdb.tmp");
    assert_true(th_file_size(tmp) < 0);
    free(tmp);
    if (th_check_db(db, m, 0)) {
        /* the in-flight op is absent */
    } else if (th_check_db(db, &with, 0)) {
        th_model_free(m);
        th_model_copy(m, &with);
    } else {
        fprintf(stderr, "after %u acknowledged ops the collection matches neither model:\n", acked);
        th_check_db(db, m, 1);
        th_check_db(db, &with, 1);
        fail();
    }
    th_model_free(&with);
    ASSERT_OK(svdb_close(db));
}

static void test_crash__kill_during_writes(void **state)
{
    (void)state;
    char *dir = th_tmpdir("crash");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    ASSERT_OK(svdb_close(db));
    th_model m;
    th_model_init(&m, 8);
    uint64_t rng = 20240601;
    for (int round = 0; round < 24; round++) {
        int dur = round % 2;
        uint32_t target = th_randn(&rng, dur ? 25 : 120);
        unsigned delay = th_randn(&rng, 4) == 0 ? 0 : th_randn(&rng, 3000);
        crash_round(dir, dur, 1000 + (uint64_t)round, (unsigned)round * 1000000u, 4, target, delay, &m);
    }
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* Kills while checkpoints of a larger collection are being written. */
static void test_crash__kill_during_persist(void **state)
{
    (void)state;
    char *dir = th_tmpdir("crash-persist");
    svdb *db;
    enum { BASE = 12000, D = 32 };
    ASSERT_OK(svdb_open(&db, dir, NULL));
    float *v = malloc((size_t)BASE * D * sizeof(float));
    th_random(v, (size_t)BASE * D, 4);
    char **ids = malloc(BASE * sizeof *ids);
    for (int i = 0; i < BASE; i++) assert_true(asprintf(&ids[i], "base%d", i) > 0);
    ASSERT_OK(svdb_add_batch(db, BASE, (const char *const *)ids, v, D, NULL));
    ASSERT_OK(svdb_close(db));

    /* Time one checkpoint to aim the kills inside them. */
    ASSERT_OK(svdb_open(&db, dir, NULL));
    const char *hot[] = {"base0"};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_OK(svdb_upsert_batch(db, 1, hot, v, D, NULL));
    ASSERT_OK(svdb_persist(db));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_OK(svdb_close(db));
    long persist_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    if (persist_us < 200) persist_us = 200;

    uint64_t rng = 99;
    for (int round = 0; round < 10; round++) {
        /* The child alternates: upsert one base row to a new vector (acked), persist (acked). */
        int p[2];
        assert_int_equal(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            if (svdb_open(&db, dir, NULL) != SVDB_OK) _exit(2);
            float w[D];
            for (uint32_t i = 0;; i++) {
                const char *id[] = {ids[(round * 1000 + i) % BASE]};
                th_random(w, D, 100000u * (unsigned)round + i);
                if (svdb_upsert_batch(db, 1, id, w, D, NULL) != SVDB_OK) _exit(3);
                write_u32(p[1], 2 * i + 1);
                if (svdb_persist(db) != SVDB_OK) _exit(4);
                write_u32(p[1], 2 * i + 2);
            }
        }
        close(p[1]);
        uint32_t acked = 0, val;
        uint32_t target = 1 + th_randn(&rng, 6);
        while (acked < target && read_u32(p[0], &val)) acked = val;
        usleep(th_randn(&rng, (uint32_t)persist_us * 2));
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        while (read_u32(p[0], &val)) acked = val;
        close(p[0]);
        assert_true(WIFSIGNALED(st));
        /* Apply the acknowledged upserts; the next one may or may not be there. */
        uint32_t ups = (acked + 1) / 2;
        for (uint32_t i = 0; i < ups; i++)
            th_random(v + (size_t)((round * 1000 + i) % BASE) * D, D, 100000u * (unsigned)round + i);
        ASSERT_OK(svdb_open(&db, dir, NULL));
        size_t n;
        ASSERT_OK(svdb_count(db, &n));
        assert_int_equal(n, BASE);
        float got[D];
        uint32_t next = (uint32_t)((round * 1000 + ups) % BASE);
        if (acked % 2 == 0) { /* the in-flight op is an upsert */
            ASSERT_OK(svdb_get(db, ids[next], got, D, NULL));
            float nv[D];
            th_random(nv, D, 100000u * (unsigned)round + ups);
            if (memcmp(got, nv, sizeof got) == 0) memcpy(v + (size_t)next * D, nv, sizeof nv);
        }
        for (int i = 0; i < BASE; i++) {
            ASSERT_OK(svdb_get(db, ids[i], got, D, NULL));
            assert_memory_equal(got, v + (size_t)i * D, sizeof got);
        }
        ASSERT_OK(svdb_close(db));
    }
    for (int i = 0; i < BASE; i++) free(ids[i]);
    free(ids);
    free(v);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash__kill_during_writes),
        cmocka_unit_test(test_crash__kill_during_persist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
