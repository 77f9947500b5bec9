/* The catalog of named collections (svdb_catalog_*): every function's
 * success and error paths. Each failure asserts the status, a message, and
 * that the catalog file is byte for byte what it was before the call. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "os.h"
#include "helpers.h"
#include "svdb.h"

#define CAT "pysvdb-chroma.json"
#define ID "2f1e0a39-2d1b-4c57-9a51-8a2b0bb2a7a4"
#define HNSW "{\"space\":\"l2\",\"ef_construction\":100,\"ef_search\":100,\"max_neighbors\":16}"

typedef struct fixture {
    char *dir;
    svdb_catalog *cat;
    int warnings;
    char last_warning[1024];
} fixture;

static void on_warning(const char *msg, void *payload)
{
    fixture *f = payload;
    f->warnings++;
    snprintf(f->last_warning, sizeof f->last_warning, "%s", msg);
}

static int open_cat(fixture *f)
{
    svdb_catalog_options o;
    svdb_catalog_options_init(&o, SVDB_CATALOG_OPTIONS_VERSION);
    o.warning = on_warning;
    o.warning_payload = f;
    return svdb_catalog_open(&f->cat, f->dir, &o);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir("catalog");
    *state = f;
    return open_cat(f) == SVDB_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    svdb_catalog_close(f->cat);
    th_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *file_in(const fixture *f, const char *name)
{
    char *p = th_path(f->dir, name);
    size_t len;
    unsigned char *b = th_read_file(p, &len);
    free(p);
    if (!b) return NULL;
    char *s = calloc(1, len + 1);
    memcpy(s, b, len);
    free(b);
    return s;
}

static void write_in(const fixture *f, const char *name, const char *text)
{
    char *p = th_path(f->dir, name);
    assert_int_equal(th_write_file(p, text, strlen(text)), 0);
    free(p);
}

static int exists_in(const fixture *f, const char *name)
{
    char *p = th_path(f->dir, name);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* The id of a new collection `name`. */
static void create(fixture *f, const char *name, const char *meta, char id[37])
{
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_create(f->cat, name, meta, NULL, &e));
    snprintf(id, 37, "%s", e->id);
    svdb_catalog_entries_free(e);
}

static void reopen(fixture *f)
{
    ASSERT_OK(svdb_catalog_close(f->cat));
    f->cat = NULL;
    ASSERT_OK(open_cat(f));
}

/* ------------------------------------------------------------------ open and close */

