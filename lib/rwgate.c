/* The collection's reader-writer lock (see rwgate.h). */
#include "rwgate.h"

#include <time.h>

void svdb__gate_init(svdb_rwgate *g)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Without this, a steady stream of searches could starve writers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g->rw, &attr);
    pthread_rwlockattr_destroy(&attr);
    g->waiters = 0;
}

void svdb__gate_destroy(svdb_rwgate *g) { pthread_rwlock_destroy(&g->rw); }

void svdb__gate_let_in(svdb_rwgate *g, int ms)
{
    struct timespec pause = {0, 20000}; /* 20 us */
    for (int i = 0; i < ms * 50 && __atomic_load_n(&g->waiters, __ATOMIC_RELAXED) > 0; i++) nanosleep(&pause, NULL);
}
