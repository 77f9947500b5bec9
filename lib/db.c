/* The public entry points: argument checks, locking, and the order of the
 * durable steps. Each write is planned (validated, memory reserved), logged,
 * then applied in memory, so a failure at any step leaves the collection
 * exactly as it was. */
#include "alloc.h"
#include "distance.h"
#include "error.h"
#include "filter.h"
#include "handles.h"
#include "hnsw.h"
#include "idmap.h"
#include "indexer.h"
#include "mapfile.h"
#include "meta.h"
#include "os.h"
#include "record.h"
#include "search.h"
#include "snapshot.h"
#include "store.h"
#include "svdb.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_MAGIC 0x5356444248414e44ull /* "SVDBHAND" */
#define DB_DEAD 0xdeaddeaddeaddeadull

/* The files of a collection's directory. */
#define LOCK_NAME "LOCK"
#define WAL_NAME "wal.svdb"
#define SNAP_NAME "snapshot.svdb"
#define SNAP_TMP_NAME "snapshot.svdb.tmp"

struct svdb {
    uint64_t magic;
    unsigned fork_gen; /* a handle is not usable in a forked child */
    svdb *token;       /* what the caller holds (handles.h) */
    svdb_dir dir;      /* held open: files are found relative to it, never by path again */
    int lock_fd;
    int durability;
    pthread_mutex_t write_mu; /* serializes writers and checkpoints */
    pthread_rwlock_t rw;      /* readers vs. the brief in-memory apply */
    svdb_store store;
    int index;              /* SVDB_INDEX_FLAT or SVDB_INDEX_HNSW */
    svdb_hnsw *graph;       /* HNSW only */
    svdb_hnsw_params hnsw;  /* as stored; ef_search may be overridden per handle */
    svdb_wal wal;
    uint64_t uuid;
    uint64_t next_lsn;
    uint64_t snap_lsn;
    int poisoned;
    const svdb_kernels *kern;
    unsigned ncpu; /* read once: sysconf reads /sys on every call */
    unsigned build_threads; /* HNSW linking of large batches */
    int background;         /* HNSW rows are linked by the indexer thread */
    svdb_indexer ix;        /* its queue (empty unless background) */
    /* The check of a large snapshot's vectors and links, which open leaves
     * to a thread of its own (see svdb__snapshot_load and svdb_verify). */
    svdb_snap_check *check;
    pthread_mutex_t check_mu; /* joining the thread */
    pthread_t check_tid;
    int check_running;        /* started and not joined */
    int check_stop;           /* atomic: close asks the thread to stop */
    int check_failed;         /* atomic: the check found damage (or could not read) */
    int check_rc;
    char check_msg[512];
};

const char *svdb_version(void) { return "0.1.0"; }
int svdb_version_number(void) { return SVDB_VERSION_NUMBER; }
int svdb_abi_version(void) { return SVDB_ABI_VERSION; }
const char *svdb_simd_path(void) { return svdb__kernels()->name; }

void svdb_free(void *ptr) { svdb__free(ptr); }
void svdb_ids_free(char **ids) { svdb__free(ids); }
void svdb_hits_free(svdb_hit *hits) { svdb__free(hits); }

int svdb_open_options_init(svdb_open_options *opts, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_OPEN_OPTIONS_VERSION, SVDB_EINVAL,
                 "open options version %u is not supported (1..%d)", version, SVDB_OPEN_OPTIONS_VERSION);
    /* an older caller's struct ends before the fields its version lacks */
    memset(opts, 0,
           version >= 3   ? sizeof *opts
           : version == 2 ? offsetof(svdb_open_options, allow_nonempty_dir)
                          : offsetof(svdb_open_options, storage));
    opts->version = version;
    opts->metric = SVDB_METRIC_DEFAULT;
    opts->durability = SVDB_DURABILITY_PERSIST;
    opts->create = 1;
    opts->index = SVDB_INDEX_DEFAULT;
    return SVDB_OK;
}

int svdb_search_options_init(svdb_search_options *opts, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_SEARCH_OPTIONS_VERSION, SVDB_EINVAL,
                 "search options version %u is not supported (1..%d)", version, SVDB_SEARCH_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return SVDB_OK;
}

/* Counts forks in this process image, so handles can tell they were opened
 * by a parent without a getpid() system call on every call. */
static unsigned fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* A forked child shares the parent's open file descriptions, and with them
 * the parent's flock on every collection: it would keep the collection
 * locked after the parent closed it, for as long as the child lives, and
 * the child could not open the collection itself. The child lets go of its
 * copies (the parent keeps its lock); its inherited handles are unusable
 * anyway (fork_gen). */
static void drop_inherited_lock(svdb *db)
{
    if (db->lock_fd >= 0) close(db->lock_fd);
    db->lock_fd = -1;
}
static void on_fork_prepare(void) { svdb__handles_lock(); }
static void on_fork_parent(void) { svdb__handles_unlock(); }
static void on_fork_child(void)
{
    fork_generation++;
    svdb__handles_each(drop_inherited_lock);
    svdb__handles_unlock();
}
static void watch_forks(void) { pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child); }

/* The collection behind a handle: a closed, stale or made-up handle is
 * SVDB_EMISUSE, never a read of freed memory (see handles.h). */
static int check_handle(const svdb *h, svdb **out)
{
    svdb__clear_error();
    *out = NULL;
    SVDB_FAIL_IF(!h, SVDB_EMISUSE, "database handle is NULL");
    svdb *db = svdb__handle_get(h);
    SVDB_FAIL_IF(!db || db->magic != DB_MAGIC, SVDB_EMISUSE, "database handle is closed or invalid");
    SVDB_FAIL_IF(db->fork_gen != fork_generation, SVDB_EMISUSE,
                 "database handle was opened by another process (used after fork)");
    *out = db;
    return SVDB_OK;
}

/* The verdict of the deferred check, for calls on an open handle. */
static int check_sound(const svdb *db)
{
    if (__atomic_load_n(&db->check_failed, __ATOMIC_ACQUIRE)) return svdb__fail(db->check_rc, "%s", db->check_msg);
    return SVDB_OK;
}

/* A handle whose snapshot turned out damaged after open answers nothing more. */
static int check_db(const svdb *h, svdb **out)
{
    SVDB_TRY(check_handle(h, out));
    return check_sound(*out);
}

