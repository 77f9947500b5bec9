#define _GNU_SOURCE
#include "helpers.h"

#include "crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *th_tmpdir(const char *tag)
{
    const char *base = getenv("SVDB_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    static unsigned counter;
    char *p = NULL;
    if (asprintf(&p, "%s/%s-%d-%u", base, tag, (int)getpid(), counter++) < 0) abort();
    th_rmrf(p);
    return p;
}

void th_rmrf(const char *path)
{
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", path) < 0) abort();
    if (system(cmd) != 0) fprintf(stderr, "warning: %s failed\n", cmd);
    free(cmd);
}

static void *read_vecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int d = 0;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rows = (size_t)size / (4 + 4 * (size_t)d);
    char *out = malloc(rows * (size_t)d * 4);
    for (size_t i = 0; i < rows; i++) {
        int dd;
        if (fread(&dd, 4, 1, f) != 1 || dd != d || fread(out + i * (size_t)d * 4, 4, (size_t)d, f) != (size_t)d) {
            free(out);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return out;
}

float *th_read_fvecs(const char *path, size_t *n, size_t *dim) { return read_vecs(path, n, dim); }
int *th_read_ivecs(const char *path, size_t *n, size_t *dim) { return read_vecs(path, n, dim); }

void th_random(float *out, size_t n, unsigned seed)
{
    unsigned long long s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

/* ------------------------------------------------------------------ model */

#include "svdb.h"

void th_model_init(th_model *m, uint32_t dim)
{
    memset(m, 0, sizeof *m);
    m->dim = dim;
}

void th_model_free(th_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->rows[i].id);
        free(m->rows[i].vec);
        free(m->rows[i].meta);
    }
    free(m->rows);
    memset(m, 0, sizeof *m);
}

void th_model_copy(th_model *dst, const th_model *src)
{
    th_model_init(dst, src->dim);
    for (size_t i = 0; i < src->n; i++) th_model_put(dst, src->rows[i].id, src->rows[i].vec, src->rows[i].meta);
}

long th_model_find(const th_model *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->rows[i].id, id) == 0) return (long)i;
    return -1;
}

void th_model_put(th_model *m, const char *id, const float *v, const char *meta)
{
    long at = th_model_find(m, id);
    th_row *r;
    if (at >= 0) {
        r = &m->rows[at];
        free(r->meta);
    } else {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->rows = realloc(m->rows, m->cap * sizeof *m->rows);
            if (!m->rows) abort();
        }
        r = &m->rows[m->n++];
        r->id = strdup(id);
        r->vec = malloc(m->dim * sizeof(float));
        if (!r->id || !r->vec) abort();
    }
    memcpy(r->vec, v, m->dim * sizeof(float));
    r->meta = meta ? strdup(meta) : NULL;
}

int th_model_del(th_model *m, const char *id)
{
    long at = th_model_find(m, id);
    if (at < 0) return 0;
    free(m->rows[at].id);
    free(m->rows[at].vec);
    free(m->rows[at].meta);
    memmove(&m->rows[at], &m->rows[at + 1], (m->n - (size_t)at - 1) * sizeof *m->rows);
    m->n--;
    return 1;
}

int th_check_db(svdb *db, const th_model *m, int verbose)
{
    size_t count = 0;
    int rc = svdb_count(db, &count);
    if (rc != SVDB_OK || count != m->n) {
        if (verbose) fprintf(stderr, "check: count rc=%d %zu, model has %zu\n", rc, count, m->n);
        return 0;
    }
    char **ids = NULL;
    size_t nids = 0;
    rc = svdb_ids(db, &ids, &nids);
    if (rc != SVDB_OK || nids != m->n) {
        if (verbose) fprintf(stderr, "check: ids rc=%d n=%zu, model has %zu\n", rc, nids, m->n);
        svdb_ids_free(ids);
        return 0;
    }
    int ok = ids[nids] == NULL;
    if (!ok && verbose) fprintf(stderr, "check: ids array not NULL-terminated\n");
    float *v = malloc((m->dim ? m->dim : 1) * sizeof(float));
    for (size_t i = 0; ok && i < m->n; i++) {
        const th_row *r = &m->rows[i];
        if (strcmp(ids[i], r->id) != 0) {
            if (verbose) fprintf(stderr, "check: ids[%zu] = '%s', model has '%s'\n", i, ids[i], r->id);
            ok = 0;
            break;
        }
        char *meta = NULL;
        rc = svdb_get(db, r->id, v, m->dim, &meta);
        if (rc != SVDB_OK) {
            if (verbose) fprintf(stderr, "check: get '%s' rc=%d (%s)\n", r->id, rc, svdb_errmsg());
            ok = 0;
        } else if (memcmp(v, r->vec, m->dim * sizeof(float)) != 0) {
            if (verbose) fprintf(stderr, "check: vector of '%s' differs\n", r->id);
            ok = 0;
        } else if ((meta == NULL) != (r->meta == NULL) || (meta && strcmp(meta, r->meta) != 0)) {
            if (verbose)
                fprintf(stderr, "check: metadata of '%s' is %s, model has %s\n", r->id, meta ? meta : "NULL",
                        r->meta ? r->meta : "NULL");
            ok = 0;
        }
        svdb_free(meta);
    }
    if (ok && m->n) {
        uint32_t dim = 0;
        if (svdb_dim(db, &dim) != SVDB_OK || dim != m->dim) {
            if (verbose) fprintf(stderr, "check: dim %u, model has %u\n", dim, m->dim);
            ok = 0;
        }
    }
    free(v);
    svdb_ids_free(ids);
    return ok;
}

