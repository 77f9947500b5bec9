/* The bounded heap behind every search: the k best by (distance, seq),
 * nearest first, ties broken by insertion order. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "topk.h"

static int cmp_cand(const void *a, const void *b)
{
    const svdb_cand *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void run_case(size_t n, size_t k, int distinct_vals, uint64_t *rng)
{
    svdb_cand *all = malloc((n ? n : 1) * sizeof *all);
    svdb_cand *store = malloc((k ? k : 1) * sizeof *store);
    /* Sequence numbers are unique but pushed in random order. */
    for (size_t i = 0; i < n; i++) {
        all[i].dist = distinct_vals ? (float)th_randn(rng, (uint32_t)distinct_vals) : (float)(th_rand64(rng) % 1000000) / 7.0f;
        all[i].seq = i * 3 + 1;
        all[i].slot = (uint32_t)i;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = th_randn(rng, (uint32_t)i);
        svdb_cand t = all[i - 1];
        all[i - 1] = all[j];
        all[j] = t;
    }
    svdb_topk t;
    svdb__topk_init(&t, store, k);
    for (size_t i = 0; i < n; i++) {
        /* wants() never rejects a candidate that push would keep. */
        int wanted = svdb__topk_wants(&t, all[i].dist);
        size_t before = t.n;
        svdb_cand worst_before = t.n ? t.a[0] : all[i];
        svdb__topk_push(&t, all[i]);
        if (!wanted) {
            assert_int_equal(t.n, before);
            assert_true(t.a[0].seq == worst_before.seq);
        }
    }
    size_t got = svdb__topk_finish(&t);
    qsort(all, n, sizeof *all, cmp_cand);
    size_t want = n < k ? n : k;
    assert_int_equal(got, want);
    for (size_t i = 0; i < want; i++) {
        assert_true(store[i].dist == all[i].dist);
        assert_true(store[i].seq == all[i].seq);
        assert_int_equal(store[i].slot, all[i].slot);
    }
    free(all);
    free(store);
}

static void test_topk__matches_sort(void **state)
{
    (void)state;
    uint64_t rng = 11;
    const size_t ns[] = {0, 1, 2, 3, 7, 64, 1000};
    const size_t ks[] = {1, 2, 3, 10, 100, 1000, 5000};
    const int vals[] = {0, 1, 2, 5, 50};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
            for (size_t c = 0; c < sizeof vals / sizeof vals[0]; c++)
                for (int rep = 0; rep < 3; rep++) run_case(ns[a], ks[b], vals[c], &rng);
}

static void test_topk__ties_by_insertion_order(void **state)
{
    (void)state;
    svdb_cand store[3];
    svdb_topk t;
    svdb__topk_init(&t, store, 3);
    /* Five equal distances pushed late-first: the three earliest win, in order. */
    for (int s = 5; s >= 1; s--) svdb__topk_push(&t, (svdb_cand){1.0f, (uint32_t)s, (uint64_t)s});
    assert_int_equal(svdb__topk_finish(&t), 3);
    for (int i = 0; i < 3; i++) assert_true(store[i].seq == (uint64_t)(i + 1));
    /* A better distance beats an earlier sequence; equal distance loses to an earlier one. */
    svdb__topk_init(&t, store, 2);
    svdb__topk_push(&t, (svdb_cand){2.0f, 0, 1});
    svdb__topk_push(&t, (svdb_cand){2.0f, 0, 2});
    svdb__topk_push(&t, (svdb_cand){2.0f, 0, 3});
    svdb__topk_push(&t, (svdb_cand){1.5f, 0, 9});
    assert_int_equal(svdb__topk_finish(&t), 2);
    assert_true(store[0].seq == 9 && store[1].seq == 1);
    /* Infinities rank last but are kept when there is room. */
    svdb__topk_init(&t, store, 3);
    svdb__topk_push(&t, (svdb_cand){INFINITY, 0, 1});
    svdb__topk_push(&t, (svdb_cand){-1.0f, 0, 2});
    svdb__topk_push(&t, (svdb_cand){0.0f, 0, 3});
    assert_int_equal(svdb__topk_finish(&t), 3);
    assert_true(store[0].seq == 2 && store[1].seq == 3 && store[2].seq == 1);
    /* k = 0 keeps nothing. */
    svdb__topk_init(&t, store, 0);
    svdb__topk_push(&t, (svdb_cand){1.0f, 0, 1});
    assert_int_equal(svdb__topk_finish(&t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk__matches_sort),
        cmocka_unit_test(test_topk__ties_by_insertion_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
