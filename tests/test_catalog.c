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
#include <fcntl.h>
#include <sys/file.h>
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
    /* A second handle (as a second process would) shares the catalog and
     * sees what the first saves at its next call. */
    svdb_catalog *c = NULL;
    ASSERT_OK(svdb_catalog_open(&c, f->dir, NULL));
    char id[37];
    create(f, "from-first", NULL, id);
    svdb_catalog_entry *got;
    ASSERT_OK(svdb_catalog_get(c, "from-first", &got));
    assert_string_equal(got->id, id);
    svdb_catalog_entries_free(got);
    ASSERT_OK(svdb_catalog_create(c, "from-second", NULL, NULL, NULL));
    ASSERT_FAILS(svdb_catalog_create(f->cat, "from-second", NULL, NULL, NULL), SVDB_EEXISTS);
    ASSERT_OK(svdb_catalog_delete(f->cat, "from-second"));
    ASSERT_FAILS(svdb_catalog_get(c, "from-second", &got), SVDB_ENOTFOUND);
    ASSERT_OK(svdb_catalog_close(c));
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
    /* The single-process catalog of earlier versions held the lock file
     * exclusively with its pid in it: a new handle names it and stays out. */
    char *lock = th_path(f->dir, "pysvdb-chroma.lock");
    int fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, "4242", 4, 0), 4);
    ASSERT_FAILS(svdb_catalog_open(&c, f->dir, NULL), SVDB_ELOCKED);
    assert_non_null(strstr(svdb_errmsg(), "pid 4242"));
    assert_null(c);
    close(fd);
    free(lock);
    ASSERT_OK(open_cat(f)); /* free again */
    ASSERT_OK(svdb_catalog_get(f->cat, "from-first", &got));
    svdb_catalog_entries_free(got);
}

static void test_catalog__fork_child_cannot_use_it(void **state)
{
    fixture *f = *state;
    svdb_catalog *view;
    ASSERT_OK(svdb_catalog_open_database(&view, f->cat, NULL, NULL));
    pid_t pid = th_fork();
    if (pid == 0) {
        size_t n;
        svdb_catalog_entry *e;
        svdb_catalog *c;
        int ok = svdb_catalog_list(f->cat, &e, &n) == SVDB_EMISUSE && strstr(svdb_errmsg(), "fork");
        ok = ok && svdb_catalog_list(view, &e, &n) == SVDB_EMISUSE && strstr(svdb_errmsg(), "fork");
        /* The child may open a handle of its own. */
        ok = ok && svdb_catalog_open(&c, f->dir, NULL) == SVDB_OK;
        ok = ok && svdb_catalog_create(c, "from-child", NULL, NULL, NULL) == SVDB_OK;
        ok = ok && svdb_catalog_close(c) == SVDB_OK;
        th_child_exit(ok ? 0 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    char id[37];
    create(f, "still", NULL, id);
    svdb_catalog_entry *got;
    ASSERT_OK(svdb_catalog_get(f->cat, "from-child", &got));
    svdb_catalog_entries_free(got);
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
    expect_open_fails(f, "{\"version\":3,\"collections\":[]}", SVDB_EVERSION);
    assert_non_null(strstr(svdb_errmsg(), "versions 1 and 2"));
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

/* ------------------------------------------------------------------ tenants and databases */

/* expr fails with `code`, a message, and the catalog file as it was. */
#define UNCHANGED(f, expr, code)                                                                                       \
    do {                                                                                                               \
        char *before_ = file_in(f, CAT);                                                                               \
        ASSERT_FAILS(expr, code);                                                                                      \
        char *after_ = file_in(f, CAT);                                                                                \
        assert_string_equal(before_, after_);                                                                          \
        free(before_);                                                                                                 \
        free(after_);                                                                                                  \
    } while (0)

#define ZERO_ID "00000000-0000-0000-0000-000000000000"

/* The names of the tenant's databases (limit, offset), joined by ','. */
static void db_names(fixture *f, const char *tenant, int64_t limit, int64_t offset, char *out, size_t cap)
{
    svdb_catalog_database *d = (svdb_catalog_database *)1;
    size_t n = 7;
    ASSERT_OK(svdb_catalog_list_databases(f->cat, tenant, limit, offset, &d, &n));
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(d[i].tenant, tenant ? tenant : "default_tenant");
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", d[i].name);
    }
    if (!n) assert_null(d);
    svdb_catalog_databases_free(d);
}

static void test_catalog__tenants(void **state)
{
    fixture *f = *state;
    ASSERT_OK(svdb_catalog_get_tenant(f->cat, "default_tenant"));
    UNCHANGED(f, svdb_catalog_get_tenant(f->cat, "acme"), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "acme"));
    UNCHANGED(f, svdb_catalog_get_tenant(f->cat, NULL), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_get_tenant(f->cat, ""), SVDB_EINVAL);
    const char *bad[] = {NULL, "", "ab", "\xc3\xa9\xc3\xa9" /* 2 characters, 4 bytes */, "ab\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) UNCHANGED(f, svdb_catalog_create_tenant(f->cat, bad[i]), SVDB_EINVAL);
    assert_non_null(strstr(svdb_errmsg(), "UTF-8"));
    UNCHANGED(f, svdb_catalog_create_tenant(f->cat, "default_tenant"), SVDB_EEXISTS);
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "\xc3\xa9\xc3\xa9\xc3\xa9"));
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "a b/c"));
    UNCHANGED(f, svdb_catalog_create_tenant(f->cat, "acme"), SVDB_EEXISTS);
    assert_non_null(strstr(svdb_errmsg(), "already exists"));
    reopen(f);
    ASSERT_OK(svdb_catalog_get_tenant(f->cat, "acme"));
    ASSERT_OK(svdb_catalog_get_tenant(f->cat, "\xc3\xa9\xc3\xa9\xc3\xa9"));
    ASSERT_OK(svdb_catalog_get_tenant(f->cat, "a b/c"));
    /* A new tenant has no database, not even a default one (as ChromaDB). */
    char names[256];
    db_names(f, "acme", -1, 0, names, sizeof names);
    assert_string_equal(names, "");
    svdb_catalog_database *d;
    ASSERT_FAILS(svdb_catalog_get_database(f->cat, "acme", "default_database", &d), SVDB_ENOTFOUND);
    assert_null(d);
    svdb_catalog *v;
    ASSERT_FAILS(svdb_catalog_open_database(&v, f->cat, "acme", NULL), SVDB_ENOTFOUND);
    assert_null(v);
    ASSERT_FAILS(svdb_catalog_create_tenant((svdb_catalog *)0x1235, "xyz"), SVDB_EMISUSE);
}

