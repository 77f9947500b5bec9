/* Log replay: the input is a sequence of records (u8 type, u16 length,
 * payload) that this harness frames with correct lsns and checksums, so the
 * fuzzer reaches the payload decoders instead of stopping at the CRC. The
 * last input byte, when odd, tears the final record. */
#include "fuzz_common.h"
#include "svdb.h"

#include <stdint.h>

uint32_t svdb__crc32c(uint32_t crc, const void *data, size_t len);

static unsigned char snapshot[8192];
static size_t snapshot_len;
static uint64_t uuid;

static void make_base(const char *dir)
{
    /* A real empty cosine collection of dim 4 gives the snapshot and uuid. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/base", dir);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.dim = 4;
    o.metric = SVDB_METRIC_COSINE;
    svdb *db;
    if (svdb_open(&db, sub, &o) != SVDB_OK) abort();
    svdb_close(db);
    char path[700];
    snprintf(path, sizeof path, "%s/snapshot.svdb", sub);
    FILE *f = fopen(path, "rb");
    snapshot_len = fread(snapshot, 1, sizeof snapshot, f);
    fclose(f);
    memcpy(&uuid, snapshot + 16, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fz_dir();
    if (!snapshot_len) make_base(dir);
    /* Each 3-byte record header in the input becomes a 24-byte one. */
    unsigned char *wal = malloc(32 + size * 8 + 64);
    size_t w = 0;
    uint32_t version = 1, zero = 0;
    memcpy(wal, "SVDBLOG", 8);
    memcpy(wal + 8, &version, 4);
    memcpy(wal + 12, &zero, 4);
    memcpy(wal + 16, &uuid, 8);
    memcpy(wal + 24, &zero, 4);
    uint32_t hcrc = svdb__crc32c(0, wal, 28);
    memcpy(wal + 28, &hcrc, 4);
    w = 32;
    uint64_t lsn = 1;
    size_t i = 0;
    while (i + 3 <= size) {
        uint32_t type = data[i] % 4; /* 0 and 3 are unknown types */
        size_t len = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
        i += 3;
        if (len > size - i) len = size - i;
        uint64_t len64 = len;
        unsigned char *h = wal + w;
        memcpy(h, &type, 4);
        memcpy(h + 8, &lsn, 8);
        memcpy(h + 16, &len64, 8);
        memcpy(h + 24, data + i, len);
        uint32_t crc = svdb__crc32c(0, h, 4);
        crc = svdb__crc32c(crc, h + 8, 16);
        crc = svdb__crc32c(crc, h + 24, len);
        memcpy(h + 4, &crc, 4);
        w += 24 + len;
        i += len;
        lsn++;
    }
    if (size && (data[size - 1] & 1) && w > 40) w -= 1 + data[size - 1] % 8;
    fz_write(dir, "snapshot.svdb", snapshot, snapshot_len);
    fz_write(dir, "wal.svdb", wal, w);
    free(wal);
    svdb_open_options o;
    svdb_open_options_init(&o, SVDB_OPEN_OPTIONS_VERSION);
    o.create = 0;
    svdb *db = NULL;
    if (svdb_open(&db, dir, &o) == SVDB_OK) {
        size_t n = 0;
        svdb_count(db, &n);
        float q[4] = {1, 0, 0, 0};
        svdb_hit *hits = NULL;
        size_t nh = 0;
        if (svdb_search(db, q, 4, 5, NULL, &hits, &nh) != SVDB_OK || nh != (n < 5 ? n : 5)) abort();
        svdb_hits_free(hits);
        svdb_close(db);
    }
    return 0;
}