static void *check_main(void *arg)
{
    svdb *db = arg;
    int rc = svdb__snapshot_check(db->check, &db->check_stop);
    if (rc != SVDB_OK && rc != -1) {
        snprintf(db->check_msg, sizeof db->check_msg, "%s (found by the check that runs after open)", svdb_errmsg());
        db->check_rc = rc;
        __atomic_store_n(&db->check_failed, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Starts the deferred check; without a thread it runs here and now. */
static int check_start(svdb *db)
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
static int check_wait(svdb *db)
{
    pthread_mutex_lock(&db->check_mu);
    if (db->check_running) {
        pthread_join(db->check_tid, NULL);
        db->check_running = 0;
    }
    pthread_mutex_unlock(&db->check_mu);
    return check_sound(db);
}

/* ---------------------------------------------------------------- opening */

static uint64_t new_uuid(void)
{
    uint64_t u = 0;
    if (getrandom(&u, sizeof u, 0) != (ssize_t)sizeof u) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        u = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    return u ? u : 1;
}

static int make_dir(const char *path, int create)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        SVDB_FAIL_IF(!S_ISDIR(st.st_mode), SVDB_EINVAL, "%s exists and is not a directory", path);
        return SVDB_OK;
    }
    if (errno != ENOENT) return svdb__fail_errno(SVDB_EIO, errno, "cannot access %s", path);
    SVDB_FAIL_IF(!create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", path);
    if (mkdir(path, 0755) != 0) return svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create directory %s", path);
    /* Make the new directory entry itself durable. */
    char *parent = svdb__strndup(path, strlen(path));
    if (!parent) return svdb__fail(SVDB_ENOMEM, "out of memory");
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(parent, ".");
    int rc = svdb__fsync_dir(parent);
    svdb__free(parent);
    return rc;
}

static int take_lock(svdb *db)
{
    /* The lock file persists between opens, so it is opened, not created
     * anew; never through a link. */
    db->lock_fd = openat(db->dir.fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (db->lock_fd < 0) {
        if (errno == ELOOP)
            return svdb__fail(SVDB_ECORRUPT, "lock file %s/%s is a symbolic link, which svdb never follows", db->dir.path,
                              LOCK_NAME);
        return svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create lock file %s/%s",
                                db->dir.path, LOCK_NAME);
    }
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        /* flock locks belong to the open file description, so a second handle
         * in this same process conflicts too; the kernel drops it on exit. */
        return errno == EWOULDBLOCK
                   ? svdb__fail(SVDB_ELOCKED, "collection %s is locked: another handle or process has it open", db->dir.path)
                   : svdb__fail_errno(SVDB_EIO, errno, "cannot lock %s/%s", db->dir.path, LOCK_NAME);
    }
    return SVDB_OK;
}

/* ---------------------------------------------------------------- planning writes */

typedef struct put_plan {
    uint32_t *slots; /* existing slot, or SVDB_NO_SLOT for a new row */
    char **blobs;    /* each row's id and metadata packed by svdb__row_pack (NULL: inline) */
    size_t n_new;
} put_plan;

static void plan_free(put_plan *p, size_t n)
{
    for (size_t i = 0; p->blobs && i < n; i++) svdb__free(p->blobs[i]);
    svdb__free(p->blobs);
    svdb__free(p->slots);
    memset(p, 0, sizeof *p);
}

/* Keys of a "seen" table over a batch: the slot is the row in the batch. */
static const char *batch_key(const void *ctx, uint32_t i, size_t *len)
{
    const svdb_batch *b = ctx;
    *len = b->id_lens[i];
    return b->ids[i];
}

/* Rejects an id that appears twice in the batch. */
static int check_unique(const svdb_batch *b, int dup_status)
{
    if (b->n < 2) return SVDB_OK;
    svdb_idmap seen = {0};
    int rc = svdb__idmap_reserve(&seen, b->n, batch_key, b);
    for (size_t i = 0; rc == SVDB_OK && i < b->n; i++) {
        uint32_t prev = svdb__idmap_find(&seen, b->ids[i], b->id_lens[i], batch_key, b);
        if (prev != SVDB_NO_SLOT)
            rc = svdb__fail(dup_status, "id '%.*s' appears twice in the batch (rows %u and %zu)", (int)b->id_lens[i],
                            b->ids[i], prev, i);
        else
            svdb__idmap_insert(&seen, b->ids[i], b->id_lens[i], (uint32_t)i);
    }
    svdb__idmap_free(&seen);
    return rc;
}

static int plan_put(const svdb_store *s, const svdb_batch *b, int is_add, int dup_status, put_plan *p)
{
    memset(p, 0, sizeof *p);
    SVDB_TRY(check_unique(b, dup_status));
    p->slots = svdb__malloc(b->n * sizeof *p->slots);
    p->blobs = svdb__calloc(b->n, sizeof *p->blobs);
    int rc = (!p->slots || !p->blobs) ? svdb__fail(SVDB_ENOMEM, "out of memory planning a batch") : SVDB_OK;
    for (size_t i = 0; rc == SVDB_OK && i < b->n; i++) {
        p->slots[i] = svdb__store_find(s, b->ids[i], b->id_lens[i]);
        if (p->slots[i] != SVDB_NO_SLOT && is_add) {
            rc = svdb__fail(SVDB_EEXISTS, "id '%.*s' (row %zu) already exists; use upsert to overwrite it",
                            (int)b->id_lens[i], b->ids[i], i);
            break;
        }
        if (p->slots[i] == SVDB_NO_SLOT) p->n_new++;
        int has_meta = b->metas && b->metas[i];
        rc = svdb__row_pack(b->ids[i], b->id_lens[i], has_meta ? b->metas[i] : NULL, has_meta ? b->meta_lens[i] : 0,
                            &p->blobs[i]);
    }
    if (rc != SVDB_OK) plan_free(p, b->n);
    return rc;
}

/* The store part cannot fail (memory was reserved) and takes the plan's
 * strings. Linking into the HNSW graph may still run out of memory for an
 * upper level; the handle is then poisoned, since the graph no longer covers
 * every row, and reopening rebuilds a consistent state. */
static int apply_put(svdb *db, const svdb_batch *b, put_plan *p)
{
    svdb_store *s = &db->store;
    uint32_t *linked = db->graph ? p->slots : NULL; /* reused: the slot each row ends in */
    for (size_t i = 0; i < b->n; i++) {
        const float *v = b->vectors + i * b->dim;
        uint32_t mlen = b->metas && b->metas[i] ? b->meta_lens[i] : 0;
        uint32_t slot = p->slots[i];
        if (slot == SVDB_NO_SLOT) {
            slot = svdb__store_insert(s, p->blobs[i], b->ids[i], b->id_lens[i], mlen, v);
        } else {
            if (db->graph) svdb__hnsw_remove(db->graph, s, db->kern, slot);
            svdb__store_replace(s, slot, p->blobs[i], mlen, v);
        }
        p->blobs[i] = NULL;
        if (linked) linked[i] = slot;
    }
    if (!db->graph) return SVDB_OK;
    if (db->background) {
        for (size_t i = 0; i < b->n; i++) svdb__indexer_push(&db->ix, linked[i]);
        return SVDB_OK;
    }
    int rc = svdb__hnsw_insert_many(db->graph, s, db->kern, linked, b->n, db->build_threads);
    if (rc != SVDB_OK) db->poisoned = 1;
    return rc;
}

/* Reserves room under the write lock (growth may move the chunk tables). */
static int reserve(svdb *db, size_t adds, size_t deletes, uint32_t dim, int *dim_fixed)
{
    svdb__rw_wrlock(&db->ix, &db->rw);
    *dim_fixed = 0;
    if (db->store.dim == 0 && dim) {
        svdb__store_set_dim(&db->store, dim);
        *dim_fixed = 1;
    }
    int rc = svdb__store_reserve(&db->store, adds, deletes);
    if (rc == SVDB_OK && db->graph) rc = svdb__hnsw_reserve(db->graph, db->store.n_slots + adds);
    if (rc == SVDB_OK && db->background && db->graph) rc = svdb__indexer_reserve(&db->ix, db->store.n_slots + adds);
    pthread_rwlock_unlock(&db->rw);
    return rc;
}

/* Undoes a dimension fixed by a batch that then failed. */
static void unfix_dim(svdb *db, int dim_fixed)
{
    if (!dim_fixed) return;
    svdb__rw_wrlock(&db->ix, &db->rw);
    if (db->store.n_slots == 0) {
        int metric = db->store.metric, storage = db->store.storage;
        svdb__store_free(&db->store);
        svdb__store_init(&db->store, 0, metric);
        svdb__store_set_storage(&db->store, storage, db->kern);
    }
    pthread_rwlock_unlock(&db->rw);
}

/* Compact storage keeps no copy of a row's float32 vector: the store points
 * at it in the log record (payload at file offset `off`) through a map,
 * until a checkpoint moves it to the snapshot. */
static int use_logged_vectors(svdb *db, svdb_batch *b, uint64_t off)
{
    uint64_t at = off + 16; /* u32 dim, u32 0, u64 n */
    SVDB_FAIL_IF(at % sizeof(float) != 0, SVDB_ECORRUPT, "log %s: vectors at offset %llu are not 4-byte aligned",
                 db->wal.path, (unsigned long long)at);
    const void *v = svdb__wal_view(&db->wal, at, b->n * (size_t)b->dim * sizeof(float));
    if (!v) return svdb__fail(SVDB_ENOMEM, "%s", svdb_errmsg());
    b->vectors = v;
    return SVDB_OK;
}

/* ---------------------------------------------------------------- replay */

static int replay_put(svdb *db, const unsigned char *payload, size_t len, uint64_t off)
{
    svdb_batch b;
    float *vec = NULL;
    SVDB_TRY(svdb__put_decode(payload, len, &b, &vec));
    int rc = SVDB_OK;
    if (db->store.dim && db->store.dim != b.dim)
        rc = svdb__fail(SVDB_ECORRUPT, "log record has %u dims but the collection has %u", b.dim, db->store.dim);
    if (rc == SVDB_OK && svdb__store_compact(&db->store)) rc = use_logged_vectors(db, &b, off);
    put_plan p;
    int fixed = 0;
    if (rc == SVDB_OK) rc = plan_put(&db->store, &b, 0, SVDB_ECORRUPT, &p);
    if (rc == SVDB_OK) {
        rc = reserve(db, p.n_new, 0, b.dim, &fixed);
        if (rc == SVDB_OK) rc = apply_put(db, &b, &p);
        plan_free(&p, b.n);
    }
    svdb__batch_free(&b);
    svdb__free(vec);
    return rc;
}

static int replay_delete(svdb *db, const unsigned char *payload, size_t len)
{
    svdb_batch b;
    SVDB_TRY(svdb__delete_decode(payload, len, &b));
    int rc = check_unique(&b, SVDB_ECORRUPT), fixed;
    uint32_t *slots = rc == SVDB_OK ? svdb__malloc(b.n * sizeof *slots) : NULL;
    if (rc == SVDB_OK && !slots) rc = svdb__fail(SVDB_ENOMEM, "out of memory replaying the log");
    for (size_t i = 0; rc == SVDB_OK && i < b.n; i++)
        if ((slots[i] = svdb__store_find(&db->store, b.ids[i], b.id_lens[i])) == SVDB_NO_SLOT)
            rc = svdb__fail(SVDB_ECORRUPT, "log deletes id '%.*s', which does not exist", (int)b.id_lens[i], b.ids[i]);
    if (rc == SVDB_OK) rc = reserve(db, 0, b.n, 0, &fixed);
    for (size_t i = 0; rc == SVDB_OK && i < b.n; i++) {
        if (db->graph) svdb__hnsw_remove(db->graph, &db->store, db->kern, slots[i]);
        svdb__store_remove(&db->store, slots[i]);
    }
    svdb__free(slots);
    svdb__batch_free(&b);
    return rc;
}

static int replay_record(void *ctx, uint32_t type, const unsigned char *payload, size_t len, uint64_t off)
{
    svdb *db = ctx;
    return type == SVDB_REC_PUT ? replay_put(db, payload, len, off) : replay_delete(db, payload, len);
}

/* ---------------------------------------------------------------- open / close */

/* The storage option; absent (default) in a version-1 options struct. */
static int open_storage(const svdb_open_options *o) { return o->version >= 2 ? o->storage : SVDB_STORAGE_DEFAULT; }
/* allow_nonempty_dir; absent (off) before version 3. */
static int open_allow_nonempty(const svdb_open_options *o) { return o->version >= 3 && o->allow_nonempty_dir; }

static const char *storage_name(int st)
{
    return st == SVDB_STORAGE_F16 ? "f16" : st == SVDB_STORAGE_INT8 ? "int8" : "f32";
}

static int check_open_options(const svdb_open_options *o)
{
    SVDB_FAIL_IF(o->version == 0 || o->version > SVDB_OPEN_OPTIONS_VERSION, SVDB_EINVAL,
                 "open options version %u is not supported (1..%d); call svdb_open_options_init", o->version,
                 SVDB_OPEN_OPTIONS_VERSION);
    SVDB_FAIL_IF(o->dim > SVDB_MAX_DIM, SVDB_ETOOBIG, "dim %u exceeds the maximum %d", o->dim, SVDB_MAX_DIM);
    SVDB_FAIL_IF(o->metric < SVDB_METRIC_DEFAULT || o->metric > SVDB_METRIC_IP, SVDB_EINVAL, "unknown metric %d", o->metric);
    SVDB_FAIL_IF(o->durability != SVDB_DURABILITY_PERSIST && o->durability != SVDB_DURABILITY_SYNC, SVDB_EINVAL,
                 "unknown durability mode %d", o->durability);
    SVDB_FAIL_IF(o->index < SVDB_INDEX_DEFAULT || o->index > SVDB_INDEX_HNSW, SVDB_EINVAL, "unknown index type %d", o->index);
    SVDB_FAIL_IF(o->hnsw_m == 1 || o->hnsw_m > 64, SVDB_EINVAL, "hnsw_m must be 2..64 (or 0 for 16), not %u", o->hnsw_m);
    SVDB_FAIL_IF(o->hnsw_ef_construction > 100000 || o->hnsw_ef_search > 100000, SVDB_EINVAL,
                 "ef values must be at most 100000");
    int storage = open_storage(o);
    SVDB_FAIL_IF(storage < SVDB_STORAGE_DEFAULT || storage > SVDB_STORAGE_INT8, SVDB_EINVAL, "unknown storage type %d",
                 storage);
    return SVDB_OK;
}

static const char *metric_name(int m)
{
    return m == SVDB_METRIC_L2 ? "l2" : m == SVDB_METRIC_COSINE ? "cosine" : m == SVDB_METRIC_IP ? "ip" : "default";
}

/* The snapshot's description of this collection. */
static svdb_snap_info snap_info(const svdb *db, uint64_t last_lsn)
{
    svdb_snap_info info = {db->uuid, last_lsn, db->index, db->store.storage, db->hnsw};
    if (db->index == SVDB_INDEX_HNSW) info.hnsw = *svdb__hnsw_params(db->graph); /* the stored default ef */
    return info;
}

static int create_collection(svdb *db, const svdb_open_options *o)
{
    db->uuid = new_uuid();
    svdb__store_init(&db->store, o->dim, o->metric ? o->metric : SVDB_METRIC_L2);
    db->index = o->index ? o->index : SVDB_INDEX_FLAT;
    int storage = open_storage(o) ? open_storage(o) : SVDB_STORAGE_F32;
    SVDB_FAIL_IF(storage != SVDB_STORAGE_F32 && db->index != SVDB_INDEX_HNSW, SVDB_EINVAL,
                 "%s storage needs the hnsw index: an exact scan reads float32 rows", storage_name(storage));
    svdb__store_set_storage(&db->store, storage, db->kern);
    svdb_hnsw_params hp = {o->hnsw_m ? o->hnsw_m : 16, o->hnsw_ef_construction ? o->hnsw_ef_construction : 200,
                           o->hnsw_ef_search ? o->hnsw_ef_search : 64, o->seed};
    db->hnsw = hp;
    if (db->index == SVDB_INDEX_HNSW) SVDB_TRY(svdb__hnsw_create(&db->graph, &hp));
    /* The log first, the snapshot last: the snapshot's rename is what makes
     * the collection exist, so a crash in between leaves "no collection"
     * (a log that holds no record, which open_files may replace). */
    int rc = svdb__wal_create(&db->wal, &db->dir, WAL_NAME, db->uuid);
    if (rc == SVDB_OK) {
        svdb_snap_info info = snap_info(db, 0);
        rc = svdb__snapshot_write(&db->dir, &db->store, db->graph, &info, NULL);
    }
    db->next_lsn = 1;
    return rc;
}

/* Rows a background indexer left unlinked when the collection was saved are
 * queued again, or, without background indexing, linked now. One pass over
 * the slots: a collection saved fully linked (the usual case) costs no more. */
static int link_loaded(svdb *db)
{
    svdb_store *s = &db->store;
    uint32_t *slots = NULL;
    size_t n = 0;
    int rc = SVDB_OK;
    for (size_t slot = 0; slot < s->n_slots && rc == SVDB_OK; slot++) {
        if (!svdb__indexer_is_pending(s, db->graph, (uint32_t)slot)) continue;
        if (!slots && !(slots = svdb__malloc(s->n_slots * sizeof *slots)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory listing unlinked rows");
        else
            slots[n++] = (uint32_t)slot;
    }
    if (rc == SVDB_OK && n && db->background) {
        rc = svdb__indexer_reserve(&db->ix, s->n_slots);
        for (size_t i = 0; rc == SVDB_OK && i < n; i++) svdb__indexer_push(&db->ix, slots[i]);
    } else if (rc == SVDB_OK && n) {
        rc = svdb__hnsw_insert_many(db->graph, s, db->kern, slots, n, db->build_threads);
    }
    svdb__free(slots);
    return rc;
}

static int load_collection(svdb *db, const svdb_open_options *o)
{
    svdb_snap_info info;
    SVDB_TRY(svdb__snapshot_load(&db->dir, &db->store, &db->graph, &info, db->kern, &db->check));
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
    if (o->metric && o->metric != db->store.metric)
        return svdb__fail(SVDB_EMISMATCH, "collection %s uses metric %s, not %s", db->dir.path, metric_name(db->store.metric),
                          metric_name(o->metric));
    int rc = svdb__wal_open(&db->wal, &db->dir, WAL_NAME, db->uuid);
    uint64_t last = 0, dropped = 0;
    if (rc == SVDB_OK) rc = svdb__wal_replay(&db->wal, info.last_lsn, replay_record, db, &last, &dropped);
    if (rc != SVDB_OK) return rc;
    db->next_lsn = last + 1;
    if (o->dim && db->store.dim && o->dim != db->store.dim)
        return svdb__fail(SVDB_EMISMATCH, "collection %s has dimension %u, not %u", db->dir.path, db->store.dim, o->dim);
    if (o->dim && !db->store.dim) svdb__store_set_dim(&db->store, o->dim);
    return SVDB_OK;
}

/* Whether the directory holds anything but what an unfinished creation of
 * a collection leaves (the lock, an empty log): 1 with the first such name
 * in `name`, 0, or an error. */
static int foreign_entry(const svdb_dir *d, char *name, size_t cap)
{
    int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dh) {
        int err = errno;
        if (fd >= 0) close(fd);
        return svdb__fail_errno(SVDB_EIO, err, "cannot list directory %s", d->path);
    }
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(dh));) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, LOCK_NAME) || !strcmp(n, WAL_NAME)) continue;
        snprintf(name, cap, "%s", n);
        found = 1;
    }
    closedir(dh);
    return found;
}

