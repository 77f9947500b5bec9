/* Links records (docs/format.md): a handle that others follow logs the
 * HNSW link lists it chose for its rows, right after a put or, for rows
 * its background indexer linked, deferred to its next write; handles that
 * replay the rows adopt the lists instead of searching their graphs. */
#include "collection_impl.h"

#include "alloc.h"
#include "error.h"

#include <string.h>

/* Whether a put's links are worth logging: only for handles that follow
 * this one (another handle holds the collection open), in a log that may
 * hold links records. One fcntl per write. */
static int links_wanted(const svdb_coll *db)
{
    return db->mode == SVDB_OPEN_SHARED && db->wal.version >= 3 && db->lock_fd >= 0 &&
           svdb__range_held_by_others(db->lock_fd, SVDB_LOCK_OPEN);
}

static uint32_t seq_lo(const svdb_store_view *v, uint32_t slot) { return (uint32_t)svdb__row(v, slot)->seq; }

/* A links record for the rows in slots that the graph holds,
 * with their link lists as they are now, so that the handles that replay
 * it adopt them rather than search (svdb__hnsw_adopt). put_lsn: the put
 * just logged whose rows these are (linked on this thread), or 0 for a
 * deferred record, rows of earlier puts that the indexer linked since.
 * Advice only: not synced, and a failure costs the others their shortcut,
 * not the write (a failed append cuts itself back, or refuses later writes
 * when it cannot, as any append). */
void svdb__coll_links_log(svdb_coll *db, const uint32_t *slots, size_t n, uint64_t put_lsn)
{
    if (!links_wanted(db)) return;
    /* the read lock: a background indexer may be linking other rows */
    svdb__gate_rdlock(&db->gate);
    const svdb_store_view *v = svdb__store_view(db->store);
    size_t lists = 0, nlinks = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (!svdb__slot_live(v, slots[i])) continue; /* deleted since it was linked */
        uint8_t L = svdb__hnsw_level_of(db->graph, slots[i]);
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        rows++;
        for (int l = 0; l <= L; l++) {
            uint32_t c;
            svdb__hnsw_links(db->graph, slots[i], l, &c);
            lists++;
            nlinks += c;
        }
    }
    size_t plen = svdb__links_size(rows, lists, nlinks);
    unsigned char *rec = rows ? svdb__malloc(SVDB_REC_HEADER_BYTES + plen) : NULL;
    if (!rec) {
        svdb__gate_unlock(&db->gate);
        return;
    }
    unsigned char *at = svdb__links_put_header(rec + SVDB_REC_HEADER_BYTES, put_lsn, rows);
    uint32_t seqs[2 * SVDB_MAX_HNSW_M];
    for (size_t i = 0; i < n; i++) {
        if (!svdb__slot_live(v, slots[i])) continue;
        uint8_t L = svdb__hnsw_level_of(db->graph, slots[i]);
        if (L == SVDB_HNSW_NO_LEVEL) continue;
        at = svdb__links_put_row(at, slots[i], seq_lo(v, slots[i]), L);
        for (int l = 0; l <= L; l++) {
            uint32_t c;
            const uint32_t *ln = svdb__hnsw_links(db->graph, slots[i], l, &c);
            for (uint32_t j = 0; j < c; j++) seqs[j] = seq_lo(v, ln[j]);
            at = svdb__links_put_list(at, c, ln, seqs);
        }
    }
    svdb__gate_unlock(&db->gate);
    if (svdb__wal_append(&db->wal, rec, plen, SVDB_REC_LINKS, db->next_lsn, 0, &db->poisoned) == SVDB_OK) {
        db->next_lsn++;
        db->links_logged += rows;
    } else {
        svdb__clear_error();
    }
    svdb__free(rec);
}

void svdb__coll_note_linked(svdb_coll *db, const uint32_t *slots, size_t n)
{
    if (db->mode != SVDB_OPEN_SHARED) return; /* nobody can follow */
    /* at most one entry per slot since the last write, about: a cap, not a set */
    size_t limit = svdb__store_slots(db->store);
    if (db->n_linked_rows + n > db->cap_linked_rows) {
        size_t cap = db->cap_linked_rows ? db->cap_linked_rows : 1024;
        while (cap < db->n_linked_rows + n) cap *= 2;
        uint32_t *r = db->n_linked_rows + n <= limit ? svdb__realloc(db->linked_rows, cap * sizeof *r) : NULL;
        if (!r) return; /* advice: these rows go without */
        db->linked_rows = r;
        db->cap_linked_rows = cap;
    }
    for (size_t i = 0; i < n; i++)
        if (svdb__hnsw_level_of(db->graph, slots[i]) != SVDB_HNSW_NO_LEVEL) db->linked_rows[db->n_linked_rows++] = slots[i];
    __atomic_store_n(&db->links_noted, db->n_linked_rows, __ATOMIC_RELAXED);
}

void svdb__coll_links_log_deferred(svdb_coll *db)
{
    if (!db->graph || !__atomic_load_n(&db->links_noted, __ATOMIC_RELAXED)) return;
    svdb__gate_wrlock(&db->gate);
    size_t n = db->n_linked_rows;
    uint32_t *rows = n ? svdb__malloc(n * sizeof *rows) : NULL;
    if (rows) memcpy(rows, db->linked_rows, n * sizeof *rows);
    db->n_linked_rows = 0;
    __atomic_store_n(&db->links_noted, 0, __ATOMIC_RELAXED);
    svdb__gate_unlock(&db->gate);
    if (rows) svdb__coll_links_log(db, rows, n, 0);
    svdb__free(rows);
}

