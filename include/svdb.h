/*
 * svdb.h — the whole public API of libsvdb, an embedded persistent vector
 * database. What is not declared in this file is not part of the API.
 *
 * Conventions (see docs/api.md for the full reference):
 *  - Every fallible function returns an int status: SVDB_OK (0) or one of the
 *    negative SVDB_E* codes below. Codes are ABI: they are only ever appended.
 *  - On failure, svdb_errmsg() returns a detailed message for the calling
 *    thread's last failed call; svdb_strerror(status) a static description.
 *  - Handles are opaque. Whatever the library allocates for the caller has a
 *    matching *_free function. Nothing the caller passes is kept after a call.
 *  - Options structs start with `unsigned int version`; fill them with the
 *    matching *_init function so fields can be appended without an ABI break.
 *  - All functions are thread-safe on a shared handle: searches run in
 *    parallel, writes are serialized, a search sees a batch wholly or not at
 *    all. A call racing svdb_close on the same handle either completes
 *    before close frees the collection or fails with SVDB_EMISUSE.
 */
#ifndef SVDB_H
#define SVDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(SVDB_BUILDING)
#define SVDB_API __declspec(dllexport)
#elif defined(_WIN32)
#define SVDB_API __declspec(dllimport)
#elif defined(__GNUC__)
#define SVDB_API __attribute__((visibility("default")))
#else
#define SVDB_API
#endif

/* Release version of the headers; svdb_version_number() gives the library's. */
#define SVDB_VERSION_MAJOR 0
#define SVDB_VERSION_MINOR 1
#define SVDB_VERSION_PATCH 0
#define SVDB_VERSION_NUMBER 100
/* ABI version: bumped only on an incompatible change; equals the SOVERSION. */
#define SVDB_ABI_VERSION 1

/* Status codes. */
#define SVDB_OK 0
#define SVDB_EINVAL -1    /* an argument is invalid (NULL, empty, NaN, ...) */
#define SVDB_EMISUSE -2   /* the handle is NULL, closed, or used wrongly */
#define SVDB_ENOMEM -3    /* out of memory */
#define SVDB_EIO -4       /* an I/O call failed; see svdb_errmsg() */
#define SVDB_ECORRUPT -5  /* a file is damaged or not an svdb file */
#define SVDB_EVERSION -6  /* a file's format version is not supported */
#define SVDB_ELOCKED -7   /* another handle or process holds the collection */
#define SVDB_ENOTFOUND -8 /* the id does not exist */
#define SVDB_EEXISTS -9   /* the id already exists (use upsert) */
#define SVDB_EDIM -10     /* vector dimension does not match the collection */
#define SVDB_ENOSPC -11   /* the disk is full; nothing was applied */
#define SVDB_ETOOBIG -12  /* an id, record or batch exceeds a documented limit */
#define SVDB_EREADONLY -13 /* writes refused: the handle is read-only, or after an I/O failure (reopen) */
#define SVDB_EMETA -14    /* metadata is not a valid JSON object */
#define SVDB_EDUPLICATE -15 /* the same id appears twice in one batch */
#define SVDB_EMISMATCH -16  /* options disagree with the stored collection */
#define SVDB_ECANCELED -17  /* a progress handler stopped the operation; nothing was changed */
#define SVDB_EBUSY -18      /* another process held the collection's write lock for longer than the busy
                               timeout; nothing was changed */

/* Distance metrics (conventions of hnswlib and ChromaDB). */
#define SVDB_METRIC_DEFAULT 0 /* the stored metric; L2 for a new collection */
#define SVDB_METRIC_L2 1      /* squared Euclidean distance */
#define SVDB_METRIC_COSINE 2  /* 1 - cosine similarity */
#define SVDB_METRIC_IP 3      /* 1 - dot product */

/* Index types. */
#define SVDB_INDEX_DEFAULT 0 /* the stored index; flat for a new collection */
#define SVDB_INDEX_FLAT 1    /* exact search by a SIMD scan */
#define SVDB_INDEX_HNSW 2    /* approximate search on an HNSW graph */

