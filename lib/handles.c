/* The table of open handles (see handles.h). Chunks are allocated on demand
 * and never freed or moved, so a lookup needs no lock: it reads a chunk
 * pointer and the entry's generation atomically.
 *
 * Closing against calls in flight: a call increments its entry's count of
 * calls, then re-reads the generation; close bumps the generation, then
 * reads the count. Both sides use sequentially consistent operations, so
 * either the call sees the new generation (and backs out) or close sees
 * the call (and waits for it). A call that leaves a retired entry with no
 * call left wakes the closer. */
#include "handles.h"

#include "alloc.h"
#include "error.h"
#include "svdb.h"

#include <pthread.h>
#include <stdint.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024u /* 1,048,576 handles open at once */
#define INDEX_BITS 20
#define NO_FREE UINT32_MAX

typedef struct entry {
    uint64_t gen;    /* atomic: bumped when the handle is retired (closing) */
    struct svdb_handle *db; /* atomic: NULL while free */
    uint64_t calls;  /* atomic: calls in flight (and stale tokens backing out) */
    uint32_t next_free;
} entry;

static entry *chunks[MAX_CHUNKS];
static uint32_t n_used;              /* entries ever handed out */
static uint32_t free_head = NO_FREE; /* closed entries, reused first */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER; /* under mu: some retired entry's count hit 0 */
static _Thread_local svdb_call *tl_calls; /* this thread's calls in flight, innermost first */

/* Token layout: bit 0 set (never an aligned pointer, never NULL), bits
 * 1..20 the index, the rest the generation. */
static uintptr_t encode(uint32_t idx, uint64_t gen) { return (uintptr_t)(gen << (INDEX_BITS + 1) | (uint64_t)idx << 1 | 1u); }

static entry *at(uint32_t idx)
{
    entry *c = __atomic_load_n(&chunks[idx >> CHUNK_BITS], __ATOMIC_ACQUIRE);
    return c ? &c[idx & (CHUNK_SIZE - 1)] : NULL;
}

int svdb__handle_add(struct svdb_handle *db, struct svdb **token)
{
    pthread_mutex_lock(&mu);
    uint32_t idx;
    if (free_head != NO_FREE) {
        idx = free_head;
        free_head = at(idx)->next_free;
    } else {
        if (n_used >= MAX_CHUNKS * CHUNK_SIZE) {
            pthread_mutex_unlock(&mu);
            return svdb__fail(SVDB_ENOMEM, "too many open handles (%u)", MAX_CHUNKS * CHUNK_SIZE);
        }
        idx = n_used;
        if (!chunks[idx >> CHUNK_BITS]) {
            entry *c = svdb__calloc(CHUNK_SIZE, sizeof *c);
            if (!c) {
                pthread_mutex_unlock(&mu);
                return svdb__fail(SVDB_ENOMEM, "out of memory registering a handle");
            }
            for (uint32_t i = 0; i < CHUNK_SIZE; i++) c[i].gen = 1;
            __atomic_store_n(&chunks[idx >> CHUNK_BITS], c, __ATOMIC_RELEASE);
        }
        n_used++;
    }
    entry *e = at(idx);
    __atomic_store_n(&e->db, db, __ATOMIC_RELEASE);
    *token = (struct svdb *)encode(idx, __atomic_load_n(&e->gen, __ATOMIC_RELAXED));
    pthread_mutex_unlock(&mu);
    return SVDB_OK;
}

/* The entry a token names and the generation it carries, or NULL for a
 * value that cannot be a token of this table. */
static entry *lookup(const struct svdb *token, uint64_t *gen)
{
    uintptr_t t = (uintptr_t)token;
    uint32_t idx = (uint32_t)(t >> 1) & ((1u << INDEX_BITS) - 1);
    *gen = (uint64_t)t >> (INDEX_BITS + 1);
    if (!(t & 1u)) return NULL;
    return idx < MAX_CHUNKS * CHUNK_SIZE ? at(idx) : NULL;
}

/* The generation bits a token can hold. */
static uint64_t gen_of(const entry *e)
{
    return __atomic_load_n(&e->gen, __ATOMIC_SEQ_CST) & (UINTPTR_MAX >> (INDEX_BITS + 1));
}

