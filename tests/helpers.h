/* Shared test helpers: fresh temporary collection paths and data readers. */
#ifndef SVDB_TEST_HELPERS_H
#define SVDB_TEST_HELPERS_H

#include <stddef.h>
#include <stdio.h>

/* A new empty directory path under $SVDB_TEST_TMP (or /tmp); caller frees. */
char *th_tmpdir(const char *tag);
/* rm -rf of a test directory. */
void th_rmrf(const char *path);
/* Reads a texmex .fvecs/.ivecs file; returns rows (NULL if absent). */
float *th_read_fvecs(const char *path, size_t *n, size_t *dim);
int *th_read_ivecs(const char *path, size_t *n, size_t *dim);
/* Nonzero under valgrind (SVDB_VALGRIND set by the test script) or a
 * sanitizer build, where everything runs 5-50x slower: tests then use the
 * smaller sizes that still exercise the same paths. */
#include <stdlib.h>
static inline int th_slow_tool(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 1;
#else
    return getenv("SVDB_VALGRIND") != NULL;
#endif
}

/* Deterministic pseudo-random floats in [-1, 1). */
void th_random(float *out, size_t n, unsigned seed);

/* ---- A reference model of a collection, for checking the library against. */
#include <stdint.h>

struct svdb;

typedef struct th_row {
    char *id;
    float *vec;
    char *meta; /* NULL: no metadata */
} th_row;

typedef struct th_model {
    uint32_t dim;
    size_t n, cap;
    th_row *rows; /* insertion order */
} th_model;

void th_model_init(th_model *m, uint32_t dim);
void th_model_free(th_model *m);
void th_model_copy(th_model *dst, const th_model *src);
/* Index of id, or -1. */
long th_model_find(const th_model *m, const char *id);
/* Upsert semantics: replaces in place when present, appends otherwise. */
void th_model_put(th_model *m, const char *id, const float *v, const char *meta);
/* Returns 1 when removed. */
int th_model_del(th_model *m, const char *id);
/* 1 when the open collection holds exactly the model's rows (same order,
 * bit-identical vectors, same metadata); otherwise 0, printing the first
 * difference when verbose. Does not touch the model. */
int th_check_db(struct svdb *db, const th_model *m, int verbose);

/* Opens `path` with the given dim/metric/durability (create on). */
int th_open(struct svdb **db, const char *path, uint32_t dim, int metric, int durability);

/* Whole-file helpers for corruption tests. */
unsigned char *th_read_file(const char *path, size_t *len);
int th_write_file(const char *path, const void *data, size_t len);
long th_file_size(const char *path);
char *th_path(const char *dir, const char *name); /* caller frees */
/* Recomputes both header checksums of a snapshot image (bytes 124 and 252). */
void th_snapshot_fix_header(unsigned char *b);

/* Small deterministic PRNG (splitmix64). */
uint64_t th_rand64(uint64_t *state);
/* Uniform in [0, n). */
uint32_t th_randn(uint64_t *state, uint32_t n);

/* ---- Random valid write workloads, reproducible from a seed. */
enum { TH_ADD = 1, TH_UPSERT, TH_DELETE, TH_PERSIST };
typedef struct th_op {
    int kind;
    uint32_t dim;
    size_t n;
    char **ids;
    float *vecs;  /* n * dim, puts only */
    char **metas; /* entries may be NULL; puts only */
} th_op;
/* Draws a write that is valid against model m (which it does not change):
 * adds use fresh ids from *next_id, upserts mix existing and fresh ids,
 * deletes mix existing, missing and repeated ids. persist_pct is the
 * percentage of TH_PERSIST ops. */
void th_gen_op(uint64_t *rng, const th_model *m, unsigned *next_id, int persist_pct, th_op *op);
void th_op_free(th_op *op);
/* Runs the op on the collection; returns its status. */
int th_op_run(struct svdb *db, const th_op *op);
/* Applies the op to the model. */
void th_op_model(th_model *m, const th_op *op);

/* ---- Child processes whose result does not depend on their exit status
 * (valgrind and sanitizers may rewrite that when a child exits without
 * freeing what it inherited). th_fork() is fork(); the child ends with
 * th_child_exit(code), and th_wait(pid) returns that code, or -1 when the
 * child ended without reporting (killed, crashed). One child at a time. */
#include <sys/types.h>
pid_t th_fork(void);
void th_child_exit(int code) __attribute__((noreturn));
int th_wait(pid_t pid);

/* Status checks that print the library's message when they fail (include
 * after <cmocka.h>). */
#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != SVDB_OK) fprintf(stderr, "%s: got %d (%s)\n", #expr, rc_, svdb_errmsg());       \
        assert_int_equal(rc_, SVDB_OK);                                                            \
    } while (0)
#define ASSERT_FAILS(expr, code)                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (code)) fprintf(stderr, "%s: got %d (%s)\n", #expr, rc_, svdb_errmsg());        \
        assert_int_equal(rc_, (code));                                                             \
        assert_true(svdb_errmsg()[0] != '\0');                                                     \
    } while (0)

#endif
