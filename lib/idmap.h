/* String id -> slot hash table (open addressing, linear probing, backward-shift
 * deletion, so a delete leaves no tombstone and frees its bucket). A bucket is
 * 5 bytes, the slot and an 8-bit tag from the key's hash: the key itself stays
 * where its owner keeps it (the row store, a batch) and is fetched through the
 * caller's `svdb_key_fn` only when the tag matches (1 time in 256 for another
 * key), and to rehash when the table grows or a delete shifts a probe run. */
#ifndef SVDB_IDMAP_H
#define SVDB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define SVDB_NO_SLOT UINT32_MAX

typedef struct svdb_idmap {
    uint32_t *slot; /* per bucket; SVDB_NO_SLOT: empty. The low hash bits pick a key's home bucket */
    uint8_t *tag;   /* per bucket: the hash's top 8 bits (in the same allocation as slot) */
    size_t cap;     /* power of two, at most 2^32 */
    size_t n;
} svdb_idmap;

/* The key stored for `slot`, and its length. */
typedef const char *(*svdb_key_fn)(const void *ctx, uint32_t slot, size_t *len);
static inline uint8_t svdb__idmap_tag(uint64_t hash) { return (uint8_t)(hash >> 56); }

uint64_t svdb__hash(const char *s, size_t len);
void svdb__idmap_free(svdb_idmap *m);
/* Makes room for `extra` more keys so later inserts cannot fail (growing
 * rehashes the keys, fetched through kf). */
int svdb__idmap_reserve(svdb_idmap *m, size_t extra, svdb_key_fn kf, const void *ctx);
uint32_t svdb__idmap_find(const svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx);
/* Inserts a key known to be absent; capacity must have been reserved. */
void svdb__idmap_insert(svdb_idmap *m, const char *key, size_t len, uint32_t slot);
/* Bulk loading: the bucket a hash starts at, fetched ahead of an insert. */
static inline void svdb__idmap_prefetch(const svdb_idmap *m, uint64_t hash)
{
    size_t i = (size_t)hash & (m->cap - 1);
    __builtin_prefetch(&m->slot[i], 1);
    __builtin_prefetch(&m->tag[i], 1);
}
/* Inserts `slot`, whose key (fetched through kf only when needed) has the
 * given hash, unless the key is present (capacity reserved); returns
 * SVDB_NO_SLOT when inserted, else the slot holding the key. */
uint32_t svdb__idmap_insert_unique(svdb_idmap *m, uint64_t hash, uint32_t slot, svdb_key_fn kf, const void *ctx);
void svdb__idmap_remove(svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx);

/* Ids are non-empty valid UTF-8 without NUL, at most SVDB_MAX_ID_BYTES. */
int svdb__id_check(const char *id, size_t *len_out);
/* The UTF-8 part of that check, for ids read back from files (no NUL allowed). */
int svdb__utf8_check(const char *s, size_t len);

#endif
