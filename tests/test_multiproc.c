/* Many processes on one collection: writers and readers in other processes
 * (tests/multiproc_worker.c, fork + exec), checked against what they were
 * told to write. Readers see whole batches only, at their next call; writers
 * take turns with the add/upsert/delete semantics of one process; checkpoints
 * run under readers; the busy timeout; a canceled batch is never seen;
 * processes creating one collection at once make one (create_at_once:
 * a known core bug, failing until fixed); read-only handles change no byte,
 * on a read-only directory too; HNSW graphs built by several processes find
 * the rows as well as one process's. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collection.h"
#include "multiproc_common.h"

/* ---------------------------------------------------------------- worker processes */

typedef struct proc {
    pid_t pid;
    int in, out; /* its stdin, its stdout */
    size_t len;
    char buf[8192];
} proc;

/* Every worker still running, killed by the teardown when a test fails.
 * Copies: a failed test's proc structs went with its stack. */
#define MAX_PROCS 16
static struct {
    pid_t pid;
    int in, out;
} live[MAX_PROCS];

static int line_timeout_ms(void) { return th_slow_tool() ? 900000 : 120000; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts the worker in `role` with key=value arguments (NULL-terminated). */
static void spawn(proc *p, const char *role, const char *dir, ...)
{
    const char *argv[32];
    int argc = 0;
    char dirarg[4096];
    snprintf(dirarg, sizeof dirarg, "dir=%s", dir);
    argv[argc++] = SVDB_MP_WORKER;
    argv[argc++] = role;
    argv[argc++] = dirarg;
    va_list ap;
    va_start(ap, dir);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int to[2], from[2];
    assert_int_equal(pipe2(to, O_CLOEXEC), 0);
    assert_int_equal(pipe2(from, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execv(SVDB_MP_WORKER, (char *const *)argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->in = to[1];
    p->out = from[0];
    for (int i = 0; i < MAX_PROCS; i++)
        if (!live[i].pid) {
            live[i].pid = pid;
            live[i].in = p->in;
            live[i].out = p->out;
            break;
        }
}

static void forget(proc *p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (live[i].pid == p->pid) live[i].pid = 0;
    close(p->in);
    close(p->out);
    p->pid = 0;
}

/* The next line the worker wrote; 0 at its end or after the timeout. */
static int read_line(proc *p, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            snprintf(out, cap, "%.*s", (int)n, p->buf);
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return 1;
        }
        struct pollfd pf = {p->out, POLLIN, 0};
        int r = poll(&pf, 1, line_timeout_ms());
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fprintf(stderr, "worker %d: no line for %d ms\n", (int)p->pid, line_timeout_ms());
            return 0;
        }
        ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - p->len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        p->len += (size_t)n;
    }
}

/* Reads the worker's next line, which must start with `prefix`; the rest
 * goes to rest (may be NULL). A "FAIL" line fails the test with it. */
static void expect(proc *p, const char *prefix, char *rest, size_t cap)
{
    char line[2048];
    if (!read_line(p, line, sizeof line)) fail_msg("worker %d ended (or hung) before '%s'", (int)p->pid, prefix);
    if (strncmp(line, "FAIL", 4) == 0) fail_msg("worker %d: %s", (int)p->pid, line);
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        fail_msg("worker %d said '%s', expected '%s...'", (int)p->pid, line, prefix);
    if (rest) snprintf(rest, cap, "%s", line + strlen(prefix));
}

static void send(proc *p, const char *cmd)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    assert_int_equal(write(p->in, line, (size_t)n), n);
}

/* "done", then a clean exit (an ASan build's worker exits nonzero on a leak). */
static void finish(proc *p)
{
    expect(p, "done", NULL, 0);
    int st = 0;
    assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("worker %d exited with status 0x%x", (int)p->pid, st);
    forget(p);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_PROCS; i++) {
        if (!live[i].pid) continue;
        kill(live[i].pid, SIGKILL);
        waitpid(live[i].pid, NULL, 0);
        close(live[i].in);
        close(live[i].out);
        live[i].pid = 0;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* a dead worker fails its test, not the whole run */
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static svdb *open_opts(const char *dir, int mode, uint32_t busy_ms)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = MP_DIM;
    o.mode = mode;
    o.busy_timeout_ms = busy_ms;
    svdb *db = NULL;
    ASSERT_OK(svdb_open(&db, dir, &o));
    return db;
}

/* An empty flat collection of MP_DIM, so that workers only ever open. */
static void create(const char *dir) { ASSERT_OK(svdb_close(open_opts(dir, SVDB_OPEN_SHARED, 5000))); }

static const char *u(char *buf, const char *key, unsigned long long v)
{
    sprintf(buf, "%s=%llu", key, v);
    return buf;
}

/* The files of dir other than the expected three. */
static void assert_only_collection_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strcmp(e->d_name, "LOCK") && strcmp(e->d_name, "wal.svdb") && strcmp(e->d_name, "snapshot.svdb"))
            fail_msg("unexpected file %s/%s", dir, e->d_name);
    }
    closedir(d);
}

/* ---------------------------------------------------------------- 1, 4: readers during writes */

/* One writer adds n batches of B rows; two reader processes read all the
 * while (the worker's reader role checks every call). With autockpt (log
 * bytes) and persist (batches), the log is replaced under the readers. */
static void readers_during_writes(const char *tag, uint64_t autockpt, unsigned persist, unsigned min_ckpts)
{
    char *dir = th_tmpdir(tag);
    create(dir);
    unsigned B = 10, n = th_slow_tool() ? 60 : 300;
    char a[8][64];
    proc w, r[2];
    spawn(&w, "batch-writer", dir, u(a[0], "B", B), u(a[1], "n", n), u(a[2], "persist", persist),
          u(a[3], "autockpt", autockpt), u(a[4], "pace_us", 1000), NULL);
    for (int i = 0; i < 2; i++)
        spawn(&r[i], "reader", dir, u(a[5], "B", B), u(a[6], "total", (unsigned long long)B * n),
              u(a[7], "seed", 7 + (unsigned)i), th_slow_tool() ? "timeout_s=900" : "timeout_s=120", NULL);
    expect(&w, "ready", NULL, 0);
    for (int i = 0; i < 2; i++) expect(&r[i], "ready", NULL, 0);
    double t0 = now_s();
    send(&w, "go");
    char rest[256];
    for (unsigned k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof want, "ack %u", k);
        expect(&w, want, NULL, 0);
    }
    expect(&w, "ckpts ", rest, sizeof rest);
    unsigned ckpts = (unsigned)strtoul(rest, NULL, 10);
    finish(&w);
    for (int i = 0; i < 2; i++) {
        unsigned long long calls = 0, distinct = 0;
        expect(&r[i], "stats ", rest, sizeof rest);
        assert_int_equal(sscanf(rest, "calls=%llu distinct=%llu", &calls, &distinct), 2);
        fprintf(stderr, "%s: reader %d: %llu calls, %llu distinct counts\n", tag, i, calls, distinct);
        /* It read while the batches came, not only before and after. */
        assert_true(distinct >= 3);
        finish(&r[i]);
    }
    fprintf(stderr, "%s: %u batches in %.2f s, %u log replacements seen by the writer\n", tag, n, now_s() - t0, ckpts);
    assert_true(ckpts >= min_ckpts);
    assert_only_collection_files(dir);
    svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 5000);
    size_t count = 0;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, (size_t)B * n);
    for (unsigned r_ = 0; r_ < B * n; r_++) assert_int_equal(mp_row_check(db, r_, r_ / B), 1);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

static void test_multiproc__readers_during_writes(void **state)
{
    (void)state;
    readers_during_writes("mp-readers", 0, 50, 1);
}

