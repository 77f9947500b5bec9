/* Open modes and their locks: shared handles (the default) in any number,
 * an exclusive one alone, and a handle whose process dies lets go at once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

static int open_mode(svdb **db, const char *dir, int mode)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.mode = mode;
    return svdb_open(db, dir, &o);
}

static void test_lock__same_process(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock");
    svdb *a, *b = (svdb *)0x1;
    ASSERT_OK(open_mode(&a, dir, SVDB_OPEN_EXCLUSIVE));
    assert_int_equal(svdb_open(&b, dir, NULL), SVDB_ELOCKED);
    assert_null(b);
    assert_non_null(strstr(svdb_errmsg(), "exclusively"));
    assert_int_equal(open_mode(&b, dir, SVDB_OPEN_EXCLUSIVE), SVDB_ELOCKED);
    assert_int_equal(open_mode(&b, dir, SVDB_OPEN_READONLY), SVDB_ELOCKED);
    /* Options that would otherwise be rejected later still report the lock first or fail cleanly. */
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    assert_int_equal(svdb_open(&b, dir, &o), SVDB_ELOCKED);
    /* The failed opens disturbed nothing: the holder keeps working. */
    const char *ids[] = {"x"};
    float v[2] = {1, 2};
    ASSERT_OK(svdb_add_batch(a, 1, ids, v, 2, NULL));
    ASSERT_OK(svdb_close(a));
    /* Shared handles (the default) share; an exclusive open waits for them all to close. */
    ASSERT_OK(svdb_open(&b, dir, NULL));
    ASSERT_OK(svdb_open(&a, dir, NULL));
    size_t n;
    ASSERT_OK(svdb_count(b, &n));
    assert_int_equal(n, 1);
    svdb *c = (svdb *)0x1;
    assert_int_equal(open_mode(&c, dir, SVDB_OPEN_EXCLUSIVE), SVDB_ELOCKED);
    assert_null(c);
    assert_non_null(strstr(svdb_errmsg(), "alone"));
    ASSERT_OK(svdb_close(b));
    assert_int_equal(open_mode(&c, dir, SVDB_OPEN_EXCLUSIVE), SVDB_ELOCKED);
    ASSERT_OK(svdb_close(a));
    /* Repeated open/close cycles do not leak the lock. */
    for (int i = 0; i < 50; i++) {
        ASSERT_OK(svdb_open(&a, dir, NULL));
        ASSERT_OK(svdb_close(a));
    }
    ASSERT_OK(open_mode(&a, dir, SVDB_OPEN_EXCLUSIVE));
    ASSERT_OK(svdb_close(a));
    th_rmrf(dir);
    free(dir);
}

/* Forks a child that tries to open dir in `mode`; returns its exit code:
 * 0 = ELOCKED with a message naming the other holder, 1 = opened, 2 =
 * other failure. */
static int child_try_open(const char *dir, int mode)
{
    pid_t pid = th_fork();
    if (pid == 0) {
        svdb *db = NULL;
        int rc = open_mode(&db, dir, mode);
        if (rc == SVDB_ELOCKED && strstr(svdb_errmsg(), "another handle or process") && !db) th_child_exit(0);
        if (rc == SVDB_OK) {
            svdb_close(db);
            th_child_exit(1);
        }
        th_child_exit(2);
    }
    return th_wait(pid);
}

static void test_lock__other_process(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock-proc");
    svdb *db;
    ASSERT_OK(open_mode(&db, dir, SVDB_OPEN_EXCLUSIVE));
    assert_int_equal(child_try_open(dir, SVDB_OPEN_SHARED), 0);
    assert_int_equal(child_try_open(dir, SVDB_OPEN_READONLY), 0);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL));
    assert_int_equal(child_try_open(dir, SVDB_OPEN_SHARED), 1);
    assert_int_equal(child_try_open(dir, SVDB_OPEN_READONLY), 1);
    assert_int_equal(child_try_open(dir, SVDB_OPEN_EXCLUSIVE), 0);
    ASSERT_OK(svdb_close(db));
    assert_int_equal(child_try_open(dir, SVDB_OPEN_EXCLUSIVE), 1);
    th_rmrf(dir);
    free(dir);
}

static void test_lock__holder_killed(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock-kill");
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        svdb *db;
        char ok = open_mode(&db, dir, SVDB_OPEN_EXCLUSIVE) == SVDB_OK ? 'y' : 'n';
        const char *ids[] = {"held"};
        float v[2] = {1, 2};
        if (ok == 'y' && svdb_add_batch(db, 1, ids, v, 2, NULL) != SVDB_OK) ok = 'n';
        if (write(p[1], &ok, 1) != 1) _exit(3);
        for (;;) pause();
    }
    close(p[1]);
    char ok = 0;
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    assert_int_equal(ok, 'y');
    svdb *db = (svdb *)0x1;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_ELOCKED);
    assert_null(db);
    assert_non_null(strstr(svdb_errmsg(), "exclusively"));
    assert_int_equal(child_try_open(dir, SVDB_OPEN_SHARED), 0);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* The kernel released the lock with the process; the acknowledged add survived. */
    ASSERT_OK(svdb_open(&db, dir, NULL));
    int found = 0;
    ASSERT_OK(svdb_contains(db, "held", &found));
    assert_int_equal(found, 1);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* A progress handler that tells the parent the write lock is held, then
 * holds it until the process is killed. */
