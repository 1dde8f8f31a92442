/*
 * window.c — per-agent sample rings in a chained hash table keyed by id.
 */
#include <assert.h>
#include <math.h>
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

/* The encoding: every integer field as a zigzag LEB128 varint (absent
 * fields are -1, which takes one byte), then one byte that says for each of
 * the three figures whether it is -1 (absent), an integer below 2^53 (a
 * varint) or anything else (its 8 bytes as they are), then the figures, the
 * two counts and the queue lengths. Every value reads back exactly. */
enum { FIG_ABSENT = 0, FIG_INT = 1, FIG_RAW = 2 };

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static unsigned char *put_signed(unsigned char *p, int64_t v)
{
    return put_varint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static const unsigned char *get_varint(const unsigned char *p, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0;; shift += 7) {
        unsigned char b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = x;
    return p;
}

static const unsigned char *get_signed(const unsigned char *p, int64_t *v)
{
    uint64_t u;
    p = get_varint(p, &u);
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return p;
}

static int fig_kind(double d)
{
    if (d == -1)
        return FIG_ABSENT;
    if (d >= 0 && d < 9007199254740992.0 && d == (double)(uint64_t)d && !(d == 0 && signbit(d)))
        return FIG_INT;
    return FIG_RAW;
}

/* The largest encoding: 11 integers, the kinds byte, three raw figures,
 * two counts and 2 * TUNER_MAX_PROCS queue lengths, at 10 bytes a varint. */
#define ENCODED_MAX (11 * 10 + 1 + 3 * 8 + 2 * 10 + 2 * TUNER_MAX_PROCS * 10)

win_sample *win_sample_new(const tuner_sample *src)
{
    assert(src->nprocs <= TUNER_MAX_PROCS && src->npool <= TUNER_MAX_PROCS);
    unsigned char buf[ENCODED_MAX], *p = buf;
    const int64_t ints[] = { src->ts_ms, src->recv_ms, src->gomaxprocs, src->idle_procs,
                             src->threads, src->spinning_threads, src->idle_threads,
                             src->needspinning, src->global_runq, src->goroutines,
                             src->pool_threshold };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        p = put_signed(p, ints[i]);
    const double figs[] = { src->lat_p50_us, src->lat_p99_us, src->gc_p99_us };
    unsigned char *kinds = p++;
    *kinds = 0;
    for (int i = 0; i < 3; i++) {
        int k = fig_kind(figs[i]);
        *kinds |= (unsigned char)(k << (2 * i));
        if (k == FIG_INT) {
            p = put_varint(p, (uint64_t)figs[i]);
        } else if (k == FIG_RAW) {
            memcpy(p, &figs[i], sizeof figs[i]);
            p += sizeof figs[i];
        }
    }
    p = put_signed(p, src->pool_scope);
    p = put_varint(p, src->nprocs);
    p = put_varint(p, src->npool);
    for (uint32_t i = 0; i < src->nprocs; i++)
        p = put_signed(p, src->local_runq[i]);
    for (uint32_t i = 0; i < src->npool; i++)
        p = put_signed(p, src->pool_queues[i]);
    size_t size = (size_t)(p - buf);
    assert(size <= sizeof buf && size <= UINT16_MAX);
    win_sample *w = xmalloc(sizeof *w + size);
    w->refs = 1;
    w->size = (uint16_t)size;
    w->owner = NULL;
    memcpy(w->data, buf, size);
    return w;
}

void win_sample_get(const win_sample *w, tuner_sample *out, int32_t *runq)
{
    const unsigned char *p = w->data;
    int64_t v[11];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        p = get_signed(p, &v[i]);
    out->ts_ms = v[0];
    out->recv_ms = v[1];
    out->gomaxprocs = (int32_t)v[2];
    out->idle_procs = (int32_t)v[3];
    out->threads = (int32_t)v[4];
    out->spinning_threads = (int32_t)v[5];
    out->idle_threads = (int32_t)v[6];
    out->needspinning = (int32_t)v[7];
    out->global_runq = v[8];
    out->goroutines = v[9];
    out->pool_threshold = (int32_t)v[10];
    unsigned kinds = *p++;
    double *figs[] = { &out->lat_p50_us, &out->lat_p99_us, &out->gc_p99_us };
    for (int i = 0; i < 3; i++) {
        int k = (kinds >> (2 * i)) & 3;
        if (k == FIG_ABSENT) {
            *figs[i] = -1;
        } else if (k == FIG_INT) {
            uint64_t u;
            p = get_varint(p, &u);
            *figs[i] = (double)u;
        } else {
            memcpy(figs[i], p, sizeof(double));
            p += sizeof(double);
        }
    }
    int64_t scope;
    uint64_t nprocs, npool;
    p = get_signed(p, &scope);
    p = get_varint(p, &nprocs);
    p = get_varint(p, &npool);
    out->pool_scope = (int32_t)scope;
    out->nprocs = (uint32_t)nprocs;
    out->npool = (uint32_t)npool;
    out->local_runq = runq;
    out->pool_queues = runq + nprocs;
    for (uint64_t i = 0; i < nprocs + npool; i++) {
        p = get_signed(p, &v[0]);
        runq[i] = (int32_t)v[0];
    }
    assert(p == w->data + w->size);
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
