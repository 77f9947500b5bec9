/* The engine's own state, shared by its files only: collection.c (open,
 * lock, close), write.c (the write path and replay), read.c (lookups and
 * search) and checkpoint.c (snapshots, the deferred check). Nothing else
 * includes this header; lib/api.c sees svdb_coll as opaque. */
#ifndef SVDB_COLLECTION_IMPL_H
#define SVDB_COLLECTION_IMPL_H

#include "collection.h"
#include "distance.h"
#include "mapfile.h"
#include "os.h"
#include "hnsw.h"
#include "indexer.h"
#include "record.h"
#include "rwgate.h"
#include "snapshot.h"
#include "space.h"
#include "store.h"
#include "wal.h"

#include <pthread.h>

/* The files of a collection's directory. */
#define SVDB_LOCK_NAME "LOCK"
#define SVDB_WAL_NAME "wal.svdb"
#define SVDB_SNAP_NAME "snapshot.svdb"
#define SVDB_SNAP_TMP_NAME "snapshot.svdb.tmp"
#define SVDB_WAL_TMP_NAME "wal.svdb.tmp"

struct svdb_coll {
    svdb *token;  /* the caller's handle, for the checkpoint test hook */
    svdb_dir dir; /* held open: files are found relative to it, never by path again */
    int lock_fd; /* the LOCK file (see sharing.c); -1 for a read-only handle without one */
    int mode;    /* SVDB_OPEN_* */
    uint32_t busy_ms;
    /* What this handle has applied of the log (atomic; sharing.c). */
    uint64_t seen_ino, seen_end;
    /* LOCK's first page, mapped shared once the head exists (sharing.c;
     * writable unless read-only: writers publish the head through it):
     * head_base is set once (atomically) by the thread that mapped it, and
     * head_map, its owner, is released at close. head_nomap: mapping failed,
     * keep to pread. */
    void *head_base;
    svdb_map head_map;
    int head_nomap;
    int dirty; /* this handle logged records its last snapshot does not hold */
    int durability;
    pthread_mutex_t turn_mu;  /* writers of this handle queue here for the write lock */
    pthread_mutex_t write_mu; /* serializes writers, checkpoints and catching up */
    svdb_rwgate gate;         /* readers vs. the brief in-memory apply */
    svdb_store *store;
    int index;             /* SVDB_INDEX_FLAT or SVDB_INDEX_HNSW */
    svdb_hnsw *graph;      /* HNSW only */
    svdb_hnsw_params hnsw; /* as stored; ef_search may be overridden per handle */
    svdb_wal wal;
    uint64_t uuid;
    uint64_t next_lsn;
    uint64_t snap_lsn;
    int poisoned;
    /* Replay (write.c): the rows the last replayed put stored, left for the
     * next record (or the run's end) to link unless that record is its
     * links record; and that put's lsn, which the links record must name. */
    uint32_t *replay_rows;
    size_t n_replay_rows, cap_replay_rows;
    uint64_t replay_put_lsn;
    /* Links records: this handle writes them when others follow it (log
     * version 3, shared mode); counts for tests and statistics. */
    uint64_t links_logged, links_adopted, links_declined;
    /* Rows this handle's indexer linked since its last write, whose links
     * that write logs first (a deferred links record); under the gate's
     * write lock. */
    uint32_t *linked_rows;
    size_t n_linked_rows, cap_linked_rows;
    size_t links_noted; /* atomic: n_linked_rows, for a check without the lock */
    /* The log holds deferred links records: replayed rows wait a while in
     * the indexer's queue for theirs (svdb__indexer_hold). */
    int links_deferred;
    const svdb_kernels *kern;
    unsigned ncpu;          /* read once: sysconf reads /sys on every call */
    unsigned build_threads; /* HNSW linking of large batches */
    int background;         /* HNSW rows are linked by the indexer thread */
    svdb_indexer ix;        /* its queue (empty unless background) */
    /* Automatic checkpoints: after a write that leaves the log at or past
     * autockpt_at bytes (0: off). */
    uint64_t autockpt_bytes, autockpt_at;
    /* Background indexing: a write waits while more than this many bytes of
     * vectors wait to be linked (0: no bound). */
    uint64_t backlog_bytes;
    /* The handle's progress handler (svdb_progress_handler); set and read
     * under write_mu, except by svdb_verify, which reads it once. */
    svdb_progress_fn progress_fn;
    void *progress_ctx;
    /* The check of a large snapshot's vectors and links, which open leaves
     * to a thread of its own (see svdb__snapshot_load and svdb_verify). */
    svdb_snap_check *check;
    pthread_mutex_t check_mu; /* joining the thread */
    pthread_t check_tid;
    int check_running; /* started and not joined */
    int check_done;    /* atomic: the thread has finished */
    int check_stop;    /* atomic: close asks the thread to stop */
    int check_failed;  /* atomic: the check found damage (or could not read) */
    int check_rc;
    char check_msg[512];
};

