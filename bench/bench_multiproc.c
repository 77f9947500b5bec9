/* Many processes on one collection: N reader processes searching while one
 * writer process ingests, against the same without the writer, and the
 * writer's ingest rate with readers attached against alone. SQLite in WAL
 * mode doing the analogous thing (indexed point SELECTs against batched
 * INSERT transactions) runs in the same harness when the program was built
 * with it (SVDB_BENCH_SQLITE), for the ratios, not the absolute figures.
 *
 * Usage: bench_multiproc DATA_DIR WORK_DIR [--seconds S] [--reps R] [--batch B]
 *                        [--readers 1,2,4] [--rate R] [--no-sqlite] [--background] [--ef N]
 *
 * Data: siftsmall (10,000 x 128, L2, 100 queries). The collection starts
 * with the first 5,000 rows (HNSW, default M and ef_construction); the
 * writer adds the other 5,000 in batches of B (default 100), then, if the
 * phase lasts longer, perturbed copies of the base under new ids. ef_search
 * is the smallest of a sweep whose recall@10 on the whole 10,000-row base
 * (texmex ground truth, tie-aware) reaches 0.95, or --ef N (the sweep's
 * graph is built on 2 threads, so its pick can differ between runs where a
 * recall sits at 0.95).
 *
 * A phase lasts S seconds (default 3): every process opens its handle, then
 * all start together. Readers search back to back (svdb_search_into, k 10,
 * the queries in turn) and time each call; each reports its queries, wall
 * and CPU time (getrusage: user + system, which includes replaying the
 * writer's records) and a latency histogram. The writer (one linking
 * thread, so one core's worth) adds batches for the whole phase, at full
 * speed or held to --rate rows a second (default 1000). Every phase starts
 * from a fresh copy of the 5,000-row collection, except the "after"
 * baseline, which searches the collection a full-speed writer just grew
 * (to tell the graph's growth from the writer's presence). --background:
 * every handle links rows on its indexer thread with a 1 MiB backlog
 * bound, as the Chroma client's collections do; the writer's rows are then
 * searched exactly until linked, and its links reach the readers in
 * deferred links records.
 *
 * Also: what a reader's replay of the log costs per row against the
 * writer's own cost, in one process without contention; and ns per call
 * of svdb_count and svdb_contains on a caught-up handle,
 * shared (one head check a call) against exclusive (none), beside a bare
 * fstat() and a bare 32-byte pread() of the LOCK file. */
#define _GNU_SOURCE
#include <svdb.h>

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef SVDB_BENCH_SQLITE
#include <sqlite3.h>
#endif

#include "bench_common.h"

#define K 10
#define MAX_READERS 8
#define MAX_REPS 15
#define NBUCKETS 1400 /* latency buckets of 2% each from 1 ns: up to ~1e12 ns */
#define PRELOAD 5000

/* ---------------------------------------------------------------- data */

static float *read_vecs(const char *path, size_t *n, size_t *dim)
{
    float *v = bench_read_fvecs(path, n, dim);
    if (!v) {
        fprintf(stderr, "bench_multiproc: cannot read %s\n", path);
        exit(1);
    }
    return v;
}

static float *base, *queries, *gt_dist;
static size_t n_base, n_q, dim, gt_k;

static void check(int rc, const char *what)
{
    if (rc != SVDB_OK) {
        fprintf(stderr, "bench_multiproc: %s: %s\n", what, svdb_errmsg());
        exit(1);
    }
}

/* Row i of the writer's endless supply: the base rows not preloaded, then
 * copies of the base moved by a few units per component (SIFT values are
 * integers 0..180), so that the graph keeps growing with rows like its own. */
static void supply_row(size_t i, float *out)
{
    size_t src = (PRELOAD + i) % n_base, round = (PRELOAD + i) / n_base;
    memcpy(out, base + src * dim, dim * sizeof *out);
    if (round)
        for (size_t c = 0; c < dim; c++) out[c] += (float)((int)((i * 31 + c * 7 + round) % 5) - 2);
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec * 1e-6;
}

static void run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_cmd(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_multiproc: failed: %s\n", cmd);
        exit(1);
    }
}

/* ---------------------------------------------------------------- shared state of a phase */

typedef struct reader_out {
    double queries, wall, cpu;
    uint32_t hist[NBUCKETS];
} reader_out;

typedef struct shared {
    atomic_int ready, go, stop, release, failed;
    reader_out r[MAX_READERS];
    double w_rows, w_wall, w_cpu;
} shared;

static shared *sh;

static int bucket(double ns)
{
    int b = ns < 1 ? 0 : (int)(log(ns) * (1.0 / log(1.02)));
    return b >= NBUCKETS ? NBUCKETS - 1 : b;
}