static int hold_forever(void *ctx, int op, uint64_t done, uint64_t total)
{
    (void)op, (void)done, (void)total;
    char y = 'y';
    if (write(*(int *)ctx, &y, 1) != 1) _exit(3);
    for (;;) pause();
}

/* A writer in another process holds the write lock (stuck in the middle of
 * a batch): readers go on, a write waits out the busy timeout and fails
 * with SVDB_EBUSY changing nothing; once the holder is killed the kernel
 * drops its lock, the next write goes through and the stuck batch is there
 * whole or not at all. */
static void test_lock__busy_writer_killed(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock-busy");
    enum { DIM = 16 };
    const int N = th_slow_tool() ? 3000 : 20000; /* long enough to report progress either way */
    svdb *db;
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = DIM;
    o.index = SVDB_INDEX_HNSW;
    o.background_indexing = 0;
    o.busy_timeout_ms = 200;
    ASSERT_OK(svdb_open(&db, dir, &o));
    const char *first[] = {"first"};
    float v[DIM] = {1};
    ASSERT_OK(svdb_add_batch(db, 1, first, v, DIM, NULL));
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        svdb *w;
        if (svdb_open(&w, dir, &o) != SVDB_OK) _exit(3);
        svdb_progress_handler(w, hold_forever, &p[1]);
        float *vecs = malloc((size_t)N * DIM * sizeof *vecs);
        char **ids = malloc((size_t)N * sizeof *ids);
        if (!vecs || !ids) _exit(3);
        th_random(vecs, (size_t)N * DIM, 7);
        for (int i = 0; i < N; i++) {
            ids[i] = malloc(16);
            snprintf(ids[i], 16, "r%d", i);
        }
        svdb_add_batch(w, N, (const char *const *)ids, vecs, DIM, NULL);
        char n = 'n'; /* the batch ended without a progress report */
        if (write(p[1], &n, 1) != 1) _exit(3);
        for (;;) pause();
    }
    close(p[1]);
    char got = 0;
    assert_int_equal(read(p[0], &got, 1), 1);
    close(p[0]);
    assert_int_equal(got, 'y');
    /* Reads never wait for the write lock. */
    size_t n = 0;
    ASSERT_OK(svdb_count(db, &n));
    assert_int_equal(n, 1);
    svdb_hit *hits = NULL;
    size_t nh = 0;
    ASSERT_OK(svdb_search(db, v, DIM, 1, NULL, &hits, &nh));
    assert_int_equal(nh, 1);
    svdb_hits_free(hits);
    /* A write waits out the busy timeout, then changes nothing. */
    const char *second[] = {"second"};
    ASSERT_FAILS(svdb_add_batch(db, 1, second, v, DIM, NULL), SVDB_EBUSY);
    assert_non_null(strstr(svdb_errmsg(), "busy timeout"));
    ASSERT_FAILS(svdb_persist(db), SVDB_EBUSY);
    ASSERT_OK(svdb_count(db, &n));
    assert_int_equal(n, 1);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ASSERT_OK(svdb_add_batch(db, 1, second, v, DIM, NULL));
    ASSERT_OK(svdb_count(db, &n));
    assert_true(n == 2 || n == 2 + (size_t)N);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, &o));
    size_t again = 0;
    ASSERT_OK(svdb_count(db, &again));
    assert_int_equal(again, n);
    int found = 0;
    ASSERT_OK(svdb_contains(db, "second", &found));
    assert_int_equal(found, 1);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* svdb before shared opens held LOCK with an exclusive flock: the two
 * versions keep out of each other's way. */
static void test_lock__earlier_version_holder(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock-old");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    char *lock = th_path(dir, "LOCK");
    int fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1); /* an earlier svdb is refused */
    ASSERT_OK(svdb_close(db));
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0); /* ... until every handle closed */
    svdb *b = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&b, dir, NULL), SVDB_ELOCKED);
    assert_non_null(strstr(svdb_errmsg(), "earlier svdb"));
    assert_null(b);
    close(fd);
    ASSERT_OK(svdb_open(&db, dir, NULL));
    ASSERT_OK(svdb_close(db));
    free(lock);
    th_rmrf(dir);
    free(dir);
}

/* Different collections do not block each other. */
static void test_lock__independent_collections(void **state)
{
    (void)state;
    char *d1 = th_tmpdir("lock-a"), *d2 = th_tmpdir("lock-b");
    svdb *a, *b;
    ASSERT_OK(open_mode(&a, d1, SVDB_OPEN_EXCLUSIVE));
    ASSERT_OK(open_mode(&b, d2, SVDB_OPEN_EXCLUSIVE));
    assert_int_equal(child_try_open(d1, SVDB_OPEN_EXCLUSIVE), 0);
    ASSERT_OK(svdb_close(a));
    assert_int_equal(child_try_open(d1, SVDB_OPEN_EXCLUSIVE), 1);
    assert_int_equal(child_try_open(d2, SVDB_OPEN_EXCLUSIVE), 0);
    ASSERT_OK(svdb_close(b));
    th_rmrf(d1);
    th_rmrf(d2);
    free(d1);
    free(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock__same_process),
        cmocka_unit_test(test_lock__other_process),
        cmocka_unit_test(test_lock__holder_killed),
        cmocka_unit_test(test_lock__busy_writer_killed),
        cmocka_unit_test(test_lock__earlier_version_holder),
        cmocka_unit_test(test_lock__independent_collections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
