/* Compiles a where clause into a small tree and evaluates it by scanning the
 * row's JSON text for the top-level key. The text was validated at insert, so
 * the scanner can rely on well-formed JSON; it allocates nothing per row
 * unless a document holds escapes.
 *
 * The filter text is read by its own strict JSON parser (filter_json.c). */
#include "filter.h"
#include "filter_json.h"

#include "alloc.h"
#include "error.h"
#include "regex.h"
#include "svdb.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 64       /* nesting of $and / $or */
/* Time one query may spend in regular expression matching, summed over its
 * documents and threads; past it the query fails with SVDB_ETOOBIG. RE2 is
 * linear, but its constant grows with the pattern (a DFA whose states thrash
 * falls back to the NFA: text bytes x program size), so a big pattern over
 * many large documents would otherwise hold the read lock for minutes. */
#define REGEX_BUDGET_NS (10 * 1000000000LL)

typedef enum { V_STR, V_INT, V_FLT, V_BOOL } vtype;
typedef struct {
    vtype t;
    int64_t i; /* V_INT */
    double d;  /* V_FLT */
    int b;     /* V_BOOL */
    char *str; /* V_STR: decoded bytes, may hold NUL */
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
    svdb_regex *re;  /* $regex / $not_regex */
    int64_t spent_ns; /* the root's: matching time of the query so far (atomic) */
    int64_t *spent;   /* regex leaves: the root's spent_ns */
    int failed;       /* why a match returned -1: SVDB_ENOMEM or SVDB_ETOOBIG (atomic) */
};

void svdb__filter_free(svdb_filter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_kids; i++) svdb__filter_free(f->kids[i]);
    for (size_t i = 0; i < f->n_vals; i++) svdb__free(f->vals[i].str);
    svdb__free(f->kids);
    svdb__free(f->vals);
    svdb__free(f->key);
    svdb__regex_free(f->re);
    svdb__free(f);
}

/* ------------------------------------------------------------ numbers */

/* Reads the number literal at p (cJSON's character set, as the stored text
 * was validated by cJSON): an integer literal within int64 is V_INT, any
 * other literal the nearest double. */
static void read_number(const char *p, const char *e, value *v)
{
    const char *q = p;
    int is_float = 0;
    while (q < e && *q && strchr("0123456789+-eE.", *q)) {
        if (*q == '.' || *q == 'e' || *q == 'E') is_float = 1;
        q++;
    }
    char buf[64];
    char *tmp = NULL;
    size_t n = (size_t)(q - p);
    const char *lit = buf;
    if (n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
    } else if ((tmp = svdb__malloc(n + 1))) {
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        lit = tmp;
    } else { /* a literal of 64+ characters and no memory: the double strtod reads in place */
        lit = NULL;
    }
    if (!is_float && lit) {
        errno = 0;
        long long x = strtoll(lit, NULL, 10);
        if (errno != ERANGE) {
            v->t = V_INT;
            v->i = (int64_t)x;
            svdb__free(tmp);
            return;
        }
    }
    v->t = V_FLT;
    v->d = strtod(lit ? lit : p, NULL);
    svdb__free(tmp);
}

/* The sign of i - d, exactly (d is not NaN). */
static int cmp_int_dbl(int64_t i, double d)
{
    if (d >= 9223372036854775808.0) return -1;
    if (d < -9223372036854775808.0) return 1;
    double t = trunc(d); /* within int64 now */
    int64_t ti = (int64_t)t;
    if (i != ti) return i < ti ? -1 : 1;
    return d > t ? -1 : d < t ? 1 : 0;
}

/* The sign of a - b for two numbers (V_INT or V_FLT), compared mathematically. */
static int num_cmp(const value *a, const value *b)
{
    if (a->t == V_INT && b->t == V_INT) return a->i < b->i ? -1 : a->i > b->i;
    if (a->t == V_FLT && b->t == V_FLT) return a->d < b->d ? -1 : a->d > b->d;
    if (a->t == V_INT) return cmp_int_dbl(a->i, b->d);
    return -cmp_int_dbl(b->i, a->d);
}

