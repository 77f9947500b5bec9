/* The catalog of named collections under one directory (svdb_catalog_* in
 * svdb.h, on-disk format in docs/chroma.md). Internal: the test hook. */
#ifndef SVDB_CATALOG_H
#define SVDB_CATALOG_H

/* Test hook: called at the crash windows of a change ("marked": a delete
 * marked the directory, the catalog still lists it; "forgot": the catalog
 * forgot it, its files are still there), so tests can end the process there. */
extern void (*svdb__catalog_hook)(const char *step);

#endif
