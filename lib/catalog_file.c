/* The catalog's file (pysvdb-chroma.json) and its lock file, shared by
 * every handle of every process: the locks that keep the earlier
 * single-process catalog out and put calls in turn, reading the file (at
 * open, and again when another process saved it since), and the atomic
 * save. */
#include "catalog_dirs.h"
#include "catalog_impl.h"
#include "catalog_json.h"

#include "alloc.h"
#include "error.h"
#include "os.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CATALOG_TMP "pysvdb-chroma.json.tmp"
#define LOCK_FILE "pysvdb-chroma.lock"

/* Several processes may open one catalog. Each holds a shared flock on the
 * lock file for its handle's life, which keeps out the single-process
 * catalog of earlier svdb versions (it took the flock exclusively, and
 * wrote its process id there), and takes byte 0 of the same file (an open
 * file description lock, independent of flock) for every call: the call
 * reads the catalog again if another process replaced it, changes it, and
 * saves it, alone. */
int svdb__catalog_take_lock(svdb_catalog *c)
{
    int rc = svdb__file_lock(&c->dir, LOCK_FILE, 1, &c->lock_fd);
    if (rc == SVDB_ELOCKED) {
        char pid[32];
        svdb__lock_holder(&c->dir, LOCK_FILE, pid, sizeof pid);
        return svdb__fail(SVDB_ELOCKED,
                          "%s is locked: a process (pid %s) running an earlier svdb, whose catalog allowed one process "
                          "at a time, has it open; close it or upgrade it",
                          c->dir.path, pid[0] ? pid : "?");
    }
    return rc;
}

/* Waits for the other processes' calls (SVDB_BUSY_TIMEOUT_DEFAULT at most:
 * catalog calls take milliseconds). */
int svdb__catalog_lock_call(svdb_catalog *c)
{
    SVDB_FAIL_IF(c->lock_fd < 0, SVDB_EMISUSE, "catalog handle was opened by another process (used after fork)");
    int rc = svdb__range_lock(c->lock_fd, 0, F_WRLCK, SVDB_BUSY_TIMEOUT_DEFAULT, c->dir.path);
    if (rc == SVDB_EBUSY)
        return svdb__fail(SVDB_EBUSY, "the catalog %s stayed busy with another process's call for %d ms; nothing was changed",
                          c->dir.path, SVDB_BUSY_TIMEOUT_DEFAULT);
    return rc;
}

void svdb__catalog_unlock_call(svdb_catalog *c)
{
    if (c->lock_fd >= 0) svdb__range_unlock(c->lock_fd, 0);
}

/* Which catalog file the entries match. Saves replace the file by rename,
 * so another process's save shows as a new inode (with size and time as a
 * guard against a reused inode number). */
static int file_identity(const svdb_catalog *c, uint64_t *ino, uint64_t *size, int64_t *mtime_ns)
{
    struct stat st;
    int have = svdb__file_stat(&c->dir, CATALOG_FILE, &st);
    if (have <= 0) return have;
    *ino = (uint64_t)st.st_ino;
    *size = (uint64_t)st.st_size;
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 1;
}

static void note_file(svdb_catalog *c)
{
    if (file_identity(c, &c->seen_ino, &c->seen_size, &c->seen_mtime_ns) != 1) c->seen_ino = 0;
}

/* No catalog file: a new store, unless collection directories show one was lost. */
static int start_store(svdb_catalog *c, int create)
{
    char(*names)[UUID_LEN + 1];
    size_t n;
    SVDB_TRY(svdb__catalog_uuid_names(c, 0, &names, &n));
    char list[160];
    snprintf(list, sizeof list, "%s%s%s%s%s%s", n ? names[0] : "", n > 1 ? ", " : "", n > 1 ? names[1] : "",
             n > 2 ? ", " : "", n > 2 ? names[2] : "", n > 3 ? ", ..." : "");
    svdb__free(names);
    SVDB_FAIL_IF(n, SVDB_ECORRUPT,
                 "the catalog %s/%s is missing, but %s holds %zu collection director%s (%s): without the catalog svdb "
                 "cannot tell their names and settings. Restore the catalog from a backup, or move the directories "
                 "away to start an empty store; nothing was changed or removed",
                 c->dir.path, CATALOG_FILE, c->dir.path, n, n == 1 ? "y" : "ies", list);
    SVDB_FAIL_IF(!create, SVDB_ENOTFOUND, "no catalog %s/%s (and create is off)", c->dir.path, CATALOG_FILE);
    svdb__catalog_new_uuid(c->store);
    SVDB_TRY(svdb__catalog_add_tenant(c, DEFAULT_TENANT));
    SVDB_TRY(svdb__catalog_add_db(c, DEFAULT_DATABASE_ID, DEFAULT_DATABASE, DEFAULT_TENANT));
    return svdb__catalog_save(c);
}

static int read_whole(const svdb_catalog *c, int fd, char **text, size_t *len)
{
    struct stat st;
    char *path = svdb__dir_file(&c->dir, CATALOG_FILE);
    SVDB_FAIL_IF(!path, SVDB_ENOMEM, "out of memory");
    int rc = svdb__fd_stat(fd, path, &st) != SVDB_OK ? SVDB_EIO
             : !S_ISREG(st.st_mode) ? svdb__fail(SVDB_ECORRUPT, "cannot read the catalog %s: it is not a regular file; restore it from a backup (nothing was changed)", path)
                                    : SVDB_OK;
    *text = rc == SVDB_OK ? svdb__malloc((size_t)st.st_size + 1) : NULL;
    if (rc == SVDB_OK && !*text) rc = svdb__fail(SVDB_ENOMEM, "out of memory reading %s", path);
    if (rc == SVDB_OK) rc = svdb__pread_all(fd, *text, (size_t)st.st_size, 0, path);
    if (rc == SVDB_OK) (*text)[st.st_size] = '\0', *len = (size_t)st.st_size;
    else svdb__free(*text), *text = NULL;
    svdb__free(path);
    return rc;
}

