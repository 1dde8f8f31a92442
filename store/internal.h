/*
 * internal.h — what the files of store/ share: the store object, the
 * prepared-statement cache and the SQLite helpers. Not for use outside
 * store/.
 *
 * Locking: db_mu guards the connection and every statement; win_mu guards
 * the sample windows, the pending queue and the in-memory agent table.
 * When both are needed, db_mu is taken first. Agents enter and leave the
 * in-memory table only while db_mu is held, right after their row is
 * committed or deleted, so a holder of db_mu sees the table and the agents
 * table agree.
 */
#ifndef GOTUNED_STORE_INTERNAL_H
#define GOTUNED_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sqlite3.h>

#include "store/pending.h"
#include "store/store.h"
#include "store/window.h"

/* How long a statement waits for another connection's write lock. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* Pending samples beyond this are refused (-EBUSY): the agents keep them
 * and send them again. An eighth of it wakes the flusher before its
 * interval is up. */
#define STORE_PENDING_MAX 100000u
/* Samples written per transaction; the flusher releases db_mu between
 * batches so config writes do not wait behind a large backlog. */
#define STORE_FLUSH_BATCH 4096u
/* Expired samples deleted per transaction, for the same reason. */
#define STORE_EXPIRE_CHUNK 10000
/* Agents the census reads per hold of db_mu (a few milliseconds). */
#define STORE_CENSUS_PAGE 2000

/* Policy scopes cached (direct-mapped by a hash of the scope). */
#define STORE_POLICY_CACHE 64u

/* Every statement the store runs, each prepared once on first use. */
typedef enum sq_id {
    SQ_BEGIN, SQ_COMMIT, SQ_ROLLBACK, SQ_PING, SQ_SYNC_NORMAL, SQ_SYNC_FULL,
    SQ_AGENT_EXISTS, SQ_AGENT_INSERT, SQ_AGENT_UPDATE, SQ_AGENT_GET,
    SQ_AGENT_LIST, SQ_AGENT_LIST_SERVICE, SQ_AGENT_DELETE,
    SQ_AGENT_DELETE_VERSIONS, SQ_AGENT_DELETE_SAMPLES, SQ_AGENT_VERSION,
    SQ_AGENT_SET_STATE, SQ_AGENT_SET_TOTAL, SQ_AGENT_TOTALS,
    SQ_CONFIG_INSERT, SQ_CONFIG_GET, SQ_CONFIG_HISTORY,
    SQ_EVENT_INSERT, SQ_EVENT_LIST, SQ_EVENT_LIST_AGENT,
    SQ_POLICY_GET, SQ_POLICY_DELETE, SQ_POLICY_INSERT,
    SQ_SAMPLE_INSERT, SQ_SAMPLE_NEWEST, SQ_SAMPLE_EXPIRE,
    SQ_AGENT_CENSUS, SQ_AGENT_CENSUS_END,
    SQ_COUNT
} sq_id;

/* A histogram for store_stats: each observation adds to one bucket and to
 * the sum, with relaxed atomics. Observations are made with db_mu held, so
 * there is one writer at a time; a reader may see a bucket and the sum of
 * slightly different moments, which a scrape tolerates. */
typedef struct sq_hist {
    _Atomic uint64_t counts[STORE_HIST_MAX + 1];
    _Atomic uint64_t sum;           /* nanoseconds (commits) or samples (batches) */
} sq_hist;

/* What store_stats_get reports; see store.h. */
typedef struct sq_stats {
    sq_hist commit[STORE_COMMIT_NKINDS];
    sq_hist batch;
    _Atomic uint64_t versions[STORE_NSOURCES];
    _Atomic uint64_t persisted;
    _Atomic uint64_t refused;       /* samples store_samples_append refused (-EBUSY) */
} sq_stats;

struct store {
    sqlite3 *db;
    pthread_mutex_t db_mu;
    sqlite3_stmt *st[SQ_COUNT];
    bool sync_normal;           /* synchronous is NORMAL for a sample batch;
                                   durable writes restore FULL first */
    store_options opt;

    pthread_mutex_t win_mu;
    win_table win;
    pending queue;
    bool drop_logged;           /* said once that the queue overflowed */

    /* Flusher-owned scratch, used only with db_mu held. */
    win_sample **batch;         /* STORE_FLUSH_BATCH slots */
    unsigned char blob[TUNER_MAX_PROCS * 4 * 2];   /* local_runq, then pool_queues */

    /* Policy scopes as last read, so that a push does not read the
     * policies table: pol_gen moves on every policy write (with db_mu
     * held), which makes every entry stale; a miss is filled with db_mu
     * held, so no entry is older than the last write. */
    pthread_mutex_t pol_mu;
    uint64_t pol_gen;
    struct pol_entry {
        uint64_t gen;           /* 0 = empty */
        bool any;
        tuner_policy patch;
        char scope[STORE_ID_MAX + 1];
    } pol_cache[STORE_POLICY_CACHE];

    store_version_hook hook;    /* set once before other threads run */
    void *hook_ud;

    pthread_mutex_t fl_mu;      /* guards fl_stop and fl_wake */
    pthread_cond_t fl_cv;
    bool fl_stop;
    bool fl_wake;               /* flush now: the queue reached wake_at */
    size_t wake_at;             /* queue length that wakes the flusher early:
                                   an eighth of the cap (win_mu) */
    atomic_bool fl_woken;       /* a wake is on its way; appends skip fl_mu */
    bool fl_running;
    pthread_t fl_thread;