static void test_multiproc__checkpoints_under_readers(void **state)
{
    (void)state;
    /* About 1 KiB of log a batch: an automatic checkpoint every dozen or so. */
    readers_during_writes("mp-ckpt", 12 * 1024, 7, 5);
}

/* ---------------------------------------------------------------- 2: the next call sees a peer's batch */

/* LOCK's head, read from the file (not through a handle's map): 1 when it
 * is there with its magic, and the log end it announces in *end. */
static int lock_head_end(const char *dir, uint64_t *end)
{
    char *lock = th_path(dir, "LOCK");
    FILE *f = fopen(lock, "rb");
    free(lock);
    if (!f) return 0;
    unsigned char b[32];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got != sizeof b || memcmp(b, "SVDBHEAD", 8) != 0) return 0;
    memcpy(end, b + 16, 8);
    return 1;
}

static void add_one(svdb *db, const char *id, float x)
{
    float v[MP_DIM];
    for (size_t i = 0; i < MP_DIM; i++) v[i] = x + (float)i;
    ASSERT_OK(svdb_add_batch(db, 1, &id, v, MP_DIM, NULL));
}

/* The write path's catch-up, in one process: a writer whose log ends where
 * it stopped reading replays nothing (the fast path), one behind replays
 * the other handle's records, and a torn tail that appears under open
 * handles is cut by the next write; each write's head reaches the file
 * (published through the writable shared map of LOCK). */
static void test_multiproc__writer_catch_up(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mp-catchup");
    create(dir);
    svdb *a = open_opts(dir, SVDB_OPEN_SHARED, 5000), *b = open_opts(dir, SVDB_OPEN_SHARED, 5000);
    char *wal = th_path(dir, "wal.svdb");
    uint64_t end = 0;
    size_t count = 0;
    char id[16];
    for (int i = 0; i < 20; i++) { /* a's own writes back to back, then b's after a's */
        snprintf(id, sizeof id, "a%d", i);
        add_one(a, id, (float)i);
        assert_true(lock_head_end(dir, &end));
        assert_int_equal(end, (uint64_t)th_file_size(wal));
        if (i % 5 == 4) {
            snprintf(id, sizeof id, "b%d", i);
            add_one(b, id, (float)-i);
            assert_true(lock_head_end(dir, &end));
            assert_int_equal(end, (uint64_t)th_file_size(wal));
        }
    }
    ASSERT_OK(svdb_count(a, &count));
    assert_int_equal(count, 24);
    /* A killed writer's torn tail, appended while both are open. */
    long good = th_file_size(wal);
    FILE *f = fopen(wal, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite("\x01\x02\x03\x04\x05\x06\x07", 1, 7, f), 7);
    assert_int_equal(fclose(f), 0);
    add_one(a, "after-tail", 0.5f);
    long now = th_file_size(wal);
    assert_true(now > good);
    assert_true(lock_head_end(dir, &end));
    assert_int_equal(end, (uint64_t)now); /* cut, then appended right after the good records */
    int found = 0;
    ASSERT_OK(svdb_contains(b, "after-tail", &found));
    assert_int_equal(found, 1);
    add_one(b, "b-last", 1.5f); /* b catches up with a's record, written over the cut tail */
    ASSERT_OK(svdb_count(a, &count));
    assert_int_equal(count, 26);
    ASSERT_OK(svdb_close(a));
    ASSERT_OK(svdb_close(b));
    svdb *r = open_opts(dir, SVDB_OPEN_SHARED, 5000); /* a reopen reads it all back */
    ASSERT_OK(svdb_count(r, &count));
    assert_int_equal(count, 26);
    ASSERT_OK(svdb_contains(r, "b-last", &found));
    assert_int_equal(found, 1);
    ASSERT_OK(svdb_close(r));
    free(wal);
    th_rmrf(dir);
    free(dir);
}

static void test_multiproc__next_call_sees_peer_batch(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mp-next");
    create(dir);
    unsigned B = 7, n = th_slow_tool() ? 12 : 40;
    char a[4][64];
    proc w;
    spawn(&w, "batch-writer", dir, u(a[0], "B", B), u(a[1], "n", n), u(a[2], "ackwait", 1), u(a[3], "peer", 1), NULL);
    svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 5000), *ro = open_opts(dir, SVDB_OPEN_READONLY, 5000);
    expect(&w, "ready", NULL, 0);
    send(&w, "go");
    for (unsigned k = 0; k < n; k++) {
        char want[32], id[32];
        snprintf(want, sizeof want, "ack %u", k);
        expect(&w, want, NULL, 0);
        /* The writer waits for "next": both handles must show batch k at
         * their first call, and nothing after it. */
        svdb *hs[2] = {db, ro};
        for (int h = 0; h < 2; h++) {
            size_t count = 0;
            int found = 0;
            if (k % 2) { /* the first call is a count half the time, a lookup the other */
                ASSERT_OK(svdb_count(hs[h], &count));
                assert_int_equal(count, (size_t)(k + 1) * B + k);
            }
            mp_row_id(id, sizeof id, (uint64_t)(k + 1) * B - 1);
            ASSERT_OK(svdb_contains(hs[h], id, &found));
            assert_int_equal(found, 1);
            for (unsigned i = 0; i < B; i++) assert_int_equal(mp_row_check(hs[h], (uint64_t)k * B + i, k), 1);
            mp_row_id(id, sizeof id, (uint64_t)(k + 1) * B);
            ASSERT_OK(svdb_contains(hs[h], id, &found));
            assert_int_equal(found, 0);
            ASSERT_OK(svdb_count(hs[h], &count));
            assert_int_equal(count, (size_t)(k + 1) * B + k);
        }
        /* A row of ours, which the writer checks before its next batch; now
         * and then a checkpoint of ours replaces the log under it. */
        snprintf(id, sizeof id, "p%u", k);
        const char *ids[] = {id};
        float v[MP_DIM];
        mp_row_vec(v, MP_DIM, 500000u + k);
        ASSERT_OK(svdb_add_batch(db, 1, ids, v, MP_DIM, NULL));
        if (k % 5 == 4) ASSERT_OK(svdb_persist(db));
        send(&w, "next");
    }
    expect(&w, "ckpts ", NULL, 0);
    finish(&w);
    size_t count = 0;
    ASSERT_OK(svdb_count(ro, &count));
    assert_int_equal(count, (size_t)n * B + n);
    ASSERT_OK(svdb_close(ro));
    ASSERT_OK(svdb_close(db));
    db = open_opts(dir, SVDB_OPEN_SHARED, 5000);
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, (size_t)n * B + n);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* ---------------------------------------------------------------- 3: writers interleaving */

static int in_slice(unsigned w, unsigned H, unsigned ring, unsigned s)
{
    unsigned len = 2 * H < ring ? 2 * H : ring;
    return (s + ring - (w * H) % ring) % ring < len;
}

/* Ring row s must hold writer w's value of `round` (w < 0: be absent). */
static void assert_ring_row(svdb *db, unsigned s, int w, unsigned round)
{
    char id[32], meta_want[64];
    float v[MP_DIM], want[MP_DIM];
    mp_ring_id(id, sizeof id, s);
    char *meta = NULL;
    int rc = svdb_get(db, id, v, MP_DIM, &meta);
    if (w < 0) {
        if (rc != SVDB_ENOTFOUND) fail_msg("ring row %s: %d, expected to be absent", id, rc);
        return;
    }
    if (rc != SVDB_OK) fail_msg("ring row %s: %d (%s)", id, rc, svdb_errmsg());
    mp_ring_meta(meta_want, sizeof meta_want, (unsigned)w, round);
    mp_ring_vec(want, MP_DIM, (unsigned)w, round, s);
    if (!meta || strcmp(meta, meta_want) != 0 || memcmp(v, want, sizeof v) != 0)
        fail_msg("ring row %s: metadata %s (vector %s), expected writer %d's of round %u", id, meta ? meta : "NULL",
                 memcmp(v, want, sizeof v) ? "differs" : "matches", w, round);
    svdb_free(meta);
}

