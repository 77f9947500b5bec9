/* The catalog of named collections under one directory: the on-disk format
 * of pysvdb's ChromaDB client (docs/chroma.md, docs/format.md), read and
 * written exactly. This file owns the handle (registry, fork, the call's
 * entry and exit), the in-memory entries, and the public svdb_catalog_*
 * functions of collections. The catalog file itself (its locks between
 * processes, reading it, the atomic save) is lib/catalog_file.c; the
 * in-memory entries change only once a save succeeded. The JSON format is lib/catalog_json.c; the collection
 * directories and their markers are lib/catalog_dirs.c; tenants, databases,
 * their views and reset are lib/catalog_scope.c. */
#include "catalog.h"
#include "catalog_dirs.h"
#include "catalog_impl.h"
#include "catalog_json.h"

#include "alloc.h"
#include "error.h"
#include "os.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


void (*svdb__catalog_hook)(const char *step);

void svdb__catalog_step(const char *step)
{
    if (svdb__catalog_hook) svdb__catalog_hook(step);
}

/* ---------------------------------------------------------------- handles and fork */

/* Open catalogs by token (index and generation), as lib/handles.c does for
 * collections: a closed handle's token never matches again. */
typedef struct slot {
    uint64_t gen;
    svdb_catalog *cat;
} slot;

static slot *slots;
static size_t n_slots;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

#define TOKEN_SHIFT 24
static svdb_catalog *encode(size_t idx, uint64_t gen) { return (svdb_catalog *)(uintptr_t)(gen << TOKEN_SHIFT | idx << 1 | 1u); }

/* A forked child lets go of its copies of the locks (the parent keeps
 * them); its inherited handles are unusable (fork_gen). */
static void on_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void on_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void on_child(void)
{
    fork_gen++;
    for (size_t i = 0; i < n_slots; i++)
        if (slots[i].cat && slots[i].cat->lock_fd >= 0) {
            svdb__fd_close(slots[i].cat->lock_fd);
            slots[i].cat->lock_fd = -1;
        }
    pthread_mutex_unlock(&reg_mu);
}
static void watch_forks(void) { pthread_atfork(on_prepare, on_parent, on_child); }

int svdb__catalog_register(svdb_catalog *c)
{
    pthread_mutex_lock(&reg_mu);
    size_t i = 0;
    while (i < n_slots && slots[i].cat) i++;
    if (i == n_slots) {
        slot *s = i < (1u << (TOKEN_SHIFT - 1)) ? svdb__realloc(slots, (n_slots + 1) * sizeof *s) : NULL;
        if (!s) {
            pthread_mutex_unlock(&reg_mu);
            return svdb__fail(SVDB_ENOMEM, "out of memory registering a catalog handle");
        }
        slots = s;
        slots[n_slots++] = (slot){1, NULL};
    }
    slots[i].cat = c;
    c->token = encode(i, slots[i].gen & (UINTPTR_MAX >> TOKEN_SHIFT));
    pthread_mutex_unlock(&reg_mu);
    return SVDB_OK;
}

static svdb_catalog *lookup(const svdb_catalog *token)
{
    uintptr_t t = (uintptr_t)token;
    size_t idx = (t >> 1) & ((1u << (TOKEN_SHIFT - 1)) - 1);
    svdb_catalog *c = NULL;
    pthread_mutex_lock(&reg_mu);
    if ((t & 1u) && idx < n_slots && (slots[idx].gen & (UINTPTR_MAX >> TOKEN_SHIFT)) == t >> TOKEN_SHIFT)
        c = slots[idx].cat;
    pthread_mutex_unlock(&reg_mu);
    return c;
}

