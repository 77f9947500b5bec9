/* Regular expressions for where_document: a C interface to RE2 (lib/regex_re2.cc).
 *
 * RE2 never backtracks: a match costs O(text length x program size), and
 * usually one DFA step per byte. Its syntax is close to that of the Rust
 * `regex` crate ChromaDB uses. A compiled pattern and its DFA cache use at
 * most SVDB_REGEX_MAX_MEM bytes. No C++ exception leaves these functions, and
 * no C++ symbol leaves the library. */
#ifndef SVDB_REGEX_H
#define SVDB_REGEX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SVDB_REGEX_MAX_MEM (8 << 20) /* bytes for one compiled pattern and its DFA cache */

typedef struct svdb_regex svdb_regex;

/* Compiles the `len` bytes at `pattern` (UTF-8, Rust/RE2 syntax) for an
 * unanchored search. SVDB_EINVAL with a message naming the pattern and the
 * reason when RE2 refuses it or it is not valid in ChromaDB's syntax either
 * (a '{' that does not open a counted repetition); SVDB_ENOMEM. */
int svdb__regex_compile(const char *pattern, size_t len, svdb_regex **out);

/* 1 when the pattern matches somewhere in the `len` bytes at `text` (Rust's
 * `is_match`), 0 when not, -1 when RE2 ran out of memory. Thread-safe. */
int svdb__regex_search(const svdb_regex *re, const char *text, size_t len);

/* RE2's instruction count for the pattern (the NFA's cost per text byte). */
size_t svdb__regex_cost(const svdb_regex *re);

void svdb__regex_free(svdb_regex *re);

#ifdef __cplusplus
}
#endif

#endif
