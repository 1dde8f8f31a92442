/*
 * store.h — gotuned's persistence, behind one interface.
 *
 * The embedded implementation keeps agents, config versions, events and
 * policies in SQLite (WAL) and commits each change before the call returns,
 * so whatever a caller acknowledged survives kill -9. Samples live in a
 * bounded in-memory window per agent (what the tuner reads) and are
 * persisted in batches by a background thread, with retention, and reloaded
 * on open.
 *
 * Nothing here speaks SQL to its callers, and nothing here parses JSON:
 * texts marked "opaque" are stored and returned byte for byte.
 *
 * All functions are safe to call from several threads at once.
 *
 * Errors: 0 on success, or a negative errno-style code:
 *   -ENOENT  no such agent / version / policy
 *   -EEXIST  (reserved)
 *   -ESTALE  the agent's config version moved on since the caller read it
 *   -ENOSPC  a cap was reached (agents in total)
 *   -EINVAL  bad argument
 *   -EIO     the database failed; the message is logged to stderr
 */
#ifndef GOTUNED_STORE_H
#define GOTUNED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tuner/tuner.h"

#define STORE_ID_MAX 128            /* agent ids and service names */
#define STORE_HOST_MAX 255
#define STORE_RUNTIME_MAX 63
#define STORE_SOURCE_MAX 127        /* cpu limit source description */
#define STORE_ACTOR_MAX 79           /* "operator:" + a 63-character token name */
#define STORE_KIND_MAX 31
#define STORE_ERROR_MAX 1023        /* an agent's NACK error text */

typedef struct store store;

/* A zero (or negative) field means its default. */
typedef struct store_options {
    int64_t retention_ms;           /* samples whose recv_ms is older than this
                                       are deleted; default 24 h */
    size_t max_agents;              /* cap on agents in total; default 100000 */
    unsigned flush_interval_ms;     /* sample batch interval; default 1000 */
} store_options;

/* Fills *o with the defaults above. */
void store_options_default(store_options *o);

/* An agent's mode. STORE_MODE_DEFAULT means "not set on the agent": the
 * API then uses the mode.default of the agent's effective policy. The
 * first three values are also the values of that policy field. */
typedef enum store_mode {
    STORE_MODE_RECOMMEND = 0,
    STORE_MODE_AUTO = 1,
    STORE_MODE_PINNED = 2,
    STORE_MODE_DEFAULT = 3
} store_mode;

const char *store_mode_name(int mode);     /* "recommend", "auto", "pinned",
                                              "default"; NULL if invalid */
int store_mode_parse(const char *name);    /* -1 if invalid */

/* A verification waiting for samples after an ACK. version 0 = none. The
 * "before" figures are computed when the ACK arrives; a negative figure
 * means it could not be computed (e.g. not every sample had a latency).
 * The store keeps figures exactly, except a NaN, which reads back as -1. */
typedef struct store_verify {
    int64_t version;                        /* the ACKed version under test */
    int64_t acked_ms;                       /* samples received after this count as "after" */
    double before_lat;                      /* scheduling-latency p99, us */
    double before_runq;                     /* local run queue per P */
    uint32_t before_n;                      /* samples in the before window */
} store_verify;

/* The last verification verdict. version 0 = none yet. */
typedef struct store_verdict {
    int64_t version;
    int64_t decided_ms;
    char verdict[16];                       /* "passed", "failed", "skipped" */
    char metric[32];                        /* "sched_latency_p99_us", "runq_per_p" */
    double before, after;                   /* the metric over each window */
} store_verdict;

/* A cgroup's cumulative CPU throttling counters (cpu.stat) as an agent
 * reported them. periods < 0 = none reported. */
typedef struct store_throttle {
    int64_t periods;                        /* enforcement periods elapsed */
    int64_t throttled;                      /* periods in which it was throttled */
    int64_t throttled_us;                   /* total time throttled */
    int64_t ms;                             /* when the server received them */
} store_throttle;

