/* The other processes of tests/test_multiproc.c: `multiproc_worker ROLE
 * key=value...`. A worker talks to the test in lines: it reads commands
 * ("go", "next", ...) on stdin and writes what it did on stdout; "FAIL
 * <why>" reports a broken expectation (and exit status 1), "done" a clean
 * end. It dies with the test (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include "collection.h"
#include "multiproc_common.h"
#include "progress.h"

#include <dirent.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int g_argc;
static char **g_argv;

static const char *arg_s(const char *key, const char *dflt)
{
    size_t n = strlen(key);
    for (int i = 2; i < g_argc; i++)
        if (strncmp(g_argv[i], key, n) == 0 && g_argv[i][n] == '=') return g_argv[i] + n + 1;
    return dflt;
}

static uint64_t arg_u(const char *key, uint64_t dflt)
{
    const char *s = arg_s(key, NULL);
    return s ? strtoull(s, NULL, 10) : dflt;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("FAIL [%s pid %d] %s", g_argv[1], (int)getpid(), msg);
    exit(1);
}

#define CHECK_OK(expr)                                                                                                 \
    do {                                                                                                               \
        int rc_ = (expr);                                                                                              \
        if (rc_ != SVDB_OK) fail("%s: %d (%s)", #expr, rc_, svdb_errmsg());                                            \
    } while (0)

/* Waits for the command `want` from the test. */
static void expect(const char *want)
{
    char line[256];
    if (!fgets(line, sizeof line, stdin)) fail("stdin closed while waiting for '%s'", want);
    line[strcspn(line, "\n")] = 0;
    if (strcmp(line, want) != 0) fail("got command '%s', expected '%s'", line, want);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static svdb *open_db(void)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)arg_u("dim", MP_DIM);
    const char *mode = arg_s("mode", "shared");
    o.mode = strcmp(mode, "ro") == 0 ? SVDB_OPEN_READONLY : SVDB_OPEN_SHARED;
    o.index = strcmp(arg_s("index", "flat"), "hnsw") == 0 ? SVDB_INDEX_HNSW : SVDB_INDEX_FLAT;
    o.background_indexing = (int)arg_u("bg", 0);
    o.autocheckpoint_bytes = arg_u("autockpt", SVDB_AUTOCHECKPOINT_DEFAULT);
    o.busy_timeout_ms = (uint32_t)arg_u("busy", 30000); /* loaded CI machines: waiting is fine here */
    o.seed = arg_u("seed", 0);
    svdb *db = NULL;
    CHECK_OK(svdb_open(&db, arg_s("dir", "."), &o));
    return db;
}

