/* Snapshot format 2: the vectors and level-0 links are read in place from a
 * private map of the snapshot, so a large collection opens without reading
 * them; their checksums are then checked on a thread after open
 * (svdb_verify). Covers the deferred check finding damage, the link
 * checks done at open, writes to mapped rows (f32 vectors, int8 codes),
 * checkpoints that move the rows to the new file (and let the old one go),
 * and packing once a quarter of the slots are free. */
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

#include "crc32c.h"
#include "helpers.h"
#include "collection.h"
#include "indexer.h"
#include "snapshot.h"
#include "svdb.h"

/* Snapshot header offsets (docs/format.md). */
enum { H_COUNT = 40, H_VEC_OFF = 56, H_VEC_BYTES = 64, H_L0_CRC = 140, H_L0_OFF = 144, H_CODES_OFF = 168, H_CODES_BYTES = 176 };
#define DIM 8
#define M 4 /* level-0 blocks of 2M + 1 u32 */

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int storage;        /* of the collections run_churn creates */
static uint32_t hnsw_m = M; /* and their M */

static int open_hnsw(svdb **db, const char *dir, int index, uint32_t dim)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.storage = index == SVDB_INDEX_HNSW ? storage : SVDB_STORAGE_DEFAULT;
    o.dim = dim;
    o.index = index;
    o.hnsw_m = hnsw_m;
    o.hnsw_ef_construction = 32;
    o.build_threads = 1;
    return svdb_open(db, dir, &o);
}

/* n rows "r<i>" with seeded vectors, added in batches of 500; model updated. */
static void add_rows(svdb *db, th_model *m, size_t from, size_t n, uint32_t dim, unsigned seed)
{
    float *v = malloc(500 * dim * sizeof *v);
    char idb[500][24];
    const char *ids[500];
    for (size_t b = from; b < from + n; b += 500) {
        size_t c = from + n - b < 500 ? from + n - b : 500;
        th_random(v, c * dim, seed + (unsigned)b);
        for (size_t i = 0; i < c; i++) {
            snprintf(idb[i], sizeof idb[i], "r%zu", b + i);
            ids[i] = idb[i];
            th_model_put(m, ids[i], v + i * dim, NULL);
        }
        assert_int_equal(svdb_add_batch(db, c, ids, v, dim, NULL), SVDB_OK);
    }
    free(v);
}

static void del_rows(svdb *db, th_model *m, size_t from, size_t to, size_t step)
{
    for (size_t i = from; i < to; i += step) {
        char id[24];
        snprintf(id, sizeof id, "r%zu", i);
        if (th_model_find(m, id) < 0) continue; /* deleted before */
        const char *ids[1] = {id};
        size_t nd;
        assert_int_equal(svdb_delete(db, 1, ids, &nd), SVDB_OK);
        assert_int_equal(nd, 1);
        th_model_del(m, id);
    }
}

/* Whether this process still maps a snapshot that was replaced (its disk
 * space then stays in use until the map goes). */
static int maps_deleted_snapshot(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "snapshot.svdb") && strstr(line, "(deleted)")) found = 1;
    fclose(f);
    return found;
}

/* A small HNSW collection, closed; its snapshot bytes in *snap. */
typedef struct fx {
    char *dir, *path;
    th_model m;
    unsigned char *snap;
    size_t len;
} fx;

static int setup_storage(void **state, int st)
{
    fx *f = calloc(1, sizeof *f);
    storage = st;
    f->dir = th_tmpdir("mapped");
    f->path = th_path(f->dir, "snapshot.svdb");
    th_model_init(&f->m, DIM);
    svdb *db;
    if (open_hnsw(&db, f->dir, SVDB_INDEX_HNSW, DIM) != SVDB_OK) return -1;
    add_rows(db, &f->m, 0, 300, DIM, 1);
    if (svdb_close(db) != SVDB_OK) return -1;
    f->snap = th_read_file(f->path, &f->len);
    storage = SVDB_STORAGE_DEFAULT;
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_storage(state, SVDB_STORAGE_DEFAULT); }
static int setup_int8(void **state) { return setup_storage(state, SVDB_STORAGE_INT8); }

static int teardown(void **state)
{
    fx *f = *state;
    svdb__snapshot_defer_bytes = (size_t)64 << 20;
    th_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f->snap);
    th_model_free(&f->m);
    free(f);
    return 0;
}

static const char *probe_id = "r7";