static void send_all(proc *p, unsigned n, const char *cmd)
{
    for (unsigned i = 0; i < n; i++) send(&p[i], cmd);
}

static void writers_interleaving(unsigned W)
{
    char *dir = th_tmpdir("mp-writers");
    create(dir);
    unsigned H = 4, ring = W * H, ops = th_slow_tool() ? 60 : 300, rounds = 3;
    uint64_t seed = 40 + W;
    proc p[4];
    char a[8][64];
    for (unsigned w = 0; w < W; w++)
        spawn(&p[w], "ns-writer", dir, u(a[0], "w", w), u(a[1], "W", W), u(a[2], "H", H), u(a[3], "ops", ops),
              u(a[4], "rounds", rounds), u(a[5], "seed", seed), u(a[6], "persist_pct", 3), NULL);
    for (unsigned w = 0; w < W; w++) expect(&p[w], "ready", NULL, 0);
    double t0 = now_s();
    send_all(p, W, "go");

    /* Add phase: every writer adds its 2H-id slice, overlapping both
     * neighbours'. Each batch is all or nothing: the ones that went
     * through are disjoint, every other one failed with SVDB_EEXISTS
     * because it overlaps one that went through. */
    int rc[4], won = 0;
    char rest[256];
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "add ", rest, sizeof rest);
        rc[w] = atoi(rest);
        assert_true(rc[w] == SVDB_OK || rc[w] == SVDB_EEXISTS);
        won += rc[w] == SVDB_OK;
    }
    assert_true(won >= 1);
    if (W == 2) assert_int_equal(won, 1); /* both slices are the whole ring */
    svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 30000);
    for (unsigned s = 0; s < ring; s++) {
        int owner = -1;
        for (unsigned w = 0; w < W; w++) {
            if (rc[w] != SVDB_OK || !in_slice(w, H, ring, s)) continue;
            assert_int_equal(owner, -1); /* two batches that went through share no id */
            owner = (int)w;
        }
        assert_ring_row(db, s, owner, 0);
    }
    for (unsigned w = 0; w < W; w++) {
        if (rc[w] == SVDB_OK) continue;
        int overlaps = 0;
        for (unsigned x = 0; x < W; x++)
            for (unsigned s = 0; s < ring; s++)
                overlaps |= rc[x] == SVDB_OK && in_slice(w, H, ring, s) && in_slice(x, H, ring, s);
        assert_true(overlaps);
    }
    size_t count = 0;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, (size_t)won * 2 * H < ring ? (size_t)won * 2 * H : ring);

    /* Mixed phase: each writer's own workload (adds, upserts, deletes,
     * persists) with whole-ring upserts between; the last upsert wins
     * every ring row, so each holds one writer's whole value of the last
     * round, the same writer's for all. */
    send_all(p, W, "go");
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "mixed ", rest, sizeof rest);
        assert_int_equal(atoi(rest), (int)rounds);
    }
    char id0[32], *meta = NULL;
    mp_ring_id(id0, sizeof id0, 0);
    float v[MP_DIM];
    ASSERT_OK(svdb_get(db, id0, v, MP_DIM, &meta));
    unsigned lw = 99, lr = 99;
    assert_non_null(meta);
    assert_int_equal(sscanf(meta, "{\"w\":%u,\"r\":%u}", &lw, &lr), 2);
    svdb_free(meta);
    assert_true(lw < W);
    assert_int_equal(lr, rounds);
    for (unsigned s = 0; s < ring; s++) assert_ring_row(db, s, (int)lw, rounds);

    /* Every writer's view is the same, and the same as ours. */
    send_all(p, W, "go");
    uint64_t mine = 0;
    ASSERT_OK(mp_digest(db, &mine, &count));
    char want[64];
    snprintf(want, sizeof want, " %016llx %zu", (unsigned long long)mine, count);
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "view", rest, sizeof rest);
        if (strcmp(rest, want) != 0) fail_msg("writer %u's view:%s, ours:%s", w, rest, want);
    }

    /* Merge phase: every writer merges its key into every ring row (an
     * update without vectors): each row ends with all W keys, its value
     * of before, and its vector. */
    send_all(p, W, "go");
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "merged ", rest, sizeof rest);
        assert_int_equal(strtoul(rest, NULL, 10), ring);
    }
    for (unsigned s = 0; s < ring; s++) {
        char id[32], key[32];
        float vec[MP_DIM];
        mp_ring_id(id, sizeof id, s);
        ASSERT_OK(svdb_get(db, id, v, MP_DIM, &meta));
        assert_non_null(meta);
        mp_ring_vec(vec, MP_DIM, lw, rounds, s);
        assert_memory_equal(v, vec, sizeof v);
        snprintf(key, sizeof key, "\"w\":%u", lw);
        assert_non_null(strstr(meta, key));
        snprintf(key, sizeof key, "\"r\":%u", rounds);
        assert_non_null(strstr(meta, key));
        for (unsigned w = 0; w < W; w++) {
            snprintf(key, sizeof key, "\"m%u\":%u", w, w);
            if (!strstr(meta, key)) fail_msg("ring row %s lost writer %u's merged key: %s", id, w, meta);
        }
        svdb_free(meta);
    }

    /* Delete phase: all delete the whole ring; each row is deleted once. */
    send_all(p, W, "go");
    size_t deleted = 0;
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "deleted ", rest, sizeof rest);
        deleted += strtoul(rest, NULL, 10);
    }
    assert_int_equal(deleted, ring);
    for (unsigned s = 0; s < ring; s++) assert_ring_row(db, s, -1, 0);

    /* Every namespace as its model says, in every view, ours, and a fresh
     * handle's after all closed. */
    send_all(p, W, "go");
    size_t total = 0;
    for (unsigned w = 0; w < W; w++) {
        th_model m;
        mp_ns_model(w, seed, ops, 3, &m);
        char prefix[16];
        snprintf(prefix, sizeof prefix, "w%u-", w);
        assert_true(mp_check_ns(db, prefix, &m));
        total += m.n;
        th_model_free(&m);
    }
    ASSERT_OK(mp_digest(db, &mine, &count));
    assert_int_equal(count, total);
    snprintf(want, sizeof want, " %016llx %zu", (unsigned long long)mine, count);
    for (unsigned w = 0; w < W; w++) {
        expect(&p[w], "final", rest, sizeof rest);
        if (strcmp(rest, want) != 0) fail_msg("writer %u's final view:%s, ours:%s", w, rest, want);
        finish(&p[w]);
    }
    ASSERT_OK(svdb_close(db));
    fprintf(stderr, "%u writers: %u ops each in %.2f s, %zu rows\n", W, ops, now_s() - t0, total);
    assert_only_collection_files(dir);
    db = open_opts(dir, SVDB_OPEN_SHARED, 5000);
    uint64_t fresh = 0;
    ASSERT_OK(mp_digest(db, &fresh, &count));
    assert_int_equal(fresh, mine);
    assert_int_equal(count, total);
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

static void test_multiproc__two_writers(void **state)
{
    (void)state;
    writers_interleaving(2);
}

static void test_multiproc__four_writers(void **state)
{
    (void)state;
    writers_interleaving(4);
}

/* ---------------------------------------------------------------- creating at once */

