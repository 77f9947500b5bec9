/* The C-API writer for crash_harness.py: opens the collection and performs
 * random adds, upserts, deletes and persists forever, announcing each one on
 * the acknowledgement log before the call (I ...) and after it (A / F).
 * Usage: svdb_crash_writer DIR LOGFILE persist|sync SEED FIRST_OP NID DIM [flat|hnsw|hnsw-bg] */
#define _GNU_SOURCE
#include "svdb.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int logfd;

/* One line per write(2) on an O_APPEND descriptor: a SIGKILL never leaves half a line. */
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

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) return 2;
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
    svdb *db;
    if (svdb_open(&db, dir, &o) != SVDB_OK) {
        fprintf(stderr, "writer: open: %s\n", svdb_errmsg());
        return 3;
    }
    /* The current version of each id is in its metadata: {"id": N, "v": V}. */
    int *ver = calloc((size_t)nid, sizeof *ver), *present = calloc((size_t)nid, sizeof *present);
    for (int i = 0; i < nid; i++) {
        char id[32], *meta = NULL;
        snprintf(id, sizeof id, "k%d", i);
        if (svdb_get(db, id, NULL, 0, &meta) == SVDB_OK) {
            present[i] = 1;
            const char *p = meta ? strstr(meta, "\"v\": ") : NULL;
            ver[i] = p ? atoi(p + 5) : 0;
        }
        svdb_free(meta);
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
                if (rc == SVDB_OK) rc = svdb_open(&db, dir, &o);
            } else {
                rc = svdb_persist(db);
            }
            logline("%c %ld\n", rc == SVDB_OK ? 'A' : 'F', op);
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
            int nv = ver[ids[i]] + 1;
            snprintf(idb[i], sizeof idb[i], "k%d", ids[i]);
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
                ver[ids[i]]++;
                present[ids[i]] = kind <= 12;
            }
        logline("%c %ld\n", rc == SVDB_OK ? 'A' : 'F', op);
    }
}
