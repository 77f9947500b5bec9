/* svdb_get_batch, svdb_update_batch and automatic checkpoints: results,
 * every error path (status, message, nothing changed), and persistence
 * across reopen and across a crash (the log replayed). */
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
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "svdb.h"

typedef struct fixture {
    char *dir;
    svdb *db;
    th_model m;
} fixture;

static const char *IDS[] = {"a", "b", "c", "d"};
static const float V[] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const char *METAS[] = {"{\"k\":1,\"s\":\"x\"}", NULL, "{\"big\":12345678901234567890}", "{}"};

static int open_index(fixture *f, int index)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.build_threads = 1;
    return svdb_open(&f->db, f->dir, &o);
}

static int setup_index(void **state, int index)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir("batchops");
    if (open_index(f, index) != SVDB_OK) return -1;
    th_model_init(&f->m, 3);
    if (svdb_add_batch(f->db, 4, IDS, V, 3, METAS) != SVDB_OK) return -1;
    for (int i = 0; i < 4; i++) th_model_put(&f->m, IDS[i], V + 3 * i, METAS[i]);
    *state = f;
    return 0;
}
static int setup_flat(void **state) { return setup_index(state, SVDB_INDEX_FLAT); }
static int setup_hnsw(void **state) { return setup_index(state, SVDB_INDEX_HNSW); }

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->db) svdb_close(f->db);
    th_rmrf(f->dir);
    free(f->dir);
    th_model_free(&f->m);
    free(f);
    return 0;
}

static void fails(int rc, int want)
{
    assert_int_equal(rc, want);
    assert_true(strlen(svdb_errmsg()) > 0);
}

/* ------------------------------------------------------------------ get_batch */

static void test_get_batch(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"c", "zz", "a", "b", "d", "a"};
    float vec[6 * 3];
    int found[6];
    char **metas = NULL;
    assert_int_equal(svdb_get_batch(f->db, 6, ids, vec, 3, &metas, found), SVDB_OK);
    int want_found[] = {1, 0, 1, 1, 1, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(found[i], want_found[i]);
    assert_memory_equal(vec, V + 6, 3 * sizeof(float));
    for (int d = 0; d < 3; d++) assert_true(vec[3 + d] == 0.0f); /* missing: zeros */
    assert_memory_equal(vec + 6, V, 3 * sizeof(float));
    assert_memory_equal(vec + 15, V, 3 * sizeof(float)); /* a repeated id answered twice */
    assert_string_equal(metas[0], METAS[2]);
    assert_null(metas[1]);
    assert_string_equal(metas[2], METAS[0]);
    assert_null(metas[3]); /* no metadata */
    assert_string_equal(metas[4], "{}");
    assert_string_equal(metas[5], METAS[0]);
    svdb_metadatas_free(metas);
    /* only the flags */
    assert_int_equal(svdb_get_batch(f->db, 2, ids, NULL, 0, NULL, found), SVDB_OK);
    assert_int_equal(found[0], 1);
    assert_int_equal(found[1], 0);
    svdb_metadatas_free(NULL);
}

static void test_get_batch_errors(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"a", "b"};
    float vec[8];
    int found[2];
    char **metas = (char **)0x1;
    fails(svdb_get_batch(f->db, 0, ids, vec, 3, &metas, found), SVDB_EINVAL);
    assert_null(metas);
    fails(svdb_get_batch(f->db, 2, NULL, vec, 3, NULL, found), SVDB_EINVAL);
    fails(svdb_get_batch(f->db, 2, ids, vec, 3, NULL, NULL), SVDB_EINVAL);
    fails(svdb_get_batch(f->db, 2, ids, vec, 4, NULL, found), SVDB_EDIM);
    const char *bad[] = {"a", ""};
    fails(svdb_get_batch(f->db, 2, bad, vec, 3, NULL, found), SVDB_EINVAL);
    const char *null_id[] = {"a", NULL};
    fails(svdb_get_batch(f->db, 2, null_id, vec, 3, NULL, found), SVDB_EINVAL);
    fails(svdb_get_batch(NULL, 2, ids, vec, 3, NULL, found), SVDB_EMISUSE);
    assert_true(th_check_db(f->db, &f->m, 1));
}

