/* Public API: every function's happy path and every documented error path.
 * Each failure asserts the status, a non-empty message, and that the
 * collection is exactly as it was before the call. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

typedef struct fixture {
    char *dir;
    svdb *db;
    th_model m;
} fixture;

/* A fresh L2 collection with 4 rows of dim 3. */
static int setup_db(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir("api");
    if (svdb_open(&f->db, f->dir, NULL) != SVDB_OK) return -1;
    th_model_init(&f->m, 3);
    const char *ids[] = {"a", "b", "c", "d"};
    float v[] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    const char *metas[] = {"{\"k\":1}", NULL, "{\"s\":\"x y\"}", "{}"};
    if (svdb_add_batch(f->db, 4, ids, v, 3, metas) != SVDB_OK) return -1;
    for (int i = 0; i < 4; i++) th_model_put(&f->m, ids[i], v + 3 * i, metas[i]);
    *state = f;
    return 0;
}

static int teardown_db(void **state)
{
    fixture *f = *state;
    if (f->db) svdb_close(f->db);
    th_rmrf(f->dir);
    free(f->dir);
    th_model_free(&f->m);
    free(f);
    return 0;
}

static void check_unchanged(fixture *f) { assert_true(th_check_db(f->db, &f->m, 1)); }

/* ------------------------------------------------------------------ versions, messages, options */

static void test_api__versions(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SVDB_VERSION_MAJOR, SVDB_VERSION_MINOR, SVDB_VERSION_PATCH);
    assert_string_equal(svdb_version(), want);
    assert_int_equal(svdb_version_number(), SVDB_VERSION_NUMBER);
    assert_int_equal(SVDB_VERSION_NUMBER, SVDB_VERSION_MAJOR * 10000 + SVDB_VERSION_MINOR * 100 + SVDB_VERSION_PATCH);
    assert_int_equal(svdb_abi_version(), SVDB_ABI_VERSION);
    const char *p = svdb_simd_path();
    assert_non_null(p);
    assert_true(strcmp(p, "scalar") == 0 || strcmp(p, "avx2") == 0 || strcmp(p, "avx512") == 0 ||
                strcmp(p, "neon") == 0);
}

static void test_api__strerror(void **state)
{
    (void)state;
    const int codes[] = {SVDB_OK,       SVDB_EINVAL,   SVDB_EMISUSE,   SVDB_ENOMEM,    SVDB_EIO,    SVDB_ECORRUPT,
                         SVDB_EVERSION, SVDB_ELOCKED,  SVDB_ENOTFOUND, SVDB_EEXISTS,   SVDB_EDIM,   SVDB_ENOSPC,
                         SVDB_ETOOBIG,  SVDB_EREADONLY, SVDB_EMETA,    SVDB_EDUPLICATE, SVDB_EMISMATCH, SVDB_ECANCELED, SVDB_EBUSY};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = svdb_strerror(-9999);
    assert_non_null(unknown);
    assert_string_equal(unknown, "unknown status code");
    assert_string_equal(svdb_strerror(1), "unknown status code");
    assert_string_equal(svdb_strerror(SVDB_EBUSY - 1), "unknown status code");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(codes[i], -(int)i); /* codes are ABI: 0, -1, ..., -18 */
        const char *s = svdb_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, unknown);
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s, svdb_strerror(codes[j]));
    }
}

static void test_api__options_init(void **state)
{
    (void)state;
    svdb_open_options o;
    memset(&o, 0x5a, sizeof o);
    ASSERT_OK(svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION));
    assert_string_equal(svdb_errmsg(), "");
    assert_int_equal(o.version, SVDB_OPEN_OPTIONS_VERSION);
    assert_int_equal(o.dim, 0);
    assert_int_equal(o.metric, SVDB_METRIC_DEFAULT);
    assert_int_equal(o.durability, SVDB_DURABILITY_PERSIST);
    assert_int_equal(o.create, 1);
    assert_int_equal(o.index, SVDB_INDEX_DEFAULT);
    ASSERT_FAILS(svdb_open_options_init(NULL, SVDB_OPEN_OPTIONS_VERSION), SVDB_EINVAL);
    ASSERT_FAILS(svdb_open_options_init(&o, 0), SVDB_EINVAL);
    ASSERT_FAILS(svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION + 1), SVDB_EINVAL);

    svdb_search_options s;
    memset(&s, 0x5a, sizeof s);
    ASSERT_OK(svdb_search_options_init(&s, SVDB_SEARCH_OPTIONS_VERSION));
    assert_int_equal(s.version, SVDB_SEARCH_OPTIONS_VERSION);
    assert_int_equal(s.threads, 0);
    assert_null(s.where);
    ASSERT_FAILS(svdb_search_options_init(NULL, SVDB_SEARCH_OPTIONS_VERSION), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search_options_init(&s, 0), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search_options_init(&s, SVDB_SEARCH_OPTIONS_VERSION + 1), SVDB_EINVAL);
}

