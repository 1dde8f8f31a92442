/*
 * wait.h — a wait queue for held requests (blocking queries), without a
 * thread per request.
 *
 * A held request is a suspended connection waiting for one agent's config
 * version to move past the index the client already has. The queue keeps
 * each one in a hash by agent id (for waitq_notify), in a min-heap by
 * deadline, and with its socket in an epoll set that watches only for the
 * peer going away (EPOLLRDHUP, EPOLLHUP, EPOLLERR; never EPOLLIN, since a
 * client may pipeline its next request). One background thread per queue
 * sleeps in epoll_wait until the earliest deadline and resumes expired and
 * disconnected waiters.
 *
 * The queue knows nothing of libmicrohttpd: a connection is an opaque
 * pointer, and ops says how to read an agent's version, suspend and resume.
 * Every waiter is resumed exactly once: the queue detaches it under its lock
 * and then calls ops->resume without the lock, so ops->resume may take
 * other locks (libmicrohttpd's) freely.
 *
 * Errors: 0 or a negative errno-style code.
 */
#ifndef GOTUNED_WAIT_H
#define GOTUNED_WAIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct waitq waitq;

typedef struct waitq_ops {
    /* The agent's current version: 0, or -ENOENT for an unknown agent (any
     * other error counts as "answer now" too). Called with the queue's lock
     * held, so it must not call back into the queue. */
    int (*version)(void *ud, const char *agent, int64_t *v);
    /* Called by waitq_add with the queue's lock held, in the thread that
     * called waitq_add, before any notify can resume the connection. */
    void (*suspend)(void *ud, void *conn);
    /* Called once per held connection, without the queue's lock, from
     * whichever thread woke it (a notifier, the queue's thread, or
     * waitq_close's caller). */
    void (*resume)(void *ud, void *conn);
    void *ud;
} waitq_ops;

/* Counters since creation; each resumed waiter counts under one cause. */
typedef struct waitq_counts {
    size_t waiting;             /* held right now */
    uint64_t woken;             /* by waitq_notify: a new version, or the agent deleted */
    uint64_t timed_out;         /* the wait passed */
    uint64_t disconnected;      /* the peer hung up or the socket failed */
    uint64_t closed;            /* resumed by waitq_close */
} waitq_counts;

/* Creates a queue and starts its thread. ops is copied. -ENOMEM, or the
 * errno of epoll_create1, eventfd or pthread_create. */
int waitq_create(const waitq_ops *ops, waitq **out);

/* Holds conn until agent's version differs from index, wait_ms passes
 * (monotonic clock), the peer of fd hangs up, or the queue closes.
 *
 * Under the queue's lock it re-reads the version through ops->version, so a
 * change committed after the caller's own read is never missed: when the
 * version already differs from index, the agent is unknown, the queue is
 * closing or wait_ms <= 0, it returns 0 (answer now) and conn is not
 * suspended. Otherwise it calls ops->suspend(conn), registers the waiter and
 * returns 1; conn is then resumed exactly once, possibly before waitq_add
 * returns. A negative code (-EINVAL, -ENOMEM, or epoll_ctl's errno for fd)
 * also means answer now. agent is copied; fd stays the caller's. */
int waitq_add(waitq *q, void *conn, int fd, const char *agent, int64_t index,
              int64_t wait_ms);

/* The store's version hook: agent's version is now version (-1 when the
 * agent was deleted). Resumes that agent's waiters whose index differs. */
void waitq_notify(waitq *q, const char *agent, int64_t version);

/* Resumes every waiter and stops the thread; returns when every resume
 * (including ones another thread had started) has been called. Later
 * waitq_add calls return 0. Safe to call twice. */
void waitq_close(waitq *q);

/* Closes the queue if needed and frees it. NULL is ignored. */
void waitq_destroy(waitq *q);

/* A snapshot of the counters. */
void waitq_stats(waitq *q, waitq_counts *out);

#endif
