/* Metadata validation. The text is kept as given, so get() returns exactly
 * what was stored; parsing happens only to validate (and later, to filter). */
#include "meta.h"

#include "alloc.h"
#include "error.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static int hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* cJSON is lenient where JSON is not: it takes any byte up to 0x20 as white
 * space and reads a \u escape with bad hex digits as U+0000. Filters scan the
 * stored text and must read it as cJSON did, so such text is refused here:
 * white space is space, tab, CR and LF only, strings hold no raw control
 * bytes, and escapes are the eight of RFC 8259 or \u with four hex digits. */
static const char *lexical_error(const char *p, const char *e)
{
    int in_string = 0;
    for (; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (!in_string) {
            if (c == '"') in_string = 1;
            else if (c < 0x20 && c != ' ' && c != '\t' && c != '\r' && c != '\n') return "a control character outside a string";
            continue;
        }
        if (c == '"') {
            in_string = 0;
        } else if (c < 0x20) {
            return "an unescaped control character in a string";
        } else if (c == '\\') {
            if (++p >= e) return "a truncated escape";
            if (*p == 'u') {
                if (e - p < 5 || !hex(p[1]) || !hex(p[2]) || !hex(p[3]) || !hex(p[4])) return "a \\u escape without four hex digits";
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return "an invalid escape";
            }
        }
    }
    return NULL;
}

/* Nesting depth of the text, brackets inside strings not counted; stops
 * counting once it passes `limit`. */
static int nesting(const char *p, const char *e, int limit)
{
    int depth = 0, max = 0, in_string = 0;
    for (; p < e && max <= limit; p++) {
        if (in_string) {
            if (*p == '\\') p++;
            else if (*p == '"') in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == '{' || *p == '[') {
            if (++depth > max) max = depth;
        } else if (*p == '}' || *p == ']') {
            depth--;
        }
    }
    return max;
}

int svdb__meta_check(const char *json, size_t len, size_t row)
{
    if (len > SVDB_MAX_METADATA_BYTES)
        return svdb__fail(SVDB_ETOOBIG, "metadata of row %zu is larger than %d bytes", row,
                          SVDB_MAX_METADATA_BYTES);
    const char *end = NULL;
    if (memchr(json, '\0', len)) return svdb__fail(SVDB_EMETA, "metadata of row %zu contains a NUL byte", row);
    if (nesting(json, json + len, CJSON_NESTING_LIMIT) > CJSON_NESTING_LIMIT)
        return svdb__fail(SVDB_EMETA, "metadata of row %zu is nested too deep (limit %d levels)", row,
                          CJSON_NESTING_LIMIT);
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc) {
        size_t at = end ? (size_t)(end - json) : 0;
        return svdb__fail(SVDB_EMETA, "metadata of row %zu is not valid JSON (error near byte %zu)", row, at);
    }
    int is_object = cJSON_IsObject(doc);
    cJSON_Delete(doc);
    const char *why = lexical_error(json, json + len);
    if (why) return svdb__fail(SVDB_EMETA, "metadata of row %zu is not valid JSON: %s", row, why);
    /* cJSON stops at the end of the value; anything but whitespace after it is an error. */
    while (end && (size_t)(end - json) < len && strchr(" \t\r\n", *end)) end++;
    if (end && (size_t)(end - json) < len)
        return svdb__fail(SVDB_EMETA, "metadata of row %zu has trailing characters after the JSON value", row);
    if (!is_object) return svdb__fail(SVDB_EMETA, "metadata of row %zu is JSON but not an object", row);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- the stricter check of new writes */

static int digit(const char *p, const char *e) { return p < e && *p >= '0' && *p <= '9'; }

/* cJSON reads a number with strtod, so it also takes "01", "1." or "-.5",
 * which RFC 8259 (and Python's json) refuse. Returns NULL or the reason. */
static const char *number_error(const char *p, const char *e)
{
    int in_string = 0;
    while (p < e) {
        if (in_string) {
            if (*p == '\\') p++;
            else if (*p == '"') in_string = 0;
            p++;
            continue;
        }
        if (*p == '"') {
            in_string = 1;
            p++;
            continue;
        }
        if (*p != '-' && !digit(p, e)) {
            p++;
            continue;
        }
        if (*p == '-') p++;
        if (!digit(p, e)) return "a malformed number";
        if (*p == '0') p++;
        else while (digit(p, e)) p++;
        if (p < e && *p == '.') {
            if (!digit(++p, e)) return "a malformed number";
            while (digit(p, e)) p++;
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-')) p++;
            if (!digit(p, e)) return "a malformed number";
            while (digit(p, e)) p++;
        }
        if (p < e && strchr("0123456789+-eE.", *p)) return "a malformed number";
    }
    return NULL;
}

