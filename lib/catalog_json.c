/* The catalog file's JSON format: reading it (UTF-8 and number checks,
 * parsing, the fields pysvdb writes, checked as pysvdb checks them), the
 * caller's metadata and HNSW settings checked the same way, and writing the
 * document back. Numbers in metadata and HNSW settings are kept as the text
 * they were written as (1.0 stays 1.0, large integers stay exact): before
 * parsing, each number token becomes a string marked by a 0xff byte (which
 * valid UTF-8 never holds), and after parsing such strings become cJSON raw
 * nodes, printed back verbatim. */
#include "catalog_json.h"

#include "alloc.h"
#include "catalog_impl.h"
#include "error.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MARK '\xff'

/* ---------------------------------------------------------------- text */

int svdb__catalog_utf8_valid(const unsigned char *s, size_t n)
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
int svdb__catalog_is_uuid(const char *s)
{
    for (int i = 0; i < UUID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    }
    return s[UUID_LEN] == '\0';
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
cJSON *svdb__catalog_parse_json(const char *text, size_t len, const char **why)
{
    if (!svdb__catalog_utf8_valid((const unsigned char *)text, len)) return *why = "it is not UTF-8 text", NULL;
    char *w = wrap_numbers(text, len, why);
    if (!w) return *why = *why ? *why : "out of memory", NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(w, strlen(w) + 1, NULL, 1); /* the length counts the NUL it requires */
    svdb__free(w);
    if (!doc) return *why = "it is not valid JSON", NULL;
    numbers_to_raw(doc);
    return doc;
}

/* The last member named key (Python's json keeps the last of duplicates). */
cJSON *svdb__catalog_member(const cJSON *obj, const char *key)
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

int svdb__catalog_check_hnsw(const cJSON *h, const char *where, char *err)
{
    static const char *const required[] = {"space", "ef_construction", "ef_search", "max_neighbors"};
    if (bad(cJSON_IsObject(h), err, where, "an object", h)) return 1;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!svdb__catalog_member(h, required[i])) return snprintf(err, 512, "%s has no '%s'", where, required[i]), 1;
    for (const cJSON *v = h->child; v; v = v->next) {
        char what[300];
        snprintf(what, sizeof what, "%s['%.200s']", where, v->string);
        if (check_setting(v, what, err)) return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the document */

/* A version 2 collection's database: "tenant" and "database" naming a listed one. */
static int parse_scope(const svdb_catalog *c, const cJSON *j, const char *where, entry *e, char *err)
{
    char wt[80], wd[80];
    snprintf(wt, sizeof wt, "%s.tenant", where);
    snprintf(wd, sizeof wd, "%s.database", where);
    cJSON *t = svdb__catalog_member(j, "tenant"), *d = svdb__catalog_member(j, "database");
    if (bad(cJSON_IsString(t), err, wt, "a string", t) || bad(cJSON_IsString(d), err, wd, "a string", d)) return SVDB_ECORRUPT;
    long k = svdb__catalog_find_db(c, t->valuestring, d->valuestring);
    if (k < 0)
        return snprintf(err, 512, "%s '%.120s' of tenant '%.120s' is not in \"databases\"", wd, d->valuestring, t->valuestring), SVDB_ECORRUPT;
    memcpy(e->db, c->dbs[k].id, UUID_LEN + 1);
    return SVDB_OK;
}

/* One collection of the file, checked; the tree's parts move into *e.
 * Version 1 collections are all in the default database. */
static int parse_entry(const svdb_catalog *c, cJSON *j, size_t i, int v2, entry *e, char *err)
{
    char where[64];
    snprintf(where, sizeof where, "collections[%zu]", i);
    char wid[80], wname[80], wmeta[80], whnsw[80];
    snprintf(wid, sizeof wid, "%s.id", where);
    snprintf(wname, sizeof wname, "%s.name", where);
    snprintf(wmeta, sizeof wmeta, "%s.metadata", where);
    snprintf(whnsw, sizeof whnsw, "%s.hnsw", where);
    if (bad(cJSON_IsObject(j), err, where, "an object", j)) return SVDB_ECORRUPT;
    cJSON *id = svdb__catalog_member(j, "id"), *name = svdb__catalog_member(j, "name"), *meta = svdb__catalog_member(j, "metadata"), *hnsw = svdb__catalog_member(j, "hnsw");
    if (bad(cJSON_IsString(id) && svdb__catalog_is_uuid(id->valuestring), err, wid, "a UUID", id)) return SVDB_ECORRUPT;
    if (bad(cJSON_IsString(name) && name->valuestring[0], err, wname, "a non-empty string", name)) return SVDB_ECORRUPT;
    if (check_metadata(meta, wmeta, err) || svdb__catalog_check_hnsw(hnsw, whnsw, err)) return SVDB_ECORRUPT;
    if (v2) SVDB_TRY(parse_scope(c, j, where, e, err));
    else memcpy(e->db, DEFAULT_DATABASE_ID, UUID_LEN + 1);
    memcpy(e->id, id->valuestring, UUID_LEN + 1);
    e->name = svdb__strndup(name->valuestring, strlen(name->valuestring));
    e->meta = cJSON_IsNull(meta) ? NULL : meta ? cJSON_DetachItemViaPointer(j, meta) : NULL;
    e->hnsw = cJSON_DetachItemViaPointer(j, hnsw);
    if (!e->name) return svdb__catalog_entry_free(e), svdb__fail(SVDB_ENOMEM, "out of memory");
    return SVDB_OK;
}

static int add_parsed(svdb_catalog *c, cJSON *j, size_t i, int v2, char *err)
{
    SVDB_TRY(svdb__catalog_reserve(c));
    entry e = {0};
    SVDB_TRY(parse_entry(c, j, i, v2, &e, err));
    if (svdb__catalog_find_id(c, e.id) >= 0 || svdb__catalog_find(c, e.db, e.name) >= 0) {
        int same_id = svdb__catalog_find_id(c, e.id) >= 0;
        snprintf(err, 512, same_id ? "collections[%zu].id %s appears twice" : "collections[%zu].name '%.200s' appears twice in its database",
                 i, same_id ? e.id : e.name);
        svdb__catalog_entry_free(&e);
        return SVDB_ECORRUPT;
    }
    c->v[c->n++] = e;
    return SVDB_OK;
}

/* Version 2's "tenants": objects with a unique "name", default_tenant among them. */
static int parse_tenants(svdb_catalog *c, const cJSON *list, char *err)
{
    if (bad(cJSON_IsArray(list), err, "tenants", "a list", list)) return SVDB_ECORRUPT;
    size_t i = 0;
    for (const cJSON *j = list->child; j; j = j->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "tenants[%zu]", i);
        if (bad(cJSON_IsObject(j), err, where, "an object", j)) return SVDB_ECORRUPT;
        cJSON *name = svdb__catalog_member(j, "name");
        strcat(where, ".name");
        if (bad(cJSON_IsString(name) && name->valuestring[0], err, where, "a non-empty string", name)) return SVDB_ECORRUPT;
        if (svdb__catalog_find_tenant(c, name->valuestring) >= 0)
            return snprintf(err, 512, "%s '%.200s' appears twice", where, name->valuestring), SVDB_ECORRUPT;
        SVDB_TRY(svdb__catalog_add_tenant(c, name->valuestring));
    }
    if (svdb__catalog_find_tenant(c, DEFAULT_TENANT) < 0) return snprintf(err, 512, "tenants has no '" DEFAULT_TENANT "'"), SVDB_ECORRUPT;
    return SVDB_OK;
}

/* Version 2's "databases": objects with a unique "id", a "name" unique in
 * its "tenant", which is listed. */
static int parse_dbs(svdb_catalog *c, const cJSON *list, char *err)
{
    if (bad(cJSON_IsArray(list), err, "databases", "a list", list)) return SVDB_ECORRUPT;
    size_t i = 0;
    for (const cJSON *j = list->child; j; j = j->next, i++) {
        char where[64], wid[80], wname[80], wt[80];
        snprintf(where, sizeof where, "databases[%zu]", i);
        snprintf(wid, sizeof wid, "%s.id", where);
        snprintf(wname, sizeof wname, "%s.name", where);
        snprintf(wt, sizeof wt, "%s.tenant", where);
        if (bad(cJSON_IsObject(j), err, where, "an object", j)) return SVDB_ECORRUPT;
        cJSON *id = svdb__catalog_member(j, "id"), *name = svdb__catalog_member(j, "name"), *t = svdb__catalog_member(j, "tenant");
        if (bad(cJSON_IsString(id) && svdb__catalog_is_uuid(id->valuestring), err, wid, "a UUID", id) ||
            bad(cJSON_IsString(name) && name->valuestring[0], err, wname, "a non-empty string", name) ||
            bad(cJSON_IsString(t), err, wt, "a string", t))
            return SVDB_ECORRUPT;
        if (svdb__catalog_find_tenant(c, t->valuestring) < 0)
            return snprintf(err, 512, "%s '%.200s' is not in \"tenants\"", wt, t->valuestring), SVDB_ECORRUPT;
        if (svdb__catalog_find_db_id(c, id->valuestring) >= 0) return snprintf(err, 512, "%s %s appears twice", wid, id->valuestring), SVDB_ECORRUPT;
        if (svdb__catalog_find_db(c, t->valuestring, name->valuestring) >= 0)
            return snprintf(err, 512, "%s '%.200s' appears twice in its tenant", wname, name->valuestring), SVDB_ECORRUPT;
        SVDB_TRY(svdb__catalog_add_db(c, id->valuestring, name->valuestring, t->valuestring));
    }
    return SVDB_OK;
}

/* The document's version, format, store, tenants, databases and
 * collections, into c; err says what is wrong (SVDB_ECORRUPT or
 * SVDB_EVERSION). Version 1 (or none) is the format before tenants and
 * databases: everything is in the default database of the default tenant. */
int svdb__catalog_parse_doc(svdb_catalog *c, cJSON *doc, char *err)
{
    if (bad(cJSON_IsObject(doc), err, "the document", "an object", doc)) return SVDB_ECORRUPT;
    cJSON *version = svdb__catalog_member(doc, "version"), *format = svdb__catalog_member(doc, "format"), *store = svdb__catalog_member(doc, "store");
    cJSON *cols = svdb__catalog_member(doc, "collections");
    if (version && bad(is_integer(version), err, "version", "an integer", version)) return SVDB_ECORRUPT;
    int v2 = version && !strcmp(version->valuestring, "2");
    if (version && !v2 && strcmp(version->valuestring, "1"))
        return snprintf(err, 512, "format version %.40s; this svdb reads versions 1 and 2", version->valuestring), SVDB_EVERSION;
    if (format && bad(cJSON_IsString(format) && !strcmp(format->valuestring, "pysvdb-chroma"), err, "format", "\"pysvdb-chroma\"", format))
        return SVDB_ECORRUPT;
    int store_ok = !store || cJSON_IsNull(store) || (cJSON_IsString(store) && svdb__catalog_is_uuid(store->valuestring));
    if (bad(store_ok, err, "store", "a UUID", store)) return SVDB_ECORRUPT;
    if (!cols) return snprintf(err, 512, "it has no \"collections\" list"), SVDB_ECORRUPT;
    if (bad(cJSON_IsArray(cols), err, "collections", "a list", cols)) return SVDB_ECORRUPT;
    if (v2) {
        cJSON *tenants = svdb__catalog_member(doc, "tenants"), *dbs = svdb__catalog_member(doc, "databases");
        if (!tenants || !dbs) return snprintf(err, 512, "it has no \"%s\" list", tenants ? "databases" : "tenants"), SVDB_ECORRUPT;
        SVDB_TRY(parse_tenants(c, tenants, err));
        SVDB_TRY(parse_dbs(c, dbs, err));
    } else {
        SVDB_TRY(svdb__catalog_add_tenant(c, DEFAULT_TENANT));
        SVDB_TRY(svdb__catalog_add_db(c, DEFAULT_DATABASE_ID, DEFAULT_DATABASE, DEFAULT_TENANT));
    }
    size_t i = 0;
    for (cJSON *j = cols->child; j; j = j->next, i++) SVDB_TRY(add_parsed(c, j, i, v2, err));
    if (cJSON_IsString(store)) memcpy(c->store, store->valuestring, UUID_LEN + 1);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- writing */

static cJSON *entry_json(const svdb_catalog *c, const entry *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const db_rec *d = &c->dbs[svdb__catalog_find_db_id(c, e->db)];
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "tenant", d->tenant);
    cJSON_AddStringToObject(o, "database", d->name);
    cJSON_AddItemToObject(o, "metadata", e->meta ? cJSON_Duplicate(e->meta, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "hnsw", cJSON_Duplicate(e->hnsw, 1));
    if (cJSON_GetArraySize(o) != 6) cJSON_Delete(o), o = NULL;
    return o;
}

static cJSON *db_json(const db_rec *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", d->id);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "tenant", d->tenant);
    if (cJSON_GetArraySize(o) != 3) cJSON_Delete(o), o = NULL;
    return o;
}

static cJSON *tenant_json(const char *name)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "name", name)) cJSON_Delete(o), o = NULL;
    return o;
}

