/* Minimal C use of libsvdb: open, add, search, get, persist, close. */
#include <svdb.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != SVDB_OK) {                                                                      \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, svdb_strerror(rc_), svdb_errmsg());     \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "demo_db";
    svdb_open_options opts;
    CHECK(svdb_open_options_init(&opts, SVDB_OPEN_OPTIONS_VERSION));
    opts.dim = 3;
    svdb *db = NULL;
    CHECK(svdb_open(&db, path, &opts));
    const char *ids[] = {"apple", "banana", "cherry"};
    const float vecs[] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const char *metas[] = {"{\"color\": \"red\"}", "{\"color\": \"yellow\"}", NULL};
    CHECK(svdb_upsert_batch(db, 3, ids, vecs, 3, metas));
    const float q[] = {0.9f, 0.1f, 0};
    svdb_hit *hits = NULL;
    size_t n = 0;
    CHECK(svdb_search(db, q, 3, 2, NULL, &hits, &n));
    printf("libsvdb %s (SIMD path: %s)\n", svdb_version(), svdb_simd_path());
    for (size_t i = 0; i < n; i++) printf("  %s  %.4f\n", hits[i].id, hits[i].distance);
    svdb_hits_free(hits);
    char *meta = NULL;
    CHECK(svdb_get(db, "apple", NULL, 0, &meta));
    printf("apple -> %s\n", meta ? meta : "(no metadata)");
    svdb_free(meta);
    CHECK(svdb_close(db));
    return 0;
}
