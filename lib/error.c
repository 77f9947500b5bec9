/* Error codes to text, and the per-thread message behind svdb_errmsg(). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Thread-local so concurrent callers (cffi releases the GIL) never read each
 * other's message. */
static _Thread_local char tl_msg[512];

const char *svdb_strerror(int status)
{
    switch (status) {
    case SVDB_OK: return "ok";
    case SVDB_EINVAL: return "invalid argument";
    case SVDB_EMISUSE: return "library misuse (NULL or closed handle)";
    case SVDB_ENOMEM: return "out of memory";
    case SVDB_EIO: return "I/O error";
    case SVDB_ECORRUPT: return "file is corrupt or not an svdb file";
    case SVDB_EVERSION: return "unsupported file format version";
    case SVDB_ELOCKED: return "collection is locked by another handle or process";
    case SVDB_ENOTFOUND: return "id not found";
    case SVDB_EEXISTS: return "id already exists";
    case SVDB_EDIM: return "dimension mismatch";
    case SVDB_ENOSPC: return "no space left on device";
    case SVDB_ETOOBIG: return "value exceeds a limit";
    case SVDB_EREADONLY: return "writes refused: read-only handle, or after an I/O failure (reopen)";
    case SVDB_EMETA: return "metadata is not a valid JSON object";
    case SVDB_EDUPLICATE: return "duplicate id in batch";
    case SVDB_EMISMATCH: return "options do not match the stored collection";
    case SVDB_ECANCELED: return "canceled by the progress handler";
    case SVDB_EBUSY: return "the write lock stayed busy past the busy timeout";
    default: return "unknown status code";
    }
}

const char *svdb_errmsg(void) { return tl_msg; }

void svdb__clear_error(void) { tl_msg[0] = '\0'; }

/* Messages are formatted into a local buffer first: callers may pass the
 * current message (svdb_errmsg()) as an argument to extend it. */
int svdb__fail(int status, const char *fmt, ...)
{
    char buf[sizeof tl_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(tl_msg, buf, sizeof tl_msg);
    return status;
}

int svdb__fail_errno(int status, int err, const char *fmt, ...)
{
    char buf[sizeof tl_msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof buf) snprintf(buf + n, sizeof buf - (size_t)n, ": %s", strerror(err));
    memcpy(tl_msg, buf, sizeof tl_msg);
    return status;
}
