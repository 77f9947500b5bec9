/* The id hash table: spread of sequential ids, insert/remove/reinsert
 * against a reference, backward-shift deletion across the wrap-around, and
 * id validation. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "idmap.h"
#include "svdb.h"

/* The tables here map key i to slot i of a string array. */
static const char *arr_key(const void *ctx, uint32_t slot, size_t *len)
{
    char *const *k = ctx;
    *len = strlen(k[slot]);
    return k[slot];
}

/* Longest distance of any key from its home bucket. */
/* Home bucket of the key in bucket i (the table maps key j to slot j of
 * the global key array). */
static char **g_keys;
static size_t home_of(const svdb_idmap *m, size_t i)
{
    const char *k = g_keys[m->slot[i]];
    return (size_t)svdb__hash(k, strlen(k)) & (m->cap - 1);
}

static size_t max_probe(const svdb_idmap *m, double *mean)
{
    size_t worst = 0, total = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i] == SVDB_NO_SLOT) continue;
        size_t home = home_of(m, i);
        size_t dist = (i - home) & (m->cap - 1);
        if (dist > worst) worst = dist;
        total += dist;
    }
    if (mean) *mean = m->n ? (double)total / (double)m->n : 0;
    return worst;
}

/* Every key is findable and the table's invariant holds: no empty bucket
 * between a key and its home. */
static void check_table(const svdb_idmap *m, char **keys, const int *present, size_t n)
{
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t got = svdb__idmap_find(m, keys[i], strlen(keys[i]), arr_key, keys);
        if (present[i]) {
            live++;
            assert_int_equal(got, (uint32_t)i);
        } else {
            assert_int_equal(got, SVDB_NO_SLOT);
        }
    }
    assert_int_equal(m->n, live);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i] == SVDB_NO_SLOT) continue;
        const char *k = keys[m->slot[i]];
        assert_int_equal(m->tag[i], svdb__idmap_tag(svdb__hash(k, strlen(k))));
        for (size_t j = (size_t)svdb__hash(k, strlen(k)) & (m->cap - 1); j != i; j = (j + 1) & (m->cap - 1))
            assert_int_not_equal(m->slot[j], SVDB_NO_SLOT);
    }
}

