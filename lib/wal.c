/* Log file format (little-endian; docs/format.md has the full layout):
 *   header: "SVDBLOG\0", u32 version, u32 0, u64 uuid, u32 0, u32 crc32c(bytes 0..27)
 *   record: u32 type, u32 crc32c(type, lsn, len, payload), u64 lsn, u64 len, payload */
#include "wal.h"

#include "alloc.h"
#include "crc32c.h"
#include "error.h"
#include "mapfile.h"
#include "os.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* Version 2 pads record payloads to 4 bytes (see record.c); version 3 may
 * also hold links records (advice for other handles). Version-1 and -2
 * logs are still read and appended to as they are. */
#define WAL_VERSION 3
#define WAL_OLDEST 1
static const char wal_magic[8] = {'S', 'V', 'D', 'B', 'L', 'O', 'G', 0};

static uint32_t load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void encode_crc(unsigned char *h)
{
    uint32_t crc = svdb__crc32c(0, h, 28);
    memcpy(h + 28, &crc, 4);
}

static void encode_header(unsigned char *h, uint64_t uuid)
{
    uint32_t v = WAL_VERSION, z = 0;
    memset(h, 0, SVDB_WAL_HEADER_BYTES);
    memcpy(h, wal_magic, 8);
    memcpy(h + 8, &v, 4);
    memcpy(h + 12, &z, 4);
    memcpy(h + 16, &uuid, 8);
    encode_crc(h);
}

static int set_path(svdb_wal *w, const svdb_dir *d, const char *name)
{
    w->fd = -1;
    w->path = svdb__dir_file(d, name);
    return w->path ? SVDB_OK : svdb__fail(SVDB_ENOMEM, "out of memory");
}

int svdb__wal_create(svdb_wal *w, const svdb_dir *d, const char *name, uint64_t uuid)
{
    SVDB_TRY(set_path(w, d, name));
    w->uuid = uuid;
    int rc = svdb__file_create(d, name, &w->fd);
    if (rc != SVDB_OK) {
        svdb__wal_close(w);
        return rc;
    }
    const char *path = w->path;
    unsigned char h[SVDB_WAL_HEADER_BYTES];
    encode_header(h, uuid);
    rc = svdb__pwrite_all(w->fd, h, sizeof h, 0, path);
    if (rc == SVDB_OK) rc = svdb__fd_sync(w->fd, path);
    struct stat st;
    if (rc == SVDB_OK) rc = svdb__fd_stat(w->fd, path, &st);
    if (rc != SVDB_OK) {
        svdb__wal_close(w);
        return rc;
    }
    w->ino = (uint64_t)st.st_ino;
    w->end = SVDB_WAL_HEADER_BYTES;
    w->tail_lsn = w->tail_before = 0;
    w->version = WAL_VERSION;
    return SVDB_OK;
}

int svdb__wal_open(svdb_wal *w, const svdb_dir *d, const char *name, uint64_t uuid, int writable)
{
    SVDB_TRY(set_path(w, d, name));
    w->uuid = uuid;
    const char *path = w->path;
    int rc = svdb__file_open(d, name, writable ? O_RDWR : O_RDONLY, &w->fd);
    if (rc != SVDB_OK) {
        if (rc == SVDB_ENOTFOUND) rc = svdb__fail(SVDB_ECORRUPT, "log %s is missing", path);
        svdb__wal_close(w);
        return rc;
    }
    unsigned char h[SVDB_WAL_HEADER_BYTES], want[SVDB_WAL_HEADER_BYTES];
    rc = svdb__pread_all(w->fd, h, sizeof h, 0, path);
    if (rc == SVDB_OK) {
        if (!uuid) memcpy(&w->uuid, h + 16, 8); /* the caller checks it later */
        encode_header(want, w->uuid);
        uint32_t version;
        memcpy(&version, h + 8, 4);
        if (memcmp(h, wal_magic, 8) != 0 || svdb__crc32c(0, h, 28) != load32(h + 28))
            rc = svdb__fail(SVDB_ECORRUPT, "log %s has a damaged header", path);
        else if (version < WAL_OLDEST || version > WAL_VERSION)
            rc = svdb__fail(SVDB_EVERSION, "log %s has format version %u; this library reads %u to %u", path, version,
                            WAL_OLDEST, WAL_VERSION);
        else if (memcmp(h + 16, want + 16, 8) != 0)
            rc = svdb__fail(SVDB_ECORRUPT, "log %s belongs to another collection", path);
        else if (memcmp(h + 12, want + 12, 4) != 0 || memcmp(h + 24, want + 24, 4) != 0)
            rc = svdb__fail(SVDB_ECORRUPT, "log %s has a damaged header", path);
        w->version = version;
    }
    struct stat st;
    if (rc == SVDB_OK) rc = svdb__fd_stat(w->fd, path, &st);
    if (rc == SVDB_OK) w->ino = (uint64_t)st.st_ino;
    if (rc != SVDB_OK) {
        svdb__wal_close(w);
        return rc;
    }
    w->end = SVDB_WAL_HEADER_BYTES;
    w->tail_lsn = w->tail_before = 0;
    return SVDB_OK;
}

