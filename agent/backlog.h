/*
 * backlog.h — the samples waiting to be pushed: a bounded ring that drops
 * the oldest sample when full and counts what it dropped.
 *
 * Every sample gets a sequence number (1, 2, ...) when it is added, so a
 * pusher can send the oldest samples, and afterwards release exactly those
 * it sent even if the ring dropped some of them meanwhile.
 *
 * Not thread-safe: the agent holds one mutex around every call.
 *
 * Errors: backlog_new returns NULL when out of memory; backlog_add counts a
 * sample it cannot copy as dropped.
 */
#ifndef GOTUNED_AGENT_BACKLOG_H
#define GOTUNED_AGENT_BACKLOG_H

#include <stddef.h>
#include <stdint.h>

#include "tuner/tuner.h"

typedef struct backlog backlog;

/* cap >= 1 samples. */
backlog *backlog_new(size_t cap);
void backlog_free(backlog *b);

/* Copies *s (with its local_runq) in; drops the oldest when full. */
void backlog_add(backlog *b, const tuner_sample *s);

size_t backlog_count(const backlog *b);

/* The i-th oldest sample (i < backlog_count), owned by the backlog and
 * valid until the next add or release. */
const tuner_sample *backlog_get(const backlog *b, size_t i);

/* The sequence number of the i-th oldest sample. */
uint64_t backlog_seq(const backlog *b, size_t i);

/* Removes every sample with a sequence number <= upto. */
void backlog_release(backlog *b, uint64_t upto);

/* Samples dropped since backlog_new (oldest first when full, or when a copy
 * failed). */
uint64_t backlog_dropped(const backlog *b);

#endif
