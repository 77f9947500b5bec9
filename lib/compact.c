/* svdb_compact and svdb_get_stats.
 *
 * Compaction reuses what a checkpoint already does: the snapshot writer
 * packs the live rows and maps the graph (links, levels, entry point)
 * through the slot-to-row table (snapshot.c, hnsw_codec.c), and the reload
 * that follows another process's checkpoint (svdb__coll_reload) loads that
 * snapshot in place of this handle's rows, re-queueing the rows the
 * background indexer had not linked. Only then is the log replaced, so a
 * kill at any point leaves a snapshot and a log that replay reconciles, as
 * after a checkpoint. */
#include "collection_impl.h"

#include "error.h"

#include <string.h>
#include <sys/stat.h>

/* Under write_mu and the write lock, caught up with the other handles. */
static int compact_locked(svdb_coll *db)
{
    SVDB_TRY(svdb__coll_writable(db));
    if (!svdb__store_free_count(db->store)) return svdb__coll_checkpoint(db); /* nothing to give back */
    uint64_t gen;
    SVDB_TRY(svdb__coll_write_snapshot(db, 1, &gen, NULL));
    /* The new snapshot holds every row up to next_lsn - 1: the reload
     * replays nothing of the old log, and a failure here leaves this
     * handle's old rows, which match the files. */
    SVDB_TRY(svdb__coll_reload(db, 1));
    int rc = svdb__wal_replace(&db->wal, &db->dir, SVDB_WAL_NAME, SVDB_WAL_TMP_NAME);
    if (rc == SVDB_OK) svdb__coll_publish(db); /* the new log's inode makes the others reload */
    return rc;
}

int svdb__coll_compact(svdb_coll *db)
{
    SVDB_TRY(svdb__coll_write_begin(db));
    int rc = compact_locked(db);
    svdb__coll_write_end(db);
    return rc;
}

/* Bytes of the directory's regular files other than the snapshot and log. */
typedef struct other_ctx {
    const svdb_dir *dir;
    uint64_t bytes;
} other_ctx;

static int add_other(void *arg, const char *name)
{
    other_ctx *c = arg;
    struct stat st;
    if (!strcmp(name, SVDB_SNAP_NAME) || !strcmp(name, SVDB_WAL_NAME)) return 0;
    if (svdb__file_stat(c->dir, name, &st) == 1 && S_ISREG(st.st_mode)) c->bytes += (uint64_t)st.st_size;
    else svdb__clear_error(); /* removed meanwhile, or unreadable: not counted */
    return 0;
}

static int file_bytes(const svdb_dir *d, const char *name, uint64_t *bytes)
{
    struct stat st;
    int have = svdb__file_stat(d, name, &st);
    if (have < 0) return have;
    *bytes = have ? (uint64_t)st.st_size : 0;
    return SVDB_OK;
}

static void fill_stats(svdb_coll *db, svdb_stats *st)
{
    const svdb_store *s = db->store;
    st->dim = svdb__store_dim(s);
    st->metric = svdb__store_metric(s);
    st->index = db->index;
    st->storage = svdb__store_storage(s);
    st->count = svdb__store_count(s);
    st->free_slots = svdb__store_free_count(s);
    st->slots = svdb__store_slots(s);
    st->pending = svdb__coll_pending_locked(db);
    int hnsw = db->index == SVDB_INDEX_HNSW;
    st->hnsw_m = hnsw ? db->hnsw.m : 0;
    st->hnsw_ef_construction = hnsw ? db->hnsw.ef_construction : 0;
    st->hnsw_ef_search = hnsw ? db->hnsw.ef_search : 0;
}

int svdb__coll_stats(svdb_coll *db, svdb_stats *st)
{
    SVDB_TRY(svdb__coll_refresh(db));
    svdb__gate_rdlock(&db->gate); /* a reload replaces the store under the write lock of the gate */
    fill_stats(db, st);
    int rc = file_bytes(&db->dir, SVDB_SNAP_NAME, &st->snapshot_bytes);
    if (rc == SVDB_OK) rc = file_bytes(&db->dir, SVDB_WAL_NAME, &st->log_bytes);
    other_ctx oc = {&db->dir, 0};
    if (rc == SVDB_OK) rc = svdb__dir_list(&db->dir, add_other, &oc);
    st->other_bytes = oc.bytes;
    svdb__gate_unlock(&db->gate);
    return rc;
}
