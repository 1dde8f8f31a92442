/*
 * delivery.c — closing the loop. Versions made by auto mode, by operators
 * (apply, override, rollback) and by verification; ACK and NACK; the
 * verification that compares a window of samples after an ACK with the
 * window before it, and rolls back when the change made things worse.
 *
 * Every change goes through store_apply with the events that record it, in
 * one transaction, so an answered request is durable with its audit trail.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "server/log.h"
#include "server/metrics.h"

_Static_assert(STORE_MODE_PINNED == TUNER_MODE_MAX,
               "the policy's mode.default holds the store's first modes");

/* ------------------------------------------------------------ recommendation */

int mode_under(const store_agent *a, const tuner_policy *p, const char **source)
{
    *source = a->mode != STORE_MODE_DEFAULT ? "agent" : "policy";
    return a->mode != STORE_MODE_DEFAULT ? (int)a->mode : (int)p->v[TUNER_POL_MODE_DEFAULT];
}

int agent_mode(api_ctx *ctx, const store_agent *a, const char **source)
{
    tuner_policy p;
    if (a->mode == STORE_MODE_DEFAULT && store_policy_effective(ctx->store, a->service, &p))
        return -1;
    return mode_under(a, &p, source);
}

/* The agent's current config (empty before version 1). */
static int current_config(api_ctx *ctx, const store_agent *a, tuner_config *out)
{
    memset(out, 0, sizeof *out);
    if (a->config_version == 0)
        return 0;
    store_version v;
    int rc = store_config_get(ctx->store, a->id, 0, &v);
    if (rc == 0)
        *out = v.config;
    store_version_cleanup(&v);
    return rc;
}

/* The recommendation under a policy already read. */
static int recommend_under(api_ctx *ctx, const store_agent *a, const tuner_policy *policy,
                           tuner_config *current, tuner_recommendation *rec)
{
    int rc = current_config(ctx, a, current);
    if (rc)
        return rc;
    tuner_sample *s = NULL;
    size_t n = 0;
    rc = store_samples_window(ctx->store, a->id,
                              (size_t)policy->v[TUNER_POL_STEAL_WINDOW], &s, &n);
    if (rc)
        return rc;
    tuner_input in = { policy, &a->cpu, current, s, n, ctx->now_ms(), a->last_change_ms,
                       &a->override, &a->rejected, a->rejected_until_ms };
    rc = tuner_recommend(&in, rec);
    store_samples_free(s, n);
    return rc;
}

int recommend(api_ctx *ctx, const store_agent *a, tuner_policy *policy,
              tuner_config *current, tuner_recommendation *rec)
{
    int rc = store_policy_effective(ctx->store, a->service, policy);
    return rc ? rc : recommend_under(ctx, a, policy, current, rec);
}

