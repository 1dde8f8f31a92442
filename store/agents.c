/*
 * agents.c — agents and their versioned configs.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"
#include "store/xalloc.h"

/* Config columns, in tuner_cfg_fields[] order: a version's, the
 * operator's override (ov_) and the config a rollback rejected (rj_). */
_Static_assert(TUNER_CFG_NFIELDS == 7, "config columns must follow tuner_cfg_fields[]");
#define CFG_COLS "gomaxprocs, pool_workers, pool_steal_threshold, pool_steal_scope, " \
                 "gosched_every, chunk_size, task_timeout_ms"
#define OV_COLS "ov_gomaxprocs, ov_pool_workers, ov_pool_steal_threshold, " \
                "ov_pool_steal_scope, ov_gosched_every, ov_chunk_size, ov_task_timeout_ms"
#define RJ_COLS "rj_gomaxprocs, rj_pool_workers, rj_pool_steal_threshold, " \
                "rj_pool_steal_scope, rj_gosched_every, rj_chunk_size, rj_task_timeout_ms"

/* Every agent column a change may write, in read_state()/bind_state()
 * order. */
#define STATE_COLS "mode, mode_set, config_version, last_change_ms, applied_version, " \
                   "applied_ms, outdated_since_ms, nack_version, nack_ms, nack_error, " \
                   "vf_version, vf_acked_ms, vf_before_lat, vf_before_runq, vf_before_n, " \
                   "vd_version, vd_decided_ms, vd_verdict, vd_metric, vd_before, vd_after, " \
                   "rj_until_ms, " OV_COLS ", " RJ_COLS

/* The reported facts, then the state; read_agent() reads them in this
 * order. */
#define AGENT_COLS "id, service, hostname, runtime, pid, num_cpu, affinity, cpu_limit, " \
                   "limit_source, parent_tighter, first_seen_ms, last_seen_ms, " \
                   "samples_total, " THROTTLE_COLS ", " STATE_COLS

/* Reported with the facts: the last two throttling reports, the drops. */
#define THROTTLE_COLS "thr_periods, thr_throttled, thr_us, thr_ms, thr_prev_periods, " \
                      "thr_prev_throttled, thr_prev_us, thr_prev_ms, dropped_samples"
#define NTHROTTLE_COLS 9

#define ALL_CFG_FIELDS ((1u << TUNER_CFG_NFIELDS) - 1u)
#define ALL_SET_FIELDS ((STORE_SET_OVERRIDE << 1) - 1u)

/* A verification or verdict figure; NULL (a NaN was stored) reads as -1,
 * "could not be computed". */
static double read_figure(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_double(st, col);
}

/* Reads STATE_COLS from column col on into *a. */
static void read_state(sqlite3_stmt *st, int col, store_agent *a)
{
    /* mode_set = 0 is "follow the policy"; the mode column then holds
     * 'recommend' to satisfy its CHECK. */
    int m = store_mode_parse((const char *)sqlite3_column_text(st, col++));
    bool set = sqlite3_column_int(st, col++) != 0;
    a->mode = !set ? STORE_MODE_DEFAULT : m < 0 ? STORE_MODE_RECOMMEND : (store_mode)m;
    a->config_version = sqlite3_column_int64(st, col++);
    a->last_change_ms = sqlite3_column_int64(st, col++);
    a->applied_version = sqlite3_column_int64(st, col++);
    a->applied_ms = sqlite3_column_int64(st, col++);
    a->outdated_since_ms = sqlite3_column_int64(st, col++);
    a->nack_version = sqlite3_column_int64(st, col++);
    a->nack_ms = sqlite3_column_int64(st, col++);
    sq_copy_text(a->nack_error, sizeof a->nack_error, sqlite3_column_text(st, col++));
    a->verify.version = sqlite3_column_int64(st, col++);
    a->verify.acked_ms = sqlite3_column_int64(st, col++);
    a->verify.before_lat = read_figure(st, col++);
    a->verify.before_runq = read_figure(st, col++);
    a->verify.before_n = (uint32_t)sqlite3_column_int64(st, col++);
    a->verdict.version = sqlite3_column_int64(st, col++);
    a->verdict.decided_ms = sqlite3_column_int64(st, col++);
    sq_copy_text(a->verdict.verdict, sizeof a->verdict.verdict, sqlite3_column_text(st, col++));
    sq_copy_text(a->verdict.metric, sizeof a->verdict.metric, sqlite3_column_text(st, col++));
    a->verdict.before = read_figure(st, col++);
    a->verdict.after = read_figure(st, col++);
    a->rejected_until_ms = sqlite3_column_int64(st, col++);
    sq_read_config(st, col, &a->override);
    sq_read_config(st, col + TUNER_CFG_NFIELDS, &a->rejected);
}

