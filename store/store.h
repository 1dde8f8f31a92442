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
#define STORE_ACTOR_MAX 63
#define STORE_KIND_MAX 31

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

typedef enum store_mode {
    STORE_MODE_RECOMMEND = 0,
    STORE_MODE_AUTO = 1,
    STORE_MODE_PINNED = 2
} store_mode;

const char *store_mode_name(int mode);     /* NULL if invalid */
int store_mode_parse(const char *name);    /* -1 if invalid */

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
    /* Kept by the store: */
    int64_t first_seen_ms, last_seen_ms;
    store_mode mode;
    int64_t config_version;                 /* current version; 0 = none yet */
    int64_t last_change_ms;                 /* when the current version was made; 0 = never */
    tuner_config override;                  /* operator's pinned values */
    uint64_t samples_total;                 /* samples ever accepted */
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
 * service, hostname, runtime, pid, cpu, limit_source, parent_tighter; the
 * other fields of *facts are ignored) and sets last_seen to now. A new agent
 * starts in mode recommend at version 0 and gets an "agent_registered"
 * event. *created (may be NULL) tells which happened. -ENOSPC when the agent
 * cap is reached. */
int store_agent_upsert(store *s, const store_agent *facts, int64_t now_ms,
                       bool *created);

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

/* Sets an agent's mode and appends *ev in the same transaction. */
int store_agent_set_mode(store *s, const char *id, store_mode mode,
                         const store_event *ev);

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
 * Samples reach the database within one flush interval; when the database
 * stays stuck, the queue keeps the newest 100000 and drops older ones. */
int store_samples_append(store *s, const char *agent_id,
                         const tuner_sample *samples, size_t n);

/* Copies up to max of the newest samples of an agent's window, oldest first,
 * into a new array (*out, *n); free it with store_samples_free. */
int store_samples_window(store *s, const char *agent_id, size_t max,
                         tuner_sample **out, size_t *n);

void store_samples_free(tuner_sample *samples, size_t n);

#endif
