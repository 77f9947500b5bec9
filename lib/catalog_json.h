/* The catalog file's JSON format (lib/catalog_json.c): parsing and checking
 * the document and the caller's JSON, and writing the document. */
#ifndef SVDB_CATALOG_JSON_H
#define SVDB_CATALOG_JSON_H

#include "svdb.h"

#include <cjson/cJSON.h>
#include <stddef.h>

int svdb__catalog_utf8_valid(const unsigned char *s, size_t n);
int svdb__catalog_is_uuid(const char *s);
cJSON *svdb__catalog_parse_json(const char *text, size_t len, const char **why);
cJSON *svdb__catalog_member(const cJSON *obj, const char *key);
int svdb__catalog_check_hnsw(const cJSON *h, const char *where, char *err);

/* Reading and writing the whole document (an SVDB_ status; text: NULL on OOM). */
int svdb__catalog_parse_doc(svdb_catalog *c, cJSON *doc, char *err);
char *svdb__catalog_text(const svdb_catalog *c);

/* The caller's metadata or HNSW settings, and an update of the settings. */
int svdb__catalog_parse_arg(const char *text, const char *what, int is_meta, int status, cJSON **out);
int svdb__catalog_merge_hnsw(const cJSON *hnsw, const cJSON *upd, cJSON **out);

#endif