/* A new collection goes only into an empty directory (or one holding what
 * an unfinished creation left), unless the caller allows other files. */
static int refuse_foreign(svdb *db, const svdb_open_options *o)
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
static int precheck_dir(svdb *db, const svdb_open_options *o)
{
    struct stat st;
    int have = svdb__file_stat(&db->dir, SNAP_NAME, &st);
    if (have == 0) have = svdb__file_stat(&db->dir, WAL_NAME, &st);
    if (have == 0) have = svdb__file_stat(&db->dir, LOCK_NAME, &st);
    if (have != 0) return have < 0 ? have : SVDB_OK; /* ours, or an error */
    SVDB_FAIL_IF(!o->create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", db->dir.path);
    return refuse_foreign(db, o);
}

/* Finds the collection's files and opens or creates it. Open never removes
 * or rewrites what it did not expect: a log with writes but no snapshot,
 * a directory full of other files, a link where a file should be, are
 * errors that change nothing. */
static int open_files(svdb *db, const svdb_open_options *o)
{
    const char *dir = db->dir.path;
    SVDB_TRY(svdb__file_unlink(&db->dir, SNAP_TMP_NAME)); /* left by a checkpoint that never finished */
    struct stat st;
    int have = svdb__file_stat(&db->dir, SNAP_NAME, &st);
    if (have < 0) return have;
    if (have) {
        SVDB_FAIL_IF(!S_ISREG(st.st_mode), SVDB_ECORRUPT, "%s/%s is not a regular file (a link or a directory?)", dir,
                     SNAP_NAME);
        return load_collection(db, o);
    }
    int wal = svdb__file_stat(&db->dir, WAL_NAME, &st);
    if (wal < 0) return wal;
    /* A creation that crashed before its snapshot leaves a log with no
     * record; anything more is writes whose snapshot is gone. */
    SVDB_FAIL_IF(wal && (!S_ISREG(st.st_mode) || st.st_size > SVDB_WAL_HEADER_BYTES), SVDB_ECORRUPT,
                 "collection %s has lost its snapshot (%s is missing) but its log %s holds %lld bytes of writes; "
                 "nothing was changed. Restore %s from a backup, or move %s away to start an empty collection",
                 dir, SNAP_NAME, WAL_NAME, (long long)st.st_size, SNAP_NAME, WAL_NAME);
    SVDB_FAIL_IF(!o->create, SVDB_ENOTFOUND, "no collection at %s (and create is off)", dir);
    SVDB_TRY(refuse_foreign(db, o));
    return create_collection(db, o);
}

static void destroy(svdb *db)
{
    if (db->token) svdb__handle_remove(db->token);
    db->magic = DB_DEAD;
    if (db->check_running) {
        __atomic_store_n(&db->check_stop, 1, __ATOMIC_RELEASE);
        pthread_join(db->check_tid, NULL);
    }
    svdb__snapshot_check_free(db->check);
    pthread_mutex_destroy(&db->check_mu);
    svdb__indexer_free(&db->ix); /* stops the thread before what it links goes */
    svdb__wal_close(&db->wal);
    svdb__hnsw_free(db->graph);
    svdb__store_free(&db->store);
    if (db->lock_fd >= 0) close(db->lock_fd);
    pthread_mutex_destroy(&db->write_mu);
    pthread_rwlock_destroy(&db->rw);
    svdb__dir_close(&db->dir);
    svdb__free(db);
}

int svdb_open(svdb **out, const char *path, const svdb_open_options *opts)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!out, SVDB_EINVAL, "out is NULL");
    *out = NULL;
    SVDB_FAIL_IF(!path || !*path, SVDB_EINVAL, "path is NULL or empty");
    svdb_open_options defaults;
    svdb_open_options_init(&defaults, SVDB_OPEN_OPTIONS_VERSION);
    const svdb_open_options *o = opts ? opts : &defaults;
    SVDB_TRY(check_open_options(o));
    SVDB_TRY(make_dir(path, o->create));

    svdb *db = svdb__calloc(1, sizeof *db);
    if (!db) return svdb__fail(SVDB_ENOMEM, "out of memory");
    db->lock_fd = -1;
    db->wal.fd = -1;
    db->dir.fd = -1;
    db->durability = o->durability;
    pthread_once(&fork_once, watch_forks);
    db->fork_gen = fork_generation;
    db->kern = svdb__kernels();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    db->ncpu = ncpu > 0 ? (unsigned)ncpu : 1;
    db->build_threads = o->build_threads ? o->build_threads : db->ncpu;
    db->background = o->background_indexing != 0;
    svdb__indexer_init(&db->ix);
    pthread_mutex_init(&db->write_mu, NULL);
    pthread_mutex_init(&db->check_mu, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Without this, a steady stream of searches could starve writers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&db->rw, &attr);
    pthread_rwlockattr_destroy(&attr);
    int rc = svdb__dir_open(&db->dir, path);
    if (rc == SVDB_OK) rc = precheck_dir(db, o);
    if (rc == SVDB_OK) rc = take_lock(db);
    if (rc == SVDB_OK) rc = open_files(db, o);
    if (db->index != SVDB_INDEX_HNSW) db->background = 0; /* a flat index has nothing to link */
    if (rc == SVDB_OK && db->background)
        rc = svdb__indexer_start(&db->ix, &db->rw, &db->store, db->graph, db->kern, db->build_threads);
    if (rc == SVDB_OK) rc = check_start(db);
    if (rc != SVDB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        destroy(db);
        return svdb__fail(rc, "%s", msg);
    }
    db->magic = DB_MAGIC;
    rc = svdb__handle_add(db, &db->token);
    if (rc != SVDB_OK) {
        destroy(db);
        return rc;
    }
    *out = db->token;
    return SVDB_OK;
}