/* How an HNSW collection keeps the vectors its graph walk reads; fixed at
 * creation. Compact codes are walked, then the candidates are re-ranked
 * exactly against the float32 originals, which stay in the collection's
 * files and are read through memory maps, not held in process memory. */
#define SVDB_STORAGE_DEFAULT 0 /* the stored storage; float32 for a new collection */
#define SVDB_STORAGE_F32 1     /* float32 rows in memory (4 bytes a component) */
#define SVDB_STORAGE_F16 2     /* half-float codes in memory (2 bytes a component); HNSW only */
#define SVDB_STORAGE_INT8 3    /* 8-bit codes per row, min..max in 256 steps (1 byte a component + 8); HNSW only */

/* Durability modes. */
#define SVDB_DURABILITY_PERSIST 0 /* log written per batch, fsync at persist/close (default) */
#define SVDB_DURABILITY_SYNC 1    /* log fsynced per batch: survives power loss */

/* Open modes: how a handle shares its collection with other handles, in
 * this process or others (docs/api.md, "Many processes"). */
#define SVDB_OPEN_SHARED 0    /* default: any number of shared and read-only handles at once; writers take
                                 turns (busy_timeout_ms), readers see every write acknowledged elsewhere
                                 at their next call */
#define SVDB_OPEN_EXCLUSIVE 1 /* this handle alone: any other open fails with SVDB_ELOCKED (and this one,
                                 while others are open); no per-call check of other processes' writes */
#define SVDB_OPEN_READONLY 2  /* never writes a byte (works on a read-only file system or directory);
                                 writes fail with SVDB_EREADONLY; sees other processes' writes */

#define SVDB_BUSY_TIMEOUT_DEFAULT 5000 /* milliseconds a write waits for the write lock */

/* Limits. */
#define SVDB_MAX_ID_BYTES 1024          /* longest id, in bytes of UTF-8 */
#define SVDB_MAX_DIM 65536              /* largest vector dimension */
#define SVDB_MAX_METADATA_BYTES 1048576 /* largest metadata JSON per row */
#define SVDB_MAX_HNSW_M 128             /* most HNSW links per node (hnsw_m; 2x on the bottom level) */

/* A row's document (ChromaDB's `documents`) is the string value of this key
 * in its metadata object; `where_document` filters test it. */
#define SVDB_DOCUMENT_KEY "#document"

/* Opaque handle to an open collection. */
typedef struct svdb svdb;

#define SVDB_OPEN_OPTIONS_VERSION 6 /* 2 added storage, 3 allow_nonempty_dir, 4 autocheckpoint_bytes,
                                       5 mode, busy_timeout_ms, 6 index_backlog_bytes */
typedef struct svdb_open_options {
    unsigned int version; /* SVDB_OPEN_OPTIONS_VERSION */
    uint32_t dim;         /* 0: the stored one; on a new collection, fixed by the first add */
    int metric;           /* SVDB_METRIC_* */
    int durability;       /* SVDB_DURABILITY_* */
    int create;           /* nonzero (default): create the collection if missing */
    int index;            /* SVDB_INDEX_*; fixed when the collection is created */
    uint32_t hnsw_m;      /* HNSW links per node (2..SVDB_MAX_HNSW_M); 0 = 16; fixed at creation */
    uint32_t hnsw_ef_construction; /* HNSW build candidate list; 0 = 200; fixed at creation */
    uint32_t hnsw_ef_search;       /* default search candidate list; 0 = stored or 64 */
    uint64_t seed;        /* HNSW level seed: same seed + same insertion order = same graph */
    uint32_t build_threads; /* threads linking a large batch into HNSW; 0 = all cores, 1 = deterministic */
    int background_indexing; /* HNSW: nonzero links rows on a background thread (see svdb_index_wait) */
    int storage;          /* version >= 2: SVDB_STORAGE_*; fixed when the collection is created */
    int allow_nonempty_dir; /* version >= 3: nonzero lets a new collection be created in a directory
                               that already holds other files (refused by default: SVDB_EINVAL) */
    uint64_t autocheckpoint_bytes; /* version >= 4: a write that leaves the log at this size or more
                                      checkpoints the collection before it returns (as SQLite's
                                      wal_autocheckpoint); 0 = never; default (and before version 4)
                                      SVDB_AUTOCHECKPOINT_DEFAULT */
    int mode;             /* version >= 5: SVDB_OPEN_SHARED (default, and before version 5),
                             SVDB_OPEN_EXCLUSIVE or SVDB_OPEN_READONLY */
    uint32_t busy_timeout_ms; /* version >= 5: how long a write (or checkpoint) waits while another
                                 handle holds the write lock before failing with SVDB_EBUSY; 0 fails
                                 at once; svdb_open_options_init sets SVDB_BUSY_TIMEOUT_DEFAULT (and
                                 so does an older version's struct) */
    uint64_t index_backlog_bytes; /* version >= 6, with background_indexing: a write that leaves more
                                     than this many bytes of vectors (rows x dim x 4) waiting to be
                                     linked waits, once its rows are durable and searchable and no lock
                                     is held, until no more wait, so that a search never scans more
                                     than about this much exactly; 0 (default) = no bound */
} svdb_open_options;

