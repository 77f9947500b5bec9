/* Helpers shared by the fuzz targets: a per-process scratch directory and
 * whole-file writes. */
#ifndef SVDB_FUZZ_COMMON_H
#define SVDB_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline const char *fz_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/svdb-fuzz-%d", base && *base ? base : "/tmp", (int)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

static inline void fz_write(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) abort();
    if (len && write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

static inline void fz_unlink(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

#endif
