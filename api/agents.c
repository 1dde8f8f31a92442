/*
 * agents.c — the agent resources: list, detail, delete, samples,
 * recommendation, config versions, mode, override and apply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

#define LIST_MAX 1000

int load_agent(api_call *c, store_agent *a)
{
    if (!api_valid_id(c->param)) {
        reply_error(c, 400, "bad_request", "id", "an agent id must match [A-Za-z0-9._-]{1,128}");
        return -1;
    }
    int rc = store_agent_get(c->ctx->store, c->param, a);
    if (rc) {
        reply_store_error(c, rc, "agent");
        return -1;
    }
    char what[STORE_ID_MAX + 16];
    snprintf(what, sizeof what, "agent '%s'", a->id);
    return check_scope(c, a->service, what);
}

json_t *agent_json(api_call *c, const store_agent *a)
{
    tuner_sample *s = NULL;
    size_t n = 0;
    const char *source = "agent";
    int mode = agent_mode(c->ctx, a, &source);
    store_samples_window(c->ctx->store, a->id, 1, &s, &n);
    json_t *o = json_agent(a, n ? &s[0] : NULL, mode < 0 ? (int)a->mode : mode, source,
                           c->ctx->now_ms());
    store_samples_free(s, n);
    return o;
}

/* The agent's current config (empty before version 1). */
static int current_config(api_call *c, const store_agent *a, store_version *v)
{
    memset(v, 0, sizeof *v);
    if (a->config_version == 0)
        return 0;
    int rc = store_config_get(c->ctx->store, a->id, 0, v);
    if (rc) {
        reply_store_error(c, rc, "config version");
        return -1;
    }
    return 0;
}

void h_agents_list(api_call *c)
{
    long long limit;
    const char *service = NULL, *after = NULL;
    if (query_int(c, "limit", 100, 1, LIST_MAX, &limit) || query_id(c, "service", &service) ||
        query_id(c, "after", &after))
        return;
    store_agent *agents = malloc((size_t)limit * sizeof *agents);
    if (!agents) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return;
    }
    size_t n = 0;
    bool more = false;
    int rc = store_agent_list(c->ctx->store, service, after, agents, (size_t)limit, &n, &more);
    if (rc) {
        free(agents);
        reply_store_error(c, rc, "agents");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, agent_json(c, &agents[i]));
    json_t *next = more && n ? json_string(agents[n - 1].id) : json_null();
    free(agents);
    reply_json(c, 200, json_pack("{s:o, s:o}", "agents", arr, "next", next));
}

void h_agent_get(api_call *c)
{
    store_agent a;
    store_version v;
    if (load_agent(c, &a) || current_config(c, &a, &v))
        return;
    json_t *o = agent_json(c, &a);
    json_object_set_new(o, "config", json_version(a.id, &v));
    store_version_cleanup(&v);
    reply_json(c, 200, o);
}

void h_agent_delete(api_call *c)
{
    store_agent a;
    if (load_agent(c, &a))
        return;
    store_event ev;
    event_init(&ev, "agent_deleted", a.id, a.service, call_actor(c, "operator"),
               c->ctx->now_ms());
    json_t *before = agent_json(c, &a);
    char *text = json_text(before);
    ev.before = text;
    int rc = store_agent_delete(c->ctx->store, a.id, &ev);
    free(text);
    json_decref(before);
    if (rc)
        reply_store_error(c, rc, "agent");
    else
        reply_empty(c, 204);
}

void h_agent_samples(api_call *c)
{
    store_agent a;
    long long limit;
    if (query_int(c, "limit", 30, 1, TUNER_MAX_WINDOW, &limit) || load_agent(c, &a))
        return;
    tuner_sample *s = NULL;
    size_t n = 0;
    int rc = store_samples_window(c->ctx->store, a.id, (size_t)limit, &s, &n);
    if (rc) {
        reply_store_error(c, rc, "agent");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_sample(&s[i]));
    store_samples_free(s, n);
    reply_json(c, 200, json_pack("{s:s, s:o}", "agent", a.id, "samples", arr));
}

void h_agent_recommendation(api_call *c)
{
    store_agent a;
    tuner_policy policy;
    tuner_config current;
    tuner_recommendation *rec = malloc(sizeof *rec);
    if (!rec) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return;
    }
    if (load_agent(c, &a) == 0 && recommend_for(c, &a, &policy, &current, rec) == 0)
        reply_json(c, 200, json_recommendation(a.id, rec, &a, &current, &policy));
    free(rec);
}