#define SVDB_AUTOCHECKPOINT_DEFAULT 67108864 /* bytes of log: 64 MiB */

/* svdb_update_batch's options. */
#define SVDB_UPDATE_OPTIONS_VERSION 1
typedef struct svdb_update_options {
    unsigned int version;  /* SVDB_UPDATE_OPTIONS_VERSION */
    int merge_metadata;    /* 0 (default): given metadata replaces the row's; nonzero: its keys replace the
                              row's keys of that name, the row's other keys stay, and a key given as JSON
                              null is removed (ChromaDB's update) */
    int skip_missing;      /* 0 (default): an id not in the collection fails the batch (SVDB_ENOTFOUND);
                              nonzero: such ids are skipped */
    int insert_missing;    /* nonzero: an id not in the collection is added as a new row (its vector must be
                              given; its metadata is the given object, without keys set to null): an upsert
                              with update semantics for the rows that exist (ChromaDB's upsert) */
} svdb_update_options;

#define SVDB_SEARCH_OPTIONS_VERSION 2 /* 2 added ids, n_ids */
typedef struct svdb_search_options {
    unsigned int version; /* SVDB_SEARCH_OPTIONS_VERSION */
    uint32_t threads;     /* svdb_search_batch: worker threads, 0 = all cores */
    uint32_t ef;          /* HNSW candidate list for this search; 0 = the collection default */
    const char *where;    /* metadata filter (JSON, see docs/api.md), or NULL */
    const char *where_document; /* document filter (JSON, see docs/api.md), or NULL */
    const char *const *ids; /* version >= 2: non-NULL restricts the search to these ids (n_ids of them;
                               missing ids are ignored, repeats count once), scored exactly */
    size_t n_ids;
} svdb_search_options;

#define SVDB_SELECT_OPTIONS_VERSION 1
/* Which rows svdb_select returns; svdb_select_options_init sets "every row". */
typedef struct svdb_select_options {
    unsigned int version;       /* SVDB_SELECT_OPTIONS_VERSION */
    const char *where;          /* metadata filter (JSON, see docs/api.md), or NULL */
    const char *where_document; /* document filter (JSON, see docs/api.md), or NULL */
    const char *const *ids;     /* non-NULL: only rows with these ids (n_ids of them; missing ids are
                                   ignored, repeats count once; n_ids 0 selects nothing) */
    size_t n_ids;
    size_t offset; /* matching rows skipped first (default 0) */
    size_t limit;  /* at most this many rows (default SIZE_MAX: all; 0: none) */
} svdb_select_options;

/* One search result. The id points into the same allocation as the array:
 * after the n hits come their ids, each NUL-terminated, one after the other
 * in hit order, so hits[0].id to the end of hits[n-1].id is one block. */
typedef struct svdb_hit {
    const char *id;
    float distance;
} svdb_hit;

