/*
 * events.c — the append-only audit log.
 */
#include <errno.h>
#include <string.h>

#include "store/internal.h"

bool sq_event_ok(const store_event *ev)
{
    if (!ev)
        return true;
    return ev->kind[0] && sq_terminated(ev->kind, sizeof ev->kind)
        && sq_terminated(ev->agent_id, sizeof ev->agent_id)
        && sq_terminated(ev->service, sizeof ev->service)
        && sq_terminated(ev->actor, sizeof ev->actor);
}

int sq_event_insert(store *s, const store_event *ev)
{
    if (!ev)
        return 0;
    sqlite3_stmt *st = sq_stmt(s, SQ_EVENT_INSERT,
        "INSERT INTO events (ts_ms, kind, agent_id, service, actor, before, after) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, ev->ts_ms ? ev->ts_ms : sq_now_ms());
    sqlite3_bind_text(st, 2, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ev->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ev->actor, -1, SQLITE_STATIC);
    if (ev->before)
        sqlite3_bind_text(st, 6, ev->before, -1, SQLITE_STATIC);
    if (ev->after)
        sqlite3_bind_text(st, 7, ev->after, -1, SQLITE_STATIC);
    return sq_run(s, st, "event insert");
}

int store_event_append(store *s, const store_event *ev)
{
    if (!s || !ev || !sq_event_ok(ev))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_finish(s, sq_begin(s), ev);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

#define EVENT_COLS "id, ts_ms, kind, agent_id, service, actor, before, after"

int store_event_list(store *s, const store_event_filter *f, store_event_cb cb,
                     void *ud)
{
    static const store_event_filter all = { 0 };
    if (!s || !cb)
        return -EINVAL;
    if (!f)
        f = &all;
    bool by_agent = f->agent_id && f->agent_id[0];
    if (by_agent && !sq_id_ok(f->agent_id))
        return -EINVAL;

    pthread_mutex_lock(&s->db_mu);
    int ret = 0;
    /* Two statements, so the per-agent one can walk the (agent_id, id)
     * index in order. */
    sqlite3_stmt *st = by_agent
        ? sq_stmt(s, SQ_EVENT_LIST_AGENT,
                  "SELECT " EVENT_COLS " FROM events WHERE agent_id = ?1 AND id > ?2 "
                  "AND ts_ms >= ?3 AND (?4 = '' OR kind = ?4) ORDER BY id LIMIT ?5")
        : sq_stmt(s, SQ_EVENT_LIST,
                  "SELECT " EVENT_COLS " FROM events WHERE id > ?2 "
                  "AND ts_ms >= ?3 AND (?4 = '' OR kind = ?4) ORDER BY id LIMIT ?5");
    if (!st) {
        ret = -EIO;
        goto out;
    }
    if (by_agent)
        sqlite3_bind_text(st, 1, f->agent_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->after_id);
    sqlite3_bind_int64(st, 3, f->since_ms);
    sqlite3_bind_text(st, 4, f->kind ? f->kind : "", -1, SQLITE_STATIC);
    /* LIMIT -1 is SQLite's "no limit". */
    sqlite3_bind_int64(st, 5, f->limit ? (sqlite3_int64)f->limit : -1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_event ev;
        memset(&ev, 0, sizeof ev);
        ev.id = sqlite3_column_int64(st, 0);
        ev.ts_ms = sqlite3_column_int64(st, 1);
        sq_copy_text(ev.kind, sizeof ev.kind, sqlite3_column_text(st, 2));
        sq_copy_text(ev.agent_id, sizeof ev.agent_id, sqlite3_column_text(st, 3));
        sq_copy_text(ev.service, sizeof ev.service, sqlite3_column_text(st, 4));
        sq_copy_text(ev.actor, sizeof ev.actor, sqlite3_column_text(st, 5));
        ev.before = (const char *)sqlite3_column_text(st, 6);
        ev.after = (const char *)sqlite3_column_text(st, 7);
        if (cb(ud, &ev) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_fail(s, "event list");
    sq_done(st);
out:
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}
