/* Progress reports (see progress.h). */
#include "progress.h"

#include "error.h"

#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t svdb__progress_interval_ns = (uint64_t)SVDB_PROGRESS_MS * 1000000u;

void svdb__progress_begin(svdb_progress *p, svdb_progress_fn fn, void *ctx, int op, uint64_t total)
{
    p->fn = fn;
    p->ctx = ctx;
    p->op = op;
    p->total = total;
    p->last_ns = fn ? now_ns() : 0;
    p->ticks = 0;
    p->reported = p->stop = 0;
}

int svdb__progress_now(svdb_progress *p, uint64_t done)
{
    if (!p->fn || p->stop) return p->stop;
    uint64_t t = now_ns();
    if (t - p->last_ns < svdb__progress_interval_ns) return 0;
    p->last_ns = t;
    p->reported = 1;
    p->stop = p->fn(p->ctx, p->op, done, p->total) != 0;
    return p->stop;
}

int svdb__progress_tick(svdb_progress *p, uint64_t done)
{
    /* The clock is read every 16 units: cheap next to any unit of work. */
    if (!p->fn || p->stop || (++p->ticks & 15u) != 0) return p->stop;
    return svdb__progress_now(p, done);
}

void svdb__progress_end(svdb_progress *p)
{
    if (p->fn && p->reported && !p->stop) p->fn(p->ctx, p->op, p->total, p->total);
}

int svdb__progress_canceled(const svdb_progress *p, const char *what)
{
    (void)p;
    return svdb__fail(SVDB_ECANCELED, "%s was canceled by the progress handler; nothing was changed", what);
}