/* Reads the catalog file into the (empty) entries. */
static int read_catalog(svdb_catalog *c, int fd)
{
    char *text = NULL;
    size_t len = 0;
    SVDB_TRY(read_whole(c, fd, &text, &len));
    const char *why = NULL;
    cJSON *doc = svdb__catalog_parse_json(text, len, &why);
    svdb__free(text);
    SVDB_FAIL_IF(!doc, SVDB_ECORRUPT, "cannot read the catalog %s/%s: %s; restore it from a backup (nothing was changed)",
                 c->dir.path, CATALOG_FILE, why);
    char err[512] = "";
    int rc = svdb__catalog_parse_doc(c, doc, err);
    cJSON_Delete(doc);
    if (rc == SVDB_EVERSION) return svdb__fail(rc, "the catalog %s/%s has %s", c->dir.path, CATALOG_FILE, err);
    if (rc == SVDB_ECORRUPT)
        return svdb__fail(rc, "the catalog %s/%s is damaged: %s; restore it from a backup (nothing was changed)", c->dir.path,
                          CATALOG_FILE, err);
    return rc;
}

int svdb__catalog_load(svdb_catalog *c, int create)
{
    int fd;
    int rc = svdb__file_open(&c->dir, CATALOG_FILE, O_RDONLY, &fd);
    if (rc == SVDB_ENOTFOUND) return start_store(c, create);
    SVDB_TRY(rc);
    rc = read_catalog(c, fd);
    svdb__fd_close(fd);
    SVDB_TRY(rc);
    note_file(c);
    if (!c->store[0]) { /* written by a pysvdb that recorded no store id */
        svdb__catalog_new_uuid(c->store);
        SVDB_TRY(svdb__catalog_save(c));
    }
    return svdb__catalog_sweep(c);
}

/* At the start of each call (the call lock held): reads the catalog again
 * when another process saved a new one since this handle last read or
 * wrote it. On failure the handle keeps what it had. */
int svdb__catalog_refresh(svdb_catalog *c)
{
    uint64_t ino = 0, size = 0;
    int64_t mtime = 0;
    int have = file_identity(c, &ino, &size, &mtime);
    if (have < 0) return have;
    SVDB_FAIL_IF(!have, SVDB_ECORRUPT, "the catalog %s/%s was removed while open; restore it from a backup", c->dir.path,
                 CATALOG_FILE);
    if (ino == c->seen_ino && size == c->seen_size && mtime == c->seen_mtime_ns) return SVDB_OK;
    int fd;
    SVDB_TRY(svdb__file_open(&c->dir, CATALOG_FILE, O_RDONLY, &fd));
    svdb_catalog fresh = *c;
    fresh.v = NULL, fresh.n = fresh.cap = 0;
    fresh.tenants = NULL, fresh.n_tenants = 0;
    fresh.dbs = NULL, fresh.n_dbs = 0;
    int rc = read_catalog(&fresh, fd);
    svdb__fd_close(fd);
    if (rc == SVDB_OK && strcmp(fresh.store, c->store) != 0)
        rc = svdb__fail(SVDB_ECORRUPT, "the catalog %s/%s was replaced by another store's while open", c->dir.path,
                        CATALOG_FILE);
    svdb_catalog *drop = rc == SVDB_OK ? c : &fresh;
    svdb_catalog old = *drop; /* only the entry arrays are used */
    if (rc == SVDB_OK) {
        c->v = fresh.v, c->n = fresh.n, c->cap = fresh.cap;
        c->tenants = fresh.tenants, c->n_tenants = fresh.n_tenants;
        c->dbs = fresh.dbs, c->n_dbs = fresh.n_dbs;
        note_file(c);
    }
    svdb__catalog_entries_clear(&old);
    return rc;
}

/* ---------------------------------------------------------------- saving */

/* Writes `text` as d/name atomically: a temporary file, fsync, rename,
 * fsync of the directory (the fsyncs only when durable). */
int svdb__catalog_write_atomic(const svdb_dir *d, const char *name, const char *tmp, const char *text, int durable, int *renamed)
{
    *renamed = 0;
    int fd;
    SVDB_TRY(svdb__file_create(d, tmp, &fd));
    char *path = svdb__dir_file(d, tmp);
    int rc = path ? svdb__pwrite_all(fd, text, strlen(text), 0, path) : svdb__fail(SVDB_ENOMEM, "out of memory");
    if (rc == SVDB_OK && durable) rc = svdb__fd_sync(fd, path);
    svdb__fd_close(fd);
    svdb__free(path);
    if (rc == SVDB_OK) rc = svdb__file_rename(d, tmp, name);
    if (rc != SVDB_OK) {
        svdb__file_discard(d, tmp); /* the error stays the first one */
        return rc;
    }
    *renamed = 1;
    return durable ? svdb__dir_sync(d) : SVDB_OK;
}

int svdb__catalog_save(svdb_catalog *c)
{
    char *text = svdb__catalog_text(c);
    SVDB_FAIL_IF(!text, SVDB_ENOMEM, "out of memory writing the catalog");
    int rc = svdb__catalog_write_atomic(&c->dir, CATALOG_FILE, CATALOG_TMP, text, c->durable, &c->applied);
    cJSON_free(text);
    if (c->applied) note_file(c);
    if (rc != SVDB_OK && c->applied) { /* the change is made, and stays made in memory too */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        rc = svdb__fail(rc, "%s (the catalog was changed, but the change may not survive a crash)", msg);
    }
    return rc;
}
