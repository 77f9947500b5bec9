#define _GNU_SOURCE
#include "multiproc_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mp_row_id(char *buf, size_t cap, uint64_t r) { snprintf(buf, cap, "r%llu", (unsigned long long)r); }

void mp_row_vec(float *v, uint32_t dim, uint64_t r) { th_random(v, dim, (unsigned)(r * 2654435761u + 17)); }

void mp_row_meta(char *buf, size_t cap, uint64_t batch)
{
    snprintf(buf, cap, "{\"b\":%llu}", (unsigned long long)batch);
}

int mp_row_check(svdb *db, uint64_t r, uint64_t batch)
{
    char id[32], want_meta[32];
    float v[MP_DIM], want[MP_DIM];
    mp_row_id(id, sizeof id, r);
    mp_row_vec(want, MP_DIM, r);
    mp_row_meta(want_meta, sizeof want_meta, batch);
    char *meta = NULL;
    int rc = svdb_get(db, id, v, MP_DIM, &meta);
    if (rc == SVDB_ENOTFOUND) return 0;
    if (rc != SVDB_OK) return -1;
    int ok = memcmp(v, want, sizeof v) == 0 && meta && strcmp(meta, want_meta) == 0;
    svdb_free(meta);
    return ok;
}

/* ---------------------------------------------------------------- namespaces */

void mp_ns_init(mp_ns *ns, unsigned w, uint64_t seed)
{
    memset(ns, 0, sizeof *ns);
    snprintf(ns->prefix, sizeof ns->prefix, "w%u-", w);
    ns->rng = seed * 1000003u + w;
    th_model_init(&ns->model, MP_DIM);
}

void mp_ns_free(mp_ns *ns) { th_model_free(&ns->model); }

void mp_ns_next(mp_ns *ns, int persist_pct, th_op *op)
{
    th_gen_op(&ns->rng, &ns->model, &ns->next_id, persist_pct, op);
    /* Fresh and missing ids come unprefixed; ids drawn from the model
     * already carry the prefix. */
    size_t plen = strlen(ns->prefix);
    for (size_t i = 0; i < op->n; i++) {
        if (strncmp(op->ids[i], ns->prefix, plen) == 0) continue;
        char *p = NULL;
        if (asprintf(&p, "%s%s", ns->prefix, op->ids[i]) < 0) abort();
        free(op->ids[i]);
        op->ids[i] = p;
    }
}

void mp_ns_model(unsigned w, uint64_t seed, unsigned nops, int persist_pct, th_model *out)
{
    mp_ns ns;
    mp_ns_init(&ns, w, seed);
    for (unsigned i = 0; i < nops; i++) {
        th_op op;
        mp_ns_next(&ns, persist_pct, &op);
        th_op_model(&ns.model, &op);
        th_op_free(&op);
    }
    *out = ns.model; /* moved out */
}

int mp_check_ns(svdb *db, const char *prefix, const th_model *m)
{
    char **ids = NULL;
    size_t n = 0, plen = strlen(prefix), j = 0;
    int rc = svdb_ids(db, &ids, &n);
    if (rc != SVDB_OK) {
        fprintf(stderr, "check %s: svdb_ids: %d (%s)\n", prefix, rc, svdb_errmsg());
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (strncmp(ids[i], prefix, plen) != 0) continue;
        if (j >= m->n || strcmp(ids[i], m->rows[j].id) != 0) {
            fprintf(stderr, "check %s: row %zu of the namespace is '%s', the model has '%s'\n", prefix, j, ids[i],
                    j < m->n ? m->rows[j].id : "(nothing)");
            ok = 0;
        }
        j++;
    }
    svdb_ids_free(ids);
    if (ok && j != m->n) {
        fprintf(stderr, "check %s: %zu rows, the model has %zu\n", prefix, j, m->n);
        ok = 0;
    }
    if (!ok || m->n == 0) return ok;
    const char **mids = malloc(m->n * sizeof *mids);
    float *v = malloc(m->n * MP_DIM * sizeof *v);
    int *found = malloc(m->n * sizeof *found);
    char **metas = NULL;
    if (!mids || !v || !found) abort();
    for (size_t i = 0; i < m->n; i++) mids[i] = m->rows[i].id;
    rc = svdb_get_batch(db, m->n, mids, v, MP_DIM, &metas, found);
    if (rc != SVDB_OK) {
        fprintf(stderr, "check %s: svdb_get_batch: %d (%s)\n", prefix, rc, svdb_errmsg());
        ok = 0;
    }
    for (size_t i = 0; ok && i < m->n; i++) {
        const th_row *r = &m->rows[i];
        if (!found[i] || memcmp(v + i * MP_DIM, r->vec, MP_DIM * sizeof *v) != 0 ||
            (metas[i] == NULL) != (r->meta == NULL) || (r->meta && strcmp(metas[i], r->meta) != 0)) {
            fprintf(stderr, "check %s: row '%s' differs from the model (found %d, metadata %s, model %s)\n", prefix,
                    r->id, found[i], metas[i] ? metas[i] : "NULL", r->meta ? r->meta : "NULL");
            ok = 0;
        }
    }
    svdb_metadatas_free(metas);
    free(mids);
    free(v);
    free(found);
    return ok;
}

