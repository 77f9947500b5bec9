/* Metadata validation on arbitrary bytes, through the public add path and
 * the internal checkers, which must agree: what the write check
 * (svdb__meta_check_new) accepts is stored, what the stored-text check
 * (svdb__meta_check, log replay) refuses is not; the write path may use
 * either. Whatever is stored must replay. */
#include "fuzz_common.h"
#include "svdb.h"

#include <stdint.h>

int svdb__meta_check(const char *json, size_t len, size_t row);
int svdb__meta_check_new(const char *json, size_t len, size_t row);

static svdb *db;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) {
        char path[600];
        snprintf(path, sizeof path, "%s/meta", fz_dir());
        svdb_open_options o;
        svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
        o.dim = 2;
        if (svdb_open(&db, path, &o) != SVDB_OK) abort();
    }
    char *json = malloc(size + 1);
    memcpy(json, data, size);
    json[size] = '\0';
    size_t len = strlen(json);
    int ok = svdb__meta_check(json, len, 0) == SVDB_OK;
    int ok_new = svdb__meta_check_new(json, len, 0) == SVDB_OK;
    if (ok_new && !ok) abort(); /* the write check is the stricter one */
    const char *ids[] = {"m"};
    const char *metas[] = {json};
    float v[2] = {1, 2};
    int rc = svdb_upsert_batch(db, 1, ids, v, 2, metas);
    if (ok_new && rc != SVDB_OK) abort();
    if (!ok && rc == SVDB_OK) abort();
    if (rc == SVDB_OK) {
        char *back = NULL;
        if (svdb_get(db, "m", NULL, 0, &back) != SVDB_OK || strcmp(back, json) != 0) abort();
        svdb_free(back);
    }
    free(json);
    return 0;
}
