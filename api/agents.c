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

/* Reads the agent named in the path; replies 404 when there is none. */
static int load_agent(api_call *c, store_agent *a)
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
    return 0;
}

/* The agent as JSON with its newest sample. */
static json_t *agent_json(api_call *c, const store_agent *a)
{
    tuner_sample *s = NULL;
    size_t n = 0;
    store_samples_window(c->ctx->store, a->id, 1, &s, &n);
    json_t *o = json_agent(a, n ? &s[0] : NULL);
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
    event_init(&ev, "agent_deleted", a.id, a.service, "operator", c->ctx->now_ms());
    json_t *before = json_agent(&a, NULL);
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

int recommend_for(api_call *c, const store_agent *a, tuner_policy *policy,
                  tuner_config *current, tuner_recommendation *rec)
{
    store_version v;
    int rc = store_policy_effective(c->ctx->store, a->service, policy);
    if (rc) {
        reply_store_error(c, rc, "policy");
        return -1;
    }
    if (current_config(c, a, &v))
        return -1;
    *current = v.config;
    store_version_cleanup(&v);
    tuner_sample *s = NULL;
    size_t n = 0;
    rc = store_samples_window(c->ctx->store, a->id,
                              (size_t)policy->v[TUNER_POL_STEAL_WINDOW], &s, &n);
    if (rc) {
        reply_store_error(c, rc, "agent");
        return -1;
    }
    tuner_input in = { policy, &a->cpu, current, s, n, c->ctx->now_ms(), a->last_change_ms };
    rc = tuner_recommend(&in, rec);
    store_samples_free(s, n);
    if (rc) {
        reply_error(c, 500, "internal", NULL, "the tuner refused its input (%s)", strerror(-rc));
        return -1;
    }
    return 0;
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

/* True when the If-None-Match header lists etag (or is "*"). */
static bool etag_matches(api_call *c, const char *etag)
{
    const char *inm = c->req->header(c->req->conn, "If-None-Match");
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += n) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || (p - inm >= 2 && p[-1] == '/' && p[-2] == 'W');
        bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

void h_agent_config(api_call *c)
{
    store_agent a;
    store_version v;
    if (load_agent(c, &a) || current_config(c, &a, &v))
        return;
    snprintf(c->resp->etag, sizeof c->resp->etag, "\"%s-v%lld\"", a.id,
             (long long)a.config_version);
    if (etag_matches(c, c->resp->etag)) {
        store_version_cleanup(&v);
        reply_empty(c, 304);
        return;
    }
    reply_json(c, 200, json_version(a.id, &v));
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
    json_t *body = NULL;
    const char *name = NULL;
    if (load_agent(c, &a) || decode_body(c, false, &body))
        return;
    if (check_keys(c, body, "", keys) || get_str(c, body, "", "mode", 16, &name))
        goto out;
    int mode = name ? store_mode_parse(name) : -1;
    if (mode < 0) {
        reply_error(c, 422, "invalid", "mode",
                    "mode must be \"recommend\", \"auto\" or \"pinned\"");
        goto out;
    }
    store_event ev;
    event_init(&ev, "mode_change", a.id, a.service, "operator", c->ctx->now_ms());
    char before[64], after[64];
    snprintf(before, sizeof before, "{\"mode\":\"%s\"}", store_mode_name(a.mode));
    snprintf(after, sizeof after, "{\"mode\":\"%s\"}", store_mode_name(mode));
    ev.before = before;
    ev.after = after;
    int rc = store_agent_set_mode(c->ctx->store, a.id, (store_mode)mode, &ev);
    if (rc == 0)
        rc = store_agent_get(c->ctx->store, a.id, &a);
    if (rc)
        reply_store_error(c, rc, "agent");
    else
        reply_json(c, 200, agent_json(c, &a));
out:
    json_decref(body);
}

/* Makes cfg the agent's next version, with an event carrying both configs.
 * Replies with the new version (status) or an error. */
static void new_version(api_call *c, const store_agent *a, const tuner_config *before,
                        const tuner_config *cfg, const char *source, const char *kind,
                        json_t *reasons, const tuner_config *override, int status)
{
    int64_t now = c->ctx->now_ms();
    store_event ev;
    event_init(&ev, kind, a->id, a->service, "operator", now);
    json_t *jb = json_pack("{s:I, s:o}", "version", (json_int_t)a->config_version, "config",
                           json_config(before));
    json_t *ja = json_pack("{s:I, s:s, s:o, s:O}", "version",
                           (json_int_t)(a->config_version + 1), "source", source, "config",
                           json_config(cfg), "reasons", reasons);
    if (override)
        json_object_set_new(ja, "override", json_config(override));
    char *tb = json_text(jb), *ta = json_text(ja), *tr = json_text(reasons);
    ev.before = tb;
    ev.after = ta;
    int64_t version = 0;
    int rc = store_config_append(c->ctx->store, a->id, a->config_version, cfg, source, tr,
                                 override, &ev, now, &version);
    store_version v = { 0 };
    if (rc == 0)
        rc = store_config_get(c->ctx->store, a->id, version, &v);
    if (rc) {
        reply_store_error(c, rc, "agent");
    } else {
        reply_json(c, status, json_version(a->id, &v));
        snprintf(c->resp->etag, sizeof c->resp->etag, "\"%s-v%lld\"", a->id,
                 (long long)version);
    }
    store_version_cleanup(&v);
    free(tb);
    free(ta);
    free(tr);
    json_decref(jb);
    json_decref(ja);
}

void h_agent_override(api_call *c)
{
    store_agent a;
    store_version cur;
    json_t *body = NULL;
    tuner_config ov;
    if (load_agent(c, &a) || decode_body(c, false, &body))
        return;
    if (decode_config(c, body, "", &ov) || current_config(c, &a, &cur))
        goto out;
    tuner_config next = cur.config;
    tuner_config_merge(&next, &ov);
    if (tuner_config_equal(&next, &cur.config) && tuner_config_equal(&ov, &a.override)) {
        json_t *o = json_version(a.id, &cur);
        json_object_set_new(o, "changed", json_false());
        reply_json(c, 200, o);
    } else {
        json_t *reasons = json_array();
        new_version(c, &a, &cur.config, &next, "override", "override", reasons, &ov, 200);
        json_decref(reasons);
    }
    store_version_cleanup(&cur);
out:
    json_decref(body);
}

void h_agent_apply(api_call *c)
{
    static const char *const keys[] = { "force", NULL };
    store_agent a;
    json_t *body = NULL;
    tuner_policy policy;
    tuner_config current;
    tuner_recommendation *rec = NULL;
    if (load_agent(c, &a) || decode_body(c, true, &body))
        return;
    if (check_keys(c, body, "", keys))
        goto out;
    json_t *jf = json_object_get(body, "force");
    if (jf && !json_is_boolean(jf)) {
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
    if (!rec->changes) {
        reply_error(c, 409, "no_change", NULL,
                    "the recommendation equals the current config (version %lld)",
                    (long long)a.config_version);
        goto out;
    }
    int64_t now = c->ctx->now_ms();
    if (now < rec->next_change_ms && !json_is_true(jf)) {
        reply_error(c, 409, "too_soon", NULL,
                    "guards.min_interval_s allows the next change in %lld s; "
                    "send {\"force\":true} to apply anyway",
                    (long long)((rec->next_change_ms - now + 999) / 1000));
        goto out;
    }
    json_t *reasons = json_reasons(rec);
    new_version(c, &a, &current, &rec->config, "operator", "config_version", reasons, NULL,
                201);
    json_decref(reasons);
out:
    free(rec);
    json_decref(body);
}
