/*
 * metrics.h — the server's own counters and histograms, and the writer of
 * the Prometheus text exposition format (version 0.0.4) that GET /metrics
 * answers with.
 *
 * The request path only adds: every update is a relaxed atomic add into
 * one of METRICS_SHARDS shards, each in cache lines of its own, picked once
 * per thread, so worker threads neither take a lock nor bounce a cache line
 * to count a request. A scrape sums the shards. Figures that are cheaper to
 * read when asked (held requests, agents, the store's counters, the
 * process's memory) are read at scrape time instead.
 *
 * Labels are bounded by construction: a request is counted under its route
 * template (given once to metrics_new), its method (GET, HEAD, POST, PUT,
 * DELETE or "other") and its status code (the codes gotuned answers with,
 * anything else under "other"), never under its raw path.
 *
 * Errors: metrics_new aborts when out of memory (the daemon's policy for
 * start-up); metrics_render returns 0 or -ENOMEM.
 */
#ifndef GOTUNED_METRICS_H
#define GOTUNED_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct waitq;

#define METRICS_SHARDS 16
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct metrics metrics;

/* Telemetry formats, for metrics_samples. */
enum { METRICS_FORMAT_JSON, METRICS_FORMAT_TEXT, METRICS_NFORMATS };
/* Who rolled a version back, for metrics_rollback. */
enum { METRICS_ROLLBACK_OPERATOR, METRICS_ROLLBACK_VERIFIER, METRICS_NTRIGGERS };

/* A new registry. version goes into gotuned_build_info; route(i) for i in
 * [0, nroutes) are the route labels, by the index that metrics_request
 * takes (the strings are copied). Counters start at zero and
 * process_start_time_seconds is now. */
metrics *metrics_new(const char *version, const char *(*route)(size_t i), size_t nroutes);
/* NULL is ignored. No thread may use m any more. */
void metrics_free(metrics *m);

/* Where the gauge of held requests comes from (NULL: none). Set it before
 * the threads that scrape start, and clear it only after they stopped. */
void metrics_set_waitq(metrics *m, struct waitq *q);

/* Monotonic nanoseconds, the clock request durations are measured with. */
uint64_t metrics_now_ns(void);

/* Counts one answered request: route (an index below nroutes; larger ones
 * count under the last route), method, status, and how long it took. A
 * request that was held as a blocking query (held) goes into the blocking
 * query histogram instead of the request duration histogram, since its
 * duration is the wait the client asked for. m may be NULL. */
void metrics_request(metrics *m, size_t route, const char *method, int status,
                     uint64_t elapsed_ns, bool held);

/* Counts samples of one telemetry push: accepted (stored) and rejected.
 * m may be NULL. */
void metrics_samples(metrics *m, int format, uint64_t accepted, uint64_t rejected);

/* Counts a committed rollback version. m may be NULL. */
void metrics_rollback(metrics *m, int trigger);

/* What a scrape adds from the store (read by api/, which owns the store
 * calls and the policy that decides an agent's effective mode). */
typedef struct metrics_scrape {
    const store_stats *store;       /* NULL: the store families are left out */
    bool census_ok;                 /* false: the store did not answer the census;
                                       the agent families are left out and
                                       gotuned_store_up is 0 */
    uint64_t agents[3][2];          /* by effective mode (STORE_MODE_RECOMMEND,
                                       _AUTO, _PINNED) and by stale (index 1) */
    double agents_dropped;          /* the sum of agents' reported dropped_samples */
} metrics_scrape;

/* Writes the exposition text into *out (malloc'd, not NUL-terminated
 * beyond *len; the caller frees it): the registry's families (left out
 * when m is NULL), then the process's, then those of *x. Every family has
 * its HELP and TYPE lines; histograms have cumulative buckets with
 * le="+Inf", _sum and _count. 0 or -ENOMEM. */
int metrics_render(metrics *m, const metrics_scrape *x, char **out, size_t *len);

#endif
