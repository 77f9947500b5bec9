/* Snapshots: the whole collection in one checksummed file, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory). */
#ifndef SVDB_SNAPSHOT_H
#define SVDB_SNAPSHOT_H

#include "store.h"

#include <stdint.h>

#define SVDB_SNAPSHOT_HEADER_BYTES 4096

typedef struct svdb_snap_info {
    uint64_t uuid;
    uint64_t last_lsn; /* every log record up to this one is in the snapshot */
} svdb_snap_info;

/* Writes `s` to dir/snapshot.svdb through dir/snapshot.svdb.tmp. */
int svdb__snapshot_write(const char *dir, const svdb_store *s, const svdb_snap_info *info);
/* Loads dir/snapshot.svdb into a store initialised here; the store is left
 * empty on failure. */
int svdb__snapshot_load(const char *path, svdb_store *s, svdb_snap_info *info);

#endif
