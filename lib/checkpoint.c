/* Checkpoints: the collection written to a new snapshot, the rows pointed
 * into it, the log cut; and the check of a loaded snapshot that open leaves
 * to a thread. */
#include "collection_impl.h"

#include "alloc.h"
#include "error.h"
#include "progress.h"

#include <stdio.h>
#include <time.h>

static int check_sound(const svdb_coll *db)
{
    if (__atomic_load_n(&db->check_failed, __ATOMIC_ACQUIRE)) return svdb__fail(db->check_rc, "%s", db->check_msg);
    return SVDB_OK;
}

static void *check_main(void *arg)
{
    svdb_coll *db = arg;
    int rc = svdb__snapshot_check(db->check, &db->check_stop);
    if (rc != SVDB_OK && rc != -1) {
        snprintf(db->check_msg, sizeof db->check_msg, "%s (found by the check that runs after open)", svdb_errmsg());
        db->check_rc = rc;
        __atomic_store_n(&db->check_failed, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&db->check_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Starts the deferred check; without a thread it runs here and now. */
int svdb__coll_check_start(svdb_coll *db)
{
    if (!db->check) return SVDB_OK;
    if (pthread_create(&db->check_tid, NULL, check_main, db) == 0) {
        db->check_running = 1;
        return SVDB_OK;
    }
    check_main(db);
    return check_sound(db);
}

/* Waits for the deferred check; its verdict. */
static int check_wait(svdb_coll *db)
{
    pthread_mutex_lock(&db->check_mu);
    if (db->check_running) {
        pthread_join(db->check_tid, NULL);
        db->check_running = 0;
    }
    pthread_mutex_unlock(&db->check_mu);
    return check_sound(db);
}

int svdb__coll_sound(const svdb_coll *db) { return check_sound(db); }
/* svdb_verify: with a progress handler, waits for the check in steps,
 * reporting the bytes it has checked; a cancel stops the wait, not the
 * check, which goes on in the background as it would have without it. */
int svdb__coll_verify(svdb_coll *db)
{
    pthread_mutex_lock(&db->write_mu);
    svdb_progress_fn fn = db->progress_fn;
    void *ctx = db->progress_ctx;
    pthread_mutex_unlock(&db->write_mu);
    pthread_mutex_lock(&db->check_mu);
    int running = db->check_running;
    pthread_mutex_unlock(&db->check_mu);
    if (fn && running) {
        uint64_t done, total;
        svdb__snapshot_check_progress(db->check, &done, &total);
        svdb_progress pr;
        svdb__progress_begin(&pr, fn, ctx, SVDB_PROGRESS_VERIFY, total);
        const struct timespec step = {0, 5000000}; /* 5 ms */
        while (!__atomic_load_n(&db->check_done, __ATOMIC_ACQUIRE)) {
            nanosleep(&step, NULL);
            svdb__snapshot_check_progress(db->check, &done, &total);
            if (svdb__progress_now(&pr, done))
                return svdb__fail(SVDB_ECANCELED, "svdb_verify was canceled by the progress handler after %llu of %llu "
                                                  "bytes; the check goes on in the background",
                                  (unsigned long long)done, (unsigned long long)total);
        }
        svdb__progress_end(&pr);
    }
    return check_wait(db);
}

void svdb__coll_check_stop(svdb_coll *db)
{
    if (db->check_running) {
        __atomic_store_n(&db->check_stop, 1, __ATOMIC_RELEASE);
        pthread_join(db->check_tid, NULL);
        db->check_running = 0;
    }
}

/* The snapshot's description of this collection. */
svdb_snap_info svdb__coll_snap_info(const svdb_coll *db, uint64_t last_lsn)
{
    svdb_snap_info info = {db->uuid, last_lsn, db->index, svdb__store_storage(db->store), db->hnsw};
    if (db->index == SVDB_INDEX_HNSW) info.hnsw = *svdb__hnsw_params(db->graph); /* the stored default ef */
    return info;
}

/* Points the store (f32 chunks, compact originals) and the graph's level-0
 * chunks into the snapshot just written, then drops the old snapshot map and
 * the log maps: memory the file now holds is given back, and the old file's
 * space is freed. The caller holds write_mu, so rows cannot change between
 * the write and this; the background indexer may have linked rows since,
 * and then the graph's chunks are copied out of the old map instead. */
static int remap_snapshot(svdb_coll *db, uint64_t graph_gen, const uint32_t *to_row)
{
    svdb_snap_map sm;
    SVDB_TRY(svdb__snapshot_map(&db->dir, &sm));
    int rc = SVDB_OK;
    svdb__gate_wrlock(&db->gate); /* no search or indexer reads a row meanwhile */
    const unsigned char *base = svdb__map_base(&sm.map);
    if (db->graph && !to_row && svdb__hnsw_generation(db->graph) == graph_gen)
        svdb__hnsw_remap(db->graph, (const uint32_t *)(const void *)(base + sm.l0_offset), sm.rows, base,
                         svdb__map_len(&sm.map));
    else if (db->graph)
        rc = svdb__hnsw_unmap(db->graph);
    /* Packed rows are not slots: chunks leave the old map for memory. */
    if (rc == SVDB_OK && to_row) rc = svdb__store_unmap(db->store);
    if (rc == SVDB_OK) {
        svdb__store_remap(db->store, &sm.map, sm.vec_offset, sm.codes_offset, sm.rows, to_row);
        svdb__wal_unview(&db->wal);
    }
    svdb__gate_unlock(&db->gate);
    if (rc != SVDB_OK) svdb__map_release(&sm.map);
    return rc;
}

void (*svdb__checkpoint_hook)(svdb *db);

int svdb__coll_write_snapshot(svdb_coll *db, int pack, uint64_t *graph_gen, uint32_t **to_row)
{
    /* A new snapshot copies the rows of the old one: they must be sound. */
    SVDB_TRY(check_wait(db));
    svdb_snap_info info = svdb__coll_snap_info(db, db->next_lsn - 1);
    svdb__gate_rdlock(&db->gate); /* searches go on; writers wait on write_mu */
    *graph_gen = db->graph ? svdb__hnsw_generation(db->graph) : 0;
    svdb_progress pr;
    svdb__progress_begin(&pr, db->progress_fn, db->progress_ctx, SVDB_PROGRESS_CHECKPOINT, 0);
    int rc = svdb__snapshot_write(&db->dir, db->store, db->graph, &info, pack, to_row, db->progress_fn ? &pr : NULL);
    if (rc == SVDB_OK) svdb__progress_end(&pr);
    svdb__gate_unlock(&db->gate);
    if (rc != SVDB_OK) return rc;
    db->snap_lsn = info.last_lsn;
    if (svdb__checkpoint_hook) svdb__checkpoint_hook(db->token);
    return SVDB_OK;
}

int svdb__coll_writable(const svdb_coll *db)
{
    SVDB_FAIL_IF(db->poisoned, SVDB_EREADONLY, "collection %s refuses writes after an I/O failure; reopen it", db->dir.path);
    SVDB_FAIL_IF(db->mode == SVDB_OPEN_READONLY, SVDB_EREADONLY, "collection %s was opened read-only", db->dir.path);
    return SVDB_OK;
}

/* Checkpoint; the caller holds write_mu. */
int svdb__coll_checkpoint(svdb_coll *db)
{
    SVDB_TRY(svdb__coll_writable(db));
    if (db->next_lsn - 1 == db->snap_lsn) return SVDB_OK; /* nothing new since the last snapshot */
    uint64_t gen;
    uint32_t *to_row = NULL;
    SVDB_TRY(svdb__coll_write_snapshot(db, 0, &gen, &to_row));
    /* Rows move to the new snapshot's map before the log may be cut (a
     * compact store reads originals from the log's map). If that fails they
     * stay where they are, valid, and the log stays too (replay skips it). */
    int rc = remap_snapshot(db, gen, to_row);
    svdb__free(to_row);
    SVDB_TRY(rc);
    /* The snapshot is durable and replay skips the records it holds, so a
     * log that could not be replaced loses nothing and the handle stays
     * writable; the error still tells the caller the checkpoint did not
     * finish. The log is replaced, never cut in place: other processes may
     * still be reading it (they see its inode change in the head). */
    db->dirty = 0;
    rc = svdb__wal_replace(&db->wal, &db->dir, SVDB_WAL_NAME, SVDB_WAL_TMP_NAME);
    if (rc == SVDB_OK) svdb__coll_publish(db);
    return rc;
}

int svdb__coll_persist(svdb_coll *db)
{
    SVDB_TRY(svdb__coll_write_begin(db));
    int rc = svdb__coll_checkpoint(db);
    svdb__coll_write_end(db);
    return rc;
}

/* After a write (write_mu held): a log grown past the limit is checkpointed.
 * The write itself is durable already, so a checkpoint that fails is only
 * retried once the log has grown by the limit again (a full disk is not hit
 * on every write). */
void svdb__coll_autocheckpoint(svdb_coll *db)
{
    if (!db->autockpt_bytes || db->wal.end < db->autockpt_at) return;
    if (svdb__coll_checkpoint(db) != SVDB_OK) svdb__clear_error();
    db->autockpt_at = db->wal.end + db->autockpt_bytes;
}