static uint64_t wal_ino(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/wal.svdb", dir);
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* ---------------------------------------------------------------- batch writer
 * Adds batches of B rows (mp_row_*), "ack k" after each. ackwait=1: waits
 * for "next" after each ack, and (peer=1) checks that the row "p<k>" the
 * test added meanwhile is visible before it writes again. persist=N:
 * svdb_persist after every N batches. Reports the log replacements
 * (checkpoints, its own or others') it saw. */
static void batch_writer(void)
{
    svdb *db = open_db();
    const char *dir = arg_s("dir", ".");
    uint64_t B = arg_u("B", 10), n = arg_u("n", 10), persist = arg_u("persist", 0), pace = arg_u("pace_us", 0);
    int ackwait = (int)arg_u("ackwait", 0), peer = (int)arg_u("peer", 0);
    say("ready");
    expect("go");
    char **ids = malloc(B * sizeof *ids), **metas = malloc(B * sizeof *metas);
    float *v = malloc(B * MP_DIM * sizeof *v);
    for (uint64_t i = 0; i < B; i++) ids[i] = malloc(32), metas[i] = malloc(32);
    uint64_t ino = wal_ino(dir), ckpts = 0;
    for (uint64_t k = 0; k < n; k++) {
        if (peer && k > 0) {
            char pid[32];
            snprintf(pid, sizeof pid, "p%llu", (unsigned long long)(k - 1));
            int found = 0;
            CHECK_OK(svdb_contains(db, pid, &found));
            if (!found) fail("the test's row %s is not visible at the next call", pid);
        }
        for (uint64_t i = 0; i < B; i++) {
            mp_row_id(ids[i], 32, k * B + i);
            mp_row_meta(metas[i], 32, k);
            mp_row_vec(v + i * MP_DIM, MP_DIM, k * B + i);
        }
        CHECK_OK(svdb_add_batch(db, B, (const char *const *)ids, v, MP_DIM, (const char *const *)metas));
        if (persist && (k + 1) % persist == 0) CHECK_OK(svdb_persist(db));
        uint64_t now = wal_ino(dir);
        ckpts += now != ino;
        ino = now;
        say("ack %llu", (unsigned long long)k);
        if (ackwait) expect("next");
        if (pace) usleep((useconds_t)pace);
    }
    say("ckpts %llu", (unsigned long long)ckpts);
    for (uint64_t i = 0; i < B; i++) free(ids[i]), free(metas[i]);
    free(ids);
    free(metas);
    free(v);
    CHECK_OK(svdb_close(db));
    say("done");
}

/* ---------------------------------------------------------------- reader
 * Reads until it sees total rows: every call must see whole batches (a
 * count that is a multiple of B, never smaller than before) and every row
 * of the batches an earlier call saw, exactly as written. */
static void reader(void)
{
    svdb *db = open_db();
    uint64_t B = arg_u("B", 10), total = arg_u("total", 10), seed = arg_u("seed", 1);
    double deadline = now_s() + (double)arg_u("timeout_s", 120);
    say("ready");
    uint64_t rng = seed, last = 0, calls = 0, distinct = 0;
    float q[MP_DIM];
    char id[32];
    while (last < total) {
        if (now_s() > deadline)
            fail("still %llu rows of %llu after the deadline", (unsigned long long)last, (unsigned long long)total);
        size_t count = 0;
        CHECK_OK(svdb_count(db, &count));
        calls++;
        if (count % B) fail("count %zu is not a whole number of %llu-row batches", count, (unsigned long long)B);
        if (count < last) fail("count went back from %llu to %zu", (unsigned long long)last, count);
        if (count > total) fail("count %zu is over the %llu rows written", count, (unsigned long long)total);
        distinct += count != last;
        last = count;
        uint64_t nb = count / B;
        if (nb == 0) continue;
        /* A row of a batch seen earlier, exactly as written. */
        uint64_t j = th_rand64(&rng) % nb, r = j * B + th_rand64(&rng) % B;
        int ok = mp_row_check(db, r, j);
        if (ok < 0) fail("svdb_get of row %llu: %s", (unsigned long long)r, svdb_errmsg());
        if (!ok)
            fail("row %llu of batch %llu (of %llu seen) is missing or wrong", (unsigned long long)r,
                 (unsigned long long)j, (unsigned long long)nb);
        /* The last batch seen, whole, in one call. */
        const char *bids[64];
        char bbuf[64][32];
        int found[64];
        size_t m = B < 64 ? (size_t)B : 64;
        for (size_t i = 0; i < m; i++) {
            mp_row_id(bbuf[i], 32, (nb - 1) * B + i);
            bids[i] = bbuf[i];
        }
        CHECK_OK(svdb_get_batch(db, m, bids, NULL, MP_DIM, NULL, found));
        for (size_t i = 0; i < m; i++)
            if (!found[i]) fail("row %s of the last batch seen is missing", bids[i]);
        /* Search finds a row seen earlier by its own vector (flat: exact). */
        r = th_rand64(&rng) % count;
        mp_row_vec(q, MP_DIM, r);
        mp_row_id(id, sizeof id, r);
        svdb_hit *h = NULL;
        size_t nh = 0;
        CHECK_OK(svdb_search(db, q, MP_DIM, 3, NULL, &h, &nh));
        if (nh < 1 || strcmp(h[0].id, id) != 0 || h[0].distance > 1e-4f)
            fail("search by row %s's vector returned %s", id, nh ? h[0].id : "nothing");
        svdb_hits_free(h);
        /* Every few calls, the whole id list: whole batches, no gaps. */
        if (calls % 8 == 0) {
            char **all = NULL;
            size_t n = 0;
            CHECK_OK(svdb_ids(db, &all, &n));
            if (n % B || n < count) fail("svdb_ids: %zu rows after a count of %zu", n, count);
            unsigned char *seen = calloc(n, 1);
            for (size_t i = 0; i < n; i++) {
                uint64_t x = strtoull(all[i] + 1, NULL, 10);
                if (x >= n || seen[x]) fail("svdb_ids: row %s is not one of the first %zu", all[i], n);
                seen[x] = 1;
            }
            free(seen);
            svdb_ids_free(all);
        }
    }
    say("stats calls=%llu distinct=%llu", (unsigned long long)calls, (unsigned long long)distinct);
    CHECK_OK(svdb_close(db));
    say("done");
}

/* ---------------------------------------------------------------- namespace writer
 * Writer w of W: races the others to add its slice of the ring, then runs
 * its namespace workload with whole-ring upsert rounds in between, merges
 * a metadata key into the ring, then deletes it; the test checks the
 * outcome between the phases. */
static void ring_batch(unsigned w, unsigned round, unsigned first, unsigned n, unsigned ring, char **ids, char **metas,
                       float *v)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned s = (first + i) % ring;
        mp_ring_id(ids[i], 32, s);
        mp_ring_meta(metas[i], 32, w, round);
        mp_ring_vec(v + (size_t)i * MP_DIM, MP_DIM, w, round, s);
    }
}

