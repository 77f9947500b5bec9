/* The exact scan. Distances for a block of rows are computed first (SIMD,
 * several queries sharing each row load), then filtered through each heap;
 * liveness and sequence are only read for rows good enough to enter it. */
#include "search.h"

#include "alloc.h"
#include "error.h"
#include "space.h"

#include <pthread.h>
#include <string.h>

#define BLOCK_ROWS 256

/* The heap's admission bound: +inf until it holds k entries. */
static inline float bound(const svdb_topk *t) { return t->n < t->k ? __builtin_inff() : t->a[0].dist; }

/* Offers one block of raw kernel scores to a heap. Specialised per metric
 * (METRIC is a constant at each call) so the hot loop is a compare; `norm`
 * is the block's inverse norms (cosine only). */
static inline __attribute__((always_inline)) void offer(svdb_topk *t, const int METRIC, const float *raw,
                                                        const float *norm, const svdb_row *rows, size_t nb,
                                                        size_t first_slot, svdb_admit_fn admit, void *ctx)
{
    float thr = bound(t);
    for (size_t i = 0; i < nb; i++) {
        float d = svdb__space_score(METRIC, raw[i], 1.0f, SVDB_SPACE_ROW_NORM(METRIC, norm[i]));
        if (d > thr) continue;
        if (d != d) { /* a NaN passes the compare: rank it last, as the space does */
            d = svdb__space_nan_last(d);
            if (d > thr) continue;
        }
        const svdb_row *r = &rows[i];
        if (!svdb__row_live(r)) continue; /* a freed slot */
        if (admit && !admit(ctx, (uint32_t)(first_slot + i))) continue;
        svdb_cand cand = {d, (uint32_t)(first_slot + i), r->seq};
        svdb__topk_push(t, cand);
        thr = bound(t);
    }
}

void svdb__flat_scan(const svdb_store *store, const svdb_kernels *kern, const float *const *q, size_t nq,
                     svdb_topk *tops, svdb_admit_fn admit, void *ctx)
{
    const svdb_store_view *s = svdb__store_view(store);
    /* Row blocks outside, queries inside: a block of rows is read from memory
     * once and then stays in cache while every query scores it, so a batch
     * costs one pass over the data however many queries it has. */
    float dist[SVDB_KERNEL_MAX_Q * BLOCK_ROWS];
    svdb_space sp;
    svdb__space_init(&sp, s->metric, s->dim, kern, s->ck);
    size_t per = svdb__chunk_rows(s);
    for (size_t c = 0; c * per < s->n_slots; c++) {
        size_t base = c * per;
        size_t rows = s->n_slots - base < per ? s->n_slots - base : per;
        for (size_t b = 0; b < rows; b += BLOCK_ROWS) {
            size_t nb = rows - b < BLOCK_ROWS ? rows - b : BLOCK_ROWS;
            const float *norm = s->norm[c] ? s->norm[c] + b : NULL; /* cosine only */
            const svdb_row *meta = s->rows[c] + b;
            /* Compact storage keeps the float32 rows in mapped files, one
             * pointer each (a free slot points at the query: it is skipped). */
            const float *src_rows[BLOCK_ROWS];
            if (s->ck)
                for (size_t i = 0; i < nb; i++) src_rows[i] = s->src[c][b + i] ? s->src[c][b + i] : q[0];
            for (size_t g = 0; g < nq; g += SVDB_KERNEL_MAX_Q) {
                int ng = nq - g < SVDB_KERNEL_MAX_Q ? (int)(nq - g) : SVDB_KERNEL_MAX_Q;
                if (s->ck)
                    for (int j = 0; j < ng; j++)
                        sp.gather(q[g + (size_t)j], src_rows, nb, sp.dim, dist + (size_t)j * nb);
                else
                    sp.block(q + g, ng, s->vec[c] + b * s->dim, nb, sp.dim, dist);
                for (int j = 0; j < ng; j++) {
                    const float *dj = dist + (size_t)j * nb;
                    svdb_topk *t = &tops[g + (size_t)j];
                    SVDB_SPACE_BY_METRIC(sp.metric, M, offer(t, M, dj, norm, meta, nb, base + b, admit, ctx));
                }
            }
        }
    }
}

/* Scores one block of consecutive slots [first, first + nb), inside one
 * chunk, as the exact scan does: SIMD over contiguous float32 rows. */
