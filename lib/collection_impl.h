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

struct svdb_coll {
    svdb *token;  /* the caller's handle, for the checkpoint test hook */
    svdb_dir dir; /* held open: files are found relative to it, never by path again */
    int lock_fd;
    int durability;
    pthread_mutex_t write_mu; /* serializes writers and checkpoints */
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
    const svdb_kernels *kern;
    unsigned ncpu;          /* read once: sysconf reads /sys on every call */
    unsigned build_threads; /* HNSW linking of large batches */
    int background;         /* HNSW rows are linked by the indexer thread */
    svdb_indexer ix;        /* its queue (empty unless background) */
    /* Automatic checkpoints: after a write that leaves the log at or past
     * autockpt_at bytes (0: off). */
    uint64_t autockpt_bytes, autockpt_at;
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
int svdb__coll_replay(void *ctx, uint32_t type, const unsigned char *payload, size_t len, uint64_t off);
int svdb__coll_check_dim(const svdb_coll *db, uint32_t dim, const char *what);
/* Copies a batch out of the caller's memory into *block (freed by the
 * caller), which b then points into; the caller's buffers are read once. */
int svdb__coll_copy_batch(svdb_batch *b, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                          const char *const *metas, void **block);
/* Checks a copied batch's ids and sets their lengths. */
int svdb__coll_check_ids(svdb_batch *b);

/* checkpoint.c; the caller holds write_mu for the checkpoints. */
int svdb__coll_checkpoint(svdb_coll *db);
void svdb__coll_autocheckpoint(svdb_coll *db);
int svdb__coll_check_start(svdb_coll *db);
void svdb__coll_check_stop(svdb_coll *db);
svdb_snap_info svdb__coll_snap_info(const svdb_coll *db, uint64_t last_lsn);

#endif
