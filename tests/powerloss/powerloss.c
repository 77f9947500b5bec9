/* Power-loss test for SVDB_DURABILITY_SYNC. A child writes through the C API
 * under the shim (shim.c), announcing each operation on a pipe before the
 * call and acknowledging it after; the shim cuts power at the N-th write,
 * fsync, rename, truncate or unlink, leaving only what was durable. The
 * parent reopens that state and checks that every acknowledged write is
 * there with its exact vector and metadata, every acknowledged delete is
 * gone, and the operation in flight is applied wholly or not at all.
 * Usage: svdb_powerloss SHIM.so WORKDIR [MAX_EVENTS] */
#define _GNU_SOURCE
#include "svdb.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NID 24
#define DIM 4
#define OPS 48

typedef struct {
    int present, ver;
} state;

static void vec_for(int id, int ver, float *v)
{
    for (int d = 0; d < DIM; d++) v[d] = (float)((id * 131 + ver * 17 + d * 7) % 97) - 48.0f + 0.5f;
}

/* The child: a deterministic mix of adds, upserts, deletes and persists. */
static void writer(const char *dir, int fd)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = DIM;
    o.durability = SVDB_DURABILITY_SYNC;
    svdb *db;
    if (svdb_open(&db, dir, &o) != SVDB_OK) _exit(3);
    dprintf(fd, "O\n");
    state st[NID] = {{0, 0}};
    unsigned r = 12345;
    for (int op = 0; op < OPS; op++) {
        r = r * 1103515245u + 12345u;
        int kind = (int)((r >> 16) % 10); /* 0-4 add, 5-6 upsert, 7-8 delete, 9 persist */
        int n = 1 + (int)((r >> 8) % 3), ids[3], cnt = 0;
        for (int i = 0; i < n; i++) {
            int id = (int)((r >> (4 + i * 5)) % NID);
            int dup = 0;
            for (int j = 0; j < cnt; j++) dup |= ids[j] == id;
            if (!dup && !(kind <= 4 && st[id].present)) ids[cnt++] = id;
        }
        if (kind == 9) {
            dprintf(fd, "I %d P\n", op);
            int rc = svdb_persist(db);
            dprintf(fd, rc == SVDB_OK ? "A %d\n" : "F %d\n", op);
            continue;
        }
        if (cnt == 0) continue;
        char idb[3][16], mb[3][32];
        const char *idp[3], *mp[3];
        float v[3 * DIM];
        dprintf(fd, "I %d %c", op, kind <= 4 ? 'a' : kind <= 6 ? 'u' : 'd');
        for (int i = 0; i < cnt; i++) {
            int ver = st[ids[i]].ver + 1;
            snprintf(idb[i], sizeof idb[i], "id%d", ids[i]);
            snprintf(mb[i], sizeof mb[i], "{\"ver\": %d}", ver);
            idp[i] = idb[i];
            mp[i] = mb[i];
            vec_for(ids[i], ver, v + i * DIM);
            dprintf(fd, " %d:%d", ids[i], ver);
        }
        dprintf(fd, "\n");
        int rc = kind <= 4   ? svdb_add_batch(db, (size_t)cnt, idp, v, DIM, mp)
                 : kind <= 6 ? svdb_upsert_batch(db, (size_t)cnt, idp, v, DIM, mp)
                             : svdb_delete(db, (size_t)cnt, idp, NULL);
        if (rc == SVDB_OK)
            for (int i = 0; i < cnt; i++) {
                st[ids[i]].ver++;
                st[ids[i]].present = kind <= 6;
            }
        dprintf(fd, rc == SVDB_OK ? "A %d\n" : "F %d\n", op);
    }
    svdb_close(db);
    _exit(0);
}

typedef struct {
    int opened;
    state acked[NID];
    int inflight; /* an announced write that was not acknowledged */
    char kind;
    int ids[3], vers[3], n;
} model;

static void read_log(FILE *f, model *m)
{
    char line[256];
    memset(m, 0, sizeof *m);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == 'O') m->opened = 1;
        if (line[0] == 'I') {
            m->inflight = 1;
            m->n = 0;
            char *p = line + 2;
            strtol(p, &p, 10);
            m->kind = p[1];
            p += 2;
            while (m->kind != 'P' && *p == ' ') {
                m->ids[m->n] = (int)strtol(p + 1, &p, 10);
                m->vers[m->n] = (int)strtol(p + 1, &p, 10);
                m->n++;
            }
        }
        if (line[0] == 'A' || line[0] == 'F') {
            if (line[0] == 'A' && m->kind != 'P')
                for (int i = 0; i < m->n; i++) {
                    m->acked[m->ids[i]].present = m->kind != 'd';
                    m->acked[m->ids[i]].ver = m->vers[i];
                }
            m->inflight = 0;
        }
    }
}