/* ------------------------------------------------------------------ update_batch */

static void update_ok(fixture *f, size_t n, const char **ids, const float *v, const char **metas, int merge,
                      size_t want)
{
    svdb_update_options o;
    assert_int_equal(svdb_update_options_init(&o, SVDB_UPDATE_OPTIONS_VERSION), SVDB_OK);
    o.merge_metadata = merge;
    size_t got = 99;
    assert_int_equal(svdb_update_batch(f->db, n, ids, v, v ? 3 : 0, metas, &o, &got), SVDB_OK);
    assert_int_equal(got, want);
}

static void test_update_vectors_only(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"b", "a"};
    float v[] = {5, 5, 5, 6, 6, 6};
    update_ok(f, 2, ids, v, NULL, 0, 2);
    th_model_put(&f->m, "b", v, NULL);
    th_model_put(&f->m, "a", v + 3, METAS[0]); /* metadata kept */
    assert_true(th_check_db(f->db, &f->m, 1));
    svdb_hit *hits;
    size_t n;
    assert_int_equal(svdb_search(f->db, v + 3, 3, 1, NULL, &hits, &n), SVDB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].id, "a"); /* the new vector is what search finds */
    assert_true(hits[0].distance == 0.0f);
    svdb_hits_free(hits);
}

static void test_update_metadata_replace(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"a", "c", "b"};
    const char *metas[] = {"{\"new\":true}", NULL, "{\"x\":[1,2]}"};
    update_ok(f, 3, ids, NULL, metas, 0, 3);
    th_model_put(&f->m, "a", V, "{\"new\":true}");
    th_model_put(&f->m, "b", V + 3, "{\"x\":[1,2]}"); /* vectors kept; c untouched */
    assert_true(th_check_db(f->db, &f->m, 1));
}

static void test_update_metadata_merge(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"a", "b", "c", "d"};
    const char *metas[] = {"{\"s\":\"y\",\"k\":null,\"t\":2}", "{\"only\":1,\"gone\":null}", "{\"big\":null}",
                           "{\"e\":1.5e300}"};
    update_ok(f, 4, ids, NULL, metas, 1, 4);
    th_model_put(&f->m, "a", V, "{\"s\":\"y\",\"t\":2}"); /* replaced in place, removed, added */
    th_model_put(&f->m, "b", V + 3, "{\"only\":1}");     /* a row without metadata gains some */
    th_model_put(&f->m, "c", V + 6, NULL);               /* its last key removed: no metadata */
    th_model_put(&f->m, "d", V + 9, "{\"e\":1.5e300}");
    assert_true(th_check_db(f->db, &f->m, 1));
    /* values are copied as written: no re-printing through a double */
    const char *id2[] = {"e2"};
    float v[] = {0, 0, 2};
    const char *m2[] = {"{\"n\":12345678901234567890,\"f\":0.1000000000000000055511151231257827}"};
    assert_int_equal(svdb_add_batch(f->db, 1, id2, v, 3, m2), SVDB_OK);
    const char *p2[] = {"{\"g\":1}"};
    update_ok(f, 1, id2, NULL, p2, 1, 1);
    char *meta;
    assert_int_equal(svdb_get(f->db, "e2", NULL, 0, &meta), SVDB_OK);
    assert_string_equal(meta, "{\"n\":12345678901234567890,\"f\":0.1000000000000000055511151231257827,\"g\":1}");
    svdb_free(meta);
}

static void test_update_both_and_skip(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"zz", "d"};
    float v[] = {9, 9, 9, 7, 7, 7};
    const char *metas[] = {"{}", "{\"d\":4}"};
    svdb_update_options o;
    svdb_update_options_init(&o, 1);
    o.skip_missing = 1;
    size_t got;
    assert_int_equal(svdb_update_batch(f->db, 2, ids, v, 3, metas, &o, &got), SVDB_OK);
    assert_int_equal(got, 1);
    th_model_put(&f->m, "d", v + 3, "{\"d\":4}");
    assert_true(th_check_db(f->db, &f->m, 1));
    /* nothing found: nothing written, not an error */
    assert_int_equal(svdb_update_batch(f->db, 1, ids, v, 3, metas, &o, &got), SVDB_OK);
    assert_int_equal(got, 0);
    assert_true(th_check_db(f->db, &f->m, 1));
}