static void test_catalog__databases(void **state)
{
    fixture *f = *state;
    svdb_catalog_database *d = (svdb_catalog_database *)1;
    ASSERT_OK(svdb_catalog_get_database(f->cat, NULL, "default_database", &d));
    assert_string_equal(d->id, ZERO_ID);
    assert_string_equal(d->name, "default_database");
    assert_string_equal(d->tenant, "default_tenant");
    svdb_catalog_databases_free(d);
    svdb_catalog_databases_free(NULL);
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    const char *bad[] = {NULL, "", "ab", "x\xff\xfe"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        UNCHANGED(f, svdb_catalog_create_database(f->cat, NULL, bad[i]), SVDB_EINVAL);
        UNCHANGED(f, svdb_catalog_get_database(f->cat, NULL, bad[i], &d), SVDB_EINVAL);
        assert_null(d);
    }
    UNCHANGED(f, svdb_catalog_create_database(f->cat, "", "sales"), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_create_database(f->cat, "nobody", "sales"), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "no tenant 'nobody'"));
    UNCHANGED(f, svdb_catalog_create_database(f->cat, NULL, "default_database"), SVDB_EEXISTS);
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "zeta"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, "default_tenant", "alpha"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "\xc3\xa9\xc3\xa9")); /* 3 bytes or more: ChromaDB counts bytes here */
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "Mid"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, "acme", "zeta")); /* the same name in another tenant */
    UNCHANGED(f, svdb_catalog_create_database(f->cat, NULL, "zeta"), SVDB_EEXISTS);
    assert_non_null(strstr(svdb_errmsg(), "already exists"));
    char zeta[37], acme_zeta[37];
    ASSERT_OK(svdb_catalog_get_database(f->cat, NULL, "zeta", &d));
    snprintf(zeta, sizeof zeta, "%s", d->id);
    svdb_catalog_databases_free(d);
    ASSERT_OK(svdb_catalog_get_database(f->cat, "acme", "zeta", &d));
    snprintf(acme_zeta, sizeof acme_zeta, "%s", d->id);
    assert_string_equal(d->tenant, "acme");
    svdb_catalog_databases_free(d);
    assert_true(strcmp(zeta, acme_zeta) && strcmp(zeta, ZERO_ID));
    assert_int_equal(strlen(zeta), 36);
    UNCHANGED(f, svdb_catalog_get_database(f->cat, NULL, "nope", &d), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "no database 'nope'"));
    UNCHANGED(f, svdb_catalog_get_database(f->cat, "nobody", "zeta", &d), SVDB_ENOTFOUND);
    UNCHANGED(f, svdb_catalog_get_database(f->cat, NULL, "zeta", NULL), SVDB_EINVAL);
    reopen(f);
    /* Ordered by name (byte order), whatever the order of creation. */
    char names[256];
    db_names(f, NULL, -1, 0, names, sizeof names);
    assert_string_equal(names, "Mid,alpha,default_database,zeta,\xc3\xa9\xc3\xa9");
    db_names(f, NULL, 2, 1, names, sizeof names);
    assert_string_equal(names, "alpha,default_database");
    db_names(f, NULL, 100, 3, names, sizeof names);
    assert_string_equal(names, "zeta,\xc3\xa9\xc3\xa9");
    db_names(f, NULL, 0, 0, names, sizeof names);
    assert_string_equal(names, "");
    db_names(f, NULL, -1, 5, names, sizeof names);
    assert_string_equal(names, "");
    db_names(f, NULL, 1, INT64_MAX, names, sizeof names);
    assert_string_equal(names, "");
    db_names(f, "acme", -1, 0, names, sizeof names);
    assert_string_equal(names, "zeta");
    db_names(f, "nobody", -1, 0, names, sizeof names); /* none, as ChromaDB answers */
    assert_string_equal(names, "");
    ASSERT_OK(svdb_catalog_get_database(f->cat, NULL, "zeta", &d));
    assert_string_equal(d->id, zeta); /* kept across reopen */
    svdb_catalog_databases_free(d);
    svdb_catalog_database *l = (svdb_catalog_database *)1;
    size_t n = 9;
    UNCHANGED(f, svdb_catalog_list_databases(f->cat, NULL, -2, 0, &l, &n), SVDB_EINVAL);
    assert_true(l == NULL && n == 0);
    UNCHANGED(f, svdb_catalog_list_databases(f->cat, NULL, -1, -1, &l, &n), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_list_databases(f->cat, NULL, -1, 0, NULL, &n), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_list_databases(f->cat, NULL, -1, 0, &l, NULL), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_list_databases(f->cat, "", -1, 0, &l, &n), SVDB_EINVAL);
    ASSERT_FAILS(svdb_catalog_list_databases((svdb_catalog *)0x1235, NULL, -1, 0, &l, &n), SVDB_EMISUSE);
}