/* What an agent reports about itself, plus what the server keeps. */
typedef struct store_agent {
    char id[STORE_ID_MAX + 1];
    char service[STORE_ID_MAX + 1];
    char hostname[STORE_HOST_MAX + 1];
    char runtime[STORE_RUNTIME_MAX + 1];    /* e.g. "go1.19.8" */
    int64_t pid;                            /* 0 = unknown */
    tuner_cpu cpu;
    char limit_source[STORE_SOURCE_MAX + 1];/* where cpu.limit came from; "" = unknown */
    int parent_tighter;                     /* 1/0, -1 = unknown */
    store_throttle throttle;                /* the latest throttling report ... */
    store_throttle throttle_prev;           /* ... and the one before it */
    int64_t dropped_samples;                /* samples the agent dropped, cumulative */
    /* Kept by the store: */
    int64_t first_seen_ms, last_seen_ms;
    store_mode mode;
    int64_t config_version;                 /* current (desired) version; 0 = none yet */
    int64_t last_change_ms;                 /* when the current version was made; 0 = never */
    tuner_config override;                  /* operator's pinned values */
    uint64_t samples_total;                 /* samples ever accepted */
    int64_t applied_version;                /* what the agent last said it runs; 0 = none */
    int64_t applied_ms;                     /* when it said so; 0 = never */
    int64_t outdated_since_ms;              /* 0 while applied_version == config_version,
                                               else since when it differs (kept by the
                                               store after every change) */
    int64_t nack_version;                   /* last version the agent rejected; 0 = none */
    int64_t nack_ms;
    char nack_error[STORE_ERROR_MAX + 1];
    store_verify verify;                    /* pending verification */
    store_verdict verdict;                  /* last verdict */
    tuner_config rejected;                  /* values a rollback rejected ... */
    int64_t rejected_until_ms;              /* ... not to be proposed again before this */
} store_agent;

/* An audit record. before/after are opaque texts (the API layer writes JSON
 * there), either may be NULL. */
typedef struct store_event {
    int64_t id;                             /* assigned by the store */
    int64_t ts_ms;
    char kind[STORE_KIND_MAX + 1];          /* "agent_registered", "config_version", ... */
    char agent_id[STORE_ID_MAX + 1];        /* "" when not about one agent */
    char service[STORE_ID_MAX + 1];         /* "" when not about one service */
    char actor[STORE_ACTOR_MAX + 1];        /* "operator", "agent", "tuner", ... */
    const char *before;
    const char *after;
} store_event;

typedef struct store_version {
    int64_t version;
    int64_t created_ms;
    tuner_config config;
    char source[16];                        /* "operator", "override", "tuner", "rollback" */
    char *reasons;                          /* opaque text, malloc'd, may be NULL;
                                               free with store_version_cleanup */
} store_version;

void store_version_cleanup(store_version *v);

/* ------------------------------------------------------------- lifecycle */

/* Opens (creating if needed) the store in directory dir, migrating the schema
 * forward, and reloads the sample windows. opt may be NULL for defaults.
 * The directory (and missing parents) is created with mode 0750 and holds
 * gotuned.db with its -wal and -shm files. On failure returns a negative
 * code (-EIO also when the file's schema is newer than this code knows) and
 * writes a message into err. */
int store_open(const char *dir, const store_options *opt, store **out,
               char *err, size_t errlen);

/* Stops the flusher, persists pending samples and closes the database.
 * Returns at once; it does not wait for the next flush interval. */
void store_close(store *s);

/* Writes pending samples now and applies retention. */
int store_flush(store *s);

/* Cheap health check: 0 when the database answers. */
int store_ping(store *s);

/* ---------------------------------------------------------------- agents */

/* Creates or updates an agent from the facts an agent reported (id,
 * service, hostname, runtime, pid, cpu, limit_source, parent_tighter,
 * throttle, throttle_prev, dropped_samples; the other fields of *facts are
 * ignored) and sets last_seen to now. A new agent
 * starts in mode default (it follows its policy) at version 0 and gets an
 * "agent_registered" event. *created (may be NULL) tells which happened. -ENOSPC when the agent
 * cap is reached. */
int store_agent_upsert(store *s, const store_agent *facts, int64_t now_ms,
                       bool *created);
