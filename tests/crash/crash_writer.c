/* The C-API writer for crash_harness.py: opens the collection and performs
 * random adds, upserts, deletes and persists forever, announcing each one on
 * the acknowledgement log before the call (I ...) and after it (A / F).
 * Usage: svdb_crash_writer DIR LOGFILE persist|sync SEED FIRST_OP NID DIM [flat|hnsw|hnsw-bg]
 *
 * Multi-process mode (crash_harness.py --processes): the environment gives
 * SVDB_CRASH_NS (this writer's id prefix), SVDB_CRASH_AUTOCKPT (autocheckpoint
 * bytes) and SVDB_CRASH_BUSY_MS. Two more roles share the binary:
 *   svdb_crash_writer reader DIR LOGFILE SEED NID DIM NWRITERS shared|readonly
 *   svdb_crash_writer probe DIR      (one write and its undo; prints the ms taken) */
#define _GNU_SOURCE
#include "svdb.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int logfd;

/* One line per write(2) on an O_APPEND descriptor. A SIGKILL can still stop the
 * write between two pages of the file (a line across a page boundary): the
 * harness drops such a torn last line (read_new_lines). */
static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (write(logfd, buf, (size_t)n) != n) _exit(5);
}

static void vec_for(int id, int ver, int dim, float *v)
{
    unsigned h = (unsigned)id * 2654435761u ^ (unsigned)ver * 40503u;
    for (int d = 0; d < dim; d++) {
        h = h * 1103515245u + 12345u;
        v[d] = (float)((h >> 8) % 2001) / 100.0f - 10.0f;
    }
    v[0] += 0.25f; /* never the zero vector */
}