static void scan_block(const svdb_store_view *s, const svdb_space *sp, const float *q, size_t first, size_t nb,
                       svdb_topk *t, svdb_admit_fn admit, void *ctx)
{
    float dist[BLOCK_ROWS];
    size_t c = first >> s->shift, b = first & (svdb__chunk_rows(s) - 1);
    const float *norm = s->norm[c] ? s->norm[c] + b : NULL; /* cosine only */
    sp->block(&q, 1, s->vec[c] + b * s->dim, nb, sp->dim, dist);
    SVDB_SPACE_BY_METRIC(sp->metric, M, offer(t, M, dist, norm, s->rows[c] + b, nb, first, admit, ctx));
}

/* Slots scored by pointer gather, a tile at a time. */
enum { TILE = 64 };
typedef struct {
    const float *rows[TILE];
    uint32_t slots[TILE];
    size_t n;
} gather_tile;

static void flush_tile(const svdb_store_view *s, const svdb_space *sp, const float *q, gather_tile *g, svdb_topk *t,
                       svdb_admit_fn admit, void *ctx)
{
    float raw[TILE];
    if (g->n) sp->gather(q, g->rows, g->n, sp->dim, raw);
    for (size_t j = 0; j < g->n; j++) {
        uint32_t slot = g->slots[j];
        float d = svdb__space_dist(sp->metric, raw[j], 1.0f, SVDB_SPACE_ROW_NORM(sp->metric, *svdb__norm(s, slot)));
        if (d > bound(t) || (admit && !admit(ctx, slot))) continue;
        svdb_cand cand = {d, slot, svdb__row(s, slot)->seq};
        svdb__topk_push(t, cand);
    }
    g->n = 0;
}

/* Runs at least this long are scored as blocks; shorter ones by gather. */
#define MIN_RUN 8

/* Scores the rows of a slot list (each slot at most once) exactly: the
 * rows still waiting for the background indexer, which the graph walk
 * cannot reach (so a row is found from the moment its write returns), or
 * the rows a search is restricted to. A fresh ingest queues consecutive
 * slots, so the list is cut into runs of consecutive slots and each run is
 * scanned as the flat scan scans (block kernel, liveness read only for rows
 * good enough to enter the heap); isolated slots go through the gather.
 * Compact storage keeps float32 rows apart, one pointer each: gather only.
 * A waiting slot is never in the graph (the indexer pops and links under
 * the write lock), so nothing the walk found is scored twice. */
static void scan_slots(const svdb_search_plan *p, const float *q, const uint32_t *list, size_t len, svdb_topk *t,
                       svdb_admit_fn admit, void *ctx)
{
    const svdb_store_view *s = svdb__store_view(p->s);
    svdb_space sp;
    svdb__space_init(&sp, s->metric, s->dim, p->kern, s->ck);
    size_t per = svdb__chunk_rows(s);
    gather_tile g;
    g.n = 0;
    for (size_t i = 0; i < len;) {
        size_t first = list[i], run = 1;
        size_t room = per - (first & (per - 1)); /* a block stays inside its chunk */
        if (room > BLOCK_ROWS) room = BLOCK_ROWS;
        while (run < room && i + run < len && list[i + run] == first + run && first + run < s->n_slots) run++;
        if (!s->ck && run >= MIN_RUN) {
            scan_block(s, &sp, q, first, run, t, admit, ctx);
        } else {
            for (size_t j = 0; j < run; j++) {
                uint32_t slot = list[i + j];
                if (!svdb__slot_live(s, slot)) continue; /* deleted while waiting */
                g.slots[g.n] = slot;
                g.rows[g.n++] = svdb__vec(s, slot);
                if (g.n == TILE) flush_tile(s, &sp, q, &g, t, admit, ctx);
            }
        }
        i += run;
    }
    flush_tile(s, &sp, q, &g, t, admit, ctx);
}

/* The filter as a row predicate. */
typedef struct {
    const svdb_store_view *s;
    const svdb_filter *f;
    int oom; /* a document test could not run (atomic); the search fails with the filter's reason */
} filter_ctx;