/* Points the store (f32 chunks, compact originals) and the graph's level-0
 * chunks into the snapshot just written, then drops the old snapshot map and
 * the log maps: memory the file now holds is given back, and the old file's
 * space is freed. The caller holds write_mu, so rows cannot change between
 * the write and this; the background indexer may have linked rows since,
 * and then the graph's chunks are copied out of the old map instead. */
static int remap_snapshot(svdb *db, uint64_t graph_gen, const uint32_t *to_row)
{
    svdb_snap_map sm;
    SVDB_TRY(svdb__snapshot_map(&db->dir, &sm));
    int rc = SVDB_OK;
    const unsigned char *base = svdb__map_base(&sm.map);
    svdb__rw_wrlock(&db->ix, &db->rw); /* no search or indexer reads a row meanwhile */
    if (db->graph && !to_row && svdb__hnsw_generation(db->graph) == graph_gen)
        svdb__hnsw_remap(db->graph, (const uint32_t *)(const void *)(base + sm.l0_offset), sm.rows, base,
                         svdb__map_len(&sm.map));
    else if (db->graph)
        rc = svdb__hnsw_unmap(db->graph);
    /* Packed rows are not slots: chunks leave the old map for memory. */
    if (rc == SVDB_OK && to_row) rc = svdb__store_unmap(&db->store);
    if (rc == SVDB_OK) {
        svdb__store_remap(&db->store, &sm.map, sm.vec_offset, sm.codes_offset, sm.rows, to_row); /* takes sm.map */
        svdb__wal_unview(&db->wal);
    }
    pthread_rwlock_unlock(&db->rw);
    if (rc != SVDB_OK) svdb__map_release(&sm.map);
    return rc;
}

