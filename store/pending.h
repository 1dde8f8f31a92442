/*
 * pending.h — the queue of accepted samples waiting to be written to the
 * database, oldest first, with a cap: when the database is stuck the queue
 * drops its oldest samples instead of growing without bound.
 *
 * Nothing here locks: the store holds its window mutex around every call.
 */
#ifndef GOTUNED_STORE_PENDING_H
#define GOTUNED_STORE_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "store/window.h"

typedef struct pending {
    win_sample **a;         /* ring of cap slots */
    size_t cap;             /* a power of two, grown on demand */
    size_t head, len;
    size_t limit;           /* most samples held */
    uint64_t dropped;       /* samples dropped over the limit since open */
} pending;

void pending_init(pending *q, size_t limit);
/* Releases every queued sample. */
void pending_cleanup(pending *q);

/* Appends w, taking over the caller's reference. Returns the number of old
 * samples dropped to stay under the limit (0 or 1). */
size_t pending_push(pending *q, win_sample *w);

/* Removes up to max of the oldest samples into out[], handing their
 * references to the caller; returns how many. */
size_t pending_take(pending *q, win_sample **out, size_t max);

/* Puts n samples (oldest first) back at the front, as after a failed write,
 * taking over their references; drops the oldest beyond the limit and
 * returns how many were dropped. */
size_t pending_unshift(pending *q, win_sample **items, size_t n);

/* Removes and releases every queued sample of one agent. */
void pending_purge(pending *q, const win_agent *owner);

/* Changes the limit, dropping the oldest samples beyond it; returns how
 * many were dropped. */
size_t pending_set_limit(pending *q, size_t limit);

#endif