static int admit_row(void *arg, uint32_t slot)
{
    filter_ctx *c = arg;
    const svdb_row *r = svdb__row(c->s, slot);
    int m = svdb__filter_match(c->f, svdb__row_meta(r), r->meta_len);
    if (m < 0) __atomic_store_n(&c->oom, 1, __ATOMIC_RELAXED);
    return m > 0;
}

/* Fraction of rows a filter keeps, from an even sample of at most 512 live rows. */
static double selectivity(const svdb_store *store, const svdb_filter *f)
{
    const svdb_store_view *s = svdb__store_view(store);
    size_t step = s->n_slots / 512 + 1, seen = 0, kept = 0;
    for (size_t slot = 0; slot < s->n_slots; slot += step) {
        const svdb_row *r = svdb__row(s, slot);
        if (!svdb__row_live(r)) continue;
        seen++;
        kept += svdb__filter_match(f, svdb__row_meta(r), r->meta_len) > 0;
    }
    return seen ? (double)kept / (double)seen : 0.0;
}

typedef struct {
    const svdb_search_plan *plan;
    int exact;      /* scan instead of walking the graph */
    size_t ef;      /* graph candidate list (results admitted by the filter) */
    size_t min_hits; /* fewer graph hits than this triggers an exact rescan */
    filter_ctx fctx;
    const float *queries;
    size_t k, next, n, slice;
    pthread_mutex_t mu; /* hands out queries */
    svdb_cand *cands;
    size_t *counts;
    int rc;
} batch_job;

/* Searches queries [first, first + nq): one pass over the rows for the exact
 * scan, one graph walk per query otherwise. */
static int run_range(batch_job *job, size_t first, size_t nq)
{
    const svdb_search_plan *p = job->plan;
    svdb_admit_fn admit = p->filter ? admit_row : NULL;
    const float **q = svdb__malloc(nq * sizeof *q);
    svdb_topk *tops = svdb__malloc(nq * sizeof *tops);
    if (!q || !tops) {
        svdb__free(q);
        svdb__free(tops);
        return SVDB_ENOMEM;
    }
    for (size_t j = 0; j < nq; j++) {
        q[j] = job->queries + (first + j) * svdb__store_dim(p->s);
        svdb__topk_init(&tops[j], job->cands + (first + j) * job->k, job->k);
    }
    int rc = SVDB_OK;
    if (p->only) {
        for (size_t j = 0; j < nq; j++) scan_slots(p, q[j], p->only, p->n_only, &tops[j], admit, &job->fctx);
    } else if (job->exact) {
        svdb__flat_scan(p->s, p->kern, q, nq, tops, admit, &job->fctx);
    } else {
        for (size_t j = 0; j < nq; j++) {
            int r = svdb__hnsw_search(p->graph, p->s, p->kern, q[j], job->ef, admit, &job->fctx, &tops[j]);
            if (r != SVDB_OK) rc = r;
            if (p->n_pending) scan_slots(p, q[j], p->pending, p->n_pending, &tops[j], admit, &job->fctx);
            if (tops[j].n < job->min_hits) { /* the walk starved: answer exactly */
                tops[j].n = 0;
                svdb__flat_scan(p->s, p->kern, &q[j], 1, &tops[j], admit, &job->fctx);
            }
        }
    }
    for (size_t j = 0; j < nq; j++) job->counts[first + j] = svdb__topk_finish(&tops[j]);
    svdb__free(q);
    svdb__free(tops);
    return rc;
}

static void *batch_worker(void *arg)
{
    batch_job *job = arg;
    /* Exact scans take one even slice per thread (each slice is one pass over
     * the data); graph walks take small groups, which balances uneven walks. */
    for (;;) {
        pthread_mutex_lock(&job->mu);
        size_t first = job->next;
        size_t want = job->exact ? job->slice : SVDB_KERNEL_MAX_Q;
        size_t nq = job->n - first < want ? job->n - first : want;
        job->next += nq;
        pthread_mutex_unlock(&job->mu);
        if (nq == 0) break;
        int rc = run_range(job, first, nq);
        if (rc != SVDB_OK) __atomic_store_n(&job->rc, rc, __ATOMIC_RELAXED);
    }
    return NULL;
}