static double hist_quantile(const uint32_t *h, double q)
{
    uint64_t total = 0, acc = 0;
    for (int i = 0; i < NBUCKETS; i++) total += h[i];
    if (!total) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total);
    for (int i = 0; i < NBUCKETS; i++) {
        acc += h[i];
        if (acc >= want) return pow(1.02, i + 0.5); /* the bucket's middle, ns */
    }
    return 0;
}

static void wait_go(void)
{
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go)) usleep(200);
}

/* ---------------------------------------------------------------- engines */

typedef struct engine {
    const char *name;
    void *(*reader_open)(const char *path, int exclusive);
    void (*reader_call)(void *h, size_t i);
    void (*reader_close)(void *h);
    void *(*writer_open)(const char *path);
    void (*writer_batch)(void *h, size_t first, size_t n);
    void (*writer_close)(void *h);
} engine;

static uint32_t g_ef;

typedef struct svdb_reader {
    svdb *db;
    svdb_search_options opts;
    float dist[K];
    char ids[K * (SVDB_MAX_ID_BYTES + 1)];
} svdb_reader;

static int g_background; /* --background: every handle links on its indexer thread, as the Chroma client's */

static svdb *svdb_open_mode(const char *path, int mode, uint32_t threads)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    o.mode = mode;
    o.build_threads = threads;
    o.background_indexing = g_background;
    o.index_backlog_bytes = g_background ? 1u << 20 : 0; /* the Chroma client's bound */
    svdb *db;
    check(svdb_open(&db, path, &o), path);
    return db;
}

static void *sv_reader_open(const char *path, int exclusive)
{
    svdb_reader *r = calloc(1, sizeof *r);
    r->db = svdb_open_mode(path, exclusive ? SVDB_OPEN_EXCLUSIVE : SVDB_OPEN_SHARED, 1);
    svdb_search_options_init(&r->opts, SVDB_SEARCH_OPTIONS_VERSION);
    r->opts.ef = g_ef;
    return r;
}

static void sv_reader_call(void *h, size_t i)
{
    svdb_reader *r = h;
    size_t n, len;
    check(svdb_search_into(r->db, queries + (i % n_q) * dim, (uint32_t)dim, K, &r->opts, r->dist, r->ids, sizeof r->ids,
                           &n, &len),
          "svdb_search_into");
}

static void sv_reader_close(void *h)
{
    svdb_reader *r = h;
    check(svdb_close(r->db), "svdb_close");
    free(r);
}

typedef struct svdb_writer {
    svdb *db;
    float *rows;
    char **ids;
    size_t cap;
} svdb_writer;

/* One linking thread: the writer is one process on one core, as the readers. */
static void *sv_writer_open(const char *path)
{
    svdb_writer *w = calloc(1, sizeof *w);
    w->db = svdb_open_mode(path, SVDB_OPEN_SHARED, 1);
    return w;
}

static void sv_writer_batch(void *h, size_t first, size_t n)
{
    svdb_writer *w = h;
    if (n > w->cap) {
        w->rows = realloc(w->rows, n * dim * sizeof *w->rows);
        w->ids = realloc(w->ids, n * sizeof *w->ids);
        for (size_t i = w->cap; i < n; i++) w->ids[i] = malloc(32);
        w->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        supply_row(first + i, w->rows + i * dim);
        snprintf(w->ids[i], 32, "w%zu", first + i);
    }
    check(svdb_add_batch(w->db, n, (const char *const *)w->ids, w->rows, (uint32_t)dim, NULL), "svdb_add_batch");
}

static void sv_writer_close(void *h)
{
    svdb_writer *w = h;
    if (g_background) check(svdb_index_wait(w->db), "svdb_index_wait (writer)"); /* the grown collection saved linked */
    check(svdb_close(w->db), "svdb_close (writer)");
    for (size_t i = 0; i < w->cap; i++) free(w->ids[i]);
    free(w->ids);
    free(w->rows);
    free(w);
}

static const engine svdb_engine = {"svdb",         sv_reader_open,  sv_reader_call, sv_reader_close,
                                   sv_writer_open, sv_writer_batch, sv_writer_close};

#ifdef SVDB_BENCH_SQLITE
/* The analogue: a table of (key TEXT UNIQUE, vec BLOB) rows, the key index
 * standing for the vector index; readers look up one preloaded key per
 * call, the writer inserts B rows per transaction. WAL with synchronous
 * NORMAL: no fsync per commit, as svdb's default durability. */
typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *st;
    uint64_t rng;
} sq;