static int hexv(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* Decodes the string literal at p (a quote; escapes already validated) into
 * out; returns the position after the closing quote. */
static const char *decode(const char *p, const char *e, char *out, size_t *n)
{
    size_t i = 0;
    for (p++; p < e && *p != '"';) {
        if (*p != '\\') {
            out[i++] = *p++;
            continue;
        }
        char c = p[1];
        if (c != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *at = strchr(from, c);
            out[i++] = at ? to[at - from] : c;
            p += 2;
            continue;
        }
        unsigned cp = (unsigned)(hexv(p[2]) << 12 | hexv(p[3]) << 8 | hexv(p[4]) << 4 | hexv(p[5]));
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            unsigned lo = (unsigned)(hexv(p[2]) << 12 | hexv(p[3]) << 8 | hexv(p[4]) << 4 | hexv(p[5]));
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        unsigned char *u = (unsigned char *)out + i;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp, i += 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), i += 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F)), i += 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F)), i += 4;
        }
    }
    *n = i;
    return p < e ? p + 1 : e;
}

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && strchr(" \t\r\n", *p) && *p) p++;
    return p;
}

/* Past the value at p (the text is valid JSON). */
static const char *skip(const char *p, const char *e)
{
    int depth = 0, in_string = 0;
    for (; p < e; p++) {
        if (in_string) {
            if (*p == '\\') p++;
            else if (*p == '"' && (in_string = 0, depth == 0)) return p + 1;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth <= 0) return depth < 0 ? p : p + 1;
        } else if (depth == 0 && (*p == ',' || strchr(" \t\r\n", *p))) {
            return p;
        }
    }
    return p;
}

typedef struct {
    const char *s;
    size_t n;
} key_span;

