/* Corruption corpus: damages real collection directories in thousands of
 * ways and opens each one. Every open must either fail with a clear error
 * (a status and a non-empty message) or succeed with a collection that
 * answers count, ids, get, search and persist without crashing. Run it under
 * ASan+UBSan. Usage: svdb_corpus WORKDIR [SEED] */
#define _GNU_SOURCE
#include "svdb.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t svdb__crc32c(uint32_t crc, const void *data, size_t len);

typedef struct {
    unsigned char *snap, *wal;
    size_t snap_len, wal_len;
    char name[32];
} base;

static char work[512];
static unsigned long long rng = 88172645463325252ull;
static unsigned long tried, opened, refused, bad_errors;
static unsigned long by_status[32];

static unsigned long long next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spill(const char *dir, const char *name, const unsigned char *b, size_t n)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n)) abort();
    close(fd);
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A collection that opened must stay usable; keep the evidence and stop. */
static void fail_used(const char *dir, const char *what)
{
    fprintf(stderr, "corpus: %s failed on an opened variant (%s): %s\n", what, dir, svdb_errmsg());
    char keep[700];
    snprintf(keep, sizeof keep, "%s-failed", dir);
    rename(dir, keep);
    abort();
}

/* Opens the directory and exercises whatever opened. */
static void try_open(const char *dir)
{
    tried++;
    alarm(20); /* a hang is a failure too */
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db = NULL;
    int rc = svdb_open(&db, dir, &o);
    if (rc != SVDB_OK) {
        refused++;
        by_status[-rc < 32 ? -rc : 31]++;
        if (db != NULL || svdb_errmsg()[0] == '\0') bad_errors++;
        alarm(0);
        return;
    }
    opened++;
    size_t n = 0, nids = 0;
    uint32_t dim = 0;
    char **ids = NULL;
    if (svdb_count(db, &n) != SVDB_OK || svdb_dim(db, &dim) != SVDB_OK) fail_used(dir, "count/dim");
    if (svdb_ids(db, &ids, &nids) != SVDB_OK || nids != n) fail_used(dir, "ids");
    float *v = calloc(dim ? dim : 1, sizeof *v);
    for (size_t i = 0; i < nids; i++) {
        char *meta = NULL;
        if (svdb_get(db, ids[i], v, dim, &meta) != SVDB_OK) fail_used(dir, "get");
        svdb_free(meta);
    }
    if (dim) {
        v[0] = 1.0f;
        svdb_hit *hits = NULL;
        size_t nh = 0;
        if (svdb_search(db, v, dim, 5, NULL, &hits, &nh) != SVDB_OK) fail_used(dir, "search");
        svdb_hits_free(hits);
    }
    free(v);
    svdb_ids_free(ids);
    int prc = svdb_persist(db);
    if (prc != SVDB_OK && prc != SVDB_EIO && prc != SVDB_ENOSPC) fail_used(dir, "persist");
    svdb_close(db);
    alarm(0);
}

static void variant(const base *b, const unsigned char *snap, size_t sl, const unsigned char *wal, size_t wl)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/v", work);
    rm_rf(dir);
    mkdir(dir, 0755);
    if (snap) spill(dir, "snapshot.svdb", snap, sl);
    if (wal) spill(dir, "wal.svdb", wal, wl);
    (void)b;
    try_open(dir);
}

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void fix_header_crc(unsigned char *s, size_t len)
{
    if (len >= 128) put32(s + 124, svdb__crc32c(0, s, 124));
    if (len >= 256) put32(s + 252, svdb__crc32c(0, s + 128, 124));
}

