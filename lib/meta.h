/* Metadata: JSON objects stored as the caller's text, validated with cJSON. */
#ifndef SVDB_META_H
#define SVDB_META_H

#include <stddef.h>

/* Checks that the `len` bytes at `json` are one JSON object within
 * SVDB_MAX_METADATA_BYTES and nested at most 1000 levels (cJSON's limit);
 * `row` names the batch row in the message. SVDB_EMETA, SVDB_ETOOBIG. This is
 * the check of stored text (log replay, snapshots): it must keep accepting
 * everything it ever accepted. */
int svdb__meta_check(const char *json, size_t len, size_t row);

/* The check of new writes: svdb__meta_check, and also refuses what Python's
 * json (and ChromaDB) would read differently: a top-level key named twice
 * (SVDB_EMETA naming the key; a filter could otherwise read another value
 * than the caller's json.loads) and numbers outside RFC 8259's grammar
 * ("01", "1.", "-.5"). */
int svdb__meta_check_new(const char *json, size_t len, size_t row);

/* ChromaDB's update of metadata: `patch` (checked by svdb__meta_check_new)
 * applied to `old` (NULL: none): its keys replace the row's keys of that
 * name, the row's other keys stay, and a key whose value is null is
 * removed. Values are copied as written. *out (freed by the caller) is NULL
 * when no key is left. */
int svdb__meta_merge(const char *old, size_t old_len, const char *patch, size_t patch_len, size_t row, char **out,
                     size_t *out_len);

#endif
