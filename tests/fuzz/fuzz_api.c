/* Random sequences of API calls checked against a simple in-memory model of
 * ids, vectors and metadata, including close/reopen and persist. */
#include "fuzz_common.h"
#include "svdb.h"

#include <math.h>
#include <stdint.h>

#define NID 16
#define DIM 3

typedef struct {
    int present;
    float v[DIM];
    int meta; /* -1: none, else the metadata is {"m":meta} */
} row;

static row model[NID];
static svdb *db;
static char path[600];

static void reopen(void)
{
    if (db && svdb_close(db) != SVDB_OK) abort();
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = DIM;
    if (svdb_open(&db, path, &o) != SVDB_OK) abort();
}

static void check_all(void)
{
    size_t n = 0, want = 0;
    if (svdb_count(db, &n) != SVDB_OK) abort();
    for (int i = 0; i < NID; i++) {
        want += (size_t)model[i].present;
        char id[8], *meta = NULL;
        snprintf(id, sizeof id, "k%d", i);
        float v[DIM];
        int rc = svdb_get(db, id, v, DIM, &meta);
        if (model[i].present != (rc == SVDB_OK)) abort();
        if (rc == SVDB_OK) {
            if (memcmp(v, model[i].v, sizeof v) != 0) abort();
            char expect[32];
            snprintf(expect, sizeof expect, "{\"m\":%d}", model[i].meta);
            if ((model[i].meta < 0) != (meta == NULL)) abort();
            if (meta && strcmp(meta, expect) != 0) abort();
        }
        svdb_free(meta);
    }
    if (n != want) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) snprintf(path, sizeof path, "%s/api", fz_dir());
    if (db) svdb_close(db);
    db = NULL;
    fz_unlink(path, "snapshot.svdb");
    fz_unlink(path, "wal.svdb");
    memset(model, 0, sizeof model);
    reopen();
    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t op = data[i] % 7, arg = data[i + 1];
        i += 2;
        int nrows = 1 + arg % 3;
        const char *ids[3];
        char idbuf[3][8], metabuf[3][32];
        const char *metas[3];
        float v[3 * DIM];
        for (int r = 0; r < nrows; r++) {
            int k = (arg / 3 + r * 5) % NID;
            snprintf(idbuf[r], sizeof idbuf[r], "k%d", k);
            ids[r] = idbuf[r];
            for (int d = 0; d < DIM; d++) v[r * DIM + d] = (float)((arg * 31 + r * 7 + d * 3) % 17) - 8.0f;
            snprintf(metabuf[r], sizeof metabuf[r], "{\"m\":%d}", arg);
            metas[r] = (arg & 4) ? NULL : metabuf[r];
        }
        if (op == 0 || op == 1) { /* add / upsert */
            int rc = op == 0 ? svdb_add_batch(db, (size_t)nrows, ids, v, DIM, metas)
                             : svdb_upsert_batch(db, (size_t)nrows, ids, v, DIM, metas);
            int dup = 0, exists = 0;
            for (int r = 0; r < nrows; r++) {
                int k = (arg / 3 + r * 5) % NID;
                exists |= model[k].present;
                for (int s = 0; s < r; s++) dup |= strcmp(ids[r], ids[s]) == 0;
            }
            int expect_ok = !dup && !(op == 0 && exists);
            if ((rc == SVDB_OK) != expect_ok) abort();
            if (rc == SVDB_OK)
                for (int r = 0; r < nrows; r++) {
                    row *m = &model[(arg / 3 + r * 5) % NID];
                    m->present = 1;
                    memcpy(m->v, v + r * DIM, sizeof m->v);
                    m->meta = metas[r] ? arg : -1;
                }
        } else if (op == 2) { /* delete */
            size_t nd = 0;
            if (svdb_delete(db, (size_t)nrows, ids, &nd) != SVDB_OK) abort();
            size_t expect = 0;
            for (int r = 0; r < nrows; r++) {
                row *m = &model[(arg / 3 + r * 5) % NID];
                expect += (size_t)m->present;
                m->present = 0;
            }
            if (nd != expect) abort();
        } else if (op == 3) { /* search: the nearest distance matches brute force */
            float q[DIM] = {(float)(arg % 5), 1.0f, -2.0f};
            svdb_hit *hits = NULL;
            size_t nh = 0;
            if (svdb_search(db, q, DIM, 4, NULL, &hits, &nh) != SVDB_OK) abort();
            float best = INFINITY;
            size_t live = 0;
            for (int k = 0; k < NID; k++)
                if (model[k].present) {
                    live++;
                    float s = 0;
                    for (int d = 0; d < DIM; d++) s += (q[d] - model[k].v[d]) * (q[d] - model[k].v[d]);
                    if (s < best) best = s;
                }
            if (nh != (live < 4 ? live : 4)) abort();
            if (nh && fabsf(hits[0].distance - best) > 1e-3f * (1 + best)) abort();
            for (size_t h = 1; h < nh; h++)
                if (hits[h].distance < hits[h - 1].distance) abort();
            svdb_hits_free(hits);
        } else if (op == 4) {
            if (svdb_persist(db) != SVDB_OK) abort();
        } else if (op == 5) {
            reopen();
        } else {
            check_all();
        }
    }
    check_all();
    reopen();
    check_all();
    return 0;
}
