/* The public entry points: argument checks, handles (a closed, stale or
 * inherited handle is refused here), options and versions, and the _free
 * functions. Everything else is the collection engine's (collection.h). */
#include "alloc.h"
#include "collection.h"
#include "distance.h"
#include "error.h"
#include "filter.h"
#include "handles.h"
#include "search.h"
#include "hnsw.h"
#include "svdb.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define HANDLE_MAGIC 0x5356444248414e44ull /* "SVDBHAND" */
#define HANDLE_DEAD 0xdeaddeaddeaddeadull

/* What a token (handles.h) stands for. */
struct svdb_handle {
    uint64_t magic;
    unsigned fork_gen; /* a handle is not usable in a forked child */
    svdb *token;
    svdb_coll *coll;
};

const char *svdb_version(void) { return "0.1.0"; }
int svdb_version_number(void) { return SVDB_VERSION_NUMBER; }
int svdb_abi_version(void) { return SVDB_ABI_VERSION; }
const char *svdb_simd_path(void) { return svdb__kernels()->name; }

void svdb_free(void *ptr) { svdb__free(ptr); }
void svdb_ids_free(char **ids) { svdb__free(ids); }
void svdb_metadatas_free(char **metadatas) { svdb__free(metadatas); }
void svdb_hits_free(svdb_hit *hits) { svdb__free(hits); }

int svdb_open_options_init(svdb_open_options *opts, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_OPEN_OPTIONS_VERSION, SVDB_EINVAL,
                 "open options version %u is not supported (1..%d)", version, SVDB_OPEN_OPTIONS_VERSION);
    /* an older caller's struct ends before the fields its version lacks */
    memset(opts, 0,
           version >= 6   ? sizeof *opts
           : version == 5 ? offsetof(svdb_open_options, index_backlog_bytes)
           : version == 4 ? offsetof(svdb_open_options, mode)
           : version == 3 ? offsetof(svdb_open_options, autocheckpoint_bytes)
           : version == 2 ? offsetof(svdb_open_options, allow_nonempty_dir)
                          : offsetof(svdb_open_options, storage));
    opts->version = version;
    if (version >= 4) opts->autocheckpoint_bytes = SVDB_AUTOCHECKPOINT_DEFAULT;
    if (version >= 5) opts->busy_timeout_ms = SVDB_BUSY_TIMEOUT_DEFAULT;
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
    memset(opts, 0, version >= 2 ? sizeof *opts : offsetof(svdb_search_options, ids));
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
static void drop_inherited_lock(struct svdb_handle *h) { svdb__coll_forked(h->coll); }
static void on_fork_prepare(void) { svdb__handles_lock(); }
static void on_fork_parent(void) { svdb__handles_unlock(); }
static void on_fork_child(void)
{
    fork_generation++;
    svdb__handles_each(drop_inherited_lock);
    svdb__handles_unlock();
}
static void watch_forks(void) { pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child); }

/* Registers a call on a handle (handles.h): a closed, stale or made-up
 * handle is SVDB_EMISUSE, never a read of freed memory, and the handle
 * stays open until end_call, however other threads race to close it. */
static int begin_call(const svdb *token, svdb_call *call)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!token, SVDB_EMISUSE, "database handle is NULL");
    SVDB_FAIL_IF(!svdb__handle_enter(token, call), SVDB_EMISUSE, "database handle is closed or invalid");
    int rc = SVDB_OK;
    if (call->db->magic != HANDLE_MAGIC)
        rc = svdb__fail(SVDB_EMISUSE, "database handle is closed or invalid");
    else if (call->db->fork_gen != fork_generation)
        rc = svdb__fail(SVDB_EMISUSE, "database handle was opened by another process (used after fork)");
    if (rc != SVDB_OK) svdb__handle_leave(call);
    return rc;
}

/* begin_call, for calls that a damaged collection no longer answers. */
static int begin_db(const svdb *token, svdb_call *call)
{
    SVDB_TRY(begin_call(token, call));
    int rc = svdb__coll_sound(call->db->coll);
    if (rc != SVDB_OK) svdb__handle_leave(call);
    return rc;
}

/* Unregisters the call and passes its status through. */
static int end_call(svdb_call *call, int rc)
{
    svdb__handle_leave(call);
    return rc;
}

/* The collection of a call in flight. */
#define COLL(call) ((call).db->coll)

