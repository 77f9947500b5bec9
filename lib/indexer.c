/* The background linker: a queue of slots and one thread draining it. */
#include "indexer.h"

#include "alloc.h"
#include "error.h"
#include "svdb.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Rows linked per hold of the write lock, per build thread, while nobody
 * waits for the lock: it is not taken so often that its hand-offs cost
 * much. A caller that comes to wait cuts the chunk short: it waits for one
 * row per build thread (see svdb__hnsw_insert_some), not for the chunk. */
#define CHUNK_PER_THREAD 256

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void svdb__indexer_init(svdb_indexer *ix)
{
    memset(ix, 0, sizeof *ix);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* holds are timed on it */
    pthread_cond_init(&ix->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&ix->idle_cv, NULL);
}

/* Whether a hold is in force. */
static int held(svdb_indexer *ix)
{
    int64_t until = __atomic_load_n(&ix->hold_until, __ATOMIC_RELAXED);
    return until && now_ns() < until;
}

void svdb__indexer_hold(svdb_indexer *ix, unsigned ms)
{
    int64_t until = now_ns() + (int64_t)ms * 1000000;
    if (until > __atomic_load_n(&ix->hold_until, __ATOMIC_RELAXED))
        __atomic_store_n(&ix->hold_until, until, __ATOMIC_RELAXED);
}

/* Ends a hold and lets the thread at the queue (mu held). */
static void release_hold(svdb_indexer *ix)
{
    if (!__atomic_load_n(&ix->hold_until, __ATOMIC_RELAXED)) return;
    __atomic_store_n(&ix->hold_until, 0, __ATOMIC_RELAXED);
    ix->work = 1;
    pthread_cond_signal(&ix->work_cv);
}

void svdb__indexer_free(svdb_indexer *ix)
{
    svdb__indexer_stop(ix);
    svdb__free(ix->q);
    svdb__free(ix->queued);
    pthread_mutex_destroy(&ix->mu);
    pthread_cond_destroy(&ix->work_cv);
    pthread_cond_destroy(&ix->idle_cv);
    memset(ix, 0, sizeof *ix);
}

/* The queue's length for svdb__indexer_throttle, after each change (under
 * the engine's write lock). */
static void count(svdb_indexer *ix) { __atomic_store_n(&ix->backlog, ix->tail - ix->head, __ATOMIC_SEQ_CST); }

static void set_held(svdb_indexer *ix, size_t n) { __atomic_store_n(&ix->n_held, n, __ATOMIC_SEQ_CST); }

void svdb__indexer_clear(svdb_indexer *ix)
{
    for (size_t i = ix->head; i < ix->tail; i++) ix->queued[ix->q[i]] = 0;
    ix->head = ix->tail = 0;
    set_held(ix, 0);
    count(ix);
}

int svdb__indexer_reserve(svdb_indexer *ix, size_t n_slots)
{
    if (n_slots <= ix->cap) return SVDB_OK;
    size_t cap = ix->cap ? ix->cap : 1024;
    while (cap < n_slots) cap *= 2;
    uint32_t *q = svdb__malloc(cap * sizeof *q);
    uint8_t *queued = svdb__calloc(cap, 1);
    if (!q || !queued) {
        svdb__free(q);
        svdb__free(queued);
        return svdb__fail(SVDB_ENOMEM, "out of memory growing the indexing queue");
    }
    size_t n = ix->tail - ix->head;
    if (n) memcpy(q, ix->q + ix->head, n * sizeof *q);
    if (ix->queued_cap) memcpy(queued, ix->queued, ix->queued_cap);
    svdb__free(ix->q);
    svdb__free(ix->queued);
    ix->q = q;
    ix->queued = queued;
    ix->head = 0;
    ix->tail = n;
    ix->cap = ix->queued_cap = cap;
    return SVDB_OK;
}

static void push(svdb_indexer *ix, uint32_t slot, uint8_t mark)
{
    if (ix->queued[slot]) return;
    if (ix->head == ix->tail) ix->head = ix->tail = 0;
    /* Each slot is queued at most once and slot < cap, so after sliding the
     * queue down there is always room. */
    if (ix->tail == ix->cap) {
        memmove(ix->q, ix->q + ix->head, (ix->tail - ix->head) * sizeof *ix->q);
        ix->tail -= ix->head;
        ix->head = 0;
    }
    ix->q[ix->tail++] = slot;
    ix->queued[slot] = mark;
    if (mark == 2) set_held(ix, ix->n_held + 1);
    count(ix);
}

void svdb__indexer_push(svdb_indexer *ix, uint32_t slot) { push(ix, slot, 1); }
void svdb__indexer_push_held(svdb_indexer *ix, uint32_t slot) { push(ix, slot, 2); }

