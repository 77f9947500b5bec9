/* Per-call cost of the C API, the reference for bench/bench_calls.py, which
 * builds the collections, runs this program on them and then times the same
 * calls through pysvdb on the same files.
 *
 * Usage: bench_calls HNSW_DIR FLAT_DIR QUERY.fvecs K EF ROUNDS N_WRITES
 *   HNSW_DIR   an HNSW collection: svdb_search one query per call over every
 *              query (ef EF, no other option), and svdb_search_batch of all
 *              queries in one call on one thread
 *   FLAT_DIR   a flat collection: N_WRITES one-row svdb_add_batch calls of new
 *              ids, then one-row svdb_upsert_batch of each, then one-row
 *              svdb_delete of each (the collection ends as it began)
 * Each figure is the median over ROUNDS rounds of the mean time per call, in
 * microseconds, printed as "name value" lines. */
#define _GNU_SOURCE
#include <svdb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define MAX_ROUNDS 64

static void check(int rc, const char *what)
{
    if (rc != SVDB_OK) {
        fprintf(stderr, "bench_calls: %s: %s\n", what, svdb_errmsg());
        exit(1);
    }
}

static svdb *open_existing(const char *dir)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db;
    check(svdb_open(&db, dir, &o), dir);
    return db;
}

#define MIN_SECONDS 0.2

static double time_search(svdb *db, const float *q, size_t nq, uint32_t dim, size_t k,
                          const svdb_search_options *opts)
{
    /* passes over the queries until 0.2 s: one pass of a small set is too short to time */
    double t0 = now(), t;
    size_t calls = 0;
    do {
        for (size_t i = 0; i < nq; i++, calls++) {
            svdb_hit *hits;
            size_t n;
            check(svdb_search(db, q + i * dim, dim, k, opts, &hits, &n), "svdb_search");
            svdb_hits_free(hits);
        }
    } while ((t = now() - t0) < MIN_SECONDS);
    return t / (double)calls * 1e6;
}

static double time_batch(svdb *db, const float *q, size_t nq, uint32_t dim, size_t k, const svdb_search_options *opts)
{
    size_t *counts = malloc(nq * sizeof *counts), calls = 0;
    double t0 = now(), t;
    do {
        svdb_hit *hits;
        check(svdb_search_batch(db, nq, q, dim, k, opts, &hits, counts), "svdb_search_batch");
        svdb_hits_free(hits);
        calls++;
    } while ((t = now() - t0) < MIN_SECONDS);
    free(counts);
    return t / (double)calls * 1e6;
}

enum { ADD, UPSERT, DELETE };

static double time_writes(svdb *db, int op, char **ids, const float *q, size_t nq, uint32_t dim, size_t n)
{
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        const char *id[1] = {ids[i]};
        const float *v = q + (i % nq) * dim;
        size_t gone;
        if (op == ADD) check(svdb_add_batch(db, 1, id, v, dim, NULL), "svdb_add_batch");
        else if (op == UPSERT) check(svdb_upsert_batch(db, 1, id, v, dim, NULL), "svdb_upsert_batch");
        else check(svdb_delete(db, 1, id, &gone), "svdb_delete");
    }
    return (now() - t0) / (double)n * 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: bench_calls HNSW_DIR FLAT_DIR QUERY.fvecs K EF ROUNDS N_WRITES\n");
        return 2;
    }
    size_t nq, dim;
    float *q = bench_read_fvecs(argv[3], &nq, &dim);
    if (!q) {
        fprintf(stderr, "bench_calls: cannot read %s\n", argv[3]);
        return 1;
    }
    size_t k = strtoul(argv[4], NULL, 10), rounds = strtoul(argv[6], NULL, 10), n_writes = strtoul(argv[7], NULL, 10);
    if (rounds < 1 || rounds > MAX_ROUNDS || k < 1 || n_writes < 1) {
        fprintf(stderr, "bench_calls: K, ROUNDS (1..%d) and N_WRITES must be positive\n", MAX_ROUNDS);
        return 2;
    }
    /* as pysvdb passes them: search(ef=EF) and search_batch(ef=EF, threads=1) */
    svdb_search_options opts, batch_opts;
    svdb_search_options_init(&opts, SVDB_SEARCH_OPTIONS_VERSION);
    opts.ef = (uint32_t)strtoul(argv[5], NULL, 10);
    batch_opts = opts;
    batch_opts.threads = 1;
    double search[MAX_ROUNDS], batch[MAX_ROUNDS], w[3][MAX_ROUNDS];

    svdb *db = open_existing(argv[1]);
    time_search(db, q, nq, (uint32_t)dim, k, &opts); /* warm-up: pages, caches, searcher pool */
    for (size_t r = 0; r < rounds; r++) {
        search[r] = time_search(db, q, nq, (uint32_t)dim, k, &opts);
        batch[r] = time_batch(db, q, nq, (uint32_t)dim, k, &batch_opts);
    }
    check(svdb_close(db), "svdb_close");

    char **ids = malloc(n_writes * sizeof *ids);
    for (size_t i = 0; i < n_writes; i++) {
        ids[i] = malloc(32);
        snprintf(ids[i], 32, "bench-%zu", i);
    }
    db = open_existing(argv[2]);
    for (size_t r = 0; r < rounds; r++)
        for (int op = ADD; op <= DELETE; op++) w[op][r] = time_writes(db, op, ids, q, nq, (uint32_t)dim, n_writes);
    check(svdb_close(db), "svdb_close");

    printf("search %.3f\n", median(search, rounds));
    printf("search_batch %.3f\n", median(batch, rounds));
    printf("add %.3f\n", median(w[ADD], rounds));
    printf("upsert %.3f\n", median(w[UPSERT], rounds));
    printf("delete %.3f\n", median(w[DELETE], rounds));
    for (size_t i = 0; i < n_writes; i++) free(ids[i]);
    free(ids);
    free(q);
    return 0;
}
