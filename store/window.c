/*
 * window.c — per-agent sample rings in a chained hash table keyed by id.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/window.h"
#include "store/xalloc.h"

#define WIN_INITIAL_BUCKETS 64u
#define WIN_INITIAL_RING 8u

/* FNV-1a: ids are short, and the table only needs a decent spread. */
static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t bucket_of(const win_table *t, const char *id)
{
    return (size_t)(hash_id(id) & (uint64_t)(t->nbuckets - 1));
}

void win_table_init(win_table *t)
{
    memset(t, 0, sizeof *t);
    t->nbuckets = WIN_INITIAL_BUCKETS;
    t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
}

static void agent_free(win_agent *a)
{
    free(a->row);
    for (uint32_t i = 0; i < a->len; i++)
        win_sample_release(a->ring[(a->head + i) % a->cap]);
    free(a->ring);
    free(a);
}

void win_table_cleanup(win_table *t)
{
    if (!t->buckets)
        return;
    for (size_t b = 0; b < t->nbuckets; b++) {
        win_agent *a = t->buckets[b];
        while (a) {
            win_agent *next = a->next;
            agent_free(a);
            a = next;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

win_agent *win_find(const win_table *t, const char *id)
{
    for (win_agent *a = t->buckets[bucket_of(t, id)]; a; a = a->next)
        if (strcmp(a->id, id) == 0)
            return a;
    return NULL;
}

static void grow_table(win_table *t)
{
    win_table bigger = *t;
    bigger.nbuckets = t->nbuckets * 2;
    bigger.buckets = xcalloc(bigger.nbuckets, sizeof *bigger.buckets);
    for (size_t b = 0; b < t->nbuckets; b++) {
        win_agent *a = t->buckets[b];
        while (a) {
            win_agent *next = a->next;
            size_t nb = bucket_of(&bigger, a->id);
            a->next = bigger.buckets[nb];
            bigger.buckets[nb] = a;
            a = next;
        }
    }
    free(t->buckets);
    t->buckets = bigger.buckets;
    t->nbuckets = bigger.nbuckets;
}

win_agent *win_add(win_table *t, const char *id)
{
    win_agent *a = win_find(t, id);
    if (a)
        return a;
    a = xcalloc(1, sizeof *a);
    size_t n = strnlen(id, STORE_ID_MAX);
    memcpy(a->id, id, n);
    a->id[n] = '\0';
    size_t b = bucket_of(t, a->id);
    a->next = t->buckets[b];
    t->buckets[b] = a;
    t->count++;
    /* Keep chains short: grow at a load factor of 1. */
    if (t->count > t->nbuckets)
        grow_table(t);
    return a;
}

void win_remove(win_table *t, win_agent *a)
{
    win_agent **pp = &t->buckets[bucket_of(t, a->id)];
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    assert(*pp == a);
    *pp = a->next;
    if (a->dirty) {
        win_agent **dp = &t->dirty;
        while (*dp && *dp != a)
            dp = &(*dp)->dirty_next;
        assert(*dp == a);
        *dp = a->dirty_next;
        t->ndirty--;
    }
    agent_free(a);
    t->count--;
}

win_sample *win_sample_new(const tuner_sample *src)
{
    assert(src->nprocs <= TUNER_MAX_PROCS && src->npool <= TUNER_MAX_PROCS);
    size_t bytes = (size_t)src->nprocs * sizeof(int32_t);
    size_t pbytes = (size_t)src->npool * sizeof(int32_t);
    win_sample *w = xmalloc(sizeof *w + bytes + pbytes);
    w->refs = 1;
    w->owner = NULL;
    w->s = *src;
    if (bytes)
        memcpy(w->runq, src->local_runq, bytes);
    if (pbytes)
        memcpy(w->runq + src->nprocs, src->pool_queues, pbytes);
    w->s.local_runq = w->runq;
    w->s.pool_queues = w->runq + src->nprocs;
    return w;
}

void win_sample_release(win_sample *w)
{
    assert(w->refs > 0);
    if (--w->refs == 0)
        free(w);
}

static void grow_ring(win_agent *a)
{
    uint32_t cap = a->cap ? a->cap * 2 : WIN_INITIAL_RING;
    if (cap > TUNER_MAX_WINDOW)
        cap = TUNER_MAX_WINDOW;
    win_sample **ring = xmalloc(cap * sizeof *ring);
    for (uint32_t i = 0; i < a->len; i++)
        ring[i] = a->ring[(a->head + i) % a->cap];
    free(a->ring);
    a->ring = ring;
    a->cap = cap;
    a->head = 0;
}

void win_push(win_agent *a, win_sample *w)
{
    if (a->len == a->cap) {
        if (a->cap < TUNER_MAX_WINDOW) {
            grow_ring(a);
        } else {
            win_sample_release(a->ring[a->head]);
            a->head = (a->head + 1) % a->cap;
            a->len--;
        }
    }
    a->ring[(a->head + a->len) % a->cap] = w;
    w->refs++;
    a->len++;
}

const win_sample *win_at(const win_agent *a, size_t i)
{
    assert(i < a->len);
    return a->ring[(a->head + i) % a->cap];
}

void win_mark_dirty(win_table *t, win_agent *a)
{
    if (a->dirty)
        return;
    a->dirty = true;
    a->dirty_next = t->dirty;
    t->dirty = a;
    t->ndirty++;
}

size_t win_take_dirty(win_table *t, win_total *out, size_t max)
{
    size_t n = 0;
    while (t->dirty && n < max) {
        win_agent *a = t->dirty;
        t->dirty = a->dirty_next;
        a->dirty_next = NULL;
        a->dirty = false;
        t->ndirty--;
        out[n].agent = a;
        out[n].total = a->samples_total;
        out[n].vol = a->vol;
        n++;
    }
    return n;
}
