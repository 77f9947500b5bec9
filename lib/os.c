/* The POSIX calls of the library. Every failure path returns a status with a
 * message that names the file; ENOSPC-like errors become SVDB_ENOSPC so
 * callers can tell a full disk from a broken one. */
#include "os.h"

#include "alloc.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static long io_countdown;
static int io_err;

void svdb__io_fail_after(long n, int err)
{
    io_err = err;
    __atomic_store_n(&io_countdown, n, __ATOMIC_SEQ_CST);
}

/* Returns nonzero (with errno set) when the fault hook fires. */
static int injected(void)
{
    if (__atomic_load_n(&io_countdown, __ATOMIC_RELAXED) <= 0) return 0;
    if (__atomic_sub_fetch(&io_countdown, 1, __ATOMIC_SEQ_CST) != 0) return 0;
    errno = io_err ? io_err : EIO;
    return 1;
}

static int io_status(int err) { return (err == ENOSPC || err == EDQUOT || err == EFBIG) ? SVDB_ENOSPC : SVDB_EIO; }

int svdb__pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = injected() ? -1 : pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            return svdb__fail_errno(io_status(err), err, "cannot write %s at offset %llu", path,
                                    (unsigned long long)off);
        }
        p += w;
        off += (uint64_t)w;
        len -= (size_t)w;
    }
    return SVDB_OK;
}

int svdb__pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return svdb__fail_errno(SVDB_EIO, errno, "cannot read %s at offset %llu", path, (unsigned long long)off);
        if (r == 0)
            return svdb__fail(SVDB_ECORRUPT, "%s is truncated: %zu bytes missing at offset %llu", path, len,
                              (unsigned long long)off);
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return SVDB_OK;
}

int svdb__fd_sync(int fd, const char *path)
{
    if (injected() || fdatasync(fd) != 0) return svdb__fail_errno(io_status(errno), errno, "cannot fsync %s", path);
    return SVDB_OK;
}

int svdb__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return svdb__fail_errno(SVDB_EIO, errno, "cannot open directory %s", dir);
    int rc = SVDB_OK;
    if (injected() || fsync(fd) != 0) rc = svdb__fail_errno(SVDB_EIO, errno, "cannot fsync directory %s", dir);
    close(fd);
    return rc;
}

int svdb__truncate(int fd, uint64_t len, const char *path)
{
    if (injected() || ftruncate(fd, (off_t)len) != 0)
        return svdb__fail_errno(io_status(errno), errno, "cannot truncate %s", path);
    return SVDB_OK;
}

/* dir/name, in a new string (NULL on OOM). */
char *svdb__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = svdb__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int svdb__dir_open(svdb_dir *d, const char *path)
{
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d->path = NULL;
    if (d->fd < 0) return svdb__fail_errno(errno == ENOTDIR ? SVDB_EINVAL : SVDB_EIO, errno, "cannot open directory %s", path);
    /* An absolute name keeps messages meaningful after a chdir(). */
    char *abs = realpath(path, NULL);
    d->path = svdb__strndup(abs ? abs : path, strlen(abs ? abs : path));
    free(abs);
    if (!d->path) {
        svdb__dir_close(d);
        return svdb__fail(SVDB_ENOMEM, "out of memory");
    }
    return SVDB_OK;
}

void svdb__dir_close(svdb_dir *d)
{
    if (d->fd >= 0) close(d->fd);
    d->fd = -1;
    svdb__free(d->path);
    d->path = NULL;
}

char *svdb__dir_file(const svdb_dir *d, const char *name) { return svdb__path_join(d->path, name); }

/* Fails naming dir/name, with the errno of the failed call. */
static int fail_file(const svdb_dir *d, const char *name, int err, const char *what)
{
    int status = err == ELOOP ? SVDB_ECORRUPT : io_status(err);
    if (err == ELOOP)
        return svdb__fail(status, "cannot %s %s/%s: it is a symbolic link, which svdb never follows inside a collection",
                          what, d->path, name);
    return svdb__fail_errno(status, err, "cannot %s %s/%s", what, d->path, name);
}

