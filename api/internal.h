/*
 * internal.h — shared by the files of api/: one call's context, replies,
 * and the JSON shapes of the domain objects.
 *
 * Decoders return 0, or -1 after filling the error response themselves, so
 * a handler just returns when a decoder fails.
 */
#ifndef GOTUNED_API_INTERNAL_H
#define GOTUNED_API_INTERNAL_H

#include <jansson.h>

#include "api/api.h"
#include "api/jdoc.h"
#include "server/auth.h"
#include "tuner/tuner.h"

typedef struct api_call {
    api_ctx *ctx;
    const api_request *req;
    api_response *resp;
    const char *param;          /* the {id} or {name} path segment, if any */
    const auth_token *who;      /* the caller's token; NULL when access control is off */
    char actor[STORE_ACTOR_MAX + 1];    /* call_actor's answer */
} api_call;

/* Who acted, for events: word ("operator", "agent") when access control is
 * off, "word:<token name>" when it is on. The string lives in c. */
const char *call_actor(api_call *c, const char *word);
/* For an agent token, checks that service is in its scope; replies 403 and
 * returns -1 when it is not. 0 for every other caller. what names the
 * thing for the message ("agent.service", "agent 'x'"). */
int check_scope(api_call *c, const char *service, const char *what);

/* Replies. reply_json steals body. */
void reply_json(api_call *c, int status, json_t *body);
/* Replies with a JSON text made by printf from fmt, which the caller
 * guarantees is one compact JSON value (used where building it with
 * jansson would cost more than the request). */
