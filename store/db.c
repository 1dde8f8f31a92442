/*
 * db.c — opening and closing the SQLite store, the prepared-statement
 * cache, transactions and the small helpers the other store files share.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/internal.h"
#include "store/xalloc.h"

#define DB_FILE "gotuned.db"

void store_options_default(store_options *o)
{
    o->retention_ms = 24LL * 3600 * 1000;
    o->max_agents = 100000;
    o->flush_interval_ms = 1000;
}

static const char *const mode_names[] = {
    [STORE_MODE_RECOMMEND] = "recommend",
    [STORE_MODE_AUTO] = "auto",
    [STORE_MODE_PINNED] = "pinned",
    [STORE_MODE_DEFAULT] = "default",
};

const char *store_mode_name(int mode)
{
    if (mode < 0 || mode >= (int)(sizeof mode_names / sizeof mode_names[0]))
        return NULL;
    return mode_names[mode];
}

int store_mode_parse(const char *name)
{
    if (!name)
        return -1;
    for (int m = 0; m < (int)(sizeof mode_names / sizeof mode_names[0]); m++)
        if (strcmp(mode_names[m], name) == 0)
            return m;
    return -1;
}

void store_set_version_hook(store *s, store_version_hook fn, void *ud)
{
    if (!s)
        return;
    s->hook = fn;
    s->hook_ud = ud;
}

void sq_notify(store *s, const char *agent_id, int64_t version)
{
    if (s->hook)
        s->hook(s->hook_ud, agent_id, version);
}

void store_version_cleanup(store_version *v)
{
    if (!v)
        return;
    free(v->reasons);
    v->reasons = NULL;
}

/* ---------------------------------------------------------------- helpers */

sqlite3_stmt *sq_stmt(store *s, sq_id id, const char *sql)
{
    assert(id < SQ_COUNT);
    if (!s->st[id]) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->st[id], NULL);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "store: preparing \"%.60s...\": %s\n", sql,
                    sqlite3_errmsg(s->db));
            sqlite3_finalize(s->st[id]);
            s->st[id] = NULL;
        }
    }
    return s->st[id];
}

void sq_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int sq_fail(store *s, const char *what)
{
    fprintf(stderr, "store: %s: %s (%d)\n", what, sqlite3_errmsg(s->db),
            sqlite3_extended_errcode(s->db));
    return -EIO;
}

int sq_run(store *s, sqlite3_stmt *st, const char *what)
{
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : sq_fail(s, what);
    sq_done(st);
    return ret;
}

/* Sets synchronous to NORMAL or FULL. SQLite refuses to change it inside a
 * transaction and reads it at every commit, so toggling it between
 * transactions on our one connection (db_mu held) affects exactly the
 * transactions we mean. */
static int sync_normal(store *s, bool normal)
{
    sqlite3_stmt *st = normal
        ? sq_stmt(s, SQ_SYNC_NORMAL, "PRAGMA synchronous=NORMAL")
        : sq_stmt(s, SQ_SYNC_FULL, "PRAGMA synchronous=FULL");
    int rc = sq_run(s, st, "setting synchronous");
    /* Until FULL is known to be back, sq_begin keeps trying to restore it,
     * so a failure here can never leave a config write at NORMAL. */
    if (rc == 0 || normal)
        s->sync_normal = normal;
    return rc;
}

int sq_begin(store *s)
{
    if (s->sync_normal && sync_normal(s, false) < 0)
        return -EIO;
    return sq_run(s, sq_stmt(s, SQ_BEGIN, "BEGIN IMMEDIATE"), "begin");
}

int sq_begin_batch(store *s)
{
    if (!s->sync_normal && sync_normal(s, true) < 0)
        return -EIO;
    return sq_run(s, sq_stmt(s, SQ_BEGIN, "BEGIN IMMEDIATE"), "begin");
}

void sq_end_batch(store *s)
{
    sq_rollback(s);     /* only if the caller left a transaction open */
    sync_normal(s, false);
}

int sq_commit(store *s)
{
    /* The COMMIT is where the WAL is written and, for a durable commit,
     * synced: what its duration measures. */
    uint64_t t0 = sq_mono_ns();
    int rc = sq_run(s, sq_stmt(s, SQ_COMMIT, "COMMIT"), "commit");
    if (rc < 0)
        sq_rollback(s);
    else
        sq_stats_commit(s, s->sync_normal ? STORE_COMMIT_BATCH : STORE_COMMIT_DURABLE,
                        sq_mono_ns() - t0);
    return rc;
}

int sq_finish(store *s, int rc, const store_event *ev)
{
    if (rc == 0)
        rc = sq_event_insert(s, ev);
    if (rc == 0)
        rc = sq_commit(s);
    if (rc < 0)
        sq_rollback(s);
    return rc;
}

void sq_rollback(store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;     /* no transaction, or SQLite already rolled it back */
    sq_run(s, sq_stmt(s, SQ_ROLLBACK, "ROLLBACK"), "rollback");
}

void sq_bind_config(sqlite3_stmt *st, int first, const tuner_config *c)
{
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++) {
        if (c && tuner_config_has(c, (tuner_cfg_field)f))
            sqlite3_bind_int64(st, first + f, c->v[f]);
        else
            sqlite3_bind_null(st, first + f);
    }
}

