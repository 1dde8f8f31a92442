/*
 * pending.c — the bounded FIFO of samples waiting for the database.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/pending.h"
#include "store/xalloc.h"

#define PENDING_INITIAL 256u

void pending_init(pending *q, size_t limit)
{
    memset(q, 0, sizeof *q);
    q->limit = limit ? limit : 1;
}

static win_sample **slot(pending *q, size_t i)
{
    return &q->a[(q->head + i) & (q->cap - 1)];
}

void pending_cleanup(pending *q)
{
    for (size_t i = 0; i < q->len; i++)
        win_sample_release(*slot(q, i));
    free(q->a);
    memset(q, 0, sizeof *q);
}

/* Makes room for `need` samples; the contents keep their order. */
static void reserve(pending *q, size_t need)
{
    if (need <= q->cap)
        return;
    size_t cap = q->cap ? q->cap : PENDING_INITIAL;
    while (cap < need)
        cap *= 2;
    win_sample **a = xmalloc(cap * sizeof *a);
    for (size_t i = 0; i < q->len; i++)
        a[i] = *slot(q, i);
    free(q->a);
    q->a = a;
    q->cap = cap;
    q->head = 0;
}

static void drop_oldest(pending *q)
{
    assert(q->len > 0);
    win_sample_release(*slot(q, 0));
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    q->dropped++;
}

size_t pending_push(pending *q, win_sample *w)
{
    size_t dropped = 0;
    if (q->len >= q->limit) {
        drop_oldest(q);
        dropped = 1;
    }
    reserve(q, q->len + 1);
    *slot(q, q->len) = w;
    q->len++;
    return dropped;
}

size_t pending_take(pending *q, win_sample **out, size_t max)
{
    size_t n = q->len < max ? q->len : max;
    for (size_t i = 0; i < n; i++)
        out[i] = *slot(q, i);
    if (n) {
        q->head = (q->head + n) & (q->cap - 1);
        q->len -= n;
    }
    return n;
}

size_t pending_unshift(pending *q, win_sample **items, size_t n)
{
    size_t drop = 0;
    /* The items are older than anything queued, so they go first. */
    if (q->len + n > q->limit)
        drop = q->len + n - q->limit;
    if (drop > n)
        drop = n;
    for (size_t i = 0; i < drop; i++)
        win_sample_release(items[i]);
    q->dropped += drop;
    items += drop;
    n -= drop;
    if (n == 0)
        return drop;
    reserve(q, q->len + n);
    q->head = (q->head - n) & (q->cap - 1);
    q->len += n;
    for (size_t i = 0; i < n; i++)
        *slot(q, i) = items[i];
    return drop;
}

void pending_purge(pending *q, const win_agent *owner)
{
    size_t kept = 0;
    for (size_t i = 0; i < q->len; i++) {
        win_sample *w = *slot(q, i);
        if (w->owner == owner)
            win_sample_release(w);
        else
            *slot(q, kept++) = w;
    }
    q->len = kept;
}

size_t pending_set_limit(pending *q, size_t limit)
{
    size_t dropped = 0;
    q->limit = limit ? limit : 1;
    while (q->len > q->limit) {
        drop_oldest(q);
        dropped++;
    }
    return dropped;
}