int recommend_for(api_call *c, const store_agent *a, tuner_policy *policy,
                  tuner_config *current, tuner_recommendation *rec)
{
    int rc = recommend(c->ctx, a, policy, current, rec);
    if (rc == -EINVAL)
        reply_error(c, 500, "internal", NULL, "the tuner refused its input");
    else if (rc)
        reply_store_error(c, rc, "agent");
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ changes */

void change_init(change *x, const store_agent *a)
{
    memset(x, 0, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", a->id);
    x->ch.agent_id = x->id;
    x->ch.expect_version = -1;
    x->ch.events = x->ev;
}

/* Keeps text t with the change, which frees it; NULL when it cannot. */
static const char *keep(change *x, char *t)
{
    if (t && x->ntext < sizeof x->text / sizeof x->text[0])
        x->text[x->ntext++] = t;
    else if (t) {
        free(t);
        t = NULL;
    }
    return t;
}

static const char *own(change *x, json_t *j)
{
    char *t = json_text(j);
    json_decref(j);
    return keep(x, t);
}

void change_event(change *x, const char *kind, const store_agent *a, const char *actor,
                  int64_t now_ms, json_t *before, json_t *after)
{
    if (x->ch.nevents == sizeof x->ev / sizeof x->ev[0]) {
        json_decref(before);
        json_decref(after);
        return;
    }
    store_event *ev = &x->ev[x->ch.nevents++];
    event_init(ev, kind, a->id, a->service, actor, now_ms);
    ev->before = own(x, before);
    ev->after = own(x, after);
}

void change_version(change *x, const store_agent *a, const tuner_config *from,
                    const tuner_config *cfg, const char *source, const char *actor,
                    json_t *reasons, json_t *extra, int64_t now_ms)
{
    x->cfg = *cfg;
    x->ch.config = &x->cfg;
    x->ch.expect_version = a->config_version;
    x->ch.source = source;
    x->ch.reasons = own(x, json_incref(reasons));
    json_t *before = json_pack("{s:I, s:o}", "version", (json_int_t)a->config_version,
                               "config", json_config(from));
    json_t *after = json_pack("{s:I, s:s, s:o}", "version",
                              (json_int_t)(a->config_version + 1), "source", source,
                              "config", json_config(cfg));
    if (extra)
        json_object_update_new(after, extra);
    size_t nev = x->ch.nevents;
    change_event(x, "config_version", a, actor, now_ms, before, NULL);
    /* The event's after holds the reasons too: their text, written once
     * above, goes in as it is rather than written again (the sweep after
     * a policy change does this for every agent of the service). */
    char *rest = json_text(after);
    json_decref(after);
    char *text = NULL;
    if (rest && x->ch.reasons && strlen(rest) > 2 &&
        asprintf(&text, "%.*s,\"reasons\":%s}", (int)(strlen(rest) - 1), rest,
                 x->ch.reasons) < 0)
        text = NULL;
    free(rest);
    if (x->ch.nevents > nev)
        x->ev[nev].after = keep(x, text);
    else
        free(text);
}

void change_free(change *x)
{
    for (size_t i = 0; i < x->ntext; i++)
        free(x->text[i]);
    x->ntext = 0;
}

/* One reason object in the shape the rules' reasons have. */
static json_t *reason(const char *rule, const char *text, json_t *numbers)
{
    return json_pack("{s:s, s:s, s:o}", "rule", rule, "text", text, "numbers",
                     numbers ? numbers : json_object());
}

int change_rollback(api_ctx *ctx, const store_agent *a, const tuner_policy *pol,
                    const char *actor, json_t *why, change *x, store_agent *values)
{
    int64_t v = a->config_version;
    store_version cur = { 0 }, prev = { 0 };
    int rc = v > 0 ? store_config_get(ctx->store, a->id, v, &cur) : -ENOENT;
    if (rc == 0 && v > 1)
        rc = store_config_get(ctx->store, a->id, v - 1, &prev);
    if (rc) {
        store_version_cleanup(&cur);
        store_version_cleanup(&prev);
        json_decref(why);
        return rc;
    }
    int64_t now = ctx->now_ms();
    /* What v introduced is rejected for the cool-down. */
    *values = *a;
    memset(&values->rejected, 0, sizeof values->rejected);
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++) {
        tuner_cfg_field fi = (tuner_cfg_field)f;
        if (tuner_config_has(&cur.config, fi) &&
            (!tuner_config_has(&prev.config, fi) || prev.config.v[f] != cur.config.v[f]))
            tuner_config_set(&values->rejected, fi, cur.config.v[f]);
    }
    values->rejected_until_ms = now + (int64_t)pol->v[TUNER_POL_VERIFY_COOLDOWN_S] * 1000;
    /* An override that set a rejected value goes with it, or the override
     * guard would bring the value back. */
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++)
        if (tuner_config_has(&values->rejected, (tuner_cfg_field)f))
            tuner_config_unset(&values->override, (tuner_cfg_field)f);

    json_t *reasons = json_array();
    json_array_append_new(reasons, why);
    json_t *extra = json_pack("{s:I, s:o, s:I}", "rolled_back", (json_int_t)v, "rejected",
                              json_config(&values->rejected), "cooldown_until_ms",
                              (json_int_t)values->rejected_until_ms);
    change_version(x, a, &cur.config, &prev.config, "rollback", actor, reasons, extra, now);
    x->rollback = 1 + (strcmp(actor, "verifier") == 0 ? METRICS_ROLLBACK_VERIFIER
                                                      : METRICS_ROLLBACK_OPERATOR);
    x->ch.fields |= STORE_SET_REJECTED | STORE_SET_OVERRIDE;
    x->ch.values = values;
    json_decref(reasons);
    store_version_cleanup(&cur);
    store_version_cleanup(&prev);
    return 0;
}

