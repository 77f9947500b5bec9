/* Distance kernels: every SIMD table against the scalar one and a double
 * reference, over many dimensions (tails included), row counts and query
 * counts; search results with the scalar path forced; and the metric space
 * (kernel choice, the distance convention, query preparation). */
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

#include "distance.h"
#include "alloc.h"
#include "helpers.h"
#include "space.h"
#include "svdb.h"

static const char *const names[] = {"scalar", "avx2", "avx512", "neon"};

static void check_kernel(const svdb_kernels *k, int is_l2, size_t dim, size_t n, int nq, int misalign, uint64_t *rng)
{
    /* Misaligned buffers: one float past an aligned start. */
    float *xbuf = malloc((n * dim + 1) * sizeof(float));
    float *qbuf = malloc(((size_t)nq * dim + 1) * sizeof(float));
    float *x = xbuf + misalign, *qs = qbuf + misalign;
    th_random(x, n * dim, (unsigned)th_rand64(rng));
    th_random(qs, (size_t)nq * dim, (unsigned)th_rand64(rng));
    const float *q[SVDB_KERNEL_MAX_Q];
    for (int j = 0; j < nq; j++) q[j] = qs + (size_t)j * dim;
    float *out = malloc((size_t)nq * n * sizeof(float));
    float *one = malloc(n * sizeof(float));
    svdb_kernel_fn fn = is_l2 ? k->l2 : k->dot;
    fn(q, nq, x, n, dim, out);
    for (int j = 0; j < nq; j++) {
        /* A query's result does not depend on how many queries share the call. */
        fn(&q[j], 1, x, n, dim, one);
        for (size_t i = 0; i < n; i++) {
            double ref = 0, mag = 0;
            for (size_t d = 0; d < dim; d++) {
                double a = q[j][d], b = x[i * dim + d];
                double t = is_l2 ? (a - b) * (a - b) : a * b;
                ref += t;
                mag += fabs(t);
            }
            float got = out[(size_t)j * n + i];
            if (!(fabs(got - ref) <= 1e-4 * mag + 1e-6)) {
                fprintf(stderr, "%s %s dim %zu n %zu nq %d q %d row %zu: %.9g vs %.9g\n", k->name,
                        is_l2 ? "l2" : "dot", dim, n, nq, j, i, got, ref);
                fail();
            }
            if (memcmp(&got, &one[i], sizeof got) != 0) {
                fprintf(stderr, "%s %s dim %zu: nq=%d differs from nq=1 (%.9g vs %.9g)\n", k->name,
                        is_l2 ? "l2" : "dot", dim, nq, got, one[i]);
                fail();
            }
        }
    }
    free(out);
    free(one);
    free(xbuf);
    free(qbuf);
}

static void test_distance__kernels_vs_reference(void **state)
{
    (void)state;
    assert_non_null(svdb__kernels_named("scalar"));
    assert_null(svdb__kernels_named("bogus"));
    assert_null(svdb__kernels_named(NULL));
    size_t dims[80], nd = 0;
    for (size_t d = 1; d <= 70; d++) dims[nd++] = d;
    dims[nd++] = 128;
    dims[nd++] = 384;
    dims[nd++] = 784;
    uint64_t rng = 7;
    int tested = 0;
    for (size_t ki = 0; ki < 4; ki++) {
        const svdb_kernels *k = svdb__kernels_named(names[ki]);
        if (!k) {
            fprintf(stderr, "kernel %s: not available here\n", names[ki]);
            continue;
        }
        assert_string_equal(k->name, names[ki]);
        assert_non_null(k->l2);
        assert_non_null(k->dot);
        tested++;
        for (size_t di = 0; di < nd; di++)
            for (int nq = 1; nq <= SVDB_KERNEL_MAX_Q; nq++) {
                size_t n = 1 + th_randn(&rng, dims[di] > 100 ? 9 : 21);
                check_kernel(k, 1, dims[di], n, nq, (int)(di & 1), &rng);
                check_kernel(k, 0, dims[di], n, nq, (int)((di + 1) & 1), &rng);
            }
    }
    assert_true(tested >= 1);
    /* The chosen path is one of the available tables. */
    assert_non_null(svdb__kernels_named(svdb_simd_path()));
}