static void test_api__null_handle(void **state)
{
    (void)state;
    const char *ids[] = {"a"};
    float v[] = {1, 2};
    size_t n = 7;
    int x = 7;
    uint32_t d = 7;
    char **idl = NULL;
    svdb_hit *hits = NULL;
    char *meta = NULL;
    ASSERT_FAILS(svdb_persist(NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_add_batch(NULL, 1, ids, v, 2, NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_upsert_batch(NULL, 1, ids, v, 2, NULL), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_delete(NULL, 1, ids, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_get(NULL, "a", v, 2, &meta), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_contains(NULL, "a", &x), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_count(NULL, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_dim(NULL, &d), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_metric(NULL, &x), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_index_type(NULL, &x), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_ids(NULL, &idl, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_ids_where(NULL, NULL, NULL, &idl, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_search(NULL, v, 2, 1, NULL, &hits, &n), SVDB_EMISUSE);
    ASSERT_FAILS(svdb_search_batch(NULL, 1, v, 2, 1, NULL, &hits, &n), SVDB_EMISUSE);
    assert_int_equal(svdb_close(NULL), SVDB_OK);
    svdb_free(NULL);
    svdb_ids_free(NULL);
    svdb_hits_free(NULL);
}

/* ------------------------------------------------------------------ open */

static void test_api__open_defaults(void **state)
{
    (void)state;
    char *dir = th_tmpdir("api-open");
    svdb *db = (svdb *)0x1;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    assert_non_null(db);
    assert_string_equal(svdb_errmsg(), "");
    size_t n = 9;
    uint32_t d = 9;
    int metric = 9, index = 9;
    ASSERT_OK(svdb_count(db, &n));
    ASSERT_OK(svdb_dim(db, &d));
    ASSERT_OK(svdb_metric(db, &metric));
    ASSERT_OK(svdb_index_type(db, &index));
    assert_int_equal(n, 0);
    assert_int_equal(d, 0);
    assert_int_equal(metric, SVDB_METRIC_L2);
    assert_int_equal(index, SVDB_INDEX_FLAT);
    const char *files[] = {"LOCK", "snapshot.svdb", "wal.svdb"};
    for (int i = 0; i < 3; i++) {
        char *p = th_path(dir, files[i]);
        assert_true(th_file_size(p) >= 0);
        free(p);
    }
    char **ids = NULL;
    ASSERT_OK(svdb_ids(db, &ids, &n));
    assert_int_equal(n, 0);
    if (ids) assert_null(ids[0]);
    svdb_ids_free(ids);
    ASSERT_OK(svdb_persist(db));
    ASSERT_OK(svdb_close(db));
    assert_string_equal(svdb_errmsg(), "");

    /* Each metric and durability mode on a new collection, and dim fixed up front. */
    for (int m = SVDB_METRIC_L2; m <= SVDB_METRIC_IP; m++)
        for (int dur = 0; dur <= 1; dur++) {
            char *d2 = th_tmpdir("api-open-m");
            ASSERT_OK(th_open(&db, d2, 5, m, dur));
            ASSERT_OK(svdb_metric(db, &metric));
            ASSERT_OK(svdb_dim(db, &d));
            assert_int_equal(metric, m);
            assert_int_equal(d, 5);
            float v[4] = {1, 2, 3, 4};
            const char *id[] = {"x"};
            ASSERT_FAILS(svdb_add_batch(db, 1, id, v, 4, NULL), SVDB_EDIM);
            ASSERT_OK(svdb_close(db));
            th_rmrf(d2);
            free(d2);
        }
    th_rmrf(dir);
    free(dir);
}

static void test_api__open_errors(void **state)
{
    (void)state;
    char *dir = th_tmpdir("api-openerr");
    svdb *db = (svdb *)0x1;
    svdb_open_options o;
    ASSERT_FAILS(svdb_open(NULL, dir, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_open(&db, NULL, NULL), SVDB_EINVAL);
    assert_null(db);
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, "", NULL), SVDB_EINVAL);
    assert_null(db);

    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.version = 0;
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EINVAL);
    assert_null(db);
    o.version = SVDB_OPEN_OPTIONS_VERSION + 1;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EINVAL);
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.metric = 4;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EINVAL);
    o.metric = -1;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EINVAL);
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.durability = 2;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EINVAL);
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = SVDB_MAX_DIM + 1;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_ETOOBIG);
    /* None of the rejected opens created anything. */
    assert_true(th_file_size(dir) < 0);

    /* create = 0 on a missing path, and on an empty directory. */
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_ENOTFOUND);
    assert_null(db);
    assert_true(th_file_size(dir) < 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_ENOTFOUND);
    char *snap = th_path(dir, "snapshot.svdb");
    assert_true(th_file_size(snap) < 0);

    /* A regular file, a path under a regular file, and an uncreatable path. */
    char *file = th_path(dir, "plain");
    assert_int_equal(th_write_file(file, "x", 1), 0);
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, file, NULL), SVDB_EINVAL);
    assert_null(db);
    char *under = th_path(file, "sub");
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, under, NULL), SVDB_EIO);
    assert_null(db);
    db = (svdb *)0x1;
    ASSERT_FAILS(svdb_open(&db, "/proc/svdb-test-cannot-exist/x", NULL), SVDB_EIO);
    assert_null(db);
    ASSERT_FAILS(svdb_open(&db, "/proc/svdb-test-cannot-exist", NULL), SVDB_EIO);
    assert_null(db);

    /* A directory holding other files is not made a collection unless asked. */
    ASSERT_FAILS(svdb_open(&db, dir, NULL), SVDB_EINVAL);
    assert_null(db);
    assert_true(th_file_size(snap) < 0);
    char *wal = th_path(dir, "wal.svdb");
    assert_true(th_file_size(wal) < 0);
    free(wal);
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.allow_nonempty_dir = 1;
    ASSERT_OK(svdb_open(&db, dir, &o));
    ASSERT_OK(svdb_close(db));
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;

    /* create = 0 on an existing collection works. */
    ASSERT_OK(svdb_open(&db, dir, NULL));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, &o));
    ASSERT_OK(svdb_close(db));
    free(snap);
    free(file);
    free(under);
    th_rmrf(dir);
    free(dir);
}

static void test_api__open_mismatch(void **state)
{
    (void)state;
    char *dir = th_tmpdir("api-mismatch");
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 0, SVDB_METRIC_COSINE, 0));
    const char *ids[] = {"a"};
    float v[] = {1, 2, 3};
    ASSERT_OK(svdb_add_batch(db, 1, ids, v, 3, NULL));
    ASSERT_OK(svdb_close(db));
    db = (svdb *)0x1;
    ASSERT_FAILS(th_open(&db, dir, 4, 0, 0), SVDB_EMISMATCH);
    assert_null(db);
    ASSERT_FAILS(th_open(&db, dir, 0, SVDB_METRIC_L2, 0), SVDB_EMISMATCH);
    ASSERT_FAILS(th_open(&db, dir, 3, SVDB_METRIC_IP, 0), SVDB_EMISMATCH);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    ASSERT_FAILS(svdb_open(&db, dir, &o), SVDB_EMISMATCH);
    /* The failed opens released the lock and changed nothing. */
    ASSERT_OK(th_open(&db, dir, 3, SVDB_METRIC_COSINE, 1));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(svdb_open(&db, dir, NULL));
    int metric;
    uint32_t d;
    ASSERT_OK(svdb_metric(db, &metric));
    ASSERT_OK(svdb_dim(db, &d));
    assert_int_equal(metric, SVDB_METRIC_COSINE);
    assert_int_equal(d, 3);
    float got[3];
    ASSERT_OK(svdb_get(db, "a", got, 3, NULL));
    assert_memory_equal(got, v, sizeof v);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* ------------------------------------------------------------------ add */

