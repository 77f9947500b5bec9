/* The collection engine: one collection's files, lock, rows, graph, log and
 * checkpoints, behind an opaque handle. lib/api.c is its only caller; it
 * checks arguments and handles, and the engine does the rest. Every write is
 * planned (validated, memory reserved), logged, then applied in memory by
 * the same code replay uses, so a failure at any step leaves the collection
 * as it was. Strings and vectors are the caller's: the engine copies them
 * once, under its lock, before it checks them. */
#ifndef SVDB_COLLECTION_H
#define SVDB_COLLECTION_H

#include "filter.h"
#include "indexer.h"
#include "svdb.h"

#include <stddef.h>
#include <stdint.h>

struct svdb_hit_sink; /* search.h */

typedef struct svdb_coll svdb_coll;

/* Opens or creates the collection at path; `o` is checked (api.c). */
int svdb__coll_open(svdb_coll **out, const char *path, const svdb_open_options *o);
/* Stops the indexer, checkpoints (unless writes are refused) and frees:
 * the collection is gone whatever the status says. */
int svdb__coll_close(svdb_coll *c);
/* A forked child's copy lets go of the parent's lock (see api.c). */
void svdb__coll_forked(svdb_coll *c);
/* The verdict of the check that open deferred, without waiting for it. */
int svdb__coll_sound(const svdb_coll *c);
/* Waits for that check. */
int svdb__coll_verify(svdb_coll *c);
int svdb__coll_persist(svdb_coll *c);
/* compact.c: svdb_compact (packs the rows into a new snapshot and loads it),
 * and svdb_get_stats (every field of `st`, whatever its version). */
int svdb__coll_compact(svdb_coll *c);
int svdb__coll_stats(svdb_coll *c, svdb_stats *st);

/* Writes (arrays already checked non-NULL, n >= 1). */
int svdb__coll_put(svdb_coll *c, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                   const char *const *metas, int is_add);
int svdb__coll_update(svdb_coll *c, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metas, const svdb_update_options *o, size_t *n_updated);
int svdb__coll_delete(svdb_coll *c, size_t n, const char *const *ids, size_t *n_deleted);

/* Reads. `id` has been copied and checked (len bytes). */
int svdb__coll_get(svdb_coll *c, const char *id, size_t len, float *vector, uint32_t dim, char **metadata);
int svdb__coll_get_batch(svdb_coll *c, size_t n, const char *const *ids, float *vectors, uint32_t dim,
                         char ***metadatas, int *found);
int svdb__coll_contains(svdb_coll *c, const char *id, size_t len, int *found);
size_t svdb__coll_count(svdb_coll *c);
uint32_t svdb__coll_dim(svdb_coll *c);
/* Fixed for the collection's lifetime. */
int svdb__coll_metric(svdb_coll *c);
int svdb__coll_storage(svdb_coll *c);
int svdb__coll_index(const svdb_coll *c);
/* Live ids admitted by filter (NULL: all) in insertion order, one block. */
int svdb__coll_ids(svdb_coll *c, const svdb_filter *filter, char ***ids, size_t *count);
/* svdb_select: live rows admitted by filter (NULL: all) among the n_only ids
 * of `only` (NULL: all rows), in insertion order, `offset` skipped, at most
 * `limit`; ids as svdb_ids returns them, metadata (if metas) as
 * svdb_get_batch does. */
int svdb__coll_select(svdb_coll *c, const svdb_filter *filter, const char *const *only, size_t n_only, size_t offset,
                      size_t limit, char ***ids, char ***metas, size_t *count);
/* n_hits has n entries, zeroed by the caller; `o` may be NULL. */
int svdb__coll_search(svdb_coll *c, size_t n, const float *queries, uint32_t dim, size_t k,
                      const svdb_search_options *o, const svdb_filter *filter, const struct svdb_hit_sink *out,
                      size_t *n_hits);

void svdb__coll_set_progress(svdb_coll *c, svdb_progress_fn fn, void *ctx);
int svdb__coll_index_wait(svdb_coll *c);
/* Applies what other handles and processes wrote since this one last
 * looked (one read of the lock file's head when nothing changed); every
 * read call starts with it. No-op for an exclusive handle. */
int svdb__coll_refresh(svdb_coll *c);
size_t svdb__coll_index_pending(svdb_coll *c);

/* Test hooks: the background indexer; and a call made by a checkpoint
 * between writing the snapshot and pointing the rows at it, given the
 * handle's token (svdb__coll_set_token). */
svdb_indexer *svdb__coll_indexer(svdb_coll *c);
void svdb__coll_set_token(svdb_coll *c, svdb *token);
extern void (*svdb__checkpoint_hook)(svdb *db);
/* Test hook (api.c): the indexer of an open handle, or NULL. */
svdb_indexer *svdb__indexer_of(svdb *db);
/* For tests: rows whose links this handle logged, and rows of others' puts
 * whose logged links it adopted and declined (links records, write.c). */
void svdb__coll_links_counts(svdb_coll *c, uint64_t counts[3]);
int svdb__links_counts(svdb *db, uint64_t counts[3]);

#endif
