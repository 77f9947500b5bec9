/* The collection directories and their marker files (lib/catalog_dirs.c). */
#ifndef SVDB_CATALOG_DIRS_H
#define SVDB_CATALOG_DIRS_H

#include "catalog_impl.h"
#include "os.h"
#include "svdb.h"

#include <stddef.h>

int svdb__catalog_write_marker(const svdb_catalog *c, const svdb_dir *d, const char *id, const char *state);
int svdb__catalog_hold_collection(const svdb_dir *d, int *fd);
int svdb__catalog_purge(svdb_catalog *c, const char *id);
int svdb__catalog_uuid_names(const svdb_catalog *c, int unlisted, char (**out)[UUID_LEN + 1], size_t *n);
int svdb__catalog_sweep(svdb_catalog *c);
int svdb__catalog_claim(svdb_catalog *c, long i);

#endif
