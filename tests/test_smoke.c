#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "svdb.h"

static void test_smoke__roundtrip(void **state)
{
    (void)state;
    char *dir = th_tmpdir("smoke");
    svdb *db = NULL;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    const char *ids[] = {"a", "b"};
    float v[] = {1, 2, 3, 4, 5, 6};
    const char *metas[] = {"{\"x\":1}", NULL};
    assert_int_equal(svdb_add_batch(db, 2, ids, v, 3, metas), SVDB_OK);
    svdb_hit *hits;
    size_t n;
    float q[] = {1, 2, 3};
    assert_int_equal(svdb_search(db, q, 3, 5, NULL, &hits, &n), SVDB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].id, "a");
    assert_true(hits[0].distance == 0.0f);
    assert_true(hits[1].distance == 27.0f);
    svdb_hits_free(hits);
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    size_t c;
    assert_int_equal(svdb_count(db, &c), SVDB_OK);
    assert_int_equal(c, 2);
    char *m;
    assert_int_equal(svdb_get(db, "a", NULL, 0, &m), SVDB_OK);
    assert_string_equal(m, "{\"x\":1}");
    svdb_free(m);
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_smoke__roundtrip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