/* How long a handle with background indexing keeps rows replayed from a
 * log with deferred links records in its queue, after the last such record
 * or put it replayed, before it links them itself: about a writer's pause
 * between writes, after which the links a writer's indexer chose are
 * logged (at its next write), if they ever are. */
#define LINKS_HOLD_MS 200

static int still_pending(void *ctx, uint32_t slot)
{
    svdb_coll *db = ctx;
    return svdb__slot_live(svdb__store_view(db->store), slot) &&
           svdb__hnsw_level_of(db->graph, slot) == SVDB_HNSW_NO_LEVEL;
}

/* Adopts the links a links record carries: for the rows of the put
 * replayed just before it (its `put_lsn`, the record before this one), or,
 * in a deferred record (put_lsn 0), for rows of earlier puts that the
 * writer's indexer linked later. A row is adopted only while it waits to
 * be linked (in the run's rows, or in the indexer's queue) and its slot and
 * sequence match; a neighbour only when its slot holds the row the writer
 * named and this graph holds it. Anything else (another handle's slot
 * numbering, a row replaced or linked here since) is left to be linked by
 * searching, as always. */
int svdb__coll_links_replay(svdb_coll *db, const unsigned char *payload, size_t len, uint64_t lsn)
{
    uint64_t put_lsn, n;
    SVDB_TRY(svdb__links_check(payload, len, &put_lsn, &n));
    int deferred = put_lsn == 0;
    if (!db->graph || (!deferred && (put_lsn != db->replay_put_lsn || lsn != put_lsn + 1))) return SVDB_OK;
    const svdb_store_view *v = svdb__store_view(db->store);
    const unsigned char *at = payload + 16;
    enum { PER = 2 * SVDB_MAX_HNSW_M };
    uint32_t *buf = svdb__malloc((SVDB_LINKS_MAX_LEVEL + 1) * PER * sizeof *buf); /* 64 KiB: not on the stack */
    if (!buf) return svdb__fail(SVDB_ENOMEM, "out of memory replaying the log");
    const uint32_t *nb[SVDB_LINKS_MAX_LEVEL + 1];
    uint32_t n_nb[SVDB_LINKS_MAX_LEVEL + 1];
    int rc = SVDB_OK;
    svdb__gate_wrlock(&db->gate);
    for (uint64_t i = 0; i < n && rc == SVDB_OK; i++) {
        uint32_t slot, seq, level;
        at = svdb__links_row(at, &slot, &seq, &level);
        for (uint32_t l = 0; l <= level; l++) {
            const unsigned char *pairs;
            uint32_t c;
            at = svdb__links_list(at, &c, &pairs);
            uint32_t *to = buf + (size_t)l * PER;
            n_nb[l] = 0;
            nb[l] = to;
            for (uint32_t j = 0; j < c; j++) {
                uint32_t x, xs;
                memcpy(&x, pairs + 8 * (size_t)j, 4);
                memcpy(&xs, pairs + 8 * (size_t)j + 4, 4);
                if (svdb__slot_live(v, x) && seq_lo(v, x) == xs) to[n_nb[l]++] = x;
            }
        }
        if (!svdb__slot_live(v, slot) || seq_lo(v, slot) != seq ||
            svdb__hnsw_level_of(db->graph, slot) != SVDB_HNSW_NO_LEVEL)
            continue;
        int got = svdb__hnsw_adopt(db->graph, db->store, db->kern, slot, (int)level, nb, n_nb);
        if (got < 0) rc = got;
        else if (got) db->links_adopted++;
        else db->links_declined++;
    }
    if (deferred && db->background) { /* adopted rows leave the queue; the others wait a while */
        svdb__indexer_retain(&db->ix, still_pending, db);
        svdb__indexer_hold(&db->ix, LINKS_HOLD_MS);
    }
    svdb__gate_unlock(&db->gate);
    if (deferred) db->links_deferred = 1;
    svdb__free(buf);
    return rc;
}

void svdb__coll_links_counts(svdb_coll *db, uint64_t counts[3])
{
    pthread_mutex_lock(&db->write_mu);
    counts[0] = db->links_logged;
    counts[1] = db->links_adopted;
    counts[2] = db->links_declined;
    pthread_mutex_unlock(&db->write_mu);
}

void svdb__coll_links_idle(svdb_coll *db)
{
    if (db->mode != SVDB_OPEN_SHARED || !__atomic_load_n(&db->links_noted, __ATOMIC_RELAXED)) return;
    if (!svdb__range_held_by_others(db->lock_fd, SVDB_LOCK_OPEN)) { /* nobody follows: forget them */
        svdb__gate_wrlock(&db->gate);
        db->n_linked_rows = 0;
        __atomic_store_n(&db->links_noted, 0, __ATOMIC_RELAXED);
        svdb__gate_unlock(&db->gate);
        return;
    }
    if (svdb__coll_write_try(db) == SVDB_OK) {
        if (!db->poisoned) svdb__coll_links_log_deferred(db);
        svdb__coll_write_end(db);
    }
    svdb__clear_error(); /* advice: a busy lock or a failed catch-up is the next write's to meet */
}

void svdb__coll_links_hold(svdb_coll *db)
{
    if (db->links_deferred && db->background) svdb__indexer_hold(&db->ix, LINKS_HOLD_MS);
}
