/* Exact-search benchmark through the public C API.
 *
 * For each data set (siftsmall 10k x 128 from ../shared/data, and generated
 * 100k and 1M x 128 sets) it measures: add throughput with the default
 * durability; single-query latency (median, p99, k = 10); batch throughput on
 * one thread and on all cores; the effective scan rate of a single query next
 * to the machine's read bandwidth over an equal buffer, measured in the same
 * run. The base and query vectors are written to OUT_DIR so that the peers'
 * benchmarks (bench_faiss.py) run on exactly the same data.
 *
 * Usage: bench_flat DATA_DIR OUT_DIR [--quick]   (--quick skips the 1M set)
 * Prints readable lines and one JSON line per set ("RESULT {...}"). */
#define _GNU_SOURCE
#include <svdb.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

/* Uniform floats in [0, 1) from xorshift64*; deterministic for a seed. */
static float *generate(size_t n, size_t dim, uint64_t seed)
{
    float *out = malloc(n * dim * sizeof *out);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n * dim; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out[i] = (float)((s * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
    }
    return out;
}

/* Raw dump for the peers: u32 n, u32 dim, then n * dim float32. */
static void dump(const char *dir, const char *name, const float *v, size_t n, size_t dim)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint32_t hdr[2] = {(uint32_t)n, (uint32_t)dim};
    if (!f || fwrite(hdr, 4, 2, f) != 2 || fwrite(v, sizeof *v, n * dim, f) != n * dim) abort();
    fclose(f);
}

/* A plain read of `bytes` (the same size as the scanned vectors): the
 * bandwidth a scan could reach at best. Median of 5 passes, in GB/s. */
static double read_bandwidth(size_t bytes)
{
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double t[5];
    volatile uint64_t sink = 0;
    for (int r = 0; r < 5; r++) {
        double a = now();
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i + 4 <= n; i += 4) {
            s0 += buf[i];
            s1 += buf[i + 1];
            s2 += buf[i + 2];
            s3 += buf[i + 3];
        }
        sink += s0 + s1 + s2 + s3;
        t[r] = now() - a;
    }
    (void)sink;
    free(buf);
    return (double)bytes / median(t, 5) / 1e9;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != SVDB_OK) {                                                                      \
            fprintf(stderr, "%s: %s\n", #call, svdb_errmsg());                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void run_set(const char *name, const float *base, size_t n, const float *queries, size_t nq, size_t dim,
                    const char *out_dir)
{
    char qname[256], bname[256], path[1024];
    snprintf(bname, sizeof bname, "%s_base.f32", name);
    snprintf(qname, sizeof qname, "%s_query.f32", name);
    dump(out_dir, bname, base, n, dim);
    dump(out_dir, qname, queries, nq, dim);

    snprintf(path, sizeof path, "%s/%s.svdb", out_dir, name);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) exit(1);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)dim;
    svdb *db;
    CHECK(svdb_open(&db, path, &o));
    /* ids built before timing: the benchmark measures the library, not sprintf */
    char **ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "%zu", i);
    }
    const size_t batch = 10000;
    double t0 = now();
    for (size_t b = 0; b < n; b += batch) {
        size_t m = n - b < batch ? n - b : batch;
        CHECK(svdb_add_batch(db, m, (const char *const *)ids + b, base + b * dim, (uint32_t)dim, NULL));
    }
    double add_s = now() - t0;

    /* single queries: every query in turn, at least 200 searches */
    size_t reps = nq < 200 ? 200 : nq;
    double *lat = malloc(reps * sizeof *lat);
    svdb_hit *hits;
    size_t nh;
    CHECK(svdb_search(db, queries, (uint32_t)dim, 10, NULL, &hits, &nh)); /* warm up */
    svdb_hits_free(hits);
    for (size_t r = 0; r < reps; r++) {
        double a = now();
        CHECK(svdb_search(db, queries + (r % nq) * dim, (uint32_t)dim, 10, NULL, &hits, &nh));
        lat[r] = now() - a;
        svdb_hits_free(hits);
    }
    qsort(lat, reps, sizeof *lat, cmp_double);
    double med = lat[reps / 2], p99 = lat[reps * 99 / 100];

    /* batch throughput, median of 3 runs, on 1 thread and on all cores */
    double qps[2];
    size_t *counts = malloc(nq * sizeof *counts);
    for (int t = 0; t < 2; t++) {
        svdb_search_options so;
        svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
        so.threads = t == 0 ? 1 : 0;
        double runs[3];
        for (int r = 0; r < 3; r++) {
            double a = now();
            CHECK(svdb_search_batch(db, nq, queries, (uint32_t)dim, 10, &so, &hits, counts));
            runs[r] = now() - a;
            svdb_hits_free(hits);
        }
        qps[t] = (double)nq / median(runs, 3);
    }
    double bytes = (double)n * (double)dim * 4.0;
    double scan = bytes / med / 1e9, bw = read_bandwidth((size_t)bytes);
    printf("%-10s %8zu x %zu  add %9.0f vec/s | single query median %8.1f us p99 %8.1f us | "
           "batch %8.0f qps (1 thread) %8.0f qps (all cores) | scan %5.1f GB/s = %3.0f%% of read bandwidth %5.1f GB/s\n",
           name, n, dim, (double)n / add_s, med * 1e6, p99 * 1e6, qps[0], qps[1], scan, 100.0 * scan / bw, bw);
    printf("RESULT {\"set\": \"%s\", \"n\": %zu, \"dim\": %zu, \"nq\": %zu, \"add_vps\": %.0f, "
           "\"single_median_us\": %.2f, \"single_p99_us\": %.2f, \"batch_qps_1t\": %.1f, \"batch_qps_all\": %.1f, "
           "\"scan_gbs\": %.2f, \"read_bw_gbs\": %.2f, \"simd\": \"%s\"}\n",
           name, n, dim, nq, (double)n / add_s, med * 1e6, p99 * 1e6, qps[0], qps[1], scan, bw, svdb_simd_path());
    fflush(stdout);
    free(counts);
    free(lat);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    CHECK(svdb_close(db));
    if (system(cmd) != 0) exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR OUT_DIR [--quick]\n", argv[0]);
        return 2;
    }
    int quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    printf("libsvdb %s, SIMD path %s\n", svdb_version(), svdb_simd_path());
    char p[1024];
    size_t n, nq, dim, d2;
    snprintf(p, sizeof p, "%s/siftsmall_base.fvecs", argv[1]);
    float *base = bench_read_fvecs(p, &n, &dim);
    snprintf(p, sizeof p, "%s/siftsmall_query.fvecs", argv[1]);
    float *q = bench_read_fvecs(p, &nq, &d2);
    if (!base || !q) {
        fprintf(stderr, "cannot read siftsmall from %s\n", argv[1]);
        return 1;
    }
    run_set("siftsmall", base, n, q, nq, dim, argv[2]);
    free(base);
    free(q);
    const size_t sizes[] = {100000, 1000000};
    for (int i = 0; i < (quick ? 1 : 2); i++) {
        float *b = generate(sizes[i], 128, 11 + (uint64_t)i), *qq = generate(sizes[i] >= 1000000 ? 200 : 1000, 128, 99);
        run_set(sizes[i] >= 1000000 ? "gen1m" : "gen100k", b, sizes[i], qq, sizes[i] >= 1000000 ? 200 : 1000, 128,
                argv[2]);
        free(b);
        free(qq);
    }
    return 0;
}