void (*svdb__checkpoint_hook)(struct svdb *db);

/* Checkpoint; the caller holds write_mu. */
static int checkpoint(svdb *db)
{
    SVDB_FAIL_IF(db->poisoned, SVDB_EREADONLY, "collection %s refuses writes after an I/O failure; reopen it", db->dir.path);
    if (db->next_lsn - 1 == db->snap_lsn) return SVDB_OK; /* nothing new since the last snapshot */
    /* A new snapshot copies the rows of the old one: they must be sound. */
    SVDB_TRY(check_wait(db));
    svdb_snap_info info = snap_info(db, db->next_lsn - 1);
    svdb__rw_rdlock(&db->ix, &db->rw); /* searches go on; writers wait on write_mu */
    uint64_t gen = db->graph ? svdb__hnsw_generation(db->graph) : 0;
    uint32_t *to_row = NULL;
    int rc = svdb__snapshot_write(&db->dir, &db->store, db->graph, &info, &to_row);
    pthread_rwlock_unlock(&db->rw);
    if (rc != SVDB_OK) return rc;
    db->snap_lsn = info.last_lsn;
    if (svdb__checkpoint_hook) svdb__checkpoint_hook(db->token);
    /* Rows move to the new snapshot's map before the log may be cut (a
     * compact store reads originals from the log's map). If that fails they
     * stay where they are, valid, and the log stays too (replay skips it). */
    rc = remap_snapshot(db, gen, to_row);
    svdb__free(to_row);
    SVDB_TRY(rc);
    /* The snapshot is durable and replay skips the records it holds, so a
     * failed cut of the log loses nothing and the handle stays writable; the
     * error still tells the caller the checkpoint did not finish. */
    return svdb__wal_reset(&db->wal);
}

int svdb_persist(svdb *h)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    pthread_mutex_lock(&db->write_mu);
    int rc = checkpoint(db);
    pthread_mutex_unlock(&db->write_mu);
    return rc;
}

int svdb_verify(svdb *h)
{
    svdb *db;
    SVDB_TRY(check_handle(h, &db));
    return check_wait(db);
}

