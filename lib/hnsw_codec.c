/* The graph's on-disk encodings: the format-1 reader (old snapshots) and
 * format 2, whose level-0 blocks a loaded graph uses in place in the
 * snapshot's map. */
#include "hnsw.h"

#include "alloc.h"
#include "error.h"
#include "hnsw_impl.h"
#include "svdb.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
    return p + 4;
}

/* ------------------------------------------------ snapshot format 1 */

int svdb__hnsw_decode(svdb_hnsw *h, const unsigned char *p, size_t len, size_t n)
{
#define NEED(x)                                                                                    \
    do {                                                                                           \
        if ((size_t)(end - p) < (x)) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated"); \
    } while (0)
    const unsigned char *end = p + len;
    SVDB_TRY(svdb__hnsw_reserve(h, n ? n : 1));
    uint32_t entry, maxl;
    NEED(8);
    memcpy(&entry, p, 4);
    memcpy(&maxl, p + 4, 4);
    p += 8;
    int max_seen = -1;
    for (size_t i = 0; i < n; i++) {
        NEED(1);
        uint8_t L = *p++;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        if (L > HNSW_MAX_LEVEL) return svdb__fail(SVDB_ECORRUPT, "graph level out of range");
        if (L > 0 && !(h->upper[i] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t))))
            return svdb__fail(SVDB_ENOMEM, "out of memory loading the graph");
        h->level[i] = L;
        for (int l = 0; l <= L; l++) {
            uint32_t cnt;
            NEED(4);
            memcpy(&cnt, p, 4);
            p += 4;
            if (cnt > max_links(h, l)) return svdb__fail(SVDB_ECORRUPT, "graph node has too many links");
            NEED((size_t)cnt * 4);
            uint32_t *ln = links(h, (uint32_t)i, l);
            ln[0] = cnt;
            memcpy(ln + 1, p, (size_t)cnt * 4);
            p += (size_t)cnt * 4;
            for (uint32_t j = 1; j <= cnt; j++)
                if (ln[j] >= n) return svdb__fail(SVDB_ECORRUPT, "graph link points past the last row");
        }
        if ((int)L > max_seen) max_seen = L;
    }
    if (p != end) return svdb__fail(SVDB_ECORRUPT, "trailing bytes in the graph section");
    /* Links must point at nodes present on that level. */
    for (size_t i = 0; i < n; i++) {
        if (h->level[i] == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 0; l <= h->level[i]; l++) {
            const uint32_t *ln = links(h, (uint32_t)i, l);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (h->level[ln[j]] == SVDB_HNSW_NO_LEVEL || (int)h->level[ln[j]] < l)
                    return svdb__fail(SVDB_ECORRUPT, "graph link points to a node missing from its level");
        }
    }
    if ((int)maxl != max_seen || (max_seen >= 0 && (entry >= n || h->level[entry] != maxl)) ||
        (max_seen < 0 && entry != UINT32_MAX))
        return svdb__fail(SVDB_ECORRUPT, "graph entry point is inconsistent");
    h->entry = entry;
    h->max_level = max_seen;
    return SVDB_OK;
#undef NEED
}

/* ------------------------------------------------ snapshot format 2 */

size_t svdb__hnsw_l0_block_bytes(const svdb_hnsw *h) { return (size_t)(h->m0 + 1) * sizeof(uint32_t); }

#define ROW(slot) (to_row ? to_row[slot] : (slot))
#define SLOT(row) (order ? order[row] : (uint32_t)(row))

void svdb__hnsw_l0_block(const svdb_hnsw *h, uint32_t slot, const uint32_t *to_row, uint32_t *out)
{
    memset(out, 0, svdb__hnsw_l0_block_bytes(h));
    if (slot >= h->cap || h->level[slot] == SVDB_HNSW_NO_LEVEL) return;
    const uint32_t *ln = links(h, slot, 0);
    uint32_t n = 0;
    for (uint32_t j = 1; j <= ln[0]; j++)
        if (on_level(h, ln[j], 0)) out[1 + n++] = ROW(ln[j]);
    out[0] = n;
}