/* Binds *a's state as parameters ?2.. in STATE_COLS order. */
static void bind_state(sqlite3_stmt *st, const store_agent *a)
{
    int p = 2;
    bool set = a->mode != STORE_MODE_DEFAULT;
    sqlite3_bind_text(st, p++, set ? store_mode_name((int)a->mode) : "recommend", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, p++, set);
    sqlite3_bind_int64(st, p++, a->config_version);
    sqlite3_bind_int64(st, p++, a->last_change_ms);
    sqlite3_bind_int64(st, p++, a->applied_version);
    sqlite3_bind_int64(st, p++, a->applied_ms);
    sqlite3_bind_int64(st, p++, a->outdated_since_ms);
    sqlite3_bind_int64(st, p++, a->nack_version);
    sqlite3_bind_int64(st, p++, a->nack_ms);
    sqlite3_bind_text(st, p++, a->nack_error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, p++, a->verify.version);
    sqlite3_bind_int64(st, p++, a->verify.acked_ms);
    sqlite3_bind_double(st, p++, a->verify.before_lat);
    sqlite3_bind_double(st, p++, a->verify.before_runq);
    sqlite3_bind_int64(st, p++, a->verify.before_n);
    sqlite3_bind_int64(st, p++, a->verdict.version);
    sqlite3_bind_int64(st, p++, a->verdict.decided_ms);
    sqlite3_bind_text(st, p++, a->verdict.verdict, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, p++, a->verdict.metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, p++, a->verdict.before);
    sqlite3_bind_double(st, p++, a->verdict.after);
    sqlite3_bind_int64(st, p++, a->rejected_until_ms);
    sq_bind_config(st, p, &a->override);
    p += TUNER_CFG_NFIELDS;
    sq_bind_config(st, p, &a->rejected);
    p += TUNER_CFG_NFIELDS;
    assert(p - 1 == sqlite3_bind_parameter_count(st));
}

void sq_bind_throttle(sqlite3_stmt *st, int first, const store_throttle *t)
{
    sqlite3_bind_int64(st, first, t->periods < 0 ? -1 : t->periods);
    sqlite3_bind_int64(st, first + 1, t->throttled);
    sqlite3_bind_int64(st, first + 2, t->throttled_us);
    sqlite3_bind_int64(st, first + 3, t->ms);
}

void sq_read_throttle(sqlite3_stmt *st, int col, store_throttle *t)
{
    t->periods = sqlite3_column_int64(st, col);
    t->throttled = sqlite3_column_int64(st, col + 1);
    t->throttled_us = sqlite3_column_int64(st, col + 2);
    t->ms = sqlite3_column_int64(st, col + 3);
}

static void read_agent(sqlite3_stmt *st, store_agent *a)
{
    memset(a, 0, sizeof *a);
    sq_copy_text(a->id, sizeof a->id, sqlite3_column_text(st, 0));
    sq_copy_text(a->service, sizeof a->service, sqlite3_column_text(st, 1));
    sq_copy_text(a->hostname, sizeof a->hostname, sqlite3_column_text(st, 2));
    sq_copy_text(a->runtime, sizeof a->runtime, sqlite3_column_text(st, 3));
    a->pid = sqlite3_column_int64(st, 4);
    a->cpu.num_cpu = sqlite3_column_int(st, 5);
    a->cpu.affinity = sqlite3_column_int(st, 6);
    a->cpu.limit = sqlite3_column_double(st, 7);
    sq_copy_text(a->limit_source, sizeof a->limit_source, sqlite3_column_text(st, 8));
    a->parent_tighter = sqlite3_column_int(st, 9);
    a->first_seen_ms = sqlite3_column_int64(st, 10);
    a->last_seen_ms = sqlite3_column_int64(st, 11);
    a->samples_total = (uint64_t)sqlite3_column_int64(st, 12);
    int col = 13;
    sq_read_throttle(st, col, &a->throttle);
    sq_read_throttle(st, col + 4, &a->throttle_prev);
    col += 8;
    a->dropped_samples = sqlite3_column_int64(st, col++);
    assert(col == 13 + NTHROTTLE_COLS);
    read_state(st, col, a);
}

