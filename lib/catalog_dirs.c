/* The collection directories under the catalog's root and their marker
 * files (pysvdb-collection.json: which store and collection a directory is,
 * "live" or "deleting"). The markers let a later open finish a delete that a
 * crash interrupted, and keep svdb from removing a directory it cannot prove
 * is this store's: stray directories are left in place, with a warning. */
#include "catalog_dirs.h"

#include "alloc.h"
#include "catalog_impl.h"
#include "catalog_json.h"
#include "error.h"
#include "os.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MARKER_FILE "pysvdb-collection.json"
#define MARKER_TMP "pysvdb-collection.json.tmp"
#define MARKER_FORMAT "pysvdb-chroma-collection"
#define MAX_MARKER_BYTES 65536

/* ---------------------------------------------------------------- collection directories */

/* Whether the directory's marker says it is collection id of this store, in `state`. */
static int marker_says(const svdb_catalog *c, const svdb_dir *d, const char *id, const char *state)
{
    char *buf = svdb__file_read_small(d, MARKER_FILE, MAX_MARKER_BYTES, NULL);
    int ok = buf != NULL;
    cJSON *m = ok ? cJSON_Parse(buf) : NULL;
    svdb__free(buf);
    const char *keys[] = {"format", "store", "id", "state"}, *want[] = {MARKER_FORMAT, c->store, id, state};
    for (int i = 0; i < 4 && m; i++) {
        cJSON *v = svdb__catalog_member(m, keys[i]);
        ok = ok && cJSON_IsString(v) && !strcmp(v->valuestring, want[i]);
    }
    ok = ok && m;
    cJSON_Delete(m);
    return ok;
}

int svdb__catalog_write_marker(const svdb_catalog *c, const svdb_dir *d, const char *id, const char *state)
{
    char text[256];
    snprintf(text, sizeof text, "{\"format\": \"%s\", \"store\": \"%s\", \"id\": \"%s\", \"state\": \"%s\"}", MARKER_FORMAT,
             c->store, id, state);
    int renamed;
    return svdb__catalog_write_atomic(d, MARKER_FILE, MARKER_TMP, text, c->durable, &renamed);
}

/* SVDB_ELOCKED while a handle has the collection open (its LOCK held);
 * else SVDB_OK, with *fd holding the lock (or -1 when there is no LOCK). */
int svdb__catalog_hold_collection(const svdb_dir *d, int *fd)
{
    if (svdb__file_try_lock(d, "LOCK", fd) == SVDB_OK) return SVDB_OK;
    return svdb__fail(SVDB_ELOCKED, "collection %s is open (by a handle in this or another process); close it first", d->path);
}

/* Removes root/id, proven by its marker to be this store's deleted
 * collection: its files, the marker last, then the directory. */
int svdb__catalog_purge(svdb_catalog *c, const char *id)
{
    svdb_dir d;
    int have = svdb__dir_open_at(&c->dir, id, &d);
    if (have < 0) return have;
    struct stat st;
    if (!have && svdb__file_stat(&c->dir, id, &st) != 1) return SVDB_OK; /* nothing there */
    int rc = have && marker_says(c, &d, id, "deleting")
                 ? SVDB_OK
                 : svdb__fail(SVDB_EINVAL, "%s/%s is not provably this store's deleted collection; it was left in place", c->dir.path, id);
    int lock = -1;
    if (rc == SVDB_OK) rc = svdb__catalog_hold_collection(&d, &lock);
    if (rc == SVDB_OK) rc = svdb__dir_empty(&d, MARKER_FILE);
    if (rc == SVDB_OK) rc = svdb__file_unlink(&d, MARKER_FILE);
    if (rc == SVDB_OK) rc = svdb__dir_remove(&c->dir, id);
    svdb__fd_close(lock);
    if (rc != SVDB_OK && rc != SVDB_EINVAL && rc != SVDB_ELOCKED) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        rc = svdb__fail(rc, "could not remove all of %s/%s (%s); the next open tries again", c->dir.path, id, msg);
    }
    if (have) svdb__dir_close(&d);
    if (rc == SVDB_OK && c->durable) rc = svdb__dir_sync(&c->dir);
    return rc;
}

typedef struct uuid_list {
    const svdb_catalog *c;
    int unlisted;
    char (**out)[UUID_LEN + 1];
    size_t *n;
} uuid_list;

/* svdb__dir_list's callback: adds name when it is a UUID (and unlisted,
 * when asked); nonzero (SVDB_ENOMEM) stops the listing. */
static int add_uuid(void *ctx, const char *name)
{
    uuid_list *l = ctx;
    if (!svdb__catalog_is_uuid(name) || (l->unlisted && svdb__catalog_find_id(l->c, name) >= 0)) return 0;
    char(*v)[UUID_LEN + 1] = svdb__realloc(*l->out, (*l->n + 1) * sizeof *v);
    if (!v) return svdb__fail(SVDB_ENOMEM, "out of memory");
    memcpy(v[(*l->n)++], name, UUID_LEN + 1);
    *l->out = v;
    return 0;
}

/* The names in the root that look like collection directories (UUIDs),
 * unlisted ones only when `unlisted`; an array the caller frees. */
int svdb__catalog_uuid_names(const svdb_catalog *c, int unlisted, char (**out)[UUID_LEN + 1], size_t *n)
{
    *out = NULL;
    *n = 0;
    uuid_list l = {c, unlisted, out, n};
    return svdb__dir_list(&c->dir, add_uuid, &l);
}

/* Directories the catalog does not list: a delete a crash interrupted is
 * finished; anything else stays, with a warning. */
int svdb__catalog_sweep(svdb_catalog *c)
{
    char(*names)[UUID_LEN + 1];
    size_t n;
    SVDB_TRY(svdb__catalog_uuid_names(c, 1, &names, &n));
    for (size_t i = 0; i < n; i++) {
        int rc = svdb__catalog_purge(c, names[i]);
        char msg[1024];
        if (rc == SVDB_EINVAL)
            snprintf(msg, sizeof msg,
                     "%s/%s is not a collection of the catalog %s/%s and is not provably a leftover of this store, so it "
                     "was left in place; move it away if it is not needed",
                     c->dir.path, names[i], c->dir.path, CATALOG_FILE);
        else snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        if (rc != SVDB_OK) svdb__catalog_warn(c, msg);
    }
    svdb__free(names);
    svdb__clear_error();
    return SVDB_OK;
}

/* ---------------------------------------------------------------- claiming */

int svdb__catalog_claim(svdb_catalog *c, long i)
{
    svdb_dir d;
    int have = svdb__dir_open_at(&c->dir, c->v[i].id, &d);
    if (have < 0) return have;
    SVDB_FAIL_IF(!have, SVDB_ENOTFOUND, "collection directory %s/%s does not exist (open the collection first)", c->dir.path, c->v[i].id);
    int rc = marker_says(c, &d, c->v[i].id, "live") ? SVDB_OK : svdb__catalog_write_marker(c, &d, c->v[i].id, "live");
    svdb__dir_close(&d);
    return rc;
}