static void test_api__add_and_read(void **state)
{
    fixture *f = *state;
    check_unchanged(f);
    assert_string_equal(svdb_errmsg(), "");
    int found = 0;
    ASSERT_OK(svdb_contains(f->db, "a", &found));
    assert_int_equal(found, 1);
    ASSERT_OK(svdb_contains(f->db, "zz", &found));
    assert_int_equal(found, 0);
    char *meta = (char *)0x1;
    float v[3];
    ASSERT_OK(svdb_get(f->db, "b", v, 3, &meta));
    assert_null(meta);
    ASSERT_OK(svdb_get(f->db, "a", NULL, 0, NULL));
    ASSERT_OK(svdb_get(f->db, "c", NULL, 0, &meta));
    assert_string_equal(meta, "{\"s\":\"x y\"}");
    svdb_free(meta);

    /* metadatas NULL, UTF-8 ids, the longest id, metadata kept byte for byte. */
    const char *ids2[] = {"e", "f"};
    float v2[] = {2, 2, 2, -3, 0.5f, 1e-30f};
    ASSERT_OK(svdb_add_batch(f->db, 2, ids2, v2, 3, NULL));
    th_model_put(&f->m, "e", v2, NULL);
    th_model_put(&f->m, "f", v2 + 3, NULL);
    char longid[SVDB_MAX_ID_BYTES + 1];
    memset(longid, 'L', SVDB_MAX_ID_BYTES);
    longid[SVDB_MAX_ID_BYTES] = '\0';
    const char *ids3[] = {"caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", longid};
    const char *metas3[] = {"  { \"a\" : [1, 2, {\"b\": null}] }  ", NULL, "{\"u\":\"\\u00e9\xc3\xa9\"}", "{}"};
    float v3[12];
    th_random(v3, 12, 3);
    ASSERT_OK(svdb_add_batch(f->db, 4, ids3, v3, 3, metas3));
    for (int i = 0; i < 4; i++) th_model_put(&f->m, ids3[i], v3 + 3 * i, metas3[i]);
    check_unchanged(f);

    /* Metadata of exactly the maximum size is accepted. */
    char *big = malloc(SVDB_MAX_METADATA_BYTES + 1);
    memset(big, ' ', SVDB_MAX_METADATA_BYTES);
    memcpy(big, "{\"k\":\"", 6);
    memset(big + 6, 'x', SVDB_MAX_METADATA_BYTES - 8);
    memcpy(big + SVDB_MAX_METADATA_BYTES - 2, "\"}", 2);
    big[SVDB_MAX_METADATA_BYTES] = '\0';
    const char *idb[] = {"big"};
    const char *mb[] = {big};
    ASSERT_OK(svdb_add_batch(f->db, 1, idb, v3, 3, mb));
    th_model_put(&f->m, "big", v3, big);
    check_unchanged(f);
    free(big);
}

