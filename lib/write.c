/* The write path: a batch is copied from the caller's memory once, checked,
 * planned (every id resolved, memory reserved), logged, then applied in
 * memory. Replay applies logged batches through the same plan and apply, so
 * what a reopen builds is what the writes built. */
#include "collection_impl.h"

#include "alloc.h"
#include "error.h"
#include "idmap.h"
#include "meta.h"
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- planning writes */

/* What a batch replaced, kept while its rows are linked so that a progress
 * handler can cancel the linking: each row's old id and metadata (packed),
 * and its old vector (a copy for f32; for compact storage the float32
 * original's place in a map, which lives until the next checkpoint). */
typedef struct put_undo {
    uint8_t *was_new;
    char **blobs;
    uint32_t *meta_lens;
    const float **vecs;
    float *copies;
} put_undo;

typedef struct put_plan {
    uint32_t *slots; /* existing slot, or SVDB_NO_SLOT for a new row */
    char **blobs;    /* each row's id and metadata packed by svdb__row_pack (NULL: inline) */
    size_t n_new;
    int same_vectors;      /* every row exists and keeps its vector (an update of metadata only) */
    svdb_progress *link;   /* reports and may cancel the linking (NULL: not cancellable) */
    int replay;            /* replayed: the rows wait for the run's end (or a links record) to be linked */
    put_undo undo;         /* filled when `link` is set */
    uint64_t next_seq;     /* the store's before the batch: a canceled batch gives its sequence numbers back */
} put_plan;

static void plan_free(put_plan *p, size_t n)
{
    for (size_t i = 0; p->blobs && i < n; i++) svdb__free(p->blobs[i]);
    for (size_t i = 0; p->undo.blobs && i < n; i++) svdb__free(p->undo.blobs[i]);
    svdb__free(p->blobs);
    svdb__free(p->slots);
    svdb__free(p->undo.was_new);
    svdb__free(p->undo.blobs);
    svdb__free(p->undo.meta_lens);
    svdb__free(p->undo.vecs);
    svdb__free(p->undo.copies);
    memset(p, 0, sizeof *p);
}

/* Keys of a "seen" table over a batch: the slot is the row in the batch. */
static const char *batch_key(const void *ctx, uint32_t i, size_t *len)
{
    const svdb_batch *b = ctx;
    *len = b->id_lens[i];
    return b->ids[i];
}

/* Rejects an id that appears twice in the batch. */
static int check_unique(const svdb_batch *b, int dup_status)
{
    if (b->n < 2) return SVDB_OK;
    svdb_idmap seen = {0};
    int rc = svdb__idmap_reserve(&seen, b->n, batch_key, b);
    for (size_t i = 0; rc == SVDB_OK && i < b->n; i++) {
        uint32_t prev = svdb__idmap_find(&seen, b->ids[i], b->id_lens[i], batch_key, b);
        if (prev != SVDB_NO_SLOT)
            rc = svdb__fail(dup_status, "id '%.*s' appears twice in the batch (rows %u and %zu)", (int)b->id_lens[i],
                            b->ids[i], prev, i);
        else
            svdb__idmap_insert(&seen, b->ids[i], b->id_lens[i], (uint32_t)i);
    }
    svdb__idmap_free(&seen);
    return rc;
}

static int plan_put(const svdb_store *s, const svdb_batch *b, int is_add, int dup_status, put_plan *p)
{
    memset(p, 0, sizeof *p);
    SVDB_TRY(check_unique(b, dup_status));
    p->slots = svdb__malloc(b->n * sizeof *p->slots);
    p->blobs = svdb__calloc(b->n, sizeof *p->blobs);
    int rc = (!p->slots || !p->blobs) ? svdb__fail(SVDB_ENOMEM, "out of memory planning a batch") : SVDB_OK;
    for (size_t i = 0; rc == SVDB_OK && i < b->n; i++) {
        p->slots[i] = svdb__store_find(s, b->ids[i], b->id_lens[i]);
        if (p->slots[i] != SVDB_NO_SLOT && is_add) {
            rc = svdb__fail(SVDB_EEXISTS, "id '%.*s' (row %zu) already exists; use upsert to overwrite it",
                            (int)b->id_lens[i], b->ids[i], i);
            break;
        }
        if (p->slots[i] == SVDB_NO_SLOT) p->n_new++;
        int has_meta = b->metas && b->metas[i];
        rc = svdb__row_pack(b->ids[i], b->id_lens[i], has_meta ? b->metas[i] : NULL, has_meta ? b->meta_lens[i] : 0,
                            &p->blobs[i]);
    }
    if (rc != SVDB_OK) plan_free(p, b->n);
    return rc;
}