int commit_one(api_ctx *ctx, change *x)
{
    int rc = store_apply(ctx->store, &x->ch, 1, ctx->now_ms());
    if (rc == 0 && x->ch.rc == 0 && x->rollback)
        metrics_rollback(ctx->metrics, x->rollback - 1);
    return rc ? rc : x->ch.rc;
}

void reply_change(api_call *c, change *x, int status)
{
    store_version v = { 0 };
    int rc = commit_one(c->ctx, x);
    if (rc == 0)
        rc = store_config_get(c->ctx->store, x->id, x->ch.version, &v);
    if (rc) {
        reply_store_error(c, rc, "agent");
    } else {
        reply_json(c, status, json_version(x->id, &v));
        c->resp->index = v.version;
        snprintf(c->resp->etag, sizeof c->resp->etag, "\"%s-v%lld\"", x->id,
                 (long long)v.version);
    }
    store_version_cleanup(&v);
    change_free(x);
}

/* ------------------------------------------------------------ verification */

static json_t *real_or_null(double v)
{
    return isfinite(v) && v >= 0 ? json_real(v) : json_null();
}

static json_t *figures_json(const tuner_figures *f)
{
    return json_pack("{s:i, s:o, s:o}", "samples", (int)f->n, "sched_latency_p99_us",
                     real_or_null(f->lat_p99_us), "runq_per_p", real_or_null(f->runq_per_p));
}

/* The pending verification of a, finished when its after window is full:
 * 1 when x holds the verdict (and maybe the rollback), 0 when it is not
 * time yet, negative on error. */
static int verification_change(api_ctx *ctx, const store_agent *a, const tuner_policy *pol,
                               change *x, store_agent *values)
{
    const store_verify *vf = &a->verify;
    if (vf->version == 0)
        return 0;
    size_t want = (size_t)pol->v[TUNER_POL_VERIFY_WINDOW];
    tuner_sample *s = NULL;
    size_t n = 0;
    int rc = store_samples_window(ctx->store, a->id, TUNER_MAX_WINDOW, &s, &n);
    if (rc)
        return rc;
    size_t first = n;
    while (first > 0 && s[first - 1].recv_ms > vf->acked_ms)
        first--;
    if (n - first < want) {
        store_samples_free(s, n);
        return 0;
    }
    tuner_figures before = { vf->before_n, vf->before_lat, vf->before_runq }, after;
    tuner_window_figures(s + first, want, &after);
    store_samples_free(s, n);

    tuner_verdict vd;
    tuner_verify(pol, &before, &after, &vd);
    int64_t now = ctx->now_ms();
    bool rollback = vd.verdict == TUNER_VERDICT_FAILED && a->config_version == vf->version;
    json_t *ev_before = json_pack("{s:I, s:o}", "version", (json_int_t)vf->version, "window",
                                  figures_json(&before));
    json_t *ev_after = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:f}", "version",
                                 (json_int_t)vf->version, "verdict",
                                 tuner_verdict_name(vd.verdict), "metric",
                                 tuner_metric_name(vd.metric), "window", figures_json(&after),
                                 "before", real_or_null(vd.before), "after",
                                 real_or_null(vd.after), "change_pct",
                                 isfinite(vd.change_pct) ? json_real(vd.change_pct)
                                                         : json_null(),
                                 "tolerance_pct", pol->v[TUNER_POL_VERIFY_TOLERANCE_PCT]);
    if (vd.verdict == TUNER_VERDICT_PASSED && isfinite(vd.change_pct))
        json_object_set_new(ev_after, "gain_pct", json_real(vd.change_pct == 0 ? 0.0 : -vd.change_pct));
    json_object_set_new(ev_after, "action", json_string(rollback ? "rollback" : "none"));

    change_init(x, a);
    change_event(x, "verification", a, "verifier", now, ev_before, ev_after);
    if (rollback) {
        char text[400];
        snprintf(text, sizeof text,
                 "verification of version %lld failed: %s went from %.4g to %.4g "
                 "(%+.1f %%, tolerance %.4g %%); back to the config of version %lld",
                 (long long)vf->version, tuner_metric_name(vd.metric), vd.before, vd.after,
                 isfinite(vd.change_pct) ? vd.change_pct : 0.0,
                 pol->v[TUNER_POL_VERIFY_TOLERANCE_PCT], (long long)vf->version - 1);
        json_t *nums = json_pack("{s:I, s:s, s:f, s:f, s:f}", "version",
                                 (json_int_t)vf->version, "metric",
                                 tuner_metric_name(vd.metric), "before", vd.before, "after",
                                 vd.after, "tolerance_pct",
                                 pol->v[TUNER_POL_VERIFY_TOLERANCE_PCT]);
        rc = change_rollback(ctx, a, pol, "verifier", reason("verification", text, nums), x,
                             values);
        if (rc) {
            change_free(x);
            return rc;
        }
    } else {
        *values = *a;
        x->ch.values = values;
    }
    memset(&values->verify, 0, sizeof values->verify);
    values->verdict = (store_verdict){ .version = vf->version, .decided_ms = now,
                                       .before = vd.before, .after = vd.after };
    snprintf(values->verdict.verdict, sizeof values->verdict.verdict, "%s",
             tuner_verdict_name(vd.verdict));
    snprintf(values->verdict.metric, sizeof values->verdict.metric, "%s",
             tuner_metric_name(vd.metric));
    x->ch.fields |= STORE_SET_VERIFY | STORE_SET_VERDICT;
    /* Only while the version under test is still the current one. */
    x->ch.expect_version = vf->version == a->config_version ? a->config_version : -1;
    return 1;
}