static void report_view(const char *tag, svdb *db)
{
    uint64_t h = 0;
    size_t n = 0;
    CHECK_OK(mp_digest(db, &h, &n));
    say("%s %016llx %zu", tag, (unsigned long long)h, n);
}

static void ns_writer(void)
{
    svdb *db = open_db();
    unsigned w = (unsigned)arg_u("w", 0), W = (unsigned)arg_u("W", 2), H = (unsigned)arg_u("H", 4);
    unsigned nops = (unsigned)arg_u("ops", 100), rounds = (unsigned)arg_u("rounds", 3);
    int persist_pct = (int)arg_u("persist_pct", 3);
    uint64_t pace = arg_u("pace_us", 200);
    uint64_t seed = arg_u("seed", 1);
    unsigned ring = W * H;
    char **ids = malloc(ring * sizeof *ids), **metas = malloc(ring * sizeof *metas);
    float *v = malloc((size_t)ring * MP_DIM * sizeof *v);
    for (unsigned i = 0; i < ring; i++) ids[i] = malloc(32), metas[i] = malloc(32);
    say("ready");
    expect("go");
    /* Everyone adds 2H ids of the ring, overlapping both neighbours' slices. */
    ring_batch(w, 0, w * H, 2 * H < ring ? 2 * H : ring, ring, ids, metas, v);
    int rc = svdb_add_batch(db, 2 * H < ring ? 2 * H : ring, (const char *const *)ids, v, MP_DIM,
                            (const char *const *)metas);
    if (rc != SVDB_OK && rc != SVDB_EEXISTS) fail("ring add: %d (%s)", rc, svdb_errmsg());
    say("add %d", rc);
    expect("go");
    mp_ns ns;
    mp_ns_init(&ns, w, seed);
    unsigned round = 0;
    for (unsigned i = 0; i < nops; i++) {
        if (rounds && i % (nops / rounds ? nops / rounds : 1) == 0 && round < rounds) {
            round++;
            ring_batch(w, round, 0, ring, ring, ids, metas, v);
            CHECK_OK(svdb_upsert_batch(db, ring, (const char *const *)ids, v, MP_DIM, (const char *const *)metas));
        }
        th_op op;
        mp_ns_next(&ns, persist_pct, &op);
        rc = th_op_run(db, &op);
        if (rc != SVDB_OK) fail("op %u (kind %d, %zu ids): %d (%s)", i, op.kind, op.n, rc, svdb_errmsg());
        th_op_model(&ns.model, &op);
        th_op_free(&op);
        if (pace) usleep((useconds_t)pace); /* lets the others in between: interleaved, not in turns */
    }
    if (!mp_check_ns(db, ns.prefix, &ns.model)) fail("own namespace differs from its model right after the ops");
    mp_ns_free(&ns);
    say("mixed %u", round);
    expect("go");
    report_view("view", db);
    expect("go");
    /* Everyone merges a key of its own into every ring row's metadata, no
     * vectors: a writer that applied its merge to a stale row would drop
     * the keys merged before it. */
    for (unsigned i = 0; i < ring; i++) {
        mp_ring_id(ids[i], 32, i);
        snprintf(metas[i], 32, "{\"m%u\":%u}", w, w);
    }
    svdb_update_options uo;
    svdb_update_options_init(&uo, SVDB_UPDATE_OPTIONS_VERSION);
    uo.merge_metadata = 1;
    size_t updated = 0;
    CHECK_OK(
        svdb_update_batch(db, ring, (const char *const *)ids, NULL, MP_DIM, (const char *const *)metas, &uo, &updated));
    say("merged %zu", updated);
    expect("go");
    size_t deleted = 0;
    CHECK_OK(svdb_delete(db, ring, (const char *const *)ids, &deleted));
    say("deleted %zu", deleted);
    expect("go");
    /* Every namespace, not just its own, as the model says. */
    for (unsigned x = 0; x < W; x++) {
        th_model m;
        mp_ns_model(x, seed, nops, persist_pct, &m);
        char prefix[16];
        snprintf(prefix, sizeof prefix, "w%u-", x);
        int ok = mp_check_ns(db, prefix, &m);
        th_model_free(&m);
        if (!ok) fail("namespace %s differs from its model in writer %u's view", prefix, w);
    }
    report_view("final", db);
    for (unsigned i = 0; i < ring; i++) free(ids[i]), free(metas[i]);
    free(ids);
    free(metas);
    free(v);
    CHECK_OK(svdb_close(db));
    say("done");
}

