/* Opens a collection made of arbitrary bytes: the input is split into a
 * snapshot and a log at a point given by its first two bytes. Opening must
 * fail cleanly or succeed with a usable collection; never crash, hang, leak
 * or allocate more than the files justify. The low bit of the second byte
 * leaves the vector and link checksums to the check after open (as for a
 * large collection): a search then runs before that check, on whatever the
 * file holds, and must stay memory-safe. */
#include "fuzz_common.h"
#include "snapshot.h"
#include "svdb.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (size - 1);
    const char *dir = fz_dir();
    fz_write(dir, "snapshot.svdb", data + 2, split);
    fz_write(dir, "wal.svdb", data + 2 + split, size - 2 - split);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db = NULL;
    int deferred = data[1] & 1;
    svdb__snapshot_defer_bytes = deferred ? 1 : (size_t)64 << 20;
    if (svdb_open(&db, dir, &o) == SVDB_OK && deferred) {
        uint32_t d0 = 0;
        svdb_dim(db, &d0);
        if (d0 > 0 && d0 <= 4096) {
            float *q = calloc(d0, sizeof *q);
            q[0] = 1.0f;
            svdb_hit *hits = NULL;
            size_t nh = 0;
            svdb_search(db, q, d0, 3, NULL, &hits, &nh); /* before the check: any result, no crash */
            svdb_hits_free(hits);
            free(q);
        }
        if (svdb_verify(db) != SVDB_OK) {
            svdb_close(db);
            db = NULL;
        }
    }
    if (db) {
        size_t n = 0, nids = 0;
        uint32_t dim = 0;
        svdb_count(db, &n);
        svdb_dim(db, &dim);
        char **ids = NULL;
        if (svdb_ids(db, &ids, &nids) == SVDB_OK && nids != n) abort();
        if (dim > 0 && dim <= 4096) {
            float *q = calloc(dim, sizeof *q);
            q[0] = 1.0f;
            svdb_hit *hits = NULL;
            size_t nh = 0;
            if (svdb_search(db, q, dim, 3, NULL, &hits, &nh) == SVDB_OK && nh != (n < 3 ? n : 3)) abort();
            svdb_hits_free(hits);
            if (nids) {
                char *meta = NULL;
                if (svdb_get(db, ids[0], q, dim, &meta) != SVDB_OK) abort();
                svdb_free(meta);
            }
            free(q);
        }
        svdb_ids_free(ids);
        svdb_close(db);
    }
    return 0;
}