/* The names of the collections the handle lists, joined by ','. */
static void col_names(svdb_catalog *cat, char *out, size_t cap)
{
    svdb_catalog_entry *e;
    size_t n;
    ASSERT_OK(svdb_catalog_list(cat, &e, &n));
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", e[i].name);
    svdb_catalog_entries_free(e);
}

static void test_catalog__views(void **state)
{
    fixture *f = *state;
    svdb_catalog *v = (svdb_catalog *)1, *w, *dflt;
    ASSERT_FAILS(svdb_catalog_open_database(NULL, f->cat, NULL, NULL), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_open_database(&v, f->cat, "nobody", "sales"), SVDB_ENOTFOUND);
    assert_null(v);
    UNCHANGED(f, svdb_catalog_open_database(&v, f->cat, NULL, "sales"), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "no database 'sales' in tenant 'default_tenant'"));
    UNCHANGED(f, svdb_catalog_open_database(&v, f->cat, NULL, "ab"), SVDB_EINVAL);
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, "acme", "sales"));
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, "acme", "sales"));
    ASSERT_OK(svdb_catalog_open_database(&dflt, f->cat, NULL, NULL));
    /* Names are per database: "col" in the default database and in the view's. */
    char a[37], b[37];
    create(f, "col", NULL, a);
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_create(v, "col", "{\"in\":\"sales\"}", NULL, &e));
    snprintf(b, sizeof b, "%s", e->id);
    assert_non_null(strstr(e->path, b));
    svdb_catalog_entries_free(e);
    assert_string_not_equal(a, b);
    UNCHANGED(f, svdb_catalog_create(v, "col", NULL, NULL, NULL), SVDB_EEXISTS);
    assert_non_null(strstr(svdb_errmsg(), "in database 'sales' of tenant 'acme'"));
    ASSERT_OK(svdb_catalog_create(v, "other", NULL, NULL, NULL));
    char names[256];
    col_names(f->cat, names, sizeof names);
    assert_string_equal(names, "col");
    col_names(dflt, names, sizeof names);
    assert_string_equal(names, "col");
    col_names(v, names, sizeof names);
    assert_string_equal(names, "col,other");
    ASSERT_OK(svdb_catalog_get(v, "col", &e));
    assert_string_equal(e->id, b);
    assert_string_equal(e->metadata, "{\"in\":\"sales\"}");
    svdb_catalog_entries_free(e);
    UNCHANGED(f, svdb_catalog_get(f->cat, "other", &e), SVDB_ENOTFOUND);
    UNCHANGED(f, svdb_catalog_get(v, "nope", &e), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "in database 'sales' of tenant 'acme'"));
    /* Every collection call works in the view's database. */
    UNCHANGED(f, svdb_catalog_rename(v, "other", "col"), SVDB_EEXISTS);
    ASSERT_OK(svdb_catalog_rename(v, "other", "renamed"));
    ASSERT_OK(svdb_catalog_set_metadata(v, "renamed", "{\"k\":1}"));
    ASSERT_OK(svdb_catalog_modify(v, "renamed", NULL, NULL, "{\"ef_search\":33}"));
    ASSERT_OK(svdb_catalog_rename(f->cat, "col", "main"));
    col_names(v, names, sizeof names);
    assert_string_equal(names, "col,renamed");
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, v, "col", NULL));
    ASSERT_OK(svdb_close(db));
    assert_true(exists_in(f, b));
    ASSERT_OK(svdb_catalog_claim(v, "col"));
    char *path;
    ASSERT_OK(svdb_catalog_collection_path(v, "col", &path));
    assert_non_null(strstr(path, b));
    svdb_free(path);
    UNCHANGED(f, svdb_catalog_collection_path(v, "main", &path), SVDB_ENOTFOUND);
    /* A view of a view is a view of the catalog; NULL tenant: the handle's. */
    ASSERT_OK(svdb_catalog_create_database(v, NULL, "support"));
    ASSERT_OK(svdb_catalog_get_database(f->cat, "acme", "support", (svdb_catalog_database **)&e));
    svdb_catalog_databases_free((svdb_catalog_database *)e);
    ASSERT_OK(svdb_catalog_open_database(&w, v, NULL, "support"));
    col_names(w, names, sizeof names);
    assert_string_equal(names, "");
    ASSERT_OK(svdb_catalog_close(w));
    ASSERT_FAILS(svdb_catalog_list(w, &e, &(size_t){0}), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_close(w), SVDB_EMISUSE);
    ASSERT_OK(svdb_catalog_delete(v, "renamed"));
    /* The file names each collection's tenant and database; reopened, they are where they were. */
    char *text = file_in(f, CAT);
    assert_non_null(strstr(text, "\"version\":2"));
    assert_non_null(strstr(text, "\"name\":\"col\",\"tenant\":\"acme\",\"database\":\"sales\""));
    assert_non_null(strstr(text, "\"name\":\"main\",\"tenant\":\"default_tenant\",\"database\":\"default_database\""));
    free(text);
    reopen(f); /* closing the catalog closed its views */
    ASSERT_FAILS(svdb_catalog_list(v, &e, &(size_t){0}), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_catalog_close(dflt), SVDB_EMISUSE);
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, "acme", "sales"));
    col_names(v, names, sizeof names);
    assert_string_equal(names, "col");
    col_names(f->cat, names, sizeof names);
    assert_string_equal(names, "main");
    ASSERT_OK(svdb_catalog_get(v, "col", &e));
    assert_string_equal(e->id, b);
    svdb_catalog_entries_free(e);
    ASSERT_OK(svdb_catalog_close(v));
    assert_int_equal(f->warnings, 0);
}