/* Encodes into p, or only counts the bytes when p is NULL. */
static size_t upper_encode(const svdb_hnsw *h, const uint32_t *order, const uint32_t *to_row, size_t n_rows,
                           unsigned char *p)
{
    size_t bytes = 8 + n_rows;
    if (p) {
        p = put32(p, h->entry == UINT32_MAX ? UINT32_MAX : ROW(h->entry));
        p = put32(p, (uint32_t)h->max_level);
        for (size_t i = 0; i < n_rows; i++) *p++ = SLOT(i) < h->cap ? h->level[SLOT(i)] : SVDB_HNSW_NO_LEVEL;
    }
    for (size_t i = 0; i < n_rows; i++) {
        uint32_t slot = SLOT(i);
        int L = slot < h->cap ? h->level[slot] : SVDB_HNSW_NO_LEVEL;
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        for (int l = 1; l <= L; l++) {
            const uint32_t *ln = links(h, slot, l);
            uint32_t live = 0;
            for (uint32_t j = 1; j <= ln[0]; j++) live += (uint32_t)on_level(h, ln[j], l);
            bytes += 4 + 4 * (size_t)live;
            if (!p) continue;
            p = put32(p, live);
            for (uint32_t j = 1; j <= ln[0]; j++)
                if (on_level(h, ln[j], l)) p = put32(p, ROW(ln[j]));
        }
    }
    return bytes;
}

size_t svdb__hnsw_upper_size(const svdb_hnsw *h, const uint32_t *order, size_t n_rows)
{
    return upper_encode(h, order, NULL, n_rows, NULL);
}

void svdb__hnsw_upper_encode(const svdb_hnsw *h, const uint32_t *order, const uint32_t *to_row, size_t n_rows,
                             unsigned char *out)
{
    upper_encode(h, order, to_row, n_rows, out);
}
#undef ROW
#undef SLOT

/* Level-0 blocks are sound: counts within m0, none for a row out of the
 * graph, and every entry (unused ones are written as 0) below n. Tens of
 * millions of links for a million rows: 4 lanes at a time where SSE2 is
 * (signed lanes with the sign bit flipped: it has no unsigned compare). */
static int l0_blocks_valid(const uint32_t *blocks, size_t n, uint32_t m0, const uint8_t *lv)
{
    uint32_t bad = 0;
#ifdef __SSE2__
    const __m128i flip = _mm_set1_epi32(INT32_MIN);
    const __m128i lim = _mm_set1_epi32((int32_t)(((uint32_t)n - 1) ^ 0x80000000u)); /* x > n - 1: bad */
    __m128i over = _mm_setzero_si128();
#endif
    for (size_t i = 0; i < n; i++) {
        const uint32_t *b = blocks + i * (m0 + 1);
        bad |= (uint32_t)(b[0] > m0) | (uint32_t)(lv[i] == SVDB_HNSW_NO_LEVEL && b[0] != 0);
        uint32_t j = 1;
#ifdef __SSE2__
        for (; j + 4 <= m0 + 1; j += 4) {
            __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(b + j)), flip);
            over = _mm_or_si128(over, _mm_cmpgt_epi32(x, lim));
        }
#endif
        for (; j <= m0; j++) bad |= (uint32_t)(b[j] >= n);
    }
#ifdef __SSE2__
    bad |= (uint32_t)(_mm_movemask_epi8(over) != 0);
#endif
    return !bad;
}

/* Points level-0 chunks that rows [0, n_rows) fill completely at `blocks`;
 * the rest keep (a copy of) their blocks in memory. */
static void l0_point(svdb_hnsw *h, const uint32_t *blocks, size_t n_rows)
{
    size_t bw = h->m0 + 1;
    for (size_t c = 0; c < h->n_l0 && (c + 1) * HNSW_L0_CHUNK <= n_rows; c++) {
        if (!l0_mapped(h, h->l0[c])) svdb__free(h->l0[c]);
        h->l0[c] = (uint32_t *)(uintptr_t)(blocks + c * HNSW_L0_CHUNK * bw); /* written only through a private map */
    }
}