/* The same, with the "agent_registered" event's actor named (the plain call
 * records "agent"): with access control on, the API names the token. */
int store_agent_upsert_as(store *s, const store_agent *facts, const char *actor,
                          int64_t now_ms, bool *created);

int store_agent_get(store *s, const char *id, store_agent *out);

/* Lists agents ordered by id, those with id > after (after may be NULL or
 * ""), of one service when service is non-NULL and non-empty. Writes up to
 * max agents to out[], sets *n and *more (another page exists). */
int store_agent_list(store *s, const char *service, const char *after,
                     store_agent *out, size_t max, size_t *n, bool *more);

/* Number of agents, for health and metrics (answered from memory). */
int store_agent_count(store *s, size_t *n);

/* Deletes an agent with its versions and samples (events stay) and appends
 * *ev in the same transaction. */
int store_agent_delete(store *s, const char *id, const store_event *ev);

/* Sets an agent's mode (STORE_MODE_DEFAULT: follow the policy) and
 * appends *ev in the same transaction. */
int store_agent_set_mode(store *s, const char *id, store_mode mode,
                         const store_event *ev);

/* The agent's current config version, cheaply (for blocking queries);
 * -ENOENT for an unknown agent. */
int store_agent_version(store *s, const char *id, int64_t *version);

/* ------------------------------------------------------- batched changes */

/* Agent fields store_apply can set, as bits of store_change.fields; the
 * values come from *store_change.values. */
enum {
    STORE_SET_MODE = 1u << 0,       /* mode */
    STORE_SET_APPLIED = 1u << 1,    /* applied_version, applied_ms */
    STORE_SET_NACK = 1u << 2,       /* nack_version, nack_ms, nack_error */
    STORE_SET_VERIFY = 1u << 3,     /* verify */
    STORE_SET_VERDICT = 1u << 4,    /* verdict */
    STORE_SET_REJECTED = 1u << 5,   /* rejected, rejected_until_ms */
    STORE_SET_OVERRIDE = 1u << 6    /* override */
};

/* One agent's change: optionally a new config version, optionally some
 * agent fields, and the events that record it, all or nothing. */
typedef struct store_change {
    const char *agent_id;
    int64_t expect_version;         /* -1: any; else -ESTALE unless the agent's
                                       current version is still this one */
    const tuner_config *config;     /* non-NULL: append version expect_version + 1
                                       (expect_version must be >= 0) and make it
                                       current; this also clears a pending
                                       verification unless STORE_SET_VERIFY is
                                       in fields */
    const char *source;             /* with config: "operator", "override",
                                       "tuner", "rollback" */
    const char *reasons;            /* with config: opaque text, may be NULL */
    unsigned fields;                /* STORE_SET_* */
    const store_agent *values;      /* required when fields != 0 */
    const store_event *events;      /* nevents events appended with the change */
    size_t nevents;
    /* Out: */
    int rc;                         /* 0, -ENOENT, -ESTALE, -EINVAL or -EIO */
    int64_t version;                /* the agent's config version afterwards
                                       (also with -ESTALE); 0 when the agent
                                       was not read (-EINVAL, -ENOENT, -EIO) */
} store_change;

/* Applies n changes in one transaction (one durable commit for all). A
 * change whose agent is missing, whose expect_version is stale or whose
 * arguments are bad gets that rc and is skipped; the others go through.
 * After every change the store sets outdated_since_ms: 0 when
 * applied_version equals config_version, else now_ms if it was 0. Returns 0
 * when the transaction committed (see each rc), -EINVAL for bad arguments
 * (ch NULL or n 0), or -EIO (then every rc is -EIO and nothing changed).
 * After the commit, with no store lock held, the version hook runs once per
 * change that made a new version. */
int store_apply(store *s, store_change *ch, size_t n, int64_t now_ms);

/* Called after a commit made a new config version current for an agent
 * (version >= 1), and after an agent was deleted (version -1). Runs in the
 * committing thread with no store lock held, so it may call the store.
 * One hook per store; set it before other threads use the store. */
typedef void (*store_version_hook)(void *ud, const char *agent_id, int64_t version);
void store_set_version_hook(store *s, store_version_hook fn, void *ud);

