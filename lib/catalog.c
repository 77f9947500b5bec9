/* The catalog of named collections under one directory: the on-disk format
 * of pysvdb's ChromaDB client (docs/chroma.md), read and written exactly.
 * Every change writes the whole catalog to a temporary file and renames it
 * over the old one; the in-memory entries change only once that succeeded.
 * Numbers in metadata and HNSW settings are kept as the text they were
 * written as (1.0 stays 1.0, large integers stay exact): before parsing,
 * each number token becomes a string marked by a 0xff byte (which valid
 * UTF-8 never holds), and after parsing such strings become cJSON raw nodes,
 * printed back verbatim. */
#include "catalog.h"

#include "alloc.h"
#include "error.h"
#include "fileio.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define CATALOG_FILE "pysvdb-chroma.json"
#define CATALOG_TMP "pysvdb-chroma.json.tmp"
#define LOCK_FILE "pysvdb-chroma.lock"
#define MARKER_FILE "pysvdb-collection.json"
#define MARKER_TMP "pysvdb-collection.json.tmp"
#define MARKER_FORMAT "pysvdb-chroma-collection"
#define CAT_MAGIC 0x5356444243415447ull /* "SVDBCATG" */
#define NUM_MARK '\xff'
#define UUID_LEN 36
#define MAX_MARKER_BYTES 65536

void (*svdb__catalog_hook)(const char *step);

typedef struct entry {
    char id[UUID_LEN + 1];
    char *name;
    cJSON *meta; /* NULL: null */
    cJSON *hnsw;
} entry;

struct svdb_catalog {
    uint64_t magic;
    unsigned fork_gen;
    svdb_catalog *token;
    svdb_dir dir;
    int lock_fd;
    int durable;
    void (*warning)(const char *message, void *payload);
    void *payload;
    pthread_mutex_t mu;
    char store[UUID_LEN + 1];
    int applied; /* the last save renamed the new catalog in, even if it then failed */
    entry *v;
    size_t n, cap;
};

static void hook(const char *step)
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
            close(slots[i].cat->lock_fd); /* os: */
            slots[i].cat->lock_fd = -1;
        }
    pthread_mutex_unlock(&reg_mu);
}
static void watch_forks(void) { pthread_atfork(on_prepare, on_parent, on_child); }

static int register_cat(svdb_catalog *c)
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

/* The catalog behind a handle, locked; SVDB_EMISUSE for a closed, made-up
 * or inherited one. */
static int enter(const svdb_catalog *h, svdb_catalog **out)
{
    svdb__clear_error();
    *out = NULL;
    SVDB_FAIL_IF(!h, SVDB_EMISUSE, "catalog handle is NULL");
    svdb_catalog *c = lookup(h);
    SVDB_FAIL_IF(!c || c->magic != CAT_MAGIC, SVDB_EMISUSE, "catalog handle is closed or invalid");
    SVDB_FAIL_IF(c->fork_gen != fork_gen, SVDB_EMISUSE, "catalog handle was opened by another process (used after fork)");
    pthread_mutex_lock(&c->mu);
    c->applied = 0;
    *out = c;
    return SVDB_OK;
}

static int leave(svdb_catalog *c, int rc)
{
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---------------------------------------------------------------- text */

static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))) return 0;
        if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))) return 0;
        i += len;
    }
    return 1;
}

/* A UUID as Python's str(uuid.UUID(...)) writes it. */
static int is_uuid(const char *s)
{
    for (int i = 0; i < UUID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    }
    return s[UUID_LEN] == '\0';
}

static void new_uuid(char out[UUID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) /* os: */
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)rand();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        o += sprintf(o, "%02x", b[i]);
    }
}

/* Length of the JSON string at p (quotes included), or 0 with *why. */
static size_t string_len(const char *p, const char *e, const char **why)
{
    for (const char *q = p + 1; q < e; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') return (size_t)(q - p + 1);
        if (c < 0x20) return *why = "an unescaped control character in a string", 0;
        if (c != '\\') continue;
        if (++q >= e) break;
        if (*q == 'u') {
            for (int k = 1; k <= 4; k++)
                if (q + k >= e || !strchr("0123456789abcdefABCDEF", q[k]) || !q[k]) return *why = "a bad \\u escape", 0;
            q += 4;
        } else if (!*q || !strchr("\"\\/bfnrt", *q)) {
            return *why = "an invalid escape", 0;
        }
    }
    return *why = "an unterminated string", 0;
}

static const char *digits(const char *p, const char *e)
{
    while (p < e && *p >= '0' && *p <= '9') p++;
    return p;
}

/* Length of the RFC 8259 number at p, or 0. */
static size_t number_len(const char *p, const char *e)
{
    const char *q = p + (*p == '-');
    if (q >= e || *q < '0' || *q > '9') return 0;
    q = *q == '0' ? q + 1 : digits(q, e);
    if (q < e && *q == '.') {
        const char *d = digits(q + 1, e);
        if (d == q + 1) return 0;
        q = d;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q += q + 1 < e && (q[1] == '+' || q[1] == '-') ? 2 : 1;
        const char *d = digits(q, e);
        if (d == q) return 0;
        q = d;
    }
    return (size_t)(q - p);
}

/* The text with each number token made a marked string; NULL with *why
 * (NULL on OOM). */
static char *wrap_numbers(const char *p, size_t len, const char **why)
{
    char *out = svdb__malloc(3 * len + 16), *o = out;
    const char *e = p + len;
    *why = NULL;
    while (out && p < e) {
        unsigned char c = (unsigned char)*p;
        size_t n = 1;
        if (c == '"') {
            if (!(n = string_len(p, e, why))) break;
            memcpy(o, p, n);
            o += n;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!(n = number_len(p, e))) break;
            *o++ = '"';
            *o++ = NUM_MARK;
            memcpy(o, p, n);
            o += n;
            *o++ = '"';
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            *why = "a control character outside a string";
            break;
        } else {
            *o++ = (char)c;
        }
        p += n;
    }
    if (out && p < e) {
        if (!*why) *why = "a malformed number";
        svdb__free(out);
        return NULL;
    }
    if (out) *o = '\0';
    return out;
}

