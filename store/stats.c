/*
 * stats.c — what the store counts about itself for GET /metrics: commit
 * durations, the size of persisted sample batches, config versions by
 * source, the pending queue; and the census of agents by mode and
 * staleness.
 *
 * The counters are relaxed atomics updated where the store already holds
 * db_mu, so a scrape reads them without waiting behind a flush.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"
#include "store/xalloc.h"

/* A WAL commit at synchronous NORMAL takes tens of microseconds, one that
 * syncs (FULL) a millisecond or more on a disk, and a stuck disk seconds. */
const double store_commit_bounds_s[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
const size_t store_commit_nbounds = sizeof store_commit_bounds_s / sizeof store_commit_bounds_s[0];

/* Up to STORE_FLUSH_BATCH (4096) samples per batch. */
const double store_batch_bounds[] = { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 4096 };
const size_t store_batch_nbounds = sizeof store_batch_bounds / sizeof store_batch_bounds[0];

static const char *const kind_names[STORE_COMMIT_NKINDS] = {
    [STORE_COMMIT_DURABLE] = "durable",
    [STORE_COMMIT_BATCH] = "batch",
};

static const char *const source_names[STORE_NSOURCES] = {
    [STORE_SOURCE_TUNER] = "tuner",
    [STORE_SOURCE_OPERATOR] = "operator",
    [STORE_SOURCE_OVERRIDE] = "override",
    [STORE_SOURCE_ROLLBACK] = "rollback",
    [STORE_SOURCE_OTHER] = "other",
};

const char *store_commit_kind_name(int kind)
{
    return kind >= 0 && kind < STORE_COMMIT_NKINDS ? kind_names[kind] : NULL;
}

const char *store_source_name(int source)
{
    return source >= 0 && source < STORE_NSOURCES ? source_names[source] : NULL;
}

uint64_t sq_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Adds one observation: value v (in the bounds' unit) to its bucket, and
 * units (v in the sum's integer unit) to the sum. */
static void hist_add(sq_hist *h, const double *bounds, size_t nbounds, double v, uint64_t units)
{
    size_t i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, units, memory_order_relaxed);
}

static void hist_read(const sq_hist *h, const double *bounds, size_t nbounds, double unit,
                      store_histogram *out)
{
    assert(nbounds <= STORE_HIST_MAX);
    memset(out, 0, sizeof *out);
    out->bounds = bounds;
    out->nbounds = nbounds;
    for (size_t i = 0; i <= nbounds; i++)
        out->counts[i] = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    out->sum = (double)atomic_load_explicit(&h->sum, memory_order_relaxed) * unit;
}

void sq_stats_commit(store *s, store_commit_kind kind, uint64_t ns)
{
    assert(kind < STORE_COMMIT_NKINDS);
    hist_add(&s->stats.commit[kind], store_commit_bounds_s, store_commit_nbounds,
             (double)ns / 1e9, ns);
}

void sq_stats_batch(store *s, size_t n)
{
    hist_add(&s->stats.batch, store_batch_bounds, store_batch_nbounds, (double)n, n);
    atomic_fetch_add_explicit(&s->stats.persisted, n, memory_order_relaxed);
}

void sq_stats_version(store *s, const char *source)
{
    int i = 0;
    while (i < STORE_SOURCE_OTHER && strcmp(source, source_names[i]) != 0)
        i++;
    atomic_fetch_add_explicit(&s->stats.versions[i], 1, memory_order_relaxed);
}

void store_stats_get(store *s, store_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    for (int k = 0; k < STORE_COMMIT_NKINDS; k++)
        hist_read(&s->stats.commit[k], store_commit_bounds_s, store_commit_nbounds, 1e-9,
                  &out->commit[k]);
    hist_read(&s->stats.batch, store_batch_bounds, store_batch_nbounds, 1, &out->batch);
    for (int i = 0; i < STORE_NSOURCES; i++)
        out->versions[i] = atomic_load_explicit(&s->stats.versions[i], memory_order_relaxed);
    out->samples_persisted = atomic_load_explicit(&s->stats.persisted, memory_order_relaxed);
    pthread_mutex_lock(&s->win_mu);
    out->samples_dropped = s->queue.dropped;
    out->samples_pending = s->queue.len;
    pthread_mutex_unlock(&s->win_mu);
}

/* Appends the census rows of the agents with after < id <= upto (db_mu
 * held); 0 or -EIO. */
static int census_page(store *s, int64_t seen_since_ms, const char *after, const char *upto,
                       store_census_row **rows, size_t *len, size_t *cap)
{
    /* The service matters only for agents that follow their policy. */
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_CENSUS,
        "SELECT CASE WHEN mode_set THEN '' ELSE service END, "
        "CASE WHEN mode_set THEN mode END, last_seen_ms < ?1, count(*), "
        "total(dropped_samples) FROM agents WHERE id > ?2 AND id <= ?3 GROUP BY 1, 2, 3");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, seen_since_ms);
    sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, upto, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*len == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            store_census_row *grown = realloc(*rows, *cap * sizeof **rows);
            if (!grown) {
                fprintf(stderr, "store: out of memory (%zu census rows)\n", *cap);
                abort();
            }
            *rows = grown;
        }
        store_census_row *r = &(*rows)[(*len)++];
        memset(r, 0, sizeof *r);
        sq_copy_text(r->service, sizeof r->service, sqlite3_column_text(st, 0));
        /* NULL: the agent follows its policy (mode_set = 0). Otherwise
         * read as read_state (agents.c) does: an unparsable stored mode is
         * recommend. */
        int m = store_mode_parse((const char *)sqlite3_column_text(st, 1));
        r->mode = sqlite3_column_type(st, 1) == SQLITE_NULL ? STORE_MODE_DEFAULT
                  : m < 0 ? STORE_MODE_RECOMMEND : (store_mode)m;
        r->stale = sqlite3_column_int(st, 2) != 0;
        r->agents = (uint64_t)sqlite3_column_int64(st, 3);
        r->dropped_samples = sqlite3_column_double(st, 4);
    }
    int ret = rc == SQLITE_DONE ? 0 : sq_fail(s, "agent census");
    sq_done(st);
    return ret;
}

