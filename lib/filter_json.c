/* The filter's JSON reader (see filter_json.h). */
#include "filter_json.h"

#include "alloc.h"
#include "error.h"
#include "svdb.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *start, *p, *e;
    int doc; /* where_document: messages say so */
} jparser;

void svdb__fjson_free(jnode *j)
{
    for (size_t i = 0; i < j->n; i++) svdb__fjson_free(&j->kids[i]);
    svdb__free(j->kids);
    svdb__free(j->key);
    svdb__free(j->s);
}

static const char *what(int doc) { return doc ? "where_document" : "where"; }

static int jerr(jparser *ps, const char *msg)
{
    return svdb__fail(SVDB_EINVAL, "invalid %s filter: not valid JSON (%s at byte %zu)", what(ps->doc), msg,
                      (size_t)(ps->p - ps->start));
}

static void jws(jparser *ps)
{
    while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int svdb__fjson_hex4(const char *p, const char *e, unsigned *out)
{
    if (e - p < 4) return 0;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return 0;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 1;
}

size_t svdb__fjson_put_utf8(unsigned cp, char *o)
{
    unsigned char *u = (unsigned char *)o;
    if (cp < 0x80) return u[0] = (unsigned char)cp, 1;
    if (cp < 0x800) return u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at ps->p (an opening quote), strictly: no raw control bytes,
 * the escapes of RFC 8259, surrogates in pairs. */
static int jstring(jparser *ps, char **out, size_t *len)
{
    const char *p = ps->p + 1, *q = p;
    while (q < ps->e && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= ps->e) return jerr(ps, "an unterminated string");
    char *buf = svdb__malloc((size_t)(q - p) + 1); /* escapes never decode longer */
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory");
    size_t n = 0;
    while (p < q) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            ps->p = p;
            svdb__free(buf);
            return jerr(ps, "an unescaped control character in a string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            p++;
            continue;
        }
        char esc = p[1];
        const char *simple = strchr("\"\\/bfnrt", esc);
        if (esc && simple) {
            buf[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            p += 2;
            continue;
        }
        unsigned cp, lo;
        if (esc != 'u' || !svdb__fjson_hex4(p + 2, q, &cp)) {
            ps->p = p;
            svdb__free(buf);
            return jerr(ps, "an invalid escape");
        }
        p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            ps->p = p - 6;
            svdb__free(buf);
            return jerr(ps, "an unpaired surrogate");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || !svdb__fjson_hex4(p + 2, q, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                ps->p = p - 6;
                svdb__free(buf);
                return jerr(ps, "an unpaired surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        n += svdb__fjson_put_utf8(cp, buf + n);
    }
    buf[n] = '\0';
    ps->p = q + 1;
    *out = buf;
    *len = n;
    return SVDB_OK;
}

static int jnumber(jparser *ps, jnode *j)
{
    const char *p = ps->p, *s = p;
    if (p < ps->e && *p == '-') p++;
    if (p >= ps->e || *p < '0' || *p > '9') return jerr(ps, "an invalid value");
    if (*p == '0') p++;
    else while (p < ps->e && *p >= '0' && *p <= '9') p++;
    if (p < ps->e && *p == '.') {
        if (++p >= ps->e || *p < '0' || *p > '9') return ps->p = p, jerr(ps, "a malformed number");
        while (p < ps->e && *p >= '0' && *p <= '9') p++;
    }
    if (p < ps->e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->e && (*p == '+' || *p == '-')) p++;
        if (p >= ps->e || *p < '0' || *p > '9') return ps->p = p, jerr(ps, "a malformed number");
        while (p < ps->e && *p >= '0' && *p <= '9') p++;
    }
    j->t = J_NUM;
    j->len = (size_t)(p - s);
    if (!(j->s = svdb__strndup(s, j->len))) return svdb__fail(SVDB_ENOMEM, "out of memory");
    ps->p = p;
    return SVDB_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const jnode *x = *(const jnode *const *)a, *y = *(const jnode *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Refuses an object that names a key twice (JSON parsers disagree on which one counts). */
static int jduplicates(jparser *ps, const jnode *j)
{
    if (j->n < 2) return SVDB_OK;
    const jnode **v = svdb__malloc(j->n * sizeof *v);
    if (!v) return svdb__fail(SVDB_ENOMEM, "out of memory");
    for (size_t i = 0; i < j->n; i++) v[i] = &j->kids[i];
    qsort(v, j->n, sizeof *v, key_cmp);
    int rc = SVDB_OK;
    for (size_t i = 1; i < j->n && rc == SVDB_OK; i++)
        if (key_cmp(&v[i - 1], &v[i]) == 0)
            rc = svdb__fail(SVDB_EINVAL, "invalid %s filter: duplicate key \"%.*s\" in one object", what(ps->doc),
                            (int)(v[i]->key_len > 100 ? 100 : v[i]->key_len), v[i]->key);
    svdb__free(v);
    return rc;
}

static int jvalue(jparser *ps, jnode *j, int depth);

static jnode *jpush(jnode *j)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 4;
        jnode *k = svdb__realloc(j->kids, cap * sizeof *k);
        if (!k) return NULL;
        j->kids = k, j->cap = cap;
    }
    jnode *k = &j->kids[j->n++];
    memset(k, 0, sizeof *k);
    return k;
}

static int jcontainer(jparser *ps, jnode *j, int depth)
{
    int obj = *ps->p == '{';
    char close = obj ? '}' : ']';
    j->t = obj ? J_OBJ : J_ARR;
    if (depth >= JSON_MAX_DEPTH)
        return svdb__fail(SVDB_EINVAL, "invalid %s filter: nested too deep (limit %d levels of JSON)", what(ps->doc),
                          JSON_MAX_DEPTH);
    ps->p++;
    jws(ps);
    if (ps->p < ps->e && *ps->p == close) {
        ps->p++;
        return SVDB_OK;
    }
    for (;;) {
        jnode *k = jpush(j);
        if (!k) return svdb__fail(SVDB_ENOMEM, "out of memory");
        if (obj) {
            if (ps->p >= ps->e || *ps->p != '"') return jerr(ps, "expected a member name");
            SVDB_TRY(jstring(ps, &k->key, &k->key_len));
            jws(ps);
            if (ps->p >= ps->e || *ps->p != ':') return jerr(ps, "expected ':'");
            ps->p++;
            jws(ps);
        }
        SVDB_TRY(jvalue(ps, k, depth + 1));
        jws(ps);
        if (ps->p < ps->e && *ps->p == ',') {
            ps->p++;
            jws(ps);
            continue;
        }
        if (ps->p < ps->e && *ps->p == close) break;
        return jerr(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->p++;
    return obj ? jduplicates(ps, j) : SVDB_OK;
}

static int jvalue(jparser *ps, jnode *j, int depth)
{
    if (ps->p >= ps->e) return jerr(ps, "unexpected end");
    switch (*ps->p) {
    case '{':
    case '[': return jcontainer(ps, j, depth);
    case '"': j->t = J_STR; return jstring(ps, &j->s, &j->len);
    case 't':
    case 'f':
    case 'n': {
        const char *word = *ps->p == 't' ? "true" : *ps->p == 'f' ? "false" : "null";
        size_t n = strlen(word);
        if ((size_t)(ps->e - ps->p) < n || memcmp(ps->p, word, n) != 0) return jerr(ps, "an invalid value");
        j->t = *ps->p == 'n' ? J_NULL : J_BOOL;
        j->b = *ps->p == 't';
        ps->p += n;
        return SVDB_OK;
    }
    default: return jnumber(ps, j);
    }
}

int svdb__fjson_parse(const char *text, int doc, jnode *root)
{
    jparser ps = {text, text, text + strlen(text), doc};
    memset(root, 0, sizeof *root);
    jws(&ps);
    int rc = jvalue(&ps, root, 0);
    if (rc == SVDB_OK) {
        jws(&ps);
        if (ps.p != ps.e) rc = jerr(&ps, "trailing characters after the value");
    }
    if (rc != SVDB_OK) svdb__fjson_free(root);
    return rc;
}