static void sq_check(int rc, sqlite3 *db, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "bench_multiproc: sqlite %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
        exit(1);
    }
}

static sq *sq_open(const char *path, const char *sql)
{
    sq *s = calloc(1, sizeof *s);
    sq_check(sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), s->db, path);
    sqlite3_busy_timeout(s->db, SVDB_BUSY_TIMEOUT_DEFAULT);
    sq_check(sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL), s->db,
             "pragma");
    if (sql) sq_check(sqlite3_prepare_v2(s->db, sql, -1, &s->st, NULL), s->db, sql);
    return s;
}

static void *sq_reader_open(const char *path, int exclusive)
{
    (void)exclusive;
    sq *s = sq_open(path, "SELECT vec FROM v WHERE key = ?1");
    s->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    return s;
}

static void sq_reader_call(void *h, size_t i)
{
    (void)i;
    sq *s = h;
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    char key[32];
    int n = snprintf(key, sizeof key, "p%u", (unsigned)((s->rng >> 33) % PRELOAD));
    sqlite3_bind_text(s->st, 1, key, n, SQLITE_STATIC);
    int rc = sqlite3_step(s->st);
    if (rc != SQLITE_ROW) sq_check(rc == SQLITE_DONE ? SQLITE_ERROR : rc, s->db, "select");
    (void)sqlite3_column_blob(s->st, 0);
    sqlite3_reset(s->st);
}

static void sq_close(void *h)
{
    sq *s = h;
    sqlite3_finalize(s->st);
    sqlite3_close(s->db);
    free(s);
}

static void *sq_writer_open(const char *path) { return sq_open(path, "INSERT INTO v(key, vec) VALUES(?1, ?2)"); }

static void sq_writer_batch(void *h, size_t first, size_t n)
{
    sq *s = h;
    float *row = malloc(dim * sizeof *row);
    sq_check(sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), s->db, "begin");
    for (size_t i = 0; i < n; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "w%zu", first + i);
        supply_row(first + i, row);
        sqlite3_bind_text(s->st, 1, key, len, SQLITE_STATIC);
        sqlite3_bind_blob(s->st, 2, row, (int)(dim * sizeof *row), SQLITE_STATIC);
        sq_check(sqlite3_step(s->st), s->db, "insert");
        sqlite3_reset(s->st);
    }
    sq_check(sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL), s->db, "commit");
    free(row);
}

static const engine sqlite_engine = {"sqlite",       sq_reader_open,  sq_reader_call, sq_close,
                                     sq_writer_open, sq_writer_batch, sq_close};

static void sq_build(const char *path)
{
    unlink(path);
    sq *s = sq_open(path, NULL);
    sq_check(sqlite3_exec(s->db, "CREATE TABLE v(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, vec BLOB)", NULL,
                          NULL, NULL),
             s->db, "create");
    sqlite3_stmt *st;
    sq_check(sqlite3_prepare_v2(s->db, "INSERT INTO v(key, vec) VALUES(?1, ?2)", -1, &st, NULL), s->db, "prepare");
    sq_check(sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL), s->db, "begin");
    for (size_t i = 0; i < PRELOAD; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "p%zu", i);
        sqlite3_bind_text(st, 1, key, len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, base + i * dim, (int)(dim * sizeof(float)), SQLITE_STATIC);
        sq_check(sqlite3_step(st), s->db, "insert");
        sqlite3_reset(st);
    }
    sq_check(sqlite3_exec(s->db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), s->db, "commit");
    sqlite3_finalize(st);
    sq_close(s);
}
#endif

/* ---------------------------------------------------------------- one phase */

typedef struct phase {
    int readers, writer, exclusive; /* writer: 0 none, 1 full speed, 2 at the --rate */
    double qps[MAX_READERS], cpu_qps[MAX_READERS], p50_us, p99_us, total_qps;
    double ingest, ingest_cpu; /* rows/s of wall time, rows per writer CPU second */
    double wall;
} phase;

static void reader_main(const engine *e, const char *path, int idx, int exclusive)
{
    void *h = e->reader_open(path, exclusive);
    reader_out *o = &sh->r[idx];
    for (size_t i = 0; i < n_q; i++) e->reader_call(h, i); /* warm-up: caches and this handle's scratch */
    wait_go();
    double c0 = cpu_seconds(), t0 = now(), t = t0;
    size_t i = (size_t)idx * 17, calls = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        e->reader_call(h, i++);
        double t1 = now();
        o->hist[bucket((t1 - t) * 1e9)]++;
        t = t1;
        calls++;
    }
    o->queries = (double)calls;
    o->wall = t - t0;
    o->cpu = cpu_seconds() - c0;
    e->reader_close(h);
}

