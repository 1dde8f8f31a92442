/*
 * wait.c — the wait queue: a slab of waiters named by index, a hash of the
 * agents that have waiters, a min-heap of deadlines and an epoll set of the
 * held sockets, all under one mutex, plus one thread that sleeps in
 * epoll_wait until the earliest deadline.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "server/log.h"
#include "server/wait.h"

#define NONE UINT32_MAX             /* no waiter (list ends, free list end) */
#define BATCH 64                    /* connections resumed per unlock */
#define WAKE_TAG UINT64_MAX         /* epoll data of the eventfd; no waiter has it */

typedef struct agent_entry agent_entry;

/* One held connection. Waiters live in a slab and are named by index, and
 * the epoll set carries (gen << 32 | index): an event that was already
 * returned by epoll_wait when another thread woke its waiter finds another
 * generation and is dropped, instead of resuming a stranger or touching
 * freed memory. */
typedef struct waiter {
    void *conn;                     /* NULL: the slot is free */
    agent_entry *agent;
    int64_t deadline_ms;            /* monotonic */
    int64_t index;                  /* the version the client already has */
    uint32_t prev, next;            /* the agent's list; next also chains free slots */
    uint32_t heap_pos;
    uint32_t gen;                   /* bumped whenever the slot is freed */
    int fd;
} waiter;

/* Held requests are counted in thousands: keep a waiter within a cache line. */
_Static_assert(sizeof(waiter) <= 64, "a waiter stays small");

/* An agent with at least one waiter, freed with its last one, so the id is
 * stored once however many requests wait on it. */
struct agent_entry {
    agent_entry *chain;             /* next in the hash bucket */
    uint32_t head;                  /* first waiter */
    uint32_t hash;
    char id[];
};

struct waitq {
    waitq_ops ops;
    pthread_mutex_t mu;             /* guards everything below but the fds */
    pthread_cond_t idle;            /* broadcast when nresuming drops to 0 */
    waiter *w;                      /* the slab; grows by doubling, never shrinks */
    uint32_t wcap, free_head;
    uint32_t *heap;                 /* waiter indexes, earliest deadline at [0] */
    uint32_t nheap, heap_cap;
    agent_entry **bucket;
    size_t nbucket, nagents;
    int epfd, evfd;                 /* the held sockets; the eventfd that wakes the thread */
    pthread_t thread;
    bool started;                   /* the thread runs (or ran) */
    bool closing;                   /* waitq_close began: no new waiters */
    bool stopping;                  /* the thread is told to exit */
    unsigned nresuming;             /* batches detached whose resume calls are running */
    waitq_counts counts;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Makes the thread recompute its timeout (or see stopping). */
static void wake(waitq *q)
{
    uint64_t one = 1;
    while (write(q->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ the heap */

static bool earlier(const waitq *q, uint32_t a, uint32_t b)
{
    return q->w[a].deadline_ms < q->w[b].deadline_ms;
}

static void heap_set(waitq *q, uint32_t pos, uint32_t i)
{
    q->heap[pos] = i;
    q->w[i].heap_pos = pos;
}

static void sift_up(waitq *q, uint32_t pos)
{
    uint32_t i = q->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!earlier(q, i, q->heap[parent]))
            break;
        heap_set(q, pos, q->heap[parent]);
        pos = parent;
    }
    heap_set(q, pos, i);
}

static void sift_down(waitq *q, uint32_t pos)
{
    uint32_t i = q->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= q->nheap)
            break;
        if (child + 1 < q->nheap && earlier(q, q->heap[child + 1], q->heap[child]))
            child++;
        if (!earlier(q, q->heap[child], i))
            break;
        heap_set(q, pos, q->heap[child]);
        pos = child;
    }
    heap_set(q, pos, i);
}

static void heap_remove(waitq *q, uint32_t pos)
{
    assert(pos < q->nheap);
    uint32_t last = q->heap[--q->nheap];
    if (pos == q->nheap)
        return;
    heap_set(q, pos, last);
    sift_down(q, pos);
    sift_up(q, q->w[last].heap_pos);
}

/* --------------------------------------------------------- the agents */

