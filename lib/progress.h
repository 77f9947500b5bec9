/* Progress reports of long operations to the caller's handler
 * (svdb_progress_handler): at most one call per SVDB_PROGRESS_MS, from the
 * thread doing the work, and a sticky stop once the handler returns
 * nonzero. The operation then undoes what it did and fails with
 * SVDB_ECANCELED. */
#ifndef SVDB_PROGRESS_H
#define SVDB_PROGRESS_H

#include "svdb.h"

#include <stdint.h>

#define SVDB_PROGRESS_MS 50

typedef struct svdb_progress {
    svdb_progress_fn fn; /* NULL: no reports, never stops */
    void *ctx;
    int op;
    uint64_t total;
    uint64_t last_ns; /* the last report, or the start */
    unsigned ticks;
    int reported, stop;
} svdb_progress;

/* Test hook: the least time between two reports (SVDB_PROGRESS_MS). */
extern uint64_t svdb__progress_interval_ns;

/* Starts an operation of `total` units; reports nothing yet. */
void svdb__progress_begin(svdb_progress *p, svdb_progress_fn fn, void *ctx, int op, uint64_t total);
/* `done` units are done: reports when SVDB_PROGRESS_MS have passed; nonzero
 * once the handler has asked to stop. */
int svdb__progress_tick(svdb_progress *p, uint64_t done);
/* The same, reading the clock on every call (for callers that tick rarely). */
int svdb__progress_now(svdb_progress *p, uint64_t done);
/* The operation finished: a last report of total/total if any was made. */
void svdb__progress_end(svdb_progress *p);
/* The status of a stopped operation, with its message. */
int svdb__progress_canceled(const svdb_progress *p, const char *what);

#endif