void reply_json_text(api_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies with json_version(agent, v), the stored reasons copied in as
 * they are rather than parsed and written again. */
void reply_version(api_call *c, int status, const char *agent, const store_version *v);
void reply_empty(api_call *c, int status);
/* True when the request's If-None-Match lists etag (or is "*"). */
bool etag_matches(api_call *c, const char *etag);
void reply_error(api_call *c, int status, const char *code, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Maps a store error to a reply: -ENOENT 404 (what names the thing), -ESTALE
 * 409, -ENOSPC 503, anything else 500. */
void reply_store_error(api_call *c, int rc, const char *what);

/* Request helpers. */
bool api_valid_id(const char *s);
/* Parses the body (api/jdoc.h) into *doc, caller-owned, and points *out at
 * its top-level object; 415 unless the content type is application/json,
 * 400 for malformed JSON or a body past jdoc's caps, 500 out of memory.
 * An empty body is allowed only when allow_empty (then *out is an empty
 * object). On success the caller calls jdoc_cleanup(doc); on failure
 * there is nothing to free. */
int decode_body(api_call *c, bool allow_empty, jdoc *doc, const jdoc_node **out);
/* An integer query parameter in [min, max], def when absent; 400 otherwise. */
int query_int(api_call *c, const char *key, long long def, long long min,
              long long max, long long *out);
/* An id-like query parameter (NULL when absent); 400 when malformed. */
int query_id(api_call *c, const char *key, const char **out);

/* Strict field readers for objects of a request body: each checks the type
 * and range, and replies 422 naming path.key on failure. present (may be
 * NULL) tells whether the key was there; an absent key leaves *out alone.
 * A JSON null counts as absent when null_ok (get_str: always). get_int
 * takes integers only (no fraction or exponent, as jansson's
 * json_is_integer), get_real integers and reals; a string lives as long as
 * its document. */
int get_int(api_call *c, const jdoc_node *obj, const char *path, const char *key,
            long long min, long long max, bool null_ok, long long *out, bool *present);
int get_real(api_call *c, const jdoc_node *obj, const char *path, const char *key,
             double min, double max, bool null_ok, double *out, bool *present);
int get_str(api_call *c, const jdoc_node *obj, const char *path, const char *key,
            size_t maxlen, const char **out);
/* Rejects keys of obj not in the NULL-terminated list (422). */
int check_keys(api_call *c, const jdoc_node *obj, const char *path, const char *const *keys);

/* Domain shapes. */
json_t *json_config(const tuner_config *cfg);
int decode_config(api_call *c, const jdoc_node *obj, const char *path, tuner_config *out);
json_t *json_policy(const tuner_policy *p);
/* A (partial) policy: only the fields present are set. */
int decode_policy(api_call *c, const jdoc_node *obj, tuner_policy *out);
json_t *json_sample(const tuner_sample *s);
/* mode is the agent's effective mode, mode_source "agent" or "policy". */
json_t *json_agent(const store_agent *a, const tuner_sample *latest, int mode,
                   const char *mode_source, int64_t now_ms);
json_t *json_version(const char *agent, const store_version *v);
json_t *json_recommendation(const char *agent, const tuner_recommendation *rec,
                            const store_agent *a, const tuner_config *current,
                            const tuner_policy *policy);
json_t *json_reasons(const tuner_recommendation *rec);

/* Appends an event built from the given before/after JSON (borrowed). */
void event_init(store_event *ev, const char *kind, const char *agent,
                const char *service, const char *actor, int64_t ts_ms);
/* Serialises j compactly into a malloc'd string (NULL for NULL). */
char *json_text(json_t *j);

/* The agent named in the path ({id}); replies 400/404 itself. */
int load_agent(api_call *c, store_agent *a);
/* The agent's view: facts, delivery state, effective mode, newest sample. */
json_t *agent_json(api_call *c, const store_agent *a);

/* Handlers, one file per resource. */
void h_telemetry(api_call *c);
void h_agents_list(api_call *c);
void h_agent_get(api_call *c);
void h_agent_delete(api_call *c);
void h_agent_samples(api_call *c);
void h_agent_recommendation(api_call *c);
void h_agent_config(api_call *c);
void h_agent_versions(api_call *c);
void h_agent_mode(api_call *c);
void h_agent_override(api_call *c);
void h_agent_apply(api_call *c);
void h_agent_ack(api_call *c);
void h_agent_rollback(api_call *c);
void h_policy_get(api_call *c);
void h_policy_put(api_call *c);
void h_service_policy_get(api_call *c);
void h_service_policy_put(api_call *c);
void h_service_policy_delete(api_call *c);
void h_events(api_call *c);
void h_metrics(api_call *c);

/* Recommendation for one agent from the store's current state, with the
 * agent's effective policy and current config (delivery.c). recommend()
 * returns 0 or a negative errno-style code; recommend_for() replies with
 * the error itself. */
int recommend(api_ctx *ctx, const store_agent *a, tuner_policy *policy,
              tuner_config *current, tuner_recommendation *rec);
int recommend_for(api_call *c, const store_agent *a, tuner_policy *policy,
                  tuner_config *current, tuner_recommendation *rec);

/* The agent's effective mode: its own, or its policy's mode.default
 * (*source says which). -1 when the policy cannot be read. mode_under()
 * does the same with the agent's effective policy already read. */
int agent_mode(api_ctx *ctx, const store_agent *a, const char **source);
int mode_under(const store_agent *a, const tuner_policy *p, const char **source);

/* One agent's change on its way to store_apply, with the texts it owns. */
typedef struct change {
    store_change ch;                    /* points into this struct: never move it */
    char id[STORE_ID_MAX + 1];
    tuner_config cfg;
    store_event ev[2];
    char *text[5];
    size_t ntext;
    int rollback;                       /* 0, or 1 + the METRICS_ROLLBACK_* trigger
                                           of the rollback this change makes */
} change;

/* Starts a change of agent a (any version). */
void change_init(change *x, const store_agent *a);
/* Makes the change append cfg as version a->config_version + 1 (stale
 * otherwise), recording a "config_version" event whose before is the
 * version and config from, and whose after is the new version, source,
 * config, reasons (borrowed) and the members of extra (stolen, may be
 * NULL). */
void change_version(change *x, const store_agent *a, const tuner_config *from,
                    const tuner_config *cfg, const char *source, const char *actor,
                    json_t *reasons, json_t *extra, int64_t now_ms);
/* Adds an event; before and after are stolen (either may be NULL). */
void change_event(change *x, const char *kind, const store_agent *a, const char *actor,
                  int64_t now_ms, json_t *before, json_t *after);
void change_free(change *x);

/* Adds to x (started with change_init) a rollback of a's current version v
 * to the config of v - 1 (empty for v = 1), source "rollback", with a
 * cool-down (from pol, a's effective policy) on the values v introduced.
 * why (stolen) goes into the event and the version's reasons. Fills
 * *values from *a plus the rejected fields; 0, or a negative code. */
int change_rollback(api_ctx *ctx, const store_agent *a, const tuner_policy *pol,
                    const char *actor, json_t *why, change *x, store_agent *values);

/* Commits x on its own: 0 or the store's code for it. */
int commit_one(api_ctx *ctx, change *x);

/* Commits x and replies with the version it made (status), or the error
 * (409 when another version came first). Frees x's texts. */
void reply_change(api_call *c, change *x, int status);

/* After a telemetry push (or a switch to auto): finishes a pending
 * verification (rolling back when it failed), then lets auto mode make a
 * version. *a is re-read when something changed. Failures are logged, not
 * replied: the push itself succeeded, and the next one tries again. */
void deliver_pending(api_ctx *ctx, store_agent *a);

/* After a policy change: every auto agent in scope (one service, or all
 * when service is NULL) gets the version the new policy recommends, when
 * the guards allow it, one commit per page of agents. Returns the number
 * of versions. */
size_t auto_sweep(api_ctx *ctx, const char *service);

#endif
