/* Regression tests for the adversarial review (issue 12, docs/reliability.md
 * "Adversarial review"): each test is one defect's class, not only its
 * reproducer. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

static void add_one(svdb *db, const char *id, float x)
{
    float v[2] = {x, 1};
    const char *ids[] = {id};
    ASSERT_OK(svdb_add_batch(db, 1, ids, v, 2, NULL));
}

/* The ids of a collection, comma-joined in insertion order. */
static void ids_of(const char *path, char *out, size_t cap)
{
    svdb *db;
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    ASSERT_OK(svdb_open(&db, path, &o));
    char **ids;
    size_t n;
    ASSERT_OK(svdb_ids(db, &ids, &n));
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", ids[i]);
    svdb_ids_free(ids);
    ASSERT_OK(svdb_close(db));
}

static char *mkdir_in(const char *dir, const char *name)
{
    char *p = th_path(dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
    return p;
}

/* Item 1: a relative path plus chdir() must not split a collection: every
 * file operation after open is relative to the directory as it was opened. */
static void test_hardening__relative_path_survives_chdir(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *root = th_tmpdir("hard-chdir");
    assert_int_equal(mkdir(root, 0755), 0);
    char *A = mkdir_in(root, "A"), *B = mkdir_in(root, "B");
    svdb *a, *b;
    assert_int_equal(chdir(B), 0);
    ASSERT_OK(svdb_open(&b, "data", NULL));
    add_one(b, "b_row", 9);
    ASSERT_OK(svdb_close(b));
    assert_int_equal(chdir(A), 0);
    ASSERT_OK(svdb_open(&a, "data", NULL));
    add_one(a, "a_row", 1);
    assert_int_equal(chdir(B), 0);
    add_one(a, "a_row2", 2);
    ASSERT_OK(svdb_persist(a)); /* a checkpoint and a log reset, both in A */
    add_one(a, "a_row3", 3);
    ASSERT_OK(svdb_close(a));
    /* The directory renamed away while open: the handle follows it. */
    ASSERT_OK(svdb_open(&a, "data", NULL));
    char *moved = th_path(root, "B-moved");
    assert_int_equal(chdir(root), 0);
    assert_int_equal(rename(B, moved), 0);
    add_one(a, "b_row2", 4);
    ASSERT_OK(svdb_close(a));
    assert_int_equal(chdir(cwd), 0);
    char got[256], *pa = th_path(A, "data"), *pm = th_path(moved, "data");
    ids_of(pa, got, sizeof got);
    assert_string_equal(got, "a_row,a_row2,a_row3");
    ids_of(pm, got, sizeof got);
    assert_string_equal(got, "b_row,b_row2");
    th_rmrf(root);
    free(pa), free(pm), free(moved), free(A), free(B), free(root);
}

/* Item 2: the caller's buffers are read once. A thread flipping a component
 * between NaN and a number while writes run must never get a NaN stored:
 * each write either fails with SVDB_EINVAL or stores finite values. */
typedef struct {
    float *v;
    int stop;
} flipper;

static void *flip(void *arg)
{
    flipper *f = arg;
    for (unsigned i = 0; !__atomic_load_n(&f->stop, __ATOMIC_RELAXED); i++)
        __atomic_store_n((uint32_t *)(void *)&f->v[i % 64], (i & 1) ? 0x7fc00000u : 0x3f800000u, __ATOMIC_RELAXED);
    return NULL;
}

static void test_hardening__caller_memory_read_once(void **state)
{
    (void)state;
    char *dir = th_tmpdir("hard-race");
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 64, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    float *v = calloc(64, sizeof *v);
    for (int i = 0; i < 64; i++) v[i] = 1;
    flipper f = {v, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flip, &f), 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < (getenv("SVDB_VALGRIND") ? 300 : 3000); i++) {
        const char *ids[] = {"row"};
        int rc = svdb_upsert_batch(db, 1, ids, v, 64, NULL);
        assert_true(rc == SVDB_OK || rc == SVDB_EINVAL);
        ok += rc == SVDB_OK;
        refused += rc == SVDB_EINVAL;
        float got[64];
        if (rc == SVDB_OK) {
            ASSERT_OK(svdb_get(db, "row", got, 64, NULL));
            for (int d = 0; d < 64; d++) assert_true(isfinite(got[d]));
        }
    }
    __atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    printf("racing writes: %d stored, %d refused\n", ok, refused);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(th_open(&db, dir, 64, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST)); /* never unopenable */
    ASSERT_OK(svdb_close(db));
    free(v);
    th_rmrf(dir);
    free(dir);
}