/* Saves what a cancellable batch replaces (see put_undo). */
static int save_undo(const svdb_coll *db, const svdb_batch *b, put_plan *p)
{
    const svdb_store_view *s = svdb__store_view(db->store);
    put_undo *u = &p->undo;
    size_t n = b->n, dim = s->dim, copy = svdb__store_compact(db->store) ? 0 : n - p->n_new;
    u->was_new = svdb__malloc(n);
    u->blobs = svdb__calloc(n, sizeof *u->blobs);
    u->meta_lens = svdb__malloc(n * sizeof *u->meta_lens);
    u->vecs = svdb__malloc(n * sizeof *u->vecs);
    u->copies = copy ? svdb__malloc(copy * dim * sizeof(float)) : NULL;
    if (!u->was_new || !u->blobs || !u->meta_lens || !u->vecs || (copy && !u->copies))
        return svdb__fail(SVDB_ENOMEM, "out of memory planning a batch of %zu rows", n);
    for (size_t i = 0, c = 0; i < n; i++) {
        u->was_new[i] = p->slots[i] == SVDB_NO_SLOT;
        if (u->was_new[i]) continue;
        const svdb_row *r = svdb__row(s, p->slots[i]);
        SVDB_TRY(svdb__row_pack(svdb__row_id(r), r->id_len, svdb__row_meta(r), r->meta_len, &u->blobs[i]));
        u->meta_lens[i] = r->meta_len;
        u->vecs[i] = svdb__vec(s, p->slots[i]);
        if (copy) {
            memcpy(u->copies + c * dim, u->vecs[i], dim * sizeof(float));
            u->vecs[i] = u->copies + c++ * dim;
        }
    }
    return SVDB_OK;
}

/* Links a batch's rows (write lock held); with a progress handler, a chunk
 * at a time, reporting and stopping between chunks. *done: rows linked. */
static int link_rows(svdb_coll *db, const uint32_t *slots, size_t n, svdb_progress *pr, size_t *done)
{
    if (!pr) {
        int rc = svdb__hnsw_insert_many(db->graph, db->store, db->kern, slots, n, db->build_threads);
        *done = rc == SVDB_OK ? n : 0;
        return rc;
    }
    size_t chunk = (size_t)256 * (db->build_threads ? db->build_threads : 1);
    for (*done = 0; *done < n;) {
        size_t m = n - *done < chunk ? n - *done : chunk;
        SVDB_TRY(svdb__hnsw_insert_many(db->graph, db->store, db->kern, slots + *done, m, db->build_threads));
        *done += m;
        if (svdb__progress_now(pr, *done)) return SVDB_ECANCELED;
    }
    return SVDB_OK;
}

/* Takes a batch back out after its linking was canceled (write lock held):
 * the linked rows leave the graph, new rows leave the store, replaced rows
 * get their old id, metadata and vector back and are linked again. */
static int undo_put(svdb_coll *db, const svdb_batch *b, put_plan *p, size_t linked)
{
    svdb_store *s = db->store;
    put_undo *u = &p->undo;
    for (size_t i = b->n; i-- > 0;) { /* newest first: free slots go back in the order they were taken */
        uint32_t slot = p->slots[i];
        if (i < linked) svdb__hnsw_remove(db->graph, s, db->kern, slot);
        if (u->was_new[i]) {
            svdb__store_remove(s, slot);
            p->slots[i] = SVDB_NO_SLOT;
            continue;
        }
        svdb__store_replace(s, slot, u->blobs[i], u->meta_lens[i], u->vecs[i]);
        u->blobs[i] = NULL;
    }
    /* as if the batch never was: the next rows get the numbers a handle
     * replaying the log gives them (levels and links records depend on it) */
    svdb__store_set_next_seq(s, p->next_seq);
    size_t relink = 0; /* the replaced rows, in batch order */
    for (size_t i = 0; i < b->n; i++)
        if (p->slots[i] != SVDB_NO_SLOT) p->slots[relink++] = p->slots[i];
    int rc = relink ? svdb__hnsw_insert_many(db->graph, s, db->kern, p->slots, relink, db->build_threads) : SVDB_OK;
    if (rc != SVDB_OK) {
        db->poisoned = 1;
        return svdb__fail(rc, "a canceled write could not restore the index (%s); reopen the collection", svdb_errmsg());
    }
    return SVDB_ECANCELED;
}

/* The store part cannot fail (memory was reserved) and takes the plan's
 * strings. Linking into the HNSW graph may still run out of memory for an
 * upper level; the handle is then poisoned, since the graph no longer covers
 * every row, and reopening rebuilds a consistent state. */
