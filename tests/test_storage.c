/* Compact storage (f16, int8): the codes and their kernels, recall against
 * float32 on real data, exact distances after the re-rank, the float32
 * originals kept bit for bit through the log, checkpoints and reopen, and
 * the option errors. */
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

#include "alloc.h"
#include "distance.h"
#include "helpers.h"
#include "quant.h"
#include "svdb.h"

/* ------------------------------------------------------------ codes */

static void test_storage__f16_conversion(void **state)
{
    (void)state;
    /* exactly representable values survive the round trip */
    const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, -65504.0f, 6.103515625e-05f /* smallest normal */,
                           5.960464477539063e-08f /* smallest subnormal */, 0.333251953125f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        float back = svdb__f16_to_f32(svdb__f32_to_f16(exact[i]));
        assert_memory_equal(&back, &exact[i], sizeof back);
    }
    /* round to nearest, ties to even */
    /* near 1 a half's step is 2^-10 */
    assert_true(svdb__f16_to_f32(svdb__f32_to_f16(1.0f + 1.0f / 2048.0f)) == 1.0f);                /* tie, to even */
    assert_true(svdb__f16_to_f32(svdb__f32_to_f16(1.0f + 3.0f / 2048.0f)) == 1.0f + 1.0f / 512.0f); /* tie, to even */
    assert_true(svdb__f16_to_f32(svdb__f32_to_f16(1.0f + 1.0f / 4096.0f)) == 1.0f);
    assert_true(svdb__f16_to_f32(svdb__f32_to_f16(1.0f + 1.5f / 2048.0f)) == 1.0f + 1.0f / 1024.0f);
    assert_true(svdb__f16_to_f32(svdb__f32_to_f16(2.0e-8f)) == 0.0f);
    assert_true(isinf(svdb__f16_to_f32(svdb__f32_to_f16(70000.0f))));
    /* every half converts back to itself (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = svdb__f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(svdb__f16_to_f32(svdb__f32_to_f16(f))));
            continue;
        }
        assert_int_equal(svdb__f32_to_f16(f), h);
    }
    /* relative error of a normal value is at most 2^-11 */
    uint64_t rng = 7;
    for (int i = 0; i < 100000; i++) {
        float x = (float)((double)th_rand64(&rng) / 18446744073709551616.0 * 2000.0 - 1000.0);
        float y = svdb__f16_to_f32(svdb__f32_to_f16(x));
        if (fabsf(x) >= 6.2e-5f) assert_true(fabsf(y - x) <= fabsf(x) / 2048.0f);
    }
    /* encoding clamps instead of overflowing to infinity */
    float big[3] = {1e9f, -1e9f, 3.0f}, dec[3];
    uint16_t code[4];
    svdb__code_encode(SVDB_STORAGE_F16, big, 3, code);
    svdb__code_decode(SVDB_STORAGE_F16, code, 3, dec);
    assert_true(dec[0] == 65504.0f && dec[1] == -65504.0f && dec[2] == 3.0f);
    assert_int_equal(svdb__code_bytes(SVDB_STORAGE_F16, 3), 8); /* padded to 4 bytes */
}

static void test_storage__int8_codes(void **state)
{
    (void)state;
    uint64_t rng = 11;
    for (uint32_t dim = 1; dim <= 70; dim++) {
        float x[70], y[70];
        for (uint32_t d = 0; d < dim; d++) x[d] = (float)((double)th_rand64(&rng) / 18446744073709551616.0 * 50.0 - 10.0);
        size_t bytes = svdb__code_bytes(SVDB_STORAGE_INT8, dim);
        assert_int_equal(bytes % 4, 0);
        assert_true(bytes >= 8 + dim);
        float code[32];
        svdb__code_encode(SVDB_STORAGE_INT8, x, dim, code);
        svdb__code_decode(SVDB_STORAGE_INT8, code, dim, y);
        float lo = x[0], hi = x[0];
        for (uint32_t d = 0; d < dim; d++) {
            lo = x[d] < lo ? x[d] : lo;
            hi = x[d] > hi ? x[d] : hi;
        }
        float step = (hi - lo) / 255.0f;
        for (uint32_t d = 0; d < dim; d++) assert_true(fabsf(y[d] - x[d]) <= step * 0.5f + 1e-5f * (fabsf(x[d]) + 1.0f));
    }
    /* a constant row decodes exactly */
    float c[5] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f}, cd[5], code[8];
    svdb__code_encode(SVDB_STORAGE_INT8, c, 5, code);
    svdb__code_decode(SVDB_STORAGE_INT8, code, 5, cd);
    for (int d = 0; d < 5; d++) assert_true(cd[d] == 2.5f);
}

