/* The catalog's shared state, for lib/catalog.c, catalog_file.c,
 * catalog_json.c, catalog_dirs.c and catalog_scope.c only: the handle with
 * its in-memory entries, and the helpers these files call in each other. */
#ifndef SVDB_CATALOG_IMPL_H
#define SVDB_CATALOG_IMPL_H

#include "os.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_FILE "pysvdb-chroma.json"
#define UUID_LEN 36
#define DEFAULT_TENANT "default_tenant"
#define DEFAULT_DATABASE "default_database"
#define CAT_MAGIC 0x5356444243415447ull /* "SVDBCATG" */
#define DEFAULT_DATABASE_ID "00000000-0000-0000-0000-000000000000" /* as ChromaDB's */

typedef struct entry {
    char id[UUID_LEN + 1];
    char db[UUID_LEN + 1]; /* the id of its database */
    char *name;
    cJSON *meta; /* NULL: null */
    cJSON *hnsw;
} entry;

typedef struct db_rec {
    char id[UUID_LEN + 1];
    char *name;
    char *tenant;
} db_rec;

/* A catalog, or a view of one database of a catalog (base != NULL: every
 * other field but the first four is the base's). */
struct svdb_catalog {
    uint64_t magic;
    unsigned fork_gen;
    svdb_catalog *token;
    svdb_catalog *base;
    char *view_tenant, *view_db;
    svdb_dir dir;
    int lock_fd; /* the catalog's lock file: flock shared for the handle's life, byte 0 for each call */
    uint64_t seen_ino, seen_size; /* the catalog file the entries were read from (or last written) */
    int64_t seen_mtime_ns;
    int durable;
    void (*warning)(const char *message, void *payload);
    void *payload;
    pthread_mutex_t mu;
    char store[UUID_LEN + 1];
    int applied; /* the last save renamed the new catalog in, even if it then failed */
    entry *v;
    size_t n, cap;
    char **tenants;
    size_t n_tenants;
    db_rec *dbs;
    size_t n_dbs;
    const char *sc_tenant, *sc_db; /* the scope of the call in progress (the handle's database) */
};

/* The entries (lib/catalog.c). */
void svdb__catalog_entry_free(entry *e);
long svdb__catalog_find(const svdb_catalog *c, const char *db, const char *name);
long svdb__catalog_find_id(const svdb_catalog *c, const char *id);
int svdb__catalog_reserve(svdb_catalog *c);

/* Tenants and databases (lib/catalog.c): the index of one, or -1; adding
 * one (SVDB_ENOMEM). */
long svdb__catalog_find_tenant(const svdb_catalog *c, const char *name);
long svdb__catalog_find_db(const svdb_catalog *c, const char *tenant, const char *name);
long svdb__catalog_find_db_id(const svdb_catalog *c, const char *id);
int svdb__catalog_add_tenant(svdb_catalog *c, const char *name);
int svdb__catalog_add_db(svdb_catalog *c, const char *id, const char *name, const char *tenant);

/* Writes `text` as d/name through the temporary file tmp (lib/catalog.c). */
int svdb__catalog_write_atomic(const svdb_dir *d, const char *name, const char *tmp, const char *text, int durable, int *renamed);
/* Passes msg to the handle's warning callback, if it has one. */
void svdb__catalog_warn(const svdb_catalog *c, const char *msg);

/* The handle's life and the atomic save (lib/catalog.c), for catalog_scope.c. */
void svdb__catalog_step(const char *step); /* the crash-test hook, at a named step */
int svdb__catalog_register(svdb_catalog *c);
int svdb__catalog_enter(const svdb_catalog *h, svdb_catalog **out); /* the base catalog, locked, scope set */
int svdb__catalog_leave(svdb_catalog *c, int rc);
void svdb__catalog_db_free(db_rec *d);
void svdb__catalog_entries_clear(svdb_catalog *c);
int svdb__catalog_save(svdb_catalog *c);

/* The catalog file between processes (lib/catalog_file.c): the shared flock
 * of the handle's life; the per-call lock (waiting for other processes'
 * calls, SVDB_EBUSY after SVDB_BUSY_TIMEOUT_DEFAULT); loading at open
 * (starting a new store when there is none); reading it again when another
 * process saved it. */
int svdb__catalog_take_lock(svdb_catalog *c);
int svdb__catalog_lock_call(svdb_catalog *c);
void svdb__catalog_unlock_call(svdb_catalog *c);
int svdb__catalog_load(svdb_catalog *c, int create);
int svdb__catalog_refresh(svdb_catalog *c);
void svdb__catalog_new_uuid(char out[UUID_LEN + 1]);
int svdb__catalog_check_name(const char *name, const char *what);

#endif