static void test_catalog__delete_database(void **state)
{
    fixture *f = *state;
    svdb_catalog *v, *dflt;
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "sales"));
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, NULL, "sales"));
    ASSERT_OK(svdb_catalog_open_database(&dflt, f->cat, NULL, NULL));
    char keep[37], a[37], b[37];
    create(f, "keep", NULL, keep);
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_create(v, "a", NULL, NULL, &e));
    snprintf(a, sizeof a, "%s", e->id);
    svdb_catalog_entries_free(e);
    ASSERT_OK(svdb_catalog_create(v, "b", NULL, NULL, &e));
    snprintf(b, sizeof b, "%s", e->id);
    svdb_catalog_entries_free(e);
    svdb *db, *kdb;
    ASSERT_OK(svdb_catalog_open_collection(&kdb, f->cat, "keep", NULL));
    ASSERT_OK(svdb_catalog_open_collection(&db, v, "b", NULL)); /* "a" has no directory */
    UNCHANGED(f, svdb_catalog_delete_database(f->cat, NULL, "sales"), SVDB_ELOCKED);
    char marker[64];
    snprintf(marker, sizeof marker, "%s/pysvdb-collection.json", b);
    char *m = file_in(f, marker);
    assert_non_null(strstr(m, "\"state\": \"live\""));
    free(m);
    ASSERT_OK(svdb_close(db));
    UNCHANGED(f, svdb_catalog_delete_database(f->cat, NULL, NULL), SVDB_EINVAL);
    UNCHANGED(f, svdb_catalog_delete_database(f->cat, NULL, "nope"), SVDB_ENOTFOUND);
    UNCHANGED(f, svdb_catalog_delete_database(f->cat, "nobody", "sales"), SVDB_ENOTFOUND);
    ASSERT_OK(svdb_catalog_delete_database(f->cat, NULL, "sales")); /* the collection of another database stays open */
    assert_false(exists_in(f, b));
    svdb_catalog_database *d;
    ASSERT_FAILS(svdb_catalog_get_database(f->cat, NULL, "sales", &d), SVDB_ENOTFOUND);
    /* The view stays, and answers that its database is gone. */
    size_t n;
    ASSERT_FAILS(svdb_catalog_list(v, &e, &n), SVDB_ENOTFOUND);
    assert_non_null(strstr(svdb_errmsg(), "deleted"));
    ASSERT_FAILS(svdb_catalog_create(v, "c", NULL, NULL, NULL), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_get(v, "a", &e), SVDB_ENOTFOUND);
    ASSERT_OK(svdb_catalog_purge(f->cat, a)); /* forgotten: no longer listed */
    /* Made again, it is a new, empty database, which the view finds by name. */
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "sales"));
    char names[256];
    col_names(v, names, sizeof names);
    assert_string_equal(names, "");
    ASSERT_OK(svdb_catalog_create(v, "a", NULL, NULL, NULL));
    ASSERT_OK(svdb_close(kdb));
    /* The default database can be deleted too (as in ChromaDB), and stays deleted. */
    ASSERT_OK(svdb_catalog_delete_database(f->cat, NULL, "default_database"));
    assert_false(exists_in(f, keep));
    ASSERT_FAILS(svdb_catalog_list(f->cat, &e, &n), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_create(dflt, "x", NULL, NULL, NULL), SVDB_ENOTFOUND);
    reopen(f);
    ASSERT_FAILS(svdb_catalog_get(f->cat, "keep", &e), SVDB_ENOTFOUND);
    ASSERT_FAILS(svdb_catalog_open_database(&v, f->cat, NULL, NULL), SVDB_ENOTFOUND);
    db_names(f, NULL, -1, 0, names, sizeof names);
    assert_string_equal(names, "sales");
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "default_database"));
    ASSERT_OK(svdb_catalog_get_database(f->cat, NULL, "default_database", &d));
    assert_string_not_equal(d->id, ZERO_ID); /* a new database */
    svdb_catalog_databases_free(d);
    col_names(f->cat, names, sizeof names);
    assert_string_equal(names, "");
    assert_int_equal(f->warnings, 0);
}