static void test_api__add_errors(void **state)
{
    fixture *f = *state;
    svdb *db = f->db;
    const char *ids[] = {"n1", "n2"};
    float v[] = {1, 2, 3, 4, 5, 6};
    const char *metas[] = {NULL, NULL};

    ASSERT_FAILS(svdb_add_batch(db, 0, ids, v, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_add_batch(db, 2, NULL, v, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_add_batch(db, 2, ids, NULL, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_add_batch(db, 2, ids, v, 0, NULL), SVDB_EDIM);
    ASSERT_FAILS(svdb_add_batch(db, 2, ids, v, 2, NULL), SVDB_EDIM);
    ASSERT_FAILS(svdb_add_batch(db, 1, ids, v, 4, NULL), SVDB_EDIM);
    ASSERT_FAILS(svdb_add_batch(db, 1, ids, v, SVDB_MAX_DIM + 1, NULL), SVDB_EDIM);
    check_unchanged(f);

    const float bad_vals[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++)
        for (int pos = 0; pos < 6; pos++) {
            float w[6];
            memcpy(w, v, sizeof w);
            w[pos] = bad_vals[i];
            ASSERT_FAILS(svdb_add_batch(db, 2, ids, w, 3, NULL), SVDB_EINVAL);
            ASSERT_FAILS(svdb_upsert_batch(db, 2, ids, w, 3, NULL), SVDB_EINVAL);
        }
    check_unchanged(f);

    /* Bad ids, in the first and in the last row. */
    char toolong[SVDB_MAX_ID_BYTES + 2];
    memset(toolong, 'x', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    struct {
        const char *id;
        int code;
    } bad_ids[] = {
        {"", SVDB_EINVAL},
        {NULL, SVDB_EINVAL},
        {toolong, SVDB_ETOOBIG},
        {"\xff", SVDB_EINVAL},
        {"ab\x80", SVDB_EINVAL},        /* stray continuation byte */
        {"\xc3", SVDB_EINVAL},          /* truncated sequence */
        {"x\xe2\x82", SVDB_EINVAL},     /* truncated at the end */
        {"\xc0\x80", SVDB_EINVAL},      /* overlong NUL */
        {"\xe0\x80\xaf", SVDB_EINVAL},  /* overlong slash */
        {"\xed\xa0\x80", SVDB_EINVAL},  /* surrogate */
        {"\xf4\x90\x80\x80", SVDB_EINVAL}, /* > U+10FFFF */
        {"\xf8\x88\x80\x80\x80", SVDB_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        const char *first[] = {bad_ids[i].id, "ok-1"};
        const char *last[] = {"ok-1", bad_ids[i].id};
        ASSERT_FAILS(svdb_add_batch(db, 2, first, v, 3, NULL), bad_ids[i].code);
        ASSERT_FAILS(svdb_add_batch(db, 2, last, v, 3, NULL), bad_ids[i].code);
        ASSERT_FAILS(svdb_upsert_batch(db, 2, last, v, 3, NULL), bad_ids[i].code);
        ASSERT_FAILS(svdb_upsert_batch(db, 2, first, v, 3, NULL), bad_ids[i].code);
    }
    check_unchanged(f);

    /* Duplicates inside a batch, and ids that exist. */
    const char *dup[] = {"n1", "n2", "n1"};
    float v9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ASSERT_FAILS(svdb_add_batch(db, 3, dup, v9, 3, NULL), SVDB_EDUPLICATE);
    ASSERT_FAILS(svdb_upsert_batch(db, 3, dup, v9, 3, NULL), SVDB_EDUPLICATE);
    const char *dup2[] = {"a", "a"};
    ASSERT_FAILS(svdb_upsert_batch(db, 2, dup2, v, 3, NULL), SVDB_EDUPLICATE);
    const char *exists_last[] = {"n1", "n2", "d"};
    ASSERT_FAILS(svdb_add_batch(db, 3, exists_last, v9, 3, NULL), SVDB_EEXISTS);
    const char *exists_first[] = {"a", "n2"};
    ASSERT_FAILS(svdb_add_batch(db, 2, exists_first, v, 3, NULL), SVDB_EEXISTS);
    check_unchanged(f);

    /* Metadata that is not a JSON object, in the last row. */
    const char *bad_meta[] = {"[1]", "3", "{bad", "{} x", "", "null", "\"s\"", "{\"a\":}", "{\"a\":1,}", "{}{}", "true",
                             /* what cJSON would take but JSON does not */
                             "{\x01\"a\": 1}", "{\"a\": \"tab\there\"}", "{\"a\": \"\\u12G4\"}", "{\"a\": \"\\x\"}",
                             "{\"a\": \"\\u00\"}"};
    for (size_t i = 0; i < sizeof bad_meta / sizeof bad_meta[0]; i++) {
        const char *m2[] = {"{\"fine\":1}", bad_meta[i]};
        ASSERT_FAILS(svdb_add_batch(db, 2, ids, v, 3, m2), SVDB_EMETA);
        const char *up_ids[] = {"a", "n1"};
        ASSERT_FAILS(svdb_upsert_batch(db, 2, up_ids, v, 3, m2), SVDB_EMETA);
    }
    /* Metadata over 1 MiB. */
    char *big = malloc(SVDB_MAX_METADATA_BYTES + 2);
    memset(big, ' ', SVDB_MAX_METADATA_BYTES + 1);
    memcpy(big, "{}", 2);
    big[SVDB_MAX_METADATA_BYTES + 1] = '\0';
    const char *m3[] = {NULL, big};
    ASSERT_FAILS(svdb_add_batch(db, 2, ids, v, 3, m3), SVDB_ETOOBIG);
    free(big);
    (void)metas;
    check_unchanged(f);

    /* Zero vectors: fine under L2, rejected under cosine. */
    const char *z[] = {"zero"};
    float zero[3] = {0, 0, 0};
    ASSERT_OK(svdb_add_batch(db, 1, z, zero, 3, NULL));
    th_model_put(&f->m, "zero", zero, NULL);
    check_unchanged(f);

    /* The state after all of that still accepts the batch. */
    ASSERT_OK(svdb_add_batch(db, 2, ids, v, 3, NULL));
    th_model_put(&f->m, "n1", v, NULL);
    th_model_put(&f->m, "n2", v + 3, NULL);
    check_unchanged(f);
}

/* Issue 12 item 9: every distance is finite and within the metric's range.
 * A zero or vanishingly short vector under cosine has no direction: it is
 * accepted and scores distance 1 to every row (ChromaDB's zero vector), and
 * a denormal "poison" row can no longer take the top spot with -inf. */
static void test_api__cosine_zero_vector(void **state)
{
    (void)state;
    for (int index = SVDB_INDEX_FLAT; index <= SVDB_INDEX_HNSW; index++) {
        char *dir = th_tmpdir("api-cos0");
        svdb *db;
        svdb_open_options o;
        svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
        o.metric = SVDB_METRIC_COSINE;
        o.index = index;
        ASSERT_OK(svdb_open(&db, dir, &o));
        /* A NaN fails the first batch, which then does not fix the dimension. */
        const char *ids[] = {"a", "b", "poison", "zero"};
        float bad[] = {1, 2, NAN, 0};
        ASSERT_FAILS(svdb_add_batch(db, 2, ids, bad, 2, NULL), SVDB_EINVAL);
        uint32_t d = 7;
        ASSERT_OK(svdb_dim(db, &d));
        assert_int_equal(d, 0);
        float v[] = {1, 0, 0.9f, 0.1f, 1e-40f, 1e-40f, 0, 0};
        ASSERT_OK(svdb_add_batch(db, 4, ids, v, 2, NULL));
        for (int round = 0; round < 2; round++) {
            float q[] = {1, 0};
            svdb_hit *hits;
            size_t n;
            ASSERT_OK(svdb_search(db, q, 2, 4, NULL, &hits, &n));
            assert_int_equal(n, 4);
            assert_string_equal(hits[0].id, "a");
            assert_string_equal(hits[1].id, "b");
            for (size_t i = 0; i < n; i++) {
                assert_true(isfinite(hits[i].distance) && hits[i].distance >= 0 && hits[i].distance <= 2);
                if (i >= 2) assert_true(hits[i].distance == 1.0f); /* poison and zero: no direction */
            }
            svdb_hits_free(hits);
            /* A zero or denormal query: distance 1 to every row. */
            float zq[2][2] = {{0, 0}, {1e-40f, -1e-40f}};
            for (int z = 0; z < 2; z++) {
                ASSERT_OK(svdb_search(db, zq[z], 2, 4, NULL, &hits, &n));
                assert_int_equal(n, 4);
                for (size_t i = 0; i < n; i++) assert_true(hits[i].distance == 1.0f);
                svdb_hits_free(hits);
            }
            ASSERT_OK(svdb_close(db)); /* and again after reopen */
            ASSERT_OK(svdb_open(&db, dir, NULL));
        }
        /* A vector whose distances would overflow float32 is refused, query too. */
        float huge[] = {1e19f, 1e19f};
        const char *hid[] = {"huge"};
        ASSERT_FAILS(svdb_add_batch(db, 1, hid, huge, 2, NULL), SVDB_EINVAL);
        svdb_hit *hits = (svdb_hit *)0x1;
        size_t n;
        ASSERT_FAILS(svdb_search(db, huge, 2, 1, NULL, &hits, &n), SVDB_EINVAL);
        assert_null(hits);
        float got[2];
        ASSERT_OK(svdb_get(db, "zero", got, 2, NULL));
        assert_true(got[0] == 0 && got[1] == 0);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
}

static void test_api__failed_first_add_leaves_dim_open(void **state)
{
    (void)state;
    char *dir = th_tmpdir("api-dim0");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    const char *ids[] = {"a", "b"};
    float v[] = {1, 2, 3, NAN};
    ASSERT_FAILS(svdb_add_batch(db, 2, ids, v, 2, NULL), SVDB_EINVAL);
    const char *dup[] = {"a", "a"};
    ASSERT_FAILS(svdb_add_batch(db, 2, dup, v, 1, NULL), SVDB_EDUPLICATE);
    uint32_t d = 9;
    ASSERT_OK(svdb_dim(db, &d));
    assert_int_equal(d, 0);
    float w[5] = {1, 2, 3, 4, 5};
    ASSERT_OK(svdb_add_batch(db, 1, ids, w, 5, NULL));
    ASSERT_OK(svdb_dim(db, &d));
    assert_int_equal(d, 5);
    ASSERT_FAILS(svdb_add_batch(db, 1, ids + 1, w, 4, NULL), SVDB_EDIM);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* ------------------------------------------------------------------ upsert and delete */

static void test_api__upsert(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"c", "new1", "a", "new2"};
    float v[12];
    th_random(v, 12, 11);
    const char *metas[] = {NULL, "{\"n\":1}", "{\"changed\":true}", NULL};
    ASSERT_OK(svdb_upsert_batch(f->db, 4, ids, v, 3, metas));
    for (int i = 0; i < 4; i++) th_model_put(&f->m, ids[i], v + 3 * i, metas[i]);
    check_unchanged(f);
    /* "c" had metadata; the NULL entry cleared it. */
    char *meta = (char *)0x1;
    ASSERT_OK(svdb_get(f->db, "c", NULL, 0, &meta));
    assert_null(meta);
    /* metadatas NULL clears all. */
    ASSERT_OK(svdb_upsert_batch(f->db, 1, ids + 2, v, 3, NULL));
    th_model_put(&f->m, "a", v, NULL);
    check_unchanged(f);
    /* A failed upsert whose last row is bad changes no row, old or new. */
    const char *ids2[] = {"a", "b", "new3", "bad\xff"};
    float w[12];
    th_random(w, 12, 12);
    ASSERT_FAILS(svdb_upsert_batch(f->db, 4, ids2, w, 3, NULL), SVDB_EINVAL);
    w[11] = NAN;
    const char *ids3[] = {"a", "b", "new3", "new4"};
    ASSERT_FAILS(svdb_upsert_batch(f->db, 4, ids3, w, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_upsert_batch(f->db, 4, ids3, w, 4, NULL), SVDB_EDIM);
    ASSERT_FAILS(svdb_upsert_batch(f->db, 0, ids3, w, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_upsert_batch(f->db, 4, NULL, w, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_upsert_batch(f->db, 4, ids3, NULL, 3, NULL), SVDB_EINVAL);
    check_unchanged(f);
}

static void test_api__delete(void **state)
{
    fixture *f = *state;
    svdb *db = f->db;
    size_t nd = 99;
    const char *none[] = {"missing", "also-missing"};
    ASSERT_OK(svdb_delete(db, 2, none, &nd));
    assert_int_equal(nd, 0);
    check_unchanged(f);
    const char *some[] = {"b", "missing", "b", "d", "b"};
    ASSERT_OK(svdb_delete(db, 5, some, &nd));
    assert_int_equal(nd, 2);
    th_model_del(&f->m, "b");
    th_model_del(&f->m, "d");
    check_unchanged(f);
    ASSERT_OK(svdb_delete(db, 5, some, NULL));
    check_unchanged(f);

    nd = 99;
    ASSERT_FAILS(svdb_delete(db, 0, some, &nd), SVDB_EINVAL);
    ASSERT_FAILS(svdb_delete(db, 1, NULL, &nd), SVDB_EINVAL);
    const char *bad1[] = {"a", ""};
    const char *bad2[] = {"a", NULL};
    const char *bad3[] = {"a", "\xc3\x28"};
    char toolong[SVDB_MAX_ID_BYTES + 2];
    memset(toolong, 'y', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    const char *bad4[] = {"a", toolong};
    ASSERT_FAILS(svdb_delete(db, 2, bad1, &nd), SVDB_EINVAL);
    assert_int_equal(nd, 0);
    ASSERT_FAILS(svdb_delete(db, 2, bad2, &nd), SVDB_EINVAL);
    ASSERT_FAILS(svdb_delete(db, 2, bad3, &nd), SVDB_EINVAL);
    ASSERT_FAILS(svdb_delete(db, 2, bad4, &nd), SVDB_ETOOBIG);
    check_unchanged(f);

    /* Deleted slots are reused; a re-added id goes to the end of the order. */
    const char *readd[] = {"b", "x1", "x2"};
    float v[9];
    th_random(v, 9, 5);
    ASSERT_OK(svdb_add_batch(db, 3, readd, v, 3, NULL));
    for (int i = 0; i < 3; i++) th_model_put(&f->m, readd[i], v + 3 * i, NULL);
    check_unchanged(f);
    const char *first[] = {"a"};
    ASSERT_OK(svdb_delete(db, 1, first, &nd));
    assert_int_equal(nd, 1);
    th_model_del(&f->m, "a");
    ASSERT_OK(svdb_add_batch(db, 1, first, v, 3, NULL));
    th_model_put(&f->m, "a", v, NULL);
    check_unchanged(f);
    ASSERT_FAILS(svdb_get(db, "d", NULL, 0, NULL), SVDB_ENOTFOUND);

    /* Delete everything, then search and list. */
    char **ids;
    size_t n;
    ASSERT_OK(svdb_ids(db, &ids, &n));
    ASSERT_OK(svdb_delete(db, n, (const char *const *)ids, &nd));
    assert_int_equal(nd, n);
    svdb_ids_free(ids);
    th_model_free(&f->m);
    th_model_init(&f->m, 3);
    check_unchanged(f);
    svdb_hit *hits = (svdb_hit *)0x1;
    float q[3] = {1, 1, 1};
    ASSERT_OK(svdb_search(db, q, 3, 10, NULL, &hits, &n));
    assert_int_equal(n, 0);
    svdb_hits_free(hits);
    /* The dimension stays fixed. */
    ASSERT_FAILS(svdb_add_batch(db, 1, first, v, 2, NULL), SVDB_EDIM);
}

/* ------------------------------------------------------------------ reads */

static void test_api__read_errors(void **state)
{
    fixture *f = *state;
    svdb *db = f->db;
    char *meta = (char *)0x1;
    float v[3];
    ASSERT_FAILS(svdb_get(db, "nope", v, 3, &meta), SVDB_ENOTFOUND);
    assert_null(meta);
    ASSERT_FAILS(svdb_get(db, NULL, v, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_get(db, "", v, 3, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_get(db, "\xff", v, 3, NULL), SVDB_EINVAL);
    int found = 5;
    ASSERT_FAILS(svdb_contains(db, "a", NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_contains(db, NULL, &found), SVDB_EINVAL);
    ASSERT_FAILS(svdb_contains(db, "", &found), SVDB_EINVAL);
    ASSERT_FAILS(svdb_count(db, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_dim(db, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_metric(db, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_index_type(db, NULL), SVDB_EINVAL);
    char **ids;
    size_t n;
    ASSERT_FAILS(svdb_ids(db, NULL, &n), SVDB_EINVAL);
    ASSERT_FAILS(svdb_ids(db, &ids, NULL), SVDB_EINVAL);
    /* A success clears the thread's message. */
    ASSERT_OK(svdb_count(db, &n));
    assert_string_equal(svdb_errmsg(), "");
    check_unchanged(f);
}

/* ------------------------------------------------------------------ search */

static void test_api__search_l2(void **state)
{
    fixture *f = *state;
    svdb *db = f->db;
    float q[3] = {1, 0, 0};
    svdb_hit *hits;
    size_t n;
    ASSERT_OK(svdb_search(db, q, 3, 2, NULL, &hits, &n));
    assert_string_equal(svdb_errmsg(), "");
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].id, "a");
    assert_true(hits[0].distance == 0.0f);
    /* b and c are both at squared distance 2: insertion order breaks the tie. */
    assert_string_equal(hits[1].id, "b");
    assert_true(hits[1].distance == 2.0f);
    svdb_hits_free(hits);
    ASSERT_OK(svdb_search(db, q, 3, 100, NULL, &hits, &n));
    assert_int_equal(n, 4);
    const char *want[] = {"a", "b", "c", "d"};
    const float wd[] = {0, 2, 2, 2};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(hits[i].id, want[i]);
        assert_true(hits[i].distance == wd[i]);
    }
    svdb_hits_free(hits);
    svdb_search_options so;
    ASSERT_OK(svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION));
    so.threads = 3;
    ASSERT_OK(svdb_search(db, q, 3, 3, &so, &hits, &n));
    assert_int_equal(n, 3);
    assert_string_equal(hits[2].id, "c");
    svdb_hits_free(hits);

    /* Ties after an upsert keep the original position; after a delete + add they move last. */
    const char *bid[] = {"b"};
    float bv[3] = {0, 1, 0};
    ASSERT_OK(svdb_upsert_batch(db, 1, bid, bv, 3, NULL));
    ASSERT_OK(svdb_search(db, q, 3, 4, NULL, &hits, &n));
    assert_string_equal(hits[1].id, "b");
    assert_string_equal(hits[2].id, "c");
    svdb_hits_free(hits);
    ASSERT_OK(svdb_delete(db, 1, bid, NULL));
    ASSERT_OK(svdb_add_batch(db, 1, bid, bv, 3, NULL));
    ASSERT_OK(svdb_search(db, q, 3, 4, NULL, &hits, &n));
    assert_string_equal(hits[1].id, "c");
    assert_string_equal(hits[2].id, "d");
    assert_string_equal(hits[3].id, "b");
    svdb_hits_free(hits);
}

static void test_api__search_errors(void **state)
{
    fixture *f = *state;
    svdb *db = f->db;
    float q[4] = {1, 0, 0, 0};
    svdb_hit *hits = (svdb_hit *)0x1;
    size_t n = 99;
    ASSERT_FAILS(svdb_search(db, q, 3, 0, NULL, &hits, &n), SVDB_EINVAL);
    assert_null(hits);
    assert_int_equal(n, 0);
    ASSERT_FAILS(svdb_search(db, NULL, 3, 1, NULL, &hits, &n), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search(db, q, 3, 1, NULL, NULL, &n), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search(db, q, 3, 1, NULL, &hits, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search(db, q, 4, 1, NULL, &hits, &n), SVDB_EDIM);
    ASSERT_FAILS(svdb_search(db, q, 2, 1, NULL, &hits, &n), SVDB_EDIM);
    ASSERT_FAILS(svdb_search(db, q, 0, 1, NULL, &hits, &n), SVDB_EDIM);
    float bad[3] = {1, NAN, 0};
    ASSERT_FAILS(svdb_search(db, bad, 3, 1, NULL, &hits, &n), SVDB_EINVAL);
    bad[1] = INFINITY;
    ASSERT_FAILS(svdb_search(db, bad, 3, 1, NULL, &hits, &n), SVDB_EINVAL);
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.version = 0;
    ASSERT_FAILS(svdb_search(db, q, 3, 1, &so, &hits, &n), SVDB_EINVAL);
    so.version = SVDB_SEARCH_OPTIONS_VERSION + 1;
    ASSERT_FAILS(svdb_search(db, q, 3, 1, &so, &hits, &n), SVDB_EINVAL);
    size_t nh[3];
    ASSERT_FAILS(svdb_search_batch(db, 0, q, 3, 1, NULL, &hits, nh), SVDB_EINVAL);
    ASSERT_FAILS(svdb_search_batch(db, 1, q, 3, 0, NULL, &hits, nh), SVDB_EINVAL);
    float qs[9] = {1, 0, 0, 0, 1, 0, 0, 0, NAN};
    ASSERT_FAILS(svdb_search_batch(db, 3, qs, 3, 1, NULL, &hits, nh), SVDB_EINVAL);
    assert_null(hits);
    ASSERT_FAILS(svdb_search_batch(db, 3, qs, 4, 1, NULL, &hits, nh), SVDB_EDIM);
    check_unchanged(f);
}

static void test_api__search_empty(void **state)
{
    (void)state;
    char *dir = th_tmpdir("api-empty");
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, NULL));
    float q[3] = {1, 2, 3};
    svdb_hit *hits = (svdb_hit *)0x1;
    size_t n = 5;
    /* No dimension yet: any query dimension finds nothing. */
    ASSERT_OK(svdb_search(db, q, 3, 10, NULL, &hits, &n));
    assert_int_equal(n, 0);
    assert_null(hits);
    size_t nh[2] = {5, 5};
    hits = (svdb_hit *)0x1;
    ASSERT_OK(svdb_search_batch(db, 1, q, 3, 10, NULL, &hits, nh));
    assert_int_equal(nh[0], 0);
    svdb_hits_free(hits);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(th_open(&db, dir, 3, 0, 0));
    hits = (svdb_hit *)0x1;
    ASSERT_OK(svdb_search(db, q, 3, 10, NULL, &hits, &n));
    assert_int_equal(n, 0);
    assert_null(hits);
    ASSERT_FAILS(svdb_search(db, q, 2, 10, NULL, &hits, &n), SVDB_EDIM);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

static void test_api__search_metrics(void **state)
{
    (void)state;
    /* Rows and the expected distances to q = (1, 0) per metric. */
    const float rows[] = {0, 2, 3, 0, -1, 0, 1, 1};
    const char *ids[] = {"up", "right", "left", "diag"};
    const float q[2] = {1, 0};
    struct {
        int metric;
        float want[4];
    } cases[] = {
        {SVDB_METRIC_L2, {5.0f, 4.0f, 4.0f, 1.0f}},
        {SVDB_METRIC_COSINE, {1.0f, 0.0f, 2.0f, (float)(1.0 - 1.0 / sqrt(2.0))}},
        {SVDB_METRIC_IP, {1.0f, -2.0f, 2.0f, 0.0f}},
    };
    for (size_t c = 0; c < 3; c++) {
        char *dir = th_tmpdir("api-metric");
        svdb *db;
        ASSERT_OK(th_open(&db, dir, 0, cases[c].metric, 0));
        ASSERT_OK(svdb_add_batch(db, 4, ids, rows, 2, NULL));
        svdb_hit *hits;
        size_t n;
        ASSERT_OK(svdb_search(db, q, 2, 4, NULL, &hits, &n));
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
            if (i) assert_true(hits[i - 1].distance <= hits[i].distance);
            int r = -1;
            for (int j = 0; j < 4; j++)
                if (strcmp(hits[i].id, ids[j]) == 0) r = j;
            assert_true(r >= 0);
            if (fabsf(hits[i].distance - cases[c].want[r]) > 1e-6f)
                fprintf(stderr, "metric %d id %s: %.9g want %.9g\n", cases[c].metric, ids[r], hits[i].distance,
                        cases[c].want[r]);
            assert_true(fabsf(hits[i].distance - cases[c].want[r]) <= 1e-6f);
        }
        svdb_hits_free(hits);
        /* Vectors come back as stored, also for cosine. */
        float got[2];
        ASSERT_OK(svdb_get(db, "right", got, 2, NULL));
        assert_true(got[0] == 3.0f && got[1] == 0.0f);
        /* Cosine does not depend on the query's length. */
        if (cases[c].metric == SVDB_METRIC_COSINE) {
            float q2[2] = {1000, 0};
            ASSERT_OK(svdb_search(db, q2, 2, 4, NULL, &hits, &n));
            assert_true(fabsf(hits[0].distance) <= 1e-6f);
            assert_string_equal(hits[0].id, "right");
            svdb_hits_free(hits);
        }
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
}

/* search_batch equals per-query search, bit for bit, for any thread count. */
static void test_api__search_batch_matches_single(void **state)
{
    (void)state;
    for (int metric = SVDB_METRIC_L2; metric <= SVDB_METRIC_IP; metric++) {
        char *dir = th_tmpdir("api-batch");
        svdb *db;
        ASSERT_OK(th_open(&db, dir, 0, metric, 0));
        enum { N = 700, D = 19, NQ = 11 };
        float *v = malloc(N * D * sizeof(float));
        th_random(v, N * D, 77 + (unsigned)metric);
        char **ids = malloc(N * sizeof *ids);
        for (int i = 0; i < N; i++) assert_true(asprintf(&ids[i], "row-%d", i) > 0);
        /* A few exact duplicates to exercise tie order. */
        memcpy(v + 10 * D, v + 500 * D, D * sizeof(float));
        memcpy(v + 600 * D, v + 500 * D, D * sizeof(float));
        ASSERT_OK(svdb_add_batch(db, N, (const char *const *)ids, v, D, NULL));
        const char *del[] = {"row-3", "row-200", "row-699"};
        ASSERT_OK(svdb_delete(db, 3, del, NULL));
        float q[NQ * D];
        th_random(q, NQ * D, 99);
        memcpy(q + 2 * D, v + 500 * D, D * sizeof(float));
        const size_t ks[] = {1, 3, 10, 697, 1000};
        const uint32_t threads[] = {0, 1, 2, 3, 8};
        for (size_t ki = 0; ki < 5; ki++)
            for (size_t ti = 0; ti < 5; ti++)
                for (size_t nq = 1; nq <= NQ; nq += (nq < 5 ? 1 : 3)) {
                    svdb_search_options so;
                    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
                    so.threads = threads[ti];
                    svdb_hit *all;
                    size_t nh[NQ];
                    ASSERT_OK(svdb_search_batch(db, nq, q, D, ks[ki], &so, &all, nh));
                    size_t off = 0;
                    for (size_t j = 0; j < nq; j++) {
                        svdb_hit *one;
                        size_t n1;
                        ASSERT_OK(svdb_search(db, q + j * D, D, ks[ki], NULL, &one, &n1));
                        assert_int_equal(nh[j], n1);
                        assert_int_equal(n1, ks[ki] < N - 3 ? ks[ki] : N - 3);
                        for (size_t i = 0; i < n1; i++) {
                            assert_string_equal(all[off + i].id, one[i].id);
                            assert_memory_equal(&all[off + i].distance, &one[i].distance, sizeof(float));
                            if (i) assert_true(one[i - 1].distance <= one[i].distance);
                        }
                        if (j == 2 && n1 >= 3 && metric != SVDB_METRIC_IP) {
                            assert_string_equal(one[0].id, "row-10");
                            assert_string_equal(one[1].id, "row-500");
                            assert_string_equal(one[2].id, "row-600");
                        }
                        off += n1;
                        svdb_hits_free(one);
                    }
                    svdb_hits_free(all);
                }
        ASSERT_OK(svdb_close(db));
        for (int i = 0; i < N; i++) free(ids[i]);
        free(ids);
        free(v);
        th_rmrf(dir);
        free(dir);
    }
}

/* ------------------------------------------------------------------ lifecycle */

static void test_api__persist_and_close(void **state)
{
    fixture *f = *state;
    ASSERT_OK(svdb_persist(f->db));
    assert_string_equal(svdb_errmsg(), "");
    ASSERT_OK(svdb_persist(f->db));
    char *wal = th_path(f->dir, "wal.svdb");
    assert_int_equal(th_file_size(wal), 32); /* the log holds only its header after a checkpoint */
    const char *ids[] = {"p"};
    float v[3] = {4, 5, 6};
    ASSERT_OK(svdb_add_batch(f->db, 1, ids, v, 3, NULL));
    assert_true(th_file_size(wal) > 32);
    th_model_put(&f->m, "p", v, NULL);
    ASSERT_OK(svdb_close(f->db));
    f->db = NULL;
    assert_int_equal(th_file_size(wal), 32);
    free(wal);
    ASSERT_OK(svdb_open(&f->db, f->dir, NULL));
    check_unchanged(f);
}

static void test_api__handle_unusable_after_fork(void **state)
{
    fixture *f = *state;
    pid_t pid = th_fork();
    if (pid == 0) {
        size_t n;
        const char *ids[] = {"child"};
        float v[3] = {1, 1, 1};
        int ok = svdb_count(f->db, &n) == SVDB_EMISUSE && svdb_add_batch(f->db, 1, ids, v, 3, NULL) == SVDB_EMISUSE &&
                 svdb_persist(f->db) == SVDB_EMISUSE && strlen(svdb_errmsg()) > 0;
        th_child_exit(ok ? 0 : 1);
    }
    assert_int_equal(th_wait(pid), 0);
    check_unchanged(f);
}

/* ------------------------------------------------------------------ documents and filtered listing */

static void expect_ids(char **ids, size_t n, const char *const *want, size_t n_want)
{
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_string_equal(ids[i], want[i]);
    assert_null(ids[n]);
    svdb_ids_free(ids);
}

/* Ids of 7 bytes or fewer without metadata live in the row itself, the rest
 * in one allocation with the metadata: every transition between the two, by
 * upsert, keeps the id and metadata exact, before and after a reopen. */
static void test_api__row_storage_transitions(void **state)
{
    (void)state;
    char *dir = th_tmpdir("rows");
    svdb *db;
    ASSERT_OK(th_open(&db, dir, 4, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    th_model m;
    th_model_init(&m, 4);
    const char *ids[] = {"a", "1234567", "12345678", "\xc3\xa9t\xc3\xa9", "a-rather-long-identifier-of-40-bytes-xx"};
    const char *metas[] = {NULL, "{\"k\": 1}", NULL, "{\"doc\": \"x\"}", NULL};
    float v[4] = {1, 2, 3, 4};
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 5; i++) {
            /* rotate which rows have metadata, so each id goes inline -> blob -> inline */
            const char *meta = metas[(i + round) % 5];
            v[0] = (float)(round * 10 + i);
            ASSERT_OK(svdb_upsert_batch(db, 1, &ids[i], v, 4, &meta));
            th_model_put(&m, ids[i], v, meta);
        }
        assert_true(th_check_db(db, &m, 1));
        if (round == 1) {
            ASSERT_OK(svdb_close(db));
            ASSERT_OK(th_open(&db, dir, 4, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
            assert_true(th_check_db(db, &m, 1));
        }
    }
    /* deleting and re-adding reuses the slot with the other kind of storage */
    size_t nd;
    ASSERT_OK(svdb_delete(db, 1, &ids[1], &nd));
    assert_int_equal(nd, 1);
    th_model_del(&m, ids[1]);
    const char *meta = "{\"again\": true}";
    ASSERT_OK(svdb_add_batch(db, 1, &ids[1], v, 4, &meta));
    th_model_put(&m, ids[1], v, meta);
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(th_open(&db, dir, 4, SVDB_METRIC_L2, SVDB_DURABILITY_PERSIST));
    assert_true(th_check_db(db, &m, 1));
    ASSERT_OK(svdb_close(db));
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

static void test_api__ids_where_and_documents(void **state)
{
    (void)state;
    char *dir = th_tmpdir("docs");
    for (int index = SVDB_INDEX_FLAT; index <= SVDB_INDEX_HNSW; index++) {
        svdb_open_options o;
        svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
        o.index = index;
        svdb *db;
        ASSERT_OK(svdb_open(&db, dir, &o));
        const char *ids[] = {"r0", "r1", "r2", "r3", "r4"};
        float v[] = {0, 0, 1, 0, 2, 0, 3, 0, 4, 0};
        const char *metas[] = {
            "{\"" SVDB_DOCUMENT_KEY "\": \"red apples\", \"n\": 1}",
            "{\"" SVDB_DOCUMENT_KEY "\": \"green apples\", \"n\": 2}",
            "{\"n\": 3}",
            NULL,
            "{\"" SVDB_DOCUMENT_KEY "\": \"red\\nwine\", \"n\": 5}",
        };
        ASSERT_OK(svdb_add_batch(db, 5, ids, v, 2, metas));
        char **l;
        size_t n;
        ASSERT_OK(svdb_ids_where(db, NULL, NULL, &l, &n));
        expect_ids(l, n, ids, 5);
        ASSERT_OK(svdb_ids_where(db, "{\"n\": {\"$gte\": 2}}", NULL, &l, &n));
        expect_ids(l, n, (const char *[]){"r1", "r2", "r4"}, 3);
        ASSERT_OK(svdb_ids_where(db, NULL, "{\"$contains\": \"red\"}", &l, &n));
        expect_ids(l, n, (const char *[]){"r0", "r4"}, 2);
        ASSERT_OK(svdb_ids_where(db, NULL, "{\"$not_contains\": \"apples\"}", &l, &n));
        expect_ids(l, n, (const char *[]){"r2", "r3", "r4"}, 3);
        ASSERT_OK(svdb_ids_where(db, "{\"n\": {\"$lt\": 5}}", "{\"$regex\": \"^(red|green) \"}", &l, &n));
        expect_ids(l, n, (const char *[]){"r0", "r1"}, 2);
        ASSERT_OK(svdb_ids_where(db, "{\"n\": 9}", NULL, &l, &n)); /* nothing matches: an empty list */
        assert_int_equal(n, 0);
        assert_non_null(l);
        assert_null(l[0]);
        svdb_ids_free(l);

        /* search: where_document restricts the candidates, with and without where */
        float q[] = {4, 0};
        svdb_search_options so;
        svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
        so.where_document = "{\"$contains\": \"apples\"}";
        svdb_hit *h;
        ASSERT_OK(svdb_search(db, q, 2, 10, &so, &h, &n));
        assert_int_equal(n, 2);
        assert_string_equal(h[0].id, "r1");
        assert_string_equal(h[1].id, "r0");
        svdb_hits_free(h);
        so.where = "{\"n\": 1}";
        ASSERT_OK(svdb_search(db, q, 2, 10, &so, &h, &n));
        assert_int_equal(n, 1);
        assert_string_equal(h[0].id, "r0");
        svdb_hits_free(h);

        /* bad filters and arguments: an error, nothing returned */
        l = (char **)0x1;
        n = 7;
        ASSERT_FAILS(svdb_ids_where(db, "{\"n\": {\"$gt\": \"x\"}}", NULL, &l, &n), SVDB_EINVAL);
        assert_null(l);
        assert_int_equal(n, 0);
        ASSERT_FAILS(svdb_ids_where(db, NULL, "{\"$regex\": \"(\"}", &l, &n), SVDB_EINVAL);
        assert_non_null(strstr(svdb_errmsg(), "regular expression"));
        ASSERT_FAILS(svdb_ids_where(db, NULL, "{\"$contains\": \"\"}", &l, &n), SVDB_EINVAL);
        ASSERT_FAILS(svdb_ids_where(db, NULL, NULL, NULL, &n), SVDB_EINVAL);
        ASSERT_FAILS(svdb_ids_where(db, NULL, NULL, &l, NULL), SVDB_EINVAL);
        so.where = NULL;
        so.where_document = "{\"$nope\": \"x\"}";
        h = (svdb_hit *)0x1;
        ASSERT_FAILS(svdb_search(db, q, 2, 10, &so, &h, &n), SVDB_EINVAL);
        assert_null(h);
        assert_non_null(strstr(svdb_errmsg(), "where_document"));

        /* documents live in the metadata, so they persist like it */
        ASSERT_OK(svdb_close(db));
        ASSERT_OK(svdb_open(&db, dir, NULL));
        ASSERT_OK(svdb_ids_where(db, NULL, "{\"$contains\": \"wine\"}", &l, &n));
        expect_ids(l, n, (const char *[]){"r4"}, 1);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
    }
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api__versions),
        cmocka_unit_test(test_api__strerror),
        cmocka_unit_test(test_api__options_init),
        cmocka_unit_test(test_api__null_handle),
        cmocka_unit_test(test_api__open_defaults),
        cmocka_unit_test(test_api__open_errors),
        cmocka_unit_test(test_api__open_mismatch),
        cmocka_unit_test_setup_teardown(test_api__add_and_read, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__add_errors, setup_db, teardown_db),
        cmocka_unit_test(test_api__cosine_zero_vector),
        cmocka_unit_test(test_api__failed_first_add_leaves_dim_open),
        cmocka_unit_test_setup_teardown(test_api__upsert, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__delete, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__read_errors, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__search_l2, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__search_errors, setup_db, teardown_db),
        cmocka_unit_test(test_api__search_empty),
        cmocka_unit_test(test_api__search_metrics),
        cmocka_unit_test(test_api__search_batch_matches_single),
        cmocka_unit_test(test_api__ids_where_and_documents),
        cmocka_unit_test(test_api__row_storage_transitions),
        cmocka_unit_test_setup_teardown(test_api__persist_and_close, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_api__handle_unusable_after_fork, setup_db, teardown_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
