/* Metadata validation on arbitrary bytes, through the public add path and
 * the internal checker, which must agree. */
#include "fuzz_common.h"
#include "svdb.h"

#include <stdint.h>

int svdb__meta_check(const char *json, size_t len, size_t row);

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
    const char *ids[] = {"m"};
    const char *metas[] = {json};
    float v[2] = {1, 2};
    int rc = svdb_upsert_batch(db, 1, ids, v, 2, metas);
    if ((rc == SVDB_OK) != ok) abort();
    if (rc == SVDB_OK) {
        char *back = NULL;
        if (svdb_get(db, "m", NULL, 0, &back) != SVDB_OK || strcmp(back, json) != 0) abort();
        svdb_free(back);
    }
    free(json);
    return 0;
}