/* Deletes database `name` in a child that dies at `step`. */
static void crash_delete_database(fixture *f, const char *name, const char *step)
{
    ASSERT_OK(svdb_catalog_close(f->cat));
    f->cat = NULL;
    pid_t pid = th_fork();
    if (pid == 0) {
        crash_at = step;
        svdb__catalog_hook = crash_hook;
        int ok = open_cat(f) == SVDB_OK && svdb_catalog_delete_database(f->cat, NULL, name) == SVDB_OK;
        th_child_exit(ok ? 2 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    ASSERT_OK(open_cat(f));
}

static void test_catalog__interrupted_delete_database(void **state)
{
    fixture *f = *state;
    svdb_catalog *v;
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "sales"));
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, NULL, "sales"));
    char ids[2][37];
    svdb *db;
    for (int i = 0; i < 2; i++) {
        svdb_catalog_entry *e;
        ASSERT_OK(svdb_catalog_create(v, i ? "b" : "a", NULL, NULL, &e));
        snprintf(ids[i], sizeof ids[i], "%s", e->id);
        svdb_catalog_entries_free(e);
        ASSERT_OK(svdb_catalog_open_collection(&db, v, i ? "b" : "a", NULL));
        ASSERT_OK(svdb_close(db));
    }
    char marker[64];
    snprintf(marker, sizeof marker, "%s/pysvdb-collection.json", ids[1]);
    crash_delete_database(f, "sales", "marked"); /* before the catalog forgot it: it stays */
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, NULL, "sales"));
    char names[64];
    col_names(v, names, sizeof names);
    assert_string_equal(names, "a,b");
    char *m = file_in(f, marker);
    assert_non_null(strstr(m, "deleting"));
    free(m);
    ASSERT_OK(svdb_catalog_open_collection(&db, v, "b", NULL)); /* marked live again */
    ASSERT_OK(svdb_close(db));
    m = file_in(f, marker);
    assert_non_null(strstr(m, "live"));
    free(m);
    crash_delete_database(f, "sales", "forgot"); /* after: the next open finishes it */
    assert_false(exists_in(f, ids[0]));
    assert_false(exists_in(f, ids[1]));
    ASSERT_FAILS(svdb_catalog_open_database(&v, f->cat, NULL, "sales"), SVDB_ENOTFOUND);
    assert_int_equal(f->warnings, 0);
}