    sq_stats stats;                 /* counters for GET /metrics (stats.c) */
};

/* ---------------------------------------------------------- db.c helpers */

/* The cached statement id, prepared from sql on first use; NULL (logged)
 * when it does not prepare. Callers hold db_mu. */
sqlite3_stmt *sq_stmt(store *s, sq_id id, const char *sql);
/* Resets a statement and clears its bindings, ready for the next use. */
void sq_done(sqlite3_stmt *st);
/* Logs what failed with SQLite's message and returns -EIO. */
int sq_fail(store *s, const char *what);
/* Steps st to completion (no rows expected), then sq_done; 0 or -EIO. */
int sq_run(store *s, sqlite3_stmt *st, const char *what);

/* BEGIN IMMEDIATE with synchronous FULL (restored first if a sample batch
 * left it at NORMAL); 0 or -EIO. */
int sq_begin(store *s);
/* BEGIN IMMEDIATE with synchronous NORMAL, for sample batches only; end
 * the transaction, then call sq_end_batch. */
int sq_begin_batch(store *s);
void sq_end_batch(store *s);
int sq_commit(store *s);
/* Rolls back when a transaction is open; safe to call after any error. */
void sq_rollback(store *s);
/* Ends what sq_begin opened: when rc is 0 appends ev (may be NULL) and
 * commits, otherwise (or when that fails) rolls back. Returns the outcome. */
int sq_finish(store *s, int rc, const store_event *ev);

/* Binds NULL or the value of each config field, in tuner_cfg_fields[]
 * order, from parameter first on. */
void sq_bind_config(sqlite3_stmt *st, int first, const tuner_config *c);
/* Reads TUNER_CFG_NFIELDS nullable columns from col on. */
void sq_read_config(sqlite3_stmt *st, int col, tuner_config *c);

/* Binds a throttling report as parameters first..first+3 (periods, throttled,
 * throttled_us, ms), and reads it back from column col on. */
void sq_bind_throttle(sqlite3_stmt *st, int first, const store_throttle *t);
void sq_read_throttle(sqlite3_stmt *st, int col, store_throttle *t);

/* Copies a column's text (NULL reads as "") into a fixed buffer,
 * truncating. */
void sq_copy_text(char *dst, size_t cap, const unsigned char *src);

/* True when id is a non-empty string of at most STORE_ID_MAX bytes. */
bool sq_id_ok(const char *id);
/* True when s is NUL-terminated within cap bytes. */
bool sq_terminated(const char *s, size_t cap);
int64_t sq_now_ms(void);
/* Runs the version hook, if any; call with no store lock held. */
void sq_notify(store *s, const char *agent_id, int64_t version);

/* -------------------------------------------------------------- stats.c */

/* Records a successful COMMIT of kind that took ns nanoseconds. */
void sq_stats_commit(store *s, store_commit_kind kind, uint64_t ns);
/* Records a committed batch of n samples (n > 0). */
void sq_stats_batch(store *s, size_t n);
/* Records a committed config version made by source. */
void sq_stats_version(store *s, const char *source);
/* Monotonic nanoseconds, for timing commits. */
uint64_t sq_mono_ns(void);

/* ------------------------------------------------------------- schema.c */

/* Brings the schema to the newest version in one transaction. */
int sq_migrate(sqlite3 *db, char *err, size_t errlen);

/* ------------------------------------------------------------- events.c */

/* True when ev may be written (NULL is fine: nothing to write). */
bool sq_event_ok(const store_event *ev);
/* Inserts ev inside the caller's transaction; ev may be NULL. */
int sq_event_insert(store *s, const store_event *ev);

/* ------------------------------------------------------------ samples.c */

/* Fills the in-memory agent table and the windows from the database.
 * Runs during open, before any other thread exists. */
int sq_samples_load(store *s, char *err, size_t errlen);
/* Copies the in-memory samples_total and volatile facts (win_vol) over
 * what a row said, for agents read from the database. Callers hold db_mu. */
void sq_overlay_totals(store *s, store_agent *a, size_t n);
/* Adds a committed new agent to the in-memory table (db_mu held). */
void sq_agent_added(store *s, const store_agent *facts, int64_t now_ms);
/* After a push's facts were written to the agent's row (db_mu held): keeps
 * its volatile facts and forgets the cached row. */
void sq_agent_reported(store *s, const store_agent *facts, int64_t now_ms);
/* A push from a known agent whose facts, but for the volatile ones, are
 * those of its cached row: keeps the volatile ones for the flusher and
 * returns true, with no database write. False (nothing done) otherwise.
 * Needs no db_mu. */
bool sq_agent_touch(store *s, const store_agent *facts, int64_t now_ms);
/* The agent's cached row with the in-memory figures over it; false when
 * none is cached. Needs no db_mu: rows are cached and forgotten with db_mu
 * held, so a cached row is the committed one. */
bool sq_row_cached(store *s, const char *id, store_agent *out);
/* Caches a row just read from the database (db_mu held), then overlays the
 * in-memory figures on *row. */
void sq_row_keep(store *s, store_agent *row);
/* Forgets the cached row of an agent whose row was written (db_mu held). */
void sq_row_forget(store *s, const char *id);
/* Drops a deleted agent from memory with its queued samples (db_mu held). */
void sq_agent_removed(store *s, const char *id);
/* Number of agents (db_mu held, so it matches the database). */
size_t sq_agent_count(store *s);
int sq_flusher_start(store *s);
void sq_flusher_stop(store *s);

#endif