/* --------------------------------------------------------------- configs */

/* Appends the next config version for an agent in one transaction: checks
 * that the agent's current version is still expect_version (else -ESTALE),
 * inserts version expect_version + 1, makes it current, stores the override
 * when override is non-NULL, and appends *ev (may be NULL). Synchronous
 * FULL: durable when it returns. *new_version gets the number. */
int store_config_append(store *s, const char *agent_id, int64_t expect_version,
                        const tuner_config *cfg, const char *source,
                        const char *reasons, const tuner_config *override,
                        const store_event *ev, int64_t now_ms,
                        int64_t *new_version);

/* Reads one version (version 0 = the current one). -ENOENT when the agent
 * or version does not exist, or the agent has no version yet. */
int store_config_get(store *s, const char *agent_id, int64_t version,
                     store_version *out);

/* Lists an agent's versions, newest first, up to max; each entry must be
 * cleaned up with store_version_cleanup. -ENOENT for an unknown agent; an
 * agent with no version yet gives *n = 0. */
int store_config_history(store *s, const char *agent_id, store_version *out,
                         size_t max, size_t *n);

/* ---------------------------------------------------------------- events */

/* Appends one event (kind required; ts_ms 0 = now). The `ev` parameters of
 * the other functions are written the same way, in the same transaction as
 * the change they record. */
int store_event_append(store *s, const store_event *ev);

typedef struct store_event_filter {
    const char *agent_id;       /* NULL/"" = any */
    const char *kind;           /* NULL/"" = any */
    int64_t since_ms;           /* ts_ms >= since_ms */
    int64_t after_id;           /* id > after_id (paging) */
    size_t limit;               /* 0 = no limit */
} store_event_filter;

/* Calls cb for each matching event, oldest first (by id); f may be NULL for
 * all. The strings in *ev are valid only during the call. A non-zero return
 * from cb stops the walk (and store_event_list still returns 0). cb runs
 * under the store's lock: it must not call store functions, and should be
 * quick. */
typedef int (*store_event_cb)(void *ud, const store_event *ev);
int store_event_list(store *s, const store_event_filter *f, store_event_cb cb,
                     void *ud);

/* -------------------------------------------------------------- policies */

/* The global policy is the built-in defaults merged with what was stored;
 * *out is always full. */
int store_policy_get_global(store *s, tuner_policy *out);
/* A service's override patch (only the fields it sets); -ENOENT if none. */
int store_policy_get_service(store *s, const char *service, tuner_policy *out);
/* The policy in force for a service: global merged with the service's patch. */
int store_policy_effective(store *s, const char *service, tuner_policy *out);
/* Replaces the stored global policy with *p (its set fields; fields it does
 * not set return to the defaults) and appends *ev. -EINVAL, with nothing
 * stored, when a field is out of range or the resulting policy is not
 * consistent (tuner_policy_validate / tuner_policy_check_full). */
int store_policy_put_global(store *s, const tuner_policy *p, const store_event *ev);
/* Replaces a service's patch with *p, validated as above against the
 * current global policy. A patch that sets no field leaves the service
 * without a policy (get_service then says -ENOENT). */
int store_policy_put_service(store *s, const char *service, const tuner_policy *p,
                             const store_event *ev);
/* -ENOENT when the service has no policy. */
int store_policy_delete_service(store *s, const char *service,
                                const store_event *ev);

/* --------------------------------------------------------------- samples */

/* Adds samples to an agent's window (oldest dropped past TUNER_MAX_WINDOW)
 * and to the persistence queue; copies everything it keeps. Each sample's
 * recv_ms must be set and nprocs be 1..TUNER_MAX_PROCS with local_runq
 * non-NULL, else -EINVAL and nothing is kept. -ENOENT for an unknown agent.
 * Samples reach the database within one flush interval (sooner when many
 * wait). -EBUSY, with nothing kept, when the queue to the database would
 * pass its cap (100000 samples): the database is behind or stuck, and the
 * caller should send them again later. */
/* True when the queue to the database is at least nine tenths full: a
 * caller can refuse a push before decoding it (it would likely get -EBUSY
 * anyway), leaving the CPU to the flusher. */