void svdb__indexer_retain(svdb_indexer *ix, int (*keep)(void *ctx, uint32_t slot), void *ctx)
{
    size_t w = ix->head, n_held = ix->n_held;
    for (size_t i = ix->head; i < ix->tail; i++) {
        uint32_t slot = ix->q[i];
        if (keep(ctx, slot)) {
            ix->q[w++] = slot;
        } else {
            n_held -= ix->queued[slot] == 2;
            ix->queued[slot] = 0;
        }
    }
    ix->tail = w;
    set_held(ix, n_held);
    count(ix);
}

void svdb__indexer_notify(svdb_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    ix->work = 1;
    pthread_cond_signal(&ix->work_cv);
    pthread_mutex_unlock(&ix->mu);
}

size_t svdb__indexer_pop(svdb_indexer *ix, uint32_t *out, size_t max)
{
    size_t n = 0, n_held = ix->n_held;
    if (!n_held || !held(ix)) {
        while (ix->head < ix->tail && n < max) {
            uint32_t slot = ix->q[ix->head++];
            n_held -= ix->queued[slot] == 2;
            ix->queued[slot] = 0;
            out[n++] = slot;
        }
        set_held(ix, n_held);
        return n; /* still counted in the backlog until svdb__indexer_chunk_done */
    }
    /* Held rows stay, in order, just before the first row not looked at. */
    size_t i = ix->head, kept = 0;
    for (; i < ix->tail && n < max; i++) {
        uint32_t slot = ix->q[i];
        if (ix->queued[slot] == 2) {
            ix->q[ix->head + kept++] = slot;
        } else {
            ix->queued[slot] = 0;
            out[n++] = slot;
        }
    }
    if (kept) memmove(ix->q + i - kept, ix->q + ix->head, kept * sizeof *ix->q);
    ix->head = i - kept;
    return n;
}

/* Rows that can be linked now (write lock held). */
size_t svdb__indexer_ready(const svdb_indexer *ix)
{
    size_t n = ix->tail - ix->head;
    return ix->n_held && held((svdb_indexer *)ix) ? n - ix->n_held : n;
}

void svdb__indexer_unpop(svdb_indexer *ix, uint32_t slot)
{
    if (ix->queued[slot]) return;
    if (ix->head == 0) { /* not after a pop (it leaves room in front): slide the queue up by one */
        memmove(ix->q + 1, ix->q, (ix->tail - ix->head) * sizeof *ix->q);
        ix->head++;
        ix->tail++;
    }
    ix->q[--ix->head] = slot;
    ix->queued[slot] = 1;
}

void svdb__indexer_chunk_done(svdb_indexer *ix) { count(ix); }

/* Links queued rows until none is left that can be linked now (a hold
 * keeps some), a link fails, or stop or a pause is asked (a pause set while
 * a chunk is linked takes effect before the next one: rows queued after
 * svdb__indexer_pause returns stay queued). */
static int drain(svdb_indexer *ix, uint32_t *chunk, size_t max)
{
    for (;;) {
        int more = 0;
        int rc = ix->ops.link(ix->ops.ctx, chunk, max, &more);
        if (__atomic_load_n(&ix->throttled, __ATOMIC_SEQ_CST)) { /* a writer waits for the queue to shrink */
            pthread_mutex_lock(&ix->mu);
            pthread_cond_broadcast(&ix->idle_cv);
            pthread_mutex_unlock(&ix->mu);
        }
        if (rc != SVDB_OK || !more || __atomic_load_n(&ix->stop, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&ix->paused, __ATOMIC_ACQUIRE))
            return rc;
    }
}