static int apply_put(svdb_coll *db, const svdb_batch *b, put_plan *p)
{
    svdb_store *s = db->store;
    /* A row that keeps its vector keeps its place in the graph. */
    svdb_hnsw *graph = p->same_vectors ? NULL : db->graph;
    uint32_t *linked = graph ? p->slots : NULL; /* reused: the slot each row ends in */
    for (size_t i = 0; i < b->n; i++) {
        const float *v = b->vectors + i * b->dim;
        uint32_t mlen = b->metas && b->metas[i] ? b->meta_lens[i] : 0;
        uint32_t slot = p->slots[i];
        if (slot == SVDB_NO_SLOT) {
            slot = svdb__store_insert(s, p->blobs[i], b->ids[i], b->id_lens[i], mlen, v);
        } else {
            if (graph) svdb__hnsw_remove(graph, s, db->kern, slot);
            svdb__store_replace(s, slot, p->blobs[i], mlen, v);
        }
        p->blobs[i] = NULL;
        if (linked) linked[i] = slot;
    }
    if (!graph) return SVDB_OK;
    if (p->replay) { /* room reserved by commit_put */
        memcpy(db->replay_rows + db->n_replay_rows, linked, b->n * sizeof *linked);
        db->n_replay_rows += b->n;
        return SVDB_OK;
    }
    if (db->background) {
        for (size_t i = 0; i < b->n; i++) svdb__indexer_push(&db->ix, linked[i]);
        return SVDB_OK;
    }
    size_t done = 0;
    int rc = link_rows(db, linked, b->n, p->link, &done);
    if (rc == SVDB_ECANCELED) return undo_put(db, b, p, done);
    if (rc != SVDB_OK) db->poisoned = 1;
    return rc;
}

/* Reserves room under the write lock (growth may move the chunk tables). */
static int reserve(svdb_coll *db, size_t adds, size_t deletes, uint32_t dim, int *dim_fixed)
{
    svdb__gate_wrlock(&db->gate);
    *dim_fixed = 0;
    if (svdb__store_dim(db->store) == 0 && dim) {
        svdb__store_set_dim(db->store, dim);
        *dim_fixed = 1;
    }
    int rc = svdb__store_reserve(db->store, adds, deletes);
    if (rc == SVDB_OK && db->graph) rc = svdb__hnsw_reserve(db->graph, svdb__store_slots(db->store) + adds);
    if (rc == SVDB_OK && db->background && db->graph)
        rc = svdb__indexer_reserve(&db->ix, svdb__store_slots(db->store) + adds);
    svdb__gate_unlock(&db->gate);
    return rc;
}

/* Undoes a dimension fixed by a batch that then failed. */
static void unfix_dim(svdb_coll *db, int dim_fixed)
{
    if (!dim_fixed) return;
    svdb__gate_wrlock(&db->gate);
    if (svdb__store_count(db->store) == 0) svdb__store_unset_dim(db->store); /* also after a canceled batch took its rows back */
    svdb__gate_unlock(&db->gate);
}

/* Compact storage keeps no copy of a row's float32 vector: the store points
 * at it in the log record (payload at file offset `off`) through a map,
 * until a checkpoint moves it to the snapshot. */
static int use_logged_vectors(svdb_coll *db, svdb_batch *b, uint64_t off)
{
    uint64_t at = svdb__put_vectors_at(off);
    SVDB_FAIL_IF(at % sizeof(float) != 0, SVDB_ECORRUPT, "log %s: vectors at offset %llu are not 4-byte aligned",
                 db->wal.path, (unsigned long long)at);
    const void *v = svdb__wal_view(&db->wal, at, b->n * (size_t)b->dim * sizeof(float));
    if (!v) return svdb__fail(SVDB_ENOMEM, "%s", svdb_errmsg());
    b->vectors = v;
    return SVDB_OK;
}

/* ---------------------------------------------------------------- writes */

int svdb__coll_check_dim(const svdb_coll *db, uint32_t dim, const char *what)
{
    SVDB_FAIL_IF(dim == 0, SVDB_EDIM, "dim is 0");
    SVDB_FAIL_IF(dim > SVDB_MAX_DIM, SVDB_EDIM, "dim %u exceeds the maximum %d", dim, SVDB_MAX_DIM);
    uint32_t have = svdb__store_dim(db->store);
    SVDB_FAIL_IF(have && dim != have, SVDB_EDIM, "%s have %u dimensions but the collection has %u", what, dim, have);
    return SVDB_OK;
}

/* Writes are refused once the log or the index could not be updated: the
 * in-memory state may then differ from what a reopen would build. */
static int writable(svdb_coll *db)
{
    SVDB_FAIL_IF(db->poisoned, SVDB_EREADONLY, "collection %s refuses writes after an I/O failure; reopen it", db->dir.path);
    SVDB_FAIL_IF(db->background && svdb__indexer_failed(&db->ix), SVDB_EREADONLY,
                 "collection %s refuses writes: background indexing failed (svdb_index_wait tells why); reopen it",
                 db->dir.path);
    return SVDB_OK;
}

