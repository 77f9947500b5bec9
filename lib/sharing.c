/* One collection, many handles and processes (SQLite's WAL mode in spirit).
 *
 * Every handle keeps its own in-memory copy of the collection and follows
 * the log that all of them append to. The collection's LOCK file carries:
 *   - byte SVDB_LOCK_OPEN, held shared by every open handle (exclusively by
 *     an exclusive one);
 *   - byte SVDB_LOCK_WRITE, held by the one handle writing or checkpointing;
 *   - at offset 0, the head: the log file's inode and the end of its last
 *     acknowledged record, written by a writer before it lets go of the
 *     write lock (a store into the shared map of LOCK's first page, or a
 *     pwrite before that exists). A reader compares it with what it has
 *     applied (a copy from the same map) and replays the new records,
 *     never past the head: a record a writer is still appending, or will
 *     cut again (a canceled batch, a failed sync), is never seen. A new inode means a checkpoint replaced
 *     the log: the reader loads the new snapshot (svdb__coll_reload).
 * A writer catches up with the whole log under the write lock (records a
 * killed writer made durable but could not announce included), cuts off a
 * torn tail, appends, applies, and publishes the new head. The head is
 * advice, never synced: a damaged or stale one only makes a reader wait
 * for the next writer's, and writers do not trust it. */
#include "collection_impl.h"

#include "crc32c.h"
#include "error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#define HEAD_BYTES 32
static const char head_magic[8] = {'S', 'V', 'D', 'B', 'H', 'E', 'A', 'D'};

typedef struct head {
    uint64_t ino, end;
} head;

/* Maps LOCK's first page (the head's) shared, so that later checks are a
 * load from memory rather than a system call, as SQLite's readers check its
 * -shm file. Only once the file holds a head: reading a mapped page wholly
 * past the end of a file faults, and svdb never shortens LOCK. Another
 * thread may race this; one map wins. */