int store_agent_census(store *s, int64_t seen_since_ms, store_census_row **out, size_t *n)
{
    if (!s || !out || !n)
        return -EINVAL;
    *out = NULL;
    *n = 0;
    size_t cap = 0, len = 0;
    store_census_row *rows = NULL;
    char after[STORE_ID_MAX + 1] = "", upto[STORE_ID_MAX + 1];
    /* last_seen_ms and dropped_samples live in memory until the flusher
     * writes them (agents.c, the push path): write them now, so that the
     * rows read below are as current as the API's answers. */
    int ret = store_flush(s);
    /* A page of agents (by id) per hold of db_mu, so that a scrape of a
     * large fleet delays pushes and config writes by one page at most.
     * Agents that change between pages are counted as they are when their
     * page is read. */
    for (bool more = true; ret == 0 && more;) {
        pthread_mutex_lock(&s->db_mu);
        sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_CENSUS_END,
            "SELECT max(id) FROM (SELECT id FROM agents WHERE id > ?1 ORDER BY id LIMIT ?2)");
        if (!st) {
            ret = -EIO;
        } else {
            sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, STORE_CENSUS_PAGE);
            int rc = sqlite3_step(st);
            more = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
            if (more)
                sq_copy_text(upto, sizeof upto, sqlite3_column_text(st, 0));
            else if (rc != SQLITE_ROW)
                ret = sq_fail(s, "agent census");
            sq_done(st);
        }
        if (ret == 0 && more)
            ret = census_page(s, seen_since_ms, after, upto, &rows, &len, &cap);
        pthread_mutex_unlock(&s->db_mu);
        memcpy(after, upto, sizeof after);
    }
    if (ret < 0) {
        free(rows);
        return ret;
    }
    *out = rows;
    *n = len;
    return 0;
}
