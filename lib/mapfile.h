/* Memory maps of the collection's files: the one module that maps, advises
 * and unmaps (LMDB's me_map, sqlite's pager: one owner of the map).
 *
 * Ownership: a region (svdb_map) has exactly one owner at a time and no
 * reference count. It is a small value, so that making one allocates
 * nothing (a write that has been logged must not fail on memory to map its
 * vectors); its fields are mapfile.c's, read through the accessors. Its
 * owner moves it on with svdb__map_take, the one hand-over operation, which
 * leaves the source empty; the new owner releases it. A pointer into a
 * region (svdb__map_base) is borrowed: valid until the owner releases it,
 * so a borrower must stop using it first. The row store owns the snapshot's
 * region, and the graph's level-0 chunks borrow from it; the log owns its
 * views. */
#ifndef SVDB_MAPFILE_H
#define SVDB_MAPFILE_H

#include <stddef.h>

typedef struct svdb_map {
    void *base; /* NULL: empty */
    size_t len;
} svdb_map;

enum {
    SVDB_MAP_SHARED = 1, /* read-only, the file's own pages */
    SVDB_MAP_PRIVATE = 2, /* readable and writable; a write copies the page, the file never changes */
    SVDB_MAP_SHARED_WRITE = 3 /* readable and writable, the file's own pages: a write changes the file */
};

/* Maps [0, len) of fd (which may be closed afterwards) into *out. A shared
 * map may reach past the end of the file: those pages become readable as
 * the file grows, and must not be read before. On failure *out is empty and
 * the status SVDB_ENOMEM "cannot map <what> <path>". */
int svdb__map_file(svdb_map *out, int fd, size_t len, int mode, const char *what, const char *path);
/* Unmaps the region (a no-op when empty) and leaves it empty; every pointer
 * into it is dead. */
void svdb__map_release(svdb_map *m);
/* The hand-over: returns the region *from held, and leaves *from empty. */
static inline svdb_map svdb__map_take(svdb_map *from)
{
    svdb_map m = *from;
    from->base = NULL;
    from->len = 0;
    return m;
}

/* The first byte (NULL when empty); writable only in a private or shared-write map. */
static inline void *svdb__map_base(const svdb_map *m) { return m->base; }
/* Bytes mapped (0 when empty). */
static inline size_t svdb__map_len(const svdb_map *m) { return m->len; }
/* Whether p points into the region (never when it is empty). */
static inline int svdb__map_contains(const svdb_map *m, const void *p)
{
    return m->base && (const char *)p >= (const char *)m->base && (const char *)p < (const char *)m->base + m->len;
}

/* Advice on the whole pages within [off, off + len) (the region's last page
 * counting as whole). Failures are ignored: advice changes no contents. */
/* Reads there come a few rows at a time: no read-ahead. */
void svdb__map_advise_random(const svdb_map *m, size_t off, size_t len);
/* The pages will not be read again soon: they leave this process's memory.
 * A page of a private map that was written to would lose the write, so only
 * for ranges never written (a shared map's pages come back from the file). */
void svdb__map_drop(const svdb_map *m, size_t off, size_t len);

#endif