/* Writes a collection whose log still holds writes: the log is copied out
 * while the handle is open, and put back after close checkpointed it. */
static void make_log_with_writes(const char *dir, unsigned char **wal, size_t *wal_len)
{
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 2, SVDB_METRIC_L2, SVDB_DURABILITY_SYNC));
    add_one(db, "x", 1);
    add_one(db, "y", 2);
    char *wp = th_path(dir, "wal.svdb");
    *wal = th_read_file(wp, wal_len);
    assert_non_null(*wal);
    assert_true(*wal_len > 32);
    ASSERT_OK(svdb_close(db));
    assert_int_equal(th_write_file(wp, *wal, *wal_len), 0);
    free(wp);
}

/* Item 3: open never destroys evidence. A log with writes but no snapshot
 * is SVDB_ECORRUPT and both files stay as they were. */
static void test_hardening__missing_snapshot_is_an_error(void **state)
{
    (void)state;
    char *dir = th_tmpdir("hard-nosnap");
    unsigned char *wal;
    size_t wal_len;
    make_log_with_writes(dir, &wal, &wal_len);
    char *sp = th_path(dir, "snapshot.svdb"), *wp = th_path(dir, "wal.svdb");
    assert_int_equal(unlink(sp), 0);
    svdb *db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_ECORRUPT);
    assert_null(db);
    assert_non_null(strstr(svdb_errmsg(), "snapshot"));
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_ECORRUPT);
    size_t len;
    unsigned char *now = th_read_file(wp, &len);
    assert_int_equal(len, wal_len);
    assert_memory_equal(now, wal, len);
    assert_true(th_file_size(sp) < 0);
    free(now);
    /* The log missing beside a snapshot is an error too. */
    free(wal);
    th_rmrf(dir);
    make_log_with_writes(dir, &wal, &wal_len);
    assert_int_equal(unlink(wp), 0);
    ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_ECORRUPT);
    assert_true(th_file_size(wp) < 0);
    free(wal);
    /* What a creation that crashed before its snapshot leaves (a log with
     * no record) is no collection: open creates one. */
    th_rmrf(dir);
    make_log_with_writes(dir, &wal, &wal_len);
    assert_int_equal(unlink(sp), 0);
    assert_int_equal(th_write_file(wp, wal, 32), 0);
    ASSERT_OK(svdb_open(&db, dir, NULL));
    size_t n = 9;
    ASSERT_OK(svdb_count(db, &n));
    assert_int_equal(n, 0);
    ASSERT_OK(svdb_close(db));
    free(wal);
    th_rmrf(dir);
    free(sp), free(wp), free(dir);
}

/* Item 5: a forked child does not keep the parent's collection lock: the
 * parent can close and reopen while the child lives, and a child can open
 * the collection once the parent closed it. */