static void numbers_to_raw(cJSON *n)
{
    for (; n; n = n->next) {
        if (cJSON_IsString(n) && n->valuestring[0] == NUM_MARK) {
            n->type = cJSON_Raw;
            memmove(n->valuestring, n->valuestring + 1, strlen(n->valuestring));
        }
        numbers_to_raw(n->child);
    }
}

/* Parses UTF-8 JSON text keeping numbers' text; NULL with *why. */
static cJSON *parse_json(const char *text, size_t len, const char **why)
{
    if (!utf8_valid((const unsigned char *)text, len)) return *why = "it is not UTF-8 text", NULL;
    char *w = wrap_numbers(text, len, why);
    if (!w) return *why = *why ? *why : "out of memory", NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(w, strlen(w) + 1, NULL, 1); /* the length counts the NUL it requires */
    svdb__free(w);
    if (!doc) return *why = "it is not valid JSON", NULL;
    numbers_to_raw(doc);
    return doc;
}

/* The last member named key (Python's json keeps the last of duplicates). */
static cJSON *member(const cJSON *obj, const char *key)
{
    cJSON *found = NULL;
    for (cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (c->string && !strcmp(c->string, key)) found = c;
    return found;
}

static int is_integer(const cJSON *n) { return cJSON_IsRaw(n) && !strpbrk(n->valuestring, ".eE"); }

/* ---------------------------------------------------------------- validation */

static const char *json_type(const cJSON *x)
{
    return cJSON_IsObject(x) ? "object" : cJSON_IsArray(x) ? "array" : cJSON_IsString(x) ? "string"
         : cJSON_IsBool(x)   ? "boolean" : cJSON_IsRaw(x) ? "number" : "null";
}

/* Fills err as pysvdb words a wrong field; returns 1 when ok is false. */
static int bad(int ok, char *err, const char *what, const char *expected, const cJSON *value)
{
    if (ok) return 0;
    char *shown = value ? cJSON_PrintUnformatted(value) : NULL;
    snprintf(err, 512, "%s must be %s, not %.80s (a JSON %s)", what, expected, shown ? shown : "nothing",
             value ? json_type(value) : "value");
    cJSON_free(shown);
    return 1;
}

static int is_scalar(const cJSON *v) { return cJSON_IsString(v) || cJSON_IsRaw(v) || cJSON_IsBool(v); }

static int check_metadata(const cJSON *m, const char *where, char *err)
{
    if (!m || cJSON_IsNull(m)) return 0;
    if (bad(cJSON_IsObject(m), err, where, "an object or null", m)) return 1;
    for (const cJSON *v = m->child; v; v = v->next) {
        char what[300];
        snprintf(what, sizeof what, "%s['%.200s']", where, v->string);
        int ok = is_scalar(v);
        if (cJSON_IsArray(v)) {
            ok = v->child != NULL;
            for (const cJSON *x = v->child; x; x = x->next) ok = ok && is_scalar(x);
            if (bad(ok, err, what, "a non-empty list of strings, numbers or booleans", v)) return 1;
        } else if (bad(ok, err, what, "a string, number, boolean or list", v)) {
            return 1;
        }
    }
    return 0;
}

static int u32_setting(const cJSON *v)
{
    if (!is_integer(v) || v->valuestring[0] == '-' || strlen(v->valuestring) > 10) return 0;
    unsigned long long x = strtoull(v->valuestring, NULL, 10);
    return x >= 1 && x <= UINT32_MAX;
}

static int check_setting(const cJSON *v, const char *what, char *err)
{
    static const char *const ints[] = {"ef_construction", "ef_search", "max_neighbors", "num_threads", "sync_threshold", "batch_size"};
    const char *k = v->string;
    if (!strcmp(k, "space")) {
        int ok = cJSON_IsString(v) && (!strcmp(v->valuestring, "l2") || !strcmp(v->valuestring, "cosine") || !strcmp(v->valuestring, "ip"));
        return bad(ok, err, what, "one of l2, cosine, ip", v);
    }
    if (!strcmp(k, "resize_factor")) return bad(cJSON_IsRaw(v) && strtod(v->valuestring, NULL) > 0, err, what, "a positive number", v);
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (!strcmp(k, ints[i])) return bad(u32_setting(v), err, what, "a positive 32-bit integer", v);
    snprintf(err, 512, "%s is an unknown HNSW setting", what);
    return 1;
}

static int check_hnsw(const cJSON *h, const char *where, char *err)
{
    static const char *const required[] = {"space", "ef_construction", "ef_search", "max_neighbors"};
    if (bad(cJSON_IsObject(h), err, where, "an object", h)) return 1;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!member(h, required[i])) return snprintf(err, 512, "%s has no '%s'", where, required[i]), 1;
    for (const cJSON *v = h->child; v; v = v->next) {
        char what[300];
        snprintf(what, sizeof what, "%s['%.200s']", where, v->string);
        if (check_setting(v, what, err)) return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- entries */

static void entry_free(entry *e)
{
    svdb__free(e->name);
    cJSON_Delete(e->meta);
    cJSON_Delete(e->hnsw);
}

static void entries_clear(svdb_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) entry_free(&c->v[i]);
    svdb__free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

static long find(const svdb_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].name, name)) return (long)i;
    return -1;
}

static long find_id(const svdb_catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].id, id)) return (long)i;
    return -1;
}

