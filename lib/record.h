/* Log record payloads: a batch of puts or of deletes, encoded little-endian
 * with every length checked on the way back in (see docs/format.md). */
#ifndef SVDB_RECORD_H
#define SVDB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define SVDB_REC_PUT 1
#define SVDB_REC_DELETE 2
#define SVDB_REC_LINKS 3 /* log version 3: advice, see svdb__links_check */

#define SVDB_NO_META UINT32_MAX

/* A batch as pointers into caller memory or into a decoded payload; ids and
 * metadata need not be NUL-terminated. */
typedef struct svdb_batch {
    size_t n;
    uint32_t dim;         /* puts only */
    const float *vectors; /* puts only: n * dim, possibly unaligned in a payload */
    const char **ids;
    uint32_t *id_lens;
    const char **metas;  /* puts only; entry NULL = no metadata */
    uint32_t *meta_lens;
} svdb_batch;

/* Allocates the pointer arrays of a batch of n rows. */
int svdb__batch_alloc(svdb_batch *b, size_t n, int with_meta);
void svdb__batch_free(svdb_batch *b);

/* `pad`: pad the payload with zeros to a multiple of 4 bytes (log version 2). */
size_t svdb__put_size(const svdb_batch *b, int pad);
void svdb__put_encode(const svdb_batch *b, unsigned char *out, int pad);
size_t svdb__delete_size(const svdb_batch *b, int pad);
void svdb__delete_encode(const svdb_batch *b, unsigned char *out, int pad);

/* Where a put payload at file offset `payload` keeps its vectors (after
 * u32 dim, u32 0, u64 n). */
static inline uint64_t svdb__put_vectors_at(uint64_t payload) { return payload + 16; }

/* Decode and validate; the batch points into `p`, which must outlive it.
 * Vectors are copied to `*vec_copy` (aligned) for puts. */
int svdb__put_decode(const unsigned char *p, size_t len, svdb_batch *b, float **vec_copy);
int svdb__delete_decode(const unsigned char *p, size_t len, svdb_batch *b);

/* A links record: the HNSW link lists that the handle which logged the put
 * `put_lsn` (the record just before it) chose for the put's rows, so that
 * handles replaying the put adopt them instead of searching the graph
 * (docs/format.md). Rows and links are named by slot and checked by the low
 * 32 bits of their insertion sequence; a reader skips what does not match. */
#define SVDB_LINKS_MAX_LEVEL 63
size_t svdb__links_size(size_t n_rows, size_t n_lists, size_t n_links);
unsigned char *svdb__links_put_header(unsigned char *out, uint64_t put_lsn, uint64_t n);
unsigned char *svdb__links_put_row(unsigned char *out, uint32_t slot, uint32_t seq, uint32_t level);
unsigned char *svdb__links_put_list(unsigned char *out, uint32_t count, const uint32_t *slots, const uint32_t *seqs);
/* Checks every length of a payload; then svdb__links_row and, level + 1
 * times, svdb__links_list walk its rows from p + 16. */
int svdb__links_check(const unsigned char *p, size_t len, uint64_t *put_lsn, uint64_t *n);
const unsigned char *svdb__links_row(const unsigned char *at, uint32_t *slot, uint32_t *seq, uint32_t *level);
/* count pairs of (u32 slot, u32 seq) at *pairs, read with memcpy. */
const unsigned char *svdb__links_list(const unsigned char *at, uint32_t *count, const unsigned char **pairs);

#endif
