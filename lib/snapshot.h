/* Snapshots: the whole collection in one checksummed file, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory). */
#ifndef SVDB_SNAPSHOT_H
#define SVDB_SNAPSHOT_H

#include "hnsw.h"
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
 * dir/snapshot.svdb.tmp. */
int svdb__snapshot_write(const char *dir, const svdb_store *s, const svdb_hnsw *g, const svdb_snap_info *info);
/* Loads dir/snapshot.svdb into a store initialised here, and for an HNSW
 * collection a graph created here (*g, else NULL). Both are left empty on
 * failure. With compact storage the store keeps the file mapped: its rows'
 * float32 originals stay there. `k` picks the code kernels. */
int svdb__snapshot_load(const char *path, svdb_store *s, svdb_hnsw **g, svdb_snap_info *info, const svdb_kernels *k);
/* Maps a snapshot just written (compact storage), for svdb__store_remap;
 * *vec_offset is where its vectors start. */
int svdb__snapshot_map(const char *dir, void **map, size_t *len, uint64_t *vec_offset);

#endif
