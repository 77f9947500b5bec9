/* Metadata filters: the `where` grammar of the Chroma-compatible API,
 * compiled once per query and evaluated against a row's stored JSON text.
 *   {"k": v}                       $eq shorthand (v: string, number, bool)
 *   {"k": {"$eq"|"$ne": v}}        equality; $ne also matches rows lacking k
 *   {"k": {"$gt"|"$gte"|"$lt"|"$lte": n}}   numeric order (n a number)
 *   {"k": {"$in"|"$nin": [v, ...]}}         non-empty list of one type; $nin also matches rows lacking k
 *   {"k": {"$contains"|"$not_contains": v}} membership in an array value; $not_contains also matches rows lacking k
 *   {"$and"|"$or": [w1, w2, ...]}           two or more clauses, nestable
 *   {"#document": {"$contains"|"$not_contains": s}}  substring of the document (ChromaDB's spelling)
 * `where_document` tests the document, the string value of SVDB_DOCUMENT_KEY:
 *   {"$contains"|"$not_contains": s}, {"$regex"|"$not_regex": s} (POSIX extended,
 *   a search, not a full match), {"$and"|"$or": [...]}; s is a non-empty string.
 *   Rows without a document match only the negations. Case-sensitive.
 * Every object has exactly one key. Numbers compare mathematically across
 * integers and floats; booleans are their own type; strings compare by bytes. */
#ifndef SVDB_FILTER_H
#define SVDB_FILTER_H

#include <stddef.h>

typedef struct svdb_filter svdb_filter;

/* Parses and checks `where` and `where_document` (each may be NULL) into one
 * filter, their conjunction; *out is NULL when both are. SVDB_EINVAL with a
 * message naming the problem. */
int svdb__filter_compile(const char *where, const char *where_document, svdb_filter **out);
/* 1 when the row's metadata (NULL = none) satisfies the filter, 0 when not,
 * -1 when a document test ran out of memory. */
int svdb__filter_match(const svdb_filter *f, const char *meta, size_t len);
void svdb__filter_free(svdb_filter *f);

#endif