/* A catalog of format version 1 (before tenants and databases) opens as
 * the default database of the default tenant, unchanged until a change
 * writes version 2. */
static void test_catalog__version_1_catalog(void **state)
{
    fixture *f = *state;
    svdb_catalog_close(f->cat);
    f->cat = NULL;
    const char *v1 = "{\"format\":\"pysvdb-chroma\",\"version\":1,\"store\":\"" ID "\",\"collections\":["
                     "{\"id\":\"11111111-2d1b-4c57-9a51-8a2b0bb2a7a4\",\"name\":\"one\",\"metadata\":{\"k\":1.50},\"hnsw\":" HNSW "},"
                     "{\"id\":\"22222222-2d1b-4c57-9a51-8a2b0bb2a7a4\",\"name\":\"two\",\"metadata\":null,\"hnsw\":" HNSW "}]}";
    write_in(f, CAT, v1);
    ASSERT_OK(open_cat(f));
    char *text = file_in(f, CAT);
    assert_string_equal(text, v1);
    free(text);
    char names[64];
    col_names(f->cat, names, sizeof names);
    assert_string_equal(names, "one,two");
    svdb_catalog_database *d;
    ASSERT_OK(svdb_catalog_get_database(f->cat, NULL, "default_database", &d));
    assert_string_equal(d->id, ZERO_ID);
    svdb_catalog_databases_free(d);
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    text = file_in(f, CAT);
    assert_non_null(strstr(text, "\"version\":2"));
    assert_non_null(strstr(text, "\"tenants\":[{\"name\":\"default_tenant\"},{\"name\":\"acme\"}]"));
    assert_non_null(strstr(text, "\"databases\":[{\"id\":\"" ZERO_ID "\",\"name\":\"default_database\",\"tenant\":\"default_tenant\"}]"));
    assert_non_null(strstr(text, "{\"id\":\"11111111-2d1b-4c57-9a51-8a2b0bb2a7a4\",\"name\":\"one\",\"tenant\":\"default_tenant\","
                                 "\"database\":\"default_database\",\"metadata\":{\"k\":1.50},"));
    assert_non_null(strstr(text, "\"store\":\"" ID "\""));
    free(text);
    reopen(f);
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_get(f->cat, "two", &e));
    assert_string_equal(e->id, "22222222-2d1b-4c57-9a51-8a2b0bb2a7a4");
    svdb_catalog_entries_free(e);
    ASSERT_OK(svdb_catalog_get_tenant(f->cat, "acme"));
}

