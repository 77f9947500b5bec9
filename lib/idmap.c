/* The id hash table and id validation. */
#include "idmap.h"

#include "alloc.h"
#include "error.h"

#include <string.h>

/* Eight bytes at a time, each word multiplied in, then the murmur3
 * finalizer: sequential ids such as "doc1", "doc2" differ in one byte, and
 * the finalizer spreads that over all 64 bits so they do not cluster in
 * neighbouring buckets. Not stored anywhere, so free to change. */
uint64_t svdb__hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)len;
    for (; len >= 8; s += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    if (len) {
        uint64_t w = 0;
        for (size_t i = 0; i < len; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

void svdb__idmap_free(svdb_idmap *m)
{
    svdb__free(m->slot);
    memset(m, 0, sizeof *m);
}

static size_t home_of(const svdb_idmap *m, uint32_t slot, svdb_key_fn kf, const void *ctx)
{
    size_t len;
    const char *k = kf(ctx, slot, &len);
    return (size_t)svdb__hash(k, len) & (m->cap - 1);
}

static void place(svdb_idmap *m, uint64_t hash, uint32_t slot)
{
    size_t i = (size_t)hash & (m->cap - 1);
    while (m->slot[i] != SVDB_NO_SLOT) i = (i + 1) & (m->cap - 1);
    m->slot[i] = slot;
    m->tag[i] = svdb__idmap_tag(hash);
}

int svdb__idmap_reserve(svdb_idmap *m, size_t extra, svdb_key_fn kf, const void *ctx)
{
    size_t need = m->n + extra;
    if (need > ((size_t)1 << 32) / 10 * 7) return svdb__fail(SVDB_ENOMEM, "id table cannot hold %zu ids", need);
    size_t cap = m->cap ? m->cap : 16;
    while (need * 10 > cap * 7) cap *= 2; /* load factor at most 0.7, so cap <= 2^32 */
    if (cap == m->cap) return SVDB_OK;
    uint32_t *nb = svdb__malloc(cap * (sizeof *nb + 1));
    if (!nb) return svdb__fail(SVDB_ENOMEM, "out of memory growing the id table to %zu buckets", cap);
    memset(nb, 0xFF, cap * sizeof *nb); /* every bucket SVDB_NO_SLOT */
    svdb_idmap old = *m;
    m->slot = nb;
    m->tag = (uint8_t *)(nb + cap);
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slot[i] == SVDB_NO_SLOT) continue;
        size_t len;
        const char *k = kf(ctx, old.slot[i], &len);
        place(m, svdb__hash(k, len), old.slot[i]);
    }
    svdb__free(old.slot);
    return SVDB_OK;
}

static size_t find_bucket(const svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx)
{
    if (!m->cap) return SIZE_MAX;
    uint64_t h = svdb__hash(key, len);
    uint8_t t = svdb__idmap_tag(h);
    for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t slot = m->slot[i];
        if (slot == SVDB_NO_SLOT) return SIZE_MAX;
        if (m->tag[i] != t) continue;
        size_t klen;
        const char *k = kf(ctx, slot, &klen);
        if (klen == len && memcmp(k, key, len) == 0) return i;
    }
}

uint32_t svdb__idmap_find(const svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx)
{
    size_t i = find_bucket(m, key, len, kf, ctx);
    return i == SIZE_MAX ? SVDB_NO_SLOT : m->slot[i];
}

void svdb__idmap_insert(svdb_idmap *m, const char *key, size_t len, uint32_t slot)
{
    place(m, svdb__hash(key, len), slot);
    m->n++;
}

uint32_t svdb__idmap_insert_unique(svdb_idmap *m, uint64_t hash, uint32_t slot, svdb_key_fn kf, const void *ctx)
{
    uint8_t t = svdb__idmap_tag(hash);
    size_t i = (size_t)hash & (m->cap - 1);
    for (; m->slot[i] != SVDB_NO_SLOT; i = (i + 1) & (m->cap - 1)) {
        if (m->tag[i] != t) continue;
        size_t klen, len;
        const char *k = kf(ctx, m->slot[i], &klen), *key = kf(ctx, slot, &len);
        if (klen == len && memcmp(k, key, len) == 0) return m->slot[i];
    }
    m->slot[i] = slot;
    m->tag[i] = t;
    m->n++;
    return SVDB_NO_SLOT;
}

void svdb__idmap_remove(svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx)
{
    size_t i = find_bucket(m, key, len, kf, ctx);
    if (i == SIZE_MAX) return;
    size_t mask = m->cap - 1;
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; m->slot[j] != SVDB_NO_SLOT; j = (j + 1) & mask) {
        size_t home = home_of(m, m->slot[j], kf, ctx);
        /* Move bucket j to i when its home is not within (i, j] cyclically. */
        int move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            m->slot[i] = m->slot[j];
            m->tag[i] = m->tag[j];
            i = j;
        }
    }
    m->slot[i] = SVDB_NO_SLOT;
    m->n--;
}

int svdb__utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n;
        unsigned min;
        if (c == 0) {
            return svdb__fail(SVDB_EINVAL, "id contains a NUL byte at offset %zu", i);
        } else if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return svdb__fail(SVDB_EINVAL, "id is not valid UTF-8 (bad lead byte at offset %zu)", i);
        }
        if (i + n >= len) return svdb__fail(SVDB_EINVAL, "id is not valid UTF-8 (truncated at offset %zu)", i);
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return svdb__fail(SVDB_EINVAL, "id is not valid UTF-8 (bad continuation at offset %zu)", i + k);
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return svdb__fail(SVDB_EINVAL, "id is not valid UTF-8 (overlong or invalid code point at offset %zu)", i);
        i += n + 1;
    }
    return SVDB_OK;
}

int svdb__id_check(const char *id, size_t *len_out)
{
    if (!id) return svdb__fail(SVDB_EINVAL, "id is NULL");
    size_t len = strnlen(id, SVDB_MAX_ID_BYTES + 1);
    if (len == 0) return svdb__fail(SVDB_EINVAL, "id is empty");
    if (len > SVDB_MAX_ID_BYTES)
        return svdb__fail(SVDB_ETOOBIG, "id is longer than %d bytes", SVDB_MAX_ID_BYTES);
    SVDB_TRY(svdb__utf8_check(id, len));
    *len_out = len;
    return SVDB_OK;
}