static int reserve(svdb_catalog *c)
{
    if (c->n < c->cap) return SVDB_OK;
    size_t cap = c->cap ? 2 * c->cap : 8;
    entry *v = svdb__realloc(c->v, cap * sizeof *v);
    SVDB_FAIL_IF(!v, SVDB_ENOMEM, "out of memory");
    c->v = v;
    c->cap = cap;
    return SVDB_OK;
}

/* One collection of the file, checked; the tree's parts move into *e. */
static int parse_entry(cJSON *j, size_t i, entry *e, char *err)
{
    char where[64];
    snprintf(where, sizeof where, "collections[%zu]", i);
    char wid[80], wname[80], wmeta[80], whnsw[80];
    snprintf(wid, sizeof wid, "%s.id", where);
    snprintf(wname, sizeof wname, "%s.name", where);
    snprintf(wmeta, sizeof wmeta, "%s.metadata", where);
    snprintf(whnsw, sizeof whnsw, "%s.hnsw", where);
    if (bad(cJSON_IsObject(j), err, where, "an object", j)) return SVDB_ECORRUPT;
    cJSON *id = member(j, "id"), *name = member(j, "name"), *meta = member(j, "metadata"), *hnsw = member(j, "hnsw");
    if (bad(cJSON_IsString(id) && is_uuid(id->valuestring), err, wid, "a UUID", id)) return SVDB_ECORRUPT;
    if (bad(cJSON_IsString(name) && name->valuestring[0], err, wname, "a non-empty string", name)) return SVDB_ECORRUPT;
    if (check_metadata(meta, wmeta, err) || check_hnsw(hnsw, whnsw, err)) return SVDB_ECORRUPT;
    memcpy(e->id, id->valuestring, UUID_LEN + 1);
    e->name = svdb__strndup(name->valuestring, strlen(name->valuestring));
    e->meta = cJSON_IsNull(meta) ? NULL : meta ? cJSON_DetachItemViaPointer(j, meta) : NULL;
    e->hnsw = cJSON_DetachItemViaPointer(j, hnsw);
    if (!e->name) return entry_free(e), svdb__fail(SVDB_ENOMEM, "out of memory");
    return SVDB_OK;
}

static int add_parsed(svdb_catalog *c, cJSON *j, size_t i, char *err)
{
    SVDB_TRY(reserve(c));
    entry e = {0};
    SVDB_TRY(parse_entry(j, i, &e, err));
    if (find_id(c, e.id) >= 0 || find(c, e.name) >= 0) {
        int same_id = find_id(c, e.id) >= 0;
        snprintf(err, 512, same_id ? "collections[%zu].id %s appears twice" : "collections[%zu].name '%.200s' appears twice",
                 i, same_id ? e.id : e.name);
        entry_free(&e);
        return SVDB_ECORRUPT;
    }
    c->v[c->n++] = e;
    return SVDB_OK;
}

/* The document's version, format, store and collections, into c; err
 * says what is wrong (SVDB_ECORRUPT or SVDB_EVERSION). */