#define WAIT_DEFAULT_MS (5 * 60 * 1000)
#define WAIT_MAX_MS (10 * 60 * 1000)

/* A wait such as "30s", "5m", "1m30s", "250ms", or a number of seconds, in
 * ms, capped at WAIT_MAX_MS; -1 when malformed. */
static int64_t parse_wait(const char *s)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 9)
        return -1;
    if (s[digits] == '\0')
        return atoll(s) * 1000 > WAIT_MAX_MS ? WAIT_MAX_MS : atoll(s) * 1000;
    int64_t total = 0;
    while (*s) {
        digits = strspn(s, "0123456789");
        if (digits == 0 || digits > 9)
            return -1;
        int64_t n = atoll(s), unit;
        s += digits;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 1;
            s += 2;
        } else if (*s == 's' || *s == 'm' || *s == 'h') {
            unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : 3600000;
            s++;
        } else {
            return -1;
        }
        total += n * unit;
        if (total > WAIT_MAX_MS)
            total = WAIT_MAX_MS;
    }
    return total;
}

void h_agent_config(api_call *c)
{
    store_agent a;
    store_version v;
    long long index;
    int64_t wait_ms = WAIT_DEFAULT_MS;
    if (query_int(c, "index", -1, 0, INT64_MAX, &index))
        return;
    const char *w = c->req->query(c->req->conn, "wait");
    if (w && (wait_ms = parse_wait(w)) < 0) {
        reply_error(c, 400, "bad_request", "wait",
                    "wait must be a duration such as 30s, 5m, 1m30s or 250ms (at most 10m)");
        return;
    }
    if (w && index < 0) {
        reply_error(c, 400, "bad_request", "index",
                    "wait makes a blocking query, which needs index (the version you have)");
        return;
    }
    if (load_agent(c, &a))
        return;
    c->resp->index = a.config_version;
    /* A blocking query on the current version waits for the next one, with
     * up to 1/16 of the wait added so that agents spread out. */
    if (index == a.config_version && wait_ms > 0 && !c->req->no_wait) {
        api_hold *h = &c->resp->hold;
        h->wait_ms = wait_ms + arc4random_uniform((uint32_t)(wait_ms / 16) + 1);
        h->index = index;
        snprintf(h->agent, sizeof h->agent, "%s", a.id);
        return;
    }
    /* The ETag names the version, so a poll that has it is answered
     * without reading the config. */
    snprintf(c->resp->etag, sizeof c->resp->etag, "\"%s-v%lld\"", a.id,
             (long long)a.config_version);
    if (etag_matches(c, c->resp->etag)) {
        reply_empty(c, 304);
        return;
    }
    if (current_config(c, &a, &v))
        return;
    reply_version(c, 200, a.id, &v);
    store_version_cleanup(&v);
}

void h_agent_versions(api_call *c)
{
    store_agent a;
    long long limit;
    if (query_int(c, "limit", 20, 1, 100, &limit) || load_agent(c, &a))
        return;
    store_version v[100];
    size_t n = 0;
    int rc = store_config_history(c->ctx->store, a.id, v, (size_t)limit, &n);
    if (rc) {
        reply_store_error(c, rc, "agent");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_version(a.id, &v[i]));
        store_version_cleanup(&v[i]);
    }
    reply_json(c, 200, json_pack("{s:s, s:o}", "agent", a.id, "versions", arr));
}