/* Builds a record buffer (header room + payload) and appends it. */
static int log_record(svdb_coll *db, uint32_t type, const svdb_batch *b)
{
    int pad = db->wal.version >= 2;
    size_t plen = type == SVDB_REC_PUT ? svdb__put_size(b, pad) : svdb__delete_size(b, pad);
    unsigned char *rec = svdb__malloc(SVDB_REC_HEADER_BYTES + plen);
    if (!rec) return svdb__fail(SVDB_ENOMEM, "out of memory encoding a %zu-byte log record", plen);
    if (type == SVDB_REC_PUT) svdb__put_encode(b, rec + SVDB_REC_HEADER_BYTES, pad);
    else svdb__delete_encode(b, rec + SVDB_REC_HEADER_BYTES, pad);
    int rc = svdb__wal_append(&db->wal, rec, plen, type, db->next_lsn, db->durability == SVDB_DURABILITY_SYNC,
                              &db->poisoned);
    svdb__free(rec);
    if (rc == SVDB_OK) {
        db->next_lsn++;
        db->dirty = 1;
    }
    return rc;
}

/* A copy of the caller's strings: the first `cap` bytes of s at most, plus
 * one (so an over-long string stays over-long for the checks), NUL-ended. */
static size_t copy_len(const char *s, size_t cap) { return s ? strnlen(s, cap + 1) : 0; }
static char *copy_str(char *to, const char *s, size_t len)
{
    memcpy(to, s, len);
    to[len] = '\0';
    return to;
}

/* Copies a batch from the caller's memory into one block of its own
 * (vectors, then each id and metadata NUL-ended), so the caller's buffers
 * are read once: the checks then run on the copy, and what was checked is
 * exactly what is logged and stored. Another thread writing the caller's
 * arrays during the call (pysvdb hands numpy memory over without the GIL)
 * can no longer slip a NaN or a bad id past the checks. b's pointers go
 * into *block, which the caller frees; lengths are set by the checks. */
int svdb__coll_copy_batch(svdb_batch *b, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metas, void **block)
{
    /* Each string's length is measured once (kept in the length arrays until
     * the checks set them) and exactly that many bytes are copied: a string
     * changed in between yields a copy with a NUL inside, which the checks
     * then see, never a copy past the block. */
    size_t vbytes = vectors ? n * (size_t)dim * sizeof(float) : 0, bytes = vbytes;
    for (size_t i = 0; i < n; i++) {
        b->id_lens[i] = (uint32_t)copy_len(ids[i], SVDB_MAX_ID_BYTES);
        bytes += b->id_lens[i] + 1;
        if (metas && metas[i]) {
            b->meta_lens[i] = (uint32_t)copy_len(metas[i], SVDB_MAX_METADATA_BYTES);
            bytes += b->meta_lens[i] + 1;
        }
    }
    unsigned char *blk = svdb__malloc(bytes ? bytes : 1);
    if (!blk) return svdb__fail(SVDB_ENOMEM, "out of memory copying a batch of %zu rows", n);
    if (vbytes) memcpy(blk, vectors, vbytes);
    b->vectors = vectors ? (const float *)(void *)blk : NULL;
    char *at = (char *)blk + vbytes;
    for (size_t i = 0; i < n; i++) {
        if (ids[i]) {
            b->ids[i] = copy_str(at, ids[i], b->id_lens[i]);
            at += b->id_lens[i] + 1;
        }
        if (metas && metas[i]) {
            b->metas[i] = copy_str(at, metas[i], b->meta_lens[i]);
            at += b->meta_lens[i] + 1;
        }
    }
    *block = blk;
    return SVDB_OK;
}

/* ---------------------------------------------------------------- replayed rows */

static int reserve_replay_rows(svdb_coll *db, size_t n)
{
    if (db->n_replay_rows + n <= db->cap_replay_rows) return SVDB_OK;
    size_t cap = db->cap_replay_rows ? db->cap_replay_rows : 1024;
    while (cap < db->n_replay_rows + n) cap *= 2;
    uint32_t *r = svdb__realloc(db->replay_rows, cap * sizeof *r);
    if (!r) return svdb__fail(SVDB_ENOMEM, "out of memory replaying the log");
    db->replay_rows = r;
    db->cap_replay_rows = cap;
    return SVDB_OK;
}

/* Links (or queues for the indexer) the rows of the last replayed put that
 * its links record did not link: before the next record, so that rows are
 * linked in log order, as the writes linked them. */
