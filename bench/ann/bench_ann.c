/* Approximate-search benchmark of svdb through the public C API.
 *
 * Builds one collection (HNSW or flat) from an fvecs base set, closes it,
 * reopens the persisted directory, and sweeps the HNSW candidate list `ef`
 * over the queries, computing recall@10 against ivecs ground truth. For each
 * ef it measures, as medians of REPS passes over all queries (each pass
 * repeated over the query set until it lasts at least MIN_TIME seconds):
 *   qps_1t        svdb_search_batch on one thread,
 *   qps_1t_single one svdb_search call per query (the latency path),
 *   qps_all       svdb_search_batch on all cores.
 * The build time is the median of BUILD_REPS builds from scratch.
 * Memory is the resident-set growth (VmRSS, after malloc_trim) across the
 * build and across the reopen, and the peak (VmHWM) growth across the build;
 * also the anonymous part (RssAnon), which leaves out file pages mapped in
 * (compact storage reads its float32 originals from mapped files).
 * The result is one JSON line on stdout, "RESULT {...}"; progress on stderr.
 *
 * Usage: bench_ann SET METRIC(l2|cosine) INDEX(hnsw|flat) BASE.fvecs QUERY.fvecs GT.ivecs WORK_DIR
 *                  [m=16] [efc=200] [efs=10,16,...] [reps=5] [min_time=0.2] [build_reps=1] [queries=N]
 *                  [storage=f32|f16|int8]
 * WORK_DIR/<SET>.svdb is replaced. `queries` limits the query count (the
 * flat scans of large sets). */
#define _GNU_SOURCE
#include <svdb.h>

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define K 10
#define MAX_EFS 64

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != SVDB_OK) {                                                                      \
            fprintf(stderr, "%s: %s\n", #call, svdb_errmsg());                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#include "../bench_common.h"

/* texmex *vecs: per row an int32 d then d 4-byte values (float or int32). */
static void *read_vecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    int32_t d = 0;
    if (!f || fread(&d, 4, 1, f) != 1 || d <= 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    size_t rows = (size_t)ftell(f) / (4 + 4 * (size_t)d);
    fseek(f, 0, SEEK_SET);
    char *out = malloc(rows * (size_t)d * 4);
    if (!out) exit(1);
    for (size_t i = 0; i < rows; i++)
        if (fread(&d, 4, 1, f) != 1 || fread(out + i * (size_t)d * 4, 4, (size_t)d, f) != (size_t)d) {
            fprintf(stderr, "short read in %s\n", path);
            exit(1);
        }
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return out;
}

/* Resident and peak set sizes in bytes, from /proc/self/status. */
static long last_anon; /* RssAnon of the latest mem_usage call */

static void mem_usage(long *rss, long *hwm)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    *rss = *hwm = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "RssAnon:", 8) == 0) last_anon = atol(line + 8) * 1024;
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = atol(line + 6) * 1024;
        if (strncmp(line, "VmHWM:", 6) == 0) *hwm = atol(line + 6) * 1024;
    }
    if (f) fclose(f);
}

/* Hits of query q against the first K ground-truth rows (ids are row numbers). */
static size_t correct(const svdb_hit *hits, size_t n_hits, const int32_t *gt, size_t gt_k)
{
    size_t c = 0;
    for (size_t i = 0; i < n_hits && i < K; i++) {
        long id = atol(hits[i].id);
        for (size_t j = 0; j < K && j < gt_k; j++)
            if (gt[j] == id) {
                c++;
                break;
            }
    }
    return c;
}

typedef struct {
    svdb *db;
    const float *q;
    size_t nq, dim;
    const int32_t *gt;
    size_t gt_k;
} bench_ctx;

/* One pass of svdb_search_batch over the queries, `rounds` times; returns
 * seconds, sets *recall (of the last round). */