/* Every code kernel against float kernels over the decoded rows. */
static void test_storage__kernels_match_decoded(void **state)
{
    (void)state;
    const int storages[] = {SVDB_STORAGE_F16, SVDB_STORAGE_INT8};
    const svdb_kernels *sk = svdb__kernels_scalar();
    uint64_t rng = 3;
    for (int si = 0; si < 2; si++) {
        int st = storages[si];
        const svdb_code_kernels *tables[] = {svdb__code_kernels_scalar(st), svdb__code_kernels_avx2(st),
                                             svdb__code_kernels(st, svdb__kernels())};
        for (size_t t = 0; t < 3; t++) {
            const svdb_code_kernels *ck = tables[t];
            if (!ck) continue; /* not built for this CPU family */
            if (t == 1 && !svdb__kernels_named("avx2")) continue;
            for (uint32_t dim = 1; dim <= 80; dim += (dim < 20 ? 1 : 7)) {
                enum { N = 5 };
                float q[80], x[N][80], dec[N][80], codes[N][64], want_l2[N], want_dot[N], got_l2[N], got_dot[N];
                const float *rows[N], *drows[N];
                for (uint32_t d = 0; d < dim; d++) q[d] = (float)((double)th_rand64(&rng) / 18446744073709551616.0 * 4 - 2);
                for (int i = 0; i < N; i++) {
                    for (uint32_t d = 0; d < dim; d++)
                        x[i][d] = (float)((double)th_rand64(&rng) / 18446744073709551616.0 * 4 - 2);
                    svdb__code_encode(st, x[i], dim, codes[i]);
                    svdb__code_decode(st, codes[i], dim, dec[i]);
                    rows[i] = codes[i];
                    drows[i] = dec[i];
                }
                sk->l2_gather(q, drows, N, dim, want_l2);
                sk->dot_gather(q, drows, N, dim, want_dot);
                ck->l2_gather(q, rows, N, dim, got_l2);
                ck->dot_gather(q, rows, N, dim, got_dot);
                for (int i = 0; i < N; i++) {
                    assert_true(fabsf(got_l2[i] - want_l2[i]) <= 1e-4f * (1.0f + fabsf(want_l2[i])));
                    assert_true(fabsf(got_dot[i] - want_dot[i]) <= 1e-4f * (1.0f + (float)dim));
                }
            }
        }
    }
}

/* ------------------------------------------------------------ collections */

static float *base, *queries;
static size_t nb, nq, dim;
#define SUB 4000 /* rows of siftsmall used: keeps the suite quick under valgrind */

static int setup(void **state)
{
    (void)state;
    char p[512];
    size_t d2;
    snprintf(p, sizeof p, "%s/siftsmall_base.fvecs", SVDB_TEST_DATA_DIR);
    base = th_read_fvecs(p, &nb, &dim);
    snprintf(p, sizeof p, "%s/siftsmall_query.fvecs", SVDB_TEST_DATA_DIR);
    queries = th_read_fvecs(p, &nq, &d2);
    if (base && nb > SUB) nb = SUB;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(base);
    free(queries);
    return 0;
}

static int open_with(svdb **db, const char *dir, int index, int storage, int metric)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.storage = storage;
    o.metric = metric;
    o.seed = 9;
    o.build_threads = 1;
    return svdb_open(db, dir, &o);
}