int svdb__file_open(const svdb_dir *d, const char *name, int flags, int *fd)
{
    *fd = openat(d->fd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    if (*fd >= 0) return SVDB_OK;
    if (errno == ENOENT) return SVDB_ENOTFOUND;
    return fail_file(d, name, errno, "open");
}

int svdb__file_create(const svdb_dir *d, const char *name, int *fd)
{
    *fd = -1;
    SVDB_TRY(svdb__file_unlink(d, name));
    *fd = openat(d->fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (*fd < 0) return fail_file(d, name, errno, "create");
    return SVDB_OK;
}

int svdb__file_unlink(const svdb_dir *d, const char *name)
{
    struct stat st;
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return SVDB_OK;
        return fail_file(d, name, errno, "inspect");
    }
    /* Something we did not make (a directory) is left alone and reported;
     * a link is removed as a link, never followed. */
    if (S_ISDIR(st.st_mode))
        return svdb__fail(SVDB_ECORRUPT, "%s/%s is a directory, where svdb keeps a file; move it away", d->path, name);
    if (unlinkat(d->fd, name, 0) != 0 && errno != ENOENT) return fail_file(d, name, errno, "remove");
    return SVDB_OK;
}

int svdb__file_stat(const svdb_dir *d, const char *name, struct stat *st)
{
    if (fstatat(d->fd, name, st, AT_SYMLINK_NOFOLLOW) == 0) return 1;
    if (errno == ENOENT) return 0;
    return fail_file(d, name, errno, "inspect");
}

int svdb__file_rename(const svdb_dir *d, const char *from, const char *to)
{
    if (injected() || renameat(d->fd, from, d->fd, to) != 0)
        return svdb__fail_errno(io_status(errno), errno, "cannot rename %s/%s to %s", d->path, from, to);
    return SVDB_OK;
}

int svdb__dir_sync(const svdb_dir *d)
{
    if (injected() || fsync(d->fd) != 0) return svdb__fail_errno(SVDB_EIO, errno, "cannot fsync directory %s", d->path);
    return SVDB_OK;
}

void svdb__fd_close(int fd)
{
    if (fd >= 0) close(fd);
}

int svdb__fd_stat(int fd, const char *path, struct stat *st)
{
    if (fstat(fd, st) != 0) return svdb__fail_errno(SVDB_EIO, errno, "cannot stat %s", path);
    return SVDB_OK;
}

int svdb__fd_dup(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

void svdb__file_discard(const svdb_dir *d, const char *name) { unlinkat(d->fd, name, 0); }

int svdb__path_stat(const char *path, struct stat *st)
{
    if (stat(path, st) == 0) return 1;
    if (errno == ENOENT) return 0;
    return svdb__fail_errno(SVDB_EIO, errno, "cannot access %s", path);
}

int svdb__dir_create(const char *path)
{
    if (mkdir(path, 0755) != 0) {
        int err = errno;
        struct stat st;
        /* Another process made it first (several opening a new collection
         * at once): a directory is what was asked for. */
        if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return SVDB_OK;
        return svdb__fail_errno(err == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, err, "cannot create directory %s", path);
    }
    /* Make the new directory entry itself durable. */
    char *parent = svdb__strndup(path, strlen(path));
    if (!parent) return svdb__fail(SVDB_ENOMEM, "out of memory");
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(parent, ".");
    int rc = svdb__fsync_dir(parent);
    svdb__free(parent);
    return rc;
}

int svdb__dir_list(const svdb_dir *d, svdb_dir_fn fn, void *ctx)
{
    /* A descriptor of its own: readdir moves the offset of the one it reads. */
    int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dh) {
        int err = errno;
        if (fd >= 0) close(fd);
        return svdb__fail_errno(SVDB_EIO, err, "cannot list directory %s", d->path);
    }
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(dh));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) found = fn(ctx, e->d_name);
    closedir(dh);
    return found;
}

int svdb__file_lock(const svdb_dir *d, const char *name, int shared, int *fd)
{
    *fd = openat(d->fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (*fd < 0) {
        if (errno == ELOOP)
            return svdb__fail(SVDB_ECORRUPT, "lock file %s/%s is a symbolic link, which svdb never follows", d->path,
                              name);
        return svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create lock file %s/%s",
                                d->path, name);
    }
    if (flock(*fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) return SVDB_OK;
    int err = errno;
    close(*fd);
    *fd = -1;
    if (err == EWOULDBLOCK) return SVDB_ELOCKED;
    return svdb__fail_errno(SVDB_EIO, err, "cannot lock %s/%s", d->path, name);
}

int svdb__fd_flock_shared(int fd, const char *path)
{
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) return SVDB_OK;
    if (errno == EWOULDBLOCK) return SVDB_ELOCKED;
    return svdb__fail_errno(SVDB_EIO, errno, "cannot lock %s", path);
}

int svdb__lockfile_open(const svdb_dir *d, const char *name, int writable, int *fd)
{
    *fd = writable ? openat(d->fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644)
                   : openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd >= 0) return SVDB_OK;
    if (errno == ELOOP)
        return svdb__fail(SVDB_ECORRUPT, "lock file %s/%s is a symbolic link, which svdb never follows", d->path, name);
    if (!writable) return SVDB_OK;
    return svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create lock file %s/%s", d->path,
                            name);
}

