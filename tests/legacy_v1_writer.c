/* Format 1 of the graph, built from the format-2 pieces the library writes:
 * the same entry, top level and levels, and the same links (stale ones
 * dropped) in the same order; only the layout differs. Format 1 keeps, per
 * row, its level then all its link lists; format 2 keeps all levels first,
 * the upper lists after them, and level 0 as fixed blocks. */
#include "legacy_v1_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *must_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "legacy_v1_writer: out of memory\n");
        abort();
    }
    return p;
}

size_t legacy_v1_graph_size(const svdb_hnsw *h, const uint32_t *order, size_t n)
{
    size_t bytes = svdb__hnsw_upper_size(h, order, n);
    uint32_t *block = must_alloc(svdb__hnsw_l0_block_bytes(h));
    for (size_t i = 0; i < n; i++) {
        if (svdb__hnsw_level_of(h, order[i]) == SVDB_HNSW_NO_LEVEL) continue;
        svdb__hnsw_l0_block(h, order[i], NULL, block);
        bytes += 4 + 4 * (size_t)block[0];
    }
    free(block);
    return bytes;
}

void legacy_v1_graph_encode(const svdb_hnsw *h, const uint32_t *order, size_t n, const uint32_t *slot_to_row,
                            unsigned char *p)
{
    size_t nu = svdb__hnsw_upper_size(h, order, n);
    unsigned char *up = must_alloc(nu);
    uint32_t *block = must_alloc(svdb__hnsw_l0_block_bytes(h));
    svdb__hnsw_upper_encode(h, order, slot_to_row, n, up);
    memcpy(p, up, 8); /* entry row, top level */
    p += 8;
    const unsigned char *levels = up + 8, *lists = up + 8 + n;
    for (size_t i = 0; i < n; i++) {
        uint8_t L = levels[i];
        *p++ = L;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        svdb__hnsw_l0_block(h, order[i], slot_to_row, block);
        memcpy(p, block, 4 + 4 * (size_t)block[0]);
        p += 4 + 4 * (size_t)block[0];
        for (int l = 1; l <= L; l++) { /* this row's upper lists, as format 2 wrote them */
            uint32_t cnt;
            memcpy(&cnt, lists, 4);
            memcpy(p, lists, 4 + 4 * (size_t)cnt);
            p += 4 + 4 * (size_t)cnt;
            lists += 4 + 4 * (size_t)cnt;
        }
    }
    free(up);
    free(block);
}