/* ---------------------------------------------------------------- write-lock holder
 * "hold MS": adds a batch whose progress handler, at its first report,
 * says "holding" (the write lock is held) and then keeps the lock MS
 * milliseconds, or until the line "release" when MS is 0; "added N" after.
 * "cancel" (HNSW): says "linking" once the batch is in the log and being
 * linked, waits for the line "cancel" and cancels it; "canceled RC" after.
 * "quit" ends. */
typedef struct hold {
    int ms, cancel, done;
} hold;

static int holding_fn(void *ctx, int op, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    hold *h = ctx;
    if (h->done || (h->cancel && op != SVDB_PROGRESS_LINK)) return 0;
    h->done = 1;
    say(h->cancel ? "linking" : "holding");
    if (h->cancel) {
        expect("cancel");
        return 1;
    }
    if (h->ms == 0) expect("release");
    else usleep((useconds_t)h->ms * 1000);
    return 0;
}

static void holder(void)
{
    svdb *db = open_db();
    svdb__progress_interval_ns = 0; /* report at once, however small the batch */
    enum { N = 64 };
    char *ids[N], *metas[N];
    float v[N * MP_DIM];
    unsigned next = 0;
    for (int i = 0; i < N; i++) ids[i] = malloc(32), metas[i] = malloc(32);
    say("ready");
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "quit") == 0) break;
        hold h = {-1, strcmp(line, "cancel") == 0, 0};
        if (!h.cancel && (sscanf(line, "hold %d", &h.ms) != 1 || h.ms < 0)) fail("bad command '%s'", line);
        CHECK_OK(svdb_progress_handler(db, holding_fn, &h));
        for (int i = 0; i < N; i++) {
            snprintf(ids[i], 32, "h%u", next + (unsigned)i);
            snprintf(metas[i], 32, "{\"h\":%u}", next + (unsigned)i);
            mp_row_vec(v + i * MP_DIM, MP_DIM, 1000000u + next + (unsigned)i);
        }
        int rc = svdb_add_batch(db, N, (const char *const *)ids, v, MP_DIM, (const char *const *)metas);
        CHECK_OK(svdb_progress_handler(db, NULL, NULL));
        if (!h.done) fail("the batch made no progress report: the lock was never shown held");
        if (h.cancel) {
            say("canceled %d", rc);
            continue;
        }
        if (rc != SVDB_OK) fail("svdb_add_batch: %d (%s)", rc, svdb_errmsg());
        next += N;
        say("added %u", next);
    }
    for (int i = 0; i < N; i++) free(ids[i]), free(metas[i]);
    CHECK_OK(svdb_close(db));
    say("done");
}

/* ---------------------------------------------------------------- HNSW
 * Writes (part < nparts) its share of siftsmall's first nb rows, batch b
 * going to part b % nparts; then, after "go", waits for the index and
 * reports recall@10 and the rows whose logged links it adopted (see
 * links records, write.c). part=nparts writes nothing (a follower). "written N":
 * N log replacements (checkpoints) seen between its batches. */
