/* Tenants and databases of a catalog (ChromaDB's), the database views that
 * every svdb_catalog_* call accepts, and reset. Each change is one atomic
 * save of the whole catalog, as in lib/catalog.c, which owns the handle. */
#include "catalog.h"
#include "catalog_dirs.h"
#include "catalog_impl.h"

#include "alloc.h"
#include "error.h"
#include "os.h"
#include "svdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tenants and databases */

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* ChromaDB's rules: at least 3 characters in a tenant's name, 3 bytes in a
 * database's (it measures the two differently). */
static int check_tenant_name(const char *name)
{
    SVDB_TRY(svdb__catalog_check_name(name, "tenant name"));
    SVDB_FAIL_IF(code_points(name) < 3, SVDB_EINVAL, "tenant name '%.200s' is too short: it must be at least 3 characters", name);
    return SVDB_OK;
}

static int check_db_name(const char *name)
{
    SVDB_TRY(svdb__catalog_check_name(name, "database name"));
    SVDB_FAIL_IF(strlen(name) < 3, SVDB_EINVAL, "database name '%.200s' is too short: it must be at least 3 characters (bytes)", name);
    return SVDB_OK;
}

/* The tenant argument (NULL: the handle's), SVDB_ENOTFOUND when `must_exist` and it does not. */
static int tenant_arg(const svdb_catalog *c, const char *tenant, int must_exist, const char **out)
{
    *out = tenant ? tenant : c->sc_tenant;
    SVDB_TRY(svdb__catalog_check_name(*out, "tenant"));
    SVDB_FAIL_IF(must_exist && svdb__catalog_find_tenant(c, *out) < 0, SVDB_ENOTFOUND, "no tenant '%.200s' in %s/%s", *out,
                 c->dir.path, CATALOG_FILE);
    return SVDB_OK;
}

/* The database `name` of tenant t, or SVDB_ENOTFOUND. */
static int db_named(const svdb_catalog *c, const char *t, const char *name, long *d)
{
    *d = svdb__catalog_find_db(c, t, name);
    SVDB_FAIL_IF(*d < 0, SVDB_ENOTFOUND, "no database '%.200s' in tenant '%.200s' of %s/%s", name, t, c->dir.path, CATALOG_FILE);
    return SVDB_OK;
}