/* rate > 0: at most that many rows a second, a batch at a time (an
 * application's steady ingest rather than a bulk load). */
static void writer_main(const engine *e, const char *path, size_t batch, double seconds, double rate)
{
    void *h = e->writer_open(path);
    wait_go();
    double c0 = cpu_seconds(), t0 = now();
    size_t rows = 0;
    while (now() - t0 < seconds) {
        e->writer_batch(h, rows, batch);
        rows += batch;
        if (rate > 0) {
            double ahead = (double)rows / rate - (now() - t0);
            if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
        }
    }
    sh->w_wall = now() - t0;
    sh->w_cpu = cpu_seconds() - c0;
    sh->w_rows = (double)rows;
    atomic_store(&sh->stop, 1); /* the readers' window is the writer's */
    while (!atomic_load(&sh->release)) usleep(1000);
    e->writer_close(h); /* after the readers: its checkpoint is no part of the figures */
}

static pid_t spawn(const engine *e, const char *path, int idx, int writer, int exclusive, size_t batch, double s,
                   double rate)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (writer)
            writer_main(e, path, batch, s, rate);
        else
            reader_main(e, path, idx, exclusive);
        _exit(0);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_multiproc: a child process failed\n");
        exit(1);
    }
}

static void run_phase(const engine *e, const char *path, phase *p, size_t batch, double seconds, double rate)
{
    memset(sh, 0, sizeof *sh);
    pid_t pids[MAX_READERS], wpid = 0;
    for (int i = 0; i < p->readers; i++) pids[i] = spawn(e, path, i, 0, p->exclusive, batch, seconds, 0);
    if (p->writer) wpid = spawn(e, path, 0, 1, 0, batch, seconds, p->writer == 2 ? rate : 0);
    int procs = p->readers + (p->writer ? 1 : 0);
    while (atomic_load(&sh->ready) < procs) usleep(1000);
    double t0 = now();
    atomic_store(&sh->go, 1);
    if (!p->writer) {
        usleep((useconds_t)(seconds * 1e6));
        atomic_store(&sh->stop, 1);
    }
    for (int i = 0; i < p->readers; i++) reap(pids[i]);
    atomic_store(&sh->release, 1);
    if (wpid) reap(wpid);
    p->wall = now() - t0;
    uint32_t hist[NBUCKETS] = {0};
    p->total_qps = 0;
    for (int i = 0; i < p->readers; i++) {
        reader_out *o = &sh->r[i];
        p->qps[i] = o->queries / o->wall;
        p->cpu_qps[i] = o->cpu > 0 ? o->queries / o->cpu : 0;
        p->total_qps += p->qps[i];
        for (int b = 0; b < NBUCKETS; b++) hist[b] += o->hist[b];
    }
    p->p50_us = hist_quantile(hist, 0.50) * 1e-3;
    p->p99_us = hist_quantile(hist, 0.99) * 1e-3;
    p->ingest = p->writer ? sh->w_rows / sh->w_wall : 0;
    p->ingest_cpu = p->writer && sh->w_cpu > 0 ? sh->w_rows / sh->w_cpu : 0;
}

/* ---------------------------------------------------------------- setup: collection, ef, recall */

static size_t parse_id(const char *id)
{
    /* preloaded rows are "p<row>"; the writer's row j is base row PRELOAD + j while the base lasts */
    if (id[0] == 'p') return strtoul(id + 1, NULL, 10);
    size_t j = strtoul(id + 1, NULL, 10);
    return PRELOAD + j < n_base ? PRELOAD + j : (size_t)-1;
}

/* Tie-aware recall@10 over the queries: a hit counts when its distance is
 * within the 10th true distance (the data set's README). */
static double recall_at(svdb *db, uint32_t ef, const float *kth)
{
    svdb_search_options o;
    svdb_search_options_init(&o, SVDB_SEARCH_OPTIONS_VERSION);
    o.ef = ef;
    size_t good = 0;
    for (size_t q = 0; q < n_q; q++) {
        svdb_hit *hits;
        size_t n;
        check(svdb_search(db, queries + q * dim, (uint32_t)dim, K, &o, &hits, &n), "svdb_search");
        for (size_t i = 0; i < n; i++) {
            size_t row = parse_id(hits[i].id);
            if (row == (size_t)-1) continue;
            double d = 0;
            for (size_t c = 0; c < dim; c++) {
                double x = (double)queries[q * dim + c] - (double)base[row * dim + c];
                d += x * x;
            }
            good += d <= (double)kth[q] * (1 + 1e-9);
        }
        svdb_hits_free(hits);
    }
    return (double)good / (double)(n_q * K);
}

