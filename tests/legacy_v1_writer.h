/* The format-1 graph writer, for tests of the format-1 reader only: the
 * library reads format 1 (svdb__hnsw_decode) but writes format 2. */
#ifndef SVDB_TEST_LEGACY_V1_WRITER_H
#define SVDB_TEST_LEGACY_V1_WRITER_H

#include "hnsw.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes of the format-1 encoding of rows order[0..n) (slots, in row order). */
size_t legacy_v1_graph_size(const svdb_hnsw *h, const uint32_t *order, size_t n);
/* Writes it: links as row numbers through slot_to_row, stale links
 * dropped; ENOMEM aborts (tests only). */
void legacy_v1_graph_encode(const svdb_hnsw *h, const uint32_t *order, size_t n, const uint32_t *slot_to_row,
                            unsigned char *out);

#endif