/* Processes that open the same new collection at once all succeed and make
 * one collection. (Regression: all but one could fail with SVDB_EIO "cannot
 * create directory ...: File exists" when another process's mkdir() came
 * between make_dir's stat and its own.) */
static void test_multiproc__create_at_once(void **state)
{
    (void)state;
    enum { N = 6 };
    unsigned rounds = 10, failed = 0;
    char first[512] = "";
    /* Deterministic: the directory appears between the check and mkdir
     * (race=1); the whole collection appears between the lock-free checks of
     * the directory's files and its listing (race=2; regression: refused as
     * "not empty and holds no svdb collection (it has 'snapshot.svdb')"). */
    for (unsigned race = 1; race <= 2; race++) {
        char *dir = th_tmpdir("mp-create"), rest[512], arg[32];
        proc p;
        spawn(&p, "creator", dir, u(arg, "race", race), NULL);
        expect(&p, "ready", NULL, 0);
        send(&p, "go");
        expect(&p, "opened ", rest, sizeof rest);
        finish(&p);
        if (atoi(rest) != SVDB_OK) {
            failed++;
            snprintf(first, sizeof first, "%s", rest);
        }
        th_rmrf(dir);
        free(dir);
    }
    /* And for real: processes opening at once. */
    for (unsigned round = 0; round < rounds; round++) {
        char *dir = th_tmpdir("mp-create"), a[N][32], rest[512];
        proc p[N];
        for (unsigned i = 0; i < N; i++) spawn(&p[i], "creator", dir, u(a[i], "w", i), NULL);
        for (unsigned i = 0; i < N; i++) expect(&p[i], "ready", NULL, 0);
        send_all(p, N, "go");
        unsigned ok = 0;
        for (unsigned i = 0; i < N; i++) {
            expect(&p[i], "opened ", rest, sizeof rest);
            if (atoi(rest) == SVDB_OK) ok++;
            else if (!first[0]) snprintf(first, sizeof first, "%s", rest);
            finish(&p[i]);
        }
        failed += N - ok;
        svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 5000);
        size_t count = 0;
        ASSERT_OK(svdb_count(db, &count));
        assert_int_equal(count, ok); /* one collection, with every row of the opens that worked */
        ASSERT_OK(svdb_close(db));
        th_rmrf(dir);
        free(dir);
    }
    if (failed)
        fprintf(stderr, "%u of %u concurrent creating opens failed, first: %s\n", failed,
                rounds * N + 2, first);
    assert_int_equal(failed, 0);
}

/* ---------------------------------------------------------------- busy timeout */

static void test_multiproc__busy_timeout(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mp-busy");
    create(dir);
    proc h;
    spawn(&h, "holder", dir, NULL);
    expect(&h, "ready", NULL, 0);
    svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 300), *now = open_opts(dir, SVDB_OPEN_SHARED, 0);
    send(&h, "hold 0");
    expect(&h, "holding", NULL, 0);
    /* The holder is in the middle of its batch, write lock held: reads go
     * on and see nothing of it; writes wait out the timeout and fail, all
     * of them changing nothing. */
    size_t count = 9;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, 0);
    const char *ids[] = {"mine"};
    float v[MP_DIM];
    mp_row_vec(v, MP_DIM, 42);
    double t0 = now_s();
    ASSERT_FAILS(svdb_add_batch(db, 1, ids, v, MP_DIM, NULL), SVDB_EBUSY);
    double waited = now_s() - t0;
    assert_non_null(strstr(svdb_errmsg(), "busy timeout"));
    assert_true(waited >= 0.25);
    ASSERT_FAILS(svdb_upsert_batch(db, 1, ids, v, MP_DIM, NULL), SVDB_EBUSY);
    ASSERT_FAILS(svdb_delete(db, 1, ids, NULL), SVDB_EBUSY);
    ASSERT_FAILS(svdb_persist(db), SVDB_EBUSY);
    t0 = now_s();
    ASSERT_FAILS(svdb_add_batch(now, 1, ids, v, MP_DIM, NULL), SVDB_EBUSY);
    double at_once = now_s() - t0;
    fprintf(stderr, "busy: 300 ms timeout failed after %.3f s, 0 ms after %.3f s\n", waited, at_once);
    assert_true(at_once < 0.25);
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, 0);
    send(&h, "release");
    expect(&h, "added 64", NULL, 0);
    ASSERT_OK(svdb_add_batch(db, 1, ids, v, MP_DIM, NULL));
    ASSERT_OK(svdb_count(now, &count));
    assert_int_equal(count, 65);

    /* A holder that lets go within the timeout: the write waits for it and
     * goes through, after the holder's batch. */
    svdb *patient = open_opts(dir, SVDB_OPEN_SHARED, 20000);
    send(&h, "hold 600");
    expect(&h, "holding", NULL, 0);
    const char *ids2[] = {"later"};
    t0 = now_s();
    ASSERT_OK(svdb_add_batch(patient, 1, ids2, v, MP_DIM, NULL));
    waited = now_s() - t0;
    fprintf(stderr, "busy: a write waited %.3f s for a 600 ms holder\n", waited);
    assert_true(waited >= 0.3);
    expect(&h, "added 128", NULL, 0);
    char **all = NULL;
    ASSERT_OK(svdb_ids(db, &all, &count));
    assert_int_equal(count, 130);
    assert_string_equal(all[64], "mine");
    assert_string_equal(all[128], "h127"); /* the holder's whole batch first */
    assert_string_equal(all[129], "later");
    svdb_ids_free(all);
    send(&h, "quit");
    finish(&h);
    ASSERT_OK(svdb_close(patient));
    ASSERT_OK(svdb_close(now));
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* A batch is in the log while its rows are linked, and a canceled one is
 * cut back off: other processes, and handles opened meanwhile, never see
 * it, since they read the log only up to the head writers announce. */
static void test_multiproc__canceled_batch_unseen(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mp-cancel");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = MP_DIM;
    o.index = SVDB_INDEX_HNSW;
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, &o));
    svdb *ro = open_opts(dir, SVDB_OPEN_READONLY, 0);
    proc h;
    spawn(&h, "holder", dir, "index=hnsw", NULL);
    expect(&h, "ready", NULL, 0);
    for (int round = 0; round < 3; round++) {
        send(&h, "cancel");
        expect(&h, "linking", NULL, 0);
        char *wal = th_path(dir, "wal.svdb");
        long logged = th_file_size(wal);
        svdb *late = open_opts(dir, SVDB_OPEN_READONLY, 0);
        svdb *hs[3] = {db, ro, late};
        char first[32]; /* the batch's first id */
        snprintf(first, sizeof first, "h%d", 64 * round);
        for (int i = 0; i < 3; i++) {
            size_t count = 9;
            int found = 1;
            ASSERT_OK(svdb_contains(hs[i], first, &found));
            assert_int_equal(found, 0);
            ASSERT_OK(svdb_count(hs[i], &count));
            assert_int_equal(count, (size_t)round * 64);
        }
        ASSERT_OK(svdb_close(late));
        send(&h, "cancel");
        char rest[32];
        expect(&h, "canceled ", rest, sizeof rest);
        assert_int_equal(atoi(rest), SVDB_ECANCELED);
        /* The record was there, and is gone. */
        assert_true(th_file_size(wal) < logged);
        free(wal);
        for (int i = 0; i < 2; i++) {
            size_t count = 9;
            ASSERT_OK(svdb_count(hs[i], &count));
            assert_int_equal(count, (size_t)round * 64);
        }
        /* The same rows again, for real this time. */
        send(&h, "hold 1");
        expect(&h, "holding", NULL, 0);
        char want[32];
        snprintf(want, sizeof want, "added %d", 64 * (round + 1));
        expect(&h, want, NULL, 0);
        /* Checked by db and a new handle; ro's next call comes during the
         * next canceled batch: it must catch up with this one, and stop
         * there. */
        late = open_opts(dir, SVDB_OPEN_READONLY, 0);
        hs[1] = late;
        for (int i = 0; i < 2; i++) {
            size_t count = 9;
            int found = 0;
            ASSERT_OK(svdb_contains(hs[i], first, &found));
            assert_int_equal(found, 1);
            ASSERT_OK(svdb_count(hs[i], &count));
            assert_int_equal(count, (size_t)(round + 1) * 64);
        }
        ASSERT_OK(svdb_close(late));
    }
    size_t count = 0;
    ASSERT_OK(svdb_count(ro, &count));
    assert_int_equal(count, 3 * 64);
    send(&h, "quit");
    finish(&h);
    ASSERT_OK(svdb_close(ro));
    ASSERT_OK(svdb_close(db));
    th_rmrf(dir);
    free(dir);
}