/* Appends x to list; 0 when x is NULL (out of memory). */
static int append(cJSON *list, cJSON *x) { return x && cJSON_AddItemToArray(list, x); }

/* The catalog in format version 2; NULL on OOM. */
char *svdb__catalog_text(const svdb_catalog *c)
{
    cJSON *doc = cJSON_CreateObject();
    int ok = doc && cJSON_AddStringToObject(doc, "format", "pysvdb-chroma") && cJSON_AddNumberToObject(doc, "version", 2) &&
             cJSON_AddStringToObject(doc, "store", c->store);
    cJSON *tenants = ok ? cJSON_AddArrayToObject(doc, "tenants") : NULL;
    cJSON *dbs = tenants ? cJSON_AddArrayToObject(doc, "databases") : NULL;
    cJSON *cols = dbs ? cJSON_AddArrayToObject(doc, "collections") : NULL;
    ok = cols != NULL;
    for (size_t i = 0; ok && i < c->n_tenants; i++) ok = append(tenants, tenant_json(c->tenants[i]));
    for (size_t i = 0; ok && i < c->n_dbs; i++) ok = append(dbs, db_json(&c->dbs[i]));
    for (size_t i = 0; ok && i < c->n; i++) ok = append(cols, entry_json(c, &c->v[i]));
    char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    return text;
}

