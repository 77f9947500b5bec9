/* File I/O used by the log and snapshots: whole reads and writes, fsync,
 * rename, with OS errors mapped to svdb statuses and a test-only fault hook. */
#ifndef SVDB_FILEIO_H
#define SVDB_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

int svdb__pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path);
int svdb__pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path);
int svdb__fsync(int fd, const char *path);
int svdb__fsync_dir(const char *dir);
int svdb__rename(const char *from, const char *to);
int svdb__truncate(int fd, uint64_t len, const char *path);
/* Joins dir and name into a new string (NULL on OOM). */
char *svdb__path_join(const char *dir, const char *name);

/* A collection's directory, held open from svdb_open on: every later file
 * operation is relative to this descriptor (openat, renameat, unlinkat), so a
 * chdir() or a rename of a parent cannot point the library at another
 * directory. `path` (absolute where it could be resolved) only names files in
 * messages. Files are never followed through symbolic links (O_NOFOLLOW). */
typedef struct svdb_dir {
    int fd;
    char *path;
} svdb_dir;

/* Opens the directory `path` (following a link there: the caller named it). */
int svdb__dir_open(svdb_dir *d, const char *path);
void svdb__dir_close(svdb_dir *d);
/* dir/name for a message (NULL on OOM). */
char *svdb__dir_file(const svdb_dir *d, const char *name);
/* Opens an existing file; flags: O_RDONLY or O_RDWR (O_NOFOLLOW and
 * O_CLOEXEC are added). *fd is -1 and errno kept on failure, and the status
 * is SVDB_ENOTFOUND for a missing file (without a message, for the caller
 * to word), or SVDB_EIO naming the file. */
int svdb__file_open(const svdb_dir *d, const char *name, int flags, int *fd);
/* Creates a new file for writing, never through a link and never reusing
 * one: a stale regular file of that name is removed first, then the file is
 * made with O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC. */
int svdb__file_create(const svdb_dir *d, const char *name, int *fd);
/* Removes name if it is there (a missing file is not an error). */
int svdb__file_unlink(const svdb_dir *d, const char *name);
/* lstat of dir/name: 1 when it exists, 0 when it does not, or an error. */
int svdb__file_stat(const svdb_dir *d, const char *name, struct stat *st);
int svdb__file_rename(const svdb_dir *d, const char *from, const char *to);
/* fsync of the directory itself, for renames and creations in it. */
int svdb__dir_sync(const svdb_dir *d);

/* Test hook: make the n-th write, fsync, rename or truncate from now fail
 * with `err` (n = 0 disables). */
void svdb__io_fail_after(long n, int err);

#endif