static void test_hardening__fork_does_not_inherit_the_lock(void **state)
{
    (void)state;
    char *dir = th_tmpdir("hard-fork");
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 2, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    add_one(db, "parent", 1);
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Ends with the parent, even if the parent fails an assertion. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(go[1]);
        close(done[0]);
        char c;
        /* the inherited handle is unusable here */
        size_t n;
        if (svdb_count(db, &n) != SVDB_EMISUSE) _exit(10);
        if (read(go[0], &c, 1) != 1) _exit(11);
        svdb *mine;
        if (svdb_open(&mine, dir, NULL) != SVDB_OK) {
            fprintf(stderr, "child open: %s\n", svdb_errmsg());
            _exit(12);
        }
        const char *ids[] = {"child"};
        float v[2] = {3, 1};
        if (svdb_add_batch(mine, 1, ids, v, 2, NULL) != SVDB_OK || svdb_close(mine) != SVDB_OK) _exit(13);
        if (write(done[1], "d", 1) != 1) _exit(14);
        /* stays alive until the parent has reopened */
        if (read(go[0], &c, 1) != 1) _exit(15);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    ASSERT_OK(svdb_close(db));
    assert_int_equal(write(go[1], "g", 1), 1);
    char c;
    assert_int_equal(read(done[0], &c, 1), 1);
    /* The child closed; it is still alive: the collection is free. */
    ASSERT_OK(svdb_open(&db, dir, NULL));
    char **ids;
    size_t n;
    ASSERT_OK(svdb_ids(db, &ids, &n));
    assert_int_equal(n, 2);
    assert_string_equal(ids[1], "child");
    svdb_ids_free(ids);
    ASSERT_OK(svdb_close(db));
    /* and again with a parent that closes while the child never opened.
     * The child lets go of its copy of the lock as fork() returns in it (an
     * atfork handler); the parent waits for that moment, which a real
     * program's next open a moment later would hardly ever beat. */
    ASSERT_OK(svdb_open(&db, dir, NULL));
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t idle = fork();
    assert_true(idle >= 0);
    if (idle == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]), close(ready[1]);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL)); /* was SVDB_ELOCKED while the child lived */
    ASSERT_OK(svdb_close(db));
    kill(idle, SIGKILL);
    assert_int_equal(write(go[1], "g", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waitpid(idle, &status, 0);
    close(go[1]), close(done[0]);
    th_rmrf(dir);
    free(dir);
}

/* Item 6: a closed handle is SVDB_EMISUSE, even when the next open got the
 * same memory, and a made-up handle is refused without being read. */
static void test_hardening__stale_handle_is_misuse(void **state)
{
    (void)state;
    char *da = th_tmpdir("hard-stale-a"), *dbp = th_tmpdir("hard-stale-b");
    svdb *a, *b;
    ASSERT_OK(th_open(&a, da, 2, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    ASSERT_OK(svdb_close(a));
    ASSERT_OK(th_open(&b, dbp, 2, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    assert_true(a != b);
    float v[2] = {1, 2};
    const char *ids[] = {"intruder"};
    ASSERT_FAILS(svdb_add_batch(a, 1, ids, v, 2, NULL), SVDB_EMISUSE);
    size_t n = 9;
    ASSERT_FAILS(svdb_count(a, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_close(a), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_persist(a), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_verify(a), SVDB_EMISUSE);
    ASSERT_OK(svdb_count(b, &n));
    assert_int_equal(n, 0);
    /* Many open/close cycles: no stale handle ever matches a live one. */
    svdb *old[64];
    for (int i = 0; i < 64; i++) {
        char *d = th_tmpdir("hard-stale-n");
        ASSERT_OK(th_open(&old[i], d, 2, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
        ASSERT_OK(svdb_close(old[i]));
        for (int j = 0; j <= i; j++) ASSERT_FAILS(svdb_count(old[j], &n), SVDB_EMISUSE);
        th_rmrf(d);
        free(d);
    }
    /* Values that were never handles. */
    static char not_a_handle[256];
    ASSERT_FAILS(svdb_count((svdb *)(void *)not_a_handle, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_count((svdb *)(uintptr_t)0x1, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_count((svdb *)(uintptr_t)UINTPTR_MAX, &n), SVDB_EMISUSE);
    ASSERT_OK(svdb_close(b));
    th_rmrf(da), th_rmrf(dbp);
    free(da), free(dbp);
}

/* Item 7: the library never writes through a link planted in the
 * collection's directory, and never follows one to open its files. */
static void test_hardening__planted_links_are_never_followed(void **state)
{
    (void)state;
    char *dir = th_tmpdir("hard-link"), *victim = th_tmpdir("hard-victim");
    assert_int_equal(th_write_file(victim, "precious", 8), 0);
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 2, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    add_one(db, "x", 1);
    char *tmp = th_path(dir, "snapshot.svdb.tmp");
    assert_int_equal(symlink(victim, tmp), 0);
    ASSERT_OK(svdb_persist(db)); /* the link is replaced, not written through */
    add_one(db, "y", 2);
    ASSERT_OK(svdb_close(db));
    size_t len;
    unsigned char *v = th_read_file(victim, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(v, "precious", 8);
    free(v);
    char got[64];
    ids_of(dir, got, sizeof got);
    assert_string_equal(got, "x,y");
    /* Each of the collection's files replaced by a link: open refuses. */
    const char *names[] = {"snapshot.svdb", "wal.svdb", "LOCK"};
    for (int i = 0; i < 3; i++) {
        char *f = th_path(dir, names[i]), *keep = th_path(dir, "kept");
        assert_int_equal(rename(f, keep), 0);
        assert_int_equal(symlink(keep, f), 0);
        svdb *x = (svdb *)0x1;
        ASSERT_FAILS(svdb_open(&x, dir, NULL), SVDB_ECORRUPT);
        assert_null(x);
        assert_non_null(strstr(svdb_errmsg(), "link"));
        assert_int_equal(unlink(f), 0);
        assert_int_equal(rename(keep, f), 0);
        free(f), free(keep);
    }
    /* A directory where a file belongs is reported, not removed. */
    assert_int_equal(mkdir(tmp, 0755), 0);
    ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_ECORRUPT);
    assert_int_equal(rmdir(tmp), 0);
    ids_of(dir, got, sizeof got);
    assert_string_equal(got, "x,y");
    /* Unreadable files, for a caller that is not root (root reads anyway). */
    if (geteuid() != 0) {
        char *sp = th_path(dir, "snapshot.svdb");
        assert_int_equal(chmod(sp, 0), 0);
        ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_EIO);
        assert_int_equal(chmod(sp, 0644), 0);
        free(sp);
    }
    th_rmrf(dir);
    unlink(victim);
    free(tmp), free(dir), free(victim);
}

/* Item 14: a new collection is not created among someone else's files
 * (SvDBPython("/") as root wrote into /), and nothing is written there. */
static void test_hardening__foreign_directory_untouched(void **state)
{
    (void)state;
    char *dir = th_tmpdir("hard-foreign");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *f = th_path(dir, "notes.txt"), *lock = th_path(dir, "LOCK"), *wal = th_path(dir, "wal.svdb");
    assert_int_equal(th_write_file(f, "mine", 4), 0);
    svdb *db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_EINVAL);
    assert_null(db);
    assert_non_null(strstr(svdb_errmsg(), "notes.txt"));
    assert_true(th_file_size(lock) < 0);
    assert_true(th_file_size(wal) < 0);
    /* the root directory too, whoever runs this */
    ASSERT_FAILS(svdb_open(&db, "/", NULL), geteuid() == 0 ? SVDB_EINVAL : SVDB_EINVAL);
    assert_true(th_file_size("/LOCK") < 0 && th_file_size("/wal.svdb") < 0);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.allow_nonempty_dir = 1;
    ASSERT_OK(svdb_open(&db, dir, &o));
    add_one(db, "x", 1);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL)); /* a collection now: no option needed */
    ASSERT_OK(svdb_close(db));
    /* A version-2 options struct (without the field) keeps the refusal. */
    char *other = th_tmpdir("hard-foreign2");
    assert_int_equal(mkdir(other, 0755), 0);
    char *g = th_path(other, "x");
    assert_int_equal(th_write_file(g, "x", 1), 0);
    svdb_open_options o2;
    svdb_open_options_init(&o2, 2);
    ASSERT_FAILS(svdb_open(&db, other, &o2), SVDB_EINVAL);
    th_rmrf(dir), th_rmrf(other);
    free(f), free(g), free(lock), free(wal), free(dir), free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hardening__relative_path_survives_chdir),
        cmocka_unit_test(test_hardening__caller_memory_read_once),
        cmocka_unit_test(test_hardening__missing_snapshot_is_an_error),
        cmocka_unit_test(test_hardening__fork_does_not_inherit_the_lock),
        cmocka_unit_test(test_hardening__stale_handle_is_misuse),
        cmocka_unit_test(test_hardening__planted_links_are_never_followed),
        cmocka_unit_test(test_hardening__foreign_directory_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