/* ---------------------------------------------------------------- read-only */

typedef struct file_state {
    char name[256];
    uint64_t ino, size, hash;
    struct timespec mtime;
} file_state;

/* Every file of dir: name, inode, size, mtime and a hash of the bytes. */
static size_t dir_state(const char *dir, file_state *fs, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        assert_true(n < cap);
        file_state *f = &fs[n++];
        snprintf(f->name, sizeof f->name, "%s", e->d_name);
        char *path = th_path(dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        f->ino = st.st_ino;
        f->size = (uint64_t)st.st_size;
        f->mtime = st.st_mtim;
        size_t len = 0;
        unsigned char *b = th_read_file(path, &len);
        assert_non_null(b);
        f->hash = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < len; i++) f->hash = (f->hash ^ b[i]) * 0x100000001b3ull;
        free(b);
        free(path);
    }
    closedir(d);
    /* readdir's order is the directory's; sort for the comparison. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(fs[j - 1].name, fs[j].name) > 0; j--) {
            file_state t = fs[j];
            fs[j] = fs[j - 1];
            fs[j - 1] = t;
        }
    return n;
}

static void assert_same_state(const file_state *a, size_t na, const file_state *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        if (a[i].ino != b[i].ino || a[i].size != b[i].size || a[i].hash != b[i].hash ||
            a[i].mtime.tv_sec != b[i].mtime.tv_sec || a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
            fail_msg("%s changed: size %llu -> %llu, content %s, mtime %s, inode %s", a[i].name,
                     (unsigned long long)a[i].size, (unsigned long long)b[i].size,
                     a[i].hash == b[i].hash ? "same" : "differs",
                     a[i].mtime.tv_sec == b[i].mtime.tv_sec && a[i].mtime.tv_nsec == b[i].mtime.tv_nsec ? "same"
                                                                                                        : "differs",
                     a[i].ino == b[i].ino ? "same" : "differs");
    }
}

/* A whole read-only session without cmocka (it also runs in a forked
 * child): every read, every write refused. 0, or the step that failed. */
static int ro_session(const char *dir, unsigned rows, unsigned B)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.mode = SVDB_OPEN_READONLY;
    svdb *db = NULL;
    if (svdb_open(&db, dir, &o) != SVDB_OK) return fprintf(stderr, "ro open: %s\n", svdb_errmsg()), 1;
    size_t count = 0;
    if (svdb_count(db, &count) != SVDB_OK || count != rows) return fprintf(stderr, "ro count %zu\n", count), 2;
    for (unsigned r = 0; r < rows; r++)
        if (mp_row_check(db, r, r / B) != 1) return 3;
    float q[MP_DIM];
    mp_row_vec(q, MP_DIM, rows / 2);
    svdb_hit *h = NULL;
    size_t nh = 0;
    char want[32];
    mp_row_id(want, sizeof want, rows / 2);
    if (svdb_search(db, q, MP_DIM, 5, NULL, &h, &nh) != SVDB_OK || nh != 5 || strcmp(h[0].id, want) != 0) return 4;
    svdb_hits_free(h);
    char **ids = NULL, **metas = NULL;
    if (svdb_select(db, NULL, &ids, &metas, &count) != SVDB_OK || count != rows) return 5;
    svdb_ids_free(ids);
    svdb_metadatas_free(metas);
    const char *id[] = {"new"};
    size_t nd = 9;
    if (svdb_add_batch(db, 1, id, q, MP_DIM, NULL) != SVDB_EREADONLY) return 6;
    if (svdb_upsert_batch(db, 1, id, q, MP_DIM, NULL) != SVDB_EREADONLY) return 7;
    id[0] = want;
    if (svdb_delete(db, 1, id, &nd) != SVDB_EREADONLY) return 8;
    if (svdb_update_batch(db, 1, id, q, MP_DIM, NULL, NULL, NULL) != SVDB_EREADONLY) return 9;
    if (svdb_persist(db) != SVDB_EREADONLY) return 10;
    if (svdb_index_wait(db) != SVDB_OK || svdb_verify(db) != SVDB_OK) return 11;
    if (svdb_count(db, &count) != SVDB_OK || count != rows) return 12;
    if (svdb_close(db) != SVDB_OK) return fprintf(stderr, "ro close: %s\n", svdb_errmsg()), 13;
    return 0;
}

/* In a child: a private mount namespace (in a new user namespace when
 * plain unshare is refused) where dir is bind-mounted read-only. 0 = the
 * session passed, 77 = no such namespace here, else a failure. */
static int ro_mount_child(const char *dir, unsigned rows, unsigned B)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            fprintf(stderr, "skipped: read-only bind mount: unshare: %s\n", strerror(errno));
            return 77;
        }
        char m[64];
        snprintf(m, sizeof m, "0 %d 1", (int)uid);
        th_write_file("/proc/self/setgroups", "deny", 4);
        th_write_file("/proc/self/uid_map", m, strlen(m));
        snprintf(m, sizeof m, "0 %d 1", (int)gid);
        th_write_file("/proc/self/gid_map", m, strlen(m));
    }
    /* "none" where the kernel ignores the string: valgrind checks them all. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 || mount(dir, dir, "none", MS_BIND, NULL) != 0 ||
        mount("none", dir, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
        fprintf(stderr, "skipped: read-only bind mount: mount: %s\n", strerror(errno));
        return 77;
    }
    /* Proof that the directory is read-only here, even to root. */
    char *probe = th_path(dir, "probe");
    int fd = open(probe, O_CREAT | O_WRONLY, 0644);
    free(probe);
    if (fd >= 0 || errno != EROFS) return fprintf(stderr, "the bind mount is writable\n"), 20;
    int rc = ro_session(dir, rows, B);
    if (rc == 0) fprintf(stderr, "read-only bind mount: the session passed\n");
    return rc;
}