static void test_catalog__options_and_bad_args(void **state)
{
    fixture *f = *state;
    svdb_catalog_options o;
    ASSERT_FAILS(svdb_catalog_options_init(NULL, 1), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_options_init(&o, 0), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_options_init(&o, SVDB_CATALOG_OPTIONS_VERSION + 1), SVDB_EINVAL);
    ASSERT_OK(svdb_catalog_options_init(&o, SVDB_CATALOG_OPTIONS_VERSION));
    assert_true(o.create && o.durability == SVDB_DURABILITY_SYNC && !o.warning);
    svdb_catalog *c = (svdb_catalog *)1;
    ASSERT_FAILS(svdb_catalog_open(NULL, f->dir, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_open(&c, NULL, NULL), SVDB_EINVAL);
    assert_null(c);
    ASSERT_FAILS(svdb_catalog_open(&c, "", NULL), SVDB_EINVAL);
    o.version = 99;
    ASSERT_FAILS(svdb_catalog_open(&c, f->dir, &o), SVDB_EINVAL);
    svdb_catalog_options_init(&o, 1);
    o.durability = 7;
    ASSERT_FAILS(svdb_catalog_open(&c, f->dir, &o), SVDB_EINVAL);
    svdb_catalog_entry *e;
    size_t n;
    char *path;
    ASSERT_FAILS(svdb_catalog_list(f->cat, NULL, &n), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_get(f->cat, NULL, &e), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_get(f->cat, "", &e), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_create(f->cat, NULL, NULL, NULL, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_create(f->cat, "\xff", NULL, NULL, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_collection_path(f->cat, "x", NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_collection_path(f->cat, "x", &path), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_purge(f->cat, "nope"), SVDB_EINVAL);
    ASSERT_OK(svdb_catalog_purge(f->cat, ID)); /* nothing there */
    ASSERT_OK(svdb_catalog_close(NULL));
}

static void test_catalog__create_if_missing(void **state)
{
    fixture *f = *state;
    char *sub = th_path(f->dir, "a/b/c");
    svdb_catalog_options o;
    svdb_catalog_options_init(&o, 1);
    o.create = 0;
    svdb_catalog *c;
    ASSERT_FAILS(svdb_catalog_open(&c, sub, &o), SVDB_ENOTFOUND);
    char *a = th_path(f->dir, "a");
    mkdir(a, 0755);
    ASSERT_FAILS(svdb_catalog_open(&c, a, &o), SVDB_ENOTFOUND);
    assert_int_equal(th_file_size(sub), -1);
    ASSERT_OK(svdb_catalog_open(&c, sub, NULL)); /* parents made */
    char *cat = th_path(sub, CAT);
    size_t len;
    unsigned char *text = th_read_file(cat, &len);
    assert_non_null(text);
    assert_non_null(strstr((char *)text, "\"store\":\""));
    assert_non_null(strstr((char *)text, "\"collections\":[]"));
    ASSERT_OK(svdb_catalog_close(c));
    ASSERT_OK(svdb_catalog_open(&c, sub, &o)); /* exists now */
    ASSERT_OK(svdb_catalog_close(c));
    free(text);
    free(cat);
    free(a);
    free(sub);
}

static void test_catalog__lock_and_use_after_close(void **state)
{
    fixture *f = *state;
    svdb_catalog *c = NULL;
    ASSERT_FAILS(svdb_catalog_open(&c, f->dir, NULL), SVDB_ELOCKED);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    assert_non_null(strstr(svdb_errmsg(), pid));
    assert_null(c);
    svdb_catalog *old = f->cat;
    ASSERT_OK(svdb_catalog_close(old));
    f->cat = NULL;
    size_t n;
    svdb_catalog_entry *e;
    ASSERT_FAILS(svdb_catalog_list(old, &e, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_create(old, "x", NULL, NULL, NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_close(old), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_list(NULL, &e, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_delete((svdb_catalog *)0x1235, "x"), SVDB_EMISUSE);
    ASSERT_OK(open_cat(f)); /* free again */
}

static void test_catalog__fork_child_cannot_use_it(void **state)
{
    fixture *f = *state;
    pid_t pid = th_fork();
    if (pid == 0) {
        size_t n;
        svdb_catalog_entry *e;
        svdb_catalog *c;
        int ok = svdb_catalog_list(f->cat, &e, &n) == SVDB_EMISUSE && strstr(svdb_errmsg(), "fork");
        ok = ok && svdb_catalog_open(&c, f->dir, NULL) == SVDB_ELOCKED; /* the parent keeps its lock */
        th_child_exit(ok ? 0 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    char id[37];
    create(f, "still", NULL, id);
}

/* ------------------------------------------------------------------ entries */

static void test_catalog__create_get_list_persist(void **state)
{
    fixture *f = *state;
    char a[37], b[37];
    create(f, "one", "{\"f\":1.0,\"big\":12345678901234567890,\"l\":[1,\"x\",true],\"u\":\"\\u00e9\"}", a);
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_create(f->cat, "two", NULL, "{\"space\":\"ip\",\"ef_construction\":50,\"ef_search\":40,"
                                                      "\"max_neighbors\":8,\"num_threads\":2}", &e));
    snprintf(b, sizeof b, "%s", e->id);
    assert_int_equal(e->metric, SVDB_METRIC_IP);
    assert_true(e->hnsw_m == 8 && e->hnsw_ef_construction == 50 && e->hnsw_ef_search == 40 && e->build_threads == 2);
    assert_null(e->metadata);
    svdb_catalog_entries_free(e);
    ASSERT_FAILS(svdb_catalog_create(f->cat, "one", NULL, NULL, NULL), SVDB_EEXISTS);
    reopen(f);
    size_t n;
    ASSERT_OK(svdb_catalog_list(f->cat, &e, &n));
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "one");
    assert_string_equal(e[0].id, a);
    assert_string_equal(e[0].metadata, "{\"f\":1.0,\"big\":12345678901234567890,\"l\":[1,\"x\",true],\"u\":\"\xc3\xa9\"}");
    assert_int_equal(e[0].metric, SVDB_METRIC_L2);
    assert_non_null(strstr(e[0].hnsw, "\"resize_factor\":1.2"));
    assert_string_equal(e[1].name, "two");
    char *want = th_path(f->dir, b);
    assert_non_null(strstr(e[1].path, b));
    free(want);
    svdb_catalog_entries_free(e);
    ASSERT_OK(svdb_catalog_get(f->cat, "two", &e));
    assert_string_equal(e->id, b);
    svdb_catalog_entries_free(e);
    ASSERT_FAILS(svdb_catalog_get(f->cat, "three", &e), SVDB_ENOTFOUND);
    assert_null(e);
    svdb_catalog_entries_free(NULL);
}

static void test_catalog__bad_metadata_and_settings_change_nothing(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "one", "{\"k\":1}", id);
    char *before = file_in(f, CAT);
    const char *metas[] = {"[1]", "{\"a\":{\"b\":1}}", "{\"a\":null}", "{\"a\":[]}", "{half", "{\"a\":NaN}", "{\"a\":01}"};
    for (size_t i = 0; i < sizeof metas / sizeof *metas; i++) {
        ASSERT_FAILS(svdb_catalog_create(f->cat, "new", metas[i], NULL, NULL), SVDB_EMETA);
        ASSERT_FAILS(svdb_catalog_set_metadata(f->cat, "one", metas[i]), SVDB_EMETA);
    }
    const char *hnsws[] = {"[]", "{\"space\":\"l2\"}", "{\"space\":\"x\",\"ef_construction\":1,\"ef_search\":1,\"max_neighbors\":1}",
                           "{\"space\":\"l2\",\"ef_construction\":0,\"ef_search\":1,\"max_neighbors\":1}",
                           "{\"space\":\"l2\",\"ef_construction\":1.0,\"ef_search\":1,\"max_neighbors\":1}",
                           "{\"space\":\"l2\",\"ef_construction\":1,\"ef_search\":1,\"max_neighbors\":1,\"foo\":1}"};
    for (size_t i = 0; i < sizeof hnsws / sizeof *hnsws; i++)
        ASSERT_FAILS(svdb_catalog_create(f->cat, "new", NULL, hnsws[i], NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_modify(f->cat, "one", NULL, NULL, "{\"space\":\"ip\"}"), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_modify(f->cat, "one", NULL, NULL, "{\"max_neighbors\":32}"), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_modify(f->cat, "one", NULL, NULL, "{\"ef_search\":-1}"), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_set_metadata(f->cat, "one", NULL), SVDB_EINVAL);
    char *after = file_in(f, CAT);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_catalog__rename_and_modify(void **state)
{
    fixture *f = *state;
    char a[37], b[37];
    create(f, "a", NULL, a);
    create(f, "b", NULL, b);
    char *before = file_in(f, CAT);
    ASSERT_FAILS(svdb_catalog_rename(f->cat, "a", "b"), SVDB_EEXISTS);
    ASSERT_FAILS(svdb_catalog_rename(f->cat, "zz", "c"), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_rename(f->cat, "a", NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_rename(f->cat, "a", ""), SVDB_EINVAL);
    char *after = file_in(f, CAT);
    assert_string_equal(before, after);
    ASSERT_OK(svdb_catalog_rename(f->cat, "a", "a")); /* to itself: fine */
    ASSERT_OK(svdb_catalog_modify(f->cat, "a", "c", "{\"x\":2.50}", "{\"ef_search\":77,\"space\":\"l2\"}"));
    reopen(f);
    svdb_catalog_entry *e;
    ASSERT_FAILS(svdb_catalog_get(f->cat, "a", &e), SVDB_ENOTFOUND);
    ASSERT_OK(svdb_catalog_get(f->cat, "c", &e));
    assert_string_equal(e->id, a);
    assert_string_equal(e->metadata, "{\"x\":2.50}");
    assert_int_equal(e->hnsw_ef_search, 77);
    svdb_catalog_entries_free(e);
    ASSERT_OK(svdb_catalog_set_metadata(f->cat, "c", "null"));
    ASSERT_OK(svdb_catalog_get(f->cat, "c", &e));
    assert_null(e->metadata);
    svdb_catalog_entries_free(e);
    free(before);
    free(after);
}

/* ------------------------------------------------------------------ collections and delete */

static void test_catalog__collection_open_claim_delete(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "col", NULL, id);
    assert_false(exists_in(f, id)); /* made only when opened */
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "col", NULL));
    const char *ids[] = {"r"};
    float v[] = {1, 2};
    ASSERT_OK(svdb_add_batch(db, 1, ids, v, 2, NULL));
    char marker[64];
    snprintf(marker, sizeof marker, "%s/pysvdb-collection.json", id);
    char *m = file_in(f, marker);
    assert_non_null(strstr(m, "\"state\": \"live\""));
    free(m);
    char *before = file_in(f, CAT);
    ASSERT_FAILS(svdb_catalog_delete(f->cat, "col"), SVDB_ELOCKED); /* open: nothing changes */
    char *after = file_in(f, CAT);
    assert_string_equal(before, after);
    ASSERT_OK(svdb_close(db));
    char *path;
    ASSERT_OK(svdb_catalog_collection_path(f->cat, "col", &path));
    ASSERT_OK(svdb_open(&db, path, NULL)); /* as pysvdb opens it */
    ASSERT_OK(svdb_catalog_claim(f->cat, "col"));
    size_t count;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, 1);
    ASSERT_OK(svdb_close(db));
    svdb_free(path);
    ASSERT_FAILS(svdb_catalog_open_collection(&db, f->cat, "nope", NULL), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_purge(f->cat, id), SVDB_EINVAL); /* listed */
    ASSERT_OK(svdb_catalog_delete(f->cat, "col"));
    assert_false(exists_in(f, id));
    ASSERT_FAILS(svdb_catalog_delete(f->cat, "col"), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_claim(f->cat, "col"), SVDB_ENOTFOUND);
    create(f, "never", NULL, id);
    ASSERT_FAILS(svdb_catalog_claim(f->cat, "never"), SVDB_ENOTFOUND); /* no directory */
    ASSERT_OK(svdb_catalog_delete(f->cat, "never"));
    assert_int_equal(f->warnings, 0);
    free(before);
    free(after);
}

static const char *crash_at;
static void crash_hook(const char *step)
{
    if (!strcmp(step, crash_at)) th_child_exit(0);
}

/* Deletes `name` in a child that dies at `step`. */
static void crash_delete(fixture *f, const char *name, const char *step)
{
    ASSERT_OK(svdb_catalog_close(f->cat));
    f->cat = NULL;
    pid_t pid = th_fork();
    if (pid == 0) {
        crash_at = step;
        svdb__catalog_hook = crash_hook;
        int ok = open_cat(f) == SVDB_OK && svdb_catalog_delete(f->cat, name) == SVDB_OK;
        th_child_exit(ok ? 2 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    ASSERT_OK(open_cat(f));
}

static void test_catalog__interrupted_delete(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "col", NULL, id);
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "col", NULL));
    ASSERT_OK(svdb_close(db));
    char marker[64];
    snprintf(marker, sizeof marker, "%s/pysvdb-collection.json", id);
    crash_delete(f, "col", "marked"); /* before the catalog forgot it: it stays */
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_get(f->cat, "col", &e));
    svdb_catalog_entries_free(e);
    char *m = file_in(f, marker);
    assert_non_null(strstr(m, "deleting"));
    free(m);
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "col", NULL)); /* marked live again */
    ASSERT_OK(svdb_close(db));
    m = file_in(f, marker);
    assert_non_null(strstr(m, "live"));
    free(m);
    crash_delete(f, "col", "forgot"); /* after: the next open finishes it */
    assert_false(exists_in(f, id));
    ASSERT_FAILS(svdb_catalog_get(f->cat, "col", &e), SVDB_ENOTFOUND);
    assert_int_equal(f->warnings, 0);
}

static void test_catalog__strays_are_left_in_place(void **state)
{
    fixture *f = *state;
    svdb_catalog_close(f->cat);
    f->cat = NULL;
    char *sd = th_path(f->dir, ID);
    mkdir(sd, 0755);
    free(sd);
    char stray[128];
    snprintf(stray, sizeof stray, "%s/thesis.tex", ID);
    write_in(f, stray, "years of work");
    ASSERT_OK(open_cat(f));
    assert_int_equal(f->warnings, 1);
    assert_non_null(strstr(f->last_warning, "left in place"));
    assert_true(exists_in(f, stray));
    ASSERT_FAILS(svdb_catalog_purge(f->cat, ID), SVDB_EINVAL);
    assert_true(exists_in(f, stray));
}

/* ------------------------------------------------------------------ damaged files */

static void expect_open_fails(fixture *f, const char *text, int status)
{
    write_in(f, CAT, text);
    svdb_catalog *c;
    int rc = svdb_catalog_open(&c, f->dir, NULL);
    if (rc != status) fprintf(stderr, "%s: got %d (%s)\n", text, rc, svdb_errmsg());
    assert_int_equal(rc, status);
    assert_non_null(strstr(svdb_errmsg(), CAT));
    char *after = file_in(f, CAT);
    assert_string_equal(after, text);
    free(after);
}

static void test_catalog__damaged_catalog(void **state)
{
    fixture *f = *state;
    svdb_catalog_close(f->cat);
    f->cat = NULL;
    const char *bad[] = {
        "", "{half", "[]", "null", "{\"collections\":5}", "{\"version\":1}", "{\"collections\":[3]}",
        "{\"version\":\"1\",\"collections\":[]}", "{\"version\":true,\"collections\":[]}", "{\"version\":1.0,\"collections\":[]}",
        "{\"format\":\"x\",\"collections\":[]}", "{\"store\":5,\"collections\":[]}", "\xff\xfe{}", "{\"collections\":[]} x",
        "{\"collections\":[{\"id\":\"nope\",\"name\":\"a\",\"hnsw\":" HNSW "}]}",
        "{\"collections\":[{\"id\":\"2F1E0A39-2D1B-4C57-9A51-8A2B0BB2A7A4\",\"name\":\"a\",\"hnsw\":" HNSW "}]}",
        "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"\",\"hnsw\":" HNSW "}]}",
        "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\"}]}",
        "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\",\"metadata\":{\"a\":null},\"hnsw\":" HNSW "}]}",
        "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\",\"hnsw\":" HNSW "},{\"id\":\"" ID "\",\"name\":\"b\",\"hnsw\":" HNSW "}]}",
        "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\",\"hnsw\":" HNSW "},{\"id\":\"" ID "\",\"name\":\"a\",\"hnsw\":" HNSW "}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_open_fails(f, bad[i], SVDB_ECORRUPT);
    char deep[4001];
    memset(deep, '[', 2000);
    memset(deep + 2000, ']', 2000);
    deep[4000] = '\0';
    expect_open_fails(f, deep, SVDB_ECORRUPT);
    expect_open_fails(f, "{\"version\":2,\"collections\":[]}", SVDB_EVERSION);
    /* Every variant pysvdb wrote opens; a missing store id is added. */
    write_in(f, CAT, "{\"collections\":[{\"id\":\"" ID "\",\"name\":\"old\\n\",\"metadata\":{\"k\":[1,2]},\"hnsw\":"
                     "{\"space\":\"cosine\",\"ef_construction\":1,\"ef_search\":1,\"max_neighbors\":4,\"resize_factor\":1,"
                     "\"sync_threshold\":5,\"batch_size\":6,\"num_threads\":1}}]}");
    ASSERT_OK(open_cat(f));
    char *text = file_in(f, CAT);
    assert_non_null(strstr(text, "\"store\":\""));
    free(text);
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_get(f->cat, "old\n", &e));
    assert_int_equal(e->metric, SVDB_METRIC_COSINE);
    svdb_catalog_entries_free(e);
}

static void test_catalog__missing_catalog_with_collections(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "col", NULL, id);
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "col", NULL));
    ASSERT_OK(svdb_close(db));
    svdb_catalog_close(f->cat);
    f->cat = NULL;
    char *p = th_path(f->dir, CAT);
    unlink(p);
    free(p);
    for (int i = 0; i < 2; i++) {
        ASSERT_FAILS(open_cat(f), SVDB_ECORRUPT);
        assert_non_null(strstr(svdb_errmsg(), "missing"));
    }
    assert_false(exists_in(f, CAT));
    assert_true(exists_in(f, id));
}