/* The 10th nearest distance of each query among the first `rows` base rows. */
static float *kth_distance(size_t rows)
{
    float *out = malloc(n_q * sizeof *out);
    double *d = malloc(rows * sizeof *d);
    for (size_t q = 0; q < n_q; q++) {
        for (size_t r = 0; r < rows; r++) {
            double s = 0;
            for (size_t c = 0; c < dim; c++) {
                double x = (double)queries[q * dim + c] - (double)base[r * dim + c];
                s += x * x;
            }
            d[r] = s;
        }
        qsort(d, rows, sizeof *d, cmp_double);
        out[q] = (float)d[K - 1];
    }
    free(d);
    return out;
}

static void add_rows(svdb *db, size_t from, size_t to, const char *prefix, size_t id0)
{
    const size_t B = 500;
    char **ids = malloc(B * sizeof *ids);
    for (size_t i = 0; i < B; i++) ids[i] = malloc(32);
    for (size_t s = from; s < to; s += B) {
        size_t n = to - s < B ? to - s : B;
        for (size_t i = 0; i < n; i++) snprintf(ids[i], 32, "%s%zu", prefix, s + i - id0);
        check(svdb_add_batch(db, n, (const char *const *)ids, base + s * dim, (uint32_t)dim, NULL), "add");
    }
    for (size_t i = 0; i < B; i++) free(ids[i]);
    free(ids);
}

/* ---------------------------------------------------------------- per-call check cost */

#define CALLS 100000
#define ROUNDS 11

/* One round of CALLS calls of one kind, ns per call. */
static double ns_per_call(int what, svdb *db, int fd)
{
    double t0 = now();
    for (int i = 0; i < CALLS; i++) {
        if (what == 0) {
            size_t n;
            check(svdb_count(db, &n), "svdb_count");
        } else if (what == 1) {
            int found;
            check(svdb_contains(db, "p123", &found), "svdb_contains");
        } else if (what == 2) {
            struct stat st;
            if (fstat(fd, &st) != 0) abort();
        } else {
            unsigned char b[32];
            if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b) abort();
        }
    }
    return (now() - t0) / CALLS * 1e9;
}

/* What following the log costs a reader, without the noise of other
 * processes: two shared handles in this process, one adding `batches`
 * batches of B rows (base rows PRELOAD on), the other catching up (one
 * svdb_count) after every `every` batches. us per row of each. */
static void replay_cost(const char *path, size_t B, int batches, int every, double *writer_us, double *reader_us)
{
    svdb *w = svdb_open_mode(path, SVDB_OPEN_SHARED, 1), *r = svdb_open_mode(path, SVDB_OPEN_SHARED, 1);
    char **ids = malloc(B * sizeof *ids);
    for (size_t i = 0; i < B; i++) ids[i] = malloc(32);
    double tw = 0, tr = 0;
    size_t rows = 0;
    for (int b = 0; b < batches && PRELOAD + rows + B <= n_base; b++) {
        for (size_t i = 0; i < B; i++) snprintf(ids[i], 32, "w%zu", rows + i);
        double t0 = now();
        check(svdb_add_batch(w, B, (const char *const *)ids, base + (PRELOAD + rows) * dim, (uint32_t)dim, NULL),
              "add");
        tw += now() - t0;
        rows += B;
        if ((b + 1) % every == 0 || b + 1 == batches) {
            size_t n;
            t0 = now();
            check(svdb_count(r, &n), "svdb_count");
            tr += now() - t0;
        }
    }
    check(svdb_close(r), "close");
    check(svdb_close(w), "close");
    for (size_t i = 0; i < B; i++) free(ids[i]);
    free(ids);
    *writer_us = tw / (double)rows * 1e6;
    *reader_us = tr / (double)rows * 1e6;
}

/* The kinds interleaved round by round, so that the machine's load of the
 * moment weighs on all of them alike: c[kind][round], kinds count and
 * contains shared (0, 1) and exclusive (2, 3), fstat (4), pread (5). */
static void check_costs(const char *path, int fd, double c[6][ROUNDS])
{
    for (int k = 0; k < ROUNDS; k++) {
        for (int ex = 0; ex < 2; ex++) {
            svdb *db = svdb_open_mode(path, ex ? SVDB_OPEN_EXCLUSIVE : SVDB_OPEN_SHARED, 1);
            c[2 * ex][k] = ns_per_call(0, db, fd);
            c[2 * ex + 1][k] = ns_per_call(1, db, fd);
            check(svdb_close(db), "close");
        }
        c[4][k] = ns_per_call(2, NULL, fd);
        c[5][k] = ns_per_call(3, NULL, fd);
    }
}