static int span_cmp(const void *a, const void *b)
{
    const key_span *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The first top-level key named twice (decoded bytes compared), or SVDB_OK. */
static int duplicate_key(const char *json, size_t len, size_t row)
{
    const char *p = skip_ws(json, json + len), *e = json + len;
    if (p >= e || *p != '{') return SVDB_OK;
    size_t cap = 16, n = 0;
    key_span *keys = svdb__malloc(cap * sizeof *keys);
    char *buf = svdb__malloc(len + 1);
    int rc = keys && buf ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory checking metadata of row %zu", row);
    size_t used = 0;
    p = skip_ws(p + 1, e);
    while (rc == SVDB_OK && p < e && *p == '"') {
        if (n == cap) {
            key_span *k = svdb__realloc(keys, 2 * cap * sizeof *keys);
            if (!k) {
                rc = svdb__fail(SVDB_ENOMEM, "out of memory checking metadata of row %zu", row);
                break;
            }
            keys = k, cap *= 2;
        }
        size_t m;
        p = decode(p, e, buf + used, &m);
        keys[n].s = buf + used, keys[n].n = m, n++;
        used += m;
        p = skip_ws(p, e);
        if (p < e && *p == ':') p = skip_ws(p + 1, e);
        p = skip_ws(skip(p, e), e);
        if (p < e && *p == ',') p = skip_ws(p + 1, e);
    }
    if (rc == SVDB_OK && n > 1) {
        qsort(keys, n, sizeof *keys, span_cmp);
        for (size_t i = 1; i < n; i++) {
            if (span_cmp(&keys[i - 1], &keys[i]) != 0) continue;
            rc = svdb__fail(SVDB_EMETA, "metadata of row %zu names the key \"%.*s\" twice (keys must be unique)", row,
                            (int)(keys[i].n > 100 ? 100 : keys[i].n), keys[i].s);
            break;
        }
    }
    svdb__free(keys);
    svdb__free(buf);
    return rc;
}

int svdb__meta_check_new(const char *json, size_t len, size_t row)
{
    SVDB_TRY(svdb__meta_check(json, len, row));
    const char *why = number_error(json, json + len);
    if (why) return svdb__fail(SVDB_EMETA, "metadata of row %zu is not valid JSON: %s", row, why);
    return duplicate_key(json, len, row);
}

/* ---------------------------------------------------------------- merging (svdb_update_batch) */

/* One top-level member of an object: its decoded key and the raw text of
 * its key and value, so a merge copies values byte for byte (a number is
 * never re-printed through a double). */
typedef struct {
    key_span key;
    const char *raw, *raw_end; /* "key": value */
    const char *val;           /* the value's first byte */
} member;

/* The members of a valid object (checked by svdb__meta_check_new); *keys
 * holds their decoded keys. */
static int members(const char *json, size_t len, member **out, size_t *n_out, char **keys)
{
    const char *e = json + len, *p = skip_ws(json, e);
    size_t cap = 8, n = 0, used = 0;
    member *m = svdb__malloc(cap * sizeof *m);
    char *buf = svdb__malloc(len + 1);
    if (!m || !buf) {
        svdb__free(m);
        svdb__free(buf);
        return svdb__fail(SVDB_ENOMEM, "out of memory merging metadata");
    }
    for (p = skip_ws(p + 1, e); p < e && *p == '"';) {
        if (n == cap) {
            member *g = svdb__realloc(m, 2 * cap * sizeof *m);
            if (!g) {
                svdb__free(m);
                svdb__free(buf);
                return svdb__fail(SVDB_ENOMEM, "out of memory merging metadata");
            }
            m = g, cap *= 2;
        }
        size_t kn;
        m[n].raw = p;
        p = decode(p, e, buf + used, &kn);
        m[n].key.s = buf + used, m[n].key.n = kn, used += kn;
        p = skip_ws(p, e);
        if (p < e && *p == ':') p = skip_ws(p + 1, e);
        m[n].val = p;
        p = skip(p, e);
        m[n++].raw_end = p;
        p = skip_ws(p, e);
        if (p < e && *p == ',') p = skip_ws(p + 1, e);
    }
    *out = m, *n_out = n, *keys = buf;
    return SVDB_OK;
}

static const member *find_member(const member *m, size_t n, const key_span *k)
{
    for (size_t i = 0; i < n; i++)
        if (span_cmp(&m[i].key, k) == 0) return &m[i];
    return NULL;
}

static int is_null(const member *m) { return m->raw_end - m->val == 4 && !memcmp(m->val, "null", 4); }

/* Appends "key": value (the key's raw text from `k`, the value from `v`). */
static char *put_member(char *o, const member *k, const member *v, int *first)
{
    if (!*first) *o++ = ',';
    *first = 0;
    const char *key_end = k->raw + 1;
    while (*key_end != '"') key_end += *key_end == '\\' ? 2 : 1;
    size_t kl = (size_t)(key_end + 1 - k->raw), vl = (size_t)(v->raw_end - v->val);
    memcpy(o, k->raw, kl), o += kl;
    *o++ = ':';
    memcpy(o, v->val, vl);
    return o + vl;
}

int svdb__meta_merge(const char *old, size_t old_len, const char *patch, size_t patch_len, size_t row, char **out,
                     size_t *out_len)
{
    *out = NULL, *out_len = 0;
    member *a = NULL, *b = NULL;
    char *ka = NULL, *kb = NULL;
    size_t na = 0, nb = 0;
    int rc = old ? members(old, old_len, &a, &na, &ka) : SVDB_OK;
    if (rc == SVDB_OK) rc = members(patch, patch_len, &b, &nb, &kb);
    char *o = rc == SVDB_OK ? svdb__malloc(old_len + patch_len + 3) : NULL;
    if (rc == SVDB_OK && !o) rc = svdb__fail(SVDB_ENOMEM, "out of memory merging metadata of row %zu", row);
    if (rc == SVDB_OK) {
        char *w = o;
        int first = 1;
        *w++ = '{';
        for (size_t i = 0; i < na; i++) { /* the row's keys, in order, each replaced or dropped by the patch */
            const member *p = find_member(b, nb, &a[i].key);
            if (!p) w = put_member(w, &a[i], &a[i], &first);
            else if (!is_null(p)) w = put_member(w, &a[i], p, &first);
        }
        for (size_t i = 0; i < nb; i++) /* then the new keys, in the patch's order */
            if (!is_null(&b[i]) && !find_member(a, na, &b[i].key)) w = put_member(w, &b[i], &b[i], &first);
        *w++ = '}';
        *w = '\0';
        if (first) { /* no key left: the row has no metadata */
            svdb__free(o);
        } else {
            *out = o, *out_len = (size_t)(w - o);
            rc = svdb__meta_check_new(o, *out_len, row); /* the size limit holds for the result too */
            if (rc != SVDB_OK) svdb__free(o), *out = NULL, *out_len = 0;
        }
    }
    svdb__free(a), svdb__free(b), svdb__free(ka), svdb__free(kb);
    return rc;
}