static int replay_flush(svdb_coll *db)
{
    size_t n = 0;
    int rc = SVDB_OK;
    if (!db->n_replay_rows) return SVDB_OK;
    svdb__gate_wrlock(&db->gate);
    const svdb_store_view *v = svdb__store_view(db->store);
    for (size_t i = 0; i < db->n_replay_rows; i++) { /* one put's slots: distinct */
        uint32_t slot = db->replay_rows[i];
        if (svdb__slot_live(v, slot) && svdb__hnsw_level_of(db->graph, slot) == SVDB_HNSW_NO_LEVEL)
            db->replay_rows[n++] = slot;
    }
    if (db->background) { /* a hold keeps them while a deferred links record may come */
        for (size_t i = 0; i < n; i++) svdb__indexer_push_held(&db->ix, db->replay_rows[i]);
    } else if (n) {
        rc = svdb__hnsw_insert_many(db->graph, db->store, db->kern, db->replay_rows, n, db->build_threads);
        if (rc != SVDB_OK) db->poisoned = 1; /* rows without a place in the graph: reopen */
    }
    svdb__gate_unlock(&db->gate);
    db->n_replay_rows = 0;
    return rc;
}

int svdb__coll_replay_done(svdb_coll *db)
{
    int rc = replay_flush(db);
    svdb__coll_replay_reset(db);
    return rc;
}

void svdb__coll_replay_reset(svdb_coll *db)
{
    db->n_replay_rows = 0;
    db->replay_put_lsn = 0;
}

/* ---------------------------------------------------------------- commit */

/* A put batch (checked, or read back from the log) planned, logged when
 * `live`, and applied: the one path of both writes and replay. Replay
 * (open, single-threaded) takes the locks too, which costs nothing there. */
/* Takes a canceled write's record back off the log, so no reopen applies it. */
static int cut_canceled(svdb_coll *db, uint64_t end)
{
    int rc = svdb__wal_cut(&db->wal, end);
    if (rc != SVDB_OK) {
        db->poisoned = 1;
        return svdb__fail(rc, "a canceled write could not be cut from the log (%s): a reopen would apply it; reopen the "
                              "collection", svdb_errmsg());
    }
    db->next_lsn--;
    return svdb__fail(SVDB_ECANCELED, "the write was canceled by the progress handler while its rows were linked; "
                                      "nothing was changed");
}

static int commit_put(svdb_coll *db, svdb_batch *b, int is_add, int live, uint64_t logged_at, int same_vectors,
                      svdb_progress *link)
{
    put_plan p;
    int fixed = 0;
    SVDB_TRY(plan_put(db->store, b, is_add, live ? SVDB_EDUPLICATE : SVDB_ECORRUPT, &p));
    p.same_vectors = same_vectors;
    p.link = link && db->graph && !db->background && !same_vectors ? link : NULL;
    p.replay = !live && db->graph && !same_vectors;
    p.next_seq = svdb__store_next_seq(db->store);
    int rc = p.link ? save_undo(db, b, &p) : SVDB_OK;
    if (rc == SVDB_OK && p.replay) rc = reserve_replay_rows(db, b->n);
    /* a cancel frees the new rows' slots again: room for that too */
    if (rc == SVDB_OK) rc = reserve(db, p.n_new, p.link ? p.n_new : 0, b->dim, &fixed);
    if (rc == SVDB_OK && live) svdb__coll_links_log_deferred(db);
    uint64_t log_end = db->wal.end;
    if (rc == SVDB_OK && live) {
        logged_at = svdb__wal_next_payload(&db->wal);
        rc = log_record(db, SVDB_REC_PUT, b);
    }
    if (rc != SVDB_OK) unfix_dim(db, fixed);
    if (rc == SVDB_OK && svdb__store_compact(db->store)) {
        rc = use_logged_vectors(db, b, logged_at);
        if (rc != SVDB_OK && live) { /* logged but not applied: the handle no longer matches what a reopen builds */
            db->poisoned = 1;
            rc = svdb__fail(SVDB_EREADONLY,
                            "the write was logged but its vectors could not be mapped (%s); reopen the collection",
                            svdb_errmsg());
        }
    }
    if (rc == SVDB_OK) {
        svdb__gate_wrlock(&db->gate);
        rc = apply_put(db, b, &p);
        svdb__gate_unlock(&db->gate);
        if (db->background && live) svdb__indexer_notify(&db->ix);
        if (rc == SVDB_ECANCELED) {
            unfix_dim(db, fixed);
            rc = cut_canceled(db, log_end);
        } else if (rc != SVDB_OK && live) {
            rc = svdb__fail(rc, "the write was logged but the index could not be updated (%s); reopen the collection",
                            svdb_errmsg());
        }
    }
    /* rows linked now, or kept in place by a metadata-only update (rows
     * queued for the indexer go into a later write's deferred record) */
    if (rc == SVDB_OK && live && db->graph && (!db->background || same_vectors))
        svdb__coll_links_log(db, p.slots, b->n, db->next_lsn - 1);
    plan_free(&p, b->n);
    return rc;
}