static void test_update_errors(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"a", "zz"};
    float v[] = {1, 2, 3, 4, 5, 6};
    const char *metas[] = {"{\"a\":1}", "{\"b\":2}"};
    size_t got = 7;
    fails(svdb_update_batch(f->db, 2, ids, v, 3, metas, NULL, &got), SVDB_ENOTFOUND);
    assert_int_equal(got, 0);
    fails(svdb_update_batch(f->db, 0, ids, v, 3, metas, NULL, NULL), SVDB_EINVAL);
    fails(svdb_update_batch(f->db, 1, NULL, v, 3, metas, NULL, NULL), SVDB_EINVAL);
    fails(svdb_update_batch(f->db, 1, ids, NULL, 3, NULL, NULL, NULL), SVDB_EINVAL); /* nothing to update */
    fails(svdb_update_batch(f->db, 1, ids, v, 4, NULL, NULL, NULL), SVDB_EDIM);
    float nan[] = {1, NAN, 3};
    fails(svdb_update_batch(f->db, 1, ids, nan, 3, NULL, NULL, NULL), SVDB_EINVAL);
    const char *bad[] = {"[1]"};
    fails(svdb_update_batch(f->db, 1, ids, NULL, 0, bad, NULL, NULL), SVDB_EMETA);
    const char *dup[] = {"a", "a"};
    fails(svdb_update_batch(f->db, 2, dup, v, 3, NULL, NULL, NULL), SVDB_EDUPLICATE);
    const char *empty[] = {""};
    fails(svdb_update_batch(f->db, 1, empty, v, 3, NULL, NULL, NULL), SVDB_EINVAL);
    svdb_update_options o;
    fails(svdb_update_options_init(&o, 0), SVDB_EINVAL);
    fails(svdb_update_options_init(NULL, 1), SVDB_EINVAL);
    svdb_update_options_init(&o, 1);
    o.version = 99;
    fails(svdb_update_batch(f->db, 1, ids, v, 3, NULL, &o, NULL), SVDB_EINVAL);
    /* a merge whose result exceeds the metadata limit is refused, nothing changed */
    size_t big = SVDB_MAX_METADATA_BYTES - 10;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    memcpy(huge, "{\"h\":\"", 6);
    memcpy(huge + big - 2, "\"}", 3);
    const char *hm[] = {huge};
    svdb_update_options_init(&o, 1);
    o.merge_metadata = 1;
    fails(svdb_update_batch(f->db, 1, ids, NULL, 0, hm, &o, NULL), SVDB_ETOOBIG);
    free(huge);
    fails(svdb_update_batch(NULL, 1, ids, v, 3, NULL, NULL, NULL), SVDB_EMISUSE);
    assert_true(th_check_db(f->db, &f->m, 1));
}