static void unregister_cat(const svdb_catalog *token)
{
    size_t idx = ((uintptr_t)token >> 1) & ((1u << (TOKEN_SHIFT - 1)) - 1);
    pthread_mutex_lock(&reg_mu);
    if (idx < n_slots && slots[idx].cat) {
        slots[idx].cat = NULL;
        slots[idx].gen++;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* A catalog's views go with it (the registry's lock held). */
static void drop_views(const svdb_catalog *c)
{
    for (size_t i = 0; i < n_slots; i++) {
        svdb_catalog *v = slots[i].cat;
        if (!v || v->base != c) continue;
        slots[i].cat = NULL;
        slots[i].gen++;
        v->magic = 0;
        svdb__free(v->view_tenant);
        svdb__free(v->view_db);
        svdb__free(v);
    }
}

/* The catalog behind a handle, locked, with the call's scope set to the
 * handle's database (*view: the view, or NULL); SVDB_EMISUSE for a closed,
 * made-up or inherited one. */
/* `call`: a call on the entries, which waits for other processes' calls and
 * reads what they saved (not a close). */
static int enter_as(const svdb_catalog *h, svdb_catalog **out, svdb_catalog **view, int call)
{
    svdb__clear_error();
    *out = NULL;
    SVDB_FAIL_IF(!h, SVDB_EMISUSE, "catalog handle is NULL");
    svdb_catalog *v = lookup(h);
    SVDB_FAIL_IF(!v || v->magic != CAT_MAGIC, SVDB_EMISUSE, "catalog handle is closed or invalid");
    svdb_catalog *c = v->base ? v->base : v;
    SVDB_FAIL_IF(c->fork_gen != fork_gen, SVDB_EMISUSE, "catalog handle was opened by another process (used after fork)");
    pthread_mutex_lock(&c->mu);
    int rc = call ? svdb__catalog_lock_call(c) : SVDB_OK;
    if (rc == SVDB_OK && call && (rc = svdb__catalog_refresh(c)) != SVDB_OK) svdb__catalog_unlock_call(c);
    if (rc != SVDB_OK) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    c->applied = 0;
    c->sc_tenant = v->base ? v->view_tenant : DEFAULT_TENANT;
    c->sc_db = v->base ? v->view_db : DEFAULT_DATABASE;
    if (view) *view = v->base ? v : NULL;
    *out = c;
    return SVDB_OK;
}

int svdb__catalog_enter(const svdb_catalog *h, svdb_catalog **out) { return enter_as(h, out, NULL, 1); }

int svdb__catalog_leave(svdb_catalog *c, int rc)
{
    svdb__catalog_unlock_call(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void svdb__catalog_warn(const svdb_catalog *c, const char *msg)
{
    if (c->warning) c->warning(msg, c->payload);
}

/* ---------------------------------------------------------------- entries */

void svdb__catalog_entry_free(entry *e)
{
    svdb__free(e->name);
    cJSON_Delete(e->meta);
    cJSON_Delete(e->hnsw);
}

void svdb__catalog_db_free(db_rec *d)
{
    svdb__free(d->name);
    svdb__free(d->tenant);
}

void svdb__catalog_entries_clear(svdb_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) svdb__catalog_entry_free(&c->v[i]);
    svdb__free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
    for (size_t i = 0; i < c->n_tenants; i++) svdb__free(c->tenants[i]);
    svdb__free(c->tenants);
    for (size_t i = 0; i < c->n_dbs; i++) svdb__catalog_db_free(&c->dbs[i]);
    svdb__free(c->dbs);
}

long svdb__catalog_find(const svdb_catalog *c, const char *db, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].db, db) && !strcmp(c->v[i].name, name)) return (long)i;
    return -1;
}

long svdb__catalog_find_id(const svdb_catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].id, id)) return (long)i;
    return -1;
}

long svdb__catalog_find_tenant(const svdb_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n_tenants; i++)
        if (!strcmp(c->tenants[i], name)) return (long)i;
    return -1;
}