int svdb__search_many(const svdb_search_plan *plan, const float *queries, size_t n, size_t k, unsigned threads,
                      svdb_cand *cands, size_t *counts)
{
    batch_job job = {plan, plan->graph == NULL, plan->ef, 0, {svdb__store_view(plan->s), plan->filter, 0},
                     queries, k, 0, n, 0, PTHREAD_MUTEX_INITIALIZER, cands, counts, SVDB_OK};
    if (plan->graph && plan->filter && !plan->only) {
        /* A selective filter would starve the graph walk: scan the matching
         * rows exactly instead. Otherwise the walk keeps ef *admitted* rows
         * and passes through the others, so it already explores about
         * ef / selectivity nodes; widening ef as well would square that
         * (a 2% filter cost 10x an exact scan), for no measurable recall. */
        double p = selectivity(plan->s, plan->filter);
        double matches = p * (double)svdb__store_count(plan->s);
        if (p < 0.02 || matches < 4.0 * (double)(plan->ef > k ? plan->ef : k)) {
            job.exact = 1;
        } else {
            job.min_hits = k < (size_t)matches ? k : (size_t)matches;
        }
    }
    size_t groups = (n + SVDB_KERNEL_MAX_Q - 1) / SVDB_KERNEL_MAX_Q;
    if (threads > groups) threads = (unsigned)groups;
    if (threads > 256) threads = 256;
    if (threads == 0) threads = 1;
    job.slice = (n + threads - 1) / threads;
    pthread_t tids[256];
    unsigned started = 0;
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tids[started], NULL, batch_worker, &job) != 0) break; /* run on fewer threads */
        started++;
    }
    batch_worker(&job); /* the calling thread works too */
    for (unsigned t = 0; t < started; t++) pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&job.mu);
    int rc = __atomic_load_n(&job.rc, __ATOMIC_RELAXED);
    /* A document test that could not run (regex time limit, memory): its
     * reason, stated in this thread (workers' messages are thread-local). */
    if (__atomic_load_n(&job.fctx.oom, __ATOMIC_RELAXED)) return svdb__filter_error(job.fctx.f);
    return rc == SVDB_OK ? SVDB_OK : svdb__fail(rc, "out of memory while searching %zu queries", n);
}

/* One query's hits into the caller's buffers. */
static int hits_write(const svdb_store_view *s, const svdb_cand *cands, size_t count, const svdb_hit_sink *out)
{
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) bytes += svdb__row(s, cands[i].slot)->id_len + 1;
    *out->ids_len = bytes;
    if (bytes > out->ids_cap)
        return svdb__fail(SVDB_ETOOBIG, "the hits' ids need %zu bytes but the buffer holds %zu", bytes, out->ids_cap);
    char *str = out->ids;
    for (size_t i = 0; i < count; i++) {
        const svdb_row *r = svdb__row(s, cands[i].slot);
        memcpy(str, svdb__row_id(r), r->id_len + 1);
        str += r->id_len + 1;
        out->distances[i] = svdb__space_reported(s->metric, cands[i].dist);
    }
    return SVDB_OK;
}

int svdb__hits_build(const svdb_store *store, const svdb_cand *cands, size_t k, const size_t *counts, size_t n,
                     const svdb_hit_sink *out)
{
    const svdb_store_view *s = svdb__store_view(store);
    if (!out->hits) return hits_write(s, cands, counts[0], out);
    size_t total = 0, bytes = 0;
    for (size_t q = 0; q < n; q++)
        for (size_t i = 0; i < counts[q]; i++) {
            total++;
            bytes += svdb__row(s, cands[q * k + i].slot)->id_len + 1;
        }
    if (total == 0) { /* documented: no hits means a NULL array */
        *out->hits = NULL;
        return SVDB_OK;
    }
    svdb_hit *hits = svdb__malloc(total * sizeof *hits + bytes);
    if (!hits) return svdb__fail(SVDB_ENOMEM, "out of memory returning %zu hits", total);
    char *str = (char *)(hits + total);
    size_t h = 0;
    for (size_t q = 0; q < n; q++)
        for (size_t i = 0; i < counts[q]; i++, h++) {
            const svdb_row *r = svdb__row(s, cands[q * k + i].slot);
            memcpy(str, svdb__row_id(r), r->id_len + 1);
            hits[h].id = str;
            hits[h].distance = svdb__space_reported(s->metric, cands[q * k + i].dist);
            str += r->id_len + 1;
        }
    *out->hits = hits;
    return SVDB_OK;
}