static int reader_main(int argc, char **argv);
static int probe_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "reader") == 0) return reader_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "probe") == 0) return probe_main(argc, argv);
    if (argc != 8 && argc != 9) return 2;
    const char *ns = getenv("SVDB_CRASH_NS"), *ac = getenv("SVDB_CRASH_AUTOCKPT"), *busy = getenv("SVDB_CRASH_BUSY_MS");
    if (!ns) ns = "";
    const char *dir = argv[1];
    logfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
    int sync = strcmp(argv[3], "sync") == 0, nid = atoi(argv[6]), dim = atoi(argv[7]);
    unsigned r = (unsigned)strtoul(argv[4], NULL, 10) * 2654435761u + 1;
    long op = atol(argv[5]);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = (uint32_t)dim;
    o.durability = sync ? SVDB_DURABILITY_SYNC : SVDB_DURABILITY_PERSIST;
    o.index = argc == 9 && strncmp(argv[8], "hnsw", 4) == 0 ? SVDB_INDEX_HNSW : SVDB_INDEX_FLAT;
    o.background_indexing = argc == 9 && strcmp(argv[8], "hnsw-bg") == 0;
    /* "hnsw-int8": compact storage, whose originals are read from the mapped log and snapshot */
    o.storage = argc == 9 && strcmp(argv[8], "hnsw-int8") == 0 ? SVDB_STORAGE_INT8 : SVDB_STORAGE_DEFAULT;
    if (ac) o.autocheckpoint_bytes = strtoull(ac, NULL, 10);
    if (busy) o.busy_timeout_ms = (uint32_t)strtoul(busy, NULL, 10);
    svdb *db;
    int orc;
    /* Creating the collection takes the write lock, which others may hold past a short busy timeout. */
    while ((orc = svdb_open(&db, dir, &o)) == SVDB_EBUSY && *ns) {
    }
    if (orc != SVDB_OK) {
        fprintf(stderr, "writer: open: %s\n", svdb_errmsg());
        return 3;
    }
    if (*ns) {
        /* A batch a killed writer logged but never announced is applied by
         * the next writer to catch up, maybe after our reads below: a
         * checkpoint catches up with the whole log first. */
        int rc;
        while ((rc = svdb_persist(db)) == SVDB_EBUSY) {
        }
        if (rc != SVDB_OK) {
            fprintf(stderr, "writer: first persist: %s\n", svdb_errmsg());
            return 6;
        }
    }
    /* The current version of each id is in its metadata: {"id": N, "v": V}. */
    int *ver = calloc((size_t)nid, sizeof *ver), *present = calloc((size_t)nid, sizeof *present);
    for (int i = 0; i < nid; i++) {
        char id[32], *meta = NULL;
        snprintf(id, sizeof id, "%sk%d", ns, i);
        if (svdb_get(db, id, NULL, 0, &meta) == SVDB_OK) {
            present[i] = 1;
            const char *p = meta ? strstr(meta, "\"v\": ") : NULL;
            ver[i] = p ? atoi(p + 5) : 0;
        }
        svdb_free(meta);
    }
    if (*ns) {
        /* What this incarnation found: the harness checks it against what the
         * previous one acknowledged, its batch in flight all or nothing. */
        char *line = malloc((size_t)nid * 24 + 8);
        int len = sprintf(line, "R");
        for (int i = 0; i < nid; i++)
            if (present[i]) len += sprintf(line + len, " %d:%d", i, ver[i]);
        logline("%s\n", line);
        free(line);
    }
    logline("O\n");
    float *v = malloc(sizeof(float) * (size_t)dim * 64);
    for (;; op++) {
        r = r * 1103515245u + 12345u;
        unsigned kind = (r >> 16) % 20; /* 0-8 add, 9-12 upsert, 13-16 delete, 17-18 persist, 19 reopen */
        if (kind >= 17) {
            logline("I %ld %c\n", op, kind == 19 ? 'c' : 'p');
            int rc = SVDB_OK;
            if (kind == 19) {
                rc = svdb_close(db);
                while (rc == SVDB_OK && (rc = svdb_open(&db, dir, &o)) == SVDB_EBUSY && *ns) {
                    rc = SVDB_OK;
                }
            } else {
                rc = svdb_persist(db);
            }
            logline("%c %ld %d\n", rc == SVDB_OK ? 'A' : 'F', op, rc);
            if (kind == 19 && rc != SVDB_OK) return 4;
            continue;
        }
        int n = 1 + (int)((r >> 4) % 64), ids[64], cnt = 0;
        unsigned s = r;
        for (int i = 0; i < n && cnt < 64; i++) {
            s = s * 1664525u + 1013904223u;
            int id = (int)((s >> 8) % (unsigned)nid), dup = 0;
            for (int j = 0; j < cnt; j++) dup |= ids[j] == id;
            if (dup || (kind <= 8 && present[id])) continue;
            ids[cnt++] = id;
        }
        if (!cnt) continue;
        char idb[64][32], mb[64][64], line[64 * 24 + 64];
        const char *idp[64], *mp[64];
        int len = snprintf(line, sizeof line, "I %ld %c", op, kind <= 8 ? 'a' : kind <= 12 ? 'u' : 'd');
        for (int i = 0; i < cnt; i++) {
            /* Many processes: the op number, which grows across this
             * namespace's writers, so a version never repeats or goes back
             * (an incarnation does not know the versions of deleted ids). */
            int nv = *ns ? (int)op : ver[ids[i]] + 1;
            snprintf(idb[i], sizeof idb[i], "%sk%d", ns, ids[i]);
            snprintf(mb[i], sizeof mb[i], "{\"id\": %d, \"v\": %d}", ids[i], nv);
            idp[i] = idb[i];
            mp[i] = mb[i];
            vec_for(ids[i], nv, dim, v + (size_t)i * dim);
            len += snprintf(line + len, sizeof line - (size_t)len, " %d:%d", ids[i], nv);
        }
        logline("%s\n", line);
        int rc = kind <= 8    ? svdb_add_batch(db, (size_t)cnt, idp, v, (uint32_t)dim, mp)
                 : kind <= 12 ? svdb_upsert_batch(db, (size_t)cnt, idp, v, (uint32_t)dim, mp)
                              : svdb_delete(db, (size_t)cnt, idp, NULL);
        if (rc == SVDB_OK)
            for (int i = 0; i < cnt; i++) {
                ver[ids[i]] = *ns ? (int)op : ver[ids[i]] + 1;
                present[ids[i]] = kind <= 12;
            }
        logline("%c %ld %d\n", rc == SVDB_OK ? 'A' : 'F', op, rc);
    }
}

static void reader_error(long it, const char *what, int rc)
{
    logline("E %ld %s: %d %s\n", it, what, rc, rc == SVDB_OK ? "" : svdb_errmsg());
}

/* "w3k17" -> 1 with *w = 3, *i = 17. */
static int parse_id(const char *id, int nw, int nid, int *w, int *i)
{
    int used = 0;
    return sscanf(id, "w%dk%d%n", w, i, &used) == 2 && id[used] == 0 && *w >= 0 && *w < nw && *i >= 0 && *i < nid;
}

static int parse_meta(const char *meta, int *i, int *v)
{
    return meta && sscanf(meta, "{\"id\": %d, \"v\": %d}", i, v) == 2;
}

/* A reader process: reads in a loop and logs every failed call and every
 * state no sequence of acknowledged batches can produce (E ...): a row whose
 * vector is not its metadata's version, a version going back, search hits
 * out of order. Q lines count its loops. */