static void hnsw(void)
{
    size_t nb_max = arg_u("nb", 10000), nq_max = arg_u("nq", 100), batch = arg_u("batch", 100);
    unsigned part = (unsigned)arg_u("part", 0), nparts = (unsigned)arg_u("nparts", 2);
    float *base, *query;
    size_t nb, nq, dim;
    if (!mp_load_sift(nb_max, nq_max, &base, &nb, &query, &nq, &dim)) fail("siftsmall is missing");
    svdb *db = open_db();
    say("ready");
    expect("go");
    char **ids = malloc(batch * sizeof *ids);
    for (size_t i = 0; i < batch; i++) ids[i] = malloc(32);
    uint64_t ino = wal_ino(arg_s("dir", ".")), ckpts = 0;
    for (size_t b = 0; part < nparts && b * batch < nb; b++) {
        if (b % nparts != part) continue;
        size_t n = nb - b * batch < batch ? nb - b * batch : batch;
        for (size_t i = 0; i < n; i++) snprintf(ids[i], 32, "%zu", b * batch + i);
        CHECK_OK(svdb_add_batch(db, n, (const char *const *)ids, base + b * batch * dim, (uint32_t)dim, NULL));
        uint64_t now = wal_ino(arg_s("dir", "."));
        ckpts += now != ino;
        ino = now;
    }
    say("written %llu", (unsigned long long)ckpts);
    expect("go");
    size_t count = 0, pending = 1;
    CHECK_OK(svdb_count(db, &count));
    if (count != nb) fail("%zu rows, expected %zu", count, nb);
    CHECK_OK(svdb_index_wait(db));
    CHECK_OK(svdb_index_pending(db, &pending));
    if (pending) fail("%zu rows still unlinked after svdb_index_wait", pending);
    float *kth = mp_kth(base, nb, query, nq, dim, 10);
    double r = mp_recall(db, base, query, nq, dim, 10, kth);
    if (r < 0) fail("search: %s", svdb_errmsg());
    uint64_t links[3];
    CHECK_OK(svdb__links_counts(db, links));
    say("recall %.6f adopted %llu", r, (unsigned long long)links[1]);
    free(kth);
    for (size_t i = 0; i < batch; i++) free(ids[i]);
    free(ids);
    free(base);
    free(query);
    CHECK_OK(svdb_close(db));
    say("done");
}

/* ---------------------------------------------------------------- creator
 * Opens a collection that may not exist yet the moment it reads "go",
 * adds its row "c<w>" and says "opened RC MESSAGE" (RC the first failure).
 * race=1: the first mkdir() (the library's, linked in statically) finds
 * the directory made just before by "another process", as when two
 * processes create a collection at once, without the luck of timing.
 * race=2: just before the first listing of a directory (open's check that
 * a new collection goes into an empty one, made without the lock) a child
 * creates the whole collection, as a faster process would. */
static int mkdir_race, list_race;
static const char *race_dir;

DIR *fdopendir(int fd)
{
    static DIR *(*real)(int);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "fdopendir");
    if (list_race) {
        list_race = 0;
        pid_t pid = fork();
        if (pid == 0) {
            svdb_open_options o;
            svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
            o.dim = MP_DIM;
            svdb *db = NULL;
            _exit(svdb_open(&db, race_dir, &o) == SVDB_OK && svdb_close(db) == SVDB_OK ? 0 : 1);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("race=2: the child could not create the collection");
    }
    return real(fd);
}

int mkdir(const char *path, mode_t mode)
{
    if (mkdir_race) {
        mkdir_race = 0;
        (void)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
    }
    return (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
}

static void creator(void)
{
    unsigned w = (unsigned)arg_u("w", 0);
    unsigned race = (unsigned)arg_u("race", 0);
    mkdir_race = race == 1;
    list_race = race == 2;
    race_dir = arg_s("dir", ".");
    say("ready");
    expect("go");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = MP_DIM;
    o.busy_timeout_ms = 30000;
    svdb *db = NULL;
    int rc = svdb_open(&db, arg_s("dir", "."), &o);
    if (rc == SVDB_OK) {
        char id[32];
        float v[MP_DIM];
        snprintf(id, sizeof id, "c%u", w);
        mp_row_vec(v, MP_DIM, w);
        const char *ids[] = {id};
        rc = svdb_add_batch(db, 1, ids, v, MP_DIM, NULL);
    }
    say("opened %d %s", rc, rc == SVDB_OK ? "" : svdb_errmsg());
    if (db) CHECK_OK(svdb_close(db));
    say("done");
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc < 2) fail("no role");
    const char *role = argv[1];
    if (strcmp(role, "batch-writer") == 0) batch_writer();
    else if (strcmp(role, "reader") == 0) reader();
    else if (strcmp(role, "ns-writer") == 0) ns_writer();
    else if (strcmp(role, "holder") == 0) holder();
    else if (strcmp(role, "hnsw") == 0) hnsw();
    else if (strcmp(role, "creator") == 0) creator();
    else fail("unknown role %s", role);
    return 0;
}