static void add_rows(svdb *db, const float *v, size_t from, size_t to, uint32_t d)
{
    for (size_t b = from; b < to; b += 500) {
        size_t cnt = to - b < 500 ? to - b : 500;
        char **ids = malloc(cnt * sizeof *ids);
        for (size_t i = 0; i < cnt; i++) assert_true(asprintf(&ids[i], "%zu", b + i) > 0);
        ASSERT_OK(svdb_add_batch(db, cnt, (const char *const *)ids, v + b * d, d, NULL));
        for (size_t i = 0; i < cnt; i++) free(ids[i]);
        free(ids);
    }
}

/* The model of add_rows(db, base, from, to, dim). */
static void model_put_range(th_model *m, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char id[24];
        snprintf(id, sizeof id, "%zu", i);
        th_model_put(m, id, base + i * dim, NULL);
    }
}

static float l2(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return (float)s;
}

/* recall@10 against brute force over rows 0..nb-1; also checks that every
 * returned distance is the exact one (the re-rank), in ascending order. */
static double recall10(svdb *db)
{
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *qv = queries + q * dim;
        float best[10];
        size_t bid[10], nbest = 0;
        for (size_t i = 0; i < nb; i++) {
            float d = l2(qv, base + i * dim, dim);
            if (nbest == 10 && d >= best[9]) continue;
            size_t j = nbest < 10 ? nbest++ : 9;
            while (j > 0 && best[j - 1] > d) {
                best[j] = best[j - 1];
                bid[j] = bid[j - 1];
                j--;
            }
            best[j] = d;
            bid[j] = i;
        }
        svdb_hit *h;
        size_t n;
        svdb_search_options so;
        svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
        so.ef = 12; /* a short candidate list, so the codes' error shows in the recall */
        ASSERT_OK(svdb_search(db, qv, (uint32_t)dim, 10, &so, &h, &n));
        assert_int_equal(n, 10);
        for (size_t i = 0; i < n; i++) {
            size_t id = (size_t)atol(h[i].id);
            float want = l2(qv, base + id * dim, dim);
            assert_true(fabsf(h[i].distance - want) <= 1e-3f * want + 1e-3f);
            if (i) assert_true(h[i].distance >= h[i - 1].distance);
            for (size_t j = 0; j < 10; j++) hit += id == bid[j];
        }
        svdb_hits_free(h);
    }
    return (double)hit / (double)(nq * 10);
}