/* Versions and messages. */
SVDB_API const char *svdb_version(void);
SVDB_API int svdb_version_number(void);
SVDB_API int svdb_abi_version(void);
SVDB_API const char *svdb_strerror(int status);
SVDB_API const char *svdb_errmsg(void);
SVDB_API const char *svdb_simd_path(void);

/* Options. */
SVDB_API int svdb_open_options_init(svdb_open_options *opts, unsigned int version);
SVDB_API int svdb_search_options_init(svdb_search_options *opts, unsigned int version);

/* Lifecycle. */
SVDB_API int svdb_open(svdb **out, const char *path, const svdb_open_options *opts);
/* Retires the handle (calls that start afterwards fail with SVDB_EMISUSE),
 * waits for the calls in flight on it to return, then checkpoints and frees
 * it. Of concurrent closes one succeeds, the others fail with SVDB_EMISUSE,
 * as does a close from a progress handler of a call on the same handle (it
 * would wait for itself). NULL is a no-op. */
SVDB_API int svdb_close(svdb *db);
SVDB_API int svdb_persist(svdb *db);
/* Waits for the integrity check of the snapshot that svdb_open found and
 * returns its verdict: SVDB_OK, or SVDB_ECORRUPT naming the damage. Open
 * checks every section before it returns, except the vectors, level-0
 * links and compact codes of a large collection (64 MiB or more): those are
 * checked on a thread after open returns, so that a million-row collection
 * opens in milliseconds. If that check finds damage, every later call on
 * the handle fails with its error, and no checkpoint copies the damage into
 * a new snapshot (a checkpoint waits for the check). */
SVDB_API int svdb_verify(svdb *db);

/* Background indexing (open option background_indexing, HNSW only). Writes
 * return once their rows are logged and stored; a thread of this handle then
 * links them into the graph, and searches scan the rows not yet linked
 * exactly, so every row is found from the moment its write returns. */
/* Waits until every row is linked. Returns at once without background
 * indexing; returns the failure that stopped the indexer, if one did. */
SVDB_API int svdb_index_wait(svdb *db);
/* The number of rows waiting to be linked (0 without background indexing). */
SVDB_API int svdb_index_pending(svdb *db, size_t *pending);

/* Progress of long operations (see svdb_progress_handler). */
#define SVDB_PROGRESS_WRITE 1      /* checking a batch's rows (units: rows) */
#define SVDB_PROGRESS_LINK 2       /* linking a batch's rows into the HNSW graph (rows) */
#define SVDB_PROGRESS_CHECKPOINT 3 /* writing a snapshot (rows per section) */
#define SVDB_PROGRESS_VERIFY 4     /* svdb_verify waiting for the snapshot check (bytes) */
/* Called with done of total units at most every few tens of milliseconds,
 * on the thread that called the operation; a nonzero return cancels it:
 * the operation undoes what it did and fails with SVDB_ECANCELED. */
typedef int (*svdb_progress_fn)(void *ctx, int op, uint64_t done, uint64_t total);
/* Sets this handle's progress handler (NULL: none), as SQLite's
 * sqlite3_progress_handler: one handler serves every long operation of the
 * handle, including the checkpoints of svdb_close and automatic ones. */
SVDB_API int svdb_progress_handler(svdb *db, int (*fn)(void *ctx, int op, uint64_t done, uint64_t total), void *ctx);

/* Writes. */
SVDB_API int svdb_add_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas);
SVDB_API int svdb_upsert_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas);
SVDB_API int svdb_delete(svdb *db, size_t n, const char *const *ids, size_t *n_deleted);
/* Changes only what is given for n existing rows, all or nothing, as one log
 * record: vectors (n * dim floats) or NULL to keep every row's vector;
 * metadatas (n entries, an entry NULL keeps that row's) or NULL to keep all.
 * *n_updated (may be NULL) receives the rows changed. */
SVDB_API int svdb_update_options_init(svdb_update_options *opts, unsigned int version);
SVDB_API int svdb_update_batch(svdb *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim, const char *const *metadatas, const svdb_update_options *opts, size_t *n_updated);