/* 0 when the recovered collection matches the model. */
static int verify(const char *path, const model *m, char *why, size_t whylen)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db;
    int rc = svdb_open(&db, path, &o);
    if (rc != SVDB_OK) {
        int any = 0;
        for (int i = 0; i < NID; i++) any |= m->acked[i].present || m->acked[i].ver;
        if (rc == SVDB_ENOTFOUND && !m->opened && !any) return 0; /* power cut before the collection existed */
        snprintf(why, whylen, "open failed: %s", svdb_errmsg());
        return 1;
    }
    int bad = 0;
    for (int id = 0; id < NID && !bad; id++) {
        char idb[16];
        snprintf(idb, sizeof idb, "id%d", id);
        float v[DIM], want[DIM];
        char *meta = NULL;
        int got = svdb_get(db, idb, v, DIM, &meta) == SVDB_OK;
        int ok_states = 0;
        /* the acknowledged state, or the in-flight one if this id is in it */
        for (int alt = 0; alt < 2; alt++) {
            int present = m->acked[id].present, ver = m->acked[id].ver;
            if (alt == 1) {
                int in = 0;
                for (int i = 0; i < m->n; i++)
                    if (m->inflight && m->ids[i] == id) {
                        in = 1;
                        present = m->kind != 'd';
                        ver = m->vers[i];
                    }
                if (!in) continue;
            }
            if (present != got) continue;
            if (!got) {
                ok_states = 1;
                continue;
            }
            vec_for(id, ver, want);
            char wm[32];
            snprintf(wm, sizeof wm, "{\"ver\": %d}", ver);
            if (memcmp(v, want, sizeof v) == 0 && meta && strcmp(meta, wm) == 0) ok_states = 1;
        }
        if (!ok_states) {
            snprintf(why, whylen, "id%d: found=%d meta=%s, acked present=%d ver=%d", id, got, meta ? meta : "-",
                     m->acked[id].present, m->acked[id].ver);
            bad = 1;
        }
        svdb_free(meta);
    }
    /* the in-flight batch is all or nothing */
    if (!bad && m->inflight && m->n > 1) {
        int applied = 0, changing = 0;
        for (int i = 0; i < m->n; i++) {
            if (m->kind == 'd' && !m->acked[m->ids[i]].present) continue; /* absent either way */
            changing++;
            char idb[16];
            snprintf(idb, sizeof idb, "id%d", m->ids[i]);
            char *meta = NULL;
            int got = svdb_get(db, idb, NULL, 0, &meta) == SVDB_OK;
            char wm[32];
            snprintf(wm, sizeof wm, "{\"ver\": %d}", m->vers[i]);
            applied += m->kind == 'd' ? !got : (got && meta && strcmp(meta, wm) == 0);
            svdb_free(meta);
        }
        if (applied != 0 && applied != changing) {
            snprintf(why, whylen, "in-flight batch partly applied (%d of %d)", applied, changing);
            bad = 1;
        }
    }
    svdb_close(db);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        unsetenv("LD_PRELOAD"); /* the shim is already loaded; keep it out of anything we spawn */
        writer(argv[2], atoi(argv[3]));
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s SHIM.so WORKDIR [MAX_EVENTS]\n", argv[0]);
        return 2;
    }
    const char *shim = argv[1], *work = argv[2];
    long max_events = argc > 3 ? atol(argv[3]) : 400;
    mkdir(work, 0755);
    char dir[512], out[512], cmd[1200];
    snprintf(dir, sizeof dir, "%s/db", work);
    snprintf(out, sizeof out, "%s/after-power-loss", work);
    long rounds = 0, cut = 0, clean = 0, failed = 0, lost = 0;
    for (long at = 1; at <= max_events; at++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, out);
        if (system(cmd) != 0) return 2;
        int pfd[2];
        if (pipe(pfd) != 0) return 2;
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            char at_s[32];
            snprintf(at_s, sizeof at_s, "%ld", at);
            setenv("PL_DIR", dir, 1);
            setenv("PL_OUT", out, 1);
            setenv("PL_CRASH_AT", at_s, 1);
            setenv("LD_PRELOAD", shim, 1);
            char fd_s[16];
            snprintf(fd_s, sizeof fd_s, "%d", pfd[1]);
            execl("/proc/self/exe", argv[0], "--child", dir, fd_s, (char *)NULL);
            _exit(4);
        }
        close(pfd[1]);
        FILE *f = fdopen(pfd[0], "r");
        model m;
        read_log(f, &m);
        fclose(f);
        int status;
        waitpid(pid, &status, 0);
        rounds++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break; /* the workload finished before the cut */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 77) {
            printf("round %ld: writer died unexpectedly (status %d)\n", at, status);
            failed++;
            continue;
        }
        cut++;
        char why[256] = "";
        if (verify(out, &m, why, sizeof why) == 0) {
            clean++;
        } else {
            printf("power cut at event %ld: %s\n", at, why);
            if (strstr(why, "open failed")) failed++;
            else lost++;
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) return 2;
    printf("powerloss[sync]: %ld power cuts (one at every I/O event of the workload), %ld clean, %ld with lost or "
           "partial writes, %ld failed opens\n",
           cut, clean, lost, failed);
    return (lost || failed || cut == 0) ? 1 : 0;
}