static void test_catalog__damaged_version_2(void **state)
{
    fixture *f = *state;
    svdb_catalog_close(f->cat);
    f->cat = NULL;
#define T_DEF "{\"name\":\"default_tenant\"}"
#define D_DEF "{\"id\":\"" ZERO_ID "\",\"name\":\"default_database\",\"tenant\":\"default_tenant\"}"
#define COL(id, name, t, d) "{\"id\":\"" id "\",\"name\":\"" name "\",\"tenant\":\"" t "\",\"database\":\"" d "\",\"hnsw\":" HNSW "}"
#define ID2 "3f1e0a39-2d1b-4c57-9a51-8a2b0bb2a7a4"
    const char *bad[] = {
        "{\"version\":2,\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"collections\":[]}",
        "{\"version\":2,\"tenants\":{},\"databases\":[],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[],\"databases\":[],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[5],\"databases\":[],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[{\"name\":\"\"}],\"databases\":[],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "," T_DEF "],\"databases\":[],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":5,\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[[]],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[{\"id\":\"x\",\"name\":\"abc\",\"tenant\":\"default_tenant\"}],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[{\"id\":\"" ID "\",\"name\":5,\"tenant\":\"default_tenant\"}],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[{\"id\":\"" ID "\",\"name\":\"abc\",\"tenant\":\"acme\"}],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[{\"id\":\"" ID "\",\"name\":\"abc\"}],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF "," D_DEF "],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF ",{\"id\":\"" ID "\",\"name\":\"default_database\",\"tenant\":\"default_tenant\"}],\"collections\":[]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF "],\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\",\"hnsw\":" HNSW "}]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF "],\"collections\":[{\"id\":\"" ID "\",\"name\":\"a\",\"tenant\":\"default_tenant\",\"database\":5,\"hnsw\":" HNSW "}]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF "],\"collections\":[" COL(ID, "a", "default_tenant", "other") "]}",
        "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF "],\"collections\":[" COL(ID, "a", "default_tenant", "default_database") "," COL(ID2, "a", "default_tenant", "default_database") "]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_open_fails(f, bad[i], SVDB_ECORRUPT);
    /* The same name in two databases, and a catalog without its default database, open. */
    write_in(f, CAT, "{\"version\":2,\"tenants\":[{\"name\":\"acme\"}," T_DEF "],\"databases\":[{\"id\":\"" ID2 "\",\"name\":\"db1\",\"tenant\":\"acme\"}],"
                     "\"collections\":[" COL(ID, "a", "acme", "db1") "]}");
    ASSERT_OK(open_cat(f));
    svdb_catalog *v;
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, "acme", "db1"));
    char names[64];
    col_names(v, names, sizeof names);
    assert_string_equal(names, "a");
    svdb_catalog_close(f->cat);
    f->cat = NULL;
    write_in(f, CAT, "{\"version\":2,\"tenants\":[" T_DEF "],\"databases\":[" D_DEF ",{\"id\":\"" ID2 "\",\"name\":\"db1\",\"tenant\":\"default_tenant\"}],"
                     "\"collections\":[" COL(ID, "a", "default_tenant", "default_database") "," COL("4f1e0a39-2d1b-4c57-9a51-8a2b0bb2a7a4", "a", "default_tenant", "db1") "]}");
    ASSERT_OK(open_cat(f));
    col_names(f->cat, names, sizeof names);
    assert_string_equal(names, "a");
#undef T_DEF
#undef D_DEF
#undef COL
#undef ID2
}

/* A description of the catalog's tenants, databases and collections as the
 * handle reports them (not the file). */
static char *describe(fixture *f)
{
    char *out = calloc(1, 8192);
    snprintf(out, 8192, "acme:%d ", svdb_catalog_get_tenant(f->cat, "acme"));
    const char *tenants[] = {"default_tenant", "acme"};
    for (int t = 0; t < 2; t++) {
        svdb_catalog_database *d;
        size_t n;
        ASSERT_OK(svdb_catalog_list_databases(f->cat, tenants[t], -1, 0, &d, &n));
        for (size_t i = 0; i < n; i++) {
            svdb_catalog *v;
            char names[256] = "";
            ASSERT_OK(svdb_catalog_open_database(&v, f->cat, tenants[t], d[i].name));
            col_names(v, names, sizeof names);
            svdb_catalog_close(v);
            snprintf(out + strlen(out), 8192 - strlen(out), "%s/%s=%s[%s] ", tenants[t], d[i].name, d[i].id, names);
        }
        svdb_catalog_databases_free(d);
    }
    return out;
}

/* Runs op with the n-th I/O call failing, for every n until it succeeds:
 * each failure leaves the catalog as it was, in the file and the handle,
 * but for a failed directory fsync after the rename (the change is made,
 * in both, and the message says so). */
static void each_fault_state(fixture *f, int (*op)(svdb_catalog *c))
{
    for (long n = 1;; n++) {
        char *before = file_in(f, CAT), *s0 = describe(f);
        svdb__io_fail_after(n, EIO);
        int rc = op(f->cat);
        svdb__io_fail_after(0, 0);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        char *after = file_in(f, CAT), *s1 = describe(f);
        int done = rc == SVDB_OK || strcmp(before, after);
        if (rc == SVDB_OK) assert_true(n > 1);
        else if (done) assert_non_null(strstr(msg, "may not survive a crash"));
        else assert_true(msg[0] != '\0');
        if (done) assert_string_not_equal(s0, s1);
        else assert_string_equal(s0, s1);
        assert_false(exists_in(f, "pysvdb-chroma.json.tmp"));
        free(before);
        free(after);
        free(s0);
        free(s1);
        if (done) return;
    }
}

static int op_create_tenant(svdb_catalog *c) { return svdb_catalog_create_tenant(c, "acme"); }
static int op_create_db(svdb_catalog *c) { return svdb_catalog_create_database(c, "acme", "sales"); }
static int op_delete_db(svdb_catalog *c) { return svdb_catalog_delete_database(c, "acme", "sales"); }

