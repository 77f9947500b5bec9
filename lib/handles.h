/* The table of open handles. svdb_open gives the caller a token, not a
 * pointer: an index into this table with a generation count. A closed
 * handle's token never matches again (its slot's generation moved on), so a
 * stale handle is reported as SVDB_EMISUSE instead of reaching freed memory
 * or another collection that reused the address. */
#ifndef SVDB_HANDLES_H
#define SVDB_HANDLES_H

struct svdb;
struct svdb_handle;

/* Registers db; *token receives the value to hand out. SVDB_ENOMEM when the
 * table is full or cannot grow. */
int svdb__handle_add(struct svdb_handle *db, struct svdb **token);
/* The handle's collection, or NULL when the token is not (or no longer) an
 * open handle. Safe against concurrent opens and closes of other handles. */
struct svdb_handle *svdb__handle_get(const struct svdb *token);
/* Retires a token; later lookups of it return NULL. */
void svdb__handle_remove(const struct svdb *token);
/* Calls fn on every open collection. Only for a fork child's handler, where
 * the table's lock is held across the fork (see svdb__handles_lock). */
void svdb__handles_each(void (*fn)(struct svdb_handle *db));
/* The table's lock, taken before fork() and released after it in both
 * processes (pthread_atfork), so the child finds the table consistent. */
void svdb__handles_lock(void);
void svdb__handles_unlock(void);

#endif