static int parse_doc(svdb_catalog *c, cJSON *doc, char *err)
{
    if (bad(cJSON_IsObject(doc), err, "the document", "an object", doc)) return SVDB_ECORRUPT;
    cJSON *version = member(doc, "version"), *format = member(doc, "format"), *store = member(doc, "store");
    cJSON *cols = member(doc, "collections");
    if (version && bad(is_integer(version), err, "version", "an integer", version)) return SVDB_ECORRUPT;
    if (version && strcmp(version->valuestring, "1"))
        return snprintf(err, 512, "format version %.40s; this svdb reads version 1", version->valuestring), SVDB_EVERSION;
    if (format && bad(cJSON_IsString(format) && !strcmp(format->valuestring, "pysvdb-chroma"), err, "format", "\"pysvdb-chroma\"", format))
        return SVDB_ECORRUPT;
    int store_ok = !store || cJSON_IsNull(store) || (cJSON_IsString(store) && is_uuid(store->valuestring));
    if (bad(store_ok, err, "store", "a UUID", store)) return SVDB_ECORRUPT;
    if (!cols) return snprintf(err, 512, "it has no \"collections\" list"), SVDB_ECORRUPT;
    if (bad(cJSON_IsArray(cols), err, "collections", "a list", cols)) return SVDB_ECORRUPT;
    size_t i = 0;
    for (cJSON *j = cols->child; j; j = j->next, i++) SVDB_TRY(add_parsed(c, j, i, err));
    if (cJSON_IsString(store)) memcpy(c->store, store->valuestring, UUID_LEN + 1);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- writing */

static cJSON *entry_json(const entry *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddItemToObject(o, "metadata", e->meta ? cJSON_Duplicate(e->meta, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "hnsw", cJSON_Duplicate(e->hnsw, 1));
    if (cJSON_GetArraySize(o) != 4) cJSON_Delete(o), o = NULL;
    return o;
}

/* The catalog as pysvdb writes it; NULL on OOM. */
static char *catalog_text(const svdb_catalog *c)
{
    cJSON *doc = cJSON_CreateObject();
    int ok = doc && cJSON_AddStringToObject(doc, "format", "pysvdb-chroma") && cJSON_AddNumberToObject(doc, "version", 1) &&
             cJSON_AddStringToObject(doc, "store", c->store);
    cJSON *cols = ok ? cJSON_AddArrayToObject(doc, "collections") : NULL;
    ok = cols != NULL;
    for (size_t i = 0; ok && i < c->n; i++) {
        cJSON *e = entry_json(&c->v[i]);
        ok = e != NULL;
        if (ok) cJSON_AddItemToArray(cols, e);
    }
    char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    return text;
}

/* Writes `text` as d/name atomically: a temporary file, fsync, rename,
 * fsync of the directory (the fsyncs only when durable). */
static int write_atomic(const svdb_dir *d, const char *name, const char *tmp, const char *text, int durable, int *renamed)
{
    *renamed = 0;
    int fd;
    SVDB_TRY(svdb__file_create(d, tmp, &fd));
    char *path = svdb__dir_file(d, tmp);
    int rc = path ? svdb__pwrite_all(fd, text, strlen(text), 0, path) : svdb__fail(SVDB_ENOMEM, "out of memory");
    if (rc == SVDB_OK && durable) rc = svdb__fsync(fd, path);
    close(fd); /* os: */
    svdb__free(path);
    if (rc == SVDB_OK) rc = svdb__file_rename(d, tmp, name);
    if (rc != SVDB_OK) {
        unlinkat(d->fd, tmp, 0); /* os: best effort; the error stays the first one */
        return rc;
    }
    *renamed = 1;
    return durable ? svdb__dir_sync(d) : SVDB_OK;
}

static int save(svdb_catalog *c)
{
    char *text = catalog_text(c);
    SVDB_FAIL_IF(!text, SVDB_ENOMEM, "out of memory writing the catalog");
    int rc = write_atomic(&c->dir, CATALOG_FILE, CATALOG_TMP, text, c->durable, &c->applied);
    cJSON_free(text);
    if (rc != SVDB_OK && c->applied) { /* the change is made, and stays made in memory too */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        rc = svdb__fail(rc, "%s (the catalog was changed, but the change may not survive a crash)", msg);
    }
    return rc;
}

/* ---------------------------------------------------------------- collection directories */

/* Opens root/id as a directory, never through a link: 1, 0 when there is
 * no such directory (absent, a link, a file), or an error. */
static int open_coll(const svdb_catalog *c, const char *id, svdb_dir *d)
{
    d->path = NULL;
    d->fd = openat(c->dir.fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* os: */
    if (d->fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return 0;
        return svdb__fail_errno(SVDB_EIO, errno, "cannot open directory %s/%s", c->dir.path, id);
    }
    d->path = svdb__path_join(c->dir.path, id);
    if (!d->path) return svdb__dir_close(d), svdb__fail(SVDB_ENOMEM, "out of memory");
    return 1;
}

/* Whether the directory's marker says it is collection id of this store, in `state`. */
static int marker_says(const svdb_catalog *c, const svdb_dir *d, const char *id, const char *state)
{
    int fd;
    struct stat st;
    if (svdb__file_open(d, MARKER_FILE, O_RDONLY, &fd) != SVDB_OK) return 0;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < MAX_MARKER_BYTES) /* os: */
        buf = svdb__calloc(1, (size_t)st.st_size + 1);
    int ok = buf && pread(fd, buf, (size_t)st.st_size, 0) == st.st_size; /* os: */
    close(fd);                                                             /* os: */
    cJSON *m = ok ? cJSON_Parse(buf) : NULL;
    svdb__free(buf);
    const char *keys[] = {"format", "store", "id", "state"}, *want[] = {MARKER_FORMAT, c->store, id, state};
    for (int i = 0; i < 4 && m; i++) {
        cJSON *v = member(m, keys[i]);
        ok = ok && cJSON_IsString(v) && !strcmp(v->valuestring, want[i]);
    }
    ok = ok && m;
    cJSON_Delete(m);
    return ok;
}

static int write_marker(const svdb_catalog *c, const svdb_dir *d, const char *id, const char *state)
{
    char text[256];
    snprintf(text, sizeof text, "{\"format\": \"%s\", \"store\": \"%s\", \"id\": \"%s\", \"state\": \"%s\"}", MARKER_FORMAT,
             c->store, id, state);
    int renamed;
    return write_atomic(d, MARKER_FILE, MARKER_TMP, text, c->durable, &renamed);
}

/* SVDB_ELOCKED while a handle has the collection open (its LOCK held);
 * else SVDB_OK, with *fd holding the lock (or -1 when there is no LOCK). */
static int hold_collection(const svdb_dir *d, int *fd)
{
    *fd = openat(d->fd, "LOCK", O_RDONLY | O_NOFOLLOW | O_CLOEXEC); /* os: */
    if (*fd < 0) return SVDB_OK;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return SVDB_OK; /* os: */
    close(*fd);                                             /* os: */
    *fd = -1;
    return svdb__fail(SVDB_ELOCKED, "collection %s is open (by a handle in this or another process); close it first", d->path);
}

/* Removes every entry of directory fd but `keep`, subdirectories too. */
static int empty_dir(int fd, const char *path, const char *keep)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* os: */
    DIR *dh = dfd >= 0 ? fdopendir(dfd) : NULL;                     /* os: */
    if (!dh) {
        if (dfd >= 0) close(dfd);
        return svdb__fail_errno(SVDB_EIO, errno, "cannot list directory %s", path);
    }
    int rc = SVDB_OK;
    for (struct dirent *e; rc == SVDB_OK && (e = readdir(dh));) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || (keep && !strcmp(n, keep))) continue;
        int sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* os: */
        if (sub >= 0) {
            rc = empty_dir(sub, path, NULL);
            close(sub);
        }
        if (rc == SVDB_OK && unlinkat(fd, n, sub >= 0 ? AT_REMOVEDIR : 0) != 0) /* os: */
            rc = svdb__fail_errno(SVDB_EIO, errno, "cannot remove %s/%s", path, n);
    }
    closedir(dh);
    return rc;
}

/* Removes root/id, proven by its marker to be this store's deleted
 * collection: its files, the marker last, then the directory. */
