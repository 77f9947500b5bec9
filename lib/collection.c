/* The collection engine's life cycle: finding or creating a collection's
 * files in its directory, the lock, loading and replaying, the background
 * indexer's work, and closing. Writes are in write.c, reads in read.c,
 * checkpoints in checkpoint.c. */
#include "collection_impl.h"

#include "alloc.h"
#include "error.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- opening */

static uint64_t new_uuid(void)
{
    uint64_t u = svdb__os_random64();
    return u ? u : 1;
}

static int make_dir(const char *path, int create)
{
    struct stat st;
    int have = svdb__path_stat(path, &st);
    if (have < 0) return have;
    if (have) {
        SVDB_FAIL_IF(!S_ISDIR(st.st_mode), SVDB_EINVAL, "%s exists and is not a directory", path);
        return SVDB_OK;
    }
    SVDB_FAIL_IF(!create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", path);
    return svdb__dir_create(path);
}

/* ---------------------------------------------------------------- finding the collection */

/* The storage option; absent (default) in a version-1 options struct. */
static int open_storage(const svdb_open_options *o) { return o->version >= 2 ? o->storage : SVDB_STORAGE_DEFAULT; }
/* allow_nonempty_dir; absent (off) before version 3. */
static int open_allow_nonempty(const svdb_open_options *o) { return o->version >= 3 && o->allow_nonempty_dir; }

static const char *storage_name(int st)
{
    return st == SVDB_STORAGE_F16 ? "f16" : st == SVDB_STORAGE_INT8 ? "int8" : "f32";
}


static const char *metric_name(int m)
{
    return m == SVDB_METRIC_L2 ? "l2" : m == SVDB_METRIC_COSINE ? "cosine" : m == SVDB_METRIC_IP ? "ip" : "default";
}

/* The snapshot's description of this collection. */

static int create_collection(svdb_coll *db, const svdb_open_options *o)
{
    db->uuid = new_uuid();
    SVDB_TRY(svdb__store_new(&db->store, o->dim, o->metric ? o->metric : SVDB_METRIC_L2));
    db->index = o->index ? o->index : SVDB_INDEX_FLAT;
    int storage = open_storage(o) ? open_storage(o) : SVDB_STORAGE_F32;
    SVDB_FAIL_IF(storage != SVDB_STORAGE_F32 && db->index != SVDB_INDEX_HNSW, SVDB_EINVAL,
                 "%s storage needs the hnsw index: an exact scan reads float32 rows", storage_name(storage));
    svdb__store_set_storage(db->store, storage, db->kern);
    svdb_hnsw_params hp = {o->hnsw_m ? o->hnsw_m : 16, o->hnsw_ef_construction ? o->hnsw_ef_construction : 200,
                           o->hnsw_ef_search ? o->hnsw_ef_search : 64, o->seed};
    db->hnsw = hp;
    if (db->index == SVDB_INDEX_HNSW) SVDB_TRY(svdb__hnsw_create(&db->graph, &hp));
    /* The log first, the snapshot last: the snapshot's rename is what makes
     * the collection exist, so a crash in between leaves "no collection"
     * (a log that holds no record, which open_files may replace). */
    int rc = svdb__wal_create(&db->wal, &db->dir, SVDB_WAL_NAME, db->uuid);
    if (rc == SVDB_OK) {
        svdb_snap_info info = svdb__coll_snap_info(db, 0);
        rc = svdb__snapshot_write(&db->dir, db->store, db->graph, &info, 0, NULL, NULL);
    }
    db->next_lsn = 1;
    return rc;
}

/* A live row the graph does not hold yet. */
static int is_pending(const svdb_coll *db, uint32_t slot)
{
    return svdb__slot_live(svdb__store_view(db->store), slot) &&
           svdb__hnsw_level_of(db->graph, slot) == SVDB_HNSW_NO_LEVEL;
}

/* Rows a background indexer left unlinked when the collection was saved are
 * queued again, or, without background indexing, linked now. One pass over
 * the slots: a collection saved fully linked (the usual case) costs no more. */
static int link_loaded(svdb_coll *db)
{
    svdb_store *s = db->store;
    size_t n_slots = svdb__store_slots(s);
    uint32_t *slots = NULL;
    size_t n = 0;
    int rc = SVDB_OK;
    for (size_t slot = 0; slot < n_slots && rc == SVDB_OK; slot++) {
        if (!is_pending(db, (uint32_t)slot)) continue;
        if (!slots && !(slots = svdb__malloc(n_slots * sizeof *slots)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory listing unlinked rows");
        else
            slots[n++] = (uint32_t)slot;
    }
    if (rc == SVDB_OK && n && db->background) {
        rc = svdb__indexer_reserve(&db->ix, n_slots);
        for (size_t i = 0; rc == SVDB_OK && i < n; i++) svdb__indexer_push(&db->ix, slots[i]);
    } else if (rc == SVDB_OK && n) {
        rc = svdb__hnsw_insert_many(db->graph, s, db->kern, slots, n, db->build_threads);
    }
    svdb__free(slots);
    return rc;
}

/* Loads the snapshot and replays the log. The log is opened first: a
 * checkpoint elsewhere renames the new snapshot into place before the new
 * log, so the snapshot found next is at least as new as the log's start (a
 * newer one only makes replay skip records; the head then names another
 * log, and the next call loads again). `writer`: the handle holds the write
 * lock (or the collection alone) and reads the whole log, cutting a torn
 * tail; else replay stops at the head, where writers announce their end. */
static int load_collection(svdb_coll *db, const svdb_open_options *o, int writer)
{
    SVDB_TRY(svdb__wal_open(&db->wal, &db->dir, SVDB_WAL_NAME, 0, db->mode != SVDB_OPEN_READONLY));
    svdb_snap_info info;
    SVDB_TRY(svdb__snapshot_load(&db->dir, &db->store, &db->graph, &info, db->kern, &db->check));
    SVDB_FAIL_IF(db->wal.uuid != info.uuid, SVDB_ECORRUPT, "log %s belongs to another collection", db->wal.path);
    if (open_storage(o) && open_storage(o) != info.storage)
        return svdb__fail(SVDB_EMISMATCH, "collection %s uses %s storage, not %s", db->dir.path, storage_name(info.storage),
                          storage_name(open_storage(o)));
    if (db->graph) SVDB_TRY(link_loaded(db));
    db->uuid = info.uuid;
    db->snap_lsn = info.last_lsn;
    db->index = info.index;
    db->hnsw = info.hnsw;
    if (o->index && o->index != db->index)
        return svdb__fail(SVDB_EMISMATCH, "collection %s uses the %s index, not %s", db->dir.path,
                          db->index == SVDB_INDEX_HNSW ? "hnsw" : "flat", o->index == SVDB_INDEX_HNSW ? "hnsw" : "flat");
    if (db->index == SVDB_INDEX_HNSW && ((o->hnsw_m && o->hnsw_m != info.hnsw.m) ||
                                         (o->hnsw_ef_construction && o->hnsw_ef_construction != info.hnsw.ef_construction)))
        return svdb__fail(SVDB_EMISMATCH, "collection %s was built with hnsw_m=%u, ef_construction=%u", db->dir.path,
                          info.hnsw.m, info.hnsw.ef_construction);
    if (o->hnsw_ef_search) db->hnsw.ef_search = o->hnsw_ef_search; /* this handle's default only */
    int metric = svdb__store_metric(db->store);
    if (o->metric && o->metric != metric)
        return svdb__fail(SVDB_EMISMATCH, "collection %s uses metric %s, not %s", db->dir.path, metric_name(metric),
                          metric_name(o->metric));
    uint64_t last = 0, dropped = 0, limit = UINT64_MAX;
    if (!writer) svdb__coll_head_limit(db, &limit);
    int rc = svdb__wal_replay(&db->wal, info.last_lsn, limit, writer, svdb__coll_replay, db, &last, &dropped);
    if (rc != SVDB_OK) {
        svdb__coll_replay_reset(db);
        return rc;
    }
    SVDB_TRY(svdb__coll_replay_done(db));
    db->next_lsn = last + 1;
    uint32_t dim = svdb__store_dim(db->store);
    if (o->dim && dim && o->dim != dim)
        return svdb__fail(SVDB_EMISMATCH, "collection %s has dimension %u, not %u", db->dir.path, dim, o->dim);
    if (o->dim && !dim) svdb__store_set_dim(db->store, o->dim);
    return SVDB_OK;
}

/* An existing collection. A shared handle that finds the write lock free
 * loads as a writer: it replays the whole log, cuts what a killed writer
 * left half-written, removes the temporary files of a checkpoint that never
 * finished, and announces the head for the readers. */
static int open_existing(svdb_coll *db, const svdb_open_options *o)
{
    int writer = db->mode == SVDB_OPEN_EXCLUSIVE;
    if (db->mode == SVDB_OPEN_SHARED) {
        int rc = svdb__coll_lock_write(db, 0);
        if (rc == SVDB_EBUSY) svdb__clear_error();
        else if (rc != SVDB_OK) return rc;
        writer = rc == SVDB_OK;
    }
    int rc = SVDB_OK;
    if (writer) rc = svdb__file_unlink(&db->dir, SVDB_SNAP_TMP_NAME);
    if (rc == SVDB_OK && writer) rc = svdb__file_unlink(&db->dir, SVDB_WAL_TMP_NAME);
    if (rc == SVDB_OK) rc = load_collection(db, o, writer);
    if (rc == SVDB_OK && writer) svdb__coll_publish(db);
    else if (rc == SVDB_OK) svdb__coll_share_loaded(db);
    if (writer) svdb__coll_unlock_write(db);
    return rc;
}

/* Whether the directory holds anything but a collection's own files: 1
 * with the first such name in `name`, 0, or an error. The snapshot counts as
 * ours too: precheck_dir runs without the lock, so another process creating
 * the same collection may add its files between precheck's stats and this
 * listing (open_files then finds the snapshot under the lock). */
typedef struct foreign_ctx {
    char *name;
    size_t cap;
} foreign_ctx;

static int is_foreign(void *ctx, const char *n)
{
    foreign_ctx *f = ctx;
    static const char *const ours[] = {SVDB_LOCK_NAME, SVDB_WAL_NAME, SVDB_SNAP_NAME, SVDB_SNAP_TMP_NAME,
                                       SVDB_WAL_TMP_NAME};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (!strcmp(n, ours[i])) return 0;
    snprintf(f->name, f->cap, "%s", n);
    return 1;
}

static int foreign_entry(const svdb_dir *d, char *name, size_t cap)
{
    foreign_ctx f = {name, cap};
    return svdb__dir_list(d, is_foreign, &f);
}

/* A new collection goes only into an empty directory (or one holding what
 * an unfinished creation left), unless the caller allows other files. */
static int refuse_foreign(svdb_coll *db, const svdb_open_options *o)
{
    if (open_allow_nonempty(o)) return SVDB_OK;
    char name[256];
    int foreign = foreign_entry(&db->dir, name, sizeof name);
    if (foreign < 0) return foreign;
    SVDB_FAIL_IF(foreign, SVDB_EINVAL,
                 "%s is not empty and holds no svdb collection (it has '%s'); create the collection in a new or "
                 "empty directory, or set the open option allow_nonempty_dir",
                 db->dir.path, name);
    return SVDB_OK;
}

/* Refuses, before the lock file is made, a directory that holds no
 * collection when open could not or must not create one there: nothing is
 * written into a directory that is not ours (open_files checks again under
 * the lock). */
static int precheck_dir(svdb_coll *db, const svdb_open_options *o)
{
    struct stat st;
    int have = svdb__file_stat(&db->dir, SVDB_SNAP_NAME, &st);
    if (have == 0) have = svdb__file_stat(&db->dir, SVDB_WAL_NAME, &st);
    if (have == 0) have = svdb__file_stat(&db->dir, SVDB_LOCK_NAME, &st);
    if (have != 0) return have < 0 ? have : SVDB_OK; /* ours, or an error */
    SVDB_FAIL_IF(!o->create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", db->dir.path);
    return refuse_foreign(db, o);
}

/* No snapshot, the write lock held: creates the collection, unless a log
 * with records says one existed. */
static int create_files(svdb_coll *db, const svdb_open_options *o)
{
    const char *dir = db->dir.path;
    struct stat st;
    SVDB_TRY(svdb__file_unlink(&db->dir, SVDB_SNAP_TMP_NAME)); /* left by a creation that never finished */
    int wal = svdb__file_stat(&db->dir, SVDB_WAL_NAME, &st);
    if (wal < 0) return wal;
    /* A creation that crashed before its snapshot leaves a log with no
     * record; anything more is writes whose snapshot is gone. */
    SVDB_FAIL_IF(wal && (!S_ISREG(st.st_mode) || st.st_size > SVDB_WAL_HEADER_BYTES), SVDB_ECORRUPT,
                 "collection %s has lost its snapshot (%s is missing) but its log %s holds %lld bytes of writes; "
                 "nothing was changed. Restore %s from a backup, or move %s away to start an empty collection",
                 dir, SVDB_SNAP_NAME, SVDB_WAL_NAME, (long long)st.st_size, SVDB_SNAP_NAME, SVDB_WAL_NAME);
    SVDB_FAIL_IF(!o->create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", dir);
    SVDB_TRY(refuse_foreign(db, o));
    SVDB_TRY(create_collection(db, o));
    svdb__coll_publish(db);
    return SVDB_OK;
}

/* Finds the collection's files and opens or creates it. Open never removes
 * or rewrites what it did not expect: a log with writes but no snapshot,
 * a directory full of other files, a link where a file should be, are
 * errors that change nothing. */
static int open_files(svdb_coll *db, const svdb_open_options *o)
{
    const char *dir = db->dir.path;
    struct stat st;
    int have = svdb__file_stat(&db->dir, SVDB_SNAP_NAME, &st);
    if (have < 0) return have;
    if (!have) {
        SVDB_FAIL_IF(db->mode == SVDB_OPEN_READONLY, SVDB_ENOTFOUND, "no collection at %s (opened read-only)", dir);
        /* Creation happens under the write lock: two processes creating the
         * same collection at once make one. */
        SVDB_TRY(svdb__coll_lock_write(db, db->busy_ms));
        have = svdb__file_stat(&db->dir, SVDB_SNAP_NAME, &st);
        int rc = have < 0 ? have : have ? SVDB_OK : create_files(db, o);
        svdb__coll_unlock_write(db);
        if (rc != SVDB_OK || !have) return rc;
    }
    SVDB_FAIL_IF(!S_ISREG(st.st_mode), SVDB_ECORRUPT, "%s/%s is not a regular file (a link or a directory?)", dir,
                 SVDB_SNAP_NAME);
    return open_existing(db, o);
}

static void destroy(svdb_coll *db)
{
    svdb__coll_check_stop(db);
    svdb__snapshot_check_free(db->check);
    pthread_mutex_destroy(&db->check_mu);
    svdb__indexer_free(&db->ix); /* stops the thread before what it links goes */
    svdb__free(db->replay_rows);
    svdb__free(db->linked_rows);
    svdb__wal_close(&db->wal);
    svdb__hnsw_free(db->graph);
    svdb__store_free(db->store);
    svdb__map_release(&db->head_map);
    svdb__fd_close(db->lock_fd);
    pthread_mutex_destroy(&db->write_mu);
    pthread_mutex_destroy(&db->turn_mu);
    svdb__gate_destroy(&db->gate);
    svdb__dir_close(&db->dir);
    svdb__free(db);
}

/* ---------------------------------------------------------------- background indexing */

/* The indexer's work (see svdb_indexer_ops): one chunk of queued rows
 * linked under one hold of the write lock, stopping early when a caller
 * waits for the lock; rows not linked go back to the front of the queue and
 * stay searchable exactly. Then waiting callers get up to YIELD_MS. */
#define YIELD_MS 5

static int link_chunk(void *arg, uint32_t *chunk, size_t max, int *more)
{
    svdb_coll *db = arg;
    pthread_rwlock_wrlock(&db->gate.rw); /* not counted as a waiter: the others are let in */
    size_t n = 0, done = 0;
    for (size_t i = 0, got = svdb__indexer_pop(&db->ix, chunk, max); i < got; i++)
        if (is_pending(db, chunk[i])) chunk[n++] = chunk[i];
    int rc = n ? svdb__hnsw_insert_some(db->graph, db->store, db->kern, chunk, n, db->ix.threads, &db->gate.waiters,
                                        &done)
               : SVDB_OK;
    svdb__coll_note_linked(db, chunk, n);
    for (size_t i = n; i-- > 0;)
        if (is_pending(db, chunk[i])) svdb__indexer_unpop(&db->ix, chunk[i]);
    svdb__indexer_chunk_done(&db->ix);
    *more = svdb__indexer_ready(&db->ix) > 0; /* rows a hold keeps wait for its end (indexer.c) */
    svdb__gate_unlock(&db->gate);
    if (rc == SVDB_OK && *more) svdb__gate_let_in(&db->gate, YIELD_MS);
    return rc;
}

static int queue_empty(void *arg)
{
    svdb_coll *db = arg;
    size_t left;
    svdb__gate_rdlock(&db->gate);
    svdb__indexer_queue(&db->ix, &left);
    svdb__gate_unlock(&db->gate);
    return left == 0;
}

static void indexer_idle(void *arg) { svdb__coll_links_idle(arg); }

int svdb__coll_index_wait(svdb_coll *db) { return db->background ? svdb__indexer_wait(&db->ix) : SVDB_OK; }

void svdb__coll_throttle(svdb_coll *db)
{
    if (!db->background || !db->backlog_bytes || !__atomic_load_n(&db->ix.backlog, __ATOMIC_RELAXED)) return;
    svdb__gate_rdlock(&db->gate);
    uint64_t row = (uint64_t)svdb__store_dim(db->store) * sizeof(float);
    svdb__gate_unlock(&db->gate);
    svdb__indexer_throttle(&db->ix, (size_t)(db->backlog_bytes / (row ? row : 1)));
}

size_t svdb__coll_pending_locked(svdb_coll *db)
{
    size_t n = 0, len;
    const uint32_t *q = db->background ? svdb__indexer_queue(&db->ix, &len) : NULL;
    for (size_t i = 0; q && i < len; i++) n += (size_t)is_pending(db, q[i]);
    return n;
}

size_t svdb__coll_index_pending(svdb_coll *db)
{
    svdb__gate_rdlock(&db->gate);
    size_t n = svdb__coll_pending_locked(db);
    svdb__gate_unlock(&db->gate);
    return n;
}

svdb_indexer *svdb__coll_indexer(svdb_coll *db) { return &db->ix; }

/* ---------------------------------------------------------------- open / close */

/* The autocheckpoint option; absent (the default) before version 4. */
static uint64_t open_autocheckpoint(const svdb_open_options *o)
{
    return o->version >= 4 ? o->autocheckpoint_bytes : SVDB_AUTOCHECKPOINT_DEFAULT;
}

static uint64_t open_backlog(const svdb_open_options *o) { return o->version >= 6 ? o->index_backlog_bytes : 0; }
static int open_mode(const svdb_open_options *o) { return o->version >= 5 ? o->mode : SVDB_OPEN_SHARED; }
static uint32_t open_busy(const svdb_open_options *o)
{
    return o->version >= 5 ? o->busy_timeout_ms : SVDB_BUSY_TIMEOUT_DEFAULT;
}

/* The settings a handle's state is loaded with (open, and reload). */
static void coll_init(svdb_coll *db, const svdb_open_options *o)
{
    db->lock_fd = -1;
    db->wal.fd = -1;
    db->dir.fd = -1;
    db->mode = open_mode(o);
    db->busy_ms = open_busy(o);
    db->durability = o->durability;
    db->kern = svdb__kernels();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    db->ncpu = ncpu > 0 ? (unsigned)ncpu : 1;
    db->build_threads = o->build_threads ? o->build_threads : db->ncpu;
    db->background = o->background_indexing != 0;
    db->autockpt_bytes = db->autockpt_at = open_autocheckpoint(o);
    db->backlog_bytes = open_backlog(o);
    svdb__indexer_init(&db->ix);
    pthread_mutex_init(&db->turn_mu, NULL);
    pthread_mutex_init(&db->write_mu, NULL);
    pthread_mutex_init(&db->check_mu, NULL);
    svdb__gate_init(&db->gate);
}

int svdb__coll_open(svdb_coll **out, const char *path, const svdb_open_options *o)
{
    *out = NULL;
    SVDB_TRY(make_dir(path, o->create && open_mode(o) != SVDB_OPEN_READONLY));
    svdb_coll *db = svdb__calloc(1, sizeof *db);
    if (!db) return svdb__fail(SVDB_ENOMEM, "out of memory");
    coll_init(db, o);
    int rc = svdb__dir_open(&db->dir, path);
    if (rc == SVDB_OK) rc = precheck_dir(db, o);
    if (rc == SVDB_OK) rc = svdb__coll_share_open(db);
    if (rc == SVDB_OK) rc = open_files(db, o);
    if (db->index != SVDB_INDEX_HNSW) db->background = 0; /* a flat index has nothing to link */
    svdb_indexer_ops ops = {link_chunk, queue_empty, indexer_idle, db};
    if (rc == SVDB_OK && db->background) rc = svdb__indexer_start(&db->ix, &ops, db->build_threads);
    if (rc == SVDB_OK) rc = svdb__coll_check_start(db);
    if (rc != SVDB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        destroy(db);
        return svdb__fail(rc, "%s", msg);
    }
    *out = db;
    return SVDB_OK;
}

/* Close checkpoints what this handle wrote (an exclusive one: whatever the
 * log holds). A shared handle that only read leaves the log to the writers;
 * one that cannot get the write lock in time leaves it too: every write is
 * in the log already. */
int svdb__coll_close(svdb_coll *db)
{
    int rc = SVDB_OK;
    svdb__indexer_stop(&db->ix); /* rows still queued are saved unlinked and queued again at open */
    int want = db->mode == SVDB_OPEN_EXCLUSIVE ? 1 : db->mode == SVDB_OPEN_SHARED && db->dirty;
    if (!db->poisoned && want) {
        rc = svdb__coll_write_begin(db);
        if (rc == SVDB_OK) {
            rc = svdb__coll_checkpoint(db);
            svdb__coll_write_end(db);
        } else if (rc == SVDB_EBUSY) {
            rc = SVDB_OK;
            svdb__clear_error();
        }
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", svdb_errmsg());
    destroy(db);
    return rc == SVDB_OK ? SVDB_OK : svdb__fail(rc, "%s", msg);
}

/* ---------------------------------------------------------------- following other handles */

int svdb__coll_follow(svdb_coll *db, uint64_t limit, int cut)
{
    uint64_t last = 0, dropped = 0;
    int rc = svdb__wal_replay(&db->wal, db->next_lsn - 1, limit, cut, svdb__coll_replay, db, &last, &dropped);
    if (last >= db->next_lsn) db->next_lsn = last + 1;
    /* the rows of the records applied, also when a later one failed */
    int drc = rc == SVDB_OK || rc == SVDB_ENOMEM ? svdb__coll_replay_done(db) : SVDB_OK;
    svdb__coll_replay_reset(db);
    if (rc == SVDB_OK) rc = drc;
    if (db->background) svdb__indexer_notify(&db->ix);
    if (rc != SVDB_OK && rc != SVDB_ENOMEM) {
        /* Part of a record may be applied: only a reopen rebuilds a state
         * that matches the files. */
        db->poisoned = 1;
        return svdb__fail(rc, "%s; reopen the collection", svdb_errmsg());
    }
    return rc;
}

/* Moves the loaded state of `f` into `db` under the gate, and db's old one
 * into f (freed by the caller). The indexer's queue is db's own and keeps
 * its thread: it gets f's queued rows. */
static int swap_state(svdb_coll *db, svdb_coll *f)
{
    svdb__coll_check_stop(db); /* it reads the old snapshot */
    svdb__gate_wrlock(&db->gate);
    int rc = db->background ? svdb__indexer_reserve(&db->ix, svdb__store_slots(f->store)) : SVDB_OK;
    if (rc == SVDB_OK) {
#define SWAP(field)                                                                                                    \
    do {                                                                                                               \
        __typeof__(db->field) t_ = db->field;                                                                          \
        db->field = f->field;                                                                                          \
        f->field = t_;                                                                                                 \
    } while (0)
        SWAP(store);
        SWAP(graph);
        SWAP(wal);
        SWAP(snap_lsn);
        SWAP(next_lsn);
        SWAP(check);
        SWAP(hnsw);
#undef SWAP
        db->hnsw.ef_search = f->hnsw.ef_search; /* this handle's default stays */
        db->links_adopted += f->links_adopted;   /* the load replayed for this handle */
        db->links_declined += f->links_declined;
        db->links_deferred |= f->links_deferred;
        db->n_linked_rows = 0; /* slots of the old state */
        db->check_done = db->check_stop = db->check_failed = 0;
        db->dirty = 0;
        if (db->background) {
            svdb__indexer_clear(&db->ix);
            size_t n;
            const uint32_t *q = svdb__indexer_queue(&f->ix, &n);
            for (size_t i = 0; i < n; i++) {
                if (f->ix.queued[q[i]] == 2) /* replayed from others: a hold may keep it */
                    svdb__indexer_push_held(&db->ix, q[i]);
                else
                    svdb__indexer_push(&db->ix, q[i]);
            }
        }
    }
    svdb__gate_unlock(&db->gate);
    if (rc == SVDB_OK && db->background) svdb__indexer_notify(&db->ix);
    int crc = svdb__coll_check_start(db);
    return rc != SVDB_OK ? rc : crc;
}

int svdb__coll_reload(svdb_coll *db, int writer)
{
    svdb_coll *f = svdb__calloc(1, sizeof *f);
    if (!f) return svdb__fail(SVDB_ENOMEM, "out of memory loading the collection again");
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.mode = db->mode;
    o.durability = db->durability;
    o.build_threads = db->build_threads;
    o.background_indexing = db->background;
    coll_init(f, &o);
    f->dir = db->dir; /* borrowed */
    f->lock_fd = db->lock_fd;
    f->hnsw.ef_search = db->hnsw.ef_search;
    int rc = load_collection(f, &o, writer);
    if (rc == SVDB_OK && (f->index != db->index || f->uuid != db->uuid))
        rc = svdb__fail(SVDB_ECORRUPT, "collection %s was replaced by another collection while open", db->dir.path);
    if (rc == SVDB_OK) rc = swap_state(db, f);
    f->dir = (svdb_dir){-1, NULL};
    f->lock_fd = -1;
    destroy(f);
    return rc;
}

/* A forked child shares the parent's open file descriptions, and with them
 * the parent's locks: it would keep the collection held after the parent
 * closed it, for as long as the child lives. The child lets go of its copy
 * of the descriptor (the parent keeps its locks). */
void svdb__coll_forked(svdb_coll *db)
{
    svdb__fd_close(db->lock_fd);
    db->lock_fd = -1;
}

void svdb__coll_set_token(svdb_coll *db, svdb *token) { db->token = token; }

void svdb__coll_set_progress(svdb_coll *db, svdb_progress_fn fn, void *ctx)
{
    pthread_mutex_lock(&db->write_mu);
    db->progress_fn = fn;
    db->progress_ctx = ctx;
    pthread_mutex_unlock(&db->write_mu);
}

/* Under the read lock: a reload (another handle's checkpoint) replaces the store. */
int svdb__coll_metric(svdb_coll *db)
{
    svdb__gate_rdlock(&db->gate);
    int m = svdb__store_metric(db->store);
    svdb__gate_unlock(&db->gate);
    return m;
}

int svdb__coll_storage(svdb_coll *db)
{
    svdb__gate_rdlock(&db->gate);
    int s = svdb__store_storage(db->store);
    svdb__gate_unlock(&db->gate);
    return s;
}
int svdb__coll_index(const svdb_coll *db) { return db->index; }