static int reader_main(int argc, char **argv)
{
    if (argc != 9) return 2;
    const char *dir = argv[2];
    logfd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644);
    unsigned r = (unsigned)strtoul(argv[4], NULL, 10) * 2654435761u + 1;
    int nid = atoi(argv[5]), dim = atoi(argv[6]), nw = atoi(argv[7]);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    o.mode = strcmp(argv[8], "readonly") == 0 ? SVDB_OPEN_READONLY : SVDB_OPEN_SHARED;
    svdb *db;
    int rc;
    while ((rc = svdb_open(&db, dir, &o)) != SVDB_OK) {
        if (rc != SVDB_ENOTFOUND) reader_error(-1, "open", rc); /* not created yet: wait for a writer */
        usleep(2000);
    }
    logline("O\n");
    int *maxv = calloc((size_t)nw * (size_t)nid, sizeof *maxv);
    float *vecs = malloc(sizeof(float) * (size_t)dim * 16), *want = malloc(sizeof(float) * (size_t)dim);
    for (long it = 0;; it++) {
        char **ids = NULL, **metas = NULL;
        size_t n = 0;
        if ((rc = svdb_select(db, NULL, &ids, &metas, &n)) != SVDB_OK) reader_error(it, "select", rc);
        for (size_t k = 0; k < n; k++) {
            int w, i, mi, v;
            if (!parse_id(ids[k], nw, nid, &w, &i) || !parse_meta(metas[k], &mi, &v) || mi != i) {
                logline("E %ld select: row %s has metadata %s\n", it, ids[k], metas[k] ? metas[k] : "(none)");
            } else if (v < maxv[w * nid + i]) {
                logline("E %ld select: %s went back from v%d to v%d\n", it, ids[k], maxv[w * nid + i], v);
            } else {
                maxv[w * nid + i] = v;
            }
        }
        svdb_ids_free(ids);
        svdb_metadatas_free(metas);

        char idb[16][32];
        const char *idp[16];
        int found[16];
        for (int k = 0; k < 16; k++) {
            r = r * 1103515245u + 12345u;
            snprintf(idb[k], sizeof idb[k], "w%dk%d", (int)((r >> 8) % (unsigned)nw), (int)((r >> 16) % (unsigned)nid));
            idp[k] = idb[k];
        }
        metas = NULL;
        if ((rc = svdb_get_batch(db, 16, idp, vecs, (uint32_t)dim, &metas, found)) != SVDB_OK) {
            reader_error(it, "get_batch", rc);
        } else {
            for (int k = 0; k < 16; k++) {
                int w, i, mi, v;
                if (!found[k]) continue;
                parse_id(idb[k], nw, nid, &w, &i);
                if (!parse_meta(metas[k], &mi, &v) || mi != i) {
                    logline("E %ld get_batch: %s has metadata %s\n", it, idb[k], metas[k] ? metas[k] : "(none)");
                    continue;
                }
                vec_for(i, v, dim, want);
                if (memcmp(want, vecs + (size_t)k * dim, sizeof(float) * (size_t)dim) != 0)
                    logline("E %ld get_batch: %s's vector is not that of its v%d\n", it, idb[k], v);
                if (v < maxv[w * nid + i])
                    logline("E %ld get_batch: %s went back from v%d to v%d\n", it, idb[k], maxv[w * nid + i], v);
                else
                    maxv[w * nid + i] = v;
            }
        }
        svdb_metadatas_free(metas);

        size_t count;
        if ((rc = svdb_count(db, &count)) != SVDB_OK) reader_error(it, "count", rc);
        else if (count > (size_t)nw * (size_t)nid) logline("E %ld count: %zu rows\n", it, count);

        r = r * 1103515245u + 12345u;
        vec_for((int)(r >> 8) % nid, (int)(r >> 20) % 8, dim, want);
        svdb_hit *hits = NULL;
        size_t nh = 0;
        if ((rc = svdb_search(db, want, (uint32_t)dim, 10, NULL, &hits, &nh)) != SVDB_OK) {
            reader_error(it, "search", rc);
        } else {
            for (size_t k = 0; k < nh; k++) {
                int w, i;
                if (!parse_id(hits[k].id, nw, nid, &w, &i) || (k && hits[k].distance < hits[k - 1].distance))
                    logline("E %ld search: hit %zu (%s, %g) is unknown or out of order\n", it, k, hits[k].id,
                            (double)hits[k].distance);
            }
            if (nh > 10) logline("E %ld search: %zu hits for k = 10\n", it, nh);
        }
        svdb_hits_free(hits);
        if (it % 64 == 0) logline("Q %ld\n", it);
    }
}

/* A fresh writer after a round: one write and its undo, which must get the
 * write lock within the busy timeout (no lock left by a killed process).
 * Exits without svdb_close, as a killed process would. */
static int probe_main(int argc, char **argv)
{
    if (argc != 3) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db;
    uint32_t dim = 0;
    int rc = svdb_open(&db, argv[2], &o);
    if (rc == SVDB_OK) rc = svdb_dim(db, &dim);
    if (rc == SVDB_OK) {
        float *v = calloc(dim ? dim : 1, sizeof *v);
        const char *id = "probe";
        v[0] = 1.0f;
        rc = svdb_upsert_batch(db, 1, &id, v, dim, NULL);
        if (rc == SVDB_OK) rc = svdb_delete(db, 1, &id, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != SVDB_OK) {
        printf("probe failed: %d %s\n", rc, svdb_errmsg());
        return 7;
    }
    printf("%.1f\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    fflush(stdout);
    _exit(0);
}