/* insert_missing: ChromaDB's upsert (existing rows merged, new rows added) in one call. */
static void test_update_insert_missing(void **state)
{
    fixture *f = *state;
    svdb_update_options o;
    svdb_update_options_init(&o, SVDB_UPDATE_OPTIONS_VERSION);
    o.merge_metadata = 1;
    o.insert_missing = 1;
    const char *ids[] = {"a", "new1", "new2"};
    float v[] = {2, 2, 2, 3, 3, 3, 4, 4, 4};
    const char *metas[] = {"{\"k\":null,\"u\":1}", "{\"x\":null,\"y\":2}", NULL};
    size_t got = 0;
    assert_int_equal(svdb_update_batch(f->db, 3, ids, v, 3, metas, &o, &got), SVDB_OK);
    assert_int_equal(got, 3);
    th_model_put(&f->m, "a", v, "{\"s\":\"x\",\"u\":1}");
    th_model_put(&f->m, "new1", v + 3, "{\"y\":2}"); /* a new row's nulls are dropped */
    th_model_put(&f->m, "new2", v + 6, NULL);
    assert_true(th_check_db(f->db, &f->m, 1));
    /* a new id needs a vector; nothing changed */
    const char *ids2[] = {"a", "new3"};
    fails(svdb_update_batch(f->db, 2, ids2, NULL, 0, metas, &o, NULL), SVDB_EINVAL);
    assert_true(th_check_db(f->db, &f->m, 1));
    /* an empty collection takes its dimension from such a batch */
    char *dir = th_tmpdir("upsert-empty");
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    assert_int_equal(svdb_update_batch(db, 1, ids + 1, v, 3, NULL, &o, &got), SVDB_OK);
    uint32_t dim = 0;
    assert_int_equal(svdb_dim(db, &dim), SVDB_OK);
    assert_int_equal(dim, 3);
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
}

/* Updates survive a reopen, and a crash: the child updates and exits without
 * closing, so the reopen replays the log. */
static void test_update_persists(void **state)
{
    fixture *f = *state;
    const char *ids[] = {"a", "c"};
    float v[] = {3, 3, 3, 4, 4, 4};
    const char *metas[] = {"{\"k\":null}", "{\"z\":0}"};
    pid_t pid = fork();
    if (pid == 0) {
        svdb_update_options o;
        svdb_update_options_init(&o, 1);
        o.merge_metadata = 1;
        svdb *db;
        int rc = svdb_close(f->db); /* the child's copy: unusable (EMISUSE), the parent's stays open */
        (void)rc;
        /* the parent holds the lock: the child waits for the parent to close */
        while (svdb_open(&db, f->dir, NULL) == SVDB_ELOCKED) usleep(10000);
        rc = svdb_update_batch(db, 2, ids, v, 3, metas, &o, NULL);
        _exit(rc == SVDB_OK ? 0 : 1); /* no close: the update lives in the log only */
    }
    assert_int_equal(svdb_close(f->db), SVDB_OK);
    f->db = NULL;
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    th_model_put(&f->m, "a", v, "{\"s\":\"x\"}");
    th_model_put(&f->m, "c", v + 3, "{\"big\":12345678901234567890,\"z\":0}");
    assert_int_equal(open_index(f, 0), SVDB_OK);
    assert_true(th_check_db(f->db, &f->m, 1));
    assert_int_equal(svdb_close(f->db), SVDB_OK);
    assert_int_equal(open_index(f, 0), SVDB_OK);
    assert_true(th_check_db(f->db, &f->m, 1));
}

/* ------------------------------------------------------------------ select */

/* svdb_select's ids joined by ',' (and checks the metadata block matches svdb_get_batch's). */
static void select_ok(fixture *f, const svdb_select_options *o, const char *want)
{
    char **ids = NULL, **metas = NULL;
    size_t n = 99;
    assert_int_equal(svdb_select(f->db, o, &ids, &metas, &n), SVDB_OK);
    char got[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(got, ",");
        strcat(got, ids[i]);
        char *m = NULL;
        assert_int_equal(svdb_get(f->db, ids[i], NULL, 0, &m), SVDB_OK);
        if (m) assert_string_equal(metas[i], m);
        else assert_null(metas[i]);
        svdb_free(m);
    }
    assert_null(ids[n]); /* NULL-terminated, as svdb_ids */
    assert_string_equal(got, want);
    svdb_ids_free(ids);
    svdb_metadatas_free(metas);
}

