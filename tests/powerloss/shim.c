/* LD_PRELOAD power-loss simulator. For files under $PL_DIR it remembers each
 * file's content as of its last fsync/fdatasync, and the directory's entries
 * as of its last fsync. On the $PL_CRASH_AT-th write, fsync, rename, truncate
 * or unlink under $PL_DIR it writes only that durable state to $PL_OUT (what
 * a disk would hold after losing power at that instant) and exits with 77.
 * Unsynced data and unsynced renames are lost, as on a real power cut. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FILES 64

typedef struct {
    ino_t ino;
    unsigned char *data; /* content at the last sync; NULL = never synced */
    size_t len;
} durable_file;

typedef struct {
    char name[256];
    ino_t ino;
} durable_entry;

static durable_file files[MAX_FILES];
static durable_entry entries[MAX_FILES];
static int n_files, n_entries, have_dir_sync;
static long events, crash_at = -1;
static const char *dir, *out;
static size_t dir_len;

static void init(void)
{
    static int done;
    if (done) return;
    done = 1;
    dir = getenv("PL_DIR");
    out = getenv("PL_OUT");
    const char *c = getenv("PL_CRASH_AT");
    if (c) crash_at = atol(c);
    dir_len = dir ? strlen(dir) : 0;
}

static int watched_fd(int fd, ino_t *ino, int *is_dir)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0 || !dir) return 0;
    path[n] = '\0';
    if (strncmp(path, dir, dir_len) != 0 || (path[dir_len] != '/' && path[dir_len] != '\0')) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    *ino = st.st_ino;
    *is_dir = S_ISDIR(st.st_mode);
    return 1;
}

static int watched_path(const char *p)
{
    init();
    return dir && p && strncmp(p, dir, dir_len) == 0 && p[dir_len] == '/';
}

static durable_file *file_for(ino_t ino)
{
    for (int i = 0; i < n_files; i++)
        if (files[i].ino == ino) return &files[i];
    if (n_files == MAX_FILES) abort();
    files[n_files].ino = ino;
    return &files[n_files++];
}

static void crash_now(void)
{
    mkdir(out, 0755);
    for (int i = 0; have_dir_sync && i < n_entries; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%.4000s/%.255s", out, entries[i].name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(99);
        for (int f = 0; f < n_files; f++)
            if (files[f].ino == entries[i].ino && files[f].data) {
                if (write(fd, files[f].data, files[f].len) != (ssize_t)files[f].len) _exit(99);
            }
        close(fd);
    }
    _exit(77);
}

static void event(void)
{
    init();
    if (crash_at > 0 && ++events == crash_at) crash_now();
}

static void sync_file(int fd, ino_t ino)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    durable_file *f = file_for(ino);
    free(f->data);
    f->len = (size_t)st.st_size;
    f->data = malloc(f->len + 1);
    ssize_t (*real_pread)(int, void *, size_t, off_t) = dlsym(RTLD_NEXT, "pread");
    if (real_pread(fd, f->data, f->len, 0) != (ssize_t)f->len) abort();
}

static void sync_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    n_entries = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_REG && n_entries < MAX_FILES) {
            snprintf(entries[n_entries].name, sizeof entries[n_entries].name, "%s", e->d_name);
            entries[n_entries].ino = e->d_ino;
            n_entries++;
        }
    closedir(d);
    have_dir_sync = 1;
}

#define WRAP_SYNC(NAME)                                                                            \
    int NAME(int fd)                                                                               \
    {                                                                                              \
        static int (*real)(int);                                                                   \
        if (!real) real = dlsym(RTLD_NEXT, #NAME);                                                 \
        init();                                                                                    \
        ino_t ino;                                                                                 \
        int is_dir;                                                                                \
        if (watched_fd(fd, &ino, &is_dir)) {                                                       \
            event();                                                                               \
            int rc = real(fd);                                                                     \
            if (rc == 0) {                                                                         \
                if (is_dir) sync_dir();                                                            \
                else sync_file(fd, ino);                                                           \
            }                                                                                      \
            return rc;                                                                             \
        }                                                                                          \
        return real(fd);                                                                           \
    }
WRAP_SYNC(fsync)
WRAP_SYNC(fdatasync)

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    ino_t ino;
    int is_dir;
    init();
    if (watched_fd(fd, &ino, &is_dir)) event();
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }

int ftruncate64(int fd, off_t len)
{
    static int (*real)(int, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "ftruncate64");
    ino_t ino;
    int is_dir;
    init();
    if (watched_fd(fd, &ino, &is_dir)) event();
    return real(fd, len);
}

int ftruncate(int fd, off_t len) { return ftruncate64(fd, len); }

int rename(const char *a, const char *b)
{
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "rename");
    if (watched_path(a)) event();
    return real(a, b);
}

int unlink(const char *p)
{
    static int (*real)(const char *);
    if (!real) real = dlsym(RTLD_NEXT, "unlink");
    if (watched_path(p)) event();
    return real(p);
}