/* ---------------------------------------------------------------- the caller's JSON */

/* Parses caller JSON checked as the catalog checks its own; *out NULL for NULL text. */
int svdb__catalog_parse_arg(const char *text, const char *what, int is_meta, int status, cJSON **out)
{
    *out = NULL;
    if (!text) return SVDB_OK;
    const char *why = NULL;
    cJSON *j = svdb__catalog_parse_json(text, strlen(text), &why);
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

/* hnsw with the settings of `upd` replaced; the ones fixed at creation may not change. */
int svdb__catalog_merge_hnsw(const cJSON *hnsw, const cJSON *upd, cJSON **out)
{
    static const char *const fixed[] = {"space", "max_neighbors", "ef_construction"};
    cJSON *m = cJSON_Duplicate(hnsw, 1);
    SVDB_FAIL_IF(!m, SVDB_ENOMEM, "out of memory");
    for (const cJSON *u = upd->child; u; u = u->next) {
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
            cJSON *old = svdb__catalog_member(m, fixed[i]);
            if (!strcmp(u->string, fixed[i]) && (!old || !cJSON_Compare(old, u, 1))) {
                cJSON_Delete(m);
                return svdb__fail(SVDB_EINVAL, "the HNSW setting '%s' is fixed when the collection is created", fixed[i]);
            }
        }
        cJSON *dup = cJSON_Duplicate(u, 1);
        cJSON *old = svdb__catalog_member(m, u->string);
        if (dup && old) cJSON_ReplaceItemViaPointer(m, old, dup);
        else if (dup) cJSON_AddItemToObject(m, u->string, dup);
    }
    char err[512];
    if (svdb__catalog_check_hnsw(m, "hnsw", err)) return cJSON_Delete(m), svdb__fail(SVDB_EINVAL, "%s", err);
    *out = m;
    return SVDB_OK;
}