/* ---------------------------------------------------------------- lifecycle */

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
    SVDB_FAIL_IF(o->hnsw_m == 1 || o->hnsw_m > SVDB_MAX_HNSW_M, SVDB_EINVAL, "hnsw_m must be 2..%d (or 0 for 16), not %u",
                 SVDB_MAX_HNSW_M, o->hnsw_m);
    SVDB_FAIL_IF(o->hnsw_ef_construction > 100000 || o->hnsw_ef_search > 100000, SVDB_EINVAL,
                 "ef values must be at most 100000");
    int storage = o->version >= 2 ? o->storage : SVDB_STORAGE_DEFAULT;
    SVDB_FAIL_IF(storage < SVDB_STORAGE_DEFAULT || storage > SVDB_STORAGE_INT8, SVDB_EINVAL, "unknown storage type %d",
                 storage);
    int mode = o->version >= 5 ? o->mode : SVDB_OPEN_SHARED;
    SVDB_FAIL_IF(mode < SVDB_OPEN_SHARED || mode > SVDB_OPEN_READONLY, SVDB_EINVAL, "unknown open mode %d", mode);
    return SVDB_OK;
}

static void handle_free(struct svdb_handle *h)
{
    h->magic = HANDLE_DEAD;
    svdb__free(h);
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
    pthread_once(&fork_once, watch_forks);
    struct svdb_handle *h = svdb__calloc(1, sizeof *h);
    if (!h) return svdb__fail(SVDB_ENOMEM, "out of memory");
    h->fork_gen = fork_generation;
    int rc = svdb__coll_open(&h->coll, path, o);
    if (rc == SVDB_OK) {
        h->magic = HANDLE_MAGIC;
        rc = svdb__handle_add(h, &h->token);
        if (rc != SVDB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", svdb_errmsg());
            svdb__coll_close(h->coll);
            rc = svdb__fail(rc, "%s", msg);
        }
    }
    if (rc != SVDB_OK) {
        handle_free(h);
        return rc;
    }
    svdb__coll_set_token(h->coll, h->token);
    *out = h->token;
    return SVDB_OK;
}

/* Retires the token first, so calls that start now fail, then waits for
 * the calls in flight: a call racing close either completes before the
 * collection goes or fails with SVDB_EMISUSE. */
int svdb_close(svdb *token)
{
    svdb__clear_error();
    if (!token) return SVDB_OK;
    svdb_call call;
    SVDB_TRY(begin_call(token, &call)); /* a damaged collection's handle is closed too */
    if (svdb__handle_nested(&call)) /* waiting for our own caller would never end */
        return end_call(&call, svdb__fail(SVDB_EMISUSE, "svdb_close was called from inside another call on the "
                                                        "same handle (a progress handler); close it after that "
                                                        "call returns"));
    struct svdb_handle *h = call.db;
    int won = svdb__handle_retire(token);
    svdb__handle_leave(&call);
    SVDB_FAIL_IF(!won, SVDB_EMISUSE, "database handle is closed or invalid"); /* another thread closed it first */
    svdb__handle_drain(token);
    int rc = svdb__coll_close(h->coll); /* the collection is gone whatever rc says */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", svdb_errmsg());
    svdb__handle_remove(token);
    handle_free(h);
    return rc == SVDB_OK ? SVDB_OK : svdb__fail(rc, "%s", msg);
}

int svdb_persist(svdb *token)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, svdb__coll_persist(COLL(call)));
}

int svdb_compact(svdb *token)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, svdb__coll_compact(COLL(call)));
}

/* The bytes of an svdb_stats of this version, the only ones written: a
 * caller built against an older header has a shorter struct. Version 1 is
 * the whole of today's struct; version 2's first field will mark its end,
 * as the options structs' sizes do above. */
static size_t stats_size(unsigned version)
{
    (void)version;
    return sizeof(svdb_stats);
}

int svdb_stats_init(svdb_stats *stats, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!stats, SVDB_EINVAL, "stats is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_STATS_VERSION, SVDB_EINVAL,
                 "stats version %u is not supported (1..%d)", version, SVDB_STATS_VERSION);
    memset(stats, 0, stats_size(version));
    stats->version = version;
    return SVDB_OK;
}

int svdb_get_stats(svdb *token, svdb_stats *stats)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (!stats) return end_call(&call, svdb__fail(SVDB_EINVAL, "stats is NULL"));
    unsigned version = stats->version;
    if (version == 0 || version > SVDB_STATS_VERSION)
        return end_call(&call, svdb__fail(SVDB_EINVAL, "stats version %u is not supported (1..%d); set it with "
                                                       "svdb_stats_init", version, SVDB_STATS_VERSION));
    svdb_stats all;
    memset(&all, 0, sizeof all);
    int rc = svdb__coll_stats(COLL(call), &all);
    all.version = version;
    if (rc == SVDB_OK) memcpy(stats, &all, stats_size(version));
    return end_call(&call, rc);
}