static void test_storage__recall_against_f32(void **state)
{
    (void)state;
    if (!base) skip();
    const int storages[] = {SVDB_STORAGE_F32, SVDB_STORAGE_F16, SVDB_STORAGE_INT8};
    double r[3];
    for (int i = 0; i < 3; i++) {
        char *dir = th_tmpdir("storage-recall");
        svdb *db;
        ASSERT_OK(open_with(&db, dir, SVDB_INDEX_HNSW, storages[i], 0));
        int st;
        ASSERT_OK(svdb_storage_type(db, &st));
        assert_int_equal(st, storages[i]);
        add_rows(db, base, 0, nb, (uint32_t)dim);
        r[i] = recall10(db);
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
    printf("recall@10 at ef 12 on %zu siftsmall rows: f32 %.4f, f16 %.4f, int8 %.4f\n", nb, r[0], r[1], r[2]);
    assert_true(r[0] >= 0.88); /* 0.92 when written */
    assert_true(r[1] >= r[0] - 0.01);
    assert_true(r[2] >= r[0] - 0.02);
}

/* The originals are kept bit for bit wherever they live: in the log, in the
 * snapshot after a checkpoint, and after reopening with both. */
static void test_storage__originals_survive_checkpoint_and_reopen(void **state)
{
    (void)state;
    if (!base) skip();
    const int storages[] = {SVDB_STORAGE_F16, SVDB_STORAGE_INT8};
    for (int si = 0; si < 2; si++) {
        char *dir = th_tmpdir("storage-persist");
        svdb *db;
        th_model m;
        th_model_init(&m, (uint32_t)dim);
        ASSERT_OK(open_with(&db, dir, SVDB_INDEX_HNSW, storages[si], 0));
        add_rows(db, base, 0, 1500, (uint32_t)dim);
        model_put_range(&m, 0, 1500);
        assert_true(th_check_db(db, &m, 1)); /* originals in the log */
        ASSERT_OK(svdb_persist(db));
        assert_true(th_check_db(db, &m, 1)); /* moved to the snapshot */
        /* churn after the checkpoint: deletes, upserts with other vectors, adds */
        const char *del[3] = {"3", "700", "1499"};
        size_t nd;
        ASSERT_OK(svdb_delete(db, 3, del, &nd));
        assert_int_equal(nd, 3);
        for (int i = 0; i < 3; i++) th_model_del(&m, del[i]);
        const char *up[2] = {"10", "new-row"};
        ASSERT_OK(svdb_upsert_batch(db, 2, up, base + 2000 * dim, (uint32_t)dim, NULL));
        th_model_put(&m, "10", base + 2000 * dim, NULL);
        th_model_put(&m, "new-row", base + 2001 * dim, NULL);
        add_rows(db, base, 1500, 2500, (uint32_t)dim);
        model_put_range(&m, 1500, 2500);
        assert_true(th_check_db(db, &m, 1)); /* snapshot and log together */
        /* the exact re-rank finds an upserted row at distance 0 */
        svdb_hit *h;
        size_t n;
        ASSERT_OK(svdb_search(db, base + 2001 * dim, (uint32_t)dim, 1, NULL, &h, &n));
        assert_int_equal(n, 1);
        assert_string_equal(h[0].id, "new-row");
        assert_true(h[0].distance == 0.0f);
        svdb_hits_free(h);
        /* close checkpoints; crash-free reopen reads the snapshot */
        ASSERT_OK(svdb_close(db));
        ASSERT_OK(open_with(&db, dir, SVDB_INDEX_DEFAULT, SVDB_STORAGE_DEFAULT, 0));
        int st;
        ASSERT_OK(svdb_storage_type(db, &st));
        assert_int_equal(st, storages[si]);
        assert_true(th_check_db(db, &m, 1));
        /* and a reopen that replays a log over a snapshot */
        const char *del2[1] = {"5"};
        ASSERT_OK(svdb_delete(db, 1, del2, &nd));
        th_model_del(&m, "5");
        add_rows(db, base, 2500, 2600, (uint32_t)dim);
        model_put_range(&m, 2500, 2600);
        /* a copy of the files as they are now (what a crash would leave):
         * the snapshot plus a log to replay */
        char *copy = th_tmpdir("storage-copy"), cmd[2048];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/snapshot.svdb' '%s/wal.svdb' '%s/'", copy, dir, dir, copy);
        assert_int_equal(system(cmd), 0);
        svdb *db2;
        ASSERT_OK(open_with(&db2, copy, SVDB_INDEX_DEFAULT, SVDB_STORAGE_DEFAULT, 0));
        assert_true(th_check_db(db2, &m, 1)); /* the copy: snapshot + replayed log */
        ASSERT_OK(svdb_search(db2, base + 2550 * dim, (uint32_t)dim, 1, NULL, &h, &n));
        assert_string_equal(h[0].id, "2550");
        svdb_hits_free(h);
        ASSERT_OK(svdb_close(db2));
        ASSERT_OK(svdb_close(db));
        th_model_free(&m);
        th_rmrf(copy);
        th_rmrf(dir);
        free(copy);
        free(dir);
    }
}

/* Exact paths (a selective filter scans matching rows, background indexing
 * scans rows not yet linked) read the float32 originals. */
static void test_storage__exact_paths_and_background(void **state)
{
    (void)state;
    if (!base) skip();
    char *dir = th_tmpdir("storage-exact");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    o.storage = SVDB_STORAGE_INT8;
    o.background_indexing = 1;
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, &o));
    size_t rows = 2000;
    for (size_t b = 0; b < rows; b += 500) {
        const char *ids[500], *metas[500];
        char idb[500][16], mb[500][32];
        for (size_t i = 0; i < 500; i++) {
            snprintf(idb[i], sizeof idb[i], "%zu", b + i);
            snprintf(mb[i], sizeof mb[i], "{\"g\": %zu}", (b + i) % 100);
            ids[i] = idb[i];
            metas[i] = mb[i];
        }
        ASSERT_OK(svdb_add_batch(db, 500, ids, base + b * dim, (uint32_t)dim, metas));
    }
    /* before and after linking: rows are found at their exact distance */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < rows; i += 97) {
            svdb_hit *h;
            size_t n;
            ASSERT_OK(svdb_search(db, base + i * dim, (uint32_t)dim, 1, NULL, &h, &n));
            assert_int_equal(n, 1);
            assert_true(h[0].distance == 0.0f);
            assert_int_equal((size_t)atol(h[0].id), i);
            svdb_hits_free(h);
        }
        ASSERT_OK(svdb_index_wait(db));
    }
    /* a 1% filter: exactly the nearest matching rows, at exact distances */
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.where = "{\"g\": 42}";
    for (size_t q = 0; q < 10; q++) {
        const float *qv = queries + q * dim;
        svdb_hit *h;
        size_t n;
        ASSERT_OK(svdb_search(db, qv, (uint32_t)dim, 5, &so, &h, &n));
        assert_int_equal(n, 5);
        float prev = -1.0f;
        for (size_t i = 0; i < n; i++) {
            size_t id = (size_t)atol(h[i].id);
            assert_int_equal(id % 100, 42);
            assert_true(fabsf(h[i].distance - l2(qv, base + id * dim, dim)) <= 1e-3f * h[i].distance + 1e-3f);
            assert_true(h[i].distance >= prev);
            prev = h[i].distance;
        }
        /* no matching row is nearer than the last one returned */
        for (size_t r = 42; r < rows; r += 100) {
            int listed = 0;
            for (size_t i = 0; i < n; i++) listed |= (size_t)atol(h[i].id) == r;
            if (!listed) assert_true(l2(qv, base + r * dim, dim) >= h[n - 1].distance * (1 - 1e-5f));
        }
        svdb_hits_free(h);
    }
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

