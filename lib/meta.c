/* Metadata validation. The text is kept as given, so get() returns exactly
 * what was stored; parsing happens only to validate (and later, to filter). */
#include "meta.h"

#include "error.h"

#include <cjson/cJSON.h>
#include <string.h>

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
    /* cJSON stops at the end of the value; anything but whitespace after it is an error. */
    while (end && (size_t)(end - json) < len && strchr(" \t\r\n", *end)) end++;
    if (end && (size_t)(end - json) < len)
        return svdb__fail(SVDB_EMETA, "metadata of row %zu has trailing characters after the JSON value", row);
    if (!is_object) return svdb__fail(SVDB_EMETA, "metadata of row %zu is JSON but not an object", row);
    return SVDB_OK;
}