int svdb_verify(svdb *token)
{
    svdb_call call;
    SVDB_TRY(begin_call(token, &call));
    return end_call(&call, svdb__coll_verify(COLL(call)));
}

int svdb_progress_handler(svdb *token, int (*fn)(void *ctx, int op, uint64_t done, uint64_t total), void *ctx)
{
    svdb_call call;
    SVDB_TRY(begin_call(token, &call));
    svdb__coll_set_progress(COLL(call), fn, ctx);
    return end_call(&call, SVDB_OK);
}

/* ---------------------------------------------------------------- writes */

static int check_put_args(size_t n, const char *const *ids, const float *vectors, uint32_t dim)
{
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    SVDB_FAIL_IF(!vectors, SVDB_EINVAL, "vectors is NULL");
    SVDB_FAIL_IF(n > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "batch of %zu rows is too large", n);
    SVDB_FAIL_IF(dim > SVDB_MAX_DIM, SVDB_EDIM, "dim %u exceeds the maximum %d", dim, SVDB_MAX_DIM);
    return SVDB_OK;
}

static int put(svdb *token, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
               const char *const *metadatas, int add)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    int rc = check_put_args(n, ids, vectors, dim);
    if (rc == SVDB_OK) rc = svdb__coll_put(COLL(call), n, ids, vectors, dim, metadatas, add);
    return end_call(&call, rc);
}

int svdb_add_batch(svdb *token, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                   const char *const *metadatas)
{
    return put(token, n, ids, vectors, dim, metadatas, 1);
}

int svdb_upsert_batch(svdb *token, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metadatas)
{
    return put(token, n, ids, vectors, dim, metadatas, 0);
}

int svdb_update_options_init(svdb_update_options *opts, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_UPDATE_OPTIONS_VERSION, SVDB_EINVAL,
                 "update options version %u is not supported (1..%d)", version, SVDB_UPDATE_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return SVDB_OK;
}

static int update(svdb_coll *c, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                  const char *const *metadatas, const svdb_update_options *opts, size_t *n_updated)
{
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    SVDB_FAIL_IF(!vectors && !metadatas, SVDB_EINVAL, "nothing to update: vectors and metadatas are both NULL");
    SVDB_FAIL_IF(n > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "batch of %zu rows is too large", n);
    SVDB_FAIL_IF(vectors && dim > SVDB_MAX_DIM, SVDB_EDIM, "dim %u exceeds the maximum %d", dim, SVDB_MAX_DIM);
    SVDB_FAIL_IF(opts && (opts->version == 0 || opts->version > SVDB_UPDATE_OPTIONS_VERSION), SVDB_EINVAL,
                 "update options version %u is not supported (1..%d)", opts ? opts->version : 0,
                 SVDB_UPDATE_OPTIONS_VERSION);
    return svdb__coll_update(c, n, ids, vectors, dim, metadatas, opts, n_updated);
}

int svdb_update_batch(svdb *token, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metadatas, const svdb_update_options *opts, size_t *n_updated)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (n_updated) *n_updated = 0;
    return end_call(&call, update(COLL(call), n, ids, vectors, dim, metadatas, opts, n_updated));
}

static int delete_rows(svdb_coll *c, size_t n, const char *const *ids, size_t *n_deleted)
{
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    return svdb__coll_delete(c, n, ids, n_deleted);
}

int svdb_delete(svdb *token, size_t n, const char *const *ids, size_t *n_deleted)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (n_deleted) *n_deleted = 0;
    return end_call(&call, delete_rows(COLL(call), n, ids, n_deleted));
}

/* ---------------------------------------------------------------- reads */

/* The caller's id in buf (SVDB_MAX_ID_BYTES + 2 bytes), read once, and
 * checked; *len receives its length. */
static int copy_id(char *buf, const char *id, size_t *len)
{
    if (id) {
        size_t n = strnlen(id, SVDB_MAX_ID_BYTES + 1);
        memcpy(buf, id, n);
        buf[n] = '\0';
    }
    return svdb__id_check(id ? buf : NULL, len);
}

static int get_row(svdb_coll *c, const char *id, float *vector, uint32_t dim, char **metadata)
{
    char idbuf[SVDB_MAX_ID_BYTES + 2];
    size_t len;
    SVDB_TRY(copy_id(idbuf, id, &len));
    return svdb__coll_get(c, idbuf, len, vector, dim, metadata);
}

