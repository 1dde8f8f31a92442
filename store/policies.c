/*
 * policies.c — rule parameters: one row per (scope, field), scope '' for
 * the global policy and a service name for a service's patch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

#define ALL_POL_FIELDS ((1u << TUNER_POL_NFIELDS) - 1u)
#define GLOBAL_SCOPE ""

/* The stored name of field f: "section.key". */
static void field_name(int f, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", tuner_pol_fields[f].section, tuner_pol_fields[f].key);
}

static int field_lookup(const char *name)
{
    char buf[96];
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        field_name(f, buf, sizeof buf);
        if (strcmp(buf, name) == 0)
            return f;
    }
    return -1;
}

/* Reads a scope's rows into *patch (cleared first); *any tells whether it
 * has any. Rows that no longer name a field or hold a value out of range
 * are skipped with a log line rather than breaking every policy read. */
static int read_scope(store *s, const char *scope, tuner_policy *patch, bool *any)
{
    memset(patch, 0, sizeof *patch);
    *any = false;
    sqlite3_stmt *st = sq_stmt(s, SQ_POLICY_GET,
                               "SELECT field, value FROM policies WHERE scope = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int f = name ? field_lookup(name) : -1;
        tuner_policy one = { 0 };
        if (f >= 0) {
            one.set = 1u << f;
            one.v[f] = sqlite3_column_double(st, 1);
        }
        if (f < 0 || tuner_policy_validate(&one, NULL) < 0) {
            fprintf(stderr, "store: ignoring stored policy field '%s' of scope '%s'\n",
                    name ? name : "", scope);
            continue;
        }
        *any = true;
        tuner_policy_merge(patch, &one);
    }
    int ret = rc == SQLITE_DONE ? 0 : sq_fail(s, "policy read");
    sq_done(st);
    return ret;
}

static struct pol_entry *cache_slot(store *s, const char *scope)
{
    uint32_t h = 2166136261u;           /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)scope; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &s->pol_cache[h % STORE_POLICY_CACHE];
}

