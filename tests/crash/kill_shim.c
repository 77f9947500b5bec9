/* LD_PRELOAD shim for crash_harness.py --kill-at-rename P: a process SIGKILLs
 * itself just after it renamed a new snapshot or log into place, with
 * probability P (SVDB_CRASH_KILL_AT_RENAME; SVDB_CRASH_KILL_AT_RENAME_OF=wal.svdb
 * or snapshot.svdb: at that rename only). A checkpoint's other processes
 * learn of it only from the head record written after the rename, so this
 * is the moment random kills almost never hit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    static int (*real)(int, const char *, int, const char *);
    static unsigned seed;
    if (!real) {
        real = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    }
    int rc = real(olddirfd, oldpath, newdirfd, newpath);
    const char *p = getenv("SVDB_CRASH_KILL_AT_RENAME"), *only = getenv("SVDB_CRASH_KILL_AT_RENAME_OF");
    if (rc == 0 && p && (strcmp(newpath, "wal.svdb") == 0 || strcmp(newpath, "snapshot.svdb") == 0) &&
        (!only || strcmp(newpath, only) == 0) &&
        (double)rand_r(&seed) / RAND_MAX < atof(p))
        kill(getpid(), SIGKILL);
    return rc;
}
