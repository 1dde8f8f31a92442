/*
 * agents.c — agents and their versioned configs.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "store/internal.h"
#include "store/xalloc.h"

/* Config columns, in tuner_cfg_fields[] order. */
_Static_assert(TUNER_CFG_NFIELDS == 7, "config columns must follow tuner_cfg_fields[]");
#define CFG_COLS "gomaxprocs, pool_workers, pool_steal_threshold, pool_steal_scope, " \
                 "gosched_every, chunk_size, task_timeout_ms"
#define OV_COLS "ov_gomaxprocs, ov_pool_workers, ov_pool_steal_threshold, " \
                "ov_pool_steal_scope, ov_gosched_every, ov_chunk_size, ov_task_timeout_ms"

#define AGENT_COLS "id, service, hostname, runtime, pid, num_cpu, affinity, cpu_limit, " \
                   "limit_source, parent_tighter, first_seen_ms, last_seen_ms, mode, " \
                   "config_version, last_change_ms, samples_total, " OV_COLS
#define AGENT_COL_OV 16

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
    int m = store_mode_parse((const char *)sqlite3_column_text(st, 12));
    a->mode = m < 0 ? STORE_MODE_RECOMMEND : (store_mode)m;
    a->config_version = sqlite3_column_int64(st, 13);
    a->last_change_ms = sqlite3_column_int64(st, 14);
    a->samples_total = (uint64_t)sqlite3_column_int64(st, 15);
    sq_read_config(st, AGENT_COL_OV, &a->override);
}

/* The reported facts, as parameters ?1..?11 (?11 = now). */
static void bind_facts(sqlite3_stmt *st, const store_agent *f, int64_t now_ms)
{
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
    bool made = false;
    int rc;

    if (!s || !facts_ok(facts))
        return -EINVAL;
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
            "parent_tighter = ?10, last_seen_ms = ?11 WHERE id = ?1");
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
            "last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)");
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
        memcpy(ev.actor, "agent", sizeof "agent");
        rc = sq_event_insert(s, &ev);
        made = true;
    }
    if (rc < 0)
        goto out;
    rc = sq_commit(s);
    if (rc == 0 && made)
        sq_agent_added(s, facts->id);
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

int store_agent_get(store *s, const char *id, store_agent *out)
{
    if (!s || !sq_id_ok(id) || !out)
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int ret = -EIO;
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_GET,
                               "SELECT " AGENT_COLS " FROM agents WHERE id = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_agent(st, out);
            sq_overlay_totals(s, out, 1);
            ret = 0;
        } else {
            ret = rc == SQLITE_DONE ? -ENOENT : sq_fail(s, "agent get");
        }
        sq_done(st);
    }
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

int store_agent_set_mode(store *s, const char *id, store_mode mode,
                         const store_event *ev)
{
    const char *name = store_mode_name((int)mode);
    if (!s || !sq_id_ok(id) || !name || !sq_event_ok(ev))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc == 0) {
        sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_SET_MODE,
                                   "UPDATE agents SET mode = ?2 WHERE id = ?1");
        if (!st) {
            rc = -EIO;
        } else {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
            rc = sq_run(s, st, "mode update");
            if (rc == 0 && sqlite3_changes(s->db) == 0)
                rc = -ENOENT;
        }
    }
    rc = sq_finish(s, rc, ev);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
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

/* --------------------------------------------------------------- configs */

#define ALL_CFG_FIELDS ((1u << TUNER_CFG_NFIELDS) - 1u)

int store_config_append(store *s, const char *agent_id, int64_t expect_version,
                        const tuner_config *cfg, const char *source,
                        const char *reasons, const tuner_config *override,
                        const store_event *ev, int64_t now_ms,
                        int64_t *new_version)
{
    const size_t source_cap = sizeof ((store_version *)0)->source;
    if (!s || !sq_id_ok(agent_id) || expect_version < 0 || !cfg
        || (cfg->set & ~ALL_CFG_FIELDS) || (override && (override->set & ~ALL_CFG_FIELDS))
        || !source || !source[0] || !sq_terminated(source, source_cap)
        || !sq_event_ok(ev))
        return -EINVAL;

    int64_t next = expect_version + 1;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc < 0)
        goto out;

    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_VERSION,
                               "SELECT config_version FROM agents WHERE id = ?1");
    if (!st) {
        rc = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = sqlite3_column_int64(st, 0) == expect_version ? 0 : -ESTALE;
    else
        rc = step == SQLITE_DONE ? -ENOENT : sq_fail(s, "config version read");
    sq_done(st);
    if (rc < 0)
        goto out;

    st = sq_stmt(s, SQ_CONFIG_INSERT,
                 "INSERT INTO config_versions (agent_id, version, created_ms, source, "
                 "reasons, " CFG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                 "?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!st) {
        rc = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
    if (reasons)
        sqlite3_bind_text(st, 5, reasons, -1, SQLITE_STATIC);
    sq_bind_config(st, 6, cfg);
    rc = sq_run(s, st, "config insert");
    if (rc < 0)
        goto out;

    st = override
        ? sq_stmt(s, SQ_AGENT_SET_VERSION_OVERRIDE,
                  "UPDATE agents SET config_version = ?2, last_change_ms = ?3, "
                  "(" OV_COLS ") = (?4, ?5, ?6, ?7, ?8, ?9, ?10) WHERE id = ?1")
        : sq_stmt(s, SQ_AGENT_SET_VERSION,
                  "UPDATE agents SET config_version = ?2, last_change_ms = ?3 WHERE id = ?1");
    if (!st) {
        rc = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    sqlite3_bind_int64(st, 3, now_ms);
    if (override)
        sq_bind_config(st, 4, override);
    rc = sq_run(s, st, "agent version update");
    if (rc == 0)
        rc = sq_event_insert(s, ev);
    if (rc == 0)
        rc = sq_commit(s);
out:
    if (rc < 0)
        sq_rollback(s);
    pthread_mutex_unlock(&s->db_mu);
    if (rc == 0) {
        sq_notify(s, agent_id, next);
        if (new_version)
            *new_version = next;
    }
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
