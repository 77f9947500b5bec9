/* Query latency while the background indexer links, through the public C API.
 *
 * Opens an HNSW collection with background_indexing, adds N generated rows
 * in batches, then runs single queries (k = 10) back to back from the moment
 * the last add returns. Every time slice it prints the median and p99
 * latency of the queries that finished in it, their median CPU time (the
 * rest is waiting: for the lock, or for a core the indexer's threads hold)
 * and the rows still waiting to be linked; once linking is done, the latency of the linked graph alone,
 * and, for comparison, of an exact flat scan of the same N rows (a flat
 * collection), measured in the same run.
 *
 * Usage: bench_linking [--n N] [--dim D] [--batch B] [--slice SECONDS]
 *                      [--build-threads T] [--metric l2|cosine|ip]
 *                      [--max-seconds S] [--dir DIR]
 * Defaults: 100000 x 64, batches of 10000, 0.5 s slices, all cores, l2.
 * Ends with one JSON line ("RESULT {...}"). */
#define _GNU_SOURCE
#include <svdb.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

#define K 10
#define NQ 256 /* distinct queries, used round-robin */

typedef struct {
    size_t n, dim, batch;
    double slice, max_seconds;
    uint32_t build_threads;
    int metric;
    const char *dir;
} config;

/* Uniform floats in [0, 1) from xorshift64*; deterministic for a seed. */
static float *generate(size_t n, size_t dim, uint64_t seed)
{
    float *out = malloc(n * dim * sizeof *out);
    if (!out) abort();
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n * dim; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out[i] = (float)((s * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
    }
    return out;
}

static void check(int rc, const char *what)
{
    if (rc == SVDB_OK) return;
    fprintf(stderr, "%s: %s (%s)\n", what, svdb_strerror(rc), svdb_errmsg());
    exit(1);
}

static svdb *open_coll(const config *c, const char *path, int index)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)c->dim;
    o.metric = c->metric;
    o.index = index;
    o.build_threads = c->build_threads;
    o.background_indexing = index == SVDB_INDEX_HNSW;
    o.autocheckpoint_bytes = 0; /* no checkpoint inside the timed adds */
    svdb *db = NULL;
    check(svdb_open(&db, path, &o), path);
    return db;
}

/* Adds rows [0, n) with ids "r<i>" in batches; returns the seconds taken. */
static double add_all(svdb *db, const config *c, const float *v, char **ids)
{
    double t0 = now();
    for (size_t at = 0; at < c->n; at += c->batch) {
        size_t cnt = c->n - at < c->batch ? c->n - at : c->batch;
        check(svdb_add_batch(db, cnt, (const char *const *)ids + at, v + at * c->dim, (uint32_t)c->dim, NULL), "add");
    }
    return now() - t0;
}

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One search's wall time; *cpu (if not NULL) gets this thread's CPU time
 * for it: the gap between the two is time spent waiting, for the lock or
 * for a core. */
static double one_query(svdb *db, const config *c, const float *q, double *cpu)
{
    svdb_hit *h;
    size_t nh;
    double c0 = cpu ? thread_cpu() : 0, t0 = now();
    check(svdb_search(db, q, (uint32_t)c->dim, K, NULL, &h, &nh), "search");
    double dt = now() - t0;
    if (cpu) *cpu = thread_cpu() - c0;
    svdb_hits_free(h);
    return dt;
}

/* Median and p99 of n latencies in seconds (sorts lat); printed in ms. */
static void stats(double *lat, size_t n, double *med, double *p99)
{
    *med = median(lat, n);
    *p99 = lat[(size_t)((double)(n - 1) * 0.99)];
}

/* Latency of `reps` queries on a settled collection. */
static void settled(svdb *db, const config *c, const float *qs, size_t reps, double *med, double *p99)
{
    double *lat = malloc(reps * sizeof *lat);
    for (size_t i = 0; i < reps; i++) lat[i] = one_query(db, c, qs + (i % NQ) * c->dim, NULL);
    stats(lat, reps, med, p99);
    free(lat);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_linking [--n N] [--dim D] [--batch B] [--slice S] [--build-threads T] "
                    "[--metric l2|cosine|ip] [--max-seconds S] [--dir DIR]\n");
    exit(2);
}

static config parse(int argc, char **argv)
{
    config c = {100000, 64, 10000, 0.5, 300.0, 0, SVDB_METRIC_L2, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--n")) c.n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--dim")) c.dim = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--batch")) c.batch = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--slice")) c.slice = atof(v);
        else if (!strcmp(a, "--max-seconds")) c.max_seconds = atof(v);
        else if (!strcmp(a, "--build-threads")) c.build_threads = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--dir")) c.dir = v;
        else if (!strcmp(a, "--metric"))
            c.metric = !strcmp(v, "cosine") ? SVDB_METRIC_COSINE : !strcmp(v, "ip") ? SVDB_METRIC_IP : SVDB_METRIC_L2;
        else usage();
        i++;
    }
    if (!c.n || !c.dim || !c.batch || c.slice <= 0) usage();
    return c;
}