/* Reads. */
SVDB_API int svdb_get(svdb *db, const char *id, float *vector, uint32_t dim, char **metadata);
SVDB_API int svdb_contains(svdb *db, const char *id, int *found);
/* n rows by id in one call: found[i] (n ints) tells whether ids[i] exists;
 * vectors (n * dim floats, or NULL) receives each found row's vector and
 * zeros for a missing one; *metadatas (or NULL) receives n strings, NULL
 * for a missing row or one without metadata, in one block freed by
 * svdb_metadatas_free. An id may appear more than once. */
SVDB_API int svdb_get_batch(svdb *db, size_t n, const char *const *ids, float *vectors, uint32_t dim, char ***metadatas, int *found);
SVDB_API int svdb_count(svdb *db, size_t *count);
SVDB_API int svdb_dim(svdb *db, uint32_t *dim);
SVDB_API int svdb_metric(svdb *db, int *metric);
SVDB_API int svdb_index_type(svdb *db, int *index);
SVDB_API int svdb_storage_type(svdb *db, int *storage);
SVDB_API int svdb_ids(svdb *db, char ***ids, size_t *count);
SVDB_API int svdb_ids_where(svdb *db, const char *where, const char *where_document, char ***ids, size_t *count);
/* The rows chosen by opts (NULL: every row), in insertion order (a row keeps
 * its place when updated or upserted; a re-added row goes last), a page of
 * them (offset, limit): their ids as svdb_ids returns them (free with
 * svdb_ids_free) and, if metadatas is not NULL, their metadata as
 * svdb_get_batch returns it (*count entries, NULL for a row without; free
 * with svdb_metadatas_free). One hold of the read lock: ids and metadata are
 * of the same moment. */
SVDB_API int svdb_select_options_init(svdb_select_options *opts, unsigned int version);
SVDB_API int svdb_select(svdb *db, const svdb_select_options *opts, char ***ids, char ***metadatas, size_t *count);
SVDB_API int svdb_search(svdb *db, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits);
/* svdb_search into the caller's buffers, without an allocation: distances
 * (k floats) receives the *n_hits distances, and ids (ids_cap bytes) the
 * hits' ids one after another, each NUL-terminated, in hit order (*ids_len
 * bytes in all). ids_cap = k * (SVDB_MAX_ID_BYTES + 1) always suffices; if
 * the ids do not fit a smaller buffer the call fails with SVDB_ETOOBIG,
 * *ids_len set to the bytes needed, *n_hits 0. */
SVDB_API int svdb_search_into(svdb *db, const float *query, uint32_t dim, size_t k, const svdb_search_options *opts, float *distances, char *ids, size_t ids_cap, size_t *n_hits, size_t *ids_len);
SVDB_API int svdb_search_batch(svdb *db, size_t n_queries, const float *queries, uint32_t dim, size_t k, const svdb_search_options *opts, svdb_hit **hits, size_t *n_hits);

/* Compaction and statistics. */
/* Gives back the space of deleted rows: a checkpoint that writes the live
 * rows densely (renumbered; the HNSW graph and the rows waiting for the
 * background indexer follow them), after which this handle loads the new
 * snapshot, so memory shrinks as the files do. Ids, vectors, metadata,
 * insertion order and search results stay as they were. As crash-safe as a
 * checkpoint: a process killed at any point leaves the collection with
 * every acknowledged row. Without deleted rows it is svdb_persist. Takes the
 * write lock (SVDB_EBUSY after the busy timeout); SVDB_EREADONLY on a
 * read-only handle; reports SVDB_PROGRESS_CHECKPOINT, and a cancel
 * (SVDB_ECANCELED) leaves the collection as it was. Other handles load the
 * compacted collection at their next call. */
SVDB_API int svdb_compact(svdb *db);

#define SVDB_STATS_VERSION 1
/* What svdb_get_stats fills; svdb_stats_init sets version (the caller's struct
 * ends after that version's fields, and only those are written). */