static void test_storage__cosine_and_ip(void **state)
{
    (void)state;
    const int metrics[] = {SVDB_METRIC_COSINE, SVDB_METRIC_IP};
    enum { N = 600, D = 24 };
    float *v = malloc(N * D * sizeof *v);
    th_random(v, N * D, 77);
    for (int mi = 0; mi < 2; mi++) {
        char *dir = th_tmpdir("storage-metric");
        svdb *db;
        ASSERT_OK(open_with(&db, dir, SVDB_INDEX_HNSW, SVDB_STORAGE_F16, metrics[mi]));
        add_rows(db, v, 0, N, D);
        for (size_t q = 0; q < N; q += 37) {
            svdb_hit *h;
            size_t n;
            ASSERT_OK(svdb_search(db, v + q * D, D, 3, NULL, &h, &n));
            assert_int_equal(n, 3);
            /* exact distances: recompute the metric for each hit */
            for (size_t i = 0; i < n; i++) {
                const float *x = v + (size_t)atol(h[i].id) * D, *y = v + q * D;
                double dot = 0, nx = 0, ny = 0;
                for (int d = 0; d < D; d++) {
                    dot += (double)x[d] * y[d];
                    nx += (double)x[d] * x[d];
                    ny += (double)y[d] * y[d];
                }
                double want = metrics[mi] == SVDB_METRIC_COSINE ? 1.0 - dot / sqrt(nx * ny) : 1.0 - dot;
                assert_true(fabs(h[i].distance - want) <= 1e-4 * (1 + fabs(want)));
            }
            if (metrics[mi] == SVDB_METRIC_COSINE) assert_int_equal((size_t)atol(h[0].id), q);
            svdb_hits_free(h);
        }
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
    free(v);
}

static void test_storage__option_errors(void **state)
{
    (void)state;
    char *dir = th_tmpdir("storage-opts");
    svdb *db = NULL;
    /* compact storage needs the HNSW index */
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_FLAT, SVDB_STORAGE_F16, 0), SVDB_EINVAL);
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_DEFAULT, SVDB_STORAGE_INT8, 0), SVDB_EINVAL);
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_HNSW, 4, 0), SVDB_EINVAL);
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_HNSW, -1, 0), SVDB_EINVAL);
    assert_null(db);
    ASSERT_OK(open_with(&db, dir, SVDB_INDEX_HNSW, SVDB_STORAGE_F16, 0));
    ASSERT_FAILS(svdb_storage_type(db, NULL), SVDB_EINVAL);
    ASSERT_FAILS(svdb_storage_type(NULL, &(int){0}), SVDB_EMISUSE);
    ASSERT_OK(svdb_close(db));
    /* storage is fixed at creation */
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_HNSW, SVDB_STORAGE_INT8, 0), SVDB_EMISMATCH);
    ASSERT_FAILS(open_with(&db, dir, SVDB_INDEX_HNSW, SVDB_STORAGE_F32, 0), SVDB_EMISMATCH);
    /* a version-1 options struct has no storage field: the stored one is used */
    svdb_open_options o1;
    ASSERT_OK(svdb_open_options_init(&o1, 1));
    o1.storage = 12345; /* past a version-1 struct: never read */
    ASSERT_OK(svdb_open(&db, dir, &o1));
    int st;
    ASSERT_OK(svdb_storage_type(db, &st));
    assert_int_equal(st, SVDB_STORAGE_F16);
    ASSERT_OK(svdb_close(db));
    /* a flat collection reports f32 */
    char *flat = th_tmpdir("storage-flat");
    ASSERT_OK(open_with(&db, flat, SVDB_INDEX_FLAT, SVDB_STORAGE_F32, 0));
    ASSERT_OK(svdb_storage_type(db, &st));
    assert_int_equal(st, SVDB_STORAGE_F32);
    ASSERT_OK(svdb_close(db));
    th_rmrf(flat);
    free(flat);
    th_rmrf(dir);
    free(dir);
}

