/* The write-ahead log: an append-only file of checksummed, numbered records.
 * Every acknowledged write is in it before the call returns. */
#ifndef SVDB_WAL_H
#define SVDB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "mapfile.h"
#include "os.h"

#define SVDB_WAL_HEADER_BYTES 32
#define SVDB_REC_HEADER_BYTES 24

#define SVDB_WAL_MAX_VIEWS 40

typedef struct svdb_wal {
    int fd;
    uint64_t end; /* offset where the next record goes */
    uint64_t uuid;
    uint64_t ino; /* the file's inode: a checkpoint replaces the file, and other processes notice */
    /* The sequence number of the record that ends at `end` (0: none), and
     * of the one before it (for svdb__wal_cut). Following on from `end`
     * checks the next record against it, not against what the caller has
     * applied: a snapshot may already hold records this file holds past `end`. */
    uint64_t tail_lsn, tail_before;
    char *path;
    uint32_t version; /* of the file: 2 pads payloads to 4 bytes, 1 does not */
    /* Read-only maps of the file from offset 0, each twice the last, owned
     * here: a pointer into one stays valid until svdb__wal_unview. */
    svdb_map views[SVDB_WAL_MAX_VIEWS];
    int n_views;
} svdb_wal;

/* Creates the log d/name for collection `uuid` (a new file: a stale one of
 * that name is removed first), synced. */
int svdb__wal_create(svdb_wal *w, const svdb_dir *d, const char *name, uint64_t uuid);
/* Opens the existing log d/name (read-only unless `writable`) and checks it
 * belongs to collection `uuid` (0: any; w->uuid then tells which). */
int svdb__wal_open(svdb_wal *w, const svdb_dir *d, const char *name, uint64_t uuid, int writable);
void svdb__wal_close(svdb_wal *w);

/* `off` is the payload's offset in the file, `lsn` the record's. */
typedef int (*svdb_wal_fn)(void *ctx, uint32_t type, const unsigned char *payload, size_t len, uint64_t off,
                           uint64_t lsn);
/* Calls fn for each record with lsn > after_lsn, in order, from w->end (the
 * header's end after open: all of the file; later, where the records read
 * so far end, and then the next must be after_lsn + 1) up to byte `limit`
 * at most. Stops at a torn or damaged record, or one out of sequence; with
 * `cut` (only by the handle that holds the write lock: another may be
 * appending) cuts everything from there off the file, synced, and reports
 * its size in *dropped. */
int svdb__wal_replay(svdb_wal *w, uint64_t after_lsn, uint64_t limit, int cut, svdb_wal_fn fn, void *ctx,
                     uint64_t *last_lsn, uint64_t *dropped);
/* Appends one record. `rec` holds SVDB_REC_HEADER_BYTES of room followed by
 * the payload. On any failure the record is cut back off the file. A full
 * disk during the write is SVDB_ENOSPC and leaves the handle writable; a
 * failed fsync, another write error, or a failed cut is SVDB_EIO and sets
 * *poisoned. */
int svdb__wal_append(svdb_wal *w, unsigned char *rec, size_t payload_len, uint32_t type, uint64_t lsn, int sync,
                     int *poisoned);
/* Where the next record's payload will start in the file. */
static inline uint64_t svdb__wal_next_payload(const svdb_wal *w) { return w->end + SVDB_REC_HEADER_BYTES; }
/* Cuts the log back to `end` (the end before the last appends, which the
 * caller undid), synced, so no reopen replays them. */
int svdb__wal_cut(svdb_wal *w, uint64_t end);
/* Bytes [off, off + len) of the file (already written) through a memory map,
 * valid until svdb__wal_unview; NULL (error set) if it cannot be mapped. */
const void *svdb__wal_view(svdb_wal *w, uint64_t off, size_t len);
/* Unmaps every view. Pointers into them must be gone first. */
void svdb__wal_unview(svdb_wal *w);
/* Replaces the log by an empty one (after a checkpoint): a new file d/tmp,
 * synced, renamed over d/name, the directory synced; w then writes the new
 * file. Other processes still reading the old file keep it until they close
 * it (they see its inode gone). On failure w is unchanged, and so is d/name. */
int svdb__wal_replace(svdb_wal *w, const svdb_dir *d, const char *name, const char *tmp);

#endif
