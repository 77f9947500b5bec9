/* Background linking of HNSW rows. With it on, a write stores and logs its
 * rows and queues their slots; a thread links queued rows into the graph a
 * chunk at a time under the collection's write lock, and searches scan the
 * rows still queued exactly, so a row is found from the moment its write
 * returns. The queue is guarded by the owner's rwlock: pushed and popped
 * under the write lock, read under the read lock. */
#ifndef SVDB_INDEXER_H
#define SVDB_INDEXER_H

#include "distance.h"
#include "hnsw.h"
#include "store.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct svdb_indexer {
    uint32_t *q; /* queued slots in [head, tail); each slot at most once */
    size_t head, tail, cap;
    uint8_t *queued; /* per slot: 1 while the slot sits in q */
    size_t queued_cap;
    /* the thread, and what it links with */
    pthread_rwlock_t *rw;
    svdb_store *s;
    svdb_hnsw *g;
    const svdb_kernels *k;
    unsigned threads;
    int running;
    pthread_t tid;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t work_cv, idle_cv;
    int stop, work, paused;
    int waiters; /* callers waiting for the rwlock (atomic) */
    int err; /* SVDB_OK, or the status of a link that failed; linking then stops */
    char errmsg[256];
} svdb_indexer;

void svdb__indexer_init(svdb_indexer *ix);
/* Stops the thread (if running) and frees the queue. */
void svdb__indexer_free(svdb_indexer *ix);
/* Room for slots below n_slots (write lock held), so pushes cannot fail. */
int svdb__indexer_reserve(svdb_indexer *ix, size_t n_slots);
/* Queues a slot (write lock held); a slot already queued stays where it is. */
void svdb__indexer_push(svdb_indexer *ix, uint32_t slot);
/* Wakes the thread after pushes (write lock released). */
void svdb__indexer_notify(svdb_indexer *ix);
int svdb__indexer_start(svdb_indexer *ix, pthread_rwlock_t *rw, svdb_store *s, svdb_hnsw *g, const svdb_kernels *k,
                        unsigned threads);
/* Stops and joins the thread; queued slots stay queued. */
void svdb__indexer_stop(svdb_indexer *ix);
/* Waits until the queue is empty; returns the failure that stopped linking, if any. */
int svdb__indexer_wait(svdb_indexer *ix);
/* Nonzero once linking has failed (writes are then refused). */
int svdb__indexer_failed(svdb_indexer *ix);

/* Test hooks: a paused indexer takes no new chunk until resumed; and the
 * indexer of an open handle. */
void svdb__indexer_pause(svdb_indexer *ix, int paused);
struct svdb;
svdb_indexer *svdb__indexer_of(struct svdb *db);
/* Test hook: called by a checkpoint between writing the snapshot and
 * pointing the rows at it (NULL: none). */
extern void (*svdb__checkpoint_hook)(struct svdb *db);

/* The collection's rwlock, taken through these: callers waiting for it are
 * counted, and the indexer lets them in between two chunks, where it would
 * otherwise take the lock straight back (a writer-preferring lock favours
 * it) and hold off every reader and writer until the queue is empty. */
static inline void svdb__rw_rdlock(svdb_indexer *ix, pthread_rwlock_t *rw)
{
    __atomic_add_fetch(&ix->waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_rdlock(rw);
    __atomic_sub_fetch(&ix->waiters, 1, __ATOMIC_RELAXED);
}
static inline void svdb__rw_wrlock(svdb_indexer *ix, pthread_rwlock_t *rw)
{
    __atomic_add_fetch(&ix->waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_wrlock(rw);
    __atomic_sub_fetch(&ix->waiters, 1, __ATOMIC_RELAXED);
}

/* The queued slots that are live and unlinked: the rows a graph search must
 * scan exactly (read lock held). */
static inline int svdb__indexer_is_pending(const svdb_store *s, const svdb_hnsw *g, uint32_t slot)
{
    return slot < s->n_slots && svdb__row_live(svdb__row(s, slot)) && svdb__hnsw_level_of(g, slot) == SVDB_HNSW_NO_LEVEL;
}
size_t svdb__indexer_pending(const svdb_indexer *ix, const svdb_store *s, const svdb_hnsw *g);

#endif