static agent_entry *agent_find(waitq *q, const char *id, uint32_t h)
{
    for (agent_entry *e = q->bucket[h & (q->nbucket - 1)]; e; e = e->chain)
        if (e->hash == h && strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

/* Doubles the bucket array; on failure keeps the old one (longer chains). */
static void agent_rehash(waitq *q)
{
    size_t n = q->nbucket * 2;
    agent_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < q->nbucket; i++) {
        agent_entry *e = q->bucket[i];
        while (e) {
            agent_entry *next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(q->bucket);
    q->bucket = b;
    q->nbucket = n;
}

static agent_entry *agent_get(waitq *q, const char *id)
{
    uint32_t h = hash_id(id);
    agent_entry *e = agent_find(q, id, h);
    if (e)
        return e;
    size_t len = strlen(id);
    e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->id, id, len + 1);
    e->hash = h;
    e->head = NONE;
    if (q->nagents >= q->nbucket)
        agent_rehash(q);
    e->chain = q->bucket[h & (q->nbucket - 1)];
    q->bucket[h & (q->nbucket - 1)] = e;
    q->nagents++;
    return e;
}

static void agent_free(waitq *q, agent_entry *e)
{
    assert(e->head == NONE);
    agent_entry **p = &q->bucket[e->hash & (q->nbucket - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    q->nagents--;
    free(e);
}

/* -------------------------------------------------------- the waiters */

/* Room for one more waiter in the slab and the heap; -ENOMEM. */
static int reserve(waitq *q)
{
    if (q->free_head == NONE) {
        uint32_t cap = q->wcap ? q->wcap * 2 : 64;
        if (cap <= q->wcap || cap >= NONE)
            return -ENOMEM;
        waiter *w = realloc(q->w, cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        for (uint32_t i = cap; i-- > q->wcap;) {
            memset(&w[i], 0, sizeof w[i]);
            w[i].next = q->free_head;
            q->free_head = i;
        }
        q->w = w;
        q->wcap = cap;
    }
    if (q->nheap == q->heap_cap) {
        uint32_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
        uint32_t *heap = realloc(q->heap, cap * sizeof *heap);
        if (!heap)
            return -ENOMEM;
        q->heap = heap;
        q->heap_cap = cap;
    }
    return 0;
}

/* Takes waiter i out of the epoll set, its agent's list and the heap, frees
 * its slot and returns its connection, for the caller to resume once the
 * lock is released. */
static void *detach(waitq *q, uint32_t i)
{
    waiter *x = &q->w[i];
    assert(x->conn);
    /* The socket is still open: a suspended connection is never closed. */
    epoll_ctl(q->epfd, EPOLL_CTL_DEL, x->fd, NULL);
    if (x->prev != NONE)
        q->w[x->prev].next = x->next;
    else
        x->agent->head = x->next;
    if (x->next != NONE)
        q->w[x->next].prev = x->prev;
    if (x->agent->head == NONE)
        agent_free(q, x->agent);
    heap_remove(q, x->heap_pos);
    void *conn = x->conn;
    x->conn = NULL;
    x->agent = NULL;
    x->gen++;
    x->next = q->free_head;
    q->free_head = i;
    q->counts.waiting--;
    return conn;
}

/* Resumes n detached connections without the lock. Called and returns with
 * the lock held; waitq_close waits for every such call to finish. */
static void resume_unlocked(waitq *q, void **conns, size_t n)
{
    if (n == 0)
        return;
    q->nresuming++;
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        q->ops.resume(q->ops.ud, conns[i]);
    pthread_mutex_lock(&q->mu);
    if (--q->nresuming == 0)
        pthread_cond_broadcast(&q->idle);
}

int waitq_add(waitq *q, void *conn, int fd, const char *agent, int64_t index,
              int64_t wait_ms)
{
    if (!q || !conn || fd < 0 || !agent)
        return -EINVAL;
    if (wait_ms <= 0)
        return 0;
    int64_t now = mono_ms();
    int64_t v;
    int ret = 0;
    pthread_mutex_lock(&q->mu);
    /* Read again under the lock, which a commit's notify takes after the
     * commit: a commit before this read makes it differ, a commit after it
     * finds the waiter registered. */
    if (q->closing || q->ops.version(q->ops.ud, agent, &v) != 0 || v != index)
        goto out;
    if ((ret = reserve(q)) != 0)
        goto out;
    agent_entry *e = agent_get(q, agent);
    if (!e) {
        ret = -ENOMEM;
        goto out;
    }
    uint32_t i = q->free_head;
    waiter *x = &q->w[i];
    struct epoll_event ev = { .events = EPOLLRDHUP, .data.u64 = (uint64_t)x->gen << 32 | i };
    if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ret = -errno;
        if (e->head == NONE)
            agent_free(q, e);
        goto out;
    }
    q->free_head = x->next;
    x->conn = conn;
    x->agent = e;
    x->deadline_ms = wait_ms > INT64_MAX - now ? INT64_MAX : now + wait_ms;
    x->index = index;
    x->fd = fd;
    x->prev = NONE;
    x->next = e->head;
    if (e->head != NONE)
        q->w[e->head].prev = i;
    e->head = i;
    q->heap[q->nheap++] = i;
    sift_up(q, q->nheap - 1);
    q->counts.waiting++;
    q->ops.suspend(q->ops.ud, conn);
    if (x->heap_pos == 0)
        wake(q); /* a new earliest deadline */
    ret = 1;
out:
    pthread_mutex_unlock(&q->mu);
    return ret;
}

void waitq_notify(waitq *q, const char *agent, int64_t version)
{
    if (!q || !agent)
        return;
    uint32_t h = hash_id(agent);
    void *conns[BATCH];
    size_t n;
    pthread_mutex_lock(&q->mu);
    do {
        /* Looked up again after every batch: the entry goes with its last
         * waiter, and others may have come and gone meanwhile. */
        agent_entry *e = agent_find(q, agent, h);
        n = 0;
        for (uint32_t i = e ? e->head : NONE; i != NONE && n < BATCH;) {
            uint32_t next = q->w[i].next; /* detach frees e with the last waiter */
            if (q->w[i].index != version)
                conns[n++] = detach(q, i);
            i = next;
        }
        q->counts.woken += n;
        resume_unlocked(q, conns, n);
    } while (n == BATCH);
    pthread_mutex_unlock(&q->mu);
}

/* The queue's thread: resumes expired waiters, then sleeps until the next
 * deadline or until a held socket reports a hang-up. */
static void *run(void *arg)
{
    waitq *q = arg;
    struct epoll_event evs[BATCH];
    void *conns[BATCH];
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        int64_t now = mono_ms();
        size_t n = 0;
        while (q->nheap > 0 && q->w[q->heap[0]].deadline_ms <= now && n < BATCH)
            conns[n++] = detach(q, q->heap[0]);
        if (n > 0) {
            q->counts.timed_out += n;
            resume_unlocked(q, conns, n);
            continue;
        }
        int timeout = -1;
        if (q->nheap > 0) {
            int64_t d = q->w[q->heap[0]].deadline_ms - now;
            timeout = d > INT_MAX ? INT_MAX : (int)d;
        }
        pthread_mutex_unlock(&q->mu);
        int nev = epoll_wait(q->epfd, evs, BATCH, timeout);
        int err = errno;
        pthread_mutex_lock(&q->mu);
        if (nev < 0) {
            if (err != EINTR)
                log_msg("wait queue: epoll_wait: %s", strerror(err));
            continue;
        }
        for (int k = 0; k < nev; k++) {
            uint64_t tag = evs[k].data.u64;
            if (tag == WAKE_TAG) {
                uint64_t count;
                while (read(q->evfd, &count, sizeof count) < 0 && errno == EINTR)
                    ;
                continue;
            }
            uint32_t i = (uint32_t)tag;
            if (i < q->wcap && q->w[i].conn && q->w[i].gen == (uint32_t)(tag >> 32))
                conns[n++] = detach(q, i);
        }
        q->counts.disconnected += n;
        resume_unlocked(q, conns, n);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int waitq_create(const waitq_ops *ops, waitq **out)
{
    int rc = -ENOMEM;
    waitq *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->ops = *ops;
    q->epfd = q->evfd = -1;
    q->free_head = NONE;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->idle, NULL);
    q->nbucket = 64;
    q->bucket = calloc(q->nbucket, sizeof *q->bucket);
    if (!q->bucket)
        goto fail;
    q->epfd = epoll_create1(EPOLL_CLOEXEC);
    q->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->epfd < 0 || q->evfd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TAG };
    if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, q->evfd, &ev) != 0) {
        rc = -errno;
        goto fail;
    }
    int err = pthread_create(&q->thread, NULL, run, q);
    if (err) {
        rc = -err;
        goto fail;
    }
    q->started = true;
    *out = q;
    return 0;
fail:
    waitq_destroy(q);
    return rc;
}

void waitq_close(waitq *q)
{
    if (!q)
        return;
    void *conns[BATCH];
    pthread_mutex_lock(&q->mu);
    q->closing = true;
    while (q->nheap > 0) {
        size_t n = 0;
        while (q->nheap > 0 && n < BATCH)
            conns[n++] = detach(q, q->heap[q->nheap - 1]); /* the last is cheapest */
        q->counts.closed += n;
        resume_unlocked(q, conns, n);
    }
    /* Others (a notify, the thread) may still be resuming what they took. */
    while (q->nresuming > 0)
        pthread_cond_wait(&q->idle, &q->mu);
    bool join = q->started && !q->stopping;
    q->stopping = true;
    if (join)
        wake(q);
    pthread_mutex_unlock(&q->mu);
    if (join)
        pthread_join(q->thread, NULL);
}

void waitq_destroy(waitq *q)
{
    if (!q)
        return;
    waitq_close(q);
    assert(q->nagents == 0 && q->nheap == 0);
    if (q->epfd >= 0)
        close(q->epfd);
    if (q->evfd >= 0)
        close(q->evfd);
    free(q->bucket);
    free(q->heap);
    free(q->w);
    pthread_cond_destroy(&q->idle);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void waitq_stats(waitq *q, waitq_counts *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->counts;
    pthread_mutex_unlock(&q->mu);
}