void sq_read_config(sqlite3_stmt *st, int col, tuner_config *c)
{
    memset(c, 0, sizeof *c);
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++)
        if (sqlite3_column_type(st, col + f) != SQLITE_NULL)
            tuner_config_set(c, (tuner_cfg_field)f, sqlite3_column_int64(st, col + f));
}

void sq_copy_text(char *dst, size_t cap, const unsigned char *src)
{
    assert(cap > 0);
    size_t n = src ? strnlen((const char *)src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

bool sq_terminated(const char *str, size_t cap)
{
    return str && strnlen(str, cap) < cap;
}

bool sq_id_ok(const char *id)
{
    return id && id[0] && strnlen(id, STORE_ID_MAX + 1) <= STORE_ID_MAX;
}

int64_t sq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- lifecycle */

/* mkdir -p with mode 0750 for what it creates. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0750) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Runs a one-row PRAGMA and copies its text result into out. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            sq_copy_text(out, len, sqlite3_column_text(st, 0));
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            out[0] = '\0';
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void teardown(store *s)
{
    for (int i = 0; i < SQ_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    if (s->db && sqlite3_close(s->db) != SQLITE_OK) {
        fprintf(stderr, "store: close: %s\n", sqlite3_errmsg(s->db));
        sqlite3_close_v2(s->db);
    }
    s->db = NULL;
    pending_cleanup(&s->queue);
    win_table_cleanup(&s->win);
    free(s->batch);
    pthread_mutex_destroy(&s->db_mu);
    pthread_mutex_destroy(&s->win_mu);
    pthread_mutex_destroy(&s->fl_mu);
    pthread_mutex_destroy(&s->pol_mu);
    pthread_cond_destroy(&s->fl_cv);
    free(s);
}

int store_open(const char *dir, const store_options *opt, store **out,
               char *err, size_t errlen)
{
    char path[4096], mode[16];
    char dummy[1];
    store *s = NULL;
    int ret = 0;

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!out || !dir || !dir[0]) {
        snprintf(err, errlen, "no data directory");
        return -EINVAL;
    }
    *out = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, DB_FILE) >= sizeof path) {
        snprintf(err, errlen, "data directory path too long");
        return -EINVAL;
    }
    int rc = make_dirs(dir);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(-rc));
        return -EIO;
    }

    s = xcalloc(1, sizeof *s);
    store_options_default(&s->opt);
    if (opt) {
        /* A zero (or negative) option means "the default". */
        if (opt->retention_ms > 0)
            s->opt.retention_ms = opt->retention_ms;
        if (opt->max_agents > 0)
            s->opt.max_agents = opt->max_agents;
        if (opt->flush_interval_ms > 0)
            s->opt.flush_interval_ms = opt->flush_interval_ms;
    }
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_mutex_init(&s->win_mu, NULL);
    pthread_mutex_init(&s->fl_mu, NULL);
    pthread_mutex_init(&s->pol_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->fl_cv, &ca);
    pthread_condattr_destroy(&ca);
    win_table_init(&s->win);
    pending_init(&s->queue, STORE_PENDING_MAX);
    s->wake_at = STORE_PENDING_MAX / 8;
    s->batch = xmalloc(STORE_FLUSH_BATCH * sizeof *s->batch);

    /* One connection, serialised by db_mu, so SQLite's own mutexes would
     * only add cost. */
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        ret = -EIO;
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* busy_timeout, synchronous and foreign_keys are per connection and
     * forgotten on close; journal_mode=WAL is remembered by the file. */
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    rc = pragma_text(s->db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    if (rc != SQLITE_OK || strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "cannot switch %s to WAL: %s", path,
                 rc != SQLITE_OK ? sqlite3_errmsg(s->db) : mode);
        ret = -EIO;
        goto fail;
    }
    /* A 16 MiB page cache and a checkpoint every 10000 WAL pages (40 MB)
     * rather than SQLite's 2 MiB and 1000: the flusher's inserts land all
     * over the (agent_id, recv_ms) index, and with the defaults every batch
     * read back evicted pages (pread) and the checkpoints rewrote the same
     * pages again and again. That halved the flusher's CPU per sample
     * (docs/performance.md). */
    if (sqlite3_exec(s->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                     "PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=10000;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure %s: %s", path, sqlite3_errmsg(s->db));
        ret = -EIO;
        goto fail;
    }
    ret = sq_migrate(s->db, err, errlen);
    if (ret < 0)
        goto fail;
    ret = sq_samples_load(s, err, errlen);
    if (ret < 0)
        goto fail;
    ret = sq_flusher_start(s);
    if (ret < 0) {
        snprintf(err, errlen, "cannot start the sample flusher: %s", strerror(-ret));
        ret = -EIO;
        goto fail;
    }
    *out = s;
    return 0;

fail:
    teardown(s);
    return ret;
}

void store_close(store *s)
{
    if (!s)
        return;
    sq_flusher_stop(s);
    /* Whatever is still queued goes to disk; on failure it is logged and
     * lost, as it would be after a crash. */
    store_flush(s);
    teardown(s);
}

int store_ping(store *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = sq_stmt(s, SQ_PING, "SELECT 1");
    int rc = -EIO;
    if (st) {
        rc = sqlite3_step(st) == SQLITE_ROW ? 0 : sq_fail(s, "ping");
        sq_done(st);
    }
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}
