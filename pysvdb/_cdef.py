"""The C declarations of libsvdb, as cffi reads them.

This is a copy of the declarations in ``include/svdb.h`` (without the
``SVDB_API`` export macro and the preprocessor guards). The test
``tests/python/test_cdef.py`` compares the two after normalising whitespace
and comments, so a change to the header that is not mirrored here fails CI.
"""

from __future__ import annotations

#: ABI version this package was written against; must equal svdb_abi_version().
EXPECTED_ABI_VERSION = 1

#: The header's string macros, which cffi's cdef cannot hold; the test
#: compares them with include/svdb.h like the rest.
STRING_MACROS = {"SVDB_DOCUMENT_KEY": "#document"}
DOCUMENT_KEY = STRING_MACROS["SVDB_DOCUMENT_KEY"]

CDEF = r"""
/* Release version of the headers; svdb_version_number() gives the library's. */
#define SVDB_VERSION_MAJOR 0
#define SVDB_VERSION_MINOR 1
#define SVDB_VERSION_PATCH 0
#define SVDB_VERSION_NUMBER 100
#define SVDB_ABI_VERSION 1

/* Status codes. */
#define SVDB_OK 0
#define SVDB_EINVAL -1
#define SVDB_EMISUSE -2
#define SVDB_ENOMEM -3
#define SVDB_EIO -4
#define SVDB_ECORRUPT -5
#define SVDB_EVERSION -6
#define SVDB_ELOCKED -7
#define SVDB_ENOTFOUND -8
#define SVDB_EEXISTS -9
#define SVDB_EDIM -10
#define SVDB_ENOSPC -11
#define SVDB_ETOOBIG -12
#define SVDB_EREADONLY -13
#define SVDB_EMETA -14
#define SVDB_EDUPLICATE -15
#define SVDB_EMISMATCH -16
#define SVDB_ECANCELED -17
#define SVDB_EBUSY -18

/* Distance metrics. */
#define SVDB_METRIC_DEFAULT 0
#define SVDB_METRIC_L2 1
#define SVDB_METRIC_COSINE 2
#define SVDB_METRIC_IP 3

/* Index types. */
#define SVDB_INDEX_DEFAULT 0
#define SVDB_INDEX_FLAT 1
#define SVDB_INDEX_HNSW 2

/* Storage of an HNSW collection's vectors. */
#define SVDB_STORAGE_DEFAULT 0
#define SVDB_STORAGE_F32 1
#define SVDB_STORAGE_F16 2
#define SVDB_STORAGE_INT8 3

/* Durability modes. */
#define SVDB_DURABILITY_PERSIST 0
#define SVDB_DURABILITY_SYNC 1

/* Limits. */
#define SVDB_MAX_ID_BYTES 1024
#define SVDB_MAX_DIM 65536
#define SVDB_MAX_METADATA_BYTES 1048576
#define SVDB_MAX_HNSW_M 128

typedef struct svdb svdb;

#define SVDB_OPEN_OPTIONS_VERSION 6
typedef struct svdb_open_options {
    unsigned int version;
    uint32_t dim;
    int metric;
    int durability;
    int create;
    int index;
    uint32_t hnsw_m;
    uint32_t hnsw_ef_construction;
    uint32_t hnsw_ef_search;
    uint64_t seed;
    uint32_t build_threads;
    int background_indexing;
    int storage;
    int allow_nonempty_dir;
    uint64_t autocheckpoint_bytes;
    int mode;
    uint32_t busy_timeout_ms;
    uint64_t index_backlog_bytes;
} svdb_open_options;

#define SVDB_OPEN_SHARED 0
#define SVDB_OPEN_EXCLUSIVE 1
#define SVDB_OPEN_READONLY 2
#define SVDB_BUSY_TIMEOUT_DEFAULT 5000

#define SVDB_AUTOCHECKPOINT_DEFAULT 67108864

#define SVDB_UPDATE_OPTIONS_VERSION 1
typedef struct svdb_update_options {
    unsigned int version;
    int merge_metadata;
    int skip_missing;
    int insert_missing;
} svdb_update_options;

#define SVDB_SELECT_OPTIONS_VERSION 1
typedef struct svdb_select_options {
    unsigned int version;
    const char *where;
    const char *where_document;
    const char *const *ids;
    size_t n_ids;
    size_t offset;
    size_t limit;
} svdb_select_options;
#define SVDB_SEARCH_OPTIONS_VERSION 2
typedef struct svdb_search_options {
    unsigned int version;
    uint32_t threads;
    uint32_t ef;
    const char *where;
    const char *where_document;
    const char *const *ids;
    size_t n_ids;
} svdb_search_options;

typedef struct svdb_hit {
    const char *id;
    float distance;
} svdb_hit;

/* Versions and messages. */
const char *svdb_version(void);
int svdb_version_number(void);
int svdb_abi_version(void);
const char *svdb_strerror(int status);
const char *svdb_errmsg(void);
const char *svdb_simd_path(void);

/* Options. */
int svdb_open_options_init(svdb_open_options *opts, unsigned int version);
int svdb_search_options_init(svdb_search_options *opts, unsigned int version);

/* Lifecycle. */
int svdb_open(svdb **out, const char *path, const svdb_open_options *opts);
int svdb_close(svdb *db);
int svdb_persist(svdb *db);
int svdb_verify(svdb *db);

/* Background indexing (open option background_indexing, HNSW only). */
int svdb_index_wait(svdb *db);
int svdb_index_pending(svdb *db, size_t *pending);

/* Progress of long operations. */
#define SVDB_PROGRESS_WRITE 1
#define SVDB_PROGRESS_LINK 2
#define SVDB_PROGRESS_CHECKPOINT 3
#define SVDB_PROGRESS_VERIFY 4
typedef int (*svdb_progress_fn)(void *ctx, int op, uint64_t done, uint64_t total);
int svdb_progress_handler(svdb *db, int (*fn)(void *ctx, int op, uint64_t done, uint64_t total), void *ctx);

/* Writes. */
int svdb_add_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas);
int svdb_upsert_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas);
int svdb_delete(svdb *db, size_t n, const char *const *ids, size_t *n_deleted);
int svdb_update_options_init(svdb_update_options *opts, unsigned int version);
int svdb_update_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas, const svdb_update_options *opts, size_t *n_updated);

/* Reads. */
int svdb_get(svdb *db, const char *id, float *vector, uint32_t dim, char **metadata);
int svdb_contains(svdb *db, const char *id, int *found);
int svdb_get_batch(svdb *db, size_t n, const char *const *ids, float *vectors, uint32_t dim, char ***metadatas, int *found);
int svdb_count(svdb *db, size_t *count);
int svdb_dim(svdb *db, uint32_t *dim);
int svdb_metric(svdb *db, int *metric);
int svdb_index_type(svdb *db, int *index);
int svdb_storage_type(svdb *db, int *storage);
int svdb_ids(svdb *db, char ***ids, size_t *count);
int svdb_ids_where(svdb *db, const char *where, const char *where_document, char ***ids, size_t *count);
int svdb_select_options_init(svdb_select_options *opts, unsigned int version);
int svdb_select(svdb *db, const svdb_select_options *opts, char ***ids, char ***metadatas, size_t *count);
int svdb_search(svdb *db, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits);
int svdb_search_into(svdb *db, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts, float *distances, char *ids, size_t ids_cap, size_t *n_hits, size_t *ids_len);
int svdb_search_batch(svdb *db, size_t n_queries, const float *queries, uint32_t dim, size_t k, const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits);

/* Compaction and statistics. */
int svdb_compact(svdb *db);
#define SVDB_STATS_VERSION 1
typedef struct svdb_stats {
    unsigned int version;
    uint32_t dim;
    int metric;
    int index;
    int storage;
    uint64_t count;
    uint64_t slots;
    uint64_t free_slots;
    uint64_t pending;
    uint64_t snapshot_bytes;
    uint64_t log_bytes;
    uint64_t other_bytes;
    uint32_t hnsw_m;
    uint32_t hnsw_ef_construction;
    uint32_t hnsw_ef_search;
} svdb_stats;
int svdb_stats_init(svdb_stats *stats, unsigned int version);
int svdb_get_stats(svdb *db, svdb_stats *stats);

/* Freeing what the library returned. */
void svdb_free(void *ptr);
void svdb_ids_free(char **ids);
void svdb_metadatas_free(char **metadatas);
void svdb_hits_free(svdb_hit *hits);
/* Catalog of named collections under one directory (see include/svdb.h). */
typedef struct svdb_catalog svdb_catalog;
#define SVDB_CATALOG_OPTIONS_VERSION 1
typedef struct svdb_catalog_options {
    unsigned int version;
    int create;
    int durability;
    void (*warning)(const char *message, void *payload);
    void *warning_payload;
} svdb_catalog_options;

typedef struct svdb_catalog_entry {
    const char *id;
    const char *name;
    const char *metadata;
    const char *hnsw;
    const char *path;
    int metric;
    uint32_t hnsw_m;
    uint32_t hnsw_ef_construction;
    uint32_t hnsw_ef_search;
    uint32_t build_threads;
} svdb_catalog_entry;

int svdb_catalog_options_init(svdb_catalog_options *opts, unsigned int version);
int svdb_catalog_open(svdb_catalog **out, const char *dir, const svdb_catalog_options *opts);
int svdb_catalog_close(svdb_catalog *cat);
int svdb_catalog_list(svdb_catalog *cat, svdb_catalog_entry **entries, size_t *n);
int svdb_catalog_get(svdb_catalog *cat, const char *name, svdb_catalog_entry **entry);
int svdb_catalog_create(svdb_catalog *cat, const char *name, const char *metadata, const char *hnsw, svdb_catalog_entry **entry);
int svdb_catalog_modify(svdb_catalog *cat, const char *name, const char *new_name, const char *metadata, const char *hnsw);
int svdb_catalog_rename(svdb_catalog *cat, const char *name, const char *new_name);
int svdb_catalog_set_metadata(svdb_catalog *cat, const char *name, const char *metadata);
int svdb_catalog_delete(svdb_catalog *cat, const char *name);
int svdb_catalog_forget(svdb_catalog *cat, const char *name);
int svdb_catalog_purge(svdb_catalog *cat, const char *id);
int svdb_catalog_collection_path(svdb_catalog *cat, const char *name, char **path);
int svdb_catalog_open_collection(svdb **out, svdb_catalog *cat, const char *name, const svdb_open_options *opts);
int svdb_catalog_claim(svdb_catalog *cat, const char *name);
void svdb_catalog_entries_free(svdb_catalog_entry *entries);

typedef struct svdb_catalog_database {
    const char *id;
    const char *name;
    const char *tenant;
} svdb_catalog_database;

int svdb_catalog_create_tenant(svdb_catalog *cat, const char *name);
int svdb_catalog_get_tenant(svdb_catalog *cat, const char *name);
int svdb_catalog_create_database(svdb_catalog *cat, const char *tenant, const char *name);
int svdb_catalog_get_database(svdb_catalog *cat, const char *tenant, const char *name, svdb_catalog_database **database);
int svdb_catalog_list_databases(svdb_catalog *cat, const char *tenant, int64_t limit, int64_t offset, svdb_catalog_database **databases, size_t *n);
int svdb_catalog_delete_database(svdb_catalog *cat, const char *tenant, const char *name);
int svdb_catalog_reset(svdb_catalog *cat);
int svdb_catalog_open_database(svdb_catalog **out, svdb_catalog *cat, const char *tenant, const char *database);
void svdb_catalog_databases_free(svdb_catalog_database *databases);
"""
