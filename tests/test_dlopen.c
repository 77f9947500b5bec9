/* The shared library as another language would use it: dlopen, dlsym of
 * the public functions by name, and plain calls through the pointers. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "svdb.h"

static const char *const public_names[] = {
    "svdb_version", "svdb_version_number", "svdb_abi_version", "svdb_strerror", "svdb_errmsg", "svdb_simd_path",
    "svdb_open_options_init", "svdb_search_options_init", "svdb_open", "svdb_close", "svdb_persist",
    "svdb_add_batch", "svdb_upsert_batch", "svdb_delete", "svdb_get", "svdb_contains", "svdb_count", "svdb_dim",
    "svdb_metric", "svdb_index_type", "svdb_ids", "svdb_search", "svdb_search_batch", "svdb_free", "svdb_ids_free",
    "svdb_hits_free",
};

typedef struct api {
    void *h;
    int (*abi_version)(void);
    const char *(*version)(void);
    const char *(*errmsg)(void);
    const char *(*strerror_)(int);
    int (*open_options_init)(svdb_open_options *, unsigned int);
    int (*open)(svdb **, const char *, const svdb_open_options *);
    int (*close)(svdb *);
    int (*add_batch)(svdb *, size_t, const char *const *, const float *, uint32_t, const char *const *);
    int (*get)(svdb *, const char *, float *, uint32_t, char **);
    int (*count)(svdb *, size_t *);
    int (*search)(svdb *, const float *, uint32_t, size_t, const svdb_search_options *, svdb_hit **, size_t *);
    void (*hits_free)(svdb_hit *);
    void (*free_)(void *);
} api;

static void *sym(void *h, const char *name)
{
    dlerror();
    void *p = dlsym(h, name);
    if (!p) fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
    assert_non_null(p);
    return p;
}

static void load(api *a)
{
    a->h = dlopen(SVDB_SHARED_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!a->h) fprintf(stderr, "dlopen(%s): %s\n", SVDB_SHARED_LIB, dlerror());
    assert_non_null(a->h);
    *(void **)&a->abi_version = sym(a->h, "svdb_abi_version");
    *(void **)&a->version = sym(a->h, "svdb_version");
    *(void **)&a->errmsg = sym(a->h, "svdb_errmsg");
    *(void **)&a->strerror_ = sym(a->h, "svdb_strerror");
    *(void **)&a->open_options_init = sym(a->h, "svdb_open_options_init");
    *(void **)&a->open = sym(a->h, "svdb_open");
    *(void **)&a->close = sym(a->h, "svdb_close");
    *(void **)&a->add_batch = sym(a->h, "svdb_add_batch");
    *(void **)&a->get = sym(a->h, "svdb_get");
    *(void **)&a->count = sym(a->h, "svdb_count");
    *(void **)&a->search = sym(a->h, "svdb_search");
    *(void **)&a->hits_free = sym(a->h, "svdb_hits_free");
    *(void **)&a->free_ = sym(a->h, "svdb_free");
}

static void test_dlopen__symbols(void **state)
{
    (void)state;
    api a;
    load(&a);
    for (size_t i = 0; i < sizeof public_names / sizeof public_names[0]; i++) sym(a.h, public_names[i]);
    /* Internals stay hidden. */
    assert_null(dlsym(a.h, "svdb__malloc"));
    assert_null(dlsym(a.h, "svdb__crc32c"));
    assert_null(dlsym(a.h, "svdb__io_fail_after"));
    assert_int_equal(a.abi_version(), SVDB_ABI_VERSION);
    assert_string_equal(a.version(), svdb_version());
    assert_string_equal(a.strerror_(SVDB_ELOCKED), svdb_strerror(SVDB_ELOCKED));
    assert_int_equal(dlclose(a.h), 0);
}

static void test_dlopen__use(void **state)
{
    (void)state;
    api a;
    load(&a);
    char *dir = th_tmpdir("dlopen");
    svdb_open_options o;
    assert_int_equal(a.open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION), SVDB_OK);
    o.metric = SVDB_METRIC_COSINE;
    svdb *db = NULL;
    assert_int_equal(a.open(&db, dir, &o), SVDB_OK);
    const char *ids[] = {"x", "y", "z"};
    float v[] = {1, 0, 0, 1, 1, 1};
    const char *metas[] = {"{\"lang\":\"py\"}", NULL, "{}"};
    assert_int_equal(a.add_batch(db, 3, ids, v, 2, metas), SVDB_OK);
    assert_int_equal(a.add_batch(db, 1, ids, v, 3, NULL), SVDB_EDIM);
    assert_true(strlen(a.errmsg()) > 0);
    size_t n;
    assert_int_equal(a.count(db, &n), SVDB_OK);
    assert_int_equal(n, 3);
    svdb_hit *hits;
    float q[2] = {2, 0};
    assert_int_equal(a.search(db, q, 2, 2, NULL, &hits, &n), SVDB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].id, "x");
    assert_string_equal(hits[1].id, "z");
    a.hits_free(hits);
    char *meta;
    float got[2];
    assert_int_equal(a.get(db, "x", got, 2, &meta), SVDB_OK);
    assert_string_equal(meta, "{\"lang\":\"py\"}");
    a.free_(meta);
    assert_int_equal(a.close(db), SVDB_OK);
    /* The statically linked copy reads what the shared one wrote. */
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    assert_int_equal(svdb_count(db, &n), SVDB_OK);
    assert_int_equal(n, 3);
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(dlclose(a.h), 0);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dlopen__symbols),
        cmocka_unit_test(test_dlopen__use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
