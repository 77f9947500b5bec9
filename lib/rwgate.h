/* The collection's reader-writer lock, with a count of the callers waiting
 * for it. The engine owns it; the background indexer is handed a gate only
 * through the engine's link callback (see collection.c), never a lock.
 * A thread that holds the lock for long stretches (linking a chunk) checks
 * `waiters` to let callers in between two stretches: a writer-preferring
 * lock would otherwise hand it straight back to that thread. */
#ifndef SVDB_RWGATE_H
#define SVDB_RWGATE_H

#include <pthread.h>

typedef struct svdb_rwgate {
    pthread_rwlock_t rw;
    int waiters; /* atomic */
} svdb_rwgate;

void svdb__gate_init(svdb_rwgate *g);
void svdb__gate_destroy(svdb_rwgate *g);

static inline void svdb__gate_rdlock(svdb_rwgate *g)
{
    __atomic_add_fetch(&g->waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_rdlock(&g->rw);
    __atomic_sub_fetch(&g->waiters, 1, __ATOMIC_RELAXED);
}
static inline void svdb__gate_wrlock(svdb_rwgate *g)
{
    __atomic_add_fetch(&g->waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_wrlock(&g->rw);
    __atomic_sub_fetch(&g->waiters, 1, __ATOMIC_RELAXED);
}
static inline void svdb__gate_unlock(svdb_rwgate *g) { pthread_rwlock_unlock(&g->rw); }
/* Gives waiting callers up to ms milliseconds to take the lock. */
void svdb__gate_let_in(svdb_rwgate *g, int ms);

#endif