/* The reported facts, as parameters ?1..?20 (?11 = now, ?12.. in
 * THROTTLE_COLS order). */
static void bind_facts(sqlite3_stmt *st, const store_agent *f, int64_t now_ms)
{
    sq_bind_throttle(st, 12, &f->throttle);
    sq_bind_throttle(st, 16, &f->throttle_prev);
    sqlite3_bind_int64(st, 20, f->dropped_samples);
    _Static_assert(20 == 11 + NTHROTTLE_COLS, "bind_facts must bind THROTTLE_COLS");
    sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->hostname, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->runtime, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, f->pid);
    sqlite3_bind_int(st, 6, f->cpu.num_cpu);
    sqlite3_bind_int(st, 7, f->cpu.affinity);
    sqlite3_bind_double(st, 8, f->cpu.limit);
    sqlite3_bind_text(st, 9, f->limit_source, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, f->parent_tighter);
    sqlite3_bind_int64(st, 11, now_ms);
}

static bool facts_ok(const store_agent *f)
{
    return f && sq_terminated(f->id, sizeof f->id) && sq_id_ok(f->id)
        && sq_terminated(f->service, sizeof f->service)
        && sq_terminated(f->hostname, sizeof f->hostname)
        && sq_terminated(f->runtime, sizeof f->runtime)
        && sq_terminated(f->limit_source, sizeof f->limit_source);
}

/* 1 when the agent exists, 0 when not, -EIO. */
static int agent_exists(store *s, const char *id)
{
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_EXISTS, "SELECT 1 FROM agents WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_fail(s, "agent lookup");
    sq_done(st);
    return ret;
}

int store_agent_upsert(store *s, const store_agent *facts, int64_t now_ms,
                       bool *created)
{
    return store_agent_upsert_as(s, facts, "agent", now_ms, created);
}

int store_agent_upsert_as(store *s, const store_agent *facts, const char *actor,
                          int64_t now_ms, bool *created)
{
    bool made = false;
    int rc;

    if (!s || !facts_ok(facts))
        return -EINVAL;
    /* Most pushes restate what the row already says: only the volatile
     * facts change, and the flusher writes those in its next batch. */
    if (sq_agent_touch(s, facts, now_ms)) {
        if (created)
            *created = false;
        return 0;
    }
    pthread_mutex_lock(&s->db_mu);
    rc = sq_begin(s);
    if (rc < 0)
        goto out;
    rc = agent_exists(s, facts->id);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_UPDATE,
            "UPDATE agents SET service = ?2, hostname = ?3, runtime = ?4, pid = ?5, "
            "num_cpu = ?6, affinity = ?7, cpu_limit = ?8, limit_source = ?9, "
            "parent_tighter = ?10, last_seen_ms = ?11, thr_periods = ?12, "
            "thr_throttled = ?13, thr_us = ?14, thr_ms = ?15, thr_prev_periods = ?16, "
            "thr_prev_throttled = ?17, thr_prev_us = ?18, thr_prev_ms = ?19, "
            "dropped_samples = ?20 WHERE id = ?1");
        if (!st) {
            rc = -EIO;
            goto out;
        }
        bind_facts(st, facts, now_ms);
        rc = sq_run(s, st, "agent update");
    } else {
        if (sq_agent_count(s) >= s->opt.max_agents) {
            rc = -ENOSPC;
            goto out;
        }
        sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_INSERT,
            "INSERT INTO agents (id, service, hostname, runtime, pid, num_cpu, "
            "affinity, cpu_limit, limit_source, parent_tighter, first_seen_ms, "
            "last_seen_ms, " THROTTLE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
            "?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)");
        if (!st) {
            rc = -EIO;
            goto out;
        }
        bind_facts(st, facts, now_ms);
        rc = sq_run(s, st, "agent insert");
        if (rc < 0)
            goto out;
        store_event ev = { .ts_ms = now_ms };
        memcpy(ev.kind, "agent_registered", sizeof "agent_registered");
        memcpy(ev.agent_id, facts->id, sizeof ev.agent_id);
        memcpy(ev.service, facts->service, sizeof ev.service);
        snprintf(ev.actor, sizeof ev.actor, "%s", actor);
        rc = sq_event_insert(s, &ev);
        made = true;
    }
    if (rc < 0)
        goto out;
    rc = sq_commit(s);
    if (rc == 0 && made)
        sq_agent_added(s, facts, now_ms);
    else if (rc == 0)
        sq_agent_reported(s, facts, now_ms);
