/* File I/O used by the log and snapshots: whole reads and writes, fsync,
 * rename, with OS errors mapped to svdb statuses and a test-only fault hook. */
#ifndef SVDB_FILEIO_H
#define SVDB_FILEIO_H

#include <stddef.h>
#include <stdint.h>

int svdb__pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path);
int svdb__pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path);
int svdb__fsync(int fd, const char *path);
int svdb__fsync_dir(const char *dir);
int svdb__rename(const char *from, const char *to);
int svdb__truncate(int fd, uint64_t len, const char *path);
/* Joins dir and name into a new string (NULL on OOM). */
char *svdb__path_join(const char *dir, const char *name);

/* Test hook: make the n-th write, fsync, rename or truncate from now fail
 * with `err` (n = 0 disables). */
void svdb__io_fail_after(long n, int err);

#endif
