/*
 * policy.c — the global policy and per-service overrides. The global policy
 * is a patch over the built-in defaults; a service policy overrides the
 * global one field by field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

void h_policy_get(api_call *c)
{
    tuner_policy p;
    int rc = store_policy_get_global(c->ctx->store, &p);
    if (rc)
        reply_store_error(c, rc, "policy");
    else
        reply_json(c, 200, json_policy(&p));
}

/* Stores a policy change with an event holding before and after. */
static int put_with_event(api_call *c, const char *service, const tuner_policy *patch,
                          json_t *before, bool delete)
{
    store_event ev;
    event_init(&ev, "policy_change", NULL, service, call_actor(c, "operator"), c->ctx->now_ms());
    json_t *after = delete ? NULL : json_policy(patch);
    char *tb = json_text(before), *ta = json_text(after);
    ev.before = tb;
    ev.after = ta;
    int rc;
    if (!service)
        rc = store_policy_put_global(c->ctx->store, patch, &ev);
    else if (delete)
        rc = store_policy_delete_service(c->ctx->store, service, &ev);
    else
        rc = store_policy_put_service(c->ctx->store, service, patch, &ev);
    free(tb);
    free(ta);
    json_decref(after);
    if (rc)
        reply_store_error(c, rc, "service policy");
    else
        auto_sweep(c->ctx, service);
    return rc;
}

void h_policy_put(api_call *c)
{
    jdoc doc;
    const jdoc_node *body;
    tuner_policy patch, old, full;
    if (decode_body(c, false, &doc, &body))
        return;
    if (decode_policy(c, body, &patch))
        goto out;
    /* The merged whole must hold together too (e.g. a valid full policy). */
    tuner_policy_defaults(&full);
    tuner_policy_merge(&full, &patch);
    int rc = store_policy_get_global(c->ctx->store, &old);
    if (rc) {
        reply_store_error(c, rc, "policy");
        goto out;
    }
    json_t *before = json_policy(&old);
    rc = put_with_event(c, NULL, &patch, before, false);
    json_decref(before);
    if (rc == 0)
        reply_json(c, 200, json_policy(&full));
out:
    jdoc_cleanup(&doc);
}

static int service_name(api_call *c)
{
    if (!api_valid_id(c->param)) {
        reply_error(c, 400, "bad_request", "name",
                    "a service name must match [A-Za-z0-9._-]{1,128}");
        return -1;
    }
    return 0;
}

/* {"service", "override", "effective"} for a service with a stored patch. */
static void reply_service(api_call *c, int status)
{
    tuner_policy patch, eff;
    int rc = store_policy_get_service(c->ctx->store, c->param, &patch);
    if (rc == 0)
        rc = store_policy_effective(c->ctx->store, c->param, &eff);
    if (rc) {
        reply_store_error(c, rc, "service policy");
        return;
    }
    reply_json(c, status, json_pack("{s:s, s:o, s:o}", "service", c->param, "override",
                                    json_policy(&patch), "effective", json_policy(&eff)));
}

void h_service_policy_get(api_call *c)
{
    if (service_name(c) == 0)
        reply_service(c, 200);
}

void h_service_policy_put(api_call *c)
{
    jdoc doc;
    const jdoc_node *body;
    tuner_policy patch, old;
    if (service_name(c) || decode_body(c, false, &doc, &body))
        return;
    if (decode_policy(c, body, &patch) != 0) {
        /* decode_policy replied */
    } else if (patch.set == 0) {
        reply_error(c, 422, "invalid", NULL,
                    "an empty service policy overrides nothing; DELETE it to use the "
                    "global policy");
    } else {
        json_t *before = store_policy_get_service(c->ctx->store, c->param, &old) == 0
                             ? json_policy(&old) : NULL;
        if (put_with_event(c, c->param, &patch, before, false) == 0)
            reply_service(c, 200);
        json_decref(before);
    }
    jdoc_cleanup(&doc);
}

void h_service_policy_delete(api_call *c)
{
    tuner_policy old;
    if (service_name(c))
        return;
    int rc = store_policy_get_service(c->ctx->store, c->param, &old);
    if (rc) {
        reply_store_error(c, rc, "service policy");
        return;
    }
    json_t *before = json_policy(&old);
    if (put_with_event(c, c->param, NULL, before, true) == 0)
        reply_empty(c, 204);
    json_decref(before);
}