out:
    if (rc < 0)
        sq_rollback(s);
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0)
        return rc;
    if (created)
        *created = made;
    return 0;
}

/* Reads one agent row (samples_total as stored); 0, -ENOENT or -EIO.
 * Callers hold db_mu. */
static int get_agent(store *s, const char *id, store_agent *out)
{
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_GET,
                               "SELECT " AGENT_COLS " FROM agents WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        read_agent(st, out);
    else
        ret = rc == SQLITE_DONE ? -ENOENT : sq_fail(s, "agent get");
    sq_done(st);
    return ret;
}

int store_agent_get(store *s, const char *id, store_agent *out)
{
    if (!s || !sq_id_ok(id) || !out)
        return -EINVAL;
    if (sq_row_cached(s, id, out))
        return 0;
    pthread_mutex_lock(&s->db_mu);
    int ret = get_agent(s, id, out);
    if (ret == 0)
        sq_row_keep(s, out);
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}

int store_agent_list(store *s, const char *service, const char *after,
                     store_agent *out, size_t max, size_t *n, bool *more)
{
    if (!s || (max && !out) || !n || !more)
        return -EINVAL;
    *n = 0;
    *more = false;
    bool by_service = service && service[0];
    if (by_service && !sq_id_ok(service))
        return -EINVAL;
    if (!after)
        after = "";

    pthread_mutex_lock(&s->db_mu);
    int ret = 0;
    sqlite3_stmt *st = by_service
        ? sq_stmt(s, SQ_AGENT_LIST_SERVICE,
                  "SELECT " AGENT_COLS " FROM agents WHERE service = ?3 AND id > ?1 "
                  "ORDER BY id LIMIT ?2")
        : sq_stmt(s, SQ_AGENT_LIST,
                  "SELECT " AGENT_COLS " FROM agents WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!st) {
        ret = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
    /* One row more than asked tells whether another page exists. */
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max + 1);
    if (by_service)
        sqlite3_bind_text(st, 3, service, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == max) {
            *more = true;
            break;
        }
        read_agent(st, &out[(*n)++]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = sq_fail(s, "agent list");
        *n = 0;
        *more = false;
    }
    sq_done(st);
    sq_overlay_totals(s, out, *n);
out:
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}

int store_agent_count(store *s, size_t *n)
{
    if (!s || !n)
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    *n = sq_agent_count(s);
    pthread_mutex_unlock(&s->db_mu);
    return 0;
}

