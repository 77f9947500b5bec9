/* Compiles a where clause into a small tree and evaluates it by scanning the
 * row's JSON text for the top-level key. The text was validated at insert, so
 * the scanner can rely on well-formed JSON; it allocates nothing per row. */
#include "filter.h"

#include "alloc.h"
#include "error.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef enum { V_STR, V_NUM, V_BOOL } vtype;
typedef struct {
    vtype t;
    double num;
    int b;
    char *str;
    size_t len;
} value;

typedef enum {
    OP_AND, OP_OR, OP_EQ, OP_NE, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_IN, OP_NIN, OP_CONTAINS, OP_NCONTAINS,
    /* where_document: tests on the string value of SVDB_DOCUMENT_KEY */
    OP_DOC_CONTAINS, OP_DOC_NCONTAINS, OP_DOC_REGEX, OP_DOC_NREGEX
} opcode;

struct svdb_filter {
    opcode op;
    char *key; /* comparisons */
    size_t key_len;
    value *vals; /* 1 operand, or the $in/$nin list */
    size_t n_vals;
    svdb_filter **kids; /* $and / $or */
    size_t n_kids;
    regex_t *re; /* $regex / $not_regex */
};

void svdb__filter_free(svdb_filter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_kids; i++) svdb__filter_free(f->kids[i]);
    for (size_t i = 0; i < f->n_vals; i++) svdb__free(f->vals[i].str);
    svdb__free(f->kids);
    svdb__free(f->vals);
    svdb__free(f->key);
    if (f->re) regfree(f->re);
    svdb__free(f->re);
    svdb__free(f);
}

/* ------------------------------------------------------------ compiling */