/* ---------------------------------------------------------------- the shared ring */

void mp_ring_id(char *buf, size_t cap, unsigned i) { snprintf(buf, cap, "s%u", i); }

void mp_ring_vec(float *v, uint32_t dim, unsigned w, unsigned round, unsigned i)
{
    th_random(v, dim, 1000003u * (w + 1) + 7919u * round + i);
}

void mp_ring_meta(char *buf, size_t cap, unsigned w, unsigned round)
{
    snprintf(buf, cap, "{\"w\":%u,\"r\":%u}", w, round);
}

/* ---------------------------------------------------------------- whole views */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int mp_digest(svdb *db, uint64_t *hash, size_t *count)
{
    char **ids = NULL, **metas = NULL;
    size_t n = 0;
    int rc = svdb_select(db, NULL, &ids, &metas, &n);
    if (rc != SVDB_OK) return rc;
    float *v = malloc((n ? n : 1) * MP_DIM * sizeof *v);
    int *found = malloc((n ? n : 1) * sizeof *found);
    if (!v || !found) abort();
    rc = n ? svdb_get_batch(db, n, (const char *const *)ids, v, MP_DIM, NULL, found) : SVDB_OK;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
        h = fnv(h, ids[i], strlen(ids[i]) + 1);
        h = metas[i] ? fnv(h, metas[i], strlen(metas[i]) + 1) : fnv(h, "\1", 1);
        h = fnv(h, v + i * MP_DIM, MP_DIM * sizeof *v);
        if (!found[i]) rc = SVDB_ENOTFOUND; /* the two calls saw different states */
    }
    *hash = h;
    *count = n;
    svdb_ids_free(ids);
    svdb_metadatas_free(metas);
    free(v);
    free(found);
    return rc;
}

/* ---------------------------------------------------------------- recall */

int mp_load_sift(size_t nb_max, size_t nq_max, float **base, size_t *nb, float **query, size_t *nq, size_t *dim)
{
    char path[1024];
    size_t qdim = 0;
    snprintf(path, sizeof path, "%s/siftsmall_base.fvecs", SVDB_TEST_DATA_DIR);
    *base = th_read_fvecs(path, nb, dim);
    snprintf(path, sizeof path, "%s/siftsmall_query.fvecs", SVDB_TEST_DATA_DIR);
    *query = *base ? th_read_fvecs(path, nq, &qdim) : NULL;
    if (!*base || !*query || qdim != *dim) {
        free(*base);
        free(*query);
        *base = *query = NULL;
        return 0;
    }
    if (*nb > nb_max) *nb = nb_max;
    if (*nq > nq_max) *nq = nq_max;
    return 1;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float *mp_kth(const float *base, size_t nb, const float *query, size_t nq, size_t dim, size_t k)
{
    float *kth = malloc(nq * sizeof *kth), *d = malloc(nb * sizeof *d);
    if (!kth || !d) abort();
    for (size_t q = 0; q < nq; q++) {
        for (size_t i = 0; i < nb; i++) {
            double s = 0;
            for (size_t j = 0; j < dim; j++) {
                double t = (double)query[q * dim + j] - base[i * dim + j];
                s += t * t;
            }
            d[i] = (float)s;
        }
        qsort(d, nb, sizeof *d, cmp_float);
        kth[q] = d[k - 1];
    }
    free(d);
    return kth;
}

double mp_recall(svdb *db, const float *base, const float *query, size_t nq, size_t dim, size_t k, const float *kth)
{
    size_t correct = 0;
    for (size_t q = 0; q < nq; q++) {
        svdb_hit *h = NULL;
        size_t n = 0;
        if (svdb_search(db, query + q * dim, (uint32_t)dim, k, NULL, &h, &n) != SVDB_OK) return -1;
        /* A hit as near as the k-th true neighbour counts (ties), by its
         * true distance, not the one reported. */
        for (size_t i = 0; i < n; i++) {
            const float *row = base + strtoull(h[i].id, NULL, 10) * dim;
            double s = 0;
            for (size_t j = 0; j < dim; j++) {
                double t = (double)query[q * dim + j] - row[j];
                s += t * t;
            }
            correct += (float)s <= kth[q];
        }
        svdb_hits_free(h);
    }
    return (double)correct / (double)(nq * k);
}