/* Runs a one-parameter (?1 = id) write; *changes gets the rows touched. */
static int run_id(store *s, sq_id id, const char *sql, const char *agent_id,
                  const char *what, int *changes)
{
    sqlite3_stmt *st = sq_stmt(s, id, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    int rc = sq_run(s, st, what);
    if (changes)
        *changes = sqlite3_changes(s->db);
    return rc;
}

int store_agent_delete(store *s, const char *id, const store_event *ev)
{
    int changes = 0;
    if (!s || !sq_id_ok(id) || !sq_event_ok(ev))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc == 0)
        rc = run_id(s, SQ_AGENT_DELETE_VERSIONS,
                    "DELETE FROM config_versions WHERE agent_id = ?1", id,
                    "version delete", NULL);
    if (rc == 0)
        rc = run_id(s, SQ_AGENT_DELETE_SAMPLES,
                    "DELETE FROM samples WHERE agent_id = ?1", id,
                    "sample delete", NULL);
    if (rc == 0)
        rc = run_id(s, SQ_AGENT_DELETE, "DELETE FROM agents WHERE id = ?1", id,
                    "agent delete", &changes);
    if (rc == 0 && changes == 0)
        rc = -ENOENT;
    if (rc == 0)
        rc = sq_event_insert(s, ev);
    if (rc == 0)
        rc = sq_commit(s);
    if (rc == 0)
        sq_agent_removed(s, id);
    else
        sq_rollback(s);
    pthread_mutex_unlock(&s->db_mu);
    if (rc == 0)
        sq_notify(s, id, -1);
    return rc;
}

/* Applies one change on its own: the change's rc, or store_apply's. */
static int apply_one_change(store *s, store_change *ch, int64_t now_ms)
{
    int rc = store_apply(s, ch, 1, now_ms);
    return rc < 0 ? rc : ch->rc;
}

int store_agent_set_mode(store *s, const char *id, store_mode mode,
                         const store_event *ev)
{
    const store_agent values = { .mode = mode };
    store_change ch = {
        .agent_id = id, .expect_version = -1, .fields = STORE_SET_MODE, .values = &values,
        .events = ev, .nevents = ev ? 1 : 0,
    };
    return apply_one_change(s, &ch, sq_now_ms());
}

int store_agent_version(store *s, const char *id, int64_t *version)
{
    if (!s || !sq_id_ok(id) || !version)
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int ret = -EIO;
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_VERSION,
                               "SELECT config_version FROM agents WHERE id = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *version = sqlite3_column_int64(st, 0);
            ret = 0;
        } else {
            ret = rc == SQLITE_DONE ? -ENOENT : sq_fail(s, "agent version");
        }
        sq_done(st);
    }
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}

/* ------------------------------------------------------- batched changes */

/* True when the fields of v that fields selects may be written. */
static bool values_ok(unsigned fields, const store_agent *v)
{
    if (!v)
        return false;
    if ((fields & STORE_SET_MODE) && !store_mode_name((int)v->mode))
        return false;
    if ((fields & STORE_SET_NACK) && !sq_terminated(v->nack_error, sizeof v->nack_error))
        return false;
    if ((fields & STORE_SET_VERDICT)
        && (!sq_terminated(v->verdict.verdict, sizeof v->verdict.verdict)
            || !sq_terminated(v->verdict.metric, sizeof v->verdict.metric)))
        return false;
    if ((fields & STORE_SET_REJECTED) && (v->rejected.set & ~ALL_CFG_FIELDS))
        return false;
    if ((fields & STORE_SET_OVERRIDE) && (v->override.set & ~ALL_CFG_FIELDS))
        return false;
    return true;
}

/* The checks that need no database: a change failing them is -EINVAL. */
static bool change_ok(const store_change *c)
{
    const size_t source_cap = sizeof ((store_version *)0)->source;
    if (!sq_id_ok(c->agent_id) || c->expect_version < -1 || (c->fields & ~ALL_SET_FIELDS))
        return false;
    if (c->config && ((c->config->set & ~ALL_CFG_FIELDS) || c->expect_version < 0
                      || !c->source || !c->source[0] || !sq_terminated(c->source, source_cap)))
        return false;
    if (c->fields && !values_ok(c->fields, c->values))
        return false;
    if (c->nevents && !c->events)
        return false;
    for (size_t i = 0; i < c->nevents; i++)
        if (!sq_event_ok(&c->events[i]))
            return false;
    return true;
}

/* Inserts version c->expect_version + 1 with c's config. */
static int insert_version(store *s, const store_change *c, int64_t now_ms)
{
    sqlite3_stmt *st = sq_stmt(s, SQ_CONFIG_INSERT,
        "INSERT INTO config_versions (agent_id, version, created_ms, source, "
        "reasons, " CFG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, c->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->expect_version + 1);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_text(st, 4, c->source, -1, SQLITE_STATIC);
    if (c->reasons)
        sqlite3_bind_text(st, 5, c->reasons, -1, SQLITE_STATIC);
    sq_bind_config(st, 6, c->config);
    return sq_run(s, st, "config insert");
}