/* ------------------------------------------------------------------ faults */

/* Runs op with the n-th I/O call failing, for every n until it succeeds:
 * each failure leaves the catalog file as it was, in memory and on disk. */
static void each_fault(fixture *f, int (*op)(svdb_catalog *c))
{
    for (long n = 1;; n++) {
        char *before = file_in(f, CAT);
        svdb_catalog_entry *e0;
        size_t n0, n1;
        ASSERT_OK(svdb_catalog_list(f->cat, &e0, &n0));
        svdb__io_fail_after(n, EIO);
        int rc = op(f->cat);
        svdb__io_fail_after(0, 0);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        if (rc == SVDB_OK) {
            free(before);
            svdb_catalog_entries_free(e0);
            assert_true(n > 1);
            return;
        }
        assert_true(msg[0] != '\0');
        char *after = file_in(f, CAT);
        svdb_catalog_entry *e1;
        ASSERT_OK(svdb_catalog_list(f->cat, &e1, &n1));
        if (strcmp(before, after)) {
            /* Only the directory's fsync after the rename: the change is made,
             * in memory as on disk, and the error says so. */
            assert_non_null(strstr(msg, "may not survive a crash"));
            assert_true(n0 != n1 || strcmp(e0[n0 - 1].name, e1[n1 - 1].name));
            svdb_catalog_entries_free(e0);
            svdb_catalog_entries_free(e1);
            free(before);
            free(after);
            return;
        }
        assert_int_equal(n0, n1);
        for (size_t i = 0; i < n0; i++) assert_string_equal(e0[i].name, e1[i].name);
        svdb_catalog_entries_free(e0);
        svdb_catalog_entries_free(e1);
        free(before);
        free(after);
        assert_false(exists_in(f, "pysvdb-chroma.json.tmp"));
    }
}

static int op_create(svdb_catalog *c) { return svdb_catalog_create(c, "new", "{\"a\":1}", NULL, NULL); }
static int op_rename(svdb_catalog *c) { return svdb_catalog_rename(c, "new", "renamed"); }
static int op_delete(svdb_catalog *c) { return svdb_catalog_delete(c, "renamed"); }

static void test_catalog__io_faults_change_nothing(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "keep", NULL, id);
    each_fault(f, op_create);
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "new", NULL));
    ASSERT_OK(svdb_close(db));
    each_fault(f, op_rename);
    each_fault(f, op_delete);
    reopen(f);
    size_t n;
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_list(f->cat, &e, &n));
    assert_int_equal(n, 1);
    assert_string_equal(e[0].name, "keep");
    svdb_catalog_entries_free(e);
    assert_int_equal(f->warnings, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog__options_and_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__create_if_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__lock_and_use_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__fork_child_cannot_use_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__create_get_list_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__bad_metadata_and_settings_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__rename_and_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__collection_open_claim_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__interrupted_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__strays_are_left_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__damaged_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__missing_catalog_with_collections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__io_faults_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
