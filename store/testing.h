/*
 * testing.h — hooks for store's unit tests, not for production callers.
 */
#ifndef GOTUNED_STORE_TESTING_H
#define GOTUNED_STORE_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Changes the cap of the pending-sample queue (normally STORE_PENDING_MAX).
 * The queue's length no longer wakes the flusher early, so what a test
 * queues stays queued until its flush interval or store_flush. */
void store_test_pending_limit(store *s, size_t limit);
/* Samples waiting for the database; *dropped (may be NULL) gets how many
 * the cap has dropped since open. */
size_t store_test_pending(store *s, uint64_t *dropped);

#endif