/* Deletes the rows in slots (ids in b), logged first when `live`. */
static int commit_delete(svdb_coll *db, const svdb_batch *b, const uint32_t *slots, int live)
{
    int fixed;
    SVDB_TRY(reserve(db, 0, b->n, 0, &fixed));
    if (live) svdb__coll_links_log_deferred(db);
    if (live) SVDB_TRY(log_record(db, SVDB_REC_DELETE, b));
    svdb__gate_wrlock(&db->gate);
    for (size_t i = 0; i < b->n; i++) {
        if (db->graph) svdb__hnsw_remove(db->graph, db->store, db->kern, slots[i]);
        svdb__store_remove(db->store, slots[i]);
    }
    svdb__gate_unlock(&db->gate);
    return SVDB_OK;
}

/* ---------------------------------------------------------------- replay */

static int replay_put(svdb_coll *db, const unsigned char *payload, size_t len, uint64_t off, uint64_t lsn)
{
    svdb_batch b;
    float *vec = NULL;
    SVDB_TRY(svdb__put_decode(payload, len, &b, &vec));
    int rc = SVDB_OK;
    uint32_t have = svdb__store_dim(db->store);
    if (have && have != b.dim)
        rc = svdb__fail(SVDB_ECORRUPT, "log record has %u dims but the collection has %u", b.dim, have);
    if (rc == SVDB_OK) rc = commit_put(db, &b, 0, 0, off, 0, NULL);
    if (rc == SVDB_OK) db->replay_put_lsn = lsn;
    /* its rows may get their links later: keep them queued meanwhile */
    if (rc == SVDB_OK) svdb__coll_links_hold(db);
    svdb__batch_free(&b);
    svdb__free(vec);
    return rc;
}

static int replay_delete(svdb_coll *db, const unsigned char *payload, size_t len)
{
    svdb_batch b;
    SVDB_TRY(svdb__delete_decode(payload, len, &b));
    int rc = check_unique(&b, SVDB_ECORRUPT);
    uint32_t *slots = rc == SVDB_OK ? svdb__malloc(b.n * sizeof *slots) : NULL;
    if (rc == SVDB_OK && !slots) rc = svdb__fail(SVDB_ENOMEM, "out of memory replaying the log");
    for (size_t i = 0; rc == SVDB_OK && i < b.n; i++)
        if ((slots[i] = svdb__store_find(db->store, b.ids[i], b.id_lens[i])) == SVDB_NO_SLOT)
            rc = svdb__fail(SVDB_ECORRUPT, "log deletes id '%.*s', which does not exist", (int)b.id_lens[i], b.ids[i]);
    if (rc == SVDB_OK) rc = commit_delete(db, &b, slots, 0);
    svdb__free(slots);
    svdb__batch_free(&b);
    return rc;
}

int svdb__coll_replay(void *ctx, uint32_t type, const unsigned char *payload, size_t len, uint64_t off, uint64_t lsn)
{
    svdb_coll *db = ctx;
    if (type == SVDB_REC_LINKS) return svdb__coll_links_replay(db, payload, len, lsn);
    SVDB_TRY(replay_flush(db));
    db->replay_put_lsn = 0;
    return type == SVDB_REC_PUT ? replay_put(db, payload, len, off, lsn) : replay_delete(db, payload, len);
}

/* ---------------------------------------------------------------- the calls */

/* Checks the copied ids of a batch and sets their lengths. */
int svdb__coll_check_ids(svdb_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t len;
        int rc = svdb__id_check(b->ids[i], &len);
        if (rc != SVDB_OK) return svdb__fail(rc, "row %zu: %s", i, svdb_errmsg());
        b->id_lens[i] = (uint32_t)len;
    }
    return SVDB_OK;
}

/* Checks a copied batch's vectors and new metadata (`patch`: metadata may
 * hold nulls that remove keys, for a merge). */
static int check_rows(svdb_batch *b, svdb_progress *pr)
{
    for (size_t i = 0; i < b->n; i++) {
        if (svdb__progress_tick(pr, i)) return svdb__progress_canceled(pr, "the write");
        if (b->vectors) SVDB_TRY(svdb__space_check_vector(b->vectors + i * b->dim, b->dim, "vector of row", i));
        if (b->metas && b->metas[i]) {
            size_t mlen = strnlen(b->metas[i], SVDB_MAX_METADATA_BYTES + 1);
            SVDB_TRY(svdb__meta_check_new(b->metas[i], mlen, i));
            b->meta_lens[i] = (uint32_t)mlen;
        }
    }
    return SVDB_OK;
}

