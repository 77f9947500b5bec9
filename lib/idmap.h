/* String id -> slot hash table (open addressing, linear probing, backward-shift
 * deletion, so a delete leaves no tombstone and frees its bucket). A bucket is
 * 8 bytes, the slot and 32 bits of the key's hash: the key itself stays where
 * its owner keeps it (the row store, a batch) and is fetched through the
 * caller's `svdb_key_fn` only when the hash bits match. */
#ifndef SVDB_IDMAP_H
#define SVDB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define SVDB_NO_SLOT UINT32_MAX

typedef struct svdb_idmap_entry {
    uint32_t slot; /* SVDB_NO_SLOT: empty bucket */
    uint32_t hash; /* low 32 bits of svdb__hash(key); the low bits pick the home bucket */
} svdb_idmap_entry;

typedef struct svdb_idmap {
    svdb_idmap_entry *b;
    size_t cap; /* power of two, at most 2^32 */
    size_t n;
} svdb_idmap;

/* The key stored for `slot`, and its length. */
typedef const char *(*svdb_key_fn)(const void *ctx, uint32_t slot, size_t *len);

uint64_t svdb__hash(const char *s, size_t len);
void svdb__idmap_free(svdb_idmap *m);
/* Makes room for `extra` more keys so later inserts cannot fail. */
int svdb__idmap_reserve(svdb_idmap *m, size_t extra);
uint32_t svdb__idmap_find(const svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx);
/* Inserts a key known to be absent; capacity must have been reserved. */
void svdb__idmap_insert(svdb_idmap *m, const char *key, size_t len, uint32_t slot);
void svdb__idmap_remove(svdb_idmap *m, const char *key, size_t len, svdb_key_fn kf, const void *ctx);

/* Ids are non-empty valid UTF-8 without NUL, at most SVDB_MAX_ID_BYTES. */
int svdb__id_check(const char *id, size_t *len_out);
/* The UTF-8 part of that check, for ids read back from files (no NUL allowed). */
int svdb__utf8_check(const char *s, size_t len);

#endif