static int purge(svdb_catalog *c, const char *id)
{
    svdb_dir d;
    int have = open_coll(c, id, &d);
    if (have < 0) return have;
    struct stat st;
    if (!have && fstatat(c->dir.fd, id, &st, AT_SYMLINK_NOFOLLOW) != 0) return SVDB_OK; /* os: nothing there */
    int rc = have && marker_says(c, &d, id, "deleting")
                 ? SVDB_OK
                 : svdb__fail(SVDB_EINVAL, "%s/%s is not provably this store's deleted collection; it was left in place", c->dir.path, id);
    int lock = -1;
    if (rc == SVDB_OK) rc = hold_collection(&d, &lock);
    if (rc == SVDB_OK) rc = empty_dir(d.fd, d.path, MARKER_FILE);
    if (rc == SVDB_OK) rc = svdb__file_unlink(&d, MARKER_FILE);
    if (rc == SVDB_OK && unlinkat(c->dir.fd, id, AT_REMOVEDIR) != 0) /* os: */
        rc = svdb__fail_errno(SVDB_EIO, errno, "cannot remove %s", d.path);
    if (lock >= 0) close(lock); /* os: */
    if (rc != SVDB_OK && rc != SVDB_EINVAL && rc != SVDB_ELOCKED) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        rc = svdb__fail(rc, "could not remove all of %s/%s (%s); the next open tries again", c->dir.path, id, msg);
    }
    if (have) svdb__dir_close(&d);
    if (rc == SVDB_OK && c->durable) rc = svdb__dir_sync(&c->dir);
    return rc;
}

static void warn(const svdb_catalog *c, const char *msg)
{
    if (c->warning) c->warning(msg, c->payload);
}

/* The names in the root that look like collection directories (UUIDs),
 * unlisted ones only when `unlisted`; an array the caller frees. */
static int uuid_names(const svdb_catalog *c, int unlisted, char (**out)[UUID_LEN + 1], size_t *n)
{
    *out = NULL;
    *n = 0;
    int dfd = openat(c->dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* os: */
    DIR *dh = dfd >= 0 ? fdopendir(dfd) : NULL;                           /* os: */
    if (!dh) {
        if (dfd >= 0) close(dfd);
        return svdb__fail_errno(SVDB_EIO, errno, "cannot list directory %s", c->dir.path);
    }
    int rc = SVDB_OK;
    for (struct dirent *e; rc == SVDB_OK && (e = readdir(dh));) {
        if (!is_uuid(e->d_name) || (unlisted && find_id(c, e->d_name) >= 0)) continue;
        char(*v)[UUID_LEN + 1] = svdb__realloc(*out, (*n + 1) * sizeof *v);
        if (!v) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        else memcpy(v[(*n)++], e->d_name, UUID_LEN + 1), *out = v;
    }
    closedir(dh);
    return rc;
}

/* Directories the catalog does not list: a delete a crash interrupted is
 * finished; anything else stays, with a warning. */
static int sweep(svdb_catalog *c)
{
    char(*names)[UUID_LEN + 1];
    size_t n;
    SVDB_TRY(uuid_names(c, 1, &names, &n));
    for (size_t i = 0; i < n; i++) {
        int rc = purge(c, names[i]);
        char msg[1024];
        if (rc == SVDB_EINVAL)
            snprintf(msg, sizeof msg,
                     "%s/%s is not a collection of the catalog %s/%s and is not provably a leftover of this store, so it "
                     "was left in place; move it away if it is not needed",
                     c->dir.path, names[i], c->dir.path, CATALOG_FILE);
        else snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        if (rc != SVDB_OK) warn(c, msg);
    }
    svdb__free(names);
    svdb__clear_error();
    return SVDB_OK;
}

/* ---------------------------------------------------------------- opening */

/* mkdir -p; an existing directory is fine. */
static int make_dirs(const char *path)
{
    char *p = svdb__strndup(path, strlen(path));
    SVDB_FAIL_IF(!p, SVDB_ENOMEM, "out of memory");
    int rc = SVDB_OK;
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char was = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) /* os: */
            rc = svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create directory %s", p);
        *s = was;
        if (!was || rc != SVDB_OK) break;
    }
    svdb__free(p);
    return rc;
}

static int take_lock(svdb_catalog *c)
{
    c->lock_fd = openat(c->dir.fd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644); /* os: */
    if (c->lock_fd < 0)
        return svdb__fail_errno(errno == ELOOP ? SVDB_ECORRUPT : SVDB_EIO, errno, "cannot open the lock file %s/%s", c->dir.path, LOCK_FILE);
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) { /* os: */
        if (errno != EWOULDBLOCK) return svdb__fail_errno(SVDB_EIO, errno, "cannot lock %s/%s", c->dir.path, LOCK_FILE);
        char pid[32] = {0};
        ssize_t r = pread(c->lock_fd, pid, sizeof pid - 1, 0); /* os: */
        pid[r > 0 ? strcspn(pid, " \r\n") : 0] = '\0';
        return svdb__fail(SVDB_ELOCKED,
                          "%s is locked: another process (pid %s) has its catalog open. One process at a time may open "
                          "it; close the other client or use another directory",
                          c->dir.path, pid[0] ? pid : "?");
    }
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    char *path = svdb__dir_file(&c->dir, LOCK_FILE);
    int rc = path ? svdb__truncate(c->lock_fd, 0, path) : svdb__fail(SVDB_ENOMEM, "out of memory");
    if (rc == SVDB_OK) rc = svdb__pwrite_all(c->lock_fd, pid, strlen(pid), 0, path);
    svdb__free(path);
    return rc;
}

/* No catalog file: a new store, unless collection directories show one was lost. */
static int start_store(svdb_catalog *c, int create)
{
    char(*names)[UUID_LEN + 1];
    size_t n;
    SVDB_TRY(uuid_names(c, 0, &names, &n));
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
    new_uuid(c->store);
    return save(c);
}