static int bad(const char *msg, const char *detail)
{
    return svdb__fail(SVDB_EINVAL, "invalid where filter: %s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

static int to_value(const cJSON *j, value *v, int numbers_only, const char *op)
{
    memset(v, 0, sizeof *v);
    if (cJSON_IsNumber(j)) {
        v->t = V_NUM;
        v->num = j->valuedouble;
        return SVDB_OK;
    }
    if (numbers_only) return bad("operand must be a number for", op);
    if (cJSON_IsBool(j)) {
        v->t = V_BOOL;
        v->b = cJSON_IsTrue(j);
        return SVDB_OK;
    }
    if (cJSON_IsString(j)) {
        v->t = V_STR;
        v->len = strlen(j->valuestring);
        v->str = svdb__strndup(j->valuestring, v->len);
        return v->str ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    return bad("operand must be a string, number or boolean for", op);
}

static const struct {
    const char *name;
    opcode op;
} ops[] = {{"$eq", OP_EQ},   {"$ne", OP_NE},   {"$gt", OP_GT},           {"$gte", OP_GTE},
           {"$lt", OP_LT},   {"$lte", OP_LTE}, {"$in", OP_IN},           {"$nin", OP_NIN},
           {"$contains", OP_CONTAINS}, {"$not_contains", OP_NCONTAINS}};

static int compile(const cJSON *j, int depth, svdb_filter **out);

static svdb_filter *new_node(opcode op)
{
    svdb_filter *f = svdb__calloc(1, sizeof *f);
    if (f) f->op = op;
    return f;
}

static int compile_doc(const cJSON *j, int depth, svdb_filter **out);
static int bad_doc(const char *msg, const char *detail);

/* $and / $or over two or more clauses of `where` or, with `doc`, of `where_document`. */
static int compile_logic(const cJSON *list, opcode op, const char *name, int depth, int doc, svdb_filter **out)
{
    int (*fail)(const char *, const char *) = doc ? bad_doc : bad;
    if (!cJSON_IsArray(list)) return fail("expected a list after", name);
    int n = cJSON_GetArraySize(list);
    if (n < 2) return fail("needs at least two clauses:", name);
    svdb_filter *f = new_node(op);
    if (!f || !(f->kids = svdb__calloc((size_t)n, sizeof *f->kids))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        int rc = doc ? compile_doc(c, depth + 1, &f->kids[f->n_kids]) : compile(c, depth + 1, &f->kids[f->n_kids]);
        if (rc != SVDB_OK) {
            svdb__filter_free(f);
            return rc;
        }
        f->n_kids++;
    }
    *out = f;
    return SVDB_OK;
}

/* glibc's regcomp expands counted and nested repetitions, so a short
 * pattern such as "a++++++++" or "((a{99}){99}){99}" can take minutes and
 * gigabytes. Estimate the expanded size and refuse what would blow up; also
 * refuse what ChromaDB's Rust regex refuses too and POSIX leaves undefined:
 * a repetition of a repetition, and back-references (which would make
 * matching exponential). Returns NULL or the reason. */
#define REGEX_MAX_COST 20000.0
static const char *regex_hazard(const char *p)
{
    double stack[MAX_DEPTH + 1] = {0}; /* expanded size of each open group */
    double last = 0;                   /* size of the atom or group just closed */
    int depth = 0, after_quant = 0;
    if (strlen(p) > 4096) return "longer than 4096 bytes";
    for (; *p; p++) {
        double times = 0;
        if (*p == '*' || *p == '+' || *p == '?') {
            times = 2;
        } else if (*p == '{' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            double lo = strtod(p + 1, &end), hi = lo;
            if (*end == ',') hi = end[1] == '}' ? lo + 1 : strtod(end + 1, &end);
            if (hi > 1000) return "a repetition count over 1000";
            times = hi > 1 ? hi : 1;
            while (*p && *p != '}') p++;
            if (!*p) break;
        }
        if (times > 0) {
            if (after_quant) return "a repetition of a repetition";
            stack[depth] += last * (times - 1);
            after_quant = 1;
            last = 0;
            continue;
        }
        after_quant = 0;
        if (*p == '(') {
            if (depth == MAX_DEPTH) return "groups nested too deeply";
            stack[++depth] = 0;
            last = 0;
        } else if (*p == ')' && depth > 0) {
            last = stack[depth--];
            stack[depth] += last;
        } else if (*p == '[') { /* a bracket expression is one atom */
            const char *q = p + 1;
            if (*q == '^') q++;
            if (*q == ']') q++;
            while (*q && *q != ']') q++;
            p = *q ? q : q - 1;
            last = 1;
            stack[depth] += 1;
        } else if (*p == '\\' && p[1]) {
            if (p[1] >= '1' && p[1] <= '9') return "a back-reference";
            p++;
            last = 1;
            stack[depth] += 1;
        } else {
            last = 1;
            stack[depth] += 1;
        }
        if (stack[depth] > REGEX_MAX_COST) return "too large once its repetitions are expanded";
    }
    while (depth > 0) stack[depth - 1] += stack[depth], depth--;
    return stack[0] > REGEX_MAX_COST ? "too large once its repetitions are expanded" : NULL;
}

static int doc_leaf(opcode op, const char *text, svdb_filter **out)
{
    svdb_filter *f = new_node(op);
    size_t n = strlen(text);
    if (!f || !(f->vals = svdb__calloc(1, sizeof *f->vals)) || !(f->vals[0].str = svdb__strndup(text, n))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    f->n_vals = 1;
    f->vals[0].t = V_STR;
    f->vals[0].len = n;
    if (op == OP_DOC_REGEX || op == OP_DOC_NREGEX) {
        const char *hazard = regex_hazard(text);
        if (hazard) {
            svdb__filter_free(f);
            return svdb__fail(SVDB_EINVAL, "invalid where_document filter: regular expression refused: %s", hazard);
        }
        if (!(f->re = svdb__calloc(1, sizeof *f->re))) {
            svdb__filter_free(f);
            return svdb__fail(SVDB_ENOMEM, "out of memory");
        }
        int rc = regcomp(f->re, text, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, f->re, why, sizeof why);
            svdb__free(f->re);
            f->re = NULL;
            svdb__filter_free(f);
            return svdb__fail(SVDB_EINVAL, "invalid where_document filter: bad regular expression \"%s\": %s", text, why);
        }
    }
    *out = f;
    return SVDB_OK;
}

static int bad_doc(const char *msg, const char *detail)
{
    return svdb__fail(SVDB_EINVAL, "invalid where_document filter: %s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

static int compile_doc(const cJSON *j, int depth, svdb_filter **out)
{
    if (depth > MAX_DEPTH) return bad_doc("nested too deeply", NULL);
    if (!cJSON_IsObject(j)) return bad_doc("expected an object", NULL);
    if (cJSON_GetArraySize(j) != 1) return bad_doc("every where_document object must have exactly one key", NULL);
    const cJSON *item = j->child;
    const char *key = item->string;
    if (strcmp(key, "$and") == 0) return compile_logic(item, OP_AND, key, depth, 1, out);
    if (strcmp(key, "$or") == 0) return compile_logic(item, OP_OR, key, depth, 1, out);
    static const struct {
        const char *name;
        opcode op;
    } dops[] = {{"$contains", OP_DOC_CONTAINS}, {"$not_contains", OP_DOC_NCONTAINS},
                {"$regex", OP_DOC_REGEX},       {"$not_regex", OP_DOC_NREGEX}};
    for (size_t i = 0; i < sizeof dops / sizeof dops[0]; i++) {
        if (strcmp(key, dops[i].name) != 0) continue;
        if (!cJSON_IsString(item) || !item->valuestring[0]) return bad_doc("expected a non-empty string after", key);
        return doc_leaf(dops[i].op, item->valuestring, out);
    }
    return bad_doc("unknown operator", key);
}

static int compile_cmp(const char *key, const cJSON *spec, svdb_filter **out)
{
    opcode op = OP_EQ;
    const cJSON *operand = spec;
    const char *opname = "$eq";
    if (cJSON_IsObject(spec)) {
        if (cJSON_GetArraySize(spec) != 1) return bad("an operator object must have exactly one key, for field", key);
        operand = spec->child;
        opname = operand->string;
        size_t i = 0;
        while (i < sizeof ops / sizeof ops[0] && strcmp(ops[i].name, opname) != 0) i++;
        if (i == sizeof ops / sizeof ops[0]) return bad("unknown operator", opname);
        op = ops[i].op;
    }
    int is_doc = strcmp(key, SVDB_DOCUMENT_KEY) == 0;
    if (is_doc && (op == OP_CONTAINS || op == OP_NCONTAINS)) {
        /* ChromaDB's spelling of a document search inside `where` */
        if (!cJSON_IsString(operand) || !operand->valuestring[0])
            return bad("expected a non-empty string after", opname);
        return doc_leaf(op == OP_CONTAINS ? OP_DOC_CONTAINS : OP_DOC_NCONTAINS, operand->valuestring, out);
    }
    svdb_filter *f = new_node(op);
    if (!f || !(f->key = svdb__strndup(key, strlen(key)))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    f->key_len = strlen(key);
    int rc = SVDB_OK;
    if (op == OP_IN || op == OP_NIN) {
        int n = cJSON_IsArray(operand) ? cJSON_GetArraySize(operand) : 0;
        if (n == 0) rc = bad("expected a non-empty list after", opname);
        if (rc == SVDB_OK && !(f->vals = svdb__calloc((size_t)n, sizeof *f->vals)))
            rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        const cJSON *c;
        if (rc == SVDB_OK)
            cJSON_ArrayForEach(c, operand)
            {
                rc = to_value(c, &f->vals[f->n_vals], 0, opname);
                if (rc != SVDB_OK) break;
                f->n_vals++;
                if (f->vals[f->n_vals - 1].t != f->vals[0].t) {
                    rc = bad("all values in the list must have one type, after", opname);
                    break;
                }
            }
    } else {
        int numeric = op == OP_GT || op == OP_GTE || op == OP_LT || op == OP_LTE;
        if (!(f->vals = svdb__calloc(1, sizeof *f->vals))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        if (rc == SVDB_OK) rc = to_value(operand, &f->vals[0], numeric, opname);
        if (rc == SVDB_OK) f->n_vals = 1;
    }
    if (rc != SVDB_OK) {
        svdb__filter_free(f);
        return rc;
    }
    *out = f;
    return SVDB_OK;
}

static int compile(const cJSON *j, int depth, svdb_filter **out)
{
    if (depth > MAX_DEPTH) return bad("nested too deeply", NULL);
    if (!cJSON_IsObject(j)) return bad("expected an object", NULL);
    if (cJSON_GetArraySize(j) != 1) return bad("every where object must have exactly one key", NULL);
    const cJSON *item = j->child;
    const char *key = item->string;
    if (strcmp(key, "$and") == 0) return compile_logic(item, OP_AND, key, depth, 0, out);
    if (strcmp(key, "$or") == 0) return compile_logic(item, OP_OR, key, depth, 0, out);
    if (key[0] == '$') return bad("unexpected operator at field position", key);
    if (key[0] == '\0') return bad("empty field name", NULL);
    return compile_cmp(key, item, out);
}

static int parse_and_compile(const char *text, int doc, svdb_filter **out)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) return doc ? bad_doc("not valid JSON", NULL) : bad("not valid JSON", NULL);
    int rc = doc ? compile_doc(j, 0, out) : compile(j, 0, out);
    cJSON_Delete(j);
    return rc;
}

int svdb__filter_compile(const char *where, const char *where_document, svdb_filter **out)
{
    *out = NULL;
    svdb_filter *w = NULL, *d = NULL;
    if (where) SVDB_TRY(parse_and_compile(where, 0, &w));
    if (where_document) {
        int rc = parse_and_compile(where_document, 1, &d);
        if (rc != SVDB_OK) {
            svdb__filter_free(w);
            return rc;
        }
    }
    if (!w || !d) {
        *out = w ? w : d;
        return SVDB_OK;
    }
    svdb_filter *both = new_node(OP_AND);
    if (!both || !(both->kids = svdb__calloc(2, sizeof *both->kids))) {
        svdb__free(both);
        svdb__filter_free(w);
        svdb__filter_free(d);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    both->kids[0] = w, both->kids[1] = d, both->n_kids = 2;
    *out = both;
    return SVDB_OK;
}

/* ------------------------------------------------------------ scanning row JSON */

/* cJSON, which validated the text at insert, takes every byte up to 0x20 as
 * white space; the scanner must agree or it would miss keys. */
static int is_ws(char c) { return (unsigned char)c <= 0x20; }

static const char *ws(const char *p, const char *e)
{
    while (p < e && is_ws(*p)) p++;
    return p;
}

/* p at an opening quote; returns the position after the closing quote. */
static const char *skip_string(const char *p, const char *e)
{
    for (p++; p < e && *p != '"'; p++)
        if (*p == '\\') p++;
    return p < e ? p + 1 : e;
}

static const char *skip_value(const char *p, const char *e)
{
    if (p >= e) return e;
    if (*p == '"') return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; p < e; p++) {
            if (*p == '"') {
                p = skip_string(p, e) - 1;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
        }
        return e;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && !is_ws(*p)) p++;
    return p;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes one character of a JSON string literal at p (inside the quotes)
 * into out; returns the position after it, or NULL on a malformed escape. */
static const char *next_char(const char *p, const char *e, unsigned char out[4], size_t *m)
{
    *m = 1;
    if (*p != '\\') {
        out[0] = (unsigned char)*p;
        return p + 1;
    }
    if (++p >= e) return NULL;
    switch (*p) {
    case 'n': out[0] = '\n'; return p + 1;
    case 't': out[0] = '\t'; return p + 1;
    case 'r': out[0] = '\r'; return p + 1;
    case 'b': out[0] = '\b'; return p + 1;
    case 'f': out[0] = '\f'; return p + 1;
    case 'u': break;
    default: out[0] = (unsigned char)*p; return p + 1; /* \" \\ \/ */
    }
    if (e - p < 5) return NULL;
    unsigned cp = 0;
    for (int k = 1; k <= 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return NULL;
        cp = cp << 4 | (unsigned)h;
    }
    p += 5;
    if (cp >= 0xD800 && cp <= 0xDBFF && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        unsigned lo = 0;
        int k = 2;
        for (; k <= 5 && hexval(p[k]) >= 0; k++) lo = lo << 4 | (unsigned)hexval(p[k]);
        if (k == 6 && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6), out[1] = (unsigned char)(0x80 | (cp & 0x3F)), *m = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12), out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F)), *m = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | cp >> 18), out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *m = 4;
    }
    return p;
}

/* Compares the JSON string literal at p (escapes decoded) with s. */
static int string_equals(const char *p, const char *e, const char *s, size_t n)
{
    size_t i = 0;
    for (p++; p && p < e && *p != '"';) {
        unsigned char out[4];
        size_t m;
        p = next_char(p, e, out, &m);
        if (!p || i + m > n || memcmp(s + i, out, m) != 0) return 0;
        i += m;
    }
    return p && i == n;
}

/* Finds the top-level key; returns the start of its value or NULL. */
static const char *find_key(const char *p, const char *e, const char *key, size_t klen)
{
    p = ws(p, e);
    if (p >= e || *p != '{') return NULL;
    p = ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *kend = skip_string(p, e);
        int match = string_equals(p, e, key, klen);
        p = ws(kend, e);
        if (p >= e || *p != ':') return NULL;
        p = ws(p + 1, e);
        if (match) return p;
        p = ws(skip_value(p, e), e);
        if (p < e && *p == ',') p = ws(p + 1, e);
    }
    return NULL;
}

/* Equality of a JSON scalar at p with an operand; -1 when p is no scalar of a comparable kind. */
static int scalar_equals(const char *p, const char *e, const value *v)
{
    switch (*p) {
    case '"': return v->t == V_STR && string_equals(p, e, v->str, v->len);
    case 't': return v->t == V_BOOL && v->b;
    case 'f': return v->t == V_BOOL && !v->b;
    case 'n': case '{': case '[': return 0;
    default: return v->t == V_NUM && strtod(p, NULL) == v->num;
    }
}

static int is_number(const char *p) { return *p == '-' || (*p >= '0' && *p <= '9'); }

static int array_contains(const char *p, const char *e, const value *v)
{
    if (*p != '[') return 0;
    p = ws(p + 1, e);
    while (p < e && *p != ']') {
        if (scalar_equals(p, e, v) == 1) return 1;
        p = ws(skip_value(p, e), e);
        if (p < e && *p == ',') p = ws(p + 1, e);
    }
    return 0;
}

/* Decodes the JSON string literal at p into a NUL-terminated heap copy
 * (never longer than the literal: every escape is at least as long as the
 * UTF-8 it decodes to). */
static char *decode_string(const char *p, const char *e, size_t *n)
{
    const char *end = skip_string(p, e);
    char *out = svdb__malloc((size_t)(end - p) + 1);
    if (!out) return NULL;
    size_t i = 0;
    for (p++; p && p < end - 1;) {
        size_t m;
        p = next_char(p, end - 1, (unsigned char *)out + i, &m);
        if (!p) break;
        if (m == 1 && out[i] == '\0') { /* \u0000 would end the C string: U+FFFD instead */
            memcpy(out + i, "\xEF\xBF\xBD", 3);
            m = 3;
        }
        i += m;
    }
    out[i] = '\0';
    *n = i;
    return out;
}

/* A document test; rows without a string document match only the negations.
 * -1 when the decoded copy cannot be allocated. */
static int match_doc(const svdb_filter *f, const char *meta, size_t len)
{
    int negate = f->op == OP_DOC_NCONTAINS || f->op == OP_DOC_NREGEX;
    const char *e = meta + len;
    const char *v = meta ? find_key(meta, e, SVDB_DOCUMENT_KEY, sizeof SVDB_DOCUMENT_KEY - 1) : NULL;
    if (!v || *v != '"') return negate;
    /* Most documents hold no escape: test the stored bytes in place (glibc's
     * REG_STARTEND bounds the regex search) and allocate nothing per row. */
    const char *body = v + 1, *end = skip_string(v, e) - 1;
    int hit;
    if (!memchr(body, '\\', (size_t)(end - body))) {
        regmatch_t span = {0, (regoff_t)(end - body)};
        if (f->re)
            hit = regexec(f->re, body, 1, &span, REG_STARTEND) == 0;
        else
            hit = memmem(body, (size_t)(end - body), f->vals[0].str, f->vals[0].len) != NULL;
        return negate ? !hit : hit;
    }
    size_t n;
    char *doc = decode_string(v, e, &n);
    if (!doc) return -1;
    if (f->re)
        hit = regexec(f->re, doc, 0, NULL, 0) == 0;
    else
        hit = memmem(doc, n, f->vals[0].str, f->vals[0].len) != NULL;
    svdb__free(doc);
    return negate ? !hit : hit;
}

static int match(const svdb_filter *f, const char *meta, size_t len)
{
    switch (f->op) {
    case OP_AND:
        for (size_t i = 0; i < f->n_kids; i++) {
            int m = match(f->kids[i], meta, len);
            if (m <= 0) return m;
        }
        return 1;
    case OP_OR:
        for (size_t i = 0; i < f->n_kids; i++) {
            int m = match(f->kids[i], meta, len);
            if (m != 0) return m;
        }
        return 0;
    case OP_DOC_CONTAINS:
    case OP_DOC_NCONTAINS:
    case OP_DOC_REGEX:
    case OP_DOC_NREGEX: return match_doc(f, meta, len);
    default: break;
    }
    const char *e = meta + len;
    const char *v = meta ? find_key(meta, e, f->key, f->key_len) : NULL;
    switch (f->op) {
    case OP_EQ: return v && scalar_equals(v, e, &f->vals[0]) == 1;
    case OP_NE: return !v || scalar_equals(v, e, &f->vals[0]) != 1;
    case OP_GT: return v && is_number(v) && strtod(v, NULL) > f->vals[0].num;
    case OP_GTE: return v && is_number(v) && strtod(v, NULL) >= f->vals[0].num;
    case OP_LT: return v && is_number(v) && strtod(v, NULL) < f->vals[0].num;
    case OP_LTE: return v && is_number(v) && strtod(v, NULL) <= f->vals[0].num;
    case OP_IN:
    case OP_NIN: {
        int found = 0;
        for (size_t i = 0; v && !found && i < f->n_vals; i++) found = scalar_equals(v, e, &f->vals[i]) == 1;
        return f->op == OP_IN ? found : !found;
    }
    case OP_CONTAINS: return v && array_contains(v, e, &f->vals[0]);
    case OP_NCONTAINS: return !v || !array_contains(v, e, &f->vals[0]);
    default: return 0;
    }
}

int svdb__filter_match(const svdb_filter *f, const char *meta, size_t len) { return match(f, meta, len); }
