/* The where / where_document compiler and matcher on arbitrary text. The
 * input is three NUL-separated parts: where, where_document, row metadata.
 * Filters must compile or fail with a message, never crash; metadata is
 * only matched once it passes the insert-time check, as in the library. A
 * where_document of the form {"$contains": s} is checked against an oracle
 * that decodes the document with cJSON. Regular expressions run through RE2
 * (lib/regex_re2.cc), so its compiler and matcher are fuzzed here too. */
#include "fuzz_common.h"
#include "filter.h"
#include "svdb.h"

#include <cjson/cJSON.h>
#include <stdint.h>

int svdb__meta_check(const char *json, size_t len, size_t row);

static const char *part(const char **p, const char *end)
{
    const char *s = *p;
    const char *nul = memchr(s, '\0', (size_t)(end - s));
    *p = nul ? nul + 1 : end;
    return s;
}

/* 1/0 for {"$contains": s} against the cJSON-decoded document; -1 otherwise. */
static int oracle(const char *where_document, const char *meta)
{
    cJSON *w = cJSON_Parse(where_document);
    int r = -1;
    const cJSON *op = w && cJSON_IsObject(w) && cJSON_GetArraySize(w) == 1 ? w->child : NULL;
    if (op && strcmp(op->string, "$contains") == 0 && cJSON_IsString(op) && op->valuestring[0]) {
        cJSON *m = cJSON_Parse(meta);
        const cJSON *d = m ? cJSON_GetObjectItemCaseSensitive(m, SVDB_DOCUMENT_KEY) : NULL;
        /* cJSON stops a string at an escaped NUL; skip those documents */
        if (d && cJSON_IsString(d) && !strstr(meta, "\\u0000"))
            r = strstr(d->valuestring, op->valuestring) != NULL;
        else if (!d || !cJSON_IsString(d))
            r = 0;
        cJSON_Delete(m);
    }
    cJSON_Delete(w);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *p = buf, *end = buf + size + 3;
    const char *where = part(&p, end);
    const char *where_document = part(&p, end);
    const char *meta = part(&p, end);
    svdb_filter *f = NULL;
    int rc = svdb__filter_compile(*where ? where : NULL, *where_document ? where_document : NULL, &f);
    if (rc != SVDB_OK && (f || !svdb_errmsg()[0])) abort();
    size_t mlen = strlen(meta);
    if (rc == SVDB_OK && f && svdb__meta_check(meta, mlen, 0) == SVDB_OK) {
        int m = svdb__filter_match(f, meta, mlen);
        if (m < -1 || m > 1) abort();
        if (m < 0) { /* only a document test that ran out of memory or time */
            int st = svdb__filter_error(f);
            if (st != SVDB_ENOMEM && st != SVDB_ETOOBIG) abort();
        } else if (svdb__filter_match(f, meta, mlen) != m) {
            abort(); /* deterministic */
        }
        if (!*where) {
            int want = oracle(where_document, meta);
            if (m >= 0 && want >= 0 && want != m) abort();
        }
    }
    svdb__filter_free(f);
    free(buf);
    return 0;
}