typedef struct svdb_stats {
    unsigned int version;    /* SVDB_STATS_VERSION */
    uint32_t dim;            /* 0 until the first row fixes it */
    int metric;              /* SVDB_METRIC_* */
    int index;               /* SVDB_INDEX_* */
    int storage;             /* SVDB_STORAGE_* */
    uint64_t count;          /* live rows */
    uint64_t slots;          /* row slots allocated: count + free_slots */
    uint64_t free_slots;     /* slots of deleted rows awaiting reuse (svdb_compact gives them back) */
    uint64_t pending;        /* rows waiting for the background indexer */
    uint64_t snapshot_bytes; /* size of the snapshot file */
    uint64_t log_bytes;      /* size of the log file */
    uint64_t other_bytes;    /* the other files of the collection's directory (lock file, leftovers) */
    uint32_t hnsw_m;         /* HNSW only (else 0): links per node */
    uint32_t hnsw_ef_construction; /* HNSW only: build candidate list */
    uint32_t hnsw_ef_search;       /* HNSW only: this handle's default search candidate list */
} svdb_stats;
SVDB_API int svdb_stats_init(svdb_stats *stats, unsigned int version);
/* The collection as of this call (after other processes' writes, as every
 * read), under one hold of the read lock; stats->version must be set
 * (svdb_stats_init). */
SVDB_API int svdb_get_stats(svdb *db, svdb_stats *stats);

/* Freeing what the library returned. All accept NULL. */
SVDB_API void svdb_free(void *ptr);
SVDB_API void svdb_ids_free(char **ids);
SVDB_API void svdb_metadatas_free(char **metadatas);
SVDB_API void svdb_hits_free(svdb_hit *hits);

/* ---------------------------------------------------------------- catalog
 *
 * A catalog names the collections kept under one directory: the directory
 * of a ChromaDB-compatible pysvdb client (docs/chroma.md), which C and any
 * other language can open. It holds the catalog file pysvdb-chroma.json
 * (names, ids, metadata, HNSW settings), the lock file pysvdb-chroma.lock,
 * and one collection directory per collection, named by its UUID.
 *
 * One process at a time opens a directory's catalog (a second open, in this
 * or another process, fails with SVDB_ELOCKED naming the holder's pid).
 * Every change is one atomic rename of the catalog file, fsynced with its
 * directory under SVDB_DURABILITY_SYNC: a crash leaves the old catalog or
 * the new one. A collection's directory is made only once the catalog lists
 * it, and removed only after the catalog forgot it; a marker file in it
 * (pysvdb-collection.json) proves which store it belongs to, so open
 * finishes a delete that a crash interrupted and leaves anything else in
 * place. A catalog handle is not usable in a forked child (SVDB_EMISUSE).
 *
 * Tenants and databases are ChromaDB's: a collection's name is unique in
 * its database, a database's name in its tenant. Every catalog has the
 * tenant "default_tenant" (tenants are never removed) and, unless it was
 * deleted, its database "default_database" (id all zeros). The handle
 * svdb_catalog_open returns works in that database; svdb_catalog_open_database
 * returns a view handle working in another one, which every svdb_catalog_*
 * function takes in place of the catalog's. A `tenant` argument of NULL is
 * the handle's tenant.
 */
typedef struct svdb_catalog svdb_catalog;

#define SVDB_CATALOG_OPTIONS_VERSION 1
typedef struct svdb_catalog_options {
    unsigned int version; /* SVDB_CATALOG_OPTIONS_VERSION */
    int create;           /* nonzero (default): make the directory (and its parents) and an empty catalog */
    int durability;       /* SVDB_DURABILITY_SYNC (default): each change fsynced; PERSIST: no fsync */
    /* Called with a message for what open or delete left in place (a directory
     * named like a collection that is not provably a leftover of this store,
     * files that could not be removed); the message is valid during the call.
     * NULL (default): such warnings are dropped. */
    void (*warning)(const char *message, void *payload);
    void *warning_payload;           /* passed to warning unchanged */
} svdb_catalog_options;

/* One collection of a catalog. The strings point into the same allocation
 * as the array, freed with svdb_catalog_entries_free. */