/* ---------------------------------------------------------------- auto mode */

/* When a is in auto mode and the recommendation passes the guards, fills x
 * with the tuner's version: 1; 0 when there is nothing to do; negative on
 * error. */
static int auto_change(api_ctx *ctx, const store_agent *a, const tuner_policy *pol,
                       change *x, tuner_recommendation *rec)
{
    const char *src;
    tuner_config cur;
    if (mode_under(a, pol, &src) != STORE_MODE_AUTO)
        return 0;
    int rc = recommend_under(ctx, a, pol, &cur, rec);
    if (rc)
        return rc;
    int64_t now = ctx->now_ms();
    if (!rec->changes || now < rec->next_change_ms)
        return 0;
    json_t *reasons = json_reasons(rec);
    change_init(x, a);
    change_version(x, a, &cur, &rec->config, "tuner", "tuner", reasons, NULL, now);
    json_decref(reasons);
    return 1;
}

/* Commits what a step prepared (rc 1) and re-reads the agent; logs a
 * failure other than a lost race. */
static void finish_step(api_ctx *ctx, store_agent *a, change *x, int rc, const char *what)
{
    if (rc == 1) {
        rc = commit_one(ctx, x);
        change_free(x);
        if (rc == 0)
            rc = store_agent_get(ctx->store, a->id, a);
    }
    if (rc < 0 && rc != -ESTALE)
        log_msg("%s of agent %s: %s", what, a->id, strerror(-rc));
}

/* True when a's mode may be auto: its own, or its policy's default. */
static bool may_be_auto(const store_agent *a)
{
    return a->mode == STORE_MODE_AUTO || a->mode == STORE_MODE_DEFAULT;
}

void deliver_pending(api_ctx *ctx, store_agent *a)
{
    if (a->verify.version == 0 && !may_be_auto(a))
        return;
    change x;
    tuner_policy pol;
    const char *src;
    int rc = store_policy_effective(ctx->store, a->service, &pol);
    /* Most pushes have nothing to verify and no auto mode to run. */
    if (rc == 0 && a->verify.version == 0 && mode_under(a, &pol, &src) != STORE_MODE_AUTO)
        return;
    store_agent *values = malloc(sizeof *values);
    tuner_recommendation *rec = malloc(sizeof *rec);
    if (rc == 0 && !(values && rec))
        rc = -ENOMEM;
    if (rc == 0) {
        finish_step(ctx, a, &x, verification_change(ctx, a, &pol, &x, values), "verification");
        finish_step(ctx, a, &x, auto_change(ctx, a, &pol, &x, rec), "auto mode");
    } else {
        log_msg("delivery for agent %s: %s", a->id, strerror(-rc));
    }
    free(values);
    free(rec);
}

/* Commits the n changes of one page; returns how many made a version. */
static size_t commit_page(api_ctx *ctx, change *xs, store_change *chs, size_t n)
{
    size_t made = 0;
    for (size_t i = 0; i < n; i++)
        chs[i] = xs[i].ch;
    if (n && store_apply(ctx->store, chs, n, ctx->now_ms()) == 0)
        for (size_t i = 0; i < n; i++)
            made += chs[i].rc == 0;
    for (size_t i = 0; i < n; i++)
        change_free(&xs[i]);
    return made;
}