static void test_idmap__sequential_spread(void **state)
{
    (void)state;
    enum { N = 100000 };
    char **keys = calloc(N, sizeof *keys);
    g_keys = keys;
    svdb_idmap m = {0};
    assert_int_equal(svdb__idmap_reserve(&m, N, arr_key, keys), SVDB_OK);
    for (int i = 0; i < N; i++) {
        assert_true(asprintf(&keys[i], "id%d", i) > 0);
        svdb__idmap_insert(&m, keys[i], strlen(keys[i]), (uint32_t)i);
    }
    assert_int_equal(m.n, N);
    assert_true(m.n * 10 <= m.cap * 7);
    double mean;
    size_t worst = max_probe(&m, &mean);
    fprintf(stderr, "100000 sequential ids: cap %zu, max probe %zu, mean %.3f\n", m.cap, worst, mean);
    assert_true(worst <= 40);
    assert_true(mean < 1.0);
    for (int i = 0; i < N; i += 7) assert_int_equal(svdb__idmap_find(&m, keys[i], strlen(keys[i]), arr_key, keys), (uint32_t)i);
    assert_int_equal(svdb__idmap_find(&m, "id100000", 8, arr_key, keys), SVDB_NO_SLOT);
    assert_int_equal(svdb__idmap_find(&m, "id", 2, arr_key, keys), SVDB_NO_SLOT);
    /* Bucket spread: the 16 low bits of the hashes of sequential ids are close to uniform. */
    enum { BINS = 256 };
    size_t bins[BINS] = {0};
    for (int i = 0; i < N; i++) bins[svdb__hash(keys[i], strlen(keys[i])) & (BINS - 1)]++;
    for (int b = 0; b < BINS; b++) assert_true(bins[b] > N / BINS / 2 && bins[b] < N / BINS * 2);
    /* Remove every other key; the rest stay findable and probes stay short. */
    for (int i = 0; i < N; i += 2) svdb__idmap_remove(&m, keys[i], strlen(keys[i]), arr_key, keys);
    assert_int_equal(m.n, N / 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(svdb__idmap_find(&m, keys[i], strlen(keys[i]), arr_key, keys), i % 2 ? (uint32_t)i : SVDB_NO_SLOT);
    assert_true(max_probe(&m, NULL) <= worst);
    svdb__idmap_free(&m);
    for (int i = 0; i < N; i++) free(keys[i]);
    free(keys);
}

static void test_idmap__random_ops(void **state)
{
    (void)state;
    /* Small tables make long runs that wrap around the end. */
    const size_t sizes[] = {5, 11, 40, 300};
    uint64_t rng = 3;
    for (size_t si = 0; si < 4; si++) {
        size_t n = sizes[si];
        char **keys = malloc(n * sizeof *keys);
        int *present = calloc(n, sizeof *present);
        for (size_t i = 0; i < n; i++) assert_true(asprintf(&keys[i], "k-%zu-%zu", si, i) > 0);
        g_keys = keys;
        svdb_idmap m = {0};
        assert_int_equal(svdb__idmap_find(&m, "x", 1, arr_key, keys), SVDB_NO_SLOT); /* an empty table */
        svdb__idmap_remove(&m, "x", 1, arr_key, keys);
        for (int step = 0; step < 20000; step++) {
            size_t i = th_randn(&rng, (uint32_t)n);
            if (present[i]) {
                svdb__idmap_remove(&m, keys[i], strlen(keys[i]), arr_key, keys);
                present[i] = 0;
            } else {
                assert_int_equal(svdb__idmap_reserve(&m, 1, arr_key, keys), SVDB_OK); /* grows: rehashes through arr_key */
                svdb__idmap_insert(&m, keys[i], strlen(keys[i]), (uint32_t)i);
                present[i] = 1;
            }
            if (step % 97 == 0) check_table(&m, keys, present, n);
        }
        check_table(&m, keys, present, n);
        for (size_t i = 0; i < n; i++)
            if (present[i]) svdb__idmap_remove(&m, keys[i], strlen(keys[i]), arr_key, keys), present[i] = 0;
        assert_int_equal(m.n, 0);
        for (size_t i = 0; i < m.cap; i++) assert_int_equal(m.slot[i], SVDB_NO_SLOT);
        svdb__idmap_free(&m);
        for (size_t i = 0; i < n; i++) free(keys[i]);
        free(keys);
        free(present);
    }
}

static void test_idmap__keys_with_same_prefix_and_length(void **state)
{
    (void)state;
    /* Keys that differ only in the last byte, or only by length. */
    const char *keys[] = {"a", "aa", "aaa", "ab", "ba", "\xc3\xa9", "\xc3\xa9\xc3\xa9", "a\x01", "a\x7f"};
    enum { N = sizeof keys / sizeof keys[0] };
    svdb_idmap m = {0};
    assert_int_equal(svdb__idmap_reserve(&m, N, arr_key, keys), SVDB_OK);
    for (size_t i = 0; i < N; i++) svdb__idmap_insert(&m, keys[i], strlen(keys[i]), (uint32_t)i);
    for (size_t i = 0; i < N; i++) assert_int_equal(svdb__idmap_find(&m, keys[i], strlen(keys[i]), arr_key, keys), (uint32_t)i);
    /* A prefix length finds the shorter key only. */
    assert_int_equal(svdb__idmap_find(&m, "aaa", 2, arr_key, keys), 1);
    svdb__idmap_free(&m);
}

static void test_idmap__id_check(void **state)
{
    (void)state;
    size_t len = 0;
    assert_int_equal(svdb__id_check("abc", &len), SVDB_OK);
    assert_int_equal(len, 3);
    assert_int_equal(svdb__id_check(NULL, &len), SVDB_EINVAL);
    assert_int_equal(svdb__id_check("", &len), SVDB_EINVAL);
    char big[SVDB_MAX_ID_BYTES + 2];
    memset(big, 'b', sizeof big);
    big[SVDB_MAX_ID_BYTES] = '\0';
    assert_int_equal(svdb__id_check(big, &len), SVDB_OK);
    assert_int_equal(len, SVDB_MAX_ID_BYTES);
    big[SVDB_MAX_ID_BYTES] = 'b';
    big[SVDB_MAX_ID_BYTES + 1] = '\0';
    assert_int_equal(svdb__id_check(big, &len), SVDB_ETOOBIG);
    /* A multi-byte character straddling the limit. */
    memset(big, 'b', sizeof big);
    big[SVDB_MAX_ID_BYTES - 1] = (char)0xc3;
    big[SVDB_MAX_ID_BYTES] = (char)0xa9;
    big[SVDB_MAX_ID_BYTES + 1] = '\0';
    assert_int_equal(svdb__id_check(big, &len), SVDB_ETOOBIG);
    const char *good[] = {"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                          "\xf4\x8f\xbf\xbf", "\xee\x80\x80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) assert_int_equal(svdb__id_check(good[i], &len), SVDB_OK);
    const char *bad[] = {"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
                         "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xfe", "\xff", "\xc2",
                         "\xe0\xa0", "\xf0\x90\x80", "\xc2\x41", "\xe0\xa0\x41"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (svdb__id_check(bad[i], &len) != SVDB_EINVAL) fprintf(stderr, "bad id %zu accepted\n", i);
        assert_int_equal(svdb__id_check(bad[i], &len), SVDB_EINVAL);
    }
    /* The length-based check for file contents rejects NUL. */
    assert_int_equal(svdb__utf8_check("a\0b", 3), SVDB_EINVAL);
    assert_int_equal(svdb__utf8_check("ab", 2), SVDB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap__sequential_spread),
        cmocka_unit_test(test_idmap__random_ops),
        cmocka_unit_test(test_idmap__keys_with_same_prefix_and_length),
        cmocka_unit_test(test_idmap__id_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
