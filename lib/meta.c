/* Metadata validation. The text is kept as given, so get() returns exactly
 * what was stored; parsing happens only to validate (and later, to filter). */
#include "meta.h"

#include "error.h"

#include <cjson/cJSON.h>
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

int svdb__meta_check(const char *json, size_t len, size_t row)
{
    if (len > SVDB_MAX_METADATA_BYTES)
        return svdb__fail(SVDB_ETOOBIG, "metadata of row %zu is larger than %d bytes", row,
                          SVDB_MAX_METADATA_BYTES);
    const char *end = NULL;
    if (memchr(json, '\0', len)) return svdb__fail(SVDB_EMETA, "metadata of row %zu contains a NUL byte", row);
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