const void *svdb__wal_view(svdb_wal *w, uint64_t off, size_t len)
{
    size_t have = w->n_views ? svdb__map_len(&w->views[w->n_views - 1]) : 0;
    if (off + len > have) {
        /* A map may extend past the end of the file: the pages there become
         * readable as the log grows, and are never read before. */
        size_t want = have ? have * 2 : (size_t)64 << 20;
        while (want < off + len) want *= 2;
        if (w->n_views == SVDB_WAL_MAX_VIEWS) {
            svdb__fail(SVDB_ENOMEM, "log %s: too many maps", w->path);
            return NULL;
        }
        svdb_map *m = &w->views[w->n_views];
        if (svdb__map_file(m, w->fd, want, SVDB_MAP_SHARED, "log", w->path) != SVDB_OK) return NULL;
        svdb__map_advise_random(m, 0, want); /* rows are read one by one: no read-ahead */
        w->n_views++;
    }
    return (const unsigned char *)svdb__map_base(&w->views[w->n_views - 1]) + off;
}

void svdb__wal_unview(svdb_wal *w)
{
    for (int i = 0; i < w->n_views; i++) svdb__map_release(&w->views[i]);
    w->n_views = 0;
}

void svdb__wal_close(svdb_wal *w)
{
    svdb__wal_unview(w);
    svdb__fd_close(w->fd);
    w->fd = -1;
    svdb__free(w->path);
    w->path = NULL;
}

static uint32_t record_crc(const unsigned char *hdr, const unsigned char *payload, size_t len)
{
    uint32_t crc = svdb__crc32c(0, hdr, 4);
    crc = svdb__crc32c(crc, hdr + 8, 16);
    return svdb__crc32c(crc, payload, len);
}

int svdb__wal_replay(svdb_wal *w, uint64_t after_lsn, uint64_t limit, int cut, svdb_wal_fn fn, void *ctx,
                     uint64_t *last_lsn, uint64_t *dropped)
{
    struct stat st;
    SVDB_TRY(svdb__fd_stat(w->fd, w->path, &st));
    uint64_t file_size = (uint64_t)st.st_size, pos = w->end;
    uint64_t size = file_size < limit ? file_size : limit;
    int have_prev = pos > SVDB_WAL_HEADER_BYTES; /* following on: the next record must be tail_lsn + 1 */
    uint64_t prev = have_prev ? w->tail_lsn : after_lsn;
    *last_lsn = after_lsn;
    while (pos + SVDB_REC_HEADER_BYTES <= size) {
        unsigned char h[SVDB_REC_HEADER_BYTES];
        SVDB_TRY(svdb__pread_all(w->fd, h, sizeof h, pos, w->path));
        uint32_t type, crc;
        uint64_t lsn, len;
        memcpy(&type, h, 4);
        memcpy(&crc, h + 4, 4);
        memcpy(&lsn, h + 8, 8);
        memcpy(&len, h + 16, 8);
        /* A length past the end of the file is a torn tail, never an allocation. */
        if (len > size - pos - SVDB_REC_HEADER_BYTES) break;
        unsigned char *payload = svdb__malloc((size_t)len);
        if (!payload) return svdb__fail(SVDB_ENOMEM, "out of memory reading a %llu-byte log record", (unsigned long long)len);
        int rc = svdb__pread_all(w->fd, payload, (size_t)len, pos + SVDB_REC_HEADER_BYTES, w->path);
        if (rc == SVDB_OK && record_crc(h, payload, (size_t)len) != crc) {
            svdb__free(payload);
            break; /* torn or damaged: everything from here on is dropped */
        }
        if (rc == SVDB_OK && have_prev && lsn != prev + 1) {
            svdb__free(payload);
            break; /* a stale record from before the file was last cut back */
        }
        if (rc == SVDB_OK && !have_prev && lsn > after_lsn + 1)
            rc = svdb__fail(SVDB_ECORRUPT, "log %s starts at record %llu but the snapshot ends at %llu", w->path,
                            (unsigned long long)lsn, (unsigned long long)after_lsn);
        if (rc == SVDB_OK && type != 1 && type != 2 && !(type == 3 && w->version >= 3))
            rc = svdb__fail(SVDB_ECORRUPT, "log %s has a record of unknown type %u at offset %llu", w->path, type,
                            (unsigned long long)pos);
        if (rc == SVDB_OK && lsn > after_lsn) {
            rc = fn(ctx, type, payload, (size_t)len, pos + SVDB_REC_HEADER_BYTES, lsn);
            if (rc == SVDB_OK) *last_lsn = lsn;
        }
        svdb__free(payload);
        if (rc != SVDB_OK) return rc;
        prev = lsn;
        have_prev = 1;
        pos += SVDB_REC_HEADER_BYTES + len;
    }
    if (pos != w->end) w->tail_before = w->tail_lsn, w->tail_lsn = prev;
    w->end = pos;
    *dropped = file_size > pos ? file_size - pos : 0;
    if (cut && pos < file_size) {
        SVDB_TRY(svdb__truncate(w->fd, pos, w->path));
        SVDB_TRY(svdb__fd_sync(w->fd, w->path));
    }
    return SVDB_OK;
}