int svdb_close(svdb *h)
{
    svdb__clear_error();
    if (!h) return SVDB_OK;
    svdb *db;
    SVDB_TRY(check_handle(h, &db)); /* a damaged collection's handle is closed too */
    int rc = SVDB_OK;
    svdb__indexer_stop(&db->ix); /* rows still queued are saved unlinked and queued again at open */
    if (!db->poisoned) {
        pthread_mutex_lock(&db->write_mu);
        rc = checkpoint(db);
        pthread_mutex_unlock(&db->write_mu);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", svdb_errmsg());
    destroy(db);
    return rc == SVDB_OK ? SVDB_OK : svdb__fail(rc, "%s", msg);
}

/* ---------------------------------------------------------------- writes */

/* Every component finite and the squared norm within SVDB_MAX_NORM2, so
 * every distance to it is finite. A zero (or vanishingly short) vector is
 * accepted under cosine too: it has no direction and scores distance 1 to
 * every row, as in ChromaDB. */
static int check_vector(const float *v, uint32_t dim, const char *what, size_t row)
{
    for (uint32_t d = 0; d < dim; d++)
        if (!isfinite(v[d]))
            return svdb__fail(SVDB_EINVAL, "%s %zu has a NaN or infinite value at component %u", what, row, d);
    double n2 = svdb__norm2(v, dim);
    if (n2 > SVDB_MAX_NORM2)
        return svdb__fail(SVDB_EINVAL,
                          "%s %zu is too large: its squared norm %.3g exceeds %.3g, beyond which distances overflow "
                          "float32",
                          what, row, n2, SVDB_MAX_NORM2);
    return SVDB_OK;
}

static int check_dim(const svdb *db, uint32_t dim, const char *what)
{
    SVDB_FAIL_IF(dim == 0, SVDB_EDIM, "dim is 0");
    SVDB_FAIL_IF(dim > SVDB_MAX_DIM, SVDB_EDIM, "dim %u exceeds the maximum %d", dim, SVDB_MAX_DIM);
    SVDB_FAIL_IF(db->store.dim && dim != db->store.dim, SVDB_EDIM, "%s have %u dimensions but the collection has %u", what,
                 dim, db->store.dim);
    return SVDB_OK;
}

/* Writes are refused once the log or the index could not be updated: the
 * in-memory state may then differ from what a reopen would build. */
static int writable(svdb *db)
{
    SVDB_FAIL_IF(db->poisoned, SVDB_EREADONLY, "collection %s refuses writes after an I/O failure; reopen it", db->dir.path);
    SVDB_FAIL_IF(db->background && svdb__indexer_failed(&db->ix), SVDB_EREADONLY,
                 "collection %s refuses writes: background indexing failed (svdb_index_wait tells why); reopen it",
                 db->dir.path);
    return SVDB_OK;
}

/* Builds a record buffer (header room + payload) and appends it. */
static int log_record(svdb *db, uint32_t type, const svdb_batch *b)
{
    int pad = db->wal.version >= 2;
    size_t plen = type == SVDB_REC_PUT ? svdb__put_size(b, pad) : svdb__delete_size(b, pad);
    unsigned char *rec = svdb__malloc(SVDB_REC_HEADER_BYTES + plen);
    if (!rec) return svdb__fail(SVDB_ENOMEM, "out of memory encoding a %zu-byte log record", plen);
    if (type == SVDB_REC_PUT) svdb__put_encode(b, rec + SVDB_REC_HEADER_BYTES, pad);
    else svdb__delete_encode(b, rec + SVDB_REC_HEADER_BYTES, pad);
    int rc = svdb__wal_append(&db->wal, rec, plen, type, db->next_lsn, db->durability == SVDB_DURABILITY_SYNC,
                              &db->poisoned);
    svdb__free(rec);
    if (rc == SVDB_OK) db->next_lsn++;
    return rc;
}

/* A copy of the caller's strings: the first `cap` bytes of s at most, plus
 * one (so an over-long string stays over-long for the checks), NUL-ended. */
static size_t copy_len(const char *s, size_t cap) { return s ? strnlen(s, cap + 1) : 0; }
static char *copy_str(char *to, const char *s, size_t len)
{
    memcpy(to, s, len);
    to[len] = '\0';
    return to;
}

/* Copies a batch from the caller's memory into one block of its own
 * (vectors, then each id and metadata NUL-ended), so the caller's buffers
 * are read once: the checks then run on the copy, and what was checked is
 * exactly what is logged and stored. Another thread writing the caller's
 * arrays during the call (pysvdb hands numpy memory over without the GIL)
 * can no longer slip a NaN or a bad id past the checks. b's pointers go
 * into *block, which the caller frees; lengths are set by the checks. */
static int copy_batch(svdb_batch *b, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metas, void **block)
{
    /* Each string's length is measured once (kept in the length arrays until
     * the checks set them) and exactly that many bytes are copied: a string
     * changed in between yields a copy with a NUL inside, which the checks
     * then see, never a copy past the block. */
    size_t vbytes = vectors ? n * (size_t)dim * sizeof(float) : 0, bytes = vbytes;
    for (size_t i = 0; i < n; i++) {
        b->id_lens[i] = (uint32_t)copy_len(ids[i], SVDB_MAX_ID_BYTES);
        bytes += b->id_lens[i] + 1;
        if (metas && metas[i]) {
            b->meta_lens[i] = (uint32_t)copy_len(metas[i], SVDB_MAX_METADATA_BYTES);
            bytes += b->meta_lens[i] + 1;
        }
    }
    unsigned char *blk = svdb__malloc(bytes ? bytes : 1);
    if (!blk) return svdb__fail(SVDB_ENOMEM, "out of memory copying a batch of %zu rows", n);
    if (vbytes) memcpy(blk, vectors, vbytes);
    b->vectors = vectors ? (const float *)(void *)blk : NULL;
    char *at = (char *)blk + vbytes;
    for (size_t i = 0; i < n; i++) {
        if (ids[i]) {
            b->ids[i] = copy_str(at, ids[i], b->id_lens[i]);
            at += b->id_lens[i] + 1;
        }
        if (metas && metas[i]) {
            b->metas[i] = copy_str(at, metas[i], b->meta_lens[i]);
            at += b->meta_lens[i] + 1;
        }
    }
    *block = blk;
    return SVDB_OK;
}

static int put_batch(svdb *h, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                     const char *const *metadatas, int is_add)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    SVDB_FAIL_IF(!vectors, SVDB_EINVAL, "vectors is NULL");
    SVDB_FAIL_IF(n > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "batch of %zu rows is too large", n);
    SVDB_FAIL_IF(dim > SVDB_MAX_DIM, SVDB_EDIM, "dim %u exceeds the maximum %d", dim, SVDB_MAX_DIM);
    svdb_batch b;
    SVDB_TRY(svdb__batch_alloc(&b, n, 1));
    b.dim = dim;
    void *block = NULL;
    pthread_mutex_lock(&db->write_mu);
    int rc = writable(db);
    /* The dimension first: the caller's buffer holds n * dim floats only if
     * dim is the collection's. */
    if (rc == SVDB_OK) rc = check_dim(db, dim, "vectors");
    if (rc == SVDB_OK) rc = copy_batch(&b, n, ids, vectors, dim, metadatas, &block);
    for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
        size_t len;
        rc = svdb__id_check(b.ids[i], &len);
        if (rc != SVDB_OK) {
            rc = svdb__fail(rc, "row %zu: %s", i, svdb_errmsg());
            break;
        }
        b.id_lens[i] = (uint32_t)len;
        rc = check_vector(b.vectors + i * dim, dim, "vector of row", i);
        if (rc == SVDB_OK && b.metas[i]) {
            size_t mlen = strnlen(b.metas[i], SVDB_MAX_METADATA_BYTES + 1);
            rc = svdb__meta_check_new(b.metas[i], mlen, i);
            b.meta_lens[i] = (uint32_t)mlen;
        }
    }
    put_plan p = {0};
    int planned = 0, fixed = 0;
    if (rc == SVDB_OK) rc = plan_put(&db->store, &b, is_add, SVDB_EDUPLICATE, &p), planned = rc == SVDB_OK;
    if (rc == SVDB_OK) rc = reserve(db, p.n_new, 0, dim, &fixed);
    uint64_t at = db->wal.end + SVDB_REC_HEADER_BYTES;
    if (rc == SVDB_OK) rc = log_record(db, SVDB_REC_PUT, &b);
    if (rc == SVDB_OK && svdb__store_compact(&db->store) && use_logged_vectors(db, &b, at) != SVDB_OK) {
        /* logged but not applied: the handle no longer matches what a reopen builds */
        db->poisoned = 1;
        rc = svdb__fail(SVDB_EREADONLY, "the write was logged but its vectors could not be mapped (%s); reopen the collection",
                        svdb_errmsg());
    } else if (rc == SVDB_OK) {
        svdb__rw_wrlock(&db->ix, &db->rw);
        rc = apply_put(db, &b, &p);
        pthread_rwlock_unlock(&db->rw);
        if (db->background) svdb__indexer_notify(&db->ix);
        if (rc != SVDB_OK)
            rc = svdb__fail(rc, "the write was logged but the index could not be updated (%s); reopen the collection",
                            svdb_errmsg());
    } else {
        unfix_dim(db, fixed);
    }
    pthread_mutex_unlock(&db->write_mu);
    if (planned) plan_free(&p, n);
    svdb__batch_free(&b);
    svdb__free(block);
    return rc;
}

