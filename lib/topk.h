/* Bounded max-heap keeping the k best (distance, insertion order) pairs. */
#ifndef SVDB_TOPK_H
#define SVDB_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct svdb_cand {
    float dist;
    uint32_t slot;
    uint64_t seq; /* insertion order: breaks distance ties */
} svdb_cand;

typedef struct svdb_topk {
    svdb_cand *a; /* caller-provided storage for k entries */
    size_t n, k;
} svdb_topk;

static inline int svdb__cand_worse(const svdb_cand *x, const svdb_cand *y)
{
    return x->dist > y->dist || (x->dist == y->dist && x->seq > y->seq);
}

/* True when (dist, seq) would enter the heap; cheap enough for the scan loop. */
static inline int svdb__topk_wants(const svdb_topk *t, float dist)
{
    return t->n < t->k || dist <= t->a[0].dist;
}

void svdb__topk_init(svdb_topk *t, svdb_cand *storage, size_t k);
void svdb__topk_push(svdb_topk *t, svdb_cand c);
/* Sorts the kept entries nearest first; returns how many there are. */
size_t svdb__topk_finish(svdb_topk *t);

#endif