typedef struct svdb_catalog_entry {
    const char *id;       /* canonical UUID; also the name of its directory */
    const char *name;
    const char *metadata; /* JSON object text, or NULL */
    const char *hnsw;     /* JSON object text of the HNSW settings (space, max_neighbors, ...) */
    const char *path;     /* the collection's directory (it may not exist yet) */
    int metric;           /* SVDB_METRIC_* of "space" */
    uint32_t hnsw_m;      /* "max_neighbors" */
    uint32_t hnsw_ef_construction; /* "ef_construction" */
    uint32_t hnsw_ef_search;       /* "ef_search" */
    uint32_t build_threads;        /* "num_threads", or 0 when absent */
} svdb_catalog_entry;

SVDB_API int svdb_catalog_options_init(svdb_catalog_options *opts, unsigned int version);
/* Opens (opts->create: creates) the catalog of directory `dir`; opts NULL =
 * defaults. SVDB_ECORRUPT names a damaged or missing catalog file and
 * changes nothing; SVDB_EVERSION a newer format; SVDB_ELOCKED another
 * holder; SVDB_ENOTFOUND no catalog with create off. *out is NULL on failure. */
SVDB_API int svdb_catalog_open(svdb_catalog **out, const char *dir, const svdb_catalog_options *opts);
/* Releases the handle and the directory's lock, and closes its views; for a
 * view, the view alone. NULL is a no-op. */
SVDB_API int svdb_catalog_close(svdb_catalog *cat);
/* Every collection of the handle's database, in creation order; free with
 * svdb_catalog_entries_free. Like every call on a collection, SVDB_ENOTFOUND
 * once the handle's database was deleted. */
SVDB_API int svdb_catalog_list(svdb_catalog *cat, svdb_catalog_entry **entries, size_t *n);
/* The collection `name` (SVDB_ENOTFOUND); free with svdb_catalog_entries_free. */
SVDB_API int svdb_catalog_get(svdb_catalog *cat, const char *name, svdb_catalog_entry **entry);
/* Adds a collection: metadata is a JSON object of scalars or lists of them
 * (or NULL), hnsw a JSON object of HNSW settings (NULL: ChromaDB's defaults,
 * space "l2"). SVDB_EEXISTS for a taken name. *entry (if entry is not NULL)
 * receives the new collection. Its directory is not made here. */
SVDB_API int svdb_catalog_create(svdb_catalog *cat, const char *name, const char *metadata, const char *hnsw, svdb_catalog_entry **entry);
/* Changes, in one atomic step, any of: the name (new_name), the metadata
 * (replaced), the HNSW settings (the given keys are replaced; space,
 * max_neighbors and ef_construction are fixed). NULL leaves a part as is. */
SVDB_API int svdb_catalog_modify(svdb_catalog *cat, const char *name, const char *new_name, const char *metadata, const char *hnsw);
SVDB_API int svdb_catalog_rename(svdb_catalog *cat, const char *name, const char *new_name);
SVDB_API int svdb_catalog_set_metadata(svdb_catalog *cat, const char *name, const char *metadata);
/* Deletes a collection: svdb_catalog_forget, then svdb_catalog_purge. Once
 * the catalog forgot it the result is SVDB_OK; files that could not be
 * removed are reported through the warning callback (a later open retries).
 * SVDB_ELOCKED (nothing changed) while the collection is open. */
SVDB_API int svdb_catalog_delete(svdb_catalog *cat, const char *name);
/* The first step of a delete: marks the collection's directory as being
 * deleted and removes the collection from the catalog (atomically). */
SVDB_API int svdb_catalog_forget(svdb_catalog *cat, const char *name);
/* The second step: removes the directory of the forgotten collection `id`
 * (its marker last). SVDB_OK if there is none; SVDB_EINVAL, leaving it in
 * place, when its marker does not prove it is this store's deleted one. */
SVDB_API int svdb_catalog_purge(svdb_catalog *cat, const char *id);
/* The collection's directory, allocated; free with svdb_free. */
SVDB_API int svdb_catalog_collection_path(svdb_catalog *cat, const char *name, char **path);
/* Opens (creating if missing) the collection `name` with svdb_open, its
 * metric and HNSW settings taken from the catalog (opts NULL = defaults;
 * opts' other fields are used as given), and marks its directory as this
 * store's (svdb_catalog_claim). Close it with svdb_close. */