int svdb_add_batch(svdb *h, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                   const char *const *metadatas)
{
    return put_batch(h, n, ids, vectors, dim, metadatas, 1);
}

int svdb_upsert_batch(svdb *h, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metadatas)
{
    return put_batch(h, n, ids, vectors, dim, metadatas, 0);
}

int svdb_delete(svdb *h, size_t n, const char *const *ids, size_t *n_deleted)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    if (n_deleted) *n_deleted = 0;
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    svdb_batch all, hit;
    SVDB_TRY(svdb__batch_alloc(&all, n, 0));
    void *block = NULL;
    int rc = copy_batch(&all, n, ids, NULL, 0, NULL, &block); /* the caller's ids are read once */
    for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
        size_t len;
        rc = svdb__id_check(all.ids[i], &len);
        if (rc != SVDB_OK) rc = svdb__fail(rc, "row %zu: %s", i, svdb_errmsg());
        all.id_lens[i] = (uint32_t)len;
    }
    if (rc == SVDB_OK) rc = svdb__batch_alloc(&hit, n, 0);
    if (rc != SVDB_OK) {
        svdb__batch_free(&all);
        svdb__free(block);
        return rc;
    }
    uint32_t *slots = svdb__malloc(n * sizeof *slots);
    svdb_idmap seen = {0};
    rc = slots ? svdb__idmap_reserve(&seen, n, batch_key, &hit) : svdb__fail(SVDB_ENOMEM, "out of memory");
    pthread_mutex_lock(&db->write_mu);
    if (rc == SVDB_OK) rc = writable(db);
    /* Missing ids are skipped and repeats collapse: deleting is idempotent. */
    hit.n = 0;
    for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
        uint32_t slot = svdb__store_find(&db->store, all.ids[i], all.id_lens[i]);
        /* keyed by position in `hit`, which holds the ids taken so far */
        if (slot == SVDB_NO_SLOT || svdb__idmap_find(&seen, all.ids[i], all.id_lens[i], batch_key, &hit) != SVDB_NO_SLOT)
            continue;
        svdb__idmap_insert(&seen, all.ids[i], all.id_lens[i], (uint32_t)hit.n);
        hit.ids[hit.n] = all.ids[i];
        hit.id_lens[hit.n] = all.id_lens[i];
        slots[hit.n++] = slot;
    }
    int fixed;
    if (rc == SVDB_OK && hit.n) {
        rc = reserve(db, 0, hit.n, 0, &fixed);
        if (rc == SVDB_OK) rc = log_record(db, SVDB_REC_DELETE, &hit);
        if (rc == SVDB_OK) {
            svdb__rw_wrlock(&db->ix, &db->rw);
            for (size_t i = 0; i < hit.n; i++) {
                if (db->graph) svdb__hnsw_remove(db->graph, &db->store, db->kern, slots[i]);
                svdb__store_remove(&db->store, slots[i]);
            }
            pthread_rwlock_unlock(&db->rw);
        }
    }
    pthread_mutex_unlock(&db->write_mu);
    if (rc == SVDB_OK && n_deleted) *n_deleted = hit.n;
    svdb__idmap_free(&seen);
    svdb__free(slots);
    svdb__batch_free(&all);
    svdb__batch_free(&hit);
    svdb__free(block);
    return rc;
}

/* ---------------------------------------------------------------- reads */

/* The caller's id in buf (SVDB_MAX_ID_BYTES + 2 bytes), read once; NULL stays NULL. */
static const char *copy_id(char *buf, const char *id)
{
    return id ? copy_str(buf, id, copy_len(id, SVDB_MAX_ID_BYTES)) : NULL;
}

int svdb_get(svdb *h, const char *id, float *vector, uint32_t dim, char **metadata)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    if (metadata) *metadata = NULL;
    char idbuf[SVDB_MAX_ID_BYTES + 2];
    size_t len;
    SVDB_TRY(svdb__id_check(copy_id(idbuf, id), &len));
    id = idbuf;
    svdb__rw_rdlock(&db->ix, &db->rw);
    int rc = SVDB_OK;
    uint32_t slot = svdb__store_find(&db->store, id, len);
    if (slot == SVDB_NO_SLOT) {
        rc = svdb__fail(SVDB_ENOTFOUND, "id '%s' not found", id);
    } else {
        const svdb_row *r = svdb__row(&db->store, slot);
        /* The buffer's size is checked under the lock, where the dimension cannot change. */
        if (vector && dim != db->store.dim)
            rc = svdb__fail(SVDB_EDIM, "vector buffer holds %u floats but the collection has %u dimensions", dim,
                            db->store.dim);
        if (rc == SVDB_OK && metadata && r->meta_len && !(*metadata = svdb__strndup(svdb__row_meta(r), r->meta_len)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        if (rc == SVDB_OK && vector) memcpy(vector, svdb__vec(&db->store, slot), db->store.dim * sizeof(float));
    }
    pthread_rwlock_unlock(&db->rw);
    return rc;
}

int svdb_contains(svdb *h, const char *id, int *found)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!found, SVDB_EINVAL, "found is NULL");
    *found = 0;
    char idbuf[SVDB_MAX_ID_BYTES + 2];
    size_t len;
    SVDB_TRY(svdb__id_check(copy_id(idbuf, id), &len));
    svdb__rw_rdlock(&db->ix, &db->rw);
    *found = svdb__store_find(&db->store, idbuf, len) != SVDB_NO_SLOT;
    pthread_rwlock_unlock(&db->rw);
    return SVDB_OK;
}

int svdb_count(svdb *h, size_t *count)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!count, SVDB_EINVAL, "count is NULL");
    svdb__rw_rdlock(&db->ix, &db->rw);
    *count = db->store.n_live;
    pthread_rwlock_unlock(&db->rw);
    return SVDB_OK;
}

int svdb_dim(svdb *h, uint32_t *dim)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!dim, SVDB_EINVAL, "dim is NULL");
    svdb__rw_rdlock(&db->ix, &db->rw);
    *dim = db->store.dim;
    pthread_rwlock_unlock(&db->rw);
    return SVDB_OK;
}

int svdb_metric(svdb *h, int *metric)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!metric, SVDB_EINVAL, "metric is NULL");
    *metric = db->store.metric; /* fixed for the handle's lifetime */
    return SVDB_OK;
}

int svdb_storage_type(svdb *h, int *storage)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!storage, SVDB_EINVAL, "storage is NULL");
    *storage = db->store.storage; /* fixed for the handle's lifetime */
    return SVDB_OK;
}