static void test_multiproc__read_only(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mp-ro");
    create(dir);
    unsigned B = 5, n = 6;
    char a[4][64], rest[64];
    /* A read-only handle follows a writer process and refuses writes. */
    proc w;
    spawn(&w, "batch-writer", dir, u(a[0], "B", B), u(a[1], "n", n), u(a[2], "ackwait", 1), NULL);
    svdb *ro = open_opts(dir, SVDB_OPEN_READONLY, 5000);
    expect(&w, "ready", NULL, 0);
    send(&w, "go");
    for (unsigned k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof want, "ack %u", k);
        expect(&w, want, NULL, 0);
        for (unsigned i = 0; i < B; i++) assert_int_equal(mp_row_check(ro, (uint64_t)k * B + i, k), 1);
        size_t count = 0;
        ASSERT_OK(svdb_count(ro, &count));
        assert_int_equal(count, (size_t)(k + 1) * B);
        const char *ids[] = {"x"};
        float v[MP_DIM] = {0};
        ASSERT_FAILS(svdb_add_batch(ro, 1, ids, v, MP_DIM, NULL), SVDB_EREADONLY);
        ASSERT_FAILS(svdb_persist(ro), SVDB_EREADONLY);
        send(&w, "next");
    }
    expect(&w, "ckpts ", rest, sizeof rest);
    finish(&w);
    ASSERT_OK(svdb_close(ro));
    th_rmrf(dir);

    /* A collection a writer left with its log unchecked (killed after
     * its last batch) and a torn tail: read-only sessions change no byte. */
    create(dir);
    spawn(&w, "batch-writer", dir, u(a[0], "B", B), u(a[1], "n", n), u(a[2], "ackwait", 1), NULL);
    expect(&w, "ready", NULL, 0);
    send(&w, "go");
    for (unsigned k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof want, "ack %u", k);
        expect(&w, want, NULL, 0);
        if (k + 1 < n) send(&w, "next");
    }
    kill(w.pid, SIGKILL);
    waitpid(w.pid, NULL, 0);
    forget(&w);
    char *wal = th_path(dir, "wal.svdb");
    long wal_size = th_file_size(wal);
    assert_true(wal_size > 1000); /* it holds the batches */
    FILE *f = fopen(wal, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite("\x01\x02\x03\x04\x05\x06\x07", 1, 7, f), 7);
    assert_int_equal(fclose(f), 0);
    file_state before[8], after[8];
    size_t nb = dir_state(dir, before, 8), na;
    assert_int_equal(ro_session(dir, B * n, B), 0);
    na = dir_state(dir, after, 8);
    assert_same_state(before, nb, after, na);

    /* A directory without write permission (root ignores it, so this one
     * proves little here, but must work for anyone). */
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "chmod 0444 '%s'/* && chmod 0555 '%s'", dir, dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    nb = dir_state(dir, before, 8);
    assert_int_equal(ro_session(dir, B * n, B), 0);
    na = dir_state(dir, after, 8);
    assert_same_state(before, nb, after, na);

    /* A truly read-only directory: a read-only bind mount. */
    pid_t pid = th_fork();
    if (pid == 0) {
        int rc = ro_mount_child(dir, B * n, B);
        free(wal); /* what is left of the test's allocations stays reachable (valgrind) */
        free(dir);
        th_child_exit(rc);
    }
    int code = th_wait(pid);
    if (code == 77) fprintf(stderr, "skipped: read-only bind mount (no private mount namespace here)\n");
    else assert_int_equal(code, 0);
    na = dir_state(dir, after, 8);
    assert_same_state(before, nb, after, na);

    /* Writable again: the next writer cuts the torn tail, and all is there. */
    assert_true(asprintf(&cmd, "chmod 0755 '%s' && chmod 0644 '%s'/*", dir, dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    svdb *db = open_opts(dir, SVDB_OPEN_SHARED, 5000);
    assert_int_equal(th_file_size(wal), wal_size);
    size_t count = 0;
    ASSERT_OK(svdb_count(db, &count));
    assert_int_equal(count, (size_t)B * n);
    ASSERT_OK(svdb_close(db));
    free(wal);
    th_rmrf(dir);
    free(dir);
}

/* ---------------------------------------------------------------- HNSW across processes */

/* A worker of role hnsw (see multiproc_worker.c) on siftsmall's first nb rows. */
static void spawn_hnsw(proc *p, const char *dir, int bg, size_t nb, size_t nq, unsigned part, unsigned nparts)
{
    char a[8][64];
    /* An automatic checkpoint every quarter of the rows' log: the other
     * processes load the snapshot again on the way. */
    spawn(p, "hnsw", dir, "index=hnsw", "seed=1", "batch=100", u(a[6], "autockpt", nb * 128 * 4 / 4),
          u(a[0], "dim", 128), u(a[1], "bg", (unsigned)bg), u(a[2], "nb", nb), u(a[3], "nq", nq), u(a[4], "part", part),
          u(a[5], "nparts", nparts), NULL);
}

/* Runs the workers of p through their phases (all at once); their recalls,
 * and the log replacements they saw. */
static unsigned run_hnsw(proc *p, unsigned n, double *recall, unsigned long long *adopted)
{
    char rest[64];
    unsigned ckpts = 0;
    for (unsigned i = 0; i < n; i++) expect(&p[i], "ready", NULL, 0);
    send_all(p, n, "go");
    for (unsigned i = 0; i < n; i++) {
        expect(&p[i], "written ", rest, sizeof rest);
        ckpts += (unsigned)atoi(rest);
    }
    send_all(p, n, "go");
    for (unsigned i = 0; i < n; i++) {
        expect(&p[i], "recall ", rest, sizeof rest);
        if (sscanf(rest, "%lf adopted %llu", &recall[i], &adopted[i]) != 2) fail_msg("bad recall line: %s", rest);
        finish(&p[i]);
    }
    return ckpts;
}

static void hnsw_across(int bg)
{
    size_t nb_max = th_slow_tool() ? 2000 : 10000, nq_max = th_slow_tool() ? 50 : 100;
    float *base, *query;
    size_t nb, nq, dim;
    if (!mp_load_sift(nb_max, nq_max, &base, &nb, &query, &nq, &dim)) {
        fprintf(stderr, "siftsmall not found under %s: skipped\n", SVDB_TEST_DATA_DIR);
        skip();
    }
    free(base);
    free(query);
    assert_int_equal(dim, 128);

    /* The reference: one process, the same options and batches (in a
     * worker too, so that it runs at full speed under valgrind). */
    double t0 = now_s(), single, r[4];
    unsigned long long adopted[4];
    char *dir = th_tmpdir("mp-hnsw1");
    proc p[3];
    spawn_hnsw(&p[0], dir, bg, nb, nq, 0, 1);
    run_hnsw(p, 1, &single, adopted);
    th_rmrf(dir);
    free(dir);
    double t1 = now_s();

    /* Two writers, each half the batches (interleaved), and a follower
     * opened before them that only reads: each links every row into its
     * own graph. Then a process that opens the result afterwards. */
    dir = th_tmpdir("mp-hnsw");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)dim;
    o.index = SVDB_INDEX_HNSW;
    o.seed = 1;
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, &o));
    ASSERT_OK(svdb_close(db));
    for (unsigned i = 0; i < 3; i++) spawn_hnsw(&p[i], dir, bg, nb, nq, i, 2);
    unsigned ckpts = run_hnsw(p, 3, r, adopted);
    spawn_hnsw(&p[0], dir, bg, nb, nq, 2, 2);
    run_hnsw(p, 1, &r[3], &adopted[3]);
    fprintf(stderr,
            "hnsw (background %d, %zu rows): recall@10 single process %.4f (%.1f s); writers %.4f %.4f, follower %.4f, "
            "reopened %.4f (%.1f s, %u log replacements seen by the writers); rows adopted from links records: "
            "writers %llu %llu, follower %llu\n",
            bg, nb, single, t1 - t0, r[0], r[1], r[2], r[3], now_s() - t1, ckpts, adopted[0], adopted[1], adopted[2]);
    assert_true(ckpts >= 1);
    /* How many rows each adopted from the others' links records depends on
     * how the processes interleave with the checkpoints (rows that arrive
     * in a snapshot come linked): reported, not asserted; links_adopted
     * checks the counts. The recalls above are the point. */
    for (int i = 0; i < 4; i++) assert_true(fabs(r[i] - single) <= 0.01);
    th_rmrf(dir);
    free(dir);
}

static void test_multiproc__hnsw(void **state)
{
    (void)state;
    hnsw_across(0);
}

