/* The table of open handles (see handles.h). Chunks are allocated on demand
 * and never freed or moved, so a lookup needs no lock: it reads a chunk
 * pointer and the entry's generation atomically. */
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
    uint64_t gen;    /* atomic: bumped when the handle closes */
    struct svdb_handle *db; /* atomic: NULL while free */
    uint32_t next_free;
} entry;

static entry *chunks[MAX_CHUNKS];
static uint32_t n_used;              /* entries ever handed out */
static uint32_t free_head = NO_FREE; /* closed entries, reused first */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

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

struct svdb_handle *svdb__handle_get(const struct svdb *token)
{
    uintptr_t t = (uintptr_t)token;
    if (!(t & 1u)) return NULL;
    uint32_t idx = (uint32_t)(t >> 1) & ((1u << INDEX_BITS) - 1);
    uint64_t gen = (uint64_t)t >> (INDEX_BITS + 1);
    if (idx >= MAX_CHUNKS * CHUNK_SIZE) return NULL;
    entry *e = at(idx);
    if (!e) return NULL;
    uint64_t mask = UINTPTR_MAX >> (INDEX_BITS + 1); /* the generation bits a token can hold */
    if ((__atomic_load_n(&e->gen, __ATOMIC_ACQUIRE) & mask) != gen) return NULL;
    return __atomic_load_n(&e->db, __ATOMIC_ACQUIRE);
}

void svdb__handle_remove(const struct svdb *token)
{
    uintptr_t t = (uintptr_t)token;
    uint32_t idx = (uint32_t)(t >> 1) & ((1u << INDEX_BITS) - 1);
    pthread_mutex_lock(&mu);
    entry *e = at(idx);
    if (e && e->db) {
        __atomic_store_n(&e->db, NULL, __ATOMIC_RELEASE);
        __atomic_add_fetch(&e->gen, 1, __ATOMIC_RELEASE);
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