static void test_select(void **state)
{
    fixture *f = *state;
    select_ok(f, NULL, "a,b,c,d");
    /* an update or upsert keeps a row's place; a deleted and re-added row goes last */
    const char *a[] = {"a"}, *b[] = {"b"};
    update_ok(f, 1, a, NULL, (const char *[]){"{\"k\":2}"}, 0, 1);
    assert_int_equal(svdb_upsert_batch(f->db, 1, b, V, 3, (const char *[]){"{\"k\":3}"}), SVDB_OK);
    select_ok(f, NULL, "a,b,c,d");
    size_t gone = 0;
    assert_int_equal(svdb_delete(f->db, 1, a, &gone), SVDB_OK);
    assert_int_equal(svdb_add_batch(f->db, 1, a, V, 3, NULL), SVDB_OK);
    select_ok(f, NULL, "b,c,d,a");
    svdb_select_options o;
    assert_int_equal(svdb_select_options_init(&o, SVDB_SELECT_OPTIONS_VERSION), SVDB_OK);
    assert_true(o.limit == SIZE_MAX && o.offset == 0 && !o.ids && !o.where);
    select_ok(f, &o, "b,c,d,a");
    /* ids: insertion order whatever the order asked, missing ignored, repeats once */
    const char *want[] = {"a", "zz", "d", "b", "a", "d"};
    o.ids = want;
    o.n_ids = 6;
    select_ok(f, &o, "b,d,a");
    o.n_ids = 0;
    select_ok(f, &o, ""); /* restricted to no id */
    o.n_ids = 6;
    /* filter among the ids, then the page */
    o.where = "{\"k\": {\"$gte\": 3}}";
    select_ok(f, &o, "b");
    o.where = NULL;
    o.offset = 1;
    select_ok(f, &o, "d,a");
    o.limit = 1;
    select_ok(f, &o, "d");
    o.limit = 0;
    select_ok(f, &o, "");
    o.ids = NULL;
    o.n_ids = 0;
    o.offset = 3;
    o.limit = 5;
    select_ok(f, &o, "a");
    o.offset = 10;
    select_ok(f, &o, "");
    o.offset = 0;
    o.limit = SIZE_MAX;
    o.where_document = "{\"$contains\": \"x\"}"; /* no row has a document */
    select_ok(f, &o, "");
    /* ids without metadata */
    char **ids = NULL;
    size_t n = 0;
    o.where_document = NULL;
    assert_int_equal(svdb_select(f->db, &o, &ids, NULL, &n), SVDB_OK);
    assert_int_equal(n, 4);
    svdb_ids_free(ids);
}

static void test_select_errors(void **state)
{
    fixture *f = *state;
    char **ids = (char **)0x1, **metas = (char **)0x1;
    size_t n = 7;
    svdb_select_options o;
    fails(svdb_select_options_init(NULL, 1), SVDB_EINVAL);
    fails(svdb_select_options_init(&o, 0), SVDB_EINVAL);
    fails(svdb_select_options_init(&o, SVDB_SELECT_OPTIONS_VERSION + 1), SVDB_EINVAL);
    svdb_select_options_init(&o, SVDB_SELECT_OPTIONS_VERSION);
    fails(svdb_select(f->db, &o, NULL, &metas, &n), SVDB_EINVAL);
    fails(svdb_select(f->db, &o, &ids, &metas, NULL), SVDB_EINVAL);
    o.version = 9;
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    assert_null(ids); /* outputs cleared on failure */
    assert_null(metas);
    assert_int_equal(n, 0);
    o.version = SVDB_SELECT_OPTIONS_VERSION;
    o.n_ids = 2; /* ids NULL */
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    const char *bad[] = {"a", ""};
    o.ids = bad;
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    const char *null_id[] = {"a", NULL};
    o.ids = null_id;
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    o.ids = NULL;
    o.n_ids = 0;
    o.where = "{\"k\": {\"$gt\": \"x\"}}";
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    o.where = "not json";
    fails(svdb_select(f->db, &o, &ids, &metas, &n), SVDB_EINVAL);
    fails(svdb_select(NULL, NULL, &ids, &metas, &n), SVDB_EMISUSE);
    assert_true(th_check_db(f->db, &f->m, 1));
}

/* ------------------------------------------------------------------ search_into */