int svdb_get(svdb *token, const char *id, float *vector, uint32_t dim, char **metadata)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (metadata) *metadata = NULL;
    return end_call(&call, get_row(COLL(call), id, vector, dim, metadata));
}

static int get_rows(svdb_coll *c, size_t n, const char *const *ids, float *vectors, uint32_t dim, char ***metadatas,
                    int *found)
{
    SVDB_FAIL_IF(n == 0, SVDB_EINVAL, "the batch is empty (n = 0)");
    SVDB_FAIL_IF(!ids, SVDB_EINVAL, "ids is NULL");
    SVDB_FAIL_IF(!found, SVDB_EINVAL, "found is NULL");
    SVDB_FAIL_IF(n > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "batch of %zu ids is too large", n);
    return svdb__coll_get_batch(c, n, ids, vectors, dim, metadatas, found);
}

int svdb_get_batch(svdb *token, size_t n, const char *const *ids, float *vectors, uint32_t dim, char ***metadatas,
                   int *found)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (metadatas) *metadatas = NULL;
    return end_call(&call, get_rows(COLL(call), n, ids, vectors, dim, metadatas, found));
}

static int contains(svdb_coll *c, const char *id, int *found)
{
    SVDB_FAIL_IF(!found, SVDB_EINVAL, "found is NULL");
    *found = 0;
    char idbuf[SVDB_MAX_ID_BYTES + 2];
    size_t len;
    SVDB_TRY(copy_id(idbuf, id, &len));
    return svdb__coll_contains(c, idbuf, len, found);
}

int svdb_contains(svdb *token, const char *id, int *found)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, contains(COLL(call), id, found));
}

/* The small getters: one value of the collection into a caller's pointer. */
#define GETTER(fn, type, arg, expr)                                                                               \
    int fn(svdb *token, type *arg)                                                                                 \
    {                                                                                                              \
        svdb_call call;                                                                                            \
        SVDB_TRY(begin_db(token, &call));                                                                          \
        if (!arg) return end_call(&call, svdb__fail(SVDB_EINVAL, #arg " is NULL"));                                \
        *arg = expr(COLL(call));                                                                                   \
        return end_call(&call, SVDB_OK);                                                                           \
    }
GETTER(svdb_count, size_t, count, svdb__coll_count)
GETTER(svdb_dim, uint32_t, dim, svdb__coll_dim)
GETTER(svdb_metric, int, metric, svdb__coll_metric)
GETTER(svdb_storage_type, int, storage, svdb__coll_storage)
GETTER(svdb_index_type, int, index, svdb__coll_index)
GETTER(svdb_index_pending, size_t, pending, svdb__coll_index_pending)

static int list_ids(svdb_coll *c, const char *where, const char *where_document, char ***ids, size_t *count)
{
    SVDB_FAIL_IF(!ids || !count, SVDB_EINVAL, "ids or count is NULL");
    *ids = NULL;
    *count = 0;
    svdb_filter *filter = NULL;
    SVDB_TRY(svdb__filter_compile(where, where_document, &filter));
    int rc = svdb__coll_ids(c, filter, ids, count);
    svdb__filter_free(filter);
    return rc;
}

int svdb_ids(svdb *token, char ***ids, size_t *count)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, list_ids(COLL(call), NULL, NULL, ids, count));
}

int svdb_ids_where(svdb *token, const char *where, const char *where_document, char ***ids, size_t *count)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, list_ids(COLL(call), where, where_document, ids, count));
}

int svdb_select_options_init(svdb_select_options *opts, unsigned int version)
{
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_SELECT_OPTIONS_VERSION, SVDB_EINVAL,
                 "select options version %u is not supported (1..%d)", version, SVDB_SELECT_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    opts->limit = SIZE_MAX;
    return SVDB_OK;
}

static int select_rows(svdb_coll *c, const svdb_select_options *opts, char ***ids, char ***metadatas, size_t *count)
{
    SVDB_FAIL_IF(!ids || !count, SVDB_EINVAL, "ids or count is NULL");
    *ids = NULL;
    *count = 0;
    if (metadatas) *metadatas = NULL;
    svdb_select_options all;
    if (!opts) {
        svdb_select_options_init(&all, SVDB_SELECT_OPTIONS_VERSION);
        opts = &all;
    }
    SVDB_FAIL_IF(opts->version == 0 || opts->version > SVDB_SELECT_OPTIONS_VERSION, SVDB_EINVAL,
                 "select options version %u is not supported (1..%d)", opts->version, SVDB_SELECT_OPTIONS_VERSION);
    SVDB_FAIL_IF(!opts->ids && opts->n_ids, SVDB_EINVAL, "ids is NULL but n_ids is %zu", opts->n_ids);
    svdb_filter *filter = NULL;
    SVDB_TRY(svdb__filter_compile(opts->where, opts->where_document, &filter));
    int rc = svdb__coll_select(c, filter, opts->ids, opts->n_ids, opts->offset, opts->limit, ids, metadatas, count);
    svdb__filter_free(filter);
    return rc;
}