void h_agent_mode(api_call *c)
{
    static const char *const keys[] = { "mode", NULL };
    store_agent a;
    jdoc doc;
    const jdoc_node *body;
    const char *name = NULL;
    if (load_agent(c, &a) || decode_body(c, false, &doc, &body))
        return;
    if (check_keys(c, body, "", keys) || get_str(c, body, "", "mode", 16, &name))
        goto out;
    int mode = name ? store_mode_parse(name) : -1;
    if (mode < 0) {
        reply_error(c, 422, "invalid", "mode",
                    "mode must be \"recommend\", \"auto\", \"pinned\" or \"default\" "
                    "(follow the policy's mode.default)");
        goto out;
    }
    const char *src;
    tuner_policy pol;
    int rc = store_policy_effective(c->ctx->store, a.service, &pol);
    if (rc) {
        reply_store_error(c, rc, "policy");
        goto out;
    }
    int before = mode_under(&a, &pol, &src);
    store_agent next = a;
    next.mode = (store_mode)mode;
    int after = mode_under(&next, &pol, &src);
    change x;
    change_init(&x, &a);
    change_event(&x, "mode_change", &a, call_actor(c, "operator"), c->ctx->now_ms(),
                 json_pack("{s:s, s:s?}", "mode", store_mode_name((int)a.mode), "effective",
                           store_mode_name(before)),
                 json_pack("{s:s, s:s?}", "mode", store_mode_name(mode), "effective",
                           store_mode_name(after)));
    x.ch.fields = STORE_SET_MODE;
    x.ch.values = &next;
    rc = commit_one(c->ctx, &x);
    change_free(&x);
    if (rc == 0)
        rc = store_agent_get(c->ctx->store, a.id, &a);
    if (rc) {
        reply_store_error(c, rc, "agent");
        goto out;
    }
    /* Switching to auto acts now, not at the next push. */
    if (after == STORE_MODE_AUTO)
        deliver_pending(c->ctx, &a);
    reply_json(c, 200, agent_json(c, &a));
out:
    jdoc_cleanup(&doc);
}

void h_agent_override(api_call *c)
{
    store_agent a;
    store_version cur;
    jdoc doc;
    const jdoc_node *body;
    store_agent *values = NULL;
    if (load_agent(c, &a) || decode_body(c, false, &doc, &body))
        return;
    if (!(values = malloc(sizeof *values))) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        goto out;
    }
    *values = a;
    if (decode_config(c, body, "", &values->override) || current_config(c, &a, &cur))
        goto out;
    tuner_config next = cur.config;
    tuner_config_merge(&next, &values->override);
    if (tuner_config_equal(&next, &cur.config) && tuner_config_equal(&values->override, &a.override)) {
        json_t *o = json_version(a.id, &cur);
        json_object_set_new(o, "changed", json_false());
        reply_json(c, 200, o);
    } else {
        change x;
        json_t *reasons = json_array();
        change_init(&x, &a);
        change_version(&x, &a, &cur.config, &next, "override", call_actor(c, "operator"),
                       reasons,
                       json_pack("{s:o}", "override", json_config(&values->override)),
                       c->ctx->now_ms());
        x.ch.fields = STORE_SET_OVERRIDE;
        x.ch.values = values;
        json_decref(reasons);
        reply_change(c, &x, 200);
    }
    store_version_cleanup(&cur);
out:
    free(values);
    jdoc_cleanup(&doc);
}

void h_agent_apply(api_call *c)
{
    static const char *const keys[] = { "force", NULL };
    store_agent a;
    jdoc doc;
    const jdoc_node *body;
    tuner_policy policy;
    tuner_config current;
    tuner_recommendation *rec = NULL;
    if (load_agent(c, &a) || decode_body(c, true, &doc, &body))
        return;
    if (check_keys(c, body, "", keys))
        goto out;
    const jdoc_node *jf = jdoc_get(body, "force");
    if (jf && !jdoc_is_boolean(jf)) {
        reply_error(c, 422, "invalid", "force", "force must be true or false");
        goto out;
    }
    rec = malloc(sizeof *rec);
    if (!rec) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (recommend_for(c, &a, &policy, &current, rec))
        goto out;
    const char *src;
    if (mode_under(&a, &policy, &src) == STORE_MODE_PINNED) {
        reply_error(c, 409, "pinned", "mode",
                    "the agent is pinned (mode set by %s): its config changes only by "
                    "override; switch the mode to recommend or auto to apply", src);
        goto out;
    }
    if (!rec->changes) {
        reply_error(c, 409, "no_change", NULL,
                    "the recommendation equals the current config (version %lld)",
                    (long long)a.config_version);
        goto out;
    }
    int64_t now = c->ctx->now_ms();
    if (now < rec->next_change_ms && !jdoc_is_true(jf)) {
        reply_error(c, 409, "too_soon", NULL,
                    "guards.min_interval_s allows the next change in %lld s; "
                    "send {\"force\":true} to apply anyway",
                    (long long)((rec->next_change_ms - now + 999) / 1000));
        goto out;
    }
    change x;
    json_t *reasons = json_reasons(rec);
    change_init(&x, &a);
    change_version(&x, &a, &current, &rec->config, "operator", call_actor(c, "operator"),
                   reasons, NULL, now);
    json_decref(reasons);
    reply_change(c, &x, 201);
out:
    free(rec);
    jdoc_cleanup(&doc);
}
