/* The table of open handles. svdb_open gives the caller a token, not a
 * pointer: an index into this table with a generation count. A closed
 * handle's token never matches again (its slot's generation moved on), so a
 * stale handle is reported as SVDB_EMISUSE instead of reaching freed memory
 * or another collection that reused the address.
 *
 * Each entry also counts the calls in flight on it, so that closing a handle
 * while other threads use it is defined: svdb_close retires the token (new
 * calls fail), waits for the calls in flight to return, and only then frees
 * the collection. */
#ifndef SVDB_HANDLES_H
#define SVDB_HANDLES_H

struct svdb;
struct svdb_handle;

/* One call in flight on a handle, on the caller's stack. The calls of a
 * thread form a list (outer: the call whose progress handler made this
 * one), so close can tell it was called from inside a call on its own
 * handle, which it could never wait for. */
typedef struct svdb_call {
    const struct svdb *token;
    struct svdb_handle *db;
    struct svdb_call *outer;
} svdb_call;

/* Registers db; *token receives the value to hand out. SVDB_ENOMEM when the
 * table is full or cannot grow. */
int svdb__handle_add(struct svdb_handle *db, struct svdb **token);
/* The handle's collection, or NULL when the token is not (or no longer) an
 * open handle. Safe against concurrent opens and closes of other handles,
 * but nothing keeps the handle open after it returns: entry points use
 * svdb__handle_enter. */
struct svdb_handle *svdb__handle_get(const struct svdb *token);
/* Registers a call on token: call->db receives the handle, which stays
 * valid until svdb__handle_leave(call). Returns 0 (nothing registered)
 * when the token is not, or no longer, an open handle. Two atomic
 * operations and no lock. */
int svdb__handle_enter(const struct svdb *token, svdb_call *call);
void svdb__handle_leave(svdb_call *call);
/* Nonzero when call is nested in another call of this thread on the same
 * handle (a progress handler called back from inside that call). */
int svdb__handle_nested(const svdb_call *call);
/* Retires a token: later enters fail. Returns nonzero for the one caller
 * that retired it, 0 when it was not (or no longer) open. */
int svdb__handle_retire(const struct svdb *token);
/* After svdb__handle_retire: waits until no call is in flight on it. */
void svdb__handle_drain(const struct svdb *token);
/* After svdb__handle_drain: frees the token's entry for reuse. */
void svdb__handle_remove(const struct svdb *token);
/* Calls fn on every open collection. Only for a fork child's handler, where
 * the table's lock is held across the fork (see svdb__handles_lock). */
void svdb__handles_each(void (*fn)(struct svdb_handle *db));
/* The table's lock, taken before fork() and released after it in both
 * processes (pthread_atfork), so the child finds the table consistent. */
void svdb__handles_lock(void);
void svdb__handles_unlock(void);

#endif