size_t auto_sweep(api_ctx *ctx, const char *service)
{
    /* One commit per page of agents: one fsync for many versions, while
     * memory and the store lock stay bounded however large the fleet. */
    enum { PAGE = 1000 };
    store_agent *page = malloc(PAGE * sizeof *page);
    change *xs = malloc(PAGE * sizeof *xs);         /* never moved: changes point into themselves */
    store_change *chs = malloc(PAGE * sizeof *chs);
    tuner_recommendation *rec = malloc(sizeof *rec);
    size_t made = 0, got = 0;
    char after[STORE_ID_MAX + 1] = "", pol_of[STORE_ID_MAX + 1] = "";
    tuner_policy pol;               /* the effective policy of service pol_of */
    bool more = page && xs && chs && rec;
    while (more && store_agent_list(ctx->store, service, after, page, PAGE, &got, &more) == 0 &&
           got > 0) {
        size_t n = 0;
        for (size_t i = 0; i < got; i++) {
            const store_agent *a = &page[i];
            if (!may_be_auto(a))
                continue;
            if (strcmp(a->service, pol_of) != 0) {
                if (store_policy_effective(ctx->store, a->service, &pol) != 0)
                    continue;
                snprintf(pol_of, sizeof pol_of, "%s", a->service);
            }
            n += auto_change(ctx, a, &pol, &xs[n], rec) == 1;
        }
        made += commit_page(ctx, xs, chs, n);
        snprintf(after, sizeof after, "%s", page[got - 1].id);
    }
    free(page);
    free(xs);
    free(chs);
    free(rec);
    return made;
}

/* ---------------------------------------------------------------- handlers */

/* The ACK of version v: what the agent runs now, and the start of the
 * verification when v is current (rollbacks are not verified, so that two
 * versions cannot chase each other). 0 when nothing changed. */
static int ack_change(api_ctx *ctx, const store_agent *a, int64_t v, const char *actor, change *x,
                      store_agent *values)
{
    if (a->applied_version == v && a->applied_ms > 0)
        return 0;
    int64_t now = ctx->now_ms();
    *values = *a;
    values->applied_version = v;
    values->applied_ms = now;
    change_init(x, a);
    x->ch.fields = STORE_SET_APPLIED;
    x->ch.values = values;
    x->ch.expect_version = a->config_version;

    json_t *after = json_pack("{s:I}", "applied_version", (json_int_t)v);
    store_version ver = { 0 };
    tuner_policy pol;
    int rc = 0;
    if (v == a->config_version && (rc = store_config_get(ctx->store, a->id, v, &ver)) == 0 &&
        strcmp(ver.source, "rollback") != 0 &&
        (rc = store_policy_effective(ctx->store, a->service, &pol)) == 0) {
        tuner_sample *s = NULL;
        size_t n = 0, w = (size_t)pol.v[TUNER_POL_VERIFY_WINDOW];
        if ((rc = store_samples_window(ctx->store, a->id, w, &s, &n)) == 0) {
            tuner_figures f;
            tuner_window_figures(s, n, &f);
            store_samples_free(s, n);
            values->verify = (store_verify){ v, now, f.lat_p99_us, f.runq_per_p, f.n };
            x->ch.fields |= STORE_SET_VERIFY;
            json_object_set_new(after, "verification", json_string("pending"));
            json_object_set_new(after, "before", figures_json(&f));
        }
    }
    store_version_cleanup(&ver);
    if (rc) {
        json_decref(after);
        return rc;
    }
    change_event(x, "ack", a, actor, now,
                 json_pack("{s:I}", "applied_version", (json_int_t)a->applied_version), after);
    return 1;
}