int svdb_catalog_create_tenant(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = check_tenant_name(name);
    if (rc == SVDB_OK && svdb__catalog_find_tenant(c, name) >= 0)
        rc = svdb__fail(SVDB_EEXISTS, "tenant '%.200s' already exists in %s/%s", name, c->dir.path, CATALOG_FILE);
    if (rc == SVDB_OK) rc = svdb__catalog_add_tenant(c, name);
    if (rc == SVDB_OK && (rc = svdb__catalog_save(c)) != SVDB_OK && !c->applied) svdb__free(c->tenants[--c->n_tenants]);
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_get_tenant(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    const char *t;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = name ? tenant_arg(c, name, 1, &t) : svdb__fail(SVDB_EINVAL, "name is NULL");
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_create_database(svdb_catalog *h, const char *tenant, const char *name)
{
    svdb_catalog *c;
    const char *t;
    char id[UUID_LEN + 1];
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = check_db_name(name);
    if (rc == SVDB_OK) rc = tenant_arg(c, tenant, 1, &t);
    if (rc == SVDB_OK && svdb__catalog_find_db(c, t, name) >= 0)
        rc = svdb__fail(SVDB_EEXISTS, "database '%.200s' already exists in tenant '%.200s' of %s/%s", name, t, c->dir.path, CATALOG_FILE);
    if (rc == SVDB_OK) {
        do svdb__catalog_new_uuid(id);
        while (svdb__catalog_find_db_id(c, id) >= 0);
        rc = svdb__catalog_add_db(c, id, name, t);
    }
    if (rc == SVDB_OK && (rc = svdb__catalog_save(c)) != SVDB_OK && !c->applied) svdb__catalog_db_free(&c->dbs[--c->n_dbs]);
    return svdb__catalog_leave(c, rc);
}

/* Copies the databases at idx[0..n) into one allocation. */
static int export_dbs(const svdb_catalog *c, const long *idx, size_t n, svdb_catalog_database **out)
{
    size_t bytes = n * sizeof **out + 1;
    for (size_t i = 0; i < n; i++) bytes += UUID_LEN + 1 + strlen(c->dbs[idx[i]].name) + 1 + strlen(c->dbs[idx[i]].tenant) + 1;
    svdb_catalog_database *v = svdb__calloc(1, bytes);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory listing the databases");
    char *p = (char *)(v + n);
#define PUT(field, s) (memcpy(p, (s), strlen(s) + 1), field = p, p += strlen(p) + 1)
    for (size_t i = 0; i < n; i++) {
        const db_rec *d = &c->dbs[idx[i]];
        PUT(v[i].id, d->id);
        PUT(v[i].name, d->name);
        PUT(v[i].tenant, d->tenant);
    }
#undef PUT
    *out = v;
    return SVDB_OK;
}

void svdb_catalog_databases_free(svdb_catalog_database *databases) { svdb__free(databases); }

int svdb_catalog_get_database(svdb_catalog *h, const char *tenant, const char *name, svdb_catalog_database **database_out)
{
    svdb_catalog *c;
    const char *t;
    long d;
    SVDB_FAIL_IF(!database_out, SVDB_EINVAL, "database is NULL");
    *database_out = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = check_db_name(name);
    if (rc == SVDB_OK) rc = tenant_arg(c, tenant, 1, &t);
    if (rc == SVDB_OK) rc = db_named(c, t, name, &d);
    if (rc == SVDB_OK) rc = export_dbs(c, &d, 1, database_out);
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_list_databases(svdb_catalog *h, const char *tenant, int64_t limit, int64_t offset, svdb_catalog_database **databases,
                                size_t *n)
{
    svdb_catalog *c;
    const char *t;
    SVDB_FAIL_IF(!databases || !n, SVDB_EINVAL, "databases or n is NULL");
    *databases = NULL;
    *n = 0;
    SVDB_FAIL_IF(limit < -1, SVDB_EINVAL, "limit %lld is negative (-1: no limit)", (long long)limit);
    SVDB_FAIL_IF(offset < 0, SVDB_EINVAL, "offset %lld is negative", (long long)offset);
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = tenant_arg(c, tenant, 0, &t); /* a tenant that does not exist has no databases, as in ChromaDB */
    long *idx = rc == SVDB_OK ? svdb__malloc((c->n_dbs + 1) * sizeof *idx) : NULL;
    size_t k = 0;
    if (rc == SVDB_OK && !idx) rc = svdb__fail(SVDB_ENOMEM, "out of memory listing the databases");
    for (size_t i = 0; idx && i < c->n_dbs; i++) { /* by name, as ChromaDB lists them: an insertion sort */
        if (strcmp(c->dbs[i].tenant, t)) continue;
        size_t j = k++;
        for (; j > 0 && strcmp(c->dbs[idx[j - 1]].name, c->dbs[i].name) > 0; j--) idx[j] = idx[j - 1];
        idx[j] = (long)i;
    }
    size_t from = (uint64_t)offset < k ? (size_t)offset : k, take = k - from;
    if (limit >= 0 && (uint64_t)limit < take) take = (size_t)limit;
    if (rc == SVDB_OK && take) rc = export_dbs(c, idx + from, take, databases);
    if (rc == SVDB_OK) *n = take;
    svdb__free(idx);
    return svdb__catalog_leave(c, rc);
}

/* Saves the catalog without database d and its collections; on failure
 * (before the rename) both are put back. */
static int forget_db(svdb_catalog *c, long d)
{
    entry *old = svdb__malloc(c->n * sizeof *old + 1);
    SVDB_FAIL_IF(!old, SVDB_ENOMEM, "out of memory");
    if (c->n) memcpy(old, c->v, c->n * sizeof *old); /* v is NULL after a reset */
    size_t old_n = c->n, k = 0;
    db_rec gone = c->dbs[d];
    for (size_t i = 0; i < old_n; i++)
        if (strcmp(old[i].db, gone.id)) c->v[k++] = old[i];
    c->n = k;
    memmove(&c->dbs[d], &c->dbs[d + 1], (c->n_dbs - (size_t)d - 1) * sizeof gone);
    c->n_dbs--;
    int rc = svdb__catalog_save(c);
    if (rc == SVDB_OK || c->applied) {
        for (size_t i = 0; i < old_n; i++)
            if (!strcmp(old[i].db, gone.id)) svdb__catalog_entry_free(&old[i]);
        svdb__catalog_db_free(&gone);
    } else {
        if (old_n) memcpy(c->v, old, old_n * sizeof *old);
        c->n = old_n;
        memmove(&c->dbs[d + 1], &c->dbs[d], (c->n_dbs - (size_t)d) * sizeof gone);
        c->dbs[d] = gone;
        c->n_dbs++;
    }
    svdb__free(old);
    return rc;
}

typedef struct held {
    char id[UUID_LEN + 1];
    svdb_dir dir;
    int have, lock, marked;
} held;

/* Marks the directory (if any) of every collection of database `db` (NULL:
 * of every database) "deleting", holding each one's lock: SVDB_ELOCKED while
 * one is open. */
static int mark_db(svdb_catalog *c, const char *db, held *hs, size_t *k)
{
    for (size_t i = 0; i < c->n; i++) {
        if (db && strcmp(c->v[i].db, db)) continue;
        held *x = &hs[(*k)++];
        memcpy(x->id, c->v[i].id, UUID_LEN + 1);
        x->lock = -1;
        int have = svdb__dir_open_at(&c->dir, x->id, &x->dir);
        SVDB_TRY(have < 0 ? have : SVDB_OK);
        x->have = have;
        if (x->have) SVDB_TRY(svdb__catalog_hold_collection(&x->dir, &x->lock));
        if (x->have) SVDB_TRY(svdb__catalog_write_marker(c, &x->dir, x->id, "deleting"));
        x->marked = x->have;
    }
    return SVDB_OK;
}

/* Saves the catalog with only the default tenant and its empty default
 * database; on failure (before the rename) the old state is put back. */
static int forget_all(svdb_catalog *c)
{
    c->applied = 0;
    svdb_catalog old = *c;
    c->v = NULL;
    c->n = c->cap = 0;
    c->tenants = NULL;
    c->n_tenants = 0;
    c->dbs = NULL;
    c->n_dbs = 0;
    int rc = svdb__catalog_add_tenant(c, DEFAULT_TENANT);
    if (rc == SVDB_OK) rc = svdb__catalog_add_db(c, DEFAULT_DATABASE_ID, DEFAULT_DATABASE, DEFAULT_TENANT);
    if (rc == SVDB_OK) rc = svdb__catalog_save(c);
    svdb_catalog *keep = rc == SVDB_OK || c->applied ? &old : c; /* the state that goes away */
    svdb_catalog gone = *keep;
    if (keep == c) { /* not saved: the old state stays */
        c->v = old.v, c->n = old.n, c->cap = old.cap;
        c->tenants = old.tenants, c->n_tenants = old.n_tenants;
        c->dbs = old.dbs, c->n_dbs = old.n_dbs;
    }
    svdb__catalog_entries_clear(&gone);
    return rc;
}

/* Deletes database d (d < 0: every database and tenant) with its
 * collections, as svdb_catalog_delete deletes one: every directory marked,
 * one save forgets them all, then they go. */
static int drop_db(svdb_catalog *c, long d)
{
    held *hs = svdb__calloc(c->n + 1, sizeof *hs);
    SVDB_FAIL_IF(!hs, SVDB_ENOMEM, "out of memory");
    size_t k = 0;
    int rc = mark_db(c, d >= 0 ? c->dbs[d].id : NULL, hs, &k);
    if (rc == SVDB_OK) svdb__catalog_step("marked"), rc = d >= 0 ? forget_db(c, d) : forget_all(c);
    if (rc == SVDB_OK) svdb__catalog_step("forgot");
    if (rc != SVDB_OK && !c->applied) { /* the collections stay: live again */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        for (size_t i = 0; i < k; i++)
            if (hs[i].marked) svdb__catalog_write_marker(c, &hs[i].dir, hs[i].id, "live");
        svdb__fail(rc, "%s", msg);
    }
    for (size_t i = 0; i < k; i++) {
        svdb__fd_close(hs[i].lock);
        if (hs[i].have) svdb__dir_close(&hs[i].dir);
    }
    for (size_t i = 0; rc == SVDB_OK && i < k; i++)
        if (svdb__catalog_purge(c, hs[i].id) != SVDB_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", svdb_errmsg());
            svdb__catalog_warn(c, msg);
            svdb__clear_error();
        }
    svdb__free(hs);
    return rc;
}

int svdb_catalog_delete_database(svdb_catalog *h, const char *tenant, const char *name)
{
    svdb_catalog *c;
    const char *t;
    long d;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = svdb__catalog_check_name(name, "database name");
    if (rc == SVDB_OK) rc = tenant_arg(c, tenant, 1, &t);
    if (rc == SVDB_OK) rc = db_named(c, t, name, &d);
    return svdb__catalog_leave(c, rc == SVDB_OK ? drop_db(c, d) : rc);
}

int svdb_catalog_reset(svdb_catalog *h)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    return svdb__catalog_leave(c, drop_db(c, -1));
}

int svdb_catalog_open_database(svdb_catalog **out, svdb_catalog *h, const char *tenant, const char *database)
{
    svdb_catalog *c;
    const char *t, *db = database ? database : DEFAULT_DATABASE;
    long d;
    SVDB_FAIL_IF(!out, SVDB_EINVAL, "out is NULL");
    *out = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = tenant_arg(c, tenant, 1, &t);
    if (rc == SVDB_OK) rc = check_db_name(db);
    if (rc == SVDB_OK) rc = db_named(c, t, db, &d);
    svdb_catalog *v = rc == SVDB_OK ? svdb__calloc(1, sizeof *v) : NULL;
    if (v) {
        *v = (svdb_catalog){.magic = CAT_MAGIC, .fork_gen = c->fork_gen, .base = c, .dir = {-1, NULL}, .lock_fd = -1,
                            .view_tenant = svdb__strndup(t, strlen(t)), .view_db = svdb__strndup(db, strlen(db))};
        rc = v->view_tenant && v->view_db ? svdb__catalog_register(v) : svdb__fail(SVDB_ENOMEM, "out of memory");
        if (rc == SVDB_OK) *out = v->token;
        else svdb__free(v->view_tenant), svdb__free(v->view_db), svdb__free(v);
    } else if (rc == SVDB_OK) {
        rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    return svdb__catalog_leave(c, rc);
}