int svdb__hnsw_load_mapped(svdb_hnsw *h, const unsigned char *p, size_t len, const uint32_t *blocks, size_t n,
                           const void *map, size_t map_len)
{
    const unsigned char *end = p + len;
    SVDB_TRY(svdb__hnsw_reserve(h, n ? n : 1));
    if ((size_t)(end - p) < 8 + n) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
    uint32_t entry, maxl;
    memcpy(&entry, p, 4);
    memcpy(&maxl, p + 4, 4);
    p += 8;
    const unsigned char *lv = p;
    p += n;
    /* Level-0 blocks: at most m0 links, each to an existing row; a row out
     * of the graph has none. Links to rows missing from level 0 are stale
     * links, which every walk skips, as after a delete. */
    if (!l0_blocks_valid(blocks, n, h->m0, lv))
        return svdb__fail(SVDB_ECORRUPT, "level-0 links out of range (too many, or past the last row)");
    int max_seen = -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t L = lv[i];
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        if (L > HNSW_MAX_LEVEL) return svdb__fail(SVDB_ECORRUPT, "graph level out of range");
        if ((int)L > max_seen) max_seen = L;
        h->level[i] = L;
        if (L == 0) continue;
        if (!(h->upper[i] = svdb__calloc((size_t)L * (h->p.m + 1), sizeof(uint32_t))))
            return svdb__fail(SVDB_ENOMEM, "out of memory loading the graph");
        for (int l = 1; l <= L; l++) {
            uint32_t cnt;
            if ((size_t)(end - p) < 4) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
            memcpy(&cnt, p, 4);
            p += 4;
            if (cnt > h->p.m) return svdb__fail(SVDB_ECORRUPT, "graph node has too many links");
            if ((size_t)(end - p) < (size_t)cnt * 4) return svdb__fail(SVDB_ECORRUPT, "graph section is truncated");
            uint32_t *ln = links(h, (uint32_t)i, l);
            ln[0] = cnt;
            memcpy(ln + 1, p, (size_t)cnt * 4);
            p += (size_t)cnt * 4;
            for (uint32_t j = 1; j <= cnt; j++)
                if (ln[j] >= n || lv[ln[j]] == SVDB_HNSW_NO_LEVEL || lv[ln[j]] < l)
                    return svdb__fail(SVDB_ECORRUPT, "graph link points to a node missing from its level");
        }
    }
    if (p != end) return svdb__fail(SVDB_ECORRUPT, "trailing bytes in the graph section");
    if ((int)maxl != max_seen || (max_seen >= 0 && (entry >= n || lv[entry] != maxl)) ||
        (max_seen < 0 && entry != UINT32_MAX))
        return svdb__fail(SVDB_ECORRUPT, "graph entry point is inconsistent");
    /* Chunks the rows fill are the map itself; a partial last one is copied. */
    h->map_lo = map;
    h->map_len = map_len;
    l0_point(h, blocks, n);
    for (size_t c = 0; c < h->n_l0 && c * HNSW_L0_CHUNK < n; c++) {
        if (l0_mapped(h, h->l0[c])) continue;
        size_t rows = n - c * HNSW_L0_CHUNK < HNSW_L0_CHUNK ? n - c * HNSW_L0_CHUNK : HNSW_L0_CHUNK;
        memcpy(h->l0[c], blocks + c * HNSW_L0_CHUNK * (h->m0 + 1), rows * (h->m0 + 1) * sizeof(uint32_t));
    }
    h->entry = entry;
    h->max_level = max_seen;
    return SVDB_OK;
}

void svdb__hnsw_remap(svdb_hnsw *h, const uint32_t *blocks, size_t n_rows, const void *map, size_t map_len)
{
    l0_point(h, blocks, n_rows); /* frees the heap chunks now in the map */
    h->map_lo = map;
    h->map_len = map_len;
}

int svdb__hnsw_unmap(svdb_hnsw *h)
{
    SVDB_TRY(svdb__copy_out_of_map((void **)h->l0, h->n_l0, HNSW_L0_CHUNK * (h->m0 + 1) * sizeof(uint32_t), h->map_lo,
                                   h->map_len));
    h->map_lo = NULL;
    h->map_len = 0;
    return SVDB_OK;
}