int svdb_select(svdb *token, const svdb_select_options *opts, char ***ids, char ***metadatas, size_t *count)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, select_rows(COLL(call), opts, ids, metadatas, count));
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

static int search(svdb_coll *c, size_t n_queries, const float *queries, uint32_t dim, size_t k,
                  const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits)
{
    if (hits) *hits = NULL;
    SVDB_FAIL_IF(n_queries == 0, SVDB_EINVAL, "n_queries is 0");
    SVDB_FAIL_IF(n_queries > SIZE_MAX / sizeof(float) / SVDB_MAX_DIM, SVDB_ETOOBIG, "too many queries");
    SVDB_TRY(check_search_args(queries, k, opts, hits, n_hits));
    for (size_t i = 0; i < n_queries; i++) n_hits[i] = 0;
    svdb_filter *filter = NULL;
    if (opts) SVDB_TRY(svdb__filter_compile(opts->where, opts->where_document, &filter));
    svdb_hit_sink out = {hits, NULL, NULL, 0, NULL};
    int rc = svdb__coll_search(c, n_queries, queries, dim, k, opts, filter, &out, n_hits);
    svdb__filter_free(filter);
    return rc;
}

int svdb_search(svdb *token, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts,
                svdb_hit **hits, size_t *n_hits)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (n_hits) *n_hits = 0;
    return end_call(&call, search(COLL(call), 1, query, dim, k, opts, hits, n_hits));
}

int svdb_search_batch(svdb *token, size_t n_queries, const float *queries, uint32_t dim, size_t k,
                      const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, search(COLL(call), n_queries, queries, dim, k, opts, hits, n_hits));
}

static int search_into(svdb_coll *c, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts,
                       float *distances, char *ids, size_t ids_cap, size_t *n_hits, size_t *ids_len)
{
    SVDB_FAIL_IF(!query, SVDB_EINVAL, "query is NULL");
    SVDB_FAIL_IF(!distances || !ids || !n_hits || !ids_len, SVDB_EINVAL,
                 "distances, ids, n_hits or ids_len is NULL");
    SVDB_FAIL_IF(k == 0, SVDB_EINVAL, "k must be at least 1");
    SVDB_FAIL_IF(opts && (opts->version == 0 || opts->version > SVDB_SEARCH_OPTIONS_VERSION), SVDB_EINVAL,
                 "search options version %u is not supported (1..%d)", opts ? opts->version : 0,
                 SVDB_SEARCH_OPTIONS_VERSION);
    svdb_filter *filter = NULL;
    if (opts) SVDB_TRY(svdb__filter_compile(opts->where, opts->where_document, &filter));
    svdb_hit_sink out = {NULL, distances, ids, ids_cap, ids_len};
    int rc = svdb__coll_search(c, 1, query, dim, k, opts, filter, &out, n_hits);
    svdb__filter_free(filter);
    if (rc != SVDB_OK) *n_hits = 0;
    return rc;
}

int svdb_search_into(svdb *token, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts,
                     float *distances, char *ids, size_t ids_cap, size_t *n_hits, size_t *ids_len)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    if (n_hits) *n_hits = 0;
    if (ids_len) *ids_len = 0;
    return end_call(&call, search_into(COLL(call), query, dim, k, opts, distances, ids, ids_cap, n_hits, ids_len));
}

/* ---------------------------------------------------------------- background indexing */

int svdb_index_wait(svdb *token)
{
    svdb_call call;
    SVDB_TRY(begin_db(token, &call));
    return end_call(&call, svdb__coll_index_wait(COLL(call)));
}

svdb_indexer *svdb__indexer_of(svdb *token)
{
    struct svdb_handle *h = svdb__handle_get(token);
    return h ? svdb__coll_indexer(h->coll) : NULL;
}

int svdb__links_counts(svdb *token, uint64_t counts[3])
{
    struct svdb_handle *h = svdb__handle_get(token);
    if (!h) return SVDB_EMISUSE;
    svdb__coll_links_counts(h->coll, counts);
    return SVDB_OK;
}
