/*
 * window.h — the in-memory sample windows: a hash table of agents keyed by
 * id, each holding a ring of its newest TUNER_MAX_WINDOW samples.
 *
 * The table also is the store's in-memory list of agents: an agent is added
 * when its row is committed and removed when its row is deleted, which is
 * how store_samples_append rejects unknown agents without asking SQLite.
 *
 * Nothing here locks: the store holds its window mutex around every call.
 */
#ifndef GOTUNED_STORE_WINDOW_H
#define GOTUNED_STORE_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct win_agent win_agent;

/* The facts every push restates and nothing else reads back durably: kept
 * here, authoritative, and written to the agents row with samples_total by
 * the flusher, so that a push from a known agent whose other facts did not
 * change commits nothing. */
typedef struct win_vol {
    int64_t last_seen_ms;
    store_throttle throttle, throttle_prev;
    int64_t dropped_samples;
} win_vol;

/* One accepted sample, encoded (win_sample_new): a 16-P sample takes about
 * 45 bytes instead of the 200 of a tuner_sample with its queues, which is
 * what lets 10,000 agents keep full windows in well under 200 MB
 * (docs/performance.md). It is shared by the agent's ring and the
 * persistence queue, and the last holder to release it frees it. */
typedef struct win_sample {
    uint32_t refs;
    uint16_t size;          /* bytes of data[] */
    win_agent *owner;       /* set when the sample is accepted; the queue
                               is purged of an agent's samples before the
                               agent is removed, so this never dangles */
    unsigned char data[];
} win_sample;

struct win_agent {
    char id[STORE_ID_MAX + 1];
    win_agent *next;            /* hash bucket chain */
    win_agent *dirty_next;      /* next on the table's dirty list */
    bool dirty;                 /* samples_total or vol changed since last
                                   persisted */
    uint64_t samples_total;     /* authoritative; the agents row lags by at
                                   most one flush */
    win_vol vol;                /* likewise */
    store_agent *row;           /* the agents row as last read, NULL until
                                   read and after every write to it; the
                                   fields above overlay its copies */
    win_sample **ring;          /* NULL until the first sample; grows by
                                   doubling up to TUNER_MAX_WINDOW so idle
                                   agents cost little */
    uint32_t cap, head, len;    /* head indexes the oldest sample */
};

typedef struct win_table {
    win_agent **buckets;
    size_t nbuckets;            /* a power of two */
    size_t count;               /* agents in the table */
    win_agent *dirty;           /* agents whose samples_total must be written */
    size_t ndirty;
} win_table;

/* A samples_total and vol to persist, captured while the window lock was
 * held. */
typedef struct win_total {
    const win_agent *agent;
    uint64_t total;
    win_vol vol;
} win_total;

void win_table_init(win_table *t);
/* Frees every agent and releases every sample the rings hold. */
void win_table_cleanup(win_table *t);

win_agent *win_find(const win_table *t, const char *id);
/* Returns the agent with this id, adding an empty one if needed. */
win_agent *win_add(win_table *t, const char *id);
/* Unlinks and frees a, releasing its ring and cached row. */
void win_remove(win_table *t, win_agent *a);

/* Encodes *src (and its nprocs local_runq and npool pool_queues values)
 * into a new sample with one reference, owned by the caller. */
win_sample *win_sample_new(const tuner_sample *src);
/* Decodes w into *out exactly as it was given to win_sample_new, with
 * out->local_runq at runq[0] and out->pool_queues right after it; runq has
 * room for 2 * TUNER_MAX_PROCS values. */
void win_sample_get(const win_sample *w, tuner_sample *out, int32_t *runq);
void win_sample_release(win_sample *w);

/* Appends w to a's ring, taking a reference of its own; the oldest sample
 * is released when the ring is full. */
void win_push(win_agent *a, win_sample *w);
/* The i-th sample of a's ring, oldest first (i < a->len). */
const win_sample *win_at(const win_agent *a, size_t i);

void win_mark_dirty(win_table *t, win_agent *a);
/* Moves up to max agents off the dirty list into out[] with their current
 * totals; returns how many. */
size_t win_take_dirty(win_table *t, win_total *out, size_t max);

#endif