int main(int argc, char **argv)
{
    config c = parse(argc, argv);
    char tmpl[] = "/tmp/bench_linking.XXXXXX", hnsw_dir[4200], flat_dir[4200], cmd[8500];
    const char *base = c.dir ? c.dir : mkdtemp(tmpl);
    if (!base) return 1;
    snprintf(hnsw_dir, sizeof hnsw_dir, "%s/hnsw", base);
    snprintf(flat_dir, sizeof flat_dir, "%s/flat", base);
    float *v = generate(c.n, c.dim, 1), *qs = generate(NQ, c.dim, 2);
    char **ids = malloc(c.n * sizeof *ids);
    for (size_t i = 0; i < c.n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "r%zu", i);
    }
    printf("bench_linking: %zu x %zu, batches of %zu, build_threads %u, simd %s\n", c.n, c.dim, c.batch,
           c.build_threads, svdb_simd_path());

    svdb *db = open_coll(&c, hnsw_dir, SVDB_INDEX_HNSW);
    double add_s = add_all(db, &c, v, ids);
    size_t pending = 0;
    check(svdb_index_pending(db, &pending), "pending");
    printf("add: %.2f s (%.0f rows/s); waiting to be linked: %zu\n", add_s, (double)c.n / add_s, pending);

    /* Queries back to back while the indexer links, reported per slice. */
    size_t cap = 1 << 20, nlat = 0, qi = 0, all_n = 0;
    double *lat = malloc(cap * sizeof *lat), *all = malloc(cap * sizeof *all), *cpu = malloc(cap * sizeof *cpu);
    double t0 = now(), slice_end = t0 + c.slice, worst = 0;
    printf("%8s %8s %10s %10s %10s %10s\n", "t_s", "queries", "median_ms", "p99_ms", "cpu_ms", "pending");
    while (pending > 0 && now() - t0 < c.max_seconds) {
        double dcpu, dt = one_query(db, &c, qs + (qi++ % NQ) * c.dim, &dcpu);
        if (nlat < cap) {
            cpu[nlat] = dcpu;
            lat[nlat++] = dt;
        }
        if (all_n < cap) all[all_n++] = dt;
        if (dt > worst) worst = dt;
        if (now() < slice_end) continue;
        check(svdb_index_pending(db, &pending), "pending");
        double med, p99, cpu_med = median(cpu, nlat);
        stats(lat, nlat, &med, &p99);
        printf("%8.2f %8zu %10.3f %10.3f %10.3f %10zu\n", now() - t0, nlat, med * 1e3, p99 * 1e3, cpu_med * 1e3,
               pending);
        fflush(stdout);
        nlat = 0;
        slice_end = now() + c.slice;
    }
    double link_s = now() - t0;
    if (pending) printf("stopped after --max-seconds %.0f with %zu rows waiting\n", c.max_seconds, pending);
    check(svdb_index_wait(db), "index_wait");
    double during_med = 0, during_p99 = 0;
    if (all_n) stats(all, all_n, &during_med, &during_p99);
    printf("linking: %.2f s; %zu queries meanwhile: median %.3f ms, p99 %.3f ms, max %.3f ms\n", link_s, all_n,
           during_med * 1e3, during_p99 * 1e3, worst * 1e3);

    double linked_med, linked_p99;
    settled(db, &c, qs, 2000, &linked_med, &linked_p99);
    printf("linked: median %.3f ms, p99 %.3f ms\n", linked_med * 1e3, linked_p99 * 1e3);
    check(svdb_close(db), "close");

    svdb *flat = open_coll(&c, flat_dir, SVDB_INDEX_FLAT);
    add_all(flat, &c, v, ids);
    double flat_med, flat_p99;
    settled(flat, &c, qs, 500, &flat_med, &flat_p99);
    printf("flat scan of %zu rows: median %.3f ms, p99 %.3f ms\n", c.n, flat_med * 1e3, flat_p99 * 1e3);
    check(svdb_close(flat), "close");

    printf("RESULT {\"n\": %zu, \"dim\": %zu, \"add_s\": %.3f, \"link_s\": %.3f, \"queries_during\": %zu, "
           "\"during_median_ms\": %.4f, \"during_p99_ms\": %.4f, \"during_max_ms\": %.4f, "
           "\"linked_median_ms\": %.4f, \"linked_p99_ms\": %.4f, \"flat_median_ms\": %.4f, \"flat_p99_ms\": %.4f}\n",
           c.n, c.dim, add_s, link_s, all_n, during_med * 1e3, during_p99 * 1e3, worst * 1e3, linked_med * 1e3,
           linked_p99 * 1e3, flat_med * 1e3, flat_p99 * 1e3);
    if (!c.dir) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
    }
    for (size_t i = 0; i < c.n; i++) free(ids[i]);
    free(ids);
    free(v);
    free(qs);
    free(lat);
    free(all);
    free(cpu);
    return 0;
}