static void damage(const base *b)
{
    unsigned char *s = malloc(b->snap_len + 16), *w = malloc(b->wal_len + 64);
    /* 1. Truncations: dense in the headers, at section boundaries, random elsewhere. */
    uint64_t bounds[8] = {0};
    if (b->snap_len >= 128) {
        bounds[0] = get64(b->snap + 56);
        bounds[1] = get64(b->snap + 72);
        bounds[2] = get64(b->snap + 72) + get64(b->snap + 80);
        bounds[3] = b->snap_len;
    }
    for (size_t off = 0; off < 300 && off < b->snap_len; off += 3) variant(b, b->snap, off, b->wal, b->wal_len);
    for (int i = 0; i < 4; i++)
        for (int d = -8; d <= 8; d += 1)
            if ((int64_t)bounds[i] + d >= 0 && (uint64_t)((int64_t)bounds[i] + d) < b->snap_len)
                variant(b, b->snap, (size_t)((int64_t)bounds[i] + d), b->wal, b->wal_len);
    for (int i = 0; i < 150; i++) variant(b, b->snap, next_rand() % (b->snap_len + 1), b->wal, b->wal_len);
    for (size_t off = 0; off < b->wal_len; off += (off < 64 ? 1 : 5)) variant(b, b->snap, b->snap_len, b->wal, off);
    /* 2. Bit flips: every 3rd bit of the header blocks, random bits elsewhere, in both files. */
    for (size_t bit = 0; bit < 256 * 8 && bit / 8 < b->snap_len; bit += 3) {
        memcpy(s, b->snap, b->snap_len);
        s[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        variant(b, s, b->snap_len, b->wal, b->wal_len);
    }
    for (int i = 0; i < 400; i++) {
        memcpy(s, b->snap, b->snap_len);
        size_t bit = next_rand() % (b->snap_len * 8);
        s[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        variant(b, s, b->snap_len, b->wal, b->wal_len);
    }
    for (size_t bit = 0; bit < b->wal_len * 8; bit += (bit < 32 * 8 ? 1 : 7 + next_rand() % 13)) {
        memcpy(w, b->wal, b->wal_len);
        w[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        variant(b, b->snap, b->snap_len, w, b->wal_len);
    }
    /* 3. Zeroed and 0xFF-filled 512-byte blocks. */
    for (size_t off = 0; off < b->snap_len; off += 512)
        for (int fill = 0; fill < 2; fill++) {
            memcpy(s, b->snap, b->snap_len);
            memset(s + off, fill ? 0xFF : 0, b->snap_len - off < 512 ? b->snap_len - off : 512);
            variant(b, s, b->snap_len, b->wal, b->wal_len);
        }
    /* 4. Field attacks with the header checksums recomputed, so the loader's
     *    own checks (not the CRC) must catch them. */
    static const uint64_t evil[] = {0, 1, 2, 3, 0x7FFFFFFFull, 0x80000000ull, 0xFFFFFFFFull, 0x100000000ull,
                                    0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull, 4096, 4095, 65536, 65537};
    static const struct {
        int off, width;
    } fields[] = {{8, 4},  {12, 4}, {24, 8}, {32, 8},  {40, 8},  {48, 4},  {52, 4},  {56, 8},  {64, 8},
                  {72, 8}, {80, 8}, {96, 4}, {100, 4}, {104, 4}, {108, 4}, {112, 8}, {128, 8}};
    if (b->snap_len >= 256)
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            for (size_t e = 0; e < sizeof evil / sizeof evil[0] + 2; e++) {
                memcpy(s, b->snap, b->snap_len);
                uint64_t cur = fields[f].width == 8 ? get64(s + fields[f].off) : (uint64_t)(s[fields[f].off] | s[fields[f].off + 1] << 8 | (uint64_t)s[fields[f].off + 2] << 16 | (uint64_t)s[fields[f].off + 3] << 24);
                uint64_t val = e < sizeof evil / sizeof evil[0] ? evil[e] : e == sizeof evil / sizeof evil[0] ? cur + 1 : cur - 1;
                if (fields[f].width == 8) put64(s + fields[f].off, val);
                else put32(s + fields[f].off, (uint32_t)val);
                fix_header_crc(s, b->snap_len);
                variant(b, s, b->snap_len, b->wal, b->wal_len);
            }
        }
    /* Log record fields with the record checksum recomputed. */
    for (size_t pos = 32; pos + 24 <= b->wal_len;) {
        uint64_t len = get64(b->wal + pos + 16);
        if (len > b->wal_len - pos - 24) break;
        for (int field = 0; field < 4; field++)
            for (size_t e = 0; e < sizeof evil / sizeof evil[0]; e++) {
                memcpy(w, b->wal, b->wal_len);
                if (field == 0) put32(w + pos, (uint32_t)evil[e]);                       /* type */
                else if (field == 1) put64(w + pos + 8, evil[e]);                        /* lsn */
                else if (field == 2 && len >= 16) put64(w + pos + 24 + 8, evil[e]);      /* row count in payload */
                else if (field == 3 && len >= 4) put32(w + pos + 24, (uint32_t)evil[e]); /* dim / first length */
                uint32_t crc = svdb__crc32c(0, w + pos, 4);
                crc = svdb__crc32c(crc, w + pos + 8, 16);
                crc = svdb__crc32c(crc, w + pos + 24, (size_t)len);
                put32(w + pos + 4, crc);
                variant(b, b->snap, b->snap_len, w, b->wal_len);
            }
        /* a duplicated record, and garbage after the last one */
        memcpy(w, b->wal, b->wal_len);
        size_t rl = 24 + (size_t)len, total = b->wal_len + rl;
        unsigned char *dup = malloc(total + 64);
        memcpy(dup, b->wal, b->wal_len);
        memcpy(dup + b->wal_len, b->wal + pos, rl);
        variant(b, b->snap, b->snap_len, dup, total);
        for (int g = 0; g < 64; g++) dup[b->wal_len + (size_t)g] = (unsigned char)next_rand();
        variant(b, b->snap, b->snap_len, dup, b->wal_len + 64);
        free(dup);
        pos += rl;
    }
    /* 5. File-level damage. */
    variant(b, NULL, 0, b->wal, b->wal_len);                  /* no snapshot */
    variant(b, b->snap, b->snap_len, NULL, 0);                /* no log */
    variant(b, b->snap, 0, b->wal, b->wal_len);               /* empty snapshot */
    variant(b, b->snap, b->snap_len, b->wal, 0);              /* empty log */
    variant(b, b->wal, b->wal_len, b->snap, b->snap_len);     /* swapped */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/v", work);
    rm_rf(dir);
    mkdir(dir, 0755);
    spill(dir, "wal.svdb", b->wal, b->wal_len);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/snapshot.svdb");
    mkdir(dir, 0755); /* a directory where the snapshot should be */
    dir[strlen(dir) - strlen("/snapshot.svdb")] = '\0';
    try_open(dir);
    free(s);
    free(w);
}

static void crash_handler(int sig)
{
    (void)sig;
    static const char m[] = "corpus: a variant hung (alarm)\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(3);
    abort();
}

/* Builds a real collection and captures its files while still open, so the
 * log holds records (closing would checkpoint them away). */
static void make_base(base *b, const char *name, int index, int metric, int rows, int deletes, int persist_at,
                      int big_meta)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/base-%s", work, name);
    rm_rf(dir);
    snprintf(b->name, sizeof b->name, "%s", name);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.index = index;
    o.metric = metric;
    o.build_threads = 1;
    svdb *db;
    if (svdb_open(&db, dir, &o) != SVDB_OK) abort();
    for (int i = 0; i < rows; i++) {
        char id[32], meta[2048];
        snprintf(id, sizeof id, "id-%d-\xc3\xa9", i);
        if (big_meta) {
            int n = snprintf(meta, sizeof meta, "{\"i\": %d, \"pad\": \"", i);
            memset(meta + n, 'x', 1500);
            strcpy(meta + n + 1500, "\"}");
        } else {
            snprintf(meta, sizeof meta, "{\"i\": %d, \"tags\": [\"a\", %d]}", i, i % 3);
        }
        const char *ids[] = {id}, *metas[] = {i % 4 ? meta : NULL};
        float v[4] = {(float)i, 1.0f, (float)(i % 7), -2.0f};
        if (svdb_add_batch(db, 1, ids, v, 4, metas) != SVDB_OK) abort();
        if (i + 1 == persist_at && svdb_persist(db) != SVDB_OK) abort();
    }
    for (int i = 0; i < deletes; i++) {
        char id[32];
        snprintf(id, sizeof id, "id-%d-\xc3\xa9", i * 2);
        const char *ids[] = {id};
        if (svdb_delete(db, 1, ids, NULL) != SVDB_OK) abort();
    }
    char p[700];
    snprintf(p, sizeof p, "%s/snapshot.svdb", dir);
    b->snap = slurp(p, &b->snap_len);
    snprintf(p, sizeof p, "%s/wal.svdb", dir);
    b->wal = slurp(p, &b->wal_len);
    svdb_close(db);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKDIR [SEED]\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    if (argc > 2) rng = strtoull(argv[2], NULL, 10) | 1;
    mkdir(work, 0755);
    signal(SIGALRM, crash_handler);
    base bases[7];
    make_base(&bases[0], "empty", SVDB_INDEX_FLAT, SVDB_METRIC_L2, 0, 0, 0, 0);
    make_base(&bases[1], "log-only", SVDB_INDEX_FLAT, SVDB_METRIC_L2, 12, 0, 0, 0);
    make_base(&bases[2], "snapshot-only", SVDB_INDEX_FLAT, SVDB_METRIC_COSINE, 20, 0, 20, 0);
    make_base(&bases[3], "snap+log+deletes", SVDB_INDEX_FLAT, SVDB_METRIC_IP, 16, 3, 8, 0);
    make_base(&bases[4], "big-meta", SVDB_INDEX_FLAT, SVDB_METRIC_L2, 6, 1, 3, 1);
    make_base(&bases[5], "hnsw", SVDB_INDEX_HNSW, SVDB_METRIC_L2, 40, 4, 30, 0);
    make_base(&bases[6], "hnsw-snapshot", SVDB_INDEX_HNSW, SVDB_METRIC_COSINE, 60, 5, 65, 0);
    for (int i = 0; i < 7; i++) {
        unsigned long before = tried;
        damage(&bases[i]);
        printf("base %-18s %6lu variants\n", bases[i].name, tried - before);
        free(bases[i].snap);
        free(bases[i].wal);
    }
    printf("corpus: %lu damaged collections opened: %lu refused with an error, %lu opened and used, "
           "%lu errors without a message, 0 crashes\n",
           tried, refused, opened, bad_errors);
    printf("refusals by status:");
    for (int i = 1; i < 32; i++)
        if (by_status[i]) printf(" %s=%lu", svdb_strerror(-i), by_status[i]);
    printf("\n");
    rm_rf(work);
    return bad_errors ? 1 : 0;
}
