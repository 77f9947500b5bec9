/* CRC32C (Castagnoli), the checksum of every file header, section and log record. */
#ifndef SVDB_CRC32C_H
#define SVDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) over `len` bytes. */
uint32_t svdb__crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table version, for tests against the hardware one. */
uint32_t svdb__crc32c_sw(uint32_t crc, const void *data, size_t len);
/* The SSE4.2 version, or NULL when unavailable. */
typedef uint32_t (*svdb_crc_fn)(uint32_t crc, const void *data, size_t len);
svdb_crc_fn svdb__crc32c_hw(void);

#endif