static void test_catalog__io_faults_tenants_databases(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "keep", NULL, id);
    each_fault_state(f, op_create_tenant);
    each_fault_state(f, op_create_db);
    svdb_catalog *v;
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, "acme", "sales"));
    svdb *db;
    ASSERT_OK(svdb_catalog_create(v, "x", NULL, NULL, NULL));
    ASSERT_OK(svdb_catalog_create(v, "y", NULL, NULL, NULL));
    ASSERT_OK(svdb_catalog_open_collection(&db, v, "x", NULL));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_catalog_close(v));
    each_fault_state(f, op_delete_db);
    reopen(f);
    char *s = describe(f);
    char want[256];
    snprintf(want, sizeof want, "acme:0 default_tenant/default_database=%s[keep] ", ZERO_ID);
    assert_string_equal(s, want);
    free(s);
}

static int op_reset(svdb_catalog *c) { return svdb_catalog_reset(c); }

static void test_catalog__reset(void **state)
{
    fixture *f = *state;
    char keep[37], a[37];
    create(f, "keep", "{\"x\": 1}", keep);
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, "acme", "sales"));
    ASSERT_OK(svdb_catalog_create_database(f->cat, NULL, "extra"));
    svdb_catalog *v;
    ASSERT_OK(svdb_catalog_open_database(&v, f->cat, "acme", "sales"));
    svdb_catalog_entry *e;
    ASSERT_OK(svdb_catalog_create(v, "a", NULL, NULL, &e));
    snprintf(a, sizeof a, "%s", e->id);
    svdb_catalog_entries_free(e);
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, v, "a", NULL));
    UNCHANGED(f, svdb_catalog_reset(f->cat), SVDB_ELOCKED); /* an open collection: nothing changes */
    char marker[64];
    snprintf(marker, sizeof marker, "%s/pysvdb-collection.json", a);
    char *m = file_in(f, marker);
    assert_non_null(strstr(m, "\"state\": \"live\""));
    free(m);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "keep", NULL));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_catalog_reset(v)); /* from a view: the whole catalog */
    assert_false(exists_in(f, a));
    assert_false(exists_in(f, keep));
    char *d = describe(f);
    char want[256];
    snprintf(want, sizeof want, "acme:%d default_tenant/default_database=%s[] ", SVDB_ENOTFOUND, ZERO_ID);
    assert_string_equal(d, want);
    free(d);
    ASSERT_FAILS(svdb_catalog_get_tenant(f->cat, "acme"), SVDB_ENOTFOUND);
    size_t n;
    ASSERT_FAILS(svdb_catalog_list(v, &e, &n), SVDB_ENOTFOUND); /* the view's database is gone */
    ASSERT_OK(svdb_catalog_close(v));
    /* the default database deleted, then reset: made again with its all-zeros id */
    ASSERT_OK(svdb_catalog_delete_database(f->cat, NULL, "default_database"));
    ASSERT_OK(svdb_catalog_reset(f->cat));
    reopen(f);
    d = describe(f);
    assert_string_equal(d, want);
    free(d);
    /* an I/O failure at any step: the old catalog whole, or the reset one */
    ASSERT_OK(svdb_catalog_create_tenant(f->cat, "acme"));
    create(f, "again", NULL, keep);
    each_fault_state(f, op_reset);
    reopen(f);
    d = describe(f);
    assert_string_equal(d, want);
    free(d);
    assert_int_equal(f->warnings, 0);
}

static void test_catalog__interrupted_reset(void **state)
{
    fixture *f = *state;
    char id[37];
    create(f, "a", NULL, id);
    svdb *db;
    ASSERT_OK(svdb_catalog_open_collection(&db, f->cat, "a", NULL));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_catalog_close(f->cat));
    f->cat = NULL;
    const char *steps[] = {"marked", "forgot"};
    for (int i = 0; i < 2; i++) {
        pid_t pid = th_fork();
        if (pid == 0) {
            crash_at = steps[i];
            svdb__catalog_hook = crash_hook;
            int ok = open_cat(f) == SVDB_OK && svdb_catalog_reset(f->cat) == SVDB_OK;
            th_child_exit(ok ? 2 : 1);
        }
        assert_int_equal(th_wait(pid), 0);
        ASSERT_OK(open_cat(f));
        char names[64];
        col_names(f->cat, names, sizeof names);
        assert_string_equal(names, i == 0 ? "a" : ""); /* before the save it stays, after it goes */
        assert_int_equal(exists_in(f, id), i == 0);
        ASSERT_OK(svdb_catalog_close(f->cat));
        f->cat = NULL;
    }
    ASSERT_OK(open_cat(f));
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
        cmocka_unit_test_setup_teardown(test_catalog__tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__databases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__delete_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__interrupted_delete_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__version_1_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__damaged_version_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__io_faults_tenants_databases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__interrupted_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