struct svdb_handle *svdb__handle_get(const struct svdb *token)
{
    uint64_t gen;
    entry *e = lookup(token, &gen);
    if (!e || gen_of(e) != gen) return NULL;
    return __atomic_load_n(&e->db, __ATOMIC_ACQUIRE);
}

static void leave_entry(entry *e, uint64_t gen)
{
    if (__atomic_sub_fetch(&e->calls, 1, __ATOMIC_SEQ_CST) == 0 && gen_of(e) != gen) {
        pthread_mutex_lock(&mu); /* the closer waits under mu: no lost wake-up */
        pthread_cond_broadcast(&drained);
        pthread_mutex_unlock(&mu);
    }
}

int svdb__handle_enter(const struct svdb *token, svdb_call *call)
{
    uint64_t gen;
    entry *e = lookup(token, &gen);
    if (!e) return 0;
    __atomic_add_fetch(&e->calls, 1, __ATOMIC_SEQ_CST);
    struct svdb_handle *db = gen_of(e) == gen ? __atomic_load_n(&e->db, __ATOMIC_ACQUIRE) : NULL;
    if (!db) {
        leave_entry(e, gen);
        return 0;
    }
    call->token = token;
    call->db = db;
    call->outer = tl_calls;
    tl_calls = call;
    return 1;
}

void svdb__handle_leave(svdb_call *call)
{
    uint64_t gen;
    tl_calls = call->outer;
    entry *e = lookup(call->token, &gen);
    leave_entry(e, gen);
}

int svdb__handle_nested(const svdb_call *call)
{
    for (const svdb_call *c = call->outer; c; c = c->outer)
        if (c->token == call->token) return 1;
    return 0;
}

int svdb__handle_retire(const struct svdb *token)
{
    uint64_t gen;
    entry *e = lookup(token, &gen);
    if (!e) return 0;
    pthread_mutex_lock(&mu); /* one closer wins */
    int won = e->db && gen_of(e) == gen;
    if (won) __atomic_add_fetch(&e->gen, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&mu);
    return won;
}

void svdb__handle_drain(const struct svdb *token)
{
    uint64_t gen;
    entry *e = lookup(token, &gen);
    pthread_mutex_lock(&mu);
    while (__atomic_load_n(&e->calls, __ATOMIC_SEQ_CST) != 0) pthread_cond_wait(&drained, &mu);
    pthread_mutex_unlock(&mu);
}

void svdb__handle_remove(const struct svdb *token)
{
    uint64_t gen;
    entry *e = lookup(token, &gen);
    uint32_t idx = (uint32_t)((uintptr_t)token >> 1) & ((1u << INDEX_BITS) - 1);
    pthread_mutex_lock(&mu);
    if (e && e->db) {
        __atomic_store_n(&e->db, NULL, __ATOMIC_RELEASE);
        e->next_free = free_head;
        free_head = idx;
    }
    pthread_mutex_unlock(&mu);
}

void svdb__handles_each(void (*fn)(struct svdb_handle *db))
{
    for (uint32_t i = 0; i < n_used; i++) {
        entry *e = at(i);
        if (e && e->db) fn(e->db);
    }
}

/* When the library is unloaded (dlclose, or exit) with no handle open, its
 * table goes too. With handles still open it stays: another thread may
 * still be using one while the process exits. */
__attribute__((destructor)) static void free_table(void)
{
    pthread_mutex_lock(&mu);
    int open = 0;
    for (uint32_t i = 0; i < n_used && !open; i++) open = at(i)->db != NULL;
    for (uint32_t c = 0; !open && c < MAX_CHUNKS && chunks[c]; c++) {
        svdb__free(chunks[c]);
        chunks[c] = NULL;
    }
    if (!open) {
        n_used = 0;
        free_head = NO_FREE;
    }
    pthread_mutex_unlock(&mu);
}

void svdb__handles_lock(void) { pthread_mutex_lock(&mu); }
void svdb__handles_unlock(void) { pthread_mutex_unlock(&mu); }
