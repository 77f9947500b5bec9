/* Damaged files: truncated and bit-flipped snapshots, headers with absurd
 * values and valid checksums, torn or foreign logs, leftover temporaries.
 * Every case must end in a clear status or a clean recovery, never a crash,
 * and a failed open must leave the files as they were. */
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
#include <unistd.h>

#include "crc32c.h"
#include "helpers.h"
#include "svdb.h"

typedef struct corrupt_fx {
    char *dir, *snap, *wal, *tmp;
    unsigned char *snap_bytes, *wal_bytes; /* a consistent pair */
    size_t snap_len, wal_len;
    th_model base;     /* state in the snapshot */
    th_model steps[5]; /* state after 0..4 log records */
    size_t rec_end[5]; /* wal offset after 0..4 records */
} corrupt_fx;

static void put_files(corrupt_fx *f, const unsigned char *snap, size_t snap_len, const unsigned char *wal,
                      size_t wal_len)
{
    if (snap) assert_int_equal(th_write_file(f->snap, snap, snap_len), 0);
    if (wal) assert_int_equal(th_write_file(f->wal, wal, wal_len), 0);
}

static void restore(corrupt_fx *f) { put_files(f, f->snap_bytes, f->snap_len, f->wal_bytes, f->wal_len); }

/* Opens and expects `want` (a status, or SVDB_OK); for failures also checks
 * that the files were left untouched. */
static void expect_open(corrupt_fx *f, int want, const th_model *m)
{
    size_t sl0 = 0, wl0 = 0, sl1 = 0, wl1 = 0;
    unsigned char *s0 = th_read_file(f->snap, &sl0), *w0 = th_read_file(f->wal, &wl0);
    svdb *db = (svdb *)0x1;
    int rc = svdb_open(&db, f->dir, NULL);
    if (rc != want) fprintf(stderr, "open: got %d (%s), want %d\n", rc, svdb_errmsg(), want);
    assert_int_equal(rc, want);
    if (rc == SVDB_OK) {
        if (m) assert_true(th_check_db(db, m, 1));
        ASSERT_OK(svdb_close(db));
    } else {
        assert_null(db);
        assert_true(strlen(svdb_errmsg()) > 0);
        unsigned char *s1 = th_read_file(f->snap, &sl1), *w1 = th_read_file(f->wal, &wl1);
        assert_true((s0 == NULL) == (s1 == NULL) && sl0 == sl1 && (!s0 || memcmp(s0, s1, sl0) == 0));
        assert_true((w0 == NULL) == (w1 == NULL) && wl0 == wl1 && (!w0 || memcmp(w0, w1, wl0) == 0));
        free(s1);
        free(w1);
    }
    free(s0);
    free(w0);
}

static void run_op(svdb *db, th_model *m, int kind, size_t n, const char *const *ids, const float *v,
                   const char *const *metas)
{
    if (kind == TH_DELETE) {
        ASSERT_OK(svdb_delete(db, n, ids, NULL));
        for (size_t i = 0; i < n; i++) th_model_del(m, ids[i]);
    } else {
        ASSERT_OK(kind == TH_ADD ? svdb_add_batch(db, n, ids, v, m->dim, metas)
                                 : svdb_upsert_batch(db, n, ids, v, m->dim, metas));
        for (size_t i = 0; i < n; i++) th_model_put(m, ids[i], v + i * m->dim, metas ? metas[i] : NULL);
    }
}