/* ---------------------------------------------------------------- report */

static double med(double *v, int n) { return median(v, (size_t)n); }

typedef struct row {
    const char *engine;
    int readers, writer, exclusive, after;
    double qps[MAX_REPS], cpu_qps[MAX_REPS], p50[MAX_REPS], p99[MAX_REPS], total[MAX_REPS], ingest[MAX_REPS],
        ingest_cpu[MAX_REPS];
    int n;
} row;

static void note(row *r, const phase *p)
{
    /* per-reader figures: the median over this phase's readers first */
    double q[MAX_READERS], c[MAX_READERS];
    memcpy(q, p->qps, sizeof q);
    memcpy(c, p->cpu_qps, sizeof c);
    int i = r->n++;
    r->qps[i] = p->readers ? med(q, p->readers) : 0;
    r->cpu_qps[i] = p->readers ? med(c, p->readers) : 0;
    r->p50[i] = p->p50_us;
    r->p99[i] = p->p99_us;
    r->total[i] = p->total_qps;
    r->ingest[i] = p->ingest;
    r->ingest_cpu[i] = p->ingest_cpu;
}

static row *find_row(row *rows, int *n, const char *eng, int readers, int writer, int exclusive, int after)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(rows[i].engine, eng) && rows[i].readers == readers && rows[i].writer == writer &&
            rows[i].exclusive == exclusive && rows[i].after == after)
            return &rows[i];
    row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->engine = eng;
    r->readers = readers;
    r->writer = writer;
    r->exclusive = exclusive;
    r->after = after;
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_multiproc DATA_DIR WORK_DIR [--seconds S] [--reps R] [--batch B] "
                        "[--readers 1,2,4] [--rate R] [--no-sqlite] [--background] [--ef N]\n");
        return 2;
    }
    const char *data = argv[1], *work = argv[2];
    double seconds = 3, rate = 1000;
    int reps = 3, use_sqlite = 1, nr = 0, readers[MAX_READERS];
    uint32_t fixed_ef = 0;
    size_t batch = 100;
    const char *rlist = "1,2,4";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--readers") && i + 1 < argc)
            rlist = argv[++i];
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-sqlite"))
            use_sqlite = 0;
        else if (!strcmp(argv[i], "--background"))
            g_background = 1;
        else if (!strcmp(argv[i], "--ef") && i + 1 < argc)
            fixed_ef = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "bench_multiproc: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    for (const char *s = rlist; *s && nr < MAX_READERS;) {
        int v = (int)strtol(s, (char **)&s, 10);
        if (v < 1 || v > MAX_READERS) return 2;
        readers[nr++] = v;
        if (*s == ',') s++;
    }
    if (reps < 1 || reps > MAX_REPS || batch < 1) return 2;
#ifndef SVDB_BENCH_SQLITE
    use_sqlite = 0;