static void *run(void *arg)
{
    svdb_indexer *ix = arg;
    size_t max = (size_t)CHUNK_PER_THREAD * (ix->threads ? ix->threads : 1);
    uint32_t *chunk = svdb__malloc(max * sizeof *chunk);
    pthread_mutex_lock(&ix->mu);
    if (!chunk) {
        ix->err = SVDB_ENOMEM;
        snprintf(ix->errmsg, sizeof ix->errmsg, "out of memory starting the background indexer");
    }
    for (;;) {
        while (!ix->stop && (!ix->work || ix->err || ix->paused)) pthread_cond_wait(&ix->work_cv, &ix->mu);
        if (ix->stop) break;
        int64_t until = __atomic_load_n(&ix->hold_until, __ATOMIC_RELAXED);
        size_t n_held = __atomic_load_n(&ix->n_held, __ATOMIC_SEQ_CST);
        if (n_held && n_held == __atomic_load_n(&ix->backlog, __ATOMIC_SEQ_CST) && until && now_ns() < until) {
            /* only held rows queued: wait for the hold's end, a push, stop or pause */
            struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
            pthread_cond_timedwait(&ix->work_cv, &ix->mu, &ts);
            continue;
        }
        ix->work = 0;
        ix->draining = 1;
        pthread_mutex_unlock(&ix->mu);
        int rc = drain(ix, chunk, max);
        if (rc == SVDB_OK && ix->ops.idle && !__atomic_load_n(&ix->stop, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&ix->paused, __ATOMIC_ACQUIRE))
            ix->ops.idle(ix->ops.ctx);
        pthread_mutex_lock(&ix->mu);
        ix->draining = 0;
        if (__atomic_load_n(&ix->n_held, __ATOMIC_SEQ_CST)) ix->work = 1; /* held rows: after the hold */
        if (rc != SVDB_OK) {
            ix->err = rc;
            snprintf(ix->errmsg, sizeof ix->errmsg, "%s", svdb_errmsg());
        }
        pthread_cond_broadcast(&ix->idle_cv);
    }
    pthread_cond_broadcast(&ix->idle_cv);
    pthread_mutex_unlock(&ix->mu);
    svdb__free(chunk);
    return NULL;
}

int svdb__indexer_start(svdb_indexer *ix, const svdb_indexer_ops *ops, unsigned threads)
{
    ix->ops = *ops;
    ix->threads = threads;
    ix->stop = 0;
    ix->work = 1; /* rows queued while loading */
    int e = pthread_create(&ix->tid, NULL, run, ix);
    if (e != 0) return svdb__fail_errno(SVDB_EIO, e, "cannot start the background indexer thread");
    ix->running = 1;
    return SVDB_OK;
}

void svdb__indexer_stop(svdb_indexer *ix)
{
    if (!ix->running) return;
    pthread_mutex_lock(&ix->mu);
    __atomic_store_n(&ix->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&ix->work_cv);
    pthread_mutex_unlock(&ix->mu);
    pthread_join(ix->tid, NULL);
    ix->running = 0;
}

int svdb__indexer_wait(svdb_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    release_hold(ix);
    for (;;) {
        if (ix->err || !ix->running || ix->stop) break;
        /* A chunk is popped and linked under one hold of the write lock, so
         * an empty queue seen under the read lock means every row is linked. */
        if (ix->ops.empty(ix->ops.ctx)) break;
        pthread_cond_wait(&ix->idle_cv, &ix->mu);
    }
    int rc = ix->err;
    char msg[sizeof ix->errmsg];
    memcpy(msg, ix->errmsg, sizeof msg);
    pthread_mutex_unlock(&ix->mu);
    return rc == SVDB_OK ? SVDB_OK : svdb__fail(rc, "background indexing stopped: %s", msg);
}

void svdb__indexer_pause(svdb_indexer *ix, int paused)
{
    pthread_mutex_lock(&ix->mu);
    __atomic_store_n(&ix->paused, paused, __ATOMIC_RELEASE);
    if (!paused) ix->work = 1; /* a drain cut short by the pause left rows queued */
    pthread_cond_signal(&ix->work_cv);
    if (paused) pthread_cond_broadcast(&ix->idle_cv); /* throttled writers stop waiting */
    /* A pause waits out the chunk being linked (drain stops after it), so
     * that no row queued after this returns is taken. The caller must not
     * hold the collection's write lock, which that chunk needs. */
    while (paused && ix->draining) pthread_cond_wait(&ix->idle_cv, &ix->mu);
    pthread_mutex_unlock(&ix->mu);
}

void svdb__indexer_throttle(svdb_indexer *ix, size_t max_rows)
{
    if (__atomic_load_n(&ix->backlog, __ATOMIC_SEQ_CST) <= max_rows) return;
    pthread_mutex_lock(&ix->mu);
    /* drain broadcasts idle_cv after each chunk while a writer waits, run()
     * and a pause when they stop, all under mu; and drain stores the backlog
     * before it reads `throttled` as this does the reverse (both seq_cst),
     * so no wake-up is missed. */
    __atomic_add_fetch(&ix->throttled, 1, __ATOMIC_SEQ_CST);
    release_hold(ix); /* this handle's own writes wait: link now */
    while (__atomic_load_n(&ix->backlog, __ATOMIC_SEQ_CST) > max_rows && ix->running && !ix->stop && !ix->err &&
           !ix->paused)
        pthread_cond_wait(&ix->idle_cv, &ix->mu);
    __atomic_sub_fetch(&ix->throttled, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&ix->mu);
}

int svdb__indexer_failed(svdb_indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    int failed = ix->err != SVDB_OK;
    pthread_mutex_unlock(&ix->mu);
    return failed;
}