static void test_multiproc__hnsw_background(void **state)
{
    (void)state;
    hnsw_across(1);
}

/* ---------------------------------------------------------------- links records */

static svdb *open_links(const char *dir, int mode, int bg, uint32_t dim)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = dim;
    o.index = SVDB_INDEX_HNSW;
    o.seed = 1;
    o.mode = mode;
    o.background_indexing = bg;
    o.build_threads = 1;
    o.hnsw_ef_search = 10; /* recall below 1, so that a worse graph shows */
    svdb *db;
    ASSERT_OK(svdb_open(&db, dir, &o));
    return db;
}

static void links_of(svdb *db, uint64_t c[3]) { ASSERT_OK(svdb__links_counts(db, c)); }

static void add_rows(svdb *db, const float *base, size_t from, size_t to, size_t dim, size_t batch)
{
    char names[100][16];
    const char *ids[100];
    for (size_t at = from; at < to; at += batch) {
        size_t n = to - at < batch ? to - at : batch;
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "%zu", at + i);
            ids[i] = names[i];
        }
        ASSERT_OK(svdb_add_batch(db, n, ids, base + at * dim, (uint32_t)dim, NULL));
    }
}

/* Counts the log's records of each type (1..3). */
static void count_records(const char *dir, size_t counts[4])
{
    char *wal = th_path(dir, "wal.svdb");
    size_t len;
    unsigned char *b = th_read_file(wal, &len);
    memset(counts, 0, 4 * sizeof *counts);
    for (size_t pos = 32; b && pos + 24 <= len;) {
        uint32_t type;
        uint64_t plen;
        memcpy(&type, b + pos, 4);
        memcpy(&plen, b + pos + 16, 8);
        if (type < 4) counts[type]++;
        pos += 24 + (size_t)plen;
    }
    free(b);
    free(wal);
}

/* siftsmall's first rows (fewer under slow tools), 100 queries and their
 * 10th-nearest distances; skips the test without the data. */
typedef struct links_set {
    float *base, *query, *kth;
    size_t nb, nq, dim;
} links_set;

static void links_set_load(links_set *d)
{
    if (!mp_load_sift(th_slow_tool() ? 1500 : 5000, 100, &d->base, &d->nb, &d->query, &d->nq, &d->dim)) {
        fprintf(stderr, "siftsmall not found under %s: skipped\n", SVDB_TEST_DATA_DIR);
        skip();
    }
    d->kth = mp_kth(d->base, d->nb, d->query, d->nq, d->dim, 10);
}

/* A handle that others follow logs the links it chose for each put's rows;
 * a follower, and a handle opened later, adopt them instead of searching,
 * and find the rows as well as the writer does. A handle alone logs none. */
static void test_multiproc__links_adopted(void **state)
{
    (void)state;
    links_set d;
    links_set_load(&d);
    float *base = d.base, *query = d.query, *kth = d.kth;
    size_t nb = d.nb, nq = d.nq, dim = d.dim;
    char *dir = th_tmpdir("mp-links");
    svdb *w = open_links(dir, SVDB_OPEN_SHARED, 0, (uint32_t)dim);
    /* alone: nothing to advise */
    add_rows(w, base, 0, 100, dim, 100);
    uint64_t cw[3], cf[3], co[3];
    links_of(w, cw);
    assert_int_equal(cw[0], 0);
    svdb *f = open_links(dir, SVDB_OPEN_SHARED, 0, (uint32_t)dim);
    add_rows(w, base, 100, nb, dim, 100);
    size_t count;
    ASSERT_OK(svdb_count(f, &count)); /* catches up */
    assert_int_equal(count, nb);
    links_of(w, cw);
    links_of(f, cf);
    assert_int_equal(cw[0], nb - 100);
    assert_int_equal(cf[1], nb - 100); /* every row adopted */
    assert_int_equal(cf[2], 0);
    double rw = mp_recall(w, base, query, nq, dim, 10, kth), rf = mp_recall(f, base, query, nq, dim, 10, kth);
    /* a handle opened now replays the same records, and adopts too */
    svdb *o = open_links(dir, SVDB_OPEN_SHARED, 0, (uint32_t)dim);
    links_of(o, co);
    assert_int_equal(co[1], nb - 100);
    double ro = mp_recall(o, base, query, nq, dim, 10, kth);
    fprintf(stderr, "links: %zu rows, recall@10 writer %.4f, follower %.4f, reopened %.4f\n", nb, rw, rf, ro);
    assert_true(rw > 0.9 && fabs(rf - rw) <= 0.01 && fabs(ro - rw) <= 0.01);
    size_t rec[4];
    count_records(dir, rec);
    assert_int_equal(rec[3], rec[1] - 1); /* a links record after every put but the first */

    /* Upserts with new vectors (new links, adopted again), deletes, and a
     * metadata-only update (its row keeps its links, which replay adopts):
     * the follower finds every moved row at its new place. */
    const char *mv[20];
    char names[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "%d", i * 7);
        mv[i] = names[i];
    }
    ASSERT_OK(svdb_upsert_batch(w, 20, mv, query, (uint32_t)dim, NULL));
    const char *gone[2] = {"1", "2"};
    size_t n_gone;
    ASSERT_OK(svdb_delete(w, 2, gone, &n_gone));
    const char *meta[1] = {"{\"k\":1}"};
    size_t n_upd;
    ASSERT_OK(svdb_update_batch(w, 1, mv, NULL, (uint32_t)dim, meta, NULL, &n_upd));
    for (int i = 0; i < 20; i++) {
        svdb_hit *hits;
        size_t n;
        ASSERT_OK(svdb_search(f, query + (size_t)i * dim, (uint32_t)dim, 1, NULL, &hits, &n));
        assert_int_equal(n, 1);
        assert_string_equal(hits[0].id, mv[i]);
        svdb_hits_free(hits);
    }
    ASSERT_OK(svdb_count(f, &count));
    assert_int_equal(count, nb - 2);
    links_of(f, cf);
    assert_int_equal(cf[1], nb - 100 + 20 + 1); /* the update's row: replay relinks it, from its links */
    ASSERT_OK(svdb_close(o));
    ASSERT_OK(svdb_close(f));

    /* A follower with background indexing adopts as well (nothing is left
     * for its indexer), and an exclusive handle logs no links. */
    svdb *fb = open_links(dir, SVDB_OPEN_SHARED, 1, (uint32_t)dim);
    ASSERT_OK(svdb_index_wait(fb)); /* the first put's rows, logged without links */
    links_of(fb, co);                 /* what its open adopted */
    const char *more[1] = {"new"};
    ASSERT_OK(svdb_add_batch(w, 1, more, query + 50 * dim, (uint32_t)dim, NULL));
    ASSERT_OK(svdb_count(fb, &count));
    links_of(fb, cf);
    assert_int_equal(cf[1], co[1] + 1);
    svdb_stats st;
    ASSERT_OK(svdb_stats_init(&st, SVDB_STATS_VERSION));
    ASSERT_OK(svdb_get_stats(fb, &st));
    assert_int_equal(st.pending, 0);
    ASSERT_OK(svdb_index_wait(fb));
    ASSERT_OK(svdb_close(fb));

    /* Slot numbers that differ between handles: the writer's free slots in
     * the order it deleted them, a handle that loads the snapshot in slot
     * order. Links naming slots that hold other rows are not adopted; every
     * row is still found. */
    const char *del3[3] = {"10", "3", "7"};
    ASSERT_OK(svdb_delete(w, 3, del3, &n_gone));
    ASSERT_OK(svdb_persist(w));
    svdb *g = open_links(dir, SVDB_OPEN_SHARED, 0, (uint32_t)dim);
    links_of(g, co);
    const char *re3[3] = {"r0", "r1", "r2"};
    ASSERT_OK(svdb_add_batch(w, 3, re3, query + 60 * dim, (uint32_t)dim, NULL));
    ASSERT_OK(svdb_count(g, &count));
    links_of(g, cf);
    for (int i = 0; i < 3; i++) {
        svdb_hit *hits;
        size_t n;
        ASSERT_OK(svdb_search(g, query + (size_t)(60 + i) * dim, (uint32_t)dim, 1, NULL, &hits, &n));
        assert_int_equal(n, 1);
        assert_string_equal(hits[0].id, re3[i]);
        svdb_hits_free(hits);
    }
    fprintf(stderr, "links after a reload: %llu of 3 rows adopted, %llu declined\n",
            (unsigned long long)(cf[1] - co[1]), (unsigned long long)(cf[2] - co[2]));
    ASSERT_OK(svdb_close(g));
    ASSERT_OK(svdb_close(w));
    svdb *x = open_links(dir, SVDB_OPEN_EXCLUSIVE, 0, (uint32_t)dim);
    const char *last[1] = {"last"};
    ASSERT_OK(svdb_add_batch(x, 1, last, query + 51 * dim, (uint32_t)dim, NULL));
    links_of(x, cw);
    assert_int_equal(cw[0], 0);
    ASSERT_OK(svdb_close(x));
    free(kth);
    free(base);
    free(query);
    th_rmrf(dir);
    free(dir);
}