int svdb_index_type(svdb *h, int *index)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!index, SVDB_EINVAL, "index is NULL");
    *index = db->index; /* fixed for the handle's lifetime */
    return SVDB_OK;
}

/* The ids of live rows admitted by `filter` (NULL: all), in insertion order. */
static int list_ids(svdb *db, const svdb_filter *filter, char ***ids, size_t *count)
{
    svdb__rw_rdlock(&db->ix, &db->rw);
    uint32_t *order = NULL;
    int rc = svdb__store_order(&db->store, &order);
    size_t n = 0, bytes = 0;
    /* Keep the admitted slots in place at the front of `order`. */
    for (size_t i = 0; rc == SVDB_OK && i < db->store.n_live; i++) {
        const svdb_row *r = svdb__row(&db->store, order[i]);
        int m = filter ? svdb__filter_match(filter, svdb__row_meta(r), r->meta_len) : 1;
        if (m < 0) rc = svdb__filter_error(filter);
        if (m <= 0) continue;
        order[n++] = order[i];
        bytes += r->id_len + 1;
    }
    /* One block: a NULL-terminated pointer array, then the strings. */
    char **arr = rc == SVDB_OK ? svdb__malloc((n + 1) * sizeof(char *) + bytes) : NULL;
    if (rc == SVDB_OK && !arr) rc = svdb__fail(SVDB_ENOMEM, "out of memory listing %zu ids", n);
    if (rc == SVDB_OK) {
        char *s = (char *)(arr + n + 1);
        for (size_t i = 0; i < n; i++) {
            const svdb_row *r = svdb__row(&db->store, order[i]);
            memcpy(s, svdb__row_id(r), r->id_len + 1);
            arr[i] = s;
            s += r->id_len + 1;
        }
        arr[n] = NULL;
        *ids = arr;
        *count = n;
    }
    pthread_rwlock_unlock(&db->rw);
    svdb__free(order);
    return rc;
}

int svdb_ids(svdb *h, char ***ids, size_t *count)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!ids || !count, SVDB_EINVAL, "ids or count is NULL");
    *ids = NULL;
    *count = 0;
    return list_ids(db, NULL, ids, count);
}

int svdb_ids_where(svdb *h, const char *where, const char *where_document, char ***ids, size_t *count)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!ids || !count, SVDB_EINVAL, "ids or count is NULL");
    *ids = NULL;
    *count = 0;
    svdb_filter *filter = NULL;
    SVDB_TRY(svdb__filter_compile(where, where_document, &filter));
    int rc = list_ids(db, filter, ids, count);
    svdb__filter_free(filter);
    return rc;
}

/* Copies the queries, then checks and normalises the copy (for cosine), so
 * the caller's buffer is read once. */
static int prepare_queries(const svdb *db, const float *q, size_t n, uint32_t dim, float **out)
{
    float *c = svdb__malloc(n * dim * sizeof(float));
    if (!c) return svdb__fail(SVDB_ENOMEM, "out of memory copying %zu queries", n);
    memcpy(c, q, n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float *v = c + i * dim;
        int rc = check_vector(v, dim, "query", i);
        if (rc != SVDB_OK) {
            svdb__free(c);
            return rc;
        }
        if (db->store.metric == SVDB_METRIC_COSINE) {
            float scale = svdb__inv_norm(v, dim); /* 0 for a zero vector: distance 1 to every row */
            for (uint32_t d = 0; d < dim; d++) v[d] *= scale;
        }
    }
    *out = c;
    return SVDB_OK;
}

static int check_search_args(const void *q, size_t k, const svdb_search_options *opts, svdb_hit **hits,
                             const size_t *n_hits)
{
    SVDB_FAIL_IF(!q, SVDB_EINVAL, "query is NULL");
    SVDB_FAIL_IF(!hits || !n_hits, SVDB_EINVAL, "hits or n_hits is NULL");
    SVDB_FAIL_IF(k == 0, SVDB_EINVAL, "k must be at least 1");
    SVDB_FAIL_IF(opts && (opts->version == 0 || opts->version > SVDB_SEARCH_OPTIONS_VERSION), SVDB_EINVAL,
                 "search options version %u is not supported (1..%d)", opts ? opts->version : 0,
                 SVDB_SEARCH_OPTIONS_VERSION);
    return SVDB_OK;
}

int svdb_search(svdb *h, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts, svdb_hit **hits,
                size_t *n_hits)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    if (hits) *hits = NULL;
    if (n_hits) *n_hits = 0;
    return svdb_search_batch(h, 1, query, dim, k, opts, hits, n_hits);
}

int svdb_search_batch(svdb *h, size_t n_queries, const float *queries, uint32_t dim, size_t k,
                      const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    if (hits) *hits = NULL;
    SVDB_FAIL_IF(n_queries == 0, SVDB_EINVAL, "n_queries is 0");
    SVDB_FAIL_IF(n_queries > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "too many queries");
    SVDB_TRY(check_search_args(queries, k, opts, hits, n_hits));
    for (size_t i = 0; i < n_queries; i++) n_hits[i] = 0;
    svdb_filter *filter = NULL;
    if (opts) SVDB_TRY(svdb__filter_compile(opts->where, opts->where_document, &filter));
    svdb__rw_rdlock(&db->ix, &db->rw); /* the first add may fix the dimension concurrently */
    float *q = NULL;
    int rc = check_dim(db, dim, "queries");
    if (rc == SVDB_OK) rc = prepare_queries(db, queries, n_queries, dim, &q);
    size_t keff = k < db->store.n_live ? k : db->store.n_live;
    if (rc == SVDB_OK && keff > 0) {
        svdb_cand *cands = NULL;
        if (n_queries > SIZE_MAX / sizeof(svdb_cand) / keff ||
            !(cands = svdb__malloc(n_queries * keff * sizeof *cands)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory for %zu x %zu results", n_queries, keff);
        unsigned threads = opts && opts->threads ? opts->threads : db->ncpu;
        svdb_search_plan plan = {&db->store, db->kern, db->graph, opts && opts->ef ? opts->ef : db->hnsw.ef_search,
                                 filter, db->background ? &db->ix : NULL};
        if (rc == SVDB_OK) rc = svdb__search_many(&plan, q, n_queries, keff, threads, cands, n_hits);
        if (rc == SVDB_OK) rc = svdb__hits_build(&db->store, cands, keff, n_hits, n_queries, hits);
        if (rc != SVDB_OK)
            for (size_t i = 0; i < n_queries; i++) n_hits[i] = 0;
        svdb__free(cands);
    }
    pthread_rwlock_unlock(&db->rw);
    svdb__filter_free(filter);
    svdb__free(q);
    return rc;
}

/* ---------------------------------------------------------------- background indexing */

int svdb_index_wait(svdb *h)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    return db->background ? svdb__indexer_wait(&db->ix) : SVDB_OK;
}

svdb_indexer *svdb__indexer_of(svdb *h)
{
    svdb *db = svdb__handle_get(h);
    return db ? &db->ix : NULL;
}

int svdb_index_pending(svdb *h, size_t *pending)
{
    svdb *db;
    SVDB_TRY(check_db(h, &db));
    SVDB_FAIL_IF(!pending, SVDB_EINVAL, "pending is NULL");
    svdb__rw_rdlock(&db->ix, &db->rw);
    *pending = db->background ? svdb__indexer_pending(&db->ix, &db->store, db->graph) : 0;
    pthread_rwlock_unlock(&db->rw);
    return SVDB_OK;
}