/* A first add that fails after fixing the dimension leaves an empty
 * collection, still with its storage. */
static void test_storage__failed_first_add_keeps_storage(void **state)
{
    (void)state;
    char *dir = th_tmpdir("storage-firstadd");
    svdb *db;
    ASSERT_OK(open_with(&db, dir, SVDB_INDEX_HNSW, SVDB_STORAGE_INT8, 0));
    const char *ids[2] = {"a", "b"};
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* fail each allocation of the first add in turn: a failure before the
     * rows are logged leaves the collection empty, without a dimension, and
     * still int8; one after (linking the graph) leaves them logged and the
     * handle refusing writes until reopened */
    int failures = 0, st, rc = SVDB_ENOMEM;
    for (long n = 1; n < 500; n++) {
        svdb__alloc_fail_after(n);
        rc = svdb_add_batch(db, 2, ids, v, 4, NULL);
        svdb__alloc_fail_after(0);
        if (rc == SVDB_OK) break;
        assert_int_equal(rc, SVDB_ENOMEM);
        failures++;
        uint32_t d;
        size_t count;
        ASSERT_OK(svdb_dim(db, &d));
        ASSERT_OK(svdb_count(db, &count));
        ASSERT_OK(svdb_storage_type(db, &st));
        assert_int_equal(st, SVDB_STORAGE_INT8);
        if (count) break; /* logged */
        assert_int_equal(d, 0);
    }
    assert_true(failures >= 3);
    ASSERT_OK(svdb_close(db));
    ASSERT_OK(open_with(&db, dir, SVDB_INDEX_DEFAULT, SVDB_STORAGE_DEFAULT, 0));
    ASSERT_OK(svdb_storage_type(db, &st));
    assert_int_equal(st, SVDB_STORAGE_INT8);
    float got[4];
    ASSERT_OK(svdb_get(db, "b", got, 4, NULL));
    assert_memory_equal(got, v + 4, sizeof got);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage__f16_conversion),
        cmocka_unit_test(test_storage__int8_codes),
        cmocka_unit_test(test_storage__kernels_match_decoded),
        cmocka_unit_test(test_storage__recall_against_f32),
        cmocka_unit_test(test_storage__originals_survive_checkpoint_and_reopen),
        cmocka_unit_test(test_storage__exact_paths_and_background),
        cmocka_unit_test(test_storage__cosine_and_ip),
        cmocka_unit_test(test_storage__option_errors),
        cmocka_unit_test(test_storage__failed_first_add_keeps_storage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
