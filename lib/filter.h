/* Metadata filters: the `where` grammar of the Chroma-compatible API,
 * compiled once per query and evaluated against a row's stored JSON text.
 *   {"k": v}                       $eq shorthand (v: string, number, bool)
 *   {"k": {"$eq"|"$ne": v}}        equality; $ne also matches rows lacking k
 *   {"k": {"$gt"|"$gte"|"$lt"|"$lte": n}}   numeric order (n a number)
 *   {"k": {"$in"|"$nin": [v, ...]}}         non-empty list of one type (integers and floats are one);
 *                                           $nin also matches rows lacking k
 *   {"k": {"$contains"|"$not_contains": v}} membership in an array value, same type only (an integer
 *                                           operand finds integers, a float floats, as ChromaDB);
 *                                           $not_contains also matches rows lacking k
 *   {"$and"|"$or": [w1, w2, ...]}           two or more clauses, nestable (64 levels)
 *   {"#document": {"$contains"|"$not_contains": s}}  substring of the document (ChromaDB's spelling)
 * `where_document` tests the document, the string value of SVDB_DOCUMENT_KEY:
 *   {"$contains"|"$not_contains": s}, {"$regex"|"$not_regex": s} (RE2 syntax,
 *   close to Rust's regex; a search, not a full match; linear time, see
 *   regex.h; at most 10 s of matching per query), {"$and"|"$or": [...]};
 *   s is a non-empty string.
 *   Rows without a document match only the negations. Case-sensitive.
 * Every object has exactly one key; a key named twice is refused. Numbers
 * compare mathematically and exactly: an integer literal within int64 is kept
 * as that integer (never rounded to a double), any other literal is the
 * nearest double, and an integer is compared with a double without rounding.
 * Booleans are their own type; strings compare by their decoded bytes. A row
 * that names a key twice (written before such rows were refused) is read by
 * the key's last value, as Python's json reads it. */
#ifndef SVDB_FILTER_H
#define SVDB_FILTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct svdb_filter svdb_filter;

/* Parses and checks `where` and `where_document` (each may be NULL) into one
 * filter, their conjunction; *out is NULL when both are. SVDB_EINVAL with a
 * message naming the problem ("not valid JSON", "duplicate key", "nested too
 * deep (limit N ...)", a refused regular expression). */
int svdb__filter_compile(const char *where, const char *where_document, svdb_filter **out);
/* 1 when the row's metadata (NULL = none) satisfies the filter, 0 when not,
 * -1 when a document test could not run: then svdb__filter_error() says why.
 * Safe to call from several threads on one filter. */
int svdb__filter_match(const svdb_filter *f, const char *meta, size_t len);
/* After svdb__filter_match returned -1: records the reason as the calling
 * thread's message and returns its status, SVDB_ETOOBIG (the query spent
 * more than 10 s in regular expression matching, summed over its documents
 * and threads) or SVDB_ENOMEM. */
int svdb__filter_error(const svdb_filter *f);
/* Test hook: counts `ns` of regex matching time against the filter's limit. */
void svdb__filter_spend(svdb_filter *f, int64_t ns);
void svdb__filter_free(svdb_filter *f);

#endif