int th_open(svdb **db, const char *path, uint32_t dim, int metric, int durability)
{
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = dim;
    o.metric = metric;
    o.durability = durability;
    return svdb_open(db, path, &o);
}

unsigned char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = len == 0 || fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

long th_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

char *th_path(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) abort();
    return p;
}

uint64_t th_rand64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t th_randn(uint64_t *state, uint32_t n) { return n ? (uint32_t)(th_rand64(state) % n) : 0; }

/* ------------------------------------------------------------------ workloads */

void th_gen_op(uint64_t *rng, const th_model *m, unsigned *next_id, int persist_pct, th_op *op)
{
    memset(op, 0, sizeof *op);
    op->dim = m->dim;
    uint32_t r = th_randn(rng, 100);
    if ((int)r < persist_pct) {
        op->kind = TH_PERSIST;
        return;
    }
    r = th_randn(rng, 10);
    op->kind = (m->n < 4 || r < 5) ? TH_ADD : r < 8 ? TH_UPSERT : TH_DELETE;
    op->n = 1 + th_randn(rng, 8);
    op->ids = calloc(op->n, sizeof *op->ids);
    if (op->kind == TH_DELETE) {
        for (size_t i = 0; i < op->n; i++) {
            uint32_t c = th_randn(rng, 10);
            if (c == 0) {
                if (asprintf(&op->ids[i], "missing-%u", th_randn(rng, 1000)) < 0) abort();
            } else if (c == 1 && i > 0) {
                op->ids[i] = strdup(op->ids[th_randn(rng, (uint32_t)i)]);
            } else {
                op->ids[i] = strdup(m->rows[th_randn(rng, (uint32_t)m->n)].id);
            }
        }
        return;
    }
    op->vecs = malloc(op->n * (m->dim ? m->dim : 1) * sizeof(float));
    op->metas = calloc(op->n, sizeof *op->metas);
    size_t taken = 0;
    for (size_t i = 0; i < op->n; i++) {
        int existing = op->kind == TH_UPSERT && th_randn(rng, 3) != 0;
        if (existing) {
            /* A distinct existing id (retry a few times, else a fresh one). */
            for (int tries = 0; tries < 8 && !op->ids[i]; tries++) {
                const char *id = m->rows[th_randn(rng, (uint32_t)m->n)].id;
                int dup = 0;
                for (size_t j = 0; j < taken; j++) dup |= strcmp(op->ids[j], id) == 0;
                if (!dup) op->ids[i] = strdup(id);
            }
        }
        if (!op->ids[i] && asprintf(&op->ids[i], "k%u", (*next_id)++) < 0) abort();
        taken++;
        for (uint32_t d = 0; d < m->dim; d++)
            op->vecs[i * m->dim + d] = (float)((double)(th_rand64(rng) >> 40) / (double)(1ull << 24) * 2.0 - 1.0) + 0.001f;
        uint32_t mk = th_randn(rng, 4);
        if (mk == 1 && asprintf(&op->metas[i], "{\"i\":%u}", th_randn(rng, 100000)) < 0) abort();
        if (mk == 2 && asprintf(&op->metas[i], "{\"s\":\"v%u\",\"l\":[1,2,{\"x\":null}]}", th_randn(rng, 100)) < 0)
            abort();
    }
}

void th_op_free(th_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        if (op->ids) free(op->ids[i]);
        if (op->metas) free(op->metas[i]);
    }
    free(op->ids);
    free(op->metas);
    free(op->vecs);
    memset(op, 0, sizeof *op);
}

int th_op_run(svdb *db, const th_op *op)
{
    switch (op->kind) {
    case TH_PERSIST: return svdb_persist(db);
    case TH_DELETE: return svdb_delete(db, op->n, (const char *const *)op->ids, NULL);
    case TH_ADD:
        return svdb_add_batch(db, op->n, (const char *const *)op->ids, op->vecs, op->dim, (const char *const *)op->metas);
    default:
        return svdb_upsert_batch(db, op->n, (const char *const *)op->ids, op->vecs, op->dim,
                                 (const char *const *)op->metas);
    }
}

void th_op_model(th_model *m, const th_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        if (op->kind == TH_DELETE) th_model_del(m, op->ids[i]);
        else th_model_put(m, op->ids[i], op->vecs + i * op->dim, op->metas[i]);
    }
}

/* ------------------------------------------------------------------ children */

#include <sys/wait.h>

static int child_fd = -1, parent_fd = -1;

pid_t th_fork(void)
{
    int p[2];
    if (pipe(p) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) abort();
    if (pid == 0) {
        close(p[0]);
        child_fd = p[1];
    } else {
        close(p[1]);
        if (parent_fd >= 0) close(parent_fd);
        parent_fd = p[0];
    }
    return pid;
}

void th_child_exit(int code)
{
    if (child_fd >= 0 && write(child_fd, &code, sizeof code) != (ssize_t)sizeof code) _exit(125);
    _exit(code);
}

int th_wait(pid_t pid)
{
    int st = 0, code = -1;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (parent_fd >= 0) {
        if (read(parent_fd, &code, sizeof code) != (ssize_t)sizeof code) code = -1;
        close(parent_fd);
        parent_fd = -1;
    }
    return code;
}

void th_snapshot_fix_header(unsigned char *b)
{
    uint32_t crc = svdb__crc32c(0, b, 124);
    memcpy(b + 124, &crc, 4);
    crc = svdb__crc32c(0, b + 128, 124);
    memcpy(b + 252, &crc, 4);
}