#endif
    char path[4096], tmpl[4096], sqt[4096], sqw[4096];
    snprintf(path, sizeof path, "%s/siftsmall_base.fvecs", data);
    size_t d2, gk;
    base = read_vecs(path, &n_base, &dim);
    snprintf(path, sizeof path, "%s/siftsmall_query.fvecs", data);
    queries = read_vecs(path, &n_q, &d2);
    snprintf(path, sizeof path, "%s/siftsmall_groundtruth_dist.fvecs", data);
    gt_dist = read_vecs(path, &d2, &gk);
    gt_k = gk;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) abort();

    /* The 5,000-row template, built once; the ef sweep on a copy that
     * gets the other 5,000 rows (the whole base, in order). */
    snprintf(tmpl, sizeof tmpl, "%s/template", work);
    snprintf(path, sizeof path, "%s/coll", work);
    run_cmd("mkdir -p '%s' && rm -rf '%s' '%s'", work, tmpl, path);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = SVDB_INDEX_HNSW;
    svdb *db;
    double t0 = now();
    check(svdb_open(&db, tmpl, &o), tmpl);
    add_rows(db, 0, PRELOAD, "p", 0);
    check(svdb_close(db), "close");
    double build_s = now() - t0;
    run_cmd("cp -a '%s' '%s'", tmpl, path);
    db = svdb_open_mode(path, SVDB_OPEN_EXCLUSIVE, 0);
    float *kth5k = kth_distance(PRELOAD);
    double rec5k_by_ef[16];
    uint32_t efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256};
    size_t n_ef = sizeof efs / sizeof *efs;
    for (size_t i = 0; i < n_ef; i++) rec5k_by_ef[i] = recall_at(db, efs[i], kth5k);
    add_rows(db, PRELOAD, n_base, "w", PRELOAD);
    float *kth10k = malloc(n_q * sizeof *kth10k);
    for (size_t q = 0; q < n_q; q++) kth10k[q] = gt_dist[q * gt_k + K - 1];
    printf("## recall@10 (tie-aware), siftsmall, HNSW M 16 ef_construction 200 (5,000-row build %.2f s)\n\n", build_s);
    printf("| ef | recall@10, 5,000 rows | recall@10, 10,000 rows |\n|---|---|---|\n");
    g_ef = 0;
    double rec10k = 0, rec5k = 0;
    for (size_t i = 0; i < n_ef; i++) {
        double r = recall_at(db, efs[i], kth10k);
        printf("| %u | %.3f | %.3f |\n", efs[i], rec5k_by_ef[i], r);
        if (!g_ef && r >= 0.95) {
            g_ef = efs[i];
            rec10k = r;
            rec5k = rec5k_by_ef[i];
        }
    }
    if (!g_ef) g_ef = efs[n_ef - 1];
    if (fixed_ef) { /* --ef: the same in every run, where the sweep's pick sits at the 0.95 edge */
        g_ef = fixed_ef;
        rec10k = recall_at(db, g_ef, kth10k);
        rec5k = NAN; /* measured on the 5,000-row build for the sweep's values only */
        for (size_t i = 0; i < n_ef; i++)
            if (efs[i] == g_ef) rec5k = rec5k_by_ef[i];
    }
    check(svdb_close(db), "close");
    printf("\nef_search %u: recall@10 %.3f on 5,000 rows, %.3f on 10,000 rows\n\n", g_ef, rec5k, rec10k);
    fflush(stdout);

    /* Replay against the writer's own cost, one process, no contention. */
    printf("## following the log: reader replay against the writer, one process, two shared handles "
           "(us per row, %zu-row batches, 5,000 rows)\n\n| reader catches up after every | writer us per row | "
           "reader replay us per row |\n|---|---|---|\n",
           batch);
    int everies[] = {1, 10, 50};
    for (int k = 0; k < 3; k++) {
        double wu, ru;
        run_cmd("rm -rf '%s' && cp -a '%s' '%s'", path, tmpl, path);
        replay_cost(path, batch, (int)((n_base - PRELOAD) / batch), everies[k], &wu, &ru);
        printf("| %d batches | %.1f | %.1f |\n", everies[k], wu, ru);
    }
    printf("\n");
    fflush(stdout);

    /* Per-call cost of the head check on a caught-up handle. */
    run_cmd("rm -rf '%s' && cp -a '%s' '%s'", path, tmpl, path);
    char lockp[4200];
    snprintf(lockp, sizeof lockp, "%s/LOCK", path);
    int fd = open(lockp, O_RDONLY);
    double cc[6][ROUNDS], d[2][ROUNDS], m[6];
    check_costs(path, fd, cc);
    close(fd);
    for (int k = 0; k < ROUNDS; k++) d[0][k] = cc[0][k] - cc[2][k], d[1][k] = cc[1][k] - cc[3][k];
    for (int w = 0; w < 6; w++) m[w] = median(cc[w], ROUNDS);
    printf("## per-call cost on a caught-up handle (ns per call, medians of %d interleaved rounds of %d calls)\n\n",
           ROUNDS, CALLS);
    printf("| call | shared | exclusive | shared - exclusive (median of per-round differences) |\n|---|---|---|---|\n");
    printf("| svdb_count | %.0f | %.0f | %.0f |\n", m[0], m[2], median(d[0], ROUNDS));
    printf("| svdb_contains | %.0f | %.0f | %.0f |\n", m[1], m[3], median(d[1], ROUNDS));
    printf("| bare fstat() of LOCK | %.0f | | |\n", m[4]);
    printf("| bare pread() of 32 bytes of LOCK | %.0f | | |\n\n", m[5]);
    fflush(stdout);

    /* The phases, each configuration once per repetition, interleaved so
     * that the machine's noise spreads over all of them. */
    static row rows[64];
    int n_rows = 0;
    snprintf(sqt, sizeof sqt, "%s/template.sqlite", work);
    snprintf(sqw, sizeof sqw, "%s/work.sqlite", work);
#ifdef SVDB_BENCH_SQLITE
    if (use_sqlite) sq_build(sqt);
