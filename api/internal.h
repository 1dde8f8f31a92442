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
#include "tuner/tuner.h"

typedef struct api_call {
    api_ctx *ctx;
    const api_request *req;
    api_response *resp;
    const char *param;          /* the {id} or {name} path segment, if any */
} api_call;

/* Replies. reply_json steals body. */
void reply_json(api_call *c, int status, json_t *body);
void reply_empty(api_call *c, int status);
void reply_error(api_call *c, int status, const char *code, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Maps a store error to a reply: -ENOENT 404 (what names the thing), -ESTALE
 * 409, -ENOSPC 503, anything else 500. */
void reply_store_error(api_call *c, int rc, const char *what);

/* Request helpers. */
bool api_valid_id(const char *s);
/* Parses the body as one JSON object; 415 unless the content type is
 * application/json, 400 for malformed JSON. An empty body is allowed only
 * when allow_empty (then *out is an empty object). */
int decode_body(api_call *c, bool allow_empty, json_t **out);
/* An integer query parameter in [min, max], def when absent; 400 otherwise. */
int query_int(api_call *c, const char *key, long long def, long long min,
              long long max, long long *out);
/* An id-like query parameter (NULL when absent); 400 when malformed. */
int query_id(api_call *c, const char *key, const char **out);

/* Strict field readers for objects: each checks the type and range, and
 * replies 422 naming path.key on failure. present (may be NULL) tells
 * whether the key was there; an absent key leaves *out alone. A JSON null
 * counts as absent when null_ok. */
int get_int(api_call *c, json_t *obj, const char *path, const char *key,
            long long min, long long max, bool null_ok, long long *out, bool *present);
int get_real(api_call *c, json_t *obj, const char *path, const char *key,
             double min, double max, bool null_ok, double *out, bool *present);
int get_str(api_call *c, json_t *obj, const char *path, const char *key,
            size_t maxlen, const char **out);
/* Rejects keys of obj not in the NULL-terminated list (422). */
int check_keys(api_call *c, json_t *obj, const char *path, const char *const *keys);

/* Domain shapes. */
json_t *json_config(const tuner_config *cfg);
int decode_config(api_call *c, json_t *obj, const char *path, tuner_config *out);
json_t *json_policy(const tuner_policy *p);
/* A (partial) policy: only the fields present are set. */
int decode_policy(api_call *c, json_t *obj, tuner_policy *out);
json_t *json_sample(const tuner_sample *s);
json_t *json_agent(const store_agent *a, const tuner_sample *latest);
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
void h_policy_get(api_call *c);
void h_policy_put(api_call *c);
void h_service_policy_get(api_call *c);
void h_service_policy_put(api_call *c);
void h_service_policy_delete(api_call *c);
void h_events(api_call *c);

/* Recommendation for one agent from the store's current state (agents.c);
 * used by both the recommendation and apply routes. */
int recommend_for(api_call *c, const store_agent *a, tuner_policy *policy,
                  tuner_config *current, tuner_recommendation *rec);

#endif