/* The NACK of version v with the agent's error. 0 when nothing changed. */
static int nack_change(api_ctx *ctx, const store_agent *a, int64_t v, const char *err,
                       const char *actor,
                       change *x, store_agent *values)
{
    if (!err)
        err = "";
    if (a->nack_version == v && strcmp(a->nack_error, err) == 0)
        return 0;
    int64_t now = ctx->now_ms();
    *values = *a;
    values->nack_version = v;
    values->nack_ms = now;
    snprintf(values->nack_error, sizeof values->nack_error, "%s", err);
    change_init(x, a);
    x->ch.fields = STORE_SET_NACK;
    x->ch.values = values;
    change_event(x, "nack", a, actor, now,
                 json_pack("{s:I}", "applied_version", (json_int_t)a->applied_version),
                 json_pack("{s:I, s:s}", "version", (json_int_t)v, "error", err));
    return 1;
}

void h_agent_ack(api_call *c)
{
    static const char *const keys[] = { "version", "status", "error", NULL };
    store_agent a;
    jdoc doc;
    const jdoc_node *body;
    const char *status = NULL, *err = NULL;
    long long version = 0;
    bool has = false;
    store_agent *values = NULL;
    if (load_agent(c, &a) || decode_body(c, false, &doc, &body))
        return;
    if (check_keys(c, body, "", keys) ||
        get_int(c, body, "", "version", 1, INT64_MAX, false, &version, &has) ||
        get_str(c, body, "", "status", 16, &status) ||
        get_str(c, body, "", "error", STORE_ERROR_MAX, &err))
        goto out;
    bool applied = status && strcmp(status, "applied") == 0;
    if (!has) {
        reply_error(c, 422, "invalid", "version", "version (the version applied or rejected) "
                    "is required");
        goto out;
    }
    if (!applied && !(status && strcmp(status, "rejected") == 0)) {
        reply_error(c, 422, "invalid", "status", "status must be \"applied\" or \"rejected\"");
        goto out;
    }
    if (applied && err) {
        reply_error(c, 422, "invalid", "error", "error goes only with status \"rejected\"");
        goto out;
    }
    if (!(values = malloc(sizeof *values))) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        goto out;
    }
    /* A version made meanwhile only changes whether verification starts:
     * read the agent again and retry. */
    int rc = -ESTALE;
    for (int attempt = 0; attempt < 3 && rc == -ESTALE; attempt++) {
        if (attempt && (rc = store_agent_get(c->ctx->store, a.id, &a)) != 0)
            break;
        if (version > a.config_version) {
            reply_error(c, 409, "unknown_version", "version",
                        "version %lld does not exist: the current version is %lld",
                        version, (long long)a.config_version);
            goto out;
        }
        change x;
        rc = applied ? ack_change(c->ctx, &a, version, call_actor(c, "agent"), &x, values)
                     : nack_change(c->ctx, &a, version, err, call_actor(c, "agent"), &x, values);
        if (rc == 1) {
            rc = commit_one(c->ctx, &x);
            change_free(&x);
        }
    }
    if (rc == 0)
        rc = store_agent_get(c->ctx->store, a.id, &a);
    if (rc)
        reply_store_error(c, rc, "agent");
    else
        reply_json(c, 200, agent_json(c, &a));
out:
    free(values);
    jdoc_cleanup(&doc);
}

void h_agent_rollback(api_call *c)
{
    static const char *const keys[] = { NULL };
    store_agent a;
    jdoc doc;
    const jdoc_node *body;
    store_agent *values = NULL;
    if (load_agent(c, &a) || decode_body(c, true, &doc, &body))
        return;
    if (check_keys(c, body, "", keys))
        goto out;
    if (a.config_version == 0) {
        reply_error(c, 409, "nothing_to_roll_back", NULL,
                    "the agent has no config version yet");
        goto out;
    }
    if (!(values = malloc(sizeof *values))) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        goto out;
    }
    char text[160];
    snprintf(text, sizeof text, "rolled back by an operator: version %lld undone, back to "
             "the config of version %lld", (long long)a.config_version,
             (long long)a.config_version - 1);
    change x;
    tuner_policy pol;
    change_init(&x, &a);
    int rc = store_policy_effective(c->ctx->store, a.service, &pol);
    if (rc == 0)
        rc = change_rollback(c->ctx, &a, &pol, call_actor(c, "operator"),
                             reason("operator", text, json_pack("{s:I}", "version",
                                                                (json_int_t)a.config_version)),
                             &x, values);
    if (rc) {
        change_free(&x);
        reply_store_error(c, rc, "agent");
    } else {
        reply_change(c, &x, 201);
    }
out:
    free(values);
    jdoc_cleanup(&doc);
}
