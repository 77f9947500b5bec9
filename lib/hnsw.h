/* HNSW approximate-nearest-neighbour graph over the row store's slots.
 * Nodes are store slots; vectors stay in the store. Levels are a hash of
 * (seed, insertion sequence), so a graph built in the same order with the
 * same seed is identical. A delete re-links the nodes that pointed at the
 * removed node and leaves its slot free for reuse. Callers hold the
 * collection's locks: inserts and removals exclusively, searches shared. */
#ifndef SVDB_HNSW_H
#define SVDB_HNSW_H

#include "space.h"
#include "svdb.h"
#include "store.h"
#include "topk.h"

#include <stddef.h>
#include <stdint.h>

#define SVDB_HNSW_NO_LEVEL 0xFF
/* SVDB_MAX_HNSW_M (svdb.h) bounds the links per node on upper levels (2x on
 * level 0): the graph keeps a node's links in stack buffers of that size,
 * so svdb__hnsw_create refuses more. */

typedef struct svdb_hnsw_params {
    uint32_t m;               /* links per node on upper levels; 2m on level 0 */
    uint32_t ef_construction; /* candidate list size while inserting */
    uint32_t ef_search;       /* default candidate list size while searching */
    uint64_t seed;
} svdb_hnsw_params;

typedef struct svdb_hnsw svdb_hnsw;

/* A row predicate for filtered search; returns nonzero to admit `slot`. */
typedef int (*svdb_admit_fn)(void *ctx, uint32_t slot);

/* SVDB_EINVAL when p->m is 0 or above SVDB_MAX_HNSW_M. */
int svdb__hnsw_create(svdb_hnsw **out, const svdb_hnsw_params *p);
void svdb__hnsw_free(svdb_hnsw *h);
const svdb_hnsw_params *svdb__hnsw_params(const svdb_hnsw *h);
/* A slot's top level, or SVDB_HNSW_NO_LEVEL when it is not in the graph. */
uint8_t svdb__hnsw_level_of(const svdb_hnsw *h, uint32_t slot);
/* Changes with every insert and removal. */
uint64_t svdb__hnsw_generation(const svdb_hnsw *h);
/* Room for slots below `n_slots`, so inserts only allocate upper levels. */
int svdb__hnsw_reserve(svdb_hnsw *h, size_t n_slots);
/* Links slot (already written to the store) into the graph. */
int svdb__hnsw_insert(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot);
/* Links n slots, on up to `threads` threads when the batch is large enough
 * to pay for them (the result then depends on thread timing); with one
 * thread, exactly as n calls of svdb__hnsw_insert in order. */
int svdb__hnsw_insert_many(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, const uint32_t *slots, size_t n,
                           unsigned threads);
/* The same, stopping early once *yield (read atomically) is nonzero: slots
 * [0, *done) are then linked and the rest untouched. */
int svdb__hnsw_insert_some(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, const uint32_t *slots, size_t n,
                           unsigned threads, const int *yield, size_t *done);
/* Links slot (in the store, not in the graph) to the neighbours another
 * handle chose for it (nb[l], n_nb[l] for levels 0..level, its link
 * lists, as a log's links record carries them) instead of searching for
 * them: the given neighbours this graph holds on each level become its
 * links, and each gets a link back (re-selecting when full), as an insert
 * does. Returns 1 when linked, 0 when declined (the level is not the one
 * this graph draws for the row, or no given neighbour is in the graph): the
 * caller then inserts it; or a negative status (out of memory; nothing
 * changed). One thread, under the exclusive lock. */
int svdb__hnsw_adopt(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot, int level,
                     const uint32_t *const *nb, const uint32_t *n_nb);
/* A node's links on level l (*n of them), or NULL with *n = 0. */
const uint32_t *svdb__hnsw_links(const svdb_hnsw *h, uint32_t slot, int l, uint32_t *n);
/* Unlinks slot; the store row must still hold its vector. Searches the
 * slot's neighbourhood and re-links the nodes that pointed at it, so the
 * graph stays navigable through any number of deletes: about the cost of an
 * insert (see the comment above it in hnsw.c). */
void svdb__hnsw_remove(svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, uint32_t slot);
/* For tests: the nodes no walk from the entry point can reach on their
 * levels (summed over levels), and the links to nodes no longer on the
 * level. SVDB_ENOMEM only. */
int svdb__hnsw_check(const svdb_hnsw *h, size_t *unreachable, size_t *stale);
/* Fills `out` (k entries) with the nearest admitted live rows to the
 * prepared query q (normalised for cosine); `ef` >= k widens the search. */
int svdb__hnsw_search(const svdb_hnsw *h, const svdb_store *s, const svdb_kernels *k, const float *q, size_t ef,
                      svdb_admit_fn admit, void *ctx, svdb_topk *out);

/* The graph's on-disk encodings (hnsw_codec.c). */

/* Snapshot format 1, read at open (the tests' legacy_v1_writer.c writes
 * it): u32 entry row, u32 top level, then per row a u8 level and, unless
 * SVDB_HNSW_NO_LEVEL, for each level 0..level: u32 count, count rows.
 * Loads a graph for rows 0..n-1 (slots equal rows); SVDB_ECORRUPT on any
 * inconsistency. */
int svdb__hnsw_decode(svdb_hnsw *h, const unsigned char *p, size_t len, size_t n);

/* Snapshot format 2: links are row numbers; row i is slot order[i] and
 * slot s is row to_row[s] (both NULL: row i is slot i, the usual case, in
 * which a snapshot keeps every slot in place). Level 0 is stored as fixed
 * blocks of (2m + 1) u32, the count then the links, exactly as the graph
 * keeps them in memory, so a load points its chunks into the snapshot's
 * map; the upper levels are encoded. */
size_t svdb__hnsw_l0_block_bytes(const svdb_hnsw *h);
/* Slot's level-0 block with stale links dropped (zeros: not in the graph). */
void svdb__hnsw_l0_block(const svdb_hnsw *h, uint32_t slot, const uint32_t *to_row, uint32_t *out);
/* u32 entry, u32 top level, a u8 level per row, then per row with level
 * >= 1, for each level 1..level: u32 count, count links. */
size_t svdb__hnsw_upper_size(const svdb_hnsw *h, const uint32_t *order, size_t n_rows);
void svdb__hnsw_upper_encode(const svdb_hnsw *h, const uint32_t *order, const uint32_t *to_row, size_t n_rows,
                             unsigned char *out);
/* Loads a graph of n rows from its upper-level encoding and level-0 blocks
 * that lie in a private map [map, map + map_len) owned by the caller and
 * outliving the graph; SVDB_ECORRUPT on any inconsistency. */
int svdb__hnsw_load_mapped(svdb_hnsw *h, const unsigned char *upper, size_t len, const uint32_t *blocks, size_t n,
                           const void *map, size_t map_len);
/* After a checkpoint wrote this very graph with n_rows level-0 blocks at
 * `blocks` in a new map: chunks point there. The old map may then go. */
void svdb__hnsw_remap(svdb_hnsw *h, const uint32_t *blocks, size_t n_rows, const void *map, size_t map_len);
/* Copies the chunks that point into a map to memory, so the map may go;
 * on failure nothing changed. */
int svdb__hnsw_unmap(svdb_hnsw *h);

#endif