static void test_mapped__intact(void **state)
{
    fx *f = *state;
    svdb__snapshot_defer_bytes = 1; /* every snapshot's check runs after open */
    svdb *db;
    assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    assert_int_equal(svdb_verify(db), SVDB_OK);
    assert_int_equal(svdb_verify(db), SVDB_OK); /* again: the same verdict */
    assert_true(th_check_db(db, &f->m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(svdb_verify(NULL), SVDB_EMISUSE);
}

/* Damage the check after open finds: every later call fails with it, and
 * no checkpoint copies the damage. */
static void expect_found_later(fx *f, const unsigned char *bytes, const char *what)
{
    assert_int_equal(th_write_file(f->path, bytes, f->len), 0);
    svdb__snapshot_defer_bytes = 1;
    svdb *db;
    assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    assert_int_equal(svdb_verify(db), SVDB_ECORRUPT);
    assert_non_null(strstr(svdb_errmsg(), what));
    assert_non_null(strstr(svdb_errmsg(), "after open"));
    float q[DIM] = {0};
    svdb_hit *hits = NULL;
    size_t nh = 0;
    assert_int_equal(svdb_search(db, q, DIM, 3, NULL, &hits, &nh), SVDB_ECORRUPT);
    assert_non_null(strstr(svdb_errmsg(), what));
    const char *id = "new";
    assert_int_equal(svdb_add_batch(db, 1, &id, q, DIM, NULL), SVDB_ECORRUPT);
    assert_int_equal(svdb_get(db, probe_id, NULL, 0, NULL), SVDB_ECORRUPT);
    assert_int_equal(svdb_persist(db), SVDB_ECORRUPT);
    svdb_close(db); /* frees the handle whatever it returns */
    size_t len;
    unsigned char *now = th_read_file(f->path, &len);
    assert_int_equal(len, f->len);
    assert_memory_equal(now, bytes, len);
    free(now);
    /* Checked at open (the default size threshold), the same damage refuses the open. */
    svdb__snapshot_defer_bytes = (size_t)64 << 20;
    assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_ECORRUPT);
    assert_non_null(strstr(svdb_errmsg(), what));
}

static void test_mapped__damage_found_after_open(void **state)
{
    fx *f = *state;
    unsigned char *b = malloc(f->len);
    uint64_t vec = get64(f->snap + H_VEC_OFF), l0 = get64(f->snap + H_L0_OFF);
    /* a flipped bit in a vector */
    memcpy(b, f->snap, f->len);
    b[vec + 4 * DIM * 5 + 2] ^= 0x10;
    expect_found_later(f, b, "vector section checksum mismatch");
    /* a NaN, with the checksum made to match */
    memcpy(b, f->snap, f->len);
    float nan = NAN;
    memcpy(b + vec + 4 * 3, &nan, 4);
    uint32_t crc = svdb__crc32c(0, b + vec, (size_t)get64(f->snap + H_VEC_BYTES));
    memcpy(b + 88, &crc, 4);
    th_snapshot_fix_header(b);
    expect_found_later(f, b, "NaN or Inf");
    /* a link changed to another valid row: only the checksum tells */
    memcpy(b, f->snap, f->len);
    uint32_t link;
    memcpy(&link, b + l0 + (2 * M + 1) * 4 * 10 + 4, 4);
    link ^= 1;
    memcpy(b + l0 + (2 * M + 1) * 4 * 10 + 4, &link, 4);
    expect_found_later(f, b, "link section checksum mismatch");
    free(b);
}

/* An int8 collection's codes are read in place too, and checked after open. */
static void test_mapped__code_damage_found_after_open(void **state)
{
    fx *f = *state;
    uint64_t codes = get64(f->snap + H_CODES_OFF), bytes = get64(f->snap + H_CODES_BYTES);
    assert_int_equal(bytes, 300 * (DIM + 8)); /* per row: min, step, a byte per component */
    unsigned char *b = malloc(f->len);
    memcpy(b, f->snap, f->len);
    b[codes + (DIM + 8) * 20 + 9] ^= 0x01;
    expect_found_later(f, b, "code section checksum mismatch");
    free(b);
    /* intact, it opens and matches the model */
    assert_int_equal(th_write_file(f->path, f->snap, f->len), 0);
    svdb *db;
    assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    assert_int_equal(svdb_verify(db), SVDB_OK);
    assert_true(th_check_db(db, &f->m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
}

/* Links are checked at open, before anything reads them, whatever the size. */
static void test_mapped__links_checked_at_open(void **state)
{
    fx *f = *state;
    unsigned char *b = malloc(f->len);
    uint64_t l0 = get64(f->snap + H_L0_OFF), n = get64(f->snap + H_COUNT);
    size_t bw = (2 * M + 1) * 4, l0_bytes = (size_t)n * bw;
    struct {
        size_t row, word;
        uint32_t value;
    } cases[] = {
        {10, 0, 2 * M + 1},   /* more links than 2M */
        {10, 1, (uint32_t)n}, /* a link past the last row */
        {10, 2 * M, 0xFFFFFFFFu},
        {299, 2 * M, (uint32_t)n + 5}, /* an unused entry past the last row */
    };
    svdb__snapshot_defer_bytes = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, f->snap, f->len);
        memcpy(b + l0 + cases[i].row * bw + 4 * cases[i].word, &cases[i].value, 4);
        uint32_t crc = svdb__crc32c(0, b + l0, l0_bytes);
        memcpy(b + H_L0_CRC, &crc, 4);
        th_snapshot_fix_header(b);
        assert_int_equal(th_write_file(f->path, b, f->len), 0);
        svdb *db = NULL;
        assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_ECORRUPT);
        assert_non_null(strstr(svdb_errmsg(), "level-0 links"));
        assert_null(db);
    }
    free(b);
    assert_int_equal(th_write_file(f->path, f->snap, f->len), 0);
    svdb *db;
    assert_int_equal(open_hnsw(&db, f->dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    assert_true(th_check_db(db, &f->m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
}

/* Writes to mapped rows, checkpoints that move the rows to the new file,
 * packing after many deletes; the model holds throughout and no replaced
 * snapshot stays mapped. */
static void run_churn(int index, uint32_t dim, size_t n)
{
    char *dir = th_tmpdir("mapped-churn");
    th_model m;
    th_model_init(&m, dim);
    svdb *db;
    assert_int_equal(open_hnsw(&db, dir, index, dim), SVDB_OK);
    add_rows(db, &m, 0, n, dim, 10);
    assert_int_equal(svdb_close(db), SVDB_OK);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(open_hnsw(&db, dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
        assert_true(th_check_db(db, &m, 1));
        /* upserts write into mapped rows (a private copy of their page) */
        float *v = malloc(dim * sizeof *v);
        for (size_t i = (size_t)round; i < n; i += 97) {
            char id[24];
            snprintf(id, sizeof id, "r%zu", i);
            if (th_model_find(&m, id) < 0) continue;
            th_random(v, dim, 1000 + (unsigned)i + 7 * (unsigned)round);
            const char *ids[1] = {id};
            assert_int_equal(svdb_upsert_batch(db, 1, ids, v, dim, NULL), SVDB_OK);
            th_model_put(&m, id, v, NULL);
        }
        free(v);
        del_rows(db, &m, (size_t)round, n, 11); /* about 9% of the slots: kept in place */
        assert_int_equal(svdb_persist(db), SVDB_OK);
        assert_false(maps_deleted_snapshot());
        assert_true(th_check_db(db, &m, 1));
        add_rows(db, &m, n * (size_t)(round + 1), n / 20, dim, 20 + (unsigned)round); /* reuse free slots */
        assert_int_equal(svdb_persist(db), SVDB_OK);
        assert_false(maps_deleted_snapshot());
        assert_true(th_check_db(db, &m, 1));
        assert_int_equal(svdb_close(db), SVDB_OK);
    }
    /* Deleting most rows packs the file, and the process lets the old one go. */
    assert_int_equal(open_hnsw(&db, dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    char *path = th_path(dir, "snapshot.svdb");
    long before = th_file_size(path);
    del_rows(db, &m, 0, n, 2);
    del_rows(db, &m, 1, n, 4);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    assert_false(maps_deleted_snapshot());
    long after = th_file_size(path);
    printf("snapshot bytes: %ld, %ld after deleting 3/4 of the first rows\n", before, after);
    assert_true(after < before / 2);
    assert_true(th_check_db(db, &m, 1));
    add_rows(db, &m, 10 * n, n / 10, dim, 40);
    assert_int_equal(svdb_persist(db), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    assert_int_equal(open_hnsw(&db, dir, SVDB_INDEX_DEFAULT, 0), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    /* Searches find rows by their own vector, and every distance they return
     * is exact (read from the mapped originals). On random 1024-d rows,
     * after deleting most of them, an HNSW graph leaves a few rows
     * unreachable (about 2% at M = 16, ef_construction = 32, before
     * snapshot format 2 as well; more with int8 codes), so HNSW needs 80%
     * there, flat all. */
    svdb_search_options so;
    svdb_search_options_init(&so, SVDB_SEARCH_OPTIONS_VERSION);
    so.ef = 200;
    size_t asked = 0, found = 0;
    float *got = malloc(dim * sizeof *got);
    for (size_t i = 0; i < m.n; i += 7) {
        svdb_hit *hits = NULL;
        size_t nh = 0;
        assert_int_equal(svdb_search(db, m.rows[i].vec, dim, 1, &so, &hits, &nh), SVDB_OK);
        assert_int_equal(nh, 1);
        asked++;
        found += strcmp(hits[0].id, m.rows[i].id) == 0;
        assert_int_equal(svdb_get(db, hits[0].id, got, dim, NULL), SVDB_OK);
        double d2 = 0.0;
        for (uint32_t k = 0; k < dim; k++) d2 += ((double)got[k] - m.rows[i].vec[k]) * ((double)got[k] - m.rows[i].vec[k]);
        assert_true(fabs(d2 - hits[0].distance) <= 1e-3 * (1.0 + d2));
        svdb_hits_free(hits);
    }
    free(got);
    printf("%zu of %zu rows found by their own vector\n", found, asked);
    assert_true(index == SVDB_INDEX_FLAT ? found == asked : found * 10 >= asked * 8);
    assert_int_equal(svdb_close(db), SVDB_OK);
    free(path);
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

/* 1024-d rows: 1024 to a store chunk, so 5000 rows fill several chunks that
 * point into the map. */
static void test_mapped__flat_churn(void **state)
{
    (void)state;
    run_churn(SVDB_INDEX_FLAT, 1024, th_slow_tool() ? 1200 : 5000);
}

/* 17,000 rows fill a chunk of 16,384 level-0 blocks. */
static void test_mapped__hnsw_churn(void **state)
{
    (void)state;
    run_churn(SVDB_INDEX_HNSW, 4, th_slow_tool() ? 2000 : 17000);
}

/* int8 codes of 1024-d rows: 1024 to a chunk, mapped from the snapshot's
 * code section like f32 rows; the originals from its vector section. */
static void test_mapped__int8_churn(void **state)
{
    (void)state;
    storage = SVDB_STORAGE_INT8;
    hnsw_m = 16; /* random 1024-d rows: M = 4 leaves rows unreachable after mass deletes */
    run_churn(SVDB_INDEX_HNSW, 1024, th_slow_tool() ? 600 : 4000);
    storage = SVDB_STORAGE_DEFAULT;
    hnsw_m = M;
}

static void link_now(svdb *db)
{
    svdb_indexer *ix = svdb__indexer_of(db);
    svdb__indexer_pause(ix, 0);
    assert_int_equal(svdb__indexer_wait(ix), SVDB_OK);
}

/* Checkpoints while the background indexer links rows: when it linked some
 * between the snapshot write and the re-pointing, the graph's chunks are
 * copied out of the old map instead of pointed at the new one. Either way
 * no replaced snapshot stays mapped and nothing is lost. */
static void test_mapped__checkpoints_beside_the_indexer(void **state)
{
    (void)state;
    char *dir = th_tmpdir("mapped-bg");
    th_model m;
    th_model_init(&m, 4);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = 4;
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_m = M;
    o.hnsw_ef_construction = 16;
    o.background_indexing = 1;
    svdb *db;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    size_t n = th_slow_tool() ? 1500 : 40000, more = th_slow_tool() ? 300 : 2000;
    add_rows(db, &m, 0, n, 4, 50);
    assert_int_equal(svdb_index_wait(db), SVDB_OK);
    assert_int_equal(svdb_persist(db), SVDB_OK); /* the graph's chunks now in the map */
    svdb_indexer *ix = svdb__indexer_of(db);
    for (int round = 0; round < 6; round++) {
        /* Odd rounds: rows wait, unlinked, until the checkpoint has written
         * the snapshot; the hook then lets the indexer link them. */
        if (round % 2) svdb__indexer_pause(ix, 1);
        add_rows(db, &m, n + (size_t)round * more, more, 4, 60 + (unsigned)round);
        del_rows(db, &m, (size_t)round, n, 37);
        if (round % 2) svdb__checkpoint_hook = link_now;
        assert_int_equal(svdb_persist(db), SVDB_OK);
        svdb__checkpoint_hook = NULL;
        assert_false(maps_deleted_snapshot());
        size_t pending = 1;
        assert_int_equal(svdb_index_pending(db, &pending), SVDB_OK);
        if (round % 2) assert_int_equal(pending, 0);
    }
    assert_int_equal(svdb_index_wait(db), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    o.background_indexing = 0;
    assert_int_equal(svdb_open(&db, dir, &o), SVDB_OK);
    assert_true(th_check_db(db, &m, 1));
    assert_int_equal(svdb_close(db), SVDB_OK);
    th_model_free(&m);
    th_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mapped__intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapped__damage_found_after_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapped__links_checked_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapped__code_damage_found_after_open, setup_int8, teardown),
        cmocka_unit_test(test_mapped__flat_churn),
        cmocka_unit_test(test_mapped__hnsw_churn),
        cmocka_unit_test(test_mapped__int8_churn),
        cmocka_unit_test(test_mapped__checkpoints_beside_the_indexer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