static int is_num(vtype t) { return t == V_INT || t == V_FLT; }

/* ------------------------------------------------------------ compiling */

static int bad(const char *msg, const char *detail)
{
    return svdb__fail(SVDB_EINVAL, "invalid where filter: %s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

static int bad_doc(const char *msg, const char *detail)
{
    return svdb__fail(SVDB_EINVAL, "invalid where_document filter: %s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

static int to_value(const jnode *j, value *v, int numbers_only, const char *op)
{
    memset(v, 0, sizeof *v);
    if (j->t == J_NUM) {
        read_number(j->s, j->s + j->len, v);
        if (v->t == V_FLT && !isfinite(v->d)) return bad("number out of range for", op);
        return SVDB_OK;
    }
    if (numbers_only) return bad("operand must be a number for", op);
    if (j->t == J_BOOL) {
        v->t = V_BOOL;
        v->b = j->b;
        return SVDB_OK;
    }
    if (j->t == J_STR) {
        v->t = V_STR;
        v->len = j->len;
        v->str = svdb__malloc(j->len + 1);
        if (!v->str) return svdb__fail(SVDB_ENOMEM, "out of memory");
        memcpy(v->str, j->s, j->len + 1);
        return SVDB_OK;
    }
    return bad("operand must be a string, number or boolean for", op);
}

static const struct {
    const char *name;
    opcode op;
} ops[] = {{"$eq", OP_EQ},   {"$ne", OP_NE},   {"$gt", OP_GT},           {"$gte", OP_GTE},
           {"$lt", OP_LT},   {"$lte", OP_LTE}, {"$in", OP_IN},           {"$nin", OP_NIN},
           {"$contains", OP_CONTAINS}, {"$not_contains", OP_NCONTAINS}};

static int compile(const jnode *j, int depth, svdb_filter **out);
static int compile_doc(const jnode *j, int depth, svdb_filter **out);

static svdb_filter *new_node(opcode op)
{
    svdb_filter *f = svdb__calloc(1, sizeof *f);
    if (f) f->op = op;
    return f;
}

/* $and / $or over two or more clauses of `where` or, with `doc`, of `where_document`. */
static int compile_logic(const jnode *list, opcode op, const char *name, int depth, int doc, svdb_filter **out)
{
    int (*fail)(const char *, const char *) = doc ? bad_doc : bad;
    if (list->t != J_ARR) return fail("expected a list after", name);
    if (list->n < 2) return fail("needs at least two clauses:", name);
    svdb_filter *f = new_node(op);
    if (!f || !(f->kids = svdb__calloc(list->n, sizeof *f->kids))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < list->n; i++) {
        const jnode *c = &list->kids[i];
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

static int doc_leaf(opcode op, const char *text, size_t n, svdb_filter **out)
{
    svdb_filter *f = new_node(op);
    if (!f || !(f->vals = svdb__calloc(1, sizeof *f->vals)) || !(f->vals[0].str = svdb__malloc(n + 1))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    memcpy(f->vals[0].str, text, n + 1);
    f->n_vals = 1;
    f->vals[0].t = V_STR;
    f->vals[0].len = n;
    if (op == OP_DOC_REGEX || op == OP_DOC_NREGEX) {
        int rc = svdb__regex_compile(text, n, &f->re);
        if (rc != SVDB_OK) {
            svdb__filter_free(f);
            return rc;
        }
    }
    *out = f;
    return SVDB_OK;
}

static int compile_doc(const jnode *j, int depth, svdb_filter **out)
{
    if (depth > MAX_DEPTH) {
        return svdb__fail(SVDB_EINVAL, "invalid where_document filter: nested too deep (limit %d levels of $and/$or)",
                          MAX_DEPTH);
    }
    if (j->t != J_OBJ) return bad_doc("expected an object", NULL);
    if (j->n != 1) return bad_doc("every where_document object must have exactly one key", NULL);
    const jnode *item = &j->kids[0];
    const char *key = item->key;
    if (strcmp(key, "$and") == 0 && item->key_len == 4) return compile_logic(item, OP_AND, key, depth, 1, out);
    if (strcmp(key, "$or") == 0 && item->key_len == 3) return compile_logic(item, OP_OR, key, depth, 1, out);
    static const struct {
        const char *name;
        opcode op;
    } dops[] = {{"$contains", OP_DOC_CONTAINS}, {"$not_contains", OP_DOC_NCONTAINS},
                {"$regex", OP_DOC_REGEX},       {"$not_regex", OP_DOC_NREGEX}};
    for (size_t i = 0; i < sizeof dops / sizeof dops[0]; i++) {
        if (strcmp(key, dops[i].name) != 0 || item->key_len != strlen(dops[i].name)) continue;
        if (item->t != J_STR || item->len == 0) return bad_doc("expected a non-empty string after", key);
        return doc_leaf(dops[i].op, item->s, item->len, out);
    }
    return bad_doc("unknown operator", key);
}

static int compile_cmp(const char *key, size_t key_len, const jnode *spec, svdb_filter **out)
{
    opcode op = OP_EQ;
    const jnode *operand = spec;
    const char *opname = "$eq";
    if (spec->t == J_OBJ) {
        if (spec->n != 1) return bad("an operator object must have exactly one key, for field", key);
        operand = &spec->kids[0];
        opname = operand->key;
        size_t i = 0;
        while (i < sizeof ops / sizeof ops[0] &&
               (strcmp(ops[i].name, opname) != 0 || operand->key_len != strlen(ops[i].name)))
            i++;
        if (i == sizeof ops / sizeof ops[0]) return bad("unknown operator", opname);
        op = ops[i].op;
    }
    int is_doc = key_len == sizeof SVDB_DOCUMENT_KEY - 1 && memcmp(key, SVDB_DOCUMENT_KEY, key_len) == 0;
    if (is_doc && (op == OP_CONTAINS || op == OP_NCONTAINS)) {
        /* ChromaDB's spelling of a document search inside `where` */
        if (operand->t != J_STR || operand->len == 0) return bad("expected a non-empty string after", opname);
        return doc_leaf(op == OP_CONTAINS ? OP_DOC_CONTAINS : OP_DOC_NCONTAINS, operand->s, operand->len, out);
    }
    svdb_filter *f = new_node(op);
    if (!f || !(f->key = svdb__malloc(key_len + 1))) {
        svdb__filter_free(f);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    memcpy(f->key, key, key_len + 1);
    f->key_len = key_len;
    int rc = SVDB_OK;
    if (op == OP_IN || op == OP_NIN) {
        size_t n = operand->t == J_ARR ? operand->n : 0;
        if (n == 0) rc = bad("expected a non-empty list after", opname);
        if (rc == SVDB_OK && !(f->vals = svdb__calloc(n, sizeof *f->vals))) rc = svdb__fail(SVDB_ENOMEM, "out of memory");
        for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
            rc = to_value(&operand->kids[i], &f->vals[f->n_vals], 0, opname);
            if (rc != SVDB_OK) break;
            f->n_vals++;
            vtype a = f->vals[f->n_vals - 1].t, b = f->vals[0].t;
            if (a != b && !(is_num(a) && is_num(b))) rc = bad("all values in the list must have one type, after", opname);
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

static int compile(const jnode *j, int depth, svdb_filter **out)
{
    if (depth > MAX_DEPTH)
        return svdb__fail(SVDB_EINVAL, "invalid where filter: nested too deep (limit %d levels of $and/$or)", MAX_DEPTH);
    if (j->t != J_OBJ) return bad("expected an object", NULL);
    if (j->n != 1) return bad("every where object must have exactly one key", NULL);
    const jnode *item = &j->kids[0];
    const char *key = item->key;
    if (strcmp(key, "$and") == 0 && item->key_len == 4) return compile_logic(item, OP_AND, key, depth, 0, out);
    if (strcmp(key, "$or") == 0 && item->key_len == 3) return compile_logic(item, OP_OR, key, depth, 0, out);
    if (key[0] == '$') return bad("unexpected operator at field position", key);
    if (item->key_len == 0) return bad("empty field name", NULL);
    return compile_cmp(key, item->key_len, item, out);
}

static int parse_and_compile(const char *text, int doc, svdb_filter **out)
{
    jnode root;
    SVDB_TRY(svdb__fjson_parse(text, doc, &root));
    int rc = doc ? compile_doc(&root, 0, out) : compile(&root, 0, out);
    svdb__fjson_free(&root);
    return rc;
}

static void share_clock(svdb_filter *f, int64_t *spent)
{
    f->spent = spent;
    for (size_t i = 0; i < f->n_kids; i++) share_clock(f->kids[i], spent);
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
        if (*out) share_clock(*out, &(*out)->spent_ns);
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
    share_clock(both, &both->spent_ns);
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
    unsigned cp, lo;
    if (!svdb__fjson_hex4(p + 1, e, &cp)) return NULL;
    p += 5;
    if (cp >= 0xD800 && cp <= 0xDBFF && e - p >= 6 && p[0] == '\\' && p[1] == 'u' && svdb__fjson_hex4(p + 2, e, &lo) &&
        lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    *m = svdb__fjson_put_utf8(cp, (char *)out);
    return p;
}

/* Compares the JSON string literal at p (escapes decoded) with the n bytes at s. */
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

/* Finds the top-level key; returns the start of its value or NULL. A key
 * named twice (only rows written before duplicates were refused) counts by
 * its last value, as Python's json reads it. */
static const char *find_key(const char *p, const char *e, const char *key, size_t klen)
{
    const char *found = NULL;
    p = ws(p, e);
    if (p >= e || *p != '{') return NULL;
    p = ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *kend = skip_string(p, e);
        int match = (size_t)(kend - p) >= klen + 2 && string_equals(p, e, key, klen);
        p = ws(kend, e);
        if (p >= e || *p != ':') return found;
        p = ws(p + 1, e);
        if (match) found = p;
        p = ws(skip_value(p, e), e);
        if (p < e && *p == ',') p = ws(p + 1, e);
    }
    return found;
}

static int is_number(const char *p) { return *p == '-' || (*p >= '0' && *p <= '9'); }

/* Equality of the JSON value at p with an operand: strings by their decoded
 * bytes, booleans as their own type, numbers mathematically across integers
 * and floats (`strict`: an integer only equals integers and a float floats,
 * as ChromaDB's $contains compares array elements). */
static int value_equals(const char *p, const char *e, const value *v, int strict)
{
    switch (*p) {
    case '"': return v->t == V_STR && string_equals(p, e, v->str, v->len);
    case 't': return v->t == V_BOOL && v->b;
    case 'f': return v->t == V_BOOL && !v->b;
    default: break;
    }
    if (!is_number(p) || !is_num(v->t)) return 0;
    value r;
    read_number(p, e, &r);
    if (strict && r.t != v->t) return 0;
    return num_cmp(&r, v) == 0;
}

static int array_contains(const char *p, const char *e, const value *v)
{
    if (*p != '[') return 0;
    p = ws(p + 1, e);
    while (p < e && *p != ']') {
        if (value_equals(p, e, v, 1)) return 1;
        p = ws(skip_value(p, e), e);
        if (p < e && *p == ',') p = ws(p + 1, e);
    }
    return 0;
}

/* Decodes the JSON string literal at p into a heap copy (never longer than
 * the literal: every escape is at least as long as the UTF-8 it decodes to). */
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
        i += m;
    }
    out[i] = '\0';
    *n = i;
    return out;
}

static int fail_match(const svdb_filter *f, int status)
{
    int zero = 0;
    __atomic_compare_exchange_n((int *)&f->failed, &zero, status, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return -1;
}

static int doc_test(const svdb_filter *f, const char *doc, size_t n)
{
    if (!f->re) return memmem(doc, n, f->vals[0].str, f->vals[0].len) != NULL;
    if (__atomic_load_n(f->spent, __ATOMIC_RELAXED) > REGEX_BUDGET_NS) return fail_match(f, SVDB_ETOOBIG);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int hit = svdb__regex_search(f->re, doc, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    __atomic_add_fetch(f->spent, (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
                       __ATOMIC_RELAXED);
    return hit < 0 ? fail_match(f, SVDB_ENOMEM) : hit;
}

/* A document test; rows without a string document match only the negations.
 * -1 when the test could not run (see svdb__filter_error). */
static int match_doc(const svdb_filter *f, const char *meta, size_t len)
{
    int negate = f->op == OP_DOC_NCONTAINS || f->op == OP_DOC_NREGEX;
    const char *e = meta + len;
    const char *v = meta ? find_key(meta, e, SVDB_DOCUMENT_KEY, sizeof SVDB_DOCUMENT_KEY - 1) : NULL;
    if (!v || *v != '"') return negate;
    /* Most documents hold no escape: test the stored bytes in place and
     * allocate nothing per row. */
    const char *body = v + 1, *end = skip_string(v, e) - 1;
    int hit;
    if (!memchr(body, '\\', (size_t)(end - body))) {
        hit = doc_test(f, body, (size_t)(end - body));
    } else {
        size_t n;
        char *doc = decode_string(v, e, &n);
        if (!doc) return fail_match(f, SVDB_ENOMEM);
        hit = doc_test(f, doc, n);
        svdb__free(doc);
    }
    if (hit < 0) return -1;
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
    case OP_EQ: return v && value_equals(v, e, &f->vals[0], 0);
    case OP_NE: return !v || !value_equals(v, e, &f->vals[0], 0);
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE: {
        if (!v || !is_number(v)) return 0;
        value r;
        read_number(v, e, &r);
        int c = num_cmp(&r, &f->vals[0]);
        return f->op == OP_GT ? c > 0 : f->op == OP_GTE ? c >= 0 : f->op == OP_LT ? c < 0 : c <= 0;
    }
    case OP_IN:
    case OP_NIN: {
        int found = 0;
        for (size_t i = 0; v && !found && i < f->n_vals; i++) found = value_equals(v, e, &f->vals[i], 0);
        return f->op == OP_IN ? found : !found;
    }
    case OP_CONTAINS: return v && array_contains(v, e, &f->vals[0]);
    case OP_NCONTAINS: return !v || !array_contains(v, e, &f->vals[0]);
    default: return 0;
    }
}

int svdb__filter_match(const svdb_filter *f, const char *meta, size_t len) { return match(f, meta, len); }

void svdb__filter_spend(svdb_filter *f, int64_t ns) { __atomic_add_fetch(&f->spent_ns, ns, __ATOMIC_RELAXED); }

static int first_failure(const svdb_filter *f, const svdb_filter **leaf)
{
    int st = __atomic_load_n(&f->failed, __ATOMIC_RELAXED);
    if (st) {
        *leaf = f;
        return st;
    }
    for (size_t i = 0; i < f->n_kids; i++)
        if ((st = first_failure(f->kids[i], leaf))) return st;
    return 0;
}

int svdb__filter_error(const svdb_filter *f)
{
    const svdb_filter *leaf = NULL;
    int st = f ? first_failure(f, &leaf) : 0;
    if (st == SVDB_ETOOBIG) {
        size_t n = leaf->vals[0].len;
        return svdb__fail(SVDB_ETOOBIG,
                          "where_document regular expression \"%.*s%s\" is too costly for these documents: the "
                          "query spent more than its limit of %lld s matching it; simplify the pattern",
                          (int)(n > 200 ? 200 : n), leaf->vals[0].str, n > 200 ? "..." : "",
                          (long long)(REGEX_BUDGET_NS / 1000000000LL));
    }
    return svdb__fail(SVDB_ENOMEM, "out of memory testing a document");
}