/* read_scope through the cache; callers hold no store lock. */
static int read_scope_cached(store *s, const char *scope, tuner_policy *patch, bool *any)
{
    pthread_mutex_lock(&s->pol_mu);
    struct pol_entry *e = cache_slot(s, scope);
    bool hit = e->gen != 0 && e->gen == s->pol_gen + 1 && strcmp(e->scope, scope) == 0;
    if (hit) {
        *patch = e->patch;
        *any = e->any;
    }
    pthread_mutex_unlock(&s->pol_mu);
    if (hit)
        return 0;
    pthread_mutex_lock(&s->db_mu);
    int rc = read_scope(s, scope, patch, any);
    if (rc == 0) {
        pthread_mutex_lock(&s->pol_mu);
        e->gen = s->pol_gen + 1;
        e->any = *any;
        e->patch = *patch;
        snprintf(e->scope, sizeof e->scope, "%s", scope);
        pthread_mutex_unlock(&s->pol_mu);
    }
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

/* After a policy write, with db_mu held: every cached scope is stale. */
static void cache_forget(store *s)
{
    pthread_mutex_lock(&s->pol_mu);
    s->pol_gen++;
    pthread_mutex_unlock(&s->pol_mu);
}

/* Replaces a scope's rows with the fields p sets, inside a transaction. */
static int write_scope(store *s, const char *scope, const tuner_policy *p,
                       int *deleted)
{
    sqlite3_stmt *st = sq_stmt(s, SQ_POLICY_DELETE, "DELETE FROM policies WHERE scope = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    int rc = sq_run(s, st, "policy delete");
    if (rc < 0)
        return rc;
    if (deleted)
        *deleted = sqlite3_changes(s->db);
    if (!p)
        return 0;
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        if (!((p->set >> f) & 1u))
            continue;
        char name[96];
        field_name(f, name, sizeof name);
        st = sq_stmt(s, SQ_POLICY_INSERT,
                     "INSERT INTO policies (scope, field, value) VALUES (?1, ?2, ?3)");
        if (!st)
            return -EIO;
        sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 3, p->v[f]);
        rc = sq_run(s, st, "policy insert");
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A patch is acceptable when each field it sets is valid and the full
 * policy it produces over `base` is consistent. */
static bool patch_ok(const tuner_policy *base, const tuner_policy *p)
{
    if (p->set & ~ALL_POL_FIELDS)
        return false;
    if (tuner_policy_validate(p, NULL) < 0)
        return false;
    tuner_policy full = *base;
    tuner_policy_merge(&full, p);
    return tuner_policy_check_full(&full, NULL) == 0;
}

int store_policy_get_global(store *s, tuner_policy *out)
{
    tuner_policy patch;
    bool any;
    if (!s || !out)
        return -EINVAL;
    int rc = read_scope_cached(s, GLOBAL_SCOPE, &patch, &any);
    if (rc < 0)
        return rc;
    tuner_policy_defaults(out);
    tuner_policy_merge(out, &patch);
    return 0;
}

int store_policy_get_service(store *s, const char *service, tuner_policy *out)
{
    bool any;
    if (!s || !sq_id_ok(service) || !out)
        return -EINVAL;
    int rc = read_scope_cached(s, service, out, &any);
    if (rc == 0 && !any)
        rc = -ENOENT;
    return rc;
}

int store_policy_effective(store *s, const char *service, tuner_policy *out)
{
    tuner_policy global, patch;
    bool any;
    if (!s || !out || (service && service[0] && !sq_id_ok(service)))
        return -EINVAL;
    memset(&patch, 0, sizeof patch);
    int rc = read_scope_cached(s, GLOBAL_SCOPE, &global, &any);
    if (rc == 0 && service && service[0])
        rc = read_scope_cached(s, service, &patch, &any);
    if (rc < 0)
        return rc;
    tuner_policy_defaults(out);
    tuner_policy_merge(out, &global);
    tuner_policy_merge(out, &patch);
    return 0;
}

int store_policy_put_global(store *s, const tuner_policy *p, const store_event *ev)
{
    tuner_policy defaults;
    if (!s || !p || !sq_event_ok(ev))
        return -EINVAL;
    tuner_policy_defaults(&defaults);
    if (!patch_ok(&defaults, p))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc == 0)
        rc = write_scope(s, GLOBAL_SCOPE, p, NULL);
    rc = sq_finish(s, rc, ev);
    cache_forget(s);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

int store_policy_put_service(store *s, const char *service, const tuner_policy *p,
                             const store_event *ev)
{
    tuner_policy base, global;
    bool any;
    if (!s || !sq_id_ok(service) || !p || !sq_event_ok(ev))
        return -EINVAL;
    tuner_policy_defaults(&base);
    if (!patch_ok(&base, p))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc == 0)
        rc = read_scope(s, GLOBAL_SCOPE, &global, &any);
    if (rc == 0) {
        /* Check the whole policy it will produce with today's global. */
        tuner_policy_merge(&base, &global);
        if (!patch_ok(&base, p))
            rc = -EINVAL;
    }
    if (rc == 0)
        rc = write_scope(s, service, p, NULL);
    rc = sq_finish(s, rc, ev);
    cache_forget(s);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

int store_policy_delete_service(store *s, const char *service,
                                const store_event *ev)
{
    int deleted = 0;
    if (!s || !sq_id_ok(service) || !sq_event_ok(ev))
        return -EINVAL;
    pthread_mutex_lock(&s->db_mu);
    int rc = sq_begin(s);
    if (rc == 0)
        rc = write_scope(s, service, NULL, &deleted);
    if (rc == 0 && deleted == 0)
        rc = -ENOENT;
    rc = sq_finish(s, rc, ev);
    cache_forget(s);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}