int svdb__coll_put(svdb_coll *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                   const char *const *metadatas, int is_add)
{
    svdb_batch b;
    SVDB_TRY(svdb__batch_alloc(&b, n, 1));
    b.dim = dim;
    void *block = NULL;
    int rc = svdb__coll_write_begin(db);
    if (rc != SVDB_OK) {
        svdb__batch_free(&b);
        return rc;
    }
    rc = writable(db);
    /* The dimension first: the caller's buffer holds n * dim floats only if
     * dim is the collection's. */
    if (rc == SVDB_OK) rc = svdb__coll_check_dim(db, dim, "vectors");
    if (rc == SVDB_OK) rc = svdb__coll_copy_batch(&b, n, ids, vectors, dim, metadatas, &block);
    if (rc == SVDB_OK) rc = svdb__coll_check_ids(&b);
    svdb_progress check, link;
    svdb__progress_begin(&check, db->progress_fn, db->progress_ctx, SVDB_PROGRESS_WRITE, n);
    if (rc == SVDB_OK) rc = check_rows(&b, &check);
    if (rc == SVDB_OK) svdb__progress_end(&check);
    svdb__progress_begin(&link, db->progress_fn, db->progress_ctx, SVDB_PROGRESS_LINK, n);
    if (rc == SVDB_OK) rc = commit_put(db, &b, is_add, 1, 0, 0, db->progress_fn ? &link : NULL);
    if (rc == SVDB_OK) svdb__progress_end(&link);
    if (rc == SVDB_OK) svdb__coll_autocheckpoint(db);
    svdb__coll_write_end(db);
    if (rc == SVDB_OK) svdb__coll_throttle(db);
    svdb__batch_free(&b);
    svdb__free(block);
    return rc;
}

int svdb__coll_delete(svdb_coll *db, size_t n, const char *const *ids, size_t *n_deleted)
{
    svdb_batch all, hit;
    SVDB_TRY(svdb__batch_alloc(&all, n, 0));
    void *block = NULL;
    int rc = svdb__coll_copy_batch(&all, n, ids, NULL, 0, NULL, &block); /* the caller's ids are read once */
    if (rc == SVDB_OK) rc = svdb__coll_check_ids(&all);
    if (rc == SVDB_OK) rc = svdb__batch_alloc(&hit, n, 0);
    if (rc != SVDB_OK) {
        svdb__batch_free(&all);
        svdb__free(block);
        return rc;
    }
    uint32_t *slots = svdb__malloc(n * sizeof *slots);
    svdb_idmap seen = {0};
    rc = slots ? svdb__idmap_reserve(&seen, n, batch_key, &hit) : svdb__fail(SVDB_ENOMEM, "out of memory");
    int held = 0;
    if (rc == SVDB_OK) {
        rc = svdb__coll_write_begin(db);
        held = rc == SVDB_OK;
    }
    if (rc == SVDB_OK) rc = writable(db);
    /* Missing ids are skipped and repeats collapse: deleting is idempotent. */
    hit.n = 0;
    for (size_t i = 0; rc == SVDB_OK && i < n; i++) {
        uint32_t slot = svdb__store_find(db->store, all.ids[i], all.id_lens[i]);
        /* keyed by position in `hit`, which holds the ids taken so far */
        if (slot == SVDB_NO_SLOT || svdb__idmap_find(&seen, all.ids[i], all.id_lens[i], batch_key, &hit) != SVDB_NO_SLOT)
            continue;
        svdb__idmap_insert(&seen, all.ids[i], all.id_lens[i], (uint32_t)hit.n);
        hit.ids[hit.n] = all.ids[i];
        hit.id_lens[hit.n] = all.id_lens[i];
        slots[hit.n++] = slot;
    }
    if (rc == SVDB_OK && hit.n) rc = commit_delete(db, &hit, slots, 1);
    if (rc == SVDB_OK && hit.n) svdb__coll_autocheckpoint(db);
    if (held) svdb__coll_write_end(db);
    if (rc == SVDB_OK && n_deleted) *n_deleted = hit.n;
    svdb__idmap_free(&seen);
    svdb__free(slots);
    svdb__batch_free(&all);
    svdb__batch_free(&hit);
    svdb__free(block);
    return rc;
}

/* The rows an update writes: each found id with its vector (given, or the
 * row's own) and its metadata (kept, replaced, or merged). */
typedef struct update_rows {
    svdb_batch b;
    float *vectors; /* owned */
    char **merged;  /* owned merge results */
} update_rows;

static void update_rows_free(update_rows *u, size_t n)
{
    for (size_t i = 0; u->merged && i < n; i++) svdb__free(u->merged[i]);
    svdb__free(u->merged);
    svdb__free(u->vectors);
    svdb__batch_free(&u->b);
}