long svdb__catalog_find_db(const svdb_catalog *c, const char *tenant, const char *name)
{
    for (size_t i = 0; i < c->n_dbs; i++)
        if (!strcmp(c->dbs[i].tenant, tenant) && !strcmp(c->dbs[i].name, name)) return (long)i;
    return -1;
}

long svdb__catalog_find_db_id(const svdb_catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n_dbs; i++)
        if (!strcmp(c->dbs[i].id, id)) return (long)i;
    return -1;
}

int svdb__catalog_add_tenant(svdb_catalog *c, const char *name)
{
    char **v = svdb__realloc(c->tenants, (c->n_tenants + 1) * sizeof *v);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory");
    c->tenants = v;
    SVDB_FAIL_IF(!(v[c->n_tenants] = svdb__strndup(name, strlen(name))), SVDB_ENOMEM, "out of memory");
    c->n_tenants++;
    return SVDB_OK;
}

int svdb__catalog_add_db(svdb_catalog *c, const char *id, const char *name, const char *tenant)
{
    db_rec *v = svdb__realloc(c->dbs, (c->n_dbs + 1) * sizeof *v);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory");
    c->dbs = v;
    db_rec d = {.name = svdb__strndup(name, strlen(name)), .tenant = svdb__strndup(tenant, strlen(tenant))};
    memcpy(d.id, id, UUID_LEN + 1);
    if (!d.name || !d.tenant) return svdb__catalog_db_free(&d), svdb__fail(SVDB_ENOMEM, "out of memory");
    c->dbs[c->n_dbs++] = d;
    return SVDB_OK;
}

int svdb__catalog_reserve(svdb_catalog *c)
{
    if (c->n < c->cap) return SVDB_OK;
    size_t cap = c->cap ? 2 * c->cap : 8;
    entry *v = svdb__realloc(c->v, cap * sizeof *v);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory");
    c->v = v;
    c->cap = cap;
    return SVDB_OK;
}

/* ---------------------------------------------------------------- opening */

void svdb__catalog_new_uuid(char out[UUID_LEN + 1])
{
    unsigned char b[16];
    uint64_t r[2] = {svdb__os_random64(), svdb__os_random64()};
    memcpy(b, r, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        o += sprintf(o, "%02x", b[i]);
    }
}

int svdb_catalog_options_init(svdb_catalog_options *opts, unsigned int version)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!opts, SVDB_EINVAL, "opts is NULL");
    SVDB_FAIL_IF(version == 0 || version > SVDB_CATALOG_OPTIONS_VERSION, SVDB_EINVAL,
                 "catalog options version %u is not supported (1..%d)", version, SVDB_CATALOG_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    opts->create = 1;
    opts->durability = SVDB_DURABILITY_SYNC;
    return SVDB_OK;
}

static void destroy(svdb_catalog *c)
{
    pthread_mutex_lock(&reg_mu);
    drop_views(c);
    pthread_mutex_unlock(&reg_mu);
    if (c->token) unregister_cat(c->token);
    c->magic = 0;
    svdb__fd_close(c->lock_fd);
    svdb__dir_close(&c->dir);
    svdb__catalog_entries_clear(c);
    pthread_mutex_destroy(&c->mu);
    svdb__free(c);
}

static int open_cat(svdb_catalog *c, const char *dir, const svdb_catalog_options *o)
{
    struct stat st;
    if (o->create) SVDB_TRY(svdb__dir_make_all(dir));
    else SVDB_FAIL_IF(svdb__path_stat(dir, &st) != 1, SVDB_ENOTFOUND, "no catalog directory %s (and create is off)", dir);
    SVDB_TRY(svdb__dir_open(&c->dir, dir));
    if (!o->create) SVDB_FAIL_IF(svdb__file_stat(&c->dir, CATALOG_FILE, &st) == 0, SVDB_ENOTFOUND,
                                 "no catalog %s/%s (and create is off)", c->dir.path, CATALOG_FILE);
    SVDB_TRY(svdb__catalog_take_lock(c));
    SVDB_TRY(svdb__catalog_lock_call(c));
    int rc = svdb__catalog_load(c, o->create);
    svdb__catalog_unlock_call(c);
    SVDB_TRY(rc);
    return svdb__catalog_register(c);
}

