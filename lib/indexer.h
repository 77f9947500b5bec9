/* Background linking of HNSW rows. With it on, a write stores and logs its
 * rows and queues their slots; a thread links queued rows into the graph a
 * chunk at a time under the collection's write lock, and searches scan the
 * rows still queued exactly, so a row is found from the moment its write
 * returns. The queue is guarded by the owner's rwlock: pushed and popped
 * under the write lock, read under the read lock. */
#ifndef SVDB_INDEXER_H
#define SVDB_INDEXER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* What the thread does, supplied by the engine, which owns the locks:
 * `link` takes the collection's write lock, pops a chunk of at most `max`
 * slots into `chunk` (svdb__indexer_pop), links them, puts back what it did
 * not link (svdb__indexer_unpop), calls svdb__indexer_chunk_done, releases
 * the lock, and sets *more when slots remain; `empty` tells, under the read
 * lock, whether nothing is queued. */
typedef struct svdb_indexer_ops {
    int (*link)(void *ctx, uint32_t *chunk, size_t max, int *more);
    int (*empty)(void *ctx);
    void (*idle)(void *ctx); /* after linking, when nothing is left that can be linked now (no lock held; may be NULL) */
    void *ctx;
} svdb_indexer_ops;

typedef struct svdb_indexer {
    uint32_t *q; /* queued slots in [head, tail); each slot at most once */
    size_t head, tail, cap;
    uint8_t *queued; /* per slot: while the slot sits in q, 1, or 2 for a row a hold applies to */
    size_t n_held;   /* atomic: queued slots marked 2 */
    size_t queued_cap;
    svdb_indexer_ops ops;
    unsigned threads; /* sizes the chunks */
    int running;
    pthread_t tid;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t work_cv, idle_cv;
    int stop, work, paused;
    int draining; /* the thread is in drain (mu released) */
    size_t backlog; /* atomic: rows queued or in the chunk being linked, for svdb__indexer_throttle (no engine lock) */
    int throttled;  /* atomic: writers waiting in svdb__indexer_throttle */
    int64_t hold_until; /* atomic: CLOCK_MONOTONIC ns before which held rows are passed over (svdb__indexer_hold) */
    int err; /* SVDB_OK, or the status of a link that failed; linking then stops */
    char errmsg[256];
} svdb_indexer;

void svdb__indexer_init(svdb_indexer *ix);
/* Stops the thread (if running) and frees the queue. */
void svdb__indexer_free(svdb_indexer *ix);
/* The queue functions run under the engine's write lock (reads of the
 * queue under its read lock). */
/* Room for slots below n_slots, so pushes cannot fail. */
int svdb__indexer_reserve(svdb_indexer *ix, size_t n_slots);
/* Queues a slot; a slot already queued stays where it is. */
void svdb__indexer_push(svdb_indexer *ix, uint32_t slot);
/* The same for a row another handle wrote, which a hold keeps queued. */
void svdb__indexer_push_held(svdb_indexer *ix, uint32_t slot);
/* Empties the queue (the rows it held are gone: a reload replaced them). */
void svdb__indexer_clear(svdb_indexer *ix);
/* Takes up to max slots from the front, passing over (leaving queued) the
 * rows a hold in force applies to. */
size_t svdb__indexer_pop(svdb_indexer *ix, uint32_t *out, size_t max);
/* How many queued rows svdb__indexer_pop would take now (write lock held). */
size_t svdb__indexer_ready(const svdb_indexer *ix);
/* Puts a popped slot back at the front (in reverse order of popping). */
void svdb__indexer_unpop(svdb_indexer *ix, uint32_t slot);
/* After a chunk's rows are linked or put back: popped rows count as waiting
 * (for svdb__indexer_throttle) until then. */
void svdb__indexer_chunk_done(svdb_indexer *ix);
/* The queued slots, in order (read lock held). */
static inline const uint32_t *svdb__indexer_queue(const svdb_indexer *ix, size_t *n)
{
    *n = ix->tail - ix->head;
    return ix->q + ix->head;
}
/* Keeps only the queued slots for which keep(ctx, slot) is nonzero, in
 * order (write lock held, so no chunk is being linked). */
void svdb__indexer_retain(svdb_indexer *ix, int (*keep)(void *ctx, uint32_t slot), void *ctx);
/* For the next `ms` milliseconds (or until a later hold ends) the rows
 * queued with svdb__indexer_push_held stay queued, and searchable exactly,
 * because another handle is expected to log their links (links.c); the
 * others are linked as always. svdb__indexer_wait and
 * svdb__indexer_throttle end a hold: their callers want the rows linked. */
void svdb__indexer_hold(svdb_indexer *ix, unsigned ms);
/* Wakes the thread after pushes (write lock released). */
void svdb__indexer_notify(svdb_indexer *ix);
int svdb__indexer_start(svdb_indexer *ix, const svdb_indexer_ops *ops, unsigned threads);
/* Stops and joins the thread; queued slots stay queued. */
void svdb__indexer_stop(svdb_indexer *ix);
/* Waits until the queue is empty; returns the failure that stopped linking, if any. */
int svdb__indexer_wait(svdb_indexer *ix);
/* Waits (no engine lock held) until at most max_rows slots are queued, or
 * linking stops (failed, stopped or paused): a bound on how far linking
 * lags behind the writes. */
void svdb__indexer_throttle(svdb_indexer *ix, size_t max_rows);
/* Nonzero once linking has failed (writes are then refused). */
int svdb__indexer_failed(svdb_indexer *ix);

/* Test hook: a paused indexer takes no new chunk until resumed; pausing
 * waits for the chunk being linked (call it without the write lock). */
void svdb__indexer_pause(svdb_indexer *ix, int paused);

#endif