/* Copies the groups of v that fields selects onto *a. */
static void copy_fields(store_agent *a, unsigned fields, const store_agent *v)
{
    if (fields & STORE_SET_MODE)
        a->mode = v->mode;
    if (fields & STORE_SET_APPLIED) {
        a->applied_version = v->applied_version;
        a->applied_ms = v->applied_ms;
    }
    if (fields & STORE_SET_NACK) {
        a->nack_version = v->nack_version;
        a->nack_ms = v->nack_ms;
        memcpy(a->nack_error, v->nack_error, sizeof a->nack_error);
    }
    if (fields & STORE_SET_VERIFY)
        a->verify = v->verify;
    if (fields & STORE_SET_VERDICT)
        a->verdict = v->verdict;
    if (fields & STORE_SET_REJECTED) {
        a->rejected = v->rejected;
        a->rejected_until_ms = v->rejected_until_ms;
    }
    if (fields & STORE_SET_OVERRIDE)
        a->override = v->override;
}

/* Runs one checked change inside the batch's transaction: reads the agent,
 * checks expect_version, then writes. Returns 0, -ENOENT or -ESTALE (with
 * nothing written) or -EIO (the batch must roll back). */
static int apply_change(store *s, store_change *c, int64_t now_ms, store_agent *row)
{
    store_agent a;
    int rc = get_agent(s, c->agent_id, &a);
    if (rc < 0)
        return rc;
    c->version = a.config_version;
    if (c->expect_version >= 0 && c->expect_version != a.config_version)
        return -ESTALE;

    if (c->config) {
        rc = insert_version(s, c, now_ms);
        if (rc < 0)
            return rc;
        a.config_version = c->expect_version + 1;
        a.last_change_ms = now_ms;
        /* A verification tests the version it was started for; a new one
         * makes it moot, unless the caller sets one with this change. */
        memset(&a.verify, 0, sizeof a.verify);
    }
    copy_fields(&a, c->fields, c->values);
    if (a.applied_version == a.config_version)
        a.outdated_since_ms = 0;
    else if (a.outdated_since_ms == 0)
        a.outdated_since_ms = now_ms;

    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_SET_STATE,
        "UPDATE agents SET (" STATE_COLS ") = (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, "
        "?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37) "
        "WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, c->agent_id, -1, SQLITE_STATIC);
    bind_state(st, &a);
    rc = sq_run(s, st, "agent state update");
    for (size_t i = 0; rc == 0 && i < c->nevents; i++)
        rc = sq_event_insert(s, &c->events[i]);
    if (rc == 0) {
        c->version = a.config_version;
        /* The row as a read would now give it: a NaN figure reads back
         * as -1 (read_figure). */
        double *fig[] = { &a.verify.before_lat, &a.verify.before_runq, &a.verdict.before,
                          &a.verdict.after };
        for (size_t i = 0; i < sizeof fig / sizeof fig[0]; i++)
            if (isnan(*fig[i]))
                *fig[i] = -1;
        *row = a;
    }
    return rc;
}

int store_apply(store *s, store_change *ch, size_t n, int64_t now_ms)
{
    if (!s || !ch || n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        ch[i].rc = change_ok(&ch[i]) ? 0 : -EINVAL;
        ch[i].version = 0;
    }

    /* The rows as written, cached once the batch is committed: the agents
     * it changed are read next (a blocking query is answered, a push
     * comes), and this spares each a read from SQLite. */
    store_agent *rows = xmalloc(n * sizeof *rows);
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ch[i].rc != 0)
            continue;
        int r = apply_change(s, &ch[i], now_ms, &rows[i]);
        assert(r == 0 || r == -ENOENT || r == -ESTALE || r == -EIO);
        if (r == -EIO)
            rc = r;
        else
            ch[i].rc = r;
    }
    if (rc == 0)
        rc = sq_commit(s);
    if (rc < 0)
        sq_rollback(s);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && ch[i].rc == 0)
            sq_row_keep(s, &rows[i]);
        else if (sq_id_ok(ch[i].agent_id))
            sq_row_forget(s, ch[i].agent_id);
    }
    pthread_mutex_unlock(&s->db_mu);
    free(rows);

    if (rc < 0) {
        for (size_t i = 0; i < n; i++) {
            ch[i].rc = -EIO;
            ch[i].version = 0;
        }
        return -EIO;
    }
    for (size_t i = 0; i < n; i++)
        if (ch[i].rc == 0 && ch[i].config) {
            sq_stats_version(s, ch[i].source);
            sq_notify(s, ch[i].agent_id, ch[i].version);
        }
    return 0;
}