/* A snapshot with 10 rows (3 deleted, so slots are reused) and a log with 4 records. */
static int setup(void **state)
{
    corrupt_fx *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir("corrupt");
    f->snap = th_path(f->dir, "snapshot.svdb");
    f->wal = th_path(f->dir, "wal.svdb");
    f->tmp = th_path(f->dir, "snapshot.svdb.tmp");
    svdb *db;
    if (th_open(&db, f->dir, 0, SVDB_METRIC_COSINE, 0) != SVDB_OK) return -1;
    th_model_init(&f->base, 4);
    const char *ids[] = {"a", "bb", "ccc", "d\xc3\xa9", "e", "f", "g", "h", "i", "j"};
    const char *metas[] = {"{\"x\":1}", NULL, "{}", "{\"s\":\"long text here\"}", NULL, NULL, "{\"n\":null}", NULL, NULL,
                           "{\"a\":[1,2]}"};
    float v[40];
    th_random(v, 40, 1);
    run_op(db, &f->base, TH_ADD, 10, ids, v, metas);
    const char *del[] = {"bb", "e", "h"};
    run_op(db, &f->base, TH_DELETE, 3, del, NULL, NULL);
    const char *more[] = {"k", "l", "m"};
    run_op(db, &f->base, TH_ADD, 3, more, v, metas);
    if (svdb_persist(db) != SVDB_OK) return -1;
    th_model_copy(&f->steps[0], &f->base);
    f->rec_end[0] = 32;
    th_model cur;
    th_model_copy(&cur, &f->base);
    float w[16];
    th_random(w, 16, 2);
    const char *r1[] = {"n1", "n2", "n3"};
    run_op(db, &cur, TH_ADD, 3, r1, w, metas);
    th_model_copy(&f->steps[1], &cur);
    const char *r2[] = {"a", "n4"};
    run_op(db, &cur, TH_UPSERT, 2, r2, w + 4, NULL);
    th_model_copy(&f->steps[2], &cur);
    const char *r3[] = {"n2", "ccc"};
    run_op(db, &cur, TH_DELETE, 2, r3, NULL, NULL);
    th_model_copy(&f->steps[3], &cur);
    const char *r4[] = {"n2", "zz"};
    run_op(db, &cur, TH_ADD, 2, r4, w + 8, metas + 2);
    th_model_copy(&f->steps[4], &cur);
    th_model_free(&cur);
    /* Copy the files as they are now: what a crash would leave. */
    f->snap_bytes = th_read_file(f->snap, &f->snap_len);
    f->wal_bytes = th_read_file(f->wal, &f->wal_len);
    svdb_close(db);
    size_t pos = 32;
    for (int i = 1; i <= 4; i++) {
        uint64_t len;
        memcpy(&len, f->wal_bytes + pos + 16, 8);
        pos += 24 + (size_t)len;
        f->rec_end[i] = pos;
    }
    if (pos != f->wal_len) return -1;
    restore(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    corrupt_fx *f = *state;
    th_rmrf(f->dir);
    free(f->dir);
    free(f->snap);
    free(f->wal);
    free(f->tmp);
    free(f->snap_bytes);
    free(f->wal_bytes);
    th_model_free(&f->base);
    for (int i = 0; i < 5; i++) th_model_free(&f->steps[i]);
    free(f);
    return 0;
}

static void test_corrupt__intact(void **state)
{
    corrupt_fx *f = *state;
    expect_open(f, SVDB_OK, &f->steps[4]);
    restore(f);
    expect_open(f, SVDB_OK, &f->steps[4]);
}

/* Snapshot header field offsets (lib/snapshot.c). */
enum {
    H_VERSION = 8, H_HBYTES = 12, H_UUID = 16, H_LAST_LSN = 24, H_NEXT_SEQ = 32, H_COUNT = 40, H_DIM = 48,
    H_METRIC = 52, H_VEC_OFF = 56, H_VEC_BYTES = 64, H_REC_OFF = 72, H_REC_BYTES = 80, H_VEC_CRC = 88,
    H_REC_CRC = 92, H_INDEX = 96, H_M = 100, H_EFC = 104, H_EFS = 108, H_GRAPH_BYTES = 112, H_GRAPH_CRC = 120,
    H_L0_OFF = 144, H_L0_BYTES = 152, H_LIVE = 160, H_CODES_OFF = 168, H_CODES_BYTES = 176
};

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void test_corrupt__snapshot_truncated(void **state)
{
    corrupt_fx *f = *state;
    const unsigned char *s = f->snap_bytes;
    uint64_t vec_off = get_u64(s + H_VEC_OFF), rec_off = get_u64(s + H_REC_OFF), rec_bytes = get_u64(s + H_REC_BYTES);
    assert_int_equal(vec_off, 4096);
    assert_int_equal(rec_off + rec_bytes, f->snap_len);
    size_t cuts[64], nc = 0;
    const size_t fixed[] = {0, 1, 7, 8, 12, 16, 24, 40, 48, 56, 88, 123, 124, 127, 128, 135, 136, 251, 252, 255, 256, 2048, 4095};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) cuts[nc++] = fixed[i];
    /* Every section boundary, and one byte either side. */
    const size_t bounds[] = {(size_t)vec_off, (size_t)rec_off, (size_t)(rec_off + rec_bytes) - 1};
    for (size_t i = 0; i < 3; i++) {
        cuts[nc++] = bounds[i] - 1;
        cuts[nc++] = bounds[i];
        cuts[nc++] = bounds[i] + 1;
    }
    for (size_t i = 0; i < nc; i++) {
        if (cuts[i] >= f->snap_len) continue;
        put_files(f, s, cuts[i], NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* A sweep over the whole body, and every record boundary on the way. */
    for (size_t cut = 4096; cut < f->snap_len; cut++) {
        put_files(f, s, cut, NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* Extra bytes at the end are damage too. */
    unsigned char *longer = malloc(f->snap_len + 8);
    memcpy(longer, s, f->snap_len);
    memset(longer + f->snap_len, 0, 8);
    put_files(f, longer, f->snap_len + 8, NULL, 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    free(longer);
    restore(f);
    expect_open(f, SVDB_OK, &f->steps[4]);
}

static void test_corrupt__snapshot_bit_flips(void **state)
{
    corrupt_fx *f = *state;
    unsigned char *b = malloc(f->snap_len);
    for (size_t off = 0; off < f->snap_len; off++) {
        if (off >= 256 && off < 4096) continue; /* unused header padding */
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, f->snap_bytes, f->snap_len);
            b[off] ^= (unsigned char)(1u << bit);
            put_files(f, b, f->snap_len, NULL, 0);
            expect_open(f, SVDB_ECORRUPT, NULL);
        }
    }
    free(b);
    restore(f);
    expect_open(f, SVDB_OK, &f->steps[4]);
}

static void patch32(unsigned char *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void patch64(unsigned char *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* Header fields with absurd values and correct checksums. */
static void test_corrupt__snapshot_bad_fields(void **state)
{
    corrupt_fx *f = *state;
    const unsigned char *s = f->snap_bytes;
    uint64_t count = get_u64(s + H_COUNT);
    struct {
        size_t off;
        int width;
        uint64_t value;
        int want;
    } cases[] = {
        {H_VERSION, 4, 3, SVDB_EVERSION},
        {H_VERSION, 4, 0, SVDB_EVERSION},
        {H_LIVE, 8, count + 1, SVDB_ECORRUPT},
        {H_LIVE, 8, count - 1, SVDB_ECORRUPT},
        {H_L0_OFF, 8, 0, SVDB_ECORRUPT},
        {H_L0_BYTES, 8, 64, SVDB_ECORRUPT},
        {H_CODES_OFF, 8, 0, SVDB_ECORRUPT},
        {H_CODES_BYTES, 8, 64, SVDB_ECORRUPT},
        {H_HBYTES, 4, 8192, SVDB_ECORRUPT},
        {H_COUNT, 8, count + 1, SVDB_ECORRUPT},
        {H_COUNT, 8, count - 1, SVDB_ECORRUPT},
        {H_COUNT, 8, 0, SVDB_ECORRUPT},
        {H_COUNT, 8, 1ull << 32, SVDB_ECORRUPT},
        {H_COUNT, 8, (1ull << 32) - 1, SVDB_ECORRUPT},
        {H_COUNT, 8, UINT64_MAX, SVDB_ECORRUPT},
        {H_COUNT, 8, 1ull << 62, SVDB_ECORRUPT},
        {H_DIM, 4, 0, SVDB_ECORRUPT},
        {H_DIM, 4, 3, SVDB_ECORRUPT},
        {H_DIM, 4, 5, SVDB_ECORRUPT},
        {H_DIM, 4, 65536, SVDB_ECORRUPT},
        {H_DIM, 4, 65537, SVDB_ECORRUPT},
        {H_DIM, 4, UINT32_MAX, SVDB_ECORRUPT},
        {H_METRIC, 4, 0, SVDB_ECORRUPT},
        {H_METRIC, 4, 4, SVDB_ECORRUPT},
        {H_VEC_OFF, 8, 0, SVDB_ECORRUPT},
        {H_VEC_OFF, 8, 8192, SVDB_ECORRUPT},
        {H_VEC_BYTES, 8, UINT64_MAX, SVDB_ECORRUPT},
        {H_VEC_BYTES, 8, 0, SVDB_ECORRUPT},
        {H_REC_OFF, 8, UINT64_MAX - 10, SVDB_ECORRUPT},
        {H_REC_OFF, 8, 0, SVDB_ECORRUPT},
        {H_REC_BYTES, 8, UINT64_MAX, SVDB_ECORRUPT},
        {H_REC_BYTES, 8, 1ull << 40, SVDB_ECORRUPT},
        {H_REC_BYTES, 8, 0, SVDB_ECORRUPT},
        {H_VEC_CRC, 4, 0x12345678, SVDB_ECORRUPT},
        {H_REC_CRC, 4, 0x12345678, SVDB_ECORRUPT},
        {H_NEXT_SEQ, 8, 0, SVDB_ECORRUPT},
        {H_NEXT_SEQ, 8, 1, SVDB_ECORRUPT},
        {H_INDEX, 4, 0, SVDB_ECORRUPT},
        {H_INDEX, 4, 3, SVDB_ECORRUPT},
        {H_INDEX, 4, 2, SVDB_ECORRUPT}, /* hnsw with m = 0 */
        {H_GRAPH_BYTES, 8, 16, SVDB_ECORRUPT},
        {H_GRAPH_BYTES, 8, UINT64_MAX, SVDB_ECORRUPT},
    };
    unsigned char *b = malloc(f->snap_len);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, s, f->snap_len);
        if (cases[i].width == 4) patch32(b, cases[i].off, (uint32_t)cases[i].value);
        else patch64(b, cases[i].off, cases[i].value);
        th_snapshot_fix_header(b);
        put_files(f, b, f->snap_len, NULL, 0);
        expect_open(f, cases[i].want, NULL);
    }
    /* A huge count with a file large enough to "fit" it must not allocate wildly either. */
    free(b);
    restore(f);
    expect_open(f, SVDB_OK, &f->steps[4]);
}

/* Damage inside the record and vector sections, with section checksums recomputed. */
static void test_corrupt__snapshot_bad_records(void **state)
{
    corrupt_fx *f = *state;
    const unsigned char *s = f->snap_bytes;
    size_t rec_off = (size_t)get_u64(s + H_REC_OFF), rec_bytes = (size_t)get_u64(s + H_REC_BYTES);
    size_t vec_off = (size_t)get_u64(s + H_VEC_OFF), vec_bytes = (size_t)get_u64(s + H_VEC_BYTES);
    unsigned char *b = malloc(f->snap_len);
    /* The first record: u64 seq, u32 id_len, u32 meta_len, id "a", meta {"x":1}. */
    enum { SEQ = 0, IDLEN = 8, MLEN = 12, ID = 16 };
    struct {
        size_t off;
        int width;
        uint64_t value;
    } cases[] = {
        {IDLEN, 4, 0},          {IDLEN, 4, 2},        {IDLEN, 4, 1025},       {IDLEN, 4, UINT32_MAX},
        {MLEN, 4, 0},           {MLEN, 4, 3},         {MLEN, 4, 1u << 21},    {MLEN, 4, UINT32_MAX - 1},
        {ID, 1, 0xff},          {ID, 1, 0},           {SEQ, 8, UINT64_MAX},   {ID + 1, 1, '['},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, s, f->snap_len);
        unsigned char *r = b + rec_off;
        if (cases[i].width == 4) patch32(r, cases[i].off, (uint32_t)cases[i].value);
        else if (cases[i].width == 8) patch64(r, cases[i].off, cases[i].value);
        else r[cases[i].off] = (unsigned char)cases[i].value;
        patch32(b, H_REC_CRC, svdb__crc32c(0, r, rec_bytes));
        th_snapshot_fix_header(b);
        put_files(f, b, f->snap_len, NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* Two rows with the same id: give a later one-byte id ("f") the first row's id ("a"). */
    memcpy(b, s, f->snap_len);
    {
        unsigned char *r = b + rec_off;
        size_t pos = 0, first = SIZE_MAX, dup = SIZE_MAX;
        while (pos < rec_bytes) {
            uint32_t l, m;
            memcpy(&l, r + pos + 8, 4);
            memcpy(&m, r + pos + 12, 4);
            if (l == 1 && first == SIZE_MAX) first = pos;
            else if (l == 1 && dup == SIZE_MAX) dup = pos;
            pos += 16 + l + (m == UINT32_MAX ? 0 : m);
        }
        assert_true(first != SIZE_MAX && dup != SIZE_MAX);
        r[dup + 16] = r[first + 16];
        patch32(b, H_REC_CRC, svdb__crc32c(0, r, rec_bytes));
        th_snapshot_fix_header(b);
        put_files(f, b, f->snap_len, NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* A sequence number at or past the counter. */
    memcpy(b, s, f->snap_len);
    {
        unsigned char *r = b + rec_off;
        patch64(r, 0, get_u64(s + H_NEXT_SEQ));
        patch32(b, H_REC_CRC, svdb__crc32c(0, r, rec_bytes));
        th_snapshot_fix_header(b);
        put_files(f, b, f->snap_len, NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* NaN and Inf in a stored vector. */
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        memcpy(b, s, f->snap_len);
        memcpy(b + vec_off + 4 * 5, &bad[i], 4);
        patch32(b, H_VEC_CRC, svdb__crc32c(0, b + vec_off, vec_bytes));
        th_snapshot_fix_header(b);
        put_files(f, b, f->snap_len, NULL, 0);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    free(b);
    restore(f);
    expect_open(f, SVDB_OK, &f->steps[4]);
}

static void test_corrupt__not_a_snapshot(void **state)
{
    corrupt_fx *f = *state;
    put_files(f, (const unsigned char *)"", 0, NULL, 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    unsigned char *junk = calloc(1, f->snap_len);
    th_random((float *)junk, f->snap_len / 4, 5);
    put_files(f, junk, f->snap_len, NULL, 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    memset(junk, 0, f->snap_len);
    put_files(f, junk, f->snap_len, NULL, 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    /* The log's bytes where the snapshot should be. */
    put_files(f, f->wal_bytes, f->wal_len, NULL, 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    free(junk);
    restore(f);
}

static void test_corrupt__wal_truncated(void **state)
{
    corrupt_fx *f = *state;
    /* Into the header: the log is damaged. */
    for (size_t cut = 0; cut < 32; cut++) {
        put_files(f, f->snap_bytes, f->snap_len, f->wal_bytes, cut);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* Anywhere after it: a torn tail, dropped; complete records survive. */
    for (size_t cut = 32; cut <= f->wal_len; cut++) {
        int complete = 0;
        while (complete < 4 && f->rec_end[complete + 1] <= cut) complete++;
        put_files(f, f->snap_bytes, f->snap_len, f->wal_bytes, cut);
        svdb *db;
        int rc = svdb_open(&db, f->dir, NULL);
        if (rc != SVDB_OK) fprintf(stderr, "cut %zu: %s\n", cut, svdb_errmsg());
        assert_int_equal(rc, SVDB_OK);
        /* The torn bytes were cut off the file. */
        assert_int_equal(th_file_size(f->wal), (long)f->rec_end[complete]);
        if (!th_check_db(db, &f->steps[complete], 1)) {
            fprintf(stderr, "cut %zu: expected the state after %d records\n", cut, complete);
            fail();
        }
        /* The recovered handle accepts writes at once. */
        const char *id[] = {"after"};
        float v[4] = {1, 2, 3, 4};
        ASSERT_OK(svdb_upsert_batch(db, 1, id, v, 4, NULL));
        ASSERT_OK(svdb_close(db));
    }
    restore(f);
}

static void test_corrupt__wal_garbage_tail(void **state)
{
    corrupt_fx *f = *state;
    unsigned char *b = malloc(f->wal_len + 4096);
    const size_t extra[] = {1, 7, 23, 24, 25, 100, 4096};
    for (int kind = 0; kind < 4; kind++)
        for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) {
            memcpy(b, f->wal_bytes, f->wal_len);
            size_t n = extra[e];
            if (kind == 0) memset(b + f->wal_len, 0, n);
            else if (kind == 1) memset(b + f->wal_len, 0xff, n);
            else if (kind == 2) {
                float noise[1025];
                th_random(noise, n / 4 + 1, (unsigned)n);
                memcpy(b + f->wal_len, noise, n);
            }
            else { /* the start of a copy of the last record: stale lsn, or torn */
                size_t last = f->rec_end[3], len = f->rec_end[4] - last;
                if (n > len) n = len;
                memcpy(b + f->wal_len, f->wal_bytes + last, n);
            }
            put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len + n);
            svdb *db;
            ASSERT_OK(svdb_open(&db, f->dir, NULL));
            assert_true(th_check_db(db, &f->steps[4], 1));
            assert_int_equal(th_file_size(f->wal), (long)f->wal_len);
            ASSERT_OK(svdb_close(db));
        }
    /* A whole duplicate of the last record (valid checksum, repeated lsn) is stale, not applied twice. */
    size_t last = f->rec_end[3], len = f->rec_end[4] - last;
    memcpy(b, f->wal_bytes, f->wal_len);
    memcpy(b + f->wal_len, f->wal_bytes + last, len);
    put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len + len);
    expect_open(f, SVDB_OK, &f->steps[4]);
    free(b);
    restore(f);
}

static void test_corrupt__wal_bit_flips(void **state)
{
    corrupt_fx *f = *state;
    unsigned char *b = malloc(f->wal_len);
    /* In the header: damaged. */
    for (size_t off = 0; off < 32; off++) {
        memcpy(b, f->wal_bytes, f->wal_len);
        b[off] ^= 0x10;
        put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* In record i: it and everything after it are dropped. */
    for (int rec = 1; rec <= 4; rec++)
        for (size_t off = f->rec_end[rec - 1]; off < f->rec_end[rec]; off++) {
            memcpy(b, f->wal_bytes, f->wal_len);
            b[off] ^= (unsigned char)(1u << (off % 8));
            put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len);
            svdb *db;
            int rc = svdb_open(&db, f->dir, NULL);
            if (rc != SVDB_OK) fprintf(stderr, "flip at %zu: %d %s\n", off, rc, svdb_errmsg());
            assert_int_equal(rc, SVDB_OK);
            if (!th_check_db(db, &f->steps[rec - 1], 1)) {
                fprintf(stderr, "flip at %zu (record %d)\n", off, rec);
                fail();
            }
            ASSERT_OK(svdb_close(db));
        }
    free(b);
    restore(f);
}

/* Builds a log record with a valid checksum. */
static size_t make_record(unsigned char *out, uint32_t type, uint64_t lsn, const unsigned char *payload, size_t len)
{
    uint64_t l = len;
    memcpy(out, &type, 4);
    memcpy(out + 8, &lsn, 8);
    memcpy(out + 16, &l, 8);
    memcpy(out + 24, payload, len);
    uint32_t crc = svdb__crc32c(0, out, 4);
    crc = svdb__crc32c(crc, out + 8, 16);
    crc = svdb__crc32c(crc, payload, len);
    memcpy(out + 4, &crc, 4);
    return 24 + len;
}

static void test_corrupt__wal_bad_records(void **state)
{
    corrupt_fx *f = *state;
    unsigned char *b = malloc(f->wal_len + 4096);
    uint64_t last_lsn;
    memcpy(&last_lsn, f->wal_bytes + f->rec_end[3] + 8, 8);
    /* A valid-checksum record whose content is wrong is corruption, not a torn tail. */
    unsigned char payload[256];
    size_t plen;
    struct {
        uint32_t type;
        int what;
    } cases[] = {{4, 0}, {0, 0}, {2, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 0}, {3, 5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(payload, 0, sizeof payload);
        plen = 16;
        if (cases[c].what == 1) { /* delete of an id that does not exist */
            uint64_t n = 1;
            uint32_t l = 7;
            memcpy(payload, &n, 8);
            memcpy(payload + 8, &l, 4);
            memcpy(payload + 12, "missing", 7);
            plen = 19;
        } else if (cases[c].what == 2 || cases[c].what == 3) { /* put of 1 row with the wrong dim / bad meta */
            uint32_t dim = cases[c].what == 2 ? 3 : 4, z = 0, idl = 1, ml = cases[c].what == 3 ? 3 : UINT32_MAX;
            uint64_t n = 1;
            memcpy(payload, &dim, 4);
            memcpy(payload + 4, &z, 4);
            memcpy(payload + 8, &n, 8);
            float v[4] = {1, 1, 1, 1};
            memcpy(payload + 16, v, dim * 4);
            size_t p = 16 + dim * 4;
            memcpy(payload + p, &idl, 4);
            memcpy(payload + p + 4, &ml, 4);
            payload[p + 8] = 'q';
            plen = p + 9;
            if (cases[c].what == 3) memcpy(payload + plen, "[1]", 3), plen += 3;
        } else if (cases[c].what == 4) { /* delete listing the same id twice */
            uint64_t n = 2;
            uint32_t l = 1;
            memcpy(payload, &n, 8);
            memcpy(payload + 8, &l, 4);
            payload[12] = 'a';
            memcpy(payload + 13, &l, 4);
            payload[17] = 'a';
            plen = 18;
        } else if (cases[c].what == 5) { /* links record: a row whose list runs past the payload */
            uint64_t put_lsn = last_lsn, n = 1;
            uint32_t row[4] = {0, 0, 0, 9};
            memcpy(payload, &put_lsn, 8);
            memcpy(payload + 8, &n, 8);
            memcpy(payload + 16, row, 16);
            plen = 32;
        }
        memcpy(b, f->wal_bytes, f->wal_len);
        size_t rl = make_record(b + f->wal_len, cases[c].type, last_lsn + 1, payload, plen);
        put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len + rl);
        expect_open(f, SVDB_ECORRUPT, NULL);
    }
    /* A log from another collection. */
    char *other = th_tmpdir("corrupt-other");
    svdb *db;
    ASSERT_OK(svdb_open(&db, other, NULL));
    ASSERT_OK(svdb_close(db));
    char *owal = th_path(other, "wal.svdb");
    size_t olen;
    unsigned char *ob = th_read_file(owal, &olen);
    put_files(f, f->snap_bytes, f->snap_len, ob, olen);
    expect_open(f, SVDB_ECORRUPT, NULL);
    free(ob);
    free(owal);
    th_rmrf(other);
    free(other);
    /* A newer log format version. */
    memcpy(b, f->wal_bytes, f->wal_len);
    patch32(b, 8, 4);
    uint32_t crc = svdb__crc32c(0, b, 28);
    memcpy(b + 28, &crc, 4);
    put_files(f, f->snap_bytes, f->snap_len, b, f->wal_len);
    expect_open(f, SVDB_EVERSION, NULL);
    /* A missing log. */
    restore(f);
    assert_int_equal(unlink(f->wal), 0);
    expect_open(f, SVDB_ECORRUPT, NULL);
    free(b);
    restore(f);
}

/* An old snapshot with a newer log: records are missing in between. */
static void test_corrupt__stale_snapshot(void **state)
{
    corrupt_fx *f = *state;
    restore(f);
    svdb *db;
    ASSERT_OK(svdb_open(&db, f->dir, NULL));
    ASSERT_OK(svdb_persist(db));
    const char *id[] = {"later"};
    float v[4] = {4, 3, 2, 1};
    ASSERT_OK(svdb_add_batch(db, 1, id, v, 4, NULL));
    size_t wl;
    unsigned char *w = th_read_file(f->wal, &wl);
    ASSERT_OK(svdb_close(db));
    put_files(f, f->snap_bytes, f->snap_len, w, wl);
    expect_open(f, SVDB_ECORRUPT, NULL);
    free(w);
    restore(f);
}

static void test_corrupt__leftover_tmp(void **state)
{
    corrupt_fx *f = *state;
    assert_int_equal(th_write_file(f->tmp, "half a snapshot", 15), 0);
    expect_open(f, SVDB_OK, &f->steps[4]);
    assert_true(th_file_size(f->tmp) < 0);
    /* A full, valid-looking tmp is not used either: the rename never happened. */
    restore(f);
    assert_int_equal(th_write_file(f->tmp, f->snap_bytes, f->snap_len), 0);
    expect_open(f, SVDB_OK, &f->steps[4]);
    assert_true(th_file_size(f->tmp) < 0);
    restore(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_corrupt__intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__snapshot_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__snapshot_bit_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__snapshot_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__snapshot_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__not_a_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__wal_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__wal_garbage_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__wal_bit_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__wal_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__stale_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt__leftover_tmp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