static int range_set(int fd, int byte, int type)
{
    struct flock fl = {.l_type = (short)type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* Polls with a growing sleep (50 us to 1 ms): the holder's turn is short,
 * and a blocking F_OFD_SETLKW could not time out without a signal. */
int svdb__range_lock(int fd, int byte, int type, uint32_t wait_ms, const char *path)
{
    struct timespec start, now, nap = {0, 50000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (range_set(fd, byte, type) == 0) return SVDB_OK;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            return svdb__fail_errno(SVDB_EIO, errno, "cannot lock %s", path);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double ms = (double)(now.tv_sec - start.tv_sec) * 1e3 + (double)(now.tv_nsec - start.tv_nsec) / 1e6;
        if (ms >= wait_ms) return SVDB_EBUSY;
        nanosleep(&nap, NULL);
        if (nap.tv_nsec < 1000000) nap.tv_nsec *= 2;
    }
}

void svdb__range_unlock(int fd, int byte)
{
    if (fd >= 0) (void)range_set(fd, byte, F_UNLCK);
}

int svdb__range_held_by_others(int fd, int byte)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl) != 0) return 1; /* in doubt: assume others */
    return fl.l_type != F_UNLCK;
}

int svdb__file_try_lock(const svdb_dir *d, const char *name, int *fd)
{
    *fd = openat(d->fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0) return SVDB_OK;
    if (range_set(*fd, SVDB_LOCK_OPEN, F_WRLCK) == 0) return SVDB_OK;
    close(*fd);
    *fd = -1;
    return SVDB_ELOCKED;
}

void svdb__lock_holder(const svdb_dir *d, const char *name, char *pid, size_t size)
{
    pid[0] = '\0';
    int fd = openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t r = pread(fd, pid, size - 1, 0);
    close(fd);
    pid[r > 0 ? (size_t)r : 0] = '\0';
    pid[strcspn(pid, " \r\n")] = '\0';
}

char *svdb__file_read_small(const svdb_dir *d, const char *name, size_t max, size_t *len)
{
    int fd;
    struct stat st;
    if (svdb__file_open(d, name, O_RDONLY, &fd) != SVDB_OK) return NULL;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < max)
        buf = svdb__calloc(1, (size_t)st.st_size + 1);
    if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        svdb__free(buf);
        buf = NULL;
    }
    close(fd);
    if (buf && len) *len = (size_t)st.st_size;
    return buf;
}

int svdb__dir_open_at(const svdb_dir *parent, const char *name, svdb_dir *d)
{
    d->path = NULL;
    d->fd = openat(parent->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d->fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return 0;
        return svdb__fail_errno(SVDB_EIO, errno, "cannot open directory %s/%s", parent->path, name);
    }
    d->path = svdb__path_join(parent->path, name);
    if (!d->path) return svdb__dir_close(d), svdb__fail(SVDB_ENOMEM, "out of memory");
    return 1;
}

int svdb__dir_make_all(const char *path)
{
    char *p = svdb__strndup(path, strlen(path));
    SVDB_FAIL_IF(!p, SVDB_ENOMEM, "out of memory");
    int rc = SVDB_OK;
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char was = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = svdb__fail_errno(errno == ENOSPC ? SVDB_ENOSPC : SVDB_EIO, errno, "cannot create directory %s", p);
        *s = was;
        if (!was || rc != SVDB_OK) break;
    }
    svdb__free(p);
    return rc;
}

/* Empties the directory fd (its entries removed, subdirectories first
 * emptied); `path` names the top directory in messages. */
static int empty_fd(int fd, const char *path, const char *keep)
{
    /* A descriptor of its own for reading, as in svdb__dir_list. */
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dh = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dh) {
        int err = errno;
        if (dfd >= 0) close(dfd);
        return svdb__fail_errno(SVDB_EIO, err, "cannot list directory %s", path);
    }
    int rc = SVDB_OK;
    for (struct dirent *e; rc == SVDB_OK && (e = readdir(dh));) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || (keep && !strcmp(n, keep))) continue;
        int sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            rc = empty_fd(sub, path, NULL);
            close(sub);
        }
        if (rc == SVDB_OK && unlinkat(fd, n, sub >= 0 ? AT_REMOVEDIR : 0) != 0)
            rc = svdb__fail_errno(SVDB_EIO, errno, "cannot remove %s/%s", path, n);
    }
    closedir(dh);
    return rc;
}

int svdb__dir_empty(const svdb_dir *d, const char *keep) { return empty_fd(d->fd, d->path, keep); }

int svdb__dir_remove(const svdb_dir *d, const char *name)
{
    if (unlinkat(d->fd, name, AT_REMOVEDIR) != 0)
        return svdb__fail_errno(SVDB_EIO, errno, "cannot remove %s/%s", d->path, name);
    return SVDB_OK;
}

uint64_t svdb__os_random64(void)
{
    uint64_t u = 0;
    if (getrandom(&u, sizeof u, 0) != (ssize_t)sizeof u) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        u = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    return u;
}
