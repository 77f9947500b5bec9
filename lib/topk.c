/* The heap behind every search: O(log k) per accepted candidate. */
#include "topk.h"

void svdb__topk_init(svdb_topk *t, svdb_cand *storage, size_t k)
{
    t->a = storage;
    t->n = 0;
    t->k = k;
}

static void sift_down(svdb_cand *a, size_t n, size_t i)
{
    svdb_cand v = a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && svdb__cand_worse(&a[c + 1], &a[c])) c++;
        if (!svdb__cand_worse(&a[c], &v)) break;
        a[i] = a[c];
        i = c;
    }
    a[i] = v;
}

void svdb__topk_push(svdb_topk *t, svdb_cand c)
{
    if (t->k == 0) return;
    if (t->n < t->k) {
        size_t i = t->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!svdb__cand_worse(&c, &t->a[p])) break;
            t->a[i] = t->a[p];
            i = p;
        }
        t->a[i] = c;
    } else if (svdb__cand_worse(&t->a[0], &c)) {
        t->a[0] = c;
        sift_down(t->a, t->n, 0);
    }
}

size_t svdb__topk_finish(svdb_topk *t)
{
    /* Heap sort in place: repeatedly move the worst to the end. */
    for (size_t n = t->n; n > 1; n--) {
        svdb_cand worst = t->a[0];
        t->a[0] = t->a[n - 1];
        t->a[n - 1] = worst;
        sift_down(t->a, n - 1, 0);
    }
    return t->n;
}