static double batch_pass(const bench_ctx *c, uint32_t ef, uint32_t threads, int rounds, double *recall)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = ef;
    so.threads = threads;
    size_t *counts = malloc(c->nq * sizeof *counts);
    svdb_hit *hits;
    double t0 = now();
    for (int r = 1; r < rounds; r++) {
        CHECK(svdb_search_batch(c->db, c->nq, c->q, (uint32_t)c->dim, K, &so, &hits, counts));
        svdb_hits_free(hits);
    }
    CHECK(svdb_search_batch(c->db, c->nq, c->q, (uint32_t)c->dim, K, &so, &hits, counts));
    double t = now() - t0;
    size_t ok = 0, off = 0;
    for (size_t i = 0; i < c->nq; i++) {
        ok += correct(hits + off, counts[i], c->gt + i * c->gt_k, c->gt_k);
        off += counts[i];
    }
    *recall = (double)ok / (double)(c->nq * K);
    svdb_hits_free(hits);
    free(counts);
    return t;
}

/* One svdb_search per query, `rounds` times over the queries; returns
 * seconds, sets *recall (of the last round). */
static double single_pass(const bench_ctx *c, uint32_t ef, int rounds, double *recall)
{
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = ef;
    svdb_hit **hits = malloc(c->nq * sizeof *hits);
    size_t *counts = malloc(c->nq * sizeof *counts);
    double t0 = now();
    for (int r = 1; r < rounds; r++)
        for (size_t i = 0; i < c->nq; i++) {
            svdb_hit *h;
            size_t nh;
            CHECK(svdb_search(c->db, c->q + i * c->dim, (uint32_t)c->dim, K, &so, &h, &nh));
            svdb_hits_free(h);
        }
    for (size_t i = 0; i < c->nq; i++)
        CHECK(svdb_search(c->db, c->q + i * c->dim, (uint32_t)c->dim, K, &so, &hits[i], &counts[i]));
    double t = now() - t0;
    size_t ok = 0;
    for (size_t i = 0; i < c->nq; i++) {
        ok += correct(hits[i], counts[i], c->gt + i * c->gt_k, c->gt_k);
        svdb_hits_free(hits[i]);
    }
    *recall = (double)ok / (double)(c->nq * K);
    free(hits);
    free(counts);
    return t;
}

