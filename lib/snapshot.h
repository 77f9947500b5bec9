/* Snapshots: the whole collection in one checksummed file, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory). */
#ifndef SVDB_SNAPSHOT_H
#define SVDB_SNAPSHOT_H

#include "hnsw.h"
#include "mapfile.h"
#include "os.h"
#include "progress.h"
#include "store.h"

#include <stdint.h>

#define SVDB_SNAPSHOT_HEADER_BYTES 4096

typedef struct svdb_snap_info {
    uint64_t uuid;
    uint64_t last_lsn; /* every log record up to this one is in the snapshot */
    int index;         /* SVDB_INDEX_FLAT or SVDB_INDEX_HNSW */
    int storage;       /* SVDB_STORAGE_F32, _F16 or _INT8 */
    svdb_hnsw_params hnsw;
} svdb_snap_info;

/* Writes `s` (and its graph, for HNSW) to dir/snapshot.svdb through
 * dir/snapshot.svdb.tmp. Slot i is written as row i, unless more than a
 * quarter of the slots are free, or `pack` is set and any is (svdb_compact):
 * then the live rows are packed, and
 * *to_row (when to_row is not NULL) receives each slot's row
 * (UINT32_MAX: free), for the caller to free; else it is set to NULL.
 * `pr` (or NULL) is told the rows written and may cancel: SVDB_ECANCELED,
 * the temporary file removed, the previous snapshot in place. */
int svdb__snapshot_write(const svdb_dir *dir, const svdb_store *s, const svdb_hnsw *g, const svdb_snap_info *info,
                         int pack, uint32_t **to_row, svdb_progress *pr);
/* Loads dir/snapshot.svdb into a store created here (*s), and for an HNSW
 * collection a graph created here (*g, else NULL). Both are NULL on
 * failure. A format-2 snapshot stays mapped (privately) by the store: its
 * f32 vectors, a compact store's codes and originals, and the level-0 links
 * are read in place. Its vectors and links are checked (checksums, finite values)
 * before this returns when they are small; otherwise *deferred receives that
 * check, for the caller to run (svdb__snapshot_check) and free. `k` picks
 * the code kernels. */
typedef struct svdb_snap_check svdb_snap_check;
int svdb__snapshot_load(const svdb_dir *dir, svdb_store **s, svdb_hnsw **g, svdb_snap_info *info,
                        const svdb_kernels *k, svdb_snap_check **deferred);
/* SVDB_OK, SVDB_ECORRUPT naming the damage, an I/O error, or -1 when *stop
 * (read atomically; may be NULL) became nonzero first. */
int svdb__snapshot_check(svdb_snap_check *c, const int *stop);
/* Bytes checked so far of the total (read atomically, from any thread). */
void svdb__snapshot_check_progress(const svdb_snap_check *c, uint64_t *done, uint64_t *total);
void svdb__snapshot_check_free(svdb_snap_check *c);
/* Vectors, links and codes below this many bytes are checked at load (tests lower it). */
extern size_t svdb__snapshot_defer_bytes;
/* Test hook: called before each block the deferred check reads (NULL: none). */
extern void (*svdb__snapshot_check_hook)(void);

/* A snapshot just written, mapped privately: `map` is the caller's, to hand
 * to svdb__store_remap (which takes it; svdb__hnsw_remap borrows its base
 * and length first) or to release. */
typedef struct svdb_snap_map {
    svdb_map map;
    size_t rows;
    uint64_t vec_offset, l0_offset, codes_offset;
} svdb_snap_map;
int svdb__snapshot_map(const svdb_dir *dir, svdb_snap_map *out);

#endif