/* Search results hold distinct ids (a row both linked and queued would
 * show twice). */
static void assert_distinct(svdb *db, const float *q, size_t dim, size_t k)
{
    svdb_hit *hits;
    size_t n;
    ASSERT_OK(svdb_search(db, q, (uint32_t)dim, k, NULL, &hits, &n));
    assert_int_equal(n, k);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) assert_string_not_equal(hits[i].id, hits[j].id);
    svdb_hits_free(hits);
}

/* A writer with background indexing links its rows after the writes; the
 * links its indexer chose go into a deferred links record at its next
 * write, and followers adopt them: rows replayed in the same run before
 * they were linked, and rows waiting in a follower's indexer queue, which
 * holds them a while for that record. */
static void test_multiproc__links_deferred(void **state)
{
    (void)state;
    links_set d;
    links_set_load(&d);
    float *base = d.base, *query = d.query, *kth = d.kth;
    size_t nb = d.nb, nq = d.nq, dim = d.dim;
    char *dir = th_tmpdir("mp-deferred");
    svdb *w = open_links(dir, SVDB_OPEN_SHARED, 1, (uint32_t)dim);
    svdb *f = open_links(dir, SVDB_OPEN_SHARED, 0, (uint32_t)dim);
    /* The follower reads once, at the end: each batch's links record comes
     * before the next batch, while the batch's rows wait to be linked. */
    for (size_t at = 0; at < nb; at += 100) {
        add_rows(w, base, at, at + 100 < nb ? at + 100 : nb, dim, 100);
        ASSERT_OK(svdb_index_wait(w));
    }
    const char *tail[1] = {"tail"}; /* logs the last batch's links */
    ASSERT_OK(svdb_add_batch(w, 1, tail, query, (uint32_t)dim, NULL));
    uint64_t cw[3], cf[3];
    size_t count, rec[4];
    ASSERT_OK(svdb_count(f, &count));
    assert_int_equal(count, nb + 1);
    links_of(w, cw);
    links_of(f, cf);
    count_records(dir, rec);
    /* the tail's own links too, when the writer's idle indexer logged them first */
    assert_true(cw[0] == nb || cw[0] == nb + 1);
    assert_true(cf[1] == nb || cf[1] == nb + 1);
    assert_int_equal(cf[2], 0);
    assert_true(rec[3] >= rec[1] - 1);
    ASSERT_OK(svdb_index_wait(w));
    double rw = mp_recall(w, base, query, nq, dim, 10, kth), rf = mp_recall(f, base, query, nq, dim, 10, kth);
    fprintf(stderr, "deferred links: %zu rows, recall@10 writer %.4f, follower %.4f\n", nb, rw, rf);
    assert_true(rw > 0.9 && fabs(rf - rw) <= 0.01);
    ASSERT_OK(svdb_close(f));

    /* A follower with background indexing that reads between the writes:
     * the rows it replays wait in its queue (searched exactly, found once)
     * until the record that links them. How many it adopts rather than
     * links depends on timing (a hold is 200 ms), so it is reported; the
     * rows must be found either way. */
    svdb *fb = open_links(dir, SVDB_OPEN_SHARED, 1, (uint32_t)dim);
    ASSERT_OK(svdb_index_wait(fb));
    uint64_t c0[3];
    links_of(fb, c0);
    char names[100][16];
    const char *ids[100];
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(names[i], sizeof names[i], "m%d", round * 100 + i);
            ids[i] = names[i];
        }
        /* vectors near the queries, so the searches below meet new rows */
        float *v = malloc(100 * dim * sizeof *v);
        for (size_t i = 0; i < 100 * dim; i++) v[i] = query[(round * 7 + i / dim) % nq * dim + i % dim] + (float)(i % 3);
        ASSERT_OK(svdb_add_batch(w, 100, ids, v, (uint32_t)dim, NULL));
        free(v);
        assert_distinct(fb, query + (size_t)round * dim, dim, 10);
        ASSERT_OK(svdb_index_wait(w));
    }
    ASSERT_OK(svdb_add_batch(w, 1, (const char *[]){"tail2"}, query, (uint32_t)dim, NULL));
    assert_distinct(fb, query, dim, 10);
    links_of(fb, cf);
    fprintf(stderr, "deferred links, a background follower reading between writes: %llu of 1000 rows adopted\n",
            (unsigned long long)(cf[1] - c0[1]));
    if (!th_slow_tool()) assert_true(cf[1] - c0[1] > 0);
    ASSERT_OK(svdb_index_wait(fb));
    svdb_stats st;
    ASSERT_OK(svdb_stats_init(&st, SVDB_STATS_VERSION));
    ASSERT_OK(svdb_get_stats(fb, &st));
    assert_int_equal(st.pending, 0);
    ASSERT_OK(svdb_count(fb, &count));
    assert_int_equal(count, nb + 1002);
    for (int i = 0; i < 10; i++) assert_distinct(fb, query + (size_t)i * dim, dim, 10);
    ASSERT_OK(svdb_close(fb));
    ASSERT_OK(svdb_close(w));
    free(kth);
    free(base);
    free(query);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_multiproc__readers_during_writes, teardown),
        cmocka_unit_test_teardown(test_multiproc__checkpoints_under_readers, teardown),
        cmocka_unit_test_teardown(test_multiproc__next_call_sees_peer_batch, teardown),
        cmocka_unit_test_teardown(test_multiproc__writer_catch_up, teardown),
        cmocka_unit_test_teardown(test_multiproc__two_writers, teardown),
        cmocka_unit_test_teardown(test_multiproc__four_writers, teardown),
        cmocka_unit_test_teardown(test_multiproc__create_at_once, teardown),
        cmocka_unit_test_teardown(test_multiproc__busy_timeout, teardown),
        cmocka_unit_test_teardown(test_multiproc__canceled_batch_unseen, teardown),
        cmocka_unit_test_teardown(test_multiproc__read_only, teardown),
        cmocka_unit_test_teardown(test_multiproc__hnsw, teardown),
        cmocka_unit_test_teardown(test_multiproc__hnsw_background, teardown),
        cmocka_unit_test_teardown(test_multiproc__links_adopted, teardown),
        cmocka_unit_test_teardown(test_multiproc__links_deferred, teardown),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