static int read_whole(const svdb_catalog *c, int fd, char **text, size_t *len)
{
    struct stat st;
    char *path = svdb__dir_file(&c->dir, CATALOG_FILE);
    SVDB_FAIL_IF(!path, SVDB_ENOMEM, "out of memory");
    int rc = fstat(fd, &st) != 0 ? svdb__fail_errno(SVDB_EIO, errno, "cannot inspect %s", path) /* os: */
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

static int load(svdb_catalog *c, int create)
{
    int fd;
    int rc = svdb__file_open(&c->dir, CATALOG_FILE, O_RDONLY, &fd);
    if (rc == SVDB_ENOTFOUND) return start_store(c, create);
    SVDB_TRY(rc);
    char *text = NULL;
    size_t len = 0;
    rc = read_whole(c, fd, &text, &len);
    close(fd); /* os: */
    SVDB_TRY(rc);
    const char *why = NULL;
    cJSON *doc = parse_json(text, len, &why);
    svdb__free(text);
    SVDB_FAIL_IF(!doc, SVDB_ECORRUPT, "cannot read the catalog %s/%s: %s; restore it from a backup (nothing was changed)",
                 c->dir.path, CATALOG_FILE, why);
    char err[512] = "";
    rc = parse_doc(c, doc, err);
    cJSON_Delete(doc);
    if (rc == SVDB_EVERSION) return svdb__fail(rc, "the catalog %s/%s has %s", c->dir.path, CATALOG_FILE, err);
    if (rc == SVDB_ECORRUPT)
        return svdb__fail(rc, "the catalog %s/%s is damaged: %s; restore it from a backup (nothing was changed)", c->dir.path,
                          CATALOG_FILE, err);
    SVDB_TRY(rc);
    if (!c->store[0]) { /* written by a pysvdb that recorded no store id */
        new_uuid(c->store);
        SVDB_TRY(save(c));
    }
    return sweep(c);
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
    if (c->token) unregister_cat(c->token);
    c->magic = 0;
    if (c->lock_fd >= 0) close(c->lock_fd); /* os: */
    svdb__dir_close(&c->dir);
    entries_clear(c);
    pthread_mutex_destroy(&c->mu);
    svdb__free(c);
}

static int open_cat(svdb_catalog *c, const char *dir, const svdb_catalog_options *o)
{
    struct stat st;
    if (o->create) SVDB_TRY(make_dirs(dir));
    else SVDB_FAIL_IF(stat(dir, &st) != 0, SVDB_ENOTFOUND, "no catalog directory %s (and create is off)", dir); /* os: */
    SVDB_TRY(svdb__dir_open(&c->dir, dir));
    if (!o->create) SVDB_FAIL_IF(svdb__file_stat(&c->dir, CATALOG_FILE, &st) == 0, SVDB_ENOTFOUND,
                                 "no catalog %s/%s (and create is off)", c->dir.path, CATALOG_FILE);
    SVDB_TRY(take_lock(c));
    SVDB_TRY(load(c, o->create));
    return register_cat(c);
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
    svdb_catalog *c;
    SVDB_TRY(enter(h, &c));
    pthread_mutex_unlock(&c->mu);
    destroy(c);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- reading entries */

static int metric_of(const char *space) { return !strcmp(space, "ip") ? SVDB_METRIC_IP : !strcmp(space, "cosine") ? SVDB_METRIC_COSINE : SVDB_METRIC_L2; }

static uint32_t setting(const cJSON *h, const char *key)
{
    cJSON *v = member(h, key);
    return v ? (uint32_t)strtoul(v->valuestring, NULL, 10) : 0;
}

/* Copies the entries [from, from + n) into one allocation. */
static int export_entries(const svdb_catalog *c, size_t from, size_t n, svdb_catalog_entry **out)
{
    char **texts = svdb__calloc(2 * n + 1, sizeof *texts);
    size_t bytes = n * sizeof **out, plen = strlen(c->dir.path) + 2 + UUID_LEN;
    for (size_t i = 0; texts && i < n; i++) {
        const entry *e = &c->v[from + i];
        texts[2 * i] = e->meta ? cJSON_PrintUnformatted(e->meta) : NULL;
        texts[2 * i + 1] = cJSON_PrintUnformatted(e->hnsw);
        if ((e->meta && !texts[2 * i]) || !texts[2 * i + 1]) bytes = SIZE_MAX;
        else bytes += UUID_LEN + 1 + strlen(e->name) + 1 + (e->meta ? strlen(texts[2 * i]) + 1 : 0) + strlen(texts[2 * i + 1]) + 1 + plen;
    }
    svdb_catalog_entry *v = texts && bytes != SIZE_MAX ? svdb__calloc(1, bytes) : NULL;
    char *p = v ? (char *)(v + n) : NULL;
#define PUT(field, s) (memcpy(p, (s), strlen(s) + 1), field = p, p += strlen(p) + 1)
    for (size_t i = 0; v && i < n; i++) {
        const entry *e = &c->v[from + i];
        svdb_catalog_entry *x = &v[i];
        PUT(x->id, e->id);
        PUT(x->name, e->name);
        if (e->meta) PUT(x->metadata, texts[2 * i]);
        PUT(x->hnsw, texts[2 * i + 1]);
        x->path = p;
        p += sprintf(p, "%s/%s", c->dir.path, e->id) + 1;
        x->metric = metric_of(member(e->hnsw, "space")->valuestring);
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

int svdb_catalog_list(svdb_catalog *h, svdb_catalog_entry **entries, size_t *n)
{
    svdb_catalog *c;
    SVDB_FAIL_IF(!entries || !n, SVDB_EINVAL, "entries or n is NULL");
    *entries = NULL;
    *n = 0;
    SVDB_TRY(enter(h, &c));
    int rc = c->n ? export_entries(c, 0, c->n, entries) : SVDB_OK;
    if (rc == SVDB_OK) *n = c->n;
    return leave(c, rc);
}

/* The entry named `name`, or SVDB_ENOTFOUND / SVDB_EINVAL. */
static int named(const svdb_catalog *c, const char *name, long *i)
{
    SVDB_FAIL_IF(!name || !*name, SVDB_EINVAL, "name is NULL or empty");
    *i = find(c, name);
    SVDB_FAIL_IF(*i < 0, SVDB_ENOTFOUND, "no collection named '%.200s' in %s/%s", name, c->dir.path, CATALOG_FILE);
    return SVDB_OK;
}

int svdb_catalog_get(svdb_catalog *h, const char *name, svdb_catalog_entry **entry_out)
{
    svdb_catalog *c;
    long i;
    SVDB_FAIL_IF(!entry_out, SVDB_EINVAL, "entry is NULL");
    *entry_out = NULL;
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    if (rc == SVDB_OK) rc = export_entries(c, (size_t)i, 1, entry_out);
    return leave(c, rc);
}

int svdb_catalog_collection_path(svdb_catalog *h, const char *name, char **path)
{
    svdb_catalog *c;
    long i;
    SVDB_FAIL_IF(!path, SVDB_EINVAL, "path is NULL");
    *path = NULL;
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    if (rc == SVDB_OK && !(*path = svdb__path_join(c->dir.path, c->v[i].id))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    return leave(c, rc);
}

/* ---------------------------------------------------------------- changes */

static int check_name(const char *name, const char *what)
{
    SVDB_FAIL_IF(!name || !*name, SVDB_EINVAL, "%s is NULL or empty", what);
    SVDB_FAIL_IF(!utf8_valid((const unsigned char *)name, strlen(name)), SVDB_EINVAL, "%s is not UTF-8 text", what);
    return SVDB_OK;
}

/* Parses caller JSON checked as the catalog checks its own; *out NULL for NULL text. */
static int parse_arg(const char *text, const char *what, int is_meta, int status, cJSON **out)
{
    *out = NULL;
    if (!text) return SVDB_OK;
    const char *why = NULL;
    cJSON *j = parse_json(text, strlen(text), &why);
    SVDB_FAIL_IF(!j, status, "%s is not valid: %s", what, why);
    char err[512] = "";
    int broken = is_meta ? check_metadata(j, what, err) : bad(cJSON_IsObject(j), err, what, "an object", j);
    if (broken || cJSON_IsNull(j)) {
        cJSON_Delete(j);
        return broken ? svdb__fail(status, "%s", err) : SVDB_OK; /* "null" metadata: none */
    }
    *out = j;
    return SVDB_OK;
}

static const char DEFAULT_HNSW[] =
    "{\"space\": \"l2\", \"ef_construction\": 100, \"ef_search\": 100, \"max_neighbors\": 16, \"resize_factor\": 1.2, "
    "\"sync_threshold\": 1000}";

static int create_entry(svdb_catalog *c, const char *name, const char *metadata, const char *hnsw)
{
    SVDB_TRY(check_name(name, "name"));
    SVDB_FAIL_IF(find(c, name) >= 0, SVDB_EEXISTS, "a collection named '%.200s' already exists in %s", name, c->dir.path);
    SVDB_TRY(reserve(c));
    entry e = {0};
    int rc = parse_arg(metadata, "metadata", 1, SVDB_EMETA, &e.meta);
    if (rc == SVDB_OK) rc = parse_arg(hnsw ? hnsw : DEFAULT_HNSW, "hnsw", 0, SVDB_EINVAL, &e.hnsw);
    char err[512];
    if (rc == SVDB_OK && check_hnsw(e.hnsw, "hnsw", err)) rc = svdb__fail(SVDB_EINVAL, "%s", err);
    if (rc == SVDB_OK && !(e.name = svdb__strndup(name, strlen(name)))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    do new_uuid(e.id);
    while (find_id(c, e.id) >= 0);
    if (rc == SVDB_OK) {
        c->v[c->n++] = e;
        if ((rc = save(c)) != SVDB_OK && !c->applied) c->n--;
    }
    if (rc != SVDB_OK && !c->applied) entry_free(&e);
    return rc;
}

int svdb_catalog_create(svdb_catalog *h, const char *name, const char *metadata, const char *hnsw, svdb_catalog_entry **entry_out)
{
    svdb_catalog *c;
    if (entry_out) *entry_out = NULL;
    SVDB_TRY(enter(h, &c));
    int rc = create_entry(c, name, metadata, hnsw);
    if (rc == SVDB_OK && entry_out) rc = export_entries(c, c->n - 1, 1, entry_out);
    return leave(c, rc);
}

/* hnsw with the settings of `upd` replaced; the ones fixed at creation may not change. */
static int merge_hnsw(const cJSON *hnsw, const cJSON *upd, cJSON **out)
{
    static const char *const fixed[] = {"space", "max_neighbors", "ef_construction"};
    cJSON *m = cJSON_Duplicate(hnsw, 1);
    SVDB_FAIL_IF(!m, SVDB_ENOMEM, "out of memory");
    for (const cJSON *u = upd->child; u; u = u->next) {
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
            cJSON *old = member(m, fixed[i]);
            if (!strcmp(u->string, fixed[i]) && (!old || !cJSON_Compare(old, u, 1))) {
                cJSON_Delete(m);
                return svdb__fail(SVDB_EINVAL, "the HNSW setting '%s' is fixed when the collection is created", fixed[i]);
            }
        }
        cJSON *dup = cJSON_Duplicate(u, 1);
        cJSON *old = member(m, u->string);
        if (dup && old) cJSON_ReplaceItemViaPointer(m, old, dup);
        else if (dup) cJSON_AddItemToObject(m, u->string, dup);
    }
    char err[512];
    if (check_hnsw(m, "hnsw", err)) return cJSON_Delete(m), svdb__fail(SVDB_EINVAL, "%s", err);
    *out = m;
    return SVDB_OK;
}

static int modify(svdb_catalog *c, const char *name, const char *new_name, const char *metadata, const char *hnsw)
{
    long i;
    SVDB_TRY(named(c, name, &i));
    if (new_name) SVDB_TRY(check_name(new_name, "new_name"));
    SVDB_FAIL_IF(new_name && strcmp(new_name, name) && find(c, new_name) >= 0, SVDB_EEXISTS,
                 "a collection named '%.200s' already exists in %s", new_name, c->dir.path);
    entry *e = &c->v[i], old = *e, neu = *e;
    cJSON *upd = NULL;
    int rc = parse_arg(metadata, "metadata", 1, SVDB_EMETA, &neu.meta);
    if (!metadata) neu.meta = old.meta;
    if (rc == SVDB_OK) rc = parse_arg(hnsw, "hnsw", 0, SVDB_EINVAL, &upd);
    if (rc == SVDB_OK && upd) rc = merge_hnsw(old.hnsw, upd, &neu.hnsw);
    if (rc == SVDB_OK && new_name && !(neu.name = svdb__strndup(new_name, strlen(new_name)))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
    cJSON_Delete(upd);
    if (rc == SVDB_OK) {
        *e = neu;
        rc = save(c);
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
    SVDB_TRY(enter(h, &c));
    return leave(c, modify(c, name, new_name, metadata, hnsw));
}

int svdb_catalog_rename(svdb_catalog *h, const char *name, const char *new_name)
{
    svdb_catalog *c;
    SVDB_TRY(enter(h, &c));
    int rc = new_name ? modify(c, name, new_name, NULL, NULL) : svdb__fail(SVDB_EINVAL, "new_name is NULL");
    return leave(c, rc);
}

int svdb_catalog_set_metadata(svdb_catalog *h, const char *name, const char *metadata)
{
    svdb_catalog *c;
    SVDB_TRY(enter(h, &c));
    int rc = metadata ? modify(c, name, NULL, metadata, NULL) : svdb__fail(SVDB_EINVAL, "metadata is NULL");
    return leave(c, rc);
}

/* Marks the directory (if any) "deleting", then saves the catalog without
 * the entry; on failure the entry and a "live" marker are put back. */
static int forget(svdb_catalog *c, long i, char id[UUID_LEN + 1])
{
    entry e = c->v[i];
    memcpy(id, e.id, UUID_LEN + 1);
    svdb_dir d;
    int have = open_coll(c, e.id, &d), lock = -1;
    int rc = have < 0 ? have : have ? hold_collection(&d, &lock) : SVDB_OK;
    if (rc == SVDB_OK && have) rc = write_marker(c, &d, e.id, "deleting");
    if (rc == SVDB_OK) {
        hook("marked");
        memmove(&c->v[i], &c->v[i + 1], (c->n - (size_t)i - 1) * sizeof e);
        c->n--;
        rc = save(c);
        if (rc == SVDB_OK || c->applied) entry_free(&e), hook("forgot");
        else {
            memmove(&c->v[i + 1], &c->v[i], (c->n - (size_t)i) * sizeof e);
            c->v[i] = e;
            c->n++;
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", svdb_errmsg());
            if (have) write_marker(c, &d, e.id, "live");
            svdb__fail(rc, "%s", msg);
        }
    }
    if (lock >= 0) close(lock); /* os: */
    if (have > 0) svdb__dir_close(&d);
    return rc;
}

int svdb_catalog_forget(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    char id[UUID_LEN + 1];
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    return leave(c, rc == SVDB_OK ? forget(c, i, id) : rc);
}

int svdb_catalog_purge(svdb_catalog *h, const char *id)
{
    svdb_catalog *c;
    SVDB_TRY(enter(h, &c));
    int rc = !id || !is_uuid(id) ? svdb__fail(SVDB_EINVAL, "id is not a collection id (a UUID)")
             : find_id(c, id) >= 0 ? svdb__fail(SVDB_EINVAL, "collection %s is in the catalog; delete it with svdb_catalog_delete", id)
                                   : purge(c, id);
    return leave(c, rc);
}

int svdb_catalog_delete(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    char id[UUID_LEN + 1];
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    if (rc == SVDB_OK) rc = forget(c, i, id);
    if (rc == SVDB_OK && purge(c, id) != SVDB_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", svdb_errmsg());
        warn(c, msg);
        svdb__clear_error();
    }
    return leave(c, rc);
}

/* ---------------------------------------------------------------- collections */

static int claim(svdb_catalog *c, long i)
{
    svdb_dir d;
    int have = open_coll(c, c->v[i].id, &d);
    if (have < 0) return have;
    SVDB_FAIL_IF(!have, SVDB_ENOTFOUND, "collection directory %s/%s does not exist (open the collection first)", c->dir.path, c->v[i].id);
    int rc = marker_says(c, &d, c->v[i].id, "live") ? SVDB_OK : write_marker(c, &d, c->v[i].id, "live");
    svdb__dir_close(&d);
    return rc;
}

int svdb_catalog_claim(svdb_catalog *h, const char *name)
{
    svdb_catalog *c;
    long i;
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    return leave(c, rc == SVDB_OK ? claim(c, i) : rc);
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
    o.metric = metric_of(member(hn, "space")->valuestring);
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
    if ((rc = claim(c, i)) != SVDB_OK) {
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
    SVDB_TRY(enter(h, &c));
    int rc = named(c, name, &i);
    return leave(c, rc == SVDB_OK ? open_listed(out, c, i, opts) : rc);
}