static int build_update(svdb_coll *db, const svdb_batch *in, const svdb_update_options *o, update_rows *u)
{
    const svdb_store *s = db->store;
    const svdb_store_view *view = svdb__store_view(s);
    int merge = o && o->merge_metadata, skip_missing = o && o->skip_missing, insert = o && o->insert_missing;
    uint32_t dim = view->dim ? view->dim : in->dim; /* an upsert may fix an empty collection's dimension */
    SVDB_TRY(svdb__batch_alloc(&u->b, in->n, 1));
    u->b.dim = dim;
    u->vectors = dim ? svdb__malloc(in->n * (size_t)dim * sizeof(float)) : NULL;
    u->merged = svdb__calloc(in->n, sizeof *u->merged);
    if ((dim && !u->vectors) || !u->merged) return svdb__fail(SVDB_ENOMEM, "out of memory updating %zu rows", in->n);
    u->b.vectors = u->vectors;
    size_t k = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t slot = svdb__store_find(s, in->ids[i], in->id_lens[i]);
        if (slot == SVDB_NO_SLOT && skip_missing && !insert) continue;
        SVDB_FAIL_IF(slot == SVDB_NO_SLOT && !insert, SVDB_ENOTFOUND,
                     "id '%s' (row %zu) does not exist; nothing was updated", in->ids[i], i);
        SVDB_FAIL_IF(slot == SVDB_NO_SLOT && !in->vectors, SVDB_EINVAL,
                     "id '%s' (row %zu) does not exist and no vector was given to add it; nothing was updated",
                     in->ids[i], i);
        const svdb_row *r = slot != SVDB_NO_SLOT ? svdb__row(view, slot) : NULL;
        u->b.ids[k] = in->ids[i];
        u->b.id_lens[k] = in->id_lens[i];
        const float *v = in->vectors ? in->vectors + i * (size_t)dim : svdb__vec(view, slot);
        memcpy(u->vectors + k * (size_t)dim, v, dim * sizeof(float));
        const char *meta = r ? svdb__row_meta(r) : NULL;
        uint32_t mlen = r ? r->meta_len : 0;
        if (in->metas && in->metas[i] && merge) {
            size_t len;
            SVDB_TRY(svdb__meta_merge(meta, mlen, in->metas[i], in->meta_lens[i], i, &u->merged[k], &len));
            meta = u->merged[k], mlen = (uint32_t)len;
        } else if (in->metas && in->metas[i]) {
            meta = in->metas[i], mlen = in->meta_lens[i];
        }
        u->b.metas[k] = meta;
        u->b.meta_lens[k] = meta ? mlen : 0;
        k++;
    }
    u->b.n = k;
    return SVDB_OK;
}

int svdb__coll_update(svdb_coll *db, size_t n, const char *const *ids, const float *vectors, uint32_t dim,
                      const char *const *metas, const svdb_update_options *o, size_t *n_updated)
{
    svdb_batch in;
    SVDB_TRY(svdb__batch_alloc(&in, n, 1));
    in.dim = dim;
    void *block = NULL;
    update_rows u = {0};
    int rc = svdb__coll_write_begin(db);
    if (rc != SVDB_OK) {
        svdb__batch_free(&in);
        return rc;
    }
    rc = writable(db);
    if (rc == SVDB_OK && vectors) rc = svdb__coll_check_dim(db, dim, "vectors");
    if (rc == SVDB_OK) rc = svdb__coll_copy_batch(&in, n, ids, vectors, dim, metas, &block);
    if (rc == SVDB_OK) rc = svdb__coll_check_ids(&in);
    svdb_progress check, link;
    svdb__progress_begin(&check, db->progress_fn, db->progress_ctx, SVDB_PROGRESS_WRITE, n);
    if (rc == SVDB_OK) rc = check_rows(&in, &check);
    if (rc == SVDB_OK) svdb__progress_end(&check);
    svdb__progress_begin(&link, db->progress_fn, db->progress_ctx, SVDB_PROGRESS_LINK, n);
    if (rc == SVDB_OK) rc = check_unique(&in, SVDB_EDUPLICATE);
    if (rc == SVDB_OK) rc = build_update(db, &in, o, &u);
    /* One log record for the batch: the rows as they will be, so replay
     * needs no merge and the log format is the one of any put. */
    if (rc == SVDB_OK && u.b.n) rc = commit_put(db, &u.b, 0, 1, 0, vectors == NULL, db->progress_fn ? &link : NULL);
    if (rc == SVDB_OK && u.b.n) svdb__progress_end(&link);
    if (rc == SVDB_OK && u.b.n) svdb__coll_autocheckpoint(db);
    svdb__coll_write_end(db);
    if (rc == SVDB_OK && u.b.n && vectors) svdb__coll_throttle(db); /* a metadata-only update queues no row */
    if (rc == SVDB_OK && n_updated) *n_updated = u.b.n;
    update_rows_free(&u, n);
    svdb__batch_free(&in);
    svdb__free(block);
    return rc;
}