static const char *arg_value(int argc, char **argv, const char *key, const char *def)
{
    size_t kl = strlen(key);
    for (int i = 8; i < argc; i++)
        if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=') return argv[i] + kl + 1;
    return def;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr,
                "usage: %s SET METRIC INDEX BASE.fvecs QUERY.fvecs GT.ivecs WORK_DIR [m=16] [efc=200] "
                "[efs=10,16,...] [reps=5] [min_time=0.2] [build_reps=1] [queries=N]\n",
                argv[0]);
        return 2;
    }
    const char *set = argv[1], *metric = argv[2], *index = argv[3], *work = argv[7];
    int hnsw = strcmp(index, "hnsw") == 0;
    uint32_t m = (uint32_t)atoi(arg_value(argc, argv, "m", "16"));
    uint32_t efc = (uint32_t)atoi(arg_value(argc, argv, "efc", "200"));
    int reps = atoi(arg_value(argc, argv, "reps", "5"));
    double min_time = atof(arg_value(argc, argv, "min_time", "0.2"));
    int build_reps = atoi(arg_value(argc, argv, "build_reps", "1"));
    const char *storage_s = arg_value(argc, argv, "storage", "f32");
    int storage = strcmp(storage_s, "f16") == 0 ? SVDB_STORAGE_F16 : strcmp(storage_s, "int8") == 0 ? SVDB_STORAGE_INT8 : SVDB_STORAGE_F32;
    if (reps < 1 || reps > MAX_EFS || build_reps < 1 || build_reps > MAX_EFS) {
        fprintf(stderr, "reps and build_reps must be 1..%d\n", MAX_EFS);
        return 2;
    }
    uint32_t efs[MAX_EFS];
    size_t n_efs = 0;
    if (hnsw) {
        char *list = strdup(arg_value(argc, argv, "efs", "10,16,24,32,48,64,96,128,192,256"));
        for (char *tok = strtok(list, ","); tok && n_efs < MAX_EFS; tok = strtok(NULL, ","))
            efs[n_efs++] = (uint32_t)atoi(tok);
        free(list);
    } else {
        efs[n_efs++] = 0;
    }

    size_t n, dim, nq, qdim, ngt, gt_k;
    float *base = read_vecs(argv[4], &n, &dim);
    float *queries = read_vecs(argv[5], &nq, &qdim);
    int32_t *gt = read_vecs(argv[6], &ngt, &gt_k);
    if (qdim != dim || ngt < nq || gt_k < K) {
        fprintf(stderr, "inconsistent data: dim %zu/%zu, %zu queries, %zu truth rows of %zu\n", dim, qdim, nq, ngt,
                gt_k);
        return 1;
    }
    size_t limit = (size_t)atol(arg_value(argc, argv, "queries", "0"));
    if (limit && limit < nq) nq = limit;

    char path[4096], cmd[4200];
    snprintf(path, sizeof path, "%s/%s.svdb", work, set);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) return 1;
    /* ids made before timing: the benchmark measures the library, not snprintf */
    char **ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "%zu", i);
    }

    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)dim;
    o.metric = strcmp(metric, "cosine") == 0 ? SVDB_METRIC_COSINE : SVDB_METRIC_L2;
    o.index = hnsw ? SVDB_INDEX_HNSW : SVDB_INDEX_FLAT;
    o.hnsw_m = m;
    o.hnsw_ef_construction = efc;
    o.build_threads = 0; /* all cores, as the peers build */
    o.storage = storage;
    long rss0 = 0, hwm0, rss1 = 0, hwm1 = 0, rss2, hwm2, rss3, hwm3, anon0 = 0, anon1 = 0, anon2, anon3;
    /* builds[0] gives the memory figures; the build time is the median of all */
    double builds[MAX_EFS], close_s = 0;
    svdb *db;
    for (int r = 0; r < build_reps; r++) {
        if (r && system(cmd) != 0) return 1;
        if (r == 0) {
            mem_usage(&rss0, &hwm0);
            anon0 = last_anon;
            FILE *cr = fopen("/proc/self/clear_refs", "w"); /* VmHWM := VmRSS: the peak is the build's */
            if (cr) {
                fputs("5", cr);
                fclose(cr);
            }
        }
        CHECK(svdb_open(&db, path, &o));
        const size_t batch = 10000;
        double t0 = now();
        for (size_t b = 0; b < n; b += batch) {
            size_t cnt = n - b < batch ? n - b : batch;
            CHECK(svdb_add_batch(db, cnt, (const char *const *)ids + b, base + b * dim, (uint32_t)dim, NULL));
            if ((b / batch) % 10 == 9) fprintf(stderr, "  svdb-c %s: %zu / %zu added\n", set, b + cnt, n);
        }
        builds[r] = now() - t0;
        if (r == 0) {
            mem_usage(&rss1, &hwm1);
            anon1 = last_anon;
        }
        t0 = now();
        CHECK(svdb_close(db));
        close_s = now() - t0;
    }
    double build_s = median(builds, (size_t)build_reps);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(base);

    /* reopen: median of 5 opens of the persisted collection (page cache warm);
     * the last handle stays open for the searches */
    svdb_open_options ro;
    svdb_open_options_init(&ro, SVDB_OPEN_OPTIONS_VERSION);
    ro.create = 0;
    double opens[5];
    mem_usage(&rss2, &hwm2);
    anon2 = last_anon;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        CHECK(svdb_open(&db, path, &ro));
        opens[r] = now() - t0;
        if (r < 4) CHECK(svdb_close(db));
    }
    double first_open = opens[0];
    double reopen_s = median(opens, 5);
    /* A large collection's vector and link checksums are checked on a
     * thread after open returns: the time until that check is done too. */
    double t_verify = now();
    CHECK(svdb_verify(db));
    double verified_open = opens[4] + (now() - t_verify);
    size_t count;
    CHECK(svdb_count(db, &count));
    if (count != n) {
        fprintf(stderr, "reopened collection has %zu rows, expected %zu\n", count, n);
        return 1;
    }
    mem_usage(&rss3, &hwm3);
    anon3 = last_anon;
    fprintf(stderr, "  svdb-c %s %s: build %.2f s, close %.2f s, reopen %.1f ms (%.1f ms with the check)\n", set,
            index, build_s, close_s, reopen_s * 1e3, verified_open * 1e3);

    bench_ctx c = {db, queries, nq, dim, gt, gt_k};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("RESULT {\"library\": \"svdb-c\", \"index\": \"%s\", \"set\": \"%s\", \"metric\": \"%s\", \"n\": %zu, "
           "\"dim\": %zu, \"nq\": %zu, \"m\": %u, \"ef_construction\": %u, \"cores\": %ld, \"version\": \"%s\", "
           "\"simd\": \"%s\", \"build_s\": %.4f, \"close_s\": %.4f, \"reopen_ms\": %.3f, \"first_reopen_ms\": %.3f, "
           "\"verified_reopen_ms\": %.3f, "
           "\"mem_build_bytes\": %ld, \"mem_peak_bytes\": %ld, \"mem_reopen_bytes\": %ld, \"storage\": \"%s\", "
           "\"mem_build_anon_bytes\": %ld, \"mem_reopen_anon_bytes\": %ld, \"sweep\": [",
           index, set, metric, n, dim, nq, m, efc, ncpu, svdb_version(), svdb_simd_path(), build_s, close_s,
           reopen_s * 1e3, first_open * 1e3, verified_open * 1e3, rss1 - rss0, hwm1 - rss0, rss3 - rss2, storage_s, anon1 - anon0,
           anon3 - anon2);
    double *runs = malloc((size_t)reps * sizeof *runs);
    for (size_t e = 0; e < n_efs; e++) {
        double recall = 0, r_single = 0, r_all = 0, qps[3];
        /* warm-up pass, which also sets how many rounds make a pass last min_time */
        double once = batch_pass(&c, efs[e], 1, 1, &recall);
        int rounds = once >= min_time ? 1 : (int)(min_time / (once > 1e-6 ? once : 1e-6)) + 1;
        double q_total = (double)nq * rounds;
        for (int r = 0; r < reps; r++) runs[r] = batch_pass(&c, efs[e], 1, rounds, &recall);
        qps[0] = q_total / median(runs, (size_t)reps);
        for (int r = 0; r < reps; r++) runs[r] = single_pass(&c, efs[e], rounds, &r_single);
        qps[1] = q_total / median(runs, (size_t)reps);
        for (int r = 0; r < reps; r++) runs[r] = batch_pass(&c, efs[e], 0, rounds, &r_all);
        qps[2] = q_total / median(runs, (size_t)reps);
        fprintf(stderr, "  svdb-c %s %s ef %3u: recall %.4f  qps 1t %8.0f  1t single %8.0f  all %8.0f\n", set, index,
                efs[e], recall, qps[0], qps[1], qps[2]);
        printf("%s{\"ef\": %u, \"recall\": %.5f, \"recall_single\": %.5f, \"recall_all\": %.5f, \"qps_1t\": %.1f, "
               "\"qps_1t_single\": %.1f, \"qps_all\": %.1f}",
               e ? ", " : "", efs[e], recall, r_single, r_all, qps[0], qps[1], qps[2]);
    }
    /* After the searches: the mapped vectors they touched count in RSS. */
    long rss4, hwm4;
    mem_usage(&rss4, &hwm4);
    printf("], \"mem_search_bytes\": %ld, \"mem_search_anon_bytes\": %ld}\n", rss4 - rss2, last_anon - anon2);
    fflush(stdout);
    free(runs);
    CHECK(svdb_close(db));
    if (system(cmd) != 0) return 1;
    free(queries);
    free(gt);
    return 0;
}