bool store_samples_busy(store *s);

int store_samples_append(store *s, const char *agent_id,
                         const tuner_sample *samples, size_t n);

/* Copies up to max of the newest samples of an agent's window, oldest first,
 * into a new array (*out, *n); free it with store_samples_free. */
int store_samples_window(store *s, const char *agent_id, size_t max,
                         tuner_sample **out, size_t *n);

void store_samples_free(tuner_sample *samples, size_t n);

/* ------------------------------------------------------------ statistics */

/* What the store counts about itself for GET /metrics, kept with relaxed
 * atomics (written under the store's own locks), so reading them never
 * waits for a flush or a durable write. Counters run from store_open. */

/* Histogram buckets: upper bounds, ascending (the last bucket, above the
 * last bound, is implied). */
#define STORE_HIST_MAX 16
extern const double store_commit_bounds_s[];    /* COMMIT durations, seconds */
extern const size_t store_commit_nbounds;
extern const double store_batch_bounds[];       /* samples per persisted batch */
extern const size_t store_batch_nbounds;

/* Which commits: durable ones (synchronous FULL: agents, versions, events,
 * policies) and sample batches (synchronous NORMAL). */
typedef enum store_commit_kind {
    STORE_COMMIT_DURABLE = 0,
    STORE_COMMIT_BATCH = 1,
    STORE_COMMIT_NKINDS
} store_commit_kind;
const char *store_commit_kind_name(int kind);   /* "durable", "batch"; NULL if invalid */

/* Config version sources as counted; anything else is "other". */
typedef enum store_source {
    STORE_SOURCE_TUNER = 0,
    STORE_SOURCE_OPERATOR,
    STORE_SOURCE_OVERRIDE,
    STORE_SOURCE_ROLLBACK,
    STORE_SOURCE_OTHER,
    STORE_NSOURCES
} store_source;
const char *store_source_name(int source);      /* NULL if invalid */

/* A histogram snapshot. */
typedef struct store_histogram {
    const double *bounds;                   /* nbounds upper bounds (static) */
    size_t nbounds;
    uint64_t counts[STORE_HIST_MAX + 1];    /* per bucket, not cumulative;
                                               counts[nbounds] is above the last bound */
    double sum;                             /* of the observed values */
} store_histogram;

typedef struct store_stats {
    store_histogram commit[STORE_COMMIT_NKINDS];    /* seconds per successful COMMIT */
    store_histogram batch;                  /* samples per committed batch (batches
                                               with no samples are not counted) */
    uint64_t versions[STORE_NSOURCES];      /* config versions committed, by source */
    uint64_t samples_persisted;             /* samples written to the database */
    uint64_t samples_dropped;               /* dropped by the pending queue's cap: a
                                               failed batch put back into a full queue */
    uint64_t samples_refused;               /* refused because the queue was full
                                               (store_samples_append's -EBUSY) */
    uint64_t samples_pending;               /* waiting for the database now */
} store_stats;

/* A snapshot of the counters. Never fails; takes the window lock only
 * briefly (for the pending queue). */
void store_stats_get(store *s, store_stats *out);

/* Agents grouped for GET /metrics: by mode as stored, by whether they were
 * seen since a time, and, for agents that follow their policy's mode
 * (STORE_MODE_DEFAULT), by service, so that the caller can resolve the
 * mode per service. */
typedef struct store_census_row {
    char service[STORE_ID_MAX + 1];         /* "" unless mode is STORE_MODE_DEFAULT */
    store_mode mode;
    bool stale;                             /* last_seen_ms < the caller's seen_since_ms */
    uint64_t agents;
    double dropped_samples;                 /* sum of their reported dropped_samples */
} store_census_row;

/* Fills *out (malloc'd; free it with free()) with *n rows; rows with the
 * same mode, staleness and service may repeat (the caller sums them). It
 * reads the whole agents table, a page at a time under the store's lock:
 * meant for scrapes, not for the request path. -EIO when the database
 * fails. */
int store_agent_census(store *s, int64_t seen_since_ms, store_census_row **out, size_t *n);

#endif
