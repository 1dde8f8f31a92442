/*
 * backlog.c — a ring of owned sample copies. See backlog.h.
 */
#include "agent/backlog.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct backlog {
    size_t cap;
    size_t head;            /* index of the oldest sample */
    size_t n;
    uint64_t next_seq;      /* the sequence number of the next add */
    uint64_t dropped;
    tuner_sample *ring;     /* each local_runq is malloc'd and owned here */
    uint64_t *seq;          /* seq[i]: the sequence number of ring[i] */
};

backlog *backlog_new(size_t cap)
{
    assert(cap >= 1);
    backlog *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ring = calloc(cap, sizeof *b->ring);
    b->seq = calloc(cap, sizeof *b->seq);
    if (!b->ring || !b->seq) {
        free(b->ring);
        free(b->seq);
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->next_seq = 1;
    return b;
}

void backlog_free(backlog *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->ring[(b->head + i) % b->cap].local_runq);
    free(b->ring);
    free(b->seq);
    free(b);
}

static void drop_oldest(backlog *b)
{
    assert(b->n > 0);
    free(b->ring[b->head].local_runq);
    b->ring[b->head].local_runq = NULL;
    b->head = (b->head + 1) % b->cap;
    b->n--;
}

void backlog_add(backlog *b, const tuner_sample *s)
{
    uint64_t seq = b->next_seq++;
    int32_t *runq = NULL;
    if (s->nprocs > 0) {
        runq = malloc(s->nprocs * sizeof *runq);
        if (!runq) {
            b->dropped++;
            return;
        }
        memcpy(runq, s->local_runq, s->nprocs * sizeof *runq);
    }
    if (b->n == b->cap) {
        drop_oldest(b);
        b->dropped++;
    }
    size_t at = (b->head + b->n) % b->cap;
    b->ring[at] = *s;
    b->ring[at].local_runq = runq;
    b->seq[at] = seq;
    b->n++;
}

size_t backlog_count(const backlog *b)
{
    return b->n;
}

const tuner_sample *backlog_get(const backlog *b, size_t i)
{
    assert(i < b->n);
    return &b->ring[(b->head + i) % b->cap];
}

uint64_t backlog_seq(const backlog *b, size_t i)
{
    assert(i < b->n);
    return b->seq[(b->head + i) % b->cap];
}

void backlog_release(backlog *b, uint64_t upto)
{
    while (b->n > 0 && backlog_seq(b, 0) <= upto)
        drop_oldest(b);
}

uint64_t backlog_dropped(const backlog *b)
{
    return b->dropped;
}