static void map_head(svdb_coll *db)
{
    if (__atomic_load_n(&db->head_nomap, __ATOMIC_RELAXED)) return;
    svdb_map m;
    /* writable where this handle may write: head_publish then stores into it */
    int mode = db->mode == SVDB_OPEN_READONLY ? SVDB_MAP_SHARED : SVDB_MAP_SHARED_WRITE;
    if (svdb__map_file(&m, db->lock_fd, HEAD_BYTES, mode, "lock file", db->dir.path) != SVDB_OK) {
        svdb__clear_error(); /* the pread keeps working */
        __atomic_store_n(&db->head_nomap, 1, __ATOMIC_RELAXED);
        return;
    }
    void *none = NULL;
    if (__atomic_compare_exchange_n(&db->head_base, &none, svdb__map_base(&m), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        db->head_map = m; /* read again only at close */
    else svdb__map_release(&m);
}

/* The head's 32 bytes as they are now: a copy from the map, or a pread
 * (which then maps it). 0 when LOCK holds no head yet. */
static int head_bytes(svdb_coll *db, unsigned char *b)
{
    const unsigned char *m = __atomic_load_n(&db->head_base, __ATOMIC_ACQUIRE);
    if (m) {
        /* a writer (another process, or a thread of this handle: relaxed
         * atomics, no data race) may be changing it: the crc decides */
        for (int i = 0; i < HEAD_BYTES; i++) b[i] = __atomic_load_n(m + i, __ATOMIC_RELAXED);
        return 1;
    }
    if (pread(db->lock_fd, b, HEAD_BYTES, 0) != (ssize_t)HEAD_BYTES) return 0;
    map_head(db);
    return 1;
}

/* 1 with a sound head in *h, 0 when there is none (never written, or torn
 * by a concurrent write three times in a row). */
static int head_read(svdb_coll *db, head *h)
{
    if (db->lock_fd < 0) return 0;
    for (int tries = 0; tries < 3; tries++) {
        unsigned char b[HEAD_BYTES];
        if (!head_bytes(db, b)) return 0;
        uint32_t crc;
        memcpy(&crc, b + 28, 4);
        if (memcmp(b, head_magic, 8) != 0) return 0;
        if (svdb__crc32c(0, b, 28) != crc) continue;
        memcpy(&h->ino, b + 8, 8);
        memcpy(&h->end, b + 16, 8);
        return 1;
    }
    return 0;
}

/* What this handle has applied, for the lock-free check of svdb__coll_refresh. */
static void note_position(svdb_coll *db)
{
    __atomic_store_n(&db->seen_ino, db->wal.ino, __ATOMIC_RELEASE);
    __atomic_store_n(&db->seen_end, db->wal.end, __ATOMIC_RELEASE);
}

/* Announces the log's end (write lock held). A failed write is not an
 * error of the batch, which is durable: other handles see it at the next
 * head a writer manages to publish, and writers read the log itself. */
static void head_publish(svdb_coll *db)
{
    unsigned char b[HEAD_BYTES] = {0};
    memcpy(b, head_magic, 8);
    memcpy(b + 8, &db->wal.ino, 8);
    memcpy(b + 16, &db->wal.end, 8);
    uint32_t crc = svdb__crc32c(0, b, 28);
    memcpy(b + 28, &crc, 4);
    /* Through the shared map when there is one: the same page cache as a
     * pwrite, without the system call (a reader copying it meanwhile sees a
     * bad crc and reads again, as with a pwrite). */
    unsigned char *m = __atomic_load_n(&db->head_base, __ATOMIC_ACQUIRE);
    if (m && db->mode != SVDB_OPEN_READONLY) {
        for (int i = 0; i < HEAD_BYTES; i++) __atomic_store_n(m + i, b[i], __ATOMIC_RELAXED);
        return;
    }
    (void)!pwrite(db->lock_fd, b, sizeof b, 0);
}

int svdb__coll_share_open(svdb_coll *db)
{
    int ro = db->mode == SVDB_OPEN_READONLY;
    SVDB_TRY(svdb__lockfile_open(&db->dir, SVDB_LOCK_NAME, !ro, &db->lock_fd));
    if (db->lock_fd < 0) return SVDB_OK; /* read-only, and no lock file to read: nobody writes here */
    /* svdb before shared opens held LOCK with an exclusive flock, which the
     * byte-range locks below do not see: a shared flock keeps the two out of
     * each other's way. */
    int rc = svdb__fd_flock_shared(db->lock_fd, db->dir.path);
    if (rc == SVDB_ELOCKED)
        return svdb__fail(SVDB_ELOCKED, "collection %s is locked by a process running an earlier svdb (one handle at a "
                          "time); close it or upgrade it", db->dir.path);
    SVDB_TRY(rc);
    int type = db->mode == SVDB_OPEN_EXCLUSIVE ? F_WRLCK : F_RDLCK;
    rc = svdb__range_lock(db->lock_fd, SVDB_LOCK_OPEN, type, 0, db->dir.path);
    if (rc == SVDB_EBUSY)
        return svdb__fail(SVDB_ELOCKED,
                          db->mode == SVDB_OPEN_EXCLUSIVE
                              ? "collection %s is open in another handle or process; an exclusive open needs it alone"
                              : "collection %s is open exclusively by another handle or process",
                          db->dir.path);
    return rc;
}

int svdb__coll_lock_write(svdb_coll *db, uint32_t wait_ms)
{
    if (db->mode == SVDB_OPEN_EXCLUSIVE) return SVDB_OK;
    SVDB_FAIL_IF(db->mode == SVDB_OPEN_READONLY, SVDB_EREADONLY, "collection %s was opened read-only", db->dir.path);
    int rc = svdb__range_lock(db->lock_fd, SVDB_LOCK_WRITE, F_WRLCK, wait_ms, db->dir.path);
    if (rc == SVDB_EBUSY)
        return svdb__fail(SVDB_EBUSY,
                          "collection %s: another handle or process held the write lock for the whole busy timeout "
                          "(%u ms); nothing was changed",
                          db->dir.path, wait_ms);
    return rc;
}

void svdb__coll_unlock_write(svdb_coll *db)
{
    if (db->mode != SVDB_OPEN_EXCLUSIVE) svdb__range_unlock(db->lock_fd, SVDB_LOCK_WRITE);
}

/* Replays what other handles appended (write_mu held). A writer (holding
 * the write lock) reads the whole log and cuts a torn tail; a reader stops
 * at the head. */
static int catch_up(svdb_coll *db, int writer)
{
    head h;
    int have = head_read(db, &h);
    int replaced = have && h.ino != db->wal.ino;
    if (writer && !replaced) {
        /* Writers never trust the head: a checkpoint killed after renaming
         * the new log into place but before announcing it leaves a head
         * that still names the old log, and appending to that unlinked file
         * would lose the batch. The name tells. */
        struct stat st;
        int found = svdb__file_stat(&db->dir, SVDB_WAL_NAME, &st);
        if (found < 0) return found;
        replaced = found && (uint64_t)st.st_ino != db->wal.ino;
        /* Our log, ending where we stopped reading it: nothing to apply and
         * no torn tail to cut (appenders hold the write lock we hold), so
         * the replay's own fstat is spared: one system call a write. */
        if (found && !replaced && (uint64_t)st.st_size == db->wal.end) {
            note_position(db);
            return SVDB_OK;
        }
    }
    if (replaced) SVDB_TRY(svdb__coll_reload(db, writer));
    else if (writer || (have && h.end > db->wal.end))
        SVDB_TRY(svdb__coll_follow(db, writer ? UINT64_MAX : h.end, writer));
    note_position(db);
    return SVDB_OK;
}

/* Writers of this handle queue on turn_mu, then wait for the other
 * handles' write lock, and only then take write_mu, which readers of this
 * handle need to catch up: a writer waiting out the busy timeout never
 * holds them up. With turn_mu held: the write lock (waiting up to
 * wait_ms), write_mu, and the others' records applied; turn_mu is let go
 * on failure. */
static int take_write(svdb_coll *db, uint32_t wait_ms)
{
    int rc = svdb__coll_lock_write(db, wait_ms);
    if (rc != SVDB_OK) {
        pthread_mutex_unlock(&db->turn_mu);
        return rc;
    }
    pthread_mutex_lock(&db->write_mu);
    if (db->mode != SVDB_OPEN_EXCLUSIVE && !db->poisoned) rc = catch_up(db, 1);
    if (rc != SVDB_OK) svdb__coll_write_end(db);
    return rc;
}

int svdb__coll_write_begin(svdb_coll *db)
{
    pthread_mutex_lock(&db->turn_mu);
    return take_write(db, db->busy_ms);
}

int svdb__coll_write_try(svdb_coll *db)
{
    return pthread_mutex_trylock(&db->turn_mu) == 0 ? take_write(db, 0) : SVDB_EBUSY;
}

void svdb__coll_write_end(svdb_coll *db)
{
    if (db->mode != SVDB_OPEN_EXCLUSIVE && !db->poisoned) {
        note_position(db);
        head h;
        if (!head_read(db, &h) || h.ino != db->wal.ino || h.end != db->wal.end) head_publish(db);
    }
    pthread_mutex_unlock(&db->write_mu);
    svdb__coll_unlock_write(db);
    pthread_mutex_unlock(&db->turn_mu);
}

int svdb__coll_refresh(svdb_coll *db)
{
    if (db->mode == SVDB_OPEN_EXCLUSIVE) return SVDB_OK;
    head h;
    if (!head_read(db, &h)) return SVDB_OK;
    if (h.ino == __atomic_load_n(&db->seen_ino, __ATOMIC_ACQUIRE) &&
        h.end <= __atomic_load_n(&db->seen_end, __ATOMIC_ACQUIRE))
        return SVDB_OK;
    pthread_mutex_lock(&db->write_mu);
    int rc = db->poisoned ? SVDB_OK : catch_up(db, 0);
    pthread_mutex_unlock(&db->write_mu);
    return rc;
}

/* At open, after loading: a handle that can take the write lock at once
 * has read the whole log (and cut its torn tail); it announces the head, so
 * that readers opened after a crash see the same. */
void svdb__coll_share_loaded(svdb_coll *db) { note_position(db); }

void svdb__coll_publish(svdb_coll *db)
{
    note_position(db);
    if (db->mode != SVDB_OPEN_EXCLUSIVE && db->lock_fd >= 0) head_publish(db);
}

int svdb__coll_head_limit(svdb_coll *db, uint64_t *limit)
{
    head h;
    if (head_read(db, &h) && h.ino == db->wal.ino) {
        *limit = h.end;
        return 1;
    }
    *limit = UINT64_MAX;
    return 0;
}