/* --------------------------------------------------------------- configs */

int store_config_append(store *s, const char *agent_id, int64_t expect_version,
                        const tuner_config *cfg, const char *source,
                        const char *reasons, const tuner_config *override,
                        const store_event *ev, int64_t now_ms,
                        int64_t *new_version)
{
    if (!cfg)
        return -EINVAL;     /* without a config, a change makes no version */
    store_agent values = { 0 };
    if (override)
        values.override = *override;
    store_change ch = {
        .agent_id = agent_id, .expect_version = expect_version, .config = cfg,
        .source = source, .reasons = reasons, .fields = override ? STORE_SET_OVERRIDE : 0,
        .values = &values, .events = ev, .nevents = ev ? 1 : 0,
    };
    int rc = apply_one_change(s, &ch, now_ms);
    if (rc == 0 && new_version)
        *new_version = ch.version;
    return rc;
}

#define VERSION_COLS "version, created_ms, source, reasons, " CFG_COLS

static void read_version(sqlite3_stmt *st, store_version *v)
{
    memset(v, 0, sizeof *v);
    v->version = sqlite3_column_int64(st, 0);
    v->created_ms = sqlite3_column_int64(st, 1);
    sq_copy_text(v->source, sizeof v->source, sqlite3_column_text(st, 2));
    const unsigned char *r = sqlite3_column_text(st, 3);
    v->reasons = r ? xstrdup((const char *)r) : NULL;
    sq_read_config(st, 4, &v->config);
}

int store_config_get(store *s, const char *agent_id, int64_t version,
                     store_version *out)
{
    if (!s || !sq_id_ok(agent_id) || version < 0 || !out)
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int ret = -EIO;
    /* Version 0 means the agent's current one; one statement reads both
     * tables in one snapshot. */
    sqlite3_stmt *st = sq_stmt(s, SQ_CONFIG_GET,
        "SELECT " VERSION_COLS " FROM agents a JOIN config_versions v "
        "ON v.agent_id = a.id "
        "AND v.version = CASE WHEN ?2 = 0 THEN a.config_version ELSE ?2 END "
        "WHERE a.id = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, version);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_version(st, out);
            ret = 0;
        } else {
            ret = rc == SQLITE_DONE ? -ENOENT : sq_fail(s, "config get");
        }
        sq_done(st);
    }
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}

int store_config_history(store *s, const char *agent_id, store_version *out,
                         size_t max, size_t *n)
{
    if (!s || !sq_id_ok(agent_id) || (max && !out) || !n)
        return -EINVAL;
    *n = 0;
    pthread_mutex_lock(&s->db_mu);
    int ret = 0;
    sqlite3_stmt *st = sq_stmt(s, SQ_CONFIG_HISTORY,
        "SELECT " VERSION_COLS " FROM config_versions WHERE agent_id = ?1 "
        "ORDER BY version DESC LIMIT ?2");
    if (!st) {
        ret = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int rc = SQLITE_DONE;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        read_version(st, &out[(*n)++]);
    if (*n < max && rc != SQLITE_DONE) {
        ret = sq_fail(s, "config history");
        for (size_t i = 0; i < *n; i++)
            store_version_cleanup(&out[i]);
        *n = 0;
    }
    sq_done(st);
    /* An empty history is only an answer for an agent that exists. */
    if (ret == 0 && *n == 0) {
        int e = agent_exists(s, agent_id);
        ret = e < 0 ? e : e == 0 ? -ENOENT : 0;
    }
out:
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}