#endif
    for (int rep = 0; rep < reps; rep++) {
        for (int eng = 0; eng < 1 + use_sqlite; eng++) {
            const engine *e = &svdb_engine;
            const char *wp = path;
#ifdef SVDB_BENCH_SQLITE
            if (eng) e = &sqlite_engine, wp = sqw;
#endif
            int per = eng ? 2 : 3; /* svdb also with a writer at --rate rows/s */
            for (int c = -2; c < per * nr; c++) {
                phase p = {0};
                if (c == -2)
                    p.writer = 1; /* the writer alone */
                else if (c == -1) {
                    if (eng) continue;
                    p.readers = 1, p.exclusive = 1; /* no sharing at all: the single-process figure */
                } else
                    p.readers = readers[c / per], p.writer = c % per;
                if (p.writer == 2 && rate <= 0) continue;
                if (eng)
                    run_cmd("rm -f '%s' '%s-wal' '%s-shm' && cp '%s' '%s'", sqw, sqw, sqw, sqt, sqw);
                else
                    run_cmd("rm -rf '%s' && cp -a '%s' '%s'", path, tmpl, path);
                run_phase(e, wp, &p, batch, seconds, rate);
                note(find_row(rows, &n_rows, e->name, p.readers, p.writer, p.exclusive, 0), &p);
                if (!eng && p.writer == 1 && p.readers) {
                    /* the same readers with the writer gone, on the grown collection */
                    phase a = {.readers = p.readers};
                    run_phase(e, wp, &a, batch, seconds, 0);
                    note(find_row(rows, &n_rows, e->name, a.readers, 0, 0, 1), &a);
                }
                fprintf(stderr, "rep %d %s readers %d writer %d: %.0f qps/reader, ingest %.0f rows/s\n", rep + 1,
                        e->name, p.readers, p.writer, p.readers ? p.total_qps / p.readers : 0, p.ingest);
            }
        }
    }

    printf("## reader processes and one writer: %.1f s phases, batches of %zu rows, medians of %d "
           "repetitions; writer \"on\" at full speed, \"%.0f/s\" held to that many rows a second\n\n",
           seconds, batch, reps, rate);
    printf("| engine | readers | writer | per-reader QPS | vs no writer | QPS per reader CPU-s | vs no writer | "
           "p50 us | p99 us | total QPS | ingest rows/s | vs writer alone | writer CPU us per row | "
           "reader replay CPU us per row |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        row *r = &rows[i];
        double q = med(r->qps, r->n), cq = med(r->cpu_qps, r->n);
        char ratio[32] = "", cratio[32] = "", ing[32] = "", iratio[32] = "", icpu[32] = "", qs[32] = "", cqs[32] = "",
             p50[32] = "", p99[32] = "", tot[32] = "", replay[32] = "";
        if (r->readers) {
            snprintf(qs, sizeof qs, "%.0f", q);
            snprintf(cqs, sizeof cqs, "%.0f", cq);
            snprintf(p50, sizeof p50, "%.1f", med(r->p50, r->n));
            snprintf(p99, sizeof p99, "%.1f", med(r->p99, r->n));
            snprintf(tot, sizeof tot, "%.0f", med(r->total, r->n));
        }
        if (r->readers && (r->writer || r->after || r->exclusive)) {
            row *b = find_row(rows, &n_rows, r->engine, r->readers, 0, 0, 0);
            snprintf(ratio, sizeof ratio, "%.2f", q / med(b->qps, b->n));
            snprintf(cratio, sizeof cratio, "%.2f", cq / med(b->cpu_qps, b->n));
            /* a reader's CPU a second less what its searches cost without a
             * writer: what following the writer's log costs it, per row */
            if (r->writer) {
                double extra = q / cq - q / med(b->cpu_qps, b->n);
                snprintf(replay, sizeof replay, "%.1f", extra < 0 ? 0 : extra / med(r->ingest, r->n) * 1e6);
            }
        }
        if (r->writer) {
            row *b = find_row(rows, &n_rows, r->engine, 0, 1, 0, 0);
            snprintf(ing, sizeof ing, "%.0f", med(r->ingest, r->n));
            snprintf(icpu, sizeof icpu, "%.1f", 1e6 / med(r->ingest_cpu, r->n));
            if (r->readers && r->writer == 1)
                snprintf(iratio, sizeof iratio, "%.2f", med(r->ingest, r->n) / med(b->ingest, b->n));
        }
        char wr[32];
        snprintf(wr, sizeof wr, "%s", r->after ? "gone (after)" : r->writer == 1 ? "on" : "off");
        if (r->writer == 2) snprintf(wr, sizeof wr, "%.0f/s", rate);
        printf("| %s%s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->engine,
               r->exclusive ? " exclusive" : "", r->readers, wr, qs, ratio, cqs, cratio, p50, p99, tot, ing, iratio,
               icpu, replay);
    }
    return 0;
}