SVDB_API int svdb_catalog_open_collection(svdb **out, svdb_catalog *cat, const char *name, const svdb_open_options *opts);
/* Marks the existing directory of collection `name` as this store's; for a
 * caller that opened it with svdb_open at svdb_catalog_collection_path. */
SVDB_API int svdb_catalog_claim(svdb_catalog *cat, const char *name);
/* Frees what svdb_catalog_list or svdb_catalog_get returned. NULL is a no-op. */
SVDB_API void svdb_catalog_entries_free(svdb_catalog_entry *entries);

/* One database of a catalog. The strings point into the same allocation as
 * the array, freed with svdb_catalog_databases_free. */
typedef struct svdb_catalog_database {
    const char *id;     /* canonical UUID; all zeros for the first default_database */
    const char *name;
    const char *tenant;
} svdb_catalog_database;

/* Adds tenant `name` (UTF-8, at least 3 characters, else SVDB_EINVAL); it
 * has no database yet. SVDB_EEXISTS if it exists. */
SVDB_API int svdb_catalog_create_tenant(svdb_catalog *cat, const char *name);
/* SVDB_OK if tenant `name` exists, SVDB_ENOTFOUND if not. */
SVDB_API int svdb_catalog_get_tenant(svdb_catalog *cat, const char *name);
/* Adds database `name` (UTF-8, at least 3 bytes, else SVDB_EINVAL) to an
 * existing tenant (SVDB_ENOTFOUND), with a new UUID. SVDB_EEXISTS if the
 * tenant has a database of that name. */
SVDB_API int svdb_catalog_create_database(svdb_catalog *cat, const char *tenant, const char *name);
/* The database `name` of the tenant (SVDB_ENOTFOUND; SVDB_EINVAL for a name
 * under 3 bytes); free *database with svdb_catalog_databases_free. */
SVDB_API int svdb_catalog_get_database(svdb_catalog *cat, const char *tenant, const char *name, svdb_catalog_database **database);
/* The tenant's databases ordered by name (byte order), `offset` (>= 0)
 * skipped, at most `limit` (-1: no limit); none for a tenant that does not
 * exist. Free *databases (NULL when *n is 0) with svdb_catalog_databases_free. */
SVDB_API int svdb_catalog_list_databases(svdb_catalog *cat, const char *tenant, int64_t limit, int64_t offset, svdb_catalog_database **databases, size_t *n);
/* Deletes the database with its collections, as svdb_catalog_delete deletes
 * one, in one atomic change: SVDB_ELOCKED, with nothing changed, while one
 * of its collections is open; files that could not be removed are reported
 * through the warning callback. The default database may be deleted too. */
SVDB_API int svdb_catalog_delete_database(svdb_catalog *cat, const char *tenant, const char *name);
/* Deletes every collection, database and tenant of the catalog (as
 * ChromaDB's reset): afterwards only the default tenant and its empty default
 * database exist (that database's id all zeros again). One atomic change, as
 * svdb_catalog_delete_database: SVDB_ELOCKED (nothing changed) while any
 * collection is open; directories that could not be removed are reported
 * through the warning callback. A view resets the whole catalog too. */
SVDB_API int svdb_catalog_reset(svdb_catalog *cat);
/* A view handle of database `database` (NULL: "default_database") of the
 * tenant, which must exist (SVDB_ENOTFOUND; SVDB_EINVAL for a database name
 * under 3 bytes). Close it with svdb_catalog_close; closing the catalog
 * closes it too. It finds its database by name at each call. *out is NULL
 * on failure. */
SVDB_API int svdb_catalog_open_database(svdb_catalog **out, svdb_catalog *cat, const char *tenant, const char *database);
/* Frees what svdb_catalog_get_database or svdb_catalog_list_databases returned. NULL is a no-op. */
SVDB_API void svdb_catalog_databases_free(svdb_catalog_database *databases);

#ifdef __cplusplus
}
#endif

#endif /* SVDB_H */