/* write.c */
int svdb__coll_replay(void *ctx, uint32_t type, const unsigned char *payload, size_t len, uint64_t off, uint64_t lsn);
/* After a run of svdb__coll_replay calls: links (or queues for the
 * indexer) the rows of its last put that no links record linked. */
int svdb__coll_replay_done(svdb_coll *db);
/* Forgets the rows a failed run left (a reload or reopen rebuilds them). */
void svdb__coll_replay_reset(svdb_coll *db);

int svdb__coll_check_dim(const svdb_coll *db, uint32_t dim, const char *what);
/* Copies a batch out of the caller's memory into *block (freed by the
 * caller), which b then points into; the caller's buffers are read once. */
int svdb__coll_copy_batch(svdb_batch *b, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                          const char *const *metas, void **block);
/* Checks a copied batch's ids and sets their lengths. */
int svdb__coll_check_ids(svdb_batch *b);

/* collection.c: replaces the loaded state by the current snapshot and log
 * (a checkpoint elsewhere replaced them); `writer` holds the write lock and
 * reads the whole log, cutting a torn tail; else replay stops at the head.
 * write_mu held. */
int svdb__coll_reload(svdb_coll *db, int writer);
/* After a write, with no lock held: waits while more rows wait to be linked
 * than backlog_bytes allows. */
void svdb__coll_throttle(svdb_coll *db);
/* Rows waiting for the background indexer (the gate held). */
size_t svdb__coll_pending_locked(svdb_coll *db);
/* Replays the log's new records up to byte `limit` (write_mu held). */
int svdb__coll_follow(svdb_coll *db, uint64_t limit, int cut);

/* links.c: links records (write lock held and the log caught up, unless
 * said otherwise) */
/* Logs the lists of the rows in slots that the graph holds, when another
 * handle follows this one: put_lsn the put just logged whose rows they
 * are, or 0 for a deferred record. Advice: a failure is dropped. */
void svdb__coll_links_log(svdb_coll *db, const uint32_t *slots, size_t n, uint64_t put_lsn);
/* Before a write's own record: the links of the rows the indexer linked
 * since the last write. */
void svdb__coll_links_log_deferred(svdb_coll *db);
/* The indexer linked these slots (gate write lock held): their links go
 * into the next deferred links record when others follow. */
void svdb__coll_note_linked(svdb_coll *db, const uint32_t *slots, size_t n);
/* The indexer has nothing left to link (its thread, no lock held): logs the
 * links it chose since the last write, if the write lock is free at once,
 * so that others need not wait for this handle's next write. */
void svdb__coll_links_idle(svdb_coll *db);
/* Replays a links record (svdb__coll_replay). */
int svdb__coll_links_replay(svdb_coll *db, const unsigned char *payload, size_t len, uint64_t lsn);
/* A put was replayed: with background indexing, in a log that carries
 * deferred links records, its rows wait a while for theirs. */
void svdb__coll_links_hold(svdb_coll *db);

/* sharing.c */
int svdb__coll_share_open(svdb_coll *db);
/* The write lock of the collection's file, waiting up to wait_ms. */
int svdb__coll_lock_write(svdb_coll *db, uint32_t wait_ms);
void svdb__coll_unlock_write(svdb_coll *db);
/* Begins a write or checkpoint: this handle's turn, the write lock, write_mu,
 * and the records other handles appended applied. On success the caller
 * holds them until svdb__coll_write_end, which also publishes the head. */
int svdb__coll_write_begin(svdb_coll *db);
/* The same, but only when nothing has to be waited for: SVDB_EBUSY when
 * another writer of this handle or another process holds the lock. */
int svdb__coll_write_try(svdb_coll *db);
void svdb__coll_write_end(svdb_coll *db);
/* Notes what the handle applied at open (and publishes the head when it
 * holds the write lock: `publish`). */
void svdb__coll_share_loaded(svdb_coll *db);
void svdb__coll_publish(svdb_coll *db);
/* Where a reader's replay stops: 1 and the head's end when the head names
 * this log, else 0 and UINT64_MAX. */
int svdb__coll_head_limit(svdb_coll *db, uint64_t *limit);

/* checkpoint.c; the caller holds write_mu for the checkpoints. */
int svdb__coll_checkpoint(svdb_coll *db);
/* SVDB_EREADONLY (with its message) for a read-only or poisoned handle. */
int svdb__coll_writable(const svdb_coll *db);
/* A checkpoint's first half: waits for the deferred check, writes the
 * snapshot (packed when `pack` and a slot is free; see
 * svdb__snapshot_write for *to_row) and advances snap_lsn. The log and the
 * in-memory rows are the caller's to move on; *graph_gen is the graph's
 * generation the snapshot was written from. */
int svdb__coll_write_snapshot(svdb_coll *db, int pack, uint64_t *graph_gen, uint32_t **to_row);
void svdb__coll_autocheckpoint(svdb_coll *db);
int svdb__coll_check_start(svdb_coll *db);
void svdb__coll_check_stop(svdb_coll *db);
svdb_snap_info svdb__coll_snap_info(const svdb_coll *db, uint64_t last_lsn);

#endif