/* Exact distances on small integers: every kernel must give the same bits. */
static void test_distance__integer_exact(void **state)
{
    (void)state;
    enum { DIM = 37, N = 29 };
    float x[N * DIM], q[DIM];
    for (int i = 0; i < N * DIM; i++) x[i] = (float)((i * 7) % 11) - 5.0f;
    for (int d = 0; d < DIM; d++) q[d] = (float)((d * 3) % 5) - 2.0f;
    const float *qp[1] = {q};
    float ref_l2[N], ref_dot[N], out[N];
    const svdb_kernels *s = svdb__kernels_named("scalar");
    s->l2(qp, 1, x, N, DIM, ref_l2);
    s->dot(qp, 1, x, N, DIM, ref_dot);
    for (size_t ki = 1; ki < 4; ki++) {
        const svdb_kernels *k = svdb__kernels_named(names[ki]);
        if (!k) continue;
        k->l2(qp, 1, x, N, DIM, out);
        assert_memory_equal(out, ref_l2, sizeof out);
        k->dot(qp, 1, x, N, DIM, out);
        assert_memory_equal(out, ref_dot, sizeof out);
    }
}

/* Child mode: with SVDB_SIMD=scalar in the environment, search and print ids. */
static int child_search(const char *dir, const char *out_path)
{
    svdb *db;
    if (svdb_open(&db, dir, NULL) != SVDB_OK) return 2;
    FILE *f = fopen(out_path, "w");
    if (!f) return 3;
    fprintf(f, "%s\n", svdb_simd_path());
    for (unsigned qi = 0; qi < 20; qi++) {
        float q[64];
        th_random(q, 64, 5000 + qi);
        svdb_hit *h;
        size_t n;
        if (svdb_search(db, q, 64, 10, NULL, &h, &n) != SVDB_OK) return 4;
        for (size_t i = 0; i < n; i++) fprintf(f, "%s ", h[i].id);
        fprintf(f, "\n");
        svdb_hits_free(h);
    }
    fclose(f);
    svdb_close(db);
    return 0;
}

static char *self_exe;

