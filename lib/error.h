/* Status messages: a static text per code and a thread-local detail message. */
#ifndef SVDB_ERROR_H
#define SVDB_ERROR_H

#include "svdb.h"

#if defined(__GNUC__)
#define SVDB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SVDB_PRINTF(a, b)
#endif

/* Records `fmt` as the calling thread's message and returns `status`. */
int svdb__fail(int status, const char *fmt, ...) SVDB_PRINTF(2, 3);
/* Like svdb__fail, with ": strerror(errno)" appended. */
int svdb__fail_errno(int status, int err, const char *fmt, ...) SVDB_PRINTF(3, 4);
/* Clears the thread's message at the start of a successful call. */
void svdb__clear_error(void);

#define SVDB_FAIL_IF(cond, status, ...)                                                           \
    do {                                                                                           \
        if (cond) return svdb__fail((status), __VA_ARGS__);                                        \
    } while (0)
#define SVDB_TRY(expr)                                                                             \
    do {                                                                                           \
        int svdb_rc_ = (expr);                                                                     \
        if (svdb_rc_ != SVDB_OK) return svdb_rc_;                                                  \
    } while (0)

#endif