int svdb_catalog_open(svdb_catalog **out, const char *dir, const svdb_catalog_options *opts)
{
    svdb__clear_error();
    SVDB_FAIL_IF(!out, SVDB_EINVAL, "out is NULL");
    *out = NULL;
    SVDB_FAIL_IF(!dir || !*dir, SVDB_EINVAL, "dir is NULL or empty");
    svdb_catalog_options o;
    svdb_catalog_options_init(&o, SVDB_CATALOG_OPTIONS_VERSION);
    if (opts) {
        SVDB_FAIL_IF(opts->version == 0 || opts->version > SVDB_CATALOG_OPTIONS_VERSION, SVDB_EINVAL,
                     "catalog options version %u is not supported (1..%d)", opts->version, SVDB_CATALOG_OPTIONS_VERSION);
        o = *opts;
    }
    SVDB_FAIL_IF(o.durability != SVDB_DURABILITY_SYNC && o.durability != SVDB_DURABILITY_PERSIST, SVDB_EINVAL,
                 "durability %d is not one of SVDB_DURABILITY_*", o.durability);
    svdb_catalog *c = svdb__calloc(1, sizeof *c);
    SVDB_FAIL_IF(!c, SVDB_ENOMEM, "out of memory");
    pthread_once(&fork_once, watch_forks);
    *c = (svdb_catalog){.magic = CAT_MAGIC, .fork_gen = fork_gen, .dir = {-1, NULL}, .lock_fd = -1,
                        .durable = o.durability == SVDB_DURABILITY_SYNC, .warning = o.warning, .payload = o.warning_payload};
    pthread_mutex_init(&c->mu, NULL);
    int rc = open_cat(c, dir, &o);
    if (rc != SVDB_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        destroy(c);
        return svdb__fail(rc, "%s", msg);
    }
    *out = c->token;
    return SVDB_OK;
}

