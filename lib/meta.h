/* Metadata: JSON objects stored as the caller's text, validated with cJSON. */
#ifndef SVDB_META_H
#define SVDB_META_H

#include <stddef.h>

/* Checks that the `len` bytes at `json` are one JSON object within
 * SVDB_MAX_METADATA_BYTES; `row` names the batch row in the message. */
int svdb__meta_check(const char *json, size_t len, size_t row);

#endif
