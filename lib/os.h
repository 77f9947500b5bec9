/* The OS layer: every POSIX file, directory, lock and randomness call of the
 * library goes through here (memory maps through mapfile.h), with OS errors
 * mapped to svdb statuses and messages that name the file, and a test-only
 * fault hook. Callers still name O_RDONLY / O_RDWR and struct stat. */
#ifndef SVDB_OS_H
#define SVDB_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Whole writes and reads at an offset, retried on EINTR and short counts. A
 * read past the end of the file is SVDB_ECORRUPT (the file is truncated). */
int svdb__pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path);
int svdb__pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path);
/* fdatasync: the file's data (and its size) are durable when this returns. */
int svdb__fd_sync(int fd, const char *path);
/* fsync of the directory at `dir`, by path (before a collection's own
 * directory is open; afterwards svdb__dir_sync). */
int svdb__fsync_dir(const char *dir);
int svdb__truncate(int fd, uint64_t len, const char *path);

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
/* dir and name joined into a new string (NULL on OOM). */
char *svdb__path_join(const char *dir, const char *name);
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

/* Closes fd when it is open (>= 0); errors are ignored: nothing is written
 * through a descriptor closed here that was not synced before. */
void svdb__fd_close(int fd);
/* fstat, failing with "cannot stat <path>". */
int svdb__fd_stat(int fd, const char *path, struct stat *st);
/* A close-on-exec duplicate of fd (an exec'd child must not inherit it), or
 * -1 with errno set. */
int svdb__fd_dup(int fd);
/* Removes dir/name, best effort and without a message: for cleaning up a
 * file this call's caller made, after a failure it is already reporting. */
void svdb__file_discard(const svdb_dir *d, const char *name);

/* stat of a path the caller named (links followed): 1 when it exists, 0
 * when it does not, or SVDB_EIO "cannot access <path>". */
int svdb__path_stat(const char *path, struct stat *st);
/* mkdir(path, 0755), then an fsync of its parent so the new entry is
 * durable. SVDB_ENOSPC for a full disk, else SVDB_EIO, naming the path. */
int svdb__dir_create(const char *path);
/* Calls fn for each entry of d but "." and ".." until it returns nonzero;
 * returns that value, 0 when every entry was seen, or SVDB_EIO. */
typedef int (*svdb_dir_fn)(void *ctx, const char *name);
int svdb__dir_list(const svdb_dir *d, svdb_dir_fn fn, void *ctx);

/* Opens dir/name (created if missing, kept between opens, never through a
 * link) and takes a whole-file flock on it (shared or exclusive) without
 * waiting, held until *fd is closed. Locks belong to the open file
 * description, so a second handle in the same process conflicts too; the
 * kernel drops the lock when the process dies. SVDB_ELOCKED, with no
 * message for the caller to word, when another holds a conflicting one;
 * else an error naming the file. *fd is -1 on failure. */
int svdb__file_lock(const svdb_dir *d, const char *name, int shared, int *fd);

/* A collection's LOCK file holds byte-range locks (Linux open file
 * description locks, F_OFD_SETLK): a lock belongs to the open file, so two
 * handles of one process exclude each other as two processes do, a forked
 * child's copy of the descriptor shares the parent's lock instead of taking
 * one, and the kernel drops every lock when the last descriptor closes: a
 * killed process leaves no stale lock. Byte SVDB_LOCK_OPEN is held shared by
 * every open handle (exclusively by an exclusive one), byte SVDB_LOCK_WRITE
 * exclusively by the one handle writing. */
#define SVDB_LOCK_OPEN 0
#define SVDB_LOCK_WRITE 1
/* Opens dir/name never through a link: writable, created if missing; or
 * read-only, and then a missing or unreadable file gives SVDB_OK with
 * *fd = -1 (a read-only directory of a collection copied without it). */
int svdb__lockfile_open(const svdb_dir *d, const char *name, int writable, int *fd);
/* Takes lock `type` (F_RDLCK or F_WRLCK) on byte `byte` of fd, waiting up to
 * wait_ms for a conflicting holder to let go: SVDB_OK, SVDB_EBUSY (with no
 * message for the caller to word) when it stayed held, or SVDB_EIO. */
int svdb__range_lock(int fd, int byte, int type, uint32_t wait_ms, const char *path);
/* A shared whole-file flock on fd without waiting (independent of the
 * byte-range locks): SVDB_OK, SVDB_ELOCKED (no message) when a process
 * holds it exclusively, or SVDB_EIO. */
int svdb__fd_flock_shared(int fd, const char *path);
void svdb__range_unlock(int fd, int byte);
/* Nonzero when another open file description (another handle, in this
 * process or another) holds a lock on `byte` of fd's file; 1 when the check
 * itself fails. One fcntl(F_OFD_GETLK), no waiting. */
int svdb__range_held_by_others(int fd, int byte);

/* Takes the open lock of an existing collection's dir/name exclusively
 * without waiting and without creating the file (never through a link):
 * SVDB_OK with *fd holding it, or with *fd = -1 when there is no such file
 * (or it cannot be opened); SVDB_ELOCKED, with no message for the caller to
 * word, when a handle has the collection open. */
int svdb__file_try_lock(const svdb_dir *d, const char *name, int *fd);
/* The first word of the lock file dir/name (the holder's process id, which
 * the single-process catalog of earlier svdb wrote there), at most size - 1 bytes, in pid; "" when it cannot
 * be read. No message. */
void svdb__lock_holder(const svdb_dir *d, const char *name, char *pid, size_t size);

/* The whole of dir/name in a new NUL-terminated string (freed with
 * svdb__free), *len its length (len may be NULL), when it is a regular file shorter than max
 * bytes; else NULL: absent, a link, not a regular file, too long,
 * unreadable, or out of memory. For small files whose absence or damage the
 * caller treats as "not there" (the message, if any, is svdb__file_open's). */
char *svdb__file_read_small(const svdb_dir *d, const char *name, size_t max, size_t *len);

/* Opens parent/name as a directory, never through a link: 1, 0 when there
 * is no such directory (absent, a link, a file), or SVDB_EIO "cannot open
 * directory <parent>/<name>" (or SVDB_ENOMEM). Close it with
 * svdb__dir_close. */
int svdb__dir_open_at(const svdb_dir *parent, const char *name, svdb_dir *d);
/* mkdir -p path (0755): every missing directory along it is made; existing
 * ones are fine. No fsync. SVDB_ENOSPC for a full disk, else SVDB_EIO
 * "cannot create directory <prefix>". */
int svdb__dir_make_all(const char *path);
/* Removes every entry of d but `keep` (NULL: none), subdirectories with all
 * they hold, never following a link (a link is removed as a link). SVDB_EIO
 * "cannot list directory <d>" or "cannot remove <d>/<entry>". */
int svdb__dir_empty(const svdb_dir *d, const char *keep);
/* Removes the empty directory d/name: SVDB_EIO "cannot remove <d>/<name>". */
int svdb__dir_remove(const svdb_dir *d, const char *name);

/* 64 random bits from the kernel; if it has none to give, a mix of the
 * clock and the process id (good enough to tell collections apart). */
uint64_t svdb__os_random64(void);

/* Test hook: make the n-th write, fsync, rename or truncate from now fail
 * with `err` (n = 0 disables). */
void svdb__io_fail_after(long n, int err);

#endif