int svdb__wal_append(svdb_wal *w, unsigned char *rec, size_t payload_len, uint32_t type, uint64_t lsn, int sync,
                     int *poisoned)
{
    uint64_t len = payload_len;
    memcpy(rec, &type, 4);
    memcpy(rec + 8, &lsn, 8);
    memcpy(rec + 16, &len, 8);
    uint32_t crc = record_crc(rec, rec + SVDB_REC_HEADER_BYTES, payload_len);
    memcpy(rec + 4, &crc, 4);
    size_t total = SVDB_REC_HEADER_BYTES + payload_len;
    int rc = svdb__pwrite_all(w->fd, rec, total, w->end, w->path);
    int synced_failed = 0;
    if (rc == SVDB_OK && sync) {
        rc = svdb__fd_sync(w->fd, w->path);
        synced_failed = rc != SVDB_OK;
    }
    if (rc == SVDB_OK) {
        w->end += total;
        w->tail_before = w->tail_lsn;
        w->tail_lsn = lsn;
        return SVDB_OK;
    }
    /* The caller is told the batch failed, so the record must not be replayed
     * later: cut it back off. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", svdb_errmsg());
    int cut = svdb__truncate(w->fd, w->end, w->path) == SVDB_OK;
    if (synced_failed) {
        /* After a failed sync the kernel may have dropped dirty pages while a
         * retry would report success: stop writing until reopened. */
        *poisoned = 1;
        return svdb__fail(SVDB_EIO, "%s; the collection refuses writes until it is reopened", msg);
    }
    /* A full disk is a clean, retryable failure once the tail is cut back;
     * any other write error leaves the file's state in doubt. */
    if (rc != SVDB_ENOSPC || !cut) {
        *poisoned = 1;
        return svdb__fail(rc == SVDB_ENOSPC ? SVDB_EIO : rc, "%s; the collection refuses writes until it is reopened", msg);
    }
    return svdb__fail(rc, "%s", msg);
}

int svdb__wal_replace(svdb_wal *w, const svdb_dir *d, const char *name, const char *tmp)
{
    svdb_wal nw = {.fd = -1};
    SVDB_TRY(svdb__wal_create(&nw, d, tmp, w->uuid));
    int rc = svdb__file_rename(d, tmp, name);
    if (rc != SVDB_OK) {
        svdb__wal_close(&nw);
        svdb__file_discard(d, tmp);
        return rc;
    }
    svdb__free(nw.path); /* the new file goes by the log's name now */
    nw.path = w->path;
    w->path = NULL;
    svdb__wal_close(w);
    *w = nw;
    /* Renamed: the new file is the log whether or not the rename is durable
     * yet (the snapshot covers every record of the old one either way). */
    return svdb__dir_sync(d);
}

int svdb__wal_cut(svdb_wal *w, uint64_t end)
{
    SVDB_TRY(svdb__truncate(w->fd, end, w->path));
    w->end = end;
    w->tail_lsn = w->tail_before; /* the one record appended last is gone */
    return svdb__fd_sync(w->fd, w->path);
}
