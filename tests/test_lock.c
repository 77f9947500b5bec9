/* One writer per collection: a second handle, in this process or another,
 * gets SVDB_ELOCKED until the holder closes or dies. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

static void test_lock__same_process(void **state)
{
    (void)state;
    char *dir = th_tmpdir("lock");
    svdb *a, *b = (svdb *)0x1;
    ASSERT_OK(svdb_open(&a, dir, NULL));
    assert_int_equal(svdb_open(&b, dir, NULL), SVDB_ELOCKED);
    assert_null(b);
    assert_non_null(strstr(svdb_errmsg(), "locked"));
    /* Options that would otherwise be rejected later still report the lock first or fail cleanly. */
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    assert_int_equal(svdb_open(&b, dir, &o), SVDB_ELOCKED);
    /* The failed open disturbed nothing: the holder keeps working. */
    const char *ids[] = {"x"};
    float v[2] = {1, 2};
    ASSERT_OK(svdb_add_batch(a, 1, ids, v, 2, NULL));
    ASSERT_OK(svdb_close(a));
    ASSERT_OK(svdb_open(&b, dir, NULL));
    size_t n;
    ASSERT_OK(svdb_count(b, &n));
    assert_int_equal(n, 1);
    assert_int_equal(svdb_open(&a, dir, NULL), SVDB_ELOCKED);
    ASSERT_OK(svdb_close(b));
    /* Repeated open/close cycles do not leak the lock. */
    for (int i = 0; i < 50; i++) {
        ASSERT_OK(svdb_open(&a, dir, NULL));
        ASSERT_OK(svdb_close(a));
    }
    th_rmrf(dir);
    free(dir);
}

/* Forks a child that tries to open dir; returns its exit code: 0 = ELOCKED
 * with a message containing "locked", 1 = opened, 2 = other failure. */
static int child_try_open(const char *dir)
{
    pid_t pid = th_fork();
    if (pid == 0) {
        svdb *db = NULL;
        int rc = svdb_open(&db, dir, NULL);
        if (rc == SVDB_ELOCKED && strstr(svdb_errmsg(), "locked") && !db) th_child_exit(0);
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
    ASSERT_OK(svdb_open(&db, dir, NULL));
    assert_int_equal(child_try_open(dir), 0);
    ASSERT_OK(svdb_close(db));
    assert_int_equal(child_try_open(dir), 1);
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
        char ok = svdb_open(&db, dir, NULL) == SVDB_OK ? 'y' : 'n';
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
    assert_non_null(strstr(svdb_errmsg(), "locked"));
    assert_int_equal(child_try_open(dir), 0);
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

/* Different collections do not block each other. */
static void test_lock__independent_collections(void **state)
{
    (void)state;
    char *d1 = th_tmpdir("lock-a"), *d2 = th_tmpdir("lock-b");
    svdb *a, *b;
    ASSERT_OK(svdb_open(&a, d1, NULL));
    ASSERT_OK(svdb_open(&b, d2, NULL));
    assert_int_equal(child_try_open(d1), 0);
    ASSERT_OK(svdb_close(a));
    assert_int_equal(child_try_open(d1), 1);
    assert_int_equal(child_try_open(d2), 0);
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
        cmocka_unit_test(test_lock__independent_collections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