int svdb_catalog_close(svdb_catalog *h)
{
    svdb__clear_error();
    if (!h) return SVDB_OK;
    svdb_catalog *c, *view;
    SVDB_TRY(enter_as(h, &c, &view, 0));
    pthread_mutex_unlock(&c->mu);
    if (!view) {
        destroy(c);
        return SVDB_OK;
    }
    unregister_cat(view->token);
    view->magic = 0;
    svdb__free(view->view_tenant);
    svdb__free(view->view_db);
    svdb__free(view);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- reading entries */

static int metric_of(const char *space) { return !strcmp(space, "ip") ? SVDB_METRIC_IP : !strcmp(space, "cosine") ? SVDB_METRIC_COSINE : SVDB_METRIC_L2; }

static uint32_t setting(const cJSON *h, const char *key)
{
    cJSON *v = svdb__catalog_member(h, key);
    return v ? (uint32_t)strtoul(v->valuestring, NULL, 10) : 0;
}

/* Copies the entries at idx[0..n) into one allocation. */
static int export_entries(const svdb_catalog *c, const size_t *idx, size_t n, svdb_catalog_entry **out)
{
    char **texts = svdb__calloc(2 * n + 1, sizeof *texts);
    size_t bytes = n * sizeof **out, plen = strlen(c->dir.path) + 2 + UUID_LEN;
    for (size_t i = 0; texts && i < n; i++) {
        const entry *e = &c->v[idx[i]];
        texts[2 * i] = e->meta ? cJSON_PrintUnformatted(e->meta) : NULL;
        texts[2 * i + 1] = cJSON_PrintUnformatted(e->hnsw);
        if ((e->meta && !texts[2 * i]) || !texts[2 * i + 1]) bytes = SIZE_MAX;
        else bytes += UUID_LEN + 1 + strlen(e->name) + 1 + (e->meta ? strlen(texts[2 * i]) + 1 : 0) + strlen(texts[2 * i + 1]) + 1 + plen;
    }
    svdb_catalog_entry *v = texts && bytes != SIZE_MAX ? svdb__calloc(1, bytes) : NULL;
    char *p = v ? (char *)(v + n) : NULL;
#define PUT(field, s) (memcpy(p, (s), strlen(s) + 1), field = p, p += strlen(p) + 1)
    for (size_t i = 0; v && i < n; i++) {
        const entry *e = &c->v[idx[i]];
        svdb_catalog_entry *x = &v[i];
        PUT(x->id, e->id);
        PUT(x->name, e->name);
        if (e->meta) PUT(x->metadata, texts[2 * i]);
        PUT(x->hnsw, texts[2 * i + 1]);
        x->path = p;
        p += sprintf(p, "%s/%s", c->dir.path, e->id) + 1;
        x->metric = metric_of(svdb__catalog_member(e->hnsw, "space")->valuestring);
        x->hnsw_m = setting(e->hnsw, "max_neighbors");
        x->hnsw_ef_construction = setting(e->hnsw, "ef_construction");
        x->hnsw_ef_search = setting(e->hnsw, "ef_search");
        x->build_threads = setting(e->hnsw, "num_threads");
    }
#undef PUT
    for (size_t i = 0; texts && i < 2 * n; i++) cJSON_free(texts[i]);
    svdb__free(texts);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory listing the catalog");
    *out = v;
    return SVDB_OK;
}

void svdb_catalog_entries_free(svdb_catalog_entry *entries) { svdb__free(entries); }

/* " in database 'd' of tenant 't'" for a call scoped to another database
 * than the default one, for messages; "" otherwise. */
static const char *scope_text(const svdb_catalog *c, char buf[512])
{
    buf[0] = '\0';
    if (strcmp(c->sc_tenant, DEFAULT_TENANT) || strcmp(c->sc_db, DEFAULT_DATABASE))
        snprintf(buf, 512, " in database '%.200s' of tenant '%.200s'", c->sc_db, c->sc_tenant);
    return buf;
}

/* The database of the call's scope, or SVDB_ENOTFOUND once it was deleted. */
static int scope_db(const svdb_catalog *c, const char **db_id)
{
    long d = svdb__catalog_find_db(c, c->sc_tenant, c->sc_db);
    SVDB_FAIL_IF(d < 0, SVDB_ENOTFOUND, "the database '%.200s' of tenant '%.200s' does not exist in %s/%s (it was deleted)",
                 c->sc_db, c->sc_tenant, c->dir.path, CATALOG_FILE);
    *db_id = c->dbs[d].id;
    return SVDB_OK;
}

int svdb_catalog_list(svdb_catalog *h, svdb_catalog_entry **entries, size_t *n)
{
    svdb_catalog *c;
    const char *db = NULL;
    SVDB_FAIL_IF(!entries || !n, SVDB_EINVAL, "entries or n is NULL");
    *entries = NULL;
    *n = 0;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = scope_db(c, &db);
    size_t *idx = rc == SVDB_OK ? svdb__malloc((c->n + 1) * sizeof *idx) : NULL, k = 0;
    if (rc == SVDB_OK && !idx) rc = svdb__fail(SVDB_ENOMEM, "out of memory listing the catalog");
    for (size_t i = 0; idx && i < c->n; i++)
        if (!strcmp(c->v[i].db, db)) idx[k++] = i;
    if (rc == SVDB_OK && k) rc = export_entries(c, idx, k, entries);
    if (rc == SVDB_OK) *n = k;
    svdb__free(idx);
    return svdb__catalog_leave(c, rc);
}

/* The entry named `name` in the call's database, or SVDB_ENOTFOUND / SVDB_EINVAL. */
static int named(const svdb_catalog *c, const char *name, long *i)
{
    const char *db = NULL;
    char where[512];
    SVDB_FAIL_IF(!name || !*name, SVDB_EINVAL, "name is NULL or empty");
    SVDB_TRY(scope_db(c, &db));
    *i = svdb__catalog_find(c, db, name);
    SVDB_FAIL_IF(*i < 0, SVDB_ENOTFOUND, "no collection named '%.200s'%s in %s/%s", name, scope_text(c, where), c->dir.path, CATALOG_FILE);
    return SVDB_OK;
}

int svdb_catalog_get(svdb_catalog *h, const char *name, svdb_catalog_entry **entry_out)
{
    svdb_catalog *c;
    long i;
    SVDB_FAIL_IF(!entry_out, SVDB_EINVAL, "entry is NULL");
    *entry_out = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    size_t at = (size_t)i;
    if (rc == SVDB_OK) rc = export_entries(c, &at, 1, entry_out);
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_collection_path(svdb_catalog *h, const char *name, char **path)
{
    svdb_catalog *c;
    long i;
    SVDB_FAIL_IF(!path, SVDB_EINVAL, "path is NULL");
    *path = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    if (rc == SVDB_OK && !(*path = svdb__path_join(c->dir.path, c->v[i].id))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    return svdb__catalog_leave(c, rc);
}

/* ---------------------------------------------------------------- changes */

int svdb__catalog_check_name(const char *name, const char *what)
{
    SVDB_FAIL_IF(!name || !*name, SVDB_EINVAL, "%s is NULL or empty", what);
    SVDB_FAIL_IF(!svdb__catalog_utf8_valid((const unsigned char *)name, strlen(name)), SVDB_EINVAL, "%s is not UTF-8 text", what);
    return SVDB_OK;
}

static const char DEFAULT_HNSW[] =
    "{\"space\": \"l2\", \"ef_construction\": 100, \"ef_search\": 100, \"max_neighbors\": 16, \"resize_factor\": 1.2, "
    "\"sync_threshold\": 1000}";

static int create_entry(svdb_catalog *c, const char *name, const char *metadata, const char *hnsw)
{
    const char *db = NULL;
    char where[512];
    SVDB_TRY(svdb__catalog_check_name(name, "name"));
    SVDB_TRY(scope_db(c, &db));
    SVDB_FAIL_IF(svdb__catalog_find(c, db, name) >= 0, SVDB_EEXISTS, "a collection named '%.200s' already exists%s in %s", name,
                 scope_text(c, where), c->dir.path);
    SVDB_TRY(svdb__catalog_reserve(c));
    entry e = {0};
    memcpy(e.db, db, UUID_LEN + 1);
    int rc = svdb__catalog_parse_arg(metadata, "metadata", 1, SVDB_EMETA, &e.meta);
    if (rc == SVDB_OK) rc = svdb__catalog_parse_arg(hnsw ? hnsw : DEFAULT_HNSW, "hnsw", 0, SVDB_EINVAL, &e.hnsw);
    char err[512];
    if (rc == SVDB_OK && svdb__catalog_check_hnsw(e.hnsw, "hnsw", err)) rc = svdb__fail(SVDB_EINVAL, "%s", err);
    if (rc == SVDB_OK && !(e.name = svdb__strndup(name, strlen(name)))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    do svdb__catalog_new_uuid(e.id);
    while (svdb__catalog_find_id(c, e.id) >= 0);
    if (rc == SVDB_OK) {
        c->v[c->n++] = e;
        if ((rc = svdb__catalog_save(c)) != SVDB_OK && !c->applied) c->n--;
    }
    if (rc != SVDB_OK && !c->applied) svdb__catalog_entry_free(&e);
    return rc;
}

int svdb_catalog_create(svdb_catalog *h, const char *name, const char *metadata, const char *hnsw, svdb_catalog_entry **entry_out)
{
    svdb_catalog *c;
    if (entry_out) *entry_out = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = create_entry(c, name, metadata, hnsw);
    size_t last = c->n - 1;
    if (rc == SVDB_OK && entry_out) rc = export_entries(c, &last, 1, entry_out);
    return svdb__catalog_leave(c, rc);
}

static int modify(svdb_catalog *c, const char *name, const char *new_name, const char *metadata, const char *hnsw)
{
    long i;
    char where[512];
    SVDB_TRY(named(c, name, &i));
    if (new_name) SVDB_TRY(svdb__catalog_check_name(new_name, "new_name"));
    SVDB_FAIL_IF(new_name && strcmp(new_name, name) && svdb__catalog_find(c, c->v[i].db, new_name) >= 0, SVDB_EEXISTS,
                 "a collection named '%.200s' already exists%s in %s", new_name, scope_text(c, where), c->dir.path);
    entry *e = &c->v[i], old = *e, neu = *e;
    cJSON *upd = NULL;
    int rc = svdb__catalog_parse_arg(metadata, "metadata", 1, SVDB_EMETA, &neu.meta);
    if (!metadata) neu.meta = old.meta;
    if (rc == SVDB_OK) rc = svdb__catalog_parse_arg(hnsw, "hnsw", 0, SVDB_EINVAL, &upd);
    if (rc == SVDB_OK && upd) rc = svdb__catalog_merge_hnsw(old.hnsw, upd, &neu.hnsw);
    if (rc == SVDB_OK && new_name && !(neu.name = svdb__strndup(new_name, strlen(new_name)))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    cJSON_Delete(upd);
    if (rc == SVDB_OK) {
        *e = neu;
        rc = svdb__catalog_save(c);
    }
    int made = rc == SVDB_OK || c->applied;
    entry *gone = made ? &old : &neu; /* what is no longer used */
    *e = made ? neu : old;
    if (gone->name != e->name) svdb__free(gone->name);
    if (gone->meta != e->meta) cJSON_Delete(gone->meta);
    if (gone->hnsw != e->hnsw) cJSON_Delete(gone->hnsw);
    return rc;
}

int svdb_catalog_modify(svdb_catalog *h, const char *name, const char *new_name, const char *metadata, const char *hnsw)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    return svdb__catalog_leave(c, modify(c, name, new_name, metadata, hnsw));
}

int svdb_catalog_rename(svdb_catalog *h, const char *name, const char *new_name)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = new_name ? modify(c, name, new_name, NULL, NULL) : svdb__fail(SVDB_EINVAL, "new_name is NULL");
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_set_metadata(svdb_catalog *h, const char *name, const char *metadata)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = metadata ? modify(c, name, NULL, metadata, NULL) : svdb__fail(SVDB_EINVAL, "metadata is NULL");
    return svdb__catalog_leave(c, rc);
}

/* Marks the directory (if any) "deleting", then saves the catalog without
 * the entry; on failure the entry and a "live" marker are put back. */
static int forget(svdb_catalog *c, long i, char id[UUID_LEN + 1])
{
    entry e = c->v[i];
    memcpy(id, e.id, UUID_LEN + 1);
    svdb_dir d;
    int have = svdb__dir_open_at(&c->dir, e.id, &d), lock = -1;
    int rc = have < 0 ? have : have ? svdb__catalog_hold_collection(&d, &lock) : SVDB_OK;
    if (rc == SVDB_OK && have) rc = svdb__catalog_write_marker(c, &d, e.id, "deleting");
    if (rc == SVDB_OK) {
        svdb__catalog_step("marked");
        memmove(&c->v[i], &c->v[i + 1], (c->n - (size_t)i - 1) * sizeof e);
        c->n--;
        rc = svdb__catalog_save(c);
        if (rc == SVDB_OK || c->applied) svdb__catalog_entry_free(&e), svdb__catalog_step("forgot");
        else {
            memmove(&c->v[i + 1], &c->v[i], (c->n - (size_t)i) * sizeof e);
            c->v[i] = e;
            c->n++;
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", svdb_errmsg());
            if (have) svdb__catalog_write_marker(c, &d, e.id, "live");
            svdb__fail(rc, "%s", msg);
        }
    }
    svdb__fd_close(lock);
    if (have > 0) svdb__dir_close(&d);
    return rc;
}

int svdb_catalog_forget(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    char id[UUID_LEN + 1];
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    return svdb__catalog_leave(c, rc == SVDB_OK ? forget(c, i, id) : rc);
}

int svdb_catalog_purge(svdb_catalog *h, const char *id)
{
    svdb_catalog *c;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = !id || !svdb__catalog_is_uuid(id) ? svdb__fail(SVDB_EINVAL, "id is not a collection id (a UUID)")
             : svdb__catalog_find_id(c, id) >= 0 ? svdb__fail(SVDB_EINVAL, "collection %s is in the catalog; delete it with svdb_catalog_delete", id)
                                   : svdb__catalog_purge(c, id);
    return svdb__catalog_leave(c, rc);
}

int svdb_catalog_delete(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    char id[UUID_LEN + 1];
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    if (rc == SVDB_OK) rc = forget(c, i, id);
    if (rc == SVDB_OK && svdb__catalog_purge(c, id) != SVDB_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        svdb__catalog_warn(c, msg);
        svdb__clear_error();
    }
    return svdb__catalog_leave(c, rc);
}

/* ---------------------------------------------------------------- collections */

int svdb_catalog_claim(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    return svdb__catalog_leave(c, rc == SVDB_OK ? svdb__catalog_claim(c, i) : rc);
}

static int open_listed(svdb **out, svdb_catalog *c, long i, const svdb_open_options *opts)
{
    svdb_open_options o;
    SVDB_TRY(svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION));
    if (opts) {
        SVDB_FAIL_IF(opts->version == 0 || opts->version > SVDB_OPEN_OPTIONS_VERSION, SVDB_EINVAL,
                     "open options version %u is not supported (1..%d)", opts->version, SVDB_OPEN_OPTIONS_VERSION);
        memcpy(&o, opts, opts->version >= 3 ? sizeof o : opts->version == 2 ? offsetof(svdb_open_options, allow_nonempty_dir)
                                                                            : offsetof(svdb_open_options, storage));
    }
    const cJSON *hn = c->v[i].hnsw;
    o.metric = metric_of(svdb__catalog_member(hn, "space")->valuestring);
    o.index = SVDB_INDEX_HNSW;
    o.hnsw_m = setting(hn, "max_neighbors");
    o.hnsw_ef_construction = setting(hn, "ef_construction");
    o.hnsw_ef_search = setting(hn, "ef_search");
    if (!o.build_threads) o.build_threads = setting(hn, "num_threads");
    char *path = svdb__path_join(c->dir.path, c->v[i].id);
    SVDB_FAIL_IF(!path, SVDB_ENOMEM, "out of memory");
    int rc = svdb_open(out, path, &o);
    svdb__free(path);
    SVDB_TRY(rc);
    if ((rc = svdb__catalog_claim(c, i)) != SVDB_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        svdb_close(*out);
        *out = NULL;
        return svdb__fail(rc, "%s", msg);
    }
    return SVDB_OK;
}

int svdb_catalog_open_collection(svdb **out, svdb_catalog *h, const char *name, const svdb_open_options *opts)
{
    svdb_catalog *c;
    long i;
    SVDB_FAIL_IF(!out, SVDB_EINVAL, "out is NULL");
    *out = NULL;
    SVDB_TRY(svdb__catalog_enter(h, &c));
    int rc = named(c, name, &i);
    return svdb__catalog_leave(c, rc == SVDB_OK ? open_listed(out, c, i, opts) : rc);
}

