/* Memory maps: mmap, madvise and munmap, which nothing else in the library
 * calls. */
#include "mapfile.h"

#include "error.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int svdb__map_file(svdb_map *out, int fd, size_t len, int mode, const char *what, const char *path)
{
    int priv = mode == SVDB_MAP_PRIVATE, writable = priv || mode == SVDB_MAP_SHARED_WRITE;
    void *p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, priv ? MAP_PRIVATE : MAP_SHARED, fd, 0);
    out->base = p == MAP_FAILED ? NULL : p;
    out->len = p == MAP_FAILED ? 0 : len;
    if (p == MAP_FAILED) return svdb__fail_errno(SVDB_ENOMEM, errno, "cannot map %s %s", what, path);
    return SVDB_OK;
}

void svdb__map_release(svdb_map *m)
{
    if (m->base) munmap(m->base, m->len);
    m->base = NULL;
    m->len = 0;
}

/* The whole pages of [off, off + len): their start in *start, and their
 * length (0 when there are none). */
static size_t whole_pages(const svdb_map *m, size_t off, size_t len, char **start)
{
    if (!m->base) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t end = off < m->len && len < m->len - off ? off + len : m->len;
    size_t lo = (off + page - 1) & ~(page - 1);
    if (end != m->len) end &= ~(page - 1);
    *start = (char *)m->base + lo;
    return end > lo ? end - lo : 0;
}

void svdb__map_advise_random(const svdb_map *m, size_t off, size_t len)
{
    char *p;
    size_t n = whole_pages(m, off, len, &p);
    if (n) madvise(p, n, MADV_RANDOM);
}

void svdb__map_drop(const svdb_map *m, size_t off, size_t len)
{
    char *p;
    size_t n = whole_pages(m, off, len, &p);
    if (n) madvise(p, n, MADV_DONTNEED);
}