static void test_distance__forced_scalar_search(void **state)
{
    (void)state;
    char *dir = th_tmpdir("dist-scalar");
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, NULL), SVDB_OK);
    /* Well separated data: row i sits at a distinct scale so there are no near-ties. */
    enum { N = 2000, D = 64 };
    float *v = malloc(N * D * sizeof(float));
    char **ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) {
        th_random(v + i * D, D, (unsigned)i + 1);
        for (int d = 0; d < D; d++) v[i * D + d] *= 1.0f + (float)i * 0.01f;
        assert_true(asprintf(&ids[i], "v%d", i) > 0);
    }
    assert_int_equal(svdb_add_batch(db, N, (const char *const *)ids, v, D, NULL), SVDB_OK);
    assert_int_equal(svdb_close(db), SVDB_OK);
    char *scalar_out = th_path(dir, "scalar.txt"), *best_out = th_path(dir, "best.txt");
    assert_int_equal(child_search(dir, best_out), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SVDB_SIMD", "scalar", 1);
        execl(self_exe, self_exe, "--child-search", dir, scalar_out, (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    size_t ls, lb;
    char *a = (char *)th_read_file(scalar_out, &ls), *b = (char *)th_read_file(best_out, &lb);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(strncmp(a, "scalar\n", 7) == 0);
    const char *a_body = strchr(a, '\n'), *b_body = strchr(b, '\n');
    assert_true(ls - (size_t)(a_body - a) == lb - (size_t)(b_body - b));
    assert_memory_equal(a_body, b_body, lb - (size_t)(b_body - b));
    free(a);
    free(b);
    free(scalar_out);
    free(best_out);
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
    free(v);
    th_rmrf(dir);
    free(dir);
}

/* The space picks the metric's kernels, applies the distance convention
 * (NaN ranked last, cosine reported within [0, 2]) and prepares queries
 * as the search path expects them, refusing what it must. */
static void test_distance__space(void **state)
{
    (void)state;
    const svdb_kernels *k = svdb__kernels_scalar();
    svdb_space sp;
    svdb__space_init(&sp, SVDB_METRIC_L2, 3, k, NULL);
    assert_true(sp.block == k->l2 && sp.pair == k->l2_pair && sp.gather == k->l2_gather && sp.walk == k->l2_gather);
    svdb__space_init(&sp, SVDB_METRIC_IP, 3, k, NULL);
    assert_true(sp.block == k->dot && sp.pair == k->dot_pair && sp.walk == k->dot_gather);
    const svdb_code_kernels *ck = svdb__space_code_kernels(SVDB_STORAGE_F16, k);
    assert_non_null(ck);
    assert_null(svdb__space_code_kernels(SVDB_STORAGE_F32, k));
    svdb__space_init(&sp, SVDB_METRIC_COSINE, 3, k, ck);
    assert_true(sp.gather == k->dot_gather && sp.walk == ck->dot_gather);

    assert_true(svdb__space_dist(SVDB_METRIC_L2, 2.5f, 1.0f, 1.0f) == 2.5f);
    assert_true(svdb__space_dist(SVDB_METRIC_IP, 0.25f, 1.0f, 1.0f) == 0.75f);
    assert_true(svdb__space_dist(SVDB_METRIC_COSINE, 8.0f, 0.5f, 0.25f) == 0.0f);
    assert_true(isinf(svdb__space_dist(SVDB_METRIC_IP, NAN, 1.0f, 1.0f)));
    assert_true(isnan(svdb__space_score(SVDB_METRIC_IP, NAN, 1.0f, 1.0f)));
    assert_true(svdb__space_reported(SVDB_METRIC_COSINE, -1e-7f) == 0.0f);
    assert_true(svdb__space_reported(SVDB_METRIC_COSINE, 2.0000002f) == 2.0f);
    assert_true(svdb__space_reported(SVDB_METRIC_IP, -3.0f) == -3.0f);
    const float *none = NULL; /* other metrics keep no norms: never read */
    assert_true(SVDB_SPACE_ROW_NORM(SVDB_METRIC_L2, *none) == 1.0f);

    float q[9] = {3, 4, 0, 0, 0, 0, 1, 1, 1}, *out = NULL;
    svdb__space_init(&sp, SVDB_METRIC_COSINE, 3, k, NULL);
    assert_int_equal(svdb__space_prepare_queries(&sp, q, 3, 3, &out), SVDB_OK);
    assert_true(fabsf(out[0] - 0.6f) < 1e-7f && fabsf(out[1] - 0.8f) < 1e-7f);
    assert_true(out[3] == 0.0f && out[4] == 0.0f && out[5] == 0.0f); /* a zero query stays zero */
    assert_true(q[0] == 3.0f);                                        /* the caller's copy is untouched */
    svdb__free(out);
    svdb__space_init(&sp, SVDB_METRIC_L2, 3, k, NULL);
    assert_int_equal(svdb__space_prepare_queries(&sp, q, 3, 3, &out), SVDB_OK);
    assert_memory_equal(out, q, sizeof q);
    svdb__free(out);
    out = NULL;
    q[7] = NAN;
    assert_int_equal(svdb__space_prepare_queries(&sp, q, 3, 3, &out), SVDB_EINVAL);
    assert_non_null(strstr(svdb_errmsg(), "query 2 has a NaN or infinite value at component 1"));
    assert_null(out);
    q[7] = 1e19f;
    assert_int_equal(svdb__space_prepare_queries(&sp, q, 3, 3, &out), SVDB_EINVAL);
    assert_non_null(strstr(svdb_errmsg(), "query 2 is too large"));
    assert_null(out);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child-search") == 0) return child_search(argv[2], argv[3]);
    self_exe = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance__kernels_vs_reference),
        cmocka_unit_test(test_distance__integer_exact),
        cmocka_unit_test(test_distance__forced_scalar_search),
        cmocka_unit_test(test_distance__space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