static void test_search_into(void **state)
{
    fixture *f = *state;
    const float q[] = {1, 0.1f, 0};
    float dist[8];
    char ids[64];
    size_t n = 99, len = 99;
    for (size_t k = 1; k <= 6; k++) { /* the same hits as svdb_search, packed */
        svdb_hit *hits = NULL;
        size_t nh = 0;
        assert_int_equal(svdb_search(f->db, q, 3, k, NULL, &hits, &nh), SVDB_OK);
        assert_int_equal(svdb_search_into(f->db, q, 3, k, NULL, dist, ids, sizeof ids, &n, &len), SVDB_OK);
        assert_int_equal(n, nh);
        const char *at = ids;
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(at, hits[i].id);
            assert_true(dist[i] == hits[i].distance);
            at += strlen(at) + 1;
        }
        assert_int_equal(len, (size_t)(at - ids));
        svdb_hits_free(hits);
    }
    /* filters and the allow-list apply */
    svdb_search_options o;
    svdb_search_options_init(&o, SVDB_SEARCH_OPTIONS_VERSION);
    const char *only[] = {"d", "b"};
    o.ids = only;
    o.n_ids = 2;
    assert_int_equal(svdb_search_into(f->db, q, 3, 4, &o, dist, ids, sizeof ids, &n, &len), SVDB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(len, 4);
    assert_string_equal(ids, "b");
    assert_string_equal(ids + 2, "d");
    /* too small a buffer: ETOOBIG with the bytes needed, no hits */
    fails(svdb_search_into(f->db, q, 3, 4, NULL, dist, ids, 5, &n, &len), SVDB_ETOOBIG);
    assert_int_equal(n, 0);
    assert_int_equal(len, 8);
    assert_int_equal(svdb_search_into(f->db, q, 3, 4, NULL, dist, ids, 8, &n, &len), SVDB_OK);
    assert_int_equal(n, 4);
    /* errors */
    fails(svdb_search_into(f->db, NULL, 3, 1, NULL, dist, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 3, 1, NULL, NULL, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 3, 1, NULL, dist, NULL, sizeof ids, &n, &len), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 3, 1, NULL, dist, ids, sizeof ids, NULL, &len), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 3, 1, NULL, dist, ids, sizeof ids, &n, NULL), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 3, 0, NULL, dist, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    fails(svdb_search_into(f->db, q, 4, 1, NULL, dist, ids, sizeof ids, &n, &len), SVDB_EDIM);
    o.version = 99;
    fails(svdb_search_into(f->db, q, 3, 1, &o, dist, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    svdb_search_options_init(&o, SVDB_SEARCH_OPTIONS_VERSION);
    o.where = "{\"k\": {\"$gt\": \"x\"}}";
    fails(svdb_search_into(f->db, q, 3, 1, &o, dist, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    const float bad[] = {1, NAN, 0};
    fails(svdb_search_into(f->db, bad, 3, 1, NULL, dist, ids, sizeof ids, &n, &len), SVDB_EINVAL);
    fails(svdb_search_into(NULL, q, 3, 1, NULL, dist, ids, sizeof ids, &n, &len), SVDB_EMISUSE);
    assert_int_equal(n, 0);
}

/* ------------------------------------------------------------------ search restricted to ids */

static void test_search_ids(void **state)
{
    fixture *f = *state;
    svdb_search_options o;
    assert_int_equal(svdb_search_options_init(&o, SVDB_SEARCH_OPTIONS_VERSION), SVDB_OK);
    const char *only[] = {"d", "zz", "b", "d"};
    o.ids = only;
    o.n_ids = 4;
    float q[] = {1, 0, 0}; /* nearest overall is "a", which is not in the list */
    svdb_hit *hits;
    size_t n;
    assert_int_equal(svdb_search(f->db, q, 3, 10, &o, &hits, &n), SVDB_OK);
    assert_int_equal(n, 2); /* missing ids ignored, repeats once */
    /* both at squared distance 2; a tie goes to the row inserted first */
    assert_string_equal(hits[0].id, "b");
    assert_string_equal(hits[1].id, "d");
    assert_true(hits[0].distance == 2.0f && hits[1].distance == 2.0f);
    svdb_hits_free(hits);
    /* with a filter as well: only listed rows that match */
    const char *only2[] = {"a", "c", "d"};
    o.ids = only2;
    o.n_ids = 3;
    o.where = "{\"k\": 1}";
    assert_int_equal(svdb_search(f->db, q, 3, 10, &o, &hits, &n), SVDB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].id, "a");
    svdb_hits_free(hits);
    o.where = NULL;
    /* a batch of queries */
    float qs[] = {0, 0, 1, 0.9f, 0.9f, 0.9f};
    size_t counts[2];
    assert_int_equal(svdb_search_batch(f->db, 2, qs, 3, 1, &o, &hits, counts), SVDB_OK);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_string_equal(hits[0].id, "c");
    assert_string_equal(hits[1].id, "d");
    svdb_hits_free(hits);
    /* an empty list: no row */
    o.n_ids = 0;
    assert_int_equal(svdb_search(f->db, q, 3, 10, &o, &hits, &n), SVDB_OK);
    assert_int_equal(n, 0);
    assert_null(hits);
    /* a bad id in the list */
    const char *bad[] = {"a", ""};
    o.ids = bad;
    o.n_ids = 2;
    fails(svdb_search(f->db, q, 3, 10, &o, &hits, &n), SVDB_EINVAL);
    /* a version-1 struct has no list: the whole collection */
    svdb_search_options o1;
    assert_int_equal(svdb_search_options_init(&o1, 1), SVDB_OK);
    assert_int_equal(svdb_search(f->db, q, 3, 10, &o1, &hits, &n), SVDB_OK);
    assert_int_equal(n, 4);
    svdb_hits_free(hits);
}

/* ------------------------------------------------------------------ automatic checkpoints */

static long wal_size(const char *dir)
{
    char *p = th_path(dir, "wal.svdb");
    long n = th_file_size(p);
    free(p);
    return n;
}

static void test_autocheckpoint(void **state)
{
    (void)state;
    char *dir = th_tmpdir("autockpt");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    assert_true(o.autocheckpoint_bytes == SVDB_AUTOCHECKPOINT_DEFAULT);
    o.autocheckpoint_bytes = 8192;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    th_model m;
    th_model_init(&m, 16);
    long max_wal = 0;
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        const char *ids[] = {id};
        float v[16];
        th_random(v, 16, (unsigned)i);
        assert_int_equal(svdb_add_batch(db, 1, ids, v, 16, NULL), SVDB_OK);
        th_model_put(&m, id, v, NULL);
        long w = wal_size(dir);
        if (w > max_wal) max_wal = w;
    }
    /* 200 records of about 100 bytes: without checkpoints the log would pass 16 KiB */
    assert_true(max_wal < 8192 + 512);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    /* 0 turns it off: the log keeps every record until persist or close */
    o.autocheckpoint_bytes = 0;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    long before = wal_size(dir);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        const char *ids[] = {id};
        float v[16];
        th_random(v, 16, (unsigned)(1000 + i));
        assert_int_equal(svdb_add_batch(db, 1, ids, v, 16, NULL), SVDB_OK);
        th_model_put(&m, id, v, NULL);
    }
    assert_true(wal_size(dir) > before + 16384);
    assert_int_equal(svdb_close(db), SVDB_OK);
    /* an options struct of version 3 has no field: the default applies */
    svdb_open_options o3;
    assert_int_equal(svdb_open_options_init(&o3, 3), SVDB_OK);
    assert_int_equal(svdb_open(&db, dir, &o3), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_batch, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_get_batch_errors, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_update_vectors_only, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_update_vectors_only, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_update_metadata_replace, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_update_metadata_replace, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_update_metadata_merge, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_update_both_and_skip, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_update_errors, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_update_insert_missing, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_update_persists, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_select, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_select, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_select_errors, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_search_into, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_search_into, setup_hnsw, teardown),
        cmocka_unit_test_setup_teardown(test_search_ids, setup_flat, teardown),
        cmocka_unit_test_setup_teardown(test_search_ids, setup_hnsw, teardown),
        cmocka_unit_test(test_autocheckpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
